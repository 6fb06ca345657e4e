//! Running a gateway: the Pingora server on its own thread, a side runtime for the background
//! refreshers, the admin listener, health checks and hot reload, the shutdown signals, and the
//! start in either mode (fresh, or taking the sockets over in a graceful upgrade).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use proofgate_config::Config;
use proofgate_config::Secrets;

use crate::error::GatewayError;
use crate::health::health_checks;
use crate::reload::watch_config;
use crate::state::Gateway;
use crate::tls::check_listener_tls;
use crate::upgrade::{own_uid, upgrade_peer_check, UPGRADE_PEER_WAIT};

/// A running gateway started by [`GatewayHandle::start`]; dropping it does not stop it, call
/// [`GatewayHandle::shutdown`].
pub struct GatewayHandle {
    /// The state.
    pub gateway: Arc<Gateway>,
    /// Proxy listener addresses.
    pub proxy_addrs: Vec<SocketAddr>,
    /// Admin listener address.
    pub admin_addr: Option<SocketAddr>,
    stop: tokio::sync::watch::Sender<bool>,
    pingora: Option<std::thread::JoinHandle<()>>,
    side: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("proxy_addrs", &self.proxy_addrs)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

/// How the gateway starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartMode {
    /// Bind the configured listeners.
    #[default]
    Fresh,
    /// Take the listening sockets over from a running gateway (Pingora's graceful upgrade): wait
    /// (at most [`WARM_UP_LIMIT`]) until keys, revocation list and status lists are loaded, then
    /// receive the sockets on `server.upgrade_sock` once the running process gets `SIGQUIT`.
    /// The admin address is taken as soon as the old process lets go of it.
    Upgrade,
}

/// Longest a process started in [`StartMode::Upgrade`] waits for its issuer data before it takes
/// the sockets over anyway (it then answers as a fresh start does until the data arrives). The
/// running process keeps trying to hand its sockets over for 5 s after `SIGQUIT`, so this
/// leaves room to spare.
pub const WARM_UP_LIMIT: Duration = Duration::from_secs(3);

struct WatchShutdown {
    stop: tokio::sync::watch::Receiver<bool>,
    upgrade_sock: PathBuf,
    gateway: Arc<Gateway>,
    #[cfg(unix)]
    signals: Arc<tokio::sync::Mutex<Signals>>,
}

/// Stops on [`GatewayHandle::shutdown`] (at once) or on the usual Unix signals, as Pingora's
/// own watcher does: `SIGTERM` graceful terminate (in-flight requests finish within the grace
/// period), `SIGINT` fast, `SIGQUIT` graceful upgrade: the listening sockets are sent over
/// `server.upgrade_sock` to a process started with `proofgate run --upgrade` (once its socket
/// there passes [`upgrade_peer_check`]), both accept on them for 5 s, then this one stops
/// accepting and drains like `SIGTERM`. Without a new process to take them (none appears within
/// 5 s, or it fails the check), `SIGQUIT` is logged and this one goes on serving. Whatever stops
/// the server first marks the gateway [`Gateway::draining`]. Once a graceful stop has begun
/// (`SIGTERM`, or `SIGQUIT` handing the sockets over), a second `SIGTERM` or `SIGINT` ends the
/// process at once ([`exit_on_second_signal`]): Pingora itself would wait out the whole grace
/// period whatever comes.
#[async_trait::async_trait]
impl ShutdownSignalWatch for WatchShutdown {
    async fn recv(&self) -> ShutdownSignal {
        let signal = self.next().await;
        self.gateway.draining.store(true, Ordering::Relaxed);
        #[cfg(unix)]
        if !matches!(signal, ShutdownSignal::FastShutdown) {
            // On Pingora's server runtime, whose worker keeps running while its main thread
            // sleeps through the grace period.
            tokio::spawn(exit_on_second_signal(self.signals.clone()));
        }
        signal
    }
}

/// After a graceful stop has begun: the next `SIGTERM` or `SIGINT` exits the process at once
/// (status 0, as a first `SIGINT` does), dropping the requests still in flight and releasing
/// every port; someone who sends it has decided not to wait for the grace period. `SIGQUIT`
/// meanwhile is logged and ignored.
#[cfg(unix)]
async fn exit_on_second_signal(signals: Arc<tokio::sync::Mutex<Signals>>) {
    let mut signals = signals.lock().await;
    loop {
        match signals.recv().await {
            ShutdownSignal::GracefulUpgrade => {
                tracing::warn!("SIGQUIT while stopping: ignored (SIGTERM or SIGINT stops at once)")
            }
            _ => {
                tracing::warn!(
                    "second stop signal: exiting now, without waiting for requests in flight"
                );
                std::process::exit(0);
            }
        }
    }
}

impl WatchShutdown {
    #[cfg(unix)]
    async fn next(&self) -> ShutdownSignal {
        let mut rx = self.stop.clone();
        let mut signals = self.signals.lock().await;
        loop {
            let signal = tokio::select! {
                _ = rx.wait_for(|stop| *stop) => ShutdownSignal::FastShutdown,
                signal = signals.recv() => signal,
            };
            if !matches!(signal, ShutdownSignal::GracefulUpgrade) {
                return signal;
            }
            // Pingora would send the listening sockets to whatever listens at the path. A signal
            // that comes meanwhile is kept, and acted on next if this one is not.
            match upgrade_peer_check(&self.upgrade_sock, own_uid(), UPGRADE_PEER_WAIT).await {
                Ok(()) => return signal,
                Err(why) => tracing::error!(
                    upgrade_sock = %self.upgrade_sock.display(),
                    "SIGQUIT: not handing the listening sockets over ({why}); still serving"
                ),
            }
        }
    }

    #[cfg(not(unix))]
    async fn next(&self) -> ShutdownSignal {
        let _ = self.stop.clone().wait_for(|stop| *stop).await;
        ShutdownSignal::FastShutdown
    }
}

/// `SIGQUIT`, `SIGTERM` and `SIGINT`, listened for from before the proxy listeners bind, and
/// each kept until read. Pingora's own watcher (`UnixShutdownSignalWatch`) installs its handlers
/// only once its services run, after the listeners already accept, so a signal sent as soon as
/// the proxy port answered took its default action (`SIGQUIT` killed the process); and it
/// listens afresh on every call, so a signal that came during the upgrade peer check was lost.
#[cfg(unix)]
struct Signals {
    quit: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    /// Installs the handlers; within a Tokio runtime with its I/O driver. Any runtime's driver
    /// delivers them afterwards: they need not be read on this one.
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            quit: signal(SignalKind::quit())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal, as Pingora's watcher names it.
    async fn recv(&mut self) -> ShutdownSignal {
        tokio::select! {
            _ = self.quit.recv() => ShutdownSignal::GracefulUpgrade,
            _ = self.terminate.recv() => ShutdownSignal::GracefulTerminate,
            _ = self.interrupt.recv() => ShutdownSignal::FastShutdown,
        }
    }
}

impl GatewayHandle {
    /// Starts the gateway: the Pingora server on its own thread, and a side runtime with the
    /// refreshers, the admin listener and (when `config_path` is given) hot reload on file change
    /// and SIGHUP. Returns once the admin listener is bound.
    pub fn start(
        config: Config,
        secrets: Secrets,
        config_path: Option<PathBuf>,
    ) -> Result<Self, GatewayError> {
        Self::start_with(config, secrets, config_path, StartMode::Fresh)
    }

    /// [`GatewayHandle::start`], fresh or as the new process of a graceful upgrade. In
    /// [`StartMode::Upgrade`] this blocks until the sockets arrive; when none arrive within
    /// Pingora's limit (about 6 s), the process exits with status 1 (Pingora's behaviour), so
    /// a failed upgrade never leaves two half-started gateways behind.
    pub fn start_with(
        config: Config,
        secrets: Secrets,
        config_path: Option<PathBuf>,
        mode: StartMode,
    ) -> Result<Self, GatewayError> {
        // Certificates are checked first: before any thread starts, and in an upgrade before the
        // sockets arrive (from then on the old process stops accepting 5 s later, whatever
        // happens here).
        for l in &config.listeners {
            check_listener_tls(l)?;
        }
        // Each address must be free for a fresh start. Pingora would retry a busy one for 30 s
        // on its own thread and then give up, leaving a process without that listener. (In an
        // upgrade the running process holds them, by design.)
        if mode == StartMode::Fresh {
            for l in &config.listeners {
                std::net::TcpListener::bind(l.address).map_err(|source| GatewayError::Listen {
                    address: l.address,
                    source,
                })?;
            }
        }
        let gateway = Gateway::new(&config, &secrets)?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

        // Side runtime: refreshers, admin, reload.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(GatewayError::system("runtime"))?;
        // Before any listener binds: from the moment the proxy port answers, a signal stops the
        // gateway as it should (see `Signals`).
        #[cfg(unix)]
        let signals = {
            let _in_runtime = rt.enter();
            Signals::listen().map_err(GatewayError::system("signal handlers"))?
        };
        let (admin_tx, admin_rx) = std::sync::mpsc::channel();
        let side = {
            let gateway = gateway.clone();
            let admin = config.admin.as_ref().map(|a| a.address);
            let stop_rx = stop_rx.clone();
            std::thread::Builder::new()
                .name("proofgate-side".into())
                .spawn(move || {
                    rt.block_on(side_tasks(
                        gateway,
                        admin,
                        config_path,
                        mode,
                        stop_rx,
                        admin_tx,
                    ));
                })
                .map_err(GatewayError::system("side thread"))?
        };
        let admin_addr = admin_rx
            .recv()
            .map_err(|_| GatewayError::SideRuntimeStopped)??;

        let conf = ServerConf {
            threads: config.server.threads.max(1),
            work_stealing: config.server.work_stealing,
            upstream_keepalive_pool_size: config.server.upstream_keepalive_pool_size,
            grace_period_seconds: Some(config.server.grace_period.as_secs()),
            graceful_shutdown_timeout_seconds: Some(
                config.server.graceful_shutdown_timeout.as_secs(),
            ),
            upgrade_sock: config.server.upgrade_sock.to_string_lossy().into_owned(),
            ..ServerConf::default()
        };
        let opt = Opt {
            upgrade: mode == StartMode::Upgrade,
            ..Opt::default()
        };
        let mut server = Server::new_with_opt_and_conf(opt, conf);
        if mode == StartMode::Upgrade {
            tracing::info!(
                upgrade_sock = %config.server.upgrade_sock.display(),
                "waiting for the running proofgate to hand over its listening sockets (send it SIGQUIT)"
            );
        }
        server.bootstrap();
        let proxy_addrs = add_proxy_services(&mut server, &config, &gateway)?;
        let upgrade_sock = config.server.upgrade_sock.clone();
        let watched = gateway.clone();
        let pingora = std::thread::Builder::new()
            .name("proofgate-pingora".into())
            .spawn(move || {
                server.run(RunArgs {
                    shutdown_signal: Box::new(WatchShutdown {
                        stop: stop_rx,
                        upgrade_sock,
                        gateway: watched,
                        #[cfg(unix)]
                        signals: Arc::new(tokio::sync::Mutex::new(signals)),
                    }),
                })
            })
            .map_err(GatewayError::system("proxy thread"))?;
        // Pingora binds the listeners on its own thread; return (and report ready) only once
        // they accept, and turn a listener that cannot be bound into an error here.
        let plain: Vec<SocketAddr> = config
            .listeners
            .iter()
            .filter(|l| l.tls.is_none())
            .map(|l| l.address)
            .collect();
        if let Err(e) = wait_listening(&plain, &pingora) {
            let _ = stop_tx.send(true);
            let _ = pingora.join();
            let _ = side.join();
            return Err(e);
        }
        gateway.listening.store(true, Ordering::Relaxed);
        Ok(Self {
            gateway,
            proxy_addrs,
            admin_addr,
            stop: stop_tx,
            pingora: Some(pingora),
            side: Some(side),
        })
    }

    /// Stops the server and the side runtime and waits for both.
    pub fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.pingora.take() {
            let _ = t.join();
        }
        if let Some(t) = self.side.take() {
            let _ = t.join();
        }
    }

    /// Blocks until the server stops. An error if it stopped by panicking (the process should
    /// then exit with a failure status, not 0).
    pub fn wait(mut self) -> Result<(), GatewayError> {
        match self.pingora.take().map(std::thread::JoinHandle::join) {
            Some(Err(_)) => Err(GatewayError::ServerCrashed),
            _ => Ok(()),
        }
    }
}

async fn side_tasks(
    gateway: Arc<Gateway>,
    admin: Option<SocketAddr>,
    config_path: Option<PathBuf>,
    mode: StartMode,
    stop: tokio::sync::watch::Receiver<bool>,
    ready: std::sync::mpsc::Sender<Result<Option<SocketAddr>, GatewayError>>,
) {
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(gateway.gate.keys().clone().run(stopped(stop.clone())));
    tokio::spawn(gateway.gate.revocation().clone().run(stopped(stop.clone())));
    if let Some(cluster) = &gateway.cluster {
        // Events other replicas applied, applied here in the same order rules as a webhook.
        let applier = gateway.clone();
        let apply = move |event: &proofgate_core::stepup::PushedEvent| {
            let gate = &applier.gate;
            gate.step_up_protocol().apply_event(gate.enforcer(), event);
        };
        tokio::spawn(cluster.clone().run(apply, stopped(stop.clone())));
    }
    if mode == StartMode::Upgrade {
        // Take no traffic over before the data to decide it is here (bounded).
        let start = tokio::time::Instant::now();
        while !gateway.warm() && start.elapsed() < WARM_UP_LIMIT {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if gateway.warm() {
            tracing::info!(took = ?start.elapsed(), "issuer data loaded; ready to take the sockets over");
        } else {
            tracing::warn!(waited = ?WARM_UP_LIMIT, problems = ?gateway.data_problems(), "issuer data not loaded yet; taking the sockets over anyway");
        }
    }
    let admin_addr = match admin {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let bound = listener.local_addr().ok();
                tokio::spawn(crate::admin::serve(
                    listener,
                    gateway.clone(),
                    stopped(stop.clone()),
                ));
                bound
            }
            Err(e) if mode == StartMode::Upgrade && e.kind() == std::io::ErrorKind::AddrInUse => {
                // The old process serves the admin address until it exits.
                tracing::info!(%addr, "admin address still held by the old process; taking it when it lets go");
                tokio::spawn(admin_when_free(addr, gateway.clone(), stop.clone()));
                Some(addr)
            }
            Err(e) => {
                let _ = ready.send(Err(GatewayError::Admin {
                    address: addr,
                    source: e,
                }));
                return;
            }
        },
        None => None,
    };
    tokio::spawn(health_checks(gateway.clone(), stopped(stop.clone())));
    if let Some(path) = config_path {
        tokio::spawn(watch_config(path, gateway.clone(), stopped(stop.clone())));
    }
    let _ = ready.send(Ok(admin_addr));
    stopped(stop).await;
    // Give in-flight admin responses a moment.
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// The proxy listeners as Pingora services: one for the plain HTTP/1.1 and TLS listeners, one
/// for the plain listeners with `h2c = true` (Pingora's cleartext HTTP/2 is a setting of the
/// service, not of a listener). A TLS listener offers HTTP/2 by ALPN (`h2`, then `http/1.1`)
/// unless its `h2 = false`. Returns the listeners' addresses, in file order.
fn add_proxy_services(
    server: &mut Server,
    config: &Config,
    gateway: &Arc<Gateway>,
) -> Result<Vec<SocketAddr>, GatewayError> {
    let service = |h2c: bool| {
        let mut app = pingora::proxy::http_proxy(
            &server.configuration,
            crate::proxy::Proxy::new(gateway.clone()),
        );
        if h2c {
            let mut options = pingora::apps::HttpServerOptions::default();
            options.h2c = true;
            app.server_options = Some(options);
        }
        let name = if h2c {
            "Pingora HTTP Proxy Service (h2c)"
        } else {
            "Pingora HTTP Proxy Service"
        };
        pingora::services::listening::Service::new(
            name.into(),
            IdleCloseDelay {
                app: Arc::new(app),
                delay: IDLE_CLOSE_DELAY,
            },
        )
    };
    let mut plain = service(false);
    let mut h2c = config
        .listeners
        .iter()
        .any(|l| l.h2c)
        .then(|| service(true));
    let mut proxy_addrs = Vec::new();
    for l in &config.listeners {
        let addr = l.address.to_string();
        match (&l.tls, h2c.as_mut()) {
            (None, Some(h2c)) if l.h2c => h2c.add_tcp(&addr),
            (None, _) => plain.add_tcp(&addr),
            (Some(tls), _) => {
                let error = |message: String| GatewayError::Tls {
                    listener: addr.clone(),
                    message,
                };
                let mut settings = match &tls.client_ca {
                    None => pingora::listeners::tls::TlsSettings::intermediate(
                        &tls.cert_path.to_string_lossy(),
                        &tls.key_path.to_string_lossy(),
                    )
                    .map_err(|e| error(e.to_string()))?,
                    // mTLS: client certificates verified against the CA, and the delegates
                    // their URI SANs name attached to the connection (delegation binding).
                    Some(ca) => {
                        let mut settings = pingora::listeners::tls::TlsSettings::with_callbacks(
                            Box::new(crate::tls::ClientCertDelegates),
                        )
                        .map_err(|e| error(e.to_string()))?;
                        settings
                            .set_certificate_chain_file(&tls.cert_path.to_string_lossy())
                            .map_err(|e| error(e.to_string()))?;
                        settings
                            .set_private_key_file(&tls.key_path.to_string_lossy())
                            .map_err(|e| error(e.to_string()))?;
                        settings.set_client_cert_verifier(
                            crate::tls::client_verifier(ca, tls.client_auth_required)
                                .map_err(error)?,
                        );
                        settings
                    }
                };
                if tls.h2 {
                    settings.enable_h2();
                }
                plain.add_tls_with_settings(&addr, None, settings);
            }
        }
        proxy_addrs.push(l.address);
    }
    if config.listeners.iter().any(|l| !l.h2c) {
        server.add_service(plain);
    }
    if let Some(h2c) = h2c {
        server.add_service(h2c);
    }
    Ok(proxy_addrs)
}

/// How long after the proxy listeners stop accepting (at once after `SIGTERM`, 5 s after
/// `SIGQUIT`) the connections without a request in progress are closed. Pingora closes them the
/// moment its listeners stop, and among them are connections accepted an instant before, whose
/// first request was still on its way: that client's request met a closed connection. In this
/// time it arrives and is answered (with `Connection: close`), and so is a request on a
/// kept-alive connection. A connection that stays idle all along is closed after it; a request
/// sent at that very moment still fails, which no server can prevent (the client may retry it).
/// Within the grace period, which the server waits in any case.
const IDLE_CLOSE_DELAY: Duration = Duration::from_secs(1);

/// Pingora's HTTP proxy app (`app`), with its shutdown, which closes the connections waiting for
/// a request, put off by `delay` (see [`IDLE_CLOSE_DELAY`]).
struct IdleCloseDelay<A> {
    app: Arc<A>,
    delay: Duration,
}

#[async_trait::async_trait]
impl<A: pingora::apps::HttpServerApp + Send + Sync + 'static> pingora::apps::HttpServerApp
    for IdleCloseDelay<A>
{
    async fn process_new_http(
        self: &Arc<Self>,
        session: pingora::protocols::http::ServerSession,
        shutdown: &pingora::server::ShutdownWatch,
    ) -> Option<pingora::apps::ReusedHttpStream> {
        self.app.process_new_http(session, shutdown).await
    }

    fn h2_options(&self) -> Option<pingora::protocols::http::v2::server::H2Options> {
        self.app.h2_options()
    }

    fn server_options(&self) -> Option<&pingora::apps::HttpServerOptions> {
        self.app.server_options()
    }

    /// Called once the listeners have stopped accepting.
    async fn http_cleanup(&self) {
        tokio::time::sleep(self.delay).await;
        self.app.http_cleanup().await;
    }

    async fn process_custom_session(
        self: Arc<Self>,
        stream: pingora::protocols::Stream,
        shutdown: &pingora::server::ShutdownWatch,
    ) -> Option<pingora::protocols::Stream> {
        self.app
            .clone()
            .process_custom_session(stream, shutdown)
            .await
    }
}

/// Longest [`GatewayHandle::start`] waits for Pingora to accept on its listeners.
const LISTEN_WAIT: Duration = Duration::from_secs(10);

/// Waits until a TCP connection to each of `addrs` (plain listeners; the unspecified address is
/// probed on loopback) is accepted. A connection opened and closed without a request is not
/// logged by Pingora; TLS listeners are not probed, as a connection without a handshake would
/// be logged as an error. Fails if the Pingora thread ends first, or if a listener does not
/// accept within [`LISTEN_WAIT`].
fn wait_listening(
    addrs: &[SocketAddr],
    pingora: &std::thread::JoinHandle<()>,
) -> Result<(), GatewayError> {
    let deadline = std::time::Instant::now() + LISTEN_WAIT;
    for addr in addrs {
        let mut probe = *addr;
        if probe.ip().is_unspecified() {
            probe.set_ip(match probe {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        while std::net::TcpStream::connect_timeout(&probe, Duration::from_millis(200)).is_err() {
            if pingora.is_finished() {
                return Err(GatewayError::NotListening(format!(
                    "the proxy server stopped while starting; is {addr} free to listen on? (see the log)"
                )));
            }
            if std::time::Instant::now() > deadline {
                // Pingora's service thread panics when it cannot bind (see the log); its server
                // thread goes on, so this is how that shows here.
                return Err(GatewayError::NotListening(format!(
                    "the proxy listener {addr} does not accept connections after {}s; is the \
                     address free and this machine's? (see the log)",
                    LISTEN_WAIT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(())
}

/// Binds `addr` as soon as it is free (the old process of an upgrade exits), then serves admin.
async fn admin_when_free(
    addr: SocketAddr,
    gateway: Arc<Gateway>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                tracing::info!(%addr, "admin listener bound");
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                crate::admin::serve(listener, gateway, stopped).await;
                return;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
            Err(e) => {
                tracing::error!(%addr, error = %e, "admin listener cannot be bound");
                return;
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

//! Building a gateway from a configuration and running it: the Pingora server on the calling
//! thread, and a side runtime for the background refreshers, the admin listener and hot reload.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use pingora::http::RequestHeader;
use pingora::lb::health_check::HttpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use proofgate_config::Config;
use proofgate_config::Secrets;
use proofgate_core::gate::{Gate, GateBuilder};
use proofgate_core::routes::RouteTable;
use proofgate_core::stepup::StepUpConfig;

use crate::metrics::Metrics;

/// One upstream cluster.
pub struct UpstreamPool {
    /// Round-robin over the configured addresses.
    pub lb: LoadBalancer<RoundRobin>,
    /// TLS to the upstream, with this SNI.
    pub tls: Option<String>,
    /// Whether the upstream's certificate is verified (with TLS).
    pub verify_cert: bool,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout.
    pub read_timeout: Duration,
    /// How often backends are health-checked (`None`: never; all count as healthy).
    pub health_check_interval: Option<Duration>,
}

/// What hot reload replaces: routes, policies and upstreams.
pub struct Live {
    /// The routes and the default policy.
    pub routes: RouteTable,
    /// Policies by name (for step-up starts).
    pub policies: HashMap<String, Arc<proofgate_core::Policy>>,
    /// Upstreams by name.
    pub upstreams: HashMap<String, Arc<UpstreamPool>>,
    /// Whether the token is removed before forwarding.
    pub strip_token: bool,
}

impl Live {
    /// Builds the reloadable part of a configuration.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let mut upstreams = HashMap::new();
        for u in &config.upstreams {
            let mut lb =
                LoadBalancer::<RoundRobin>::try_from_iter(u.addresses.iter().map(String::as_str))
                    .map_err(|e| format!("upstream {}: {e}", u.name))?;
            if let Some(hc) = &u.health_check {
                let sni = u.tls.as_ref().map(|t| t.sni.as_str());
                let mut check = HttpHealthCheck::new(sni.unwrap_or("localhost"), sni.is_some());
                let mut req = RequestHeader::build("GET", hc.path.as_bytes(), None)
                    .map_err(|e| format!("upstream {} health check: {e}", u.name))?;
                req.insert_header("Host", sni.unwrap_or("localhost"))
                    .map_err(|e| format!("upstream {} health check: {e}", u.name))?;
                check.req = req;
                check.peer_template.options.connection_timeout = Some(u.connect_timeout);
                check.peer_template.options.read_timeout = Some(u.read_timeout);
                lb.set_health_check(Box::new(check));
            }
            upstreams.insert(
                u.name.clone(),
                Arc::new(UpstreamPool {
                    lb,
                    tls: u.tls.as_ref().map(|t| t.sni.clone()),
                    verify_cert: u.tls.as_ref().is_none_or(|t| t.verify),
                    connect_timeout: u.connect_timeout,
                    read_timeout: u.read_timeout,
                    health_check_interval: u.health_check.as_ref().map(|h| h.interval),
                }),
            );
        }
        Ok(Self {
            routes: config.routes.clone(),
            policies: config
                .policies
                .iter()
                .map(|p| (p.name.clone(), p.clone()))
                .collect(),
            upstreams,
            strip_token: config.identity_headers.strip_token,
        })
    }
}

/// Everything a request needs, shared by all of Pingora's threads.
pub struct Gateway {
    /// The core's gate: every decision and step-up answer is its.
    pub gate: Gate,
    /// Routes, policies and upstreams (hot-reloaded).
    pub live: ArcSwap<Live>,
    /// Metrics.
    pub metrics: Metrics,
    /// Whether the proxy listeners accept connections (set once by [`GatewayHandle::start`]).
    pub listening: AtomicBool,
    /// Whether the server is stopping (set once, when a shutdown signal is acted on); see
    /// [`Gateway::draining`].
    draining: AtomicBool,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds the gateway's state from a validated configuration and the secrets: the core's
    /// [`GateBuilder`], with the same settings and fallbacks as the tower layer's.
    pub fn new(config: &Config, secrets: &Secrets) -> Result<Arc<Self>, String> {
        let s = &config.step_up;
        let mut step_up = StepUpConfig::new(Vec::new());
        step_up.prefix = s.prefix.clone();
        step_up.state_ttl = s.state_ttl;
        step_up.state_cookie = s.state_cookie.clone();
        step_up.proof_cookie = s.cookie_name.clone();
        step_up.secure_cookies = s.cookie_secure;
        step_up.public_url = s.public_url.clone();
        // The hosts routes name are this site's own: a start may return to them.
        step_up.allowed_hosts = s
            .allowed_hosts
            .iter()
            .chain(config.routes.routes().iter().flat_map(|r| r.hosts.iter()))
            .cloned()
            .collect();
        step_up.per_client_per_minute = s.per_client_per_minute;
        step_up.global_per_minute = s.global_per_minute;
        step_up.webhook_secret = secrets
            .webhook_secret
            .as_ref()
            .map(|w| w.expose().as_bytes().to_vec());
        let gate = GateBuilder::new(&config.issuer.api_base)
            .keys_config(config.keys_config())
            .revocation_config(config.revocation_config())
            .verifier_config(config.verifier_config())
            .token_sources(config.tokens.sources.clone())
            .step_up_config(step_up)
            .cookie_key(
                secrets
                    .cookie_key
                    .as_ref()
                    .map(|k| k.expose().as_bytes().to_vec()),
            )
            .api_key(secrets.api_key.as_ref().map(|k| k.expose().to_string()))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Self {
            gate,
            live: ArcSwap::from_pointee(Live::from_config(config)?),
            metrics: Metrics::new(),
            listening: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        }))
    }

    /// Whether everything a decision may need is loaded: keys and the revocation list fresh and
    /// the status lists fetched at start held and unexpired.
    pub fn warm(&self) -> bool {
        self.data_problems().is_empty()
    }

    /// What keeps a decision from being made on fresh data ([`Gate::readiness`]).
    fn data_problems(&self) -> Vec<&'static str> {
        self.gate.readiness().err().unwrap_or_default()
    }

    /// Whether the proxy listeners accept connections and keys and revocation data are fresh
    /// enough to decide; otherwise what is missing (`starting`, `jwks_stale`,
    /// `revocation_stale`, `status_list_unavailable`).
    pub fn ready(&self) -> Result<(), Vec<&'static str>> {
        let mut problems = Vec::new();
        if !self.listening.load(Ordering::Relaxed) {
            problems.push("starting");
        }
        problems.extend(self.data_problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Whether the server is stopping: from the moment `SIGTERM` or `SIGQUIT` is acted on (or
    /// [`GatewayHandle::shutdown`] is called). From then on every response says
    /// `Connection: close` and its connection is closed after it, so that no client sends another
    /// request on a connection the server is about to close: Pingora closes the connections
    /// waiting for a request once its listeners stop accepting (at once after `SIGTERM`, 5 s
    /// after `SIGQUIT`; here 1 s after that), and a request the client sends at that
    /// moment meets a reset. Pingora itself marks only the requests that *start* after its
    /// listeners stop, not those answered in the 5 s of shared accepting after `SIGQUIT`, nor
    /// those in flight when the signal came.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Replaces routes, policies and upstreams with those of `config`. Issuer and listener
    /// settings need a restart.
    pub fn reload(&self, config: &Config) -> Result<(), String> {
        let live = Live::from_config(config)?;
        self.live.store(Arc::new(live));
        Ok(())
    }
}

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
    signals: tokio::sync::Mutex<Signals>,
}

/// Stops on [`GatewayHandle::shutdown`] (at once) or on the usual Unix signals, as Pingora's
/// own watcher does: `SIGTERM` graceful terminate (in-flight requests finish within the grace
/// period), `SIGINT` fast, `SIGQUIT` graceful upgrade: the listening sockets are sent over
/// `server.upgrade_sock` to a process started with `proofgate run --upgrade` (once its socket
/// there passes [`upgrade_peer_check`]), both accept on them for 5 s, then this one stops
/// accepting and drains like `SIGTERM`. Without a new process to take them (none appears within
/// 5 s, or it fails the check), `SIGQUIT` is logged and this one goes on serving. Whatever stops
/// the server first marks the gateway [`Gateway::draining`].
#[async_trait::async_trait]
impl ShutdownSignalWatch for WatchShutdown {
    async fn recv(&self) -> ShutdownSignal {
        let signal = self.next().await;
        self.gateway.draining.store(true, Ordering::Relaxed);
        signal
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
    ) -> Result<Self, String> {
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
    ) -> Result<Self, String> {
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
                std::net::TcpListener::bind(l.address)
                    .map_err(|e| format!("listener {}: cannot listen there: {e}", l.address))?;
            }
        }
        let gateway = Gateway::new(&config, &secrets)?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

        // Side runtime: refreshers, admin, reload.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        // Before any listener binds: from the moment the proxy port answers, a signal stops the
        // gateway as it should (see `Signals`).
        #[cfg(unix)]
        let signals = {
            let _in_runtime = rt.enter();
            Signals::listen().map_err(|e| format!("signal handlers: {e}"))?
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
                .map_err(|e| e.to_string())?
        };
        let admin_addr = admin_rx
            .recv()
            .map_err(|_| "the side runtime stopped".to_string())??;

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
        let mut service = pingora::services::listening::Service::new(
            "Pingora HTTP Proxy Service".into(),
            IdleCloseDelay {
                app: Arc::new(pingora::proxy::http_proxy(
                    &server.configuration,
                    crate::proxy::Proxy::new(gateway.clone()),
                )),
                delay: IDLE_CLOSE_DELAY,
            },
        );
        let mut proxy_addrs = Vec::new();
        for l in &config.listeners {
            let addr = l.address.to_string();
            match &l.tls {
                None => service.add_tcp(&addr),
                Some(tls) => service
                    .add_tls(
                        &addr,
                        &tls.cert_path.to_string_lossy(),
                        &tls.key_path.to_string_lossy(),
                    )
                    .map_err(|e| format!("TLS listener {addr}: {e}"))?,
            }
            proxy_addrs.push(l.address);
        }
        server.add_service(service);
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
                        signals: tokio::sync::Mutex::new(signals),
                    }),
                })
            })
            .map_err(|e| e.to_string())?;
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
    pub fn wait(mut self) -> Result<(), String> {
        match self.pingora.take().map(std::thread::JoinHandle::join) {
            Some(Err(_)) => {
                Err("the proxy server stopped on an internal error (see the log)".into())
            }
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
    ready: std::sync::mpsc::Sender<Result<Option<SocketAddr>, String>>,
) {
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(gateway.gate.keys().clone().run(stopped(stop.clone())));
    tokio::spawn(gateway.gate.revocation().clone().run(stopped(stop.clone())));
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
                let _ = ready.send(Err(format!("admin listener {addr}: {e}")));
                return;
            }
        },
        None => None,
    };
    tokio::spawn(health_checks(gateway.clone(), stopped(stop.clone())));
    if let Some(path) = config_path {
        tokio::spawn(crate::admin::watch_config(
            path,
            gateway.clone(),
            stopped(stop.clone()),
        ));
    }
    let _ = ready.send(Ok(admin_addr));
    stopped(stop).await;
    // Give in-flight admin responses a moment.
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// How long the process that got `SIGQUIT` waits for the new process's upgrade socket to
/// appear (the new process waits about 6 s for the sockets).
const UPGRADE_PEER_WAIT: Duration = Duration::from_secs(5);

/// The effective user of this process: the owner of `/proc/self` (no `unsafe` for `geteuid`).
#[cfg(unix)]
fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Before the listening sockets go to whatever listens at `path`: it must be a Unix socket owned
/// by `uid` (this process's user), in a directory that others cannot write to (or one with the
/// sticky bit, like `/tmp`, where they cannot remove or replace our socket). Otherwise another
/// local user who got there first — `/tmp` is the default — would receive the gateway's
/// listening sockets and its traffic. Waits up to `wait` for the socket to appear.
#[cfg(unix)]
async fn upgrade_peer_check(path: &Path, uid: Option<u32>, wait: Duration) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Some(uid) = uid else {
        return Err("cannot tell this process's user (no /proc/self)".into());
    };
    let start = tokio::time::Instant::now();
    let meta = loop {
        match std::fs::symlink_metadata(path) {
            Ok(m) => break m,
            Err(_) if start.elapsed() < wait => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(format!("no new process is waiting there ({e})")),
        }
    };
    if !meta.file_type().is_socket() {
        return Err("it is not a Unix socket".into());
    }
    if meta.uid() != uid {
        return Err(format!(
            "the socket belongs to uid {}, not to this process's uid {uid}",
            meta.uid()
        ));
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let dir_meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (others_write, sticky) = (dir_meta.mode() & 0o002 != 0, dir_meta.mode() & 0o1000 != 0);
    if others_write && !sticky {
        return Err(format!(
            "{} is writable by every user without the sticky bit, so the socket could be replaced",
            dir.display()
        ));
    }
    Ok(())
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
) -> Result<(), String> {
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
                return Err(format!(
                    "the proxy server stopped while starting; is {addr} free to listen on? (see the log)"
                ));
            }
            if std::time::Instant::now() > deadline {
                // Pingora's service thread panics when it cannot bind (see the log); its server
                // thread goes on, so this is how that shows here.
                return Err(format!(
                    "the proxy listener {addr} does not accept connections after {}s; is the \
                     address free and this machine's? (see the log)",
                    LISTEN_WAIT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(())
}

/// Loads a TLS listener's certificate chain and key the way Pingora will when the listener
/// starts, so that a missing file, a file without a certificate or key, or a key that does not
/// match the certificate is an error from [`GatewayHandle::start`] (and `proofgate check`).
/// Pingora panics on its own thread instead, leaving a process without its listener. A plain
/// listener passes.
pub fn check_listener_tls(listener: &proofgate_config::Listener) -> Result<(), String> {
    let Some(tls) = &listener.tls else {
        return Ok(());
    };
    check_tls(
        &tls.cert_path.to_string_lossy(),
        &tls.key_path.to_string_lossy(),
    )
    .map_err(|e| format!("TLS listener {}: {e}", listener.address))
}

fn check_tls(cert: &str, key: &str) -> Result<(), String> {
    use pingora::tls::{version, ServerConfig};
    let (certs, private_key) = match pingora::tls::load_certs_and_key_files(cert, key) {
        Ok(Some(pair)) => pair,
        Ok(None) => {
            return Err(format!(
                "no certificate in {cert} or no private key (PKCS#1, PKCS#8 or SEC1) in {key}"
            ))
        }
        Err(e) => return Err(format!("cannot read {cert} or {key}: {e}")),
    };
    pingora::tls::install_default_crypto_provider();
    ServerConfig::builder_with_protocol_versions(&[&version::TLS12, &version::TLS13])
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| format!("certificate {cert} and key {key} unusable: {e}"))?;
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

/// Runs each upstream's health check on its interval; a backend that fails is skipped by
/// selection until it passes again. Reads the live upstreams each round, so reloads apply.
async fn health_checks(gateway: Arc<Gateway>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut last: HashMap<String, std::time::Instant> = HashMap::new();
    loop {
        let live = gateway.live.load_full();
        for (name, pool) in &live.upstreams {
            let Some(interval) = pool.health_check_interval else {
                continue;
            };
            if last.get(name).is_some_and(|t| t.elapsed() < interval) {
                continue;
            }
            last.insert(name.clone(), std::time::Instant::now());
            pool.lb.backends().run_health_check(true).await;
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A temporary directory with `mode`, removed on drop.
    fn dir(mode: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    const WAIT: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn upgrade_peer_must_be_our_own_socket_in_a_safe_directory() {
        let uid = own_uid();
        assert!(uid.is_some(), "/proc/self has an owner");

        // Our socket in a private directory, and in a sticky world-writable one like /tmp.
        for (name, mode) in [("private", 0o700), ("sticky", 0o1777)] {
            let d = dir(mode);
            let sock = d.path().join("upgrade.sock");
            let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
            assert_eq!(upgrade_peer_check(&sock, uid, WAIT).await, Ok(()), "{name}");
            // The same socket is refused to a process of another user.
            let other = uid.map(|u| u.wrapping_add(1));
            let err = upgrade_peer_check(&sock, other, WAIT).await.unwrap_err();
            assert!(err.contains("belongs to uid"), "{err}");
        }

        // A world-writable directory without the sticky bit: the socket could be swapped.
        let d = dir(0o777);
        let sock = d.path().join("upgrade.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let err = upgrade_peer_check(&sock, uid, WAIT).await.unwrap_err();
        assert!(err.contains("writable by every user"), "{err}");

        // Nothing there (no new process), or not a socket.
        let d = dir(0o700);
        let err = upgrade_peer_check(&d.path().join("upgrade.sock"), uid, WAIT)
            .await
            .unwrap_err();
        assert!(err.contains("no new process"), "{err}");
        std::fs::write(d.path().join("file"), b"x").unwrap();
        let err = upgrade_peer_check(&d.path().join("file"), uid, WAIT)
            .await
            .unwrap_err();
        assert!(err.contains("not a Unix socket"), "{err}");

        // Without a known user nothing is handed over.
        assert!(upgrade_peer_check(&d.path().join("x"), None, WAIT)
            .await
            .is_err());
    }
}

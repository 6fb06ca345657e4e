//! The gateway's shared state, read by every Pingora thread: the core's gate, the hot-reloaded
//! routes, policies and upstreams, and the metrics. A leaf: it imports nothing from the process
//! lifecycle ([`crate::server`]) or the proxy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use pingora::http::RequestHeader;
use pingora::lb::health_check::HttpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use proofgate_config::{Config, FaviconMode, LogLevel, Secrets, UpstreamProtocol};
use proofgate_core::gate::{Gate, GateBuilder};
use proofgate_core::routes::RouteTable;
use proofgate_core::stepup::StepUpConfig;

use crate::error::GatewayError;
use crate::metrics::Metrics;

fn upstream_error(name: &str, e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Upstream {
        name: name.to_owned(),
        message: e.to_string(),
    }
}

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
    /// The HTTP version spoken to it.
    pub protocol: UpstreamProtocol,
    /// Longest an upgraded connection to it may go without a byte either way.
    pub websocket_idle_timeout: Duration,
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
    /// The host patterns the routes name: this site's own names, which a step-up may return
    /// to (beside `step_up.allowed_hosts`); follows reloads.
    pub hosts: Vec<String>,
    /// Whether `GET /favicon.ico` is answered `404` at once, without a policy decision
    /// (`server.favicon = "not_found"` and no route names that path itself).
    pub favicon_not_found: bool,
    /// The decision API for other proxies (`[forward_auth]`); follows reloads.
    pub forward_auth: proofgate_config::ForwardAuth,
}

impl Live {
    /// Builds the reloadable part of a configuration.
    pub fn from_config(config: &Config) -> Result<Self, GatewayError> {
        let mut upstreams = HashMap::new();
        for u in &config.upstreams {
            let mut lb =
                LoadBalancer::<RoundRobin>::try_from_iter(u.addresses.iter().map(String::as_str))
                    .map_err(|e| upstream_error(&u.name, e))?;
            if let Some(hc) = &u.health_check {
                let sni = u.tls.as_ref().map(|t| t.sni.as_str());
                let mut check = HttpHealthCheck::new(sni.unwrap_or("localhost"), sni.is_some());
                let health = |e| upstream_error(&u.name, format!("health check: {e}"));
                let mut req =
                    RequestHeader::build("GET", hc.path.as_bytes(), None).map_err(health)?;
                req.insert_header("Host", sni.unwrap_or("localhost"))
                    .map_err(health)?;
                check.req = req;
                check.peer_template.options.connection_timeout = Some(u.connect_timeout);
                check.peer_template.options.read_timeout = Some(u.read_timeout);
                set_protocol(&mut check.peer_template, u.protocol);
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
                    protocol: u.protocol,
                    websocket_idle_timeout: u.websocket_idle_timeout,
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
            hosts: config
                .routes
                .routes()
                .iter()
                .flat_map(|r| r.hosts.iter().cloned())
                .collect(),
            favicon_not_found: config.server.favicon == FaviconMode::NotFound
                && !config.routes.routes().iter().any(names_favicon),
            forward_auth: config.forward_auth.clone(),
        })
    }
}

/// Sets the HTTP versions a peer is spoken to in (Pingora's ALPN setting, which also decides
/// the version over plain TCP): `h1` HTTP/1.1 only; `h2` HTTP/2 preferred by ALPN, HTTP/1.1
/// when the upstream picks it; `h2c` HTTP/2 only, with prior knowledge.
pub fn set_protocol(peer: &mut pingora::upstreams::peer::HttpPeer, protocol: UpstreamProtocol) {
    match protocol {
        UpstreamProtocol::H1 => peer.options.set_http_version(1, 1),
        UpstreamProtocol::H2 => peer.options.set_http_version(2, 1),
        UpstreamProtocol::H2c => peer.options.set_http_version(2, 2),
    }
}

/// The path browsers ask for on every page view.
pub(crate) const FAVICON_PATH: &str = "/favicon.ico";

/// Whether `route` names [`FAVICON_PATH`] itself (a prefix pattern of exactly that path), not
/// only through a wildcard or a shorter prefix.
fn names_favicon(route: &proofgate_core::routes::Route) -> bool {
    !route.path.is_glob()
        && route
            .path
            .as_str()
            .trim_end_matches('/')
            .eq_ignore_ascii_case(FAVICON_PATH)
}

/// The core's [`GateBuilder`] for a configuration, without the secrets (the step-up cookie
/// key, API key and webhook secret are [`Gateway::new`]'s to add): issuer, keys, revocation,
/// verifier, token sources and step-up settings. `proofgate verify --path` decides with a gate
/// built from it, so that it answers as the gateway would.
pub fn gate_builder(config: &Config) -> GateBuilder {
    let s = &config.step_up;
    let mut step_up = StepUpConfig::new(Vec::new());
    step_up.prefix = s.prefix.clone();
    step_up.state_ttl = s.state_ttl;
    step_up.state_cookie = s.state_cookie.clone();
    step_up.proof_cookie = s.cookie_name.clone();
    step_up.secure_cookies = s.cookie_secure;
    step_up.public_url = s.public_url.clone();
    // (The routes' own hosts are allowed too: `Live::hosts`, which follows reloads.)
    step_up.allowed_hosts = s.allowed_hosts.clone();
    step_up.per_client_per_minute = s.per_client_per_minute;
    step_up.global_per_minute = s.global_per_minute;
    GateBuilder::new(&config.issuer.api_base)
        .keys_config(config.keys_config())
        .revocation_config(config.revocation_config())
        .verifier_config(config.verifier_config())
        .token_sources(config.tokens.sources.clone())
        .step_up_config(step_up)
        .approvals_config(config.approvals_config())
}

/// The shared store of `[cluster]`, with the connection URL from the secrets.
fn cluster_store(
    config: &Config,
    secrets: &Secrets,
) -> Result<Option<Arc<proofgate_core::cluster::Cluster>>, GatewayError> {
    use proofgate_core::cluster::{Cluster, ClusterConfig};
    let Some(settings) = &config.cluster else {
        return Ok(None);
    };
    let url = settings.connection_url(secrets).ok_or_else(|| {
        GatewayError::Cluster("no Redis URL: set cluster.redis_url or PROOFGATE_REDIS_URL".into())
    })?;
    let mut c = ClusterConfig::new(url.expose());
    c.key_prefix = settings.key_prefix.clone();
    c.connect_timeout = settings.connect_timeout;
    c.command_timeout = settings.command_timeout;
    Cluster::new(c)
        .map(Some)
        .map_err(|e| GatewayError::Cluster(e.to_string()))
}

/// Everything a request needs, shared by all of Pingora's threads.
pub struct Gateway {
    /// The core's gate: every decision and step-up answer is its.
    pub gate: Gate,
    /// Routes, policies and upstreams (hot-reloaded).
    pub live: ArcSwap<Live>,
    /// Metrics.
    pub metrics: Metrics,
    /// Whether the proxy listeners accept connections (set once by [`GatewayHandle::start`](crate::server::GatewayHandle::start)).
    pub listening: AtomicBool,
    /// Whether the server is stopping (set once, when a shutdown signal is acted on); see
    /// [`Gateway::draining`].
    pub(crate) draining: AtomicBool,
    /// The configuration the process started with: what the settings a reload cannot apply
    /// still are.
    pub(crate) started_with: Config,
    /// The settings whose change in the file awaits a restart, as of the last reload.
    pub(crate) restart_needed: ArcSwap<Vec<&'static str>>,
    /// The log level in effect (`logging.level`, which a reload applies).
    pub(crate) log_level: Mutex<LogLevel>,
    /// The store the replicas share (`[cluster]`); its tasks run on the side runtime.
    pub cluster: Option<Arc<proofgate_core::cluster::Cluster>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds the gateway's state from a validated configuration and the secrets: the core's
    /// [`GateBuilder`] ([`gate_builder`]), with the same settings and fallbacks as the tower
    /// layer's.
    pub fn new(config: &Config, secrets: &Secrets) -> Result<Arc<Self>, GatewayError> {
        let mut builder = gate_builder(config);
        builder.step_up_config_mut().webhook_secret = secrets
            .webhook_secret
            .as_ref()
            .map(|w| w.expose().as_bytes().to_vec());
        let cluster = cluster_store(config, secrets)?;
        if let Some(c) = &cluster {
            builder = builder
                .shared_budget(c.clone())
                .event_sink(c.clone())
                .shared_once(c.clone())
                .ticket_ledger(Arc::new(proofgate_core::cluster::SharedTicketLedger::new(
                    c.clone(),
                )));
        }
        let gate = builder
            .cookie_key(
                secrets
                    .cookie_key
                    .as_ref()
                    .map(|k| k.expose().as_bytes().to_vec()),
            )
            .api_key(secrets.api_key.as_ref().map(|k| k.expose().to_string()))
            .pages(config.pages.clone())
            .build()?;
        let metrics = Metrics::new();
        metrics.init_decisions(&config.routes);
        metrics.init_upstreams(config.upstreams.iter().map(|u| u.name.as_str()));
        if cluster.is_some() {
            metrics.init_cluster();
        }
        Ok(Arc::new(Self {
            gate,
            live: ArcSwap::from_pointee(Live::from_config(config)?),
            metrics,
            listening: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            started_with: config.clone(),
            restart_needed: ArcSwap::from_pointee(Vec::new()),
            log_level: Mutex::new(config.logging.level),
            cluster,
        }))
    }

    /// How the shared store is doing, for `/readyz` (a detail, never a reason to be unready):
    /// `None` without `[cluster]`.
    pub fn cluster_status(&self) -> Option<&'static str> {
        self.cluster.as_ref().map(|c| {
            if c.is_connected() {
                "connected"
            } else {
                "unreachable (local fallback)"
            }
        })
    }

    /// Whether everything a decision may need is loaded: keys and the revocation list fresh and
    /// the status lists fetched at start held and unexpired.
    pub fn warm(&self) -> bool {
        self.data_problems().is_empty()
    }

    /// What keeps a decision from being made on fresh data ([`Gate::readiness`]).
    pub(crate) fn data_problems(&self) -> Vec<&'static str> {
        self.gate.readiness().err().unwrap_or_default()
    }

    /// Whether the proxy listeners accept connections and keys and revocation data are fresh
    /// enough to decide, and the gateway is not stopping; otherwise what is missing
    /// (`starting`, `draining`, `jwks_stale`,
    /// `revocation_stale`, `status_list_unavailable`).
    pub fn ready(&self) -> Result<(), Vec<&'static str>> {
        let mut problems = Vec::new();
        if !self.listening.load(Ordering::Relaxed) {
            problems.push("starting");
        }
        if self.draining() {
            // A load balancer stops sending new connections while the in-flight ones finish.
            problems.push("draining");
        }
        problems.extend(self.data_problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Whether the server is stopping: from the moment `SIGTERM` or `SIGQUIT` is acted on (or
    /// [`GatewayHandle::shutdown`](crate::server::GatewayHandle::shutdown) is called). From then on every response says
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

    /// Replaces routes, policies, upstreams, `identity_headers.strip_token`, `server.favicon`
    /// and `[forward_auth]` with those of `config`. Returns the settings in which `config`
    /// differs from what the process started with and that only a restart applies
    /// ([`crate::reload::restart_only_changes`]; the log level is [`crate::reload::reload`]'s);
    /// they are kept for `/readyz` and `proofgate_config_restart_required`.
    pub fn reload(&self, config: &Config) -> Result<Vec<&'static str>, GatewayError> {
        let live = Live::from_config(config)?;
        self.metrics.init_decisions(&config.routes);
        self.metrics
            .init_upstreams(config.upstreams.iter().map(|u| u.name.as_str()));
        self.live.store(Arc::new(live));
        Ok(crate::reload::restart_only_changes(
            &self.started_with,
            config,
        ))
    }

    /// Records the settings awaiting a restart (empty: none) for `/readyz` and the metric.
    pub(crate) fn set_restart_needed(&self, settings: Vec<&'static str>) {
        self.metrics
            .restart_required
            .set(i64::from(!settings.is_empty()));
        self.restart_needed.store(Arc::new(settings));
    }

    /// The settings whose change in the file awaits a restart (the old values keep serving).
    pub fn restart_needed(&self) -> Arc<Vec<&'static str>> {
        self.restart_needed.load_full()
    }
}

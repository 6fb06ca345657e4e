//! The typed runtime configuration the gateway runs on, produced by
//! [`ConfigFile::validate`](crate::file::ConfigFile::validate).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proofgate_core::keys::KeysConfig;
use proofgate_core::policy::Policy;
use proofgate_core::revocation::RevocationConfig;
use proofgate_core::routes::RouteTable;
use proofgate_core::tokens::TokenSource;
use proofgate_core::verify::VerifierConfig;

use crate::error::{ConfigError, ConfigErrors, ErrorKind};
use crate::file::ConfigFile;

/// Largest configuration file [`Config::load`] reads.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Proxy listeners; at least one.
    pub listeners: Vec<Listener>,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`). Defaults to none.
    pub admin: Option<AdminListener>,
    /// Pingora server settings.
    pub server: ServerSettings,
    /// Upstream clusters, by unique name.
    pub upstreams: Vec<Upstream>,
    /// The token issuer and how its keys and revocation data are kept fresh.
    pub issuer: IssuerSettings,
    /// Where tokens are read and how they are cached.
    pub tokens: TokenSettings,
    /// Every policy, by unique name, in file order.
    pub policies: Vec<Arc<Policy>>,
    /// The routes in order, the default policy and the default upstream.
    pub routes: RouteTable,
    /// Identity headers sent upstream.
    pub identity_headers: IdentityHeaders,
    /// Step-up endpoints.
    pub step_up: StepUpSettings,
    /// Logging.
    pub logging: Logging,
    /// The pages browsers get (branding, template), ready to render.
    pub pages: proofgate_core::pages::Pages,
    /// The decision API for other proxies. Defaults to disabled.
    pub forward_auth: ForwardAuth,
    /// The Redis the replicas share (`[cluster]`). Defaults to none: every replica keeps its
    /// revocation overlay, start budgets and tickets to itself.
    pub cluster: Option<ClusterSettings>,
    /// Human approvals (`[approvals]`).
    pub approvals: ApprovalsSettings,
}

impl Config {
    /// Parses and validates a configuration. Every problem is reported, each with its location;
    /// TOML syntax errors carry their line and column.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigErrors> {
        ConfigFile::from_toml_str(text)?.validate()
    }

    /// Reads, parses and validates the file at `path` (at most [`MAX_FILE_BYTES`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigErrors> {
        ConfigFile::load(path)?.validate()
    }

    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<&Arc<Policy>> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// The upstream named `name`.
    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// Whether some policy may answer with a step-up (and so needs `PROOF_API_KEY` and
    /// `PROOFGATE_COOKIE_KEY`).
    pub fn uses_step_up(&self) -> bool {
        crate::validate::uses_step_up(
            self.policies
                .iter()
                .chain(std::iter::once(self.routes.default_policy())),
        )
    }

    /// Whether some policy asks for a person's approval (and so needs `PROOF_API_KEY` and
    /// `PROOFGATE_COOKIE_KEY`).
    pub fn uses_approval(&self) -> bool {
        self.policies
            .iter()
            .chain(std::iter::once(self.routes.default_policy()))
            .any(|p| p.approval.is_some())
    }

    /// The core's approvals settings.
    pub fn approvals_config(&self) -> proofgate_core::approval::ApprovalsConfig {
        proofgate_core::approval::ApprovalsConfig {
            ticket_ttl: self.approvals.ticket_ttl,
            max_body_bytes: self.approvals.max_body_bytes,
            poll_interval: self.approvals.poll_interval,
            per_requester_per_minute: self.approvals.per_requester_per_minute,
            global_per_minute: self.approvals.global_per_minute,
            ..Default::default()
        }
    }

    /// The key store's settings.
    pub fn keys_config(&self) -> KeysConfig {
        let i = &self.issuer;
        let mut keys = KeysConfig::new(&i.jwks_url);
        keys.default_max_age = i.jwks_refresh;
        keys.min_refresh = keys.min_refresh.min(i.jwks_refresh);
        keys.max_staleness = i.jwks_max_staleness;
        keys.unknown_kid_cooldown = i.unknown_kid_cooldown;
        keys.fetch_timeout = i.fetch_timeout;
        keys.backoff_max = i.retry_max_delay;
        keys.backoff_initial = keys.backoff_initial.min(i.retry_max_delay);
        keys
    }

    /// The revocation store's settings.
    pub fn revocation_config(&self) -> RevocationConfig {
        let i = &self.issuer;
        let mut revocation = RevocationConfig::new(&i.api_base);
        revocation.list_url = Some(i.revocation_url.clone());
        revocation.prefetch_status_lists = if i.status_list_url.is_empty() {
            Vec::new()
        } else {
            vec![i.status_list_url.clone()]
        };
        revocation.trusted_status_list_origins = i.status_list_origins.clone();
        revocation.list_refresh = i.revocation_refresh;
        revocation.max_staleness = i.revocation_max_staleness;
        revocation.fail_open = i.fail_mode == FailMode::Open;
        revocation.fetch_timeout = i.fetch_timeout;
        revocation.backoff_max = i.retry_max_delay;
        revocation.backoff_initial = revocation.backoff_initial.min(i.retry_max_delay);
        revocation
    }

    /// The verifier's settings.
    pub fn verifier_config(&self) -> VerifierConfig {
        VerifierConfig {
            issuer: self.issuer.issuer.clone(),
            leeway: self.issuer.leeway,
            max_token_bytes: self.tokens.max_token_bytes,
            cache_capacity: self.tokens.cache_capacity,
        }
    }
}

impl ConfigFile {
    /// Parses a file without validating it. Syntax and type errors carry line and column; a
    /// file holding a secret is refused with the environment variable to use instead.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigErrors> {
        crate::validate::parse(text)
    }

    /// Reads and parses the file at `path` (at most [`MAX_FILE_BYTES`]) without validating it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigErrors> {
        let path = path.as_ref();
        let io = |message: String| {
            ConfigErrors::one(ConfigError {
                kind: ErrorKind::Io,
                location: path.display().to_string(),
                line_col: None,
                message,
            })
        };
        let meta = std::fs::metadata(path).map_err(|e| io(e.to_string()))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(io(format!(
                "{} bytes; a configuration file may have at most {MAX_FILE_BYTES}",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| io(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            io(format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Self::from_toml_str(&text).map_err(|errors| {
            let errors = errors
                .into_iter()
                .map(|mut e| {
                    if e.location.is_empty() {
                        e.location = path.display().to_string();
                    }
                    e
                })
                .collect();
            ConfigErrors::from_vec(errors).expect("non-empty")
        })
    }

    /// Checks everything and builds the runtime [`Config`], or returns every problem found.
    pub fn validate(&self) -> Result<Config, ConfigErrors> {
        crate::validate::validate(self)
    }
}

/// A proxy listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Address to bind.
    pub address: SocketAddr,
    /// Whether cleartext HTTP/2 with prior knowledge (`h2c`) is accepted beside HTTP/1.1 (a
    /// plain listener only; a TLS listener negotiates HTTP/2 by ALPN, [`ListenerTls::h2`]).
    /// Defaults to `false`.
    pub h2c: bool,
    /// TLS termination (rustls); `None` for plain HTTP. Defaults to `None`.
    pub tls: Option<ListenerTls>,
}

/// TLS termination on a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// PEM certificate chain.
    pub cert_path: PathBuf,
    /// PEM private key.
    pub key_path: PathBuf,
    /// Whether HTTP/2 is offered by ALPN (`h2`, with `http/1.1` for clients without it).
    /// Defaults to `true`.
    pub h2: bool,
    /// PEM CA(s) client certificates are verified against (mTLS); `None`: no client
    /// certificate is asked for. Defaults to `None`.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: whether a client certificate is required (`true`, the default) or
    /// only verified when presented.
    pub client_auth_required: bool,
}

/// The admin listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminListener {
    /// Address to bind. Defaults to `127.0.0.1:9091`.
    pub address: SocketAddr,
}

/// The default path of the graceful-upgrade socket, [`ServerSettings::upgrade_sock`].
pub const DEFAULT_UPGRADE_SOCK: &str = "/tmp/proofgate-upgrade.sock";

/// Pingora server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Worker threads of the proxy service. Defaults to the number of available CPU cores.
    pub threads: usize,
    /// Whether Tokio may move tasks between worker threads. Defaults to `false` (each connection
    /// stays on its thread, which suits a proxy's short tasks).
    pub work_stealing: bool,
    /// Idle connections to upstreams kept for reuse. Defaults to `128`.
    pub upstream_keepalive_pool_size: usize,
    /// Time between a shutdown signal and the final shutdown step, for load balancers to
    /// notice. Defaults to `5m`.
    pub grace_period: Duration,
    /// Time the final shutdown step waits for open requests. Defaults to `5s`.
    pub graceful_shutdown_timeout: Duration,
    /// Unix socket on which a process started with `--upgrade` receives the listening sockets
    /// of the running one (Pingora's graceful upgrade). Both must name the same path.
    /// Defaults to `/tmp/proofgate-upgrade.sock`.
    pub upgrade_sock: PathBuf,
    /// How `GET /favicon.ico` is answered when no route names that path. Defaults to
    /// [`FaviconMode::NotFound`].
    pub favicon: FaviconMode,
}

/// How `/favicon.ico` is answered (`[server] favicon`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaviconMode {
    /// `404` with an empty body, without a policy decision (browsers ask for it on every page
    /// view; under a denying default policy each would be a logged denial). A route whose path
    /// is `/favicon.ico` itself still applies.
    #[default]
    NotFound,
    /// Decided by the routes and policies like any other request.
    Policy,
}

/// An upstream cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Unique name routes refer to.
    pub name: String,
    /// `host:port` addresses, load balanced round robin.
    pub addresses: Vec<String>,
    /// Connect timeout. Defaults to `5s`.
    pub connect_timeout: Duration,
    /// Read timeout. Defaults to `60s`.
    pub read_timeout: Duration,
    /// The HTTP version spoken to the upstream. Defaults to [`UpstreamProtocol::H1`].
    pub protocol: UpstreamProtocol,
    /// Longest an upgraded connection (a WebSocket) to this upstream may go without a byte
    /// in either direction before the gateway closes it. Defaults to
    /// [`DEFAULT_WEBSOCKET_IDLE_TIMEOUT`].
    pub websocket_idle_timeout: Duration,
    /// Active health checks. Defaults to `None` (none).
    pub health_check: Option<HealthCheck>,
    /// TLS to the upstream. Defaults to `None` (plain HTTP).
    pub tls: Option<UpstreamTls>,
}

/// The default of [`Upstream::websocket_idle_timeout`]: 5 minutes.
pub const DEFAULT_WEBSOCKET_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The HTTP version spoken to an upstream (`[[upstreams]] protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 (`"h1"`), over TLS or not.
    #[default]
    H1,
    /// HTTP/2 over TLS (`"h2"`), negotiated by ALPN: `h2` offered first, `http/1.1` for an
    /// upstream that does not speak HTTP/2. Needs `[upstreams.tls]`.
    H2,
    /// Cleartext HTTP/2 with prior knowledge (`"h2c"`): no TLS, no fallback.
    H2c,
}

impl UpstreamProtocol {
    /// `h1`, `h2` or `h2c`, as the file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamProtocol::H1 => "h1",
            UpstreamProtocol::H2 => "h2",
            UpstreamProtocol::H2c => "h2c",
        }
    }
}

/// An active HTTP health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Path probed with `GET`; healthy on a 2xx. Defaults to `/healthz`.
    pub path: String,
    /// Probe interval. Defaults to `10s`.
    pub interval: Duration,
}

/// TLS to an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// Server name sent (SNI) and verified. Defaults to the host of the first address when it
    /// is a name.
    pub sni: String,
    /// Whether the certificate is verified. Defaults to `true`.
    pub verify: bool,
}

/// Whether revocation checks fail closed or open once their data is too stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Deny with `status_unavailable`.
    #[default]
    Closed,
    /// Allow, and count it.
    Open,
}

/// The token issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSettings {
    /// The Proof API base URL, without trailing `/`. Defaults to `https://api.proof.holdings`.
    pub api_base: String,
    /// Defaults to `{api_base}/.well-known/jwks.json`.
    pub jwks_url: String,
    /// Defaults to `{api_base}/api/v1/proofs/revoked`.
    pub revocation_url: String,
    /// The Token Status List fetched at start and kept fresh; readiness waits for it. Empty
    /// when the issuer publishes none (`status_list_url = ""`). Defaults to
    /// `{api_base}/api/v1/proofs/status-list`.
    pub status_list_url: String,
    /// Origins (`scheme://host[:port]`) besides `api_base`'s that status lists — the one above
    /// and those named by tokens — may be fetched from, e.g. the issuer's CDN. Defaults to none:
    /// status lists come only from `api_base`'s origin.
    pub status_list_origins: Vec<String>,
    /// The required `iss` claim. Defaults to `proof.holdings`.
    pub issuer: String,
    /// JWKS refresh interval when the response has no `Cache-Control: max-age`.
    /// Defaults to `24h`.
    pub jwks_refresh: Duration,
    /// Longest the key set may go unrefreshed before every decision fails closed with
    /// `jwks_stale` (whatever `fail_mode` says). Defaults to `24h`.
    pub jwks_max_staleness: Duration,
    /// Revocation list refresh interval. Defaults to `5m`.
    pub revocation_refresh: Duration,
    /// Longest revocation data may go unrefreshed before `fail_mode` applies. Defaults to `1h`.
    pub revocation_max_staleness: Duration,
    /// Least time between two JWKS refetches caused by unknown `kid`s. Defaults to `30s`.
    pub unknown_kid_cooldown: Duration,
    /// Timeout of one JWKS, revocation list or status list fetch. Defaults to `10s`.
    pub fetch_timeout: Duration,
    /// After failed fetches the next attempt waits 1 s, 2 s, 4 s, … up to this. It bounds how
    /// long recovery takes once the issuer is back. Defaults to `1m`.
    pub retry_max_delay: Duration,
    /// Clock tolerance for `exp`, `iat` and `verified_at`. Defaults to `5s`.
    pub leeway: Duration,
    /// What stale revocation data leads to. Defaults to `closed`.
    pub fail_mode: FailMode,
}

/// Where tokens are read and how they are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// Sources tried in order. Defaults to `["bearer", "header", "cookie"]` with the header
    /// `x-proof-token` and the cookie `proof_token`.
    pub sources: Vec<TokenSource>,
    /// Longest token accepted, in bytes, checked before any parsing. Defaults to `8192`.
    pub max_token_bytes: usize,
    /// Verified tokens kept in the cache. Defaults to `100000`.
    pub cache_capacity: u64,
}

impl TokenSettings {
    /// The cookie source's name, if cookies are a source.
    pub fn cookie_name(&self) -> Option<&str> {
        self.sources.iter().find_map(|s| match s {
            TokenSource::Cookie(name) => Some(name.as_str()),
            _ => None,
        })
    }
}

/// Identity headers sent upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    /// Prefix of the identity headers; every incoming header with it is removed first.
    /// Always `x-proof-`.
    pub prefix: &'static str,
    /// Whether the token itself (its header, bearer value or cookie) is removed before
    /// forwarding. Defaults to `false`.
    pub strip_token: bool,
}

/// Step-up endpoints and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpSettings {
    /// Path prefix of `start`, `callback`, `webhook` and `logout`, starting and ending with `/`.
    /// Defaults to `/.proofgate/`.
    pub prefix: String,
    /// Lifetime of the signed state cookie. Defaults to `10m`.
    pub state_ttl: Duration,
    /// Name of the state cookie. Defaults to `proofgate_state`.
    pub state_cookie: String,
    /// Starts allowed per client address per minute. Defaults to `5`.
    pub per_client_per_minute: u32,
    /// Starts allowed per minute for all clients together; below the Proof API's 100 requests
    /// per minute, since each step-up also polls. Defaults to `30`.
    pub global_per_minute: u32,
    /// Name of the proof cookie set after a step-up; must be the token cookie source.
    /// Defaults to the `[tokens]` cookie, `proof_token`.
    pub cookie_name: String,
    /// Whether cookies carry `Secure`. Defaults to `true`; turn off only for plain-HTTP
    /// development on localhost.
    pub cookie_secure: bool,
    /// Absolute URL of this site (`https://app.example`), used to build the `redirect_url` back
    /// to `callback`. Defaults to none: the request's own scheme and `Host` are used, which is
    /// right only when clients reach the gateway directly, and only for a host in
    /// `allowed_hosts`, a route's hosts, or a loopback name.
    pub public_url: Option<String>,
    /// Host patterns (as route hosts: `app.example`, `*.example.com`) whose `Host` a step-up
    /// may build its `redirect_url` on when `public_url` is not set; the routes' own hosts and
    /// loopback names are allowed as well, any other `Host` is refused. Defaults to none.
    pub allowed_hosts: Vec<String>,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Problems worked around.
    Warn,
    /// Failures.
    Error,
}

impl LogLevel {
    /// `trace`, `debug`, `info`, `warn` or `error`, as `tracing` filters spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logging {
    /// JSON lines instead of human-readable text. Defaults to `false`.
    pub json: bool,
    /// Least severe level logged. Defaults to `info`.
    pub level: LogLevel,
}

/// The default path of the forward-auth endpoint, [`ForwardAuth::path`].
pub const DEFAULT_FORWARD_AUTH_PATH: &str = "/.proofgate/auth";

/// The Redis (or Valkey) the replicas share (`[cluster]`): webhook revocations fanned out
/// through a stream, step-up start budgets counted together, approval tickets used once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `redis://host:port[/db]` or `rediss://…` (TLS), without credentials; `None` when
    /// `PROOFGATE_REDIS_URL` gives the whole URL.
    pub redis_url: Option<String>,
    /// Prefix of every key written. Defaults to [`DEFAULT_CLUSTER_KEY_PREFIX`].
    pub key_prefix: String,
    /// Longest wait for a connection. Defaults to `1s`.
    pub connect_timeout: Duration,
    /// Longest wait for one command on the request path (a start's budget, a ticket's claim);
    /// past it the replica decides alone. Defaults to `50ms`.
    pub command_timeout: Duration,
}

/// The default `cluster.key_prefix`.
pub const DEFAULT_CLUSTER_KEY_PREFIX: &str = "proofgate:";

impl ClusterSettings {
    /// The URL to connect with: `PROOFGATE_REDIS_URL` when set, else `redis_url` with
    /// `PROOFGATE_REDIS_USERNAME` and `PROOFGATE_REDIS_PASSWORD` filled in. A secret: it may
    /// hold the password. `None` when neither URL is given.
    pub fn connection_url(&self, secrets: &crate::Secrets) -> Option<crate::Secret> {
        if let Some(url) = &secrets.redis_url {
            return Some(url.clone());
        }
        let mut url = url::Url::parse(self.redis_url.as_deref()?).ok()?;
        if let Some(user) = &secrets.redis_username {
            url.set_username(user.expose()).ok()?;
        }
        if let Some(password) = &secrets.redis_password {
            url.set_password(Some(password.expose())).ok()?;
        }
        Some(crate::Secret::new(String::from(url)))
    }
}

/// The decision API for other proxies (`[forward_auth]`): an endpoint on the proxy listeners
/// that decides the request a fronting proxy describes, for the proxies in
/// [`ForwardAuth::trusted_proxies`] only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAuth {
    /// Whether the endpoint answers. Defaults to `false`: its path is an ordinary request.
    pub enabled: bool,
    /// The endpoint's path; Envoy's `ext_authz` check requests come under it
    /// (`{path}/original/path`). Defaults to [`DEFAULT_FORWARD_AUTH_PATH`].
    pub path: String,
    /// The addresses whose requests to the endpoint are honoured; from any other the endpoint
    /// refuses (403 `untrusted_proxy`). Required (non-empty) when enabled.
    pub trusted_proxies: Vec<IpRange>,
}

impl Default for ForwardAuth {
    fn default() -> Self {
        Self {
            enabled: false,
            path: DEFAULT_FORWARD_AUTH_PATH.to_owned(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl ForwardAuth {
    /// Whether `ip` (a peer's address; an IPv4-mapped IPv6 address counts as its IPv4 one) is
    /// one of the trusted proxies.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|r| r.contains(ip))
    }
}

/// An address range, `ip/prefix` (CIDR); a bare address is a range of one.
///
/// ```
/// use proofgate_config::IpRange;
/// let range: IpRange = "10.1.0.0/16".parse().unwrap();
/// assert!(range.contains("10.1.200.3".parse().unwrap()));
/// assert!(!range.contains("10.2.0.1".parse().unwrap()));
/// assert!("::1".parse::<IpRange>().unwrap().contains("::1".parse().unwrap()));
/// assert!("::ffff:10.0.0.0/104".parse::<IpRange>().unwrap().contains("10.9.9.9".parse().unwrap()));
/// assert!("10.0.0.0/33".parse::<IpRange>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` is in the range (an IPv4 address is never in an IPv6 range, and the
    /// other way round).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpRange {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = addr.parse().map_err(|_| ())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| ())?
            }
            Some(_) => return Err(()),
        };
        if prefix > max {
            return Err(());
        }
        // `::ffff:10.0.0.0/104` is `10.0.0.0/8`: peers are compared in their IPv4 form.
        match addr {
            std::net::IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Ok(Self {
                    addr: v4.into(),
                    prefix: prefix - 96,
                }),
                None => Ok(Self { addr, prefix }),
            },
            _ => Ok(Self { addr, prefix }),
        }
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Human approvals (`[approvals]`), shared by every policy's `approval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalsSettings {
    /// Lifetime of an approval ticket, from the first request to its use; longer than every
    /// policy's approval `timeout`. Defaults to `15m`.
    pub ticket_ttl: Duration,
    /// Largest body digested for an approval; a larger one is refused `413
    /// approval_body_too_large`. At most 65536 (what the gateway can replay upstream).
    /// Defaults to `65536`.
    pub max_body_bytes: usize,
    /// `Retry-After` while pending, and the least time between two fetches of one
    /// confirmation. Defaults to `2s`.
    pub poll_interval: Duration,
    /// Confirmations one requester may ask for per minute, per replica. Defaults to `10`.
    pub per_requester_per_minute: u32,
    /// Confirmations all requesters may ask for per minute, per replica. Defaults to `30`.
    pub global_per_minute: u32,
}

impl Default for ApprovalsSettings {
    fn default() -> Self {
        Self {
            ticket_ttl: Duration::from_secs(900),
            max_body_bytes: proofgate_core::approval::MAX_BODY_LIMIT,
            poll_interval: Duration::from_secs(2),
            per_requester_per_minute: 10,
            global_per_minute: 30,
        }
    }
}

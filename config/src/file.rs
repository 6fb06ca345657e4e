//! The configuration file as written: TOML, every key known (`deny_unknown_fields`), durations
//! and names kept as strings so that [`ConfigFile::validate`] can report every problem at once
//! instead of stopping at the first.
//!
//! The gateway's CLI may adjust a parsed file before validating it (`proofgate dev` sets
//! [`IssuerFile::api_base`] to the sandbox it started), which is why the fields are public.

use serde::Deserialize;

/// The whole file. See the [crate documentation](crate) for every key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where each key was written, for the line numbers of validation errors. Filled in by
    /// [`ConfigFile::from_toml_str`] and [`ConfigFile::load`]; empty for a file built in code.
    #[serde(skip)]
    pub locations: crate::Locations,
    /// The policy for requests that match no route.
    pub default_policy: Option<String>,
    /// The upstream for the default route and routes naming none.
    pub default_upstream: Option<String>,
    /// Proxy listeners.
    #[serde(default)]
    pub listeners: Vec<ListenerFile>,
    /// The admin listener.
    pub admin: Option<AdminFile>,
    /// Pingora server settings.
    #[serde(default)]
    pub server: ServerFile,
    /// Upstream clusters.
    #[serde(default)]
    pub upstreams: Vec<UpstreamFile>,
    /// The token issuer.
    #[serde(default)]
    pub issuer: IssuerFile,
    /// Where tokens are read.
    #[serde(default)]
    pub tokens: TokensFile,
    /// Policies.
    #[serde(default)]
    pub policies: Vec<PolicyFile>,
    /// Routes.
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    /// Identity headers sent upstream.
    #[serde(default)]
    pub identity_headers: IdentityHeadersFile,
    /// Step-up endpoints.
    #[serde(default)]
    pub step_up: StepUpFile,
    /// Logging.
    #[serde(default)]
    pub logging: LoggingFile,
    /// The pages browsers get.
    #[serde(default)]
    pub pages: PagesFile,
    /// The decision API for other proxies (forward auth).
    #[serde(default)]
    pub forward_auth: ForwardAuthFile,
    /// Replicas that share revocations, start budgets and single-use tickets through Redis.
    pub cluster: Option<ClusterFile>,
    /// Human approvals: tickets and limits.
    #[serde(default)]
    pub approvals: ApprovalsFile,
}

/// `[cluster]`: the Redis (or Valkey) the replicas share. Credentials come from the
/// environment only (`PROOFGATE_REDIS_USERNAME`, `PROOFGATE_REDIS_PASSWORD`, or a whole
/// `PROOFGATE_REDIS_URL`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// `redis://host:port[/db]` or `rediss://host:port[/db]` (TLS), without credentials.
    pub redis_url: Option<String>,
    /// Prefix of every key proofgate writes.
    pub key_prefix: Option<String>,
    /// Longest wait for a connection to Redis.
    pub connect_timeout: Option<String>,
    /// Longest wait for one Redis command on the request path.
    pub command_timeout: Option<String>,
}

/// `[approvals]`: settings shared by every policy's `approval`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsFile {
    /// Lifetime of an approval ticket.
    pub ticket_ttl: Option<String>,
    /// Largest request body digested for an approval, in bytes.
    pub max_body_bytes: Option<u64>,
    /// `Retry-After` while pending, and the least time between two fetches of a confirmation.
    pub poll_interval: Option<String>,
    /// Confirmations one requester may ask for per minute.
    pub per_requester_per_minute: Option<u64>,
    /// Confirmations all requesters together may ask for per minute.
    pub global_per_minute: Option<u64>,
}

/// A policy's `approval = { … }`: a person's approval before an allowed request is forwarded.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalFile {
    /// The issuer's HITL configuration id.
    pub hitl: Option<String>,
    /// The message template.
    pub message: Option<String>,
    /// How long to wait for a decision.
    pub timeout: Option<String>,
    /// Request headers shown to the approvers.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Body fields shown to the approvers.
    #[serde(default)]
    pub body_fields: Vec<String>,
}

/// `[forward_auth]`: the decision API another proxy (nginx `auth_request`, Traefik, Caddy,
/// Envoy) calls for each request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuthFile {
    /// Whether the endpoint answers.
    pub enabled: Option<bool>,
    /// The endpoint's path on the proxy listeners.
    pub path: Option<String>,
    /// Addresses (`ip` or `ip/prefix`) whose requests to the endpoint are honoured.
    pub trusted_proxies: Option<Vec<String>>,
}

/// `[pages]`: branding and template of the pages browsers get.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagesFile {
    /// The product name at the top of each page and on the hosted verification page.
    pub product_name: Option<String>,
    /// An `https://` URL or a path on this site.
    pub logo_url: Option<String>,
    /// An `https://`, `http://` or `mailto:` URL.
    pub support_url: Option<String>,
    /// A directory holding `page.html`, the operator's template.
    pub template_dir: Option<String>,
}

/// `[[listeners]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    /// `ip:port`.
    pub address: Option<String>,
    /// Cleartext HTTP/2 (prior knowledge) beside HTTP/1.1; plain listeners only.
    pub h2c: Option<bool>,
    /// TLS termination.
    pub tls: Option<TlsFile>,
}

/// `[listeners.tls]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// PEM certificate chain path.
    pub cert: Option<String>,
    /// PEM private key path.
    pub key: Option<String>,
    /// Offer HTTP/2 by ALPN (`h2`, then `http/1.1`).
    pub h2: Option<bool>,
    /// PEM file of the CA(s) client certificates are verified against (mTLS); the verified
    /// certificate's URI SANs bind delegation tokens.
    pub client_ca: Option<String>,
    /// `required` (the default with `client_ca`) or `optional`: whether a connection without a
    /// client certificate is refused at the handshake.
    pub client_auth: Option<String>,
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// `ip:port`.
    pub address: Option<String>,
}

/// `[server]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// Worker threads.
    pub threads: Option<u64>,
    /// Tokio work stealing.
    pub work_stealing: Option<bool>,
    /// Idle upstream connections kept.
    pub upstream_keepalive_pool_size: Option<u64>,
    /// Wait before the final shutdown step.
    pub grace_period: Option<String>,
    /// Timeout of the final shutdown step.
    pub graceful_shutdown_timeout: Option<String>,
    /// Unix socket the listening sockets are handed over on in a graceful upgrade.
    pub upgrade_sock: Option<String>,
    /// `not_found` or `policy`: how `/favicon.ico` is answered.
    pub favicon: Option<String>,
}

/// `[[upstreams]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    /// Unique name.
    pub name: Option<String>,
    /// `host:port` addresses.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Connect timeout.
    pub connect_timeout: Option<String>,
    /// Read timeout.
    pub read_timeout: Option<String>,
    /// `h1`, `h2` or `h2c`: the HTTP version spoken to the upstream.
    pub protocol: Option<String>,
    /// Longest an upgraded (WebSocket) connection may go without a byte either way.
    pub websocket_idle_timeout: Option<String>,
    /// Health checks.
    pub health_check: Option<HealthCheckFile>,
    /// TLS to the upstream.
    pub tls: Option<UpstreamTlsFile>,
}

/// `[upstreams.health_check]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckFile {
    /// Path probed with `GET`.
    pub path: Option<String>,
    /// Probe interval.
    pub interval: Option<String>,
}

/// `[upstreams.tls]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsFile {
    /// Server name sent and verified.
    pub sni: Option<String>,
    /// Whether the certificate is verified.
    pub verify: Option<bool>,
}

/// `[issuer]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerFile {
    /// The Proof API base URL.
    pub api_base: Option<String>,
    /// JWKS URL.
    pub jwks_url: Option<String>,
    /// Revocation list URL.
    pub revocation_url: Option<String>,
    /// The Token Status List fetched at start; `""` for none.
    pub status_list_url: Option<String>,
    /// Origins besides `api_base`'s that status lists may be fetched from.
    pub status_list_origins: Option<Vec<String>>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// JWKS refresh interval without `Cache-Control`.
    pub jwks_refresh: Option<String>,
    /// JWKS maximum staleness.
    pub jwks_max_staleness: Option<String>,
    /// Revocation list refresh interval.
    pub revocation_refresh: Option<String>,
    /// Revocation maximum staleness.
    pub revocation_max_staleness: Option<String>,
    /// Cooldown between unknown-`kid` refetches.
    pub unknown_kid_cooldown: Option<String>,
    /// Timeout of one JWKS, revocation list or status list fetch.
    pub fetch_timeout: Option<String>,
    /// Longest wait between two fetches after failures (backoff cap).
    pub retry_max_delay: Option<String>,
    /// Clock tolerance.
    pub leeway: Option<String>,
    /// `closed` or `open`.
    pub fail_mode: Option<String>,
}

/// `[tokens]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensFile {
    /// `bearer`, `header`, `cookie`, in order.
    pub sources: Option<Vec<String>>,
    /// The header source's name.
    pub header: Option<String>,
    /// The cookie source's name.
    pub cookie: Option<String>,
    /// Largest token, in bytes.
    pub max_token_size: Option<u64>,
    /// Verified-token cache entries.
    pub cache_capacity: Option<u64>,
}

/// `[[policies]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Unique name.
    pub name: Option<String>,
    /// `public`, `optional`, `deny`, `any_of` or `all_of`.
    pub rule: Option<String>,
    /// Requirements of `any_of` / `all_of`.
    #[serde(default)]
    pub requirements: Vec<RequirementFile>,
    /// `step_up` or `deny`.
    pub on_failure: Option<String>,
    /// A person's approval before an allowed request is forwarded.
    pub approval: Option<ApprovalFile>,
}

/// One entry of `requirements`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementFile {
    /// Accepted proof types.
    #[serde(default)]
    pub types: Vec<String>,
    /// Accepted channels.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Accepted identifiers, in clear.
    #[serde(default)]
    pub identifiers: Vec<String>,
    /// Maximum age of `verified_at`.
    pub max_age: Option<String>,
    /// A delegation requirement instead of a proof requirement.
    pub delegation: Option<DelegationFile>,
}

/// `delegation = { principals = [...], scopes = [...] }` in a requirement.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegationFile {
    /// Accepted principals (authorizing domains).
    #[serde(default)]
    pub principals: Vec<String>,
    /// Scopes that must all be granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Accepted delegates (an allowlist, not a binding).
    #[serde(default)]
    pub delegates: Vec<String>,
    /// Refuse a delegation whose delegate the gateway did not resolve itself (mTLS).
    pub require_binding: Option<bool>,
}

/// `[[routes]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    /// Unique name.
    pub name: Option<String>,
    /// Host patterns.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefix or glob.
    pub path: Option<String>,
    /// Methods.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Policy name.
    pub policy: Option<String>,
    /// Upstream name.
    pub upstream: Option<String>,
    /// CORS preflights: `"forward"` or `"deny"`.
    pub preflight: Option<String>,
}

/// `[identity_headers]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityHeadersFile {
    /// Must be `x-proof-` when given.
    pub prefix: Option<String>,
    /// Remove the token before forwarding.
    pub strip_token: Option<bool>,
}

/// `[step_up]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepUpFile {
    /// Path prefix of the step-up endpoints.
    pub prefix: Option<String>,
    /// Lifetime of the state cookie.
    pub state_ttl: Option<String>,
    /// Name of the state cookie.
    pub state_cookie: Option<String>,
    /// Starts per client per minute.
    pub per_client_per_minute: Option<u64>,
    /// Starts per minute, all clients together.
    pub global_per_minute: Option<u64>,
    /// Name of the proof cookie.
    pub cookie_name: Option<String>,
    /// `Secure` attribute on the cookies.
    pub cookie_secure: Option<bool>,
    /// Absolute URL people reach this site at, for the verification's `redirect_url`.
    pub public_url: Option<String>,
    /// Hosts a step-up may build its `redirect_url` on when `public_url` is not set.
    pub allowed_hosts: Option<Vec<String>>,
}

/// `[logging]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingFile {
    /// JSON lines instead of text.
    pub json: Option<bool>,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: Option<String>,
}

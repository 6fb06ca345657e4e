//! The step-up protocol, shared by the gateway and the middleware: `start` creates a hosted
//! verification request and remembers where to come back to in an HMAC-signed, short-lived state
//! cookie (so any replica can finish the flow); `callback` checks that state, fetches the request,
//! verifies the returned tokens with the core and sets the proof cookie; `webhook` applies signed
//! `proof.revoked` events at once; `logout` clears the proof cookie.
//!
//! No Proof API call is made for an anonymous request until the client follows the start link,
//! and starts are rate limited per client and globally (below the API's 100 requests/min).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{ActionContext, AssetRequest, CreateVerificationRequest, ProofApiClient};
use crate::clock::unix_now;
use crate::decision::Enforcer;
use crate::pages::{describe_policy, describe_type, Link, Page, Pages};
use crate::params::percent_decode;
pub use crate::params::{cookie, query_param};
use crate::policy::{Combine, Policy, Rule};
use crate::proof::VerifiedProof;
use crate::reason::{Family, Reason};
use crate::render::Rendered;
use crate::revocation::Pushed;
use crate::webhook;

/// Settings of step-up.
#[derive(Clone)]
pub struct StepUpConfig {
    /// Reserved path prefix of the endpoints. Defaults to `/.proofgate/`.
    pub prefix: String,
    /// Key of the state cookie's HMAC (from the environment, never the config file).
    pub cookie_key: Vec<u8>,
    /// Lifetime of a started flow. Defaults to 10 min.
    pub state_ttl: Duration,
    /// Name of the proof cookie. Defaults to `proof_token`.
    pub proof_cookie: String,
    /// Name of the state cookie. Defaults to `proofgate_state`.
    pub state_cookie: String,
    /// Mark cookies `Secure`. Defaults to `true`.
    pub secure_cookies: bool,
    /// Starts per client per minute. Defaults to 10.
    pub per_client_per_minute: u32,
    /// Starts per minute across all clients. Defaults to 60 (below the API's 100/min).
    pub global_per_minute: u32,
    /// Absolute URL of this site (e.g. `https://app.example`), used for `redirect_url`; when
    /// `None`, the request's own scheme and host are used — if that host is allowed
    /// ([`StepUpConfig::allowed_hosts`]).
    pub public_url: Option<String>,
    /// Host patterns (`app.example`, `*.example.com`, as route hosts) a start may take its
    /// `redirect_url` from when `public_url` is not set. Loopback names (`localhost`,
    /// `127.0.0.1`, `[::1]`) are always allowed; any other `Host` is refused, so that a link
    /// started with `Host: evil.example` cannot send the person, and the flow's state, to
    /// another site. Defaults to none.
    pub allowed_hosts: Vec<String>,
    /// Secret of incoming webhooks (from the environment).
    pub webhook_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for StepUpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepUpConfig")
            .field("prefix", &self.prefix)
            .field("cookie_key", &"<redacted>")
            .field("state_ttl", &self.state_ttl)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl StepUpConfig {
    /// Defaults with the given cookie key.
    pub fn new(cookie_key: Vec<u8>) -> Self {
        Self {
            prefix: "/.proofgate/".into(),
            cookie_key,
            state_ttl: Duration::from_secs(600),
            proof_cookie: "proof_token".into(),
            state_cookie: "proofgate_state".into(),
            secure_cookies: true,
            per_client_per_minute: 10,
            global_per_minute: 60,
            public_url: None,
            allowed_hosts: Vec::new(),
            webhook_secret: None,
        }
    }
}

/// The state carried by the signed cookie between `start` and `callback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowState {
    /// The verification request id.
    pub rid: String,
    /// The policy the flow is for.
    pub policy: String,
    /// Where to return: a relative path on this site.
    pub return_to: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// The flow's id: its state cookie is `<state_cookie>_<flow>` and its callback
    /// `<prefix>callback?flow=<flow>`, so that several step-ups (tabs) run side by side. Empty
    /// in a state sealed before flows had ids.
    #[serde(default)]
    pub flow: String,
}

/// Why a state cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not in the `payload.mac` form or not decodable.
    #[error("malformed state")]
    Malformed,
    /// The MAC does not verify.
    #[error("forged state")]
    Forged,
    /// Past its expiry.
    #[error("expired state")]
    Expired,
}

/// Seals a flow state: `base64url(json).base64url(hmac-sha256)`.
pub fn seal_state(key: &[u8], state: &FlowState) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(state).unwrap_or_default());
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), payload.as_bytes());
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Opens a sealed flow state, checking its MAC in constant time and its expiry against `now`.
pub fn open_state(key: &[u8], sealed: &str, now: i64) -> Result<FlowState, StateError> {
    if sealed.len() > 4096 {
        return Err(StateError::Malformed);
    }
    let (payload, tag) = sealed.split_once('.').ok_or(StateError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| StateError::Malformed)?;
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        payload.as_bytes(),
        &tag,
    )
    .map_err(|_| StateError::Forged)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| StateError::Malformed)?;
    let state: FlowState = serde_json::from_slice(&json).map_err(|_| StateError::Malformed)?;
    if state.exp <= now {
        return Err(StateError::Expired);
    }
    Ok(state)
}

/// Accepts a return target only if it is a relative path on this site: it starts with a single
/// `/`, has no backslash, no control character and no scheme, and is not protocol-relative
/// (`//evil.example`, `/\evil.example`), also once percent-decoded.
pub fn safe_return_to(target: &str) -> Option<&str> {
    fn ok(t: &str) -> bool {
        t.starts_with('/')
            && !t.starts_with("//")
            && !t.contains('\\')
            && !t.chars().any(|c| c.is_control())
            && t.len() <= 2048
    }
    if !ok(target) {
        return None;
    }
    let decoded = percent_decode(target)?;
    if !ok(&decoded) {
        return None;
    }
    Some(target)
}

fn headers_accept_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// A fixed-window limiter per client and globally, lock-free on the request path.
pub struct StartLimiter {
    per_client: moka::sync::Cache<String, Arc<AtomicU32>>,
    per_client_limit: u32,
    global: AtomicU64,
    global_limit: u32,
}

impl std::fmt::Debug for StartLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartLimiter").finish_non_exhaustive()
    }
}

impl StartLimiter {
    /// Limits per client and globally, per minute.
    pub fn new(per_client: u32, global: u32) -> Self {
        Self {
            per_client: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            per_client_limit: per_client,
            global: AtomicU64::new(0),
            global_limit: global,
        }
    }

    /// Takes one start for `client`; `Err(retry_after_secs)` when over a limit.
    pub fn take(&self, client: &str) -> Result<(), u64> {
        let counter = self
            .per_client
            .get_with(client.to_owned(), || Arc::new(AtomicU32::new(0)));
        if counter.fetch_add(1, Ordering::AcqRel) >= self.per_client_limit {
            return Err(60);
        }
        let now = unix_now();
        let minute = (now / 60) as u64 & 0xffff_ffff;
        // Global window: high 32 bits the minute, low 32 bits the count.
        let global_ok = self
            .global
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                let (m, n) = (v >> 32, v & 0xffff_ffff);
                if m != minute {
                    Some((minute << 32) | 1)
                } else if n < u64::from(self.global_limit) {
                    Some(v + 1)
                } else {
                    None
                }
            })
            .is_ok();
        if !global_ok {
            return Err((60 - now % 60).max(1) as u64);
        }
        Ok(())
    }
}

/// A future boxed for a trait object.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A start budget counted together with other replicas (the `cluster` feature counts it in
/// Redis). Installed with [`StepUp::with_shared_budget`]; the local [`StartLimiter`] stays the
/// fallback.
pub trait SharedStartBudget: Send + Sync + std::fmt::Debug {
    /// Takes one start for `client` against `per_client` and `global` starts per minute, for
    /// all replicas together: `Some(Ok(()))` taken, `Some(Err(retry_after_secs))` over a limit,
    /// `None` when the shared count cannot be reached now (within a bounded time), in which
    /// case the caller decides with its local limiter.
    fn take<'a>(
        &'a self,
        client: &'a str,
        per_client: u32,
        global: u32,
    ) -> BoxFuture<'a, Option<Result<(), u64>>>;
}

/// Single use across replicas (the `cluster` feature claims keys in Redis). Installed with
/// [`StepUp::with_shared_once`]: a step-up state then completes once across all replicas, not
/// only once per replica.
pub trait SharedOnce: Send + Sync + std::fmt::Debug {
    /// Claims `key` for `ttl`: `Some(true)` for the first claim across replicas, `Some(false)`
    /// for a later one while it lasts, `None` when that cannot be asked now (within a bounded
    /// time); the caller then decides with what it remembers itself.
    fn claim<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Option<bool>>;
}

/// A change a verified webhook made to the revocation overlay, as sent to other replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedEvent {
    /// The proof id.
    pub proof_id: String,
    /// `Some(Revoked)`, `Some(Suspended)`, or `None` for `proof.unsuspended`.
    pub change: Option<Pushed>,
    /// The webhook's timestamp (Unix s): events apply per proof in timestamp order.
    pub at: i64,
    /// Until when the event matters (Unix s): the proof's `exp` when the event says it, else
    /// `at` plus [`PUSHED_EVENT_DEFAULT_TTL`].
    pub exp: i64,
}

/// How long a pushed event is kept for replicas that catch up, when the event does not say
/// when its proof expires: the longest proof lifetime the issuer offers (365 days), and a day.
pub const PUSHED_EVENT_DEFAULT_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// Where applied webhook events are sent on to other replicas (the `cluster` feature publishes
/// them to a Redis stream). Installed with [`StepUp::with_event_sink`].
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Hands `event` over for sending. Never blocks and never fails the webhook: an
    /// implementation queues and sends in the background.
    fn publish(&self, event: &PushedEvent);
}

/// The step-up endpoints.
pub struct StepUp {
    config: StepUpConfig,
    api: Option<ProofApiClient>,
    pages: Arc<Pages>,
    limiter: StartLimiter,
    /// Verification request ids whose flow has completed: a state completes once. Kept for the
    /// state's lifetime (after which the state itself is refused as expired). Per replica.
    completed: moka::sync::Cache<String, ()>,
    /// Webhook deliveries already applied (`X-Proof-Delivery`, or timestamp and signature),
    /// kept as long as their timestamp is inside the accepted window.
    deliveries: moka::sync::Cache<String, ()>,
    /// Per proof id, the timestamp of the last webhook event applied: an older event that
    /// arrives later (a replayed `proof.unsuspended` after a `proof.suspended`) is ignored.
    last_event: moka::sync::Cache<String, i64>,
    /// Start budgets shared with other replicas; `limiter` is the fallback.
    shared_budget: Option<Arc<dyn SharedStartBudget>>,
    /// Where applied webhook events go to reach the other replicas.
    event_sink: Option<Arc<dyn EventSink>>,
    /// Single use across replicas; `completed` is the fallback.
    shared_once: Option<Arc<dyn SharedOnce>>,
}

impl std::fmt::Debug for StepUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepUp")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Which step-up endpoint a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `start`.
    Start,
    /// `callback`.
    Callback,
    /// `webhook`.
    Webhook,
    /// `logout`.
    Logout,
}

/// A `start` request as the adapter received it.
#[derive(Debug, Clone, Copy)]
pub struct StartRequest<'a> {
    /// The query, without `?`.
    pub query: &'a str,
    /// `https` when the request arrived over TLS (or the service is reached over HTTPS).
    pub scheme: &'a str,
    /// The `Host` as received.
    pub host: Option<&'a str>,
    /// The host patterns the adapter's current routes name (this site's own names).
    pub site_hosts: &'a [String],
    /// The client's address, for rate limiting.
    pub client: &'a str,
    /// Whether the client is a browser (redirect) or an API client (JSON).
    pub html: bool,
    /// The request's headers (the browser's other step-ups in progress, in their cookies).
    pub headers: &'a http::HeaderMap,
}

/// A step-up endpoint's answer, with what the adapter logs and counts.
#[derive(Debug, Clone)]
pub struct StepUpAnswer {
    /// The response.
    pub response: Rendered,
    /// How it went, for metrics: `started`, `rate_limited`, `refused`, `failed` (start);
    /// `completed`, `policy_unmet`, `refused`, `failed` (callback); `signed_out` (logout);
    /// `applied`, `duplicate`, `refused` (webhook).
    pub outcome: &'static str,
    /// The reason code of a refusal or failure (the problem+json `reason`); empty on success.
    pub reason: &'static str,
}

impl StepUpAnswer {
    fn ok(response: Rendered, outcome: &'static str) -> Self {
        Self {
            response,
            outcome,
            reason: "",
        }
    }
}

/// Most step-ups one browser may have in progress at once (one state cookie each); starting
/// another ends the oldest.
pub const MAX_FLOWS: usize = 6;

/// Length of a flow id (hex).
const FLOW_LEN: usize = 12;

/// A proof cookie's value is kept under this many bytes (browsers keep about 4 KiB per cookie,
/// name and attributes included).
const MAX_COOKIE_VALUE: usize = 3800;

/// Most completed flows, webhook deliveries and proof event times remembered, each.
const MAX_REMEMBERED: u64 = 100_000;

/// Whether `host` (a `Host` value, port allowed) is a loopback name: a redirect there can only
/// reach the person's own machine.
fn is_loopback_host(host: &str) -> bool {
    let name = crate::routes::host_without_port(host).to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A refusal or failure of an endpoint, rendered for whoever asked.
struct Refused {
    status: u16,
    code: &'static str,
    /// The problem+json `title` (what API clients read).
    detail: &'static str,
    /// The page's heading and message (what people read).
    heading: &'static str,
    message: String,
    details: Vec<(String, String)>,
    actions: Vec<(String, String)>,
    retry_after: Option<u64>,
}

impl Refused {
    fn new(status: u16, code: &'static str, detail: &'static str, heading: &'static str) -> Self {
        Self {
            status,
            code,
            detail,
            heading,
            message: String::new(),
            details: Vec::new(),
            actions: Vec::new(),
            retry_after: None,
        }
    }

    fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    fn detail(mut self, label: &str, value: impl Into<String>) -> Self {
        self.details.push((label.to_owned(), value.into()));
        self
    }

    fn action(mut self, label: &str, href: impl Into<String>) -> Self {
        self.actions.push((label.to_owned(), href.into()));
        self
    }

    fn home(self) -> Self {
        self.action("Go to the home page", "/")
    }
}

fn header(name: HeaderName, value: String) -> Option<(HeaderName, HeaderValue)> {
    HeaderValue::from_str(&value).ok().map(|v| (name, v))
}

/// The flow cookies (`<state_cookie>_<flow>`) a request carries, as `(flow, value)`.
fn flow_cookies<'h>(headers: &'h http::HeaderMap, state_cookie: &str) -> Vec<(&'h str, &'h str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let flow = k.trim().strip_prefix(state_cookie)?.strip_prefix('_')?;
            (flow.len() == FLOW_LEN && flow.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| (flow, v.trim()))
        })
        .collect()
}

fn no_content() -> Rendered {
    Rendered {
        status: 204,
        headers: Vec::new(),
        body: Bytes::new(),
    }
}

/// Step-up is not configured (no API key).
fn unavailable() -> Refused {
    Refused::new(
        503,
        "step_up_unavailable",
        "Step-up is not configured",
        "Verification is not available",
    )
    .message("This site cannot verify people at the moment. Try again later.")
    .home()
}

/// The verification service could not be reached or answered nonsense.
fn unreachable(retry: &str) -> Refused {
    Refused::new(
        502,
        "step_up_failed",
        "The verification service could not be reached",
        "The verification service could not be reached",
    )
    .message("This is not your fault. Try again in a moment.")
    .action("Try again", retry)
    .home()
}

/// Cuts `text` to at most `max` characters.
fn truncate(mut text: String, max: usize) -> String {
    if let Some((i, _)) = text.char_indices().nth(max) {
        text.truncate(i);
    }
    text
}

impl StepUp {
    /// Step-up with an API client (`None`: step-up is answered 503, e.g. no API key).
    pub fn new(config: StepUpConfig, api: Option<ProofApiClient>) -> Self {
        let limiter = StartLimiter::new(config.per_client_per_minute, config.global_per_minute);
        let window = 2 * webhook::DEFAULT_TOLERANCE + Duration::from_secs(60);
        Self {
            completed: moka::sync::Cache::builder()
                .max_capacity(MAX_REMEMBERED)
                .time_to_live(config.state_ttl + Duration::from_secs(60))
                .build(),
            deliveries: moka::sync::Cache::builder()
                .max_capacity(MAX_REMEMBERED)
                .time_to_live(window)
                .build(),
            last_event: moka::sync::Cache::builder()
                .max_capacity(MAX_REMEMBERED)
                .time_to_live(window)
                .build(),
            config,
            api,
            pages: Arc::new(Pages::default()),
            limiter,
            shared_budget: None,
            event_sink: None,
            shared_once: None,
        }
    }

    /// The same protocol completing each state once across replicas through `once` (what this
    /// replica remembers decides whenever `once` answers `None`).
    pub fn with_shared_once(mut self, once: Option<Arc<dyn SharedOnce>>) -> Self {
        self.shared_once = once;
        self
    }

    /// The same protocol counting starts with other replicas in `budget` (its local limiter
    /// decides whenever `budget` answers `None`).
    pub fn with_shared_budget(mut self, budget: Option<Arc<dyn SharedStartBudget>>) -> Self {
        self.shared_budget = budget;
        self
    }

    /// The same protocol sending every webhook event it applies to `sink` as well.
    pub fn with_event_sink(mut self, sink: Option<Arc<dyn EventSink>>) -> Self {
        self.event_sink = sink;
        self
    }

    /// The same protocol answering browsers with `pages` (branding, template).
    pub fn with_pages(mut self, pages: Arc<Pages>) -> Self {
        self.pages = pages;
        self
    }

    /// The pages browsers are answered with.
    pub fn pages(&self) -> &Arc<Pages> {
        &self.pages
    }

    /// The settings.
    pub fn config(&self) -> &StepUpConfig {
        &self.config
    }

    /// Which endpoint `path` (without query) names, if it is under the reserved prefix.
    pub fn endpoint(&self, path: &str) -> Option<Endpoint> {
        let rest = path.strip_prefix(self.config.prefix.as_str())?;
        match rest {
            "start" => Some(Endpoint::Start),
            "callback" => Some(Endpoint::Callback),
            "webhook" => Some(Endpoint::Webhook),
            "logout" => Some(Endpoint::Logout),
            _ => None,
        }
    }

    fn cookie_attrs(&self) -> &'static str {
        if self.config.secure_cookies {
            "; HttpOnly; Secure; SameSite=Lax"
        } else {
            "; HttpOnly; SameSite=Lax"
        }
    }

    /// The assets a policy asks for: any-of requirements become optional assets with
    /// `partial_ok`, all-of requirements required ones.
    pub fn request_for(policy: &Policy) -> CreateVerificationRequest {
        let (combine, requirements) = match &policy.rule {
            Rule::Require {
                combine,
                requirements,
            } => (*combine, requirements.as_slice()),
            _ => (Combine::AnyOf, &[][..]),
        };
        let assets = requirements
            .iter()
            // A person cannot verify a delegation: only proof requirements become assets.
            .filter(|r| r.delegation.is_none())
            .take(10)
            .map(|r| {
                let mut a =
                    AssetRequest::new(r.types.first().cloned().unwrap_or_else(|| "email".into()));
                if r.identifiers.len() == 1 {
                    a.identifier = Some(r.identifiers[0].normalized.clone());
                }
                a.allowed_channels = r.channels.clone();
                a.required = Some(combine == Combine::AllOf);
                a
            })
            .collect();
        let mut req = CreateVerificationRequest::new(assets);
        req.partial_ok = Some(combine == Combine::AnyOf);
        req.reference_id = Some(format!("proofgate:{}", policy.name));
        req
    }

    /// The origin the verification's `redirect_url` is built on: `public_url` when configured,
    /// else `scheme://host` of the request if `host` is allowed ([`StepUpConfig::allowed_hosts`],
    /// or a loopback name); `None` (refuse) otherwise.
    /// `site_hosts` are the hosts the adapter's current routes name (after any reload): this
    /// site's own names, allowed like [`StepUpConfig::allowed_hosts`].
    pub fn origin(
        &self,
        scheme: &str,
        host: Option<&str>,
        site_hosts: &[String],
    ) -> Option<String> {
        if let Some(url) = &self.config.public_url {
            return Some(url.trim_end_matches('/').to_owned());
        }
        let host = host?;
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
        let allowed = valid
            && (is_loopback_host(host)
                || self
                    .config
                    .allowed_hosts
                    .iter()
                    .chain(site_hosts)
                    .any(|p| crate::routes::host_matches_pattern(p, host)));
        allowed.then(|| format!("{scheme}://{host}"))
    }

    fn refused(&self, html: bool, outcome: &'static str, r: Refused) -> StepUpAnswer {
        let mut response = if html {
            let mut page = Page::new(r.status, r.code, r.heading, r.message);
            page.details = r.details;
            page.actions = r
                .actions
                .into_iter()
                .map(|(l, h)| Link::new(l, h))
                .collect();
            self.pages.render(&page)
        } else {
            crate::render::simple(r.status, r.code, r.detail)
        };
        if let Some(retry) = r.retry_after {
            response
                .headers
                .push((http::header::RETRY_AFTER, HeaderValue::from(retry)));
        }
        StepUpAnswer {
            response,
            outcome,
            reason: r.code,
        }
    }

    fn set_cookie(&self, name: &str, value: &str, path: &str, max_age: i64) -> String {
        format!(
            "{name}={value}; Path={path}; Max-Age={max_age}{}",
            self.cookie_attrs()
        )
    }

    fn start_link(&self, policy: &str, return_to: &str) -> String {
        crate::render::start_url(&self.config.prefix, policy, return_to)
    }

    /// What the hosted page tells the person: which site asks, for what, and what to verify.
    fn action_context(&self, base: &str, policy: &Policy, return_to: &str) -> ActionContext {
        let site = self
            .pages
            .branding()
            .product_name
            .clone()
            .unwrap_or_else(|| {
                let host = base.split_once("://").map_or(base, |(_, h)| h);
                host.to_owned()
            });
        let path = return_to.split('?').next().unwrap_or("/");
        ActionContext {
            title: Some(truncate(format!("Verify to continue to {site}"), 100)),
            description: Some(truncate(
                format!(
                    "{site} asks you to verify {} to open {path}.",
                    describe_policy(policy)
                ),
                500,
            )),
        }
    }

    /// `GET <prefix>start?policy=…&return_to=…`: see [`StartRequest`] for what the adapter
    /// passes (an unlisted host is refused when `public_url` is not set, [`StepUp::origin`]).
    ///
    /// Each start is its own flow, with its own state cookie (`<state_cookie>_<flow>`, path
    /// `<prefix>`) and callback (`<prefix>callback?flow=<flow>`): a browser may have up to
    /// [`MAX_FLOWS`] step-ups in progress (tabs); a start beyond that ends the oldest, and
    /// expired or foreign state cookies are cleared on the way.
    pub async fn start(&self, policy: Option<&Policy>, req: StartRequest<'_>) -> StepUpAnswer {
        let StartRequest {
            query,
            scheme,
            host,
            site_hosts,
            client,
            html,
            headers: request_headers,
        } = req;
        let return_to = query_param(query, "return_to").unwrap_or_else(|| "/".into());
        let Some(return_to) = safe_return_to(&return_to) else {
            let r = Refused::new(
                400,
                "invalid_return_to",
                "return_to must be a relative path on this site",
                "This verification link is not valid",
            )
            .message("The link asks to return to another site, which is not allowed.")
            .home();
            return self.refused(html, "refused", r);
        };
        let Some(policy) = policy.filter(|p| p.has_proof_requirement()) else {
            let r = Refused::new(
                404,
                "unknown_policy",
                "No step-up is available for this policy",
                "This verification link is not valid",
            )
            .message("The page it was made for does not offer a verification (any more).")
            .action("Go back", return_to)
            .home();
            return self.refused(html, "refused", r);
        };
        let Some(base) = self.origin(scheme, host, site_hosts) else {
            let r = Refused::new(
                400,
                "untrusted_host",
                "This site's address is not one step-up may return to; the operator sets \
                 step_up.public_url or step_up.allowed_hosts",
                "Verification is not available at this address",
            )
            .message(
                "This site is not set up to verify people who reach it by this address. \
                 Use the site's usual address, or tell its operator (step_up.public_url or \
                 step_up.allowed_hosts).",
            );
            return self.refused(html, "refused", r);
        };
        let taken = match &self.shared_budget {
            Some(shared) => {
                let (per_client, global) = (
                    self.config.per_client_per_minute,
                    self.config.global_per_minute,
                );
                match shared.take(client, per_client, global).await {
                    Some(taken) => taken,
                    None => self.limiter.take(client),
                }
            }
            None => self.limiter.take(client),
        };
        if let Err(retry) = taken {
            let mut r = Refused::new(
                429,
                "rate_limited",
                "Too many verification starts; try again later",
                "Too many verification attempts",
            )
            .message(format!(
                "Verifications were started too often. Wait {} and try again.",
                crate::pages::human_duration(retry)
            ))
            .action("Try again", self.start_link(&policy.name, return_to))
            .home();
            r.retry_after = Some(retry);
            return self.refused(html, "rate_limited", r);
        }
        let Some(api) = &self.api else {
            return self.refused(html, "failed", unavailable());
        };
        let flow: String = (0..FLOW_LEN / 2)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let mut req = Self::request_for(policy);
        req.redirect_url = Some(format!("{base}{}callback?flow={flow}", self.config.prefix));
        req.expires_in = Some(self.config.state_ttl.as_secs());
        req.action_context = Some(self.action_context(&base, policy, return_to));
        let created = match api.create_verification_request(&req).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "creating a verification request failed");
                return self.refused(
                    html,
                    "failed",
                    unreachable(&self.start_link(&policy.name, return_to)),
                );
            }
        };
        let Some(url) = created.verification_url.clone() else {
            return self.refused(
                html,
                "failed",
                unreachable(&self.start_link(&policy.name, return_to)),
            );
        };
        let now = unix_now();
        let state = FlowState {
            rid: created.id.clone(),
            policy: policy.name.clone(),
            return_to: return_to.to_string(),
            exp: now + self.config.state_ttl.as_secs() as i64,
            flow: flow.clone(),
        };
        let sealed = seal_state(&self.config.cookie_key, &state);
        let mut headers: Vec<(HeaderName, HeaderValue)> = vec![(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        )];
        // The browser's other flows: unreadable or expired ones are cleared, and beyond
        // MAX_FLOWS - 1 the oldest ones, to make room for this one.
        let mut live: Vec<(i64, &str)> = Vec::new();
        for (other, value) in flow_cookies(request_headers, &self.config.state_cookie) {
            match open_state(&self.config.cookie_key, value, now) {
                Ok(s) => live.push((s.exp, other)),
                Err(_) => live.push((i64::MIN, other)),
            }
        }
        live.sort_unstable();
        let stale = live.len().saturating_sub(MAX_FLOWS - 1);
        for (exp, other) in &live {
            if *exp == i64::MIN || live.iter().position(|(_, o)| o == other) < Some(stale) {
                let name = format!("{}_{other}", self.config.state_cookie);
                headers.extend(header(
                    http::header::SET_COOKIE,
                    self.set_cookie(&name, "", &self.config.prefix, 0),
                ));
            }
        }
        let name = format!("{}_{flow}", self.config.state_cookie);
        headers.extend(header(
            http::header::SET_COOKIE,
            self.set_cookie(
                &name,
                &sealed,
                &self.config.prefix,
                self.config.state_ttl.as_secs() as i64,
            ),
        ));
        if html {
            headers.extend(header(http::header::LOCATION, url));
            return StepUpAnswer::ok(
                Rendered {
                    status: 302,
                    headers,
                    body: Bytes::new(),
                },
                "started",
            );
        }
        headers.push((
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
        let body = json!({
            "verification_url": url,
            "request_id": created.id,
            "expires_at": created.expires_at,
            "callback": format!("{}callback", self.config.prefix),
            "state": sealed,
        });
        StepUpAnswer::ok(
            Rendered {
                status: 200,
                headers,
                body: Bytes::from(body.to_string()),
            },
            "started",
        )
    }

    /// The flow a callback finishes: the state cookie of `flow` (the callback's own query), or
    /// for a callback without one the browser's flow for `verification_request_id`, or its only
    /// one (a state cookie from before flows had ids included); `(sealed, from_cookie)`.
    fn callback_state(&self, headers: &http::HeaderMap, query: &str) -> Option<(String, bool)> {
        let name = &self.config.state_cookie;
        let flows = flow_cookies(headers, name);
        let wanted_flow = query_param(query, "flow").map(|f| {
            // A service that appends its own `?…` to the redirect URL leaves it after the id.
            f.chars()
                .take_while(char::is_ascii_hexdigit)
                .take(FLOW_LEN)
                .collect::<String>()
        });
        if let Some(flow) = wanted_flow {
            return flows
                .iter()
                .find(|(f, _)| *f == flow)
                .map(|(_, v)| ((*v).to_owned(), true));
        }
        let rid = query_param(query, "verification_request_id");
        let mut candidates: Vec<&str> = flows.iter().map(|(_, v)| *v).collect();
        candidates.extend(cookie(headers, name));
        let now = unix_now();
        let pick = match rid {
            Some(rid) => candidates
                .iter()
                .find(|v| open_state(&self.config.cookie_key, v, now).is_ok_and(|s| s.rid == rid)),
            None if candidates.len() == 1 => candidates.first(),
            None => None,
        };
        pick.map(|v| ((*v).to_owned(), true))
    }

    /// `GET <prefix>callback`: finishes a flow. The state comes from the flow's state cookie,
    /// or (for API clients that cannot keep cookies) from a `state` query parameter.
    ///
    /// The verified tokens must satisfy the policy the flow was started for (`policy` looks it
    /// up by name), together with the proofs the browser already holds: a verification that
    /// does not is answered with what was verified and what the page needs, and sets nothing —
    /// no cookie that grants nothing, no automatic new verification. A browser is sent back to
    /// the flow's `return_to` with the proof cookie set: the new proofs and the ones it held
    /// (still valid, not replaced by a newer proof of the same identity), at most
    /// [`crate::tokens::MAX_TOKENS_PER_REQUEST`], newest first, split across up to
    /// [`crate::tokens::MAX_PROOF_COOKIES`] cookies. A client that asks for JSON (`Accept:
    /// application/json`) gets `{proof_tokens, expires_in, return_to}`.
    ///
    /// A flow completes once: a second callback with the same state (from anyone who saw it) is
    /// refused `state_used` (per replica; see docs/security.md). The proof cookie is set only
    /// when the state came from this browser's own state cookie: a `state` in the query proves
    /// nothing about who opened the link, so it earns only the JSON answer — otherwise an
    /// attacker could complete a flow as themselves and plant their proof in a victim's browser.
    pub async fn callback(
        &self,
        enforcer: &Enforcer,
        request_headers: &http::HeaderMap,
        query: &str,
        policy: &(dyn Fn(&str) -> Option<Arc<Policy>> + Sync),
    ) -> StepUpAnswer {
        let json_client = headers_accept_json(request_headers);
        let html = !json_client && crate::render::wants_html(request_headers);
        let missing = || {
            Refused::new(
                400,
                "state_missing",
                "No step-up is in progress in this browser; start again from the page you wanted",
                "This verification can't be finished here",
            )
            .message(
                "No verification is in progress in this browser: it may have been started in \
                 another browser, or already finished. Go back to the page you wanted and \
                 start again.",
            )
            .home()
        };
        let (sealed, from_cookie) = match self.callback_state(request_headers, query) {
            Some(found) => found,
            None => match query_param(query, "state") {
                Some(q) if json_client => (q, false),
                _ => return self.refused(html, "refused", missing()),
            },
        };
        let state = match open_state(&self.config.cookie_key, &sealed, unix_now()) {
            Ok(s) => s,
            Err(e) => {
                let (heading, message) = match e {
                    StateError::Expired => (
                        "This verification has expired",
                        "It was started too long ago. Go back to the page you wanted and start \
                         again.",
                    ),
                    _ => (
                        "This verification can't be finished here",
                        "Its details were damaged on the way. Go back to the page you wanted \
                         and start again.",
                    ),
                };
                let detail = match e {
                    StateError::Expired => "The step-up state was refused: expired state",
                    StateError::Forged => "The step-up state was refused: forged state",
                    StateError::Malformed => "The step-up state was refused: malformed state",
                };
                let r = Refused::new(400, "state_invalid", detail, heading)
                    .message(message)
                    .home();
                return self.refused(html, "refused", r);
            }
        };
        if let Some(rid) = query_param(query, "verification_request_id") {
            if rid != state.rid {
                return self.refused(html, "refused", missing());
            }
        }
        let retry = self.start_link(&state.policy, &state.return_to);
        let Some(api) = &self.api else {
            return self.refused(html, "failed", unavailable());
        };
        let request = match api.get_verification_request(&state.rid).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "fetching the verification request failed");
                return self.refused(html, "failed", unreachable(&retry));
            }
        };
        let mut tokens: Vec<(String, Arc<VerifiedProof>)> = Vec::new();
        for token in request.proof_tokens() {
            match self.check_new_token(enforcer, token).await {
                Ok(p) => tokens.push((token.to_owned(), p)),
                Err(reason) => tracing::info!(%reason, "a step-up token was refused"),
            }
        }
        if tokens.is_empty() {
            let r = Refused::new(
                401,
                "step_up_incomplete",
                "The verification was not completed",
                "The verification was not completed",
            )
            .message("Nothing was verified, so the page can't be opened yet.")
            .action("Try again", retry)
            .home();
            return self.refused(html, "refused", r);
        }
        // The proofs the browser already holds (only when this is its own flow).
        let mut held: Vec<(String, Arc<VerifiedProof>)> = Vec::new();
        if from_cookie {
            for token in crate::tokens::extract_tokens(
                request_headers,
                &[crate::tokens::TokenSource::Cookie(
                    self.config.proof_cookie.clone(),
                )],
            )
            .unwrap_or_default()
            {
                let replaced = |p: &VerifiedProof| {
                    tokens.iter().any(|(t, n)| {
                        t == token
                            || (n.claims.proof_type == p.claims.proof_type
                                && n.identifier_hash().is_some()
                                && n.identifier_hash() == p.identifier_hash())
                    })
                };
                let proof = match enforcer.check_token(token) {
                    Ok(p) => Some(p),
                    Err(r) if r.family() == Family::Unavailable => {
                        enforcer.verifier().verify(token).ok()
                    }
                    Err(_) => None,
                };
                if let Some(p) = proof.filter(|p| !replaced(p)) {
                    held.push((token.to_owned(), p));
                }
            }
        }
        // Atomic: of two callbacks racing with one state, exactly one gets the tokens; with a
        // shared store, across replicas too.
        let mut fresh = self
            .completed
            .entry(state.rid.clone())
            .or_insert(())
            .is_fresh();
        if let (true, Some(once)) = (fresh, &self.shared_once) {
            let ttl = self.config.state_ttl + Duration::from_secs(60);
            if once.claim(&format!("state:{}", state.rid), ttl).await == Some(false) {
                fresh = false;
            }
        }
        if !fresh {
            let r = Refused::new(
                400,
                "state_used",
                "This step-up has already been completed; start again",
                "This verification was already used",
            )
            .message("A verification link works once. Go back to the page you wanted.")
            .action(
                "Go back",
                safe_return_to(&state.return_to).unwrap_or("/").to_owned(),
            )
            .home();
            return self.refused(html, "refused", r);
        }
        let now = unix_now();
        let mut all: Vec<(String, Arc<VerifiedProof>)> = tokens.clone();
        all.extend(held);
        all.truncate(crate::tokens::MAX_TOKENS_PER_REQUEST);
        let mut headers: Vec<(HeaderName, HeaderValue)> = vec![(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        )];
        let flow_cookie = if state.flow.is_empty() {
            self.config.state_cookie.clone()
        } else {
            format!("{}_{}", self.config.state_cookie, state.flow)
        };
        if from_cookie {
            headers.extend(header(
                http::header::SET_COOKIE,
                self.set_cookie(&flow_cookie, "", &self.config.prefix, 0),
            ));
        }
        if let Some(policy) = policy(&state.policy) {
            let proofs: Vec<Arc<VerifiedProof>> = all.iter().map(|(_, p)| p.clone()).collect();
            if policy.evaluate(&proofs, now).is_none() {
                let verified: Vec<String> = request
                    .assets
                    .iter()
                    .filter(|a| a.proof_token.is_some())
                    .map(|a| {
                        let mut text = describe_type(&a.kind);
                        if let Some(id) = &a.identifier {
                            text.push_str(&format!(" ({id})"));
                        }
                        text
                    })
                    .collect();
                let r = Refused::new(
                    403,
                    "policy_unmet",
                    "The verified proofs do not meet the policy of the page you wanted",
                    "That verification doesn't open this page",
                )
                .message(
                    "The verification succeeded, but not for an address or account this page \
                     allows. Nothing was saved. Try again with one the page accepts.",
                )
                .detail("You verified", verified.join(", "))
                .detail("This page needs", describe_policy(&policy))
                .action("Try again with another address", retry)
                .home();
                let mut answer = self.refused(html, "policy_unmet", r);
                if from_cookie {
                    answer.response.headers.extend(header(
                        http::header::SET_COOKIE,
                        self.set_cookie(&flow_cookie, "", &self.config.prefix, 0),
                    ));
                }
                return answer;
            }
        }
        let min_exp = tokens.iter().map(|(_, p)| p.exp).min().unwrap_or(now);
        if from_cookie {
            headers.extend(self.proof_cookies(request_headers, &all, now));
        }
        if json_client {
            // An API client gets its tokens in the answer, to present as a bearer token.
            headers.push((
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ));
            let body = json!({
                "proof_tokens": tokens.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
                "expires_in": (min_exp - now).max(0),
                "return_to": state.return_to,
            });
            return StepUpAnswer::ok(
                Rendered {
                    status: 200,
                    headers,
                    body: Bytes::from(body.to_string()),
                },
                "completed",
            );
        }
        // Checked again here: a state sealed with a leaked key must still not redirect off-site.
        let target = safe_return_to(&state.return_to).unwrap_or("/").to_string();
        headers.extend(header(http::header::LOCATION, target));
        StepUpAnswer::ok(
            Rendered {
                status: 302,
                headers,
                body: Bytes::new(),
            },
            "completed",
        )
    }

    /// Checks a token the verification just returned. A token issued a moment ago may name a
    /// status-list slot our copy does not have yet: that is "cannot check now", not "bad"; the
    /// callback already waits on the network, so it refreshes that list here rather than send
    /// the person back to a 503, and keeps a token it still cannot check (every later request
    /// checks it again).
    async fn check_new_token(
        &self,
        enforcer: &Enforcer,
        token: &str,
    ) -> Result<Arc<VerifiedProof>, Reason> {
        let mut checked = enforcer.check_token(token);
        if matches!(checked, Err(Reason::StatusUnavailable)) {
            if let Some(status) = enforcer
                .verifier()
                .verify(token)
                .ok()
                .and_then(|p| p.claims.status.clone())
            {
                let uri = &status.status_list.uri;
                if let Err(e) = enforcer.revocation().refresh_status_list(uri).await {
                    tracing::warn!(error = %e, "refreshing a status list during a callback failed");
                }
                checked = enforcer.check_token(token);
            }
        }
        match checked {
            Err(r) if r.family() == Family::Unavailable => enforcer.verifier().verify(token),
            other => other,
        }
    }

    /// `Set-Cookie`s that hold `proofs` (newest first) in the proof cookie and as many
    /// continuations as they need, each under [`MAX_COOKIE_VALUE`] bytes and living as long as
    /// its longest-lived token; continuations the browser holds but no longer needs are cleared.
    fn proof_cookies(
        &self,
        request_headers: &http::HeaderMap,
        proofs: &[(String, Arc<VerifiedProof>)],
        now: i64,
    ) -> Vec<(HeaderName, HeaderValue)> {
        use crate::tokens::{proof_cookie_name, COOKIE_TOKEN_SEPARATOR, MAX_PROOF_COOKIES};
        let mut chunks: Vec<(String, i64)> = Vec::new();
        for (token, proof) in proofs {
            let fits = chunks.last().is_some_and(|(value, _)| {
                value.len() + COOKIE_TOKEN_SEPARATOR.len() + token.len() <= MAX_COOKIE_VALUE
            });
            if fits {
                if let Some((value, exp)) = chunks.last_mut() {
                    value.push_str(COOKIE_TOKEN_SEPARATOR);
                    value.push_str(token);
                    *exp = (*exp).max(proof.exp);
                }
            } else if chunks.len() < MAX_PROOF_COOKIES {
                chunks.push((token.clone(), proof.exp));
            } else {
                break;
            }
        }
        let mut out = Vec::new();
        for (i, (value, exp)) in chunks.iter().enumerate() {
            let name = proof_cookie_name(&self.config.proof_cookie, i);
            out.extend(header(
                http::header::SET_COOKIE,
                self.set_cookie(&name, value, "/", (exp - now).max(0)),
            ));
        }
        for i in chunks.len()..MAX_PROOF_COOKIES {
            let name = proof_cookie_name(&self.config.proof_cookie, i);
            if cookie(request_headers, &name).is_some() {
                out.extend(header(
                    http::header::SET_COOKIE,
                    self.set_cookie(&name, "", "/", 0),
                ));
            }
        }
        out
    }

    /// `GET <prefix>logout`: clears the proof cookies and returns to `return_to`; without one,
    /// a browser gets a page that says it is signed out (an API client a redirect to `/`).
    pub fn logout(&self, request_headers: &http::HeaderMap, query: &str) -> StepUpAnswer {
        let return_to = query_param(query, "return_to");
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for i in 0..crate::tokens::MAX_PROOF_COOKIES {
            let name = crate::tokens::proof_cookie_name(&self.config.proof_cookie, i);
            headers.extend(header(
                http::header::SET_COOKIE,
                self.set_cookie(&name, "", "/", 0),
            ));
        }
        let response = match return_to {
            None if crate::render::wants_html(request_headers) => {
                let page = Page::new(
                    200,
                    "signed_out",
                    "You are signed out",
                    "Your verifications have been removed from this browser. Pages that need \
                     one will ask you to verify again.",
                )
                .action("Go to the home page", "/");
                let mut r = self.pages.render(&page);
                r.headers.extend(headers);
                r
            }
            target => {
                let target = target.unwrap_or_else(|| "/".into());
                let target = safe_return_to(&target).unwrap_or("/").to_string();
                headers.push((
                    http::header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ));
                headers.extend(header(http::header::LOCATION, target));
                Rendered {
                    status: 302,
                    headers,
                    body: Bytes::new(),
                }
            }
        };
        StepUpAnswer::ok(response, "signed_out")
    }

    /// `POST <prefix>webhook`: checks the content type and the signature and applies
    /// `proof.revoked`, `proof.suspended` and `proof.unsuspended` at once.
    ///
    /// A delivery is applied once: a repeat (same `X-Proof-Delivery` id, or same timestamp and
    /// signature) is acknowledged `204` without effect. Per proof, events apply in timestamp
    /// order: an event older than the last one applied (a replayed `proof.unsuspended` after a
    /// later `proof.suspended`) is ignored. `proof.revoked` is final whatever its order.
    pub fn webhook(
        &self,
        enforcer: &Enforcer,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> StepUpAnswer {
        let refused = |status, code, detail: &str| StepUpAnswer {
            response: crate::render::simple(status, code, detail),
            outcome: "refused",
            reason: code,
        };
        let Some(secret) = &self.config.webhook_secret else {
            return refused(404, "webhooks_disabled", "Webhooks are not configured");
        };
        if let Err(e) = webhook::verify_headers(secret, headers, body) {
            return refused(
                401,
                "invalid_webhook",
                &format!("The webhook was refused: {e}"),
            );
        }
        let json = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return refused(
                415,
                "unsupported_media_type",
                "Webhooks are sent as application/json",
            );
        }
        let Ok(event) = serde_json::from_slice::<webhook::WebhookEvent>(body) else {
            return refused(400, "invalid_webhook", "The webhook body is not an event");
        };
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        // Both headers are present: the signature check above required them.
        let timestamp = text(webhook::TIMESTAMP_HEADER).unwrap_or("").trim();
        let delivery = match text(webhook::DELIVERY_HEADER).filter(|d| !d.is_empty()) {
            Some(id) => format!("id:{id}"),
            None => format!(
                "sig:{timestamp}.{}",
                text(webhook::SIGNATURE_HEADER).unwrap_or("")
            ),
        };
        if !self.deliveries.entry(delivery).or_insert(()).is_fresh() {
            return StepUpAnswer::ok(no_content(), "duplicate");
        }
        let at: i64 = timestamp.parse().unwrap_or(0);
        if let Some(id) = event.subject_proof_id() {
            let change = match event.event.as_str() {
                "proof.revoked" => Some(Some(Pushed::Revoked)),
                "proof.suspended" => Some(Some(Pushed::Suspended)),
                "proof.unsuspended" => Some(None),
                _ => None,
            };
            if let Some(change) = change {
                let exp = event
                    .data
                    .as_ref()
                    .and_then(|d| d.get("exp").or_else(|| d.get("expires_at")))
                    .and_then(serde_json::Value::as_i64)
                    .filter(|exp| *exp > at)
                    .unwrap_or_else(|| {
                        at.saturating_add(PUSHED_EVENT_DEFAULT_TTL.as_secs() as i64)
                    });
                let pushed = PushedEvent {
                    proof_id: id.to_owned(),
                    change,
                    at,
                    exp,
                };
                if self.apply_event(enforcer, &pushed) {
                    if let Some(sink) = &self.event_sink {
                        sink.publish(&pushed);
                    }
                }
            }
        }
        StepUpAnswer::ok(no_content(), "applied")
    }

    /// Applies a webhook event to the revocation overlay — one this replica verified, or one
    /// another replica sent on — in timestamp order per proof: an event older than the last one
    /// applied for its proof is ignored, except `proof.revoked`, which is final whatever its
    /// order. Returns whether it was applied.
    pub fn apply_event(&self, enforcer: &Enforcer, event: &PushedEvent) -> bool {
        let revoked = event.change == Some(Pushed::Revoked);
        // Events as new as the last one applied for this proof, or newer, go through.
        let mut in_order = true;
        self.last_event
            .entry(event.proof_id.clone())
            .and_upsert_with(|last| {
                let last = last.map_or(i64::MIN, |e| e.into_value());
                in_order = event.at >= last;
                last.max(event.at)
            });
        let applied = revoked || in_order;
        if applied {
            enforcer.revocation().push(&event.proof_id, event.change);
        }
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_targets() {
        for good in ["/", "/admin/x?y=1", "/a%20b"] {
            assert_eq!(safe_return_to(good), Some(good));
        }
        for bad in [
            "//evil.example",
            "https://evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "/%2Fevil.example",
            "/%5Cevil.example",
            "javascript:alert(1)",
            "evil",
            "/a\r\nSet-Cookie: x=y",
            "/%0d%0aX: y",
            "",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn state_round_trip_forgery_and_expiry() {
        let key = b"k".repeat(32);
        let s = FlowState {
            rid: "r".into(),
            policy: "p".into(),
            return_to: "/x".into(),
            exp: unix_now() + 60,
            flow: "0123456789ab".into(),
        };
        let sealed = seal_state(&key, &s);
        assert_eq!(open_state(&key, &sealed, unix_now()), Ok(s.clone()));
        assert_eq!(
            open_state(b"other", &sealed, unix_now()),
            Err(StateError::Forged)
        );
        let (payload, tag) = sealed.split_once('.').unwrap();
        let forged = format!("{}x.{tag}", payload);
        assert!(open_state(&key, &forged, unix_now()).is_err());
        assert_eq!(
            open_state(&key, &sealed, s.exp + 1),
            Err(StateError::Expired)
        );
        assert_eq!(open_state(&key, "garbage", 0), Err(StateError::Malformed));
    }

    #[test]
    fn return_origin_only_for_this_sites_hosts() {
        let mut config = StepUpConfig::new(b"k".repeat(32));
        config.allowed_hosts = vec!["app.example".into()];
        let s = StepUp::new(config, None);
        let site = vec!["*.corp.example".to_string()];
        for (host, expected) in [
            ("localhost:8080", Some("http://localhost:8080")),
            ("127.0.0.1", Some("http://127.0.0.1")),
            ("[::1]:8080", Some("http://[::1]:8080")),
            ("app.example", Some("http://app.example")),
            ("APP.example.:443", Some("http://APP.example.:443")),
            ("admin.corp.example", Some("http://admin.corp.example")),
            ("corp.example", None),
            ("evil.example", None),
            ("localhost.evil.example", None),
            ("app.example@evil.example", None),
            ("app.example/evil", None),
            ("", None),
        ] {
            assert_eq!(
                s.origin("http", Some(host), &site).as_deref(),
                expected,
                "{host}"
            );
        }
        assert_eq!(s.origin("http", None, &site), None);
        let mut config = StepUpConfig::new(b"k".repeat(32));
        config.public_url = Some("https://site.example/".into());
        let s = StepUp::new(config, None);
        assert_eq!(
            s.origin("http", Some("evil.example"), &[]).as_deref(),
            Some("https://site.example")
        );
    }

    #[test]
    fn limiter_caps_per_client_and_globally() {
        let l = StartLimiter::new(2, 3);
        assert!(l.take("a").is_ok());
        assert!(l.take("a").is_ok());
        assert!(l.take("a").is_err());
        assert!(l.take("b").is_ok());
        assert!(l.take("c").is_err(), "global cap of 3");
    }

    #[test]
    fn query_and_cookie_parsing() {
        assert_eq!(
            query_param("a=1&return_to=%2Fx%3Fy", "return_to").as_deref(),
            Some("/x?y")
        );
        assert_eq!(query_param("a=%zz", "a"), None);
        let mut h = http::HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_static("x=1; proofgate_state=abc.def"),
        );
        assert_eq!(cookie(&h, "proofgate_state"), Some("abc.def"));
    }
}

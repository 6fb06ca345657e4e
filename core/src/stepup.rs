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

use crate::client::{AssetRequest, CreateVerificationRequest, ProofApiClient};
use crate::clock::unix_now;
use crate::decision::Enforcer;
use crate::params::percent_decode;
pub use crate::params::{cookie, query_param};
use crate::policy::{Combine, Policy, Rule};
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

/// The step-up endpoints.
pub struct StepUp {
    config: StepUpConfig,
    api: Option<ProofApiClient>,
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
}

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

fn problem(status: u16, code: &str, detail: &str) -> Rendered {
    crate::render::simple(status, code, detail)
}

fn header(name: HeaderName, value: String) -> Option<(HeaderName, HeaderValue)> {
    HeaderValue::from_str(&value).ok().map(|v| (name, v))
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
            limiter,
        }
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

    /// `GET <prefix>start?policy=…&return_to=…`: see [`StartRequest`] for what the adapter
    /// passes (an unlisted host is refused when `public_url` is not set, [`StepUp::origin`]).
    pub async fn start(&self, policy: Option<&Policy>, req: StartRequest<'_>) -> Rendered {
        let StartRequest {
            query,
            scheme,
            host,
            site_hosts,
            client,
            html,
        } = req;
        let return_to = query_param(query, "return_to").unwrap_or_else(|| "/".into());
        let Some(return_to) = safe_return_to(&return_to) else {
            return problem(
                400,
                "invalid_return_to",
                "return_to must be a relative path on this site",
            );
        };
        let Some(policy) = policy.filter(|p| !p.requirements().is_empty()) else {
            return problem(
                404,
                "unknown_policy",
                "No step-up is available for this policy",
            );
        };
        let Some(base) = self.origin(scheme, host, site_hosts) else {
            return problem(
                400,
                "untrusted_host",
                "This site's address is not one step-up may return to; the operator sets \
                 step_up.public_url or step_up.allowed_hosts",
            );
        };
        if let Err(retry) = self.limiter.take(client) {
            let mut r = problem(
                429,
                "rate_limited",
                "Too many verification starts; try again later",
            );
            r.headers
                .push((http::header::RETRY_AFTER, HeaderValue::from(retry)));
            return r;
        }
        let Some(api) = &self.api else {
            return problem(503, "step_up_unavailable", "Step-up is not configured");
        };
        let mut req = Self::request_for(policy);
        req.redirect_url = Some(format!("{base}{}callback", self.config.prefix));
        req.expires_in = Some(self.config.state_ttl.as_secs());
        let created = match api.create_verification_request(&req).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "creating a verification request failed");
                return problem(
                    502,
                    "step_up_failed",
                    "The verification service could not be reached",
                );
            }
        };
        let Some(url) = created.verification_url.clone() else {
            return problem(
                502,
                "step_up_failed",
                "The verification service returned no page",
            );
        };
        let state = FlowState {
            rid: created.id.clone(),
            policy: policy.name.clone(),
            return_to: return_to.to_string(),
            exp: unix_now() + self.config.state_ttl.as_secs() as i64,
        };
        let sealed = seal_state(&self.config.cookie_key, &state);
        let set_state = format!(
            "{}={sealed}; Path={}; Max-Age={}{}",
            self.config.state_cookie,
            self.config.prefix,
            self.config.state_ttl.as_secs(),
            self.cookie_attrs()
        );
        let mut headers: Vec<(HeaderName, HeaderValue)> = vec![(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        )];
        headers.extend(header(http::header::SET_COOKIE, set_state));
        if html {
            headers.extend(header(http::header::LOCATION, url));
            Rendered {
                status: 302,
                headers,
                body: Bytes::new(),
            }
        } else {
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
            Rendered {
                status: 200,
                headers,
                body: Bytes::from(body.to_string()),
            }
        }
    }

    /// `GET <prefix>callback`: finishes a flow. The state comes from the state cookie, or (for API
    /// clients that cannot keep cookies) from a `state` query parameter.
    ///
    /// A browser is sent back to the flow's `return_to` with the proof cookie set; a client that
    /// asks for JSON (`Accept: application/json`) gets `{proof_tokens, expires_in, return_to}`.
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
    ) -> Rendered {
        let json_client = headers_accept_json(request_headers);
        let (sealed, from_cookie) = match cookie(request_headers, &self.config.state_cookie) {
            Some(c) => (c.to_owned(), true),
            None => match query_param(query, "state") {
                Some(q) => (q, false),
                None => return problem(400, "state_missing", "No step-up is in progress"),
            },
        };
        if !from_cookie && !json_client {
            return problem(
                400,
                "state_missing",
                "No step-up is in progress in this browser; start again from the page you wanted",
            );
        }
        let state = match open_state(&self.config.cookie_key, &sealed, unix_now()) {
            Ok(s) => s,
            Err(e) => {
                return problem(
                    400,
                    "state_invalid",
                    &format!("The step-up state was refused: {e}"),
                )
            }
        };
        let Some(api) = &self.api else {
            return problem(503, "step_up_unavailable", "Step-up is not configured");
        };
        let request = match api.get_verification_request(&state.rid).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "fetching the verification request failed");
                return problem(
                    502,
                    "step_up_failed",
                    "The verification service could not be reached",
                );
            }
        };
        let mut tokens = Vec::new();
        let mut min_exp = i64::MAX;
        for token in request.proof_tokens() {
            // A token issued a moment ago may name a status-list slot our copy does not have
            // yet: that is "cannot check now", not "bad", so the cookie is set and every later
            // request checks it again.
            // The callback already waits on the network, so it refreshes that list here rather
            // than send the person back to a 503.
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
            let checked = match checked {
                Err(r) if r.family() == Family::Unavailable => enforcer.verifier().verify(token),
                other => other,
            };
            match checked {
                Ok(p) => {
                    min_exp = min_exp.min(p.exp);
                    tokens.push(token.to_owned());
                }
                Err(reason) => tracing::info!(%reason, "a step-up token was refused"),
            }
        }
        if tokens.is_empty() {
            return problem(
                401,
                "step_up_incomplete",
                "The verification was not completed",
            );
        }
        // Atomic: of two callbacks racing with one state, exactly one gets the tokens.
        if !self
            .completed
            .entry(state.rid.clone())
            .or_insert(())
            .is_fresh()
        {
            return problem(
                400,
                "state_used",
                "This step-up has already been completed; start again",
            );
        }
        let max_age = (min_exp - unix_now()).max(0);
        let clear_state = format!(
            "{}=; Path={}; Max-Age=0{}",
            self.config.state_cookie,
            self.config.prefix,
            self.cookie_attrs()
        );
        let proof = format!(
            "{}={}; Path=/; Max-Age={max_age}{}",
            self.config.proof_cookie,
            tokens.join(crate::tokens::COOKIE_TOKEN_SEPARATOR),
            self.cookie_attrs()
        );
        let mut headers: Vec<(HeaderName, HeaderValue)> = vec![(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        )];
        if from_cookie {
            headers.extend(header(http::header::SET_COOKIE, clear_state));
            headers.extend(header(http::header::SET_COOKIE, proof));
        }
        if json_client {
            // An API client gets its tokens in the answer, to present as a bearer token.
            headers.push((
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ));
            let body = json!({
                "proof_tokens": tokens,
                "expires_in": max_age,
                "return_to": state.return_to,
            });
            return Rendered {
                status: 200,
                headers,
                body: Bytes::from(body.to_string()),
            };
        }
        // Checked again here: a state sealed with a leaked key must still not redirect off-site.
        let target = safe_return_to(&state.return_to).unwrap_or("/").to_string();
        headers.extend(header(http::header::LOCATION, target));
        Rendered {
            status: 302,
            headers,
            body: Bytes::new(),
        }
    }

    /// `POST <prefix>webhook`: checks the content type and the signature and applies
    /// `proof.revoked`, `proof.suspended` and `proof.unsuspended` at once.
    ///
    /// A delivery is applied once: a repeat (same `X-Proof-Delivery` id, or same timestamp and
    /// signature) is acknowledged `204` without effect. Per proof, events apply in timestamp
    /// order: an event older than the last one applied (a replayed `proof.unsuspended` after a
    /// later `proof.suspended`) is ignored. `proof.revoked` is final whatever its order.
    pub fn webhook(&self, enforcer: &Enforcer, headers: &http::HeaderMap, body: &[u8]) -> Rendered {
        let Some(secret) = &self.config.webhook_secret else {
            return problem(404, "webhooks_disabled", "Webhooks are not configured");
        };
        if let Err(e) = webhook::verify_headers(secret, headers, body) {
            return problem(
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
            return problem(
                415,
                "unsupported_media_type",
                "Webhooks are sent as application/json",
            );
        }
        let Ok(event) = serde_json::from_slice::<webhook::WebhookEvent>(body) else {
            return problem(400, "invalid_webhook", "The webhook body is not an event");
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
            return Rendered {
                status: 204,
                headers: Vec::new(),
                body: Bytes::new(),
            };
        }
        let at: i64 = timestamp.parse().unwrap_or(0);
        let store = enforcer.revocation();
        if let Some(id) = event.subject_proof_id() {
            let change = match event.event.as_str() {
                "proof.revoked" => Some(Some(Pushed::Revoked)),
                "proof.suspended" => Some(Some(Pushed::Suspended)),
                "proof.unsuspended" => Some(None),
                _ => None,
            };
            if let Some(change) = change {
                let revoked = change == Some(Pushed::Revoked);
                // Events as new as the last one applied for this proof, or newer, go through.
                let mut in_order = true;
                self.last_event
                    .entry(id.to_owned())
                    .and_upsert_with(|last| {
                        let last = last.map_or(i64::MIN, |e| e.into_value());
                        in_order = at >= last;
                        last.max(at)
                    });
                if revoked || in_order {
                    store.push(id, change);
                }
            }
        }
        Rendered {
            status: 204,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `GET <prefix>logout`: clears the proof cookie and returns to `return_to` (or `/`).
    pub fn logout(&self, query: &str) -> Rendered {
        let target = query_param(query, "return_to").unwrap_or_else(|| "/".into());
        let target = safe_return_to(&target).unwrap_or("/").to_string();
        let clear = format!(
            "{}=; Path=/; Max-Age=0{}",
            self.config.proof_cookie,
            self.cookie_attrs()
        );
        let mut headers: Vec<(HeaderName, HeaderValue)> = vec![(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        )];
        headers.extend(header(http::header::SET_COOKIE, clear));
        headers.extend(header(http::header::LOCATION, target));
        Rendered {
            status: 302,
            headers,
            body: Bytes::new(),
        }
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

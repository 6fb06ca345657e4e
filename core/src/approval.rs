//! A person's approval before a risky request: a policy with an approval
//! ([`crate::policy::ApprovalRule`]) holds each request it allows until an approver of the
//! issuer's HITL configuration has said yes, then forwards it **once**.
//!
//! 1. The first request (its proofs already accepted by the policy) creates a confirmation
//!    (`POST /api/v1/confirmations`) whose message says what is asked ([`message`]; encrypted
//!    to the configuration's key when it has one, [`envelope`]) and is answered `202 Accepted`
//!    with a signed, short-lived approval ticket ([`ticket`]) bound to the method, the target
//!    (normalized path and query), the SHA-256 of the body, the requester (the proofs'
//!    subjects) and the confirmation, a status URL (`<prefix>approvals/<confirmation id>`) and
//!    `Retry-After`. A browser gets a page that refreshes itself (no script: `Refresh`).
//! 2. The gateway learns the decision from the signed `confirmation.approved` /
//!    `confirmation.denied` webhook, or by fetching the confirmation when asked (at most once per
//!    [`ApprovalsConfig::poll_interval`] per confirmation). An approval counts only with its
//!    `proof_token` verified offline: signature by a published `proof` key, `iss`, `exp`,
//!    `type = "confirmation"` and an approving `decision`; it is bound to the confirmation by the
//!    fetch or the signed webhook that carried it.
//! 3. The client repeats the request with the ticket (header [`TICKET_HEADER`], or for a
//!    browser the cookie [`TICKET_COOKIE`] the status page sets once approved). Approved: the
//!    ticket is claimed in the [`TicketLedger`] and the request forwarded without the ticket;
//!    a second use is refused `approval_ticket_used`. Pending, denied, expired (the rule's
//!    timeout, or the issuer's), unreachable issuer, or a ticket that is invalid or made for
//!    another request, body or requester: each its own reason and answer, never forwarded.
//!
//! Single use holds per ledger: the default [`LocalLedger`] is per process, so with several
//! replicas a ticket could be used once on each unless a shared ledger is installed
//! ([`crate::gate::GateBuilder::ticket_ledger`]).
//!
//! Layer 6 (protocols): used by the gate.

pub mod envelope;
pub mod ledger;
pub mod message;
pub mod ticket;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use serde::Deserialize;
use serde_json::json;

pub use self::ledger::{Claim, LocalLedger, TicketLedger};
use self::ticket::{Ticket, TicketError};
use crate::client::{ConfirmationStatus, CreateConfirmation, ProofApiClient};
use crate::clock::unix_now;
use crate::decision::Enforcer;
use crate::forward::UpstreamEdits;
use crate::pages::{human_duration, Page, Pages};
use crate::params::{cookie, query_param};
use crate::policy::ApprovalRule;
use crate::proof::VerifiedProof;
use crate::reason::Reason;
use crate::render::{self, Rendered};

/// The request header a client repeats its request with: `Proof-Approval: <ticket>`.
pub const TICKET_HEADER: &str = "proof-approval";

/// The cookie a browser carries its ticket in once approved.
pub const TICKET_COOKIE: &str = "proofgate_approval";

/// The status endpoint, under the step-up prefix: `<prefix>approvals/<confirmation id>`.
pub const STATUS_SEGMENT: &str = "approvals/";

/// The most body bytes that can be digested: the gateway replays a digested body to the
/// upstream from Pingora's retry buffer, which holds 64 KiB.
pub const MAX_BODY_LIMIT: usize = 64 * 1024;

/// Settings of approvals (`[approvals]`).
#[derive(Debug, Clone)]
pub struct ApprovalsConfig {
    /// Lifetime of a ticket, from the first request to its use; longer than every rule's
    /// timeout. Defaults to 15 minutes.
    pub ticket_ttl: Duration,
    /// Largest body digested; a larger one is refused `approval_body_too_large` (413). At most
    /// [`MAX_BODY_LIMIT`]. Defaults to 64 KiB.
    pub max_body_bytes: usize,
    /// `Retry-After` while pending, and the least time between two fetches of one
    /// confirmation. Defaults to 2 s.
    pub poll_interval: Duration,
    /// `proof_expiry_days` of the confirmations created. Defaults to none (the issuer's).
    pub proof_expiry_days: Option<u32>,
    /// Confirmations one requester (one set of proofs, or all anonymous requests together)
    /// may ask for per minute, per replica. Defaults to 10.
    pub per_requester_per_minute: u32,
    /// Confirmations asked for per minute by all requesters, per replica (each is a Proof API
    /// call, and a message to a person). Defaults to 30.
    pub global_per_minute: u32,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self {
            ticket_ttl: Duration::from_secs(900),
            max_body_bytes: MAX_BODY_LIMIT,
            poll_interval: Duration::from_secs(2),
            proof_expiry_days: None,
            per_requester_per_minute: 10,
            global_per_minute: 30,
        }
    }
}

/// Where a confirmation stands, as far as the gateway knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No decision yet.
    Pending,
    /// Approved, with a verified approval token.
    Approved,
    /// Denied by a person (or cancelled).
    Denied,
    /// Nobody decided in time.
    Expired,
}

impl Status {
    /// `pending`, `approved`, `denied` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Known {
    status: Status,
    /// When the issuer was last asked (or told us).
    checked: Instant,
    /// When the gateway stops waiting (created here), Unix s.
    due: Option<i64>,
}

/// The body of a held request, as the adapter read it.
#[derive(Debug, Clone, Copy)]
pub enum HeldBody<'a> {
    /// The whole body (empty when there is none).
    Read(&'a [u8]),
    /// Longer than [`ApprovalsConfig::max_body_bytes`]; reading stopped.
    TooLarge,
}

/// A request a policy allowed, held for approval.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    /// The policy's approval.
    pub rule: &'a ApprovalRule,
    /// The policy's name.
    pub policy: &'a str,
    /// The method.
    pub method: &'a Method,
    /// The normalized path and the query as received.
    pub target: &'a str,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The proofs that satisfied the policy.
    pub proofs: &'a [Arc<VerifiedProof>],
    /// The delegations that satisfied the policy: an agent is a requester like a person, so a
    /// ticket made for one agent's delegation is refused to another's.
    pub delegations: &'a [crate::delegation::Delegated],
    /// The body.
    pub body: HeldBody<'a>,
}

/// What became of a held request.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Approved, ticket claimed: forward it, without the ticket ([`strip_ticket`]).
    Forward,
    /// Answer it.
    Respond(Rendered),
}

/// A held request's verdict, with what the adapter logs and counts.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `allow` (forwarded), `approval` (202: waiting for a person) or `deny`.
    pub decision: &'static str,
    /// The reason; `None` when forwarded.
    pub reason: Option<Reason>,
    /// What to do.
    pub verdict: Verdict,
}

/// What the approvals counted so far (`proofgate_approvals_total{outcome}`).
#[derive(Debug, Default)]
struct Counters {
    created: AtomicU64,
    approved: AtomicU64,
    denied: AtomicU64,
    expired: AtomicU64,
    used: AtomicU64,
    replay_refused: AtomicU64,
    ticket_refused: AtomicU64,
    unavailable: AtomicU64,
    rate_limited: AtomicU64,
}

/// The outcomes [`Approvals::counts`] reports, in order.
pub const OUTCOMES: [&str; 9] = [
    "created",
    "approved",
    "denied",
    "expired",
    "used",
    "replay_refused",
    "ticket_refused",
    "unavailable",
    "rate_limited",
];

/// The approvals engine (one per gate).
pub struct Approvals {
    config: ApprovalsConfig,
    key: hmac::Key,
    api: Option<ProofApiClient>,
    ledger: Arc<dyn TicketLedger>,
    pages: Arc<Pages>,
    prefix: String,
    secure_cookies: bool,
    known: moka::sync::Cache<String, Known>,
    /// The HITL configurations' public keys (`None`: the configuration has none), per id.
    hitl_keys: moka::sync::Cache<String, Option<Arc<envelope::RecipientKey>>>,
    limiter: crate::stepup::StartLimiter,
    counters: Counters,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("config", &self.config)
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

/// A signed `confirmation.*` webhook, as far as approvals read it.
#[derive(Debug, Deserialize)]
struct ConfirmationEvent {
    event: String,
    #[serde(default)]
    confirmation_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    proof_token: Option<String>,
    #[serde(default)]
    response: Option<EventResponse>,
}

#[derive(Debug, Deserialize, Default)]
struct EventResponse {
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// Whether `id` can be a confirmation id in a path: 1–128 of `[A-Za-z0-9_-]`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn header(name: HeaderName, value: &str) -> Option<(HeaderName, HeaderValue)> {
    HeaderValue::from_str(value).ok().map(|v| (name, v))
}

/// The title of a reason's answer (problem+json `title`).
/// The heading and message of a reason's page.
fn words(reason: Reason) -> (&'static str, &'static str) {
    match reason {
        Reason::ApprovalDenied => (
            "Your request was denied",
            "The person asked to approve this request said no. Nothing was sent.",
        ),
        Reason::ApprovalExpired => (
            "No one approved your request in time",
            "The approval was not given in time, so nothing was sent. Ask again if it is \
             still needed.",
        ),
        Reason::ApprovalUnavailable => (
            "Approval is not available right now",
            "This request needs a person's approval, which cannot be asked for or checked at \
             the moment. This is not your fault: try again later.",
        ),
        Reason::ApprovalRateLimited => (
            "Too many approvals asked for",
            "Approvals were asked for too often. Wait a minute and send the request again.",
        ),
        Reason::ApprovalBodyTooLarge => (
            "This request is too large to be approved",
            "Requests that need approval must be smaller. Nothing was sent.",
        ),
        Reason::ApprovalTicketUsed => (
            "This approval was already used",
            "An approval lets one request through, once. Send the request again to ask for a \
             new approval.",
        ),
        _ => (
            "This approval does not fit this request",
            "The approval presented was made for another request, or is no longer valid. \
             Nothing was sent. Send the request again to ask for a new approval.",
        ),
    }
}

impl Approvals {
    /// Approvals signing tickets with a key derived from `secret` (the step-up cookie key),
    /// creating confirmations with `api` (`None`: every held request is `approval_unavailable`).
    pub fn new(
        config: ApprovalsConfig,
        secret: &[u8],
        api: Option<ProofApiClient>,
        ledger: Arc<dyn TicketLedger>,
        pages: Arc<Pages>,
        prefix: &str,
        secure_cookies: bool,
    ) -> Self {
        let ttl = config.ticket_ttl + Duration::from_secs(60);
        Self {
            key: ticket::ticket_key(secret),
            api,
            ledger,
            pages,
            prefix: prefix.to_owned(),
            secure_cookies,
            known: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            hitl_keys: moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
            counters: Counters::default(),
            limiter: crate::stepup::StartLimiter::new(
                config.per_requester_per_minute,
                config.global_per_minute,
            ),
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ApprovalsConfig {
        &self.config
    }

    /// The ledger tickets are claimed in.
    pub fn ledger(&self) -> &Arc<dyn TicketLedger> {
        &self.ledger
    }

    /// Counts so far, per outcome of [`OUTCOMES`].
    pub fn counts(&self) -> [(&'static str, u64); 9] {
        let c = &self.counters;
        let values = [
            &c.created,
            &c.approved,
            &c.denied,
            &c.expired,
            &c.used,
            &c.replay_refused,
            &c.ticket_refused,
            &c.unavailable,
            &c.rate_limited,
        ];
        let mut out = [("", 0); 9];
        for (i, v) in values.iter().enumerate() {
            out[i] = (OUTCOMES[i], v.load(Ordering::Relaxed));
        }
        out
    }

    /// The status URL of a confirmation.
    pub fn status_url(&self, cid: &str) -> String {
        format!("{}{STATUS_SEGMENT}{cid}", self.prefix)
    }

    /// The confirmation id a status URL path names, if `path` is one.
    pub fn status_endpoint<'p>(&self, path: &'p str) -> Option<&'p str> {
        let cid = path
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(STATUS_SEGMENT)?;
        valid_id(cid).then_some(cid)
    }

    fn learn(&self, cid: &str, status: Status) {
        let mut previous = None;
        self.known.entry(cid.to_owned()).and_upsert_with(|old| {
            let old = old.map(|e| e.into_value());
            previous = old.map(|k| k.status);
            Known {
                status,
                checked: Instant::now(),
                due: old.and_then(|k| k.due),
            }
        });
        if status != Status::Pending && previous != Some(status) {
            let counter = match status {
                Status::Approved => &self.counters.approved,
                Status::Denied => &self.counters.denied,
                _ => &self.counters.expired,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Applies a signed webhook body (its signature already checked): a
    /// `confirmation.approved` with a verified approval token, or a `confirmation.denied`
    /// (a timeout when `response` says `system`/`timeout`). Returns what was learned.
    pub fn on_webhook(&self, enforcer: &Enforcer, body: &[u8]) -> Option<Status> {
        let event: ConfirmationEvent = serde_json::from_slice(body).ok()?;
        if !event.event.starts_with("confirmation.") {
            return None;
        }
        let cid = event.confirmation_id.filter(|c| valid_id(c))?;
        let status = match (event.event.as_str(), event.status.as_deref()) {
            ("confirmation.approved", _) | (_, Some("approved")) => {
                let token = event.proof_token.as_deref()?;
                if let Err(why) = verify_approval_token(enforcer, token) {
                    tracing::warn!(%why, "a confirmation.approved webhook's approval token was refused");
                    return None;
                }
                Status::Approved
            }
            ("confirmation.denied", _) | (_, Some("denied" | "expired" | "cancelled")) => {
                let r = event.response.unwrap_or_default();
                let timeout =
                    r.channel.as_deref() == Some("system") && r.text.as_deref() == Some("timeout");
                if timeout || event.status.as_deref() == Some("expired") {
                    Status::Expired
                } else {
                    Status::Denied
                }
            }
            _ => return None,
        };
        self.learn(&cid, status);
        Some(status)
    }

    /// Where `cid` stands: from what the gateway knows, else (and while pending, at most once
    /// per poll interval) from the issuer. `due` is when the gateway stops waiting. `Err`: the
    /// issuer could not be asked.
    async fn status(&self, enforcer: &Enforcer, cid: &str, due: Option<i64>) -> Result<Status, ()> {
        let known = self.known.get(cid);
        let due = due.or(known.and_then(|k| k.due));
        if let Some(k) = known {
            let fresh = k.checked.elapsed() < self.config.poll_interval;
            if k.status != Status::Pending || fresh {
                return Ok(self.past_due(cid, k.status, due));
            }
        }
        let Some(api) = &self.api else {
            return Err(());
        };
        let confirmation = match api.get_confirmation(cid).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "fetching a confirmation failed");
                return Err(());
            }
        };
        let status = match &confirmation.status {
            ConfirmationStatus::Approved => {
                let Some(token) = confirmation.proof_token.as_deref() else {
                    tracing::warn!("an approved confirmation carries no proof_token");
                    return Err(());
                };
                if let Err(why) = verify_approval_token(enforcer, token) {
                    tracing::warn!(%why, "an approved confirmation's approval token was refused");
                    return Err(());
                }
                Status::Approved
            }
            _ if confirmation.timed_out() => Status::Expired,
            ConfirmationStatus::Denied | ConfirmationStatus::Cancelled => Status::Denied,
            ConfirmationStatus::Expired => Status::Expired,
            _ => Status::Pending,
        };
        self.learn(cid, status);
        Ok(self.past_due(cid, status, due))
    }

    /// A pending confirmation past `due` is expired (counted once).
    fn past_due(&self, cid: &str, status: Status, due: Option<i64>) -> Status {
        if status == Status::Pending && due.is_some_and(|d| unix_now() >= d) {
            self.learn(cid, Status::Expired);
            return Status::Expired;
        }
        status
    }

    /// The public key of HITL configuration `hitl`, if it has one (cached 5 minutes). `Err`:
    /// the issuer could not be asked, or the key is unusable (fail closed: no plaintext to a
    /// configuration that asked for encryption).
    async fn hitl_key(
        &self,
        api: &ProofApiClient,
        hitl: &str,
    ) -> Result<Option<Arc<envelope::RecipientKey>>, ()> {
        if let Some(k) = self.hitl_keys.get(hitl) {
            return Ok(k);
        }
        let config = api.get_hitl(hitl).await.map_err(|e| {
            tracing::warn!(error = %e, "fetching the HITL configuration failed");
        })?;
        let pem = config.keypair.as_ref().and_then(|k| {
            k.get("public_key")
                .or_else(|| k.get("publicKey"))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        });
        let has_keypair = config
            .keypair
            .as_ref()
            .is_some_and(|k| !k.is_null() && k.as_object().is_none_or(|o| !o.is_empty()));
        if pem.is_none() && has_keypair {
            // It encrypts, but not with a key this gateway can read: no plaintext for it.
            tracing::warn!(
                hitl,
                "the HITL configuration has a keypair without a readable public_key; refusing to send it a plaintext message"
            );
            return Err(());
        }
        let key = match pem {
            Some(pem) => Some(Arc::new(
                envelope::RecipientKey::parse(pem.as_bytes()).map_err(|e| {
                    tracing::warn!(error = %e, "the HITL configuration's public key is unusable");
                })?,
            )),
            None => None,
        };
        self.hitl_keys.insert(hitl.to_owned(), key.clone());
        Ok(key)
    }

    /// Decides a held request: creates the confirmation (no ticket), or redeems the ticket.
    pub async fn decide(&self, enforcer: &Enforcer, held: Held<'_>) -> Answer {
        let html = render::wants_html(held.headers);
        let header_ticket = held
            .headers
            .get(TICKET_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let cookie_ticket = cookie(held.headers, TICKET_COOKIE).map(str::to_owned);
        let body = match held.body {
            HeldBody::Read(b) => b,
            HeldBody::TooLarge => {
                return self.refuse(held.headers, Reason::ApprovalBodyTooLarge, None);
            }
        };
        let digest = ticket::body_digest(body);
        let subject = ticket::subject_key(
            held.proofs.iter().map(|p| p.subject()).chain(
                held.delegations
                    .iter()
                    .map(|d| d.delegation.handle.as_str()),
            ),
        );
        let now = unix_now();
        if let Some(text) = header_ticket {
            let t = match self.check(&text, &held, &subject, &digest, now) {
                Ok(t) => t,
                Err(reason) => return self.refuse(held.headers, reason, None),
            };
            return self.redeem(enforcer, &held, t, false).await;
        }
        // A browser's ticket cookie that does not fit this request (used, stale, made for
        // another form) is cleared, and the request asks for a new approval.
        let mut clear_cookie = false;
        if let Some(text) = cookie_ticket {
            if let Ok(t) = self.check(&text, &held, &subject, &digest, now) {
                let answer = self.redeem(enforcer, &held, t, true).await;
                if answer.reason != Some(Reason::ApprovalTicketUsed) {
                    return answer;
                }
            }
            clear_cookie = true;
        }
        let mut answer = self.create(&held, body, &digest, &subject, html, now).await;
        if clear_cookie {
            if let Verdict::Respond(r) = &mut answer.verdict {
                r.headers.extend(header(
                    http::header::SET_COOKIE,
                    &self.ticket_cookie("", cookie_path(held.target), 0),
                ));
            }
        }
        answer
    }

    /// Opens the ticket and compares it with the request.
    fn check(
        &self,
        text: &str,
        held: &Held<'_>,
        subject: &str,
        digest: &str,
        now: i64,
    ) -> Result<Ticket, Reason> {
        let t = ticket::open(&self.key, text, now).map_err(|e| {
            tracing::info!(error = %e, "an approval ticket was refused");
            Reason::ApprovalTicketInvalid
        })?;
        if t.m != held.method.as_str() || t.t != held.target || t.p != held.policy {
            return Err(Reason::ApprovalTicketOtherRequest);
        }
        if t.s != subject {
            return Err(Reason::ApprovalTicketOtherSubject);
        }
        if !ticket::same_digest(&t.b, digest) {
            return Err(Reason::ApprovalTicketOtherBody);
        }
        Ok(t)
    }

    async fn redeem(
        &self,
        enforcer: &Enforcer,
        held: &Held<'_>,
        t: Ticket,
        from_cookie: bool,
    ) -> Answer {
        let clear = from_cookie.then_some(held.target);
        let status = match self.status(enforcer, &t.cid, Some(t.due)).await {
            Ok(s) => s,
            Err(()) => return self.refuse(held.headers, Reason::ApprovalUnavailable, clear),
        };
        match status {
            Status::Pending => self.waiting(held.headers, &t, None, Reason::ApprovalPending),
            Status::Denied => self.refuse(held.headers, Reason::ApprovalDenied, clear),
            Status::Expired => self.refuse(held.headers, Reason::ApprovalExpired, clear),
            Status::Approved => match self.ledger.claim(&t.id, t.exp).await {
                Claim::First => {
                    self.counters.used.fetch_add(1, Ordering::Relaxed);
                    Answer {
                        decision: "allow",
                        reason: None,
                        verdict: Verdict::Forward,
                    }
                }
                Claim::Replayed => self.refuse(held.headers, Reason::ApprovalTicketUsed, clear),
            },
        }
    }

    async fn create(
        &self,
        held: &Held<'_>,
        body: &[u8],
        digest: &str,
        subject: &str,
        html: bool,
        now: i64,
    ) -> Answer {
        let Some(api) = &self.api else {
            tracing::warn!("a request needs approval but no Proof API key is set (PROOF_API_KEY)");
            return self.refuse(held.headers, Reason::ApprovalUnavailable, None);
        };
        if let Err(retry) = self.limiter.take(subject) {
            let mut answer = self.refuse(held.headers, Reason::ApprovalRateLimited, None);
            if let Verdict::Respond(r) = &mut answer.verdict {
                r.headers.retain(|(k, _)| k != http::header::RETRY_AFTER);
                r.headers
                    .push((http::header::RETRY_AFTER, HeaderValue::from(retry)));
            }
            return answer;
        }
        let text = message::render(
            held.rule,
            &message::MessageInput {
                method: held.method.as_str(),
                path: held.target,
                subject: &message::describe_subject(held.proofs, held.delegations),
                policy: held.policy,
                headers: held.headers,
                body,
            },
        );
        let Ok(key) = self.hitl_key(api, &held.rule.hitl).await else {
            return self.refuse(held.headers, Reason::ApprovalUnavailable, None);
        };
        let text = match key {
            Some(key) => match key.seal(&held.rule.hitl, text.as_bytes()) {
                Ok(sealed) => sealed,
                Err(e) => {
                    tracing::warn!(error = %e, "encrypting an approval message failed");
                    return self.refuse(held.headers, Reason::ApprovalUnavailable, None);
                }
            },
            None => text,
        };
        let request = CreateConfirmation {
            hitl_id: held.rule.hitl.clone(),
            message: text,
            proof_expiry_days: self.config.proof_expiry_days,
        };
        let created = match api.create_confirmation(&request).await {
            Ok(c) if valid_id(&c.id) => c,
            Ok(_) => {
                tracing::warn!("the issuer answered a confirmation without a usable id");
                return self.refuse(held.headers, Reason::ApprovalUnavailable, None);
            }
            Err(e) => {
                tracing::warn!(error = %e, "creating a confirmation failed");
                return self.refuse(held.headers, Reason::ApprovalUnavailable, None);
            }
        };
        self.counters.created.fetch_add(1, Ordering::Relaxed);
        let due = now + held.rule.timeout.as_secs() as i64;
        self.known.insert(
            created.id.clone(),
            Known {
                status: Status::Pending,
                checked: Instant::now(),
                due: Some(due),
            },
        );
        let t = Ticket {
            id: ticket::random_id(),
            cid: created.id,
            m: held.method.as_str().to_owned(),
            t: held.target.to_owned(),
            b: digest.to_owned(),
            s: subject.to_owned(),
            p: held.policy.to_owned(),
            due,
            exp: now + self.config.ticket_ttl.as_secs() as i64,
        };
        let sealed = ticket::seal(&self.key, &t);
        let _ = html;
        self.waiting(held.headers, &t, Some(&sealed), Reason::ApprovalRequired)
    }

    /// `202`: waiting for a person. `sealed` is the new ticket to hand out (the first answer).
    fn waiting(
        &self,
        headers: &HeaderMap,
        t: &Ticket,
        sealed: Option<&str>,
        reason: Reason,
    ) -> Answer {
        let retry = self.config.poll_interval.as_secs().max(1);
        let status_url = self.status_url(&t.cid);
        let mut rendered = if render::is_grpc(headers) {
            render::grpc(
                9,
                render::problem_title(reason),
                reason.as_str(),
                None,
                None,
            )
        } else if render::wants_html(headers) {
            let sealed_text;
            let sealed = match sealed {
                Some(s) => s,
                None => {
                    sealed_text = ticket::seal(&self.key, t);
                    &sealed_text
                }
            };
            let page_url = format!("{status_url}?ticket={}", render::urlencode(sealed));
            self.waiting_page(t, &page_url, reason.approval_status())
        } else {
            let mut body = json!({
                "type": format!("https://proofgate.dev/problems/{}", reason.as_str()),
                "title": render::problem_title(reason),
                "status": reason.approval_status(),
                "reason": reason.as_str(),
                "approval": "pending",
                "confirmation_id": t.cid,
                "status_url": status_url,
                "ticket_header": "Proof-Approval",
                "due_at": t.due,
                "expires_at": t.exp,
                "retry_after": retry,
            });
            if let Some(s) = sealed {
                body["ticket"] = json!(s);
            }
            Rendered {
                status: reason.approval_status(),
                headers: vec![
                    (
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ),
                    (
                        http::header::CACHE_CONTROL,
                        HeaderValue::from_static("no-store"),
                    ),
                ],
                body: Bytes::from(body.to_string()),
            }
        };
        rendered
            .headers
            .push((http::header::RETRY_AFTER, HeaderValue::from(retry)));
        rendered
            .headers
            .extend(header(http::header::LOCATION, &status_url));
        Answer {
            decision: "approval",
            reason: Some(reason),
            verdict: Verdict::Respond(rendered),
        }
    }

    /// The page a browser waits on: it reloads itself every poll interval (`Refresh`, in the
    /// header and as a `<meta>` element: the pages' policy allows no script).
    fn waiting_page(&self, t: &Ticket, page_url: &str, status: u16) -> Rendered {
        let left = (t.due - unix_now()).max(1) as u64;
        let page = Page::new(
            status,
            Reason::ApprovalPending.as_str(),
            "Waiting for approval",
            "This request needs a person's approval before it is sent. This page updates \
             itself; keep it open.",
        )
        .detail("Request", format!("{} {}", t.m, t.t))
        .detail("Time left", human_duration(left))
        .action("Check now", page_url);
        with_refresh(
            self.pages.render(&page),
            self.config.poll_interval.as_secs().max(1),
            page_url,
        )
    }

    /// A refusal, counted; a ticket cookie for `clear_cookie` (the request's target) is
    /// cleared.
    fn refuse(&self, headers: &HeaderMap, reason: Reason, clear_cookie: Option<&str>) -> Answer {
        let counter = match reason {
            Reason::ApprovalTicketUsed => Some(&self.counters.replay_refused),
            Reason::ApprovalTicketInvalid
            | Reason::ApprovalTicketOtherRequest
            | Reason::ApprovalTicketOtherBody
            | Reason::ApprovalTicketOtherSubject => Some(&self.counters.ticket_refused),
            Reason::ApprovalUnavailable => Some(&self.counters.unavailable),
            Reason::ApprovalRateLimited => Some(&self.counters.rate_limited),
            _ => None,
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let mut rendered = self.refusal(headers, reason);
        if let Some(target) = clear_cookie {
            rendered.headers.extend(header(
                http::header::SET_COOKIE,
                &self.ticket_cookie("", cookie_path(target), 0),
            ));
        }
        Answer {
            decision: "deny",
            reason: Some(reason),
            verdict: Verdict::Respond(rendered),
        }
    }

    fn refusal(&self, headers: &HeaderMap, reason: Reason) -> Rendered {
        let status = reason.approval_status();
        let mut rendered = if render::is_grpc(headers) {
            render::grpc(
                render::grpc_code_for_http(status),
                render::problem_title(reason),
                reason.as_str(),
                None,
                None,
            )
        } else if render::wants_html(headers) {
            let (heading, message) = words(reason);
            self.pages.render(
                &Page::new(status, reason.as_str(), heading, message)
                    .action("Go to the home page", "/"),
            )
        } else {
            render::simple(status, reason.as_str(), reason.message())
        };
        if reason == Reason::ApprovalUnavailable {
            rendered
                .headers
                .push((http::header::RETRY_AFTER, HeaderValue::from_static("30")));
        }
        rendered
    }

    fn ticket_cookie(&self, value: &str, path: &str, max_age: i64) -> String {
        format!(
            "{TICKET_COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly{}; SameSite=Lax",
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }

    /// `GET <prefix>approvals/<cid>`: where a confirmation stands. With its ticket (the
    /// `ticket` query parameter or the `Proof-Approval` header) on any replica; without one
    /// only on the replica that created it. JSON `{confirmation_id, approval, reason}` (`200`,
    /// `Retry-After` while pending); a browser gets the waiting page, and once approved the
    /// ticket in a cookie and (for a `GET`) a redirect back to the request, or (for a form)
    /// a page asking to send it again.
    pub async fn status_page(
        &self,
        enforcer: &Enforcer,
        cid: &str,
        method: &Method,
        headers: &HeaderMap,
        query: &str,
    ) -> (Rendered, &'static str, &'static str) {
        let html = render::wants_html(headers);
        if method != Method::GET && method != Method::HEAD {
            return (
                render::simple(
                    405,
                    "method_not_allowed",
                    "Approval status is read with GET",
                ),
                "refused",
                "method_not_allowed",
            );
        }
        let sealed = query_param(query, "ticket").or_else(|| {
            headers
                .get(TICKET_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let now = unix_now();
        let t = match &sealed {
            Some(s) => match ticket::open(&self.key, s, now) {
                Ok(t) if t.cid == cid => Some(t),
                Ok(_) | Err(TicketError::Malformed | TicketError::Forged) => {
                    let r = Reason::ApprovalTicketInvalid;
                    self.counters.ticket_refused.fetch_add(1, Ordering::Relaxed);
                    return (self.refusal(headers, r), "refused", r.as_str());
                }
                Err(TicketError::Expired) => {
                    let r = Reason::ApprovalExpired;
                    return (self.refusal(headers, r), "expired", r.as_str());
                }
            },
            None => None,
        };
        if t.is_none() && self.known.get(cid).is_none() {
            let r = render::simple(
                404,
                "approval_unknown",
                "No approval with this id is known here; ask with its ticket (Proof-Approval)",
            );
            return (r, "refused", "approval_unknown");
        }
        let status = match self.status(enforcer, cid, t.as_ref().map(|t| t.due)).await {
            Ok(s) => s,
            Err(()) => {
                let r = Reason::ApprovalUnavailable;
                self.counters.unavailable.fetch_add(1, Ordering::Relaxed);
                return (self.refusal(headers, r), "failed", r.as_str());
            }
        };
        let outcome = status.as_str();
        let reason = match status {
            Status::Pending => Reason::ApprovalPending,
            Status::Approved => Reason::ApprovalRequired,
            Status::Denied => Reason::ApprovalDenied,
            Status::Expired => Reason::ApprovalExpired,
        };
        if !html {
            let retry = self.config.poll_interval.as_secs().max(1);
            let mut body = json!({
                "confirmation_id": cid,
                "approval": status.as_str(),
            });
            if status != Status::Approved {
                body["reason"] = json!(reason.as_str());
            }
            let mut r = Rendered {
                status: 200,
                headers: vec![
                    (
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ),
                    (
                        http::header::CACHE_CONTROL,
                        HeaderValue::from_static("no-store"),
                    ),
                ],
                body: Bytes::from(body.to_string()),
            };
            if status == Status::Pending {
                r.headers
                    .push((http::header::RETRY_AFTER, HeaderValue::from(retry)));
            }
            return (r, outcome, "");
        }
        let rendered = match (status, &t, &sealed) {
            (Status::Pending, Some(t), Some(s)) => {
                let page_url = format!("{}?ticket={}", self.status_url(cid), render::urlencode(s));
                self.waiting_page(t, &page_url, 200)
            }
            (Status::Pending, _, _) => with_refresh(
                self.pages.render(&Page::new(
                    200,
                    Reason::ApprovalPending.as_str(),
                    "Waiting for approval",
                    "No one has decided yet. This page updates itself.",
                )),
                self.config.poll_interval.as_secs().max(1),
                &self.status_url(cid),
            ),
            (Status::Approved, Some(t), Some(s)) => self.approved_page(t, s, now),
            (Status::Approved, _, _) => self.pages.render(&Page::new(
                200,
                "approved",
                "Approved",
                "The request was approved. Send it again from the page you started on.",
            )),
            _ => self.refusal(headers, reason),
        };
        (
            rendered,
            outcome,
            if status == Status::Approved {
                ""
            } else {
                reason.as_str()
            },
        )
    }

    /// Approved, in a browser: the ticket goes into a cookie for the request's path; a `GET`
    /// is sent back there, a form is asked to be sent again.
    fn approved_page(&self, t: &Ticket, sealed: &str, now: i64) -> Rendered {
        let path = t.t.split('?').next().unwrap_or("/");
        let cookie_path = if path.starts_with('/')
            && !path
                .bytes()
                .any(|b| b == b';' || b == b',' || b.is_ascii_control() || b == b' ')
        {
            path
        } else {
            "/"
        };
        let max_age = (t.exp - now).clamp(1, 300);
        let set = header(
            http::header::SET_COOKIE,
            &self.ticket_cookie(sealed, cookie_path, max_age),
        );
        let back = crate::stepup::safe_return_to(&t.t).map(str::to_owned);
        let mut r = match back {
            Some(back) if t.m == "GET" || t.m == "HEAD" => Rendered {
                status: 303,
                headers: vec![
                    (
                        http::header::CACHE_CONTROL,
                        HeaderValue::from_static("no-store"),
                    ),
                    (
                        http::header::LOCATION,
                        HeaderValue::from_str(&back).unwrap_or(HeaderValue::from_static("/")),
                    ),
                ],
                body: Bytes::new(),
            },
            _ => self.pages.render(
                &Page::new(
                    200,
                    "approved",
                    "Approved: send it again",
                    format!(
                        "Your request was approved. Go back to the form and send it again, \
                         unchanged, within {}.",
                        human_duration(max_age as u64)
                    ),
                )
                .detail("Request", format!("{} {}", t.m, t.t)),
            ),
        };
        r.headers.extend(set);
        r
    }
}

/// The `Path` of a ticket cookie for `target`: its path, or `/` when that is not plain.
fn cookie_path(target: &str) -> &str {
    let path = target.split('?').next().unwrap_or("/");
    let plain = path.starts_with('/')
        && !path
            .bytes()
            .any(|b| b == b';' || b == b',' || b == b' ' || b.is_ascii_control());
    if plain {
        path
    } else {
        "/"
    }
}

/// `r` with `Refresh: <secs>; url=<url>` and the same as a `<meta http-equiv>` element at the
/// start of `<head>` (when the template has one).
fn with_refresh(mut r: Rendered, secs: u64, url: &str) -> Rendered {
    let value = format!("{secs}; url={url}");
    r.headers
        .extend(header(HeaderName::from_static("refresh"), &value));
    if let Ok(text) = std::str::from_utf8(&r.body) {
        if let Some(i) = text.find("<head>") {
            let at = i + "<head>".len();
            let meta = format!(
                "\n<meta http-equiv=\"refresh\" content=\"{}\">",
                crate::pages::escape(&value)
            );
            let mut body = String::with_capacity(text.len() + meta.len());
            body.push_str(&text[..at]);
            body.push_str(&meta);
            body.push_str(&text[at..]);
            r.body = Bytes::from(body);
        }
    }
    r
}

/// Takes the ticket off a forwarded request: adds to `edits` (the request's other edits) the
/// removal of the `Proof-Approval` header and of the ticket cookie (other cookies kept, and
/// the `Cookie` header `edits` already rewrites, if any, rewritten from).
pub fn strip_ticket(edits: &mut UpstreamEdits, headers: &HeaderMap) {
    let ticket_header = HeaderName::from_static(TICKET_HEADER);
    if headers.contains_key(&ticket_header) && !edits.remove.contains(&ticket_header) {
        edits.remove.push(ticket_header);
    }
    let cookie_set = edits
        .set
        .iter()
        .position(|(k, _)| k == http::header::COOKIE);
    let current: Vec<String> = match cookie_set {
        Some(i) => vec![edits.set[i].1.to_str().unwrap_or("").to_owned()],
        None if edits.remove.contains(&http::header::COOKIE) => return,
        None => headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect(),
    };
    let pairs: Vec<&str> = current
        .iter()
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let is_ticket =
        |pair: &&str| pair.split_once('=').map_or(*pair, |(k, _)| k).trim() == TICKET_COOKIE;
    if !pairs.iter().any(is_ticket) {
        return;
    }
    let kept: Vec<&str> = pairs.into_iter().filter(|p| !is_ticket(p)).collect();
    if let Some(i) = cookie_set {
        edits.set.remove(i);
    }
    match HeaderValue::from_str(&kept.join("; ")) {
        Ok(v) if !kept.is_empty() => edits.set.push((http::header::COOKIE, v)),
        _ => edits.remove.push(http::header::COOKIE),
    }
}

/// Checks an approval token offline: a proof token (signature by a published `proof` key,
/// `iss`, `exp`) of `type = "confirmation"` whose `decision` approves (`approve`, `approved`
/// or `true`).
pub fn verify_approval_token(
    enforcer: &Enforcer,
    token: &str,
) -> Result<Arc<VerifiedProof>, String> {
    let proof = enforcer
        .verifier()
        .verify(token)
        .map_err(|r| format!("approval token: {r}"))?;
    if proof.claims.proof_type.as_deref() != Some("confirmation") {
        return Err("approval token: type is not \"confirmation\"".into());
    }
    let approves = match proof.claims.decision.as_deref() {
        Some(serde_json::Value::String(d)) => {
            d.eq_ignore_ascii_case("approve") || d.eq_ignore_ascii_case("approved")
        }
        Some(serde_json::Value::Bool(b)) => *b,
        _ => false,
    };
    if !approves {
        return Err("approval token: decision does not approve".into());
    }
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_is_taken_off_the_forwarded_request() {
        let mut h = HeaderMap::new();
        h.insert(TICKET_HEADER, "pga1.x.y".parse().unwrap());
        h.insert(
            "cookie",
            "a=1; proofgate_approval=pga1.x.y; proof_token=t; b=2"
                .parse()
                .unwrap(),
        );
        let mut e = UpstreamEdits::default();
        strip_ticket(&mut e, &h);
        assert_eq!(e.remove, vec![HeaderName::from_static(TICKET_HEADER)]);
        assert_eq!(e.set.len(), 1);
        assert_eq!(e.set[0].1, "a=1; proof_token=t; b=2");
        // After the proof cookie was stripped (strip_token): both are gone.
        let mut e = UpstreamEdits::default();
        e.set.push((
            http::header::COOKIE,
            "a=1; proofgate_approval=pga1.x.y; b=2".parse().unwrap(),
        ));
        strip_ticket(&mut e, &h);
        assert_eq!(
            e.set,
            vec![(http::header::COOKIE, "a=1; b=2".parse().unwrap())]
        );
        let mut only = HeaderMap::new();
        only.insert("cookie", "proofgate_approval=t".parse().unwrap());
        let mut e = UpstreamEdits::default();
        strip_ticket(&mut e, &only);
        assert_eq!(e.remove, vec![http::header::COOKIE]);
        assert!(e.set.is_empty());
        let mut e = UpstreamEdits::default();
        strip_ticket(&mut e, &HeaderMap::new());
        assert!(e.remove.is_empty() && e.set.is_empty());
    }

    #[test]
    fn status_paths_and_refresh() {
        let a = Approvals::new(
            ApprovalsConfig::default(),
            &[1; 32],
            None,
            Arc::new(LocalLedger::default()),
            Arc::new(Pages::default()),
            "/.proofgate/",
            true,
        );
        assert_eq!(
            a.status_endpoint("/.proofgate/approvals/conf_1"),
            Some("conf_1")
        );
        for bad in [
            "/.proofgate/approvals/",
            "/.proofgate/approvals/a/b",
            "/.proofgate/approvals/a%2e",
            "/approvals/x",
        ] {
            assert_eq!(a.status_endpoint(bad), None, "{bad}");
        }
        let page = with_refresh(
            Pages::default().render(&Page::new(200, "r", "h", "m")),
            2,
            "/x?a=1&b=2",
        );
        let body = std::str::from_utf8(&page.body).unwrap();
        assert!(body.contains("<meta http-equiv=\"refresh\" content=\"2; url=/x?a=1&amp;b=2\">"));
        assert!(page
            .headers
            .iter()
            .any(|(k, v)| k == "refresh" && v == "2; url=/x?a=1&b=2"));
    }
}

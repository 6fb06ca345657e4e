//! Human-in-the-loop approvals: HITL configurations (`/api/v1/hitl`), confirmations
//! (`/api/v1/confirmations`), their timeout, webhooks, approval links and event stream
//! (`spec/proof-api/AGENTS-AND-APPROVALS.md` §2).
//!
//! - `POST /api/v1/hitl` creates a configuration (`pending`); `POST …/{id}/finalize` makes it
//!   `active`. `timeout_seconds` (1–604800; default [`crate::SandboxConfig::hitl_timeout`]) is
//!   each confirmation's decision window, so tests can use a couple of seconds. No consent
//!   requests are sent: approvers are the sandbox's hosted page and its test endpoints.
//! - `POST /api/v1/confirmations` (`{hitl_id, message, proof_expiry_days?}`, the configuration
//!   active) creates a `pending` confirmation with `timeout_at`. A `message` that is an
//!   encrypted envelope (a JSON object with `alg: "RSA-OAEP-256+AES-256-GCM"`), or sent with
//!   `"encrypted": true`, is stored as is and flagged `encrypted`; the sandbox never reads it.
//! - A decision comes from the hosted approval page (channel `browser`), or, with a `pk_test_`
//!   key, from `POST …/{id}/test-approve` and `…/test-deny` (body optional `{text?, channel?}`;
//!   channel defaults to `browser`). A decided confirmation cannot be decided again (409).
//! - A timeout makes it `denied` with `response {channel: "system", text: "timeout"}` and
//!   `resolved_at = timeout_at`: computed on every read and by a background sweep (every
//!   200 ms), so its webhook is sent without anybody asking.
//! - An approval carries `proof_token`: a proof token signed by the proof key, `sub` = the
//!   confirmation id (the sandbox's choice; unknown for the real service), `type:
//!   "confirmation"`, `channel` (the channel used), `decision: "approve"`, `identifier_hash` =
//!   SHA-256 of the message as sent, `exp` after `proof_expiry_days` (1–365, default
//!   [`crate::SandboxConfig::confirmation_proof_days`]) and a status-list slot. It is a proof of
//!   the sandbox like any other: `validate`, `proofs/{id}/status`, `revoke` know it (id = the
//!   confirmation id; with an `identifier`, an approval of an encrypted message answers
//!   `identifier_unverifiable`). Denials carry no token.
//! - Each decision posts `confirmation.approved` or `confirmation.denied`, `{event,
//!   confirmation_id, hitl_id, status, message, response, proof_token, encrypted, resolved_at,
//!   test}`, to every configured webhook URL, signed like every delivery.
//! - `GET /api/v1/confirmations/{id}/events` is a Server-Sent Events stream: one event named
//!   after the current status (`pending`), then, once decided, one named `approved` or `denied`
//!   (a timeout is `denied`), each with the confirmation as JSON data, and the stream ends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::api::{page, page_params, ApiKey};
use crate::envelope::{self, json_response, opt_bool, opt_str, opt_u64, req_str, ApiErr};
use crate::state::{self, lock, Data};
use crate::Shared;

type R = Result<Response, ApiErr>;

/// The channels a HITL configuration may route to.
const HITL_CHANNELS: &[&str] = &["telegram", "whatsapp", "browser"];

/// Longest confirmation message, in characters (an encrypted envelope included).
const MAX_MESSAGE_CHARS: usize = 8000;

/// A HITL configuration.
#[derive(Debug, Clone)]
pub struct HitlRecord {
    pub id: String,
    pub name: String,
    pub channels: Vec<Value>,
    pub timeout_seconds: u64,
    pub status: &'static str,
    pub profile_id: Option<String>,
    pub test: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl HitlRecord {
    /// The API representation.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "channels": self.channels,
            "timeout_seconds": self.timeout_seconds,
            "status": self.status,
            "profile_id": self.profile_id,
            "keypair": null,
            "environment": if self.test { "test" } else { "production" },
            "created_at": state::time(self.created_at),
            "updated_at": state::time(self.updated_at),
        })
    }
}

/// A confirmation.
#[derive(Debug, Clone)]
pub struct ConfirmationRecord {
    pub id: String,
    pub hitl_id: String,
    pub message: String,
    pub encrypted: bool,
    /// `pending`, `approved` or `denied`.
    pub status: &'static str,
    pub response: Option<Value>,
    pub timeout_at: i64,
    pub proof_token: Option<String>,
    pub proof_expiry_days: i64,
    pub resolved_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub test: bool,
}

impl ConfirmationRecord {
    /// The API representation.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "hitl_id": self.hitl_id,
            "message": self.message,
            "encrypted": self.encrypted,
            "status": self.status,
            "response": self.response,
            "timeout_at": state::time(self.timeout_at),
            "proof_token": self.proof_token,
            "resolved_at": self.resolved_at.map(state::time),
            "environment": if self.test { "test" } else { "production" },
            "created_at": state::time(self.created_at),
            "updated_at": state::time(self.updated_at),
        })
    }

    /// Whether it was denied by the timeout.
    pub fn timed_out(&self) -> bool {
        self.status == "denied"
            && self
                .response
                .as_ref()
                .is_some_and(|r| r["channel"] == "system" && r["text"] == "timeout")
    }

    /// The `confirmation.approved` / `confirmation.denied` webhook payload.
    pub fn event(&self) -> Value {
        json!({
            "event": format!("confirmation.{}", self.status),
            "confirmation_id": self.id,
            "hitl_id": self.hitl_id,
            "status": self.status,
            "message": self.message,
            "response": self.response,
            "proof_token": self.proof_token,
            "encrypted": self.encrypted,
            "resolved_at": self.resolved_at.map(state::time),
            "test": self.test,
        })
    }
}

/// Whether `message` is an encrypted envelope (`spec/proof-api/AGENTS-AND-APPROVALS.md`,
/// hitl_crypto): a JSON object naming the envelope's algorithm.
pub fn is_envelope(message: &str) -> bool {
    let t = message.trim_start();
    if !t.starts_with('{') {
        return false;
    }
    serde_json::from_str::<Map<String, Value>>(t).is_ok_and(|m| {
        m.get("alg").and_then(Value::as_str) == Some("RSA-OAEP-256+AES-256-GCM")
            && m.contains_key("ct")
    })
}

// ----- decisions, timeouts, notifications -----

/// An approver's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approve: the confirmation gets its proof token.
    Approve,
    /// Deny.
    Deny,
}

/// Why a decision was not taken.
#[derive(Debug)]
pub enum DecideError {
    /// No such confirmation.
    NotFound,
    /// Already decided: its status.
    NotPending(&'static str),
}

/// Tells event streams that something changed.
fn notify(s: &Shared) {
    s.changes.send_modify(|n| *n = n.wrapping_add(1));
}

/// Denies every pending confirmation whose time is up and posts their webhooks. Called before
/// every read and by the background sweep.
pub fn sweep(s: &Arc<Shared>) {
    let events: Vec<Value> = {
        let mut data = lock(&s.data);
        let now = state::now();
        let mut out = Vec::new();
        for c in data.confirmations.values_mut() {
            if c.status == "pending" && c.timeout_at <= now {
                c.status = "denied";
                c.response = Some(json!({
                    "channel": "system",
                    "text": "timeout",
                    "decision": "deny",
                    "responded_at": state::time(c.timeout_at),
                }));
                c.resolved_at = Some(c.timeout_at);
                c.updated_at = now;
                out.push(c.event());
            }
        }
        out
    };
    if !events.is_empty() {
        for e in events {
            s.send_webhook(e, None);
        }
        notify(s);
    }
}

/// Decides a pending confirmation as an approver on `channel`; returns it as the API shows it.
pub fn decide(
    s: &Arc<Shared>,
    id: &str,
    decision: Decision,
    channel: &str,
    text: Option<String>,
) -> Result<Value, DecideError> {
    sweep(s);
    let (event, body) = {
        let mut data = lock(&s.data);
        let data: &mut Data = &mut data;
        let c = data.confirmations.get(id).ok_or(DecideError::NotFound)?;
        if c.status != "pending" {
            return Err(DecideError::NotPending(c.status));
        }
        let (message, days) = (c.message.clone(), c.proof_expiry_days);
        let token = match decision {
            Decision::Approve => {
                Some(s.issue_confirmation(data, id, channel, &message, days * 86_400))
            }
            Decision::Deny => None,
        };
        let now = state::now();
        let c = data
            .confirmations
            .get_mut(id)
            .ok_or(DecideError::NotFound)?;
        c.status = match decision {
            Decision::Approve => "approved",
            Decision::Deny => "denied",
        };
        c.response = Some(json!({
            "channel": channel,
            "text": text,
            "decision": if decision == Decision::Approve { "approve" } else { "deny" },
            "responded_at": state::time(now),
        }));
        c.proof_token = token;
        c.resolved_at = Some(now);
        c.updated_at = now;
        (c.event(), c.to_json())
    };
    s.send_webhook(event, None);
    notify(s);
    Ok(body)
}

// ----- approval links -----

/// The HMAC over one link's parameters.
fn link_tag(s: &Shared, id: &str, exp: i64, nonce: &str) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &s.link_secret);
    hmac::sign(
        &key,
        format!("approval-link\0{id}\0{exp}\0{nonce}").as_bytes(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A fresh signed link to the hosted approval page of confirmation `id`, valid until `exp`.
pub fn approval_url(s: &Shared, id: &str, exp: i64) -> String {
    let nonce = state::hex_id(8);
    let sig = hex(link_tag(s, id, exp, &nonce).as_ref());
    format!(
        "{}/hosted/confirmations/{id}?e={exp}&n={nonce}&s={sig}",
        s.base_url
    )
}

/// The link parameters `e`, `n`, `s` of an approval page or form.
#[derive(Debug, Clone, Default)]
pub struct LinkParams {
    pub exp: String,
    pub nonce: String,
    pub sig: String,
}

impl LinkParams {
    /// Reads them from query or form pairs.
    pub fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Self {
        let mut p = Self::default();
        for (k, v) in pairs {
            match k {
                "e" => p.exp = v.to_string(),
                "n" => p.nonce = v.to_string(),
                "s" => p.sig = v.to_string(),
                _ => {}
            }
        }
        p
    }

    /// Whether they were signed by this sandbox for `id` and have not expired.
    pub fn valid_for(&self, s: &Shared, id: &str) -> bool {
        let Ok(exp) = self.exp.parse::<i64>() else {
            return false;
        };
        if exp < state::now() || self.nonce.is_empty() || self.nonce.len() > 64 {
            return false;
        }
        let Some(sig) = unhex(&self.sig) else {
            return false;
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, &s.link_secret);
        hmac::verify(
            &key,
            format!("approval-link\0{id}\0{exp}\0{}", self.nonce).as_bytes(),
            &sig,
        )
        .is_ok()
    }
}

// ----- handlers -----

fn parse_channels(obj: &Map<String, Value>) -> Result<Vec<Value>, ApiErr> {
    let items = crate::api::array_field(obj, "channels", 10, "channels")?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let c = v.as_object().ok_or_else(|| {
                ApiErr::field(&format!("channels.{i}"), "Expected object", "invalid_type")
            })?;
            let prefixed = |e: ApiErr| e.prefix_fields(&format!("channels.{i}."));
            let kind = req_str(c, "type", 20).map_err(prefixed)?;
            if !HITL_CHANNELS.contains(&kind.as_str()) {
                return Err(ApiErr::field(
                    &format!("channels.{i}.type"),
                    "Invalid enum value; expected telegram, whatsapp or browser",
                    "invalid_enum_value",
                ));
            }
            let config = envelope::opt_object(c, "config")
                .map_err(prefixed)?
                .map(Value::Object)
                .unwrap_or_else(|| json!({}));
            Ok(json!({"type": kind, "config": config}))
        })
        .collect()
}

pub(crate) async fn create_hitl(State(s): State<Arc<Shared>>, key: ApiKey, body: Body) -> R {
    let obj = envelope::read_object(body).await?;
    let name = req_str(&obj, "name", 100)?;
    let channels = parse_channels(&obj)?;
    let timeout_seconds = match opt_u64(&obj, "timeout_seconds")? {
        None => s.config.hitl_timeout.as_secs().max(1),
        Some(t) if (1..=604_800).contains(&t) => t,
        Some(_) => {
            return Err(ApiErr::field(
                "timeout_seconds",
                "Must be from 1 to 604800",
                "too_big",
            ))
        }
    };
    let profile_id = opt_str(&obj, "profile_id", 64)?;
    let now = state::now();
    let record = HitlRecord {
        id: state::object_id(),
        name,
        channels,
        timeout_seconds,
        status: "pending",
        profile_id,
        test: key.test,
        created_at: now,
        updated_at: now,
    };
    let body = record.to_json();
    let mut data = lock(&s.data);
    data.hitl_order.push(record.id.clone());
    data.hitls.insert(record.id.clone(), record);
    Ok(json_response(StatusCode::CREATED, body))
}

pub(crate) async fn get_hitl(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = crate::api::id_of(path, "HITL config")?;
    let data = lock(&s.data);
    let h = data
        .hitls
        .get(&id)
        .ok_or_else(|| ApiErr::not_found("HITL config"))?;
    Ok(json_response(StatusCode::OK, h.to_json()))
}

pub(crate) async fn finalize_hitl(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = crate::api::id_of(path, "HITL config")?;
    let mut data = lock(&s.data);
    let h = data
        .hitls
        .get_mut(&id)
        .ok_or_else(|| ApiErr::not_found("HITL config"))?;
    match h.status {
        "archived" => {
            return Err(ApiErr::new(
                StatusCode::CONFLICT,
                "conflict",
                "HITL config is archived",
            ))
        }
        "active" => {}
        _ => {
            h.status = "active";
            h.updated_at = state::now();
        }
    }
    Ok(json_response(StatusCode::OK, h.to_json()))
}

pub(crate) async fn create_confirmation(
    State(s): State<Arc<Shared>>,
    key: ApiKey,
    body: Body,
) -> R {
    let obj = envelope::read_object(body).await?;
    let hitl_id = req_str(&obj, "hitl_id", 64)?;
    let message = req_str(&obj, "message", MAX_MESSAGE_CHARS)?;
    let flagged = opt_bool(&obj, "encrypted")?.unwrap_or(false);
    let days = match opt_u64(&obj, "proof_expiry_days")? {
        None => i64::from(s.config.confirmation_proof_days.clamp(1, 365)),
        Some(d) if (1..=365).contains(&d) => i64::try_from(d).unwrap_or(1),
        Some(_) => {
            return Err(ApiErr::field(
                "proof_expiry_days",
                "Must be from 1 to 365",
                "too_big",
            ))
        }
    };
    let now = state::now();
    let mut data = lock(&s.data);
    let hitl = data
        .hitls
        .get(&hitl_id)
        .ok_or_else(|| ApiErr::not_found("HITL config"))?;
    if hitl.status != "active" {
        return Err(ApiErr::field(
            "hitl_id",
            format!(
                "HITL config is {}; finalize it (POST /api/v1/hitl/{{id}}/finalize) first",
                hitl.status
            ),
            "invalid_state",
        ));
    }
    let record = ConfirmationRecord {
        id: state::object_id(),
        hitl_id,
        encrypted: flagged || is_envelope(&message),
        message,
        status: "pending",
        response: None,
        timeout_at: now + i64::try_from(hitl.timeout_seconds).unwrap_or(300),
        proof_token: None,
        proof_expiry_days: days,
        resolved_at: None,
        created_at: now,
        updated_at: now,
        test: key.test,
    };
    let body = record.to_json();
    data.confirmation_order.push(record.id.clone());
    data.confirmations.insert(record.id.clone(), record);
    Ok(json_response(StatusCode::CREATED, body))
}

pub(crate) async fn get_confirmation(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = crate::api::id_of(path, "Confirmation")?;
    sweep(&s);
    let data = lock(&s.data);
    let c = data
        .confirmations
        .get(&id)
        .ok_or_else(|| ApiErr::not_found("Confirmation"))?;
    Ok(json_response(StatusCode::OK, c.to_json()))
}

/// A list filter's date: RFC 3339, or `YYYY-MM-DD` (the day's start for `start_date`, its end
/// for `end_date`).
fn date_filter(q: &HashMap<String, String>, field: &str, end: bool) -> Result<Option<i64>, ApiErr> {
    let Some(text) = q.get(field).map(|t| t.trim()).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Some(t.timestamp()));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let t = if end {
            d.and_hms_opt(23, 59, 59)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        if let Some(t) = t {
            return Ok(Some(t.and_utc().timestamp()));
        }
    }
    Err(ApiErr::field(
        field,
        "Expected an RFC 3339 time or YYYY-MM-DD",
        "invalid_string",
    ))
}

pub(crate) async fn list_confirmations(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let (p, limit) = page_params(&q)?;
    let status = q
        .get("status")
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    if status
        .is_some_and(|st| !["pending", "approved", "denied", "expired", "cancelled"].contains(&st))
    {
        return Err(ApiErr::field(
            "status",
            "Invalid enum value; expected pending, approved, denied, expired or cancelled",
            "invalid_enum_value",
        ));
    }
    let hitl = q.get("hitl_id").filter(|t| !t.is_empty());
    let start = date_filter(&q, "start_date", false)?;
    let end = date_filter(&q, "end_date", true)?;
    sweep(&s);
    let data = lock(&s.data);
    let items: Vec<Value> = data
        .confirmation_order
        .iter()
        .rev()
        .filter_map(|id| data.confirmations.get(id))
        .filter(|c| match status {
            None => true,
            Some("expired") => c.timed_out(),
            Some(st) => c.status == st,
        })
        .filter(|c| hitl.is_none_or(|h| *h == c.hitl_id))
        .filter(|c| start.is_none_or(|t| c.created_at >= t))
        .filter(|c| end.is_none_or(|t| c.created_at <= t))
        .map(ConfirmationRecord::to_json)
        .collect();
    Ok(json_response(StatusCode::OK, page(items, p, limit)))
}

pub(crate) async fn approval_link(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = crate::api::id_of(path, "Confirmation")?;
    sweep(&s);
    let exp = {
        let data = lock(&s.data);
        let c = data
            .confirmations
            .get(&id)
            .ok_or_else(|| ApiErr::not_found("Confirmation"))?;
        if c.status != "pending" {
            return Err(ApiErr::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("Confirmation is {}; links are for pending ones", c.status),
            ));
        }
        c.timeout_at
    };
    Ok(json_response(
        StatusCode::OK,
        json!({ "approval_url": approval_url(&s, &id, exp), "expires_at": state::time(exp) }),
    ))
}

async fn test_decide(s: Arc<Shared>, key: ApiKey, id: String, body: Body, d: Decision) -> R {
    if !key.test {
        return Err(ApiErr::new(
            StatusCode::FORBIDDEN,
            "test_mode_required",
            "This endpoint is only available with test API keys (pk_test_*)",
        ));
    }
    let obj = envelope::read_object(body).await?;
    let text = opt_str(&obj, "text", 1000)?;
    let channel = opt_str(&obj, "channel", 20)?.unwrap_or_else(|| "browser".into());
    if !HITL_CHANNELS.contains(&channel.as_str()) {
        return Err(ApiErr::field(
            "channel",
            "Invalid enum value; expected telegram, whatsapp or browser",
            "invalid_enum_value",
        ));
    }
    match decide(&s, &id, d, &channel, text) {
        Ok(v) => Ok(json_response(StatusCode::OK, v)),
        Err(DecideError::NotFound) => Err(ApiErr::not_found("Confirmation")),
        Err(DecideError::NotPending(st)) => Err(ApiErr::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("Confirmation is already {st}"),
        )),
    }
}

pub(crate) async fn test_approve(
    State(s): State<Arc<Shared>>,
    key: ApiKey,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> R {
    let id = crate::api::id_of(path, "Confirmation")?;
    test_decide(s, key, id, body, Decision::Approve).await
}

pub(crate) async fn test_deny(
    State(s): State<Arc<Shared>>,
    key: ApiKey,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> R {
    let id = crate::api::id_of(path, "Confirmation")?;
    test_decide(s, key, id, body, Decision::Deny).await
}

/// Where an event stream is.
enum Stage {
    Start,
    Waiting,
    Done,
}

/// The confirmation's JSON, if it exists.
fn current(s: &Arc<Shared>, id: &str) -> Option<Value> {
    sweep(s);
    lock(&s.data).confirmations.get(id).map(|c| c.to_json())
}

fn sse_event(v: &Value) -> Event {
    let name = v["status"].as_str().unwrap_or("pending").to_string();
    Event::default().event(name).data(v.to_string())
}

pub(crate) async fn events(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = crate::api::id_of(path, "Confirmation")?;
    if current(&s, &id).is_none() {
        return Err(ApiErr::not_found("Confirmation"));
    }
    let rx = s.changes.subscribe();
    let stop = s.shutdown.clone();
    let stream = futures_util::stream::unfold(
        (s, id, rx, stop, Stage::Start),
        |(s, id, mut rx, stop, stage)| async move {
            match stage {
                Stage::Done => None,
                Stage::Start => {
                    let v = current(&s, &id)?;
                    let next = if v["status"] == "pending" {
                        Stage::Waiting
                    } else {
                        Stage::Done
                    };
                    Some((Ok::<_, Infallible>(sse_event(&v)), (s, id, rx, stop, next)))
                }
                Stage::Waiting => loop {
                    tokio::select! {
                        _ = rx.changed() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = crate::stopped(stop.clone()) => return None,
                    }
                    let v = current(&s, &id)?;
                    if v["status"] != "pending" {
                        return Some((Ok(sse_event(&v)), (s, id, rx, stop, Stage::Done)));
                    }
                },
            }
        },
    );
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

/// Starts the background sweep that times confirmations out (and so posts their webhooks)
/// while nobody reads them. It stops with the sandbox.
pub fn spawn_sweeper(s: &Arc<Shared>) {
    let weak = Arc::downgrade(s);
    let stop = s.shutdown.clone();
    s.runtime.spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = crate::stopped(stop.clone()) => return,
            }
            let Some(s) = weak.upgrade() else { return };
            sweep(&s);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_recognized_and_plain_text_is_not() {
        let env = json!({"v": 1, "alg": "RSA-OAEP-256+AES-256-GCM", "ek": "a", "iv": "b", "ct": "c", "tag": "d", "kid": "e"});
        assert!(is_envelope(&env.to_string()));
        assert!(!is_envelope("Pay 10 EUR to {alg}"));
        assert!(!is_envelope("{\"alg\":\"none\",\"ct\":\"x\"}"));
        assert_eq!(unhex("0aff"), Some(vec![10, 255]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}

//! Webhook delivery: signed exactly as the contract says, retried with backoff, and every
//! attempt recorded — the records `GET /api/v1/webhook-deliveries` serves.

use std::sync::Arc;
use std::time::Duration;

use proofgate_core::webhook;
use serde_json::{json, Value};

use crate::state::{self, lock};
use crate::Shared;

/// Longest part of a receiver's response body kept on a delivery.
const KEPT_RESPONSE_BYTES: usize = 1024;

/// One webhook delivery and how it went.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookDelivery {
    /// Delivery id (also sent as `X-Proof-Delivery`).
    pub id: String,
    /// The event name.
    pub event: String,
    /// Where it was posted.
    pub url: String,
    /// `pending`, `delivered` or `failed`.
    pub status: &'static str,
    /// Attempts made so far.
    pub attempts: u32,
    /// Attempts allowed (grows by one with each manual retry).
    pub max_attempts: u32,
    /// The last response status, if any response came.
    pub response_status: Option<u16>,
    /// The start of the last response body, if any response came.
    pub response_body: Option<String>,
    /// Why the last attempt failed, if it did.
    pub error_message: Option<String>,
    /// The verification request the event is about, if any.
    pub verification_request_id: Option<String>,
    /// The payload.
    pub payload: Value,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// When the last attempt was made.
    pub last_attempt_at: Option<i64>,
    /// When the next attempt is due, while one is scheduled.
    pub next_retry_at: Option<i64>,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
}

impl WebhookDelivery {
    /// The API representation: `openapi.json`'s `WebhookDelivery` plus the SDKs' `delivered_at`;
    /// `detail` adds the payload and the response body, which a list leaves out.
    pub(crate) fn to_json(&self, detail: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "event_type": self.event,
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "created_at": state::time(self.created_at),
            "updated_at": state::time(self.updated_at),
        });
        let times = [
            ("last_attempt_at", self.last_attempt_at),
            ("next_retry_at", self.next_retry_at),
            ("delivered_at", self.delivered_at),
        ];
        for (field, at) in times {
            if let Some(at) = at {
                v[field] = json!(state::time(at));
            }
        }
        if let Some(id) = &self.verification_request_id {
            v["verification_request_id"] = json!(id);
        }
        if let Some(st) = self.response_status {
            v["response_status"] = json!(st);
        }
        if let Some(e) = &self.error_message {
            v["error_message"] = json!(e);
        }
        if detail {
            v["payload"] = self.payload.clone();
            if let Some(b) = &self.response_body {
                v["response_body"] = json!(b);
            }
        }
        v
    }
}

/// Records a delivery and posts it in the background.
pub fn deliver(shared: &Arc<Shared>, url: String, payload: Value) {
    let id = state::object_id();
    let event = payload
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    // Only ids shaped like the service's: anything else is not a verification request.
    let verification_request_id = payload
        .get("request_id")
        .and_then(Value::as_str)
        .filter(|r| r.len() == 24 && r.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    let attempts = shared.config.webhook_attempts.max(1);
    let now = state::now();
    let mut log = lock(&shared.deliveries);
    // Keep the log bounded on a long-running sandbox (`proofgate dev`).
    if log.len() >= 10_000 {
        log.drain(..1_000);
    }
    log.push(WebhookDelivery {
        id: id.clone(),
        event,
        url,
        status: "pending",
        attempts: 0,
        max_attempts: attempts,
        response_status: None,
        response_body: None,
        error_message: None,
        verification_request_id,
        payload,
        created_at: now,
        updated_at: now,
        last_attempt_at: None,
        next_retry_at: Some(now),
        delivered_at: None,
    });
    drop(log);
    spawn_attempts(shared, id, attempts);
}

/// Why a delivery cannot be retried.
#[derive(Debug)]
pub(crate) enum RetryRefused {
    /// No such delivery.
    NotFound,
    /// Only `failed` deliveries are retried; this is its status.
    NotFailed(&'static str),
}

/// Sends a failed delivery once more (`POST /api/v1/webhook-deliveries/{id}/retry`). Returns
/// the delivery as it stands once the attempt is scheduled.
pub(crate) fn retry(shared: &Arc<Shared>, id: &str) -> Result<WebhookDelivery, RetryRefused> {
    let d = {
        let mut log = lock(&shared.deliveries);
        let d = log
            .iter_mut()
            .find(|d| d.id == id)
            .ok_or(RetryRefused::NotFound)?;
        if d.status != "failed" {
            return Err(RetryRefused::NotFailed(d.status));
        }
        let now = state::now();
        d.status = "pending";
        d.max_attempts = d.attempts + 1;
        d.next_retry_at = Some(now);
        d.updated_at = now;
        d.clone()
    };
    spawn_attempts(shared, d.id.clone(), 1);
    Ok(d)
}

/// Makes up to `attempts` attempts of delivery `id`, recording each.
fn spawn_attempts(shared: &Arc<Shared>, id: String, attempts: u32) {
    let Some((url, event, body)) = lock(&shared.deliveries)
        .iter()
        .find(|d| d.id == id)
        .map(|d| {
            let body = serde_json::to_vec(&d.payload).unwrap_or_default();
            (d.url.clone(), d.event.clone(), body)
        })
    else {
        return;
    };
    let http = shared.http.clone();
    let secret = shared.config.webhook_secret.clone();
    let first_delay = shared.config.webhook_retry_delay;
    let stop = shared.shutdown.clone();
    // A weak reference: a pending redelivery does not keep a stopped sandbox alive.
    let log = Arc::downgrade(shared);
    shared.runtime.spawn(async move {
        let mut delay = first_delay;
        for attempt in 1..=attempts {
            // Each attempt is signed afresh so its timestamp is inside the receiver's window.
            let ts = state::now().to_string();
            let signature = webhook::sign(secret.as_bytes(), &ts, &body);
            let result = http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-proof-signature", signature)
                .header("x-proof-timestamp", ts)
                .header("x-proof-event", event.as_str())
                .header("x-proof-delivery", id.as_str())
                .body(body.clone())
                .send()
                .await;
            let (status, response_body, error) = match result {
                Ok(mut r) => {
                    let status = r.status().as_u16();
                    let mut kept = Vec::new();
                    while kept.len() < KEPT_RESPONSE_BYTES {
                        match r.chunk().await {
                            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                            _ => break,
                        }
                    }
                    kept.truncate(KEPT_RESPONSE_BYTES);
                    let text = String::from_utf8_lossy(&kept).into_owned();
                    (Some(status), Some(text), None)
                }
                Err(e) => (None, None, Some(e.to_string())),
            };
            let delivered = status.is_some_and(|s| (200..300).contains(&s));
            let done = delivered || attempt == attempts;
            let Some(shared) = log.upgrade() else { break };
            let now = state::now();
            if let Some(d) = lock(&shared.deliveries).iter_mut().find(|d| d.id == id) {
                d.attempts += 1;
                d.response_status = status;
                d.response_body = response_body;
                d.error_message = match (delivered, error, status) {
                    (true, _, _) => None,
                    (false, Some(e), _) => Some(e),
                    (false, None, Some(st)) => Some(format!("receiver answered HTTP {st}")),
                    (false, None, None) => Some("no response".into()),
                };
                d.last_attempt_at = Some(now);
                d.updated_at = now;
                d.status = if delivered {
                    "delivered"
                } else if done {
                    "failed"
                } else {
                    "pending"
                };
                d.delivered_at = delivered.then_some(now);
                d.next_retry_at = (!done)
                    .then(|| now + i64::try_from(delay.as_millis().div_ceil(1000)).unwrap_or(60));
            }
            drop(shared);
            if done {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = crate::stopped(stop.clone()) => break,
            }
            delay = delay.saturating_mul(2).min(Duration::from_secs(60));
        }
    });
}

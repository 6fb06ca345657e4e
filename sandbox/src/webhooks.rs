//! Webhook delivery: signed exactly as the contract says, retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use proofgate_core::webhook;
use serde_json::Value;

use crate::state::{self, lock};
use crate::Shared;

/// One webhook delivery and how it went.
#[derive(Debug, Clone)]
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
    /// The last response status, if any response came.
    pub response_status: Option<u16>,
    /// The payload.
    pub payload: Value,
}

/// Records a delivery and posts it in the background.
pub fn deliver(shared: &Arc<Shared>, url: String, payload: Value) {
    let id = state::object_id();
    let event = payload
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let mut log = lock(&shared.deliveries);
    // Keep the log bounded on a long-running sandbox (`proofgate dev`).
    if log.len() >= 10_000 {
        log.drain(..1_000);
    }
    log.push(WebhookDelivery {
        id: id.clone(),
        event: event.clone(),
        url: url.clone(),
        status: "pending",
        attempts: 0,
        response_status: None,
        payload: payload.clone(),
    });
    drop(log);
    let http = shared.http.clone();
    let secret = shared.config.webhook_secret.clone();
    let attempts = shared.config.webhook_attempts.max(1);
    let first_delay = shared.config.webhook_retry_delay;
    let body = serde_json::to_vec(&payload).unwrap_or_default();
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
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            let delivered = status.is_some_and(|s| (200..300).contains(&s));
            let done = delivered || attempt == attempts;
            let Some(shared) = log.upgrade() else { break };
            if let Some(d) = lock(&shared.deliveries).iter_mut().find(|d| d.id == id) {
                d.attempts = attempt;
                d.response_status = status;
                d.status = if delivered {
                    "delivered"
                } else if done {
                    "failed"
                } else {
                    "pending"
                };
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

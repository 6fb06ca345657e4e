//! Webhook signature checks.
//!
//! The Proof API signs every webhook it posts: the header `X-Proof-Signature` carries the
//! lowercase hex HMAC-SHA256, keyed with the endpoint's secret (`whsec_…`), of
//! `"<X-Proof-Timestamp>.<raw body>"`. A receiver must check the signature over the *raw* bytes it
//! received (not a re-serialization), compare in constant time, and refuse timestamps outside a
//! 300 s window so a captured delivery cannot be replayed later. Timestamps too far in the
//! future are refused as well: a clock that far off is more likely an attacker than a skew.
//!
//! ```
//! use proofgate_core::webhook;
//!
//! let secret = b"whsec_test_secret_key";
//! let body = br#"{"event":"proof.revoked","proof_id":"507f1f77bcf86cd799439011"}"#;
//! let now = 1_707_048_000;
//! let signature = webhook::sign(secret, "1707048000", body);
//! assert!(webhook::verify_at(secret, "1707048000", &signature, body, now, webhook::DEFAULT_TOLERANCE).is_ok());
//! assert!(webhook::verify_at(secret, "1707048000", &signature, b"{}", now, webhook::DEFAULT_TOLERANCE).is_err());
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-proof-signature";
/// The header that carries the Unix timestamp (seconds) the signature covers.
pub const TIMESTAMP_HEADER: &str = "x-proof-timestamp";
/// The header that carries the delivery's id, the same on every retry of one delivery (sent by
/// the sandbox; optional: without it a delivery is known by its timestamp and signature).
pub const DELIVERY_HEADER: &str = "x-proof-delivery";
/// How far a webhook's timestamp may be from now, either way: 300 s, as the contract says.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Largest webhook body an adapter reads before answering `413 body_too_large`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The signature or timestamp header is absent or not valid text.
    #[error("webhook signature or timestamp header missing")]
    MissingHeader,
    /// The timestamp is not a decimal number of seconds.
    #[error("webhook timestamp is malformed")]
    MalformedTimestamp,
    /// The timestamp is older (or further in the future) than the tolerance allows.
    #[error("webhook timestamp outside the accepted window")]
    OutsideWindow,
    /// The signature is not hex of the right length.
    #[error("webhook signature is malformed")]
    MalformedSignature,
    /// The signature does not match the body and timestamp.
    #[error("webhook signature mismatch")]
    Mismatch,
}

/// The lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`: the value of
/// `X-Proof-Signature`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    hex(ctx.sign().as_ref())
}

/// Checks a webhook against the current time with the default 300 s window.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), WebhookError> {
    verify_at(
        secret,
        timestamp,
        signature,
        body,
        unix_now(),
        DEFAULT_TOLERANCE,
    )
}

/// Checks a webhook from its headers (`X-Proof-Timestamp`, `X-Proof-Signature`) and raw body,
/// against the current time with the default 300 s window.
pub fn verify_headers(
    secret: &[u8],
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<(), WebhookError> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(WebhookError::MissingHeader)
    };
    verify(
        secret,
        text(TIMESTAMP_HEADER)?,
        text(SIGNATURE_HEADER)?,
        body,
    )
}

/// Checks a webhook as of `now` (Unix seconds), accepting timestamps within `tolerance` of it.
///
/// The window is checked before the signature so that replays are refused cheaply; the signature
/// comparison is constant-time (`aws_lc_rs::hmac::verify`).
pub fn verify_at(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let ts = timestamp.trim();
    if ts.is_empty() || ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WebhookError::MalformedTimestamp);
    }
    let ts_value: i64 = ts.parse().map_err(|_| WebhookError::MalformedTimestamp)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.saturating_sub(ts_value).abs() > tolerance {
        return Err(WebhookError::OutsideWindow);
    }
    let given = unhex(signature.trim()).ok_or(WebhookError::MalformedSignature)?;
    if given.len() != 32 {
        return Err(WebhookError::MalformedSignature);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut message = Vec::with_capacity(ts.len() + 1 + body.len());
    message.extend_from_slice(ts.as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    hmac::verify(&key, &message, &given).map_err(|_| WebhookError::Mismatch)
}

/// A webhook payload, parsed leniently: every field the service documents for its events, all
/// optional, so that one type reads `verification_request.*`, `verification.completed` and
/// `proof.revoked|suspended|unsuspended` alike.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookEvent {
    /// The event name, e.g. `verification_request.completed` or `proof.revoked`.
    pub event: String,
    /// The verification request this event is about, for `verification_request.*` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The caller's reference id of that request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    /// The request's status (`completed`, `partial`, `expired`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The proof this event is about, for `proof.*` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_id: Option<String>,
    /// The proofs a completed request produced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proofs: Vec<WebhookProof>,
    /// `true` for events caused with a `pk_test_` key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<bool>,
    /// Event-specific data, for events that nest their subject (`{"data": {"id": …}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl WebhookEvent {
    /// The proof id a `proof.revoked` (or `proof.suspended`) event names: `proof_id`, else
    /// `data.proof_id`, else `data.id`.
    pub fn subject_proof_id(&self) -> Option<&str> {
        self.proof_id.as_deref().or_else(|| {
            let data = self.data.as_ref()?;
            data.get("proof_id")
                .or_else(|| data.get("id"))
                .and_then(|v| v.as_str())
        })
    }
}

/// One proof in a `verification_request.completed` webhook.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookProof {
    /// Asset type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The verified identifier, when the service discloses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// RFC 3339 time of the verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
    /// The channel it was verified over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The proof token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_token: Option<String>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../spec/proof-api/test-vectors.json"
    ));

    struct Vector {
        timestamp: String,
        body: String,
        secret: String,
        input: String,
        window: u64,
    }

    fn vector() -> Vector {
        let all: serde_json::Value = serde_json::from_str(VECTORS).expect("vectors parse");
        let v = &all["webhook_signature_vector"];
        let s = |k: &str| v[k].as_str().expect(k).to_string();
        Vector {
            timestamp: s("timestamp"),
            body: s("body"),
            secret: s("secret"),
            input: s("expected_signature_input"),
            window: v["validation_window_seconds"].as_u64().expect("window"),
        }
    }

    #[test]
    fn contract_vector_signs_and_verifies() {
        let v = vector();
        assert_eq!(format!("{}.{}", v.timestamp, v.body), v.input);
        assert_eq!(DEFAULT_TOLERANCE.as_secs(), v.window);
        let sig = sign(v.secret.as_bytes(), &v.timestamp, v.body.as_bytes());
        // Independent computation over the vector's stated signature input.
        let key = hmac::Key::new(hmac::HMAC_SHA256, v.secret.as_bytes());
        assert_eq!(sig, hex(hmac::sign(&key, v.input.as_bytes()).as_ref()));
        assert_eq!(sig.len(), 64);
        assert!(sig
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let ts: i64 = v.timestamp.parse().expect("ts");
        let ok = |now: i64, sig: &str, body: &str| {
            verify_at(
                v.secret.as_bytes(),
                &v.timestamp,
                sig,
                body.as_bytes(),
                now,
                DEFAULT_TOLERANCE,
            )
        };
        assert_eq!(ok(ts, &sig, &v.body), Ok(()));
        assert_eq!(ok(ts + 300, &sig, &v.body), Ok(()));
        assert_eq!(ok(ts - 300, &sig, &v.body), Ok(()));
        assert_eq!(
            ok(ts + 301, &sig, &v.body),
            Err(WebhookError::OutsideWindow)
        );
        assert_eq!(
            ok(ts - 301, &sig, &v.body),
            Err(WebhookError::OutsideWindow)
        );
        assert_eq!(ok(ts, &sig.to_uppercase(), &v.body), Ok(()));
        assert_eq!(
            ok(ts, &sig, &format!("{} ", v.body)),
            Err(WebhookError::Mismatch)
        );
    }

    #[test]
    fn hostile_inputs_are_refused_without_panicking() {
        let secret = b"whsec_x";
        let body = b"{}";
        let now = 1_700_000_000;
        let good = sign(secret, "1700000000", body);
        let check = |ts: &str, sig: &str| verify_at(secret, ts, sig, body, now, DEFAULT_TOLERANCE);
        assert_eq!(check("", &good), Err(WebhookError::MalformedTimestamp));
        assert_eq!(
            check("-1700000000", &good),
            Err(WebhookError::MalformedTimestamp)
        );
        assert_eq!(
            check("1700000000.5", &good),
            Err(WebhookError::MalformedTimestamp)
        );
        assert_eq!(
            check("99999999999999999999", &good),
            Err(WebhookError::MalformedTimestamp)
        );
        assert_eq!(
            check("1700000000", ""),
            Err(WebhookError::MalformedSignature)
        );
        assert_eq!(
            check("1700000000", "zz"),
            Err(WebhookError::MalformedSignature)
        );
        assert_eq!(
            check("1700000000", "é"),
            Err(WebhookError::MalformedSignature)
        );
        assert_eq!(
            check("1700000000", &good[..62]),
            Err(WebhookError::MalformedSignature)
        );
        assert_eq!(
            check("1700000000", &format!("{good}00")),
            Err(WebhookError::MalformedSignature)
        );
        assert_eq!(check("1700000001", &good), Err(WebhookError::Mismatch));
        assert_eq!(check("1700000000", &good), Ok(()));
        // A different secret never verifies.
        assert_eq!(
            verify_at(
                b"whsec_y",
                "1700000000",
                &good,
                body,
                now,
                DEFAULT_TOLERANCE
            ),
            Err(WebhookError::Mismatch)
        );
    }

    #[test]
    fn headers_are_read_case_insensitively() {
        let secret = b"whsec_x";
        let body = br#"{"event":"proof.revoked","proof_id":"abc"}"#;
        let ts = unix_now().to_string();
        let mut headers = http::HeaderMap::new();
        assert_eq!(
            verify_headers(secret, &headers, body),
            Err(WebhookError::MissingHeader)
        );
        headers.insert("X-Proof-Timestamp", ts.parse().expect("header"));
        headers.insert(
            "X-Proof-Signature",
            sign(secret, &ts, body).parse().expect("header"),
        );
        assert_eq!(verify_headers(secret, &headers, body), Ok(()));
        let event: WebhookEvent = serde_json::from_slice(body).expect("event");
        assert_eq!(event.subject_proof_id(), Some("abc"));
        let nested: WebhookEvent =
            serde_json::from_str(r#"{"event":"proof.revoked","data":{"id":"x1"}}"#).expect("event");
        assert_eq!(nested.subject_proof_id(), Some("x1"));
    }
}

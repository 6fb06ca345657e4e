//! Approval tickets: what a client holds between "approval required" and the approved retry.
//!
//! A ticket is `pga1.<base64url(json)>.<base64url(hmac-sha256)>`, signed with a key derived
//! from the step-up cookie key (the same on every replica, so any replica can redeem it). It
//! binds the confirmation, the request's method and target (normalized path and query), the
//! SHA-256 of its body, the requester (a digest of the proofs' subjects, or `anonymous`) and
//! the policy; it lives `ticket_ttl`. The MAC is compared in constant time, and so is the
//! body digest.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The prefix of every ticket (version 1).
pub const PREFIX: &str = "pga1.";

/// Longest ticket text looked at.
pub const MAX_TICKET_BYTES: usize = 4096;

/// The context string the ticket key is derived with.
const KEY_CONTEXT: &[u8] = b"proofgate approval ticket v1";

/// What a ticket says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ticket {
    /// The ticket's own id (random): what the ledger remembers once it is used.
    pub id: String,
    /// The confirmation id.
    pub cid: String,
    /// The request method.
    pub m: String,
    /// The request target: normalized path, and the query as received without the ticket.
    pub t: String,
    /// The body's SHA-256, base64url.
    pub b: String,
    /// The requester ([`subject_key`]).
    pub s: String,
    /// The policy's name.
    pub p: String,
    /// When the gateway stops waiting for a decision, Unix seconds.
    pub due: i64,
    /// When the ticket expires, Unix seconds.
    pub exp: i64,
}

/// Why a ticket was refused before its contents were compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not a ticket (wrong form, bad encoding, too long).
    #[error("malformed ticket")]
    Malformed,
    /// The MAC does not verify.
    #[error("forged ticket")]
    Forged,
    /// Past its expiry.
    #[error("expired ticket")]
    Expired,
}

/// The HMAC key tickets are signed with, derived from `secret` (the step-up cookie key).
pub fn ticket_key(secret: &[u8]) -> hmac::Key {
    let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), KEY_CONTEXT);
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

/// Seals a ticket.
pub fn seal(key: &hmac::Key, ticket: &Ticket) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(ticket).unwrap_or_default());
    let signed = format!("{PREFIX}{payload}");
    let tag = hmac::sign(key, signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Opens a sealed ticket, checking its MAC in constant time and its expiry against `now`.
pub fn open(key: &hmac::Key, sealed: &str, now: i64) -> Result<Ticket, TicketError> {
    let sealed = sealed.trim();
    if sealed.len() > MAX_TICKET_BYTES || !sealed.starts_with(PREFIX) {
        return Err(TicketError::Malformed);
    }
    let (signed, tag) = sealed.rsplit_once('.').ok_or(TicketError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| TicketError::Malformed)?;
    hmac::verify(key, signed.as_bytes(), &tag).map_err(|_| TicketError::Forged)?;
    let json = URL_SAFE_NO_PAD
        .decode(&signed[PREFIX.len()..])
        .map_err(|_| TicketError::Malformed)?;
    let ticket: Ticket = serde_json::from_slice(&json).map_err(|_| TicketError::Malformed)?;
    if ticket.exp <= now {
        return Err(TicketError::Expired);
    }
    Ok(ticket)
}

/// The SHA-256 of a body, base64url: what a ticket binds.
pub fn body_digest(body: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body).as_ref())
}

/// Whether two digests are equal, compared in constant time.
pub fn same_digest(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// The requester a ticket is bound to: `sub:` and the hex SHA-256 of the proofs' subjects
/// (sorted, comma-joined), or `anonymous` when the request carried no proof (a public policy:
/// then whoever holds the ticket may use it).
pub fn subject_key<'a>(subjects: impl IntoIterator<Item = &'a str>) -> String {
    let mut subjects: Vec<&str> = subjects.into_iter().filter(|s| !s.is_empty()).collect();
    if subjects.is_empty() {
        return "anonymous".to_owned();
    }
    subjects.sort_unstable();
    subjects.dedup();
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, subjects.join(",").as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sub:{hex}")
}

/// A random id of 16 bytes, hex.
pub fn random_id() -> String {
    (0..16)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(exp: i64) -> Ticket {
        Ticket {
            id: random_id(),
            cid: "conf_1".into(),
            m: "POST".into(),
            t: "/payouts/7?x=1".into(),
            b: body_digest(b"{\"amount\":100}"),
            s: subject_key(["p1"]),
            p: "payouts".into(),
            due: exp - 60,
            exp,
        }
    }

    #[test]
    fn round_trip_forgery_expiry_and_other_keys() {
        let key = ticket_key(&[7; 32]);
        let t = ticket(1_000);
        let sealed = seal(&key, &t);
        assert!(sealed.starts_with(PREFIX));
        assert_eq!(open(&key, &sealed, 999), Ok(t.clone()));
        assert_eq!(open(&key, &sealed, 1_000), Err(TicketError::Expired));
        assert_eq!(
            open(&ticket_key(&[8; 32]), &sealed, 0),
            Err(TicketError::Forged)
        );
        // A ticket is not a step-up state, and the other way round: the keys differ.
        let state_key = hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]);
        let (signed, _) = sealed.rsplit_once('.').unwrap();
        let tag = hmac::sign(&state_key, signed.as_bytes());
        let with_state_key = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_eq!(open(&key, &with_state_key, 0), Err(TicketError::Forged));
        // Any change to the payload breaks the MAC.
        let mut other = t.clone();
        other.t = "/payouts/8?x=1".into();
        let (_, tag) = sealed.rsplit_once('.').unwrap();
        let swapped = format!(
            "{PREFIX}{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap())
        );
        assert_eq!(open(&key, &swapped, 0), Err(TicketError::Forged));
        for bad in ["", "pga1.", "pga1.x.y", "garbage", &"a".repeat(5000)] {
            assert!(open(&key, bad, 0).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subjects_and_digests() {
        assert_eq!(subject_key([]), "anonymous");
        assert_eq!(subject_key([""]), "anonymous");
        assert_eq!(subject_key(["b", "a"]), subject_key(["a", "b", "a"]));
        assert_ne!(subject_key(["a"]), subject_key(["b"]));
        assert!(same_digest(&body_digest(b"x"), &body_digest(b"x")));
        assert!(!same_digest(&body_digest(b"x"), &body_digest(b"y")));
        assert_eq!(random_id().len(), 32);
    }
}

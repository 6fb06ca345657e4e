//! The sandbox's in-memory state: signing keys, verifications, requests, sessions, proofs and
//! revocations. One `Mutex` each, never held across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use proofgate_core::identifier;
use proofgate_core::testing::{self, SigningKey};
use rand::Rng;
use serde_json::{json, Value};

/// Locks a mutex, recovering the data if a panicking thread poisoned it: the sandbox's state
/// stays usable (each critical section leaves it consistent before any call that could panic).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `n` random bytes as lowercase hex.
pub fn hex_id(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A 24-hex id, shaped like the service's ObjectIds.
pub fn object_id() -> String {
    hex_id(12)
}

/// A 6-character challenge code from the contract's alphabet.
pub fn challenge_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    testing::now()
}

/// RFC 3339 with milliseconds, as the service writes times.
pub fn time(unix: i64) -> String {
    testing::rfc3339(unix)
}

/// Verification types and the channels valid for each: the core's catalog, which the gateway's
/// configuration checks policies against too.
pub use proofgate_core::catalog::{channels_of, known_channel};

/// An identifier used on the hosted page when the request named none.
pub fn default_identifier(kind: &str) -> &'static str {
    match kind {
        "phone" | "waba" => "+37069199199",
        "email" => "person@example.com",
        "domain" => "example.com",
        "social" => "octocat",
        "wallet" => "0xab5801a7d398351b8be11c439e05c5b3259aec9b",
        "telegram_bot" => "sandbox_bot",
        _ => "sandbox-account",
    }
}

/// Whether `identifier` is plausible for `kind` (after normalization).
pub fn identifier_ok(kind: &str, identifier: &str) -> bool {
    let n = identifier::normalize(kind, identifier);
    match kind {
        "phone" | "waba" => {
            let digits = n.strip_prefix('+').unwrap_or("");
            (7..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0')
        }
        "email" => match n.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !n.contains(char::is_whitespace)
                    && !domain.contains('@')
            }
            None => false,
        },
        "domain" => {
            n.contains('.')
                && n.len() <= 253
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        }
        _ => !n.is_empty() && !n.contains(char::is_control),
    }
}

/// The signing keys: the one in use, and every published one.
pub struct Keys {
    /// Signs new tokens, lists and status lists.
    pub signing: Arc<SigningKey>,
    /// In the JWKS, in order.
    pub published: Vec<Arc<SigningKey>>,
    /// An ES256 key, published only once [`crate::SandboxHandle::use_es256`] is called.
    pub es256: Arc<SigningKey>,
    /// Signs delegation tokens only; published with `proof_purpose: "delegation"`.
    pub delegation: Arc<SigningKey>,
    /// The delegation key's `not_before` (Unix seconds): when the sandbox started.
    pub delegation_not_before: i64,
    /// Withdrawn keys, still published: `(kid, revoked_at)`, served as `proof_tombstones`.
    pub tombstones: Vec<(String, i64)>,
}

/// The longest delegation-token lifetime the delegation key admits (`max_token_lifetime`):
/// 366 days, above the longest proof a delegation can be minted from.
pub const DELEGATION_MAX_LIFETIME: i64 = 366 * 86_400;

impl Keys {
    /// The JWKS document: the proof keys as they always were (no `proof_purpose`: they sign
    /// proofs, the revocation list and the status list), then the delegation key with its
    /// purpose, window start and maximum token lifetime; and, once a key was withdrawn,
    /// `proof_tombstones` (`{kid, revoked_at}`).
    pub fn jwks(&self) -> Value {
        let mut keys: Vec<Value> = self.published.iter().map(|k| k.jwk()).collect();
        let mut delegation = self.delegation.jwk();
        delegation["proof_purpose"] = json!("delegation");
        delegation["not_before"] = json!(self.delegation_not_before);
        delegation["max_token_lifetime"] = json!(DELEGATION_MAX_LIFETIME);
        keys.push(delegation);
        let mut doc = json!({ "keys": keys });
        if !self.tombstones.is_empty() {
            doc["proof_tombstones"] = self
                .tombstones
                .iter()
                .map(|(kid, at)| json!({"kid": kid, "revoked_at": at}))
                .collect();
        }
        doc
    }
}

/// A single-asset verification.
#[derive(Debug, Clone)]
pub struct VerificationRecord {
    pub id: String,
    pub kind: String,
    pub channel: String,
    pub identifier: String,
    pub status: &'static str,
    pub code: String,
    pub challenge_expires_at: i64,
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at: i64,
    pub updated_at: i64,
    pub verified_at: Option<i64>,
    pub external_user_id: Option<String>,
    pub test: bool,
    /// Where `verification.completed` goes, besides the configured URLs (hosted requests).
    pub callback_url: Option<String>,
    pub lifetime_secs: i64,
}

impl VerificationRecord {
    /// A pending verification.
    pub fn new(kind: &str, channel: &str, identifier: &str, test: bool) -> Self {
        let now = now();
        let ttl = match kind {
            "email" => 1800,
            "domain" => 86_400,
            _ => 600,
        };
        Self {
            id: object_id(),
            kind: kind.into(),
            channel: channel.into(),
            identifier: identifier.into(),
            status: "pending",
            code: challenge_code(),
            challenge_expires_at: now + ttl,
            attempts: 0,
            max_attempts: 3,
            created_at: now,
            updated_at: now,
            verified_at: None,
            external_user_id: None,
            test,
            callback_url: None,
            lifetime_secs: 30 * 86_400,
        }
    }

    /// The challenge as shown on creation.
    pub fn challenge(&self, base_url: &str) -> Value {
        let (deep_link, send_to) = match self.channel.as_str() {
            "telegram" => (
                format!("https://t.me/proof_holdings_bot?start={}", self.code),
                "@proof_holdings_bot".to_string(),
            ),
            _ => (
                format!("{base_url}/hosted/verifications/{}", self.id),
                "sandbox".to_string(),
            ),
        };
        json!({
            "code": self.code,
            "instruction": format!("Send {} to {} on {} (sandbox: no message is sent)", self.code, send_to, self.channel),
            "expires_at": time(self.challenge_expires_at),
            "deep_link": deep_link,
            "send_to": send_to,
        })
    }

    /// The API representation; `code` only when `with_challenge`.
    pub fn to_json(
        &self,
        proof: Option<&ProofRecord>,
        with_challenge: bool,
        base_url: &str,
    ) -> Value {
        let mut v = json!({
            "id": self.id,
            "type": self.kind,
            "channel": self.channel,
            "identifier": self.identifier,
            "status": if proof.is_some_and(|p| p.revoked.is_some()) { "revoked" } else { self.status },
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "created_at": time(self.created_at),
            "updated_at": time(self.updated_at),
            "challenge_expires_at": time(self.challenge_expires_at),
            "test_mode": self.test,
        });
        if with_challenge {
            v["challenge"] = self.challenge(base_url);
        }
        if let Some(user) = &self.external_user_id {
            v["external_user_id"] = json!(user);
        }
        if let Some(at) = self.verified_at {
            v["verified_at"] = json!(time(at));
        }
        if let Some(p) = proof {
            if let Some(h) = &p.handle {
                v["public_proof_id"] = json!(h);
            }
            v["proof_token"] = json!(p.token);
            v["proof_expires_at"] = json!(time(p.exp));
            v["proof"] = json!({"token": p.token, "expires_at": time(p.exp)});
        }
        v
    }
}

/// An issued proof token and its fate.
#[derive(Debug, Clone)]
pub struct ProofRecord {
    pub id: String,
    pub token: String,
    pub kind: String,
    pub channel: String,
    pub identifier_hash: String,
    pub user_id: String,
    pub exp: i64,
    pub verified_at: i64,
    pub status_idx: Option<u64>,
    pub revoked: Option<(i64, String)>,
    pub callback_url: Option<String>,
    /// A domain proof's control-proof handle, `ph_ctl_<32 hex>`, what delegations name.
    pub handle: Option<String>,
}

/// One asset of a verification request.
#[derive(Debug, Clone)]
pub struct AssetRecord {
    pub kind: String,
    pub identifier: Option<String>,
    pub channel: Option<String>,
    pub allowed_channels: Vec<String>,
    pub required: bool,
    pub status: &'static str,
    pub verification_id: Option<String>,
    pub verified_at: Option<i64>,
    pub verified_channel: Option<String>,
    pub proof_token: Option<String>,
}

/// A hosted, multi-asset verification request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub id: String,
    pub reference_id: Option<String>,
    pub assets: Vec<AssetRecord>,
    pub action_type: String,
    pub action_context: Option<Value>,
    pub partial_ok: bool,
    pub redirect_url: Option<String>,
    pub callback_url: Option<String>,
    pub client_metadata: Option<Value>,
    pub proof_expiry_days: i64,
    pub status: &'static str,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
    pub test: bool,
}

impl RequestRecord {
    /// Whether no further change can happen.
    pub fn is_terminal(&self) -> bool {
        matches!(self.status, "completed" | "expired" | "cancelled")
    }

    /// Where the hosted page lives.
    pub fn verification_url(&self, base_url: &str) -> String {
        format!("{base_url}/hosted/requests/{}", self.id)
    }

    /// The API representation.
    pub fn to_json(&self, base_url: &str) -> Value {
        let assets: Vec<Value> = self
            .assets
            .iter()
            .map(|a| {
                let mut v = json!({"type": a.kind, "status": a.status, "required": a.required});
                if let Some(i) = &a.identifier {
                    v["identifier"] = json!(i);
                }
                if let Some(c) = &a.channel {
                    v["channel"] = json!(c);
                }
                if let Some(id) = &a.verification_id {
                    v["verification_id"] = json!(id);
                }
                if let Some(t) = &a.proof_token {
                    v["proof_token"] = json!(t);
                }
                if let Some(at) = a.verified_at {
                    v["verified_at"] = json!(time(at));
                }
                if let Some(c) = &a.verified_channel {
                    v["verified_channel"] = json!(c);
                }
                v
            })
            .collect();
        let mut v = json!({
            "id": self.id,
            "status": self.status,
            "assets": assets,
            "action_type": self.action_type,
            "partial_ok": self.partial_ok,
            "verification_url": self.verification_url(base_url),
            "created_at": time(self.created_at),
            "updated_at": time(self.updated_at),
            "expires_at": time(self.expires_at),
        });
        if let Some(r) = &self.reference_id {
            v["reference_id"] = json!(r);
        }
        if let Some(r) = &self.redirect_url {
            v["redirect_url"] = json!(r);
        }
        if let Some(c) = &self.action_context {
            v["action_context"] = c.clone();
        }
        if let Some(at) = self.completed_at {
            v["completed_at"] = json!(time(at));
        }
        v
    }

    /// For a completed request with `action_type: "confirmation"`: the `confirmation.approved`
    /// webhook, in the request-webhook shape plus `action_context` (plaintext).
    pub fn confirmation_event(&self) -> Option<Value> {
        if self.action_type != "confirmation" || self.status != "completed" {
            return None;
        }
        let mut v = self.event("confirmation.approved");
        v["action_context"] = self.action_context.clone().unwrap_or(Value::Null);
        Some(v)
    }

    /// The `verification_request.*` webhook payload.
    pub fn event(&self, event: &str) -> Value {
        let proofs: Vec<Value> = self
            .assets
            .iter()
            .filter(|a| a.status == "verified")
            .map(|a| {
                json!({
                    "type": a.kind,
                    "identifier": a.identifier,
                    "verified_at": a.verified_at.map(time),
                    "channel": a.verified_channel,
                    "proof_token": a.proof_token,
                    "verification_id": a.verification_id,
                })
            })
            .collect();
        json!({
            "event": event,
            "request_id": self.id,
            "reference_id": self.reference_id,
            "status": self.status,
            "action_type": self.action_type,
            "client_metadata": self.client_metadata.clone().unwrap_or(Value::Null),
            "completed_at": self.completed_at.map(time),
            "proofs": proofs,
            "test": self.test,
        })
    }
}

/// A phone-first session. Created with a phone (the `openapi.json` form) it has its pending
/// verification from the start; created without one (the official SDKs' form) it learns the
/// phone, and gets its verification, when the person completes it.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: String,
    pub channel: String,
    /// The start code in the deep link (and the challenge code of a session with a phone).
    pub code: String,
    pub phone: Option<String>,
    pub verification_id: Option<String>,
    pub client_metadata: Option<Value>,
    pub test: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Everything the API stores.
#[derive(Default)]
pub struct Data {
    pub verifications: HashMap<String, VerificationRecord>,
    pub verification_order: Vec<String>,
    pub requests: HashMap<String, RequestRecord>,
    pub request_order: Vec<String>,
    pub sessions: HashMap<String, SessionRecord>,
    pub session_order: Vec<String>,
    pub proofs: HashMap<String, ProofRecord>,
    /// token → proof id, so `validate` knows what this sandbox issued.
    pub tokens: HashMap<String, String>,
    /// Revoked proof ids in revocation order.
    pub revoked_order: Vec<String>,
    /// Token Status List slots (0 valid, 1 revoked, 2 suspended).
    pub statuses: Vec<u8>,
    /// `ph_ctl_…` handle → proof id (domain proofs).
    pub control_handles: HashMap<String, String>,
    /// HITL configurations by id, and their creation order.
    pub hitls: HashMap<String, crate::approvals::HitlRecord>,
    pub hitl_order: Vec<String>,
    /// Confirmations by id, and their creation order.
    pub confirmations: HashMap<String, crate::approvals::ConfirmationRecord>,
    pub confirmation_order: Vec<String>,
    /// Delegations by record id, and their creation order.
    pub delegations: HashMap<String, crate::delegations::DelegationRecord>,
    pub delegation_order: Vec<String>,
    /// `ph_dlg_…` handle → record id.
    pub delegation_handles: HashMap<String, String>,
    /// delegation token → record id, so `validate` knows what this sandbox issued.
    pub delegation_tokens: HashMap<String, String>,
}

impl Data {
    /// Takes the next Token Status List slot (valid).
    pub fn new_slot(&mut self) -> u64 {
        let idx = self.statuses.len() as u64;
        self.statuses.push(0);
        idx
    }

    /// Sets a slot's value (no-op for an unknown slot).
    pub fn set_slot(&mut self, idx: Option<u64>, value: u8) {
        if let Some(slot) = idx
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.statuses.get_mut(i))
        {
            *slot = value;
        }
    }
}

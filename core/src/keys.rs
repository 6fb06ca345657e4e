//! The issuer's signing keys: a [`KeySet`] parsed once per JWKS document, held in an `ArcSwap`
//! by the [`KeyStore`] and replaced by a background refresher.
//!
//! Reads are lock-free. The refresher honours `Cache-Control: max-age` (24 h when absent) with
//! jitter, retries a failed or garbage fetch with backoff while keeping the last good set, and
//! serves coalesced refetches requested by tokens with an unknown `kid` (at most one per
//! cooldown, with negative caching of the unknown ids). The request path never awaits the network.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use tokio::sync::Notify;

use crate::fetch::{self, FetchError};

/// The signature algorithms proofgate accepts. The algorithm of a check is always the key's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, keys of 2048 bits or more.
    Rs256,
    /// ECDSA P-256 with SHA-256, fixed-length signatures.
    Es256,
}

impl Algorithm {
    /// Parses a JOSE `alg` name. Only `RS256` and `ES256`, exactly; anything else (`none` in any
    /// spelling, `HS256`, `RS512`, …) is `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }
}

/// One published verification key, parsed once.
pub struct VerificationKey {
    /// The `kid`, if published with one; shared with every proof this key verifies (a cached
    /// proof names its key without a copy of the `kid`).
    pub kid: Option<Arc<str>>,
    /// The key's algorithm.
    pub alg: Algorithm,
    /// Newer sets: `proof`, `delegation` or `status-list`; `None` on older sets (any purpose).
    pub purpose: Option<String>,
    /// Newer sets: start of the window in which the key signs (Unix seconds).
    pub not_before: Option<i64>,
    /// Newer sets: end of the window in which the key signs (Unix seconds).
    pub not_after: Option<i64>,
    /// Newer sets: the longest `exp - iat` a token signed by this key may have (seconds).
    pub max_token_lifetime: Option<i64>,
    /// Newer sets: `proof_legacy: true` marks a key from before purposes and windows; the
    /// issuer's key rules skip the purpose and window checks for it (see
    /// [`crate::delegation`]).
    pub legacy: bool,
    key: ParsedPublicKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// Checks `signature` over `message` with this key and its own algorithm.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }

    /// Whether this key may sign something of `purpose` (a key without a purpose may sign
    /// anything).
    pub fn serves(&self, purpose: &str) -> bool {
        self.purpose.as_deref().is_none_or(|p| p == purpose)
    }
}

/// Why a JWKS document was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    /// Not a JSON object with a `keys` array.
    #[error("not a JWKS document: {0}")]
    NotJwks(String),
    /// No key in it is usable (RS256 or ES256, for signatures).
    #[error("no usable RS256 or ES256 key in the set")]
    NoUsableKey,
}

/// The parsed keys of one JWKS document.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
    tombstones: Vec<Tombstone>,
}

/// A key the issuer withdrew (`proof_tombstones` in the JWKS document): tokens it signed are
/// refused even while the key itself is still served — a delegation token `key_revoked`, a proof
/// token `proof_key_revoked`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The withdrawn key's id.
    pub kid: String,
    /// When it was withdrawn (Unix seconds), if the document says.
    pub revoked_at: Option<i64>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
    #[serde(default)]
    proof_tombstones: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    proof_purpose: Option<String>,
    #[serde(default)]
    not_before: Option<serde_json::Value>,
    #[serde(default)]
    not_after: Option<serde_json::Value>,
    #[serde(default)]
    max_token_lifetime: Option<i64>,
    #[serde(default)]
    proof_legacy: Option<bool>,
}

impl KeySet {
    /// Parses a JWKS document. Keys that are not signature keys of an accepted algorithm are
    /// skipped; a document with none left is refused.
    pub fn from_jwks(body: &[u8]) -> Result<Self, KeySetError> {
        let raw: RawJwks =
            serde_json::from_slice(body).map_err(|e| KeySetError::NotJwks(e.to_string()))?;
        let mut keys = Vec::new();
        for value in raw.keys {
            let Ok(jwk) = serde_json::from_value::<RawJwk>(value) else {
                continue;
            };
            match parse_jwk(jwk) {
                Some(key) => keys.push(key),
                None => tracing::debug!("skipping an unusable JWKS entry"),
            }
        }
        if keys.is_empty() {
            return Err(KeySetError::NoUsableKey);
        }
        let tombstones = raw
            .proof_tombstones
            .as_ref()
            .and_then(serde_json::Value::as_array)
            .map(|list| list.iter().filter_map(tombstone).collect())
            .unwrap_or_default();
        Ok(Self { keys, tombstones })
    }

    /// The tombstone of `kid`, if the document lists one.
    pub fn tombstone(&self, kid: &str) -> Option<&Tombstone> {
        self.tombstones.iter().find(|t| t.kid == kid)
    }

    /// Whether any key carries a `proof_purpose` (a set from after purposes were introduced):
    /// then a token without `kid` may only be checked against legacy keys.
    pub fn has_purposes(&self) -> bool {
        self.keys.iter().any(|k| k.purpose.is_some())
    }

    /// The key with exactly this `kid`.
    pub fn by_kid(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    /// Every key.
    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty (only the empty initial set is).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn parse_jwk(jwk: RawJwk) -> Option<VerificationKey> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let alg = match (jwk.kty.as_str(), jwk.alg.as_deref()) {
        ("RSA", None | Some("RS256")) => Algorithm::Rs256,
        ("EC", None | Some("ES256")) if jwk.crv.as_deref() == Some("P-256") => Algorithm::Es256,
        _ => return None,
    };
    let key = match alg {
        Algorithm::Rs256 => {
            let n = URL_SAFE_NO_PAD.decode(jwk.n?).ok()?;
            let e = URL_SAFE_NO_PAD.decode(jwk.e?).ok()?;
            // RSA-2048 to RSA-8192 only; a short modulus is refused here, not at first use.
            let significant = n.len() - n.iter().take_while(|b| **b == 0).count();
            if !(256..=1024).contains(&significant) || e.is_empty() || e.len() > 8 {
                return None;
            }
            let der = rsa_public_key_der(&n, &e);
            ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der).ok()?
        }
        Algorithm::Es256 => {
            let x = URL_SAFE_NO_PAD.decode(jwk.x?).ok()?;
            let y = URL_SAFE_NO_PAD.decode(jwk.y?).ok()?;
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).ok()?
        }
    };
    Some(VerificationKey {
        kid: jwk.kid.map(Arc::from),
        alg,
        purpose: jwk.proof_purpose,
        not_before: jwk.not_before.as_ref().and_then(time_value),
        not_after: jwk.not_after.as_ref().and_then(time_value),
        max_token_lifetime: jwk.max_token_lifetime,
        legacy: jwk.proof_legacy.unwrap_or(false),
        key,
    })
}

/// One `proof_tombstones` entry: `{kid, revoked_at}` (a NumericDate or RFC 3339), or a bare kid.
fn tombstone(v: &serde_json::Value) -> Option<Tombstone> {
    match v {
        serde_json::Value::String(kid) if !kid.is_empty() => Some(Tombstone {
            kid: kid.clone(),
            revoked_at: None,
        }),
        serde_json::Value::Object(o) => Some(Tombstone {
            kid: o.get("kid")?.as_str().filter(|k| !k.is_empty())?.to_owned(),
            revoked_at: o.get("revoked_at").and_then(time_value),
        }),
        _ => None,
    }
}

/// A key window bound given as a NumericDate or an RFC 3339 string.
fn time_value(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp()),
        _ => None,
    }
}

/// DER of a PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(out: &mut Vec<u8>, bytes: &[u8]) {
        let bytes = &bytes[bytes
            .iter()
            .take_while(|b| **b == 0)
            .count()
            .min(bytes.len().saturating_sub(1))..];
        let pad = bytes.first().is_some_and(|b| b & 0x80 != 0);
        out.push(0x02);
        length(out, bytes.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(bytes);
    }
    fn length(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let be = len.to_be_bytes();
            let skip = be.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (be.len() - skip) as u8);
            out.extend_from_slice(&be[skip..]);
        }
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(&mut body, n);
    integer(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// Settings of the key store and its refresher.
#[derive(Debug, Clone)]
pub struct KeysConfig {
    /// Where the JWKS is published.
    pub jwks_url: String,
    /// Refresh interval when the response has no `Cache-Control: max-age`. Defaults to 24 h.
    pub default_max_age: Duration,
    /// Shortest interval between two scheduled refreshes, whatever `max-age` says.
    /// Defaults to 10 min.
    pub min_refresh: Duration,
    /// Longest a key set may go unrefreshed before decisions fail closed with `jwks_stale`.
    /// Defaults to 24 h.
    pub max_staleness: Duration,
    /// Minimum time between two refetches caused by unknown `kid`s. Defaults to 30 s.
    pub unknown_kid_cooldown: Duration,
    /// First retry delay after a failed fetch; doubles up to `backoff_max`. Defaults to 1 s.
    pub backoff_initial: Duration,
    /// Longest retry delay. Defaults to 5 min.
    pub backoff_max: Duration,
    /// Timeout of one fetch. Defaults to 10 s.
    pub fetch_timeout: Duration,
    /// Largest JWKS document accepted. Defaults to 256 KiB.
    pub max_document_bytes: usize,
}

impl KeysConfig {
    /// Defaults for a JWKS at `jwks_url`.
    pub fn new(jwks_url: impl Into<String>) -> Self {
        Self {
            jwks_url: jwks_url.into(),
            default_max_age: Duration::from_secs(24 * 3600),
            min_refresh: Duration::from_secs(600),
            max_staleness: Duration::from_secs(24 * 3600),
            unknown_kid_cooldown: Duration::from_secs(30),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(10),
            max_document_bytes: 256 * 1024,
        }
    }
}

/// One key set as installed at one time.
#[derive(Debug, Default)]
pub struct KeySnapshot {
    /// The keys.
    pub set: KeySet,
    /// When the set was last fetched successfully (`None`: never).
    pub fetched_at: Option<Instant>,
    /// Bumped whenever the published document changes; cached verifications from an older
    /// generation are re-checked.
    pub generation: u64,
    digest: Vec<u8>,
}

/// The live key set with its refresh state. Share it as `Arc<KeyStore>`.
pub struct KeyStore {
    config: KeysConfig,
    current: ArcSwap<KeySnapshot>,
    refetch: Notify,
    origin: Instant,
    last_refetch_request_ms: AtomicU64,
    negative: moka::sync::Cache<String, ()>,
    failures: AtomicU64,
    client: reqwest::Client,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("jwks_url", &self.config.jwks_url)
            .field("keys", &self.current.load().set.len())
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// An empty store; nothing verifies until the first successful fetch (or [`install`]).
    ///
    /// [`install`]: KeyStore::install
    pub fn new(config: KeysConfig) -> Arc<Self> {
        let negative = moka::sync::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(config.unknown_kid_cooldown)
            .build();
        Arc::new(Self {
            config,
            current: ArcSwap::from_pointee(KeySnapshot::default()),
            refetch: Notify::new(),
            origin: Instant::now(),
            last_refetch_request_ms: AtomicU64::new(0),
            negative,
            failures: AtomicU64::new(0),
            client: fetch::http_client(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &KeysConfig {
        &self.config
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<KeySnapshot>> {
        self.current.load()
    }

    /// The generation of the current set.
    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }

    /// Time since the last successful fetch; `None` if there never was one.
    pub fn age(&self) -> Option<Duration> {
        self.current.load().fetched_at.map(|t| t.elapsed())
    }

    /// Whether decisions must fail closed: never fetched, or not refreshed for longer than the
    /// maximum staleness.
    pub fn is_stale(&self) -> bool {
        self.is_stale_at(Instant::now())
    }

    /// [`KeyStore::is_stale`] as of `now` (a reading of the monotonic clock).
    pub fn is_stale_at(&self, now: Instant) -> bool {
        self.current
            .load()
            .fetched_at
            .is_none_or(|t| now.saturating_duration_since(t) > self.config.max_staleness)
    }

    /// Consecutive failed fetches so far.
    pub fn consecutive_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Installs a parsed set as if just fetched.
    pub fn install(&self, set: KeySet, digest: Vec<u8>) {
        let prev = self.current.load();
        let generation = if prev.digest == digest {
            prev.generation
        } else {
            prev.generation + 1
        };
        self.current.store(Arc::new(KeySnapshot {
            set,
            fetched_at: Some(Instant::now()),
            generation,
            digest,
        }));
    }

    /// Asks the refresher for a refetch because `kid` is unknown. Never waits: at most one
    /// refetch per cooldown, and a `kid` already asked about within the cooldown is not asked
    /// about again.
    pub fn request_refetch(&self, kid: &str) {
        if self.negative.contains_key(kid) {
            return;
        }
        self.negative.insert(kid.to_owned(), ());
        let now_ms = self.origin.elapsed().as_millis() as u64 + 1;
        let last = self.last_refetch_request_ms.load(Ordering::Relaxed);
        let cooldown_ms = self.config.unknown_kid_cooldown.as_millis() as u64;
        if last != 0 && now_ms.saturating_sub(last) < cooldown_ms {
            return;
        }
        if self
            .last_refetch_request_ms
            .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.refetch.notify_one();
        }
    }

    /// Fetches the JWKS once and installs it. Returns when the next scheduled refresh is due.
    pub async fn refresh(&self) -> Result<Duration, FetchError> {
        let fetched = fetch::get(
            &self.client,
            &self.config.jwks_url,
            "application/json",
            self.config.fetch_timeout,
            self.config.max_document_bytes,
        )
        .await?;
        let set =
            KeySet::from_jwks(&fetched.body).map_err(|e| FetchError::Invalid(e.to_string()))?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &fetched.body)
            .as_ref()
            .to_vec();
        tracing::debug!(keys = set.len(), "JWKS refreshed");
        self.install(set, digest);
        // Refresh well before the set could go stale, so a failed refresh has time to be retried.
        let ceiling = self
            .config
            .default_max_age
            .min(self.config.max_staleness / 2)
            .max(self.config.min_refresh);
        let max_age = fetched.max_age.unwrap_or(self.config.default_max_age);
        Ok(fetch::jitter(
            max_age.clamp(self.config.min_refresh, ceiling),
        ))
    }

    /// Runs the refresher until `shutdown` resolves: scheduled refreshes, backoff after
    /// failures, and coalesced refetches for unknown `kid`s.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_fetch: Option<Instant> = None;
        loop {
            let wait = match self.refresh().await {
                Ok(next) => {
                    self.failures.store(0, Ordering::Relaxed);
                    next
                }
                Err(e) => {
                    let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                    let next = fetch::backoff(
                        self.config.backoff_initial,
                        self.config.backoff_max,
                        n as u32,
                    );
                    tracing::warn!(error = %e, failures = n, retry_in = ?next, "JWKS refresh failed; keeping the last good key set");
                    next
                }
            };
            last_fetch = Some(Instant::now()).or(last_fetch);
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.refetch.notified() => {
                    // Refetches for unknown kids are spaced by the cooldown.
                    let since = last_fetch.map_or(self.config.unknown_kid_cooldown, |t| t.elapsed());
                    if since < self.config.unknown_kid_cooldown {
                        tokio::select! {
                            _ = &mut shutdown => return,
                            _ = tokio::time::sleep(self.config.unknown_kid_cooldown - since) => {}
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_integer_padding() {
        let der = rsa_public_key_der(&[0x80, 1], &[1, 0, 1]);
        assert_eq!(
            der,
            vec![0x30, 0x0a, 0x02, 0x03, 0x00, 0x80, 0x01, 0x02, 0x03, 0x01, 0x00, 0x01]
        );
    }

    #[test]
    fn algorithm_names_are_exact() {
        assert_eq!(Algorithm::from_name("RS256"), Some(Algorithm::Rs256));
        for bad in [
            "none", "None", "NONE", "HS256", "rs256", "RS512", "ES384", "",
        ] {
            assert_eq!(Algorithm::from_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn garbage_jwks_is_refused() {
        assert!(KeySet::from_jwks(b"<html>").is_err());
        assert!(KeySet::from_jwks(br#"{"keys":[]}"#).is_err());
        assert!(KeySet::from_jwks(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).is_err());
        assert!(KeySet::from_jwks(br#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#).is_err());
    }
}

//! Token → verified proof or a typed [`Reason`], with a bounded cache of verified tokens.
//!
//! The rules are the issuer's SDK rules (see `spec/proof-api/CONTRACT.md`), with proofgate's three deliberate
//! tightenings: `exp` is required, the revocation list is consulted besides the status list (in
//! [`crate::revocation`]), and a size cap applies before any parsing.
//!
//! A repeated token costs one digest and one cache lookup: the cache holds the result of the
//! signature and claim checks, keyed by 128 bits of the token's SHA-256 (the token itself is not
//! kept), and an entry never outlives the token's `exp`. A token this thread saw a moment ago
//! skips the digest too: a small per-thread front remembers the last tokens' digests. What can change after a token was
//! verified — the clock, the key set, key staleness — is re-checked on every hit; revocation is
//! checked by the caller on every decision.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::claims::ProofClaims;
use crate::clock::{unix_now, Now, DEFAULT_LEEWAY_SECS};
use crate::jws::{self, JwsError};
use crate::keys::KeyStore;
use crate::proof::VerifiedProof;
use crate::reason::Reason;

/// Settings of the verifier.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The required `iss`. Defaults to `proof.holdings`.
    pub issuer: String,
    /// Clock tolerance for `exp`, `iat` and `nbf`. Defaults to 5 s.
    pub leeway: Duration,
    /// Longest token accepted, checked before any parsing. Defaults to 8 KiB.
    pub max_token_bytes: usize,
    /// Most verified tokens kept in the cache. Defaults to 100 000.
    pub cache_capacity: u64,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            issuer: "proof.holdings".into(),
            leeway: Duration::from_secs(DEFAULT_LEEWAY_SECS),
            max_token_bytes: 8 * 1024,
            cache_capacity: 100_000,
        }
    }
}

/// Verifies proof tokens against a [`KeyStore`].
pub struct Verifier {
    keys: Arc<KeyStore>,
    cache: moka::sync::Cache<TokenDigest, Arc<VerifiedProof>, CacheHasher>,
    config: VerifierConfig,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// The cache key: the first 128 bits of the token's SHA-256 digest. Two tokens with the same key
/// are the same token: only tokens whose signature verified are ever inserted, so passing for a
/// cached token means finding a second preimage of 128 bits (2^128 work) — the birthday bound
/// (2^64) would only let someone collide two tokens they already hold. So the ~700–900-byte token
/// need not be kept: the key is 16 bytes instead of a third of each entry, and a hit hashes and
/// compares 16 bytes. The digest runs at several GB/s with the SHA extensions, well under a
/// microsecond per token.
type TokenDigest = u128;

fn token_digest(token: &str) -> TokenDigest {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&d.as_ref()[..16]);
    u128::from_le_bytes(first)
}

/// A per-thread front of the cache: for the last few tokens this thread verified or found in the
/// cache, the token and its [`TokenDigest`], so that a token sent again (a browser or a client
/// keeps sending the same one) skips the SHA-256 (~0.6 µs for an ~800-byte token; finding it
/// here costs a compare of the token with the remembered one).
///
/// It maps a token to its digest and nothing else — a pure function — so it never needs
/// invalidating: what the token is worth (signature, times, key set, revocation) is still decided
/// by the cache lookup and the checks that follow, exactly as without it. A token is remembered
/// only once it verified or was found in the cache, so garbage does not churn the slots.
///
/// Bounded: [`front::SLOTS`] direct-mapped slots per thread, each holding one token of at most
/// [`front::MAX_TOKEN`] bytes (longer ones are not remembered), so at most 32 KiB per thread. The
/// compare runs in time that depends only on the length: a remembered token was presented by
/// another client, and an early-exit compare would let a caller learn how much of it matches a
/// guess, byte by byte.
mod front {
    use std::cell::RefCell;

    use super::TokenDigest;

    /// Slots per thread (direct-mapped).
    pub(super) const SLOTS: usize = 16;
    /// Longest token remembered.
    pub(super) const MAX_TOKEN: usize = 2048;

    #[derive(Default)]
    struct Slot {
        token: Vec<u8>,
        digest: TokenDigest,
    }

    thread_local! {
        static FRONT: RefCell<[Slot; SLOTS]> = RefCell::new(Default::default());
    }

    /// The slot of `token`: from its length and last eight bytes (the end of the signature,
    /// which differs between any two tokens), without reading the rest. Someone choosing tokens
    /// that share a slot only evicts their own thread's entries: a cost, never a wrong answer.
    fn slot(token: &[u8]) -> usize {
        let mut tail = [0u8; 8];
        let n = token.len().min(8);
        tail[..n].copy_from_slice(&token[token.len() - n..]);
        let x = u64::from_le_bytes(tail) ^ token.len() as u64;
        (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
    }

    /// The digest of `token` when this thread remembers it.
    pub(super) fn get(token: &str) -> Option<TokenDigest> {
        let token = token.as_bytes();
        if token.is_empty() || token.len() > MAX_TOKEN {
            return None;
        }
        FRONT.with_borrow(|slots| {
            let s = &slots[slot(token)];
            (s.token.len() == token.len() && same(&s.token, token)).then_some(s.digest)
        })
    }

    /// Remembers `digest` as `token`'s, in place of what its slot held.
    pub(super) fn put(token: &str, digest: TokenDigest) {
        let token = token.as_bytes();
        if token.is_empty() || token.len() > MAX_TOKEN {
            return;
        }
        FRONT.with_borrow_mut(|slots| {
            let s = &mut slots[slot(token)];
            s.token.clear();
            s.token.extend_from_slice(token);
            s.digest = digest;
        });
    }

    /// Whether two slices of the same length are equal, in time that depends only on the length
    /// (no early exit; eight bytes at a time, which the compiler vectorizes).
    fn same(a: &[u8], b: &[u8]) -> bool {
        debug_assert_eq!(a.len(), b.len());
        let mut diff = 0u64;
        let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
        for (x, y) in a8.remainder().iter().zip(b8.remainder()) {
            diff |= u64::from(x ^ y);
        }
        for (x, y) in a8.zip(b8) {
            let x = u64::from_ne_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]]);
            let y = u64::from_ne_bytes([y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7]]);
            diff |= x ^ y;
        }
        std::hint::black_box(diff) == 0
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn remembers_by_the_whole_token_and_forgets_on_collision() {
            let a = "a".repeat(826);
            assert_eq!(get(&a), None);
            put(&a, 7);
            assert_eq!(get(&a), Some(7));
            // One byte off anywhere: not the same token.
            for i in [0, 400, 817, 825] {
                let mut b = a.clone().into_bytes();
                b[i] = b'b';
                let b = String::from_utf8(b).unwrap();
                if slot(b.as_bytes()) == slot(a.as_bytes()) {
                    assert_eq!(get(&b), None, "{i}");
                }
            }
            // Too long or empty: never remembered.
            let long = "x".repeat(MAX_TOKEN + 1);
            put(&long, 1);
            assert_eq!(get(&long), None);
            put("", 2);
            assert_eq!(get(""), None);
            // Another thread has its own slots.
            std::thread::spawn(move || assert_eq!(get(&a), None))
                .join()
                .unwrap();
        }

        #[test]
        fn same_is_equality() {
            for n in [0, 1, 7, 8, 9, 63, 64, 65, 826] {
                let a: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
                assert!(same(&a, &a.clone()));
                for i in 0..n {
                    let mut b = a.clone();
                    b[i] ^= 0x80;
                    assert!(!same(&a, &b), "{n} {i}");
                }
            }
        }
    }
}

/// The cache's hasher over the digest. foldhash is seeded per process, and only tokens
/// whose signature verified are ever inserted, so an attacker cannot choose the keys that share a
/// bucket.
type CacheHasher = foldhash::fast::RandomState;

struct UntilExp;

impl moka::Expiry<TokenDigest, Arc<VerifiedProof>> for UntilExp {
    fn expire_after_create(
        &self,
        _: &TokenDigest,
        value: &Arc<VerifiedProof>,
        _: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            value.exp.saturating_sub(unix_now()).max(0) as u64,
        ))
    }
}

impl Verifier {
    /// A verifier over `keys`.
    pub fn new(keys: Arc<KeyStore>, config: VerifierConfig) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(config.cache_capacity)
            .expire_after(UntilExp)
            .build_with_hasher(CacheHasher::default());
        Self {
            keys,
            cache,
            config,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The key store.
    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    /// The settings.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Number of cached verified tokens (approximate).
    pub fn cached(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Finishes the cache's pending housekeeping (admissions, evictions, expirations) now rather
    /// than on a later access; for measurements and tests that count what the cache holds.
    pub fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }

    /// Cache lookups so far that found a verified token, and those that did not.
    pub fn cache_stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Verifies `token` at the current time, from the cache when possible.
    pub fn verify(&self, token: &str) -> Result<Arc<VerifiedProof>, Reason> {
        self.verify_at(token, unix_now())
    }

    /// Verifies `token` as of `now` (Unix seconds).
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Arc<VerifiedProof>, Reason> {
        self.verify_with(
            token,
            Now {
                unix: now,
                mono: Instant::now(),
            },
        )
    }

    /// Verifies `token` as of `now`, from the cache when possible.
    pub fn verify_with(&self, token: &str, now: Now) -> Result<Arc<VerifiedProof>, Reason> {
        if token.len() > self.config.max_token_bytes {
            return Err(Reason::Malformed);
        }
        let remembered = front::get(token);
        let key = remembered.unwrap_or_else(|| token_digest(token));
        if let Some(hit) = self.cache.get(&key) {
            if hit.generation == self.keys.generation() {
                self.hits.fetch_add(1, Ordering::Relaxed);
                self.check_time(&hit.claims, now.unix)?;
                if self.keys.is_stale_at(now.mono) {
                    return Err(Reason::JwksStale);
                }
                if remembered.is_none() {
                    front::put(token, key);
                }
                return Ok(hit);
            }
            self.cache.invalidate(&key);
        }
        let now = now.unix;
        self.misses.fetch_add(1, Ordering::Relaxed);
        let proof = Arc::new(self.verify_uncached(token, now)?);
        self.cache.insert(key, proof.clone());
        front::put(token, key);
        Ok(proof)
    }

    /// Verifies `token` with every check and no cache.
    pub fn verify_uncached(&self, token: &str, now: i64) -> Result<VerifiedProof, Reason> {
        if token.len() > self.config.max_token_bytes {
            return Err(Reason::Malformed);
        }
        let snapshot = self.keys.snapshot();
        let verified = match jws::verify(token, &snapshot.set, "proof") {
            Ok(v) => v,
            Err(JwsError::UnknownKey(kid)) => {
                if snapshot.fetched_at.is_none() {
                    return Err(Reason::JwksStale);
                }
                if let Some(kid) = kid {
                    if snapshot.set.by_kid(&kid).is_none() {
                        self.keys.request_refetch(&kid);
                    }
                }
                return Err(Reason::UnknownKey);
            }
            Err(e) => return Err(jws_reason(e)),
        };
        // A key the issuer withdrew (`proof_tombstones`) while it may still serve it: its tokens
        // are refused, as the issuer's own key rules refuse them. Checked after the signature,
        // so that a forged token's reason stays the signature's.
        if verified
            .key
            .kid
            .as_deref()
            .is_some_and(|kid| snapshot.set.tombstone(kid).is_some())
        {
            return Err(Reason::ProofKeyRevoked);
        }
        if verified
            .typ
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
        {
            return Err(Reason::Malformed);
        }
        let claims: ProofClaims =
            serde_json::from_slice(&verified.payload).map_err(|_| Reason::Malformed)?;
        // Only proof tokens gate routes: a delegation token is not a proof of control.
        if claims.token_type.as_deref().is_some_and(|t| t != "proof") {
            return Err(Reason::InvalidClaims);
        }
        if claims.iss.as_deref() != Some(self.config.issuer.as_str()) {
            return Err(Reason::Issuer);
        }
        let Some(exp) = claims.exp else {
            return Err(Reason::InvalidClaims);
        };
        if claims.sub.as_deref().is_none_or(str::is_empty) {
            return Err(Reason::InvalidClaims);
        }
        if claims.aud.as_deref().is_some_and(audience_present) {
            return Err(Reason::InvalidClaims);
        }
        self.check_time(&claims, now)?;
        let key = verified.key;
        if let Some(iat) = claims.iat {
            if key.not_before.is_some_and(|nb| iat < nb) || key.not_after.is_some_and(|na| iat > na)
            {
                return Err(Reason::InvalidSignature);
            }
            if key.max_token_lifetime.is_some_and(|max| exp - iat > max) {
                return Err(Reason::InvalidClaims);
            }
        }
        if self.keys.is_stale() {
            return Err(Reason::JwksStale);
        }
        let verified_at = claims
            .verified_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp());
        Ok(VerifiedProof::new(
            claims,
            exp,
            verified_at,
            // The key's own `kid` (the same text as the header's, which chose the key).
            verified.kid.and(verified.key.kid.clone()),
            snapshot.generation,
        ))
    }

    fn check_time(&self, claims: &ProofClaims, now: i64) -> Result<(), Reason> {
        let leeway = self.config.leeway.as_secs() as i64;
        let exp = claims.exp.ok_or(Reason::InvalidClaims)?;
        if exp <= now - leeway {
            return Err(Reason::Expired);
        }
        if claims.iat.is_some_and(|iat| iat > now + leeway)
            || claims.nbf.is_some_and(|nbf| nbf > now + leeway)
        {
            return Err(Reason::NotYetValid);
        }
        Ok(())
    }
}

fn audience_present(aud: &serde_json::Value) -> bool {
    match aud {
        serde_json::Value::Null => false,
        serde_json::Value::String(s) => !s.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

pub(crate) fn jws_reason(e: JwsError) -> Reason {
    match e {
        JwsError::Malformed => Reason::Malformed,
        JwsError::UnsupportedAlgorithm => Reason::UnsupportedAlgorithm,
        JwsError::ForbiddenHeader => Reason::ForbiddenHeader,
        JwsError::UnknownKey(_) => Reason::UnknownKey,
        JwsError::InvalidSignature => Reason::InvalidSignature,
    }
}

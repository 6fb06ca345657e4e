//! Delegation tokens: a domain (the *principal*) authorizes one artifact (the *delegate*, an
//! `https` URL or a package URL) for a set of scopes; the issuer signs that as a compact JWS with
//! a key of purpose `delegation` (`spec/proof-api/AGENTS-AND-APPROVALS.md` §1). An AI agent
//! presents it to act for the domain.
//!
//! [`DelegationVerifier::check`] verifies one token against one [`DelegationRequirement`] in the
//! contract's order, offline:
//!
//! 1. shape and claims: three-part JWS within the size cap, `alg` RS256/ES256, `iss` the
//!    trusted issuer, `token_type` exactly `delegation`, schema major `1`, claim types
//!    (`sub`, `principal`, `delegate`, `control_proof` non-empty strings, `scope` a non-empty
//!    string array, `iat`/`exp` numbers) — else `delegation_malformed`;
//! 2. time, 5 s leeway: `exp <= now - 5` is `delegation_expired` (the Python SDK's side of the
//!    boundary), `iat > now + 5` is `delegation_not_yet_valid`;
//! 3. `principal` (trimmed, lowercased) one of the requirement's → else `principal_mismatch`;
//! 4. `delegate` byte-equal to the delegate the gateway resolved itself (a verified mTLS client
//!    certificate's canonical URI SAN, [`ClientDelegates`]) → else `delegate_mismatch`; one of
//!    the requirement's `delegates` when it names any → else `delegate_mismatch`; no resolved
//!    delegate under `require_binding` → `delegate_unbound`;
//! 5. every required scope in `scope`, exact string membership → else `scope_not_granted`;
//! 6. the signature, with the issuer's Python key rules: a tombstoned `kid` is `key_revoked`;
//!    the key must have purpose `delegation` (`wrong_key_purpose`) and `iat` must fall in its
//!    window ±300 s (`outside_key_window`; a purpose key without any window member refuses
//!    every token), unless the key is marked `proof_legacy`; `exp - iat` at most the key's
//!    `max_token_lifetime` (`delegation_lifetime`); once any key has a purpose, a token without
//!    `kid` is tried against legacy keys only; no key verifies → `delegation_invalid_signature`;
//! 7. status, fail closed: a webhook-pushed revocation or suspension of the handle, then the
//!    token's status-list slot (0 valid, 1 `delegation_revoked`, 2 `delegation_suspended`,
//!    3 or unreadable → `delegation_status_unavailable`). A token without a slot is
//!    `delegation_status_unavailable` too: the contract's fallback is an online `validate`
//!    call, which the request path never makes. Status lists are fetched in the background by
//!    the [`RevocationStore`], as for proofs; `fail_open` does not apply to delegations.
//!
//! Steps 1–5 run before the signature, as the contract orders them: the reason given for a
//! forged token is therefore attacker-chosen, and is only ever a reason to refuse.
//!
//! Steps 1, 2 and 6 do not depend on the route; their result is cached per token (bounded, an
//! entry never outlives `exp`, re-checked when the key set changes). Steps 3–5 and 7 run on
//! every request.
//!
//! A delegation is a **bearer** artifact: whoever holds a copy can present it. Only a binding
//! (step 4 with a resolved delegate) proves that the presenter is the delegate; without one the
//! decision reports the delegation as unbound (`x-proof-delegation-bound: false`).
//!
//! Layer 3 (verification): imports from layers 1 and 2 and [`crate::revocation`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::claims::StatusListRef;
use crate::clock::{unix_now, Now, DEFAULT_LEEWAY_SECS};
use crate::jws::{self, JwsError};
use crate::keys::{KeySet, KeyStore, VerificationKey};
use crate::reason::Reason;
use crate::revocation::{Pushed, RevocationStore, SlotStatus};

/// The dedicated header carrying delegation tokens (repeated headers and comma-separated values
/// give several tokens).
pub const DELEGATION_HEADER: &str = "x-proof-delegation";

/// The `Authorization` scheme carrying one delegation token: `Authorization: Delegation <token>`
/// (the scheme name compares case-insensitively). Never read as a proof token, and a proof's
/// `Bearer` is never read as a delegation.
pub const AUTHORIZATION_SCHEME: &str = "Delegation";

/// Longest delegation token accepted, checked before anything is parsed.
pub const MAX_DELEGATION_BYTES: usize = 8 * 1024;

/// Most delegation tokens looked at in one request.
pub const MAX_DELEGATIONS_PER_REQUEST: usize = 4;

/// How far outside its key's `[not_before, not_after]` window a token's `iat` may fall (the
/// issuer's Python SDK rule).
pub const KEY_WINDOW_SLACK_SECS: i64 = 300;

/// The longest delegate id the issuer mints.
pub const MAX_DELEGATE_CHARS: usize = 512;

/// The identity headers set upstream for an allowed delegation, in this order: principal
/// (trimmed, lowercased),
/// delegate, granted scopes (space-separated), handle, and whether the delegate was bound
/// (`true`/`false`). Client-sent headers of these names (every spelling) are removed first,
/// like every `x-proof-*` header.
pub const DELEGATION_IDENTITY_HEADER_NAMES: [&str; 5] = [
    "x-proof-delegation-principal",
    "x-proof-delegation-delegate",
    "x-proof-delegation-scopes",
    "x-proof-delegation-handle",
    "x-proof-delegation-bound",
];

/// The delegates an adapter resolved itself for a connection: the canonical forms
/// ([`canonical_delegate`]) of the URI SANs of the client certificate that a TLS listener
/// verified against its client CA. Empty: nothing resolved, a delegation is unbound.
///
/// The gateway attaches it to each TLS connection; an application behind the tower layer that
/// terminates mTLS itself inserts it into the request's extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientDelegates(pub Vec<String>);

impl ClientDelegates {
    /// The canonical delegates of `uris` (a certificate's URI SANs); a URI that is not a
    /// delegate id is left out.
    pub fn from_uris<'a>(uris: impl IntoIterator<Item = &'a str>) -> Self {
        let mut out: Vec<String> = uris.into_iter().filter_map(canonical_delegate).collect();
        out.dedup();
        Self(out)
    }
}

/// What a route requires of a delegation. Built by the configuration
/// (`{ delegation = { principals = [...], scopes = [...] } }`) or in code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DelegationRequirement {
    /// Accepted principals (authorizing domains), trimmed and lowercased; empty accepts any
    /// principal (the answer is then only "someone claims this").
    pub principals: Vec<String>,
    /// Scopes that must all be granted, exactly.
    pub scopes: Vec<String>,
    /// Accepted delegates, canonical; empty accepts any. An allowlist, not a binding: it does
    /// not prove the presenter is that delegate.
    pub delegates: Vec<String>,
    /// Refuse (`delegate_unbound`) unless the gateway resolved the delegate itself (mTLS).
    pub require_binding: bool,
}

impl DelegationRequirement {
    /// A requirement for a delegation from one of `principals` granting every one of `scopes`.
    pub fn new<P, S>(principals: P, scopes: S) -> Self
    where
        P: IntoIterator,
        P::Item: AsRef<str>,
        S: IntoIterator,
        S::Item: AsRef<str>,
    {
        Self {
            principals: principals
                .into_iter()
                .map(|p| normalize_principal(p.as_ref()))
                .collect(),
            scopes: scopes
                .into_iter()
                .map(|s| s.as_ref().trim().to_owned())
                .collect(),
            delegates: Vec::new(),
            require_binding: false,
        }
    }

    /// Accepts only these delegates (canonicalized; one that is not a delegate id can never
    /// match and is kept as given).
    pub fn delegates<D: IntoIterator<Item = S>, S: AsRef<str>>(mut self, delegates: D) -> Self {
        self.delegates = delegates
            .into_iter()
            .map(|d| canonical_delegate(d.as_ref()).unwrap_or_else(|| d.as_ref().to_owned()))
            .collect();
        self
    }

    /// Requires the delegate to be bound (resolved by the gateway from an mTLS certificate).
    pub fn require_binding(mut self, required: bool) -> Self {
        self.require_binding = required;
        self
    }
}

/// A principal as compared: trimmed and lowercased (a trailing root dot is kept, as the
/// issuer's verifier keeps it).
pub fn normalize_principal(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

/// Whether `name` (normalized) is a DNS name as the issuer mints principals: at most 253
/// characters, two or more labels of letters, digits and inner hyphens, each 1–63 long.
pub fn is_valid_principal(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether `scope` is in the issuer's scope grammar: `^[a-z][a-z0-9]*(-[a-z0-9]+)*$`, at most
/// 64 characters. No wildcard, hierarchy or prefix exists: matching is exact membership.
pub fn is_valid_scope(scope: &str) -> bool {
    let b = scope.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && !scope.ends_with('-')
        && !scope.contains("--")
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// The canonical form of a delegate id, as the issuer writes it in `delegate`, or `None` when
/// `raw` is not a delegate id:
///
/// - **purl** (`pkg:` prefix): `pkg:<type>/<namespace/name>`, trimmed, without whitespace, `?`,
///   `#`, a version (`@` other than at the start of a segment, an npm scope) or an empty
///   segment; the type lowercased; npm names lowercased; pypi names lowercased with `_` → `-`.
/// - **url**: `https` only, without userinfo, query or fragment; parsed as WHATWG URLs are
///   (IDN host to punycode, dot segments resolved, percent-encoding normalized), host
///   lowercased, default port dropped, every trailing `/` dropped: `https://host[:port]path`.
///
/// At most 512 characters either way.
///
/// ```
/// use proofgate_core::delegation::canonical_delegate;
/// assert_eq!(canonical_delegate(" https://Agent.Example:443/bot/ ").as_deref(), Some("https://agent.example/bot"));
/// assert_eq!(canonical_delegate("pkg:PyPI/My_Agent").as_deref(), Some("pkg:pypi/my-agent"));
/// assert_eq!(canonical_delegate("pkg:npm/@Corp/Agent").as_deref(), Some("pkg:npm/@corp/agent"));
/// assert_eq!(canonical_delegate("http://agent.example/bot"), None);
/// assert_eq!(canonical_delegate("pkg:npm/agent@1.0.0"), None);
/// ```
pub fn canonical_delegate(raw: &str) -> Option<String> {
    let s = raw.trim();
    let out = if s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("pkg:")) {
        canonical_purl(&s[4..])?
    } else {
        canonical_url(s)?
    };
    (out.chars().count() <= MAX_DELEGATE_CHARS).then_some(out)
}

fn canonical_purl(rest: &str) -> Option<String> {
    if rest.is_empty()
        || rest
            .chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '#')
    {
        return None;
    }
    let mut segments = rest.split('/');
    let kind = segments.next()?.to_ascii_lowercase();
    if kind.is_empty() {
        return None;
    }
    let names: Vec<&str> = segments.collect();
    if names.is_empty() {
        return None;
    }
    for seg in &names {
        if seg.is_empty() || seg.get(1..).is_some_and(|tail| tail.contains('@')) || *seg == "@" {
            return None;
        }
    }
    let path = names.join("/");
    let path = match kind.as_str() {
        "npm" => path.to_lowercase(),
        "pypi" => path.to_lowercase().replace('_', "-"),
        _ => path,
    };
    Some(format!("pkg:{kind}/{path}"))
}

fn canonical_url(s: &str) -> Option<String> {
    if s.chars().any(char::is_whitespace) {
        return None;
    }
    let u = url::Url::parse(s).ok()?;
    if u.scheme() != "https"
        || !u.username().is_empty()
        || u.password().is_some()
        || u.query().is_some()
        || u.fragment().is_some()
    {
        return None;
    }
    let host = u.host_str()?.to_ascii_lowercase();
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = u.path().trim_end_matches('/');
    Some(format!("https://{host}{port}{path}"))
}

/// A delegation token whose shape, claims and signature passed (steps 1, 2 and 6). Its status
/// is not part of it.
#[derive(Debug, Clone)]
pub struct VerifiedDelegation {
    /// The delegation handle (`sub`, `ph_dlg_…`).
    pub handle: String,
    /// The authorizing domain, as written in the token.
    pub principal: String,
    /// The delegate, canonical as the issuer wrote it.
    pub delegate: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// The domain control proof's handle (`ph_ctl_…`).
    pub control_proof: String,
    /// `iat`, Unix seconds.
    pub iat: i64,
    /// `exp`, Unix seconds.
    pub exp: i64,
    /// The status-list slot, when the token has one.
    pub status: Option<StatusListRef>,
    /// The `kid` of the key that verified it.
    pub kid: Option<Arc<str>>,
    generation: u64,
}

/// A delegation that satisfied a requirement of an allowed request.
#[derive(Debug, Clone)]
pub struct Delegated {
    /// The verified delegation.
    pub delegation: Arc<VerifiedDelegation>,
    /// Whether its delegate is the one the gateway resolved itself (mTLS): only then is the
    /// presenter proven to be the delegate.
    pub bound: bool,
}

/// Settings of the delegation verifier (taken from the proof verifier's).
#[derive(Debug, Clone)]
pub struct DelegationConfig {
    /// The required `iss`. Defaults to `proof.holdings`.
    pub issuer: String,
    /// Clock tolerance for `exp` and `iat`. Defaults to 5 s.
    pub leeway: Duration,
    /// Most verified delegation tokens kept in the cache. Defaults to 100 000.
    pub cache_capacity: u64,
}

impl Default for DelegationConfig {
    fn default() -> Self {
        Self {
            issuer: "proof.holdings".into(),
            leeway: Duration::from_secs(DEFAULT_LEEWAY_SECS),
            cache_capacity: 100_000,
        }
    }
}

struct UntilExp;

impl moka::Expiry<String, Arc<VerifiedDelegation>> for UntilExp {
    fn expire_after_create(
        &self,
        _: &String,
        value: &Arc<VerifiedDelegation>,
        _: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            value.exp.saturating_sub(unix_now()).max(0) as u64,
        ))
    }
}

/// Verifies delegation tokens offline against the issuer's keys and status lists.
pub struct DelegationVerifier {
    keys: Arc<KeyStore>,
    revocation: Arc<RevocationStore>,
    cache: moka::sync::Cache<String, Arc<VerifiedDelegation>, foldhash::fast::RandomState>,
    config: DelegationConfig,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for DelegationVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegationVerifier")
            .field("config", &self.config)
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl DelegationVerifier {
    /// A verifier over the issuer's key store and the revocation store (for status lists).
    pub fn new(
        keys: Arc<KeyStore>,
        revocation: Arc<RevocationStore>,
        config: DelegationConfig,
    ) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(config.cache_capacity)
            .expire_after(UntilExp)
            .build_with_hasher(foldhash::fast::RandomState::default());
        Self {
            keys,
            revocation,
            cache,
            config,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The settings.
    pub fn config(&self) -> &DelegationConfig {
        &self.config
    }

    /// Cache lookups so far that found a verified token, and those that did not.
    pub fn cache_stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Checks `token` against `requirement` as of `now`, `client` being the delegates the
    /// adapter resolved itself ([`ClientDelegates`]; empty when none). Every step of the
    /// [module docs](self), in order.
    pub fn check(
        &self,
        token: &str,
        requirement: &DelegationRequirement,
        client: &[String],
        now: Now,
    ) -> Result<Delegated, Reason> {
        if token.len() > MAX_DELEGATION_BYTES {
            return Err(Reason::DelegationMalformed);
        }
        let generation = self.keys.generation();
        let cached = match self.cache.get(token) {
            Some(hit) if hit.generation == generation => Some(hit),
            Some(_) => {
                self.cache.invalidate(token);
                None
            }
            None => None,
        };
        // Step 1 (or the cached result of it).
        let (parsed, decoded) = match cached {
            Some(hit) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                (hit, None)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                let decoded = jws::decode(token).map_err(|e| match e {
                    JwsError::UnsupportedAlgorithm => Reason::DelegationUnsupportedAlgorithm,
                    JwsError::InvalidSignature => Reason::DelegationInvalidSignature,
                    _ => Reason::DelegationMalformed,
                })?;
                if decoded
                    .typ
                    .as_deref()
                    .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
                {
                    return Err(Reason::DelegationMalformed);
                }
                let payload = decoded.payload().map_err(|_| Reason::DelegationMalformed)?;
                let parsed = parse_claims(&payload, &self.config.issuer)?;
                (Arc::new(parsed), Some(decoded))
            }
        };
        // Step 2.
        let leeway = self.config.leeway.as_secs() as i64;
        if parsed.exp <= now.unix - leeway {
            return Err(Reason::DelegationExpired);
        }
        if parsed.iat > now.unix + leeway {
            return Err(Reason::DelegationNotYetValid);
        }
        // Step 3.
        if !requirement.principals.is_empty()
            && !requirement
                .principals
                .contains(&normalize_principal(&parsed.principal))
        {
            return Err(Reason::PrincipalMismatch);
        }
        // Step 4.
        let bound = !client.is_empty();
        if bound && !client.iter().any(|d| d == &parsed.delegate) {
            return Err(Reason::DelegateMismatch);
        }
        if !requirement.delegates.is_empty() && !requirement.delegates.contains(&parsed.delegate) {
            return Err(Reason::DelegateMismatch);
        }
        if requirement.require_binding && !bound {
            return Err(Reason::DelegateUnbound);
        }
        // Step 5.
        if !requirement
            .scopes
            .iter()
            .all(|s| parsed.scopes.iter().any(|g| g == s))
        {
            return Err(Reason::ScopeNotGranted);
        }
        // Step 6.
        let delegation = match decoded {
            None => {
                if self.keys.is_stale_at(now.mono) {
                    return Err(Reason::JwksStale);
                }
                parsed
            }
            Some(decoded) => {
                let snapshot = self.keys.snapshot();
                if snapshot.fetched_at.is_none() {
                    return Err(Reason::JwksStale);
                }
                let key = self.check_signature(&snapshot.set, &decoded, &parsed)?;
                if self.keys.is_stale_at(now.mono) {
                    return Err(Reason::JwksStale);
                }
                let mut verified = VerifiedDelegation::clone(&parsed);
                verified.kid = key.kid.clone();
                verified.generation = snapshot.generation;
                let verified = Arc::new(verified);
                self.cache.insert(token.to_owned(), verified.clone());
                verified
            }
        };
        // Step 7.
        self.check_status(&delegation, now)?;
        Ok(Delegated { delegation, bound })
    }

    fn check_signature<'k>(
        &self,
        set: &'k KeySet,
        decoded: &jws::Decoded<'_>,
        claims: &VerifiedDelegation,
    ) -> Result<&'k VerificationKey, Reason> {
        let rules = |key: &VerificationKey| -> Result<(), Reason> {
            if !key.legacy && set.has_purposes() {
                if key.purpose.as_deref() != Some("delegation") {
                    return Err(Reason::WrongKeyPurpose);
                }
                if key.not_before.is_none() && key.not_after.is_none() {
                    return Err(Reason::OutsideKeyWindow);
                }
                let early = key
                    .not_before
                    .is_some_and(|nb| claims.iat < nb - KEY_WINDOW_SLACK_SECS);
                let late = key
                    .not_after
                    .is_some_and(|na| claims.iat > na + KEY_WINDOW_SLACK_SECS);
                if early || late {
                    return Err(Reason::OutsideKeyWindow);
                }
            }
            if key
                .max_token_lifetime
                .is_some_and(|max| claims.exp - claims.iat > max)
            {
                return Err(Reason::DelegationLifetime);
            }
            Ok(())
        };
        match decoded.kid.as_deref() {
            Some(kid) => {
                if set.tombstone(kid).is_some() {
                    return Err(Reason::KeyRevoked);
                }
                let Some(key) = set.by_kid(kid).filter(|k| k.alg == decoded.alg) else {
                    if set.by_kid(kid).is_none() {
                        self.keys.request_refetch(kid);
                    }
                    return Err(Reason::DelegationInvalidSignature);
                };
                rules(key)?;
                if !key.verify(decoded.message, &decoded.signature) {
                    return Err(Reason::DelegationInvalidSignature);
                }
                Ok(key)
            }
            None => {
                let only_legacy = set.has_purposes();
                let key = set
                    .keys()
                    .iter()
                    .filter(|k| k.alg == decoded.alg && (!only_legacy || k.legacy))
                    .find(|k| k.verify(decoded.message, &decoded.signature))
                    .ok_or(Reason::DelegationInvalidSignature)?;
                if key
                    .kid
                    .as_deref()
                    .is_some_and(|k| set.tombstone(k).is_some())
                {
                    return Err(Reason::KeyRevoked);
                }
                rules(key)?;
                Ok(key)
            }
        }
    }

    fn check_status(&self, d: &VerifiedDelegation, now: Now) -> Result<(), Reason> {
        status(&self.revocation, d, now)
    }
}

/// A delegation allowed earlier, checked again as of `now` (an open WebSocket): expired
/// (`leeway` as for a new request), or its status no longer valid — the checks of a new request
/// that can change while a connection is open.
pub fn recheck(
    revocation: &RevocationStore,
    d: &VerifiedDelegation,
    leeway: Duration,
    now: Now,
) -> Result<(), Reason> {
    if d.exp <= now.unix - leeway.as_secs() as i64 {
        return Err(Reason::DelegationExpired);
    }
    status(revocation, d, now)
}

/// Step 7: a pushed revocation or suspension of the handle, then the status-list slot.
fn status(revocation: &RevocationStore, d: &VerifiedDelegation, now: Now) -> Result<(), Reason> {
    match revocation.pushed(&d.handle) {
        Some(Pushed::Revoked) => return Err(Reason::DelegationRevoked),
        Some(Pushed::Suspended) => return Err(Reason::DelegationSuspended),
        None => {}
    }
    let Some(slot) = &d.status else {
        return Err(Reason::DelegationStatusUnavailable);
    };
    match revocation.status_slot(slot, now) {
        SlotStatus::Valid => Ok(()),
        SlotStatus::Revoked => Err(Reason::DelegationRevoked),
        SlotStatus::Suspended => Err(Reason::DelegationSuspended),
        SlotStatus::Unavailable => Err(Reason::DelegationStatusUnavailable),
    }
}

/// Step 1's claim checks on a decoded payload.
fn parse_claims(payload: &[u8], issuer: &str) -> Result<VerifiedDelegation, Reason> {
    let bad = Reason::DelegationMalformed;
    let claims: Map<String, Value> = serde_json::from_slice(payload).map_err(|_| bad)?;
    let text = |name: &str| -> Result<String, Reason> {
        match claims.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            _ => Err(bad),
        }
    };
    let number = |name: &str| -> Result<i64, Reason> {
        match claims.get(name).and_then(Value::as_f64) {
            Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(f as i64),
            _ => Err(bad),
        }
    };
    if text("iss")? != issuer || text("token_type")? != "delegation" {
        return Err(bad);
    }
    let version = text("delegation_schema_version")?;
    if version.split('.').next() != Some("1") {
        return Err(bad);
    }
    let scopes = match claims.get("scope") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
                _ => Err(bad),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad),
    };
    let status = match claims.get("status") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let slot = v.get("status_list").ok_or(bad)?;
            Some(StatusListRef {
                idx: slot.get("idx").and_then(Value::as_u64).ok_or(bad)?,
                uri: slot.get("uri").and_then(Value::as_str).ok_or(bad)?.into(),
            })
        }
    };
    Ok(VerifiedDelegation {
        handle: text("sub")?,
        principal: text("principal")?,
        delegate: text("delegate")?,
        scopes,
        control_proof: text("control_proof")?,
        iat: number("iat")?,
        exp: number("exp")?,
        status,
        kid: None,
        generation: 0,
    })
}

/// Which carrier a request's delegation tokens came from.
fn authorization_delegation(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case(AUTHORIZATION_SCHEME)
        .then(|| token.trim())
}

/// The delegation tokens of a request: `Authorization: Delegation <token>`, then every value of
/// [`DELEGATION_HEADER`] (comma-separated values split). Refused before anything is parsed: two
/// `Authorization` headers, an empty token, a header value that is not text, a token longer than
/// [`MAX_DELEGATION_BYTES`], or more than [`MAX_DELEGATIONS_PER_REQUEST`] tokens
/// (`delegation_malformed`).
pub fn extract_delegations(headers: &http::HeaderMap) -> Result<Vec<&str>, Reason> {
    let bad = Reason::DelegationMalformed;
    let mut tokens = Vec::new();
    let mut auth = headers.get_all(http::header::AUTHORIZATION).iter();
    if let (Some(value), rest) = (auth.next(), auth.next()) {
        if let Some(token) = value.to_str().ok().and_then(authorization_delegation) {
            if rest.is_some() || token.is_empty() {
                return Err(bad);
            }
            tokens.push(token);
        }
    }
    for value in headers.get_all(DELEGATION_HEADER) {
        let value = value.to_str().map_err(|_| bad)?;
        tokens.extend(value.split(',').map(str::trim).filter(|t| !t.is_empty()));
    }
    if tokens.len() > MAX_DELEGATIONS_PER_REQUEST
        || tokens.iter().any(|t| t.len() > MAX_DELEGATION_BYTES)
    {
        return Err(bad);
    }
    Ok(tokens)
}

/// Whether an `Authorization` header value carries a delegation token.
pub fn is_delegation_authorization(value: &HeaderValue) -> bool {
    value
        .to_str()
        .ok()
        .and_then(authorization_delegation)
        .is_some()
}

/// The identity headers of allowed delegations ([`DELEGATION_IDENTITY_HEADER_NAMES`]), appended
/// to `out`. With several delegations, values are comma-joined in the same order; a value that
/// is not a valid header value is left out rather than sent.
pub fn push_delegation_headers(used: &[Delegated], out: &mut Vec<(HeaderName, HeaderValue)>) {
    if used.is_empty() {
        return;
    }
    type Field = fn(&Delegated) -> String;
    const FIELDS: [Field; 5] = [
        |d| normalize_principal(&d.delegation.principal),
        |d| d.delegation.delegate.clone(),
        |d| d.delegation.scopes.join(" "),
        |d| d.delegation.handle.clone(),
        |d| if d.bound { "true" } else { "false" }.to_owned(),
    ];
    for (name, field) in DELEGATION_IDENTITY_HEADER_NAMES.iter().zip(FIELDS) {
        let joined = used.iter().map(field).collect::<Vec<_>>().join(", ");
        if let Ok(v) = HeaderValue::from_str(&joined) {
            out.push((HeaderName::from_static(name), v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_the_issuer_grammar() {
        for ok in ["payments-read", "a", "a1-b2-c3", "email"] {
            assert!(is_valid_scope(ok), "{ok}");
        }
        for bad in [
            "",
            "*",
            "Payments",
            "payments-",
            "-a",
            "a--b",
            "email:send",
            "a b",
            "1a",
            "pay_read",
        ] {
            assert!(!is_valid_scope(bad), "{bad}");
        }
        assert!(!is_valid_scope(&"a".repeat(65)));
    }

    #[test]
    fn principals() {
        assert_eq!(normalize_principal("  Corp.Example "), "corp.example");
        assert!(is_valid_principal("corp.example"));
        for bad in [
            "localhost",
            "corp..example",
            "-corp.example",
            "corp.example.",
            "a b.c",
        ] {
            assert!(!is_valid_principal(bad), "{bad}");
        }
    }

    #[test]
    fn canonical_urls() {
        let c = |s: &str| canonical_delegate(s);
        assert_eq!(
            c("https://AGENT.example:443/a/b/").as_deref(),
            Some("https://agent.example/a/b")
        );
        assert_eq!(
            c("https://agent.example:8443/").as_deref(),
            Some("https://agent.example:8443")
        );
        assert_eq!(c("https://h//").as_deref(), Some("https://h"));
        assert_eq!(
            c("https://agent.example/a/../b").as_deref(),
            Some("https://agent.example/b")
        );
        for bad in [
            "http://agent.example/bot",
            "https://user@agent.example/bot",
            "https://agent.example/bot?x=1",
            "https://agent.example/bot#f",
            "https://agent.example/bot?",
            "https://agent.example/a b",
            "agent.example/bot",
            "",
        ] {
            assert_eq!(c(bad), None, "{bad}");
        }
        let long = format!("https://agent.example/{}", "a".repeat(600));
        assert_eq!(c(&long), None);
    }

    #[test]
    fn canonical_purls() {
        let c = |s: &str| canonical_delegate(s);
        assert_eq!(
            c("pkg:NPM/@Scope/Name").as_deref(),
            Some("pkg:npm/@scope/name")
        );
        assert_eq!(c("pkg:pypi/Foo_Bar").as_deref(), Some("pkg:pypi/foo-bar"));
        assert_eq!(
            c("pkg:github/Owner/Repo").as_deref(),
            Some("pkg:github/Owner/Repo")
        );
        for bad in [
            "pkg:npm/name@1.0",
            "pkg:npm//name",
            "pkg:npm/",
            "pkg:npm",
            "pkg:/name",
            "pkg:npm/na me",
            "pkg:npm/name?x",
            "pkg:npm/name#x",
            "pkg:npm/@",
        ] {
            assert_eq!(c(bad), None, "{bad}");
        }
    }

    #[test]
    fn carriers() {
        let mut h = http::HeaderMap::new();
        assert!(extract_delegations(&h).unwrap().is_empty());
        h.insert("authorization", "Bearer proof".parse().unwrap());
        assert!(extract_delegations(&h).unwrap().is_empty());
        h.insert("authorization", "delegation  a.b.c ".parse().unwrap());
        h.insert(DELEGATION_HEADER, "d.e.f, g.h.i".parse().unwrap());
        assert_eq!(
            extract_delegations(&h).unwrap(),
            ["a.b.c", "d.e.f", "g.h.i"]
        );
        h.append("authorization", "Bearer x".parse().unwrap());
        assert_eq!(extract_delegations(&h), Err(Reason::DelegationMalformed));
        let mut h = http::HeaderMap::new();
        h.insert(
            DELEGATION_HEADER,
            "x".repeat(MAX_DELEGATION_BYTES + 1).parse().unwrap(),
        );
        assert_eq!(extract_delegations(&h), Err(Reason::DelegationMalformed));
        h.insert(DELEGATION_HEADER, "a,b,c,d,e".parse().unwrap());
        assert_eq!(extract_delegations(&h), Err(Reason::DelegationMalformed));
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "Delegation".parse().unwrap());
        assert!(extract_delegations(&h).unwrap().is_empty());
        h.insert("authorization", "Delegation ".parse().unwrap());
        assert_eq!(extract_delegations(&h), Err(Reason::DelegationMalformed));
    }

    #[test]
    fn client_delegates_are_canonical() {
        let c =
            ClientDelegates::from_uris(["https://Agent.Example/bot/", "spiffe://x/y", "pkg:npm/A"]);
        assert_eq!(c.0, ["https://agent.example/bot", "pkg:npm/a"]);
    }
}

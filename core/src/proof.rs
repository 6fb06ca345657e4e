//! A verified proof and the identity it carries: the claims, and the identity header values
//! built once when the token is verified, so that a cache hit costs no formatting.
//!
//! Layer 2 (proofs and keys): imports only the vocabulary.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};

pub use crate::catalog::IDENTITY_HEADER_NAMES;
use crate::claims::ProofClaims;

/// A token whose signature and claims passed. Revocation is not part of it.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// The claims.
    pub claims: ProofClaims,
    /// `exp`, Unix seconds.
    pub exp: i64,
    /// `verified_at` as Unix seconds, when present and parseable.
    pub verified_at: Option<i64>,
    /// The `kid` of the key that verified it (the key's own, shared: not a copy per proof).
    pub kid: Option<Arc<str>>,
    /// The key set generation it was verified under; a cache hit from another is re-verified.
    pub(crate) generation: u64,
    /// Identity header values, built once when the token is verified so that a cache hit costs
    /// no formatting (see [`identity_headers`]).
    pub(crate) identity: Identity,
}

impl VerifiedProof {
    /// A proof from claims that passed every check: the identity values are built here, once.
    pub(crate) fn new(
        claims: ProofClaims,
        exp: i64,
        verified_at: Option<i64>,
        kid: Option<Arc<str>>,
        generation: u64,
    ) -> Self {
        let identity = Identity::of(&claims);
        Self {
            claims,
            exp,
            verified_at,
            kid,
            generation,
            identity,
        }
    }

    /// The proof id (`sub`).
    pub fn subject(&self) -> &str {
        self.claims.sub.as_deref().unwrap_or_default()
    }

    /// `identifier_hash` in canonical form (no `sha256:` prefix, lowercase), when the token
    /// carries one.
    pub fn identifier_hash(&self) -> Option<&str> {
        self.claims.identifier_hash.as_ref()?;
        self.identity.str(IDENTIFIER_HASH)
    }
}

/// Where the canonical identifier hash sits among the identity values.
const IDENTIFIER_HASH: usize = 3;

/// One proof's five identity header values back to back in one shared buffer, with where each
/// ends and which are valid header values. A cache entry holds one allocation for all five (a
/// tenth of the entry's former size went to five separate values), and a hit shares the buffer:
/// each value is a slice of it, so building the headers copies nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity {
    buf: Bytes,
    ends: [u16; 5],
    /// Bit `i` set: value `i` is a valid header value (an absent claim is a valid empty one).
    valid: u8,
}

impl Identity {
    fn of(claims: &ProofClaims) -> Self {
        // The canonical hash is the claim's bare hex, lowercased as it is copied in below.
        let hash = claims
            .identifier_hash
            .as_deref()
            .map(crate::identifier::bare_hash);
        let values = [
            claims.sub.as_deref(),
            claims.proof_type.as_deref(),
            claims.channel.as_deref(),
            hash,
            claims.verified_at.as_deref(),
        ];
        let mut buf = Vec::with_capacity(values.iter().map(|v| v.map_or(0, str::len)).sum());
        let mut ends = [0u16; 5];
        let mut valid = 0u8;
        for (i, v) in values.into_iter().enumerate() {
            let v = v.unwrap_or("");
            // Tokens are at most a few KiB, so every value fits a u16 offset; one that would not
            // is left out like an invalid one.
            if buf.len() + v.len() <= usize::from(u16::MAX) && is_header_value(v) {
                let start = buf.len();
                buf.extend_from_slice(v.as_bytes());
                if i == IDENTIFIER_HASH {
                    buf[start..].make_ascii_lowercase();
                }
                valid |= 1 << i;
            }
            ends[i] = buf.len() as u16;
        }
        let buf = Bytes::from(buf);
        // The first clone of a vector-backed `Bytes` moves it to shared storage (one small
        // allocation); do it now rather than on the first request that sends these headers.
        drop(buf.clone());
        Self { buf, ends, valid }
    }

    fn span(&self, i: usize) -> Option<std::ops::Range<usize>> {
        if self.valid & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(start..self.ends[i] as usize)
    }

    fn str(&self, i: usize) -> Option<&str> {
        std::str::from_utf8(&self.buf[self.span(i)?]).ok()
    }

    /// Value `i` as a header value sharing the buffer; `None` when it is not a valid one.
    fn value(&self, i: usize) -> Option<HeaderValue> {
        HeaderValue::from_maybe_shared(self.buf.slice(self.span(i)?)).ok()
    }
}

/// Whether `v` is a valid header value: `HeaderValue`'s own rule (visible ASCII, obs-text, space
/// and tab), checked without building one (`HeaderValue::from_str` copies the value into a new
/// allocation only to be dropped).
fn is_header_value(v: &str) -> bool {
    // No early return, as in `http`: the loop vectorizes.
    let mut bad = false;
    for b in v.bytes() {
        bad |= !((b >= 32 && b != 127) || b == b'\t');
    }
    !bad
}

/// Names of the identity headers proofgate sets upstream; every incoming `x-proof-*` header is
/// removed before they are added.
pub const IDENTITY_PREFIX: &str = "x-proof-";

/// Whether a (lowercase) header name reads as an `x-proof-*` header once `_` is taken as `-`:
/// CGI, WSGI, PHP and Rack map `x_proof_subject` and `x-proof-subject` to the same
/// `HTTP_X_PROOF_SUBJECT`, so a client's underscore spelling must not reach the upstream beside
/// (or instead of) ours.
pub fn is_identity_spelling(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= IDENTITY_PREFIX.len()
        && b.iter()
            .zip(IDENTITY_PREFIX.as_bytes())
            .all(|(&c, &p)| c.to_ascii_lowercase() == p || (p == b'-' && c == b'_'))
}

/// The identity headers for allowed proofs. With several proofs, values are comma-joined in the
/// same order. A claim value that is not a valid header value is left out rather than sent.
pub fn identity_headers(
    proofs: &[std::sync::Arc<VerifiedProof>],
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    push_identity_headers(proofs, &mut out);
    out
}

/// [`identity_headers`] appended to `out`.
pub(crate) fn push_identity_headers(
    proofs: &[std::sync::Arc<VerifiedProof>],
    out: &mut Vec<(HeaderName, HeaderValue)>,
) {
    match proofs {
        [] => {}
        // The common case: values built when the token was verified, shared by every hit.
        [one] => out.extend(
            IDENTITY_FIELDS
                .into_iter()
                .enumerate()
                .filter_map(|(i, (name, _))| one.identity.value(i).map(|v| (name, v))),
        ),
        many => out.extend(IDENTITY_FIELDS.into_iter().filter_map(|(name, get)| {
            let joined = many
                .iter()
                .map(|p| get(p).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(", ");
            HeaderValue::from_str(&joined).ok().map(|v| (name, v))
        })),
    }
}

type IdentityField = fn(&VerifiedProof) -> Option<&str>;

/// The identity headers and the claim each carries.
/// The names are built at compile time: `HeaderName::from_static` at run time would validate
/// each name on every request.
pub(crate) const IDENTITY_FIELDS: [(HeaderName, IdentityField); 5] = [
    (HeaderName::from_static(IDENTITY_HEADER_NAMES[0]), |p| {
        p.claims.sub.as_deref()
    }),
    (HeaderName::from_static(IDENTITY_HEADER_NAMES[1]), |p| {
        p.claims.proof_type.as_deref()
    }),
    (HeaderName::from_static(IDENTITY_HEADER_NAMES[2]), |p| {
        p.claims.channel.as_deref()
    }),
    (HeaderName::from_static(IDENTITY_HEADER_NAMES[3]), |p| {
        p.identifier_hash()
    }),
    (HeaderName::from_static(IDENTITY_HEADER_NAMES[4]), |p| {
        p.claims.verified_at.as_deref()
    }),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn proof(claims: ProofClaims) -> std::sync::Arc<VerifiedProof> {
        std::sync::Arc::new(VerifiedProof::new(claims, 0, None, None, 0))
    }

    #[test]
    fn identity_values_share_one_buffer_and_keep_their_meaning() {
        let p = proof(ProofClaims {
            sub: Some("ph_1".into()),
            proof_type: Some("email".into()),
            // Absent: sent as an empty value, as before.
            channel: None,
            identifier_hash: Some(format!("sha256:{}", "AB".repeat(32)).into()),
            // Not a valid header value: left out.
            verified_at: Some("2026-11-30\n".into()),
            ..ProofClaims::default()
        });
        assert_eq!(p.identifier_hash(), Some("ab".repeat(32).as_str()));
        let headers = identity_headers(std::slice::from_ref(&p));
        let got: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        let hash = "ab".repeat(32);
        assert_eq!(
            got,
            [
                ("x-proof-subject", "ph_1"),
                ("x-proof-type", "email"),
                ("x-proof-channel", ""),
                ("x-proof-identifier-hash", hash.as_str()),
            ]
        );
        // Two proofs: comma-joined in order, from the same values.
        let q = proof(ProofClaims {
            sub: Some("ph_2".into()),
            ..ProofClaims::default()
        });
        let two = identity_headers(&[p, q.clone()]);
        assert_eq!(two[0].1, "ph_1, ph_2");
        assert_eq!(q.identifier_hash(), None);
    }

    #[test]
    fn header_value_rule_is_https() {
        for b in 0..=255u8 {
            let s = [b'a', b, b'z'];
            let Ok(v) = std::str::from_utf8(&s) else {
                continue;
            };
            assert_eq!(is_header_value(v), HeaderValue::from_str(v).is_ok(), "{b}");
        }
        assert!(is_header_value("caf\u{e9}"));
        assert!(HeaderValue::from_str("caf\u{e9}").is_ok());
        // The canonical hash is lowercased on the way into the buffer, prefix and space gone.
        let p = proof(ProofClaims {
            identifier_hash: Some(" SHA256:AbC ".into()),
            ..ProofClaims::default()
        });
        assert_eq!(p.identifier_hash(), Some("abc"));
        assert_eq!(
            p.identifier_hash(),
            Some(crate::identifier::canonical_hash(" SHA256:AbC ").as_str())
        );
    }
}

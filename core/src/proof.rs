//! A verified proof and the identity it carries: the claims, and the identity header values
//! built once when the token is verified, so that a cache hit costs no formatting.
//!
//! Layer 2 (proofs and keys): imports only the vocabulary.

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
    /// `identifier_hash` in canonical form (no `sha256:` prefix, lowercase).
    pub identifier_hash: Option<String>,
    /// The `kid` of the key that verified it.
    pub kid: Option<String>,
    /// The key set generation it was verified under; a cache hit from another is re-verified.
    pub(crate) generation: u64,
    /// Identity header values, built once when the token is verified so that a cache hit costs
    /// no formatting (see [`identity_headers`]).
    pub(crate) identity: [Option<http::HeaderValue>; 5],
}

impl VerifiedProof {
    /// The proof id (`sub`).
    pub fn subject(&self) -> &str {
        self.claims.sub.as_deref().unwrap_or_default()
    }
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
                .zip(one.identity.iter())
                .filter_map(|((name, _), v)| v.clone().map(|v| (name, v))),
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
        p.identifier_hash.as_deref()
    }),
    (HeaderName::from_static(IDENTITY_HEADER_NAMES[4]), |p| {
        p.claims.verified_at.as_deref()
    }),
];

/// One proof's identity header values (a value that is not a valid header value is `None` and
/// left out).
pub(crate) fn identity_values(proof: &VerifiedProof) -> [Option<HeaderValue>; 5] {
    IDENTITY_FIELDS.map(|(_, get)| HeaderValue::from_str(get(proof).unwrap_or("")).ok())
}

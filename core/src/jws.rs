//! Compact JWS checks shared by proof tokens, revocation-list signatures and status lists.
//!
//! The order matters and is deliberate: shape, then header (algorithm allow-list, refused
//! header-embedded keys and critical extensions), then key selection by `kid` with the key's own
//! algorithm, then the signature. Nothing from the payload is trusted before the signature holds.
//!
//! Written on aws-lc-rs directly, not on `jsonwebtoken` (which is therefore not a dependency of
//! this crate; the bench compares against it): jsonwebtoken 11 rebuilds the RSA key from its
//! components and boxes a verifier on every call (1.18 × our cost, `bench/RESULTS.md`), and
//! takes the algorithm from a `Validation` list we would have to keep in step with the key
//! anyway. Here each JWKS key is parsed once and always verifies with its own algorithm.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use crate::keys::{Algorithm, KeySet, VerificationKey};

/// Why a compact JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JwsError {
    /// Not three base64url segments with a JSON-object header.
    Malformed,
    /// `alg` outside the allow-list (`none`, `HS*`, …).
    UnsupportedAlgorithm,
    /// A header the issuer never sets and that must never be honoured (`jwk`, `jku`, `x5u`,
    /// `x5c`, `crit`, nested `cty`).
    ForbiddenHeader,
    /// No published key for this `kid` / algorithm / purpose.
    UnknownKey(Option<String>),
    /// The signature does not verify.
    InvalidSignature,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    cty: Option<serde_json::Value>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
    #[serde(default)]
    jwk: Option<serde_json::Value>,
    #[serde(default)]
    jku: Option<serde_json::Value>,
    #[serde(default)]
    x5u: Option<serde_json::Value>,
    #[serde(default)]
    x5c: Option<serde_json::Value>,
    #[serde(default)]
    x5t: Option<serde_json::Value>,
    #[serde(default, rename = "x5t#S256")]
    x5t_s256: Option<serde_json::Value>,
}

/// A JWS whose signature has been checked.
pub(crate) struct Verified<'k> {
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub payload: Base64Decoded<PAYLOAD_INLINE>,
    pub key: &'k VerificationKey,
}

/// Payloads up to this many bytes are decoded on the stack (a proof token's claims are ~300).
const PAYLOAD_INLINE: usize = 768;
/// Signatures up to this many bytes are decoded on the stack: RSA up to 4096 bits, ECDSA.
const SIGNATURE_INLINE: usize = 512;
/// Headers up to this many bytes are decoded on the stack.
const HEADER_INLINE: usize = 256;

/// Bytes decoded from base64url: on the stack when they fit `N` bytes, else on the heap. A
/// never-seen token's header, signature and payload are decoded for every verify; on the stack
/// they cost no allocation (and leave no short-lived block among the cached entries' size
/// classes).
pub(crate) enum Base64Decoded<const N: usize> {
    Inline([u8; N], usize),
    Heap(Vec<u8>),
}

impl<const N: usize> Base64Decoded<N> {
    fn decode(segment: &str) -> Result<Self, JwsError> {
        // base64's own bound on the decoded length, which `decode_slice` requires room for.
        if segment.len().div_ceil(4) * 3 <= N {
            let mut buf = [0u8; N];
            let n = URL_SAFE_NO_PAD
                .decode_slice(segment, &mut buf)
                .map_err(|_| JwsError::Malformed)?;
            Ok(Self::Inline(buf, n))
        } else {
            URL_SAFE_NO_PAD
                .decode(segment)
                .map(Self::Heap)
                .map_err(|_| JwsError::Malformed)
        }
    }
}

impl<const N: usize> std::ops::Deref for Base64Decoded<N> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Inline(buf, n) => &buf[..*n],
            Self::Heap(v) => v,
        }
    }
}

/// Checks a compact JWS against `keys`, for something of `purpose`: [`decode`]'s shape and
/// header checks, then the key the header's `kid` names (or each published key of the algorithm
/// when there is none) and the signature.
pub(crate) fn verify<'k>(
    token: &str,
    keys: &'k KeySet,
    purpose: &str,
) -> Result<Verified<'k>, JwsError> {
    let decoded = decode(token)?;
    let Decoded {
        alg,
        ref kid,
        message,
        ref signature,
        ..
    } = decoded;
    let key = match kid.as_deref() {
        Some(kid) => {
            let key = keys
                .by_kid(kid)
                .filter(|k| k.alg == alg && k.serves(purpose))
                .ok_or_else(|| JwsError::UnknownKey(Some(kid.to_owned())))?;
            if !key.verify(message, signature) {
                return Err(JwsError::InvalidSignature);
            }
            key
        }
        None => {
            let mut candidates = keys
                .keys()
                .iter()
                .filter(|k| k.alg == alg && k.serves(purpose))
                .peekable();
            if candidates.peek().is_none() {
                return Err(JwsError::UnknownKey(None));
            }
            candidates
                .find(|k| k.verify(message, signature))
                .ok_or(JwsError::InvalidSignature)?
        }
    };
    // The payload is decoded only once the signature holds: a forged token's reason is the
    // signature's, whatever its payload looks like.
    let payload = decoded.payload()?;
    Ok(Verified {
        kid: decoded.kid,
        typ: decoded.typ,
        payload,
        key,
    })
}

/// A compact JWS whose shape and header passed the checks, signature not yet checked: what
/// [`verify`] starts from, and what a caller gets that must check claims before the signature
/// (delegations, whose contract runs the claim checks first) and choose the key by its own rules.
pub(crate) struct Decoded<'t> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
    /// The signing input (`header.payload`).
    pub message: &'t [u8],
    /// The payload, still base64url ([`Decoded::payload`]).
    payload_b64: &'t str,
    pub signature: Base64Decoded<SIGNATURE_INLINE>,
}

impl Decoded<'_> {
    /// The payload's bytes.
    pub fn payload(&self) -> Result<Base64Decoded<PAYLOAD_INLINE>, JwsError> {
        Base64Decoded::decode(self.payload_b64)
    }
}

/// The shape and header checks: three parts, base64url, a header naming a supported algorithm and
/// no header-embedded key (`jwk`, `jku`, `x5u`, `x5c`, `x5t`, `crit`, `cty`), a signature.
pub(crate) fn decode(token: &str) -> Result<Decoded<'_>, JwsError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    if h.is_empty() || p.is_empty() {
        return Err(JwsError::Malformed);
    }
    let header_bytes = Base64Decoded::<HEADER_INLINE>::decode(h)?;
    let header: RawHeader =
        serde_json::from_slice(&header_bytes).map_err(|_| JwsError::Malformed)?;
    let alg = header.alg.as_deref().ok_or(JwsError::Malformed)?;
    let alg = Algorithm::from_name(alg).ok_or(JwsError::UnsupportedAlgorithm)?;
    if header.jwk.is_some()
        || header.jku.is_some()
        || header.x5u.is_some()
        || header.x5c.is_some()
        || header.x5t.is_some()
        || header.x5t_s256.is_some()
        || header.crit.is_some()
        || header.cty.is_some()
    {
        return Err(JwsError::ForbiddenHeader);
    }
    if s.is_empty() {
        return Err(JwsError::InvalidSignature);
    }
    let signature = Base64Decoded::decode(s)?;
    Ok(Decoded {
        alg,
        kid: header.kid,
        typ: header.typ,
        message: &token.as_bytes()[..h.len() + 1 + p.len()],
        payload_b64: p,
        signature,
    })
}

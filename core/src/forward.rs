//! What an allowed request is forwarded with: client-sent identity headers (every spelling)
//! and, when configured, the token removed; the identity headers of the proofs that satisfied
//! the policy set.
//!
//! Layer 4 (routes and decisions).

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};

use crate::proof::{is_identity_spelling, push_identity_headers, VerifiedProof, IDENTITY_FIELDS};
use crate::tokens::TokenSource;

/// What to change in a request's headers before forwarding an allowed request.
#[derive(Debug, Default, Clone)]
pub struct UpstreamEdits {
    /// Headers to remove (all values).
    pub remove: Vec<HeaderName>,
    /// Headers to set (replacing any value).
    pub set: Vec<(HeaderName, HeaderValue)>,
}

/// The header edits for an allowed request: every incoming `x-proof-*` header removed (the token
/// header itself kept unless `strip_token`), then the identity headers of `proofs` set. With
/// `strip_token`, the bearer `Authorization`, token headers and the proof cookie (with its
/// continuations `_2`…; other cookies are kept) are removed too.
pub fn upstream_edits(
    headers: &http::HeaderMap,
    proofs: &[Arc<VerifiedProof>],
    sources: &[TokenSource],
    strip_token: bool,
) -> UpstreamEdits {
    let mut edits = UpstreamEdits::default();
    let is_token_header = |k: &HeaderName| {
        sources
            .iter()
            .any(|s| matches!(s, TokenSource::Header(h) if h == k))
    };
    for name in headers.keys() {
        if is_identity_spelling(name.as_str()) && (strip_token || !is_token_header(name)) {
            edits.remove.push(name.clone());
        }
    }
    if strip_token {
        for source in sources {
            match source {
                TokenSource::Bearer => {
                    let bearer = headers
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
                    if bearer {
                        edits.remove.push(http::header::AUTHORIZATION);
                    }
                }
                TokenSource::Header(h) => {
                    if !edits.remove.contains(h) {
                        edits.remove.push(h.clone());
                    }
                }
                TokenSource::Cookie(name) => {
                    let mut kept = Vec::new();
                    let mut had = false;
                    for value in headers.get_all(http::header::COOKIE) {
                        let Ok(value) = value.to_str() else { continue };
                        for pair in value.split(';') {
                            let key = pair.split_once('=').map_or(pair, |(k, _)| k).trim();
                            if crate::tokens::is_proof_cookie(key, name) {
                                had = true;
                            } else if !pair.trim().is_empty() {
                                kept.push(pair.trim().to_string());
                            }
                        }
                    }
                    if had {
                        if kept.is_empty() {
                            edits.remove.push(http::header::COOKIE);
                        } else if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
                            edits.set.push((http::header::COOKIE, v));
                        }
                    }
                }
            }
        }
    }
    if !proofs.is_empty() {
        edits.set.reserve(IDENTITY_FIELDS.len());
        push_identity_headers(proofs, &mut edits.set);
    }
    edits
}

/// The delegation part of an allowed request's header edits, applied after
/// [`upstream_edits`]: the dedicated delegation header is kept unless `strip_token` (like a token
/// header; every other `x-proof-*` spelling, ours included, stays removed), an
/// `Authorization: Delegation …` is removed under `strip_token`, and the identity headers of the
/// delegations that satisfied the policy (`x-proof-delegation-principal`, …) are set.
pub fn delegation_edits(
    edits: &mut UpstreamEdits,
    headers: &http::HeaderMap,
    delegations: &[crate::delegation::Delegated],
    strip_token: bool,
) {
    use crate::delegation::{is_delegation_authorization, DELEGATION_HEADER};
    if strip_token {
        let carried = headers
            .get(http::header::AUTHORIZATION)
            .is_some_and(is_delegation_authorization);
        if carried && !edits.remove.contains(&http::header::AUTHORIZATION) {
            edits.remove.push(http::header::AUTHORIZATION);
        }
    } else {
        edits.remove.retain(|h| h.as_str() != DELEGATION_HEADER);
    }
    crate::delegation::push_delegation_headers(delegations, &mut edits.set);
}

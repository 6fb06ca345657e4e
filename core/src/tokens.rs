//! Where proof tokens are found in a request, and how they are taken out of it: the configured
//! [`TokenSource`]s in order, with caps applied before anything is parsed.
//!
//! Layer 2 (proofs and keys): imports only the vocabulary.

use crate::reason::Reason;

/// Where tokens are looked for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer …` (a request with two `Authorization` headers is malformed).
    Bearer,
    /// A header (default `x-proof-token`); repeated headers and comma-separated values give
    /// several tokens.
    Header(http::HeaderName),
    /// A cookie (default `proof_token`); repeated cookies give several tokens.
    Cookie(String),
}

impl TokenSource {
    /// Bearer, then `x-proof-token`, then the `proof_token` cookie.
    pub fn defaults() -> Vec<TokenSource> {
        vec![
            TokenSource::Bearer,
            TokenSource::Header(http::HeaderName::from_static("x-proof-token")),
            TokenSource::Cookie("proof_token".into()),
        ]
    }
}

/// Separates several tokens in one proof cookie (never part of a compact JWS).
pub const COOKIE_TOKEN_SEPARATOR: &str = "~";

/// Most proof cookies one set of proofs is split across: `proof_token`, then `proof_token_2`
/// up to `proof_token_4` (a browser keeps about 4 KiB per cookie, a token is about 1 KiB).
pub const MAX_PROOF_COOKIES: usize = 4;

/// Whether a cookie named `key` is part of the proof cookie `name`: `name` itself or one of its
/// continuations `name_2` … `name_4` ([`MAX_PROOF_COOKIES`]).
pub fn is_proof_cookie(key: &str, name: &str) -> bool {
    match key.strip_prefix(name) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('_')
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| (2..=MAX_PROOF_COOKIES).contains(&n) && rest.len() == 2),
        None => false,
    }
}

/// The name of the `i`-th (from 0) proof cookie of `name`.
pub fn proof_cookie_name(name: &str, i: usize) -> String {
    if i == 0 {
        name.to_owned()
    } else {
        format!("{name}_{}", i + 1)
    }
}

/// Most tokens looked at in one request.
pub const MAX_TOKENS_PER_REQUEST: usize = 4;

/// Collects the tokens of the first source, in order, that has any.
pub fn extract_tokens<'h>(
    headers: &'h http::HeaderMap,
    sources: &[TokenSource],
) -> Result<Vec<&'h str>, Reason> {
    let mut tokens = Vec::new();
    for source in sources {
        match source {
            TokenSource::Bearer => {
                let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
                let (Some(value), rest) = (values.next(), values.next()) else {
                    continue;
                };
                if rest.is_some() {
                    return Err(Reason::Malformed);
                }
                let value = value.to_str().map_err(|_| Reason::Malformed)?;
                if let Some((scheme, token)) = value.split_once(' ') {
                    if scheme.eq_ignore_ascii_case("bearer") {
                        let token = token.trim();
                        if token.is_empty() {
                            return Err(Reason::Malformed);
                        }
                        tokens.push(token);
                    }
                }
            }
            TokenSource::Header(name) => {
                for value in headers.get_all(name) {
                    let value = value.to_str().map_err(|_| Reason::Malformed)?;
                    tokens.extend(value.split(',').map(str::trim).filter(|t| !t.is_empty()));
                }
            }
            TokenSource::Cookie(name) => {
                for value in headers.get_all(http::header::COOKIE) {
                    let Ok(value) = value.to_str() else { continue };
                    for pair in value.split(';') {
                        if let Some((k, v)) = pair.split_once('=') {
                            if is_proof_cookie(k.trim(), name) {
                                tokens.extend(
                                    v.trim()
                                        .trim_matches('"')
                                        .split(COOKIE_TOKEN_SEPARATOR)
                                        .filter(|t| !t.is_empty()),
                                );
                            }
                        }
                    }
                }
            }
        }
        if tokens.len() > MAX_TOKENS_PER_REQUEST {
            return Err(Reason::Malformed);
        }
        if !tokens.is_empty() {
            return Ok(tokens);
        }
    }
    Ok(tokens)
}

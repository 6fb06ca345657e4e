//! `[tokens]`: where tokens are read, in which order, and how large they may be.

use proofgate_core::tokens::TokenSource;

use super::{is_cookie_name, Check};
use crate::config::TokenSettings;
use crate::file::TokensFile;

/// The identity headers the gateway sets; a token header may not be one of them.
use proofgate_core::catalog::IDENTITY_HEADER_NAMES as IDENTITY_HEADERS;

pub(super) fn tokens(c: &mut Check, f: &TokensFile) -> TokenSettings {
    let header_name = f.header.as_deref().unwrap_or("x-proof-token");
    let header = match http::HeaderName::from_bytes(header_name.as_bytes()) {
        Ok(h) if h == http::header::AUTHORIZATION || h == http::header::COOKIE => {
            c.err(
                "tokens.header",
                format!("{header_name:?}: use the \"bearer\" or \"cookie\" source instead"),
            );
            None
        }
        Ok(h) if IDENTITY_HEADERS.contains(&h.as_str()) => {
            c.err(
                "tokens.header",
                format!("{header_name:?} is an identity header the gateway sets"),
            );
            None
        }
        Ok(h) => Some(h),
        Err(_) => {
            c.err(
                "tokens.header",
                format!("{header_name:?} is not a valid header name"),
            );
            None
        }
    };
    let cookie = f
        .cookie
        .clone()
        .unwrap_or_else(|| "proof_token".to_string());
    if !is_cookie_name(&cookie) {
        c.err(
            "tokens.cookie",
            format!("{cookie:?} is not a valid cookie name"),
        );
    }
    let default_sources = ["bearer", "header", "cookie"].map(String::from).to_vec();
    let names = f.sources.as_ref().unwrap_or(&default_sources);
    if names.is_empty() {
        c.err(
            "tokens.sources",
            "empty; list one or more of \"bearer\", \"header\", \"cookie\"",
        );
    }
    let mut sources = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let at = format!("tokens.sources[{i}]");
        if names[..i].contains(name) {
            c.err(&at, format!("{name:?} is listed twice"));
            continue;
        }
        match name.as_str() {
            "bearer" => sources.push(TokenSource::Bearer),
            "header" => sources.extend(header.clone().map(TokenSource::Header)),
            "cookie" => sources.push(TokenSource::Cookie(cookie.clone())),
            other => c.err(
                &at,
                format!("{other:?}; use \"bearer\", \"header\" or \"cookie\""),
            ),
        }
    }
    TokenSettings {
        sources,
        max_token_bytes: c.int("tokens.max_token_size", f.max_token_size, 8192, 256, 65_536)
            as usize,
        cache_capacity: c.int(
            "tokens.cache_capacity",
            f.cache_capacity,
            100_000,
            1,
            10_000_000,
        ),
    }
}

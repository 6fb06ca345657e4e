//! Who calls: the `Authorization: Bearer pk_…` extractors.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

use crate::envelope::ApiErr;

/// A caller authenticated by `Authorization: Bearer pk_test_…|pk_live_…`.
pub struct ApiKey {
    /// `pk_test_` key.
    pub test: bool,
}

impl<St: Send + Sync> FromRequestParts<St> for ApiKey {
    type Rejection = ApiErr;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiErr> {
        match optional_key(parts)? {
            Some(k) => Ok(k),
            None => Err(ApiErr::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "API key required",
            )),
        }
    }
}

/// An optional key: absent is fine, present and wrong is 401.
pub struct MaybeApiKey(#[allow(dead_code)] pub Option<ApiKey>);

impl<St: Send + Sync> FromRequestParts<St> for MaybeApiKey {
    type Rejection = ApiErr;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiErr> {
        optional_key(parts).map(MaybeApiKey)
    }
}

fn optional_key(parts: &Parts) -> Result<Option<ApiKey>, ApiErr> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let invalid = || ApiErr::new(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid API key");
    let text = value.to_str().map_err(|_| invalid())?;
    let (scheme, key) = text.trim().split_once(' ').ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(invalid());
    }
    let key = key.trim();
    let valid_suffix =
        |s: &str| !s.is_empty() && s.len() <= 200 && s.bytes().all(|b| b.is_ascii_graphic());
    if let Some(rest) = key.strip_prefix("pk_test_") {
        if valid_suffix(rest) {
            return Ok(Some(ApiKey { test: true }));
        }
    } else if let Some(rest) = key.strip_prefix("pk_live_") {
        if valid_suffix(rest) {
            return Ok(Some(ApiKey { test: false }));
        }
    }
    Err(invalid())
}

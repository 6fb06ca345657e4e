//! Why a call failed: [`ApiError`], typed by the response's status, and the service's error
//! envelope.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The error envelope's content: `{"error": {code, message, details, request_id}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    /// The HTTP status the error came with.
    #[serde(skip)]
    pub status: u16,
    /// Machine-readable code, e.g. `validation_error`; `http_<status>` when the body had none.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Field-level details of a validation error.
    pub details: Vec<ErrorDetail>,
    /// The service's request id (from the body, else the `X-Request-Id` header), for support.
    pub request_id: Option<String>,
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request {id})")?;
        }
        Ok(())
    }
}

/// One field-level problem in a validation error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    /// The request field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
    /// Machine-readable code.
    pub code: String,
}

/// Why a Proof API call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400 or 422: the request was refused as invalid (`validation_error`,
    /// `invalid_identifier`, `invalid_channel_for_type`, `challenge_expired`, …).
    #[error("validation failed: {0}")]
    Validation(ErrorBody),
    /// 401: the API key is missing or wrong.
    #[error("authentication failed: {0}")]
    Authentication(ErrorBody),
    /// 403: the key may not do this (`forbidden`, `test_mode_required`).
    #[error("forbidden: {0}")]
    Forbidden(ErrorBody),
    /// 404: no such resource.
    #[error("not found: {0}")]
    NotFound(ErrorBody),
    /// 409: the resource is not in a state that allows this.
    #[error("conflict: {0}")]
    Conflict(ErrorBody),
    /// 429 after the retries were spent (or with a `Retry-After` above the limit).
    #[error("rate limited (retry after {retry_after:?}): {error}")]
    RateLimited {
        /// What the service asked to wait, from `Retry-After` or the body's `retry_after`.
        retry_after: Option<Duration>,
        /// The error envelope.
        error: ErrorBody,
    },
    /// 5xx after the retries were spent.
    #[error("server error: {0}")]
    Server(ErrorBody),
    /// Any other unexpected status.
    #[error("unexpected response: {0}")]
    Unexpected(ErrorBody),
    /// The connection failed (after the retries were spent).
    #[error("network error: {message}")]
    Network {
        /// What failed; never contains the API key.
        message: String,
    },
    /// The request timed out (after the retries were spent).
    #[error("request timed out")]
    Timeout,
    /// [`ProofApiClient::wait_for_completion`](super::ProofApiClient::wait_for_completion) ran
    /// past its timeout; the request was still not in a terminal state.
    #[error("verification request {id} still {status} when the wait ended")]
    WaitTimedOut {
        /// The verification request's id.
        id: String,
        /// Its last seen status.
        status: String,
    },
    /// A success response whose body did not have the documented shape.
    #[error("undecodable response body: {message}")]
    Decode {
        /// What did not parse.
        message: String,
    },
    /// The client could not be built (bad base URL, bad key characters).
    #[error("invalid client configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
}

impl ApiError {
    /// The error envelope, for errors that came with one.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            ApiError::Validation(b)
            | ApiError::Authentication(b)
            | ApiError::Forbidden(b)
            | ApiError::NotFound(b)
            | ApiError::Conflict(b)
            | ApiError::Server(b)
            | ApiError::Unexpected(b)
            | ApiError::RateLimited { error: b, .. } => Some(b),
            _ => None,
        }
    }

    /// The machine-readable code, for errors that came with an envelope.
    pub fn code(&self) -> Option<&str> {
        self.body().map(|b| b.code.as_str())
    }

    /// The HTTP status, for errors that came with a response.
    pub fn status(&self) -> Option<u16> {
        self.body().map(|b| b.status)
    }

    /// The service's request id, when it gave one.
    pub fn request_id(&self) -> Option<&str> {
        self.body().and_then(|b| b.request_id.as_deref())
    }

    /// Whether the retry policy retries this error.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. }
                | ApiError::Server(_)
                | ApiError::Network { .. }
                | ApiError::Timeout
        )
    }

    pub(super) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let envelope: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let inner = envelope.get("error");
        let mut error = inner
            .filter(|v| v.is_object())
            .and_then(|v| serde_json::from_value::<ErrorBody>(v.clone()).ok())
            .unwrap_or_default();
        // Some error bodies put a plain string in `error` (e.g. the validate endpoint's older
        // form); keep it as the message.
        if let Some(Value::String(s)) = inner {
            error.message = s.clone();
        }
        error.status = status.as_u16();
        if error.code.is_empty() {
            error.code = format!("http_{}", status.as_u16());
        }
        if error.message.is_empty() {
            error.message = status.canonical_reason().unwrap_or("error").to_string();
        }
        if error.request_id.is_none() {
            error.request_id = headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
        }
        match status.as_u16() {
            400 | 422 => ApiError::Validation(error),
            401 => ApiError::Authentication(error),
            403 => ApiError::Forbidden(error),
            404 => ApiError::NotFound(error),
            409 => ApiError::Conflict(error),
            429 => {
                let retry_after = retry_after(headers).or_else(|| {
                    inner
                        .and_then(|v| v.get("retry_after"))
                        .and_then(Value::as_f64)
                        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
                        .map(Duration::from_secs_f64)
                });
                ApiError::RateLimited { retry_after, error }
            }
            500..=599 => ApiError::Server(error),
            _ => ApiError::Unexpected(error),
        }
    }

    pub(super) fn from_reqwest(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            return ApiError::Timeout;
        }
        // reqwest's Display names the URL but never a header, so the key cannot leak here.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        ApiError::Network { message }
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let delta = when.timestamp() - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(u64::try_from(delta).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn errors_are_typed_by_status() {
        let h = HeaderMap::new();
        let body = br#"{"error":{"code":"invalid_channel_for_type","message":"m","details":[{"field":"channel","message":"x","code":"y"}],"request_id":"req_1"}}"#;
        let e = ApiError::from_response(StatusCode::BAD_REQUEST, &h, body);
        assert!(matches!(e, ApiError::Validation(_)));
        assert_eq!(e.code(), Some("invalid_channel_for_type"));
        assert_eq!(e.request_id(), Some("req_1"));
        assert_eq!(e.body().map(|b| b.details.len()), Some(1));
        for (status, check) in [
            (401, "auth"),
            (403, "forbidden"),
            (404, "not_found"),
            (409, "conflict"),
            (503, "server"),
            (418, "unexpected"),
        ] {
            let e = ApiError::from_response(
                StatusCode::from_u16(status).expect("status"),
                &h,
                b"not json",
            );
            let ok = match check {
                "auth" => matches!(e, ApiError::Authentication(_)),
                "forbidden" => matches!(e, ApiError::Forbidden(_)),
                "not_found" => matches!(e, ApiError::NotFound(_)),
                "conflict" => matches!(e, ApiError::Conflict(_)),
                "server" => matches!(e, ApiError::Server(_)),
                _ => matches!(e, ApiError::Unexpected(_)),
            };
            assert!(ok, "{status}: {e:?}");
            assert_eq!(e.code(), Some(format!("http_{status}").as_str()));
        }
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let e = ApiError::from_response(StatusCode::TOO_MANY_REQUESTS, &h, b"{}");
        assert!(
            matches!(e, ApiError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7))
        );
        let e = ApiError::from_response(
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            br#"{"error":{"code":"rate_limited","message":"Too many requests","retry_after":60}}"#,
        );
        assert!(
            matches!(e, ApiError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(60))
        );
    }
}

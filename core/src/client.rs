//! The Proof API client, with the retry policy every official SDK shares.
//!
//! [`ProofApiClient`] speaks to `https://api.proof.holdings` or any other base URL (the local
//! sandbox, a test server). Requests and responses are typed; responses are read leniently
//! (unknown fields ignored, documented fields optional where the service's sources disagree) so
//! a newer service does not break an older gateway.
//!
//! **Retries.** A request is retried at most [`ClientConfig::max_retries`] times (2) on a 429,
//! a 5xx, a network error or a timeout. Before retry `n` (0-based) the client waits
//! `Retry-After` when the response carried one, else `min(base · 2^n, max)` with base 1 s and
//! max 10 s. Every request, retries included, is bounded by [`ClientConfig::timeout`] (30 s).
//! Like the official SDKs, non-idempotent calls (`POST`) are retried too; the service
//! deduplicates them by its own means.
//!
//! **Secrets.** The API key is sent only in `Authorization`, marked sensitive, and is never
//! formatted: `Debug` on the client prints the key's prefix only.
//!
//! ```no_run
//! # async fn run() -> Result<(), proofgate_core::client::ApiError> {
//! use proofgate_core::client::{AssetRequest, CreateVerificationRequest, ProofApiClient};
//!
//! let client = ProofApiClient::new("https://api.proof.holdings", "pk_test_…")?;
//! let mut create = CreateVerificationRequest::new(vec![AssetRequest::new("email")]);
//! create.redirect_url = Some("https://app.example/.proofgate/callback".into());
//! let request = client.create_verification_request(&create).await?;
//! println!("send the person to {:?}", request.verification_url);
//! let done = client
//!     .wait_for_completion(&request.id, std::time::Duration::from_secs(3), std::time::Duration::from_secs(600))
//!     .await?;
//! for token in done.proof_tokens() {
//!     println!("got a proof token of {} bytes", token.len());
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// Options of a [`ProofApiClient`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Time allowed for one attempt, from sending to the last byte of the body.
    ///
    /// Defaults to `30 s`.
    pub timeout: Duration,
    /// Time allowed to open a connection.
    ///
    /// Defaults to `10 s`.
    pub connect_timeout: Duration,
    /// How many times a retryable failure is retried.
    ///
    /// Defaults to `2`.
    pub max_retries: u32,
    /// The first retry's delay; retry `n` waits `min(base · 2^n, retry_max_delay)`.
    ///
    /// Defaults to `1 s`.
    pub retry_base_delay: Duration,
    /// The longest computed retry delay.
    ///
    /// Defaults to `10 s`.
    pub retry_max_delay: Duration,
    /// The longest `Retry-After` the client waits for; a longer one ends the call with
    /// [`ApiError::RateLimited`] at once, so that a caller on a request path is not held for
    /// minutes.
    ///
    /// Defaults to `60 s`.
    pub max_retry_after: Duration,
    /// The `User-Agent` sent.
    ///
    /// Defaults to `proofgate/<version>`.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_retries: 2,
            retry_base_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            user_agent: concat!("proofgate/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl ClientConfig {
    /// Sets [`ClientConfig::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`ClientConfig::max_retries`].
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets [`ClientConfig::retry_base_delay`].
    pub fn retry_base_delay(mut self, delay: Duration) -> Self {
        self.retry_base_delay = delay;
        self
    }

    /// Sets [`ClientConfig::retry_max_delay`].
    pub fn retry_max_delay(mut self, delay: Duration) -> Self {
        self.retry_max_delay = delay;
        self
    }

    /// Sets [`ClientConfig::max_retry_after`].
    pub fn max_retry_after(mut self, limit: Duration) -> Self {
        self.max_retry_after = limit;
        self
    }

    /// The delay before retry `attempt` (0-based) when the response said nothing:
    /// `min(base · 2^attempt, max)`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(20));
        self.retry_base_delay
            .saturating_mul(factor)
            .min(self.retry_max_delay)
    }
}

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
    /// [`ProofApiClient::wait_for_completion`] ran past its timeout; the request was still
    /// not in a terminal state.
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

    fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
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

    fn from_reqwest(e: &reqwest::Error) -> Self {
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

/// The API key, kept out of every formatted output.
#[derive(Clone)]
struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.0.starts_with("pk_test_") {
            "pk_test_"
        } else if self.0.starts_with("pk_live_") {
            "pk_live_"
        } else {
            ""
        };
        write!(f, "\"{prefix}[redacted]\"")
    }
}

/// A client of the Proof API. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct ProofApiClient {
    http: reqwest::Client,
    base: Url,
    key: ApiKey,
    config: ClientConfig,
}

impl fmt::Debug for ProofApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofApiClient")
            .field("base", &self.base.as_str())
            .field("key", &self.key)
            .field("config", &self.config)
            .finish()
    }
}

impl ProofApiClient {
    /// A client for `base_url` (e.g. `https://api.proof.holdings`) authenticating with
    /// `api_key` (`pk_live_…` or `pk_test_…`), with the default [`ClientConfig`].
    pub fn new(base_url: &str, api_key: impl Into<String>) -> Result<Self, ApiError> {
        Self::with_config(base_url, api_key, ClientConfig::default())
    }

    /// A client with explicit options.
    pub fn with_config(
        base_url: &str,
        api_key: impl Into<String>,
        config: ClientConfig,
    ) -> Result<Self, ApiError> {
        let base = Url::parse(base_url).map_err(|e| ApiError::Config {
            message: format!("base URL: {e}"),
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ApiError::Config {
                message: "base URL must be an http(s) URL".into(),
            });
        }
        let key = api_key.into();
        if HeaderValue::from_str(&format!("Bearer {key}")).is_err() {
            return Err(ApiError::Config {
                message: "API key contains characters not allowed in a header".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Config {
                message: e.to_string(),
            })?;
        Ok(Self {
            http,
            base,
            key: ApiKey(key),
            config,
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The options in force.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    // ----- verification requests (the step-up flow) -----

    /// `POST /api/v1/verification-requests`: starts a hosted, multi-asset verification. Send
    /// the person to the response's `verification_url`.
    pub async fn create_verification_request(
        &self,
        request: &CreateVerificationRequest,
    ) -> Result<VerificationRequest, ApiError> {
        self.call(Method::POST, &["verification-requests"], Some(request), &[])
            .await
    }

    /// `GET /api/v1/verification-requests/{id}`.
    pub async fn get_verification_request(
        &self,
        id: &str,
    ) -> Result<VerificationRequest, ApiError> {
        self.call(
            Method::GET,
            &["verification-requests", id],
            None::<&()>,
            &[],
        )
        .await
    }

    /// `GET /api/v1/verification-requests`, optionally filtered.
    pub async fn list_verification_requests(
        &self,
        query: &ListQuery,
    ) -> Result<ListPage<VerificationRequest>, ApiError> {
        self.call(
            Method::GET,
            &["verification-requests"],
            None::<&()>,
            &query.pairs(),
        )
        .await
    }

    /// `DELETE /api/v1/verification-requests/{id}`: cancels it.
    pub async fn cancel_verification_request(&self, id: &str) -> Result<CancelResponse, ApiError> {
        self.call(
            Method::DELETE,
            &["verification-requests", id],
            None::<&()>,
            &[],
        )
        .await
    }

    /// Polls a verification request every `interval` until it is terminal (completed, expired,
    /// cancelled) and returns it; [`ApiError::WaitTimedOut`] when `timeout` passes first. The
    /// SDKs poll every 3 s for at most 10 min. A failed poll (after its own retries) ends the
    /// wait with that error.
    pub async fn wait_for_completion(
        &self,
        id: &str,
        interval: Duration,
        timeout: Duration,
    ) -> Result<VerificationRequest, ApiError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let request = self.get_verification_request(id).await?;
            if request.status.is_terminal() {
                return Ok(request);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(ApiError::WaitTimedOut {
                    id: id.to_string(),
                    status: request.status.as_str().to_string(),
                });
            }
            tokio::time::sleep(interval.min(deadline - now)).await;
        }
    }

    // ----- single-asset verifications -----

    /// `POST /api/v1/verifications`.
    pub async fn create_verification(
        &self,
        request: &CreateVerification,
    ) -> Result<Verification, ApiError> {
        self.call(Method::POST, &["verifications"], Some(request), &[])
            .await
    }

    /// `GET /api/v1/verifications/{id}`.
    pub async fn get_verification(&self, id: &str) -> Result<Verification, ApiError> {
        self.call(Method::GET, &["verifications", id], None::<&()>, &[])
            .await
    }

    /// `GET /api/v1/verifications`, optionally filtered.
    pub async fn list_verifications(
        &self,
        query: &ListQuery,
    ) -> Result<ListPage<Verification>, ApiError> {
        self.call(Method::GET, &["verifications"], None::<&()>, &query.pairs())
            .await
    }

    /// `POST /api/v1/verifications/{id}/submit` with the challenge code the person received.
    pub async fn submit_challenge(
        &self,
        id: &str,
        challenge_code: &str,
    ) -> Result<Verification, ApiError> {
        let body = serde_json::json!({ "challenge_code": challenge_code });
        self.call(
            Method::POST,
            &["verifications", id, "submit"],
            Some(&body),
            &[],
        )
        .await
    }

    /// `POST /api/v1/verifications/{id}/test-verify`: completes a pending verification at once.
    /// Test keys only (`pk_live_` → [`ApiError::Forbidden`] with code `test_mode_required`).
    pub async fn test_verify(&self, id: &str) -> Result<Verification, ApiError> {
        self.call(
            Method::POST,
            &["verifications", id, "test-verify"],
            None::<&()>,
            &[],
        )
        .await
    }

    // ----- sessions -----

    /// `POST /api/v1/sessions`: a phone-first verification through a messenger deep link. Without
    /// a `phone` (the official SDKs' form) the person shares their number in the chat and the
    /// session learns it when completed.
    pub async fn create_session(&self, request: &CreateSession) -> Result<Session, ApiError> {
        self.call(Method::POST, &["sessions"], Some(request), &[])
            .await
    }

    /// `GET /api/v1/sessions/{id}`.
    pub async fn get_session(&self, id: &str) -> Result<Session, ApiError> {
        self.call(Method::GET, &["sessions", id], None::<&()>, &[])
            .await
    }

    // ----- webhook deliveries -----

    /// `GET /api/v1/webhook-deliveries`: the webhooks sent to this account, newest first.
    pub async fn list_webhook_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> Result<ListPage<WebhookDelivery>, ApiError> {
        self.call(
            Method::GET,
            &["webhook-deliveries"],
            None::<&()>,
            &query.pairs(),
        )
        .await
    }

    /// `GET /api/v1/webhook-deliveries/stats`.
    pub async fn webhook_delivery_stats(&self) -> Result<DeliveryStats, ApiError> {
        self.call(
            Method::GET,
            &["webhook-deliveries", "stats"],
            None::<&()>,
            &[],
        )
        .await
    }

    /// `GET /api/v1/webhook-deliveries/{id}`, with its payload and the receiver's answer.
    pub async fn get_webhook_delivery(&self, id: &str) -> Result<WebhookDelivery, ApiError> {
        self.call(Method::GET, &["webhook-deliveries", id], None::<&()>, &[])
            .await
    }

    /// `POST /api/v1/webhook-deliveries/{id}/retry`: sends a `failed` delivery again (any other
    /// status is a 400 [`ApiError::Validation`]).
    pub async fn retry_webhook_delivery(&self, id: &str) -> Result<RetryDelivery, ApiError> {
        self.call(
            Method::POST,
            &["webhook-deliveries", id, "retry"],
            None::<&()>,
            &[],
        )
        .await
    }

    // ----- proofs -----

    /// `POST /api/v1/proofs/validate`: online validation of a proof token, optionally against
    /// the identifier it should prove.
    pub async fn validate_proof(
        &self,
        proof_token: &str,
        identifier: Option<&str>,
    ) -> Result<ProofValidation, ApiError> {
        let mut body = serde_json::json!({ "proof_token": proof_token });
        if let Some(identifier) = identifier {
            body["identifier"] = Value::String(identifier.to_string());
        }
        self.call(Method::POST, &["proofs", "validate"], Some(&body), &[])
            .await
    }

    /// `GET /api/v1/proofs/{id}/status`.
    pub async fn proof_status(&self, id: &str) -> Result<ProofStatus, ApiError> {
        self.call(Method::GET, &["proofs", id, "status"], None::<&()>, &[])
            .await
    }

    /// `POST /api/v1/proofs/{id}/revoke`.
    pub async fn revoke_proof(
        &self,
        id: &str,
        reason: RevocationReason,
    ) -> Result<RevokeResponse, ApiError> {
        let body = serde_json::json!({ "reason": reason });
        self.call(Method::POST, &["proofs", id, "revoke"], Some(&body), &[])
            .await
    }

    /// `GET /api/v1`: the API's name and version (no key needed, but sent anyway).
    pub async fn api_info(&self) -> Result<ApiInfo, ApiError> {
        self.call(Method::GET, &[], None::<&()>, &[]).await
    }

    /// `GET /health` (no key needed, but sent anyway).
    pub async fn health(&self) -> Result<Health, ApiError> {
        let url = self.url_for(&["health"], false);
        self.send(Method::GET, url, None::<&()>, &[]).await
    }

    fn url_for(&self, segments: &[&str], api: bool) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            if api {
                path.extend(["api", "v1"]);
            }
            // Each id is one segment, percent-encoded: an id cannot climb out of its path.
            path.extend(segments);
        }
        url
    }

    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let url = self.url_for(segments, true);
        self.send(method, url, body, query).await
    }

    async fn send<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let body = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| ApiError::Config {
                message: e.to_string(),
            })?),
            None => None,
        };
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.key.0)).map_err(|_| {
            ApiError::Config {
                message: "API key not a valid header value".into(),
            }
        })?;
        auth.set_sensitive(true);
        let mut attempt = 0u32;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, auth.clone())
                .header(reqwest::header::ACCEPT, "application/json");
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(b) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone());
            }
            let error = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(bytes) if status.is_success() => {
                            return serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
                                message: format!("{} {}: {e}", method, url.path()),
                            });
                        }
                        Ok(bytes) => ApiError::from_response(status, &headers, &bytes),
                        Err(e) => ApiError::from_reqwest(&e),
                    }
                }
                Err(e) => ApiError::from_reqwest(&e),
            };
            if !error.is_retryable() || attempt >= self.config.max_retries {
                return Err(error);
            }
            let delay = match &error {
                ApiError::RateLimited {
                    retry_after: Some(after),
                    ..
                } => {
                    if *after > self.config.max_retry_after {
                        return Err(error);
                    }
                    *after
                }
                _ => self.config.backoff(attempt),
            };
            tracing::debug!(
                method = %method,
                path = url.path(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "retrying Proof API call"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

// ----- types -----

/// One asset a verification request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AssetRequest {
    /// Asset type: phone, email, domain, social, wallet, …
    #[serde(rename = "type")]
    pub kind: String,
    /// A specific identifier, or `None` to let the person provide it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// The preferred channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Channels the person may use.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub allowed_channels: Vec<String>,
    /// Whether the asset is needed for completion (the service's default: `true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}

impl AssetRequest {
    /// An asset of `kind` with nothing else specified.
    pub fn new(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            ..Self::default()
        }
    }

    /// With a specific identifier.
    pub fn identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = Some(identifier.into());
        self
    }

    /// With a preferred channel.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }
}

/// `action_type` of a verification request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionType {
    /// A plain verification.
    Verification,
    /// Second factor.
    #[serde(rename = "2fa")]
    TwoFactor,
    /// Login.
    Login,
    /// Custom, described by `action_context`.
    Custom,
}

/// `action_context` of a verification request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActionContext {
    /// Title shown on the hosted page (≤ 100 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description shown on the hosted page (≤ 500 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Body of `POST /api/v1/verification-requests`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CreateVerificationRequest {
    /// 1–10 assets.
    pub assets: Vec<AssetRequest>,
    /// The caller's reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    /// What the verification is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_type: Option<ActionType>,
    /// Texts for the hosted page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_context: Option<ActionContext>,
    /// Required proof freshness, `^\d+[hdwm]$`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_requirement: Option<String>,
    /// Complete even when only some assets were verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_ok: Option<bool>,
    /// Where the hosted page sends the person when done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// Where the service posts the completion webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Lifetime of the request in seconds (≤ 604800).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// Lifetime of the issued proofs: 7, 30, 90 or 365 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_expiry_days: Option<u32>,
    /// Free-form metadata echoed in webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_metadata: Option<Value>,
}

impl CreateVerificationRequest {
    /// A request for `assets` with everything else left to the service's defaults.
    pub fn new(assets: Vec<AssetRequest>) -> Self {
        Self {
            assets,
            ..Self::default()
        }
    }
}

/// Status of a verification request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    /// Nothing verified yet.
    #[default]
    Pending,
    /// Some assets verified.
    Partial,
    /// Done (terminal).
    Completed,
    /// Ran out of time (terminal).
    Expired,
    /// Cancelled by the caller (terminal).
    Cancelled,
    /// A status this client does not know; treated as not terminal.
    #[serde(other)]
    Unknown,
}

impl RequestStatus {
    /// `completed`, `expired` and `cancelled` are terminal.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Expired | Self::Cancelled)
    }

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Partial => "partial",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }
}

/// A verification request as the service returns it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VerificationRequest {
    /// Its id.
    pub id: String,
    /// Its status.
    pub status: RequestStatus,
    /// The caller's reference.
    pub reference_id: Option<String>,
    /// The assets and their progress.
    pub assets: Vec<RequestAsset>,
    /// The hosted page to send the person to.
    pub verification_url: Option<String>,
    /// What it is for.
    pub action_type: Option<String>,
    /// Whether partial completion counts.
    pub partial_ok: Option<bool>,
    /// Where the person is sent when done.
    pub redirect_url: Option<String>,
    /// When it was created.
    pub created_at: Option<String>,
    /// When it was last changed.
    pub updated_at: Option<String>,
    /// When it expires.
    pub expires_at: Option<String>,
    /// When it completed.
    pub completed_at: Option<String>,
}

impl VerificationRequest {
    /// The proof tokens of the verified assets.
    pub fn proof_tokens(&self) -> impl Iterator<Item = &str> {
        self.assets.iter().filter_map(|a| a.proof_token.as_deref())
    }
}

/// One asset of a verification request and its progress.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestAsset {
    /// Asset type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The identifier, requested or provided.
    pub identifier: Option<String>,
    /// `pending`, `verified`, `failed`, …
    pub status: String,
    /// The proof token, once verified.
    pub proof_token: Option<String>,
    /// The underlying verification (= the proof id).
    pub verification_id: Option<String>,
    /// When it was verified.
    pub verified_at: Option<String>,
    /// The channel it was verified over.
    pub verified_channel: Option<String>,
}

/// A page of a list endpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ListPage<T> {
    /// The items.
    pub data: Vec<T>,
    /// Where the next page starts.
    pub pagination: Pagination,
}

/// Pagination of a list response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Pagination {
    /// Whether more items follow.
    #[serde(rename = "hasMore")]
    pub has_more: bool,
    /// The cursor of the next page.
    #[serde(rename = "nextCursor")]
    pub next_cursor: Option<String>,
    /// The total count, when given.
    pub total: Option<u64>,
    /// This page's number (1-based), when given (the official SDKs' form).
    pub page: Option<u64>,
    /// The page size, when given.
    pub limit: Option<u64>,
    /// How many pages there are, when given.
    pub total_pages: Option<u64>,
}

/// Filters of a list call; unset fields are not sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// 1-based page.
    pub page: Option<u32>,
    /// Page size (1–100).
    pub limit: Option<u32>,
    /// Only items with this status.
    pub status: Option<String>,
    /// Only verifications of this type.
    pub kind: Option<String>,
    /// Only verification requests with this reference.
    pub reference_id: Option<String>,
}

impl ListQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(v) = self.page {
            out.push(("page", v.to_string()));
        }
        if let Some(v) = self.limit {
            out.push(("limit", v.to_string()));
        }
        if let Some(v) = &self.status {
            out.push(("status", v.clone()));
        }
        if let Some(v) = &self.kind {
            out.push(("type", v.clone()));
        }
        if let Some(v) = &self.reference_id {
            out.push(("reference_id", v.clone()));
        }
        out
    }
}

/// Response of a cancel.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CancelResponse {
    /// Whether it was cancelled.
    pub success: bool,
    /// `cancelled`.
    pub status: String,
}

/// Body of `POST /api/v1/verifications`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CreateVerification {
    /// Asset type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Channel, valid for the type.
    pub channel: String,
    /// The identifier to verify.
    pub identifier: String,
    /// The caller's user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_metadata: Option<Value>,
}

impl CreateVerification {
    /// A verification of `identifier` of `kind` over `channel`.
    pub fn new(
        kind: impl Into<String>,
        channel: impl Into<String>,
        identifier: impl Into<String>,
    ) -> Self {
        Self {
            kind: kind.into(),
            channel: channel.into(),
            identifier: identifier.into(),
            ..Self::default()
        }
    }
}

/// A single-asset verification (also the `test-verify` response).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Verification {
    /// Its id; the proof id of the token it yields.
    pub id: String,
    /// `pending`, `verified`, `failed`, `expired`, `revoked`.
    pub status: String,
    /// Asset type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Channel.
    pub channel: String,
    /// The identifier (possibly masked).
    pub identifier: Option<String>,
    /// The challenge; its `code` only on creation.
    pub challenge: Option<Challenge>,
    /// The proof, once verified (one form of the service's responses).
    pub proof: Option<ProofRef>,
    /// The proof token, once verified (the other form).
    pub proof_token: Option<String>,
    /// When the proof token expires.
    pub proof_expires_at: Option<String>,
    /// Attempts so far.
    pub attempts: Option<u32>,
    /// Attempts allowed.
    pub max_attempts: Option<u32>,
    /// When it was created.
    pub created_at: Option<String>,
    /// When it was last changed.
    pub updated_at: Option<String>,
    /// When it was verified.
    pub verified_at: Option<String>,
    /// `true` in responses of `test-verify`.
    pub test_mode: Option<bool>,
}

impl Verification {
    /// The proof token in either response form.
    pub fn token(&self) -> Option<&str> {
        self.proof_token
            .as_deref()
            .or_else(|| self.proof.as_ref().map(|p| p.token.as_str()))
    }
}

/// A verification challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Challenge {
    /// The code (only in the creation response).
    pub code: Option<String>,
    /// What the person should do.
    pub instruction: Option<String>,
    /// When the challenge expires.
    pub expires_at: Option<String>,
    /// A messenger deep link, for phone channels.
    pub deep_link: Option<String>,
    /// Where to send the code.
    pub send_to: Option<String>,
}

/// A proof token with its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProofRef {
    /// The token.
    pub token: String,
    /// Its expiry.
    pub expires_at: Option<String>,
}

/// Body of `POST /api/v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateSession {
    /// E.164 phone number. `openapi.json` requires it; the official SDKs send none (the person
    /// shares the number in the chat): both are accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// whatsapp (the service's default), telegram, viber or sms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Free-form data echoed in webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_metadata: Option<Value>,
}

/// A phone-first session, in the fields of both `openapi.json` and the official SDKs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Session {
    /// Its id.
    pub id: String,
    /// `pending`, `verified`, `expired`.
    pub status: String,
    /// The messenger: whatsapp, telegram, viber or sms.
    pub channel: Option<String>,
    /// The challenge (creation response only).
    pub challenge: Option<Challenge>,
    /// The deep link into the messenger bot.
    pub deep_link: Option<String>,
    /// What the QR code encodes (the deep link).
    pub qr_text: Option<String>,
    /// The QR code to show.
    pub qr_code: Option<String>,
    /// What to tell the person.
    pub instructions: Option<String>,
    /// The phone number, once the person shared it.
    pub phone_number: Option<String>,
    /// The verification behind the session (= the proof id), once verified.
    pub verification_id: Option<String>,
    /// When it was verified.
    pub verified_at: Option<String>,
    /// The proof, once verified.
    pub proof: Option<ProofRef>,
    /// When it was created.
    pub created_at: Option<String>,
    /// When it expires.
    pub expires_at: Option<String>,
}

/// Filters of [`ProofApiClient::list_webhook_deliveries`]; unset fields are not sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryQuery {
    /// 1-based page.
    pub page: Option<u32>,
    /// Page size (1–100).
    pub limit: Option<u32>,
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// Only this event, e.g. `verification_request.completed`.
    pub event_type: Option<String>,
    /// Only deliveries about this verification request.
    pub verification_request_id: Option<String>,
}

impl DeliveryQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(v) = self.page {
            out.push(("page", v.to_string()));
        }
        if let Some(v) = self.limit {
            out.push(("limit", v.to_string()));
        }
        if let Some(v) = &self.status {
            out.push(("status", v.clone()));
        }
        if let Some(v) = &self.event_type {
            out.push(("event_type", v.clone()));
        }
        if let Some(v) = &self.verification_request_id {
            out.push(("verification_request_id", v.clone()));
        }
        out
    }
}

/// One webhook delivery: what was sent where, and how it went.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookDelivery {
    /// Its id.
    pub id: String,
    /// The verification request it is about, if any.
    pub verification_request_id: Option<String>,
    /// The event, e.g. `verification_request.completed`.
    pub event_type: String,
    /// Where it was posted.
    pub url: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When the last attempt was made.
    pub last_attempt_at: Option<String>,
    /// When the next attempt is due, while `pending`.
    pub next_retry_at: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<String>,
    /// The receiver's last HTTP status, if it answered.
    pub response_status: Option<u16>,
    /// The receiver's last response body (detail only).
    pub response_body: Option<String>,
    /// Why the last attempt failed without an answer.
    pub error_message: Option<String>,
    /// The payload sent (detail only).
    pub payload: Option<Value>,
    /// When it was created.
    pub created_at: Option<String>,
    /// When it last changed.
    pub updated_at: Option<String>,
}

/// `GET /api/v1/webhook-deliveries/stats`, in the fields of both `openapi.json` and the
/// official SDKs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryStats {
    /// Deliveries in all.
    pub total: u64,
    /// Delivered ones.
    pub delivered: u64,
    /// Failed ones.
    pub failed: u64,
    /// Ones still being attempted.
    pub pending: u64,
    /// Delivered, in percent of `total`.
    pub success_rate: f64,
    /// Counts by status (the SDKs' form).
    pub by_status: Option<Value>,
    /// `success_rate` as text, e.g. `"94.67%"` (the SDKs' form).
    pub delivery_rate: Option<String>,
    /// Failures in the last 24 hours (the SDKs' form).
    pub recent_failures_24h: Option<u64>,
}

/// Result of [`ProofApiClient::retry_webhook_delivery`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryDelivery {
    /// Whether the retry was started.
    pub success: bool,
    /// The delivery as it stands now (the `openapi.json` form).
    pub delivery: Option<WebhookDelivery>,
    /// Its id (the SDKs' form).
    pub delivery_id: Option<String>,
    /// When the new attempt is made (the SDKs' form).
    pub next_retry_at: Option<String>,
    /// A message for people.
    pub message: Option<String>,
}

/// `GET /api/v1`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiInfo {
    /// The API's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it is.
    pub description: String,
    /// Where to read more (the SDKs' form).
    pub links: Option<Value>,
}

/// Result of `POST /api/v1/proofs/validate`, in both documented forms.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProofValidation {
    /// Whether the token is valid.
    pub valid: bool,
    /// Why not: `expired`, `revoked`, `invalid`, `identifier_mismatch`, …
    pub reason: Option<String>,
    /// A message for people.
    pub message: Option<String>,
    /// The error message (the OpenAPI form).
    pub error: Option<String>,
    /// The proof's facts (the OpenAPI form).
    pub proof: Option<Value>,
    /// The verification's facts (the test-vector form).
    pub verification: Option<Value>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
}

/// Result of `GET /api/v1/proofs/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProofStatus {
    /// The proof id.
    pub proof_id: String,
    /// `verified`, `revoked`, `expired`, …
    pub status: String,
    /// Whether it is currently valid.
    pub is_valid: bool,
    /// Whether it was revoked.
    pub is_revoked: bool,
    /// When.
    pub revoked_at: Option<String>,
    /// Why.
    pub revoked_reason: Option<String>,
    /// When the proof expires.
    pub expires_at: Option<String>,
    /// Whether it has.
    pub is_expired: bool,
    /// When it was verified.
    pub verified_at: Option<String>,
}

/// Why a proof is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// The owner asked.
    UserRequest,
    /// Fraud.
    Fraud,
    /// The signing key was compromised.
    KeyCompromise,
    /// The asset changed hands.
    AssetTransferred,
    /// Anything else.
    Other,
}

/// Result of a revoke.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RevokeResponse {
    /// Whether it was revoked.
    pub success: bool,
    /// The proof id.
    pub verification_id: Option<String>,
    /// When.
    pub revoked_at: Option<String>,
    /// Why.
    pub reason: Option<String>,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: String,
    /// When the service answered.
    pub timestamp: Option<String>,
    /// Per-dependency states.
    pub services: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_official_policy() {
        let c = ClientConfig::default();
        assert_eq!(c.backoff(0), Duration::from_secs(1));
        assert_eq!(c.backoff(1), Duration::from_secs(2));
        assert_eq!(c.backoff(3), Duration::from_secs(8));
        assert_eq!(c.backoff(4), Duration::from_secs(10));
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(10));
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.max_retries, 2);
    }

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

    #[test]
    fn the_key_never_appears_in_debug_output() {
        let c = ProofApiClient::new("http://127.0.0.1:9", "pk_test_supersecret").expect("client");
        let text = format!("{c:?}");
        assert!(!text.contains("supersecret"), "{text}");
        assert!(text.contains("pk_test_[redacted]"));
        assert!(ProofApiClient::new("ftp://x", "k").is_err());
        assert!(ProofApiClient::new("http://x", "bad\nkey").is_err());
    }

    #[test]
    fn ids_are_single_percent_encoded_segments() {
        let c = ProofApiClient::new("http://127.0.0.1:9/prefix/", "pk_test_x").expect("client");
        let url = c.url_for(&["verifications", "../../admin?x=1"], true);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/api/v1/verifications/..%2F..%2Fadmin%3Fx=1"
        );
    }

    #[test]
    fn request_bodies_serialize_as_the_contract_says() {
        let mut create = CreateVerificationRequest::new(vec![
            AssetRequest::new("phone").channel("telegram"),
            AssetRequest::new("email").identifier("a@b.c"),
        ]);
        create.action_type = Some(ActionType::TwoFactor);
        let v = serde_json::to_value(&create).expect("serialize");
        assert_eq!(
            v,
            serde_json::json!({
                "assets": [{"type": "phone", "channel": "telegram"}, {"type": "email", "identifier": "a@b.c"}],
                "action_type": "2fa"
            })
        );
        let r: VerificationRequest = serde_json::from_str(
            r#"{"id":"x","status":"weird","assets":[{"type":"email","status":"pending"}]}"#,
        )
        .expect("parse");
        assert_eq!(r.status, RequestStatus::Unknown);
        assert!(!r.status.is_terminal());
    }
}

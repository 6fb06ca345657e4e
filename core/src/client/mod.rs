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
//!
//! Delegations (agents) and human approvals (HITL configurations, confirmations) have their
//! own modules, `delegations` and `approvals`, with their types and methods.
//!
//! The client lives here with one method per endpoint; [`ClientConfig`] and the send loop that
//! applies the retry policy are in `transport`, [`ApiError`] and the error envelope in `error`,
//! the request and response bodies in `types`.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::Value;
use url::Url;

mod approvals;
mod delegations;
mod error;
mod transport;
mod types;

pub use self::approvals::{
    ApprovalLink, Confirmation, ConfirmationQuery, ConfirmationResponse, ConfirmationStatus,
    CreateConfirmation, CreateHitl, Hitl, HitlChannel,
};
pub use self::delegations::{CreateDelegation, Delegate, Delegation, DelegationListItem};

pub use self::error::{ApiError, ErrorBody, ErrorDetail};
pub use self::transport::ClientConfig;
pub use self::types::{
    ActionContext, ActionType, ApiInfo, AssetRequest, CancelResponse, Challenge, CreateSession,
    CreateVerification, CreateVerificationRequest, DeliveryQuery, DeliveryStats, Health, ListPage,
    ListQuery, Pagination, ProofRef, ProofStatus, ProofValidation, RequestAsset, RequestStatus,
    RetryDelivery, RevocationReason, RevokeResponse, Session, Verification, VerificationRequest,
    WebhookDelivery,
};

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_appears_in_debug_output() {
        let c = ProofApiClient::new("http://127.0.0.1:9", "pk_test_supersecret").expect("client");
        let text = format!("{c:?}");
        assert!(!text.contains("supersecret"), "{text}");
        assert!(text.contains("pk_test_[redacted]"));
        assert!(ProofApiClient::new("ftp://x", "k").is_err());
        assert!(ProofApiClient::new("http://x", "bad\nkey").is_err());
    }
}

//! The request and response bodies of the Proof API's endpoints, read leniently.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// A human approval: completing the request approves `action_context` and yields a
    /// `confirmation.approved` webhook (the official SDKs' value; not in `openapi.json`).
    Confirmation,
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

/// The query pairs of the filters that are set, in order.
pub(super) fn set_pairs<const N: usize>(
    filters: [(&'static str, Option<String>); N],
) -> Vec<(&'static str, String)> {
    filters
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
}

impl ListQuery {
    pub(super) fn pairs(&self) -> Vec<(&'static str, String)> {
        set_pairs([
            ("page", self.page.map(|v| v.to_string())),
            ("limit", self.limit.map(|v| v.to_string())),
            ("status", self.status.clone()),
            ("type", self.kind.clone()),
            ("reference_id", self.reference_id.clone()),
        ])
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
    /// A verified domain's control-proof handle, `ph_ctl_…` (what delegations are minted
    /// from), when the service shows it.
    pub public_proof_id: Option<String>,
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

/// Filters of
/// [`ProofApiClient::list_webhook_deliveries`](super::ProofApiClient::list_webhook_deliveries);
/// unset fields are not sent.
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
    pub(super) fn pairs(&self) -> Vec<(&'static str, String)> {
        set_pairs([
            ("page", self.page.map(|v| v.to_string())),
            ("limit", self.limit.map(|v| v.to_string())),
            ("status", self.status.clone()),
            ("event_type", self.event_type.clone()),
            (
                "verification_request_id",
                self.verification_request_id.clone(),
            ),
        ])
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

/// Result of
/// [`ProofApiClient::retry_webhook_delivery`](super::ProofApiClient::retry_webhook_delivery).
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
    /// `delegation` when the token was a delegation token.
    pub token_type: Option<String>,
    /// The delegation's facts, for a delegation token.
    pub delegation: Option<Value>,
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
    /// A domain proof's control-proof handle, `ph_ctl_…`, when the service shows it.
    pub public_proof_id: Option<String>,
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

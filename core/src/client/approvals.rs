//! Human-in-the-loop approvals: HITL configurations and confirmations
//! (`spec/proof-api/AGENTS-AND-APPROVALS.md` §2).
//!
//! An operator creates a HITL configuration once ([`ProofApiClient::create_hitl`]) and finalizes
//! it ([`ProofApiClient::finalize_hitl`]); each risky action then becomes a confirmation
//! ([`ProofApiClient::create_confirmation`]) that a person approves or denies. The outcome is
//! read by id ([`ProofApiClient::get_confirmation`]) or arrives as a signed
//! `confirmation.approved` / `confirmation.denied` webhook; an approval carries a `proof_token`
//! to verify offline. A timeout is reported as `denied` with
//! `response.channel = "system"` and `response.text = "timeout"`
//! ([`Confirmation::timed_out`]).
//!
//! Shapes are read leniently: the sources disagree on the status vocabulary (the record says
//! `pending | approved | denied`, the list filter adds `expired`, the event stream adds
//! `cancelled`), so [`ConfirmationStatus`] accepts all five and keeps anything else as
//! [`ConfirmationStatus::Unknown`] instead of failing.

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::types::set_pairs;
use super::{ApiError, ListPage, ProofApiClient};

/// One channel of a HITL configuration: where confirmations reach the approvers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HitlChannel {
    /// `telegram`, `whatsapp` or `browser`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Channel settings (e.g. `{"chat_id": …}` for Telegram).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

impl HitlChannel {
    /// A channel of `kind` without settings.
    pub fn new(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            config: None,
        }
    }
}

/// Body of `POST /api/v1/hitl`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CreateHitl {
    /// A name for people.
    pub name: String,
    /// Where confirmations go (at least one).
    pub channels: Vec<HitlChannel>,
    /// How long a confirmation waits for a decision before it is denied as a timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// The public profile shown to approvers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<String>,
}

impl CreateHitl {
    /// A configuration named `name` with `channels` and the service's default timeout.
    pub fn new(name: impl Into<String>, channels: Vec<HitlChannel>) -> Self {
        Self {
            name: name.into(),
            channels,
            ..Self::default()
        }
    }
}

/// A HITL configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Hitl {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its channels.
    pub channels: Vec<HitlChannel>,
    /// The decision window of its confirmations, in seconds.
    pub timeout_seconds: Option<u64>,
    /// `pending` (created), `active` (finalized) or `archived`.
    pub status: String,
    /// The public profile shown to approvers.
    pub profile_id: Option<String>,
    /// The encryption keypair's public parts, when keys were set.
    pub keypair: Option<Value>,
    /// `production` or `test`.
    pub environment: Option<String>,
    /// When it was created.
    pub created_at: Option<String>,
    /// When it last changed.
    pub updated_at: Option<String>,
}

/// Body of `POST /api/v1/confirmations`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateConfirmation {
    /// The (active) HITL configuration that routes it.
    pub hitl_id: String,
    /// What the approver sees: plain text, or an encrypted envelope (a JSON string).
    pub message: String,
    /// Lifetime of the approval's proof token, in days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_expiry_days: Option<u32>,
}

/// Where a confirmation stands. Unknown words are kept, never a parse failure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ConfirmationStatus {
    /// Waiting for a decision.
    #[default]
    Pending,
    /// Approved (terminal); the confirmation carries a `proof_token`.
    Approved,
    /// Denied, by a person or by the timeout (terminal).
    Denied,
    /// Expired (the list filter's and event stream's word for a timeout; terminal).
    Expired,
    /// Cancelled (the event stream's word; terminal).
    Cancelled,
    /// A status this client does not know; treated as not terminal.
    Unknown(String),
}

impl ConfirmationStatus {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Unknown(s) => s,
        }
    }

    /// Every status but `pending` (and unknown ones) is final.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Approved | Self::Denied | Self::Expired | Self::Cancelled
        )
    }
}

impl From<String> for ConfirmationStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "expired" => Self::Expired,
            "cancelled" | "canceled" => Self::Cancelled,
            _ => Self::Unknown(s),
        }
    }
}

impl From<ConfirmationStatus> for String {
    fn from(s: ConfirmationStatus) -> Self {
        s.as_str().to_string()
    }
}

impl fmt::Display for ConfirmationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a confirmation was answered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfirmationResponse {
    /// Where the answer came from: `browser`, `telegram`, `whatsapp`, … or `system` (timeout).
    pub channel: String,
    /// The approver's text, or `timeout` for a timeout.
    pub text: Option<String>,
    /// `approve` or `deny`, when given.
    pub decision: Option<String>,
    /// When the answer came, when given.
    pub responded_at: Option<String>,
}

/// A confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Confirmation {
    /// Its id.
    pub id: String,
    /// The HITL configuration that routed it.
    pub hitl_id: String,
    /// The message as sent (an envelope stays encrypted).
    pub message: String,
    /// Where it stands.
    pub status: ConfirmationStatus,
    /// The answer, once there is one.
    pub response: Option<ConfirmationResponse>,
    /// When it is denied as a timeout if nobody answers.
    pub timeout_at: Option<String>,
    /// The approval's proof token (approved only).
    pub proof_token: Option<String>,
    /// When it was decided.
    pub resolved_at: Option<String>,
    /// Whether `message` is an encrypted envelope.
    pub encrypted: Option<bool>,
    /// When it was created.
    pub created_at: Option<String>,
    /// When it last changed.
    pub updated_at: Option<String>,
}

impl Confirmation {
    /// Whether it was denied by the timeout (`response.channel = "system"`,
    /// `response.text = "timeout"`), or reported `expired`.
    pub fn timed_out(&self) -> bool {
        self.status == ConfirmationStatus::Expired
            || (self.status == ConfirmationStatus::Denied
                && self
                    .response
                    .as_ref()
                    .is_some_and(|r| r.channel == "system" && r.text.as_deref() == Some("timeout")))
    }
}

/// Filters of [`ProofApiClient::list_confirmations`]; unset fields are not sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfirmationQuery {
    /// 1-based page.
    pub page: Option<u32>,
    /// Page size (1–100).
    pub limit: Option<u32>,
    /// `pending`, `approved`, `denied` or `expired` (timed out).
    pub status: Option<String>,
    /// Only confirmations of this HITL configuration.
    pub hitl_id: Option<String>,
    /// Created at or after (RFC 3339 or `YYYY-MM-DD`).
    pub start_date: Option<String>,
    /// Created at or before (RFC 3339 or `YYYY-MM-DD`).
    pub end_date: Option<String>,
}

impl ConfirmationQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        set_pairs([
            ("page", self.page.map(|v| v.to_string())),
            ("limit", self.limit.map(|v| v.to_string())),
            ("status", self.status.clone()),
            ("hitl_id", self.hitl_id.clone()),
            ("start_date", self.start_date.clone()),
            ("end_date", self.end_date.clone()),
        ])
    }
}

/// Result of [`ProofApiClient::confirmation_approval_link`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ApprovalLink {
    /// A fresh signed link to the hosted approval page. It is a capability: whoever holds it
    /// can approve, so send it only to the approver.
    pub approval_url: String,
}

impl ProofApiClient {
    // ----- HITL configurations -----

    /// `POST /api/v1/hitl`: a configuration, `pending` until finalized.
    pub async fn create_hitl(&self, request: &CreateHitl) -> Result<Hitl, ApiError> {
        self.call(Method::POST, &["hitl"], Some(request), &[]).await
    }

    /// `GET /api/v1/hitl/{id}`.
    pub async fn get_hitl(&self, id: &str) -> Result<Hitl, ApiError> {
        self.call(Method::GET, &["hitl", id], None::<&()>, &[])
            .await
    }

    /// `POST /api/v1/hitl/{id}/finalize`: makes it `active` (confirmations need that).
    pub async fn finalize_hitl(&self, id: &str) -> Result<Hitl, ApiError> {
        self.call(Method::POST, &["hitl", id, "finalize"], None::<&()>, &[])
            .await
    }

    // ----- confirmations -----

    /// `POST /api/v1/confirmations`: asks the configuration's approvers to decide.
    pub async fn create_confirmation(
        &self,
        request: &CreateConfirmation,
    ) -> Result<Confirmation, ApiError> {
        self.call(Method::POST, &["confirmations"], Some(request), &[])
            .await
    }

    /// `GET /api/v1/confirmations/{id}`.
    pub async fn get_confirmation(&self, id: &str) -> Result<Confirmation, ApiError> {
        self.call(Method::GET, &["confirmations", id], None::<&()>, &[])
            .await
    }

    /// `GET /api/v1/confirmations`, newest first, optionally filtered.
    pub async fn list_confirmations(
        &self,
        query: &ConfirmationQuery,
    ) -> Result<ListPage<Confirmation>, ApiError> {
        self.call(Method::GET, &["confirmations"], None::<&()>, &query.pairs())
            .await
    }

    /// `POST /api/v1/confirmations/{id}/approval-link`: a fresh signed link to the hosted
    /// approval page (pending confirmations only; otherwise [`ApiError::Conflict`]).
    pub async fn confirmation_approval_link(&self, id: &str) -> Result<ApprovalLink, ApiError> {
        self.call(
            Method::POST,
            &["confirmations", id, "approval-link"],
            None::<&()>,
            &[],
        )
        .await
    }

    /// `POST /api/v1/confirmations/{id}/test-approve` — **the local sandbox's** test-mode
    /// shortcut (a `pk_test_` key; the real service's equivalent is unknown): approves as an
    /// approver would, with an optional text.
    pub async fn test_approve_confirmation(
        &self,
        id: &str,
        text: Option<&str>,
    ) -> Result<Confirmation, ApiError> {
        let body = serde_json::json!({ "text": text });
        self.call(
            Method::POST,
            &["confirmations", id, "test-approve"],
            Some(&body),
            &[],
        )
        .await
    }

    /// `POST /api/v1/confirmations/{id}/test-deny` — the sandbox's test-mode counterpart of
    /// [`ProofApiClient::test_approve_confirmation`].
    pub async fn test_deny_confirmation(
        &self,
        id: &str,
        text: Option<&str>,
    ) -> Result<Confirmation, ApiError> {
        let body = serde_json::json!({ "text": text });
        self.call(
            Method::POST,
            &["confirmations", id, "test-deny"],
            Some(&body),
            &[],
        )
        .await
    }

    /// Polls a confirmation every `interval` until it is decided and returns it;
    /// [`ApiError::WaitTimedOut`] when `timeout` passes first.
    pub async fn wait_for_confirmation(
        &self,
        id: &str,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Confirmation, ApiError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let c = self.get_confirmation(id).await?;
            if c.status.is_terminal() {
                return Ok(c);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(ApiError::WaitTimedOut {
                    id: id.to_string(),
                    status: c.status.as_str().to_string(),
                });
            }
            tokio::time::sleep(interval.min(deadline - now)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_lenient() {
        for (word, terminal) in [
            ("pending", false),
            ("approved", true),
            ("denied", true),
            ("expired", true),
            ("cancelled", true),
            ("escalated", false),
        ] {
            let c: Confirmation = serde_json::from_value(serde_json::json!({
                "id": "c", "hitl_id": "h", "message": "m", "status": word,
            }))
            .expect("parses");
            assert_eq!(c.status.is_terminal(), terminal, "{word}");
            assert_eq!(c.status.as_str(), word);
            assert_eq!(serde_json::to_value(&c.status).expect("ser"), word);
        }
        let timed_out: Confirmation = serde_json::from_value(serde_json::json!({
            "id": "c", "hitl_id": "h", "message": "m", "status": "denied",
            "response": {"channel": "system", "text": "timeout"},
        }))
        .expect("parses");
        assert!(timed_out.timed_out());
        let body = serde_json::to_value(CreateConfirmation {
            hitl_id: "h".into(),
            message: "Pay 10 EUR".into(),
            proof_expiry_days: None,
        })
        .expect("ser");
        assert_eq!(
            body,
            serde_json::json!({"hitl_id": "h", "message": "Pay 10 EUR"})
        );
    }

    #[test]
    fn list_filters_become_query_pairs() {
        let q = ConfirmationQuery {
            status: Some("expired".into()),
            hitl_id: Some("h1".into()),
            ..ConfirmationQuery::default()
        };
        assert_eq!(
            q.pairs(),
            vec![("status", "expired".into()), ("hitl_id", "h1".into())]
        );
    }
}

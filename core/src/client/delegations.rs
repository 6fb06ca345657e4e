//! Delegations: a domain's signed authorization of one artifact (an agent, a package) for a set
//! of scopes (`spec/proof-api/AGENTS-AND-APPROVALS.md` §1).
//!
//! A delegation is minted from the domain's control proof (its `ph_ctl_…` handle) and carries a
//! delegation token (a compact JWS signed by a key whose `proof_purpose` is `delegation`). The
//! token is only in the creation and detail answers ([`Delegation::token`]); lists leave it out
//! ([`DelegationListItem`]). [`Delegation::effective_status`] is the one to show: it folds in
//! expiry and the control proof's state, where `status` is only the owner's own revoke.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{ApiError, ListPage, ListQuery, ProofApiClient, RevocationReason};

/// What a delegation authorizes: a URL (`https://…`) or a package URL (`pkg:…`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Delegate {
    /// `url` or `purl`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The artifact id; canonical in answers.
    pub value: String,
}

impl Delegate {
    /// An `https://` URL delegate.
    pub fn url(value: impl Into<String>) -> Self {
        Self {
            kind: "url".into(),
            value: value.into(),
        }
    }

    /// A `pkg:` package-URL delegate.
    pub fn purl(value: impl Into<String>) -> Self {
        Self {
            kind: "purl".into(),
            value: value.into(),
        }
    }
}

/// Body of `POST /api/v1/delegations`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreateDelegation {
    /// The domain control proof's handle, `ph_ctl_…`.
    pub control_proof: String,
    /// What is authorized.
    pub delegate: Delegate,
    /// The granted scopes: lowercase kebab tokens (`payments-read`), 1–32 of them.
    pub scope: Vec<String>,
    /// Lifetime in seconds; beyond the control proof's remaining life is refused (400). The
    /// service's default when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// A delegation with its token (`POST` and `GET /api/v1/delegations/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Delegation {
    /// The record id.
    pub id: String,
    /// The handle, `ph_dlg_<32 hex>` (the token's `sub`), when assigned.
    pub delegation_id: Option<String>,
    /// The authorizing domain.
    pub principal: String,
    /// What is authorized (canonical form).
    pub delegate: Delegate,
    /// The granted scopes.
    pub scope: Vec<String>,
    /// The control proof's handle.
    pub control_proof: String,
    /// `active` or `revoked` (only the owner's own revoke).
    pub status: String,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// Why.
    pub revoked_reason: Option<String>,
    /// `production` or `test`.
    pub environment: Option<String>,
    /// When it was issued.
    pub issued_at: Option<String>,
    /// When it expires.
    pub expires_at: Option<String>,
    /// When the record was created.
    pub created_at: Option<String>,
    /// The delegation token (detail only).
    pub token: Option<String>,
    /// `active`, `revoked`, `expired` or `suspended`: the liveness to show.
    pub effective_status: Option<String>,
    /// Whether it is valid now.
    pub is_valid: Option<bool>,
}

impl Delegation {
    /// Whether it is live: `effective_status` (else `status`) is `active`.
    pub fn is_active(&self) -> bool {
        self.effective_status.as_deref().unwrap_or(&self.status) == "active"
    }
}

/// A delegation in a list or a revoke answer: the same as [`Delegation`] without the token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DelegationListItem {
    /// The record id.
    pub id: String,
    /// The handle, `ph_dlg_<32 hex>`, when assigned.
    pub delegation_id: Option<String>,
    /// The authorizing domain.
    pub principal: String,
    /// What is authorized (canonical form).
    pub delegate: Delegate,
    /// The granted scopes.
    pub scope: Vec<String>,
    /// The control proof's handle.
    pub control_proof: String,
    /// `active` or `revoked`.
    pub status: String,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// Why.
    pub revoked_reason: Option<String>,
    /// `production` or `test`.
    pub environment: Option<String>,
    /// When it was issued.
    pub issued_at: Option<String>,
    /// When it expires.
    pub expires_at: Option<String>,
    /// When the record was created.
    pub created_at: Option<String>,
    /// `active`, `revoked`, `expired` or `suspended`.
    pub effective_status: Option<String>,
    /// Whether it is valid now.
    pub is_valid: Option<bool>,
}

impl ProofApiClient {
    /// `POST /api/v1/delegations`: mints a delegation (and its token) from a domain control
    /// proof. Billable on the real service.
    pub async fn create_delegation(
        &self,
        request: &CreateDelegation,
    ) -> Result<Delegation, ApiError> {
        self.call(Method::POST, &["delegations"], Some(request), &[])
            .await
    }

    /// `GET /api/v1/delegations/{id}`, by record id or `ph_dlg_…` handle.
    pub async fn get_delegation(&self, id: &str) -> Result<Delegation, ApiError> {
        self.call(Method::GET, &["delegations", id], None::<&()>, &[])
            .await
    }

    /// `GET /api/v1/delegations`: this account's delegations, without tokens (`page`, `limit`
    /// and `status` of the query are sent).
    pub async fn list_delegations(
        &self,
        query: &ListQuery,
    ) -> Result<ListPage<DelegationListItem>, ApiError> {
        let pairs: Vec<(&'static str, String)> = query
            .pairs()
            .into_iter()
            .filter(|(k, _)| matches!(*k, "page" | "limit" | "status"))
            .collect();
        self.call(Method::GET, &["delegations"], None::<&()>, &pairs)
            .await
    }

    /// `POST /api/v1/delegations/{id}/revoke` (id or handle), with a reason or no body.
    /// Idempotent: a repeat answers the delegation as first revoked.
    pub async fn revoke_delegation(
        &self,
        id: &str,
        reason: Option<RevocationReason>,
    ) -> Result<DelegationListItem, ApiError> {
        let path = ["delegations", id, "revoke"];
        match reason {
            Some(reason) => {
                let body = serde_json::json!({ "reason": reason });
                self.call(Method::POST, &path, Some(&body), &[]).await
            }
            None => self.call(Method::POST, &path, None::<&()>, &[]).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_answers_follow_the_contract() {
        let body = serde_json::to_value(CreateDelegation {
            control_proof: "ph_ctl_00".into(),
            delegate: Delegate::purl("pkg:npm/agent"),
            scope: vec!["payments-read".into()],
            expires_in: None,
        })
        .expect("ser");
        assert_eq!(
            body,
            serde_json::json!({
                "control_proof": "ph_ctl_00",
                "delegate": {"type": "purl", "value": "pkg:npm/agent"},
                "scope": ["payments-read"],
            })
        );
        let d: Delegation = serde_json::from_value(serde_json::json!({
            "id": "x", "delegation_id": null, "principal": "corp.example",
            "delegate": {"type": "url", "value": "https://agent.example"},
            "scope": ["a"], "control_proof": "ph_ctl_1", "status": "active",
            "effective_status": "suspended", "token": null, "future_field": 1,
        }))
        .expect("lenient");
        assert!(!d.is_active());
        assert!(d.token.is_none());
    }
}

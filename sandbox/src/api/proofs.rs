//! Proofs: validate a token, a proof's status, revoke.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use proofgate_core::identifier;
use serde_json::json;

use super::{id_of, ApiKey, MaybeApiKey, R, S};
use crate::delegations;
use crate::envelope::{self, json_response, opt_str, req_str, ApiErr};
use crate::state::{self, lock};

pub(super) async fn validate(State(s): S, _key: MaybeApiKey, body: Body) -> R {
    let obj = envelope::read_object(body).await?;
    let token = req_str(&obj, "proof_token", 16 * 1024)?;
    let identifier = opt_str(&obj, "identifier", 500)?;
    let invalid = |reason: &str, message: &str| json!({"valid": false, "reason": reason, "message": message, "error": message});
    if let Some(answer) = delegations::validate(&s, &token, identifier.as_deref()) {
        return Ok(json_response(StatusCode::OK, answer));
    }
    let data = lock(&s.data);
    let Some(proof) = data.tokens.get(&token).and_then(|id| data.proofs.get(id)) else {
        return Ok(json_response(
            StatusCode::OK,
            invalid(
                "invalid",
                "Proof token is invalid or was not issued by this service",
            ),
        ));
    };
    let now = state::now();
    if let Some((at, reason)) = &proof.revoked {
        let mut v = invalid("revoked", "This proof has been revoked");
        v["revoked_at"] = json!(state::time(*at));
        v["revoked_reason"] = json!(reason);
        return Ok(json_response(StatusCode::OK, v));
    }
    if proof.exp <= now {
        return Ok(json_response(
            StatusCode::OK,
            invalid("expired", "Proof token has expired"),
        ));
    }
    if let Some(identifier) = identifier {
        if identifier::identifier_hash(&proof.kind, &identifier) != proof.identifier_hash {
            return Ok(json_response(
                StatusCode::OK,
                invalid("identifier_mismatch", "The proof is for another identifier"),
            ));
        }
    }
    Ok(json_response(
        StatusCode::OK,
        json!({
            "valid": true,
            "proof": {
                "type": proof.kind, "channel": proof.channel,
                "identifier_hash": proof.identifier_hash,
                "verified_at": state::time(proof.verified_at),
                "expires_at": state::time(proof.exp),
                "issuer": "proof.holdings",
            },
            "verification": {
                "id": proof.id, "type": proof.kind, "channel": proof.channel,
                "verified_at": state::time(proof.verified_at),
                "expires_at": state::time(proof.exp),
                "user_id": proof.user_id,
            },
        }),
    ))
}

pub(super) async fn proof_status(
    State(s): S,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = id_of(path, "Proof")?;
    if id.starts_with("ph_dlg_") {
        let v = delegations::status_json(&s, &id).ok_or_else(|| ApiErr::not_found("Proof"))?;
        return Ok(json_response(StatusCode::OK, v));
    }
    let id = s.proof_id_of(&id);
    let data = lock(&s.data);
    let p = data
        .proofs
        .get(&id)
        .ok_or_else(|| ApiErr::not_found("Proof"))?;
    let now = state::now();
    let expired = p.exp <= now;
    let revoked = p.revoked.is_some();
    Ok(json_response(
        StatusCode::OK,
        json!({
            "proof_id": p.id,
            "status": if revoked { "revoked" } else if expired { "expired" } else { "verified" },
            "is_valid": !revoked && !expired,
            "is_revoked": revoked,
            "revoked_at": p.revoked.as_ref().map(|(at, _)| state::time(*at)),
            "revoked_reason": p.revoked.as_ref().map(|(_, r)| r.clone()),
            "expires_at": state::time(p.exp),
            "is_expired": expired,
            "verified_at": state::time(p.verified_at),
            "public_proof_id": p.handle,
            "type": p.kind,
        }),
    ))
}

pub(super) async fn revoke(
    State(s): S,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> R {
    let id = id_of(path, "Proof")?;
    if id.starts_with("ph_dlg_") {
        let reason = delegations::revoke_reason(body).await?;
        let d = delegations::revoke(&s, &id, &reason).ok_or_else(|| ApiErr::not_found("Proof"))?;
        return Ok(json_response(
            StatusCode::OK,
            json!({
                "success": true,
                "delegation_id": id,
                "revoked_at": d["revoked_at"],
                "reason": d["revoked_reason"],
                "delegation": d,
            }),
        ));
    }
    let id = s.proof_id_of(&id);
    let obj = envelope::read_object(body).await?;
    let reason = opt_str(&obj, "reason", 50)?.unwrap_or_else(|| "user_request".into());
    if !delegations::REASONS.contains(&reason.as_str()) {
        return Err(ApiErr::field(
            "reason",
            "Invalid enum value",
            "invalid_enum_value",
        ));
    }
    let (at, reason) = s
        .revoke(&id, &reason)
        .ok_or_else(|| ApiErr::not_found("Proof"))?;
    let delegations_revoked = lock(&s.data)
        .delegations
        .values()
        .filter(|d| d.control_proof_id == id)
        .count();
    Ok(json_response(
        StatusCode::OK,
        json!({
            "success": true,
            "verification_id": id,
            "revoked_at": state::time(at),
            "reason": reason,
            "delegations_revoked": delegations_revoked,
        }),
    ))
}

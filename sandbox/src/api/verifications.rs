//! Single-asset verifications: create, list, get, submit a challenge, check, test-verify.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{id_of, page, page_params, ApiKey, R, S};
use crate::envelope::{self, json_response, opt_object, opt_str, req_str, ApiErr};
use crate::state::{self, lock, VerificationRecord};
use crate::Shared;

/// Checks `type` and `channel` as the service does: unknown values are validation errors, a
/// known channel of another type is `invalid_channel_for_type`.
pub fn check_type_channel(
    kind: &str,
    channel: Option<&str>,
) -> Result<&'static [&'static str], ApiErr> {
    let channels = state::channels_of(kind)
        .ok_or_else(|| ApiErr::field("type", "Invalid enum value", "invalid_enum_value"))?;
    if let Some(channel) = channel {
        if !state::known_channel(channel) {
            return Err(ApiErr::field(
                "channel",
                "Invalid enum value",
                "invalid_enum_value",
            ));
        }
        if !channels.contains(&channel) {
            return Err(ApiErr::new(
                StatusCode::BAD_REQUEST,
                "invalid_channel_for_type",
                format!("Channel '{channel}' is not valid for verification type '{kind}'"),
            ));
        }
    }
    Ok(channels)
}

/// Checks an identifier for its type (`invalid_identifier`).
pub fn check_identifier(kind: &str, identifier: &str) -> Result<(), ApiErr> {
    if state::identifier_ok(kind, identifier) {
        Ok(())
    } else {
        let mut e = ApiErr::new(
            StatusCode::BAD_REQUEST,
            "invalid_identifier",
            format!("Invalid identifier for type '{kind}'"),
        );
        e = e.with_detail(
            "identifier",
            "Identifier format is not valid for this type",
            "invalid_string",
        );
        Err(e)
    }
}

pub(super) async fn create_verification(State(s): S, key: ApiKey, body: Body) -> R {
    let obj = envelope::read_object(body).await?;
    let kind = req_str(&obj, "type", 50)?;
    let channel = req_str(&obj, "channel", 50)?;
    let identifier = req_str(&obj, "identifier", 500)?;
    let external_user_id = opt_str(&obj, "external_user_id", 255)?;
    opt_object(&obj, "client_metadata")?;
    check_type_channel(&kind, Some(&channel))?;
    check_identifier(&kind, &identifier)?;
    let mut v = VerificationRecord::new(&kind, &channel, &identifier, key.test);
    v.external_user_id = external_user_id;
    let body = v.to_json(None, true, &s.base_url);
    let mut data = lock(&s.data);
    data.verification_order.push(v.id.clone());
    data.verifications.insert(v.id.clone(), v);
    Ok(json_response(StatusCode::CREATED, body))
}

pub(super) async fn list_verifications(
    State(s): S,
    _key: ApiKey,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let (p, limit) = page_params(&q)?;
    let data = lock(&s.data);
    let items: Vec<Value> = data
        .verification_order
        .iter()
        .rev()
        .filter_map(|id| data.verifications.get(id))
        .filter(|v| q.get("status").is_none_or(|st| st == v.status))
        .filter(|v| q.get("type").is_none_or(|t| *t == v.kind))
        .map(|v| v.to_json(data.proofs.get(&v.id), false, &s.base_url))
        .collect();
    Ok(json_response(StatusCode::OK, page(items, p, limit)))
}

pub(super) async fn get_verification(
    State(s): S,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = id_of(path, "Verification")?;
    let data = lock(&s.data);
    let v = data
        .verifications
        .get(&id)
        .ok_or_else(|| ApiErr::not_found("Verification"))?;
    Ok(json_response(
        StatusCode::OK,
        v.to_json(data.proofs.get(&id), false, &s.base_url),
    ))
}

fn pending(v: &VerificationRecord) -> Result<(), ApiErr> {
    if v.status != "pending" {
        return Err(ApiErr::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            format!("Verification is {}, not pending", v.status),
        ));
    }
    if v.challenge_expires_at <= state::now() {
        return Err(ApiErr::new(
            StatusCode::BAD_REQUEST,
            "challenge_expired",
            "The challenge has expired",
        ));
    }
    Ok(())
}

/// Verifies a pending verification, issues its token and posts `verification.completed`.
fn complete_verification(
    s: &Arc<Shared>,
    id: &str,
) -> Result<(VerificationRecord, state::ProofRecord), ApiErr> {
    let (v, proof) = {
        let mut data = lock(&s.data);
        let v = data
            .verifications
            .get(id)
            .ok_or_else(|| ApiErr::not_found("Verification"))?;
        pending(v)?;
        let proof = s
            .issue(&mut data, id)
            .ok_or_else(|| ApiErr::not_found("Verification"))?;
        let v = data
            .verifications
            .get(id)
            .cloned()
            .ok_or_else(|| ApiErr::not_found("Verification"))?;
        (v, proof)
    };
    s.send_webhook(
        json!({
            "event": "verification.completed",
            "test": v.test,
            "data": {
                "id": v.id, "type": v.kind, "channel": v.channel, "status": "verified",
                "verified_at": state::time(proof.verified_at), "proof_token": proof.token,
            },
        }),
        None,
    );
    Ok((v, proof))
}

pub(super) async fn submit(
    State(s): S,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> R {
    let id = id_of(path, "Verification")?;
    let obj = envelope::read_object(body).await?;
    let code = req_str(&obj, "challenge_code", 6)?;
    opt_str(&obj, "source_identifier", 500)?;
    {
        let mut data = lock(&s.data);
        let v = data
            .verifications
            .get_mut(&id)
            .ok_or_else(|| ApiErr::not_found("Verification"))?;
        pending(v)?;
        if !code.eq_ignore_ascii_case(&v.code) {
            v.attempts += 1;
            v.updated_at = state::now();
            if v.attempts >= v.max_attempts {
                v.status = "failed";
            }
            return Err(ApiErr::field(
                "challenge_code",
                "Challenge code does not match",
                "invalid_code",
            ));
        }
    }
    let (v, proof) = complete_verification(&s, &id)?;
    Ok(json_response(
        StatusCode::OK,
        v.to_json(Some(&proof), false, &s.base_url),
    ))
}

pub(super) async fn check(
    State(s): S,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    // The real service checks DNS records or an HTTP file here; the sandbox finds them present.
    let id = id_of(path, "Verification")?;
    let (v, proof) = complete_verification(&s, &id)?;
    Ok(json_response(
        StatusCode::OK,
        v.to_json(Some(&proof), false, &s.base_url),
    ))
}

pub(super) async fn test_verify(
    State(s): S,
    key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    if !key.test {
        return Err(ApiErr::new(
            StatusCode::FORBIDDEN,
            "test_mode_required",
            "This endpoint is only available with test API keys (pk_test_*)",
        ));
    }
    let id = id_of(path, "Verification")?;
    let (v, proof) = complete_verification(&s, &id)?;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "id": v.id,
            "type": v.kind,
            "channel": v.channel,
            "status": "verified",
            "identifier": v.identifier,
            "verified_at": state::time(proof.verified_at),
            "proof_token": proof.token,
            "proof_expires_at": state::time(proof.exp),
            "test_mode": true,
            "public_proof_id": proof.handle,
        }),
    ))
}

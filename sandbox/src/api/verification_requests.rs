//! Hosted, multi-asset verification requests: create, get, list, cancel.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::{check_identifier, check_type_channel, id_of, page, page_params, ApiKey, R, S};
use crate::envelope::{
    self, json_response, opt_bool, opt_object, opt_str, opt_u64, req_str, ApiErr,
};
use crate::hosted;
use crate::state::{self, lock, AssetRecord, RequestRecord};

fn check_url(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiErr> {
    let Some(u) = opt_str(obj, field, 2048)? else {
        return Ok(None);
    };
    match url::Url::parse(&u) {
        // The real service wants HTTPS; the sandbox also takes http for loopback demos.
        Ok(parsed) if matches!(parsed.scheme(), "https" | "http") && parsed.host().is_some() => {
            Ok(Some(u))
        }
        _ => Err(ApiErr::field(field, "Invalid url", "invalid_string")),
    }
}

fn parse_asset(i: usize, v: &Value) -> Result<AssetRecord, ApiErr> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiErr::field(&format!("assets.{i}"), "Expected object", "invalid_type"))?;
    let prefixed = |e: ApiErr| e.prefix_fields(&format!("assets.{i}."));
    let kind = req_str(obj, "type", 50).map_err(prefixed)?;
    let identifier = opt_str(obj, "identifier", 500).map_err(prefixed)?;
    let channel = opt_str(obj, "channel", 50).map_err(prefixed)?;
    let required = opt_bool(obj, "required").map_err(prefixed)?.unwrap_or(true);
    let allowed_channels: Vec<String> = match obj.get("allowed_channels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() <= 10 => items
            .iter()
            .map(|c| c.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiErr::field(
                    &format!("assets.{i}.allowed_channels"),
                    "Expected strings",
                    "invalid_type",
                )
            })?,
        Some(_) => {
            return Err(ApiErr::field(
                &format!("assets.{i}.allowed_channels"),
                "Expected an array of at most 10 channels",
                "invalid_type",
            ))
        }
    };
    check_type_channel(&kind, channel.as_deref()).map_err(prefixed)?;
    for c in &allowed_channels {
        check_type_channel(&kind, Some(c)).map_err(prefixed)?;
    }
    if let Some(id) = &identifier {
        check_identifier(&kind, id).map_err(prefixed)?;
    }
    Ok(AssetRecord {
        kind,
        identifier,
        channel,
        allowed_channels,
        required,
        status: "pending",
        verification_id: None,
        verified_at: None,
        verified_channel: None,
        proof_token: None,
    })
}

pub(super) async fn create_request(State(s): S, key: ApiKey, body: Body) -> R {
    let obj = envelope::read_object(body).await?;
    let assets = super::array_field(&obj, "assets", 10, "assets")?
        .iter()
        .enumerate()
        .map(|(i, v)| parse_asset(i, v))
        .collect::<Result<Vec<_>, _>>()?;
    let reference_id = opt_str(&obj, "reference_id", 255)?;
    let action_type = opt_str(&obj, "action_type", 20)?.unwrap_or_else(|| "verification".into());
    // `confirmation` is the official SDKs' value (a human approval); not in `openapi.json`.
    if !["verification", "2fa", "login", "custom", "confirmation"].contains(&action_type.as_str()) {
        return Err(ApiErr::field(
            "action_type",
            "Invalid enum value",
            "invalid_enum_value",
        ));
    }
    let action_context = opt_object(&obj, "action_context")?;
    if let Some(ctx) = &action_context {
        opt_str(ctx, "title", 100).map_err(|e| e.prefix_fields("action_context."))?;
        opt_str(ctx, "description", 500).map_err(|e| e.prefix_fields("action_context."))?;
        opt_str(ctx, "currency", 10).map_err(|e| e.prefix_fields("action_context."))?;
        opt_str(ctx, "entity", 200).map_err(|e| e.prefix_fields("action_context."))?;
        match ctx.get("amount") {
            None | Some(Value::Null) | Some(Value::Number(_)) => {}
            Some(Value::String(a)) if a.len() <= 50 => {}
            Some(_) => {
                return Err(ApiErr::field(
                    "action_context.amount",
                    "Expected a number or a decimal string",
                    "invalid_type",
                ))
            }
        }
    }
    if let Some(v) = opt_str(&obj, "validity_requirement", 20)? {
        let ok = v.len() >= 2
            && v[..v.len() - 1].bytes().all(|b| b.is_ascii_digit())
            && v.ends_with(['h', 'd', 'w', 'm']);
        if !ok {
            return Err(ApiErr::field(
                "validity_requirement",
                "Must match ^\\d+[hdwm]$",
                "invalid_string",
            ));
        }
    }
    opt_str(&obj, "public_profile_id", 24)?;
    let partial_ok = opt_bool(&obj, "partial_ok")?.unwrap_or(false);
    let redirect_url = check_url(&obj, "redirect_url")?;
    let callback_url = check_url(&obj, "callback_url")?;
    let expires_in = opt_u64(&obj, "expires_in")?.unwrap_or(86_400);
    if !(1..=604_800).contains(&expires_in) {
        return Err(ApiErr::field(
            "expires_in",
            "Must be from 1 to 604800",
            "too_big",
        ));
    }
    let proof_expiry_days = opt_u64(&obj, "proof_expiry_days")?;
    if proof_expiry_days.is_some_and(|d| ![7, 30, 90, 365].contains(&d)) {
        return Err(ApiErr::field(
            "proof_expiry_days",
            "Must be 7, 30, 90 or 365",
            "invalid_enum_value",
        ));
    }
    let default_days = i64::try_from(s.config.token_lifetime.as_secs() / 86_400)
        .unwrap_or(30)
        .max(1);
    let now = state::now();
    let record = RequestRecord {
        id: state::object_id(),
        reference_id,
        assets,
        action_type,
        action_context: action_context.map(Value::Object),
        partial_ok,
        redirect_url,
        callback_url,
        client_metadata: opt_object(&obj, "client_metadata")?.map(Value::Object),
        proof_expiry_days: proof_expiry_days
            .and_then(|d| i64::try_from(d).ok())
            .unwrap_or(default_days),
        status: "pending",
        created_at: now,
        updated_at: now,
        expires_at: now + i64::try_from(expires_in).unwrap_or(86_400),
        completed_at: None,
        test: key.test,
    };
    let body = record.to_json(&s.base_url);
    let mut data = lock(&s.data);
    data.request_order.push(record.id.clone());
    data.requests.insert(record.id.clone(), record);
    Ok(json_response(StatusCode::CREATED, body))
}

pub(super) async fn get_request(
    State(s): S,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = id_of(path, "Verification request")?;
    hosted::expire_if_due(&s, &id);
    let data = lock(&s.data);
    let r = data
        .requests
        .get(&id)
        .ok_or_else(|| ApiErr::not_found("Verification request"))?;
    Ok(json_response(StatusCode::OK, r.to_json(&s.base_url)))
}

pub(super) async fn list_requests(
    State(s): S,
    _key: ApiKey,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let (p, limit) = page_params(&q)?;
    let ids: Vec<String> = lock(&s.data).request_order.clone();
    for id in &ids {
        hosted::expire_if_due(&s, id);
    }
    let data = lock(&s.data);
    let items = data
        .request_order
        .iter()
        .rev()
        .filter_map(|id| data.requests.get(id))
        .filter(|r| q.get("status").is_none_or(|st| st == r.status))
        .filter(|r| {
            q.get("reference_id")
                .is_none_or(|x| Some(x) == r.reference_id.as_ref())
        })
        .map(|r| r.to_json(&s.base_url))
        .collect();
    Ok(json_response(StatusCode::OK, page(items, p, limit)))
}

pub(super) async fn cancel_request(
    State(s): S,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = id_of(path, "Verification request")?;
    hosted::expire_if_due(&s, &id);
    let mut data = lock(&s.data);
    let r = data
        .requests
        .get_mut(&id)
        .ok_or_else(|| ApiErr::not_found("Verification request"))?;
    match r.status {
        "cancelled" => {}
        "completed" | "expired" => {
            return Err(ApiErr::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("Verification request is already {}", r.status),
            ))
        }
        _ => {
            r.status = "cancelled";
            r.updated_at = state::now();
        }
    }
    Ok(json_response(
        StatusCode::OK,
        json!({"success": true, "status": "cancelled"}),
    ))
}

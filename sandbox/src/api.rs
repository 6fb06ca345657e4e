//! The API routes and their handlers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use proofgate_core::identifier;
use serde_json::{json, Map, Value};

use crate::envelope::{
    self, json_response, opt_bool, opt_object, opt_str, opt_u64, req_str, ApiErr,
};
use crate::state::{self, lock, AssetRecord, RequestRecord, VerificationRecord};
use crate::{control, deliveries, hosted, sessions, Shared};

type S = State<Arc<Shared>>;
type R = Result<Response, ApiErr>;

/// The sandbox's router.
pub fn router(shared: Arc<Shared>) -> Router {
    let v1 = "/api/v1";
    Router::new()
        .route("/health", get(health))
        .route(v1, get(api_info))
        .route("/.well-known/jwks.json", get(jwks))
        .route(&format!("{v1}/proofs/revoked"), get(revoked))
        .route(&format!("{v1}/proofs/status-list"), get(status_list))
        .route(&format!("{v1}/proofs/validate"), post(validate))
        .route(&format!("{v1}/proofs/{{id}}/status"), get(proof_status))
        .route(&format!("{v1}/proofs/{{id}}/revoke"), post(revoke))
        .route(
            &format!("{v1}/verifications"),
            post(create_verification).get(list_verifications),
        )
        .route(&format!("{v1}/verifications/{{id}}"), get(get_verification))
        .route(&format!("{v1}/verifications/{{id}}/submit"), post(submit))
        .route(&format!("{v1}/verifications/{{id}}/verify"), post(check))
        .route(
            &format!("{v1}/verifications/{{id}}/test-verify"),
            post(test_verify),
        )
        .route(
            &format!("{v1}/sessions"),
            post(sessions::create).get(sessions::list),
        )
        .route(&format!("{v1}/sessions/{{id}}"), get(sessions::get_one))
        .route(&format!("{v1}/webhook-deliveries"), get(deliveries::list))
        .route(
            &format!("{v1}/webhook-deliveries/stats"),
            get(deliveries::stats),
        )
        .route(
            &format!("{v1}/webhook-deliveries/{{id}}"),
            get(deliveries::get_one),
        )
        .route(
            &format!("{v1}/webhook-deliveries/{{id}}/retry"),
            post(deliveries::retry),
        )
        .route(
            &format!("{v1}/verification-requests"),
            post(create_request).get(list_requests),
        )
        .route(
            &format!("{v1}/verification-requests/{{id}}"),
            get(get_request).delete(cancel_request),
        )
        .merge(hosted::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            control::rate_limit,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            control::failures,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            control::record,
        ))
        .fallback(|| async { ApiErr::new(StatusCode::NOT_FOUND, "not_found", "Route not found") })
        .method_not_allowed_fallback(|| async {
            ApiErr::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            )
        })
        .with_state(shared)
}

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

/// A path id; any decoding problem reads as "no such resource".
fn id_of(path: Result<Path<String>, PathRejection>, what: &str) -> Result<String, ApiErr> {
    path.map(|Path(id)| id).map_err(|_| ApiErr::not_found(what))
}

// ----- public documents -----

async fn health() -> Response {
    json_response(
        StatusCode::OK,
        json!({
            "status": "healthy",
            "timestamp": state::time(state::now()),
            "services": {"database": "up", "redis": "up"},
            "mode": "sandbox",
        }),
    )
}

async fn api_info(State(s): S) -> Response {
    let base = &s.base_url;
    json_response(
        StatusCode::OK,
        json!({
            "name": "proof.holdings API (proofgate sandbox)",
            "version": "1.0.0",
            "description": "Proof of Control as a Service — local test-mode emulator",
            // The official SDKs' form adds where to go next.
            "links": {
                "health": format!("{base}/health"),
                "jwks": format!("{base}/.well-known/jwks.json"),
                "revocation_list": format!("{base}/api/v1/proofs/revoked"),
                "status_list": format!("{base}/api/v1/proofs/status-list"),
            },
        }),
    )
}

fn cache(mut r: Response, max_age: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    r
}

async fn jwks(State(s): S) -> Response {
    let doc = lock(&s.keys).jwks();
    cache(json_response(StatusCode::OK, doc), s.config.jwks_max_age)
}

async fn revoked(State(s): S) -> Response {
    let entries: Vec<Value> = {
        let data = lock(&s.data);
        data.revoked_order
            .iter()
            .filter_map(|id| data.proofs.get(id))
            .filter_map(|p| {
                let (at, reason) = p.revoked.as_ref()?;
                Some(json!({"proof_id": p.id, "revoked_at": state::time(*at), "reason": reason}))
            })
            .collect()
    };
    let key = s.signing_key();
    let signature = key.sign_json(&json!({ "revoked": entries }));
    let now = state::time(state::now());
    let body = json!({
        "count": entries.len(),
        "revoked": entries,
        "issued_at": now,
        "generated_at": now,
        "signature": signature,
        "kid": key.kid(),
        "has_more": false,
    });
    cache(
        json_response(StatusCode::OK, body),
        s.config.revocation_max_age,
    )
}

async fn status_list(State(s): S) -> R {
    if !s.config.status_list {
        return Err(ApiErr::not_found("Status list"));
    }
    // Like a real status list, the list is allocated ahead of use: slots of tokens not issued
    // yet read as valid, so a verifier's cached copy covers tokens issued after it was fetched.
    const CAPACITY: usize = 65_536;
    let mut statuses = lock(&s.data).statuses.clone();
    if statuses.len() < CAPACITY {
        statuses.resize(CAPACITY, 0);
    }
    let key = s.signing_key();
    let jwt = proofgate_core::testing::status_list_jwt(
        &key,
        &s.status_list_uri(),
        2,
        &statuses,
        s.config.status_list_ttl,
    );
    let mut r = (StatusCode::OK, jwt).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/statuslist+jwt"),
    );
    Ok(cache(
        r,
        u64::try_from(s.config.status_list_ttl).unwrap_or(60),
    ))
}

// ----- verifications -----

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

async fn create_verification(State(s): S, key: ApiKey, body: Body) -> R {
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

/// `page` and `limit` of a list call (1-based page; 1–100 items, 20 by default).
pub(crate) fn page_params(q: &HashMap<String, String>) -> Result<(usize, usize), ApiErr> {
    let num = |field: &str, default: usize, max: usize| -> Result<usize, ApiErr> {
        match q.get(field) {
            None => Ok(default),
            Some(t) => match t.parse::<usize>() {
                Ok(n) if n >= 1 && n <= max => Ok(n),
                _ => Err(ApiErr::field(
                    field,
                    format!("Expected an integer from 1 to {max}"),
                    "invalid_type",
                )),
            },
        }
    };
    Ok((num("page", 1, 1_000_000)?, num("limit", 20, 100)?))
}

/// One page of `items`, with the pagination of both `openapi.json` (`hasMore`) and the
/// official SDKs (`page`, `limit`, `total`, `total_pages`).
pub(crate) fn page(items: Vec<Value>, page: usize, limit: usize) -> Value {
    let total = items.len();
    let start = page.saturating_sub(1).saturating_mul(limit).min(total);
    let end = start.saturating_add(limit).min(total);
    json!({
        "data": items[start..end].to_vec(),
        "pagination": {
            "hasMore": end < total,
            "page": page,
            "limit": limit,
            "total": total,
            "total_pages": total.div_ceil(limit.max(1)),
        },
    })
}

async fn list_verifications(
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

async fn get_verification(
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

async fn submit(
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

async fn check(State(s): S, _key: ApiKey, path: Result<Path<String>, PathRejection>) -> R {
    // The real service checks DNS records or an HTTP file here; the sandbox finds them present.
    let id = id_of(path, "Verification")?;
    let (v, proof) = complete_verification(&s, &id)?;
    Ok(json_response(
        StatusCode::OK,
        v.to_json(Some(&proof), false, &s.base_url),
    ))
}

async fn test_verify(State(s): S, key: ApiKey, path: Result<Path<String>, PathRejection>) -> R {
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
        }),
    ))
}

// ----- verification requests -----

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

async fn create_request(State(s): S, key: ApiKey, body: Body) -> R {
    let obj = envelope::read_object(body).await?;
    let assets = match obj.get("assets") {
        Some(Value::Array(items)) if (1..=10).contains(&items.len()) => items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_asset(i, v))
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(_)) => {
            return Err(ApiErr::field(
                "assets",
                "Between 1 and 10 assets",
                "too_small",
            ))
        }
        Some(_) => return Err(ApiErr::field("assets", "Expected array", "invalid_type")),
        None => return Err(ApiErr::field("assets", "Required", "invalid_type")),
    };
    let reference_id = opt_str(&obj, "reference_id", 255)?;
    let action_type = opt_str(&obj, "action_type", 20)?.unwrap_or_else(|| "verification".into());
    if !["verification", "2fa", "login", "custom"].contains(&action_type.as_str()) {
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

async fn get_request(State(s): S, _key: ApiKey, path: Result<Path<String>, PathRejection>) -> R {
    let id = id_of(path, "Verification request")?;
    hosted::expire_if_due(&s, &id);
    let data = lock(&s.data);
    let r = data
        .requests
        .get(&id)
        .ok_or_else(|| ApiErr::not_found("Verification request"))?;
    Ok(json_response(StatusCode::OK, r.to_json(&s.base_url)))
}

async fn list_requests(State(s): S, _key: ApiKey, Query(q): Query<HashMap<String, String>>) -> R {
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

async fn cancel_request(State(s): S, _key: ApiKey, path: Result<Path<String>, PathRejection>) -> R {
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

// ----- proofs -----

async fn validate(State(s): S, _key: MaybeApiKey, body: Body) -> R {
    let obj = envelope::read_object(body).await?;
    let token = req_str(&obj, "proof_token", 16 * 1024)?;
    let identifier = opt_str(&obj, "identifier", 500)?;
    let invalid = |reason: &str, message: &str| json!({"valid": false, "reason": reason, "message": message, "error": message});
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

async fn proof_status(State(s): S, _key: ApiKey, path: Result<Path<String>, PathRejection>) -> R {
    let id = id_of(path, "Proof")?;
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
        }),
    ))
}

async fn revoke(
    State(s): S,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> R {
    let id = id_of(path, "Proof")?;
    let obj = envelope::read_object(body).await?;
    let reason = opt_str(&obj, "reason", 50)?.unwrap_or_else(|| "user_request".into());
    if ![
        "user_request",
        "fraud",
        "key_compromise",
        "asset_transferred",
        "other",
    ]
    .contains(&reason.as_str())
    {
        return Err(ApiErr::field(
            "reason",
            "Invalid enum value",
            "invalid_enum_value",
        ));
    }
    let (at, reason) = s
        .revoke(&id, &reason)
        .ok_or_else(|| ApiErr::not_found("Proof"))?;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "success": true,
            "verification_id": id,
            "revoked_at": state::time(at),
            "reason": reason,
        }),
    ))
}

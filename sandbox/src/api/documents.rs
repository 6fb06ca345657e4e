//! The public documents: health, API info, the JWKS, the revocation list and the status list.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{R, S};
use crate::envelope::{json_response, ApiErr};
use crate::state::{self, lock};

pub(super) async fn health() -> Response {
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

pub(super) async fn api_info(State(s): S) -> Response {
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

pub(super) async fn jwks(State(s): S) -> Response {
    let doc = lock(&s.keys).jwks();
    cache(json_response(StatusCode::OK, doc), s.config.jwks_max_age)
}

pub(super) async fn revoked(State(s): S) -> Response {
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

pub(super) async fn status_list(State(s): S) -> R {
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

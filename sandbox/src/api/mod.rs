//! The API routes and their handlers.
//!
//! The router is built here, with what every resource shares (the `S` state and `R` result
//! types, path ids, pagination); the handlers live in one module per resource: `documents`
//! (health, API info, JWKS, revocation and status lists), `verifications`,
//! `verification_requests` and `proofs`, the caller's key extractors in `auth`. Sessions,
//! webhook deliveries, HITL configurations and confirmations (`approvals`), delegations and the
//! hosted pages have their own crate modules.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::envelope::ApiErr;
use crate::{approval_page, approvals, control, delegations, deliveries, hosted, sessions, Shared};

mod auth;
mod documents;
mod proofs;
mod verification_requests;
mod verifications;

pub use self::auth::{ApiKey, MaybeApiKey};
use self::documents::{api_info, health, jwks, revoked, status_list};
use self::proofs::{proof_status, revoke, validate};
use self::verification_requests::{cancel_request, create_request, get_request, list_requests};
use self::verifications::{
    check, create_verification, get_verification, list_verifications, submit, test_verify,
};
pub use self::verifications::{check_identifier, check_type_channel};

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
        .route(&format!("{v1}/hitl"), post(approvals::create_hitl))
        .route(&format!("{v1}/hitl/{{id}}"), get(approvals::get_hitl))
        .route(
            &format!("{v1}/hitl/{{id}}/finalize"),
            post(approvals::finalize_hitl),
        )
        .route(
            &format!("{v1}/confirmations"),
            post(approvals::create_confirmation).get(approvals::list_confirmations),
        )
        .route(
            &format!("{v1}/confirmations/{{id}}"),
            get(approvals::get_confirmation),
        )
        .route(
            &format!("{v1}/confirmations/{{id}}/approval-link"),
            post(approvals::approval_link),
        )
        .route(
            &format!("{v1}/confirmations/{{id}}/events"),
            get(approvals::events),
        )
        .route(
            &format!("{v1}/confirmations/{{id}}/test-approve"),
            post(approvals::test_approve),
        )
        .route(
            &format!("{v1}/confirmations/{{id}}/test-deny"),
            post(approvals::test_deny),
        )
        .route(
            &format!("{v1}/delegations"),
            post(delegations::create).get(delegations::list),
        )
        .route(
            &format!("{v1}/delegations/{{id}}"),
            get(delegations::get_one),
        )
        .route(
            &format!("{v1}/delegations/{{id}}/revoke"),
            post(delegations::revoke_handler),
        )
        .merge(hosted::routes())
        .merge(approval_page::routes())
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

/// A path id; any decoding problem reads as "no such resource".
pub(crate) fn id_of(
    path: Result<Path<String>, PathRejection>,
    what: &str,
) -> Result<String, ApiErr> {
    path.map(|Path(id)| id).map_err(|_| ApiErr::not_found(what))
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

/// The array field `name` of a request body, with 1 to `max` items (`plural` names them in the
/// error): the issuer's `invalid_type` / `too_small` answers otherwise.
pub(crate) fn array_field<'a>(
    obj: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
    max: usize,
    plural: &str,
) -> Result<&'a Vec<serde_json::Value>, ApiErr> {
    match obj.get(name) {
        Some(serde_json::Value::Array(items)) if (1..=max).contains(&items.len()) => Ok(items),
        Some(serde_json::Value::Array(_)) => Err(ApiErr::field(
            name,
            format!("Between 1 and {max} {plural}"),
            "too_small",
        )),
        Some(_) => Err(ApiErr::field(name, "Expected array", "invalid_type")),
        None => Err(ApiErr::field(name, "Required", "invalid_type")),
    }
}

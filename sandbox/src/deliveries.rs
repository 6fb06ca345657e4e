//! `GET /api/v1/webhook-deliveries` (list, `stats`, one) and `POST …/{id}/retry`, over the
//! deliveries the sandbox's webhook sender really made.
//!
//! Shapes are those of `openapi.json`, with what the official SDKs expect besides: a list item
//! also carries `delivered_at`; the statistics carry `openapi.json`'s `total`, `delivered`,
//! `failed`, `pending`, `success_rate` and the SDKs' `by_status`, `delivery_rate`,
//! `recent_failures_24h`; a retry answers `openapi.json`'s `{success, delivery}` and the SDKs'
//! `message`, `delivery_id`, `next_retry_at`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use crate::api::{page, page_params, ApiKey};
use crate::envelope::{json_response, ApiErr};
use crate::state::{self, lock};
use crate::webhooks::{self, RetryRefused};
use crate::Shared;

type R = Result<Response, ApiErr>;

const STATUSES: &[&str] = &["pending", "delivered", "failed"];

fn filter<'a>(q: &'a HashMap<String, String>, field: &str) -> Result<Option<&'a str>, ApiErr> {
    match q.get(field).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) if v.len() > 100 => Err(ApiErr::field(
            field,
            "Must be at most 100 characters",
            "too_big",
        )),
        Some(v) => Ok(Some(v)),
    }
}

pub(crate) async fn list(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let (p, limit) = page_params(&q)?;
    let status = filter(&q, "status")?;
    if status.is_some_and(|st| !STATUSES.contains(&st)) {
        return Err(ApiErr::field(
            "status",
            "Invalid enum value; expected pending, delivered or failed",
            "invalid_enum_value",
        ));
    }
    let event = filter(&q, "event_type")?;
    let request = filter(&q, "verification_request_id")?;
    let items: Vec<Value> = lock(&s.deliveries)
        .iter()
        .rev()
        .filter(|d| status.is_none_or(|st| d.status == st))
        .filter(|d| event.is_none_or(|e| d.event == e))
        .filter(|d| request.is_none_or(|r| d.verification_request_id.as_deref() == Some(r)))
        .map(|d| d.to_json(false))
        .collect();
    Ok(json_response(StatusCode::OK, page(items, p, limit)))
}

pub(crate) async fn stats(State(s): State<Arc<Shared>>, _key: ApiKey) -> R {
    let day_ago = state::now() - 86_400;
    let (mut pending, mut delivered, mut failed, mut recent_failures) = (0u64, 0u64, 0u64, 0u64);
    for d in lock(&s.deliveries).iter() {
        match d.status {
            "delivered" => delivered += 1,
            "failed" => {
                failed += 1;
                if d.updated_at >= day_ago {
                    recent_failures += 1;
                }
            }
            _ => pending += 1,
        }
    }
    let total = pending + delivered + failed;
    let rate = if total == 0 {
        0.0
    } else {
        (delivered as f64 * 10_000.0 / total as f64).round() / 100.0
    };
    Ok(json_response(
        StatusCode::OK,
        json!({
            "total": total,
            "delivered": delivered,
            "failed": failed,
            "pending": pending,
            "success_rate": rate,
            "by_status": {"pending": pending, "delivered": delivered, "failed": failed},
            "delivery_rate": format!("{rate:.2}%"),
            "recent_failures_24h": recent_failures,
        }),
    ))
}

fn id_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiErr> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiErr::not_found("Webhook delivery"))
}

pub(crate) async fn get_one(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = id_of(path)?;
    let log = lock(&s.deliveries);
    let d = log
        .iter()
        .find(|d| d.id == id)
        .ok_or_else(|| ApiErr::not_found("Webhook delivery"))?;
    Ok(json_response(StatusCode::OK, d.to_json(true)))
}

pub(crate) async fn retry(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = id_of(path)?;
    let d = webhooks::retry(&s, &id).map_err(|e| match e {
        RetryRefused::NotFound => ApiErr::not_found("Webhook delivery"),
        RetryRefused::NotFailed(status) => ApiErr::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            format!("Only failed deliveries can be retried; this one is {status}"),
        ),
    })?;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "success": true,
            "message": "Delivery retry initiated",
            "delivery_id": d.id,
            "next_retry_at": d.next_retry_at.map(state::time),
            "delivery": d.to_json(true),
        }),
    ))
}

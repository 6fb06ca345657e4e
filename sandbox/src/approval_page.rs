//! The hosted approval page: where the person a confirmation is for reads its message and
//! approves or denies it (`approval_url` of `POST /api/v1/confirmations/{id}/approval-link`).
//!
//! `GET /hosted/confirmations/{id}?e=…&n=…&s=…` shows the message (HTML-escaped; an encrypted
//! one is shown as "encrypted message", never decoded) and two plain HTML forms, Approve and
//! Deny (no script needed), posting to `/hosted/confirmations/{id}/approve` and `…/deny` with
//! the link's parameters as hidden fields and an optional `text`. The link's HMAC is what makes
//! the forms safe against cross-site requests: a post without the parameters of a link this
//! sandbox signed (for this confirmation, not expired) is refused with 403, so another site
//! cannot make a visitor's browser decide. A decision made here uses the channel `browser`.
//! Pages are `no-store`, send no referrer and refuse to be framed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use crate::approvals::{self, DecideError, Decision, LinkParams};
use crate::envelope::escape;
use crate::hosted::{field, form, page};
use crate::state::{self, lock};
use crate::Shared;

/// The approval page's routes.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/hosted/confirmations/{id}", get(show))
        .route("/hosted/confirmations/{id}/approve", post(approve))
        .route("/hosted/confirmations/{id}/deny", post(deny))
}

/// A page with the headers every approval page carries.
fn guarded(status: StatusCode, title: &str, content: &str) -> Response {
    let mut r = page(status, title, content);
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

fn not_found() -> Response {
    guarded(
        StatusCode::NOT_FOUND,
        "Not found",
        "<p>No such confirmation.</p>",
    )
}

fn bad_link() -> Response {
    guarded(
        StatusCode::FORBIDDEN,
        "Link not valid",
        "<p>This approval link is not valid or has expired. Ask for a new one.</p>",
    )
}

/// The page of a decided confirmation.
fn decided(c: &Value) -> Response {
    let status = c["status"].as_str().unwrap_or("denied");
    let timed_out = c["response"]["channel"] == "system" && c["response"]["text"] == "timeout";
    let (title, text) = match (status, timed_out) {
        ("approved", _) => ("Approved", "You approved this request."),
        (_, true) => (
            "Expired",
            "Nobody decided in time, so this request was denied.",
        ),
        _ => ("Denied", "This request was denied."),
    };
    guarded(
        StatusCode::OK,
        title,
        &format!(
            "<p>Status: <strong id=\"status\">{}</strong></p><p>{text} You can close this page.</p>",
            escape(status)
        ),
    )
}

async fn show(
    State(s): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let Ok(Path(id)) = path else {
        return not_found();
    };
    approvals::sweep(&s);
    let Some(c) = lock(&s.data).confirmations.get(&id).cloned() else {
        return not_found();
    };
    let query = query.unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let link = LinkParams::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if !link.valid_for(&s, &id) {
        return bad_link();
    }
    if c.status != "pending" {
        return decided(&c.to_json());
    }
    let message = if c.encrypted {
        "<p id=\"message\" class=\"encrypted\"><em>Encrypted message</em> — only an approver \
         holding the configuration's key can read it; the sandbox does not decrypt it.</p>"
            .to_string()
    } else {
        format!(
            "<blockquote id=\"message\" style=\"white-space:pre-wrap;border-left:4px solid #bbb;\
             margin:1rem 0;padding:.5rem 1rem\">{}</blockquote>",
            escape(&c.message)
        )
    };
    let hidden = format!(
        "<input type=\"hidden\" name=\"e\" value=\"{}\"><input type=\"hidden\" name=\"n\" \
         value=\"{}\"><input type=\"hidden\" name=\"s\" value=\"{}\">",
        escape(&link.exp),
        escape(&link.nonce),
        escape(&link.sig)
    );
    let base = format!("/hosted/confirmations/{}", escape(&id));
    let content = format!(
        "<p>You are asked to approve this request:</p>{message}\
         <p>Status: <strong id=\"status\">pending</strong> · decide before {}</p>\
         <form method=\"post\" action=\"{base}/approve\">{hidden}\
         <label>Note (optional) <input name=\"text\" maxlength=\"1000\"></label> \
         <button id=\"approve\">Approve</button></form>\
         <form method=\"post\" action=\"{base}/deny\">{hidden}\
         <button id=\"deny\">Deny</button></form>",
        state::time(c.timeout_at)
    );
    guarded(StatusCode::OK, "Approve this request?", &content)
}

async fn decide(
    s: Arc<Shared>,
    path: Result<Path<String>, PathRejection>,
    body: Body,
    decision: Decision,
) -> Response {
    let Ok(Path(id)) = path else {
        return not_found();
    };
    let form = form(body).await;
    let link = LinkParams::from_pairs(form.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if !link.valid_for(&s, &id) {
        return bad_link();
    }
    let text = field(&form, "text").map(|t| t.chars().take(1000).collect::<String>());
    match approvals::decide(&s, &id, decision, "browser", text) {
        Ok(c) => decided(&c),
        Err(DecideError::NotFound) => not_found(),
        Err(DecideError::NotPending(st)) => guarded(
            StatusCode::CONFLICT,
            "Already decided",
            &format!(
                "<p>Status: <strong id=\"status\">{}</strong></p><p>This request was already decided.</p>",
                escape(st)
            ),
        ),
    }
}

async fn approve(
    State(s): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    decide(s, path, body, Decision::Approve).await
}

async fn deny(
    State(s): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Response {
    decide(s, path, body, Decision::Deny).await
}

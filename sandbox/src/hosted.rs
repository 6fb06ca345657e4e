//! The hosted pages: where a person (or a test) completes a verification request, a session or
//! a single verification in test mode.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use crate::envelope::{escape, html, MAX_BODY_BYTES};
use crate::state::{self, lock, RequestRecord, VerificationRecord};
use crate::Shared;

/// The hosted routes.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/hosted/requests/{id}", get(request_page))
        .route("/hosted/requests/{id}/complete", post(complete_request))
        .route("/hosted/requests/{id}/finish", post(finish_request))
        .route(
            "/hosted/requests/{id}/assets/{index}/complete",
            post(complete_one),
        )
        .route("/hosted/sessions/{id}", get(session_page))
        .route("/hosted/sessions/{id}/complete", post(complete_session))
        .route("/hosted/verifications/{id}", get(verification_page))
        .route(
            "/hosted/verifications/{id}/complete",
            post(complete_verification),
        )
}

/// Why a hosted action could not happen.
#[derive(Debug)]
pub enum HostedError {
    /// No such request (or asset).
    NotFound,
    /// The request is over (expired or cancelled) or the input is not acceptable.
    Refused(String),
}

impl IntoResponse for HostedError {
    fn into_response(self) -> Response {
        match self {
            HostedError::NotFound => page(
                StatusCode::NOT_FOUND,
                "Not found",
                "<p>No such verification.</p>",
            ),
            HostedError::Refused(why) => page(
                StatusCode::CONFLICT,
                "Cannot continue",
                &format!("<p>{}</p>", escape(&why)),
            ),
        }
    }
}

pub(crate) fn page(status: StatusCode, title: &str, content: &str) -> Response {
    html(
        status,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{t} · proof.holdings sandbox</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;\
             line-height:1.4;overflow-wrap:anywhere}}\
             fieldset{{margin:.5rem 0;border:1px solid #bbb;border-radius:6px}}legend{{font-weight:600}}\
             .tag{{color:#a60}}.need{{font-weight:normal;font-size:.85em;padding:0 .4em;border-radius:4px}}\
             .required{{background:#fde2e1}}.option{{background:#e1ecfd}}.optional{{background:#eee}}\
             .or{{margin:.25rem 0 .25rem 1rem;font-weight:600;color:#555}}.done{{color:#060}}\
             .shortcut{{margin-top:1.5rem}}</style></head><body>\
             <p class=\"tag\">proof.holdings — sandbox (test mode, nothing is sent)</p><h1>{t}</h1>{content}</body></html>",
            t = escape(title),
        ),
    )
}

fn ids(path: Result<Path<String>, PathRejection>) -> Result<String, HostedError> {
    path.map(|Path(id)| id).map_err(|_| HostedError::NotFound)
}

pub(crate) async fn form(body: Body) -> Vec<(String, String)> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .unwrap_or_default();
    url::form_urlencoded::parse(&bytes).into_owned().collect()
}

pub(crate) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, v)| k == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

/// Marks a request expired if its time is up; posts `verification_request.expired` once.
pub fn expire_if_due(s: &Arc<Shared>, id: &str) {
    let event = {
        let mut data = lock(&s.data);
        let Some(r) = data.requests.get_mut(id) else {
            return;
        };
        if r.is_terminal() || r.expires_at > state::now() {
            return;
        }
        r.status = "expired";
        r.updated_at = state::now();
        (
            r.event("verification_request.expired"),
            r.callback_url.clone(),
        )
    };
    s.send_webhook(event.0, event.1.as_deref());
}

/// Verifies asset `index` of request `id` with the given (or a default) identifier and
/// channel; returns the request's JSON.
fn complete_asset(
    s: &Arc<Shared>,
    id: &str,
    index: usize,
    identifier: Option<&str>,
    channel: Option<&str>,
) -> Result<Value, HostedError> {
    expire_if_due(s, id);
    let event = {
        let mut data = lock(&s.data);
        let data = &mut *data;
        let r = data.requests.get_mut(id).ok_or(HostedError::NotFound)?;
        if r.is_terminal() {
            return Err(HostedError::Refused(format!(
                "This verification request is {}.",
                r.status
            )));
        }
        let asset = r.assets.get(index).ok_or(HostedError::NotFound)?;
        if asset.status == "verified" {
            return Ok(r.to_json(&s.base_url));
        }
        let identifier = asset
            .identifier
            .clone()
            .or_else(|| identifier.map(str::to_string))
            .unwrap_or_else(|| state::default_identifier(&asset.kind).to_string());
        if !state::identifier_ok(&asset.kind, &identifier) {
            return Err(HostedError::Refused(format!(
                "'{identifier}' is not a valid {}.",
                asset.kind
            )));
        }
        let channels = state::channels_of(&asset.kind).unwrap_or(&[]);
        let channel = channel
            .map(str::to_string)
            .or_else(|| asset.channel.clone())
            .or_else(|| asset.allowed_channels.first().cloned())
            .or_else(|| channels.first().map(|c| c.to_string()))
            .unwrap_or_default();
        let allowed = if asset.allowed_channels.is_empty() {
            channels.contains(&channel.as_str())
        } else {
            asset.allowed_channels.contains(&channel)
        };
        if !allowed {
            return Err(HostedError::Refused(format!(
                "Channel '{channel}' is not allowed here."
            )));
        }
        let mut v = VerificationRecord::new(&asset.kind, &channel, &identifier, r.test);
        v.callback_url = r.callback_url.clone();
        v.lifetime_secs = r.proof_expiry_days * 86_400;
        let vid = v.id.clone();
        data.verification_order.push(vid.clone());
        data.verifications.insert(vid.clone(), v);
        let proof = s.issue(data, &vid).ok_or(HostedError::NotFound)?;
        let r = data.requests.get_mut(id).ok_or(HostedError::NotFound)?;
        let asset = r.assets.get_mut(index).ok_or(HostedError::NotFound)?;
        asset.status = "verified";
        asset.identifier = Some(identifier);
        asset.verification_id = Some(vid);
        asset.verified_at = Some(proof.verified_at);
        asset.verified_channel = Some(channel);
        asset.proof_token = Some(proof.token);
        let now = state::now();
        r.updated_at = now;
        let any = r.assets.iter().any(|a| a.status == "verified");
        let all_required = r
            .assets
            .iter()
            .filter(|a| a.required)
            .all(|a| a.status == "verified");
        r.status = if any && all_required {
            r.completed_at = Some(now);
            "completed"
        } else if any {
            "partial"
        } else {
            "pending"
        };
        let event = (r.status == "completed").then(|| {
            (
                r.event("verification_request.completed"),
                r.callback_url.clone(),
                r.confirmation_event(),
            )
        });
        (event, r.to_json(&s.base_url))
    };
    if let Some((payload, callback, confirmation)) = event.0 {
        s.send_webhook(payload, callback.as_deref());
        if let Some(c) = confirmation {
            s.send_webhook(c, callback.as_deref());
        }
    }
    Ok(event.1)
}

/// Completes every pending asset of a request.
pub fn complete_all(s: &Arc<Shared>, id: &str) -> Result<Value, HostedError> {
    let pending: Vec<usize> = {
        let data = lock(&s.data);
        let r = data.requests.get(id).ok_or(HostedError::NotFound)?;
        if r.is_terminal() {
            return Err(HostedError::Refused(format!(
                "This verification request is {}.",
                r.status
            )));
        }
        r.assets
            .iter()
            .enumerate()
            .filter(|(_, a)| a.status != "verified")
            .map(|(i, _)| i)
            .collect()
    };
    let mut last = None;
    for i in pending {
        let v = complete_asset(s, id, i, None, None)?;
        // With optional assets, the first one verified may already complete the request.
        let done = v
            .get("status")
            .and_then(Value::as_str)
            .is_some_and(|st| matches!(st, "completed" | "expired" | "cancelled"));
        last = Some(v);
        if done {
            break;
        }
    }
    match last {
        Some(v) => Ok(v),
        None => {
            let data = lock(&s.data);
            let r = data.requests.get(id).ok_or(HostedError::NotFound)?;
            Ok(r.to_json(&s.base_url))
        }
    }
}

/// Where to send the person after a step: `redirect_url` once completed, else back to the page.
fn after(s: &Shared, id: &str, request: &Value) -> Response {
    let status = request
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("pending");
    let redirect = request.get("redirect_url").and_then(Value::as_str);
    let target = match (status, redirect) {
        ("completed", Some(r)) => match url::Url::parse(r) {
            Ok(mut u) => {
                u.query_pairs_mut()
                    .append_pair("verification_request_id", id)
                    .append_pair("status", status);
                u.to_string()
            }
            Err(_) => {
                return page(
                    StatusCode::OK,
                    "Verified",
                    "<p>All done. You can close this page.</p>",
                )
            }
        },
        ("completed", None) => {
            return page(
                StatusCode::OK,
                "Verified",
                "<p>All done. You can close this page.</p>",
            )
        }
        _ => format!("{}/hosted/requests/{id}", s.base_url),
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(&target) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => page(
            StatusCode::OK,
            "Verified",
            "<p>All done. You can close this page.</p>",
        ),
    }
}

/// What an asset of a request means for the person: the words on its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Needed to finish.
    Required,
    /// One of several alternatives, any one of which finishes (no asset is required).
    Alternative,
    /// Not needed to finish: other assets are required, this one is extra.
    Optional,
}

/// How a request's assets are grouped on the page. The sandbox completes a request once an
/// asset is verified and every required one is: with no required asset, any one finishes it
/// (how the gateway asks for an any-of policy); with some, the others are extras.
fn needs(r: &RequestRecord) -> Vec<Need> {
    let any_required = r.assets.iter().any(|a| a.required);
    r.assets
        .iter()
        .map(|a| match (a.required, any_required, r.assets.len()) {
            (true, _, _) | (false, false, 1) => Need::Required,
            (false, false, _) => Need::Alternative,
            (false, true, _) => Need::Optional,
        })
        .collect()
}

/// The asset type in words: "email address", "phone number", …
fn noun(kind: &str) -> &str {
    match kind {
        "phone" => "phone number",
        "waba" => "WhatsApp Business number",
        "email" => "email address",
        "domain" => "domain",
        "social" => "social account",
        "wallet" => "wallet",
        "account" => "account",
        "telegram_bot" => "Telegram bot",
        other => other,
    }
}

/// A non-blank string field of `action_context`.
fn context_text<'a>(r: &'a RequestRecord, key: &str) -> Option<&'a str> {
    r.action_context
        .as_ref()
        .and_then(|c| c.get(key))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// One asset's box: what it is, whether it is needed, and its form (or its outcome).
fn asset_box(r: &RequestRecord, base: &str, i: usize, need: Need) -> String {
    let a = &r.assets[i];
    let noun = noun(&a.kind);
    let label = match need {
        Need::Required => "<span class=\"need required\">required</span>",
        Need::Alternative => "<span class=\"need option\">one option</span>",
        Need::Optional => "<span class=\"need optional\">optional, not needed to continue</span>",
    };
    let mut heading = capitalized(noun);
    if let Some(v) = &a.identifier {
        heading.push_str(&format!(" <code>{}</code>", escape(v)));
    }
    let body = if a.status == "verified" {
        format!(
            "<p class=\"done\">Verified{}.</p>",
            a.verified_channel
                .as_deref()
                .map(|c| format!(" by {}", escape(c)))
                .unwrap_or_default()
        )
    } else if r.is_terminal() {
        format!("<p>Not verified (the request is {}).</p>", r.status)
    } else {
        let channels: Vec<String> = if a.allowed_channels.is_empty() {
            state::channels_of(&a.kind)
                .unwrap_or(&[])
                .iter()
                .map(|c| c.to_string())
                .collect()
        } else {
            a.allowed_channels.clone()
        };
        let options: String = channels
            .iter()
            .map(|c| {
                let selected = if a.channel.as_deref() == Some(c) {
                    " selected"
                } else {
                    ""
                };
                format!("<option{selected}>{}</option>", escape(c))
            })
            .collect();
        let (ident, button) = match &a.identifier {
            Some(v) => (String::new(), format!("Verify {}", escape(v))),
            None => (
                format!(
                    "<label>Your {noun} <input name=\"identifier\" placeholder=\"{}\"></label> ",
                    escape(state::default_identifier(&a.kind))
                ),
                format!("Verify this {noun}"),
            ),
        };
        format!(
            "<form method=\"post\" action=\"{base}/assets/{i}/complete\">{ident}\
             <label>via <select name=\"channel\">{options}</select></label> \
             <button>{button}</button></form>"
        )
    };
    format!("<fieldset class=\"asset\"><legend>{heading} {label}</legend>{body}</fieldset>")
}

/// What a `confirmation` request asks the person to approve: amount, currency, entity.
fn confirmation_facts(r: &RequestRecord) -> String {
    let ctx = r.action_context.as_ref();
    let amount = ctx.and_then(|c| c.get("amount")).and_then(|a| match a {
        Value::Number(n) => Some(n.to_string()),
        Value::String(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
        _ => None,
    });
    let mut facts = String::new();
    if let Some(a) = amount {
        let currency = context_text(r, "currency").unwrap_or("");
        facts.push_str(&format!(
            "<li>Amount: <strong id=\"amount\">{} {}</strong></li>",
            escape(&a),
            escape(currency)
        ));
    }
    if let Some(e) = context_text(r, "entity") {
        facts.push_str(&format!(
            "<li>To: <strong id=\"entity\">{}</strong></li>",
            escape(e)
        ));
    }
    format!(
        "<p>Verifying below <strong>approves</strong> this action.</p>{}",
        if facts.is_empty() {
            String::new()
        } else {
            format!("<ul class=\"facts\">{facts}</ul>")
        }
    )
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

async fn request_page(
    State(s): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HostedError> {
    let id = ids(path)?;
    expire_if_due(&s, &id);
    let data = lock(&s.data);
    let r = data.requests.get(&id).ok_or(HostedError::NotFound)?;
    let title = context_text(r, "title").unwrap_or("Verify your identity");
    let mut content = String::new();
    if let Some(d) = context_text(r, "description") {
        content.push_str(&format!("<p class=\"description\">{}</p>", escape(d)));
    }
    if r.action_type == "confirmation" {
        content.push_str(&confirmation_facts(r));
    }
    content.push_str(&format!(
        "<p>Status: <strong id=\"status\">{}</strong></p>",
        r.status
    ));
    let base = format!("/hosted/requests/{}", escape(&id));
    let needs = needs(r);
    let group =
        |need: Need| -> Vec<usize> { (0..needs.len()).filter(|&i| needs[i] == need).collect() };
    let (required, alternatives, optional) = (
        group(Need::Required),
        group(Need::Alternative),
        group(Need::Optional),
    );
    if !required.is_empty() {
        let intro = if required.len() == 1 {
            "Verify this to continue:"
        } else {
            "Verify each of these to continue:"
        };
        content.push_str(&format!(
            "<section id=\"required\"><p class=\"intro\">{intro}</p>"
        ));
        for &i in &required {
            content.push_str(&asset_box(r, &base, i, Need::Required));
        }
        content.push_str("</section>");
    }
    if !alternatives.is_empty() {
        content.push_str(
            "<section id=\"any-of\"><p class=\"intro\">Verify <strong>any one of these</strong> \
             to continue (one is enough):</p>",
        );
        for (n, &i) in alternatives.iter().enumerate() {
            if n > 0 {
                content.push_str("<p class=\"or\">or</p>");
            }
            content.push_str(&asset_box(r, &base, i, Need::Alternative));
        }
        content.push_str("</section>");
    }
    if !optional.is_empty() {
        content.push_str(
            "<section id=\"optional\"><p class=\"intro\">Optional: you can also verify these, \
             but you do not need to.</p>",
        );
        for &i in &optional {
            content.push_str(&asset_box(r, &base, i, Need::Optional));
        }
        content.push_str("</section>");
    }
    if !r.is_terminal() {
        let everything = if alternatives.is_empty() {
            "Verify everything (test mode)"
        } else {
            "Verify the first option (test mode)"
        };
        content.push_str(&format!(
            "<form class=\"shortcut\" method=\"post\" action=\"{base}/complete\">\
             <button id=\"complete-all\">{everything}</button></form>"
        ));
        if r.partial_ok && r.status == "partial" {
            content.push_str(&format!(
                "<form method=\"post\" action=\"{base}/finish\"><button>Finish with what is verified</button></form>"
            ));
        }
    }
    Ok(page(StatusCode::OK, title, &content))
}

async fn complete_request(
    State(s): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HostedError> {
    let id = ids(path)?;
    let v = complete_all(&s, &id)?;
    Ok(after(&s, &id, &v))
}

async fn finish_request(
    State(s): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HostedError> {
    let id = ids(path)?;
    expire_if_due(&s, &id);
    let (v, event) = {
        let mut data = lock(&s.data);
        let r = data.requests.get_mut(&id).ok_or(HostedError::NotFound)?;
        if !(r.partial_ok && r.status == "partial") {
            return Err(HostedError::Refused(
                "Only a partial request that allows it can be finished early.".into(),
            ));
        }
        r.status = "completed";
        r.completed_at = Some(state::now());
        r.updated_at = state::now();
        (
            r.to_json(&s.base_url),
            (
                r.event("verification_request.completed"),
                r.callback_url.clone(),
                r.confirmation_event(),
            ),
        )
    };
    s.send_webhook(event.0, event.1.as_deref());
    if let Some(c) = event.2 {
        s.send_webhook(c, event.1.as_deref());
    }
    Ok(after(&s, &id, &v))
}

async fn complete_one(
    State(s): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Body,
) -> Result<Response, HostedError> {
    let (id, index) = path.map(|Path(p)| p).map_err(|_| HostedError::NotFound)?;
    let index: usize = index.parse().map_err(|_| HostedError::NotFound)?;
    let form = form(body).await;
    let v = complete_asset(
        &s,
        &id,
        index,
        field(&form, "identifier"),
        field(&form, "channel"),
    )?;
    Ok(after(&s, &id, &v))
}

fn single_page(title: &str, status: &str, action: &str) -> Response {
    let form = if status == "pending" {
        format!(
            "<form method=\"post\" action=\"{action}\"><button>Verify (test mode)</button></form>"
        )
    } else {
        String::new()
    };
    page(
        StatusCode::OK,
        title,
        &format!(
            "<p>Status: <strong id=\"status\">{}</strong></p>{form}",
            escape(status)
        ),
    )
}

async fn session_page(
    State(s): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HostedError> {
    let id = ids(path)?;
    let data = lock(&s.data);
    let session = data.sessions.get(&id).ok_or(HostedError::NotFound)?;
    let status = crate::sessions::to_json(&s.base_url, session, &data, false)["status"]
        .as_str()
        .unwrap_or("pending")
        .to_string();
    let action = format!("/hosted/sessions/{}/complete", escape(&id));
    let form = if status == "pending" {
        let phone = match &session.phone {
            Some(p) => format!("<p>Phone: {}</p>", escape(p)),
            None => format!(
                "<label>Your phone number <input name=\"phone\" placeholder=\"{}\"></label> ",
                state::default_identifier("phone")
            ),
        };
        format!(
            "<p>In the real service this is a chat with the proof.holdings {} bot, which asks for \
             your number.</p><form method=\"post\" action=\"{action}\">{phone}\
             <button>Share and verify (test mode)</button></form>",
            escape(&session.channel)
        )
    } else {
        String::new()
    };
    Ok(page(
        StatusCode::OK,
        "Confirm your phone",
        &format!(
            "<p>Status: <strong id=\"status\">{}</strong></p>{form}",
            escape(&status)
        ),
    ))
}

fn verify_single(s: &Arc<Shared>, vid: &str) -> Result<(), HostedError> {
    {
        let data = lock(&s.data);
        let v = data.verifications.get(vid).ok_or(HostedError::NotFound)?;
        if v.status != "pending" {
            return Ok(());
        }
    }
    let mut data = lock(&s.data);
    s.issue(&mut data, vid)
        .map(|_| ())
        .ok_or(HostedError::NotFound)
}

async fn complete_session(
    State(s): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, HostedError> {
    let id = ids(path)?;
    let form = form(body).await;
    crate::sessions::complete(&s, &id, field(&form, "phone")).map_err(|e| match e {
        crate::sessions::CompleteError::NotFound => HostedError::NotFound,
        crate::sessions::CompleteError::Refused(why) => HostedError::Refused(why),
    })?;
    Ok(page(
        StatusCode::OK,
        "Verified",
        "<p>Your phone is confirmed. You can close this page.</p>",
    ))
}

async fn verification_page(
    State(s): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HostedError> {
    let id = ids(path)?;
    let data = lock(&s.data);
    let v = data.verifications.get(&id).ok_or(HostedError::NotFound)?;
    Ok(single_page(
        &format!("Verify your {}", v.kind),
        v.status,
        &format!("/hosted/verifications/{}/complete", escape(&id)),
    ))
}

async fn complete_verification(
    State(s): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HostedError> {
    let id = ids(path)?;
    verify_single(&s, &id)?;
    Ok(page(
        StatusCode::OK,
        "Verified",
        "<p>Verified. You can close this page.</p>",
    ))
}

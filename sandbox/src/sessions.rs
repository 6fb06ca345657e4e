//! Phone-first sessions: `POST /api/v1/sessions`, `GET /api/v1/sessions[/{id}]`, and their
//! completion on the sandbox's stand-in for the messenger bot.
//!
//! Both forms of creation are served. With a `phone` (what `openapi.json` requires) the session
//! has its pending phone verification from the start. Without one (what the official SDKs send:
//! the person shares the number in the chat) the session is only a deep link and a start code;
//! it learns the phone, and gets its verification and proof, when completed. Responses carry
//! the fields of both sources: `openapi.json`'s `Session` (`id`, `status`, `challenge`, `proof`,
//! `created_at`, `expires_at`) and the SDKs' (`channel`, `deep_link`, `qr_code`, `qr_text`,
//! `instructions`, `phone_number`, `verification_id`, `verified_at`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use proofgate_core::identifier;
use serde_json::{json, Value};

use crate::api::{check_identifier, page, page_params, ApiKey};
use crate::envelope::{self, json_response, opt_object, opt_str, ApiErr};
use crate::state::{self, lock, Data, SessionRecord, VerificationRecord};
use crate::Shared;

type R = Result<Response, ApiErr>;

/// The messengers a session can use.
const CHANNELS: &[&str] = &["whatsapp", "telegram", "viber", "sms"];

/// How long a session without a phone waits for the person (the service's phone challenge TTL).
const SESSION_TTL_SECS: i64 = 600;

/// Where the person goes: in the sandbox, a page standing in for the messenger bot.
pub fn deep_link(base_url: &str, id: &str) -> String {
    format!("{base_url}/hosted/sessions/{id}")
}

/// A session as the API shows it; `created` adds what only the creation response carries.
pub fn to_json(base_url: &str, session: &SessionRecord, data: &Data, created: bool) -> Value {
    let verification = session
        .verification_id
        .as_ref()
        .and_then(|id| data.verifications.get(id));
    let proof = session
        .verification_id
        .as_ref()
        .and_then(|id| data.proofs.get(id));
    let status = match verification.map(|v| v.status) {
        Some("verified") => "verified",
        _ if session.expires_at <= state::now() => "expired",
        _ => "pending",
    };
    let link = deep_link(base_url, &session.id);
    let instructions = format!(
        "Open the link (or scan the QR code) and send the code {} to our {} bot; share your phone \
         number when it asks (sandbox: the link opens a page that completes the session)",
        session.code, session.channel
    );
    let mut out = json!({
        "id": session.id,
        "status": status,
        "channel": session.channel,
        "deep_link": link,
        "qr_text": link,
        // The sandbox renders no image: the QR code's content stands in for it.
        "qr_code": link,
        "instructions": instructions,
        "created_at": state::time(session.created_at),
        "expires_at": state::time(session.expires_at),
    });
    if let Some(phone) = &session.phone {
        out["phone_number"] = json!(phone);
    }
    if let Some(v) = verification {
        out["verification_id"] = json!(v.id);
        if let Some(at) = v.verified_at {
            out["verified_at"] = json!(state::time(at));
        }
    }
    if created {
        out["challenge"] = json!({
            "code": session.code,
            "instruction": instructions,
            "expires_at": state::time(session.expires_at),
            "deep_link": link,
            "send_to": format!("the proof.holdings {} bot", session.channel),
        });
    }
    if let Some(p) = proof {
        out["proof"] = json!({"token": p.token, "expires_at": state::time(p.exp)});
    }
    out
}

pub(crate) async fn create(State(s): State<Arc<Shared>>, key: ApiKey, body: Body) -> R {
    let obj = envelope::read_object(body).await?;
    let phone = opt_str(&obj, "phone", 50)?;
    let channel = opt_str(&obj, "channel", 50)?.unwrap_or_else(|| "whatsapp".into());
    if !CHANNELS.contains(&channel.as_str()) {
        return Err(ApiErr::field(
            "channel",
            "Invalid enum value",
            "invalid_enum_value",
        ));
    }
    opt_str(&obj, "profile_id", 64)?;
    opt_object(&obj, "context")?;
    let client_metadata = opt_object(&obj, "client_metadata")?.map(Value::Object);
    if let Some(p) = &phone {
        check_identifier("phone", p)?;
    }
    let now = state::now();
    let verification = phone
        .as_ref()
        .map(|p| VerificationRecord::new("phone", &channel, p, key.test));
    let session = SessionRecord {
        id: state::object_id(),
        channel,
        code: verification
            .as_ref()
            .map_or_else(state::challenge_code, |v| v.code.clone()),
        phone: phone.map(|p| identifier::normalize("phone", &p)),
        verification_id: verification.as_ref().map(|v| v.id.clone()),
        client_metadata,
        test: key.test,
        created_at: now,
        expires_at: verification
            .as_ref()
            .map_or(now + SESSION_TTL_SECS, |v| v.challenge_expires_at),
    };
    let mut data = lock(&s.data);
    if let Some(v) = verification {
        data.verification_order.push(v.id.clone());
        data.verifications.insert(v.id.clone(), v);
    }
    let body = to_json(&s.base_url, &session, &data, true);
    data.session_order.push(session.id.clone());
    data.sessions.insert(session.id.clone(), session);
    Ok(json_response(StatusCode::CREATED, body))
}

pub(crate) async fn get_one(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = path
        .map(|Path(id)| id)
        .map_err(|_| ApiErr::not_found("Session"))?;
    let data = lock(&s.data);
    let session = data
        .sessions
        .get(&id)
        .ok_or_else(|| ApiErr::not_found("Session"))?;
    Ok(json_response(
        StatusCode::OK,
        to_json(&s.base_url, session, &data, false),
    ))
}

pub(crate) async fn list(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let (p, limit) = page_params(&q)?;
    let data = lock(&s.data);
    let items = data
        .session_order
        .iter()
        .rev()
        .filter_map(|id| data.sessions.get(id))
        .map(|session| to_json(&s.base_url, session, &data, false))
        .collect();
    Ok(json_response(StatusCode::OK, page(items, p, limit)))
}

/// Why a session could not be completed.
#[derive(Debug)]
pub enum CompleteError {
    /// No such session.
    NotFound,
    /// Expired, or the phone given is not a phone number.
    Refused(String),
}

/// Completes a session as the person would in the chat: shares `phone` (a session created with
/// one keeps it; without either, a sandbox number is used), is verified, and the proof is
/// issued; `verification.completed` is posted. Completing a verified session again changes
/// nothing. Returns the session as the API shows it.
pub fn complete(s: &Arc<Shared>, id: &str, phone: Option<&str>) -> Result<Value, CompleteError> {
    let event = {
        let mut data = lock(&s.data);
        let data = &mut *data;
        let session = data.sessions.get(id).ok_or(CompleteError::NotFound)?;
        let existing = session
            .verification_id
            .as_ref()
            .and_then(|v| data.verifications.get(v));
        if existing.is_some_and(|v| v.status == "verified") {
            return Ok(to_json(&s.base_url, session, data, false));
        }
        if session.expires_at <= state::now() {
            return Err(CompleteError::Refused("The session has expired".into()));
        }
        let vid = match existing {
            Some(v) if v.status == "pending" => v.id.clone(),
            Some(v) => {
                return Err(CompleteError::Refused(format!(
                    "The verification is {}",
                    v.status
                )))
            }
            None => {
                let phone = phone
                    .map(str::to_string)
                    .or_else(|| session.phone.clone())
                    .unwrap_or_else(|| state::default_identifier("phone").to_string());
                if !state::identifier_ok("phone", &phone) {
                    return Err(CompleteError::Refused(
                        "That is not a phone number in international format".into(),
                    ));
                }
                let v = VerificationRecord::new("phone", &session.channel, &phone, session.test);
                let vid = v.id.clone();
                data.verification_order.push(vid.clone());
                data.verifications.insert(vid.clone(), v);
                if let Some(session) = data.sessions.get_mut(id) {
                    session.phone = Some(identifier::normalize("phone", &phone));
                    session.verification_id = Some(vid.clone());
                }
                vid
            }
        };
        let proof = s.issue(data, &vid).ok_or(CompleteError::NotFound)?;
        let session = data.sessions.get(id).ok_or(CompleteError::NotFound)?;
        let v = data
            .verifications
            .get(&vid)
            .ok_or(CompleteError::NotFound)?;
        json!({
            "event": "verification.completed",
            "test": v.test,
            "client_metadata": session.client_metadata.clone().unwrap_or(Value::Null),
            "data": {
                "id": v.id, "type": v.kind, "channel": v.channel, "status": "verified",
                "session_id": session.id,
                "verified_at": state::time(proof.verified_at), "proof_token": proof.token,
            },
        })
    };
    s.send_webhook(event, None);
    let data = lock(&s.data);
    let session = data.sessions.get(id).ok_or(CompleteError::NotFound)?;
    Ok(to_json(&s.base_url, session, &data, false))
}

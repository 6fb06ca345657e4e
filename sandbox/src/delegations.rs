//! Delegations (`spec/proof-api/AGENTS-AND-APPROVALS.md` §1): a domain's signed authorization
//! of one artifact for a set of scopes, minted from the domain's control proof.
//!
//! - **Control proofs.** Every domain proof the sandbox issues gets a control-proof handle,
//!   `ph_ctl_<32 hex>`, shown as `public_proof_id` on the verification and on
//!   `GET /api/v1/proofs/{id}/status` (the sandbox's choice: the real service's way of showing
//!   it is not documented). `POST /api/v1/delegations` takes that handle as `control_proof`;
//!   the proof id (the verification id) or the domain proof token itself are accepted too.
//!   `POST /api/v1/proofs/{ph_ctl_…}/revoke` revokes the control proof like its id does.
//! - **Create** (`{control_proof, delegate: {type: url|purl, value}, scope: [..],
//!   expires_in?}`): the control proof must be a live domain proof (else 400; unknown: 404);
//!   `principal` is its domain. `delegate.value` is canonicalized ([`canonical_delegate`]); a
//!   value that cannot be is a 400. Scopes must match `^[a-z][a-z0-9]*(-[a-z0-9]+)*$` (≤ 64
//!   characters, 1–32 entries) and are deduplicated and sorted. `expires_in` (seconds) defaults
//!   to the control proof's remaining life; beyond it is a 400, never truncated.
//! - **Token**: a compact JWS (`{"alg":"RS256","typ":"JWT","kid"}`) signed by the sandbox's
//!   delegation key, published in the JWKS with `proof_purpose: "delegation"`, `not_before`
//!   (the sandbox's start) and `max_token_lifetime` (366 days). Claims exactly: `iss`, `sub`
//!   (the `ph_dlg_<32 hex>` handle), `token_type: "delegation"`, `delegation_schema_version:
//!   "1.0"`, `principal`, `delegate` (canonical), `scope`, `control_proof`, `iat`, `exp`, and
//!   `status.status_list {idx, uri}` when the status list is on. The key is fresh each start
//!   (delegations live in memory, as everything else).
//! - **Status**: each delegation has its own slot in the status list: 1 once revoked (by its
//!   own revoke or by revoking its control proof: the cascade), 2 while suspended
//!   ([`crate::SandboxHandle::suspend_delegation`]). `status` is only the owner's own revoke;
//!   `effective_status` (`active | revoked | expired | suspended`) folds in expiry and the
//!   control proof; `is_valid` ⇔ `active`.
//! - `GET /api/v1/delegations/{id}` by record id or handle (with the token); the list
//!   (`page`, `limit`, `status` = stored status) leaves tokens out. `POST …/{id}/revoke`
//!   (`{reason?}` or no body; a `null` body is a 400) is idempotent and answers the list item.
//!   `POST /api/v1/proofs/{ph_dlg_…}/revoke` and `GET …/status` work by handle.
//! - `POST /api/v1/proofs/validate` with a delegation token answers `{valid, token_type:
//!   "delegation", delegation, reason?, message?}` with the contract's reasons (`revoked`,
//!   `suspended`, `expired`, `unknown_delegation`, `invalid`, `identifier_unverifiable`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use proofgate_core::identifier;
use serde_json::{json, Map, Value};

use crate::api::{page, page_params, ApiKey};
use crate::envelope::{self, json_response, opt_str, opt_u64, req_str, ApiErr, MAX_BODY_BYTES};
use crate::state::{self, lock, Data};
use crate::Shared;

type R = Result<Response, ApiErr>;

/// The revocation reasons of `CONTRACT.md`.
pub const REASONS: &[&str] = &[
    "user_request",
    "fraud",
    "key_compromise",
    "asset_transferred",
    "other",
];

/// Longest canonical delegate.
const MAX_DELEGATE: usize = 512;

/// A delegation.
#[derive(Debug, Clone)]
pub struct DelegationRecord {
    pub id: String,
    pub handle: String,
    pub principal: String,
    pub delegate_type: &'static str,
    pub delegate: String,
    pub scope: Vec<String>,
    pub control_proof: String,
    pub control_proof_id: String,
    /// `active` or `revoked` (the owner's own revoke only).
    pub status: &'static str,
    pub revoked: Option<(i64, String)>,
    /// The control proof was revoked (the cascade).
    pub control_revoked: bool,
    pub suspended: bool,
    pub test: bool,
    pub issued_at: i64,
    pub expires_at: i64,
    pub token: String,
    pub status_idx: Option<u64>,
}

impl DelegationRecord {
    /// `active | revoked | expired | suspended`.
    pub fn effective_status(&self) -> &'static str {
        if self.status == "revoked" || self.control_revoked {
            "revoked"
        } else if self.expires_at <= state::now() {
            "expired"
        } else if self.suspended {
            "suspended"
        } else {
            "active"
        }
    }

    /// `DelegationDetail` (with the token) or `DelegationListItem`.
    pub fn to_json(&self, with_token: bool) -> Value {
        let effective = self.effective_status();
        let mut v = json!({
            "id": self.id,
            "delegation_id": self.handle,
            "principal": self.principal,
            "delegate": {"type": self.delegate_type, "value": self.delegate},
            "scope": self.scope,
            "control_proof": self.control_proof,
            "status": self.status,
            "revoked_at": self.revoked.as_ref().map(|(at, _)| state::time(*at)),
            "revoked_reason": self.revoked.as_ref().map(|(_, r)| r.clone()),
            "environment": if self.test { "test" } else { "production" },
            "issued_at": state::time(self.issued_at),
            "expires_at": state::time(self.expires_at),
            "created_at": state::time(self.issued_at),
            "effective_status": effective,
            "is_valid": effective == "active",
        });
        if with_token {
            v["token"] = json!(self.token);
        }
        v
    }
}

/// Revoking control proof `proof_id` revokes its delegations: their slots flip to 1.
pub fn cascade(data: &mut Data, proof_id: &str) {
    let slots: Vec<Option<u64>> = data
        .delegations
        .values_mut()
        .filter(|d| d.control_proof_id == proof_id)
        .map(|d| {
            d.control_revoked = true;
            d.status_idx
        })
        .collect();
    for idx in slots {
        data.set_slot(idx, 1);
    }
}

// ----- canonical forms -----

/// The canonical form of a delegate of `kind` (`url` or `purl`), as the issuer and the
/// official verifier write it, or why `value` has none.
///
/// - `url`: WHATWG parsing (IDN hosts to punycode, `/../` resolved, percent-encoding
///   normalized, host lowercased, default port dropped); `https` only, no userinfo, query or
///   fragment; every trailing `/` stripped (so the root is `https://host`). The result is
///   `https://host[:port]path`.
/// - `purl`: `pkg:<type>/<namespace/name>`, trimmed; no whitespace, `?`, `#`, `@version` (a
///   segment-leading `@` is an npm scope) or empty segment; the type lowercased; npm names
///   lowercased; pypi names lowercased with `_` → `-`.
///
/// Either is at most 512 characters.
pub fn canonical_delegate(kind: &str, value: &str) -> Result<String, String> {
    let out = match kind {
        "url" => canonical_url(value)?,
        "purl" => canonical_purl(value)?,
        _ => return Err("type must be url or purl".into()),
    };
    if out.chars().count() > MAX_DELEGATE {
        return Err(format!(
            "the canonical form is longer than {MAX_DELEGATE} characters"
        ));
    }
    Ok(out)
}

fn canonical_url(value: &str) -> Result<String, String> {
    let t = value.trim();
    if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a URL without whitespace is required".into());
    }
    if t.to_ascii_lowercase().starts_with("pkg:") {
        return Err("a pkg: value is a purl, not a url".into());
    }
    let u = url::Url::parse(t).map_err(|e| format!("not a URL: {e}"))?;
    if u.scheme() != "https" {
        return Err("only https URLs can be delegates".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("a delegate URL has no userinfo".into());
    }
    if u.query().is_some() {
        return Err("a delegate URL has no query".into());
    }
    if u.fragment().is_some() {
        return Err("a delegate URL has no fragment".into());
    }
    let host = u.host_str().ok_or("a delegate URL needs a host")?;
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = u.path().trim_end_matches('/');
    Ok(format!("https://{host}{port}{path}"))
}

fn canonical_purl(value: &str) -> Result<String, String> {
    let t = value.trim();
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a purl has no whitespace".into());
    }
    if t.contains('?') || t.contains('#') {
        return Err("a delegate purl has no qualifiers (?) or subpath (#)".into());
    }
    let rest = match t.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("pkg:") => &t[4..],
        _ => return Err("a purl starts with pkg:".into()),
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() < 2 || segments.iter().any(|s| s.is_empty()) {
        return Err("a purl is pkg:<type>/<name> without empty segments".into());
    }
    let kind = segments[0].to_ascii_lowercase();
    let kind_ok = kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b));
    if !kind_ok {
        return Err("the purl type is letters, digits, '+', '.' or '-'".into());
    }
    for seg in &segments[1..] {
        match seg.find('@') {
            None => {}
            Some(0) if seg.len() > 1 && !seg[1..].contains('@') => {}
            Some(_) => return Err("a delegate purl has no @version".into()),
        }
    }
    let mut name = segments[1..].join("/");
    match kind.as_str() {
        "npm" => name = name.to_lowercase(),
        "pypi" => name = name.to_lowercase().replace('_', "-"),
        _ => {}
    }
    Ok(format!("pkg:{kind}/{name}"))
}

/// Whether `scope` is a scope the issuer mints: a lowercase kebab token of at most 64.
pub fn scope_ok(scope: &str) -> bool {
    scope.len() <= 64
        && scope.starts_with(|c: char| c.is_ascii_lowercase())
        && scope.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn parse_scopes(obj: &Map<String, Value>) -> Result<Vec<String>, ApiErr> {
    let items = crate::api::array_field(obj, "scope", 32, "scopes")?;
    let mut scopes = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let s = v.as_str().map(str::trim).ok_or_else(|| {
            ApiErr::field(&format!("scope.{i}"), "Expected string", "invalid_type")
        })?;
        if !scope_ok(s) {
            return Err(ApiErr::field(
                &format!("scope.{i}"),
                "A scope is a lowercase kebab token (^[a-z][a-z0-9]*(-[a-z0-9]+)*$, at most 64 characters)",
                "invalid_string",
            ));
        }
        scopes.push(s.to_string());
    }
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

// ----- lookups -----

/// The record id of `id_or_handle`.
fn record_id(data: &Data, id_or_handle: &str) -> Option<String> {
    if data.delegations.contains_key(id_or_handle) {
        return Some(id_or_handle.to_string());
    }
    data.delegation_handles.get(id_or_handle).cloned()
}

/// The proof id a `control_proof` value names: a `ph_ctl_` handle, a proof id or a token.
fn control_proof_id(data: &Data, value: &str) -> Option<String> {
    if let Some(id) = data.control_handles.get(value) {
        return Some(id.clone());
    }
    if data.proofs.contains_key(value) {
        return Some(value.to_string());
    }
    data.tokens.get(value).cloned()
}

// ----- handlers -----

pub(crate) async fn create(State(s): State<Arc<Shared>>, key: ApiKey, body: Body) -> R {
    let obj = envelope::read_object(body).await?;
    let control = req_str(&obj, "control_proof", 16 * 1024)?;
    let delegate = envelope::opt_object(&obj, "delegate")?
        .ok_or_else(|| ApiErr::field("delegate", "Required", "invalid_type"))?;
    let kind = req_str(&delegate, "type", 10).map_err(|e| e.prefix_fields("delegate."))?;
    let kind: &'static str = match kind.as_str() {
        "url" => "url",
        "purl" => "purl",
        _ => {
            return Err(ApiErr::field(
                "delegate.type",
                "Invalid enum value; expected url or purl",
                "invalid_enum_value",
            ))
        }
    };
    let value = req_str(&delegate, "value", 2048).map_err(|e| e.prefix_fields("delegate."))?;
    let canonical = canonical_delegate(kind, &value).map_err(|why| {
        ApiErr::field(
            "delegate.value",
            format!("Cannot be canonicalized: {why}"),
            "invalid_string",
        )
    })?;
    let scope = parse_scopes(&obj)?;
    let expires_in = opt_u64(&obj, "expires_in")?;
    if expires_in == Some(0) {
        return Err(ApiErr::field(
            "expires_in",
            "Must be at least 1",
            "too_small",
        ));
    }
    let key_ = lock(&s.keys).delegation.clone();
    let now = state::now();
    let mut data = lock(&s.data);
    let data: &mut Data = &mut data;
    let proof_id =
        control_proof_id(data, &control).ok_or_else(|| ApiErr::not_found("Control proof"))?;
    let proof = data
        .proofs
        .get(&proof_id)
        .ok_or_else(|| ApiErr::not_found("Control proof"))?;
    let Some(handle) = proof.handle.clone().filter(|_| proof.kind == "domain") else {
        return Err(ApiErr::field(
            "control_proof",
            "Not a domain control proof",
            "invalid_string",
        ));
    };
    if proof.revoked.is_some() {
        return Err(ApiErr::field(
            "control_proof",
            "The control proof is revoked",
            "invalid_state",
        ));
    }
    let remaining = proof.exp - now;
    if remaining <= 0 {
        return Err(ApiErr::field(
            "control_proof",
            "The control proof has expired",
            "invalid_state",
        ));
    }
    let lifetime = match expires_in.map(|e| i64::try_from(e).unwrap_or(i64::MAX)) {
        None => remaining,
        Some(e) if e <= remaining => e,
        Some(_) => {
            return Err(ApiErr::field(
                "expires_in",
                format!("Beyond the control proof's remaining life ({remaining} s)"),
                "too_big",
            ))
        }
    };
    let principal = data
        .verifications
        .get(&proof_id)
        .map(|v| identifier::normalize("domain", &v.identifier))
        .ok_or_else(|| ApiErr::not_found("Control proof"))?;
    let dlg_handle = format!("ph_dlg_{}", state::hex_id(16));
    let exp = now + lifetime;
    let mut claims = json!({
        "iss": "proof.holdings",
        "sub": dlg_handle,
        "token_type": "delegation",
        "delegation_schema_version": "1.0",
        "principal": principal,
        "delegate": canonical,
        "scope": scope,
        "control_proof": handle,
        "iat": now,
        "exp": exp,
    });
    let status_idx = if s.config.status_list {
        let idx = data.new_slot();
        claims["status"] = json!({"status_list": {"idx": idx, "uri": s.status_list_uri()}});
        Some(idx)
    } else {
        None
    };
    let token = key_.sign_json(&claims);
    let record = DelegationRecord {
        id: state::object_id(),
        handle: dlg_handle.clone(),
        principal,
        delegate_type: kind,
        delegate: canonical,
        scope,
        control_proof: handle,
        control_proof_id: proof_id,
        status: "active",
        revoked: None,
        control_revoked: false,
        suspended: false,
        test: key.test,
        issued_at: now,
        expires_at: exp,
        token: token.clone(),
        status_idx,
    };
    let body = record.to_json(true);
    data.delegation_handles
        .insert(dlg_handle, record.id.clone());
    data.delegation_tokens.insert(token, record.id.clone());
    data.delegation_order.push(record.id.clone());
    data.delegations.insert(record.id.clone(), record);
    Ok(json_response(StatusCode::CREATED, body))
}

pub(crate) async fn get_one(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
) -> R {
    let id = crate::api::id_of(path, "Delegation")?;
    let data = lock(&s.data);
    let d = record_id(&data, &id)
        .and_then(|id| data.delegations.get(&id))
        .ok_or_else(|| ApiErr::not_found("Delegation"))?;
    Ok(json_response(StatusCode::OK, d.to_json(true)))
}

pub(crate) async fn list(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let (p, limit) = page_params(&q)?;
    let status = q
        .get("status")
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    if status.is_some_and(|st| !["active", "revoked"].contains(&st)) {
        return Err(ApiErr::field(
            "status",
            "Invalid enum value; expected active or revoked",
            "invalid_enum_value",
        ));
    }
    let data = lock(&s.data);
    let items: Vec<Value> = data
        .delegation_order
        .iter()
        .rev()
        .filter_map(|id| data.delegations.get(id))
        .filter(|d| status.is_none_or(|st| d.status == st))
        .map(|d| d.to_json(false))
        .collect();
    Ok(json_response(StatusCode::OK, page(items, p, limit)))
}

/// Revokes delegation `id_or_handle` (idempotent: a repeat keeps the first revocation).
/// Returns it as a list item, or `None` if unknown.
pub fn revoke(s: &Shared, id_or_handle: &str, reason: &str) -> Option<Value> {
    let mut data = lock(&s.data);
    let id = record_id(&data, id_or_handle)?;
    let d = data.delegations.get_mut(&id)?;
    if d.status != "revoked" {
        d.status = "revoked";
        d.revoked = Some((state::now(), reason.to_string()));
        let idx = d.status_idx;
        data.set_slot(idx, 1);
    }
    data.delegations.get(&id).map(|d| d.to_json(false))
}

/// Reads a revoke body: none (or blank) is fine, an object may carry `reason`; anything else
/// (`null` included) is a 400. Returns the reason (`user_request` when unset).
pub async fn revoke_reason(body: Body) -> Result<String, ApiErr> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiErr::field("body", "Request body exceeds 10 KB", "too_large"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok("user_request".into());
    }
    let obj = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(ApiErr::field(
                "body",
                "Expected a JSON object or no body",
                "invalid_type",
            ))
        }
        Err(_) => {
            return Err(ApiErr::new(
                StatusCode::BAD_REQUEST,
                "validation_error",
                "Malformed JSON in request body",
            ))
        }
    };
    let reason = opt_str(&obj, "reason", 50)?.unwrap_or_else(|| "user_request".into());
    if !REASONS.contains(&reason.as_str()) {
        return Err(ApiErr::field(
            "reason",
            "Invalid enum value",
            "invalid_enum_value",
        ));
    }
    Ok(reason)
}

pub(crate) async fn revoke_handler(
    State(s): State<Arc<Shared>>,
    _key: ApiKey,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> R {
    let id = crate::api::id_of(path, "Delegation")?;
    let reason = revoke_reason(body).await?;
    let v = revoke(&s, &id, &reason).ok_or_else(|| ApiErr::not_found("Delegation"))?;
    Ok(json_response(StatusCode::OK, v))
}

/// `GET /api/v1/proofs/{ph_dlg_…}/status`.
pub fn status_json(s: &Shared, handle: &str) -> Option<Value> {
    let data = lock(&s.data);
    let d = data.delegations.get(&record_id(&data, handle)?)?;
    let effective = d.effective_status();
    Some(json!({
        "proof_id": d.handle,
        "token_type": "delegation",
        "status": effective,
        "is_valid": effective == "active",
        "is_revoked": effective == "revoked",
        "revoked_at": d.revoked.as_ref().map(|(at, _)| state::time(*at)),
        "revoked_reason": d.revoked.as_ref().map(|(_, r)| r.clone()),
        "expires_at": state::time(d.expires_at),
        "is_expired": d.expires_at <= state::now(),
        "verified_at": state::time(d.issued_at),
    }))
}

/// `POST /api/v1/proofs/validate` for a delegation token, or `None` when `token` is not one.
pub fn validate(s: &Shared, token: &str, identifier: Option<&str>) -> Option<Value> {
    let data = lock(&s.data);
    let record = data
        .delegation_tokens
        .get(token)
        .and_then(|id| data.delegations.get(id));
    let answer = |valid: bool, reason: Option<&str>, message: &str, d: Option<Value>| {
        let mut v = json!({"valid": valid, "token_type": "delegation"});
        if let Some(d) = d {
            v["delegation"] = d;
        }
        if let Some(r) = reason {
            v["reason"] = json!(r);
            v["message"] = json!(message);
            v["error"] = json!(message);
        }
        v
    };
    let Some(d) = record else {
        // Not ours: answer only for what claims to be a delegation token.
        let claims = proofgate_core::claims::decode_unverified(token)?;
        if claims.payload.get("token_type").and_then(Value::as_str) != Some("delegation") {
            return None;
        }
        let major_one = claims
            .payload
            .get("delegation_schema_version")
            .and_then(Value::as_str)
            .is_some_and(|v| v == "1" || v.starts_with("1."));
        return Some(if major_one {
            answer(
                false,
                Some("unknown_delegation"),
                "No delegation was issued with this token",
                None,
            )
        } else {
            answer(
                false,
                Some("invalid"),
                "Unsupported delegation schema version",
                None,
            )
        });
    };
    let detail = Some(d.to_json(false));
    if identifier.is_some() {
        return Some(answer(
            false,
            Some("identifier_unverifiable"),
            "A delegation token has no identifier to check",
            detail,
        ));
    }
    Some(match d.effective_status() {
        "active" => answer(true, None, "", detail),
        "revoked" => answer(
            false,
            Some("revoked"),
            "This delegation has been revoked",
            detail,
        ),
        "expired" => answer(
            false,
            Some("expired"),
            "This delegation has expired",
            detail,
        ),
        _ => answer(
            false,
            Some("suspended"),
            "This delegation is suspended",
            detail,
        ),
    })
}

/// Suspends (`true`) or reinstates (`false`) a delegation: its slot becomes 2 or 0. `false`
/// for an unknown or revoked one.
pub fn suspend(s: &Shared, id_or_handle: &str, suspended: bool) -> bool {
    let mut data = lock(&s.data);
    let Some(id) = record_id(&data, id_or_handle) else {
        return false;
    };
    let Some(d) = data.delegations.get_mut(&id) else {
        return false;
    };
    if d.effective_status() == "revoked" {
        return false;
    }
    d.suspended = suspended;
    let idx = d.status_idx;
    data.set_slot(idx, if suspended { 2 } else { 0 });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_canonicalized_or_refused() {
        let ok = [
            ("https://Agent.Example", "https://agent.example"),
            ("https://agent.example/", "https://agent.example"),
            ("https://agent.example//", "https://agent.example"),
            (
                "  https://agent.example:443/a/b/ ",
                "https://agent.example/a/b",
            ),
            (
                "https://agent.example:8443/x/../y",
                "https://agent.example:8443/y",
            ),
            (
                "https://bücher.example/a",
                "https://xn--bcher-kva.example/a",
            ),
        ];
        for (input, want) in ok {
            assert_eq!(
                canonical_delegate("url", input).as_deref(),
                Ok(want),
                "{input}"
            );
        }
        for bad in [
            "http://agent.example",
            "https://u:p@agent.example",
            "https://agent.example/?q=1",
            "https://agent.example/?",
            "https://agent.example/#x",
            "https://agent .example",
            "agent.example",
            "pkg:npm/x",
            "",
        ] {
            assert!(canonical_delegate("url", bad).is_err(), "{bad}");
        }
        let long = format!("https://a.example/{}", "x".repeat(600));
        assert!(canonical_delegate("url", &long).is_err());
    }

    #[test]
    fn purls_are_canonicalized_or_refused() {
        let ok = [
            ("pkg:npm/@Scope/Agent", "pkg:npm/@scope/agent"),
            ("PKG:PyPI/My_Agent", "pkg:pypi/my-agent"),
            (" pkg:github/Org/Repo ", "pkg:github/Org/Repo"),
        ];
        for (input, want) in ok {
            assert_eq!(
                canonical_delegate("purl", input).as_deref(),
                Ok(want),
                "{input}"
            );
        }
        for bad in [
            "pkg:npm/agent@1.2.3",
            "pkg:npm/agent?arch=x",
            "pkg:npm/agent#sub",
            "pkg:npm//agent",
            "pkg:npm",
            "pkg:/agent",
            "npm/agent",
            "pkg:npm/a gent",
            "pkg:npm/@",
        ] {
            assert!(canonical_delegate("purl", bad).is_err(), "{bad}");
        }
        assert!(canonical_delegate("spdx", "x").is_err());
    }

    #[test]
    fn scopes_follow_the_grammar() {
        for good in ["payments-read", "a", "a1-b2", "x9"] {
            assert!(scope_ok(good), "{good}");
        }
        for bad in [
            "",
            "Payments",
            "email:send",
            "-a",
            "a-",
            "a--b",
            "1a",
            "a_b",
            "a*",
            &"a".repeat(65),
        ] {
            assert!(!scope_ok(bad), "{bad}");
        }
    }
}

//! The error envelope, request-body reading and small field validators.
//!
//! Every client mistake ends here as a `{"error": {code, message, details, request_id}}`
//! response; nothing a client sends can make a handler panic or answer 500.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// Largest request body accepted: 10 KB, as the real API.
pub const MAX_BODY_BYTES: usize = 10 * 1024;

/// An error response in the API's envelope.
#[derive(Debug, Clone)]
pub struct ApiErr {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<Value>,
    retry_after: Option<u64>,
}

impl ApiErr {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// 400 `validation_error` about one field.
    pub fn field(field: &str, message: impl Into<String>, code: &str) -> Self {
        let message = message.into();
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "Request validation failed",
        );
        e.details
            .push(json!({"field": field, "message": message, "code": code}));
        e
    }

    /// Adds a field-level detail.
    pub fn with_detail(mut self, field: &str, message: &str, code: &str) -> Self {
        self.details
            .push(json!({"field": field, "message": message, "code": code}));
        self
    }

    /// Prefixes every detail's field (`type` → `assets.0.type`).
    pub fn prefix_fields(mut self, prefix: &str) -> Self {
        for d in &mut self.details {
            if let Some(f) = d.get("field").and_then(Value::as_str) {
                d["field"] = Value::String(format!("{prefix}{f}"));
            }
        }
        self
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 429 `rate_limited` with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
        );
        e.retry_after = Some(retry_after);
        e
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let request_id = new_request_id();
        let mut error = Map::new();
        error.insert("code".into(), self.code.into());
        error.insert("message".into(), self.message.into());
        if !self.details.is_empty() {
            error.insert("details".into(), Value::Array(self.details));
        }
        if let Some(after) = self.retry_after {
            error.insert("retry_after".into(), after.into());
        }
        error.insert("request_id".into(), request_id.clone().into());
        let mut response = (self.status, axum::Json(json!({ "error": error }))).into_response();
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert("x-request-id", v);
        }
        if let Some(after) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(after));
        }
        response
    }
}

/// A fresh `req_…` id.
pub fn new_request_id() -> String {
    format!("req_{}", crate::state::hex_id(8))
}

/// Reads a JSON object body of at most [`MAX_BODY_BYTES`]; an empty body reads as `{}`.
pub async fn read_object(body: Body) -> Result<Map<String, Value>, ApiErr> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            let mut e = ApiErr::field("body", "Request body exceeds 10 KB", "too_large");
            e.message = "Request body too large (limit 10 KB)".into();
            e
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiErr::field(
            "body",
            "Expected a JSON object",
            "invalid_type",
        )),
        Err(_) => Err(ApiErr::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "Malformed JSON in request body",
        )),
    }
}

/// An optional string field; present but not a string (or too long) is a validation error.
pub fn opt_str(
    obj: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<String>, ApiErr> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => {
            Err(ApiErr::field(field, "Must not be empty", "too_small"))
        }
        Some(Value::String(s)) if s.chars().count() > max => Err(ApiErr::field(
            field,
            format!("Must be at most {max} characters"),
            "too_big",
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiErr::field(field, "Expected string", "invalid_type")),
    }
}

/// A required string field.
pub fn req_str(obj: &Map<String, Value>, field: &str, max: usize) -> Result<String, ApiErr> {
    opt_str(obj, field, max)?.ok_or_else(|| ApiErr::field(field, "Required", "invalid_type"))
}

/// An optional boolean field.
pub fn opt_bool(obj: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiErr> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiErr::field(field, "Expected boolean", "invalid_type")),
    }
}

/// An optional non-negative integer field.
pub fn opt_u64(obj: &Map<String, Value>, field: &str) -> Result<Option<u64>, ApiErr> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiErr::field(field, "Expected a positive integer", "invalid_type")),
    }
}

/// An optional object field.
pub fn opt_object(
    obj: &Map<String, Value>,
    field: &str,
) -> Result<Option<Map<String, Value>>, ApiErr> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(ApiErr::field(field, "Expected object", "invalid_type")),
    }
}

/// Turns a response into one with a JSON body and a status.
pub fn json_response(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(value)).into_response()
}

/// An HTML response.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

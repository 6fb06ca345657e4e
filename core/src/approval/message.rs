//! The message approvers read: the operator's template with `{method}`, `{path}`, `{subject}`
//! and `{policy}` replaced, then one line per header and body field the operator named, then
//! the body's size and digest. Values are cut to [`MAX_VALUE_CHARS`] characters and control
//! characters are replaced, so that what the approver reads is what the request says, on the
//! lines it says it on.

use crate::params::percent_decode;
use crate::policy::ApprovalRule;

/// Longest value shown, in characters.
pub const MAX_VALUE_CHARS: usize = 200;

/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 4] = ["method", "path", "subject", "policy"];

/// What a message is made from.
#[derive(Debug, Clone, Copy)]
pub struct MessageInput<'a> {
    /// The request method.
    pub method: &'a str,
    /// The request target (normalized path and query).
    pub path: &'a str,
    /// Who asks, in words ([`describe_subject`]).
    pub subject: &'a str,
    /// The policy's name.
    pub policy: &'a str,
    /// The request's headers.
    pub headers: &'a http::HeaderMap,
    /// The request's body.
    pub body: &'a [u8],
}

/// The message for `rule` and a request.
pub fn render(rule: &ApprovalRule, input: &MessageInput<'_>) -> String {
    let mut out = substitute(&rule.message, |name| match name {
        "method" => Some(clean(input.method)),
        "path" => Some(clean(input.path)),
        "subject" => Some(clean(input.subject)),
        "policy" => Some(clean(input.policy)),
        _ => None,
    });
    for name in &rule.headers {
        let values: Vec<String> = input
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| clean(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let value = if values.is_empty() {
            "(absent)".to_owned()
        } else {
            values.join(", ")
        };
        out.push_str(&format!("\n{name}: {value}"));
    }
    if !rule.body_fields.is_empty() {
        let fields = BodyFields::parse(input.headers, input.body);
        for field in &rule.body_fields {
            let value = fields
                .get(field)
                .map_or_else(|| "(absent)".to_owned(), |v| clean(&v));
            out.push_str(&format!("\n{field}: {value}"));
        }
    }
    let digest = super::ticket::body_digest(input.body);
    out.push_str(&format!(
        "\nbody: {} bytes, sha256 {}",
        input.body.len(),
        &digest[..digest.len().min(16)]
    ));
    if let Some((i, _)) = out.char_indices().nth(MAX_MESSAGE_CHARS) {
        out.truncate(i);
    }
    out
}

/// The names of the `{…}` placeholders `template` uses that are not [`PLACEHOLDERS`].
pub fn unknown_placeholders(template: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let _ = substitute(template, |name| {
        if !PLACEHOLDERS.contains(&name) {
            unknown.push(name.to_owned());
        }
        None
    });
    unknown
}

/// Who asks, in words: each proof's type and id (`email proof 3f…`) and each delegation's agent
/// (`agent https://agent.example/bot for corp.example, delegation ph_dlg_…`, marked unbound when
/// no client certificate proved the agent), or `anonymous`.
pub fn describe_subject(
    proofs: &[std::sync::Arc<crate::proof::VerifiedProof>],
    delegations: &[crate::delegation::Delegated],
) -> String {
    let described: Vec<String> = proofs
        .iter()
        .map(|p| {
            format!(
                "{} proof {}",
                p.claims.proof_type.as_deref().unwrap_or("a"),
                p.subject()
            )
        })
        .chain(delegations.iter().map(|d| {
            let v = &d.delegation;
            format!(
                "agent {} for {}, delegation {}{}",
                v.delegate,
                v.principal,
                v.handle,
                if d.bound { "" } else { " (unbound)" }
            )
        }))
        .collect();
    if described.is_empty() {
        "anonymous".to_owned()
    } else {
        described.join(", ")
    }
}

fn substitute(template: &str, mut value: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(end)
                if after[..end]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && end > 0 =>
            {
                let name = &after[..end];
                match value(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A value for the message: control characters replaced by `?`, at most [`MAX_VALUE_CHARS`]
/// characters, `…` marking a cut.
fn clean(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(MAX_VALUE_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if value.chars().nth(MAX_VALUE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// A body's fields: a JSON document, or form fields.
enum BodyFields {
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
    None,
}

impl BodyFields {
    fn parse(headers: &http::HeaderMap, body: &[u8]) -> Self {
        let kind = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if kind == "application/x-www-form-urlencoded" {
            let Ok(text) = std::str::from_utf8(body) else {
                return BodyFields::None;
            };
            let pairs = text
                .split('&')
                .filter(|p| !p.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    Some((
                        percent_decode(&k.replace('+', " "))?,
                        percent_decode(&v.replace('+', " "))?,
                    ))
                })
                .collect();
            return BodyFields::Form(pairs);
        }
        match serde_json::from_slice(body) {
            Ok(v) => BodyFields::Json(v),
            Err(_) => BodyFields::None,
        }
    }

    fn get(&self, field: &str) -> Option<String> {
        match self {
            BodyFields::Json(v) => {
                let mut at = v;
                for part in field.split('.') {
                    at = match at {
                        serde_json::Value::Object(map) => map.get(part)?,
                        serde_json::Value::Array(items) => {
                            items.get(part.parse::<usize>().ok()?)?
                        }
                        _ => return None,
                    };
                }
                Some(match at {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            }
            BodyFields::Form(pairs) => {
                let values: Vec<&str> = pairs
                    .iter()
                    .filter(|(k, _)| k == field)
                    .map(|(_, v)| v.as_str())
                    .collect();
                (!values.is_empty()).then(|| values.join(", "))
            }
            BodyFields::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> ApprovalRule {
        let mut r = ApprovalRule::new("hitl_1", "{method} {path} by {subject} ({policy}) {nope}");
        r.headers = vec!["x-account".into(), "x-missing".into()];
        r.body_fields = vec!["amount".into(), "payee.iban".into(), "items.1".into()];
        r
    }

    #[test]
    fn template_headers_and_json_fields() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-account",
            http::HeaderValue::from_bytes(b"acme\tx").unwrap(),
        );
        h.insert("content-type", "application/json".parse().unwrap());
        let body = br#"{"amount":100,"payee":{"iban":"LT12\n34"},"items":["a","b"]}"#;
        let m = render(
            &rule(),
            &MessageInput {
                method: "POST",
                path: "/payouts/7",
                subject: "email proof p1",
                policy: "payouts",
                headers: &h,
                body,
            },
        );
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(
            lines[..6],
            [
                "POST /payouts/7 by email proof p1 (payouts) {nope}",
                "x-account: acme?x",
                "x-missing: (absent)",
                "amount: 100",
                "payee.iban: LT12?34",
                "items.1: b",
            ]
        );
        assert!(lines[6].starts_with(&format!("body: {} bytes, sha256 ", body.len())));
        assert_eq!(unknown_placeholders(&rule().message), ["nope"]);
        assert!(unknown_placeholders("{method} {} { x } {{").is_empty());
    }

    #[test]
    fn form_fields_and_long_values() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        let long = "x".repeat(300);
        let body = format!("amount=12.50&payee.iban=LT%2012+34&amount=3&junk={long}");
        let mut r = ApprovalRule::new("h", "{method}");
        r.body_fields = vec!["amount".into(), "payee.iban".into(), "junk".into()];
        let m = render(
            &r,
            &MessageInput {
                method: "POST",
                path: "/",
                subject: "anonymous",
                policy: "p",
                headers: &h,
                body: body.as_bytes(),
            },
        );
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines[1], "amount: 12.50, 3");
        assert_eq!(lines[2], "payee.iban: LT 12 34");
        assert_eq!(
            lines[3].chars().count(),
            "junk: ".len() + MAX_VALUE_CHARS + 1
        );
    }
}

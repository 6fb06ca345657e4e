//! A policy's `approval = { … }` and `[approvals]`: who approves, what they read, how long the
//! gateway waits, and the tickets' lifetime and body limit.

use std::sync::Arc;
use std::time::Duration;

use proofgate_core::approval::{message, MAX_BODY_LIMIT};
use proofgate_core::policy::{ApprovalRule, Policy};

use super::Check;
use crate::config::ApprovalsSettings;
use crate::file::{ApprovalFile, ApprovalsFile};

/// Headers never shown to approvers: they carry credentials.
const CREDENTIAL_HEADERS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-proof-token",
    "proof-approval",
    "x-api-key",
];

/// A policy's approval at `at`; `None` when it has an error (reported).
pub(super) fn approval(c: &mut Check, at: &str, f: &ApprovalFile) -> Option<ApprovalRule> {
    let before = c.errors.len();
    let hitl = match f.hitl.as_deref().map(str::trim) {
        None | Some("") => {
            c.err(
                format!("{at}.hitl"),
                "missing; the id of the issuer's HITL configuration whose approvers decide \
                 (POST /api/v1/hitl, then finalize it)",
            );
            String::new()
        }
        Some(id)
            if id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            id.to_owned()
        }
        Some(id) => {
            c.err(
                format!("{at}.hitl"),
                format!("{id:?} is not a HITL configuration id (letters, digits, '_', '-')"),
            );
            String::new()
        }
    };
    let template = match f.message.as_deref() {
        None => {
            c.err(
                format!("{at}.message"),
                "missing; what the approvers read, e.g. \"{method} {path} by {subject}\"",
            );
            String::new()
        }
        Some(m) if m.trim().is_empty() => {
            c.err(format!("{at}.message"), "empty");
            String::new()
        }
        Some(m) if m.chars().count() > 2000 => {
            c.err(format!("{at}.message"), "longer than 2000 characters");
            String::new()
        }
        Some(m) => {
            let unknown = message::unknown_placeholders(m);
            if !unknown.is_empty() {
                c.err(
                    format!("{at}.message"),
                    format!(
                        "unknown placeholder {}; use {}",
                        unknown
                            .iter()
                            .map(|u| format!("{{{u}}}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        message::PLACEHOLDERS
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            m.to_owned()
        }
    };
    let timeout = c.duration(
        &format!("{at}.timeout"),
        f.timeout.as_ref(),
        Duration::from_secs(300),
        Duration::from_secs(10),
        Duration::from_secs(86_400),
    );
    let mut headers = Vec::new();
    for (i, h) in f.headers.iter().enumerate() {
        let name = h.trim().to_ascii_lowercase();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            c.err(
                format!("{at}.headers[{i}]"),
                format!("{h:?} is not a header name"),
            );
        } else if CREDENTIAL_HEADERS.contains(&name.as_str()) {
            c.err(
                format!("{at}.headers[{i}]"),
                format!("{h:?} carries credentials, which approvers must not be shown"),
            );
        } else {
            headers.push(name);
        }
    }
    let mut body_fields = Vec::new();
    for (i, field) in f.body_fields.iter().enumerate() {
        let field = field.trim();
        if field.is_empty()
            || field.len() > 128
            || field.split('.').any(str::is_empty)
            || field.chars().any(char::is_control)
        {
            c.err(
                format!("{at}.body_fields[{i}]"),
                format!(
                    "{field:?} is not a field name; a JSON member (\"amount\", dotted for \
                     nested ones: \"payee.iban\") or a form field name"
                ),
            );
        } else {
            body_fields.push(field.to_owned());
        }
    }
    (c.errors.len() == before).then_some(ApprovalRule {
        hitl,
        message: template,
        timeout,
        headers,
        body_fields,
    })
}

/// `[approvals]`; a ticket must outlive every policy's approval timeout.
pub(super) fn approvals(
    c: &mut Check,
    f: &ApprovalsFile,
    policies: &[Arc<Policy>],
) -> ApprovalsSettings {
    let d = ApprovalsSettings::default();
    let ticket_ttl = c.duration(
        "approvals.ticket_ttl",
        f.ticket_ttl.as_ref(),
        d.ticket_ttl,
        Duration::from_secs(60),
        Duration::from_secs(7 * 86_400),
    );
    let max_body_bytes = c.int(
        "approvals.max_body_bytes",
        f.max_body_bytes,
        d.max_body_bytes as u64,
        0,
        MAX_BODY_LIMIT as u64,
    ) as usize;
    let poll_interval = c.duration(
        "approvals.poll_interval",
        f.poll_interval.as_ref(),
        d.poll_interval,
        Duration::from_secs(1),
        Duration::from_secs(60),
    );
    let per_requester_per_minute = c.int(
        "approvals.per_requester_per_minute",
        f.per_requester_per_minute,
        u64::from(d.per_requester_per_minute),
        1,
        1000,
    ) as u32;
    let global_per_minute = c.int(
        "approvals.global_per_minute",
        f.global_per_minute,
        u64::from(d.global_per_minute),
        1,
        99,
    ) as u32;
    if !c.failed("approvals.ticket_ttl") {
        for (i, p) in policies.iter().enumerate() {
            if let Some(a) = &p.approval {
                if a.timeout >= ticket_ttl {
                    c.err(
                        format!("policies[{i}].approval.timeout"),
                        format!(
                            "{} is not shorter than approvals.ticket_ttl ({}): a ticket must \
                             outlive the wait, so that an approval given in time can be used; \
                             shorten the timeout or lengthen ticket_ttl",
                            super::fmt_d(a.timeout),
                            super::fmt_d(ticket_ttl)
                        ),
                    );
                }
            }
        }
    }
    ApprovalsSettings {
        ticket_ttl,
        max_body_bytes,
        poll_interval,
        per_requester_per_minute,
        global_per_minute,
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    const BASE: &str = r#"
default_policy = "payouts"
[[listeners]]
address = "127.0.0.1:8080"
[[upstreams]]
name = "app"
addresses = ["127.0.0.1:9000"]
"#;

    fn with(policy: &str) -> Result<Config, String> {
        Config::from_toml_str(&format!("{BASE}{policy}")).map_err(|e| e.to_string())
    }

    #[test]
    fn an_approval_block_becomes_the_rule() {
        let c = with(
            r#"
[[policies]]
name = "payouts"
rule = "any_of"
requirements = [{ types = ["email"] }]
approval = { hitl = "hitl_1", message = "{method} {path} by {subject}", timeout = "2m", headers = ["X-Account"], body_fields = ["amount", "payee.iban"] }
"#,
        )
        .unwrap();
        let a = c.policy("payouts").unwrap().approval.clone().unwrap();
        assert_eq!(a.hitl, "hitl_1");
        assert_eq!(a.timeout.as_secs(), 120);
        assert_eq!(a.headers, ["x-account"]);
        assert_eq!(a.body_fields, ["amount", "payee.iban"]);
        assert!(c.uses_approval());
        assert_eq!(c.approvals.ticket_ttl.as_secs(), 900);
    }

    #[test]
    fn approvals_need_the_api_key_and_the_cookie_key() {
        let c = with(
            r#"
[[policies]]
name = "payouts"
rule = "any_of"
on_failure = "deny"
requirements = [{ types = ["email"] }]
approval = { hitl = "h", message = "m" }
"#,
        )
        .unwrap();
        let none = crate::Secrets::from_lookup(|_| None).unwrap();
        let e = none.require_for(&c).unwrap_err().to_string();
        assert!(
            e.contains("PROOF_API_KEY") && e.contains("PROOFGATE_COOKIE_KEY"),
            "{e}"
        );
        assert!(e.contains("asks for approval"), "{e}");
    }

    #[test]
    fn mistakes_are_named() {
        let e = with(
            r#"
[[policies]]
name = "payouts"
rule = "public"
approval = { message = "{method} {amount}", timeout = "1h", headers = ["authorization", "bad header"], body_fields = ["a..b"] }
[approvals]
max_body_bytes = 100000
"#,
        )
        .unwrap_err();
        for wanted in [
            "policies[0].approval.hitl",
            "unknown placeholder {amount}",
            "carries credentials",
            "\"bad header\" is not a header name",
            "\"a..b\" is not a field name",
            "approvals.max_body_bytes",
        ] {
            assert!(e.contains(wanted), "{wanted:?} not in:\n{e}");
        }
        let e = with(
            r#"
[[policies]]
name = "payouts"
rule = "public"
approval = { hitl = "h", message = "m", timeout = "20m" }
"#,
        )
        .unwrap_err();
        assert!(e.contains("not shorter than approvals.ticket_ttl"), "{e}");
        let e = with(
            r#"
[[policies]]
name = "payouts"
rule = "deny"
approval = { hitl = "h", message = "m" }
"#,
        )
        .unwrap_err();
        assert!(e.contains("nothing to approve"), "{e}");
    }
}

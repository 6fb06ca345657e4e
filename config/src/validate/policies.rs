//! `[[policies]]`: rules, requirements over the issuer's types and channels, identifier
//! allowlists and maximum ages.

use std::sync::Arc;
use std::time::Duration;

use proofgate_core::identifier;
use proofgate_core::policy::{Combine, OnFailure, Policy, Requirement, Rule};

use super::{Check, VERIFICATION_TYPES};
use crate::file::{PolicyFile, RequirementFile};

pub(super) fn policies(c: &mut Check, files: &[PolicyFile]) -> Vec<Arc<Policy>> {
    let mut out = Vec::new();
    for (i, p) in files.iter().enumerate() {
        let at = format!("policies[{i}]");
        let name = c.name(&format!("{at}.name"), p.name.as_ref());
        let combine = match p.rule.as_deref() {
            Some("any_of") => Some(Combine::AnyOf),
            Some("all_of") => Some(Combine::AllOf),
            Some("public" | "optional" | "deny") => None,
            Some(other) => {
                c.err(
                    format!("{at}.rule"),
                    format!("{other:?}; use public, optional, deny, any_of or all_of"),
                );
                continue;
            }
            None => {
                c.err(
                    format!("{at}.rule"),
                    "missing; use public, optional, deny, any_of or all_of",
                );
                continue;
            }
        };
        let on_failure = match p.on_failure.as_deref() {
            None if combine.is_some() => OnFailure::StepUp,
            None => OnFailure::Deny,
            Some("step_up") => OnFailure::StepUp,
            Some("deny") => OnFailure::Deny,
            Some(other) => {
                c.err(
                    format!("{at}.on_failure"),
                    format!("{other:?}; use \"step_up\" or \"deny\""),
                );
                OnFailure::Deny
            }
        };
        let rule = match combine {
            Some(combine) => {
                if p.requirements.is_empty() {
                    c.err(
                        format!("{at}.requirements"),
                        format!(
                            "empty; rule {:?} needs at least one requirement",
                            p.rule.as_deref().unwrap_or_default()
                        ),
                    );
                }
                let requirements = p
                    .requirements
                    .iter()
                    .enumerate()
                    .map(|(j, r)| requirement(c, &format!("{at}.requirements[{j}]"), r))
                    .collect();
                Rule::Require {
                    combine,
                    requirements,
                }
            }
            None => {
                if !p.requirements.is_empty() {
                    c.err(
                        format!("{at}.requirements"),
                        "only any_of and all_of policies have requirements",
                    );
                }
                match p.rule.as_deref() {
                    Some("public") => Rule::Public,
                    Some("optional") => Rule::Optional,
                    _ => Rule::Deny,
                }
            }
        };
        let approval = p.approval.as_ref().and_then(|a| {
            if matches!(rule, Rule::Deny) {
                c.err(
                    format!("{at}.approval"),
                    "a deny policy lets nothing through, so there is nothing to approve",
                );
            }
            super::approvals::approval(c, &format!("{at}.approval"), a)
        });
        if let Some(name) = name {
            out.push(Arc::new(Policy {
                name,
                rule,
                on_failure,
                approval: approval.map(Arc::new),
            }));
        }
    }
    c.unique(
        "policies",
        files
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i, p.name.as_ref()?))),
    );
    out
}
fn requirement(c: &mut Check, at: &str, r: &RequirementFile) -> Requirement {
    let types: Vec<String> = r
        .types
        .iter()
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let channels: Vec<String> = r
        .channels
        .iter()
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    for (k, t) in types.iter().enumerate() {
        if t.is_empty() {
            c.err(format!("{at}.types[{k}]"), "empty type");
        }
    }
    // A channel that none of the listed (all known) types offers can never match.
    let known: Option<Vec<&[&str]>> = types
        .iter()
        .map(|t| known_channels(t))
        .collect::<Option<Vec<_>>>()
        .filter(|k| !k.is_empty());
    for (k, ch) in channels.iter().enumerate() {
        if ch.is_empty() {
            c.err(format!("{at}.channels[{k}]"), "empty channel");
            continue;
        }
        if let Some(known) = &known {
            if !known.iter().any(|valid| valid.contains(&ch.as_str())) {
                let valid: Vec<&str> = known.iter().flat_map(|v| v.iter().copied()).collect();
                c.err(
                    format!("{at}.channels[{k}]"),
                    format!(
                        "{ch:?} is not a channel of type {}; valid: {}",
                        types.join(" or "),
                        valid.join(", ")
                    ),
                );
            }
        }
    }
    let mut req = Requirement {
        types: types.clone(),
        channels,
        ..Requirement::default()
    };
    if !r.identifiers.is_empty() {
        if types.len() == 1 {
            let kind = types[0].as_str();
            for (k, id) in r.identifiers.iter().enumerate() {
                if let Err(why) = check_identifier(kind, id) {
                    c.err(format!("{at}.identifiers[{k}]"), why);
                }
            }
            req = req.identifiers(&r.identifiers);
        } else {
            c.err(
                format!("{at}.identifiers"),
                "identifiers need exactly one type, which says how to normalize them",
            );
        }
    }
    if let Some(raw) = &r.max_age {
        let d = c.duration(
            &format!("{at}.max_age"),
            Some(raw),
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(10 * 365 * 86_400),
        );
        if !d.is_zero() {
            req.max_age = Some(d);
        }
    }
    req
}

fn known_channels(kind: &str) -> Option<&'static [&'static str]> {
    VERIFICATION_TYPES
        .iter()
        .find(|(t, _)| *t == kind)
        .map(|(_, channels)| *channels)
}

/// Catches allowlist entries that can never match a proof of `kind`.
fn check_identifier(kind: &str, raw: &str) -> Result<(), String> {
    if raw.trim().is_empty() {
        return Err("empty identifier".into());
    }
    let normalized = identifier::normalize(kind, raw);
    match kind {
        "email" => {
            let mut parts = normalized.split('@');
            let ok = matches!(
                (parts.next(), parts.next(), parts.next()),
                (Some(l), Some(d), None) if !l.is_empty() && d.contains('.') && !d.starts_with('.')
            ) && !normalized.contains(char::is_whitespace);
            if !ok {
                return Err(format!("{raw:?} is not an email address"));
            }
        }
        "phone" => {
            let ok = raw
                .trim()
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c))
                && (8..=16).contains(&normalized.len());
            if !ok {
                return Err(format!(
                    "{raw:?} is not a phone number in international form (e.g. \"+37069199199\")"
                ));
            }
        }
        "domain" => {
            let ok = normalized.contains('.')
                && !normalized.starts_with('.')
                && normalized
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !ok {
                return Err(format!(
                    "{raw:?} is not a domain name (e.g. \"corp.example\")"
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked_for_their_type() {
        assert!(check_identifier("email", "Alice@Corp.Example").is_ok());
        assert!(check_identifier("email", "alice").is_err());
        assert!(check_identifier("email", "a@b@c.d").is_err());
        assert!(check_identifier("phone", "+370 691 99199").is_ok());
        assert!(check_identifier("phone", "call me").is_err());
        assert!(check_identifier("phone", "+1").is_err());
        assert!(check_identifier("domain", "https://www.corp.example/").is_ok());
        assert!(check_identifier("domain", "localhost").is_err());
        assert!(check_identifier("social", "octocat").is_ok());
        assert!(check_identifier("wallet", "  ").is_err());
    }
}

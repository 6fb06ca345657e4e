//! `proofgate verify`: a token's header and claims, its verdict, and — with a request path — the
//! decision the gateway would make on a request carrying it.
//!
//! ```text
//! proofgate verify "$TOKEN" -c proofgate.toml                        # the token alone
//! proofgate verify "$TOKEN" -c proofgate.toml --path /admin          # as GET /admin would be
//! proofgate verify "$TOKEN" -c proofgate.toml --path /pay --method POST --host app.example
//! ```
//!
//! - The claims are shown for any token that decodes as a compact JWS, marked `UNVERIFIED` with
//!   the reason when any check fails (signature, key, times, issuer, claims, revocation).
//! - `iat`, `nbf` and `exp` are shown as the raw number, RFC 3339 UTC and relative to now
//!   (`expires in 4m 10s`, `expired 3h ago`); `verified_at` too. Formatting is chrono's, the
//!   relative part is [`span`].
//! - With `--path` the request is decided by a [`Gate`] built as the
//!   gateway builds its own ([`crate::state::gate_builder`]), over the file's route table, with
//!   the token where the gateway looks first (the first of `tokens.sources`: by default
//!   `Authorization: Bearer`): the same route, decision and reason, the status it would answer
//!   with, and, when refused, what the route's policy requires and why the token falls short.
//!
//! Exit status: 0 when the token is valid (with `--path`: when the request would be allowed,
//! whatever the token), 1 otherwise — refused, invalid, or the file could not be used.
//!
//! The token is never printed, not even in an error; the request path is printed without any
//! query parameter that carries a token.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method};
use proofgate_config::Config;
use proofgate_core::claims::{decode_unverified, Unverified};
use proofgate_core::decision::RequestView;
use proofgate_core::gate::{Action, ForwardOptions, Gate};
use proofgate_core::policy::{Combine, OnFailure, Requirement, Rule};
use proofgate_core::render::without_tokens;
use proofgate_core::routes::DEFAULT_ROUTE_NAME;
use proofgate_core::tokens::TokenSource;
use proofgate_core::{Policy, Reason, VerifiedProof};
use serde_json::{Map, Value};

/// An error for the person at the terminal (printed after `proofgate: `, exit status 1).
pub type CliError = Box<dyn std::error::Error>;

/// What `proofgate verify` was asked.
#[derive(Debug, Clone)]
pub struct VerifyArgs {
    /// The token. Never printed.
    pub token: String,
    /// The configuration file.
    pub config: PathBuf,
    /// `--issuer`: the issuer's base URL in place of the file's `issuer.api_base`.
    pub issuer: Option<String>,
    /// `--path` and its companions: decide a request, as the gateway would.
    pub request: Option<RequestArgs>,
}

/// The request `proofgate verify --path` decides.
#[derive(Debug, Clone)]
pub struct RequestArgs {
    /// The request-target (path, optionally with a query), e.g. `/admin/users`.
    pub path: String,
    /// The method (`GET` by default).
    pub method: String,
    /// The `Host`; [`DEFAULT_HOST`] when not given.
    pub host: Option<String>,
}

/// The `Host` of a request decided without `--host`.
pub const DEFAULT_HOST: &str = "localhost";

/// Runs `proofgate verify`: prints the report on stdout, fetch warnings on stderr. `Err` (exit
/// status 1) when the token is not valid or, with `--path`, the request would be refused; the
/// error names the verdict or the decision, never the token.
pub fn verify(args: &VerifyArgs) -> Result<(), CliError> {
    let config = load(&args.config, args.issuer.as_deref())?;
    let method = match &args.request {
        Some(r) => Some(Method::from_bytes(r.method.as_bytes()).map_err(|_| {
            format!(
                "--method {:?} is not an HTTP method (GET, POST, …)",
                r.method
            )
        })?),
        None => None,
    };
    eprintln!("issuer: {}", config.issuer.api_base);
    let gate = crate::state::gate_builder(&config)
        .build()
        .map_err(|e| format!("{}: {e}", args.config.display()))?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let token = args.token.as_str();
    let verdict = rt.block_on(fetch_and_check(&gate, &config, token));
    let now = chrono::Utc::now().timestamp();

    let mut out = String::new();
    write_token(&mut out, decode_unverified(token).as_ref(), &verdict, now);
    let result = match (&args.request, method) {
        (Some(request), Some(method)) => {
            let proof = verdict.as_ref().ok();
            write_decision(
                &mut out, &gate, &config, request, &method, token, proof, now,
            )
        }
        _ => match &verdict {
            Ok(_) => {
                out.push_str("verdict: valid\n");
                Ok(())
            }
            Err(reason) => Err(format!("verdict: {reason} — {}", reason.message()).into()),
        },
    };
    print!("{out}");
    result
}

/// The file, with `--issuer` in place of `issuer.api_base` (the URLs the file does not set
/// follow it).
fn load(path: &Path, issuer: Option<&str>) -> Result<Config, CliError> {
    match issuer {
        None => Config::load(path).map_err(|e| format!("{}: {e}", path.display()).into()),
        Some(api_base) => {
            let mut file = proofgate_config::ConfigFile::load(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            file.issuer.api_base = Some(api_base.to_owned());
            file.validate()
                .map_err(|e| format!("{} with --issuer: {e}", path.display()).into())
        }
    }
}

/// Fetches what a warm gateway holds — the key set, the revocation list, the status lists it
/// prefetches and, for a token whose signature holds, the status list it names — then checks
/// the token fully. A fetch that fails is a warning: the check then fails closed, as the
/// gateway's would (`jwks_stale`, `status_unavailable`).
async fn fetch_and_check(
    gate: &Gate,
    config: &Config,
    token: &str,
) -> Result<Arc<VerifiedProof>, Reason> {
    if let Err(e) = gate.keys().refresh().await {
        eprintln!(
            "warning: the JWKS {} could not be fetched: {e}",
            config.issuer.jwks_url
        );
    }
    let revocation = gate.revocation();
    if let Err(e) = revocation.refresh_list().await {
        eprintln!("warning: the revocation list could not be fetched: {e}");
    }
    let mut lists: Vec<String> = revocation.config().prefetch_status_lists.clone();
    // Only a token whose signature holds may name a list to fetch (and only on a trusted origin).
    if let Ok(proof) = gate.enforcer().verifier().verify(token) {
        if let Some(status) = &proof.claims.status {
            if !lists.contains(&status.status_list.uri) {
                lists.push(status.status_list.uri.clone());
            }
        }
    }
    for uri in lists.iter().filter(|u| revocation.may_fetch(u)) {
        if let Err(e) = revocation.refresh_status_list(uri).await {
            eprintln!("warning: the status list {uri} could not be fetched: {e}");
        }
    }
    gate.enforcer().check_token(token)
}

/// The header, the claims (marked verified or not) and their times.
fn write_token(
    out: &mut String,
    decoded: Option<&Unverified>,
    verdict: &Result<Arc<VerifiedProof>, Reason>,
    now: i64,
) {
    let Some(decoded) = decoded else {
        out.push_str(
            "claims: not shown — the token is not a compact JWS (three base64url segments, \
             the first two JSON objects)\n",
        );
        return;
    };
    let header = serde_json::to_string(&decoded.header).unwrap_or_default();
    let _ = writeln!(out, "header: {}", terminal_safe(&header));
    match verdict {
        Ok(_) => out.push_str(
            "claims: verified (signature, key, times, issuer, claims and revocation checked)\n",
        ),
        Err(reason) => {
            let _ = writeln!(
                out,
                "claims: UNVERIFIED — {reason}: {} Nothing below is to be trusted.",
                reason.message()
            );
        }
    }
    let claims = serde_json::to_string_pretty(&decoded.payload).unwrap_or_default();
    let _ = writeln!(out, "{}", terminal_safe(&claims));
    write_times(out, &decoded.payload, now);
}

/// `iat`, `nbf`, `exp` and `verified_at`, each raw, as RFC 3339 UTC and relative to `now`.
fn write_times(out: &mut String, claims: &Map<String, Value>, now: i64) {
    let mut lines = Vec::new();
    for (name, phrase) in [
        ("iat", Phrase::Issued),
        ("nbf", Phrase::ValidFrom),
        ("exp", Phrase::Expires),
    ] {
        let Some(value) = claims.get(name) else {
            continue;
        };
        let text = match numeric_date(value) {
            Some(t) => match rfc3339(t) {
                Some(date) => format!("{t}  {date}  {}", relative(phrase, t, now)),
                None => format!("{t}  (out of range)"),
            },
            None => format!(
                "{}  (not a NumericDate: the verifier refuses it)",
                terminal_safe(&value.to_string())
            ),
        };
        lines.push((name, text));
    }
    if let Some(Value::String(v)) = claims.get("verified_at") {
        let text = match chrono::DateTime::parse_from_rfc3339(v) {
            Ok(t) => {
                let t = t.timestamp();
                let date = rfc3339(t).unwrap_or_default();
                format!("{t}  {date}  {}", relative(Phrase::Verified, t, now))
            }
            Err(_) => format!("{:?}  (not an RFC 3339 time)", terminal_safe(v)),
        };
        lines.push(("verified_at", text));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "times (now {}):", rfc3339(now).unwrap_or_default());
    for (name, text) in lines {
        let _ = writeln!(out, "  {name:<12} {text}");
    }
}

/// A NumericDate as the verifier reads it: a JSON number, fractions truncated.
fn numeric_date(v: &Value) -> Option<i64> {
    let f = v.as_f64()?;
    (f.is_finite() && f.abs() < 1e15).then_some(f as i64)
}

/// Unix seconds as RFC 3339 UTC to the second (`2025-06-01T12:00:00Z`).
pub fn rfc3339(unix: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Which claim a time is, for [`relative`]'s wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phrase {
    /// `iat`.
    Issued,
    /// `nbf`.
    ValidFrom,
    /// `exp`.
    Expires,
    /// `verified_at`.
    Verified,
}

/// `t` relative to `now`, in words: `expires in 4m 10s`, `expired 3h ago`, `issued 2d 1h ago`.
pub fn relative(phrase: Phrase, t: i64, now: i64) -> String {
    let ahead = t > now;
    let d = span(t.abs_diff(now));
    match (phrase, ahead) {
        (Phrase::Expires, true) => format!("expires in {d}"),
        (Phrase::Expires, false) => format!("expired {d} ago"),
        (Phrase::Issued, true) => format!("issued in the future ({d} from now)"),
        (Phrase::Issued, false) => format!("issued {d} ago"),
        (Phrase::ValidFrom, true) => format!("not valid for another {d}"),
        (Phrase::ValidFrom, false) => format!("valid since {d} ago"),
        (Phrase::Verified, true) => format!("verified in the future ({d} from now)"),
        (Phrase::Verified, false) => format!("verified {d} ago"),
    }
}

/// A length of time in its two largest units, days to seconds: `0s`, `42s`, `4m 10s`, `3h`,
/// `3h 5m`, `29d 23h` (what is smaller than the second unit is dropped).
pub fn span(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let Some(first) = UNITS.iter().position(|(n, _)| secs >= *n) else {
        return "0s".into();
    };
    let (n, unit) = UNITS[first];
    let mut text = format!("{}{unit}", secs / n);
    if let Some(&(m, next)) = UNITS.get(first + 1) {
        let rest = secs % n / m;
        if rest > 0 {
            let _ = write!(text, " {rest}{next}");
        }
    }
    text
}

/// The request decided as the gateway would, and what its policy requires when refused.
#[allow(clippy::too_many_arguments)]
fn write_decision(
    out: &mut String,
    gate: &Gate,
    config: &Config,
    request: &RequestArgs,
    method: &Method,
    token: &str,
    proof: Option<&Arc<VerifiedProof>>,
    now: i64,
) -> Result<(), CliError> {
    let host = request.host.as_deref().unwrap_or(DEFAULT_HOST);
    let (headers, carried) = present(token, &config.tokens.sources)?;
    let mut with_host = headers;
    with_host.insert(
        http::header::HOST,
        HeaderValue::from_str(host).map_err(|_| format!("--host {host:?} is not a valid Host"))?,
    );
    let view = RequestView {
        method,
        host: Some(host),
        target: request.path.as_bytes(),
        headers: &with_host,
    };
    let options = ForwardOptions {
        strip_token: config.identity_headers.strip_token,
        identity_headers: true,
    };
    let routes = &config.routes;
    let outcome = gate.decide(routes, &view, options);
    let shown = without_tokens(&request.path);
    let _ = writeln!(
        out,
        "request: {method} {}  (Host: {host}; token in {carried})",
        terminal_safe(&shown)
    );
    let _ = writeln!(out, "route: {}", outcome.route);
    let policy = if outcome.route == DEFAULT_ROUTE_NAME {
        Some(routes.default_policy())
    } else {
        routes
            .routes()
            .iter()
            .find(|r| r.name == outcome.route)
            .map(|r| &r.policy)
    };
    if let Some(policy) = policy {
        let _ = writeln!(out, "policy: {} ({})", policy.name, describe_policy(policy));
    }
    if let Some(pending) = &outcome.approval {
        // The proofs pass; the gateway then holds the request for a person's approval.
        let _ = writeln!(
            out,
            "decision: approval — allowed by the policy, then held until an approver of HITL \
             configuration {} says yes (202 approval_required; see docs/approvals.md)",
            terminal_safe(&pending.rule.hitl)
        );
        return Ok(());
    }
    let _ = writeln!(out, "decision: {}", outcome.decision);
    let Action::Respond(answer) = &outcome.action else {
        return Ok(());
    };
    let body = serde_json::from_slice::<Value>(&answer.body).unwrap_or(Value::Null);
    // A policy's reason has its sentence; a refusal before routing (`invalid_path`,
    // `invalid_host`) has its answer's title.
    let sentence = Reason::ALL
        .iter()
        .find(|r| r.as_str() == outcome.reason)
        .map(|r| r.message())
        .or_else(|| body["title"].as_str())
        .unwrap_or("");
    let _ = writeln!(out, "reason: {} — {sentence}", outcome.reason);
    let to_whom = if outcome.decision == "step_up" {
        " (to an API client; a browser asking for text/html is redirected to the step-up)"
    } else {
        ""
    };
    let _ = writeln!(out, "answer: {}{to_whom}", answer.status);
    if let Some(start) = body["step_up"]["start"].as_str() {
        let _ = writeln!(out, "step-up: {}", terminal_safe(start));
    }
    if let Some(policy) = policy {
        write_requirements(out, policy, proof, now);
    }
    Err(format!(
        "the gateway would refuse this request: {} ({})",
        outcome.decision, outcome.reason
    )
    .into())
}

/// Headers carrying `token` where the gateway looks first, and a description of where.
fn present(token: &str, sources: &[TokenSource]) -> Result<(HeaderMap, String), CliError> {
    let mut headers = HeaderMap::new();
    let unsendable = || "the token holds characters an HTTP header cannot carry".to_string();
    let carried = match sources.first() {
        Some(TokenSource::Bearer) => {
            let value =
                HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| unsendable())?;
            headers.insert(http::header::AUTHORIZATION, value);
            "Authorization: Bearer".to_string()
        }
        Some(TokenSource::Header(name)) => {
            headers.insert(
                name.clone(),
                HeaderValue::from_str(token).map_err(|_| unsendable())?,
            );
            format!("the {name} header")
        }
        Some(TokenSource::Cookie(name)) => {
            let value =
                HeaderValue::from_str(&format!("{name}={token}")).map_err(|_| unsendable())?;
            headers.insert(http::header::COOKIE, value);
            format!("the {name} cookie")
        }
        None => "no place (tokens.sources is empty)".to_string(),
    };
    Ok((headers, carried))
}

fn describe_policy(policy: &Policy) -> String {
    let on_failure = match policy.on_failure {
        OnFailure::StepUp => "step-up",
        OnFailure::Deny => "deny",
    };
    match &policy.rule {
        Rule::Public => "public: no proof is looked at".into(),
        Rule::Optional => "optional: proofs are checked when present, never required".into(),
        Rule::Deny => "deny: every request is refused".into(),
        Rule::Require {
            combine,
            requirements,
        } => {
            let combine = match combine {
                Combine::AnyOf => "any_of",
                Combine::AllOf => "all_of",
            };
            let n = requirements.len();
            format!(
                "{combine}, {n} requirement{}; on failure: {on_failure}",
                if n == 1 { "" } else { "s" }
            )
        }
    }
}

/// Each requirement of a refusing policy, and — when the token verified — whether it meets it
/// and, if not, why.
fn write_requirements(
    out: &mut String,
    policy: &Policy,
    proof: Option<&Arc<VerifiedProof>>,
    now: i64,
) {
    let requirements = policy.requirements();
    if requirements.is_empty() {
        return;
    }
    let combine = match &policy.rule {
        Rule::Require {
            combine: Combine::AllOf,
            ..
        } => "every one of",
        _ => "any one of",
    };
    let _ = writeln!(out, "requires {combine}:");
    for (i, r) in requirements.iter().enumerate() {
        let verdict = match proof {
            None => String::new(),
            Some(p) if r.is_met_by(p, now) => ": met by this token".into(),
            Some(p) => {
                let why = unmet(r, p, now);
                if why.is_empty() {
                    ": not met by this token".into()
                } else {
                    format!(": not met — {}", why.join("; "))
                }
            }
        };
        let _ = writeln!(out, "  {}. {}{verdict}", i + 1, describe_requirement(r));
    }
}

fn describe_requirement(r: &Requirement) -> String {
    let mut parts = Vec::new();
    if !r.types.is_empty() {
        parts.push(format!("type {}", r.types.join(" or ")));
    }
    if !r.channels.is_empty() {
        parts.push(format!("channel {}", r.channels.join(" or ")));
    }
    if !r.identifiers.is_empty() {
        let ids: Vec<&str> = r
            .identifiers
            .iter()
            .map(|i| i.normalized.as_str())
            .collect();
        parts.push(format!("identifier {}", ids.join(" or ")));
    }
    if let Some(max_age) = r.max_age {
        parts.push(format!("verified within {}", span(max_age.as_secs())));
    }
    if parts.is_empty() {
        "any valid proof".into()
    } else {
        parts.join(", ")
    }
}

/// Why `proof` does not meet `r`, part by part, in the order of [`Requirement::is_met_by`].
fn unmet(r: &Requirement, proof: &VerifiedProof, now: i64) -> Vec<String> {
    let claims = &proof.claims;
    let mut why = Vec::new();
    let shown = |v: Option<&str>| v.map_or_else(|| "none".to_string(), |v| format!("{v:?}"));
    if !r.types.is_empty()
        && !claims
            .proof_type
            .as_ref()
            .is_some_and(|t| r.types.contains(t))
    {
        why.push(format!(
            "its type is {}",
            shown(claims.proof_type.as_deref())
        ));
    }
    if !r.channels.is_empty()
        && !claims
            .channel
            .as_ref()
            .is_some_and(|c| r.channels.contains(c))
    {
        why.push(format!(
            "its channel is {}",
            shown(claims.channel.as_deref())
        ));
    }
    if !r.identifiers.is_empty() {
        match proof.identifier_hash.as_deref() {
            None => why.push("it carries no identifier_hash".into()),
            Some(h) if !r.identifiers.iter().any(|i| i.hash == h) => {
                why.push("its identifier is none of these".into())
            }
            Some(_) => {}
        }
    }
    if let Some(max_age) = r.max_age {
        match proof.verified_at {
            None => why.push("it carries no verified_at".into()),
            Some(at) if now.saturating_sub(at) > max_age.as_secs() as i64 => why.push(format!(
                "it was verified {} ago",
                span(now.saturating_sub(at).unsigned_abs())
            )),
            Some(_) => {}
        }
    }
    why.iter().map(|w| terminal_safe(w)).collect()
}

/// `text` with the characters a terminal may act on escaped (`\u{..}`): DEL, the C1 controls and
/// the bidirectional overrides, which JSON leaves as they are. (C0 controls never get here
/// unescaped: JSON escapes them, and `{:?}` does.)
fn terminal_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                format!("\\u{:04x}", c as u32)
            }
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_keep_two_units() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(42), "42s");
        assert_eq!(span(250), "4m 10s");
        assert_eq!(span(3 * 3600 + 30), "3h");
        assert_eq!(span(3 * 3600 + 5 * 60 + 9), "3h 5m");
        assert_eq!(span(30 * 86_400 - 1), "29d 23h");
        assert_eq!(span(86_400), "1d");
    }

    #[test]
    fn times_read_in_words_and_rfc3339() {
        let now = 1_700_000_000;
        assert_eq!(rfc3339(now).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), None);
        assert_eq!(
            relative(Phrase::Expires, now + 250, now),
            "expires in 4m 10s"
        );
        assert_eq!(
            relative(Phrase::Expires, now - 3 * 3600, now),
            "expired 3h ago"
        );
        assert_eq!(relative(Phrase::Expires, now, now), "expired 0s ago");
        assert_eq!(relative(Phrase::Issued, now - 61, now), "issued 1m 1s ago");
        assert_eq!(
            relative(Phrase::Issued, now + 10, now),
            "issued in the future (10s from now)"
        );
        assert_eq!(
            relative(Phrase::ValidFrom, now + 60, now),
            "not valid for another 1m"
        );
        let mut out = String::new();
        let claims = serde_json::json!({"iat": now - 10, "exp": now as f64 + 250.7, "nbf": "x"});
        write_times(&mut out, claims.as_object().unwrap(), now);
        assert!(
            out.contains("iat          1699999990  2023-11-14T22:13:10Z  issued 10s ago"),
            "{out}"
        );
        assert!(
            out.contains("exp          1700000250  2023-11-14T22:17:30Z  expires in 4m 10s"),
            "{out}"
        );
        assert!(
            out.contains("nbf          \"x\"  (not a NumericDate"),
            "{out}"
        );
    }

    #[test]
    fn terminal_controls_are_escaped() {
        assert_eq!(terminal_safe("a\u{9b}b\u{202e}c"), "a\\u009bb\\u202ec");
        assert_eq!(terminal_safe("plain é"), "plain é");
    }
}

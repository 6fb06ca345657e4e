//! `[step_up]`: endpoint prefix, state cookie, start rate limits, the proof cookie and the hosts a
//! step-up may return to.

use std::sync::Arc;
use std::time::Duration;

use proofgate_core::path::normalize_path;
use proofgate_core::policy::{OnFailure, Policy};
use proofgate_core::routes::{check_host_pattern, RouteTable};

use super::{is_cookie_name, Check};
use crate::config::{StepUpSettings, TokenSettings};
use crate::file::StepUpFile;

pub(super) fn step_up(
    c: &mut Check,
    f: &StepUpFile,
    tokens: &TokenSettings,
    policies: &[Arc<Policy>],
    routes: &RouteTable,
) -> StepUpSettings {
    let prefix = f
        .prefix
        .clone()
        .unwrap_or_else(|| "/.proofgate/".to_string());
    let clean = normalize_path(&prefix).ok().as_deref() == Some(prefix.as_str());
    if !clean || prefix == "/" || !prefix.ends_with('/') || prefix.contains(['*', ';']) {
        c.err(
            "step_up.prefix",
            format!("{prefix:?} must be a plain path starting and ending with '/', like \"/.proofgate/\""),
        );
    }
    let state_ttl = c.duration(
        "step_up.state_ttl",
        f.state_ttl.as_ref(),
        Duration::from_secs(600),
        Duration::from_secs(60),
        Duration::from_secs(3600),
    );
    let global = match f.global_per_minute {
        None => 30,
        Some(g @ 1..=99) => g,
        Some(g) => {
            c.err(
                "step_up.global_per_minute",
                format!(
                    "{g} is out of range; use 1 to 99: each start calls the Proof API, whose \
                     limit is 100 requests per minute per key"
                ),
            );
            30
        }
    };
    let per_client = c.int(
        "step_up.per_client_per_minute",
        f.per_client_per_minute,
        5.min(global),
        1,
        99,
    );
    if per_client > global {
        c.err(
            "step_up.per_client_per_minute",
            format!("{per_client} is above global_per_minute ({global})"),
        );
    }
    let token_cookie = tokens.cookie_name();
    let cookie_name = match (&f.cookie_name, token_cookie) {
        (Some(name), Some(source)) if name != source => {
            c.err(
                "step_up.cookie_name",
                format!(
                    "{name:?} would never be read back: the token cookie source is {source:?} \
                     (set tokens.cookie instead)"
                ),
            );
            name.clone()
        }
        (Some(name), _) => name.clone(),
        (None, Some(source)) => source.to_string(),
        (None, None) => "proof_token".to_string(),
    };
    if !is_cookie_name(&cookie_name) {
        c.err(
            "step_up.cookie_name",
            format!("{cookie_name:?} is not a valid cookie name"),
        );
    }
    let uses_step_up = policies
        .iter()
        .chain(std::iter::once(routes.default_policy()))
        .any(|p| p.on_failure == OnFailure::StepUp && !p.requirements().is_empty());
    if uses_step_up && token_cookie.is_none() {
        c.err(
            "tokens.sources",
            "a policy uses on_failure = \"step_up\", which ends by setting the proof cookie, \
             but \"cookie\" is not a token source",
        );
    }
    let state_cookie = f
        .state_cookie
        .clone()
        .unwrap_or_else(|| "proofgate_state".to_string());
    if !is_cookie_name(&state_cookie) || state_cookie == cookie_name {
        c.err(
            "step_up.state_cookie",
            format!("{state_cookie:?} must be a valid cookie name other than the proof cookie"),
        );
    }
    let public_url = f.public_url.as_ref().and_then(|raw| {
        match url::Url::parse(raw) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.path() == "/"
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && u.username().is_empty() =>
            {
                Some(raw.trim_end_matches('/').to_string())
            }
            _ => {
                c.err(
                    "step_up.public_url",
                    format!("{raw:?} must be an absolute http(s) URL with no path, like \"https://app.example\""),
                );
                None
            }
        }
    });
    let allowed_hosts = f.allowed_hosts.clone().unwrap_or_default();
    for (i, h) in allowed_hosts.iter().enumerate() {
        if let Err(e) = check_host_pattern(h) {
            c.err(format!("step_up.allowed_hosts[{i}]"), e.to_string());
        }
    }
    StepUpSettings {
        allowed_hosts,
        prefix,
        state_ttl,
        state_cookie,
        per_client_per_minute: per_client as u32,
        global_per_minute: global as u32,
        cookie_name,
        cookie_secure: f.cookie_secure.unwrap_or(true),
        public_url,
    }
}

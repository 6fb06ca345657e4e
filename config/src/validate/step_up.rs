//! `[step_up]`: endpoint prefix, state cookie, start rate limits, the proof cookie and the hosts a
//! step-up may return to.

use std::sync::Arc;
use std::time::Duration;

use proofgate_core::path::normalize_path;
use proofgate_core::policy::Policy;
use proofgate_core::routes::{check_host_pattern, RouteTable};

use super::{is_cookie_name, uses_step_up, Check};
use crate::config::{StepUpSettings, TokenSettings};
use crate::file::ConfigFile;

pub(super) fn step_up(
    c: &mut Check,
    file: &ConfigFile,
    tokens: &TokenSettings,
    policies: &[Arc<Policy>],
    routes: Option<&RouteTable>,
) -> StepUpSettings {
    let f = &file.step_up;
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
    let compared = ["step_up.per_client_per_minute", "step_up.global_per_minute"];
    if per_client > global && !compared.iter().any(|k| c.failed(k)) {
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
    // Taken from tokens.cookie when not given here, where a bad name is reported already.
    if f.cookie_name.is_some() && !is_cookie_name(&cookie_name) {
        c.err(
            "step_up.cookie_name",
            format!("{cookie_name:?} is not a valid cookie name"),
        );
    }
    let uses_step_up = uses_step_up(policies.iter().chain(routes.map(|t| t.default_policy())));
    if uses_step_up && token_cookie.is_none() && !c.failed("tokens.sources") {
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
    let cookie_secure = f.cookie_secure.unwrap_or(true);
    if uses_step_up && cookie_secure {
        check_secure_cookie_reaches(c, file, public_url.as_deref(), &allowed_hosts);
    }
    StepUpSettings {
        allowed_hosts,
        prefix,
        state_ttl,
        state_cookie,
        per_client_per_minute: per_client as u32,
        global_per_minute: global as u32,
        cookie_name,
        cookie_secure,
        public_url,
    }
}

/// Refuses `cookie_secure = true` where a step-up can start but never finish: on a plain-HTTP
/// listener bound to a non-loopback address (`0.0.0.0` included), when the step-up returns to
/// a name other than a loopback one over plain HTTP — `public_url` is `http://…`, or it is not
/// set and `allowed_hosts` or a route's `hosts` let such names start one. Browsers drop a
/// cookie marked `Secure` that comes over plain HTTP, so the state cookie set by `start` never
/// comes back to `callback`.
///
/// Without `public_url` and without such names, a step-up under a LAN name is refused
/// (`untrusted_host`) before anything is set, which `proofgate check` warns about instead; an
/// `https://` `public_url` means TLS terminates in front, where the cookie is kept.
fn check_secure_cookie_reaches(
    c: &mut Check,
    file: &ConfigFile,
    public_url: Option<&str>,
    allowed_hosts: &[String],
) {
    if c.failed("step_up.public_url") || c.failed("step_up.allowed_hosts") {
        return;
    }
    let names: Vec<String> = match public_url {
        Some(url) => match url::Url::parse(url) {
            Ok(u) if u.scheme() == "http" && !u.host_str().is_some_and(is_loopback_name) => {
                vec![url.to_string()]
            }
            _ => Vec::new(),
        },
        None => allowed_hosts
            .iter()
            .chain(file.routes.iter().flat_map(|r| r.hosts.iter()))
            .filter(|h| check_host_pattern(h).is_ok() && !is_loopback_name(h))
            .fold(Vec::new(), |mut names, h| {
                if !names.contains(h) {
                    names.push(h.clone());
                }
                names
            }),
    };
    if names.is_empty() {
        return;
    }
    let plain: Vec<String> = file
        .listeners
        .iter()
        .enumerate()
        .filter(|(i, l)| l.tls.is_none() && !c.failed(&format!("listeners[{i}]")))
        .filter_map(|(_, l)| l.address.as_deref()?.parse::<std::net::SocketAddr>().ok())
        .filter(|a| !a.ip().is_loopback())
        .map(|a| a.to_string())
        .collect();
    if plain.is_empty() {
        return;
    }
    let setting = if file.step_up.cookie_secure.is_some() {
        "cookie_secure = true"
    } else {
        "cookie_secure is true (the default)"
    };
    let (listeners, serves, lets) = match plain.as_slice() {
        [one] => (format!("plain-HTTP listener {one}"), "serves", "lets"),
        many => (
            format!("plain-HTTP listeners {}", many.join(", ")),
            "serve",
            "let",
        ),
    };
    let how = match public_url {
        Some(url) => format!("{serves} step-up and step_up.public_url is {url:?}, not https"),
        None => format!(
            "{lets} a step-up start for {} (step_up.allowed_hosts, routes' hosts) and \
             step_up.public_url is not set",
            names.join(", ")
        ),
    };
    c.err(
        "step_up.cookie_secure",
        format!(
            "{setting}, but {listeners} {how}: browsers drop a Secure cookie that comes over \
             plain HTTP, so the state cookie never comes back and the step-up can never \
             finish. Set step_up.cookie_secure = false for plain HTTP on a LAN; or serve TLS \
             on the listener ([listeners.tls]); or, when TLS terminates in front of \
             proofgate, set step_up.public_url = \"https://…\""
        ),
    );
}

/// Whether a host name or pattern names only this machine: `localhost`, a name below it,
/// `127.0.0.0/8` or `[::1]`.
fn is_loopback_name(host: &str) -> bool {
    let name = host
        .strip_prefix("*.")
        .unwrap_or(host)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

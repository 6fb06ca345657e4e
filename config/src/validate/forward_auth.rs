//! `[forward_auth]`: the decision API's path and the proxies trusted to call it.

use super::Check;
use crate::config::{ForwardAuth, IpRange, StepUpSettings, DEFAULT_FORWARD_AUTH_PATH};
use crate::file::ForwardAuthFile;

/// The step-up endpoints' names under `step_up.prefix`, which the endpoint must not shadow.
const STEP_UP_ENDPOINTS: [&str; 5] = ["start", "callback", "webhook", "logout", "approvals"];

pub(super) fn forward_auth(
    c: &mut Check,
    f: &ForwardAuthFile,
    step_up: &StepUpSettings,
) -> ForwardAuth {
    let enabled = f.enabled.unwrap_or(false);
    let path = f
        .path
        .clone()
        .unwrap_or_else(|| DEFAULT_FORWARD_AUTH_PATH.to_owned());
    let plain = path.len() <= 256
        && path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path.split('/').skip(1).all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        });
    if !plain {
        c.err(
            "forward_auth.path",
            format!(
                "{path:?} must be a plain absolute path without a trailing '/' (letters, digits, \
                 '-', '.', '_', '~' between slashes), like \"{DEFAULT_FORWARD_AUTH_PATH}\""
            ),
        );
    } else if let Some(endpoint) = STEP_UP_ENDPOINTS.iter().find(|e| {
        let endpoint = format!("{}{e}", step_up.prefix);
        endpoint == path || endpoint.starts_with(&format!("{path}/"))
    }) {
        c.err(
            "forward_auth.path",
            format!(
                "{path:?} would take over the step-up endpoint {}{endpoint}; choose another \
                 path, like \"{DEFAULT_FORWARD_AUTH_PATH}\"",
                step_up.prefix
            ),
        );
    }
    let mut trusted_proxies = Vec::new();
    for (i, raw) in f.trusted_proxies.iter().flatten().enumerate() {
        match raw.parse::<IpRange>() {
            Ok(range) => trusted_proxies.push(range),
            Err(()) => c.err(
                format!("forward_auth.trusted_proxies[{i}]"),
                format!(
                    "{raw:?} is not an address or an address range; write an address \
                     (\"10.0.0.7\", \"::1\") or a CIDR range (\"10.0.0.0/8\", \"fd00::/8\")"
                ),
            ),
        }
    }
    if enabled && f.trusted_proxies.as_ref().is_none_or(Vec::is_empty) {
        c.err(
            "forward_auth.trusted_proxies",
            "empty: with forward_auth enabled, list the addresses of the proxies that call the \
             endpoint, e.g. trusted_proxies = [\"127.0.0.1/32\"]; requests from any other \
             address are refused",
        );
    }
    ForwardAuth {
        enabled,
        path,
        trusted_proxies,
    }
}

//! `[issuer]`: the Proof API's URLs, the required `iss`, refresh intervals, staleness limits and
//! the fail mode.

use std::time::Duration;

use super::{fmt_d, Check};
use crate::config::{FailMode, IssuerSettings};
use crate::file::IssuerFile;

pub(super) fn issuer(c: &mut Check, f: &IssuerFile) -> IssuerSettings {
    const DEFAULT_BASE: &str = "https://api.proof.holdings";
    let api_base = match f.api_base.as_deref() {
        None => DEFAULT_BASE.to_string(),
        Some(raw) => c
            .url("issuer.api_base", raw)
            .unwrap_or_else(|| DEFAULT_BASE.to_string()),
    };
    let mut derived = |key: &str, value: Option<&String>, suffix: &str| match value {
        None => format!("{api_base}{suffix}"),
        Some(raw) => c
            .url(&format!("issuer.{key}"), raw)
            .unwrap_or_else(|| format!("{api_base}{suffix}")),
    };
    let jwks_url = derived("jwks_url", f.jwks_url.as_ref(), "/.well-known/jwks.json");
    let revocation_url = derived(
        "revocation_url",
        f.revocation_url.as_ref(),
        "/api/v1/proofs/revoked",
    );
    let status_list_url = match f.status_list_url.as_deref() {
        // The issuer publishes no status list: nothing is fetched at start.
        Some("") => String::new(),
        _ => derived(
            "status_list_url",
            f.status_list_url.as_ref(),
            "/api/v1/proofs/status-list",
        ),
    };
    let mut status_list_origins = Vec::new();
    for (i, raw) in f.status_list_origins.iter().flatten().enumerate() {
        let location = format!("issuer.status_list_origins[{i}]");
        let Some(u) = c.url(&location, raw) else {
            continue;
        };
        match url::Url::parse(&u) {
            Ok(parsed) if parsed.path() == "/" => {
                status_list_origins.push(parsed.origin().ascii_serialization());
            }
            _ => c.err(
                &location,
                format!("{raw:?}: an origin is scheme://host[:port], without a path"),
            ),
        }
    }
    // Compared only with what the file says: a bad api_base, status_list_url or origin was
    // reported already, and its stand-in says nothing about where the list is.
    let compared = [
        "issuer.api_base",
        "issuer.status_list_url",
        "issuer.status_list_origins",
    ];
    if !status_list_url.is_empty() && !compared.iter().any(|k| c.failed(k)) {
        let origin = |u: &str| {
            url::Url::parse(u)
                .ok()
                .map(|u| u.origin().ascii_serialization())
        };
        let list = origin(&status_list_url);
        if list.is_some()
            && list != origin(&api_base)
            && !status_list_origins.iter().any(|o| Some(o) == list.as_ref())
        {
            c.err(
                "issuer.status_list_url",
                format!(
                    "{status_list_url:?} is not on api_base's origin; status lists are fetched \
                     only from there unless the origin is listed in issuer.status_list_origins"
                ),
            );
        }
    }
    let issuer = match &f.issuer {
        Some(s) if s.trim().is_empty() || s.trim() != s => {
            c.err(
                "issuer.issuer",
                format!("{s:?} must be non-empty without spaces around"),
            );
            "proof.holdings".to_string()
        }
        Some(s) => s.clone(),
        None => "proof.holdings".to_string(),
    };
    const MIN: Duration = Duration::from_secs(1);
    const WEEK: Duration = Duration::from_secs(7 * 86_400);
    let jwks_refresh = c.duration(
        "issuer.jwks_refresh",
        f.jwks_refresh.as_ref(),
        Duration::from_secs(86_400),
        Duration::from_secs(60),
        WEEK,
    );
    let jwks_max_staleness = c.duration(
        "issuer.jwks_max_staleness",
        f.jwks_max_staleness.as_ref(),
        Duration::from_secs(86_400),
        Duration::from_secs(60),
        Duration::from_secs(30 * 86_400),
    );
    let compared = ["issuer.jwks_refresh", "issuer.jwks_max_staleness"];
    if jwks_max_staleness < jwks_refresh && !compared.iter().any(|k| c.failed(k)) {
        c.err(
            "issuer.jwks_max_staleness",
            format!(
                "{} is shorter than jwks_refresh ({}): keys would go stale between refreshes",
                fmt_d(jwks_max_staleness),
                fmt_d(jwks_refresh)
            ),
        );
    }
    let revocation_refresh = c.duration(
        "issuer.revocation_refresh",
        f.revocation_refresh.as_ref(),
        Duration::from_secs(300),
        Duration::from_secs(10),
        Duration::from_secs(86_400),
    );
    let revocation_max_staleness = c.duration(
        "issuer.revocation_max_staleness",
        f.revocation_max_staleness.as_ref(),
        Duration::from_secs(3600),
        Duration::from_secs(10),
        WEEK,
    );
    let compared = [
        "issuer.revocation_refresh",
        "issuer.revocation_max_staleness",
    ];
    if revocation_max_staleness < revocation_refresh && !compared.iter().any(|k| c.failed(k)) {
        c.err(
            "issuer.revocation_max_staleness",
            format!(
                "{} is shorter than revocation_refresh ({}): the list would go stale between \
                 refreshes",
                fmt_d(revocation_max_staleness),
                fmt_d(revocation_refresh)
            ),
        );
    }
    let unknown_kid_cooldown = c.duration(
        "issuer.unknown_kid_cooldown",
        f.unknown_kid_cooldown.as_ref(),
        Duration::from_secs(30),
        MIN,
        Duration::from_secs(3600),
    );
    let fetch_timeout = c.duration(
        "issuer.fetch_timeout",
        f.fetch_timeout.as_ref(),
        Duration::from_secs(10),
        Duration::from_secs(1),
        Duration::from_secs(120),
    );
    let retry_max_delay = c.duration(
        "issuer.retry_max_delay",
        f.retry_max_delay.as_ref(),
        Duration::from_secs(60),
        Duration::from_secs(1),
        Duration::from_secs(3600),
    );
    let leeway = c.duration(
        "issuer.leeway",
        f.leeway.as_ref(),
        Duration::from_secs(5),
        Duration::ZERO,
        Duration::from_secs(300),
    );
    let fail_mode = match f.fail_mode.as_deref() {
        None | Some("closed") => FailMode::Closed,
        Some("open") => FailMode::Open,
        Some(other) => {
            c.err(
                "issuer.fail_mode",
                format!(
                    "{other:?}; use \"closed\" (deny when revocation data is stale) or \"open\""
                ),
            );
            FailMode::Closed
        }
    };
    IssuerSettings {
        api_base,
        jwks_url,
        revocation_url,
        status_list_url,
        status_list_origins,
        issuer,
        jwks_refresh,
        jwks_max_staleness,
        revocation_refresh,
        revocation_max_staleness,
        unknown_kid_cooldown,
        fetch_timeout,
        retry_max_delay,
        leeway,
        fail_mode,
    }
}

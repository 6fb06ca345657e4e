//! Configuration hot reload: the file is watched (and reloaded on `SIGHUP`); a file that does not
//! validate is rejected, logged and counted, and the running configuration keeps serving.
//!
//! A reload applies what can change under a running process — routes, policies, upstreams,
//! `identity_headers.strip_token`, `server.favicon` and `logging.level` — and names the rest:
//! a setting the file changes that only a restart applies (listeners, the issuer, step-up, …,
//! see [`restart_only_changes`]) is listed in the reload's log line, in `/readyz` and in
//! `proofgate_config_restart_required`, until a restart or a reload that puts it back.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use proofgate_config::Config;

use crate::state::Gateway;

/// Sets the process's log level (`trace` … `error`); `Err` says why it was not applied.
type LogLevelHook = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static LOG_LEVEL_HOOK: OnceLock<LogLevelHook> = OnceLock::new();

/// Installs how a reload changes the log level: the `proofgate` binary, which owns the process's
/// tracing subscriber, passes a function that swaps its level filter (`Err` with the reason
/// when it cannot, e.g. `RUST_LOG` takes precedence). Set once per process; later calls are
/// ignored. Without it (a gateway embedded in another program) `logging.level` is one of the
/// settings a reload cannot apply.
pub fn set_log_level_hook(hook: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) {
    let _ = LOG_LEVEL_HOOK.set(Box::new(hook));
}

/// Reloads the configuration at `path` when the file changes (checked every second) or on
/// SIGHUP. A file that does not validate is rejected, logged and counted; the running
/// configuration keeps serving.
pub async fn watch_config(
    path: PathBuf,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mtime = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last: Option<SystemTime> = mtime(&path);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hup_fut = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup_fut = std::future::pending::<()>();
        let forced = tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            _ = hup_fut => true,
        };
        let now = mtime(&path);
        if !forced && now == last {
            continue;
        }
        last = now;
        reload(&path, &gateway);
    }
}

/// Loads, validates and applies the file at `path`; returns whether it was applied. The log
/// line says what awaits a restart: `configuration reloaded; restart needed for: listeners,
/// step_up.state_ttl`.
pub fn reload(path: &PathBuf, gateway: &Gateway) -> bool {
    let result = proofgate_config::Config::load(path)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            let restart = gateway.reload(&c).map_err(|e| e.to_string())?;
            Ok((c, restart))
        });
    match result {
        Ok((config, mut restart)) => {
            gateway.metrics.reloads.with_label_values(&["ok"]).inc();
            let level = apply_log_level(gateway, &config, &mut restart);
            let level = level.unwrap_or("unchanged");
            tracing::debug!(
                routes = config.routes.routes().len(),
                policies = config.policies.len(),
                upstreams = config.upstreams.len(),
                "configuration applied"
            );
            if restart.is_empty() {
                tracing::info!(path = %path.display(), log_level = level, "configuration reloaded");
            } else {
                let names = restart.join(", ");
                tracing::warn!(
                    path = %path.display(),
                    log_level = level,
                    restart_needed = %names,
                    "configuration reloaded; restart needed for: {names} (the running values keep serving)"
                );
            }
            gateway.set_restart_needed(restart);
            true
        }
        Err(e) => {
            gateway
                .metrics
                .reloads
                .with_label_values(&["rejected"])
                .inc();
            tracing::error!(path = %path.display(), error = %e, "configuration rejected; the previous one keeps serving");
            false
        }
    }
}

/// Applies `config`'s `logging.level` if it differs from the level in effect; returns the new
/// level when it was applied. Without a [hook](set_log_level_hook) a level other than the one
/// the process started with joins `restart`.
fn apply_log_level(
    gateway: &Gateway,
    config: &Config,
    restart: &mut Vec<&'static str>,
) -> Option<&'static str> {
    let wanted = config.logging.level;
    let Some(hook) = LOG_LEVEL_HOOK.get() else {
        if wanted != gateway.started_with.logging.level {
            restart.push("logging.level");
        }
        return None;
    };
    let mut current = gateway
        .log_level
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *current == wanted {
        return None;
    }
    match hook(wanted.as_str()) {
        Ok(()) => {
            *current = wanted;
            Some(wanted.as_str())
        }
        Err(why) => {
            tracing::warn!(
                log_level = wanted.as_str(),
                "logging.level not applied: {why}"
            );
            None
        }
    }
}

/// The settings in which `new` differs from `running` (what the process started with) and
/// that a reload cannot apply, named as in the file: `listeners`, `admin`, `server.threads`,
/// `issuer.jwks_refresh`, `tokens.sources`, `step_up.state_ttl`, `logging.json`,
/// `pages.product_name`, … The listeners, admin address, server settings and upgrade socket
/// are bound or handed to Pingora at start; the issuer, token, step-up and page settings are
/// built into the core's gate; the log format into the subscriber. What a reload applies is
/// not listed.
pub fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    macro_rules! compare {
        ($($name:literal: $($field:ident).+;)*) => {
            $(
                if running.$($field).+ != new.$($field).+ {
                    out.push($name);
                }
            )*
        };
    }
    compare! {
        "listeners": listeners;
        "admin": admin;
        "server.threads": server.threads;
        "server.work_stealing": server.work_stealing;
        "server.upstream_keepalive_pool_size": server.upstream_keepalive_pool_size;
        "server.grace_period": server.grace_period;
        "server.graceful_shutdown_timeout": server.graceful_shutdown_timeout;
        "server.upgrade_sock": server.upgrade_sock;
        "issuer.api_base": issuer.api_base;
        "issuer.jwks_url": issuer.jwks_url;
        "issuer.revocation_url": issuer.revocation_url;
        "issuer.status_list_url": issuer.status_list_url;
        "issuer.status_list_origins": issuer.status_list_origins;
        "issuer.issuer": issuer.issuer;
        "issuer.jwks_refresh": issuer.jwks_refresh;
        "issuer.jwks_max_staleness": issuer.jwks_max_staleness;
        "issuer.revocation_refresh": issuer.revocation_refresh;
        "issuer.revocation_max_staleness": issuer.revocation_max_staleness;
        "issuer.unknown_kid_cooldown": issuer.unknown_kid_cooldown;
        "issuer.fetch_timeout": issuer.fetch_timeout;
        "issuer.retry_max_delay": issuer.retry_max_delay;
        "issuer.leeway": issuer.leeway;
        "issuer.fail_mode": issuer.fail_mode;
        "tokens.sources": tokens.sources;
        "tokens.max_token_size": tokens.max_token_bytes;
        "tokens.cache_capacity": tokens.cache_capacity;
        "step_up.prefix": step_up.prefix;
        "step_up.state_ttl": step_up.state_ttl;
        "step_up.state_cookie": step_up.state_cookie;
        "step_up.per_client_per_minute": step_up.per_client_per_minute;
        "step_up.global_per_minute": step_up.global_per_minute;
        "step_up.cookie_name": step_up.cookie_name;
        "step_up.cookie_secure": step_up.cookie_secure;
        "step_up.public_url": step_up.public_url;
        "step_up.allowed_hosts": step_up.allowed_hosts;
        "logging.json": logging.json;
        "cluster": cluster;
        "approvals.ticket_ttl": approvals.ticket_ttl;
        "approvals.max_body_bytes": approvals.max_body_bytes;
        "approvals.poll_interval": approvals.poll_interval;
        "approvals.per_requester_per_minute": approvals.per_requester_per_minute;
        "approvals.global_per_minute": approvals.global_per_minute;
    }
    let (was, now) = (running.pages.branding(), new.pages.branding());
    for (name, changed) in [
        ("pages.product_name", was.product_name != now.product_name),
        ("pages.logo_url", was.logo_url != now.logo_url),
        ("pages.support_url", was.support_url != now.support_url),
    ] {
        if changed {
            out.push(name);
        }
    }
    // The template (read from `pages.template_dir` at load) has no accessor of its own; the
    // derived `Debug` shows every field.
    if running.pages.branding() == new.pages.branding()
        && format!("{:?}", running.pages) != format!("{:?}", new.pages)
    {
        out.push("pages.template_dir");
    }
    out
}

/// Every field of the configuration, sorted into what a reload applies and what
/// [`restart_only_changes`] compares. Not called: it exists to stop compiling when a field is
/// added, until it is sorted here (and, if a restart is needed for it, compared above).
#[allow(dead_code)]
fn every_setting_is_sorted(c: &Config) {
    use proofgate_config::{
        IdentityHeaders, IssuerSettings, Logging, ServerSettings, StepUpSettings, TokenSettings,
    };
    let Config {
        listeners: _,
        admin: _,
        server:
            ServerSettings {
                threads: _,
                work_stealing: _,
                upstream_keepalive_pool_size: _,
                grace_period: _,
                graceful_shutdown_timeout: _,
                upgrade_sock: _,
                favicon: _, // applied (crate::state::Live)
            },
        upstreams: _, // applied
        issuer:
            IssuerSettings {
                api_base: _,
                jwks_url: _,
                revocation_url: _,
                status_list_url: _,
                status_list_origins: _,
                issuer: _,
                jwks_refresh: _,
                jwks_max_staleness: _,
                revocation_refresh: _,
                revocation_max_staleness: _,
                unknown_kid_cooldown: _,
                fetch_timeout: _,
                retry_max_delay: _,
                leeway: _,
                fail_mode: _,
            },
        tokens:
            TokenSettings {
                sources: _,
                max_token_bytes: _,
                cache_capacity: _,
            },
        policies: _, // applied
        routes: _,   // applied
        identity_headers:
            IdentityHeaders {
                prefix: _,      // a constant
                strip_token: _, // applied
            },
        step_up:
            StepUpSettings {
                prefix: _,
                state_ttl: _,
                state_cookie: _,
                per_client_per_minute: _,
                global_per_minute: _,
                cookie_name: _,
                cookie_secure: _,
                public_url: _,
                allowed_hosts: _,
            },
        logging:
            Logging {
                json: _,
                level: _, // applied (apply_log_level)
            },
        forward_auth: _, // applied (crate::state::Live)
        pages: _,        // compared: branding and template
        cluster: _,      // compared: the connection and its tasks start with the process
        approvals:
            proofgate_config::ApprovalsSettings {
                ticket_ttl: _,               // compared
                max_body_bytes: _,           // compared
                poll_interval: _,            // compared
                per_requester_per_minute: _, // compared
                global_per_minute: _,        // compared
            },
    } = c;
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
default_policy = "open"
default_upstream = "app"

[[listeners]]
address = "127.0.0.1:8080"

[[upstreams]]
name = "app"
addresses = ["127.0.0.1:9000"]

[[policies]]
name = "open"
rule = "public"
"#;

    fn config(text: &str) -> Config {
        Config::from_toml_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn restart_only_settings_are_named_and_live_ones_are_not() {
        let base = config(BASE);
        assert!(restart_only_changes(&base, &base).is_empty());
        let cases = [
            ("127.0.0.1:8080", "127.0.0.1:8081", "listeners"),
            (
                "rule = \"public\"",
                "rule = \"public\"\n[server]\nthreads = 3\ngrace_period = \"1s\"",
                "server.threads, server.grace_period",
            ),
            (
                "rule = \"public\"",
                "rule = \"public\"\n[step_up]\nstate_ttl = \"1m\"\n[logging]\njson = true",
                "step_up.state_ttl, logging.json",
            ),
            (
                "rule = \"public\"",
                "rule = \"public\"\n[issuer]\napi_base = \"https://issuer.example\"",
                "issuer.api_base, issuer.jwks_url, issuer.revocation_url, issuer.status_list_url",
            ),
            (
                "rule = \"public\"",
                "rule = \"public\"\n[pages]\nproduct_name = \"Acme\"",
                "pages.product_name",
            ),
            // Applied by a reload: not named.
            (
                "rule = \"public\"",
                "rule = \"deny\"\n[identity_headers]\nstrip_token = true\n[server]\nfavicon = \"policy\"\n[logging]\nlevel = \"debug\"",
                "",
            ),
        ];
        for (from, to, want) in cases {
            let changed = config(&BASE.replace(from, to));
            assert_eq!(
                restart_only_changes(&base, &changed).join(", "),
                want,
                "{to}"
            );
            // And back: nothing left.
            assert!(restart_only_changes(&base, &config(BASE)).is_empty());
        }
    }
}

//! File format → runtime configuration, collecting every problem on the way.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proofgate_core::identifier;
use proofgate_core::path::normalize_path;
use proofgate_core::policy::{Combine, OnFailure, Policy, Requirement, Rule};
use proofgate_core::routes::{check_host_pattern, PathPattern, Route, RouteTable};
use proofgate_core::tokens::TokenSource;

use crate::config::*;
use crate::duration::parse_duration;
use crate::error::{line_col, ConfigError, ConfigErrors, ErrorKind};
use crate::file::*;
use crate::secrets::{API_KEY_ENV, COOKIE_KEY_ENV, WEBHOOK_SECRET_ENV};

/// Proof types and their channels (the core's catalog, from the issuer's OpenAPI document). A
/// known type with a channel not listed here can never match and is refused; types not listed
/// (newer ones) pass unchecked.
pub use proofgate_core::catalog::VERIFICATION_TYPES;

/// The identity headers the gateway sets; a token header may not be one of them.
use proofgate_core::catalog::IDENTITY_HEADER_NAMES as IDENTITY_HEADERS;

/// Keys that would hold a secret, and the variable to use instead.
const SECRET_KEYS: &[(&str, &str)] = &[
    ("api_key", API_KEY_ENV),
    ("proof_api_key", API_KEY_ENV),
    ("apikey", API_KEY_ENV),
    ("cookie_key", COOKIE_KEY_ENV),
    ("cookie_secret", COOKIE_KEY_ENV),
    ("state_key", COOKIE_KEY_ENV),
    ("webhook_secret", WEBHOOK_SECRET_ENV),
    ("proof_webhook_secret", WEBHOOK_SECRET_ENV),
    ("secret", ""),
    ("secret_key", ""),
    ("hmac_key", ""),
    ("password", ""),
    ("private_key", ""),
];

/// Parses the text: a TOML table first (syntax errors with line and column), then a scan for
/// secrets, then the typed file format.
pub(crate) fn parse(text: &str) -> Result<ConfigFile, ConfigErrors> {
    let syntax = |e: toml::de::Error| {
        ConfigErrors::one(ConfigError {
            kind: ErrorKind::Syntax,
            location: String::new(),
            line_col: e.span().map(|s| line_col(text, s.start)),
            message: e.message().trim().to_string(),
        })
    };
    if let Some(offset) = too_deep(text) {
        return Err(ConfigErrors::one(ConfigError {
            kind: ErrorKind::Syntax,
            location: String::new(),
            line_col: Some(line_col(text, offset)),
            message: format!("arrays and tables nested deeper than {MAX_NESTING} levels"),
        }));
    }
    let table: toml::Table = text.parse().map_err(syntax)?;
    let mut errors = Vec::new();
    scan_secrets(&toml::Value::Table(table), &mut String::new(), &mut errors);
    if let Some(errors) = ConfigErrors::from_vec(errors) {
        return Err(errors);
    }
    toml::from_str(text).map_err(syntax)
}

/// Deepest nesting of `[` and `{` accepted; the real format needs 3.
const MAX_NESTING: usize = 32;

/// The offset where brackets nest deeper than [`MAX_NESTING`], if they do.
///
/// The TOML parser recurses once per level and stops at 80, which takes more than 1 MiB of
/// stack in a debug build; refusing deep input up front keeps parsing cheap on any thread.
/// Strings and comments are skipped so that brackets inside them neither count nor hide others.
fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let triple = b[i..].starts_with(&[q, q, q]);
                i += if triple { 3 } else { 1 };
                while i < b.len() {
                    if q == b'"' && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q && (!triple || b[i..].starts_with(&[q, q, q])) {
                        i += if triple { 2 } else { 0 };
                        break;
                    }
                    if !triple && b[i] == b'\n' {
                        break;
                    }
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

fn scan_secrets(value: &toml::Value, path: &mut String, errors: &mut Vec<ConfigError>) {
    let secret = |location: &str, message: String| ConfigError {
        kind: ErrorKind::Secret,
        location: location.to_string(),
        line_col: None,
        message,
    };
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let lower = key.to_ascii_lowercase();
                if let Some((_, var)) = SECRET_KEYS.iter().find(|(k, _)| *k == lower) {
                    let message = if var.is_empty() {
                        format!(
                            "secrets are never read from the configuration file; proofgate reads \
                             them from the environment only ({API_KEY_ENV}, {COOKIE_KEY_ENV}, \
                             {WEBHOOK_SECRET_ENV})"
                        )
                    } else {
                        format!(
                            "secrets are never read from the configuration file; remove this key \
                             and set the {var} environment variable instead"
                        )
                    };
                    errors.push(secret(path, message));
                } else {
                    scan_secrets(value, path, errors);
                }
                path.truncate(len);
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                scan_secrets(item, path, errors);
                path.truncate(len);
            }
        }
        toml::Value::String(s) => {
            let looks_secret = s.starts_with("pk_live_")
                || s.starts_with("pk_test_")
                || s.starts_with("whsec_")
                || s.contains("PRIVATE KEY-----");
            if looks_secret {
                // The value itself is never repeated in the message.
                errors.push(secret(
                    path,
                    format!(
                        "this value looks like a secret (an API key, webhook secret or private \
                         key); secrets are read from the environment only ({API_KEY_ENV}, \
                         {COOKIE_KEY_ENV}, {WEBHOOK_SECRET_ENV})"
                    ),
                ));
            }
        }
        _ => {}
    }
}

/// Collects problems while building the runtime configuration.
struct Check {
    errors: Vec<ConfigError>,
}

impl Check {
    fn err(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::invalid(location, message));
    }

    /// A duration at `location`, `default` when absent, refused below `min` or above `max`.
    fn duration(
        &mut self,
        location: &str,
        value: Option<&String>,
        default: Duration,
        min: Duration,
        max: Duration,
    ) -> Duration {
        let Some(raw) = value else { return default };
        match parse_duration(raw) {
            Ok(d) if d < min => {
                self.err(
                    location,
                    format!("{raw:?} is too short; at least {}", fmt_d(min)),
                );
                default
            }
            Ok(d) if d > max => {
                self.err(
                    location,
                    format!("{raw:?} is too long; at most {}", fmt_d(max)),
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.err(location, e.to_string());
                default
            }
        }
    }

    /// An integer at `location`, `default` when absent, refused outside `min..=max`.
    fn int(&mut self, location: &str, value: Option<u64>, default: u64, min: u64, max: u64) -> u64 {
        match value {
            None => default,
            Some(v) if (min..=max).contains(&v) => v,
            Some(v) => {
                self.err(location, format!("{v} is out of range; use {min} to {max}"));
                default
            }
        }
    }

    /// A required name: present, 1–64 characters of letters, digits, `-`, `_` and `.`.
    fn name(&mut self, location: &str, value: Option<&String>) -> Option<String> {
        match value {
            None => {
                self.err(location, "missing");
                None
            }
            Some(n) if is_name(n) => Some(n.clone()),
            Some(n) => {
                self.err(
                    location,
                    format!(
                        "{n:?} is not a valid name; use 1 to 64 letters, digits, '-', '_' or '.'"
                    ),
                );
                None
            }
        }
    }

    /// Reports names seen twice.
    fn unique<'a>(&mut self, section: &str, names: impl Iterator<Item = (usize, &'a String)>) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, name) in names {
            if let Some(first) = seen.get(name.as_str()) {
                self.err(
                    format!("{section}[{i}].name"),
                    format!("duplicate name {name:?} (first used by {section}[{first}])"),
                );
            } else {
                seen.insert(name, i);
            }
        }
    }

    /// An `http(s)` URL; plain `http` only for loopback hosts.
    fn url(&mut self, location: &str, raw: &str) -> Option<String> {
        let parsed = match url::Url::parse(raw) {
            Ok(u) => u,
            Err(e) => {
                self.err(location, format!("{raw:?} is not a URL: {e}"));
                return None;
            }
        };
        let loopback = match parsed.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                self.err(
                    location,
                    format!(
                        "{raw:?}: plain http is allowed only for loopback hosts (a local \
                         sandbox); keys and revocation data must come over https"
                    ),
                );
                return None;
            }
            other => {
                self.err(location, format!("{raw:?}: scheme {other:?}; use https"));
                return None;
            }
        }
        if parsed.query().is_some() || parsed.fragment().is_some() || parsed.host().is_none() {
            self.err(
                location,
                format!("{raw:?} must have a host and no query or fragment"),
            );
            return None;
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            self.err(
                location,
                "credentials in a URL are not allowed; secrets come from the environment",
            );
            return None;
        }
        Some(raw.trim_end_matches('/').to_string())
    }

    /// Reports `name` as unknown among `known`, with a suggestion when one is close.
    fn unknown(&mut self, location: &str, what: &str, name: &str, known: &[&str]) {
        let suggestion = known
            .iter()
            .map(|k| (edit_distance(name, k), *k))
            .filter(|(d, k)| *d <= 2.max(k.len() / 3))
            .min()
            .map(|(_, k)| format!(" (did you mean {k:?}?)"))
            .unwrap_or_default();
        let list = if known.is_empty() {
            format!("no {what} is declared")
        } else {
            format!("declared: {}", known.join(", "))
        };
        self.err(
            location,
            format!("unknown {what} {name:?}{suggestion}; {list}"),
        );
    }
}

pub(crate) fn validate(file: &ConfigFile) -> Result<Config, ConfigErrors> {
    let mut c = Check { errors: Vec::new() };
    let listeners = listeners(&mut c, &file.listeners);
    let admin = file.admin.as_ref().map(|a| admin(&mut c, a));
    check_address_clash(&mut c, &listeners, admin.as_ref());
    let server = server(&mut c, &file.server);
    let upstreams = upstreams(&mut c, &file.upstreams);
    let issuer = issuer(&mut c, &file.issuer);
    let tokens = tokens(&mut c, &file.tokens);
    let policies = policies(&mut c, &file.policies);
    let routes = routes(&mut c, file, &policies, &upstreams);
    let identity_headers = identity_headers(&mut c, &file.identity_headers);
    let logging = logging(&mut c, &file.logging);
    let step_up = routes
        .as_ref()
        .map(|table| step_up(&mut c, &file.step_up, &tokens, &policies, table));

    match (ConfigErrors::from_vec(c.errors), routes, step_up) {
        (None, Some(routes), Some(step_up)) => Ok(Config {
            listeners,
            admin,
            server,
            upstreams,
            issuer,
            tokens,
            policies,
            routes,
            identity_headers,
            step_up,
            logging,
        }),
        (Some(errors), _, _) => Err(errors),
        // Unreachable: a missing route table always comes with an error; kept total anyway.
        (None, _, _) => Err(ConfigErrors::one(ConfigError::invalid(
            "routes",
            "could not be built",
        ))),
    }
}

fn listeners(c: &mut Check, files: &[ListenerFile]) -> Vec<Listener> {
    if files.is_empty() {
        c.err(
            "listeners",
            "at least one [[listeners]] entry is required, e.g. address = \"0.0.0.0:8080\"",
        );
    }
    let mut out = Vec::new();
    for (i, l) in files.iter().enumerate() {
        let at = format!("listeners[{i}]");
        let address = socket_addr(c, &format!("{at}.address"), l.address.as_deref());
        let tls = l.tls.as_ref().and_then(|t| {
            let cert = path_field(c, &format!("{at}.tls.cert"), t.cert.as_deref());
            let key = path_field(c, &format!("{at}.tls.key"), t.key.as_deref());
            Some(ListenerTls {
                cert_path: cert?,
                key_path: key?,
            })
        });
        if let Some(address) = address {
            out.push(Listener { address, tls });
        }
    }
    out
}

fn admin(c: &mut Check, file: &AdminFile) -> AdminListener {
    let default = SocketAddr::from(([127, 0, 0, 1], 9091));
    let address = match file.address.as_deref() {
        None => default,
        Some(_) => socket_addr(c, "admin.address", file.address.as_deref()).unwrap_or(default),
    };
    AdminListener { address }
}

fn check_address_clash(c: &mut Check, listeners: &[Listener], admin: Option<&AdminListener>) {
    let mut seen: HashMap<SocketAddr, String> = HashMap::new();
    let all = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("listeners[{i}].address"), l.address))
        .chain(admin.map(|a| ("admin.address".to_string(), a.address)));
    for (at, address) in all {
        if address.port() == 0 {
            continue;
        }
        if let Some(first) = seen.get(&address) {
            c.err(&at, format!("{address} is already used by {first}"));
        } else {
            seen.insert(address, at);
        }
    }
}

fn socket_addr(c: &mut Check, at: &str, value: Option<&str>) -> Option<SocketAddr> {
    match value {
        None => {
            c.err(at, "missing; write ip:port, e.g. \"0.0.0.0:8080\"");
            None
        }
        Some(v) => match v.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                c.err(
                    at,
                    format!("{v:?} is not ip:port (e.g. \"0.0.0.0:8080\" or \"[::]:8443\")"),
                );
                None
            }
        },
    }
}

fn path_field(c: &mut Check, at: &str, value: Option<&str>) -> Option<PathBuf> {
    match value {
        Some(v) if !v.trim().is_empty() => Some(PathBuf::from(v)),
        Some(_) => {
            c.err(at, "empty path");
            None
        }
        None => {
            c.err(at, "missing; TLS needs both cert and key (PEM file paths)");
            None
        }
    }
}

fn server(c: &mut Check, f: &ServerFile) -> ServerSettings {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    ServerSettings {
        threads: c.int("server.threads", f.threads, cores, 1, 1024) as usize,
        work_stealing: f.work_stealing.unwrap_or(false),
        upstream_keepalive_pool_size: c.int(
            "server.upstream_keepalive_pool_size",
            f.upstream_keepalive_pool_size,
            128,
            0,
            1_000_000,
        ) as usize,
        grace_period: c.duration(
            "server.grace_period",
            f.grace_period.as_ref(),
            Duration::from_secs(300),
            Duration::ZERO,
            Duration::from_secs(3600),
        ),
        graceful_shutdown_timeout: c.duration(
            "server.graceful_shutdown_timeout",
            f.graceful_shutdown_timeout.as_ref(),
            Duration::from_secs(5),
            Duration::ZERO,
            Duration::from_secs(3600),
        ),
        upgrade_sock: upgrade_sock(c, f.upgrade_sock.as_deref()),
    }
}

fn upgrade_sock(c: &mut Check, value: Option<&str>) -> PathBuf {
    const AT: &str = "server.upgrade_sock";
    let Some(v) = value else {
        return PathBuf::from(DEFAULT_UPGRADE_SOCK);
    };
    // A Unix socket address holds at most 107 bytes of path (108 with the terminating NUL).
    if !v.starts_with('/') {
        c.err(AT, format!("{v:?} is not an absolute path; both processes of an upgrade must name the same file"));
    } else if v.len() > 107 {
        c.err(
            AT,
            format!("{} bytes; a Unix socket path holds at most 107", v.len()),
        );
    } else if v.ends_with('/') || v.contains('\0') {
        c.err(AT, format!("{v:?} is not a file path"));
    }
    PathBuf::from(v)
}

fn upstreams(c: &mut Check, files: &[UpstreamFile]) -> Vec<Upstream> {
    if files.is_empty() {
        c.err(
            "upstreams",
            "at least one [[upstreams]] entry is required (name and addresses)",
        );
    }
    let mut out = Vec::new();
    for (i, u) in files.iter().enumerate() {
        let at = format!("upstreams[{i}]");
        let name = c.name(&format!("{at}.name"), u.name.as_ref());
        if u.addresses.is_empty() {
            c.err(
                format!("{at}.addresses"),
                "empty; list at least one \"host:port\"",
            );
        }
        let mut addresses: Vec<String> = Vec::new();
        for (j, a) in u.addresses.iter().enumerate() {
            let loc = format!("{at}.addresses[{j}]");
            if !is_host_port(a) {
                c.err(
                    &loc,
                    format!("{a:?} is not host:port (no scheme or path, e.g. \"10.0.0.5:8080\")"),
                );
            } else if addresses.contains(a) {
                c.err(&loc, format!("{a:?} is listed twice"));
            } else {
                addresses.push(a.clone());
            }
        }
        let connect_timeout = c.duration(
            &format!("{at}.connect_timeout"),
            u.connect_timeout.as_ref(),
            Duration::from_secs(5),
            Duration::from_millis(1),
            Duration::from_secs(300),
        );
        let read_timeout = c.duration(
            &format!("{at}.read_timeout"),
            u.read_timeout.as_ref(),
            Duration::from_secs(60),
            Duration::from_millis(1),
            Duration::from_secs(24 * 3600),
        );
        let health_check = u.health_check.as_ref().map(|h| {
            let path = h.path.clone().unwrap_or_else(|| "/healthz".to_string());
            if normalize_path(&path).ok().as_deref() != Some(path.as_str()) || path.contains('?') {
                c.err(
                    format!("{at}.health_check.path"),
                    format!("{path:?} must be a plain absolute path like \"/healthz\""),
                );
            }
            HealthCheck {
                path,
                interval: c.duration(
                    &format!("{at}.health_check.interval"),
                    h.interval.as_ref(),
                    Duration::from_secs(10),
                    Duration::from_millis(100),
                    Duration::from_secs(3600),
                ),
            }
        });
        let tls = u.tls.as_ref().map(|t| {
            let sni = match &t.sni {
                Some(s) if !s.is_empty() && check_host_pattern(s).is_ok() && !s.contains('*') => {
                    s.clone()
                }
                Some(s) => {
                    c.err(format!("{at}.tls.sni"), format!("{s:?} is not a host name"));
                    String::new()
                }
                None => match u.addresses.first().map(|a| host_of(a)) {
                    Some(host) if host.parse::<IpAddr>().is_err() && !host.starts_with('[') => {
                        host.to_string()
                    }
                    _ => {
                        c.err(
                            format!("{at}.tls.sni"),
                            "missing; required when the first address is an IP address",
                        );
                        String::new()
                    }
                },
            };
            UpstreamTls {
                sni,
                verify: t.verify.unwrap_or(true),
            }
        });
        if let Some(name) = name {
            out.push(Upstream {
                name,
                addresses,
                connect_timeout,
                read_timeout,
                health_check,
                tls,
            });
        }
    }
    c.unique(
        "upstreams",
        files
            .iter()
            .enumerate()
            .filter_map(|(i, u)| Some((i, u.name.as_ref()?))),
    );
    out
}

fn issuer(c: &mut Check, f: &IssuerFile) -> IssuerSettings {
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
    if !status_list_url.is_empty() {
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
    if jwks_max_staleness < jwks_refresh {
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
    if revocation_max_staleness < revocation_refresh {
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

fn tokens(c: &mut Check, f: &TokensFile) -> TokenSettings {
    let header_name = f.header.as_deref().unwrap_or("x-proof-token");
    let header = match http::HeaderName::from_bytes(header_name.as_bytes()) {
        Ok(h) if h == http::header::AUTHORIZATION || h == http::header::COOKIE => {
            c.err(
                "tokens.header",
                format!("{header_name:?}: use the \"bearer\" or \"cookie\" source instead"),
            );
            None
        }
        Ok(h) if IDENTITY_HEADERS.contains(&h.as_str()) => {
            c.err(
                "tokens.header",
                format!("{header_name:?} is an identity header the gateway sets"),
            );
            None
        }
        Ok(h) => Some(h),
        Err(_) => {
            c.err(
                "tokens.header",
                format!("{header_name:?} is not a valid header name"),
            );
            None
        }
    };
    let cookie = f
        .cookie
        .clone()
        .unwrap_or_else(|| "proof_token".to_string());
    if !is_cookie_name(&cookie) {
        c.err(
            "tokens.cookie",
            format!("{cookie:?} is not a valid cookie name"),
        );
    }
    let default_sources = ["bearer", "header", "cookie"].map(String::from).to_vec();
    let names = f.sources.as_ref().unwrap_or(&default_sources);
    if names.is_empty() {
        c.err(
            "tokens.sources",
            "empty; list one or more of \"bearer\", \"header\", \"cookie\"",
        );
    }
    let mut sources = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let at = format!("tokens.sources[{i}]");
        if names[..i].contains(name) {
            c.err(&at, format!("{name:?} is listed twice"));
            continue;
        }
        match name.as_str() {
            "bearer" => sources.push(TokenSource::Bearer),
            "header" => sources.extend(header.clone().map(TokenSource::Header)),
            "cookie" => sources.push(TokenSource::Cookie(cookie.clone())),
            other => c.err(
                &at,
                format!("{other:?}; use \"bearer\", \"header\" or \"cookie\""),
            ),
        }
    }
    TokenSettings {
        sources,
        max_token_bytes: c.int("tokens.max_token_size", f.max_token_size, 8192, 256, 65_536)
            as usize,
        cache_capacity: c.int(
            "tokens.cache_capacity",
            f.cache_capacity,
            100_000,
            1,
            10_000_000,
        ),
    }
}

fn policies(c: &mut Check, files: &[PolicyFile]) -> Vec<Arc<Policy>> {
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
        if let Some(name) = name {
            out.push(Arc::new(Policy {
                name,
                rule,
                on_failure,
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

fn routes(
    c: &mut Check,
    file: &ConfigFile,
    policies: &[Arc<Policy>],
    upstreams: &[Upstream],
) -> Option<RouteTable> {
    let policy_names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
    let upstream_names: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
    let find_policy = |name: &str| policies.iter().find(|p| p.name == name).cloned();

    let default_upstream = match &file.default_upstream {
        Some(name) if upstream_names.contains(&name.as_str()) => Some(name.clone()),
        Some(name) => {
            c.unknown("default_upstream", "upstream", name, &upstream_names);
            None
        }
        None if file.upstreams.len() == 1 => upstreams.first().map(|u| u.name.clone()),
        None => None,
    };
    let several_without_default = file.default_upstream.is_none() && file.upstreams.len() > 1;

    let default_policy = match &file.default_policy {
        Some(name) => match find_policy(name) {
            Some(p) => {
                if several_without_default && p.rule != Rule::Deny {
                    c.err(
                        "default_upstream",
                        "missing; required when several upstreams are declared and the \
                         default policy is not a deny policy",
                    );
                }
                Some(p)
            }
            None => {
                c.unknown("default_policy", "policy", name, &policy_names);
                None
            }
        },
        None => {
            c.err(
                "default_policy",
                "missing; name the policy for requests that match no route (a deny policy \
                 for zero trust)",
            );
            None
        }
    };

    let mut routes = Vec::new();
    for (i, r) in file.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        let name = c.name(&format!("{at}.name"), r.name.as_ref());
        if name.as_deref() == Some(proofgate_core::routes::DEFAULT_ROUTE_NAME) {
            c.err(
                format!("{at}.name"),
                "\"default\" is reserved for requests that match no route",
            );
        }
        for (j, h) in r.hosts.iter().enumerate() {
            if let Err(e) = check_host_pattern(h) {
                c.err(format!("{at}.hosts[{j}]"), e.to_string());
            }
        }
        let path = match r.path.as_deref() {
            None => {
                c.err(
                    format!("{at}.path"),
                    "missing; a prefix like \"/api\" or a glob like \"/admin/**\"",
                );
                None
            }
            Some(p) => match PathPattern::parse(p) {
                Ok(p) => Some(p),
                Err(e) => {
                    c.err(format!("{at}.path"), e.to_string());
                    None
                }
            },
        };
        let mut methods = Vec::new();
        for (j, m) in r.methods.iter().enumerate() {
            match http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(m) => methods.push(m),
                Err(_) => c.err(
                    format!("{at}.methods[{j}]"),
                    format!("{m:?} is not an HTTP method"),
                ),
            }
        }
        let policy = match r.policy.as_deref() {
            None => {
                c.err(format!("{at}.policy"), "missing; name one of [[policies]]");
                None
            }
            Some(name) => {
                let p = find_policy(name);
                if p.is_none() {
                    c.unknown(&format!("{at}.policy"), "policy", name, &policy_names);
                }
                p
            }
        };
        let upstream = match r.upstream.as_deref() {
            Some(name) if upstream_names.contains(&name) => Some(name.to_string()),
            Some(name) => {
                c.unknown(&format!("{at}.upstream"), "upstream", name, &upstream_names);
                None
            }
            None => {
                let denies = policy.as_ref().is_some_and(|p| p.rule == Rule::Deny);
                if several_without_default && !denies {
                    c.err(
                        format!("{at}.upstream"),
                        "missing; required when several upstreams are declared and no \
                         default_upstream is set",
                    );
                }
                None
            }
        };
        if let (Some(name), Some(path), Some(policy)) = (name, path, policy) {
            routes.push(Route {
                name,
                hosts: r.hosts.clone(),
                path,
                methods,
                policy,
                upstream,
            });
        }
    }
    c.unique(
        "routes",
        file.routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i, r.name.as_ref()?))),
    );
    Some(RouteTable::new(routes, default_policy?).with_default_upstream(default_upstream))
}

fn identity_headers(c: &mut Check, f: &IdentityHeadersFile) -> IdentityHeaders {
    if let Some(prefix) = &f.prefix {
        if !prefix.eq_ignore_ascii_case("x-proof-") {
            c.err(
                "identity_headers.prefix",
                format!("{prefix:?}: the prefix is fixed to \"x-proof-\"; remove the key"),
            );
        }
    }
    IdentityHeaders {
        prefix: "x-proof-",
        strip_token: f.strip_token.unwrap_or(false),
    }
}

fn step_up(
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

fn logging(c: &mut Check, f: &LoggingFile) -> Logging {
    let level = match f.level.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("info") => LogLevel::Info,
        Some("trace") => LogLevel::Trace,
        Some("debug") => LogLevel::Debug,
        Some("warn" | "warning") => LogLevel::Warn,
        Some("error") => LogLevel::Error,
        Some(other) => {
            c.err(
                "logging.level",
                format!("{other:?}; use trace, debug, info, warn or error"),
            );
            LogLevel::Info
        }
    };
    Logging {
        json: f.json.unwrap_or(false),
        level,
    }
}

fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// RFC 6265 cookie-name: an RFC 7230 token.
fn is_cookie_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn host_of(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(h, _)| h)
}

fn is_host_port(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    port_ok && host_ok
}

fn fmt_d(d: Duration) -> String {
    crate::duration::format_duration(d)
}

/// Levenshtein distance, for "did you mean" hints; names are short.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_outside_strings_and_comments() {
        let deep = |n: usize| format!("x = {}1{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(too_deep(&deep(MAX_NESTING)), None);
        assert_eq!(too_deep(&deep(MAX_NESTING + 1)), Some(4 + MAX_NESTING));
        // Closing brackets in strings and comments do not hide depth...
        let hidden = format!(
            "x = [ \"{}\", '{}', \"\"\"\n{}\"\"\" # {}\n{}",
            "]".repeat(40),
            "]".repeat(40),
            "]".repeat(40),
            "]".repeat(40),
            "[".repeat(40)
        );
        assert!(too_deep(&hidden).is_some());
        // ...and opening ones there do not count.
        let quoted = format!(
            "a = \"{}\"\nb = '{}' # {}\nc = \"\\\"[[[\"",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert_eq!(too_deep(&quoted), None);
        assert_eq!(too_deep("[[routes]]\nx = [{ a = [1] }]"), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("admn", "admin"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn host_port_forms() {
        for ok in [
            "10.0.0.5:8080",
            "app.internal:80",
            "[::1]:3000",
            "localhost:1",
        ] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "10.0.0.5",
            "http://x:80",
            "x:0",
            "x:99999",
            ":80",
            "[zz]:80",
            "a b:80",
            "x/y:80",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

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

//! File format → runtime configuration, collecting every problem on the way.
//!
//! `parse` reads the text into the file format; `validate` then builds each section of the
//! runtime configuration in that section's module (listeners and the admin listener, server,
//! upstreams, issuer, tokens, policies, routes, identity headers, step-up, logging, forward
//! auth), one `Check` collecting the problems of all of them. Helpers more than one section
//! uses live here.

use std::collections::HashMap;
use std::time::Duration;

use proofgate_core::policy::{OnFailure, Policy};

use crate::config::Config;
use crate::duration::parse_duration;
use crate::error::{ConfigError, ConfigErrors};
use crate::file::ConfigFile;

mod approvals;
mod cluster;
mod forward_auth;
mod identity_headers;
mod issuer;
mod listeners;
mod logging;
mod pages;
mod parse;
mod policies;
mod routes;
mod schema;
mod server;
mod step_up;
mod tokens;
mod upstreams;

use self::cluster::cluster;
use self::forward_auth::forward_auth;
use self::identity_headers::identity_headers;
use self::issuer::issuer;
use self::listeners::{admin, check_address_clash, listeners};
use self::logging::logging;
use self::pages::pages;
pub(crate) use self::parse::parse;
use self::policies::policies;
use self::routes::routes;
use self::server::server;
use self::step_up::step_up;
use self::tokens::tokens;
use self::upstreams::upstreams;

/// Proof types and their channels (the core's catalog, from the issuer's OpenAPI document). A
/// known type with a channel not listed here can never match and is refused; types not listed
/// (newer ones) pass unchecked.
pub use proofgate_core::catalog::VERIFICATION_TYPES;

/// Collects problems while building the runtime configuration.
struct Check {
    errors: Vec<ConfigError>,
}

impl Check {
    fn err(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::invalid(location, message));
    }

    /// Whether a problem was already reported at `location` or below it (`routes[1]` covers
    /// `routes[1].methods[0]`). A check that compares a key with another skips when either
    /// failed: the value it would compare is a default that stands in for the bad one, and
    /// the resulting error would be about something the file does not say.
    fn failed(&self, location: &str) -> bool {
        self.errors.iter().any(|e| {
            e.location
                .strip_prefix(location)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
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
    // `None` too when the address is bad (an error already): no clash with a stand-in.
    let admin = file.admin.as_ref().and_then(|a| admin(&mut c, a));
    check_address_clash(&mut c, &listeners, admin.as_ref());
    let server = server(&mut c, &file.server);
    let upstreams = upstreams(&mut c, &file.upstreams);
    let issuer = issuer(&mut c, &file.issuer);
    let tokens = tokens(&mut c, &file.tokens);
    let policies = policies(&mut c, &file.policies);
    self::policies::check_binding(&mut c, &file.policies, &listeners);
    let routes = routes(&mut c, file, &policies, &upstreams);
    let identity_headers = identity_headers(&mut c, &file.identity_headers);
    let logging = logging(&mut c, &file.logging);
    let pages = pages(&mut c, &file.pages);
    let step_up = step_up(&mut c, file, &tokens, &policies, routes.as_ref());
    let forward_auth = forward_auth(&mut c, &file.forward_auth, &step_up);
    let cluster = file.cluster.as_ref().map(|f| cluster(&mut c, f));
    let approvals = self::approvals::approvals(&mut c, &file.approvals, &policies);

    match (ConfigErrors::from_vec(c.errors), routes) {
        (None, Some(routes)) => Ok(Config {
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
            pages,
            forward_auth,
            cluster,
            approvals,
        }),
        (Some(errors), _) => Err(with_lines(errors, &file.locations)),
        // Unreachable: a missing route table always comes with an error; kept total anyway.
        (None, _) => Err(ConfigErrors::one(ConfigError::invalid(
            "routes",
            "could not be built",
        ))),
    }
}

/// Gives each problem the line of its key, or of the nearest enclosing key or table, when the
/// file says where that is, and puts them in file order (those with no line first).
fn with_lines(errors: ConfigErrors, locations: &crate::error::Locations) -> ConfigErrors {
    let mut errors: Vec<ConfigError> = errors
        .into_iter()
        .map(|mut e| {
            if e.line_col.is_none() {
                e.line_col = locations.nearest(&e.location);
            }
            e
        })
        .collect();
    errors.sort_by_key(|e| e.line_col);
    ConfigErrors::from_vec(errors).expect("non-empty")
}

/// Whether a policy among `policies` (or the default policy) may answer with a step-up.
pub(crate) fn uses_step_up<'a>(
    policies: impl IntoIterator<Item = &'a std::sync::Arc<Policy>>,
) -> bool {
    policies
        .into_iter()
        .any(|p| p.on_failure == OnFailure::StepUp && p.has_proof_requirement())
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
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("admn", "admin"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}

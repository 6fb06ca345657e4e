//! `[[routes]]` and the default route: hosts, path patterns and methods, resolved to policies
//! and upstreams by name.

use std::sync::Arc;

use http::Method;
use proofgate_core::path::normalize_path;
use proofgate_core::policy::{Policy, Rule};
use proofgate_core::routes::{
    check_host_pattern, host_matches_pattern, PathPattern, Preflight, Route, RouteTable,
};

use super::Check;
use crate::config::Upstream;
use crate::file::ConfigFile;

pub(super) fn routes(
    c: &mut Check,
    file: &ConfigFile,
    policies: &[Arc<Policy>],
    upstreams: &[Upstream],
) -> Option<RouteTable> {
    let policy_names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
    let upstream_names: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
    let find_policy = |name: &str| policies.iter().find(|p| p.name == name).cloned();
    // Policies and upstreams that are declared but could not be built (a bad name, rule, …)
    // have their own errors; a reference to one is not reported again as unknown.
    let broken_policy = |name: &str| {
        file.policies
            .iter()
            .any(|p| p.name.as_deref() == Some(name))
            && !policy_names.contains(&name)
    };
    let broken_upstream = |name: &str| {
        file.upstreams
            .iter()
            .any(|u| u.name.as_deref() == Some(name))
            && !upstream_names.contains(&name)
    };

    let default_upstream = match &file.default_upstream {
        Some(name) if upstream_names.contains(&name.as_str()) => Some(name.clone()),
        Some(name) if broken_upstream(name) => None,
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
                if !broken_policy(name) {
                    c.unknown("default_policy", "policy", name, &policy_names);
                }
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
    // (index in the file, index in `routes`) of the routes without problems: only those are
    // compared for shadowing, since a bad entry (a method dropped, …) stands for less than
    // the file says.
    let mut checked: Vec<(usize, usize)> = Vec::new();
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
                if p.is_none() && !broken_policy(name) {
                    c.unknown(&format!("{at}.policy"), "policy", name, &policy_names);
                }
                p
            }
        };
        let upstream = match r.upstream.as_deref() {
            Some(name) if upstream_names.contains(&name) => Some(name.to_string()),
            Some(name) if broken_upstream(name) => None,
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
        let preflight = match r.preflight.as_deref().map(str::parse::<Preflight>) {
            None => Preflight::default(),
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                c.err(format!("{at}.preflight"), e);
                Preflight::default()
            }
        };
        if preflight == Preflight::Forward && policy.as_ref().is_some_and(|p| p.rule == Rule::Deny)
        {
            c.err(
                format!("{at}.preflight"),
                "\"forward\" on a route whose policy denies every request: the request the \
                 preflight asks about would be refused anyway; remove `preflight` or use another \
                 policy",
            );
        }
        if let (Some(name), Some(path), Some(policy)) = (name, path, policy) {
            if !c.failed(&at) {
                checked.push((i, routes.len()));
            }
            routes.push(Route {
                name,
                hosts: r.hosts.clone(),
                path,
                methods,
                policy,
                upstream,
                preflight,
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
    shadowed(c, file, &routes, &checked);
    Some(RouteTable::new(routes, default_policy?).with_default_upstream(default_upstream))
}

/// Reports each route that can never match because an earlier one matches every request it
/// would (the first match wins), naming both, each with its line: an exact repeat (same path,
/// hosts and methods) or a broader earlier route (`/admin/**` before `/admin/reports/**`).
fn shadowed(c: &mut Check, file: &ConfigFile, routes: &[Route], checked: &[(usize, usize)]) {
    let describe = |i: usize, r: &Route| {
        let line = file
            .locations
            .get(&format!("routes[{i}].path"))
            .or_else(|| file.locations.get(&format!("routes[{i}]")))
            .map(|(line, _)| format!("line {line}, "))
            .unwrap_or_default();
        format!(
            "route {:?} (routes[{i}], {line}path {:?})",
            r.name,
            r.path.as_str()
        )
    };
    for (k, &(i, later)) in checked.iter().enumerate() {
        let b = &routes[later];
        let Some(&(j, earlier)) = checked[..k]
            .iter()
            .find(|(_, earlier)| covers(&routes[*earlier], b))
        else {
            continue;
        };
        let a = &routes[earlier];
        let message = if covers(b, a) {
            format!(
                "{} repeats {}: both match the same requests (same paths, hosts and methods) \
                 and the first match wins, so this one never matches; remove one of them",
                describe(i, b),
                describe(j, a)
            )
        } else {
            format!(
                "{} can never match: {} comes first and matches every request it would (the \
                 first match wins); move it above {:?} or remove it",
                describe(i, b),
                describe(j, a),
                a.name
            )
        };
        c.err(format!("routes[{i}].path"), message);
    }
}

/// Whether every request `b` matches is matched by `a`: its methods, hosts and paths all
/// include `b`'s. Sound (never says yes wrongly); it may miss an exotic case of two globs.
fn covers(a: &Route, b: &Route) -> bool {
    let methods = a.methods.is_empty()
        || (!b.methods.is_empty()
            && b.methods.iter().all(|m| {
                a.methods
                    .iter()
                    .any(|n| n == m || (*n == Method::GET && *m == Method::HEAD))
            }));
    let hosts = a.hosts.is_empty()
        || (!b.hosts.is_empty()
            && b.hosts
                .iter()
                .all(|h| a.hosts.iter().any(|p| host_covers(p, h))));
    methods && hosts && path_covers(&segments(&a.path), &segments(&b.path))
}

/// Whether host pattern `a` covers every host pattern `b` covers.
fn host_covers(a: &str, b: &str) -> bool {
    let norm = |h: &str| h.trim_end_matches('.').to_ascii_lowercase();
    let (a, b) = (norm(a), norm(b));
    match (a.strip_prefix("*."), b.strip_prefix("*.")) {
        (_, None) => host_matches_pattern(&a, &b),
        (Some(a_suffix), Some(b_suffix)) => {
            a_suffix == b_suffix || host_matches_pattern(&a, b_suffix)
        }
        (None, Some(_)) => false,
    }
}

/// A path pattern's segments as the core matches them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    /// A literal segment, compared without ASCII case.
    Lit(String),
    /// `*`: exactly one segment.
    One,
    /// `**`, or what follows a prefix: any number of segments.
    Any,
}

/// The segments of a parsed pattern, as `PathPattern` builds them: a prefix is its literal
/// segments followed by `**`.
fn segments(p: &PathPattern) -> Vec<Seg> {
    let normalized = normalize_path(p.as_str()).unwrap_or_else(|_| p.as_str().to_string());
    let mut out: Vec<Seg> = normalized
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "*" if p.is_glob() => Seg::One,
            "**" if p.is_glob() => Seg::Any,
            s => Seg::Lit(s.to_ascii_lowercase()),
        })
        .collect();
    if !p.is_glob() {
        out.push(Seg::Any);
    }
    out
}

/// Whether glob `a` matches every path glob `b` matches. Each step holds for every path `b`
/// stands for: a `*` or `**` of `b` is met only by a `*` or `**` of `a`, never by a literal.
fn path_covers(a: &[Seg], b: &[Seg]) -> bool {
    // covers[i][j]: a[i..] covers b[j..]; filled from the ends.
    let mut covers = vec![vec![false; b.len() + 1]; a.len() + 1];
    for i in (0..=a.len()).rev() {
        for j in (0..=b.len()).rev() {
            covers[i][j] = match (a.get(i), b.get(j)) {
                (None, None) => true,
                (None, Some(_)) => false,
                // `b` is done: the rest of `a` must match nothing at all.
                (Some(Seg::Any), None) => covers[i + 1][j],
                (Some(_), None) => false,
                // `**` in `a` takes the next piece of `b` (and stays), or is done.
                (Some(Seg::Any), Some(_)) => covers[i][j + 1] || covers[i + 1][j],
                (Some(Seg::One), Some(Seg::Lit(_) | Seg::One)) => covers[i + 1][j + 1],
                (Some(Seg::Lit(x)), Some(Seg::Lit(y))) => x == y && covers[i + 1][j + 1],
                // A literal never covers a wildcard, nor `*` a `**` (which may be empty or long).
                (Some(Seg::Lit(_) | Seg::One), Some(_)) => false,
            };
        }
    }
    covers[0][0]
}

//! `[[routes]]` and the default route: hosts, path patterns and methods, resolved to policies
//! and upstreams by name.

use std::sync::Arc;

use proofgate_core::policy::{Policy, Rule};
use proofgate_core::routes::{check_host_pattern, PathPattern, Route, RouteTable};

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

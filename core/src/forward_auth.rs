//! Forward auth: deciding a request that another proxy describes, and the answer it gets.
//!
//! A fronting proxy (nginx `auth_request`, ingress-nginx, Traefik ForwardAuth, Caddy
//! `forward_auth`, Envoy `ext_authz` in HTTP mode) sends a *check request* for each request it
//! receives, carrying the original request's headers (its `Authorization`, cookies and
//! `x-proof-token`) and a description of its method, host and target. [`describe`] reads that
//! description — every convention at once, refusing one that contradicts itself — and
//! [`decide`] decides it with exactly the gateway's logic ([`Gate::decide`]: path
//! normalization, routes, policies, the token cache) and renders the answer the calling proxy
//! understands ([`Convention`]).
//!
//! Whether the caller may describe requests at all (its address) is the adapter's to check
//! before calling [`decide`]: the description is taken as the proxy's word.
//!
//! Layer 6 (the top, beside the gate): imports the gate, nothing imports it but the adapters.

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method};

use crate::decision::RequestView;
use crate::gate::{Action, ForwardOptions, Gate, NO_ROUTE};
use crate::path::{request_target, RequestTarget};
use crate::proof::{VerifiedProof, IDENTITY_HEADER_NAMES};
use crate::reason::Reason;
use crate::render::Rendered;
use crate::routes::RouteTable;

/// The answer header carrying the step-up start link (relative) when a browser's navigation
/// should be sent to a verification. nginx relays only 2xx, 401 and 403 from `auth_request`, so
/// for it the redirect is a 401 with this header, which its `error_page 401` location turns
/// into the redirect.
pub const STEP_UP_HEADER: HeaderName = HeaderName::from_static("x-proofgate-step-up");

/// The query parameter of a sign-in request (ingress-nginx `auth-signin`): the original URL.
pub const SIGN_IN_PARAM: &str = "rd";

/// How the calling proxy described the request, which decides the shape of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// `X-Original-URI` or `X-Original-URL`, and `X-Original-Method` (nginx `auth_request`,
    /// ingress-nginx). Such a proxy relays only 2xx, 401 and 403: a step-up redirect is
    /// answered 401 with [`STEP_UP_HEADER`].
    Original,
    /// `X-Forwarded-Method` and `X-Forwarded-Uri` (Traefik ForwardAuth, Caddy `forward_auth`):
    /// a refusal is relayed to the client as answered, redirect included.
    Forwarded,
    /// Envoy `ext_authz` in HTTP mode: the check request's own method, and its target after the
    /// endpoint's path. Relayed like [`Convention::Forwarded`].
    Envoy,
    /// A person's browser sent to the endpoint with `?rd=<original URL>` (ingress-nginx
    /// `auth-signin`): answered as the gateway would answer the original navigation — a
    /// redirect to the step-up, or back to the page once it is allowed.
    SignIn,
}

impl Convention {
    /// `original`, `forwarded`, `envoy` or `sign_in`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Convention::Original => "original",
            Convention::Forwarded => "forwarded",
            Convention::Envoy => "envoy",
            Convention::SignIn => "sign_in",
        }
    }
}

/// A check request, as the adapter received it.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The check request's own method.
    pub method: &'a Method,
    /// What follows the endpoint's path in the check request's target: nothing, a query
    /// (`?rd=…`), or, from Envoy, the original path and query (`/admin/x?y=1`).
    pub rest: &'a [u8],
    /// The check request's headers: the original request's, plus the description.
    pub headers: &'a HeaderMap,
}

/// The original request, as described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// Its method.
    pub method: Method,
    /// Its host (a port may follow).
    pub host: String,
    /// Its request-target in origin form (path and query), or `*`.
    pub target: String,
    /// How it was described.
    pub convention: Convention,
}

/// Why a check request does not describe one request: a sentence naming the headers, never
/// their values (a target may carry a token in its query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unclear(pub String);

/// A header's one value, `None` when absent or empty; more than one, or bytes that are not
/// visible ASCII, make the description unclear.
fn one<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Unclear> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Unclear(format!("{name} is sent more than once")));
    }
    let value = value
        .to_str()
        .map_err(|_| Unclear(format!("{name} is not visible ASCII")))?
        .trim();
    Ok((!value.is_empty()).then_some(value))
}

/// One description of the target: where it came from, its origin form and, for an absolute
/// URL, its authority.
struct TargetSource<'a> {
    name: &'static str,
    origin: String,
    authority: Option<&'a str>,
}

fn parse_target<'a>(
    name: &'static str,
    raw: &'a str,
    method: &Method,
) -> Result<TargetSource<'a>, Unclear> {
    let bad = || Unclear(format!("{name} is not a request target"));
    match request_target(raw.as_bytes(), method).map_err(|_| bad())? {
        RequestTarget::Asterisk => Ok(TargetSource {
            name,
            origin: "*".to_owned(),
            authority: None,
        }),
        RequestTarget::Path {
            path,
            query,
            authority,
        } => Ok(TargetSource {
            name,
            origin: match query {
                Some(q) => format!("{path}?{q}"),
                None => path.to_owned(),
            },
            authority,
        }),
    }
}

/// Reads the original request out of a check request.
///
/// - A check request whose query has [`SIGN_IN_PARAM`] (and nothing after the endpoint's
///   path) is a sign-in: the original is `GET` of that absolute URL; description headers are
///   not read.
/// - Otherwise the method comes from `X-Original-Method` and `X-Forwarded-Method`, and, for a
///   check request with a path after the endpoint's (Envoy), from the check request itself; the
///   target from `X-Original-URI`, `X-Original-URL`, `X-Forwarded-Uri` and that path; the host
///   from `X-Forwarded-Host` and the authority of an absolute target, else from `Host` (for
///   Envoy `Host` always counts: it is the original's). Each may be described by several of
///   these; **all that are present must agree**, so that a header a client slipped through
///   the proxy beside the proxy's own cannot change what is decided.
pub fn describe(check: &Check<'_>) -> Result<Described, Unclear> {
    let headers = check.headers;
    let rest = std::str::from_utf8(check.rest)
        .ok()
        .filter(|r| r.is_ascii())
        .ok_or_else(|| Unclear("the check request's target is not ASCII".into()))?;
    if let Some(query) = rest.strip_prefix('?') {
        if let Some(rd) = crate::params::query_param(query, SIGN_IN_PARAM) {
            let target = parse_target("the rd parameter", &rd, &Method::GET)?;
            let host = target
                .authority
                .ok_or_else(|| Unclear("the rd parameter is not an absolute URL".into()))?;
            return Ok(Described {
                method: Method::GET,
                host: host.to_owned(),
                target: target.origin,
                convention: Convention::SignIn,
            });
        }
    }
    let envoy = rest.starts_with('/');

    let original_method = one(headers, "x-original-method")?;
    let forwarded_method = one(headers, "x-forwarded-method")?;
    let mut methods: Vec<(&str, Method)> = Vec::new();
    for (name, value) in [
        ("X-Original-Method", original_method),
        ("X-Forwarded-Method", forwarded_method),
    ] {
        if let Some(v) = value {
            let m = Method::from_bytes(v.as_bytes())
                .map_err(|_| Unclear(format!("{name} is not a method")))?;
            methods.push((name, m));
        }
    }
    if envoy {
        methods.push(("the check request's method", check.method.clone()));
    }
    let Some((first_name, method)) = methods.first().cloned() else {
        return Err(Unclear(
            "the original method is not described: send X-Original-Method or X-Forwarded-Method"
                .into(),
        ));
    };
    if let Some((name, _)) = methods.iter().find(|(_, m)| *m != method) {
        return Err(Unclear(format!("{first_name} and {name} disagree")));
    }

    let original_uri = one(headers, "x-original-uri")?;
    let original_url = one(headers, "x-original-url")?;
    let forwarded_uri = one(headers, "x-forwarded-uri")?;
    let mut targets = Vec::new();
    for (name, value) in [
        ("X-Original-URI", original_uri),
        ("X-Original-URL", original_url),
        ("X-Forwarded-Uri", forwarded_uri),
        ("the check request's path", envoy.then_some(rest)),
    ] {
        if let Some(v) = value {
            let target = parse_target(name, v, &method)?;
            if name == "X-Original-URL" && target.authority.is_none() {
                return Err(Unclear("X-Original-URL is not an absolute URL".into()));
            }
            targets.push(target);
        }
    }
    let Some(target) = targets.first() else {
        return Err(Unclear(
            "the original target is not described: send X-Original-URI or X-Forwarded-Uri".into(),
        ));
    };
    if let Some(other) = targets.iter().find(|t| t.origin != target.origin) {
        return Err(Unclear(format!(
            "{} and {} disagree",
            target.name, other.name
        )));
    }

    let forwarded_host = one(headers, "x-forwarded-host")?;
    if forwarded_host.is_some_and(|h| h.contains(',')) {
        return Err(Unclear("X-Forwarded-Host names more than one host".into()));
    }
    let mut hosts: Vec<(&str, &str)> = Vec::new();
    if let Some(h) = forwarded_host {
        hosts.push(("X-Forwarded-Host", h));
    }
    for t in &targets {
        if let Some(a) = t.authority {
            hosts.push((t.name, a));
        }
    }
    if envoy || hosts.is_empty() {
        if let Some(h) = one(headers, "host")? {
            hosts.push(("Host", h));
        }
    }
    let Some(&(first_host_name, host)) = hosts.first() else {
        return Err(Unclear(
            "the original host is not described: send X-Forwarded-Host".into(),
        ));
    };
    if let Some((name, _)) = hosts.iter().find(|(_, h)| !h.eq_ignore_ascii_case(host)) {
        return Err(Unclear(format!("{first_host_name} and {name} disagree")));
    }

    let convention =
        if original_method.is_some() || original_uri.is_some() || original_url.is_some() {
            Convention::Original
        } else if envoy {
            Convention::Envoy
        } else {
            Convention::Forwarded
        };
    Ok(Described {
        method,
        host: host.to_owned(),
        target: target.origin.clone(),
        convention,
    })
}

/// A decided check request: what the adapter counts, logs and answers.
#[derive(Debug, Clone)]
pub struct Decided<'t> {
    /// The original request's route ([`NO_ROUTE`] when it was refused before routing, or not
    /// described clearly).
    pub route: &'t str,
    /// `allow`, `deny` or `step_up`.
    pub decision: &'static str,
    /// The machine-readable reason; empty for `allow`.
    pub reason: &'static str,
    /// How the request was described (`None`: it was not).
    pub convention: Option<Convention>,
    /// The proofs that satisfied the policy (empty when refused, or on a public route).
    pub proofs: Vec<Arc<VerifiedProof>>,
    /// The answer for the calling proxy.
    pub answer: Rendered,
}

/// `http` or `https` from `X-Forwarded-Proto`; anything else (absent, a list) is `None`.
fn forwarded_proto(headers: &HeaderMap) -> Option<&'static str> {
    match one(headers, "x-forwarded-proto").ok()?? {
        p if p.eq_ignore_ascii_case("https") => Some("https"),
        p if p.eq_ignore_ascii_case("http") => Some("http"),
        _ => None,
    }
}

fn no_store() -> (HeaderName, HeaderValue) {
    (
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    )
}

/// Decides the request `check` describes ([`describe`]) under `routes`, as [`Gate::decide`]
/// decides it in proxy mode, and answers:
///
/// - allowed: `200` with the identity headers (`x-proof-subject`, …) for the proxy to pass on
///   (a sign-in: `302` back to the original page);
/// - refused: the gateway's own answer — `401`/`403` with problem+json or a page, `503` when
///   it cannot check — with, for a browser's navigation that needs a verification, the start
///   link in [`STEP_UP_HEADER`] (and, for [`Convention::Original`], `401` instead of the
///   redirect; for [`Convention::Forwarded`] with `X-Forwarded-Proto`, the redirect to the
///   absolute start URL on the original's scheme and host);
/// - not described clearly: `400` `invalid_request`, naming the headers at fault.
pub fn decide<'t>(gate: &Gate, routes: &'t RouteTable, check: &Check<'_>) -> Decided<'t> {
    let described = match describe(check) {
        Ok(d) => d,
        Err(Unclear(title)) => {
            let answer = gate.error_answer(
                check.headers,
                400,
                "invalid_request",
                &title,
                (
                    "This request can't be checked",
                    "The proxy in front of this site did not describe the request clearly.",
                ),
                None,
            );
            return Decided {
                route: NO_ROUTE,
                decision: "deny",
                reason: "invalid_request",
                convention: None,
                proofs: Vec::new(),
                answer,
            };
        }
    };
    let view = RequestView {
        method: &described.method,
        host: Some(&described.host),
        target: described.target.as_bytes(),
        headers: check.headers,
        // The proxy asking terminated the connection: nothing resolved here binds a delegate.
        client_delegates: &[],
    };
    let options = ForwardOptions {
        strip_token: false,
        identity_headers: true,
    };
    let outcome = gate.decide(routes, &view, options);
    let convention = described.convention;
    let (answer, proofs) = match outcome.action {
        Action::Forward(forward) if convention == Convention::SignIn => {
            // Back to the page, on this site: the normalized target (never `//host`).
            let back = forward.target.unwrap_or(described.target);
            let location =
                HeaderValue::from_str(&back).unwrap_or_else(|_| HeaderValue::from_static("/"));
            let answer = Rendered {
                status: 302,
                headers: vec![(http::header::LOCATION, location), no_store()],
                body: bytes::Bytes::new(),
            };
            (answer, forward.proofs)
        }
        Action::Forward(forward) => {
            let mut headers: Vec<(HeaderName, HeaderValue)> = forward
                .edits
                .set
                .into_iter()
                .filter(|(name, _)| {
                    IDENTITY_HEADER_NAMES.contains(&name.as_str())
                        || crate::delegation::DELEGATION_IDENTITY_HEADER_NAMES
                            .contains(&name.as_str())
                })
                .collect();
            headers.push(no_store());
            let answer = Rendered {
                status: 200,
                headers,
                body: bytes::Bytes::new(),
            };
            (answer, forward.proofs)
        }
        Action::Respond(mut answer) => {
            // A gRPC call's refusal is rendered as a Trailers-Only `200` (`render::grpc`): to
            // the proxy asking, any 2xx means "allowed". Its status becomes the reason's HTTP
            // status (the gRPC metadata stays, for a proxy that relays the answer).
            if (200..300).contains(&answer.status) {
                // A step-up offered is a 401, as its problem+json answer (whatever the reason).
                answer.status = if outcome.decision == "step_up" {
                    401
                } else {
                    Reason::ALL
                        .iter()
                        .find(|r| r.as_str() == outcome.reason)
                        .map_or(
                            match outcome.reason {
                                "invalid_path" | "invalid_host" => 400,
                                _ => 403,
                            },
                            |r| r.status(),
                        )
                };
            }
            let start = (outcome.decision == "step_up" && answer.status == 302)
                .then(|| {
                    answer
                        .headers
                        .iter()
                        .find(|(name, _)| name == http::header::LOCATION)
                        .map(|(_, v)| v.clone())
                })
                .flatten();
            if let Some(start) = start {
                match convention {
                    Convention::Original => {
                        answer.status = 401;
                        answer
                            .headers
                            .retain(|(name, _)| name != http::header::LOCATION);
                    }
                    // Traefik resolves a relative `Location` against its request to proofgate
                    // (proofgate's own address): make it the original's scheme and host.
                    Convention::Forwarded => {
                        // Only a plain `host[:port]`: never one that would make the link
                        // point elsewhere (`app.example@evil.example`, `evil.example/`).
                        let plain = described.host.bytes().all(|b| {
                            b.is_ascii_alphanumeric()
                                || matches!(b, b'-' | b'.' | b':' | b'[' | b']')
                        });
                        let absolute =
                            forwarded_proto(check.headers)
                                .filter(|_| plain)
                                .and_then(|proto| {
                                    let link = start.to_str().ok()?;
                                    let url = format!("{proto}://{}{link}", described.host);
                                    HeaderValue::from_str(&url).ok()
                                });
                        if let Some(url) = absolute {
                            for (name, value) in &mut answer.headers {
                                if *name == http::header::LOCATION {
                                    *value = url.clone();
                                }
                            }
                        }
                    }
                    Convention::Envoy | Convention::SignIn => {}
                }
                answer.headers.push((STEP_UP_HEADER, start));
            }
            (answer, Vec::new())
        }
    };
    Decided {
        route: outcome.route,
        decision: outcome.decision,
        reason: outcome.reason,
        convention: Some(convention),
        proofs,
        answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn check<'a>(method: &'a Method, rest: &'a str, headers: &'a HeaderMap) -> Check<'a> {
        Check {
            method,
            rest: rest.as_bytes(),
            headers,
        }
    }

    #[test]
    fn each_convention_is_read() {
        let get = Method::GET;
        let h = headers(&[
            ("x-original-uri", "/admin/x?y=1"),
            ("x-original-method", "POST"),
            ("x-forwarded-host", "app.example"),
            ("host", "proofgate"),
        ]);
        let d = describe(&check(&get, "", &h)).unwrap();
        assert_eq!(
            (d.method, d.host.as_str(), d.target.as_str(), d.convention),
            (
                Method::POST,
                "app.example",
                "/admin/x?y=1",
                Convention::Original
            )
        );
        // ingress-nginx: the URL carries the host; `Host` is the auth service's.
        let h = headers(&[
            ("x-original-url", "https://app.example/admin"),
            ("x-original-method", "GET"),
            ("host", "proofgate.svc"),
        ]);
        let d = describe(&check(&get, "", &h)).unwrap();
        assert_eq!(
            (d.host.as_str(), d.target.as_str()),
            ("app.example", "/admin")
        );
        let h = headers(&[
            ("x-forwarded-uri", "/admin"),
            ("x-forwarded-method", "DELETE"),
            ("x-forwarded-host", "app.example"),
            ("x-forwarded-proto", "https"),
        ]);
        let d = describe(&check(&get, "", &h)).unwrap();
        assert_eq!(
            (d.method, d.convention),
            (Method::DELETE, Convention::Forwarded)
        );
        let put = Method::PUT;
        let h = headers(&[("host", "app.example")]);
        let d = describe(&check(&put, "/admin/x?q", &h)).unwrap();
        assert_eq!(
            (d.method, d.host.as_str(), d.target.as_str(), d.convention),
            (Method::PUT, "app.example", "/admin/x?q", Convention::Envoy)
        );
        let h = headers(&[("host", "proofgate")]);
        let d = describe(&check(
            &get,
            "?rd=https%3A%2F%2Fapp.example%2Fadmin%3Fa%3D1",
            &h,
        ))
        .unwrap();
        assert_eq!(
            (d.host.as_str(), d.target.as_str(), d.convention),
            ("app.example", "/admin?a=1", Convention::SignIn)
        );
    }

    #[test]
    fn a_description_that_contradicts_itself_is_refused() {
        let get = Method::GET;
        for (pairs, rest) in [
            // A client's X-Forwarded-Uri beside nginx's X-Original-URI.
            (
                vec![
                    ("x-original-uri", "/admin"),
                    ("x-forwarded-uri", "/public"),
                    ("x-original-method", "GET"),
                    ("x-forwarded-host", "a"),
                ],
                "",
            ),
            (
                vec![
                    ("x-original-uri", "/admin"),
                    ("x-original-method", "GET"),
                    ("x-forwarded-method", "OPTIONS"),
                    ("x-forwarded-host", "a"),
                ],
                "",
            ),
            // A client's X-Forwarded-Host beside ingress-nginx's URL.
            (
                vec![
                    ("x-original-url", "https://admin.example/x"),
                    ("x-original-method", "GET"),
                    ("x-forwarded-host", "public.example"),
                ],
                "",
            ),
            // Envoy: a header beside the check request's own path or host.
            (
                vec![("host", "a"), ("x-forwarded-uri", "/public")],
                "/admin",
            ),
            (vec![("host", "a"), ("x-forwarded-host", "b")], "/admin"),
            (
                vec![("host", "a"), ("x-forwarded-method", "POST")],
                "/admin",
            ),
            // Twice, a list, nothing, no method, no host.
            (
                vec![
                    ("x-original-uri", "/a"),
                    ("x-original-uri", "/a"),
                    ("x-original-method", "GET"),
                    ("x-forwarded-host", "a"),
                ],
                "",
            ),
            (
                vec![
                    ("x-original-uri", "/a"),
                    ("x-original-method", "GET"),
                    ("x-forwarded-host", "a, b"),
                ],
                "",
            ),
            (vec![("host", "a")], ""),
            (vec![("host", "a"), ("x-original-uri", "/a")], ""),
            (
                vec![("x-original-uri", "/a"), ("x-original-method", "GET")],
                "",
            ),
            (
                vec![
                    ("x-original-uri", "admin"),
                    ("x-original-method", "GET"),
                    ("host", "a"),
                ],
                "",
            ),
            (
                vec![
                    ("x-original-url", "/a"),
                    ("x-original-method", "GET"),
                    ("host", "a"),
                ],
                "",
            ),
            (vec![("host", "a")], "?rd=/relative"),
        ] {
            let h = headers(&pairs);
            let err = describe(&check(&get, rest, &h));
            assert!(err.is_err(), "{pairs:?} {rest:?}: {err:?}");
        }
    }

    #[test]
    fn the_reason_never_repeats_a_value() {
        let get = Method::GET;
        let h = headers(&[
            ("x-original-uri", "/a?token=secret"),
            ("x-forwarded-uri", "/b?token=secret"),
            ("x-original-method", "GET"),
        ]);
        let Unclear(title) = describe(&check(&get, "", &h)).unwrap_err();
        assert!(!title.contains("secret"), "{title}");
    }
}

//! Rendering decisions as HTTP: RFC 9457 problem+json bodies, `WWW-Authenticate`, step-up
//! redirects, gRPC statuses and the identity headers sent upstream. Shared by every adapter so a
//! decision looks the same wherever it is made. No token, key or secret ever appears in what is
//! rendered here.
//!
//! # gRPC calls
//!
//! A request whose `content-type` is `application/grpc` or `application/grpc+…` ([`is_grpc`])
//! is a gRPC call, and its refusal is a gRPC *Trailers-Only* response ([`grpc`]) whatever it
//! asks for in `Accept`: HTTP status `200`, `content-type: application/grpc`, an empty body and
//!
//! | header | value |
//! | --- | --- |
//! | `grpc-status` | `16` UNAUTHENTICATED (the 401 reasons), `7` PERMISSION_DENIED (`policy_unmet`, `route_denied`), `14` UNAVAILABLE (`jwks_stale`, `status_unavailable`); see [`grpc_code`] |
//! | `grpc-message` | the reason's sentence ([`Reason::message`]), percent-encoded as gRPC asks ([`grpc_message`]) |
//! | `proofgate-reason` | the machine-readable reason (`missing`, `policy_unmet`, …) |
//! | `proofgate-policy` | the policy that refused (absent for a request refused before routing) |
//! | `proofgate-step-up` | when a verification is offered: the step-up start link (the same link as problem+json's `step_up.start`) |
//!
//! A gRPC client reads these as the status's code, message and metadata (tonic:
//! `status.metadata().get("proofgate-step-up")`). `grpc-status-details-bin` is not sent: it
//! would need a protobuf `google.rpc.Status` that every client must decode, while plain
//! metadata is readable by every gRPC library and by `grpcurl`. The answers that are not policy
//! decisions (a path refused before routing, an upstream that does not answer) are gRPC too
//! ([`grpc_code_for_http`]).
//!
//! A Trailers-Only answer is HTTP `200`: an adapter that reports a decision by its HTTP status
//! (a forward-auth endpoint that another proxy asks) must not relay it as is.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use serde_json::json;

use crate::decision::Refusal;
use crate::pages::{describe_policy, Page, Pages};
use crate::policy::Policy;
use crate::reason::{Family, Reason};

/// The metadata key of a gRPC refusal that carries the machine-readable reason.
pub const GRPC_REASON_KEY: &str = "proofgate-reason";
/// The metadata key of a gRPC refusal that carries the refusing policy's name.
pub const GRPC_POLICY_KEY: &str = "proofgate-policy";
/// The metadata key of a gRPC refusal that carries the step-up start link, when one is offered.
pub const GRPC_STEP_UP_KEY: &str = "proofgate-step-up";

/// Whether a request is a gRPC call: its `content-type` is `application/grpc` or
/// `application/grpc+…` (`+proto`, `+json`, …), parameters allowed, any case. gRPC-Web
/// (`application/grpc-web…`) is not: its answers are read by browsers' JavaScript.
///
/// ```
/// use http::HeaderMap;
/// use proofgate_core::render::is_grpc;
/// let with = |ct: &str| {
///     let mut h = HeaderMap::new();
///     h.insert("content-type", ct.parse().unwrap());
///     is_grpc(&h)
/// };
/// assert!(with("application/grpc") && with("application/grpc+proto") && with("Application/GRPC; charset=x"));
/// assert!(!with("application/grpc-web") && !with("application/json") && !with("application/grpcx"));
/// assert!(!is_grpc(&HeaderMap::new()));
/// ```
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.as_bytes())
    else {
        return false;
    };
    const GRPC: &[u8] = b"application/grpc";
    ct.len() >= GRPC.len()
        && ct[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(ct.get(GRPC.len()), None | Some(b'+' | b';' | b' ' | b'\t'))
}

/// The gRPC status code of a refusal for `reason`, by its family: `16` UNAUTHENTICATED (401),
/// `7` PERMISSION_DENIED (403: `policy_unmet`, `route_denied`), `14` UNAVAILABLE (503). A
/// `policy_unmet` stays `7` when a step-up is offered (HTTP answers that one `401`): the proof is
/// fine, it just is not enough.
pub fn grpc_code(reason: Reason) -> u8 {
    match reason.family() {
        Family::Unauthenticated => 16,
        Family::Forbidden => 7,
        Family::Unavailable => 14,
    }
}

/// The gRPC status code for an answer that is not a policy decision, from its HTTP status: the
/// gRPC project's HTTP-to-gRPC mapping, except that a `400` (a request-target or host refused,
/// `invalid_path`, `invalid_host`) is `3` INVALID_ARGUMENT rather than INTERNAL — the call, not
/// the server, is at fault, and retrying it cannot help — and a `413` is `8`
/// RESOURCE_EXHAUSTED.
///
/// | HTTP | gRPC |
/// | --- | --- |
/// | 400 | 3 INVALID_ARGUMENT |
/// | 401 | 16 UNAUTHENTICATED |
/// | 403 | 7 PERMISSION_DENIED |
/// | 404, 405 | 12 UNIMPLEMENTED |
/// | 413 | 8 RESOURCE_EXHAUSTED |
/// | 429, 502, 503, 504 | 14 UNAVAILABLE |
/// | 500 | 13 INTERNAL |
/// | anything else | 2 UNKNOWN |
pub fn grpc_code_for_http(status: u16) -> u8 {
    match status {
        400 => 3,
        401 => 16,
        403 => 7,
        404 | 405 => 12,
        413 => 8,
        429 | 502 | 503 | 504 => 14,
        500 => 13,
        _ => 2,
    }
}

/// `message` as a `grpc-message` value: UTF-8 bytes outside printable ASCII (`0x20`–`0x7E`) and
/// `%` itself percent-encoded, as the gRPC over HTTP/2 protocol asks.
///
/// ```
/// use proofgate_core::render::grpc_message;
/// assert_eq!(grpc_message("A proof token is required."), "A proof token is required.");
/// assert_eq!(grpc_message("100% sûr\n"), "100%25 s%C3%BBr%0A");
/// ```
pub fn grpc_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A gRPC Trailers-Only answer (see the [module docs](self)): HTTP `200`,
/// `content-type: application/grpc`, `grpc-status: code`, `grpc-message` (`message`,
/// percent-encoded), `proofgate-reason: reason`, `proofgate-policy` and `proofgate-step-up` when
/// given, and an empty body, so an HTTP/2 server sends it as one `HEADERS` frame that ends the
/// stream.
pub fn grpc(
    code: u8,
    message: &str,
    reason: &str,
    policy: Option<&str>,
    step_up: Option<&str>,
) -> Rendered {
    let mut headers = vec![
        (
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        ),
        (
            HeaderName::from_static("grpc-status"),
            HeaderValue::from(u16::from(code)),
        ),
    ];
    let metadata = [
        ("grpc-message", Some(grpc_message(message))),
        (GRPC_REASON_KEY, Some(reason.to_owned())),
        (GRPC_POLICY_KEY, policy.map(str::to_owned)),
        (GRPC_STEP_UP_KEY, step_up.map(str::to_owned)),
    ];
    for (name, value) in metadata {
        // A value that is no header value (a policy name with a control character) is left out
        // rather than failing the answer.
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.push((HeaderName::from_static(name), value));
        }
    }
    Rendered {
        status: 200,
        headers,
        body: Bytes::new(),
    }
}

/// A response to send instead of forwarding.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Status code.
    pub status: u16,
    /// Headers to set.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body.
    pub body: Bytes,
}

/// How step-up links are built.
#[derive(Debug, Clone)]
pub struct StepUpLinks {
    /// The reserved prefix, e.g. `/.proofgate/`.
    pub prefix: String,
    /// The realm in `WWW-Authenticate`.
    pub realm: String,
}

impl Default for StepUpLinks {
    fn default() -> Self {
        Self {
            prefix: "/.proofgate/".into(),
            realm: "proofgate".into(),
        }
    }
}

impl StepUpLinks {
    /// The start link that returns to `return_to` (a relative path) for `policy`. Query
    /// parameters of `return_to` that carry a token are left out ([`without_tokens`]): the link
    /// is written into response bodies and the state cookie.
    pub fn start_url(&self, policy: &str, return_to: &str) -> String {
        start_url(&self.prefix, policy, return_to)
    }
}

/// [`StepUpLinks::start_url`] for the endpoints under `prefix`.
pub fn start_url(prefix: &str, policy: &str, return_to: &str) -> String {
    format!(
        "{prefix}start?policy={}&return_to={}",
        urlencode(policy),
        urlencode(&without_tokens(return_to))
    )
}

/// `target` (a path and query) without the query parameters that carry a token: a parameter
/// whose name contains `token` (any case), or whose value, percent-decoded, has the shape of a
/// compact JWS (three or more base64url segments joined by `.`). A client that sent its proof in
/// the query must not find it echoed in an answer, a `Location` or a cookie.
///
/// ```
/// use proofgate_core::render::without_tokens;
/// assert_eq!(without_tokens("/a?x=1&proof_token=abc&y=2"), "/a?x=1&y=2");
/// assert_eq!(without_tokens("/a?t=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"), "/a");
/// assert_eq!(without_tokens("/a?v=1.2.3&q=x"), "/a?v=1.2.3&q=x");
/// assert_eq!(without_tokens("/a?proof%5Ftoken%zz=x&q=1"), "/a?q=1");
/// ```
pub fn without_tokens(target: &str) -> std::borrow::Cow<'_, str> {
    fn carries_token(pair: &str) -> bool {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Form encoding (`+` for a space) decoded; an escape that does not decode is judged as
        // written.
        let decoded = |s: &str| {
            crate::params::percent_decode(&s.replace('+', " ")).unwrap_or_else(|| s.to_owned())
        };
        if decoded(name).to_ascii_lowercase().contains("token") {
            return true;
        }
        let value = decoded(value);
        let value = value.trim();
        let value = value
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("bearer "))
            .map_or(value, |_| value[7..].trim_start());
        value.len() >= 16
            && value.split('.').count() >= 3
            && value.split('.').all(|seg| {
                !seg.is_empty()
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'~')
            })
    }
    let Some((path, query)) = target.split_once('?') else {
        return target.into();
    };
    if !query.split('&').any(carries_token) {
        return target.into();
    }
    let kept: Vec<&str> = query.split('&').filter(|p| !carries_token(p)).collect();
    if kept.is_empty() {
        path.to_owned().into()
    } else {
        format!("{path}?{}", kept.join("&")).into()
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a request prefers an HTML page (a browser) over JSON (an API client): its `Accept`
/// names `text/html`. Any method: a browser's form `POST` gets a page too.
pub fn wants_html(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Whether a request is a navigation a redirect can replay (`GET` or `HEAD`): anything else
/// carries a body that a step-up's round trip would lose.
pub fn is_navigation(method: &http::Method) -> bool {
    method == http::Method::GET || method == http::Method::HEAD
}

/// The path and query of `referer` when it is a page of `host` (same scheme-less origin),
/// else `None`: where a browser whose form could not be sent is brought back to after a
/// step-up. Anything else (another site, no `Referer`) returns to `/`.
pub fn same_site_referer(headers: &http::HeaderMap, host: Option<&str>) -> Option<String> {
    let host = host?;
    let referer = headers.get(http::header::REFERER)?.to_str().ok()?;
    let rest = referer
        .strip_prefix("https://")
        .or_else(|| referer.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if !rest[..end].eq_ignore_ascii_case(host) {
        return None;
    }
    let target = rest[end..].split('#').next().unwrap_or("");
    let target = if target.starts_with('/') {
        target.to_owned()
    } else {
        format!("/{target}")
    };
    // A path a browser would read as another site (`//evil.example`, `/\evil.example`) or with
    // a control character is no way back.
    if target.starts_with("//") || target.contains('\\') || target.chars().any(char::is_control) {
        return None;
    }
    Some(without_tokens(&target).into_owned())
}

/// How a refused request asked: what a page for it offers.
#[derive(Debug, Clone)]
pub struct Asked<'a> {
    /// The original relative path and query.
    pub return_to: &'a str,
    /// The client is a browser ([`wants_html`]).
    pub html: bool,
    /// The request is a navigation ([`is_navigation`]).
    pub navigation: bool,
    /// For a browser's non-navigation: the page it came from ([`same_site_referer`]).
    pub back: Option<String>,
    /// For `policy_unmet`: the person holds a valid proof of a kind the policy asks for, just
    /// not one it accepts (another address, an old verification) — a page explains rather
    /// than a verification starting behind their back. Without one (a phone proof on a page
    /// that wants an email) a navigation is sent to the step-up like any other.
    pub wrong_identity: bool,
    /// The request is a gRPC call ([`is_grpc`]): it is answered with a gRPC status ([`grpc`]),
    /// never a page or problem+json.
    pub grpc: bool,
}

/// Renders a refusal for whoever asked: a gRPC call a gRPC status ([`grpc`], with the step-up
/// link as `proofgate-step-up` metadata when one is offered), an API client [`render`]'s
/// problem+json, a browser's navigation that needs a proof the step-up redirect, and every other browser
/// request a [`Page`] that says what happened and offers the next action — among them a
/// verified person whose proof does not satisfy the route (`policy_unmet`: an explanation, not
/// another verification started behind their back) and a form `POST` (nothing is replayed:
/// the step-up returns to the page the form came from).
pub fn render_refusal(
    refusal: &Refusal,
    policy: &Policy,
    asked: &Asked<'_>,
    links: &StepUpLinks,
    pages: &Pages,
) -> Rendered {
    if asked.grpc {
        let reason = refusal.reason();
        let step_up = matches!(refusal, Refusal::StepUp(_))
            .then(|| links.start_url(&policy.name, asked.return_to));
        return grpc(
            grpc_code(reason),
            reason.message(),
            reason.as_str(),
            Some(&policy.name),
            step_up.as_deref(),
        );
    }
    let redirect = matches!(refusal, Refusal::StepUp(r) if *r != Reason::PolicyUnmet || !asked.wrong_identity)
        && asked.navigation;
    if !asked.html || redirect {
        return render(refusal, &policy.name, asked.return_to, asked.html, links);
    }
    let needs = describe_policy(policy);
    let home = "/";
    let sign_out = format!("{}logout", links.prefix);
    let mut extra: Vec<(HeaderName, HeaderValue)> = Vec::new();
    let page = match refusal {
        Refusal::StepUp(reason) if *reason == Reason::PolicyUnmet && asked.wrong_identity => {
            let target = match (&asked.back, asked.navigation) {
                (_, true) => asked.return_to,
                (Some(back), false) => back.as_str(),
                (None, false) => home,
            };
            let start = links.start_url(&policy.name, target);
            extra.push((
                http::header::WWW_AUTHENTICATE,
                www_authenticate(&links.realm, *reason, Some(&start)),
            ));
            Page::new(
                403,
                reason.as_str(),
                "Your verification doesn't open this page",
                "You are verified, but not as someone this page allows. Verify with another \
                 address to continue, or sign out.",
            )
            .detail("This page needs", needs)
            .action("Verify with another address", start)
            .action("Sign out", sign_out)
        }
        Refusal::StepUp(reason) => {
            let back = asked.back.as_deref().unwrap_or(home);
            let start = links.start_url(&policy.name, back);
            extra.push((
                http::header::WWW_AUTHENTICATE,
                www_authenticate(&links.realm, *reason, Some(&start)),
            ));
            Page::new(
                401,
                reason.as_str(),
                "Verify to continue",
                "This action needs proof of who you are. What you submitted was not sent: after \
                 verifying you return to the page you came from, where you can send it again.",
            )
            .detail("This action needs", needs)
            .action("Verify", start)
            .action("Go back", back.to_owned())
        }
        Refusal::Deny(reason) => match reason.family() {
            Family::Unavailable => {
                extra.push((http::header::RETRY_AFTER, HeaderValue::from_static("5")));
                Page::new(
                    503,
                    reason.as_str(),
                    "We can't check your access right now",
                    "The service that confirms proofs cannot be reached at the moment. Nothing \
                     is wrong with your access: try again in a few seconds.",
                )
                .action("Try again", asked.return_to.to_owned())
            }
            Family::Forbidden if *reason == Reason::RouteDenied => Page::new(
                403,
                reason.as_str(),
                "This page is not available",
                "There is nothing at this address that you can open.",
            )
            .action("Go to the home page", home),
            Family::Forbidden => Page::new(
                403,
                reason.as_str(),
                "You can't open this page",
                "You are verified, but not as someone this page allows.",
            )
            .detail("This page needs", needs)
            .action("Go to the home page", home)
            .action("Sign out", sign_out),
            Family::Unauthenticated => {
                extra.push((
                    http::header::WWW_AUTHENTICATE,
                    www_authenticate(&links.realm, *reason, None),
                ));
                Page::new(
                    401,
                    reason.as_str(),
                    "Proof of identity needed",
                    format!(
                        "{} This page does not offer a verification here: ask the site's \
                         operator how to get access.",
                        in_words(*reason)
                    ),
                )
                .detail("This page needs", needs)
                .action("Go to the home page", home)
            }
        },
    };
    let mut rendered = pages.render(&page);
    rendered.headers.extend(extra);
    rendered
}

/// A reason as a person reads it.
fn in_words(reason: Reason) -> &'static str {
    match reason {
        Reason::Missing => "You have not verified who you are yet.",
        Reason::Expired => "Your verification has expired.",
        Reason::Revoked => "Your verification has been withdrawn.",
        Reason::Suspended => "Your verification is suspended.",
        Reason::NotYetValid => "Your verification is not valid yet.",
        _ => "Your verification could not be accepted.",
    }
}

fn www_authenticate(realm: &str, reason: Reason, step_up: Option<&str>) -> HeaderValue {
    // A delegation is presented under its own scheme (`Authorization: Delegation …`).
    let scheme = if reason.is_delegation() {
        "Delegation"
    } else {
        "Proof"
    };
    let mut v = format!("{scheme} realm=\"{realm}\", error=\"{}\"", reason.as_str());
    if let Some(url) = step_up {
        v.push_str(&format!(", step_up=\"{url}\""));
    }
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Proof"))
}

/// The problem+json `title` for a reason: what was asked for (a proof, an agent's delegation, a
/// person's approval) and how it fell short (the reason's family).
pub fn problem_title(reason: Reason) -> &'static str {
    if reason.is_delegation() {
        return match reason.family() {
            Family::Unauthenticated => "Delegation required",
            Family::Forbidden => "Delegation insufficient",
            Family::Unavailable => "Delegation check unavailable",
        };
    }
    if reason.is_approval() {
        return match reason {
            Reason::ApprovalRequired => "Approval required",
            Reason::ApprovalPending => "Approval pending",
            Reason::ApprovalDenied => "Approval denied",
            Reason::ApprovalExpired => "Approval expired",
            Reason::ApprovalBodyTooLarge => "Request body too large for approval",
            Reason::ApprovalUnavailable => "Approval unavailable",
            Reason::ApprovalRateLimited => "Too many approvals asked for",
            _ => "Approval ticket refused",
        };
    }
    match reason.family() {
        Family::Unauthenticated => "Proof required",
        Family::Forbidden => "Proof insufficient",
        Family::Unavailable => "Proof check unavailable",
    }
}

/// The problem+json body for a reason.
///
/// `status` is the response's own status (RFC 9457 wants the two to agree): a step-up offered
/// for `policy_unmet` is answered 401, whatever the reason's family.
pub fn problem_body(reason: Reason, status: u16, policy: &str, step_up: Option<&str>) -> Bytes {
    let title = problem_title(reason);
    let mut body = json!({
        "type": format!("https://proofgate.dev/problems/{}", reason.as_str()),
        "title": title,
        "status": status,
        "detail": reason.message(),
        "reason": reason.as_str(),
        "policy": policy,
    });
    if let Some(url) = step_up {
        body["step_up"] = json!({ "start": url });
    }
    Bytes::from(body.to_string())
}

/// Renders a refusal. `return_to` is the original relative path and query; `html` says whether
/// the client is a browser.
pub fn render(
    refusal: &Refusal,
    policy: &str,
    return_to: &str,
    html: bool,
    links: &StepUpLinks,
) -> Rendered {
    let problem = HeaderValue::from_static("application/problem+json");
    let no_store = HeaderValue::from_static("no-store");
    match refusal {
        Refusal::Deny(reason) => {
            let mut headers = vec![
                (http::header::CONTENT_TYPE, problem),
                (http::header::CACHE_CONTROL, no_store),
            ];
            match reason.family() {
                Family::Unauthenticated => headers.push((
                    http::header::WWW_AUTHENTICATE,
                    www_authenticate(&links.realm, *reason, None),
                )),
                Family::Unavailable => {
                    headers.push((http::header::RETRY_AFTER, HeaderValue::from_static("5")))
                }
                Family::Forbidden => {}
            }
            Rendered {
                status: reason.status(),
                headers,
                body: problem_body(*reason, reason.status(), policy, None),
            }
        }
        Refusal::StepUp(reason) => {
            let start = links.start_url(policy, return_to);
            if html {
                Rendered {
                    status: 302,
                    headers: vec![
                        (
                            http::header::LOCATION,
                            HeaderValue::from_str(&start)
                                .unwrap_or_else(|_| HeaderValue::from_static("/")),
                        ),
                        (http::header::CACHE_CONTROL, no_store),
                    ],
                    body: Bytes::new(),
                }
            } else {
                Rendered {
                    status: 401,
                    headers: vec![
                        (http::header::CONTENT_TYPE, problem),
                        (http::header::CACHE_CONTROL, no_store),
                        (
                            http::header::WWW_AUTHENTICATE,
                            www_authenticate(&links.realm, *reason, Some(&start)),
                        ),
                    ],
                    body: problem_body(*reason, 401, policy, Some(&start)),
                }
            }
        }
    }
}

/// A problem+json answer that is not a policy decision (a step-up endpoint called with the wrong
/// method, a webhook body over the cap, …), in the shape every adapter uses:
/// `{type, title, status, reason}`.
pub fn simple(status: u16, code: &str, title: &str) -> Rendered {
    Rendered {
        status,
        headers: vec![
            (
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            ),
            (
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ),
        ],
        body: Bytes::from(
            json!({
                "type": format!("https://proofgate.dev/problems/{code}"),
                "title": title,
                "status": status,
                "reason": code,
            })
            .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_follow_families() {
        for reason in Reason::ALL {
            let code = grpc_code(*reason);
            // The same code as the HTTP status the reason would get.
            assert_eq!(code, grpc_code_for_http(reason.status()), "{reason}");
        }
        assert_eq!(grpc_code(Reason::Missing), 16);
        assert_eq!(grpc_code(Reason::PolicyUnmet), 7);
        assert_eq!(grpc_code(Reason::RouteDenied), 7);
        assert_eq!(grpc_code(Reason::JwksStale), 14);
        assert_eq!(grpc_code_for_http(400), 3);
        assert_eq!(grpc_code_for_http(504), 14);
        assert_eq!(grpc_code_for_http(418), 2);
    }

    #[test]
    fn grpc_message_is_percent_encoded_and_every_reason_is_a_header_value() {
        assert_eq!(grpc_message("a%b\r\nc\u{7f}é"), "a%25b%0D%0Ac%7F%C3%A9");
        for reason in Reason::ALL {
            let r = grpc(
                grpc_code(*reason),
                reason.message(),
                reason.as_str(),
                Some("p"),
                None,
            );
            let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(
                names,
                [
                    "content-type",
                    "grpc-status",
                    "grpc-message",
                    "proofgate-reason",
                    "proofgate-policy"
                ]
            );
        }
        // A policy name that is no header value is left out, not a failure.
        let r = grpc(
            16,
            "m",
            "missing",
            Some("bad\nname"),
            Some("/.proofgate/start"),
        );
        assert!(r.headers.iter().all(|(k, _)| k != "proofgate-policy"));
        assert!(r.headers.iter().any(|(k, _)| k == "proofgate-step-up"));
    }

    #[test]
    fn render_refusal_answers_a_grpc_call_as_grpc() {
        let policy = Policy::public("p");
        let links = StepUpLinks::default();
        let pages = Pages::default();
        let asked = Asked {
            return_to: "/svc.S/M",
            html: true,
            navigation: true,
            back: None,
            wrong_identity: true,
            grpc: true,
        };
        for refusal in [
            Refusal::StepUp(Reason::PolicyUnmet),
            Refusal::StepUp(Reason::Missing),
            Refusal::Deny(Reason::Revoked),
            Refusal::Deny(Reason::StatusUnavailable),
        ] {
            let r = render_refusal(&refusal, &policy, &asked, &links, &pages);
            assert_eq!(r.status, 200);
            assert!(r.body.is_empty());
            let get = |n: &str| r.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v);
            assert_eq!(
                get("grpc-status").unwrap(),
                &grpc_code(refusal.reason()).to_string()
            );
            let step_up = get("proofgate-step-up").map(|v| v.to_str().unwrap());
            match refusal {
                Refusal::StepUp(_) => assert_eq!(
                    step_up,
                    Some("/.proofgate/start?policy=p&return_to=%2Fsvc.S%2FM")
                ),
                Refusal::Deny(_) => assert_eq!(step_up, None),
            }
        }
    }
}

#[cfg(test)]
mod referer_tests {
    use super::*;

    #[test]
    fn same_site_referer_only_returns_paths_of_this_host() {
        let at = |referer: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::REFERER, referer.parse().unwrap());
            same_site_referer(&h, Some("app.example"))
        };
        assert_eq!(
            at("https://app.example/form?x=1#top").as_deref(),
            Some("/form?x=1")
        );
        assert_eq!(at("http://APP.example").as_deref(), Some("/"));
        assert_eq!(
            at("https://app.example/f?proof_token=abc&y=2").as_deref(),
            Some("/f?y=2")
        );
        for refused in [
            "https://evil.example/form",
            "https://app.example.evil.example/form",
            "https://app.example//evil.example/x",
            "https://app.example/\\evil.example",
            "javascript:alert(1)",
            "/form",
        ] {
            assert_eq!(at(refused), None, "{refused}");
        }
        assert_eq!(
            same_site_referer(&http::HeaderMap::new(), Some("app.example")),
            None
        );
    }
}

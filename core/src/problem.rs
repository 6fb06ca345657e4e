//! Rendering decisions as HTTP: RFC 9457 problem+json bodies, `WWW-Authenticate`, step-up
//! redirects and the identity headers sent upstream. Shared by every adapter so a decision looks
//! the same wherever it is made. No token, key or secret ever appears in what is rendered here.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use serde_json::json;

use crate::decision::{Decision, Family, Reason};
use crate::verify::VerifiedProof;

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
        format!(
            "{}start?policy={}&return_to={}",
            self.prefix,
            urlencode(policy),
            urlencode(&without_tokens(return_to))
        )
    }
}

/// `target` (a path and query) without the query parameters that carry a token: a parameter
/// whose name contains `token` (any case), or whose value, percent-decoded, has the shape of a
/// compact JWS (three or more base64url segments joined by `.`). A client that sent its proof in
/// the query must not find it echoed in an answer, a `Location` or a cookie.
///
/// ```
/// use proofgate_core::problem::without_tokens;
/// assert_eq!(without_tokens("/a?x=1&proof_token=abc&y=2"), "/a?x=1&y=2");
/// assert_eq!(without_tokens("/a?t=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"), "/a");
/// assert_eq!(without_tokens("/a?v=1.2.3&q=x"), "/a?v=1.2.3&q=x");
/// ```
pub fn without_tokens(target: &str) -> std::borrow::Cow<'_, str> {
    fn carries_token(pair: &str) -> bool {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = |s: &str| crate::stepup::query_param(&format!("k={s}"), "k");
        if decoded(name).is_some_and(|n| n.to_ascii_lowercase().contains("token")) {
            return true;
        }
        let value = decoded(value).unwrap_or_else(|| value.to_owned());
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

/// Whether a request prefers an HTML page (a browser) over JSON (an API client).
pub fn wants_html(headers: &http::HeaderMap, method: &http::Method) -> bool {
    (method == http::Method::GET || method == http::Method::HEAD)
        && headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

fn www_authenticate(realm: &str, reason: Reason, step_up: Option<&str>) -> HeaderValue {
    let mut v = format!("Proof realm=\"{realm}\", error=\"{}\"", reason.as_str());
    if let Some(url) = step_up {
        v.push_str(&format!(", step_up=\"{url}\""));
    }
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Proof"))
}

/// The problem+json body for a reason.
///
/// `status` is the response's own status (RFC 9457 wants the two to agree): a step-up offered
/// for `policy_unmet` is answered 401, whatever the reason's family.
pub fn problem_body(reason: Reason, status: u16, policy: &str, step_up: Option<&str>) -> Bytes {
    let title = match reason.family() {
        Family::Unauthenticated => "Proof required",
        Family::Forbidden => "Proof insufficient",
        Family::Unavailable => "Proof check unavailable",
    };
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

/// Renders a non-`Allow` decision. `return_to` is the original relative path and query; `html`
/// says whether the client is a browser. Returns `None` for `Allow`.
pub fn render(
    decision: &Decision,
    policy: &str,
    return_to: &str,
    html: bool,
    links: &StepUpLinks,
) -> Option<Rendered> {
    let problem = HeaderValue::from_static("application/problem+json");
    let no_store = HeaderValue::from_static("no-store");
    match decision {
        Decision::Allow { .. } => None,
        Decision::Deny { reason } => {
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
            Some(Rendered {
                status: reason.status(),
                headers,
                body: problem_body(*reason, reason.status(), policy, None),
            })
        }
        Decision::StepUp { reason } => {
            let start = links.start_url(policy, return_to);
            if html {
                Some(Rendered {
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
                })
            } else {
                Some(Rendered {
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
                })
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

/// Names of the identity headers proofgate sets upstream; every incoming `x-proof-*` header is
/// removed before they are added.
pub const IDENTITY_PREFIX: &str = "x-proof-";

/// Whether a (lowercase) header name reads as an `x-proof-*` header once `_` is taken as `-`:
/// CGI, WSGI, PHP and Rack map `x_proof_subject` and `x-proof-subject` to the same
/// `HTTP_X_PROOF_SUBJECT`, so a client's underscore spelling must not reach the upstream beside
/// (or instead of) ours.
pub fn is_identity_spelling(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= IDENTITY_PREFIX.len()
        && b.iter()
            .zip(IDENTITY_PREFIX.as_bytes())
            .all(|(&c, &p)| c.to_ascii_lowercase() == p || (p == b'-' && c == b'_'))
}

/// The identity headers for allowed proofs. With several proofs, values are comma-joined in the
/// same order. A claim value that is not a valid header value is left out rather than sent.
pub fn identity_headers(
    proofs: &[std::sync::Arc<VerifiedProof>],
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    push_identity_headers(proofs, &mut out);
    out
}

/// [`identity_headers`] appended to `out`.
fn push_identity_headers(
    proofs: &[std::sync::Arc<VerifiedProof>],
    out: &mut Vec<(HeaderName, HeaderValue)>,
) {
    match proofs {
        [] => {}
        // The common case: values built when the token was verified, shared by every hit.
        [one] => out.extend(
            IDENTITY_FIELDS
                .into_iter()
                .zip(one.identity.iter())
                .filter_map(|((name, _), v)| v.clone().map(|v| (name, v))),
        ),
        many => out.extend(IDENTITY_FIELDS.into_iter().filter_map(|(name, get)| {
            let joined = many
                .iter()
                .map(|p| get(p).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(", ");
            HeaderValue::from_str(&joined).ok().map(|v| (name, v))
        })),
    }
}

/// The identity headers' names, in the order they are set.
pub const IDENTITY_HEADER_NAMES: [&str; 5] = [
    "x-proof-subject",
    "x-proof-type",
    "x-proof-channel",
    "x-proof-identifier-hash",
    "x-proof-verified-at",
];

type IdentityField = fn(&VerifiedProof) -> Option<&str>;

/// The identity headers and the claim each carries.
/// The names are built at compile time: `HeaderName::from_static` at run time would validate
/// each name on every request.
const IDENTITY_FIELDS: [(HeaderName, IdentityField); 5] = [
    (HeaderName::from_static(IDENTITY_HEADER_NAMES[0]), |p| {
        p.claims.sub.as_deref()
    }),
    (HeaderName::from_static(IDENTITY_HEADER_NAMES[1]), |p| {
        p.claims.proof_type.as_deref()
    }),
    (HeaderName::from_static(IDENTITY_HEADER_NAMES[2]), |p| {
        p.claims.channel.as_deref()
    }),
    (HeaderName::from_static(IDENTITY_HEADER_NAMES[3]), |p| {
        p.identifier_hash.as_deref()
    }),
    (HeaderName::from_static(IDENTITY_HEADER_NAMES[4]), |p| {
        p.claims.verified_at.as_deref()
    }),
];

/// One proof's identity header values (a value that is not a valid header value is `None` and
/// left out).
pub(crate) fn identity_values(proof: &VerifiedProof) -> [Option<HeaderValue>; 5] {
    IDENTITY_FIELDS.map(|(_, get)| HeaderValue::from_str(get(proof).unwrap_or("")).ok())
}

/// What to change in a request's headers before forwarding an allowed request.
#[derive(Debug, Default, Clone)]
pub struct UpstreamEdits {
    /// Headers to remove (all values).
    pub remove: Vec<HeaderName>,
    /// Headers to set (replacing any value).
    pub set: Vec<(HeaderName, HeaderValue)>,
}

/// The header edits for an allowed request: every incoming `x-proof-*` header removed (the token
/// header itself kept unless `strip_token`), then the identity headers of `proofs` set. With
/// `strip_token`, the bearer `Authorization`, token headers and the proof cookie (only that
/// cookie; others are kept) are removed too.
pub fn upstream_edits(
    headers: &http::HeaderMap,
    proofs: &[std::sync::Arc<VerifiedProof>],
    sources: &[crate::decision::TokenSource],
    strip_token: bool,
) -> UpstreamEdits {
    use crate::decision::TokenSource;
    let mut edits = UpstreamEdits::default();
    let is_token_header = |k: &HeaderName| {
        sources
            .iter()
            .any(|s| matches!(s, TokenSource::Header(h) if h == k))
    };
    for name in headers.keys() {
        if is_identity_spelling(name.as_str()) && (strip_token || !is_token_header(name)) {
            edits.remove.push(name.clone());
        }
    }
    if strip_token {
        for source in sources {
            match source {
                TokenSource::Bearer => {
                    let bearer = headers
                        .get(http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
                    if bearer {
                        edits.remove.push(http::header::AUTHORIZATION);
                    }
                }
                TokenSource::Header(h) => {
                    if !edits.remove.contains(h) {
                        edits.remove.push(h.clone());
                    }
                }
                TokenSource::Cookie(name) => {
                    let mut kept = Vec::new();
                    let mut had = false;
                    for value in headers.get_all(http::header::COOKIE) {
                        let Ok(value) = value.to_str() else { continue };
                        for pair in value.split(';') {
                            let key = pair.split_once('=').map_or(pair, |(k, _)| k).trim();
                            if key == name {
                                had = true;
                            } else if !pair.trim().is_empty() {
                                kept.push(pair.trim().to_string());
                            }
                        }
                    }
                    if had {
                        if kept.is_empty() {
                            edits.remove.push(http::header::COOKIE);
                        } else if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
                            edits.set.push((http::header::COOKIE, v));
                        }
                    }
                }
            }
        }
    }
    if !proofs.is_empty() {
        edits.set.reserve(IDENTITY_FIELDS.len());
        push_identity_headers(proofs, &mut edits.set);
    }
    edits
}

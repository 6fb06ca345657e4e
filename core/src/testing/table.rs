//! One table of requests and the answers every adapter must give them, so the gateway and the
//! middleware are proven to answer alike: the same status, reason, headers and problem body.
//!
//! The table is adapter-agnostic. It names four policies ([`table_policies`]: `public`,
//! `staff`, `payouts`, and the zero-trust default `deny-all`) and the path prefixes that use them
//! ([`TABLE_ROUTES`]); each [`Case`] is an `http` request (method, path, headers) built by
//! [`Case::request`] with tokens minted on the spot by the issuer's [`SigningKey`], and an
//! [`Expected`] answer that [`Expected::check`] compares with what the adapter sent.
//!
//! An adapter's harness must:
//! 1. serve the routes of [`TABLE_ROUTES`] under the policies of [`table_policies`] (anything
//!    else under `deny-all`), and [`TABLE_PREFLIGHT_ROUTE`] with its CORS preflights forwarded,
//!    with the step-up prefix `/.proofgate/` and realm `proofgate`;
//! 2. mark [`REVOKED_SUBJECT`] revoked (webhook, revocation list, or the store's `revoke_now`);
//! 3. answer an allowed request with a body that lets it check [`Expected::subject`] (the
//!    gateway's echo upstream reports `x-proof-subject`; a handler may report the extractor's).

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request};
use serde_json::{json, Value};

use super::mint::{claims, rfc3339, SigningKey};
use crate::policy::{OnFailure, Policy, Requirement};

/// The proof id every `Revoked` token carries; the harness revokes it at the issuer.
pub const REVOKED_SUBJECT: &str = "table-revoked-proof";

/// Path prefixes and the policy each uses; any other path falls to `deny-all`.
pub const TABLE_ROUTES: [(&str, &str); 3] = [
    ("/public", "public"),
    ("/admin", "staff"),
    ("/payouts", "payouts"),
];

/// A path prefix and its policy whose CORS preflights are forwarded (`preflight = "forward"` in
/// the gateway, [`crate::routes::Preflight::Forward`] on the tower layer); the routes of
/// [`TABLE_ROUTES`] keep the default (`deny`).
pub const TABLE_PREFLIGHT_ROUTE: (&str, &str) = ("/cors", "staff");

/// The default policy for paths that match no route.
pub const TABLE_DEFAULT_POLICY: &str = "deny-all";

/// The table's policies, the same as the gateway tests' configuration:
/// `public`; `staff` (an email proof of `alice@corp.example` or a domain proof of
/// `corp.example`, step-up on failure); `payouts` (a phone proof verified in the last 10 min,
/// deny on failure); `deny-all`.
pub fn table_policies() -> Vec<Policy> {
    vec![
        Policy::public("public"),
        Policy::any_of(
            "staff",
            vec![
                Requirement::of_type("email").identifiers(["alice@corp.example"]),
                Requirement::of_type("domain").identifiers(["corp.example"]),
            ],
        )
        .on_failure(OnFailure::StepUp),
        Policy::any_of(
            "payouts",
            vec![Requirement::of_type("phone").max_age(std::time::Duration::from_secs(600))],
        )
        .on_failure(OnFailure::Deny),
        Policy::deny(TABLE_DEFAULT_POLICY),
    ]
}

/// A token the table mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenKind {
    /// A valid email proof of `alice@corp.example` (subject `table-alice`).
    EmailAlice,
    /// A valid email proof of `mallory@corp.example`, on no allowlist.
    EmailMallory,
    /// A valid proof of control of `corp.example` (subject `table-corp`).
    DomainCorp,
    /// A phone proof verified now (subject `table-phone`).
    PhoneFresh,
    /// A phone proof verified 20 minutes ago.
    PhoneOld,
    /// Alice's proof, expired an hour ago.
    Expired,
    /// Alice's proof with `iat` an hour in the future.
    NotYetValid,
    /// Alice's proof with `iss` = `evil.example`.
    WrongIssuer,
    /// Alice's proof signed by a key the issuer never published.
    UnknownKey,
    /// Alice's proof with a corrupted signature.
    BadSignature,
    /// Alice's claims under `alg: none`.
    AlgNone,
    /// Alice's claims with a header-embedded `jwk`.
    EmbeddedJwk,
    /// A valid email proof whose subject is [`REVOKED_SUBJECT`].
    Revoked,
    /// Not a JWS at all.
    Garbage,
    /// Three segments over the 8 KiB cap.
    Oversized,
}

impl TokenKind {
    /// Mints this token with `issuer` (the key the adapter's issuer publishes).
    pub fn mint(self, issuer: &SigningKey) -> String {
        let alice = || claims("table-alice", "email", "email", "alice@corp.example");
        let now = super::mint::now();
        match self {
            TokenKind::EmailAlice => issuer.sign(&alice()),
            TokenKind::EmailMallory => issuer.sign(&claims(
                "table-mallory",
                "email",
                "email",
                "mallory@corp.example",
            )),
            TokenKind::DomainCorp => {
                issuer.sign(&claims("table-corp", "domain", "dns", "corp.example"))
            }
            TokenKind::PhoneFresh => {
                issuer.sign(&claims("table-phone", "phone", "sms", "+37069199199"))
            }
            TokenKind::PhoneOld => {
                let mut c = claims("table-phone-old", "phone", "sms", "+37069199199");
                c.verified_at = Some(rfc3339(now - 20 * 60).into());
                issuer.sign(&c)
            }
            TokenKind::Expired => {
                let mut c = alice();
                c.iat = Some(now - 7200);
                c.exp = Some(now - 3600);
                issuer.sign(&c)
            }
            TokenKind::NotYetValid => {
                let mut c = alice();
                c.iat = Some(now + 3600);
                issuer.sign(&c)
            }
            TokenKind::WrongIssuer => {
                let mut c = alice();
                c.iss = Some("evil.example".into());
                issuer.sign(&c)
            }
            TokenKind::UnknownKey => SigningKey::es256("table-unpublished").sign(&alice()),
            TokenKind::BadSignature => {
                let token = issuer.sign(&alice());
                let (input, sig) = token.rsplit_once('.').unwrap_or((&token, ""));
                // Change one character in the middle: still valid base64url, wrong signature.
                let mut sig: Vec<u8> = sig.bytes().collect();
                let mid = sig.len() / 2;
                if let Some(b) = sig.get_mut(mid) {
                    *b = if *b == b'A' { b'B' } else { b'A' };
                }
                format!("{input}.{}", String::from_utf8_lossy(&sig))
            }
            TokenKind::AlgNone => {
                let header = json!({"alg": "none", "typ": "JWT"});
                let payload = serde_json::to_vec(&alice()).unwrap_or_default();
                format!(
                    "{}.{}.",
                    super::mint::b64(header.to_string()),
                    super::mint::b64(payload)
                )
            }
            TokenKind::EmbeddedJwk => {
                let mut header = issuer.header();
                header["jwk"] = issuer.jwk();
                issuer.sign_raw(&header, &serde_json::to_vec(&alice()).unwrap_or_default())
            }
            TokenKind::Revoked => issuer.sign(&claims(
                REVOKED_SUBJECT,
                "email",
                "email",
                "alice@corp.example",
            )),
            TokenKind::Garbage => "not.a.token".into(),
            TokenKind::Oversized => format!("{}.{}.{}", "a".repeat(4096), "b".repeat(4096), "c"),
        }
    }
}

/// How a request presents its token(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// No token.
    Nothing,
    /// `Authorization: Bearer …`.
    Bearer(TokenKind),
    /// `x-proof-token: …`.
    Header(TokenKind),
    /// `Cookie: proof_token=…`.
    Cookie(TokenKind),
    /// Two `Authorization` headers carrying the token (malformed).
    TwoBearers(TokenKind),
}

/// The answer an adapter must give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The status.
    pub status: u16,
    /// The problem body's `reason` (and the `error` of `WWW-Authenticate` on a 401); `None` for
    /// an allowed request or a redirect.
    pub reason: Option<&'static str>,
    /// The problem body's `policy`.
    pub policy: Option<&'static str>,
    /// The step-up start link (in the body and `WWW-Authenticate` of a 401, in `Location` of a
    /// 302); `None` when no step-up is offered.
    pub step_up: Option<&'static str>,
    /// For an allowed request, the `sub` of the proof that let it through.
    pub subject: Option<&'static str>,
    /// For a refused gRPC call: the `grpc-status` of its Trailers-Only answer (`status` is
    /// then 200, and `reason`, `policy` and `step_up` are its metadata).
    pub grpc: Option<u8>,
}

/// One request of the table.
#[derive(Debug, Clone)]
pub struct Case {
    /// A short name, for failure messages.
    pub name: &'static str,
    /// The method.
    pub method: Method,
    /// The path and query.
    pub path: &'static str,
    /// The token(s).
    pub token: Presented,
    /// Whether the request comes from a browser (`Accept: text/html`).
    pub browser: bool,
    /// Extra headers (spoofed identity headers…).
    pub headers: Vec<(&'static str, &'static str)>,
    /// The answer.
    pub expect: Expected,
}

impl Case {
    /// Checks an adapter's whole answer to this case: [`Expected::check`], then, for an allowed
    /// request, the body of the application behind the adapter — an `identity` object of the
    /// `x-proof-*` headers it received, as the gateway's demo upstream and the middleware tests'
    /// handler return — must carry the expected subject and no client-sent (`spoofed`) value.
    pub fn check_answer(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        if self.browser && !matches!(status, 200 | 302) {
            return self.expect.check_page(status, headers, body);
        }
        self.expect.check(status, headers, body)?;
        if status != 200 || self.expect.grpc.is_some() {
            return Ok(());
        }
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| format!("the application's answer is not JSON: {e}"))?;
        let subject = body["identity"]["x-proof-subject"].as_str();
        if subject != self.expect.subject {
            return Err(format!("subject {subject:?}"));
        }
        if body["identity"]
            .as_object()
            .is_some_and(|m| m.values().any(|v| v == "spoofed"))
        {
            return Err("a spoofed header reached the application".into());
        }
        Ok(())
    }

    /// The request, with tokens minted by `issuer`. The URI is the path alone: the harness sets
    /// scheme and authority as its client needs.
    pub fn request(&self, issuer: &SigningKey) -> Request<()> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(self.path);
        if self.browser {
            b = b.header(http::header::ACCEPT, "text/html,application/xhtml+xml");
        } else {
            b = b.header(http::header::ACCEPT, "application/json");
        }
        match self.token {
            Presented::Nothing => {}
            Presented::Bearer(k) => {
                b = b.header("authorization", format!("Bearer {}", k.mint(issuer)))
            }
            Presented::Header(k) => b = b.header("x-proof-token", k.mint(issuer)),
            Presented::Cookie(k) => {
                b = b.header(
                    "cookie",
                    format!("theme=dark; proof_token={}", k.mint(issuer)),
                )
            }
            Presented::TwoBearers(k) => {
                let t = k.mint(issuer);
                b = b
                    .header("authorization", format!("Bearer {t}"))
                    .header("authorization", format!("Bearer {t}"));
            }
        }
        for (name, value) in &self.headers {
            b = b.header(*name, *value);
        }
        b.body(()).unwrap_or_default()
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Expected {
    /// Compares a browser's answer with this expectation: the status; an HTML page with
    /// `Cache-Control: no-store` and a strict CSP that names the reason; on a 401 the exact
    /// `WWW-Authenticate`; the step-up start link as the page's link (and nothing else that
    /// looks like problem+json).
    pub fn check_page(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let page = String::from_utf8_lossy(body);
        if status != self.status {
            return Err(format!(
                "status {status}, expected {} (page {page})",
                self.status
            ));
        }
        if header(headers, "content-type") != Some("text/html; charset=utf-8") {
            return Err(format!(
                "content-type {:?}",
                header(headers, "content-type")
            ));
        }
        if header(headers, "cache-control") != Some("no-store") {
            return Err(format!(
                "cache-control {:?}",
                header(headers, "cache-control")
            ));
        }
        let csp = header(headers, "content-security-policy").unwrap_or("");
        if !csp.starts_with("default-src 'none';") || csp.contains("unsafe") {
            return Err(format!("content-security-policy {csp:?}"));
        }
        let reason = self.reason.unwrap_or("");
        if !page.contains(reason) {
            return Err(format!("the page does not name {reason}: {page}"));
        }
        if let Some(start) = self.step_up {
            let href = format!("href=\"{}\"", crate::pages::escape(start));
            if !page.contains(&href) {
                return Err(format!("the page has no link {href}: {page}"));
            }
        }
        let www = header(headers, "www-authenticate");
        let expected_www = (status == 401 || self.step_up.is_some()).then(|| {
            let mut v = format!("Proof realm=\"proofgate\", error=\"{reason}\"");
            if let Some(start) = self.step_up {
                v.push_str(&format!(", step_up=\"{start}\""));
            }
            v
        });
        if www.map(str::to_owned) != expected_www {
            return Err(format!(
                "www-authenticate {www:?}, expected {expected_www:?}"
            ));
        }
        Ok(())
    }

    /// Compares an adapter's answer with this expectation: status; for a 302 the `Location`;
    /// for an error the content type, `Cache-Control: no-store`, `WWW-Authenticate` (exact, on a
    /// 401), `Retry-After` (on a 503) and every field of the problem body, nothing more and
    /// nothing less. [`Case::check_answer`] adds the allowed request's subject.
    pub fn check(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        if status != self.status {
            return Err(format!(
                "status {status}, expected {} (body {})",
                self.status,
                String::from_utf8_lossy(body)
            ));
        }
        if let Some(code) = self.grpc {
            return self.check_grpc(code, headers, body);
        }
        if status == 200 {
            return Ok(());
        }
        if status == 302 {
            let location = header(headers, "location");
            if location != self.step_up {
                return Err(format!(
                    "location {location:?}, expected {:?}",
                    self.step_up
                ));
            }
            return Ok(());
        }
        if header(headers, "content-type") != Some("application/problem+json") {
            return Err(format!(
                "content-type {:?}",
                header(headers, "content-type")
            ));
        }
        if header(headers, "cache-control") != Some("no-store") {
            return Err(format!(
                "cache-control {:?}",
                header(headers, "cache-control")
            ));
        }
        let reason = self.reason.unwrap_or("");
        if self.policy.is_none() {
            return check_endpoint_problem(status, reason, headers, body);
        }
        let www = header(headers, "www-authenticate");
        let expected_www = (status == 401).then(|| {
            let mut v = format!("Proof realm=\"proofgate\", error=\"{reason}\"");
            if let Some(start) = self.step_up {
                v.push_str(&format!(", step_up=\"{start}\""));
            }
            v
        });
        if www.map(str::to_owned) != expected_www {
            return Err(format!(
                "www-authenticate {www:?}, expected {expected_www:?}"
            ));
        }
        if (status == 503) != header(headers, "retry-after").is_some() {
            return Err("retry-after present on a non-503 or missing on a 503".into());
        }
        let body: Value =
            serde_json::from_slice(body).map_err(|e| format!("problem body is not JSON: {e}"))?;
        let reason_kind = crate::Reason::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == reason)
            .ok_or_else(|| format!("unknown reason {reason}"))?;
        // The body's `status` is the response's own (RFC 9457); its `title` follows the
        // reason's family, so a step-up for `policy_unmet` is a 401 "Proof insufficient".
        let body_status = status;
        let thing = if reason_kind.is_delegation() {
            "Delegation"
        } else {
            "Proof"
        };
        let title = match reason_kind.family() {
            crate::reason::Family::Unauthenticated => format!("{thing} required"),
            crate::reason::Family::Forbidden => format!("{thing} insufficient"),
            crate::reason::Family::Unavailable => format!("{thing} check unavailable"),
        };
        let detail = reason_kind.message();
        let mut expected = json!({
            "type": format!("https://proofgate.dev/problems/{reason}"),
            "title": title,
            "status": body_status,
            "detail": detail,
            "reason": reason,
            "policy": self.policy.unwrap_or(""),
        });
        if let Some(start) = self.step_up {
            expected["step_up"] = json!({ "start": start });
        }
        if body != expected {
            return Err(format!("problem body {body}, expected {expected}"));
        }
        Ok(())
    }
}

impl Expected {
    /// A gRPC Trailers-Only refusal: `content-type: application/grpc`, `grpc-status: code`,
    /// `grpc-message` (the reason's sentence), `proofgate-reason`, `proofgate-policy`,
    /// `proofgate-step-up` exactly when a step-up is expected, an empty body, and nothing a
    /// gRPC client would not read (`WWW-Authenticate`, `Location`).
    fn check_grpc(&self, code: u8, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
        let reason = self.reason.unwrap_or("");
        let message = crate::Reason::ALL
            .iter()
            .find(|r| r.as_str() == reason)
            .map(|r| crate::render::grpc_message(r.message()))
            .ok_or_else(|| format!("unknown reason {reason}"))?;
        let code = code.to_string();
        for (name, expected) in [
            ("content-type", Some("application/grpc")),
            ("grpc-status", Some(code.as_str())),
            ("grpc-message", Some(message.as_str())),
            ("proofgate-reason", Some(reason)),
            ("proofgate-policy", self.policy),
            ("proofgate-step-up", self.step_up),
            ("www-authenticate", None),
            ("location", None),
        ] {
            let got = header(headers, name);
            if got != expected {
                return Err(format!("{name} {got:?}, expected {expected:?}"));
            }
        }
        if !body.is_empty() {
            return Err(format!(
                "a gRPC refusal has a body: {}",
                String::from_utf8_lossy(body)
            ));
        }
        Ok(())
    }
}

/// A step-up endpoint's refusal: `{type, title, status, reason}` with no `WWW-Authenticate`.
fn check_endpoint_problem(
    status: u16,
    reason: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    if header(headers, "www-authenticate").is_some() {
        return Err("www-authenticate on a step-up endpoint's answer".into());
    }
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("problem body is not JSON: {e}"))?;
    let fields = body.as_object().map(|o| o.len());
    if body["reason"] != reason
        || body["status"] != status
        || body["type"] != format!("https://proofgate.dev/problems/{reason}")
        || !body["title"].is_string()
        || fields != Some(4)
    {
        return Err(format!("problem body {body}, expected reason {reason:?}"));
    }
    Ok(())
}

/// A step-up endpoint's answer: a simple problem with `reason`, or a redirect to `location`.
fn endpoint(status: u16, reason: Option<&'static str>, location: Option<&'static str>) -> Expected {
    Expected {
        status,
        reason,
        policy: None,
        step_up: location,
        subject: None,
        grpc: None,
    }
}

fn deny(status: u16, reason: &'static str, policy: &'static str) -> Expected {
    Expected {
        status,
        reason: Some(reason),
        policy: Some(policy),
        step_up: None,
        subject: None,
        grpc: None,
    }
}

fn allow(subject: Option<&'static str>) -> Expected {
    Expected {
        status: 200,
        reason: None,
        policy: None,
        step_up: None,
        subject,
        grpc: None,
    }
}

fn grpc(
    code: u8,
    reason: &'static str,
    policy: &'static str,
    step_up: Option<&'static str>,
) -> Expected {
    Expected {
        status: 200,
        reason: Some(reason),
        policy: Some(policy),
        step_up,
        subject: None,
        grpc: Some(code),
    }
}

const ADMIN_START: &str = "/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fpanel";

fn step_up_401(reason: &'static str) -> Expected {
    Expected {
        status: 401,
        reason: Some(reason),
        policy: Some("staff"),
        step_up: Some(ADMIN_START),
        subject: None,
        grpc: None,
    }
}

/// Every case of the table.
pub fn table_cases() -> Vec<Case> {
    use Presented::*;
    use TokenKind::*;
    let get = |name, path, token, expect| Case {
        name,
        method: Method::GET,
        path,
        token,
        browser: false,
        headers: Vec::new(),
        expect,
    };
    let post = |name, path, token, expect| Case {
        method: Method::POST,
        ..get(name, path, token, expect)
    };
    let mut cases = vec![
        get("public without token", "/public/ping", Nothing, allow(None)),
        get(
            "public ignores garbage",
            "/public/ping",
            Bearer(Garbage),
            allow(None),
        ),
        get(
            "staff: alice by bearer",
            "/admin/panel",
            Bearer(EmailAlice),
            allow(Some("table-alice")),
        ),
        get(
            "staff: alice by x-proof-token",
            "/admin/panel",
            Header(EmailAlice),
            allow(Some("table-alice")),
        ),
        get(
            "staff: alice by cookie",
            "/admin/panel",
            Cookie(EmailAlice),
            allow(Some("table-alice")),
        ),
        get(
            "staff: domain proof",
            "/admin/panel",
            Bearer(DomainCorp),
            allow(Some("table-corp")),
        ),
        get(
            "staff: missing",
            "/admin/panel",
            Nothing,
            step_up_401("missing"),
        ),
        get(
            "staff: policy unmet",
            "/admin/panel",
            Bearer(EmailMallory),
            step_up_401("policy_unmet"),
        ),
        get(
            "staff: malformed",
            "/admin/panel",
            Bearer(Garbage),
            step_up_401("malformed"),
        ),
        get(
            "staff: oversized",
            "/admin/panel",
            Bearer(Oversized),
            step_up_401("malformed"),
        ),
        get(
            "staff: two bearers",
            "/admin/panel",
            TwoBearers(EmailAlice),
            step_up_401("malformed"),
        ),
        get(
            "staff: expired",
            "/admin/panel",
            Bearer(Expired),
            step_up_401("expired"),
        ),
        get(
            "staff: not yet valid",
            "/admin/panel",
            Bearer(NotYetValid),
            step_up_401("not_yet_valid"),
        ),
        get(
            "staff: wrong issuer",
            "/admin/panel",
            Bearer(WrongIssuer),
            step_up_401("issuer"),
        ),
        get(
            "staff: unknown key",
            "/admin/panel",
            Bearer(UnknownKey),
            step_up_401("unknown_key"),
        ),
        get(
            "staff: bad signature",
            "/admin/panel",
            Bearer(BadSignature),
            step_up_401("invalid_signature"),
        ),
        get(
            "staff: alg none",
            "/admin/panel",
            Bearer(AlgNone),
            step_up_401("unsupported_algorithm"),
        ),
        get(
            "staff: embedded jwk",
            "/admin/panel",
            Bearer(EmbeddedJwk),
            step_up_401("forbidden_header"),
        ),
        get(
            "staff: revoked",
            "/admin/panel",
            Bearer(Revoked),
            step_up_401("revoked"),
        ),
        post(
            "payouts: fresh phone",
            "/payouts/send",
            Bearer(PhoneFresh),
            allow(Some("table-phone")),
        ),
        post(
            "payouts: old phone",
            "/payouts/send",
            Bearer(PhoneOld),
            deny(403, "policy_unmet", "payouts"),
        ),
        post(
            "payouts: email",
            "/payouts/send",
            Bearer(EmailAlice),
            deny(403, "policy_unmet", "payouts"),
        ),
        post(
            "payouts: missing",
            "/payouts/send",
            Nothing,
            deny(401, "missing", "payouts"),
        ),
        post(
            "payouts: expired",
            "/payouts/send",
            Bearer(Expired),
            deny(401, "expired", "payouts"),
        ),
        get(
            "no route: denied",
            "/nowhere/x",
            Bearer(PhoneFresh),
            deny(403, "route_denied", "deny-all"),
        ),
        get(
            "no route: denied without token",
            "/nowhere",
            Nothing,
            deny(403, "route_denied", "deny-all"),
        ),
    ];
    cases.push(Case {
        browser: true,
        ..get(
            "staff: browser is redirected to start",
            "/admin/panel?tab=2",
            Nothing,
            Expected {
                status: 302,
                reason: None,
                policy: None,
                step_up: Some(
                    "/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fpanel%3Ftab%3D2",
                ),
                subject: None,
                grpc: None,
            },
        )
    });
    // A browser's form POST is not redirected (its body would be lost): a page explains and
    // offers the step-up, returning to the page the form came from when that is this site.
    let page = |status, reason, policy, start| Expected {
        status,
        reason: Some(reason),
        policy: Some(policy),
        step_up: start,
        subject: None,
        grpc: None,
    };
    cases.push(Case {
        browser: true,
        ..post(
            "payouts: a browser POST where step-up is off gets a page without one",
            "/payouts/send",
            Nothing,
            page(401, "missing", "payouts", None),
        )
    });
    cases.push(Case {
        browser: true,
        ..post(
            "staff: a browser POST gets a page, back to /",
            "/admin/users",
            Nothing,
            page(
                401,
                "missing",
                "staff",
                Some("/.proofgate/start?policy=staff&return_to=%2F"),
            ),
        )
    });
    cases.push(Case {
        browser: true,
        headers: vec![
            ("host", "app.example"),
            ("referer", "http://app.example/admin/form?x=1"),
        ],
        ..post(
            "staff: a browser POST from this site returns to its form",
            "/admin/users",
            Nothing,
            page(
                401,
                "missing",
                "staff",
                Some("/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fform%3Fx%3D1"),
            ),
        )
    });
    cases.push(Case {
        browser: true,
        headers: vec![
            ("host", "app.example"),
            ("referer", "http://evil.example/admin/form"),
        ],
        ..post(
            "staff: a browser POST from another site returns to /",
            "/admin/users",
            Nothing,
            page(
                401,
                "missing",
                "staff",
                Some("/.proofgate/start?policy=staff&return_to=%2F"),
            ),
        )
    });
    // A verified person whose proof does not open the page is told so (no new verification
    // behind their back).
    cases.push(Case {
        browser: true,
        ..get(
            "staff: a browser with the wrong identity gets an explanation",
            "/admin/panel",
            Bearer(EmailMallory),
            Expected {
                status: 403,
                reason: Some("policy_unmet"),
                policy: Some("staff"),
                step_up: Some("/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fpanel"),
                subject: None,
                grpc: None,
            },
        )
    });
    // A proof of another kind than the page asks for is no wrong identity: straight on to
    // the verification.
    cases.push(Case {
        browser: true,
        ..get(
            "staff: a browser with only a phone proof is redirected to start",
            "/admin/panel",
            Bearer(PhoneFresh),
            Expected {
                status: 302,
                reason: None,
                policy: None,
                step_up: Some("/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fpanel"),
                subject: None,
                grpc: None,
            },
        )
    });
    cases.push(Case {
        browser: true,
        ..get(
            "no route: a browser gets a page",
            "/nowhere",
            Nothing,
            deny(403, "route_denied", "deny-all"),
        )
    });
    cases.push(Case {
        headers: vec![("x-proof-subject", "spoofed"), ("x-proof-type", "spoofed")],
        ..get(
            "staff: spoofed identity headers",
            "/admin/panel",
            Bearer(EmailAlice),
            allow(Some("table-alice")),
        )
    });
    cases.push(Case {
        headers: vec![("x-proof-subject", "spoofed")],
        ..get(
            "public: spoofed identity headers",
            "/public/ping",
            Nothing,
            allow(None),
        )
    });
    // The step-up endpoints answer alike through every adapter (the core's gate answers them).
    for (name, method, path, expect) in [
        (
            "step-up: start for an unknown policy",
            Method::GET,
            "/.proofgate/start?policy=nope",
            endpoint(404, Some("unknown_policy"), None),
        ),
        (
            "step-up: start returning off-site",
            Method::GET,
            "/.proofgate/start?policy=staff&return_to=%2F%2Fevil.example",
            endpoint(400, Some("invalid_return_to"), None),
        ),
        (
            "step-up: callback without a flow",
            Method::GET,
            "/.proofgate/callback",
            endpoint(400, Some("state_missing"), None),
        ),
        (
            "step-up: webhook by GET",
            Method::GET,
            "/.proofgate/webhook",
            endpoint(405, Some("method_not_allowed"), None),
        ),
        (
            "step-up: unsigned webhook",
            Method::POST,
            "/.proofgate/webhook",
            endpoint(401, Some("invalid_webhook"), None),
        ),
        (
            "step-up: logout returns home",
            Method::GET,
            "/.proofgate/logout?return_to=%2F%2Fevil.example",
            endpoint(302, None, Some("/")),
        ),
    ] {
        cases.push(Case {
            name,
            method,
            path,
            token: Nothing,
            browser: false,
            headers: Vec::new(),
            expect,
        });
    }
    // A start under a `Host` that is neither this site's nor loopback: refused in every adapter
    // (the gateway and a tower service alike build the return address the same way).
    cases.push(Case {
        headers: vec![("host", "evil.example")],
        ..get(
            "step-up: start under a foreign Host",
            "/.proofgate/start?policy=staff",
            Nothing,
            endpoint(400, Some("untrusted_host"), None),
        )
    });
    // CGI, WSGI, PHP and Rack read `x_proof_subject` as `HTTP_X_PROOF_SUBJECT`, the real header.
    let underscores = vec![
        ("x_proof_subject", "spoofed"),
        ("X_Proof_Type", "spoofed"),
        ("x-proof_channel", "spoofed"),
        ("x_proof-identifier_hash", "spoofed"),
    ];
    cases.push(Case {
        headers: underscores.clone(),
        ..get(
            "staff: identity headers spoofed with underscores",
            "/admin/panel",
            Bearer(EmailAlice),
            allow(Some("table-alice")),
        )
    });
    cases.push(Case {
        headers: underscores,
        ..get(
            "public: identity headers spoofed with underscores",
            "/public/ping",
            Nothing,
            allow(None),
        )
    });
    // CORS preflights: forwarded without a decision on the route that says so, decided like
    // any request elsewhere; an OPTIONS that is no preflight, and the actual request, are
    // decided.
    let preflight = |name, path, headers: Vec<(&'static str, &'static str)>, expect| Case {
        method: Method::OPTIONS,
        headers,
        ..get(name, path, Nothing, expect)
    };
    let cors_start = Some("/.proofgate/start?policy=staff&return_to=%2Fcors%2Fitems");
    let cors_401 = Expected {
        step_up: cors_start,
        ..step_up_401("missing")
    };
    let origin = ("origin", "https://app.example");
    cases.extend([
        preflight(
            "cors: a preflight is forwarded without a proof",
            "/cors/items",
            vec![
                origin,
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
                ("x-proof-subject", "spoofed"),
            ],
            allow(None),
        ),
        preflight(
            "cors: an OPTIONS without Origin is decided",
            "/cors/items",
            vec![("access-control-request-method", "POST")],
            cors_401.clone(),
        ),
        preflight(
            "cors: an OPTIONS without Access-Control-Request-Method is decided",
            "/cors/items",
            vec![origin],
            cors_401.clone(),
        ),
        Case {
            headers: vec![origin],
            ..post(
                "cors: the actual request is decided",
                "/cors/items",
                Nothing,
                cors_401,
            )
        },
        Case {
            headers: vec![origin],
            ..post(
                "cors: the actual request with a proof",
                "/cors/items",
                Bearer(EmailAlice),
                allow(Some("table-alice")),
            )
        },
        preflight(
            "staff: a preflight where preflights are denied is decided",
            "/admin/panel",
            vec![origin, ("access-control-request-method", "PUT")],
            step_up_401("missing"),
        ),
        preflight(
            "no route: a preflight is denied",
            "/nowhere",
            vec![origin, ("access-control-request-method", "PUT")],
            deny(403, "route_denied", "deny-all"),
        ),
    ]);
    // gRPC calls are refused with gRPC statuses, never problem+json or a page.
    let call = |name, path, token, content_type, expect| Case {
        headers: vec![("content-type", content_type)],
        ..post(name, path, token, expect)
    };
    cases.extend([
        call(
            "grpc: staff without a proof",
            "/admin/panel",
            Nothing,
            "application/grpc",
            grpc(16, "missing", "staff", Some(ADMIN_START)),
        ),
        Case {
            browser: true,
            ..call(
                "grpc: staff with the wrong identity, asking for HTML",
                "/admin/panel",
                Bearer(EmailMallory),
                "application/grpc+proto",
                grpc(7, "policy_unmet", "staff", Some(ADMIN_START)),
            )
        },
        call(
            "grpc: payouts with an expired proof",
            "/payouts/send",
            Bearer(Expired),
            "application/grpc",
            grpc(16, "expired", "payouts", None),
        ),
        call(
            "grpc: payouts with another kind of proof",
            "/payouts/send",
            Bearer(EmailAlice),
            "application/grpc",
            grpc(7, "policy_unmet", "payouts", None),
        ),
        call(
            "grpc: no route",
            "/nowhere",
            Bearer(EmailAlice),
            "application/grpc",
            grpc(7, "route_denied", "deny-all", None),
        ),
        call(
            "grpc: staff with a proof is let through",
            "/admin/panel",
            Bearer(EmailAlice),
            "application/grpc",
            allow(Some("table-alice")),
        ),
    ]);
    cases
}

/// Whether the adapter's reported identity headers contain no spoofed value: for allowed cases
/// with spoofed headers, the harness passes the headers its handler saw.
pub fn no_spoofed_identity(seen: &HeaderMap) -> bool {
    !seen.iter().any(|(k, v)| {
        crate::proof::is_identity_spelling(k.as_str()) && v == HeaderValue::from_static("spoofed")
    })
}

/// The header name of the subject the gateway and the middleware report upstream.
pub const SUBJECT_HEADER: HeaderName = HeaderName::from_static("x-proof-subject");

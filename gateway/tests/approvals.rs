//! Human approval before a risky request, end to end: the real `proofgate` binary in front of a
//! recording upstream, the real sandbox as issuer (HITL configurations, confirmations, their
//! test-approve/test-deny endpoints, timeouts and signed webhooks), everything on loopback.
//!
//! Each test asserts what the client is answered, what the approver was shown, what reached the
//! upstream (once, with the body unchanged and without the ticket) and what was counted.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::any;
use common::{config_text, echo_upstream, free_port, mint, Options, Process, API_KEY, COOKIE_KEY};
use proofgate_sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use serde_json::{json, Value};

/// What the recording upstream received: method, path, body (as text) and headers.
type Received = Arc<Mutex<Vec<Value>>>;

async fn recording_upstream() -> (SocketAddr, Received) {
    let received: Received = Arc::default();
    let log = received.clone();
    let app = axum::Router::new().fallback(any(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: axum::http::HeaderMap,
              body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let headers: serde_json::Map<String, Value> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").into()))
                    .collect();
                let seen = json!({
                    "method": method.as_str(),
                    "path": uri.path(),
                    "body": String::from_utf8_lossy(&body),
                    "headers": headers,
                });
                log.lock().unwrap().push(seen.clone());
                axum::Json(seen)
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, received)
}

struct Setup {
    hitl_timeout: u64,
    poll_interval: &'static str,
    webhook: bool,
}

struct Stack {
    sandbox: Option<SandboxHandle>,
    base: String,
    proxy: String,
    admin: String,
    received: Received,
    http: reqwest::Client,
    log: PathBuf,
    _process: Process,
    _dir: tempfile::TempDir,
}

async fn start(setup: Setup) -> Stack {
    let mut sc = SandboxConfig::default();
    sc.rate_limit_per_minute = None;
    sc.webhook_retry_delay = Duration::from_millis(100);
    let sandbox = Sandbox::start_with("127.0.0.1:0", sc).await.unwrap();
    let base = sandbox.base_url().to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let hitl = common::hitl(&http, &base, "payouts", Some(setup.hitl_timeout)).await;
    let (upstream, received) = recording_upstream().await;
    let _ = echo_upstream;
    let (proxy, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut text = config_text(proxy, admin, &base, upstream, &Options::default());
    text.push_str(&format!(
        r#"
[[policies]]
name = "transfer"
rule = "any_of"
on_failure = "deny"
requirements = [{{ types = ["email"] }}]
approval = {{ hitl = "{hitl}", message = "{{method}} {{path}} by {{subject}}", timeout = "60s", headers = ["x-account"], body_fields = ["amount", "payee.iban"] }}

[[routes]]
name = "transfers"
path = "/transfers/**"
policy = "transfer"

[[policies]]
name = "agent-payout"
rule = "any_of"
on_failure = "deny"
requirements = [{{ delegation = {{ principals = ["corp.example"], scopes = ["payments-write"] }} }}]
approval = {{ hitl = "{hitl}", message = "{{method}} {{path}} by {{subject}}", timeout = "60s" }}

[[routes]]
name = "agent-payouts"
path = "/agents/**"
policy = "agent-payout"

[approvals]
poll_interval = "{poll}"
max_body_bytes = 1024
"#,
        poll = setup.poll_interval,
    ));
    let config = dir.path().join("proofgate.toml");
    std::fs::write(&config, &text).unwrap();
    let proxy_url = format!("http://127.0.0.1:{proxy}");
    if setup.webhook {
        sandbox.add_webhook_url(&format!("{proxy_url}/.proofgate/webhook"));
    }
    let log = dir.path().join("proofgate.log");
    let secret = sandbox.webhook_secret().to_string();
    let process = Process::proofgate(
        &config,
        &[],
        &[
            ("PROOF_API_KEY", API_KEY),
            ("PROOFGATE_COOKIE_KEY", COOKIE_KEY),
            ("PROOF_WEBHOOK_SECRET", secret.as_str()),
        ],
        &log,
    );
    let s = Stack {
        sandbox: Some(sandbox),
        base,
        proxy: proxy_url,
        admin: format!("http://127.0.0.1:{admin}"),
        received,
        http,
        log,
        _process: process,
        _dir: dir,
    };
    let started = Instant::now();
    while s
        .http
        .get(format!("{}/readyz", s.admin))
        .send()
        .await
        .map_or(true, |r| r.status() != 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never ready:\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s
}

/// A request to send (and send again).
#[derive(Clone)]
struct Req {
    method: reqwest::Method,
    path: String,
    body: String,
    token: String,
    ticket: Option<String>,
    html: bool,
    cookie: Option<String>,
    /// `token` is a delegation, sent as `Authorization: Delegation …`.
    delegation: bool,
}

impl Req {
    fn post(path: &str, body: &str, token: &str) -> Self {
        Self {
            method: reqwest::Method::POST,
            path: path.into(),
            body: body.into(),
            token: token.into(),
            ticket: None,
            html: false,
            cookie: None,
            delegation: false,
        }
    }

    fn agent(path: &str, body: &str, token: &str) -> Self {
        Self {
            delegation: true,
            ..Self::post(path, body, token)
        }
    }

    fn ticket(&self, ticket: &str) -> Self {
        Self {
            ticket: Some(ticket.into()),
            ..self.clone()
        }
    }
}

impl Stack {
    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn sandbox(&self) -> &SandboxHandle {
        self.sandbox.as_ref().unwrap()
    }

    /// Sends `r`; a `503` before any decision (the status list not yet fetched for a fresh
    /// token) is retried for a few seconds.
    async fn send(&self, r: &Req) -> (u16, Value, reqwest::header::HeaderMap) {
        let started = Instant::now();
        loop {
            let mut b = self
                .http
                .request(r.method.clone(), format!("{}{}", self.proxy, r.path))
                .header(
                    "authorization",
                    if r.delegation {
                        format!("Delegation {}", r.token)
                    } else {
                        format!("Bearer {}", r.token)
                    },
                )
                .header("x-account", "acme-payroll")
                .header(
                    "content-type",
                    if r.html {
                        "application/x-www-form-urlencoded"
                    } else {
                        "application/json"
                    },
                )
                .body(r.body.clone());
            if r.html {
                b = b.header("accept", "text/html");
            }
            if let Some(t) = &r.ticket {
                b = b.header("proof-approval", t);
            }
            if let Some(c) = &r.cookie {
                b = b.header("cookie", c);
            }
            let resp = b.send().await.unwrap();
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let text = resp.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            let retry = status == 503 && body["reason"] == "status_unavailable";
            if !retry || started.elapsed() > Duration::from_secs(5) {
                return (status, body, headers);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks: the first request, answered 202 with a ticket. Returns (ticket, confirmation id).
    async fn ask(&self, r: &Req) -> (String, String) {
        let (status, body, headers) = self.send(r).await;
        assert_eq!(status, 202, "{body}\n{}", self.logs());
        assert_eq!(body["reason"], "approval_required", "{body}");
        let cid = body["confirmation_id"].as_str().unwrap().to_owned();
        assert_eq!(body["status_url"], format!("/.proofgate/approvals/{cid}"));
        assert_eq!(
            headers["location"],
            format!("/.proofgate/approvals/{cid}").as_str()
        );
        assert!(headers.contains_key("retry-after"));
        let ticket = body["ticket"].as_str().unwrap().to_owned();
        assert!(ticket.starts_with("pga1."), "{ticket}");
        (ticket, cid)
    }

    async fn confirmation(&self, cid: &str) -> Value {
        self.http
            .get(format!("{}/api/v1/confirmations/{cid}", self.base))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The approver's decision, through the sandbox's test endpoint.
    async fn decide(&self, cid: &str, approve: bool) {
        let what = if approve { "test-approve" } else { "test-deny" };
        let r = self
            .http
            .post(format!("{}/api/v1/confirmations/{cid}/{what}", self.base))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    /// The status endpoint, as an API client reads it (with `ticket` when given).
    async fn status(
        &self,
        cid: &str,
        ticket: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut b = self
            .http
            .get(format!("{}/.proofgate/approvals/{cid}", self.proxy));
        if let Some(t) = ticket {
            b = b.header("proof-approval", t);
        }
        let r = b.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.json().await.unwrap_or(Value::Null), headers)
    }

    /// Polls the status endpoint until it says `want` (at most `limit`).
    async fn wait_status(&self, cid: &str, want: &str, limit: Duration) {
        let started = Instant::now();
        loop {
            let (_, body, _) = self.status(cid, None).await;
            if body["approval"] == want {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "still {body} after {limit:?}, wanted {want}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn metric(&self, outcome: &str) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("proofgate_approvals_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    }

    fn forwarded(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

async fn alice(s: &Stack) -> String {
    mint(&s.base, "email", "email", "alice@corp.example")
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_by_fetch_forwarded_once_with_its_body_and_every_misfit_refused() {
    let s = start(Setup {
        hitl_timeout: 300,
        poll_interval: "1s",
        webhook: false,
    })
    .await;
    let token = alice(&s).await;
    let body = r#"{"amount":100,"payee":{"iban":"LT12 3456"}}"#;
    let req = Req::post("/transfers/../transfers/7?batch=1", body, &token);
    let (ticket, cid) = s.ask(&req).await;

    // The approver reads what is asked: method, normalized target, who, the named header and
    // body fields, the body's size and digest.
    let c = s.confirmation(&cid).await;
    let message = c["message"].as_str().unwrap();
    let lines: Vec<&str> = message.lines().collect();
    assert!(
        lines[0].starts_with("POST /transfers/7?batch=1 by email proof "),
        "{message}"
    );
    assert_eq!(
        lines[1..4],
        [
            "x-account: acme-payroll",
            "amount: 100",
            "payee.iban: LT12 3456"
        ],
        "{message}"
    );
    assert!(lines[4].starts_with(&format!("body: {} bytes, sha256 ", body.len())));
    assert_eq!(c["status"], "pending");
    assert!(!message.contains(&token));

    // Pending: the status endpoint says so (no ticket needed on this replica), and the ticket
    // does not pass yet.
    let (status, b, headers) = s.status(&cid, None).await;
    assert_eq!(
        (status, &b["approval"], &b["reason"]),
        (200, &json!("pending"), &json!("approval_pending"))
    );
    assert!(headers.contains_key("retry-after"));
    let (status, b, _) = s.send(&req.ticket(&ticket)).await;
    assert_eq!(
        (status, &b["reason"]),
        (202, &json!("approval_pending")),
        "{b}"
    );
    assert!(b.get("ticket").is_none(), "{b}");

    s.decide(&cid, true).await;
    s.wait_status(&cid, "approved", Duration::from_secs(5))
        .await;

    // The ticket fits one request only.
    let bob = mint(&s.base, "email", "email", "bob@corp.example").await.0;
    let mut forged = ticket.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let misfits = [
        (
            Req::post("/transfers/8?batch=1", body, &token),
            "approval_ticket_other_request",
        ),
        (
            Req::post("/transfers/7?batch=2", body, &token),
            "approval_ticket_other_request",
        ),
        (
            Req {
                method: reqwest::Method::PUT,
                ..req.clone()
            },
            "approval_ticket_other_request",
        ),
        (
            Req::post("/transfers/7?batch=1", &body.replace("100", "900"), &token),
            "approval_ticket_other_body",
        ),
        (
            Req::post("/transfers/7?batch=1", body, &bob),
            "approval_ticket_other_subject",
        ),
    ];
    for (r, reason) in &misfits {
        let (status, b, _) = s.send(&r.ticket(&ticket)).await;
        assert_eq!(
            (status, b["reason"].as_str()),
            (403, Some(*reason)),
            "{} {}",
            r.path,
            b
        );
    }
    let (status, b, _) = s.send(&req.ticket(&forged)).await;
    assert_eq!(
        (status, &b["reason"]),
        (403, &json!("approval_ticket_invalid"))
    );
    let (status, b, _) = s.send(&req.ticket("not-a-ticket")).await;
    assert_eq!(
        (status, &b["reason"]),
        (403, &json!("approval_ticket_invalid"))
    );
    assert!(s.forwarded().is_empty(), "{:?}", s.forwarded());

    // The approved request: forwarded once, the body byte for byte, the ticket removed.
    let (status, b, _) = s.send(&req.ticket(&ticket)).await;
    assert_eq!(status, 200, "{b}\n{}", s.logs());
    assert_eq!(b["method"], "POST");
    assert_eq!(b["path"], "/transfers/7");
    assert_eq!(b["body"], body);
    assert!(b["headers"].get("proof-approval").is_none(), "{b}");
    assert!(b["headers"]["x-proof-subject"].is_string(), "{b}");

    // And never again.
    let (status, b, _) = s.send(&req.ticket(&ticket)).await;
    assert_eq!(
        (status, &b["reason"]),
        (403, &json!("approval_ticket_used"))
    );
    assert_eq!(s.forwarded().len(), 1);

    for (outcome, n) in [
        ("created", 1),
        ("approved", 1),
        ("used", 1),
        ("replay_refused", 1),
        ("ticket_refused", 7),
        ("denied", 0),
    ] {
        assert_eq!(s.metric(outcome).await, n, "{outcome}");
    }
    let logs = s.logs();
    assert!(logs.contains("outcome=\"used\""), "{logs}");
    assert!(!logs.contains(&ticket[5..40]), "the ticket reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_timed_out_and_unreachable_are_refused_each_with_its_reason() {
    let mut s = start(Setup {
        hitl_timeout: 2,
        poll_interval: "1s",
        webhook: false,
    })
    .await;
    let token = alice(&s).await;
    let deny = Req::post("/transfers/1", r#"{"amount":1}"#, &token);
    let late = Req::post("/transfers/2", r#"{"amount":2}"#, &token);
    let gone = Req::post("/transfers/3", r#"{"amount":3}"#, &token);
    let (deny_ticket, deny_cid) = s.ask(&deny).await;
    let (late_ticket, late_cid) = s.ask(&late).await;
    s.decide(&deny_cid, false).await;
    s.wait_status(&deny_cid, "denied", Duration::from_secs(5))
        .await;
    let (status, b, _) = s.send(&deny.ticket(&deny_ticket)).await;
    assert_eq!(
        (status, &b["reason"]),
        (403, &json!("approval_denied")),
        "{b}"
    );

    // Nobody answers: the issuer's timeout (2 s) denies it as `system`/`timeout`.
    s.wait_status(&late_cid, "expired", Duration::from_secs(8))
        .await;
    let c = s.confirmation(&late_cid).await;
    assert_eq!(
        (&c["status"], &c["response"]["text"]),
        (&json!("denied"), &json!("timeout"))
    );
    let (status, b, _) = s.send(&late.ticket(&late_ticket)).await;
    assert_eq!(
        (status, &b["reason"]),
        (403, &json!("approval_expired")),
        "{b}"
    );

    // The issuer gone: a ticket whose decision is not known yet cannot be checked (503), and
    // a new request cannot be held.
    let (gone_ticket, _) = s.ask(&gone).await;
    s.sandbox.take().unwrap().shutdown().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, b, headers) = s.send(&gone.ticket(&gone_ticket)).await;
    assert_eq!(
        (status, &b["reason"]),
        (503, &json!("approval_unavailable")),
        "{b}"
    );
    assert!(headers.contains_key("retry-after"));
    let (status, b, _) = s.send(&Req::post("/transfers/4", "{}", &token)).await;
    assert_eq!(
        (status, &b["reason"]),
        (503, &json!("approval_unavailable")),
        "{b}"
    );
    // What was known stays known.
    let (status, b, _) = s.send(&deny.ticket(&deny_ticket)).await;
    assert_eq!(
        (status, &b["reason"]),
        (403, &json!("approval_denied")),
        "{b}"
    );

    assert!(s.forwarded().is_empty());
    assert_eq!(s.metric("denied").await, 1);
    assert_eq!(s.metric("expired").await, 1);
    assert!(s.metric("unavailable").await >= 2);
    assert_eq!(s.metric("used").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_is_learned_from_the_signed_webhook() {
    // A poll interval of a minute: within the test the gateway never asks the issuer again
    // after creating the confirmation, so only the webhook can tell it.
    let s = start(Setup {
        hitl_timeout: 300,
        poll_interval: "60s",
        webhook: true,
    })
    .await;
    let token = alice(&s).await;
    let yes = Req::post("/transfers/10", r#"{"amount":10}"#, &token);
    let no = Req::post("/transfers/11", r#"{"amount":11}"#, &token);
    let (yes_ticket, yes_cid) = s.ask(&yes).await;
    let (no_ticket, no_cid) = s.ask(&no).await;
    let gets = s.sandbox().hits("/api/v1/confirmations/{id}");
    s.decide(&yes_cid, true).await;
    s.decide(&no_cid, false).await;
    s.wait_status(&yes_cid, "approved", Duration::from_secs(5))
        .await;
    s.wait_status(&no_cid, "denied", Duration::from_secs(5))
        .await;
    assert_eq!(
        s.sandbox().hits("/api/v1/confirmations/{id}"),
        gets,
        "the gateway fetched a confirmation"
    );
    let (status, b, _) = s.send(&yes.ticket(&yes_ticket)).await;
    assert_eq!(status, 200, "{b}\n{}", s.logs());
    assert_eq!(b["body"], r#"{"amount":10}"#);
    let (status, b, _) = s.send(&no.ticket(&no_ticket)).await;
    assert_eq!((status, &b["reason"]), (403, &json!("approval_denied")));
    assert_eq!(s.forwarded().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_is_resubmitted_with_the_ticket_cookie_and_large_bodies_are_refused() {
    let s = start(Setup {
        hitl_timeout: 300,
        poll_interval: "1s",
        webhook: false,
    })
    .await;
    let token = alice(&s).await;
    let form = Req {
        html: true,
        ..Req::post("/transfers/form", "amount=5&payee.iban=LT99", &token)
    };

    // The browser waits on a page that reloads itself (no script): the status URL, ticket
    // in its query.
    let (status, page, headers) = s.send(&form).await;
    assert_eq!(status, 202, "{page}");
    let page = page.as_str().unwrap().to_owned();
    assert!(page.contains("Waiting for approval"), "{page}");
    assert!(page.contains("<meta http-equiv=\"refresh\""), "{page}");
    assert!(page.contains("POST /transfers/form"), "{page}");
    let refresh = headers["refresh"].to_str().unwrap().to_owned();
    let url = refresh.split_once("url=").unwrap().1.to_owned();
    assert!(
        url.starts_with("/.proofgate/approvals/") && url.contains("?ticket=pga1."),
        "{url}"
    );
    let cid = url["/.proofgate/approvals/".len()..]
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let c = s.confirmation(&cid).await;
    assert!(c["message"].as_str().unwrap().contains("amount: 5"), "{c}");

    let html_get = |url: String| {
        s.http
            .get(format!("{}{url}", s.proxy))
            .header("accept", "text/html")
            .send()
    };
    let r = html_get(url.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("refresh"));
    assert!(r.text().await.unwrap().contains("Waiting for approval"));

    s.decide(&cid, true).await;
    s.wait_status(&cid, "approved", Duration::from_secs(5))
        .await;
    let r = html_get(url.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.starts_with("proofgate_approval=pga1."),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("Path=/transfers/form"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(r.text().await.unwrap().contains("send it again"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    // The form sent again, unchanged, carries the cookie: forwarded once, without it.
    let again = Req {
        cookie: Some(format!("theme=dark; {cookie}")),
        ..form.clone()
    };
    let (status, b, _) = s.send(&again).await;
    assert_eq!(status, 200, "{b}\n{}", s.logs());
    assert_eq!(b["body"], "amount=5&payee.iban=LT99");
    assert_eq!(b["headers"]["cookie"], "theme=dark");
    // Sent once more with the used cookie: a new approval is asked for, the cookie cleared.
    let (status, _, headers) = s.send(&again).await;
    assert_eq!(status, 202);
    let cleared: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cleared.iter().any(|c| c.starts_with("proofgate_approval=;")
            && c.contains("Path=/transfers/form")
            && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    assert_eq!(s.forwarded().len(), 1);

    // A body over `max_body_bytes` (1024 here) is refused before anyone is asked.
    let big = format!(r#"{{"amount":1,"pad":"{}"}}"#, "x".repeat(2000));
    let created = s.metric("created").await;
    let (status, b, _) = s.send(&Req::post("/transfers/big", &big, &token)).await;
    assert_eq!(
        (status, &b["reason"]),
        (413, &json!("approval_body_too_large")),
        "{b}"
    );
    assert_eq!(s.metric("created").await, created);
}

/// `POST` with `Expect: 100-continue` on a raw connection: the gateway answers `100 Continue`
/// at once (it needs the body), then the final answer; returns that answer's head and body.
fn expect_continue(
    proxy: &str,
    path: &str,
    token: &str,
    ticket: Option<&str>,
    body: &str,
) -> (String, String) {
    use std::io::{Read, Write};
    let addr = proxy.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ticket = ticket.map_or(String::new(), |t| format!("Proof-Approval: {t}\r\n"));
    write!(
        c,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n{ticket}\
         X-Account: acme-payroll\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    // Nothing of the body is sent before the gateway says so.
    let mut first = [0u8; 25];
    c.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.write_all(body.as_bytes()).unwrap();
    let mut rest = String::new();
    c.read_to_string(&mut rest).unwrap();
    let (head, body) = rest.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_expects_100_continue_is_asked_for_its_body() {
    let s = start(Setup {
        hitl_timeout: 300,
        poll_interval: "1s",
        webhook: false,
    })
    .await;
    let token = alice(&s).await;
    // A first request, so that the status list is fetched before the raw ones.
    let (_, first_cid) = s.ask(&Req::post("/transfers/warm", "{}", &token)).await;
    assert!(!first_cid.is_empty());
    let body = r#"{"amount":42}"#;
    let proxy = s.proxy.clone();
    let (head, answer) = {
        let (proxy, token) = (proxy.clone(), token.clone());
        tokio::task::spawn_blocking(move || {
            expect_continue(&proxy, "/transfers/e", &token, None, body)
        })
        .await
        .unwrap()
    };
    assert!(head.starts_with("HTTP/1.1 202"), "{head}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let (ticket, cid) = (
        answer["ticket"].as_str().unwrap().to_owned(),
        answer["confirmation_id"].as_str().unwrap().to_owned(),
    );
    s.decide(&cid, true).await;
    s.wait_status(&cid, "approved", Duration::from_secs(5))
        .await;
    let (head, _) = tokio::task::spawn_blocking(move || {
        expect_continue(&proxy, "/transfers/e", &token, Some(&ticket), body)
    })
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{}", s.logs());
    let forwarded = s.forwarded();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0]["body"], body);
    assert!(
        forwarded[0]["headers"].get("expect").is_none(),
        "{forwarded:?}"
    );
}

/// Two agents holding delegations from the same domain: a ticket asked for by one is refused to
/// the other (an agent is a requester like a person), and the approver's message names the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_ticket_is_refused_to_another_agent() {
    use proofgate_core::client::{CreateDelegation, CreateVerification, Delegate, ProofApiClient};

    let s = start(Setup {
        hitl_timeout: 60,
        poll_interval: "1s",
        webhook: false,
    })
    .await;
    let api = ProofApiClient::new(&s.base, API_KEY).unwrap();
    let created = api
        .create_verification(&CreateVerification::new("domain", "dns", "corp.example"))
        .await
        .unwrap();
    let control = api
        .test_verify(&created.id)
        .await
        .unwrap()
        .public_proof_id
        .expect("ph_ctl_ handle");
    let mut agents = Vec::new();
    for url in ["https://a.example/bot", "https://b.example/bot"] {
        let d = api
            .create_delegation(&CreateDelegation {
                control_proof: control.clone(),
                delegate: Delegate::url(url),
                scope: vec!["payments-write".to_owned()],
                expires_in: None,
            })
            .await
            .unwrap();
        agents.push(d.token.expect("a token"));
    }
    let body = r#"{"amount":"10.00"}"#;
    let a = Req::agent("/agents/pay", body, &agents[0]);
    let b = Req::agent("/agents/pay", body, &agents[1]);
    let (ticket, cid) = s.ask(&a).await;
    let message = s.confirmation(&cid).await["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("agent https://a.example/bot for corp.example"),
        "{message}"
    );
    s.decide(&cid, true).await;
    s.wait_status(&cid, "approved", Duration::from_secs(10))
        .await;

    let (status, answer, _) = s.send(&b.ticket(&ticket)).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(
        answer["reason"], "approval_ticket_other_subject",
        "{answer}"
    );
    assert!(s.forwarded().is_empty());

    let (status, answer, _) = s.send(&a.ticket(&ticket)).await;
    assert_eq!(status, 200, "{answer}\n{}", s.logs());
    let forwarded = s.forwarded();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0]["body"], body);
    assert_eq!(
        forwarded[0]["headers"]["x-proof-delegation-delegate"],
        "https://a.example/bot"
    );
}

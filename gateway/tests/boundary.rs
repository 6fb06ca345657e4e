//! The request boundary, black-box through the real Pingora listener with raw TCP (a client
//! library would normalize these requests before they left): which request-targets are
//! accepted, what exactly the upstream receives, identity headers in every spelling, request
//! hygiene, single-use and browser-bound step-up state, the step-up origin, and webhook replays.
//!
//! The upstream here is a raw recorder: it keeps each request head byte for byte as the gateway
//! sent it, so a test can assert on the request line and headers an RFC 3986 parser upstream
//! would read.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{problem, stack, Options, Stack};
use proofgate_core::webhook;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the recorder received it: the head (request line and headers) and the body.
type Received = (String, Vec<u8>);

/// What the recorder received, in order.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Received>>>);

impl Recorder {
    fn take(&self) -> Vec<Received> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// Finds the end of a request head (`\r\n\r\n`).
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// An upstream that records each request head and body as received and answers `200 ok`.
async fn recorder() -> (std::net::SocketAddr, Recorder) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rec = Recorder::default();
    let seen = rec.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let read = async {
                    loop {
                        if let Some(end) = head_end(&buf) {
                            let head = String::from_utf8_lossy(&buf[..end]).to_string();
                            let lower = head.to_ascii_lowercase();
                            let length = lower
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok());
                            let chunked = lower.contains("transfer-encoding: chunked");
                            let done = match length {
                                Some(n) => buf.len() >= end + n,
                                None if chunked => buf.ends_with(b"0\r\n\r\n"),
                                None => true,
                            };
                            if done {
                                return Some((head, buf[end..].to_vec()));
                            }
                        }
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return None,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                };
                let Ok(Some(request)) = tokio::time::timeout(Duration::from_secs(5), read).await
                else {
                    return;
                };
                seen.0.lock().unwrap().push(request);
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (addr, rec)
}

/// The common stack with a catch-all `optional` route (as in the cookbook) to the recorder,
/// after the test configuration's own routes (`/public/**` public, `/admin/**` staff, …).
async fn boundary_stack() -> (Stack, Recorder) {
    let (addr, rec) = recorder().await;
    let extra = format!(
        r#"
[[upstreams]]
name = "recorder"
addresses = ["{addr}"]
connect_timeout = "1s"
read_timeout = "2s"

[[policies]]
name = "optional"
rule = "optional"

[[routes]]
name = "root"
path = "/**"
policy = "optional"
upstream = "recorder"
"#
    );
    let options = Options {
        extra: Box::leak(extra.into_boxed_str()),
        ..Options::default()
    };
    let s = stack(options).await;
    (s, rec)
}

/// Sends `request` as is on a fresh connection and reads the whole answer (the requests ask
/// for `Connection: close`, or the gateway closes after an error).
async fn raw(s: &Stack, request: &[u8]) -> (u16, String) {
    let addr = s.proxy.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A `GET` of `target` with a `Host` and `Connection: close`, and `extra` header lines.
fn get(target: &str, extra: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n")
        .into_bytes()
}

fn reason(answer: &str) -> String {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The request line the upstream received for the one request it got.
fn only_request_line(rec: &Recorder) -> String {
    let got = rec.take();
    assert_eq!(
        got.len(),
        1,
        "{:?}",
        got.iter().map(|g| &g.0).collect::<Vec<_>>()
    );
    got[0].0.lines().next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_origin_and_http_absolute_targets_and_the_upstream_gets_the_decided_one() {
    let (s, rec) = boundary_stack().await;
    // Scheme-only and other non-HTTP forms were routed as `/` (the optional catch-all) and
    // forwarded raw, which RFC 3986 parsers serve as `/admin`: now refused, nothing forwarded.
    for target in [
        "foo:/admin",
        "x-y:/admin/users",
        "urn:/public/../admin",
        "mailto:/admin",
        "ftp://127.0.0.1/admin",
        "admin",
        "*",
    ] {
        let (status, answer) = raw(&s, &get(target, "")).await;
        assert_eq!(status, 400, "{target}: {answer}");
        assert_eq!(reason(&answer), "invalid_path", "{target}");
    }
    // User information in the authority: Pingora's parser refuses it before we see it.
    let (status, answer) = raw(&s, &get("http://user@127.0.0.1/admin", "")).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        rec.take().is_empty(),
        "a refused target reached the upstream"
    );

    // Absolute-form: decided on its own path and authority, forwarded in origin-form with that
    // authority as Host (RFC 9112 §3.2.2).
    let (status, answer) = raw(&s, &get("http://127.0.0.1/public/../admin", "")).await;
    // (`get` sends `Host: 127.0.0.1`, the same authority.)
    assert_eq!((status, reason(&answer).as_str()), (401, "missing"));
    let request = "GET HTTP://app.example/spa/./a//b/../c?q=%2F&x=1 HTTP/1.1\r\n\
                   Host: app.example\r\nConnection: close\r\n\r\n";
    let (status, answer) = raw(&s, request.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let got = rec.take();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].0.lines().next().unwrap(),
        "GET /spa/a/c?q=%2F&x=1 HTTP/1.1"
    );
    let hosts: Vec<&str> = got[0]
        .0
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("host:"))
        .collect();
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    assert!(hosts[0].ends_with("app.example"), "{hosts:?}");
    // A `Host` that differs from the target's authority: Pingora refuses it (RFC 9112 §3.2.2).
    let (status, _) = raw(&s, &get("http://app.example/spa/x", "")).await;
    assert_eq!(status, 400);
    assert!(rec.take().is_empty());

    // Origin-form: the normalized path, the query as received; an exact one untouched.
    for (target, forwarded) in [
        ("/spa/a/../b?x=%2F..", "/spa/b?x=%2F.."),
        ("/spa/%7Euser/./x", "/spa/~user/x"),
        ("//spa///x", "/spa/x"),
        ("/spa/x?y=1", "/spa/x?y=1"),
    ] {
        let (status, _) = raw(&s, &get(target, "")).await;
        assert_eq!(status, 200, "{target}");
        assert_eq!(
            only_request_line(&rec),
            format!("GET {forwarded} HTTP/1.1"),
            "{target}"
        );
    }

    // `OPTIONS *` names no resource: the default policy (deny-all here) decides it.
    let (status, answer) = raw(
        &s,
        b"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((status, reason(&answer).as_str()), (403, "route_denied"));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_in_every_spelling_are_stripped() {
    let (s, rec) = boundary_stack().await;
    let (token, _) = s.token("email", "email", "alice@corp.example").await;
    // Wait until the token's status list is cached (a fresh gateway answers 503 once).
    assert_eq!(s.get_bearer("/admin/x", &token).await.status(), 200);
    let spoofs = "x_proof_subject: victim1\r\nX_Proof_Subject: victim2\r\nx-proof_subject: victim3\r\n\
                  X-PROOF-SUBJECT: victim4\r\nx_proof_identifier_hash: victim5\r\nX_PROOF-TYPE: victim6\r\n";
    // Public, optional (the catch-all, to the recorder) and protected routes alike.
    for (target, auth) in [
        ("/spa/x", String::new()),
        ("/spa/x", format!("Authorization: Bearer {token}\r\n")),
    ] {
        let (status, _) = raw(&s, &get(target, &format!("{spoofs}{auth}"))).await;
        assert_eq!(status, 200, "{target}");
        let got = rec.take();
        assert_eq!(got.len(), 1);
        let head = &got[0].0;
        assert!(
            !head.contains("victim"),
            "a spoofed identity reached the upstream:\n{head}"
        );
        let subjects = head
            .lines()
            .filter(|l| {
                l.to_ascii_lowercase()
                    .replace('_', "-")
                    .starts_with("x-proof-subject:")
            })
            .count();
        assert_eq!(subjects, usize::from(!auth.is_empty()), "{head}");
    }
    // The echo upstream behind the public and protected routes reports `x-proof-*` it saw.
    for (path, bearer) in [("/public/x", None), ("/admin/x", Some(&token))] {
        let mut rb = s
            .http
            .get(s.url(path))
            .header("x_proof_subject", "victim")
            .header("X_Proof_Channel", "victim");
        if let Some(t) = bearer {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let text = r.text().await.unwrap();
        assert!(!text.contains("victim"), "{path}: {text}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_hygiene() {
    let (s, rec) = boundary_stack().await;
    // Overlong UTF-8 for `.`: refused like an encoded `/`.
    for target in [
        "/public/%c0%ae%c0%ae/admin",
        "/spa/%C0%AE%C0%AE/admin",
        "/spa/%80x",
    ] {
        let (status, answer) = raw(&s, &get(target, "")).await;
        assert_eq!(
            (status, reason(&answer).as_str()),
            (400, "invalid_path"),
            "{target}"
        );
    }
    // Well-formed UTF-8 escapes stay allowed.
    let (status, _) = raw(&s, &get("/spa/caf%C3%A9", "")).await;
    assert_eq!(status, 200);
    assert_eq!(only_request_line(&rec), "GET /spa/caf%C3%A9 HTTP/1.1");

    // Repeated equal Content-Length values reach the upstream as one.
    for lengths in [
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n",
    ] {
        let request = format!(
            "POST /spa/form HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{lengths}\r\nhello"
        );
        let (status, answer) = raw(&s, request.as_bytes()).await;
        assert_eq!(status, 200, "{lengths:?}: {answer}");
        let got = rec.take();
        assert_eq!(got.len(), 1);
        let cl: Vec<&str> = got[0]
            .0
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("content-length"))
            .collect();
        assert_eq!(cl.len(), 1, "{cl:?}");
        assert!(cl[0].ends_with(": 5"), "{cl:?}");
        assert_eq!(got[0].1, b"hello");
    }
    // Unequal ones are refused.
    let request = "POST /spa/form HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
                   Content-Length: 5, 6\r\n\r\nhello!";
    let (status, _) = raw(&s, request.as_bytes()).await;
    assert_eq!(status, 400);

    // HTTP/1.1 needs exactly one Host: none or two would skip host-restricted routes.
    let (status, answer) = raw(&s, b"GET /spa/x HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!((status, reason(&answer).as_str()), (400, "invalid_host"));
    // (Two `Host` lines Pingora's parser refuses itself; the core refuses them as well.)
    let (status, answer) = raw(
        &s,
        b"GET /spa/x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(rec.take().is_empty());

    // A malformed chunked body is the client's error: 400, counted, never a 502.
    let request = "POST /spa/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
                   Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    let (status, answer) = raw(&s, request.as_bytes()).await;
    assert_eq!(
        (status, reason(&answer).as_str()),
        (400, "invalid_request"),
        "{answer}"
    );

    // A token sent in the query is not echoed in the answer's step-up link.
    let (token, _) = s.token("email", "email", "mallory@corp.example").await;
    let (status, answer) = raw(
        &s,
        &get(
            &format!("/admin/x?proof_token={token}&t={token}&keep=1"),
            "Accept: application/json\r\n",
        ),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        !answer.contains(&token[..40]),
        "the token was echoed:\n{answer}"
    );
    assert!(answer.contains("keep%3D1"), "{answer}");

    // Refusals before routing are in the decision metrics; malformed bodies counted.
    let metrics = s.metrics().await;
    for line in [
        r#"proofgate_decisions_total{decision="deny",reason="invalid_path",route="none"} 3"#,
        r#"proofgate_decisions_total{decision="deny",reason="invalid_host",route="none"} 1"#,
        "proofgate_client_errors_total 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    s.shutdown().await;
}

/// A JSON step-up for `staff`, completed at the hosted page; its state.
async fn completed_json_flow(s: &Stack) -> String {
    let start = "/.proofgate/start?policy=staff&return_to=/admin";
    common::json_step_up(&s.http, &s.proxy, start).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_state_is_single_use_browser_bound_and_origin_checked() {
    let (s, _rec) = boundary_stack().await;
    // A start under a Host nobody configured is refused before any verification is created.
    for host in [
        "evil.example",
        "127.0.0.1.evil.example",
        "localhost.evil.example:8080",
    ] {
        let r = s
            .http
            .get(s.url("/.proofgate/start?policy=staff"))
            .header("host", host)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let (status, body, _) = problem(r).await;
        assert_eq!(
            (status, body["reason"].as_str()),
            (400, Some("untrusted_host")),
            "{host}"
        );
    }

    // An API client collects its tokens once; the same state again is refused.
    let state = completed_json_flow(&s).await;
    let callback = s.url(&format!("/.proofgate/callback?state={state}"));
    let r = s
        .http
        .get(&callback)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A state from the query proves nothing about the browser: no cookie is set.
    assert!(r.headers().get("set-cookie").is_none());
    let done: serde_json::Value = r.json().await.unwrap();
    assert!(!done["proof_tokens"].as_array().unwrap().is_empty());
    let r = s
        .http
        .get(&callback)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let (status, body, _) = problem(r).await;
    assert_eq!((status, body["reason"].as_str()), (400, Some("state_used")));

    // Login CSRF: an attacker's completed state opened in a victim's browser (no state cookie
    // of its own) sets no proof cookie.
    let attacker = completed_json_flow(&s).await;
    let r = s
        .http
        .get(s.url(&format!("/.proofgate/callback?state={attacker}")))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("This verification can&#39;t be finished here"),
        "{page}"
    );
    assert!(page.contains("state_missing"), "{page}");
    // The attacker's state did not get used up by the victim's visit either.
    let r = s
        .http
        .get(s.url(&format!("/.proofgate/callback?state={attacker}")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.shutdown().await;
}

/// POSTs a signed webhook event for `proof_id` at `timestamp` with `delivery` as its id.
async fn post_event(
    s: &Stack,
    event: &str,
    proof_id: &str,
    timestamp: i64,
    delivery: &str,
    content_type: &str,
) -> u16 {
    let body = format!(r#"{{"event":"{event}","data":{{"proof_id":"{proof_id}"}}}}"#);
    let ts = timestamp.to_string();
    let signature = webhook::sign(s.sandbox.webhook_secret().as_bytes(), &ts, body.as_bytes());
    s.http
        .post(s.url("/.proofgate/webhook"))
        .header("content-type", content_type)
        .header(webhook::TIMESTAMP_HEADER, &ts)
        .header(webhook::SIGNATURE_HEADER, signature)
        .header(webhook::DELIVERY_HEADER, delivery)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_replays_and_out_of_order_events_change_nothing() {
    let (s, _rec) = boundary_stack().await;
    let (token, id) = s.token("phone", "sms", "+447700900123").await;
    let now = proofgate_core::clock::unix_now();
    let status = |s: &Stack| {
        let s = s.http.get(s.url("/payouts/x")).bearer_auth(&token);
        async move { s.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(s.get_bearer("/payouts/x", &token).await.status(), 200);
    let json = "application/json";
    assert_eq!(
        post_event(&s, "proof.suspended", &id, now - 20, "d1", json).await,
        204
    );
    assert_eq!(status(&s).await, 401);
    assert_eq!(
        post_event(&s, "proof.unsuspended", &id, now - 10, "d2", json).await,
        204
    );
    assert_eq!(status(&s).await, 200);
    // The same delivery again (retried or replayed): acknowledged, not applied.
    assert_eq!(
        post_event(&s, "proof.suspended", &id, now - 20, "d1", json).await,
        204
    );
    assert_eq!(status(&s).await, 200);
    // An older event under a new delivery id: ignored, events apply in timestamp order.
    assert_eq!(
        post_event(&s, "proof.suspended", &id, now - 30, "d3", json).await,
        204
    );
    assert_eq!(status(&s).await, 200);
    // Not JSON: refused even when signed.
    assert_eq!(
        post_event(&s, "proof.suspended", &id, now, "d4", "text/plain").await,
        415
    );
    assert_eq!(status(&s).await, 200);
    // A revocation is final: an unsuspension after it changes nothing.
    assert_eq!(
        post_event(&s, "proof.revoked", &id, now - 5, "d5", json).await,
        204
    );
    assert_eq!(
        post_event(&s, "proof.unsuspended", &id, now, "d6", json).await,
        204
    );
    assert_eq!(status(&s).await, 401);
    s.shutdown().await;
}

//! Forward auth (`[forward_auth]`): proofgate as the decision API of another proxy.
//!
//! With a **real nginx** (Debian's `nginx`, `auth_request`) in front of the decision API and the
//! echo upstream, running the exact snippet of `docs/integrations.md`: allowed, refused, the
//! browser's step-up round trip through nginx, a client's own description headers through
//! nginx, and a check request from an address that is not a trusted proxy. Without nginx on the
//! machine these tests print a loud "skipped" line, or fail when `CI` is set.
//!
//! And the other ecosystems' conventions (Traefik and Caddy's `X-Forwarded-*`, Envoy's
//! prefixed path, ingress-nginx's `X-Original-URL` and `auth-signin`), sent to the real listener
//! as those proxies send them.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, problem, stack, Options, Process, Stack};
use proofgate_core::testing::browser::{self, html};

/// The gateway's configuration for these tests: forward auth on, loopback trusted, and a route
/// that only `GET` may use (to see the described method at work).
const FORWARD_AUTH: &str = r#"
[[routes]]
name = "reads"
path = "/reads/**"
methods = ["GET"]
policy = "public"

[forward_auth]
enabled = true
trusted_proxies = ["127.0.0.1/32"]
"#;

/// A loopback address the tests' "direct" client connects from: not in `trusted_proxies`.
const UNTRUSTED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

async fn forward_auth_stack() -> Stack {
    stack(Options {
        extra: FORWARD_AUTH,
        ..Options::default()
    })
    .await
}

/// The nginx snippet of `docs/integrations.md` (the block that follows the sentence naming
/// this test), its three addresses replaced by the test's.
fn nginx_snippet(listen: u16, proofgate: &str, upstream: SocketAddr) -> String {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/integrations.md"),
    )
    .unwrap();
    let after = doc
        .split_once("`gateway/tests/forward_auth.rs` runs")
        .expect("docs/integrations.md names this test before its nginx snippet")
        .1;
    let block = after
        .split_once("```nginx\n")
        .expect("an nginx block")
        .1
        .split_once("```")
        .expect("a closed nginx block")
        .0;
    let mut text = block.to_string();
    for (from, to) in [
        ("server 127.0.0.1:8080;", format!("server {proofgate};")),
        ("server 127.0.0.1:3000;", format!("server {upstream};")),
        ("listen 80;", format!("listen 127.0.0.1:{listen};")),
    ] {
        assert_eq!(text.matches(from).count(), 1, "{from:?} in the snippet");
        text = text.replace(from, &to);
    }
    text
}

/// The nginx binary: `NGINX`, else `nginx` on the `PATH` or in `/usr/sbin`.
fn nginx_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NGINX").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

/// A real nginx in the foreground (`daemon off`, one process: `master_process off`, so that
/// killing it leaves no worker behind and, run as root, it never switches to another user),
/// everything it writes in its own temporary directory. Killed on drop, also on a panic.
struct Nginx {
    base: String,
    dir: tempfile::TempDir,
    // Dropped before `dir`.
    _process: Process,
}

impl Nginx {
    /// Starts nginx with `snippet` inside `http { }`; `None` (after a loud line) when nginx is
    /// not installed and `CI` is not set.
    async fn start(snippet: &str, port: u16) -> Option<Self> {
        let Some(bin) = nginx_binary() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "nginx is not installed (apt-get install nginx), and CI is set"
            );
            eprintln!("SKIPPED: nginx is not installed (apt-get install nginx)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\nevents {{ worker_connections 256; }}\n\
             http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/body;\n\
             \x20   proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n\
             \x20   uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n{snippet}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let out = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut process = Process(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            let logs = || {
                let read =
                    |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
                format!("{}{}", read("stderr.log"), read("error.log"))
            };
            if let Some(status) = process.try_wait().unwrap() {
                panic!("nginx exited ({status}):\n{}", logs());
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx never listened:\n{}",
                logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(Self {
            base: format!("http://127.0.0.1:{port}"),
            dir,
            _process: process,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// nginx's error log, for failure messages.
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

/// proofgate with forward auth, and nginx in front of it and the echo upstream.
async fn nginx_stack() -> Option<(Stack, Nginx)> {
    let s = forward_auth_stack().await;
    let port = free_port();
    let proofgate = s.proxy.trim_start_matches("http://").to_string();
    let snippet = nginx_snippet(port, &proofgate, s.upstream);
    let nginx = Nginx::start(&snippet, port).await?;
    Some((s, nginx))
}

/// A proxy-mode request with `token` until the gateway has what deciding on it needs (a fresh
/// gateway answers 503 until the token's status list is cached).
async fn warm(s: &Stack, token: &str) {
    let status = s.get_bearer("/admin/warm", token).await.status();
    assert_ne!(status, 503);
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_allows_and_refuses() {
    let Some((s, nginx)) = nginx_stack().await else {
        return;
    };
    let (email, proof_id) = s.token("email", "email", "alice@corp.example").await;
    warm(&s, &email).await;
    let http = &s.http;

    // Allowed: the identity headers reach the upstream through `auth_request_set`; a client's
    // own identity header does not.
    let r = http
        .get(nginx.url("/admin/reports?page=2"))
        .bearer_auth(&email)
        .header("x-proof-subject", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", nginx.error_log());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["path"], "/admin/reports");
    assert_eq!(body["identity"]["x-proof-subject"], proof_id.as_str());
    assert_eq!(body["identity"]["x-proof-type"], "email");
    assert!(body["identity"]["x-proof-identifier-hash"].is_string());
    // A public route: allowed without a proof, and the client's spoofed identity removed.
    let r = http
        .get(nginx.url("/public/x"))
        .header("x-proof-subject", "mallory")
        .header("x-proof-type", "email")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["identity"], serde_json::json!({}), "{body}");

    // Refused. An API client without a proof: 401 with proofgate's WWW-Authenticate, which
    // names the step-up.
    let r = http
        .get(nginx.url("/admin/x"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("error=\"missing\"")
            && challenge
                .contains("step_up=\"/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fx\""),
        "{challenge}"
    );
    assert!(r.headers().get("location").is_none());
    // A browser's navigation: sent to the step-up, by a relative link.
    let r = html(http.get(nginx.url("/admin/x?y=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fx%3Fy%3D1"
    );
    // A route that denies on failure: 401 without a step-up link, even for a browser.
    let r = html(http.get(nginx.url("/payouts/x")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(!challenge.contains("step_up"), "{challenge}");
    // The default route denies: 403. A wrong identity on a step-up route: 401 (its step-up).
    let r = http
        .get(nginx.url("/other"))
        .bearer_auth(&email)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (bob, _) = s.token("email", "email", "bob@elsewhere.example").await;
    warm(&s, &bob).await;
    let r = http
        .get(nginx.url("/admin/x"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("policy_unmet"));
    // Decided on the normalized path, as in proxy mode.
    let r = http
        .get(nginx.url("/public/%2e%2e/admin/x"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The method is the original's.
    let r = http.get(nginx.url("/reads/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.post(nginx.url("/reads/x")).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // A client's own description headers through nginx change nothing: nginx overwrites
    // X-Original-URI; an X-Forwarded-Uri beside it contradicts nginx's, which is refused (nginx
    // answers 500 for proofgate's 400), never decided as the public route.
    let r = http
        .get(nginx.url("/admin/x"))
        .header("x-original-uri", "/public/x")
        .header("x-original-method", "OPTIONS")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for (name, value) in [
        ("x-forwarded-uri", "/public/x"),
        ("x-forwarded-method", "OPTIONS"),
        ("x-original-url", "http://other.example/public/x"),
    ] {
        let r = http
            .get(nginx.url("/admin/x"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 500, "{name}");
    }
    // The decision endpoint is nginx's internal location: not reachable from outside.
    let r = http
        .get(nginx.url("/.proofgate/auth"))
        .header("x-original-uri", "/public/x")
        .header("x-original-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A client that reaches proofgate directly, from an address that is not a trusted proxy,
    // cannot describe a request: 403 untrusted_proxy, counted. The same check from the
    // trusted address is decided.
    let direct = reqwest::Client::builder()
        .local_address(UNTRUSTED)
        .build()
        .unwrap();
    let spoof = |client: &reqwest::Client| {
        client
            .get(s.url("/.proofgate/auth"))
            .header("x-original-uri", "/public/x")
            .header("x-original-method", "GET")
            .header("x-forwarded-host", "app.example")
    };
    let (status, body, headers) = problem(spoof(&direct).send().await.unwrap()).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (403, Some("untrusted_proxy"))
    );
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(headers.get("x-proof-subject").is_none());
    let r = spoof(&direct).bearer_auth(&email).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(spoof(http).send().await.unwrap().status(), 200);

    let m = s.metrics().await;
    let count = |series: &str| metric(&m, series);
    assert_eq!(
        count(
            r#"proofgate_decisions_total{decision="deny",reason="untrusted_proxy",route="none"}"#
        ),
        2.0,
        "{m}"
    );
    assert!(count(r#"proofgate_decisions_total{decision="allow",reason="",route="admin"}"#) >= 1.0);
    assert!(
        count(r#"proofgate_decisions_total{decision="step_up",reason="missing",route="admin"}"#)
            >= 3.0
    );
    assert!(
        count(
            r#"proofgate_decisions_total{decision="deny",reason="invalid_request",route="none"}"#
        ) >= 3.0
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_round_trip_through_nginx() {
    let Some((s, nginx)) = nginx_stack().await else {
        return;
    };
    let path = "/admin/reports?page=2";
    // The protected page sends the browser to the start link; start, the sandbox's hosted
    // page, the callback (on nginx's address) and back to the page — all through nginx.
    let walk = browser::step_up(&s.http, &nginx.base, path, s.sandbox.base_url()).await;
    assert!(
        walk.callback
            .starts_with(&nginx.url("/.proofgate/callback")),
        "{}",
        walk.callback
    );
    let r = html(s.http.get(nginx.url(path)))
        .header("cookie", &walk.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", nginx.error_log());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["path"], "/admin/reports");
    assert!(body["identity"]["x-proof-type"]
        .as_str()
        .unwrap()
        .contains("email"));
    // The start was counted as one, from the client nginx saw.
    let m = s.metrics().await;
    assert_eq!(
        metric(&m, r#"proofgate_step_up_starts_total{outcome="started"}"#),
        1.0
    );
    s.shutdown().await;
}

/// A check request to the real listener, from a trusted address.
fn check(s: &Stack, path: &str, headers: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let mut rb = s.http.get(s.url(path));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_and_caddy_conventions() {
    let s = forward_auth_stack().await;
    let (email, proof_id) = s.token("email", "email", "alice@corp.example").await;
    warm(&s, &email).await;
    let forwarded = |method: &'static str, uri: &'static str| {
        [
            ("x-forwarded-method", method),
            ("x-forwarded-uri", uri),
            ("x-forwarded-host", "app.example"),
            ("x-forwarded-proto", "https"),
        ]
    };
    // Allowed: 200, the identity in the answer's headers, nothing in the body, not stored.
    let r = check(&s, "/.proofgate/auth", &forwarded("GET", "/admin/x"))
        .bearer_auth(&email)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-proof-subject"], proof_id.as_str());
    assert_eq!(r.headers()["x-proof-type"], "email");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers().get("x-proofgate-step-up").is_none());
    assert!(r.bytes().await.unwrap().is_empty());
    // A gRPC call refused: the core renders gRPC refusals as a Trailers-Only 200, which must
    // never reach a proxy as "allowed" — the check answers the HTTP status of the reason.
    for (token, status, grpc) in [(None, 401, "16"), (Some(&email), 200, "")] {
        let mut rb = check(
            &s,
            "/.proofgate/auth",
            &forwarded("POST", "/admin/pkg.Svc/Call"),
        )
        .header("content-type", "application/grpc");
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), status);
        let got = r
            .headers()
            .get("grpc-status")
            .map_or("", |v| v.to_str().unwrap());
        assert_eq!(got, grpc);
    }
    let (phone, _) = s.token("phone", "sms", "+447700900123").await;
    let r = check(
        &s,
        "/.proofgate/auth",
        &forwarded("POST", "/admin/pkg.Svc/Call"),
    )
    .header("content-type", "application/grpc")
    .bearer_auth(&phone)
    .send()
    .await
    .unwrap();
    // policy_unmet on a route that steps up: 401, as its problem+json answer would be.
    assert_eq!(
        r.status(),
        401,
        "a gRPC call short of the policy is refused, not allowed"
    );
    assert_eq!(r.headers()["grpc-status"], "7");
    // The cookie source works too (Caddy and Traefik pass the original's headers).
    let r = check(&s, "/.proofgate/auth", &forwarded("GET", "/admin/x"))
        .header("cookie", format!("proof_token={email}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A browser without a proof: the redirect itself, relayed by these proxies, and the link in
    // X-Proofgate-Step-Up.
    let r = html(check(
        &s,
        "/.proofgate/auth",
        &forwarded("GET", "/admin/x?q=1"),
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 302);
    let start = "/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fx%3Fq%3D1";
    // Absolute on the original's scheme and host: Traefik would resolve a relative link
    // against its request to proofgate.
    assert_eq!(
        r.headers()["location"],
        format!("https://app.example{start}").as_str()
    );
    assert_eq!(r.headers()["x-proofgate-step-up"], start);
    // Without X-Forwarded-Proto (or with one that is not http or https), or with a host that
    // is not a plain name, relative.
    for (i, header) in [
        (3, ("x-forwarded-proto", "javascript")),
        (2, ("x-forwarded-host", "app.example@evil.example")),
    ] {
        let mut headers = forwarded("GET", "/admin/x?q=1").to_vec();
        headers[i] = header;
        let r = html(check(&s, "/.proofgate/auth", &headers))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], start, "{header:?}");
    }
    // An API client: problem+json with the step-up link.
    let (status, body, headers) = problem(
        check(&s, "/.proofgate/auth", &forwarded("GET", "/admin/x"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("missing")));
    assert_eq!(
        body["step_up"]["start"],
        "/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fx"
    );
    assert_eq!(headers["content-type"], "application/problem+json");
    // A browser's form POST: the page (401), not a redirect.
    let r = html(check(
        &s,
        "/.proofgate/auth",
        &forwarded("POST", "/admin/x"),
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.headers().get("x-proofgate-step-up").is_none());
    // The method, host and target are the described ones, normalized as in proxy mode.
    for (method, uri, want) in [
        ("GET", "/reads/x", 200),
        ("POST", "/reads/x", 403),
        ("GET", "/public/../admin/x", 401),
        ("GET", "/public/x", 200),
        ("GET", "/public/..%2fadmin", 400),
        ("GET", "/nowhere", 403),
    ] {
        let r = check(&s, "/.proofgate/auth", &forwarded(method, uri))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{method} {uri}");
    }
    // A description that contradicts itself, or is missing, is refused 400.
    for headers in [
        vec![
            ("x-forwarded-method", "GET"),
            ("x-forwarded-uri", "/admin/x"),
            ("x-original-uri", "/public/x"),
            ("x-forwarded-host", "app.example"),
        ],
        vec![
            ("x-forwarded-uri", "/public/x"),
            ("x-forwarded-host", "app.example"),
        ],
        vec![
            ("x-forwarded-method", "GET"),
            ("x-forwarded-host", "app.example"),
        ],
    ] {
        let (status, body, _) = problem(
            check(&s, "/.proofgate/auth", &headers)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, body["reason"].as_str()),
            (400, Some("invalid_request")),
            "{headers:?}"
        );
        assert!(!body.to_string().contains("/public/x"), "{body}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_ext_authz_convention() {
    let s = forward_auth_stack().await;
    let (email, proof_id) = s.token("email", "email", "alice@corp.example").await;
    warm(&s, &email).await;
    // The original method and path arrive as the check request's own, under the endpoint's
    // path; the host as `Host`.
    let r = s
        .http
        .get(s.url("/.proofgate/auth/admin/x?y=1"))
        .header("host", "app.example")
        .bearer_auth(&email)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-proof-subject"], proof_id.as_str());
    let r = s
        .http
        .post(s.url("/.proofgate/auth/reads/x"))
        .header("host", "app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = html(s.http.get(s.url("/.proofgate/auth/admin/x")))
        .header("host", "app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fx"
    );
    // A header beside the check request's own path that says otherwise: refused.
    let r = s
        .http
        .get(s.url("/.proofgate/auth/admin/x"))
        .header("x-forwarded-uri", "/public/x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Only the endpoint and what is under it: `/.proofgate/authx` is an ordinary request.
    let r = s.http.get(s.url("/.proofgate/authx")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_nginx_conventions() {
    let s = forward_auth_stack().await;
    let (email, proof_id) = s.token("email", "email", "alice@corp.example").await;
    warm(&s, &email).await;
    // auth-url: the original as an absolute X-Original-URL; `Host` is proofgate's service.
    let original = |url: &'static str| {
        [
            ("x-original-url", url),
            ("x-original-method", "GET"),
            ("host", "proofgate.proofgate.svc"),
            ("x-auth-request-redirect", "/ignored"),
        ]
    };
    let r = check(
        &s,
        "/.proofgate/auth",
        &original("https://app.example/admin/x"),
    )
    .bearer_auth(&email)
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-proof-subject"], proof_id.as_str());
    // A browser's navigation: nginx-style, 401 with the start link (ingress-nginx then sends the
    // browser to auth-signin).
    let r = html(check(
        &s,
        "/.proofgate/auth",
        &original("https://app.example/admin/x"),
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("location").is_none());
    assert_eq!(
        r.headers()["x-proofgate-step-up"],
        "/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fx"
    );
    // A client's X-Forwarded-Host that disagrees with the URL's host: refused.
    let r = check(
        &s,
        "/.proofgate/auth",
        &original("https://app.example/admin/x"),
    )
    .header("x-forwarded-host", "public.example")
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 400);

    // auth-signin: the browser arrives with `rd` = the original URL.
    let signin = "/.proofgate/auth?rd=https%3A%2F%2Fapp.example%2Fadmin%2Fx%3Fpage%3D2";
    let r = html(s.http.get(s.url(signin))).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "/.proofgate/start?policy=staff&return_to=%2Fadmin%2Fx%3Fpage%3D2"
    );
    // Once allowed, straight back to the page (on this site, normalized: never `//host`).
    let r = html(s.http.get(s.url(signin)))
        .header("cookie", format!("proof_token={email}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/admin/x?page=2");
    let r = html(
        s.http
            .get(s.url("/.proofgate/auth?rd=https%3A%2F%2Fapp.example%2F%2Fpublic%2Fx")),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/public/x");
    // An rd that is not an absolute URL: refused.
    let r = s
        .http
        .get(s.url("/.proofgate/auth?rd=%2Fadmin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_check_is_503() {
    use proofgate_sandbox::{Failure, FailureRule};
    let s = stack(Options {
        extra: FORWARD_AUTH,
        jwks_max_staleness: Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    let (email, _) = s.token("email", "email", "alice@corp.example").await;
    // Everything the token needs is fetched (its status list included) before the issuer goes.
    warm(&s, &email).await;
    s.sandbox
        .inject(FailureRule::new("*", Failure::Status(503)));
    let start = Instant::now();
    loop {
        let r = check(
            &s,
            "/.proofgate/auth",
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/admin/x"),
                ("x-forwarded-host", "app.example"),
            ],
        )
        .bearer_auth(&email)
        .send()
        .await
        .unwrap();
        if r.status() == 503 {
            assert!(r.headers().contains_key("retry-after"));
            let (_, body, _) = problem(r).await;
            assert_eq!(body["reason"], "jwks_stale");
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(start.elapsed() < Duration::from_secs(15), "never stale");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default() {
    let s = stack(Options::default()).await;
    let r = check(
        &s,
        "/.proofgate/auth",
        &[
            ("x-original-uri", "/public/x"),
            ("x-original-method", "GET"),
        ],
    )
    .send()
    .await
    .unwrap();
    let (status, body, _) = problem(r).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (403, Some("route_denied"))
    );
    s.shutdown().await;
}

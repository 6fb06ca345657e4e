//! HTTP/2 through the real gateway: downstream over TLS with ALPN `h2` (and the `http/1.1`
//! fallback, and `h2 = false`), cleartext `h2c` on a listener that says so (and only there), and
//! upstream HTTP/2 per upstream (`protocol = "h2c"`) to a real HTTP/2 server. Each answer's
//! protocol version is the one actually used, and the decision is the same whatever the
//! version: refused without a proof, allowed with one, identity headers on the way up.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{free_port, stack, Options, Stack};
use reqwest::Version;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

/// An upstream that answers with the HTTP version, `Host` (or authority) and identity it got.
async fn version_upstream() -> SocketAddr {
    let app = axum::Router::new().fallback(|req: axum::extract::Request| async move {
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        axum::Json(serde_json::json!({
            "version": format!("{:?}", req.version()),
            "host": host,
            "path": req.uri().path(),
            "type": req.headers().get("x-proof-type").and_then(|v| v.to_str().ok()),
        }))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // axum's server answers HTTP/1.1 and, with its `http2` feature, cleartext HTTP/2 with prior
    // knowledge on the same port.
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

struct Ports {
    h2c: u16,
    tls: u16,
    tls_h1: u16,
}

/// The stack with three more listeners (h2c, TLS, TLS with `h2 = false`) and the version
/// upstream twice: `versions` (HTTP/1.1, routes `/v/h1/**`) and `versions-h2c`
/// (`protocol = "h2c"`, routes `/v/h2c/**`), both behind the payouts policy.
async fn h2_stack() -> (Stack, Ports) {
    let versions = version_upstream().await;
    let ports = Ports {
        h2c: free_port(),
        tls: free_port(),
        tls_h1: free_port(),
    };
    let (cert, key) = (fixture("cert.pem"), fixture("key.pem"));
    let (cert, key) = (cert.display(), key.display());
    let extra = format!(
        r#"
[[listeners]]
address = "127.0.0.1:{h2c}"
h2c = true

[[listeners]]
address = "127.0.0.1:{tls}"
[listeners.tls]
cert = "{cert}"
key = "{key}"

[[listeners]]
address = "127.0.0.1:{tls_h1}"
[listeners.tls]
cert = "{cert}"
key = "{key}"
h2 = false

[[upstreams]]
name = "versions"
addresses = ["{versions}"]

[[upstreams]]
name = "versions-h2c"
addresses = ["{versions}"]
protocol = "h2c"

[[routes]]
name = "v-h1"
path = "/v/h1/**"
policy = "payouts"
upstream = "versions"

[[routes]]
name = "v-h2c"
path = "/v/h2c/**"
policy = "payouts"
upstream = "versions-h2c"
"#,
        h2c = ports.h2c,
        tls = ports.tls,
        tls_h1 = ports.tls_h1,
    );
    let s = stack(Options {
        extra: Box::leak(extra.into_boxed_str()),
        ..Options::default()
    })
    .await;
    (s, ports)
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
}

/// A client that speaks only HTTP/2, with prior knowledge (cleartext `h2c`).
fn h2c_client() -> reqwest::Client {
    builder().http2_prior_knowledge().build().unwrap()
}

/// An HTTPS client that trusts the test CA and offers `h2` and `http/1.1` by ALPN.
fn https_client() -> reqwest::Client {
    let ca = std::fs::read(fixture("ca.pem")).unwrap();
    builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap()
}

/// Sends `GET url`, with `token` as a bearer if given, retrying while the answer is 503 (the
/// token's status list not yet fetched); returns the status, the version and the body.
async fn get(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> (u16, Version, serde_json::Value) {
    let start = std::time::Instant::now();
    loop {
        let mut req = client.get(url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let (status, version) = (r.status().as_u16(), r.version());
        let body = r.json().await.unwrap_or(serde_json::Value::Null);
        if status != 503 || start.elapsed() > Duration::from_secs(5) {
            return (status, version, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_is_spoken_on_the_listener_that_enables_it_and_decides_the_same() {
    let (s, ports) = h2_stack().await;
    let (token, _) = s.token("phone", "sms", "+447700900123").await;
    let h2 = h2c_client();
    let base = format!("http://127.0.0.1:{}", ports.h2c);

    let (status, version, _) = get(&h2, &format!("{base}/public/ping"), None).await;
    assert_eq!((status, version), (200, Version::HTTP_2));
    // Refused without a proof, over HTTP/2, with the usual problem answer.
    let (status, version, body) = get(&h2, &format!("{base}/payouts/x"), None).await;
    assert_eq!((status, version), (401, Version::HTTP_2));
    assert_eq!(body["reason"], "missing");
    // Allowed with one; the HTTP/1.1 upstream gets the identity headers and a Host.
    let (status, version, body) = get(&h2, &format!("{base}/v/h1/x"), Some(&token)).await;
    assert_eq!((status, version), (200, Version::HTTP_2));
    assert_eq!(body["version"], "HTTP/1.1");
    assert_eq!(body["type"], "phone");
    assert_eq!(body["host"], format!("127.0.0.1:{}", ports.h2c));
    // HTTP/2 end to end: h2c downstream, h2c upstream.
    let (status, version, body) = get(&h2, &format!("{base}/v/h2c/x"), Some(&token)).await;
    assert_eq!((status, version), (200, Version::HTTP_2));
    assert_eq!(body["version"], "HTTP/2.0");
    assert_eq!(body["type"], "phone");

    // The same listener still answers HTTP/1.1 clients.
    let (status, version, _) = get(&s.http, &format!("{base}/public/ping"), None).await;
    assert_eq!((status, version), (200, Version::HTTP_11));
    // A listener without `h2c` does not speak it.
    let plain = h2.get(s.url("/public/ping")).send().await;
    assert!(plain.is_err(), "h2c on a listener without h2c: {plain:?}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listeners_offer_h2_by_alpn_with_an_http1_fallback() {
    let (s, ports) = h2_stack().await;
    let (token, _) = s.token("phone", "sms", "+447700900123").await;
    let https = https_client();
    let base = format!("https://localhost:{}", ports.tls);

    let (status, version, _) = get(&https, &format!("{base}/public/ping"), None).await;
    assert_eq!((status, version), (200, Version::HTTP_2));
    let (status, version, body) = get(&https, &format!("{base}/payouts/x"), None).await;
    assert_eq!((status, version), (401, Version::HTTP_2));
    assert_eq!(body["reason"], "missing");
    let (status, version, body) = get(&https, &format!("{base}/v/h2c/x"), Some(&token)).await;
    assert_eq!((status, version), (200, Version::HTTP_2));
    assert_eq!(
        (body["version"].as_str(), body["type"].as_str()),
        (Some("HTTP/2.0"), Some("phone"))
    );

    // A client that offers only http/1.1 gets it.
    let ca = std::fs::read(fixture("ca.pem")).unwrap();
    let h1 = builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .http1_only()
        .build()
        .unwrap();
    let (status, version, body) = get(&h1, &format!("{base}/v/h1/x"), Some(&token)).await;
    assert_eq!((status, version), (200, Version::HTTP_11));
    assert_eq!(body["type"], "phone");
    // A TLS listener with `h2 = false` answers HTTP/1.1 to a client that offers h2.
    let base = format!("https://localhost:{}", ports.tls_h1);
    let (status, version, _) = get(&https, &format!("{base}/public/ping"), None).await;
    assert_eq!((status, version), (200, Version::HTTP_11));
    let (status, version, _) = get(&https, &format!("{base}/payouts/x"), None).await;
    assert_eq!((status, version), (401, Version::HTTP_11));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_upstream_is_spoken_to_in_http2_from_an_http1_client() {
    let (s, _ports) = h2_stack().await;
    let (token, _) = s.token("phone", "sms", "+447700900123").await;
    let (status, version, body) = get(&s.http, &s.url("/v/h2c/x"), Some(&token)).await;
    assert_eq!((status, version), (200, Version::HTTP_11));
    assert_eq!(body["version"], "HTTP/2.0");
    assert_eq!(body["type"], "phone");
    assert_eq!(body["path"], "/v/h2c/x");
    let (status, _, body) = get(&s.http, &s.url("/v/h1/x"), Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], "HTTP/1.1");
    // Refused requests never reach it, whatever its protocol.
    let (status, _, body) = get(&s.http, &s.url("/v/h2c/x"), None).await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("missing")));
    s.shutdown().await;
}

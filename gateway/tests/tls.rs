//! Listeners: the TLS listener (`[listeners.tls]`, rustls) — HTTPS on a real Pingora listener
//! beside a plain one, a token-protected route, a whole browser step-up whose callback comes back
//! over `https://` — and clear start-up errors for a certificate that cannot be loaded or an
//! address that cannot be listened on.
//!
//! The certificates in `tests/data/tls/` are test fixtures (see the README there).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{free_port, stack, Options};
use proofgate::GatewayHandle;
use proofgate_config::{Config, Secrets};
use proofgate_core::testing::browser;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

/// A client that trusts only the test CA, keeps no cookies (the test carries them) and offers
/// only `http/1.1` by ALPN (HTTP/2 over TLS: tests/http2.rs).
fn https_client() -> reqwest::Client {
    let ca = std::fs::read(fixture("ca.pem")).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `Options` whose extra text adds a TLS listener on `port`.
fn with_tls_listener(port: u16) -> Options {
    let extra = format!(
        r#"
[[listeners]]
address = "127.0.0.1:{port}"
[listeners.tls]
cert = "{cert}"
key = "{key}"
"#,
        cert = fixture("cert.pem").display(),
        key = fixture("key.pem").display(),
    );
    Options {
        extra: Box::leak(extra.into_boxed_str()),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_serves_decisions_and_a_whole_step_up() {
    let port = free_port();
    let s = stack(with_tls_listener(port)).await;
    let https = https_client();
    let base = format!("https://localhost:{port}");

    // Public route over TLS, and the plain listener still answering beside it.
    let r = https
        .get(format!("{base}/public/ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    let r = s.http.get(s.url("/public/ping")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A token-protected route: allowed with identity headers, denied without a token.
    let (token, _) = s.token("phone", "sms", "+447700900123").await;
    let r = https
        .get(format!("{base}/payouts/x"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["identity"]["x-proof-type"], "phone");
    let r = https.get(format!("{base}/payouts/x")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // A browser step-up started over TLS comes back to an https:// callback, and its cookie
    // opens the page.
    let walk = browser::step_up(&https, &base, "/admin/reports", s.sandbox.base_url()).await;
    assert!(walk.callback.starts_with("https://"), "{}", walk.callback);
    let r = browser::html(https.get(format!("{base}/admin/reports")))
        .header("cookie", &walk.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Plain HTTP to the TLS port is not served.
    let plain = s
        .http
        .get(format!("http://127.0.0.1:{port}/public/ping"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |r| r.status() != 200),
        "{plain:?}"
    );
    s.shutdown().await;
}

/// A gateway with one listener, given as its TOML (`[[listeners]]` entry and any sub-table),
/// and nothing else that could fail.
fn one_listener(listener: &str) -> Config {
    let mut config =
        Config::from_toml_str(&common::public_config(listener, "127.0.0.1:9")).unwrap();
    config.server.work_stealing = true;
    config
}

/// Starts `config`, which must fail (without a panic); returns the error and how long it took.
async fn start_error(config: Config) -> (String, Duration) {
    let started = std::time::Instant::now();
    let result =
        tokio::task::spawn_blocking(move || GatewayHandle::start(config, Secrets::default(), None))
            .await
            .expect("no panic");
    match result {
        Ok(g) => {
            let addrs = g.proxy_addrs.clone();
            tokio::task::spawn_blocking(move || g.shutdown())
                .await
                .unwrap();
            panic!("started on {addrs:?}");
        }
        Err(e) => (e.to_string(), started.elapsed()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_cannot_be_loaded_is_a_start_up_error() {
    let port = free_port();
    // No such file; a key where the certificate should be; a certificate (the CA's) that does
    // not belong to the key.
    for cert in ["missing.pem", "key.pem", "ca.pem"] {
        let config = one_listener(&format!(
            "[[listeners]]\naddress = \"127.0.0.1:{port}\"\n[listeners.tls]\ncert = \"{}\"\nkey = \"{}\"",
            fixture(cert).display(),
            fixture("key.pem").display(),
        ));
        let (err, _) = start_error(config).await;
        assert!(err.contains("TLS listener"), "{cert}: {err}");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_cannot_be_bound_is_a_start_up_error() {
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: binding it fails.
    let addr = format!("192.0.2.1:{}", free_port());
    let config = one_listener(&format!("[[listeners]]\naddress = \"{addr}\""));
    let (err, _) = start_error(config).await;
    assert!(err.contains(&addr), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_address_another_process_holds_is_a_start_up_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = one_listener(&format!("[[listeners]]\naddress = \"{addr}\""));
    let (err, took) = start_error(config).await;
    assert!(
        err.contains(&addr.to_string()) && err.contains("in use"),
        "{err}"
    );
    // At once, not after Pingora's 30 s of retries.
    assert!(took < Duration::from_secs(5), "{took:?}");
    drop(taken);
}

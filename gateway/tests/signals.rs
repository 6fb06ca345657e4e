//! The real binary under `SIGTERM`: a request in flight finishes, its answer says
//! `Connection: close`, a kept-alive idle connection is closed cleanly, then the process exits
//! cleanly.

#![cfg(unix)]

use std::time::{Duration, Instant};

mod common;

use common::{free_port, signal, wait_exit, Process};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    // An upstream that takes a second and a half to answer `/slow`, and answers anything else
    // at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "slow and done"
            }),
        )
        .fallback(|| async { "ok" });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let (proxy, admin) = (free_port(), free_port());
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("proofgate.toml");
    let sections = format!(
        "[[listeners]]\naddress = \"127.0.0.1:{proxy}\"\n\n[admin]\naddress = \"127.0.0.1:{admin}\"\n\n\
         [server]\nthreads = 1\ngrace_period = \"3s\"\ngraceful_shutdown_timeout = \"3s\""
    );
    std::fs::write(
        &config,
        common::public_config(&sections, &upstream.to_string()),
    )
    .unwrap();
    let log = tmp.path().join("proofgate.log");
    let mut child = Process::proofgate(&config, &[], &[("RUST_LOG", "warn")], &log);
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let http = reqwest::Client::new();
    let start = Instant::now();
    // Both listeners up: the admin one (bound first, on the side runtime) and the proxy one
    // (bound a moment later by Pingora's thread).
    while http
        .get(format!("http://127.0.0.1:{admin}/healthz"))
        .send()
        .await
        .is_err()
        || tokio::net::TcpStream::connect(("127.0.0.1", proxy))
            .await
            .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "proofgate never started\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A keep-alive connection, answered once and idle when the signal comes.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", proxy)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (head, body) = common::raw_get(&mut idle, "/x").unwrap();
    assert!(
        head.starts_with("http/1.1 200 ") && head.contains("\r\nconnection: keep-alive\r\n"),
        "{head}"
    );
    assert_eq!(body, b"ok");
    let in_flight = tokio::spawn({
        let http = http.clone();
        async move {
            http.get(format!("http://127.0.0.1:{proxy}/slow"))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let readyz = || {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://127.0.0.1:{admin}/readyz"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // (Not ready before either: this configuration's issuer answers nobody; but not draining.)
    assert!(!readyz().await.1.contains("draining"));
    signal(&child, "-TERM");
    // Right after the signal, while the request is in flight, readiness says so: a load
    // balancer stops sending new connections here.
    let signalled = Instant::now();
    loop {
        let (status, body) = readyz().await;
        if body.contains("draining") {
            assert_eq!(status, 503, "{body}");
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(1),
            "/readyz says {status} {body} after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(r.status(), 200);
    // Began before the signal, answered after it: not kept alive, so the client sends nothing
    // more on a connection about to close.
    assert_eq!(
        r.headers().get("connection").and_then(|v| v.to_str().ok()),
        Some("close")
    );
    assert_eq!(r.text().await.unwrap(), "slow and done");
    // The idle connection was closed, with a FIN, not a reset.
    assert_eq!(
        common::read_end(&mut idle).unwrap(),
        0,
        "the idle connection is closed cleanly"
    );
    let status = wait_exit(&mut child, Duration::from_secs(15), &logs()).await;
    assert!(status.success(), "exit status {status:?}\n{}", logs());
}

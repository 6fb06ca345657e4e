//! The real binary under `SIGTERM`: a request in flight finishes, its answer says
//! `Connection: close`, a kept-alive idle connection is closed cleanly, then the process exits
//! cleanly; and a second signal during the drain ends the process at once.

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

/// With the default grace period (5 minutes) a request still in flight keeps the first
/// `SIGTERM`'s drain going; a second `SIGTERM` or `SIGINT` ends the process at once, releasing
/// the admin and proxy ports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_the_drain_at_once() {
    // An upstream whose `/hang` never answers (within the test).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/hang",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(600)).await;
                "too late"
            }),
        )
        .fallback(|| async { "ok" });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    for second in ["-TERM", "-INT"] {
        let (proxy, admin) = (free_port(), free_port());
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("proofgate.toml");
        // No grace_period: the default 5 minutes.
        let sections = format!(
            "[[listeners]]\naddress = \"127.0.0.1:{proxy}\"\n\n[admin]\naddress = \"127.0.0.1:{admin}\"\n\n\
             [server]\nthreads = 1"
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
        // A request in flight that will not finish by itself, and a kept-alive connection.
        let mut kept = std::net::TcpStream::connect(("127.0.0.1", proxy)).unwrap();
        kept.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (head, _) = common::raw_get(&mut kept, "/x").unwrap();
        assert!(head.starts_with("http/1.1 200 "), "{head}");
        let in_flight = tokio::spawn({
            let http = http.clone();
            async move {
                http.get(format!("http://127.0.0.1:{proxy}/hang"))
                    .send()
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        signal(&child, "-TERM");
        let signalled = Instant::now();
        loop {
            let r = http
                .get(format!("http://127.0.0.1:{admin}/readyz"))
                .send()
                .await
                .unwrap();
            let (status, body) = (r.status().as_u16(), r.text().await.unwrap());
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
        // The drain goes on: the request is still in flight, the process still there.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !in_flight.is_finished(),
            "{second}: the request ended\n{}",
            logs()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{second}: the process exited after one SIGTERM\n{}",
            logs()
        );
        signal(&child, second);
        let signalled = Instant::now();
        let status = wait_exit(&mut child, Duration::from_secs(3), &logs()).await;
        assert!(status.success(), "{second}: {status:?}\n{}", logs());
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "{second}: took {:?}",
            signalled.elapsed()
        );
        // Every port is free again: the admin one, the proxy one.
        std::net::TcpListener::bind(("127.0.0.1", admin))
            .unwrap_or_else(|e| panic!("{second}: admin port {admin} still held: {e}"));
        std::net::TcpListener::bind(("127.0.0.1", proxy))
            .unwrap_or_else(|e| panic!("{second}: proxy port {proxy} still held: {e}"));
        // The request in flight was cut off, not answered.
        let r = in_flight.await.unwrap();
        assert!(r.is_err(), "{second}: {r:?}");
        assert!(
            logs().contains("second stop signal"),
            "{second}: {}",
            logs()
        );
    }
}

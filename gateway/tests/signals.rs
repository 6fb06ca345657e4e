//! The real binary under `SIGTERM`: a request in flight finishes, then the process exits cleanly.

#![cfg(unix)]

use std::time::{Duration, Instant};

mod common;

use common::{free_port, run_proofgate, signal, wait_exit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    // An upstream that takes a second to answer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        "slow and done"
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let (proxy, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("proofgate-sigterm-{proxy}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proofgate.toml");
    let sections = format!(
        "[[listeners]]\naddress = \"127.0.0.1:{proxy}\"\n\n[admin]\naddress = \"127.0.0.1:{admin}\"\n\n\
         [server]\nthreads = 1\ngrace_period = \"3s\"\ngraceful_shutdown_timeout = \"3s\""
    );
    std::fs::write(
        &config,
        common::public_config(&sections, &upstream.to_string()),
    )
    .unwrap();
    let log = dir.join("proofgate.log");
    let mut child = run_proofgate(&config, &[], &[("RUST_LOG", "warn")], &log);
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{proxy}/x");
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
            "proofgate never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let in_flight = tokio::spawn({
        let http = http.clone();
        let url = url.clone();
        async move { http.get(url).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&child, "-TERM");
    let r = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "slow and done");
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    let status = wait_exit(&mut child, Duration::from_secs(15), &logs()).await;
    assert!(status.success(), "exit status {status:?}\n{}", logs());
}

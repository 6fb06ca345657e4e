//! Pingora's graceful upgrade with the real binary: a second `proofgate run --upgrade` takes the
//! listening sockets over from a running one on `SIGQUIT`, under load, and no connection is
//! refused, reset or answered with anything but the expected status — including a request that
//! is in flight on the old process when it stops accepting. Also: an upgrade with nobody to
//! hand over to, and a socket planted where the new process should be.
//!
//! `cargo test -p proofgate --test upgrade -- --nocapture` prints the request counts;
//! with `PROOFGATE_TEST_LOGS=1` also both processes' logs.

#![cfg(unix)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, mint, signal, wait_exit, Process};
use proofgate_sandbox::{Sandbox, SandboxConfig};

/// An upstream that answers at once, except `/public/slow`, which takes `SLOW`.
async fn upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/public/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(SLOW).await;
                "slow and done"
            }),
        )
        .fallback(|| async { "ok" });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Long enough to outlive the old process's 5 s of shared accepting after `SIGQUIT`, short
/// enough to finish within its grace period and shutdown timeout (3 s + 3 s after that).
const SLOW: Duration = Duration::from_secs(7);

/// `proofgate run`, with `--upgrade` if `upgrade`, logging at `info` to `log`; killed on drop.
fn spawn(config: &Path, upgrade: bool, log: &Path) -> Process {
    let args: &[&str] = if upgrade { &["--upgrade"] } else { &[] };
    Process::proofgate(config, args, &[("RUST_LOG", "info")], log)
}

fn logs(dir: &Path) -> String {
    ["old.log", "new.log"]
        .iter()
        .map(|f| {
            format!(
                "--- {f}\n{}",
                std::fs::read_to_string(dir.join(f)).unwrap_or_default()
            )
        })
        .collect()
}

/// What one request came to: a status, or a transport error.
type Outcome = Result<u16, String>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrade_hands_sockets_over_without_dropping_a_connection() {
    let mut sc = SandboxConfig::default();
    sc.rate_limit_per_minute = None;
    let sandbox = Sandbox::start_with("127.0.0.1:0", sc).await.unwrap();
    let (token, _) = mint(sandbox.base_url(), "phone", "sms", "+447700900123").await;
    let upstream = upstream().await;
    let (proxy, admin) = (free_port(), free_port());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sock = dir.join("upgrade.sock");
    let config = dir.join("proofgate.toml");
    std::fs::write(
        &config,
        format!(
            r#"
default_policy = "deny-all"
default_upstream = "app"

[[listeners]]
address = "127.0.0.1:{proxy}"

[admin]
address = "127.0.0.1:{admin}"

[server]
threads = 2
grace_period = "3s"
graceful_shutdown_timeout = "3s"
upgrade_sock = "{sock}"

[[upstreams]]
name = "app"
addresses = ["{upstream}"]
read_timeout = "20s"

[issuer]
api_base = "{base}"

[[policies]]
name = "deny-all"
rule = "deny"

[[policies]]
name = "public"
rule = "public"

[[policies]]
name = "payouts"
rule = "any_of"
on_failure = "deny"
requirements = [{{ types = ["phone"] }}]

[[routes]]
name = "public"
path = "/public/**"
policy = "public"

[[routes]]
name = "payouts"
path = "/payouts/**"
policy = "payouts"
"#,
            sock = sock.display(),
            base = sandbox.base_url(),
        ),
    )
    .unwrap();

    let mut old = spawn(&config, false, &dir.join("old.log"));
    // A client that opens a new connection for every request: each one is accepted by whichever
    // process holds the socket at that moment.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let payouts = format!("http://127.0.0.1:{proxy}/payouts/x");
    let start = Instant::now();
    loop {
        let ok = match fresh.get(&payouts).bearer_auth(&token).send().await {
            Ok(r) => r.status() == 200,
            Err(_) => false,
        };
        if ok {
            break;
        }
        assert!(
            old.try_wait().unwrap().is_none(),
            "the old gateway exited\n{}",
            logs(dir)
        );
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the old gateway never allowed the token\n{}",
            logs(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Load: four clients on fresh connections, alternating a public and a token-protected route,
    // and one keep-alive client, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for i in 0..5 {
        let client = if i == 4 {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap()
        } else {
            fresh.clone()
        };
        let (stop, token) = (stop.clone(), token.clone());
        load.push(tokio::spawn(async move {
            let mut outcomes: Vec<(Instant, &'static str, Outcome)> = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let path = if n.is_multiple_of(2) {
                    "/payouts/x"
                } else {
                    "/public/x"
                };
                let r = client
                    .get(format!("http://127.0.0.1:{proxy}{path}"))
                    .bearer_auth(&token)
                    .send()
                    .await;
                let outcome = match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        match r.text().await {
                            Ok(_) => Ok(status),
                            Err(e) => Err(format!("body: {e:?}")),
                        }
                    }
                    Err(e) => Err(format!("{e:?}")),
                };
                outcomes.push((Instant::now(), path, outcome));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            outcomes
        }));
    }
    // A request the old process is still serving when it stops accepting.
    let in_flight = tokio::spawn({
        let fresh = fresh.clone();
        async move {
            let r = fresh
                .get(format!("http://127.0.0.1:{proxy}/public/slow"))
                .send()
                .await?;
            let status = r.status().as_u16();
            Ok::<_, reqwest::Error>((status, r.text().await?))
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A keep-alive connection that the old process has answered once and that is idle when
    // SIGQUIT comes.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", proxy)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (head, body) = common::raw_get(&mut idle, "/public/idle").unwrap();
    assert!(
        head.starts_with("http/1.1 200 ") && head.contains("\r\nconnection: keep-alive\r\n"),
        "{head}"
    );
    assert_eq!(body, b"ok");

    // The upgrade: start the new process, wait until it says it is ready for the sockets (its
    // issuer data loaded), then tell the old one to hand them over — as docs/operations.md says.
    let mut new = spawn(&config, true, &dir.join("new.log"));
    let start = Instant::now();
    while !std::fs::read_to_string(dir.join("new.log"))
        .unwrap_or_default()
        .contains("hand over its listening sockets")
    {
        assert!(
            new.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(20),
            "the new process never got ready for the sockets\n{}",
            logs(dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(&old, "-QUIT");
    let quit_at = Instant::now();

    // Once the old process acts on SIGQUIT (Pingora logs it as it sends the sockets), a request
    // on a connection it kept alive gets its answer with `Connection: close`, and the connection
    // closes cleanly after it: the client opens its next one, which either process may accept,
    // rather than meet the old process closing its idle connections when it stops accepting.
    while !std::fs::read_to_string(dir.join("old.log"))
        .unwrap_or_default()
        .contains("SIGQUIT received")
    {
        assert!(
            quit_at.elapsed() < Duration::from_secs(10),
            "the old process never acted on SIGQUIT\n{}",
            logs(dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (head, body) = common::raw_get(&mut idle, "/public/idle")
        .unwrap_or_else(|e| panic!("a request on a kept-alive connection: {e}\n{}", logs(dir)));
    assert!(
        head.starts_with("http/1.1 200 ") && head.contains("\r\nconnection: close\r\n"),
        "{head}"
    );
    assert_eq!(body, b"ok");
    assert_eq!(
        common::read_end(&mut idle).unwrap(),
        0,
        "the old process closes the connection after that answer"
    );

    let status = wait_exit(&mut old, Duration::from_secs(30), &logs(dir)).await;
    let old_gone = Instant::now();
    assert!(status.success(), "old process: {status:?}\n{}", logs(dir));
    assert!(
        old_gone - quit_at >= Duration::from_secs(5),
        "the old process left before its 5 s of shared accepting"
    );
    // The new process is the only one now; it keeps answering and takes the admin address.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for task in load {
        outcomes.extend(task.await.unwrap());
    }
    let (status, body) = in_flight
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the in-flight request failed: {e:?}\n{}", logs(dir)));
    assert_eq!((status, body.as_str()), (200, "slow and done"));

    let failures: Vec<_> = outcomes
        .iter()
        .filter(|(_, _, o)| o != &Ok(200))
        .map(|(at, path, o)| {
            (
                at.saturating_duration_since(quit_at).as_millis(),
                path,
                o.clone(),
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed (ms after SIGQUIT, path, outcome): {:?}\n{}",
        failures.len(),
        outcomes.len(),
        &failures[..failures.len().min(20)],
        logs(dir)
    );
    let after = outcomes.iter().filter(|(at, _, _)| *at > old_gone).count();
    assert!(
        after >= 10,
        "only {after} requests after the old process exited"
    );
    let during = outcomes
        .iter()
        .filter(|(at, _, _)| *at > quit_at && *at < old_gone)
        .count();
    assert!(during >= 10, "only {during} requests during the handover");
    eprintln!(
        "{} requests, all 200: {during} between SIGQUIT and the old process's exit ({} ms), \
         {after} after",
        outcomes.len(),
        (old_gone - quit_at).as_millis()
    );

    let http = reqwest::Client::new();
    let start = Instant::now();
    let metrics = loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{admin}/metrics"))
            .send()
            .await
        {
            break r.text().await.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the new process never took the admin address\n{}",
            logs(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Served by the new process: its own decisions, counted since it started.
    assert!(metrics.contains("proofgate_decisions_total{"), "{metrics}");
    let r = http
        .get(format!("http://127.0.0.1:{admin}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    signal(&new, "-TERM");
    let status = wait_exit(&mut new, Duration::from_secs(30), &logs(dir)).await;
    assert!(status.success(), "new process: {status:?}\n{}", logs(dir));
    if std::env::var_os("PROOFGATE_TEST_LOGS").is_some() {
        eprintln!("{}", logs(dir));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_without_a_running_process_exits_with_an_error() {
    let (proxy, admin) = (free_port(), free_port());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = dir.join("proofgate.toml");
    let sections = format!(
        "[[listeners]]\naddress = \"127.0.0.1:{proxy}\"\n\n[admin]\naddress = \"127.0.0.1:{admin}\"\n\n\
         [server]\nupgrade_sock = \"{}\"",
        dir.join("upgrade.sock").display()
    );
    std::fs::write(&config, common::public_config(&sections, "127.0.0.1:9")).unwrap();
    let mut new = spawn(&config, true, &dir.join("new.log"));
    let status = wait_exit(&mut new, Duration::from_secs(30), &logs(dir)).await;
    let log = std::fs::read_to_string(dir.join("new.log")).unwrap();
    assert!(!status.success(), "{status:?}\n{log}");
    assert!(log.contains("hand over its listening sockets"), "{log}");
    // It never served: nothing listens on the proxy address.
    assert!(std::net::TcpStream::connect(("127.0.0.1", proxy)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigquit_refuses_a_socket_others_could_have_planted() {
    use std::os::unix::fs::PermissionsExt;
    let (proxy, admin) = (free_port(), free_port());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let open = dir.join("open");
    std::fs::create_dir_all(&open).unwrap();
    // A directory every user may write to, without the sticky bit: whoever listens there may not
    // be the new proofgate.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let sock = open.join("upgrade.sock");
    let planted = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    planted.set_nonblocking(true).unwrap();
    let sections = format!(
        "[[listeners]]\naddress = \"127.0.0.1:{proxy}\"\n\n[admin]\naddress = \"127.0.0.1:{admin}\"\n\n\
         [server]\ngrace_period = \"1s\"\nupgrade_sock = \"{}\"",
        sock.display()
    );
    let config = dir.join("proofgate.toml");
    std::fs::write(&config, common::public_config(&sections, "127.0.0.1:9")).unwrap();
    let mut old = spawn(&config, false, &dir.join("old.log"));
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", proxy)).is_err() {
        assert!(
            old.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(20),
            "the gateway never listened\n{}",
            logs(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(&old, "-QUIT");
    // Past the 5 s a handover would take: still running, still listening, nothing sent.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(old.try_wait().unwrap().is_none(), "{}", logs(dir));
    assert!(std::net::TcpStream::connect(("127.0.0.1", proxy)).is_ok());
    assert!(
        planted.accept().is_err(),
        "the planted socket got a connection"
    );
    let log = std::fs::read_to_string(dir.join("old.log")).unwrap();
    assert!(
        log.contains("not handing the listening sockets over"),
        "{log}"
    );
    signal(&old, "-TERM");
    let status = wait_exit(&mut old, Duration::from_secs(30), &logs(dir)).await;
    assert!(status.success(), "{status:?}\n{}", logs(dir));
}

//! The access log of the real binary (JSON lines): one line per request — proxied, refused
//! before routing, failed upstream, a step-up endpoint, `/favicon.ico` — each with the client,
//! host, user agent (cut and cleaned), route, upstream, decision, reason, status and duration,
//! and a hash of the proof's subject when one was used: never the subject or the token.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{mint, Binary};
use serde_json::Value;

/// The access lines of the log, as JSON `fields`.
fn access_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "access")
        .map(|v| v["fields"].clone())
        .collect()
}

/// Sends `request` (raw HTTP/1.1, one request, `Connection: close`) to `port`; the status.
fn raw(port: u16, request: &[u8]) -> u16 {
    use std::io::Read;
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let head = String::from_utf8_lossy(&answer);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_has_one_access_line_with_its_details() {
    let bin = Binary::start(
        |text| text.replace("[logging]\n", "[logging]\njson = true\n"),
        &[],
    )
    .await;
    let (sandbox, proxy) = (&bin.sandbox, bin.proxy);
    let logs = || bin.logs();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("access-log-test/1.0 (a \"quoted\" agent)")
        .build()
        .unwrap();
    let url = |p: &str| format!("http://127.0.0.1:{proxy}{p}");
    bin.wait_ready().await;

    // Allowed with a proof: the subject's hash, never the subject or the token.
    let (token, proof_id) = mint(sandbox.base_url(), "email", "email", "alice@corp.example").await;
    let r = http
        .get(url("/admin/x?q=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Denied by the default policy; an upstream that is down; `/favicon.ico`.
    let r = http.get(url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = http.get(url("/dead/x")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let r = http.get(url("/favicon.ico")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // A step-up start, as an API client.
    let r = http
        .get(url("/.proofgate/start?policy=staff&return_to=%2Fadmin"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A long user agent holding bytes that are not printable ASCII.
    let long_agent = format!("caf\u{e9}\t{}", "a".repeat(400));
    let request = format!(
        "GET /public/raw HTTP/1.1\r\nHost: raw.example\r\nUser-Agent: {long_agent}\r\n\
         Connection: close\r\n\r\n"
    );
    assert_eq!(raw(proxy, request.as_bytes()), 200);
    // A step-up start that is refused: its reason is logged.
    let r = http
        .get(url("/.proofgate/start?policy=nope"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let refused_status = r.status().as_u16();
    assert!(r.status().is_client_error(), "{refused_status}");
    let refusal: Value = r.json().await.unwrap();
    // Refused before routing: HTTP/1.1 without a `Host`.
    let request = "POST /public/x HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(raw(proxy, request.as_bytes()), 400);

    // The lines are written as the requests end; give the last one a moment.
    let start = Instant::now();
    let lines = loop {
        let lines = access_lines(&logs());
        if lines.len() >= 8 || start.elapsed() > Duration::from_secs(5) {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let line = |path: &str| {
        let found: Vec<&Value> = lines.iter().filter(|l| l["path"] == path).collect();
        assert_eq!(found.len(), 1, "{path}: {found:?}\n{}", logs());
        found[0].clone()
    };
    let agent = "access-log-test/1.0 (a \"quoted\" agent)";
    let host = format!("127.0.0.1:{proxy}");
    for l in &lines {
        assert!(l["micros"].as_u64().is_some(), "{l}");
        assert!(l["status"].as_u64().is_some(), "{l}");
    }

    let allowed = line("/admin/x");
    let mut hash = proofgate_core::identifier::hash_normalized(&proof_id);
    hash.truncate(16);
    for (field, want) in [
        ("client", "127.0.0.1"),
        ("method", "GET"),
        ("host", &host),
        ("user_agent", agent),
        ("route", "admin"),
        ("upstream", "app"),
        ("decision", "allow"),
        ("reason", ""),
        ("subject", &hash),
    ] {
        assert_eq!(allowed[field], want, "{field}: {allowed}");
    }
    assert_eq!(allowed["status"], 200);

    let denied = line("/nowhere");
    for (field, want) in [
        ("route", "default"),
        ("upstream", ""),
        ("decision", "deny"),
        ("reason", "route_denied"),
        ("subject", ""),
        ("user_agent", agent),
    ] {
        assert_eq!(denied[field], want, "{field}: {denied}");
    }
    assert_eq!(denied["status"], 403);

    let failed = line("/dead/x");
    for (field, want) in [
        ("route", "dead"),
        ("upstream", "dead"),
        ("decision", "error"),
        ("reason", "upstream_unavailable"),
    ] {
        assert_eq!(failed[field], want, "{field}: {failed}");
    }
    assert_eq!(failed["status"], 502);

    let favicon = line("/favicon.ico");
    assert_eq!(favicon["decision"], "none", "{favicon}");
    assert_eq!(favicon["reason"], "", "{favicon}");
    assert_eq!(favicon["status"], 404, "{favicon}");

    let starts: Vec<&Value> = lines
        .iter()
        .filter(|l| l["path"] == "/.proofgate/start")
        .collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    let (start, refused_start) = (starts[0].clone(), starts[1]);
    for (field, want) in [
        ("route", "step_up_start"),
        ("decision", "step_up_endpoint"),
        ("outcome", "refused"),
        ("reason", refusal["reason"].as_str().unwrap()),
    ] {
        assert_eq!(refused_start[field], want, "{field}: {refused_start}");
    }
    assert_ne!(refused_start["reason"], "");
    assert_eq!(refused_start["status"], refused_status);
    for (field, want) in [
        ("route", "step_up_start"),
        ("decision", "step_up_endpoint"),
        ("outcome", "started"),
        ("host", &host),
        ("user_agent", agent),
    ] {
        assert_eq!(start[field], want, "{field}: {start}");
    }
    assert_eq!(start["status"], 200);

    let cleaned = format!("caf???{}…", "a".repeat(200 - 6));
    let odd = line("/public/raw");
    for (field, want) in [
        ("route", "public"),
        ("decision", "allow"),
        ("host", "raw.example"),
        ("user_agent", &cleaned),
    ] {
        assert_eq!(odd[field], want, "{field}: {odd}");
    }

    let refused = line("/public/x");
    for (field, want) in [
        ("route", "none"),
        ("decision", "deny"),
        ("reason", "invalid_host"),
        ("host", ""),
        ("method", "POST"),
        ("upstream", ""),
    ] {
        assert_eq!(refused[field], want, "{field}: {refused}");
    }
    assert_eq!(refused["status"], 400);

    // Neither the token, nor the subject, nor the query is in the log.
    let text = logs();
    for secret in [token.rsplit('.').next().unwrap(), proof_id.as_str(), "q=1"] {
        assert!(!text.contains(secret), "{secret} reached the log:\n{text}");
    }
}

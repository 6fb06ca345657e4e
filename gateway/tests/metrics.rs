//! The metrics an operator alerts on: labelled counters exist at 0 from the start (so the first
//! event is an increase), upstream failures are counted by upstream and kind, and
//! `/favicon.ico` is answered without a decision.

mod common;

use std::time::{Duration, Instant};

use common::{stack, Options};

/// The value of the sample `line_prefix` (a name with its labels, as exported), if exported.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// The sum of every `proofgate_decisions_total` sample.
fn decisions(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("proofgate_decisions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_counters_start_at_zero() {
    let s = stack(Options::default()).await;
    let m = s.metrics().await;
    for series in [
        r#"proofgate_config_reloads_total{result="ok"}"#,
        r#"proofgate_config_reloads_total{result="rejected"}"#,
        r#"proofgate_step_up_starts_total{outcome="started"}"#,
        r#"proofgate_step_up_starts_total{outcome="rate_limited"}"#,
        r#"proofgate_step_up_starts_total{outcome="failed"}"#,
        r#"proofgate_step_up_starts_total{outcome="refused"}"#,
        r#"proofgate_step_up_callbacks_total{outcome="completed"}"#,
        r#"proofgate_step_up_callbacks_total{outcome="policy_unmet"}"#,
        r#"proofgate_step_up_callbacks_total{outcome="refused"}"#,
        r#"proofgate_step_up_callbacks_total{outcome="failed"}"#,
        r#"proofgate_webhooks_total{outcome="applied"}"#,
        r#"proofgate_webhooks_total{outcome="duplicate"}"#,
        r#"proofgate_webhooks_total{outcome="refused"}"#,
        r#"proofgate_cache_lookups_total{result="hit"}"#,
        // A step-up policy: refusals are step-ups, except "cannot check now".
        r#"proofgate_decisions_total{decision="allow",reason="",route="admin"}"#,
        r#"proofgate_decisions_total{decision="step_up",reason="missing",route="admin"}"#,
        r#"proofgate_decisions_total{decision="step_up",reason="revoked",route="admin"}"#,
        r#"proofgate_decisions_total{decision="deny",reason="status_unavailable",route="admin"}"#,
        r#"proofgate_decisions_total{decision="deny",reason="jwks_stale",route="admin"}"#,
        // A policy that denies on failure.
        r#"proofgate_decisions_total{decision="deny",reason="missing",route="payouts"}"#,
        // The default route's deny-all policy, and refusals before routing.
        r#"proofgate_decisions_total{decision="deny",reason="route_denied",route="default"}"#,
        r#"proofgate_decisions_total{decision="deny",reason="invalid_path",route="none"}"#,
        r#"proofgate_decisions_total{decision="deny",reason="invalid_host",route="none"}"#,
        r#"proofgate_upstream_errors_total{kind="connect_failed",upstream="app"}"#,
        r#"proofgate_upstream_errors_total{kind="read_timeout",upstream="dead"}"#,
        "proofgate_config_restart_required",
        "proofgate_fail_open_total",
    ] {
        assert_eq!(sample(&m, series), Some(0.0), "{series}:\n{m}");
    }
    // Only what a policy can reach: a deny-on-failure policy never steps up, a public route
    // only allows.
    for absent in [
        r#"proofgate_decisions_total{decision="step_up",reason="missing",route="payouts"}"#,
        r#"proofgate_decisions_total{decision="deny",reason="missing",route="public"}"#,
    ] {
        assert_eq!(sample(&m, absent), None, "{absent}:\n{m}");
    }
    // Named for what they are.
    assert!(
        m.contains("# TYPE proofgate_fail_open_total counter"),
        "{m}"
    );
    for line in m.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = line.split_once(' ').unwrap();
        assert_eq!(
            name.ends_with("_total"),
            kind == "counter",
            "{name} is a {kind}"
        );
    }
    s.shutdown().await;
}

/// Each step-up endpoint's answer is counted under its outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_endpoints_are_counted_by_outcome() {
    let s = stack(Options::default()).await;
    let get = |path: &'static str| {
        let rb = s.http.get(s.url(path)).header("accept", "application/json");
        async move { rb.send().await.unwrap().status() }
    };
    // A start for a policy that does not exist, a callback without a flow, a webhook that is
    // not POSTed: refused, each in its own counter.
    for path in [
        "/.proofgate/start?policy=nope",
        "/.proofgate/callback",
        "/.proofgate/webhook",
    ] {
        let status = get(path).await;
        assert!(status.is_client_error(), "{path}: {status}");
    }
    let m = s.metrics().await;
    for (series, want) in [
        (r#"proofgate_step_up_starts_total{outcome="refused"}"#, 1.0),
        (r#"proofgate_step_up_starts_total{outcome="started"}"#, 0.0),
        (
            r#"proofgate_step_up_callbacks_total{outcome="refused"}"#,
            1.0,
        ),
        (
            r#"proofgate_step_up_callbacks_total{outcome="completed"}"#,
            0.0,
        ),
        (r#"proofgate_webhooks_total{outcome="refused"}"#, 1.0),
    ] {
        assert_eq!(sample(&m, series), Some(want), "{series}:\n{m}");
    }
    // A whole step-up: started, then completed.
    let state = common::json_step_up(
        &s.http,
        &s.proxy,
        "/.proofgate/start?policy=staff&return_to=%2Fadmin",
    )
    .await;
    let r = s
        .http
        .get(s.url(&format!("/.proofgate/callback?state={state}")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m = s.metrics().await;
    for (series, want) in [
        (r#"proofgate_step_up_starts_total{outcome="started"}"#, 1.0),
        (
            r#"proofgate_step_up_callbacks_total{outcome="completed"}"#,
            1.0,
        ),
    ] {
        assert_eq!(sample(&m, series), Some(want), "{series}:\n{m}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_errors_are_counted_by_upstream_and_kind() {
    // An upstream that accepts connections and never answers.
    let stall = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stall_addr = stall.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = stall.accept().await {
            held.push(conn);
        }
    });
    let extra: &'static str = Box::leak(
        format!(
            r#"
[[upstreams]]
name = "stall"
addresses = ["{stall_addr}"]
read_timeout = "1s"

[[upstreams]]
name = "sick"
addresses = ["127.0.0.1:{{dead}}"]
[upstreams.health_check]
path = "/healthz"
interval = "1s"

[[routes]]
name = "stall"
path = "/stall/**"
policy = "public"
upstream = "stall"

[[routes]]
name = "sick"
path = "/sick/**"
policy = "public"
upstream = "sick"
"#
        )
        .into_boxed_str(),
    );
    let s = stack(Options {
        extra,
        ..Options::default()
    })
    .await;
    let get = |path: &'static str| {
        let rb = s.http.get(s.url(path));
        async move { rb.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get("/dead/x").await, 502);
    assert_eq!(get("/stall/x").await, 504);
    let m = s.metrics().await;
    for (series, want) in [
        (
            r#"proofgate_upstream_errors_total{kind="connect_failed",upstream="dead"}"#,
            1.0,
        ),
        (
            r#"proofgate_upstream_errors_total{kind="read_timeout",upstream="stall"}"#,
            1.0,
        ),
        (
            r#"proofgate_upstream_errors_total{kind="connect_failed",upstream="stall"}"#,
            0.0,
        ),
        (
            r#"proofgate_upstream_errors_total{kind="read_timeout",upstream="app"}"#,
            0.0,
        ),
    ] {
        assert_eq!(sample(&m, series), Some(want), "{series}:\n{m}");
    }
    // Once its only address fails the health check, the sick upstream has no backend left.
    let start = Instant::now();
    let series = r#"proofgate_upstream_errors_total{kind="no_healthy_backend",upstream="sick"}"#;
    loop {
        assert_eq!(get("/sick/x").await, 502);
        if sample(&s.metrics().await, series) == Some(1.0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never counted as no_healthy_backend:\n{}",
            s.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn favicon_is_not_a_decision_unless_configured() {
    let s = stack(Options {
        watch: true,
        ..Options::default()
    })
    .await;
    let before = decisions(&s.metrics().await);
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let r = s
            .http
            .request(method.clone(), s.url("/favicon.ico"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(r.bytes().await.unwrap().is_empty());
    }
    assert_eq!(
        decisions(&s.metrics().await),
        before,
        "counted as a decision"
    );
    // Another method, or another path, is decided as usual (the default policy denies).
    let r = s.http.post(s.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = s.http.get(s.url("/favicon.png")).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // `favicon = "policy"`: decided like any request.
    let original = std::fs::read_to_string(&s.config_path).unwrap();
    let policy = original.replace(
        "[server]\nthreads = 1",
        "[server]\nthreads = 1\nfavicon = \"policy\"",
    );
    assert_ne!(policy, original);
    std::fs::write(&s.config_path, &policy).unwrap();
    wait_status(&s, "/favicon.ico", 403).await;

    // A route naming the path itself applies, whatever the setting.
    let routed = format!(
        "{original}\n[[routes]]\nname = \"icon\"\npath = \"/favicon.ico\"\npolicy = \"public\"\n"
    );
    std::fs::write(&s.config_path, &routed).unwrap();
    wait_status(&s, "/favicon.ico", 200).await;
    s.shutdown().await;
}

async fn wait_status(s: &common::Stack, path: &str, want: u16) {
    let start = Instant::now();
    loop {
        let got = s.http.get(s.url(path)).send().await.unwrap().status();
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{path}: still {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

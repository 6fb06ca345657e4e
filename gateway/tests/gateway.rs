//! The gateway end to end: a real Pingora listener in front of a real upstream, with the sandbox
//! as issuer, asserted over HTTP.

mod common;

use std::time::Duration;

use common::{problem, stack, Options};
use proofgate_core::testing::browser::{self, html};
use proofgate_sandbox::{Failure, FailureRule};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_forwards_identity_headers_and_strips_spoofed_ones() {
    let s = stack(Options::default()).await;
    let (token, id) = s.token("email", "email", "Alice@Corp.Example").await;
    let r = s
        .http
        .get(s.url("/admin/panel"))
        .bearer_auth(&token)
        .header("x-proof-subject", "spoofed")
        .header("X-Proof-Type", "spoofed")
        .header("x-proof-anything", "spoofed")
        .send()
        .await
        .unwrap();
    let r = if r.status() == 503 {
        s.get_bearer("/admin/panel", &token).await
    } else {
        r
    };
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let identity = &body["identity"];
    assert_eq!(identity["x-proof-subject"], id.as_str());
    assert_eq!(identity["x-proof-type"], "email");
    assert_eq!(identity["x-proof-channel"], "email");
    assert_eq!(
        identity["x-proof-identifier-hash"],
        proofgate_core::identifier::identifier_hash("email", "alice@corp.example").as_str()
    );
    assert!(identity.get("x-proof-anything").is_none(), "{identity}");
    assert_eq!(body["path"], "/admin/panel");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_reasons_and_status_codes() {
    let s = stack(Options::default()).await;
    // No token on a step-up route, API client: 401 with a start link.
    let (st, body, h) = problem(s.http.get(s.url("/admin")).send().await.unwrap()).await;
    assert_eq!(st, 401);
    assert_eq!(body["reason"], "missing");
    assert_eq!(h["content-type"], "application/problem+json");
    let www = h["www-authenticate"].to_str().unwrap();
    assert!(
        www.starts_with("Proof realm=\"proofgate\", error=\"missing\""),
        "{www}"
    );
    assert_eq!(
        body["step_up"]["start"],
        "/.proofgate/start?policy=staff&return_to=%2Fadmin"
    );
    // A browser is redirected to start instead.
    let r = s
        .http
        .get(s.url("/admin?x=1"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"],
        "/.proofgate/start?policy=staff&return_to=%2Fadmin%3Fx%3D1"
    );
    // Garbage token.
    let (st, body, _) = problem(
        s.http
            .get(s.url("/admin"))
            .bearer_auth("not.a.token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, body["reason"].as_str()), (401, Some("malformed")));
    // A valid proof that does not meet the policy: deny-mode route → 403 policy_unmet.
    let (email, _) = s.token("email", "email", "mallory@corp.example").await;
    let (st, body, _) = problem(s.get_bearer("/payouts/send", &email).await).await;
    assert_eq!((st, body["reason"].as_str()), (403, Some("policy_unmet")));
    // Same on a step-up route: 401 with a step-up link.
    let (st, body, _) = problem(s.get_bearer("/admin", &email).await).await;
    assert_eq!((st, body["reason"].as_str()), (401, Some("policy_unmet")));
    // A fresh phone proof passes payouts.
    let (phone, _) = s.token("phone", "sms", "+370 691 99199").await;
    assert_eq!(s.get_bearer("/payouts/send", &phone).await.status(), 200);
    // No route: the default policy denies.
    let (st, body, _) = problem(s.get_bearer("/nowhere", &phone).await).await;
    assert_eq!((st, body["reason"].as_str()), (403, Some("route_denied")));
    // Nothing in any answer carries the token.
    let text = s
        .http
        .get(s.url("/admin"))
        .bearer_auth(&email)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(&email[..30]));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_step_up_through_the_hosted_page_and_back() {
    let s = stack(Options::default()).await;
    let path = "/admin/reports?page=2";
    let started = browser::start(&s.http, &s.proxy, path, s.sandbox.base_url()).await;
    // The person sees the hosted page (a form) and completes it.
    let page = s.http.get(&started.hosted).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form"));
    let callback = browser::complete(&s.http, &started, &s.proxy).await;
    let (pair, proof_cookie) = browser::finish(&s.http, &started, &callback, path).await;
    let max_age: i64 = proof_cookie
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(max_age > 0 && max_age <= 30 * 86400 + 5);
    // The cookie now opens the original URL.
    let r = html(s.http.get(s.url("/admin/reports?page=2")))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["identity"]["x-proof-type"]
        .as_str()
        .unwrap()
        .contains("email"));
    // A replayed callback without state fails cleanly.
    let r = html(s.http.get(&callback)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_client_step_up_through_json() {
    let s = stack(Options::default()).await;
    let (_, body, _) = problem(s.http.get(s.url("/admin")).send().await.unwrap()).await;
    let start = body["step_up"]["start"].as_str().unwrap().to_string();
    // The person completes the hosted verification (here: the test drives the page).
    let state = common::json_step_up(&s.http, &s.proxy, &start).await;
    let r = s
        .http
        .get(s.url(&format!("/.proofgate/callback?state={state}")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let done: serde_json::Value = r.json().await.unwrap();
    let tokens = done["proof_tokens"].as_array().unwrap();
    assert!(!tokens.is_empty());
    assert_eq!(done["return_to"], "/admin");
    let token = tokens[0].as_str().unwrap();
    assert_eq!(s.get_bearer("/admin", token).await.status(), 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_by_webhook_applies_at_once() {
    let s = stack(Options::default()).await;
    s.sandbox.add_webhook_url(&s.url("/.proofgate/webhook"));
    let (token, id) = s.token("phone", "sms", "+447700900123").await;
    assert_eq!(s.get_bearer("/payouts/x", &token).await.status(), 200);
    let r = s
        .http
        .post(format!(
            "{}/api/v1/proofs/{id}/revoke",
            s.sandbox.base_url()
        ))
        .bearer_auth(common::API_KEY)
        .json(&serde_json::json!({"reason": "fraud"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let start = std::time::Instant::now();
    loop {
        let (st, body, _) = problem(
            s.http
                .get(s.url("/payouts/x"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if st == 401 {
            assert_eq!(body["reason"], "revoked");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "revocation never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = s.sandbox.webhook_deliveries();
    assert!(
        delivered
            .iter()
            .any(|d| format!("{d:?}").contains("proof.revoked")),
        "{delivered:?}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_outage_turns_into_503_after_the_staleness_limit() {
    let s = stack(Options {
        jwks_max_staleness: Duration::from_secs(3),
        ..Options::default()
    })
    .await;
    let (token, _) = s.token("phone", "sms", "+447700900123").await;
    assert_eq!(s.get_bearer("/payouts/x", &token).await.status(), 200);
    s.sandbox.inject(FailureRule::new(
        "/.well-known/jwks.json",
        Failure::Status(503),
    ));
    // Until the limit, the last good keys keep verifying.
    assert_eq!(
        s.http
            .get(s.url("/payouts/x"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let start = std::time::Instant::now();
    loop {
        let (st, body, _) = problem(
            s.http
                .get(s.url("/payouts/x"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if st == 503 && body["reason"] == "jwks_stale" {
            break;
        }
        assert_eq!(st, 200, "{body}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never went stale"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A bad token is still a 401, not a 503.
    let (st, body, _) = problem(
        s.http
            .get(s.url("/payouts/x"))
            .bearer_auth("x.y.z")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, body["reason"].as_str()), (401, Some("malformed")));
    assert_eq!(
        s.http
            .get(format!("{}/readyz", s.admin))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    s.sandbox.clear_failures();
    let start = std::time::Instant::now();
    while s
        .http
        .get(s.url("/payouts/x"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(start.elapsed() < Duration::from_secs(10), "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_a_502_problem() {
    let s = stack(Options::default()).await;
    let (st, body, h) = problem(s.http.get(s.url("/dead/x")).send().await.unwrap()).await;
    assert_eq!(st, 502);
    assert_eq!(body["reason"], "upstream_unavailable");
    assert_eq!(h["content-type"], "application/problem+json");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_and_metrics() {
    let s = stack(Options::default()).await;
    let _ = s.http.get(s.url("/admin")).send().await.unwrap();
    assert_eq!(
        s.http
            .get(format!("{}/healthz", s.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.http
            .get(format!("{}/readyz", s.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let m = s.metrics().await;
    for name in [
        "proofgate_decisions_total",
        "proofgate_decision_seconds",
        "proofgate_cache_entries",
        "proofgate_jwks_age_seconds",
        "proofgate_revocation_age_seconds",
        "proofgate_refresh_failures",
    ] {
        assert!(m.contains(name), "{name} missing from /metrics");
    }
    assert!(
        m.contains(
            r#"proofgate_decisions_total{decision="step_up",reason="missing",route="admin"} 1"#
        ),
        "{m}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_take_a_dead_backend_out_of_rotation() {
    let s = stack(Options {
        extra: r#"
[[upstreams]]
name = "mixed"
addresses = ["127.0.0.1:{dead}", "{upstream}"]
connect_timeout = "1s"
read_timeout = "1s"

[upstreams.health_check]
path = "/healthz"
interval = "1s"

[[routes]]
name = "mixed"
path = "/mixed/**"
policy = "public"
upstream = "mixed"
"#,
        ..Options::default()
    })
    .await;
    // Once the dead backend has failed its check, every request reaches the live one.
    let start = std::time::Instant::now();
    loop {
        let mut all_ok = true;
        for _ in 0..6 {
            if s.http.get(s.url("/mixed/x")).send().await.unwrap().status() != 200 {
                all_ok = false;
            }
        }
        if all_ok {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the dead backend stayed in rotation"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_stripped_before_forwarding_when_configured() {
    let s = stack(Options::default()).await;
    let (token, _) = s.token("email", "email", "alice@corp.example").await;
    let body: serde_json::Value = s.get_bearer("/admin", &token).await.json().await.unwrap();
    assert_eq!(body["identity"]["x-proof-type"], "email", "{body}");
    assert_eq!(body["authorization_forwarded"], false, "{body}");
    let r = s
        .http
        .get(s.url("/admin"))
        .header(
            "cookie",
            format!("theme=dark; proof_token={token}; lang=lt"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["cookies"],
        serde_json::json!(["theme", "lang"]),
        "{body}"
    );
    assert_eq!(body["identity"]["x-proof-type"], "email");
    s.shutdown().await;
}

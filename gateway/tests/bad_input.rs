//! Hostile and malformed requests against the real gateway: each gets a precise answer, nothing
//! slips past a route's policy, and the gateway keeps serving.

mod common;

use common::{problem, stack, Options, COOKIE_KEY};
use proofgate_core::clock::unix_now;
use proofgate_core::stepup::{seal_state, FlowState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_tricks_do_not_slip_past_a_route() {
    let s = stack(Options::default()).await;
    // Each of these is /admin in disguise: it must meet the admin policy (401 missing here).
    for path in [
        "/ADMIN",
        "/Admin/",
        "//admin",
        "/admin/",
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin/x",
        "/./admin",
        "/public/./../admin/",
        "/%61dmin",
        "/admin;x=1",
    ] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        let (st, body, _) = problem(r).await;
        assert_eq!(st, 401, "{path}: {body}");
        assert_eq!(body["reason"], "missing", "{path}");
    }
    // Ambiguous encodings are refused outright.
    for path in [
        "/admin%2fsecret",
        "/public%2f..%2fadmin",
        "/public/%5c..%5cadmin",
        "/public/%00",
        "/public/%zz",
    ] {
        let (st, body, _) = problem(s.http.get(s.url(path)).send().await.unwrap()).await;
        assert_eq!(st, 400, "{path}: {body}");
        assert_eq!(body["reason"], "invalid_path", "{path}");
    }
    // What is forwarded is the normalized path the decision was made on.
    let r = s
        .http
        .get(s.url("/public/./a//b/../c?q=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["path"], "/public/a/c");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_tricks() {
    let s = stack(Options::default()).await;
    let (token, _) = s.token("email", "email", "alice@corp.example").await;
    assert_eq!(s.get_bearer("/admin", &token).await.status(), 200);
    // Two Authorization headers: malformed, whatever they hold.
    let r = s
        .http
        .get(s.url("/admin"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let (st, body, _) = problem(r).await;
    assert_eq!((st, body["reason"].as_str()), (401, Some("malformed")));
    // Header and cookie disagree: the first configured source (the header) decides.
    let r = s
        .http
        .get(s.url("/admin"))
        .bearer_auth(&token)
        .header("cookie", "proof_token=garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .http
        .get(s.url("/admin"))
        .bearer_auth("garbage")
        .header("cookie", format!("proof_token={token}"))
        .send()
        .await
        .unwrap();
    let (st, body, _) = problem(r).await;
    assert_eq!((st, body["reason"].as_str()), (401, Some("malformed")));
    // Many cookies, the proof among them.
    let mut cookies: Vec<String> = (0..300).map(|i| format!("c{i}=v{i}")).collect();
    cookies.insert(150, format!("proof_token={token}"));
    let r = s
        .http
        .get(s.url("/admin"))
        .header("cookie", cookies.join("; "))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An oversized header is refused without harm, and the gateway keeps serving.
    let huge = "a".repeat(200_000);
    let r = s
        .http
        .get(s.url("/admin"))
        .header("x-big", &huge)
        .send()
        .await;
    if let Ok(r) = r {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let r = s
        .http
        .get(s.url("/admin"))
        .bearer_auth("a".repeat(50_000))
        .send()
        .await;
    if let Ok(r) = r {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    // Spoofed identity headers never reach the upstream, even on a public route.
    let r = s
        .http
        .get(s.url("/public/x"))
        .header("x-proof-subject", "admin")
        .header("x-proof-type", "email")
        .header("X-PROOF-IDENTIFIER-HASH", "00")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["identity"], serde_json::json!({}), "{body}");
    assert_eq!(
        s.get_bearer("/admin", &token).await.status(),
        200,
        "still serving"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_redirects_and_forged_state_are_refused() {
    let s = stack(Options::default()).await;
    for target in [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "%2F%2Fevil.example",
        "/%2F%2Fevil.example",
        "javascript:alert(1)",
    ] {
        let url = s.url(&format!(
            "/.proofgate/start?policy=staff&return_to={}",
            proofgate_core::render::urlencode(target)
        ));
        // A browser gets a page that says so, an API client the problem; neither a redirect.
        let r = s
            .http
            .get(&url)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{target}");
        assert!(r.headers().get("location").is_none());
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let page = r.text().await.unwrap();
        assert!(
            page.contains("This verification link is not valid"),
            "{page}"
        );
        assert!(page.contains("invalid_return_to"), "{page}");
        let (st, body, h) = problem(s.http.get(url).send().await.unwrap()).await;
        assert_eq!(st, 400, "{target}: {body}");
        assert_eq!(body["reason"], "invalid_return_to");
        assert!(h.get("location").is_none());
    }
    // Unknown policy: no API call, 404.
    let (st, _, _) = problem(
        s.http
            .get(s.url("/.proofgate/start?policy=nope"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 404);
    let callback = s.url("/.proofgate/callback");
    let state = |key: &[u8], exp: i64, return_to: &str| {
        seal_state(
            key,
            &FlowState {
                rid: "0123456789abcdef01234567".into(),
                policy: "staff".into(),
                return_to: return_to.into(),
                exp,
                flow: String::new(),
            },
        )
    };
    let cases = [
        (
            "forged",
            state(
                b"not-the-key-not-the-key-not-the-key",
                unix_now() + 60,
                "/admin",
            ),
        ),
        (
            "expired",
            state(COOKIE_KEY.as_bytes(), unix_now() - 1, "/admin"),
        ),
        ("garbage", "garbage".to_string()),
        ("tampered", {
            let good = state(COOKIE_KEY.as_bytes(), unix_now() + 60, "/admin");
            let (p, t) = good.split_once('.').unwrap();
            format!("{p}A.{t}")
        }),
    ];
    for (name, sealed) in cases {
        let r = s
            .http
            .get(&callback)
            .header("cookie", format!("proofgate_state={sealed}"))
            .send()
            .await
            .unwrap();
        let (st, body, h) = problem(r).await;
        assert_eq!(st, 400, "{name}: {body}");
        assert_eq!(body["reason"], "state_invalid", "{name}");
        assert!(h.get("location").is_none());
    }
    // Even a validly sealed state cannot send the browser off-site.
    let sealed = state(COOKIE_KEY.as_bytes(), unix_now() + 60, "//evil.example");
    let r = s
        .http
        .get(&callback)
        .header("cookie", format!("proofgate_state={sealed}"))
        .send()
        .await
        .unwrap();
    if let Some(loc) = r.headers().get("location") {
        assert!(loc.to_str().unwrap().starts_with('/') && !loc.to_str().unwrap().starts_with("//"));
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_with_bad_signatures_or_old_timestamps_are_refused() {
    let s = stack(Options::default()).await;
    let (token, id) = s.token("phone", "sms", "+447700900123").await;
    assert_eq!(s.get_bearer("/payouts/x", &token).await.status(), 200);
    let url = s.url("/.proofgate/webhook");
    let secret = s.sandbox.webhook_secret().to_string();
    let body = serde_json::json!({"event": "proof.revoked", "proof_id": id}).to_string();
    let send = |ts: i64, sig: String, body: String| {
        s.http
            .post(&url)
            .header("x-proof-timestamp", ts.to_string())
            .header("x-proof-signature", sig)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let now = unix_now();
    let sign = |ts: i64, body: &str| {
        proofgate_core::webhook::sign(secret.as_bytes(), &ts.to_string(), body.as_bytes())
    };
    let (st, b, _) = problem(send(now, "00".repeat(32), body.clone()).await.unwrap()).await;
    assert_eq!((st, b["reason"].as_str()), (401, Some("invalid_webhook")));
    let (st, _, _) = problem(
        send(now - 301, sign(now - 301, &body), body.clone())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 401, "an old timestamp is refused");
    let (st, _, _) = problem(send(now, sign(now, "{}"), body.clone()).await.unwrap()).await;
    assert_eq!(st, 401, "a signature over another body is refused");
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let big = "x".repeat(100_000);
    let (st, _, _) = problem(send(now, sign(now, &big), big.clone()).await.unwrap()).await;
    assert_eq!(st, 413);
    // Nothing above revoked anything.
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
    let r = send(now, sign(now, &body), body.clone()).await.unwrap();
    assert_eq!(r.status(), 204);
    let (st, b, _) = problem(
        s.http
            .get(s.url("/payouts/x"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, b["reason"].as_str()), (401, Some("revoked")));
    s.shutdown().await;
}

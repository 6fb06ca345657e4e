//! No token, secret or state value in any log line, from any crate, at any level: the real
//! binary runs at `RUST_LOG=trace` (its own and every dependency's logging on), a step-up and
//! the proxy flow go through it with tokens in the `Authorization` header, the token header, the
//! proof cookie and the query, a webhook is posted, an upstream fails — and the log must not
//! contain any of those values, nor the API key, cookie key or webhook secret.

mod common;

use std::time::Duration;

use common::{mint, Binary, API_KEY, COOKIE_KEY};
use proofgate_core::webhook;

/// The part of a token that identifies it: its signature (the header and payload may repeat
/// across tokens of one issuer).
fn signature(token: &str) -> &str {
    token.rsplit('.').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_secret_reaches_the_log_at_trace() {
    let bin = Binary::start(
        |text| text.replace("level = \"info\"", "level = \"trace\""),
        &[("RUST_LOG", "trace")],
    )
    .await;
    let (sandbox, proxy, secret) = (&bin.sandbox, bin.proxy, &bin.secret);
    let logs = || bin.logs();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |p: &str| format!("http://127.0.0.1:{proxy}{p}");
    bin.wait_ready().await;

    let (token, proof_id) = mint(sandbox.base_url(), "email", "email", "alice@corp.example").await;
    let mut canaries = vec![signature(&token).to_string()];
    // Every carrier, on a protected and on a public route.
    for path in ["/admin/x", "/public/x"] {
        let r = http
            .get(url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let r = http
            .get(url(path))
            .header("x-proof-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let r = http
            .get(url(path))
            .header("cookie", format!("proof_token={token}; theme=dark"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let r = http
            .get(url(&format!("{path}?proof_token={token}&t={token}")))
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "{path}");
    }
    // An upstream that fails, with the token in the query (Pingora's own error line).
    let r = http
        .get(url(&format!("/dead/x?proof_token={token}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    // A whole step-up: start (state in the answer), the hosted page, the callback (tokens in
    // the answer), then the new token used.
    let start = "/.proofgate/start?policy=staff&return_to=%2Fadmin";
    let state = common::json_step_up(&http, &url(""), start).await;
    canaries.push(signature(&state).to_string());
    let r = http
        .get(url(&format!("/.proofgate/callback?state={state}")))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let done: serde_json::Value = r.json().await.unwrap();
    let stepped = done["proof_tokens"][0].as_str().unwrap().to_string();
    canaries.push(signature(&stepped).to_string());
    let r = http
        .get(url("/admin/y"))
        .bearer_auth(&stepped)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A signed webhook.
    let body = format!(r#"{{"event":"proof.revoked","data":{{"proof_id":"{proof_id}"}}}}"#);
    let ts = proofgate_core::clock::unix_now().to_string();
    let sig = webhook::sign(secret.as_bytes(), &ts, body.as_bytes());
    canaries.push(sig.clone());
    let r = http
        .post(url("/.proofgate/webhook"))
        .header("content-type", "application/json")
        .header(webhook::TIMESTAMP_HEADER, &ts)
        .header(webhook::SIGNATURE_HEADER, &sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .get(url("/admin/x"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Give the access log lines of the last requests a moment to be written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = logs();
    // The log is really at trace: Pingora's and our own lines are there.
    assert!(text.contains("TRACE"), "no trace lines at all:\n{text}");
    assert!(text.contains("access"), "no access lines:\n{text}");
    canaries.extend([API_KEY.to_string(), COOKIE_KEY.to_string(), secret.clone()]);
    for canary in &canaries {
        if let Some(line) = text.lines().find(|l| l.contains(canary.as_str())) {
            panic!("a secret value reached the log:\n{line}");
        }
    }
}

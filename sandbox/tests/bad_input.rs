//! Client mistakes get the error envelope with the right status and code — never a panic, never
//! a 500 — and every such body matches `openapi.json`.

mod support;

use proofgate_sandbox::SandboxHandle;
use serde_json::{json, Value};
use support::*;

async fn send(
    sb: &SandboxHandle,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, Value) {
    let mut req = raw().request(method, format!("{}{path}", sb.base_url()));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let r = req.send().await.expect("send");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{path} → {status}: not JSON: {text}"));
    (status, value)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn errors_use_the_envelope() {
    use reqwest::Method as M;
    let sb = sandbox().await;
    let post =
        |path: &'static str, body: Value| (M::POST, path, serde_json::to_vec(&body).expect("json"));

    // Authentication.
    let (s, v) = send(&sb, M::GET, "/api/v1/verifications", None, None).await;
    assert_eq!((s, code(&v)), (401, "unauthorized"));
    assert_eq!(v["error"]["message"], "API key required");
    assert!(v["error"]["request_id"].is_string());
    for bad in ["sk_test_x", "pk_test_", "pk_other_x"] {
        let (s, v) = send(&sb, M::GET, "/api/v1/verifications", Some(bad), None).await;
        assert_eq!((s, code(&v)), (401, "unauthorized"), "{bad}");
    }

    // Type, channel, identifier.
    for (method, path, body, status, want) in [
        post(
            "/api/v1/verifications",
            json!({"type": "phone", "channel": "email", "identifier": "+37069199199"}),
        ),
        post(
            "/api/v1/verifications",
            json!({"type": "fax", "channel": "email", "identifier": "x"}),
        ),
        post(
            "/api/v1/verifications",
            json!({"type": "phone", "channel": "pigeon", "identifier": "+37069199199"}),
        ),
        post(
            "/api/v1/verifications",
            json!({"type": "phone", "channel": "sms", "identifier": "call me"}),
        ),
        post(
            "/api/v1/verifications",
            json!({"type": "email", "channel": "email"}),
        ),
        post(
            "/api/v1/verifications",
            json!({"type": 5, "channel": "email", "identifier": "a@b.c"}),
        ),
        post("/api/v1/verifications", json!(["not", "an", "object"])),
        post("/api/v1/verification-requests", json!({"assets": []})),
        post(
            "/api/v1/verification-requests",
            json!({"assets": [{"type": "phone", "channel": "dns"}]}),
        ),
        post(
            "/api/v1/verification-requests",
            json!({"assets": [{"type": "email"}], "expires_in": 999999999}),
        ),
        post(
            "/api/v1/verification-requests",
            json!({"assets": [{"type": "email"}], "redirect_url": "javascript:alert(1)"}),
        ),
        post(
            "/api/v1/verification-requests",
            json!({"assets": [{"type": "email"}], "validity_requirement": "7 days"}),
        ),
        post(
            "/api/v1/verification-requests",
            json!({"assets": [{"type": "email"}], "action_type": "launch"}),
        ),
        post(
            "/api/v1/sessions",
            json!({"phone": "+37069199199", "channel": "email"}),
        ),
        // `{}` is the phone-first session the SDKs create; a channel of the wrong type is not.
        post("/api/v1/sessions", json!({"channel": 5})),
        post("/api/v1/proofs/validate", json!({"proof_token": ""})),
    ]
    .into_iter()
    .zip([
        (400, "invalid_channel_for_type"),
        (400, "validation_error"),
        (400, "validation_error"),
        (400, "invalid_identifier"),
        (400, "validation_error"),
        (400, "validation_error"),
        (400, "validation_error"),
        (400, "validation_error"),
        (400, "invalid_channel_for_type"),
        (400, "validation_error"),
        (400, "validation_error"),
        (400, "validation_error"),
        (400, "validation_error"),
        (400, "validation_error"),
        (400, "validation_error"),
        (400, "validation_error"),
    ])
    .map(|((m, p, b), (s, c))| (m, p, b, s, c))
    {
        let (s, v) = send(&sb, method, path, Some(TEST_KEY), Some(body.clone())).await;
        assert_eq!(
            (s, code(&v)),
            (status, want),
            "{path} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (_, v) = send(
        &sb,
        M::POST,
        "/api/v1/verifications",
        Some(TEST_KEY),
        Some(br#"{"type":"fax","channel":"email","identifier":"x"}"#.to_vec()),
    )
    .await;
    assert_eq!(v["error"]["details"][0]["field"], "type");
    assert_eq!(v["error"]["details"][0]["code"], "invalid_enum_value");
    let (_, v) = send(
        &sb,
        M::POST,
        "/api/v1/verifications",
        Some(TEST_KEY),
        Some(br#"{"type":"phone","channel":"email","identifier":"+37069199199"}"#.to_vec()),
    )
    .await;
    assert_eq!(
        v["error"]["message"],
        "Channel 'email' is not valid for verification type 'phone'"
    );

    // Malformed and oversized bodies.
    for body in [&b"{"[..], b"{\"type\": }", b"\xff\xfe", b"nul"] {
        let (s, v) = send(
            &sb,
            M::POST,
            "/api/v1/verifications",
            Some(TEST_KEY),
            Some(body.to_vec()),
        )
        .await;
        assert_eq!((s, code(&v)), (400, "validation_error"));
    }
    let big = json!({"type": "email", "channel": "email", "identifier": "a@b.co", "pad": "x".repeat(11 * 1024)});
    let (s, v) = send(
        &sb,
        M::POST,
        "/api/v1/verifications",
        Some(TEST_KEY),
        Some(serde_json::to_vec(&big).expect("json")),
    )
    .await;
    assert_eq!((s, code(&v)), (400, "validation_error"));

    // Unknown ids, on every id route.
    let ghost = "507f1f77bcf86cd799439011";
    for (method, path) in [
        (M::GET, format!("/api/v1/verifications/{ghost}")),
        (M::POST, format!("/api/v1/verifications/{ghost}/submit")),
        (
            M::POST,
            format!("/api/v1/verifications/{ghost}/test-verify"),
        ),
        (M::GET, format!("/api/v1/verification-requests/{ghost}")),
        (M::DELETE, format!("/api/v1/verification-requests/{ghost}")),
        (M::GET, format!("/api/v1/sessions/{ghost}")),
        (M::GET, format!("/api/v1/proofs/{ghost}/status")),
        (M::POST, format!("/api/v1/proofs/{ghost}/revoke")),
        (M::GET, "/api/v1/verifications/%FF%FE".to_string()),
        (M::GET, "/api/v1/nothing-here".to_string()),
    ] {
        let body = (method == M::POST).then(|| br#"{"challenge_code":"ABCDEF"}"#.to_vec());
        let (s, v) = send(&sb, method.clone(), &path, Some(TEST_KEY), body).await;
        assert_eq!((s, code(&v)), (404, "not_found"), "{method} {path}");
    }

    // Test mode only.
    let (_, created) = send(
        &sb,
        M::POST,
        "/api/v1/verifications",
        Some(LIVE_KEY),
        Some(br#"{"type":"phone","channel":"whatsapp","identifier":"+37069199199"}"#.to_vec()),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_string();
    let (s, v) = send(
        &sb,
        M::POST,
        &format!("/api/v1/verifications/{id}/test-verify"),
        Some(LIVE_KEY),
        None,
    )
    .await;
    assert_eq!((s, code(&v)), (403, "test_mode_required"));
    assert_eq!(
        v["error"]["message"],
        "This endpoint is only available with test API keys (pk_test_*)"
    );
    let (s, v) = send(
        &sb,
        M::POST,
        "/api/v1/proofs/abc/revoke",
        Some(TEST_KEY),
        Some(br#"{"reason":"boredom"}"#.to_vec()),
    )
    .await;
    assert_eq!((s, code(&v)), (400, "validation_error"));
    let (s, v) = send(&sb, M::PUT, "/api/v1/verifications", Some(TEST_KEY), None).await;
    assert_eq!((s, code(&v)), (405, "method_not_allowed"));
    let (s, v) = send(
        &sb,
        M::GET,
        "/api/v1/verifications?limit=1000",
        Some(TEST_KEY),
        None,
    )
    .await;
    assert_eq!((s, code(&v)), (400, "validation_error"));

    // Hosted pages refuse unknown requests without panicking.
    let r = raw()
        .post(format!(
            "{}/hosted/requests/{ghost}/assets/99999999999999999999/complete",
            sb.base_url()
        ))
        .body("identifier=%ZZ&channel=\u{0}")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 404);

    let checked = assert_contract(&sb);
    assert!(checked >= 30, "{checked}");
    sb.shutdown().await;
}

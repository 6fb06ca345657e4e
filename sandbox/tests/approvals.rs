//! Human approvals through the project's own client over loopback: HITL configurations,
//! confirmations approved and denied (test endpoints, the hosted page's plain HTML forms),
//! the timeout, the signed `confirmation.*` webhooks, the approval's proof token checked by the
//! core verifier, approval links, the SSE event stream, verification requests with
//! `action_type: "confirmation"`, and the error shapes.

mod support;

use std::time::Duration;

use proofgate_core::client::{
    ApiError, AssetRequest, ConfirmationQuery, ConfirmationStatus, CreateConfirmation, CreateHitl,
    CreateVerificationRequest, Hitl, HitlChannel, ProofApiClient,
};
use proofgate_core::{
    KeyStore, KeysConfig, RevocationConfig, RevocationStore, Verifier, VerifierConfig,
};
use proofgate_sandbox::SandboxHandle;
use serde_json::Value;
use support::*;

const FORM: &str = "application/x-www-form-urlencoded";

/// An active HITL configuration with a decision window of `timeout` seconds.
async fn active_hitl(api: &ProofApiClient, timeout: u64) -> Hitl {
    let mut create = CreateHitl::new("payouts", vec![HitlChannel::new("browser")]);
    create.timeout_seconds = Some(timeout);
    let created = api.create_hitl(&create).await.expect("create hitl");
    assert_eq!(created.status, "pending");
    let active = api.finalize_hitl(&created.id).await.expect("finalize");
    assert_eq!(active.status, "active");
    active
}

fn confirmation(hitl: &Hitl, message: &str) -> CreateConfirmation {
    CreateConfirmation {
        hitl_id: hitl.id.clone(),
        message: message.into(),
        proof_expiry_days: None,
    }
}

/// The query parameters of an approval link.
fn link_params(url: &str) -> Vec<(String, String)> {
    url::Url::parse(url)
        .expect("approval url")
        .query_pairs()
        .into_owned()
        .collect()
}

fn form_body(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Reads an SSE response until `needle` shows up (or 10 s pass); returns everything read.
async fn read_until(r: &mut reqwest::Response, text: &mut String, needle: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} within 10 s; got {text:?}"))
            .expect("stream readable");
        match chunk {
            Some(c) => text.push_str(&String::from_utf8_lossy(&c)),
            None => panic!("stream ended before {needle:?}; got {text:?}"),
        }
    }
}

#[tokio::test]
async fn confirmation_approved_yields_a_signed_webhook_and_a_verifiable_proof_token() {
    let sb = sandbox().await;
    let receiver = Receiver::start(sb.webhook_secret(), None).await;
    sb.add_webhook_url(&receiver.url);
    let api = client(&sb, TEST_KEY);

    // A configuration must be finalized before it takes confirmations.
    let created = api
        .create_hitl(&CreateHitl::new("ops", vec![HitlChannel::new("telegram")]))
        .await
        .expect("create");
    assert_eq!(created.status, "pending");
    assert_eq!(created.timeout_seconds, Some(300), "the sandbox's default");
    assert_eq!(created.channels[0].kind, "telegram");
    let e = api
        .create_confirmation(&confirmation(&created, "too early"))
        .await
        .expect_err("pending config");
    assert!(matches!(e, ApiError::Validation(_)), "{e:?}");
    let active = api.finalize_hitl(&created.id).await.expect("finalize");
    assert_eq!(active.status, "active");
    let again = api.finalize_hitl(&created.id).await.expect("idempotent");
    assert_eq!(again.status, "active");
    assert_eq!(
        api.get_hitl(&created.id).await.expect("get").status,
        "active"
    );

    let c = api
        .create_confirmation(&confirmation(&active, "Pay 120 EUR to ACME"))
        .await
        .expect("create confirmation");
    assert_eq!(c.status, ConfirmationStatus::Pending);
    assert_eq!(c.hitl_id, active.id);
    assert_eq!(c.message, "Pay 120 EUR to ACME");
    assert_eq!(c.encrypted, Some(false));
    assert!(c.timeout_at.is_some() && c.proof_token.is_none() && c.response.is_none());

    let approved = api
        .test_approve_confirmation(&c.id, Some("ok by me"))
        .await
        .expect("approve");
    assert_eq!(approved.status, ConfirmationStatus::Approved);
    let response = approved.response.clone().expect("response");
    assert_eq!(response.channel, "browser");
    assert_eq!(response.text.as_deref(), Some("ok by me"));
    assert!(approved.resolved_at.is_some());
    let token = approved.proof_token.clone().expect("proof token");
    assert_eq!(api.get_confirmation(&c.id).await.expect("get"), approved);

    // The token: a proof of the sandbox's proof key, bound to the confirmation.
    let (header, claims) = jwt_parts(&token);
    assert_eq!(header["kid"], sb.signing_kid().as_str());
    assert_eq!(claims["iss"], "proof.holdings");
    assert_eq!(claims["sub"], c.id.as_str());
    assert_eq!(claims["type"], "confirmation");
    assert_eq!(claims["channel"], "browser");
    assert_eq!(claims["decision"], "approve");
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 86_400, "proof_expiry_days defaults to 1");
    let keys = KeyStore::new(KeysConfig::new(sb.jwks_url()));
    keys.refresh().await.expect("jwks");
    let verifier = Verifier::new(keys.clone(), VerifierConfig::default());
    let proof = verifier
        .verify(&token)
        .expect("the core verifier accepts it");
    assert_eq!(proof.claims.proof_type.as_deref(), Some("confirmation"));
    assert_eq!(proof.claims.decision, Some(Value::String("approve".into())));
    let mut rc = RevocationConfig::new(sb.base_url());
    rc.list_url = None;
    let status = RevocationStore::new(rc, keys.clone());
    status
        .refresh_status_list(&sb.status_list_url())
        .await
        .expect("status list");
    assert_eq!(status.check(&proof.claims), Ok(()));
    assert!(
        api.validate_proof(&token, None)
            .await
            .expect("validate")
            .valid
    );

    // The signed webhook (the receiver checks the signature) carries the same token.
    let hook = receiver.wait_for("confirmation.approved").await;
    let payload: Value = serde_json::from_slice(&hook.body).expect("json");
    assert_eq!(payload["confirmation_id"], c.id.as_str());
    assert_eq!(payload["hitl_id"], active.id.as_str());
    assert_eq!(payload["status"], "approved");
    assert_eq!(payload["message"], "Pay 120 EUR to ACME");
    assert_eq!(payload["proof_token"], token.as_str());
    assert_eq!(payload["encrypted"], false);
    assert_eq!(payload["response"]["channel"], "browser");
    assert!(payload["resolved_at"].is_string());
    assert_eq!(
        hook.headers
            .get("x-proof-event")
            .and_then(|v| v.to_str().ok()),
        Some("confirmation.approved")
    );

    // Decided once: no second decision, no link.
    let e = api
        .test_deny_confirmation(&c.id, None)
        .await
        .expect_err("already approved");
    assert!(matches!(e, ApiError::Conflict(_)), "{e:?}");
    let e = api
        .confirmation_approval_link(&c.id)
        .await
        .expect_err("no link once decided");
    assert!(matches!(e, ApiError::Conflict(_)), "{e:?}");

    // Revoking the approval's proof flips its slot like any proof's.
    api.revoke_proof(&c.id, proofgate_core::client::RevocationReason::Other)
        .await
        .expect("revoke");
    status
        .refresh_status_list(&sb.status_list_url())
        .await
        .expect("status list");
    assert!(status.check(&proof.claims).is_err());

    // A longer proof lifetime when asked.
    let mut longer = confirmation(&active, "again");
    longer.proof_expiry_days = Some(7);
    let c2 = api.create_confirmation(&longer).await.expect("create");
    let t2 = api
        .test_approve_confirmation(&c2.id, None)
        .await
        .expect("approve")
        .proof_token
        .expect("token");
    let (_, claims) = jwt_parts(&t2);
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 7 * 86_400);
    assert!(assert_contract(&sb) > 0);
}

#[tokio::test]
async fn denied_and_timed_out_confirmations() {
    let sb = sandbox().await;
    let receiver = Receiver::start(sb.webhook_secret(), None).await;
    sb.add_webhook_url(&receiver.url);
    let api = client(&sb, TEST_KEY);
    let hitl = active_hitl(&api, 2).await;
    let other = active_hitl(&api, 600).await;

    let denied = api
        .create_confirmation(&confirmation(&hitl, "delete the prod database"))
        .await
        .expect("create");
    let timing_out = api
        .create_confirmation(&confirmation(&hitl, "nobody answers this"))
        .await
        .expect("create");
    let elsewhere = api
        .create_confirmation(&confirmation(&other, "another config"))
        .await
        .expect("create");

    let d = api
        .test_deny_confirmation(&denied.id, Some("no way"))
        .await
        .expect("deny");
    assert_eq!(d.status, ConfirmationStatus::Denied);
    assert!(d.proof_token.is_none(), "denials carry no token");
    assert!(!d.timed_out());
    assert_eq!(
        d.response.as_ref().expect("response").text.as_deref(),
        Some("no way")
    );
    let hook = receiver.wait_for("confirmation.denied").await;
    assert_eq!(hook.event.status.as_deref(), Some("denied"));

    // Nobody reads the other one: the background sweep times it out and posts its webhook.
    let mut timeout_hook = None;
    for _ in 0..100 {
        timeout_hook = receiver
            .received
            .lock()
            .expect("lock")
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).expect("json"))
            .find(|p| p["confirmation_id"] == timing_out.id.as_str());
        if timeout_hook.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = timeout_hook.expect("a webhook for the timed-out confirmation");
    assert_eq!(p["event"], "confirmation.denied");
    assert_eq!(p["status"], "denied");
    assert_eq!(p["response"]["channel"], "system");
    assert_eq!(p["response"]["text"], "timeout");
    assert!(p["proof_token"].is_null());

    let t = api.get_confirmation(&timing_out.id).await.expect("get");
    assert_eq!(t.status, ConfirmationStatus::Denied);
    assert!(t.timed_out());
    assert_eq!(
        t.resolved_at, t.timeout_at,
        "resolved when the window closed"
    );

    // The list's filters: `expired` means timed out; `denied` includes both.
    let ids = |page: proofgate_core::client::ListPage<proofgate_core::client::Confirmation>| {
        page.data.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    let q = |status: Option<&str>, hitl: Option<&str>| ConfirmationQuery {
        status: status.map(str::to_string),
        hitl_id: hitl.map(str::to_string),
        ..ConfirmationQuery::default()
    };
    let expired = ids(api
        .list_confirmations(&q(Some("expired"), None))
        .await
        .expect("list"));
    assert_eq!(expired, vec![timing_out.id.clone()]);
    let denied_ids = ids(api
        .list_confirmations(&q(Some("denied"), None))
        .await
        .expect("list"));
    assert_eq!(denied_ids, vec![timing_out.id.clone(), denied.id.clone()]);
    let pending = ids(api
        .list_confirmations(&q(Some("pending"), None))
        .await
        .expect("list"));
    assert_eq!(pending, vec![elsewhere.id.clone()]);
    let by_hitl = ids(api
        .list_confirmations(&q(None, Some(&hitl.id)))
        .await
        .expect("list"));
    assert_eq!(by_hitl, vec![timing_out.id.clone(), denied.id.clone()]);
    let today = ConfirmationQuery {
        start_date: Some(chrono::Utc::now().format("%Y-%m-%d").to_string()),
        limit: Some(2),
        ..ConfirmationQuery::default()
    };
    let first = api.list_confirmations(&today).await.expect("list");
    assert_eq!(first.data.len(), 2);
    assert_eq!(first.pagination.total, Some(3));
    assert!(first.pagination.has_more);
    let future = ConfirmationQuery {
        start_date: Some("2999-01-01".into()),
        ..ConfirmationQuery::default()
    };
    assert!(api
        .list_confirmations(&future)
        .await
        .expect("list")
        .data
        .is_empty());

    // A timed-out confirmation cannot be approved afterwards.
    let e = api
        .test_approve_confirmation(&timing_out.id, None)
        .await
        .expect_err("too late");
    assert!(matches!(e, ApiError::Conflict(_)), "{e:?}");
}

#[tokio::test]
async fn event_stream_ends_with_the_terminal_event() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let hitl = active_hitl(&api, 600).await;
    let short = active_hitl(&api, 1).await;
    let c = api
        .create_confirmation(&confirmation(&hitl, "stream me"))
        .await
        .expect("create");
    let url = |id: &str| format!("{}/api/v1/confirmations/{id}/events", sb.base_url());

    let mut r = raw()
        .get(url(&c.id))
        .bearer_auth(TEST_KEY)
        .send()
        .await
        .expect("events");
    assert_eq!(r.status(), 200);
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream")));
    let mut text = String::new();
    read_until(&mut r, &mut text, "event: pending").await;
    api.test_approve_confirmation(&c.id, None)
        .await
        .expect("approve");
    read_until(&mut r, &mut text, "event: approved").await;
    assert!(text.contains("\"proof_token\":\"ey"), "{text}");
    // Terminal: the stream ends.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(c) = r.chunk().await.expect("readable") {
            text.push_str(&String::from_utf8_lossy(&c));
        }
    })
    .await;
    assert!(end.is_ok(), "the stream ends after the terminal event");

    // A timeout arrives as `denied` with the system response; a decided one answers at once.
    let t = api
        .create_confirmation(&confirmation(&short, "wait for it"))
        .await
        .expect("create");
    let mut r = raw()
        .get(url(&t.id))
        .bearer_auth(TEST_KEY)
        .send()
        .await
        .expect("events");
    let mut text = String::new();
    read_until(&mut r, &mut text, "event: denied").await;
    read_until(&mut r, &mut text, "\"text\":\"timeout\"").await;
    let mut r = raw()
        .get(url(&c.id))
        .bearer_auth(TEST_KEY)
        .send()
        .await
        .expect("events");
    let mut text = String::new();
    read_until(&mut r, &mut text, "event: approved").await;

    // Unknown: 404; no key: 401.
    let r = raw()
        .get(url("0123456789abcdef01234567"))
        .bearer_auth(TEST_KEY)
        .send()
        .await
        .expect("events");
    assert_eq!(r.status(), 404);
    let r = raw().get(url(&c.id)).send().await.expect("events");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn hosted_page_approves_and_denies_through_plain_form_posts() {
    let sb = sandbox().await;
    let receiver = Receiver::start(sb.webhook_secret(), None).await;
    sb.add_webhook_url(&receiver.url);
    let api = client(&sb, TEST_KEY);
    let hitl = active_hitl(&api, 600).await;
    let c = api
        .create_confirmation(&confirmation(
            &hitl,
            "Pay <b>120 €</b> to <script>alert(1)</script> & O'Brien",
        ))
        .await
        .expect("create");
    let link = api
        .confirmation_approval_link(&c.id)
        .await
        .expect("link")
        .approval_url;
    assert!(link.starts_with(&format!("{}/hosted/confirmations/{}", sb.base_url(), c.id)));
    let fresh = api.confirmation_approval_link(&c.id).await.expect("link");
    assert_ne!(fresh.approval_url, link, "each link is fresh");

    let page = raw().get(&link).send().await.expect("page");
    assert_eq!(page.status(), 200);
    for (h, v) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(
            page.headers().get(h).and_then(|x| x.to_str().ok()),
            Some(v),
            "{h}"
        );
    }
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Pay &lt;b&gt;120 €&lt;/b&gt; to &lt;script&gt;alert(1)&lt;/script&gt; &amp; O&#39;Brien"),
        "{html}"
    );
    assert!(
        !html.contains("<script>") && !html.contains("<b>"),
        "{html}"
    );
    assert!(html.contains(&format!(
        "action=\"/hosted/confirmations/{}/approve\"",
        c.id
    )));
    assert!(html.contains(&format!("action=\"/hosted/confirmations/{}/deny\"", c.id)));

    // A forged or tampered form is refused: the link's HMAC is the CSRF token.
    let approve = format!("{}/hosted/confirmations/{}/approve", sb.base_url(), c.id);
    let params = link_params(&link);
    let mut tampered = params.clone();
    for (k, v) in &mut tampered {
        if k == "e" {
            *v = (v.parse::<i64>().expect("exp") + 1).to_string();
        }
    }
    for body in [String::new(), form_body(&tampered)] {
        let r = raw()
            .post(&approve)
            .header("content-type", FORM)
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 403);
    }
    let bad_page = raw()
        .get(link.replace("&s=", "&s=00"))
        .send()
        .await
        .expect("page");
    assert_eq!(bad_page.status(), 403);
    // Another confirmation's link does not open this one.
    let other = api
        .create_confirmation(&confirmation(&hitl, "the other one"))
        .await
        .expect("create");
    let other_link = api
        .confirmation_approval_link(&other.id)
        .await
        .expect("link")
        .approval_url;
    let mut other_params = link_params(&other_link);
    let r = raw()
        .post(&approve)
        .header("content-type", FORM)
        .body(form_body(&other_params))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    assert_eq!(
        api.get_confirmation(&c.id).await.expect("get").status,
        ConfirmationStatus::Pending
    );

    // The real click: the page's hidden fields, posted as a form.
    let mut fields = params.clone();
    fields.push(("text".into(), "fine".into()));
    let done = raw()
        .post(&approve)
        .header("content-type", FORM)
        .body(form_body(&fields))
        .send()
        .await
        .expect("post");
    assert_eq!(done.status(), 200);
    assert!(done
        .text()
        .await
        .expect("html")
        .contains("<strong id=\"status\">approved</strong>"));
    let approved = api.get_confirmation(&c.id).await.expect("get");
    assert_eq!(approved.status, ConfirmationStatus::Approved);
    let response = approved.response.expect("response");
    assert_eq!(response.channel, "browser");
    assert_eq!(response.text.as_deref(), Some("fine"));
    let (_, claims) = jwt_parts(&approved.proof_token.expect("token"));
    assert_eq!(claims["channel"], "browser");
    receiver.wait_for("confirmation.approved").await;
    // Clicking again changes nothing.
    let again = raw()
        .post(&approve)
        .header("content-type", FORM)
        .body(form_body(&params))
        .send()
        .await
        .expect("post");
    assert_eq!(again.status(), 409);
    let after = raw().get(&link).send().await.expect("page");
    assert!(after.text().await.expect("html").contains("Approved"));

    // Deny through the other form.
    other_params.retain(|(k, _)| k != "text");
    let r = raw()
        .post(format!(
            "{}/hosted/confirmations/{}/deny",
            sb.base_url(),
            other.id
        ))
        .header("content-type", FORM)
        .body(form_body(&other_params))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    assert_eq!(
        api.get_confirmation(&other.id).await.expect("get").status,
        ConfirmationStatus::Denied
    );
    receiver.wait_for("confirmation.denied").await;

    // An encrypted message is shown as such, never decoded.
    let envelope = serde_json::json!({
        "v": 1, "alg": "RSA-OAEP-256+AES-256-GCM", "ek": "ZWs", "iv": "aXY",
        "ct": "Y2lwaGVydGV4dA", "tag": "dGFn", "kid": "00",
    })
    .to_string();
    let secret = api
        .create_confirmation(&confirmation(&hitl, &envelope))
        .await
        .expect("create");
    assert_eq!(secret.encrypted, Some(true));
    assert_eq!(secret.message, envelope, "stored as sent");
    let link = sb.approval_url(&secret.id).expect("link");
    let html = raw()
        .get(&link)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains("Encrypted message"), "{html}");
    assert!(!html.contains("Y2lwaGVydGV4dA"), "{html}");
}

#[tokio::test]
async fn confirmation_errors_have_the_contract_shapes() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let hitl = active_hitl(&api, 600).await;
    let c = api
        .create_confirmation(&confirmation(&hitl, "x"))
        .await
        .expect("create");

    let post = |path: String, body: &'static str| {
        let url = format!("{}/api/v1/{path}", sb.base_url());
        async move {
            let r = raw()
                .post(url)
                .bearer_auth(TEST_KEY)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("post");
            let status = r.status().as_u16();
            let body: Value = r.json().await.expect("json");
            (status, body)
        }
    };
    for (path, body, field) in [
        (
            "hitl".to_string(),
            r#"{"channels":[{"type":"browser"}]}"#,
            "name",
        ),
        ("hitl".to_string(), r#"{"name":"x"}"#, "channels"),
        (
            "hitl".to_string(),
            r#"{"name":"x","channels":[]}"#,
            "channels",
        ),
        (
            "hitl".to_string(),
            r#"{"name":"x","channels":[{"type":"pigeon"}]}"#,
            "channels.0.type",
        ),
        (
            "hitl".to_string(),
            r#"{"name":"x","channels":[{"type":"browser"}],"timeout_seconds":0}"#,
            "timeout_seconds",
        ),
        ("confirmations".to_string(), r#"{"message":"x"}"#, "hitl_id"),
        ("confirmations".to_string(), r#"{"hitl_id":"h"}"#, "message"),
        (
            "confirmations".to_string(),
            r#"{"hitl_id":"h","message":""}"#,
            "message",
        ),
        (
            "confirmations".to_string(),
            r#"{"hitl_id":"h","message":"x","proof_expiry_days":0}"#,
            "proof_expiry_days",
        ),
        (
            format!("confirmations/{}/test-approve", c.id),
            r#"{"channel":"fax"}"#,
            "channel",
        ),
    ] {
        let (status, body) = post(path.clone(), body).await;
        assert_eq!(status, 400, "{path} {body}");
        assert_eq!(body["error"]["code"], "validation_error", "{path} {body}");
        assert_eq!(body["error"]["details"][0]["field"], field, "{path} {body}");
        assert!(body["error"]["request_id"].is_string());
    }
    let (status, body) = post("confirmations".into(), "[1]").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("validation_error"))
    );

    // Unknown ids: 404 `not_found`.
    let (status, body) = post(
        "confirmations".into(),
        r#"{"hitl_id":"0123456789abcdef01234567","message":"x"}"#,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let unknown = "0123456789abcdef01234567";
    for e in [
        api.get_hitl(unknown).await.map(|_| ()).expect_err("hitl"),
        api.finalize_hitl(unknown)
            .await
            .map(|_| ())
            .expect_err("finalize"),
        api.get_confirmation(unknown)
            .await
            .map(|_| ())
            .expect_err("get"),
        api.confirmation_approval_link(unknown)
            .await
            .map(|_| ())
            .expect_err("link"),
        api.test_approve_confirmation(unknown, None)
            .await
            .map(|_| ())
            .expect_err("approve"),
    ] {
        assert!(matches!(e, ApiError::NotFound(_)), "{e:?}");
    }
    for bad in [
        ConfirmationQuery {
            status: Some("maybe".into()),
            ..Default::default()
        },
        ConfirmationQuery {
            start_date: Some("yesterday".into()),
            ..Default::default()
        },
        ConfirmationQuery {
            limit: Some(0),
            ..Default::default()
        },
    ] {
        let e = api.list_confirmations(&bad).await.expect_err("bad filter");
        assert!(matches!(e, ApiError::Validation(_)), "{e:?}");
    }

    // The test endpoints need a test key; no key is a 401.
    let live = client(&sb, LIVE_KEY);
    let e = live
        .test_approve_confirmation(&c.id, None)
        .await
        .expect_err("live key");
    assert!(matches!(e, ApiError::Forbidden(_)), "{e:?}");
    assert_eq!(e.code(), Some("test_mode_required"));
    let r = raw()
        .post(format!("{}/api/v1/confirmations", sb.base_url()))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    assert_eq!(
        api.get_confirmation(&c.id).await.expect("get").status,
        ConfirmationStatus::Pending
    );
}

async fn webhook_of(receiver: &Receiver, event: &str, request_id: &str) -> Value {
    for _ in 0..200 {
        let found = receiver
            .received
            .lock()
            .expect("lock")
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).expect("json"))
            .find(|p| p["event"] == event && p["request_id"] == request_id);
        if let Some(p) = found {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {event} for {request_id}");
}

#[tokio::test]
async fn a_confirmation_verification_request_yields_confirmation_approved() {
    let sb: SandboxHandle = sandbox().await;
    let receiver = Receiver::start(sb.webhook_secret(), None).await;
    sb.add_webhook_url(&receiver.url);
    let body = serde_json::json!({
        "assets": [{"type": "email", "identifier": "cfo@example.com"}],
        "action_type": "confirmation",
        "action_context": {
            "title": "Approve payout", "description": "Quarterly bonus",
            "amount": 1200.5, "currency": "EUR", "entity": "<ACME> Ltd",
        },
    });
    let r = raw()
        .post(format!("{}/api/v1/verification-requests", sb.base_url()))
        .bearer_auth(TEST_KEY)
        .json(&body)
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.expect("json");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["action_type"], "confirmation");
    let page = raw()
        .get(created["verification_url"].as_str().expect("url"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("1200.5 EUR") && page.contains("&lt;ACME&gt; Ltd"),
        "{page}"
    );
    sb.complete_request(&id).expect("complete");

    let p = webhook_of(&receiver, "confirmation.approved", &id).await;
    assert_eq!(p["action_type"], "confirmation");
    assert_eq!(p["status"], "completed");
    assert_eq!(p["action_context"]["amount"], 1200.5);
    assert_eq!(p["proofs"][0]["type"], "email");
    assert!(p["proofs"][0]["proof_token"].is_string());
    webhook_of(&receiver, "verification_request.completed", &id).await;

    // The typed client sends it too.
    let api = client(&sb, TEST_KEY);
    let mut req = CreateVerificationRequest::new(vec![AssetRequest::new("email")]);
    req.action_type = Some(proofgate_core::client::ActionType::Confirmation);
    let typed = api.create_verification_request(&req).await.expect("typed");
    assert_eq!(typed.action_type.as_deref(), Some("confirmation"));
    // Anything else is still refused.
    let r = raw()
        .post(format!("{}/api/v1/verification-requests", sb.base_url()))
        .bearer_auth(TEST_KEY)
        .json(&serde_json::json!({"assets": [{"type": "email"}], "action_type": "approve"}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 400);
    assert!(assert_contract(&sb) > 0);
}

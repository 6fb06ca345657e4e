//! The resources the official SDKs expose beyond the step-up flow, through the project's own
//! client over loopback: the phone-first session (created without a phone, as the SDKs send it,
//! and with one, as `openapi.json` describes it), the webhook deliveries the sandbox really made
//! (list with its filters, stats, one, retry), `GET /api/v1` and `GET /health`. Every JSON body
//! is checked against `openapi.json`.

mod support;

use std::time::Duration;

use proofgate_core::client::{
    ApiError, AssetRequest, CreateSession, CreateVerificationRequest, DeliveryQuery,
};
use proofgate_sandbox::{SandboxConfig, SandboxHandle};
use support::*;

const FORM: &str = "application/x-www-form-urlencoded";

/// Waits (up to 10 s) until `cond` holds for the sandbox's recorded deliveries.
async fn settle(sb: &SandboxHandle, what: &str, cond: impl Fn(&SandboxHandle) -> bool) {
    for _ in 0..200 {
        if cond(sb) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never settled: {what}");
}

#[tokio::test]
async fn phone_first_session_learns_the_phone_when_completed() {
    let sb = sandbox().await;
    let receiver = Receiver::start(sb.webhook_secret(), None).await;
    sb.add_webhook_url(&receiver.url);
    let api = client(&sb, TEST_KEY);

    // What the SDK sends: a channel, no phone.
    let created = api
        .create_session(&CreateSession {
            channel: Some("telegram".into()),
            ..CreateSession::default()
        })
        .await
        .expect("a session without a phone");
    assert_eq!(created.status, "pending");
    assert_eq!(created.channel.as_deref(), Some("telegram"));
    assert!(created.phone_number.is_none());
    assert!(created.proof.is_none());
    let link = created.deep_link.clone().expect("deep link");
    assert!(link.starts_with(sb.base_url()), "{link}");
    assert_eq!(created.qr_text.as_deref(), Some(link.as_str()));
    assert!(created.instructions.is_some() && created.expires_at.is_some());
    let code = created
        .challenge
        .as_ref()
        .and_then(|c| c.code.clone())
        .expect("start code");
    assert_eq!(code.len(), 6);

    let polled = api.get_session(&created.id).await.expect("retrieve");
    assert_eq!(polled.status, "pending");
    assert!(
        polled.challenge.is_none(),
        "the code is shown only on creation"
    );

    // The person opens the link and shares their number in the chat (the sandbox's stand-in).
    let page = raw().get(&link).send().await.expect("bot page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("page").contains("name=\"phone\""));
    let done = raw()
        .post(format!("{link}/complete"))
        .header("content-type", FORM)
        .body("phone=%2B44+7700+900123")
        .send()
        .await
        .expect("complete");
    assert_eq!(done.status(), 200);

    let verified = api.get_session(&created.id).await.expect("retrieve");
    assert_eq!(verified.status, "verified");
    assert_eq!(verified.phone_number.as_deref(), Some("+447700900123"));
    assert!(verified.verified_at.is_some());
    let token = verified.proof.as_ref().expect("proof").token.clone();
    let proof_id = verified.verification_id.clone().expect("verification id");
    let checked = api
        .validate_proof(&token, Some("+447700900123"))
        .await
        .expect("validate");
    assert!(checked.valid, "{checked:?}");
    let (_, claims) = jwt_parts(&token);
    assert_eq!(claims["sub"], proof_id.as_str());
    assert_eq!(claims["type"], "phone");
    assert_eq!(claims["channel"], "telegram");
    let hook = receiver.wait_for("verification.completed").await;
    assert_eq!(hook.event.event, "verification.completed");

    // Completing again changes nothing; an unknown session is 404.
    let again = raw()
        .post(format!("{link}/complete"))
        .header("content-type", FORM)
        .body("phone=%2B15550100")
        .send()
        .await
        .expect("again");
    assert_eq!(again.status(), 200);
    let same = api.get_session(&created.id).await.expect("retrieve");
    assert_eq!(same.phone_number.as_deref(), Some("+447700900123"));
    let e = api
        .get_session("0123456789abcdef01234567")
        .await
        .expect_err("unknown");
    assert!(matches!(e, ApiError::NotFound(_)), "{e:?}");

    // A phone-first session with something that is not a phone is refused on the page.
    let other = api
        .create_session(&CreateSession::default())
        .await
        .expect("defaults: whatsapp");
    assert_eq!(other.channel.as_deref(), Some("whatsapp"));
    let refused = raw()
        .post(format!("{}/complete", other.deep_link.expect("link")))
        .header("content-type", FORM)
        .body("phone=not+a+phone")
        .send()
        .await
        .expect("refused");
    assert_eq!(refused.status(), 409);
    assert!(sb.complete_session(&other.id, None).is_some());
    assert_eq!(
        api.get_session(&other.id).await.expect("get").status,
        "verified"
    );

    // The `openapi.json` form, with the phone up front, and a bad channel.
    let with_phone = api
        .create_session(&CreateSession {
            phone: Some("+37069199199".into()),
            ..CreateSession::default()
        })
        .await
        .expect("with a phone");
    assert_eq!(with_phone.phone_number.as_deref(), Some("+37069199199"));
    let e = api
        .create_session(&CreateSession {
            channel: Some("pigeon".into()),
            ..CreateSession::default()
        })
        .await
        .expect_err("bad channel");
    assert!(matches!(e, ApiError::Validation(_)), "{e:?}");

    assert!(assert_contract(&sb) >= 8);
    sb.shutdown().await;
}

#[tokio::test]
async fn webhook_deliveries_are_listed_counted_and_retried() {
    let mut config = SandboxConfig::default();
    config.webhook_attempts = 2;
    let sb = sandbox_with(config).await;
    let receiver = Receiver::start(sb.webhook_secret(), None).await;
    sb.add_webhook_url(&receiver.url);
    let api = client(&sb, TEST_KEY);

    // No deliveries yet.
    let stats = api.webhook_delivery_stats().await.expect("stats");
    assert_eq!((stats.total, stats.success_rate), (0, 0.0));
    let empty = api
        .list_webhook_deliveries(&DeliveryQuery::default())
        .await
        .expect("list");
    assert!(empty.data.is_empty() && !empty.pagination.has_more);

    // One delivered event about a verification request...
    let request = api
        .create_verification_request(&CreateVerificationRequest::new(vec![AssetRequest::new(
            "email",
        )]))
        .await
        .expect("request");
    sb.complete_request(&request.id).expect("completed");
    settle(&sb, "the request's webhook", |sb| {
        sb.webhook_deliveries()
            .iter()
            .any(|d| d.event == "verification_request.completed" && d.status == "delivered")
    })
    .await;
    // ...and one the receiver refuses on every attempt.
    *receiver.fail_first.lock().expect("lock") = 2;
    let session = api
        .create_session(&CreateSession::default())
        .await
        .expect("session");
    sb.complete_session(&session.id, None).expect("completed");
    settle(&sb, "the failed delivery", |sb| {
        sb.webhook_deliveries().iter().any(|d| d.status == "failed")
    })
    .await;

    let all = api
        .list_webhook_deliveries(&DeliveryQuery::default())
        .await
        .expect("list");
    assert!(all.data.len() >= 2, "{:?}", all.data);
    assert_eq!(all.pagination.total, Some(all.data.len() as u64));
    let failed = api
        .list_webhook_deliveries(&DeliveryQuery {
            status: Some("failed".into()),
            ..DeliveryQuery::default()
        })
        .await
        .expect("failed ones");
    assert_eq!(failed.data.len(), 1, "{:?}", failed.data);
    let f = &failed.data[0];
    assert_eq!(f.event_type, "verification.completed");
    assert_eq!((f.attempts, f.max_attempts), (2, 2));
    assert_eq!(f.response_status, Some(500));
    assert!(f.error_message.is_some() && f.last_attempt_at.is_some());
    assert!(f.payload.is_none(), "a list item has no payload");

    let about = api
        .list_webhook_deliveries(&DeliveryQuery {
            verification_request_id: Some(request.id.clone()),
            ..DeliveryQuery::default()
        })
        .await
        .expect("by request");
    assert!(!about.data.is_empty());
    assert!(about
        .data
        .iter()
        .all(
            |d| d.verification_request_id.as_deref() == Some(request.id.as_str())
                && d.status == "delivered"
                && d.delivered_at.is_some()
        ));
    let by_event = api
        .list_webhook_deliveries(&DeliveryQuery {
            event_type: Some("verification_request.completed".into()),
            limit: Some(1),
            page: Some(1),
            ..DeliveryQuery::default()
        })
        .await
        .expect("by event");
    assert_eq!(by_event.data.len(), 1);
    assert_eq!(by_event.pagination.limit, Some(1));

    let stats = api.webhook_delivery_stats().await.expect("stats");
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.total, stats.delivered + stats.failed + stats.pending);
    assert_eq!(stats.recent_failures_24h, Some(1));
    assert!(stats.success_rate > 0.0 && stats.success_rate < 100.0);

    let detail = api.get_webhook_delivery(&f.id).await.expect("one");
    assert_eq!(
        detail.payload.as_ref().and_then(|p| p["event"].as_str()),
        Some("verification.completed")
    );
    assert!(detail.response_body.is_some());

    // Retry: the receiver now accepts, and the delivery lands.
    let retried = api.retry_webhook_delivery(&f.id).await.expect("retry");
    assert!(retried.success);
    assert_eq!(retried.delivery_id.as_deref(), Some(f.id.as_str()));
    assert_eq!(
        retried.delivery.as_ref().map(|d| d.status.as_str()),
        Some("pending")
    );
    settle(&sb, "the retried delivery", |sb| {
        sb.webhook_deliveries()
            .iter()
            .any(|d| d.id == f.id && d.status == "delivered")
    })
    .await;
    let landed = api.get_webhook_delivery(&f.id).await.expect("one");
    assert_eq!((landed.attempts, landed.response_status), (3, Some(200)));
    assert!(landed.error_message.is_none());

    // What cannot be done.
    let e = api
        .retry_webhook_delivery(&f.id)
        .await
        .expect_err("delivered already");
    assert!(matches!(e, ApiError::Validation(_)), "{e:?}");
    let e = api
        .get_webhook_delivery("0123456789abcdef01234567")
        .await
        .expect_err("unknown");
    assert!(matches!(e, ApiError::NotFound(_)), "{e:?}");
    let e = api
        .retry_webhook_delivery("0123456789abcdef01234567")
        .await
        .expect_err("unknown");
    assert!(matches!(e, ApiError::NotFound(_)), "{e:?}");
    for bad in [
        DeliveryQuery {
            status: Some("lost".into()),
            ..DeliveryQuery::default()
        },
        DeliveryQuery {
            limit: Some(0),
            ..DeliveryQuery::default()
        },
        DeliveryQuery {
            limit: Some(101),
            ..DeliveryQuery::default()
        },
    ] {
        let e = api
            .list_webhook_deliveries(&bad)
            .await
            .expect_err("refused");
        assert!(matches!(e, ApiError::Validation(_)), "{bad:?}: {e:?}");
    }
    let http = raw();
    for query in ["page=-1", "limit=abc", "event_type=%00%ff"] {
        let r = http
            .get(format!(
                "{}/api/v1/webhook-deliveries?{query}",
                sb.base_url()
            ))
            .bearer_auth(TEST_KEY)
            .send()
            .await
            .expect("send");
        assert!(
            r.status() == 400 || r.status() == 200,
            "{query}: {}",
            r.status()
        );
    }
    let r = http
        .get(format!("{}/api/v1/webhook-deliveries/stats", sb.base_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401, "the key is required");

    assert!(assert_contract(&sb) >= 10);
    sb.shutdown().await;
}

#[tokio::test]
async fn api_info_and_health_as_documented() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let info = api.api_info().await.expect("api info");
    assert_eq!(info.version, "1.0.0");
    assert!(!info.name.is_empty() && !info.description.is_empty());
    assert!(info.links.is_some());
    let health = api.health().await.expect("health");
    assert_eq!(health.status, "healthy");
    assert!(health.timestamp.is_some());
    let anonymous = raw()
        .get(format!("{}/api/v1", sb.base_url()))
        .send()
        .await
        .expect("no key needed");
    assert_eq!(anonymous.status(), 200);
    assert!(assert_contract(&sb) >= 3);
    sb.shutdown().await;
}

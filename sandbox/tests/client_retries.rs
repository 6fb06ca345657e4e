//! The client's retry policy against the sandbox's failure switch: 429 with `Retry-After`, 503,
//! a hang past the client's timeout, and what is never retried.

mod support;

use std::time::{Duration, Instant};

use proofgate_core::client::{ApiError, CreateVerification, ProofApiClient};
use proofgate_sandbox::{Failure, FailureRule, SandboxConfig};
use support::*;

const GET_ONE: &str = "/api/v1/verifications/{id}";

async fn one(api: &ProofApiClient) -> String {
    api.create_verification(&CreateVerification::new(
        "email",
        "email",
        "retry@example.com",
    ))
    .await
    .expect("create")
    .id
}

#[tokio::test]
async fn server_errors_are_retried_twice() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let id = one(&api).await;

    sb.inject(FailureRule::new(GET_ONE, Failure::Status(503)).times(2));
    api.get_verification(&id)
        .await
        .expect("third attempt succeeds");
    assert_eq!(sb.hits(GET_ONE), 3);

    sb.inject(FailureRule::new(GET_ONE, Failure::Status(503)));
    let e = api.get_verification(&id).await.expect_err("always 503");
    assert!(matches!(e, ApiError::Server(_)), "{e:?}");
    assert_eq!(e.status(), Some(503));
    assert!(e.request_id().is_some_and(|r| r.starts_with("req_")));
    assert_eq!(sb.hits(GET_ONE), 6, "1 try + 2 retries");
    sb.clear_failures();

    // With no retries configured, one attempt only.
    sb.inject(FailureRule::new(GET_ONE, Failure::Status(500)).times(1));
    let strict = ProofApiClient::with_config(sb.base_url(), TEST_KEY, fast().max_retries(0))
        .expect("client");
    assert!(matches!(
        strict.get_verification(&id).await,
        Err(ApiError::Server(_))
    ));
    assert_eq!(sb.hits(GET_ONE), 7);

    assert_contract(&sb);
    sb.shutdown().await;
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let id = one(&api).await;

    sb.inject(FailureRule::new(GET_ONE, Failure::RateLimited { retry_after: 1 }).times(1));
    let started = Instant::now();
    api.get_verification(&id)
        .await
        .expect("succeeds after waiting");
    // Retry-After (1 s) was waited, not the 20 ms backoff.
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(sb.hits(GET_ONE), 2);

    // A Retry-After beyond the client's limit ends the call at once, typed.
    sb.inject(FailureRule::new(
        GET_ONE,
        Failure::RateLimited { retry_after: 120 },
    ));
    let e = api.get_verification(&id).await.expect_err("limited");
    match &e {
        ApiError::RateLimited { retry_after, error } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(120)));
            assert_eq!(error.code, "rate_limited");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sb.hits(GET_ONE), 3);
    sb.clear_failures();

    assert_contract(&sb);
    sb.shutdown().await;
}

#[tokio::test]
async fn the_real_per_key_limit() {
    let mut config = SandboxConfig::default();
    config.rate_limit_per_minute = Some(3);
    let sb = sandbox_with(config).await;
    let http = raw();
    let url = format!("{}/api/v1/verifications", sb.base_url());
    for remaining in [2, 1, 0] {
        let r = http
            .get(&url)
            .bearer_auth(TEST_KEY)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        assert_eq!(
            r.headers()["x-ratelimit-remaining"],
            remaining.to_string().as_str()
        );
        assert!(r.headers().contains_key("x-ratelimit-reset"));
    }
    let r = http
        .get(&url)
        .bearer_auth(TEST_KEY)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 429);
    let after: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&after));
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another key has its own budget.
    let r = http
        .get(&url)
        .bearer_auth("pk_test_other")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    // The client reports it typed (the wait exceeds what this client accepts).
    let api = proofgate_core::client::ProofApiClient::with_config(
        sb.base_url(),
        TEST_KEY,
        fast().max_retry_after(Duration::ZERO),
    )
    .expect("client");
    let e = api
        .list_verifications(&Default::default())
        .await
        .expect_err("limited");
    assert!(
        matches!(
            e,
            ApiError::RateLimited {
                retry_after: Some(_),
                ..
            }
        ),
        "{e:?}"
    );

    assert_contract(&sb);
    sb.shutdown().await;
}

#[tokio::test]
async fn hangs_time_out_and_are_retried() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let id = one(&api).await;
    let impatient = ProofApiClient::with_config(
        sb.base_url(),
        TEST_KEY,
        fast().timeout(Duration::from_millis(300)),
    )
    .expect("client");

    sb.inject(FailureRule::new(GET_ONE, Failure::Hang(Duration::from_secs(5))).times(1));
    impatient
        .get_verification(&id)
        .await
        .expect("the retry succeeds");
    assert_eq!(sb.hits(GET_ONE), 2);

    sb.inject(FailureRule::new(
        GET_ONE,
        Failure::Hang(Duration::from_secs(5)),
    ));
    let e = impatient
        .get_verification(&id)
        .await
        .expect_err("always hangs");
    assert!(matches!(e, ApiError::Timeout), "{e:?}");
    assert!(e.is_retryable());
    assert_eq!(sb.hits(GET_ONE), 5);
    sb.clear_failures();
    sb.shutdown().await;
}

#[tokio::test]
async fn client_errors_are_not_retried_and_network_errors_are() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let e = api
        .get_verification("507f1f77bcf86cd799439011")
        .await
        .expect_err("unknown");
    assert!(matches!(e, ApiError::NotFound(_)), "{e:?}");
    assert_eq!(e.code(), Some("not_found"));
    assert_eq!(sb.hits(GET_ONE), 1);

    let nobody = client(&sb, "pk_test_x");
    let e = nobody.test_verify("nope").await.expect_err("unknown");
    assert!(matches!(e, ApiError::NotFound(_)));

    let base = sb.base_url().to_string();
    sb.shutdown().await;
    let gone = ProofApiClient::with_config(&base, TEST_KEY, fast()).expect("client");
    let e = gone
        .get_verification("x")
        .await
        .expect_err("connection refused");
    assert!(matches!(e, ApiError::Network { .. }), "{e:?}");
    assert!(
        !e.to_string().contains("sandbox_tests"),
        "the key never appears: {e}"
    );
}

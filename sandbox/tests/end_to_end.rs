//! End to end over loopback HTTP with the project's own client and the core verifier:
//! create → test-verify → the token verifies against the sandbox's JWKS; revoke → denied after
//! the next revocation refresh, and at once through the signed webhook. Every JSON body the
//! sandbox returned is checked against `openapi.json`.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use proofgate_core::client::{
    ApiError, AssetRequest, CreateSession, CreateVerification, CreateVerificationRequest,
    ListQuery, RequestStatus, RevocationReason,
};
use proofgate_core::{
    KeyStore, KeysConfig, Reason, RevocationConfig, RevocationStore, Verifier, VerifierConfig,
};
use proofgate_sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use support::*;

async fn verifier(sb: &SandboxHandle) -> (Arc<KeyStore>, Verifier) {
    let keys = KeyStore::new(KeysConfig::new(sb.jwks_url()));
    keys.refresh().await.expect("JWKS fetch");
    let verifier = Verifier::new(keys.clone(), VerifierConfig::default());
    (keys, verifier)
}

fn store(sb: &SandboxHandle, keys: &Arc<KeyStore>, list: bool) -> Arc<RevocationStore> {
    let mut config = RevocationConfig::new(sb.base_url());
    if list {
        config.require_signature = true;
    } else {
        config.list_url = None;
    }
    RevocationStore::new(config, keys.clone())
}

#[tokio::test]
async fn test_verified_token_passes_the_core_verifier_and_revocation_lands() {
    let sb = sandbox().await;
    let (keys, verifier) = verifier(&sb).await;
    // Three consumers of revocation data: one polling the list, one polling the status list
    // only, one fed by the signed webhook.
    let polling = store(&sb, &keys, true);
    let status_only = store(&sb, &keys, false);
    let pushed = store(&sb, &keys, true);
    let receiver = Receiver::start(sb.webhook_secret(), Some(pushed.clone())).await;
    sb.add_webhook_url(&receiver.url);
    let api = client(&sb, TEST_KEY);

    let created = api
        .create_verification(&CreateVerification::new(
            "phone",
            "telegram",
            "+370 691 99199",
        ))
        .await
        .expect("create");
    assert_eq!(created.status, "pending");
    assert!(created
        .challenge
        .as_ref()
        .and_then(|c| c.code.as_ref())
        .is_some());
    let verified = api.test_verify(&created.id).await.expect("test-verify");
    assert_eq!(verified.status, "verified");
    assert_eq!(verified.test_mode, Some(true));
    let token = verified.token().expect("token").to_string();

    // Exactly the contract's claims, plus the status-list slot.
    let (header, payload) = jwt_parts(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], sb.signing_kid().as_str());
    let names: BTreeSet<&str> = payload
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "iss",
        "sub",
        "iat",
        "exp",
        "proof_schema_version",
        "user_id",
        "type",
        "channel",
        "identifier_hash",
        "verified_at",
        "status",
    ]
    .into();
    assert_eq!(names, expected);
    assert_eq!(payload["iss"], "proof.holdings");
    assert_eq!(payload["sub"], created.id.as_str());
    assert_eq!(
        payload["identifier_hash"],
        "1a84d7ea4cfcfa4a7fde9c221c967e6f1cfa22fd5b68e4cbac0912ceb8b602f9"
    );
    assert_eq!(
        payload["status"]["status_list"]["uri"],
        sb.status_list_url().as_str()
    );

    // The core verifier accepts it against the sandbox's JWKS.
    let proof = verifier.verify(&token).expect("token verifies");
    assert_eq!(proof.subject(), created.id);
    for s in [&polling, &pushed] {
        s.refresh_list().await.expect("list");
        s.refresh_status_list(&sb.status_list_url())
            .await
            .expect("status list");
        assert_eq!(s.check(&proof.claims), Ok(()));
    }
    status_only
        .refresh_status_list(&sb.status_list_url())
        .await
        .expect("status list");
    assert_eq!(status_only.check(&proof.claims), Ok(()));

    // Online views agree.
    let validation = api
        .validate_proof(&token, Some("+37069199199"))
        .await
        .expect("validate");
    assert!(validation.valid);
    let mismatch = api
        .validate_proof(&token, Some("+37060000000"))
        .await
        .expect("validate");
    assert_eq!(mismatch.reason.as_deref(), Some("identifier_mismatch"));
    let status = api.proof_status(&created.id).await.expect("status");
    assert!(status.is_valid && !status.is_revoked);

    // Revoke.
    let revoked = api
        .revoke_proof(&created.id, RevocationReason::Fraud)
        .await
        .expect("revoke");
    assert!(revoked.success);

    // The webhook applies at once, without any refresh.
    let hook = receiver.wait_for("proof.revoked").await;
    assert_eq!(hook.event.subject_proof_id(), Some(created.id.as_str()));
    assert_eq!(hook.event.test, Some(true));
    assert_eq!(pushed.check(&proof.claims), Err(Reason::Revoked));

    // The pollers still hold their last good data until their next refresh...
    assert_eq!(polling.check(&proof.claims), Ok(()));
    assert_eq!(status_only.check(&proof.claims), Ok(()));
    // ...and deny after it: the signed list, and the status list on its own.
    polling.refresh_list().await.expect("signed list refresh");
    assert_eq!(polling.check(&proof.claims), Err(Reason::Revoked));
    status_only
        .refresh_status_list(&sb.status_list_url())
        .await
        .expect("status list refresh");
    assert_eq!(status_only.check(&proof.claims), Err(Reason::Revoked));

    let validation = api.validate_proof(&token, None).await.expect("validate");
    assert!(!validation.valid);
    assert_eq!(validation.reason.as_deref(), Some("revoked"));
    assert_eq!(validation.revoked_reason.as_deref(), Some("fraud"));
    let status = api.proof_status(&created.id).await.expect("status");
    assert!(status.is_revoked && !status.is_valid);
    let again = api.get_verification(&created.id).await.expect("get");
    assert_eq!(again.status, "revoked");

    // The list's raw shape carries both forms of the contract.
    let list: serde_json::Value = raw()
        .get(sb.revocation_url())
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["count"], 1);
    assert_eq!(list["revoked"][0]["proof_id"], created.id.as_str());
    assert_eq!(list["revoked"][0]["reason"], "fraud");
    assert!(list["issued_at"].is_string() && list["generated_at"].is_string());
    assert_eq!(list["kid"], sb.signing_kid().as_str());

    assert!(assert_contract(&sb) >= 8);
    sb.shutdown().await;
}

#[tokio::test]
async fn hosted_verification_request_completes_and_redirects() {
    let sb = sandbox().await;
    let (_keys, verifier) = verifier(&sb).await;
    let receiver = Receiver::start(sb.webhook_secret(), None).await;
    let api = client(&sb, TEST_KEY);
    let http = raw();

    let mut create = CreateVerificationRequest::new(vec![
        AssetRequest::new("email").identifier("John.Doe@Example.COM"),
        AssetRequest::new("phone"),
    ]);
    create.redirect_url = Some("https://app.example/.proofgate/callback?state=abc".into());
    create.callback_url = Some(receiver.url.clone());
    create.reference_id = Some("order_1".into());
    let request = api
        .create_verification_request(&create)
        .await
        .expect("create");
    assert_eq!(request.status, RequestStatus::Pending);
    assert_eq!(request.assets.len(), 2);
    let page_url = request.verification_url.clone().expect("verification_url");
    assert!(page_url.starts_with(sb.base_url()));

    let page = http.get(&page_url).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("/complete"), "{html}");
    assert!(html.contains("john.doe@example.com") || html.contains("John.Doe@Example.COM"));

    // Still pending: the wait times out.
    let waited = api
        .wait_for_completion(
            &request.id,
            Duration::from_millis(20),
            Duration::from_millis(60),
        )
        .await;
    assert!(
        matches!(waited, Err(ApiError::WaitTimedOut { .. })),
        "{waited:?}"
    );

    // Complete the first asset: back to the page, request partial.
    let r = http
        .post(format!("{page_url}/assets/0/complete"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("channel=email")
        .send()
        .await
        .expect("complete one");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], page_url.as_str());
    let partial = api
        .get_verification_request(&request.id)
        .await
        .expect("get");
    assert_eq!(partial.status, RequestStatus::Partial);
    assert_eq!(partial.assets[0].status, "verified");

    // Complete the rest: sent to redirect_url.
    let r = http
        .post(format!("{page_url}/complete"))
        .send()
        .await
        .expect("complete");
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(
        location.starts_with("https://app.example/.proofgate/callback?state=abc&"),
        "{location}"
    );
    assert!(location.contains(&format!("verification_request_id={}", request.id)));

    let done = api
        .wait_for_completion(
            &request.id,
            Duration::from_millis(20),
            Duration::from_secs(5),
        )
        .await
        .expect("completed");
    assert_eq!(done.status, RequestStatus::Completed);
    let tokens: Vec<&str> = done.proof_tokens().collect();
    assert_eq!(tokens.len(), 2);
    for t in &tokens {
        verifier.verify(t).expect("each proof verifies");
    }
    assert_eq!(done.assets[1].verified_channel.as_deref(), Some("whatsapp"));

    let hook = receiver.wait_for("verification_request.completed").await;
    assert_eq!(hook.event.request_id.as_deref(), Some(request.id.as_str()));
    assert_eq!(hook.event.reference_id.as_deref(), Some("order_1"));
    assert_eq!(hook.event.test, Some(true));
    assert_eq!(hook.event.proofs.len(), 2);
    assert!(hook.headers.contains_key("x-proof-timestamp"));

    // A completed request cannot be cancelled; a fresh one can.
    let cancel = api.cancel_verification_request(&request.id).await;
    assert!(matches!(cancel, Err(ApiError::Conflict(_))), "{cancel:?}");
    let other = api
        .create_verification_request(&CreateVerificationRequest::new(vec![AssetRequest::new(
            "domain",
        )]))
        .await
        .expect("create");
    let cancelled = api
        .cancel_verification_request(&other.id)
        .await
        .expect("cancel");
    assert!(cancelled.success);
    let after = api
        .wait_for_completion(&other.id, Duration::from_millis(20), Duration::from_secs(1))
        .await
        .expect("terminal");
    assert_eq!(after.status, RequestStatus::Cancelled);
    let refused = http
        .post(format!(
            "{}/complete",
            other.verification_url.as_deref().unwrap_or_default()
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 409);

    let listed = api
        .list_verification_requests(&ListQuery {
            reference_id: Some("order_1".into()),
            ..ListQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.data.len(), 1);

    assert!(assert_contract(&sb) >= 8);
    sb.shutdown().await;
}

#[tokio::test]
async fn sessions_submit_and_lists() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let http = raw();

    let session = api
        .create_session(&CreateSession {
            phone: Some("+44 7700 900123".into()),
            channel: Some("telegram".into()),
            ..CreateSession::default()
        })
        .await
        .expect("session");
    assert_eq!(session.status, "pending");
    assert!(session
        .challenge
        .as_ref()
        .and_then(|c| c.code.as_ref())
        .is_some());
    let link = session.deep_link.clone().expect("deep link");
    let r = http
        .post(format!("{link}/complete"))
        .send()
        .await
        .expect("complete");
    assert_eq!(r.status(), 200);
    let session = api.get_session(&session.id).await.expect("get");
    assert_eq!(session.status, "verified");
    assert!(session.proof.is_some());

    let v = api
        .create_verification(&CreateVerification::new(
            "email",
            "email",
            "user+tag@gmail.com",
        ))
        .await
        .expect("create");
    let code = v.challenge.and_then(|c| c.code).expect("code");
    let wrong = if code == "AAAAAA" { "BBBBBB" } else { "AAAAAA" };
    let e = api
        .submit_challenge(&v.id, wrong)
        .await
        .expect_err("wrong code");
    assert!(matches!(e, ApiError::Validation(_)), "{e:?}");
    let after = api.get_verification(&v.id).await.expect("get");
    assert_eq!(after.attempts, Some(1));
    assert!(
        after.challenge.is_none(),
        "the code is shown only on creation"
    );
    let ok = api
        .submit_challenge(&v.id, &code)
        .await
        .expect("right code");
    assert_eq!(ok.status, "verified");
    assert!(ok.token().is_some());
    let again = api.test_verify(&v.id).await.expect_err("already verified");
    assert!(matches!(again, ApiError::Validation(_)));

    let list = api
        .list_verifications(&ListQuery {
            status: Some("verified".into()),
            ..ListQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(list.data.len(), 2);
    assert!(!list.pagination.has_more);
    let health = api.health().await.expect("health");
    assert_eq!(health.status, "healthy");

    assert!(assert_contract(&sb) >= 8);
    sb.shutdown().await;
}

#[tokio::test]
async fn webhooks_are_retried_until_delivered() {
    let sb = sandbox().await;
    let receiver = Receiver::start(sb.webhook_secret(), None).await;
    *receiver.fail_first.lock().expect("lock") = 2;
    sb.add_webhook_url(&receiver.url);
    let api = client(&sb, TEST_KEY);
    let v = api
        .create_verification(&CreateVerification::new(
            "domain",
            "dns",
            "https://www.Example.com/",
        ))
        .await
        .expect("create");
    api.test_verify(&v.id).await.expect("verify");
    let hook = receiver.wait_for("verification.completed").await;
    let ts = hook.headers["x-proof-timestamp"].to_str().expect("ts");
    let sig = hook.headers["x-proof-signature"].to_str().expect("sig");
    assert_eq!(
        sig,
        proofgate_core::webhook::sign(sb.webhook_secret().as_bytes(), ts, &hook.body)
    );
    // The receiver answered before the sandbox noted the outcome: wait for the note.
    let mut d = None;
    for _ in 0..100 {
        d = sb
            .webhook_deliveries()
            .into_iter()
            .find(|d| d.event == "verification.completed" && d.status != "pending");
        if d.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = d.expect("delivery settled");
    assert_eq!(d.status, "delivered");
    assert_eq!(d.attempts, 3);
    sb.shutdown().await;
}

#[tokio::test]
async fn rotated_retired_and_es256_keys() {
    let sb = Sandbox::start("127.0.0.1:0").await.expect("start");
    let api = client(&sb, TEST_KEY);
    let mint = |kind: &'static str, channel: &'static str, id: &'static str| {
        let api = api.clone();
        async move {
            let v = api
                .create_verification(&CreateVerification::new(kind, channel, id))
                .await
                .expect("create");
            api.test_verify(&v.id)
                .await
                .expect("verify")
                .token()
                .expect("token")
                .to_string()
        }
    };
    let first_kid = sb.signing_kid();
    let old = mint("email", "email", "a@example.com").await;
    let new_kid = sb.rotate_signing_key();
    assert_ne!(first_kid, new_kid);
    let new = mint("email", "email", "b@example.com").await;
    assert_eq!(jwt_parts(&new).0["kid"], new_kid.as_str());

    let (keys, verifier) = verifier(&sb).await;
    verifier.verify(&old).expect("old key still published");
    verifier.verify(&new).expect("new key");

    assert!(!sb.retire_key(&new_kid), "the key in use stays");
    assert!(sb.retire_key(&first_kid));
    keys.refresh().await.expect("refresh");
    let fresh = Verifier::new(keys.clone(), VerifierConfig::default());
    assert_eq!(fresh.verify(&old).err(), Some(Reason::UnknownKey));

    let es_kid = sb.use_es256();
    let es = mint(
        "wallet",
        "ethereum",
        "0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B",
    )
    .await;
    assert_eq!(jwt_parts(&es).0["alg"], "ES256");
    keys.refresh().await.expect("refresh");
    let proof = Verifier::new(keys, VerifierConfig::default())
        .verify(&es)
        .expect("ES256 verifies");
    assert_eq!(proof.kid.as_deref(), Some(es_kid.as_str()));
    sb.shutdown().await;
}

#[tokio::test]
async fn a_withdrawn_key_stays_published_and_is_tombstoned() {
    let sb = Sandbox::start("127.0.0.1:0").await.expect("start");
    let api = client(&sb, TEST_KEY);
    let mint = |id: &'static str| {
        let api = api.clone();
        async move {
            let v = api
                .create_verification(&CreateVerification::new("email", "email", id))
                .await
                .expect("create");
            let t = api.test_verify(&v.id).await.expect("verify");
            t.token().expect("token").to_string()
        }
    };
    let old_kid = sb.signing_kid();
    let old = mint("old@example.com").await;
    let new_kid = sb.rotate_signing_key();
    let new = mint("new@example.com").await;
    assert!(
        !sb.withdraw_key(&new_kid),
        "the key in use cannot be withdrawn"
    );
    assert!(!sb.withdraw_key("never-published"));
    assert!(sb.withdraw_key(&old_kid));
    assert!(sb.withdraw_key(&old_kid), "withdrawing twice is harmless");

    // As served: the key is still in `keys`, and listed once in `proof_tombstones`.
    let jwks: serde_json::Value = reqwest::get(sb.jwks_url())
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(kids.contains(&old_kid.as_str()), "{jwks}");
    let tombstones = jwks["proof_tombstones"].as_array().expect("tombstones");
    assert_eq!(tombstones.len(), 1, "{jwks}");
    assert_eq!(tombstones[0]["kid"], old_kid.as_str());
    assert!(tombstones[0]["revoked_at"].as_i64().is_some(), "{jwks}");

    let (_keys, verifier) = verifier(&sb).await;
    assert_eq!(verifier.verify(&old).err(), Some(Reason::ProofKeyRevoked));
    verifier.verify(&new).expect("the current key's token");
    sb.shutdown().await;
}

#[tokio::test]
async fn a_persisted_key_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("signing-key.der");
    let _ = std::fs::remove_file(&path);
    let mut config = SandboxConfig::default();
    config.key_file = Some(path.clone());
    let first = Sandbox::start_with("127.0.0.1:0", config.clone())
        .await
        .expect("start");
    let kid = first.signing_kid();
    let api = client(&first, TEST_KEY);
    let v = api
        .create_verification(&CreateVerification::new("social", "github", "octocat"))
        .await
        .expect("create");
    let token = api
        .test_verify(&v.id)
        .await
        .expect("verify")
        .token()
        .expect("token")
        .to_string();
    first.shutdown().await;
    assert!(path.exists());

    let second = Sandbox::start_with("127.0.0.1:0", config)
        .await
        .expect("restart");
    assert_eq!(second.signing_kid(), kid);
    let (_keys, verifier) = verifier(&second).await;
    verifier
        .verify(&token)
        .expect("a token from before the restart verifies");
    second.shutdown().await;
}

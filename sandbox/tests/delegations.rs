//! Delegations through the project's own client over loopback: minted from a domain control
//! proof, canonical delegate and scopes, the token's exact claims and its signature by the
//! JWKS key of purpose `delegation`, get by id and handle, list without tokens, revoke
//! (idempotent) flipping the status-list slot, the cascade from the control proof, suspension,
//! `proofs/validate` and `proofs/{ph_dlg_…}/…`, and the error shapes.

mod support;

use std::collections::BTreeSet;
use std::time::Instant;

use base64::Engine;
use proofgate_core::client::{
    ApiError, CreateDelegation, CreateVerification, Delegate, Delegation, ListQuery,
    ProofApiClient, RevocationReason,
};
use proofgate_core::keys::KeySet;
use proofgate_core::revocation::{SlotStatus, StatusList};
use proofgate_core::{KeyStore, KeysConfig, Verifier, VerifierConfig};
use proofgate_sandbox::SandboxHandle;
use serde_json::Value;
use support::*;

/// A verified domain proof of `domain`: (proof id, control-proof handle, proof token).
async fn control_proof(api: &ProofApiClient, domain: &str) -> (String, String, String) {
    let created = api
        .create_verification(&CreateVerification::new("domain", "dns", domain))
        .await
        .expect("create");
    let verified = api.test_verify(&created.id).await.expect("test-verify");
    let handle = verified.public_proof_id.clone().expect("ph_ctl_ handle");
    assert!(
        handle.starts_with("ph_ctl_") && handle.len() == 39,
        "{handle}"
    );
    let status = api.proof_status(&created.id).await.expect("status");
    assert_eq!(status.public_proof_id.as_deref(), Some(handle.as_str()));
    let token = verified.token().expect("token").to_string();
    (created.id, handle, token)
}

fn request(control: &str, delegate: Delegate, scope: &[&str]) -> CreateDelegation {
    CreateDelegation {
        control_proof: control.to_string(),
        delegate,
        scope: scope.iter().map(|s| s.to_string()).collect(),
        expires_in: None,
    }
}

/// The value of the token's status-list slot, from the status list as served.
async fn slot(sb: &SandboxHandle, token: &str) -> SlotStatus {
    let (_, claims) = jwt_parts(token);
    let idx = claims["status"]["status_list"]["idx"]
        .as_u64()
        .expect("idx");
    assert_eq!(
        claims["status"]["status_list"]["uri"],
        sb.status_list_url().as_str()
    );
    let jwt = raw()
        .get(sb.status_list_url())
        .send()
        .await
        .expect("status list")
        .text()
        .await
        .expect("body");
    let (_, payload) = jwt_parts(&jwt);
    let list = StatusList::decode(
        u8::try_from(payload["status_list"]["bits"].as_u64().expect("bits")).expect("bits"),
        payload["status_list"]["lst"].as_str().expect("lst"),
        payload["exp"].as_i64().expect("exp"),
        Instant::now(),
    )
    .expect("decodes");
    list.get(idx)
}

/// Checks `token`'s signature against the sandbox's JWKS with the core's key set, and that
/// the key is the delegation key.
async fn check_signature(sb: &SandboxHandle, token: &str) {
    let jwks = raw()
        .get(sb.jwks_url())
        .send()
        .await
        .expect("jwks")
        .bytes()
        .await
        .expect("body");
    let set = KeySet::from_jwks(&jwks).expect("parses");
    let (header, _) = jwt_parts(token);
    let key = set
        .by_kid(header["kid"].as_str().expect("kid"))
        .expect("published");
    assert_eq!(key.purpose.as_deref(), Some("delegation"));
    assert!(key.serves("delegation") && !key.serves("proof"));
    assert!(key.not_before.is_some() && key.max_token_lifetime.is_some());
    let (signing_input, sig) = token.rsplit_once('.').expect("jws");
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .expect("b64");
    assert!(key.verify(signing_input.as_bytes(), &sig));
    let mut forged = signing_input.to_string();
    forged.push('x');
    assert!(!key.verify(forged.as_bytes(), &sig));
}

#[tokio::test]
async fn delegation_lifecycle_through_the_client() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let (proof_id, handle, proof_token) = control_proof(&api, "Corp.Example").await;

    let mut create = request(
        &handle,
        Delegate::url("https://Agent.Corp.Example:443/bots/pay/"),
        &["payments-read", " alpha ", "payments-read"],
    );
    create.expires_in = Some(3600);
    let d = api.create_delegation(&create).await.expect("create");
    assert_eq!(d.principal, "corp.example");
    assert_eq!(
        d.delegate,
        Delegate::url("https://agent.corp.example/bots/pay")
    );
    assert_eq!(
        d.scope,
        vec!["alpha", "payments-read"],
        "trimmed, deduplicated, sorted"
    );
    assert_eq!(d.control_proof, handle);
    assert_eq!(d.status, "active");
    assert_eq!(d.effective_status.as_deref(), Some("active"));
    assert_eq!(d.is_valid, Some(true));
    assert_eq!(d.environment.as_deref(), Some("test"));
    assert!(d.revoked_at.is_none() && d.revoked_reason.is_none());
    let dlg = d.delegation_id.clone().expect("handle");
    assert!(dlg.starts_with("ph_dlg_") && dlg.len() == 39, "{dlg}");
    assert!(dlg[7..].bytes().all(|b| b.is_ascii_hexdigit()));
    let token = d.token.clone().expect("token on creation");

    // The token: exactly the contract's claims, signed by the delegation key.
    let (header, claims) = jwt_parts(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], sb.delegation_signing_key().kid());
    let names: BTreeSet<&str> = claims
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "iss",
        "sub",
        "token_type",
        "delegation_schema_version",
        "principal",
        "delegate",
        "scope",
        "control_proof",
        "iat",
        "exp",
        "status",
    ]
    .into();
    assert_eq!(names, expected);
    assert_eq!(claims["iss"], "proof.holdings");
    assert_eq!(claims["sub"], dlg.as_str());
    assert_eq!(claims["token_type"], "delegation");
    assert_eq!(claims["delegation_schema_version"], "1.0");
    assert_eq!(claims["principal"], "corp.example");
    assert_eq!(claims["delegate"], "https://agent.corp.example/bots/pay");
    assert_eq!(
        claims["scope"],
        serde_json::json!(["alpha", "payments-read"])
    );
    assert_eq!(claims["control_proof"], handle.as_str());
    assert_eq!(
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"),
        3600
    );
    check_signature(&sb, &token).await;
    assert_eq!(slot(&sb, &token).await, SlotStatus::Valid);

    // The proof verifier refuses it: a delegation token is not a proof.
    let keys = KeyStore::new(KeysConfig::new(sb.jwks_url()));
    keys.refresh().await.expect("jwks");
    let verifier = Verifier::new(keys, VerifierConfig::default());
    assert!(verifier.verify(&token).is_err());
    assert!(
        verifier.verify(&proof_token).is_ok(),
        "proof keys still verify proofs"
    );

    // Get by id and by handle, with the token; the list without tokens.
    let by_id = api.get_delegation(&d.id).await.expect("by id");
    let by_handle = api.get_delegation(&dlg).await.expect("by handle");
    assert_eq!(by_id, d);
    assert_eq!(by_handle, d);
    let sibling = api
        .create_delegation(&request(
            &handle,
            Delegate::purl("pkg:npm/@Corp/Agent"),
            &["read"],
        ))
        .await
        .expect("sibling");
    assert_eq!(sibling.delegate, Delegate::purl("pkg:npm/@corp/agent"));
    let (_, sc) = jwt_parts(sibling.token.as_deref().expect("token"));
    let (_, pc) = jwt_parts(&proof_token);
    assert_eq!(
        sc["exp"], pc["exp"],
        "expires_in defaults to the control proof's life"
    );
    let list = api
        .list_delegations(&ListQuery::default())
        .await
        .expect("list");
    let ids: Vec<&str> = list.data.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![sibling.id.as_str(), d.id.as_str()],
        "newest first"
    );
    let raw_list: Value = raw()
        .get(format!("{}/api/v1/delegations", sb.base_url()))
        .bearer_auth(TEST_KEY)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    for item in raw_list["data"].as_array().expect("data") {
        assert!(item.get("token").is_none(), "{item}");
        assert!(item["effective_status"].is_string());
    }

    // Online validation.
    let v = api.validate_proof(&token, None).await.expect("validate");
    assert!(v.valid, "{v:?}");
    assert_eq!(v.token_type.as_deref(), Some("delegation"));
    assert_eq!(
        v.delegation.as_ref().expect("facts")["delegation_id"],
        dlg.as_str()
    );
    let v = api
        .validate_proof(&token, Some("corp.example"))
        .await
        .expect("validate");
    assert_eq!(v.reason.as_deref(), Some("identifier_unverifiable"));
    assert!(!v.valid);

    // Revoke: idempotent, flips the slot, leaves the sibling and the domain proof alone.
    let revoked = api
        .revoke_delegation(&dlg, Some(RevocationReason::KeyCompromise))
        .await
        .expect("revoke");
    assert_eq!(revoked.status, "revoked");
    assert_eq!(revoked.effective_status.as_deref(), Some("revoked"));
    assert_eq!(revoked.is_valid, Some(false));
    assert_eq!(revoked.revoked_reason.as_deref(), Some("key_compromise"));
    let again = api.revoke_delegation(&d.id, None).await.expect("repeat");
    assert_eq!(again.revoked_at, revoked.revoked_at);
    assert_eq!(again.revoked_reason, revoked.revoked_reason);
    assert_eq!(slot(&sb, &token).await, SlotStatus::Revoked);
    let v = api.validate_proof(&token, None).await.expect("validate");
    assert_eq!((v.valid, v.reason.as_deref()), (false, Some("revoked")));
    let s = sibling.token.as_deref().expect("token");
    assert_eq!(slot(&sb, s).await, SlotStatus::Valid);
    assert!(api.validate_proof(s, None).await.expect("validate").valid);
    assert!(api.proof_status(&proof_id).await.expect("status").is_valid);
    let revoked_only = api
        .list_delegations(&ListQuery {
            status: Some("revoked".into()),
            ..ListQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(revoked_only.data.len(), 1);
    assert_eq!(revoked_only.data[0].id, d.id);
    // The detail still has its token.
    let detail: Delegation = api.get_delegation(&dlg).await.expect("get");
    assert_eq!(detail.token.as_deref(), Some(token.as_str()));
    assert!(assert_contract(&sb) > 0);
}

#[tokio::test]
async fn revoking_the_control_proof_revokes_its_delegations() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let (_, handle, _) = control_proof(&api, "corp.example").await;
    let (_, other_handle, _) = control_proof(&api, "other.example").await;
    let a = api
        .create_delegation(&request(
            &handle,
            Delegate::url("https://a.example"),
            &["read"],
        ))
        .await
        .expect("a");
    let b = api
        .create_delegation(&request(
            &handle,
            Delegate::url("https://b.example"),
            &["write"],
        ))
        .await
        .expect("b");
    let elsewhere = api
        .create_delegation(&request(
            &other_handle,
            Delegate::url("https://c.example"),
            &["read"],
        ))
        .await
        .expect("c");

    // Revoke the control proof by its handle (its id works the same).
    let r = raw()
        .post(format!("{}/api/v1/proofs/{handle}/revoke", sb.base_url()))
        .bearer_auth(TEST_KEY)
        .json(&serde_json::json!({"reason": "asset_transferred"}))
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["delegations_revoked"], 2);

    for d in [&a, &b] {
        let now = api.get_delegation(&d.id).await.expect("get");
        assert_eq!(
            now.status, "active",
            "status is only the owner's own revoke"
        );
        assert_eq!(now.effective_status.as_deref(), Some("revoked"));
        assert_eq!(now.is_valid, Some(false));
        let token = d.token.as_deref().expect("token");
        assert_eq!(slot(&sb, token).await, SlotStatus::Revoked);
        let v = api.validate_proof(token, None).await.expect("validate");
        assert_eq!(v.reason.as_deref(), Some("revoked"));
        let st = api
            .proof_status(d.delegation_id.as_deref().expect("handle"))
            .await
            .expect("status by handle");
        assert_eq!(st.status, "revoked");
        assert!(!st.is_valid);
    }
    let other = api.get_delegation(&elsewhere.id).await.expect("get");
    assert_eq!(other.effective_status.as_deref(), Some("active"));
    assert_eq!(
        slot(&sb, elsewhere.token.as_deref().expect("token")).await,
        SlotStatus::Valid
    );

    // No new delegation from a revoked control proof.
    let e = api
        .create_delegation(&request(
            &handle,
            Delegate::url("https://d.example"),
            &["read"],
        ))
        .await
        .expect_err("revoked control proof");
    assert!(matches!(e, ApiError::Validation(_)), "{e:?}");
}

#[tokio::test]
async fn proofs_endpoints_and_suspension_by_handle() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let (proof_id, _, _) = control_proof(&api, "corp.example").await;
    // The proof id is accepted as the control proof too.
    let d = api
        .create_delegation(&request(
            &proof_id,
            Delegate::purl("pkg:pypi/My_Agent"),
            &["read"],
        ))
        .await
        .expect("create");
    assert_eq!(d.delegate.value, "pkg:pypi/my-agent");
    let dlg = d.delegation_id.clone().expect("handle");
    let token = d.token.clone().expect("token");

    assert!(sb.suspend_delegation(&dlg));
    assert_eq!(slot(&sb, &token).await, SlotStatus::Suspended);
    let now = api.get_delegation(&dlg).await.expect("get");
    assert_eq!(now.effective_status.as_deref(), Some("suspended"));
    let v = api.validate_proof(&token, None).await.expect("validate");
    assert_eq!(v.reason.as_deref(), Some("suspended"));
    assert!(sb.unsuspend_delegation(&dlg));
    assert_eq!(slot(&sb, &token).await, SlotStatus::Valid);
    assert!(
        api.validate_proof(&token, None)
            .await
            .expect("validate")
            .valid
    );

    let st = api.proof_status(&dlg).await.expect("status");
    assert_eq!((st.status.as_str(), st.is_valid), ("active", true));
    let r = api
        .revoke_proof(&dlg, RevocationReason::Other)
        .await
        .expect("revoke by handle");
    assert!(r.success && r.revoked_at.is_some());
    assert_eq!(slot(&sb, &token).await, SlotStatus::Revoked);
    assert_eq!(
        api.get_delegation(&d.id)
            .await
            .expect("get")
            .revoked_reason
            .as_deref(),
        Some("other")
    );
    assert!(
        !sb.suspend_delegation(&dlg),
        "a revoked one is not suspended"
    );

    // Tokens it did not issue: a delegation-shaped one is `unknown_delegation`, another schema
    // major is `invalid`.
    let key = sb.delegation_signing_key();
    let (_, mut claims) = jwt_parts(&token);
    claims["sub"] = Value::String(format!("ph_dlg_{}", "0".repeat(32)));
    let forged = key.sign_json(&claims);
    let v = api.validate_proof(&forged, None).await.expect("validate");
    assert_eq!(v.reason.as_deref(), Some("unknown_delegation"));
    claims["delegation_schema_version"] = Value::String("2.0".into());
    let v = api
        .validate_proof(&key.sign_json(&claims), None)
        .await
        .expect("validate");
    assert_eq!(v.reason.as_deref(), Some("invalid"));
}

#[tokio::test]
async fn delegation_errors_have_the_contract_shapes() {
    let sb = sandbox().await;
    let api = client(&sb, TEST_KEY);
    let (_, handle, _) = control_proof(&api, "corp.example").await;
    let email = api
        .create_verification(&CreateVerification::new("email", "email", "a@corp.example"))
        .await
        .expect("create");
    api.test_verify(&email.id).await.expect("verify");

    let post = |path: String, body: String| {
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
    let make = |delegate: Value, scope: Value, extra: Option<(&str, Value)>| {
        let mut b =
            serde_json::json!({"control_proof": handle, "delegate": delegate, "scope": scope});
        if let Some((k, v)) = extra {
            b[k] = v;
        }
        b.to_string()
    };
    let url = |v: &str| serde_json::json!({"type": "url", "value": v});
    let purl = |v: &str| serde_json::json!({"type": "purl", "value": v});
    let ok_scope = serde_json::json!(["read"]);
    let cases = [
        (make(url("http://agent.example"), ok_scope.clone(), None), "delegate.value"),
        (make(url("https://agent.example/?x=1"), ok_scope.clone(), None), "delegate.value"),
        (make(url("https://u@agent.example"), ok_scope.clone(), None), "delegate.value"),
        (make(purl("pkg:npm/agent@1.0.0"), ok_scope.clone(), None), "delegate.value"),
        (make(purl("https://agent.example"), ok_scope.clone(), None), "delegate.value"),
        (make(serde_json::json!({"type": "did", "value": "x"}), ok_scope.clone(), None), "delegate.type"),
        (make(url("https://agent.example"), serde_json::json!([]), None), "scope"),
        (make(url("https://agent.example"), serde_json::json!(["Payments"]), None), "scope.0"),
        (make(url("https://agent.example"), serde_json::json!(["read", "email:send"]), None), "scope.1"),
        (make(url("https://agent.example"), serde_json::json!("read"), None), "scope"),
        (make(url("https://agent.example"), ok_scope.clone(), Some(("expires_in", serde_json::json!(400 * 86_400)))), "expires_in"),
        (make(url("https://agent.example"), ok_scope.clone(), Some(("expires_in", serde_json::json!(0)))), "expires_in"),
        (
            serde_json::json!({"control_proof": email.id, "delegate": url("https://a.example"), "scope": ["read"]}).to_string(),
            "control_proof",
        ),
        (serde_json::json!({"delegate": url("https://a.example"), "scope": ["read"]}).to_string(), "control_proof"),
    ];
    for (body, field) in cases {
        let (status, answer) = post("delegations".into(), body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], "validation_error", "{body}");
        assert_eq!(
            answer["error"]["details"][0]["field"], field,
            "{body} → {answer}"
        );
    }
    let (status, answer) = post(
        "delegations".into(),
        serde_json::json!({"control_proof": format!("ph_ctl_{}", "0".repeat(32)), "delegate": url("https://a.example"), "scope": ["read"]}).to_string(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Revoke: a `null` body is a 400, an unknown reason too; unknown ids are 404.
    let d = api
        .create_delegation(&request(
            &handle,
            Delegate::url("https://a.example"),
            &["read"],
        ))
        .await
        .expect("create");
    for body in ["null", "[]", r#"{"reason":"bored"}"#] {
        let (status, answer) = post(format!("delegations/{}/revoke", d.id), body.into()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], "validation_error");
    }
    assert_eq!(
        api.get_delegation(&d.id).await.expect("get").status,
        "active"
    );
    let unknown = format!("ph_dlg_{}", "0".repeat(32));
    for e in [
        api.get_delegation(&unknown)
            .await
            .map(|_| ())
            .expect_err("get"),
        api.get_delegation("0123456789abcdef01234567")
            .await
            .map(|_| ())
            .expect_err("get"),
        api.revoke_delegation(&unknown, None)
            .await
            .map(|_| ())
            .expect_err("revoke"),
        api.proof_status(&unknown)
            .await
            .map(|_| ())
            .expect_err("status"),
    ] {
        assert!(matches!(e, ApiError::NotFound(_)), "{e:?}");
    }
    let e = api
        .list_delegations(&ListQuery {
            status: Some("sideways".into()),
            ..ListQuery::default()
        })
        .await
        .expect_err("bad filter");
    assert!(matches!(e, ApiError::Validation(_)), "{e:?}");
    let r = raw()
        .get(format!("{}/api/v1/delegations", sb.base_url()))
        .send()
        .await
        .expect("no key");
    assert_eq!(r.status(), 401);
}

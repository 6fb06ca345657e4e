//! The approval flow through the core's gate, against a small real Proof API on loopback whose
//! answers the test controls: the encrypted message (a HITL configuration with a public key),
//! and approvals whose token does not hold up (another type, a denying decision, another
//! issuer's key, none at all) answered `approval_unavailable`, never forwarded. The happy paths
//! through the real gateway and sandbox are `gateway/tests/approvals.rs`.

use std::sync::{Arc, Mutex};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256,
};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http::{HeaderMap, Method};
use proofgate_core::approval::HeldBody;
use proofgate_core::decision::RequestView;
use proofgate_core::gate::{Action, ForwardOptions, Gate, GateBuilder};
use proofgate_core::keys::KeySet;
use proofgate_core::policy::{ApprovalRule, Policy, Requirement};
use proofgate_core::revocation::RevocationConfig;
use proofgate_core::testing::{self, SigningKey};
use serde_json::{json, Value};

/// What the fake issuer holds: the HITL configuration's public key (PEM), the messages it
/// was sent, and the answer `GET /confirmations/{id}` gives.
#[derive(Default)]
struct Issuer {
    public_key: Option<String>,
    /// A `keypair` answered as is (instead of `{public_key}`).
    keypair: Option<Value>,
    messages: Vec<String>,
    confirmation: Value,
}

type Shared = Arc<Mutex<Issuer>>;

async fn serve(issuer: Shared) -> String {
    let app = axum::Router::new()
        .route(
            "/api/v1/hitl/{id}",
            get(|State(s): State<Shared>, Path(id): Path<String>| async move {
                let s = s.lock().unwrap();
                let keypair = s
                    .keypair
                    .clone()
                    .or_else(|| s.public_key.clone().map(|k| json!({"public_key": k})));
                Json(json!({"id": id, "status": "active", "keypair": keypair}))
            }),
        )
        .route(
            "/api/v1/confirmations",
            post(|State(s): State<Shared>, Json(body): Json<Value>| async move {
                let mut s = s.lock().unwrap();
                s.messages.push(body["message"].as_str().unwrap().to_owned());
                Json(json!({"id": "conf_1", "hitl_id": body["hitl_id"], "status": "pending", "message": body["message"]}))
            }),
        )
        .route(
            "/api/v1/confirmations/{id}",
            get(|State(s): State<Shared>| async move { Json(s.lock().unwrap().confirmation.clone()) }),
        )
        .with_state(issuer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn gate(base: &str, issuer_key: &SigningKey) -> Gate {
    let mut revocation = RevocationConfig::new(base);
    revocation.list_url = None;
    // Every status read asks the issuer.
    let approvals = proofgate_core::approval::ApprovalsConfig {
        poll_interval: std::time::Duration::ZERO,
        ..Default::default()
    };
    let gate = GateBuilder::new(base)
        .revocation_config(revocation)
        .cookie_key(Some(vec![7; 32]))
        .api_key(Some("pk_test_approval_flow".into()))
        .approvals_config(approvals)
        .build()
        .unwrap();
    let jwks = testing::jwks(&[issuer_key]).to_string();
    gate.keys()
        .install(KeySet::from_jwks(jwks.as_bytes()).unwrap(), vec![1]);
    gate
}

fn policy() -> Policy {
    let mut rule = ApprovalRule::new("hitl_1", "{method} {path} by {subject}");
    rule.body_fields = vec!["amount".into()];
    Policy::any_of("payouts", vec![Requirement::of_type("email")]).with_approval(rule)
}

fn headers(token: &str, ticket: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", "app.example".parse().unwrap());
    h.insert("authorization", format!("Bearer {token}").parse().unwrap());
    h.insert("content-type", "application/json".parse().unwrap());
    if let Some(t) = ticket {
        h.insert("proof-approval", t.parse().unwrap());
    }
    h
}

/// Decides `POST /payouts/1` with `body` and returns (decision, reason, answer body or None
/// when forwarded).
async fn send(
    gate: &Gate,
    h: &HeaderMap,
    body: &[u8],
) -> (&'static str, &'static str, Option<Value>) {
    let view = RequestView {
        method: &Method::POST,
        host: Some("app.example"),
        target: b"/payouts/1",
        headers: h,
    };
    let outcome = gate.decide_policy(&policy(), &view, "/payouts/1", ForwardOptions::default());
    // An adapter that cannot hold requests answers what the outcome says: 503, fail closed.
    if let Action::Respond(r) = &outcome.action {
        assert_eq!((r.status, outcome.reason), (503, "approval_unavailable"));
    }
    let pending = *outcome.approval.expect("held for approval");
    let answer = gate
        .approve(pending, &Method::POST, h, HeldBody::Read(body))
        .await;
    let body = match &answer.action {
        Action::Forward(f) => {
            assert!(f.edits.remove.iter().any(|n| n == "proof-approval"));
            None
        }
        Action::Respond(r) => Some(serde_json::from_slice(&r.body).unwrap()),
    };
    (answer.decision, answer.reason, body)
}

fn approval_token(key: &SigningKey, kind: &str, decision: Value) -> String {
    let mut claims = testing::claims("conf_1", kind, "browser", "approver");
    claims.decision = Some(decision);
    key.sign(&claims)
}

#[tokio::test]
async fn the_message_is_encrypted_to_the_hitl_key_and_only_a_sound_approval_forwards() {
    let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
    let spki = AsDer::<PublicKeyX509Der>::as_der(&private.public_key()).unwrap();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(spki.as_ref())
    );
    let shared: Shared = Arc::new(Mutex::new(Issuer {
        public_key: Some(pem),
        confirmation: json!({"id": "conf_1", "hitl_id": "hitl_1", "status": "pending"}),
        ..Issuer::default()
    }));
    let base = serve(shared.clone()).await;
    let issuer_key = SigningKey::rsa("k1");
    let gate = gate(&base, &issuer_key);
    let alice = issuer_key.sign(&testing::claims(
        "p1",
        "email",
        "email",
        "alice@corp.example",
    ));

    // Asked: 202, the ticket; the issuer got an envelope only the approvers can open.
    let body = br#"{"amount":100}"#;
    let (decision, reason, answer) = send(&gate, &headers(&alice, None), body).await;
    assert_eq!((decision, reason), ("approval", "approval_required"));
    let ticket = answer.unwrap()["ticket"].as_str().unwrap().to_owned();
    let sent = shared.lock().unwrap().messages[0].clone();
    assert!(!sent.contains("payouts"), "{sent}");
    let envelope: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(envelope["alg"], "RSA-OAEP-256+AES-256-GCM");
    let oaep = OaepPrivateDecryptingKey::new(private).unwrap();
    let ek = URL_SAFE_NO_PAD
        .decode(envelope["ek"].as_str().unwrap())
        .unwrap();
    let mut cek = vec![0; oaep.min_output_size()];
    let cek = oaep
        .decrypt(&OAEP_SHA256_MGF1SHA256, &ek, &mut cek, None)
        .unwrap()
        .to_vec();
    let iv: [u8; 12] = URL_SAFE_NO_PAD
        .decode(envelope["iv"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let mut data = URL_SAFE_NO_PAD
        .decode(envelope["ct"].as_str().unwrap())
        .unwrap();
    data.extend(
        URL_SAFE_NO_PAD
            .decode(envelope["tag"].as_str().unwrap())
            .unwrap(),
    );
    let plain = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek).unwrap())
        .open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from("hitl_1"),
            &mut data,
        )
        .unwrap()
        .to_vec();
    let plain = String::from_utf8(plain).unwrap();
    assert!(
        plain.starts_with("POST /payouts/1 by email proof p1\namount: 100\n"),
        "{plain}"
    );

    // "Approved", but the token does not hold up: never forwarded, 503 (the issuer's answer
    // cannot be trusted), whatever is wrong with it.
    let stranger = SigningKey::rsa("k1");
    for token in [
        Some(approval_token(&issuer_key, "email", json!("approve"))),
        Some(approval_token(&issuer_key, "confirmation", json!("deny"))),
        Some(approval_token(&issuer_key, "confirmation", json!(false))),
        Some(approval_token(&stranger, "confirmation", json!("approve"))),
        Some("not.a.token".to_owned()),
        None,
    ] {
        shared.lock().unwrap().confirmation =
            json!({"id": "conf_1", "status": "approved", "proof_token": token});
        let (decision, reason, _) = send(&gate, &headers(&alice, Some(&ticket)), body).await;
        assert_eq!(
            (decision, reason),
            ("deny", "approval_unavailable"),
            "{token:?}"
        );
    }

    // A sound approval token: forwarded once.
    shared.lock().unwrap().confirmation = json!({
        "id": "conf_1",
        "status": "approved",
        "proof_token": approval_token(&issuer_key, "confirmation", json!("approve")),
    });
    let (decision, reason, answer) = send(&gate, &headers(&alice, Some(&ticket)), body).await;
    assert_eq!((decision, reason, answer), ("allow", "", None));
    let (decision, reason, _) = send(&gate, &headers(&alice, Some(&ticket)), body).await;
    assert_eq!((decision, reason), ("deny", "approval_ticket_used"));
    let counts: std::collections::HashMap<_, _> = gate.approvals().counts().into_iter().collect();
    assert_eq!(
        (
            counts["created"],
            counts["approved"],
            counts["used"],
            counts["replay_refused"]
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(counts["unavailable"], 6);
}

#[tokio::test]
async fn a_cors_preflight_is_never_held() {
    let base = serve(Arc::default()).await;
    let gate = gate(&base, &SigningKey::rsa("k1"));
    let mut h = HeaderMap::new();
    h.insert("origin", "https://app.example".parse().unwrap());
    h.insert("access-control-request-method", "POST".parse().unwrap());
    let view = RequestView {
        method: &Method::OPTIONS,
        host: Some("app.example"),
        target: b"/payouts/1",
        headers: &h,
    };
    let public = Policy::public("open").with_approval(ApprovalRule::new("h", "m"));
    let outcome = gate.decide_policy_with(
        &public,
        proofgate_core::routes::Preflight::Forward,
        &view,
        "/payouts/1",
        ForwardOptions::default(),
    );
    assert!(outcome.approval.is_none());
    assert!(matches!(outcome.action, Action::Forward(_)));
}

#[tokio::test]
async fn asking_is_rate_limited_per_requester() {
    let shared: Shared = Arc::new(Mutex::new(Issuer {
        confirmation: json!({"id": "conf_1", "status": "pending"}),
        ..Issuer::default()
    }));
    let base = serve(shared.clone()).await;
    let issuer_key = SigningKey::rsa("k1");
    let mut revocation = RevocationConfig::new(&base);
    revocation.list_url = None;
    let gate = GateBuilder::new(&base)
        .revocation_config(revocation)
        .cookie_key(Some(vec![7; 32]))
        .api_key(Some("pk_test_approval_flow".into()))
        .approvals_config(proofgate_core::approval::ApprovalsConfig {
            per_requester_per_minute: 2,
            ..Default::default()
        })
        .build()
        .unwrap();
    let jwks = testing::jwks(&[&issuer_key]).to_string();
    gate.keys()
        .install(KeySet::from_jwks(jwks.as_bytes()).unwrap(), vec![1]);
    let alice = issuer_key.sign(&testing::claims(
        "p1",
        "email",
        "email",
        "alice@corp.example",
    ));
    let bob = issuer_key.sign(&testing::claims("p2", "email", "email", "bob@corp.example"));
    for _ in 0..2 {
        let (_, reason, _) = send(&gate, &headers(&alice, None), b"{}").await;
        assert_eq!(reason, "approval_required");
    }
    let (decision, reason, body) = send(&gate, &headers(&alice, None), b"{}").await;
    assert_eq!((decision, reason), ("deny", "approval_rate_limited"));
    assert_eq!(body.unwrap()["status"], 429);
    // Another requester is not held back by alice.
    let (_, reason, _) = send(&gate, &headers(&bob, None), b"{}").await;
    assert_eq!(reason, "approval_required");
    assert_eq!(shared.lock().unwrap().messages.len(), 3);
}

#[tokio::test]
async fn no_plaintext_to_a_configuration_that_encrypts_with_a_key_we_cannot_read() {
    let shared: Shared = Arc::new(Mutex::new(Issuer {
        keypair: Some(json!({"kid": "abc", "algorithm": "RSA-OAEP-256"})),
        ..Issuer::default()
    }));
    let base = serve(shared.clone()).await;
    let issuer_key = SigningKey::rsa("k1");
    let gate = gate(&base, &issuer_key);
    let alice = issuer_key.sign(&testing::claims(
        "p1",
        "email",
        "email",
        "alice@corp.example",
    ));
    let (decision, reason, _) = send(&gate, &headers(&alice, None), b"{}").await;
    assert_eq!((decision, reason), ("deny", "approval_unavailable"));
    assert!(shared.lock().unwrap().messages.is_empty());
}

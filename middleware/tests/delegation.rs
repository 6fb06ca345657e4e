//! Delegations through the tower layer: the delegation attack table
//! (`proofgate_core::testing::delegation_cases`, the same one the gateway runs) over HTTP
//! against a real axum server on loopback, with an issuer on loopback whose JWKS carries key
//! purposes, windows and tombstones; and the binding an application that terminates mTLS itself
//! gives by inserting the certificate's [`ClientDelegates`] into the request's extensions.

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::routing::any;
use axum::Router;
use proofgate_core::delegation::{ClientDelegates, Delegated};
use proofgate_core::proof::is_identity_spelling;
use proofgate_core::revocation::RevocationConfig;
use proofgate_core::testing::{
    delegation_cases, delegation_policies, DelegationIssuer, DelegationToken, IssuerServer,
    DELEGATION_ROUTES, DELEGATION_STATUS_LIST, OTHER_DELEGATE, TABLE_DELEGATE,
};
use proofgate_tower::{ProofLayer, Proofgate};
use serde_json::{json, Value};
use tower::ServiceExt;

/// The handler: the identity headers it received and the delegations in the extensions.
async fn echo(req: Request) -> axum::Json<Value> {
    let identity: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .filter(|(k, _)| is_identity_spelling(k.as_str()) && k.as_str() != "x-proof-delegation")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
        .collect();
    let handles: Vec<String> = req
        .extensions()
        .get::<Vec<Delegated>>()
        .map(|d| d.iter().map(|d| d.delegation.handle.clone()).collect())
        .unwrap_or_default();
    axum::Json(json!({
        "identity": identity,
        "handles": handles,
        "authorization_forwarded": req.headers().contains_key("authorization"),
    }))
}

struct Rig {
    issuer: DelegationIssuer,
    _server: IssuerServer,
    gate: Proofgate,
    app: Router,
    base: String,
    http: reqwest::Client,
}

async fn rig() -> Rig {
    let server = IssuerServer::start(json!({"keys": []})).await;
    let issuer = DelegationIssuer::new(&server.base_url());
    server.set_jwks(issuer.jwks());
    server.set_status_list(DELEGATION_STATUS_LIST, issuer.status_list());
    let mut revocation = RevocationConfig::new(&server.base_url());
    revocation.prefetch_status_lists = vec![issuer.status_list_url()];
    let gate = Proofgate::builder(&server.base_url())
        .cookie_key("0123456789abcdef0123456789abcdef")
        .secure_cookies(false)
        .revocation_config(revocation)
        .build()
        .unwrap();
    // Runs for the test's life.
    std::mem::forget(gate.spawn_refresher());
    let policies = delegation_policies();
    let mut app = Router::new();
    for (prefix, name) in DELEGATION_ROUTES {
        let policy = policies.iter().find(|p| p.name == name).unwrap().clone();
        app = app.merge(
            Router::new()
                .route(&format!("{prefix}/{{*rest}}"), any(echo))
                .route_layer(ProofLayer::new(gate.clone(), policy).strip_token(true)),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = app.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, served).await;
    });
    let started = Instant::now();
    while gate.ready().is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            gate.ready()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Rig {
        issuer,
        _server: server,
        gate,
        app,
        base,
        http: reqwest::Client::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attack_table_through_the_tower_layer() {
    let rig = rig().await;
    let mut failures = Vec::new();
    for case in delegation_cases() {
        let r = rig
            .http
            .get(format!("{}{}", rig.base, case.path))
            .headers(case.headers(&rig.issuer))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let h = r.headers().clone();
        let body = r.bytes().await.unwrap();
        if let Err(e) = case.check(status, &h, &body) {
            failures.push(format!("{}: {e}", case.name));
        }
        if status == 200 {
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["authorization_forwarded"], false, "{}", case.name);
            assert_eq!(
                v["handles"],
                json!(["ph_dlg_0123456789abcdef0123456789abcdef"]),
                "{}",
                case.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(rig.gate.enforcer().delegations().cache_stats().1 > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_applications_mtls_binds_through_the_extension() {
    let rig = rig().await;
    let token = rig.issuer.mint(DelegationToken::Valid);
    let call = |path: &str, client: Option<&str>| {
        let mut req = Request::builder()
            .uri(path)
            .header("authorization", format!("Delegation {token}"))
            // Headers bind nothing.
            .header("x-proof-delegation-bound", "true")
            .body(axum::body::Body::empty())
            .unwrap();
        if let Some(uri) = client {
            req.extensions_mut()
                .insert(ClientDelegates::from_uris([uri]));
        }
        let app = rig.app.clone();
        async move {
            let r = app.oneshot(req).await.unwrap();
            let status = r.status().as_u16();
            let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            match status {
                200 => format!(
                    "bound={}",
                    v["identity"]["x-proof-delegation-bound"].as_str().unwrap()
                ),
                _ => format!("{status} {}", v["reason"].as_str().unwrap_or("-")),
            }
        }
    };
    assert_eq!(call("/agents/x", None).await, "bound=false");
    assert_eq!(call("/bound/x", None).await, "401 delegate_unbound");
    // The certificate's URI SAN, canonicalized (`/bot/` → `/bot`), is the token's delegate.
    let san = format!("{TABLE_DELEGATE}/");
    assert_eq!(call("/agents/x", Some(&san)).await, "bound=true");
    assert_eq!(call("/bound/x", Some(&san)).await, "bound=true");
    assert_eq!(
        call("/bound/x", Some(OTHER_DELEGATE)).await,
        "403 delegate_mismatch"
    );
    assert_eq!(
        call("/agents/x", Some(OTHER_DELEGATE)).await,
        "403 delegate_mismatch"
    );
}

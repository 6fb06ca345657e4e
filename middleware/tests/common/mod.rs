//! A real stack for middleware tests: the sandbox as issuer and an axum server with proof layers,
//! both on loopback ephemeral ports.
#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::routing::any;
use axum::Router;
use proofgate_core::proof::is_identity_spelling;
use proofgate_core::revocation::RevocationConfig;
use proofgate_core::testing::{
    table_policies, TABLE_DEFAULT_POLICY, TABLE_PREFLIGHT_ROUTE, TABLE_ROUTES,
};
use proofgate_core::Policy;
use proofgate_sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use proofgate_tower::{Preflight, ProofLayer, Proofgate, Refresher, VerifiedProofs};
use tower::Layer;

pub const API_KEY: &str = "pk_test_middleware_tests";
pub const COOKIE_KEY: &str = "0123456789abcdef0123456789abcdef";

pub struct Stack {
    pub sandbox: SandboxHandle,
    pub gate: Proofgate,
    pub refresher: Option<Refresher>,
    pub base: String,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// What the test handler answers: who the extractor says the request is, and the identity
/// headers it saw.
async fn echo(proofs: Option<VerifiedProofs>, req: Request) -> axum::Json<serde_json::Value> {
    let identity: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .filter(|(k, _)| is_identity_spelling(k.as_str()) && k.as_str() != "x-proof-token")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
        .collect();
    axum::Json(serde_json::json!({
        "path": req.uri().path(),
        "policy": proofs.as_ref().map(|p| p.policy().to_owned()),
        "subjects": proofs
            .as_ref()
            .map(|p| p.iter().map(|p| p.subject().to_owned()).collect::<Vec<_>>())
            .unwrap_or_default(),
        "identity": identity,
    }))
}

fn policy(name: &str) -> Policy {
    table_policies()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
}

/// The table's routes: each prefix (and everything under it) behind its policy, the preflight
/// route with CORS preflights forwarded, everything else behind `deny-all`, and the step-up
/// endpoints.
pub fn app(gate: &Proofgate) -> Router {
    let mut app = Router::new();
    for (prefix, name) in TABLE_ROUTES {
        app = app.merge(
            Router::new()
                .route(prefix, any(echo))
                .route(&format!("{prefix}/{{*rest}}"), any(echo))
                .route_layer(ProofLayer::new(gate.clone(), policy(name))),
        );
    }
    let (prefix, name) = TABLE_PREFLIGHT_ROUTE;
    app = app.merge(
        Router::new()
            .route(prefix, any(echo))
            .route(&format!("{prefix}/{{*rest}}"), any(echo))
            .route_layer(ProofLayer::new(gate.clone(), policy(name)).preflight(Preflight::Forward)),
    );
    let deny_all = gate.layer(policy(TABLE_DEFAULT_POLICY));
    app.merge(gate.step_up_router())
        .fallback_service(deny_all.layer(any(echo)))
}

pub async fn stack() -> Stack {
    let mut sc = SandboxConfig::default();
    sc.rate_limit_per_minute = None;
    sc.webhook_retry_delay = Duration::from_millis(100);
    let sandbox = Sandbox::start_with("127.0.0.1:0", sc).await.unwrap();
    let mut revocation = RevocationConfig::new(sandbox.base_url());
    revocation.list_refresh = Duration::from_millis(500);
    let gate = Proofgate::builder(sandbox.base_url())
        .api_key(API_KEY)
        .cookie_key(COOKIE_KEY)
        .webhook_secret(sandbox.webhook_secret())
        .secure_cookies(false)
        .revocation_config(revocation)
        .build()
        .unwrap();
    let refresher = gate.spawn_refresher();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = app(&gate).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, service)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    let s = Stack {
        sandbox,
        gate,
        refresher: Some(refresher),
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        stop: Some(stop),
        server: Some(server),
    };
    s.wait_ready().await;
    s
}

impl Stack {
    pub async fn wait_ready(&self) {
        let start = Instant::now();
        while self.gate.ready().is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "keys and revocation data never arrived: {:?}",
                self.gate.ready()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A proof token from the sandbox through its API (create + test-verify).
    pub async fn token(&self, kind: &str, channel: &str, identifier: &str) -> (String, String) {
        let base = self.sandbox.base_url();
        let v: serde_json::Value = self
            .http
            .post(format!("{base}/api/v1/verifications"))
            .bearer_auth(API_KEY)
            .json(&serde_json::json!({"type": kind, "channel": channel, "identifier": identifier}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        let done: serde_json::Value = self
            .http
            .post(format!("{base}/api/v1/verifications/{id}/test-verify"))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (done["proof_token"].as_str().unwrap().to_string(), id)
    }

    /// GETs `path` with a bearer token, retrying while the answer is a 503 (a status-list slot
    /// newer than our copy, fetched in the background).
    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        let start = Instant::now();
        loop {
            let r = self
                .http
                .get(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            if r.status() != 503 || start.elapsed() > Duration::from_secs(10) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server, then the refreshers, then the sandbox: the graceful shutdown an
    /// application does.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
        if let Some(r) = self.refresher.take() {
            r.shutdown().await;
        }
        self.sandbox.shutdown().await;
    }
}

pub async fn parts(r: reqwest::Response) -> (u16, reqwest::header::HeaderMap, bytes::Bytes) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap())
}

pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or(serde_json::Value::Null)
}

//! A real HTTP server on an ephemeral loopback port that serves a JWKS, a revocation list and
//! status lists, and can be told to fail, hang or answer garbage.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serve the documents.
    Normal,
    /// Answer every request with this status and an empty body.
    Fail(u16),
    /// Never answer (the connection stays open).
    Hang,
    /// Answer 200 with a body that is not JSON.
    Garbage,
}

struct Inner {
    jwks: Mutex<Value>,
    revoked: Mutex<Value>,
    status_lists: Mutex<HashMap<String, String>>,
    mode: Mutex<Mode>,
    max_age: Mutex<Option<u64>>,
    jwks_hits: AtomicUsize,
    revocation_hits: AtomicUsize,
    status_hits: AtomicUsize,
}

/// The controllable issuer server. Dropping it stops the server.
pub struct IssuerServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl IssuerServer {
    /// Starts the server on `127.0.0.1:0` serving `jwks`, an empty revocation list and no status
    /// list.
    pub async fn start(jwks: Value) -> Self {
        let inner = Arc::new(Inner {
            jwks: Mutex::new(jwks),
            revoked: Mutex::new(super::revocation_list(None, &[])),
            status_lists: Mutex::new(HashMap::new()),
            mode: Mutex::new(Mode::Normal),
            max_age: Mutex::new(None),
            jwks_hits: AtomicUsize::new(0),
            revocation_hits: AtomicUsize::new(0),
            status_hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/.well-known/jwks.json", get(jwks_handler))
            .route("/api/v1/proofs/revoked", get(revoked_handler))
            .route("/status/{name}", get(status_handler))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            addr,
            inner,
            _shutdown: tx,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.base_url())
    }

    /// The revocation list URL.
    pub fn revocation_url(&self) -> String {
        format!("{}/api/v1/proofs/revoked", self.base_url())
    }

    /// The URL of the status list called `name`.
    pub fn status_list_url(&self, name: &str) -> String {
        format!("{}/status/{name}", self.base_url())
    }

    /// Replaces the JWKS document.
    pub fn set_jwks(&self, jwks: Value) {
        *self.inner.jwks.lock().unwrap() = jwks;
    }

    /// Replaces the revocation list document.
    pub fn set_revocation_list(&self, list: Value) {
        *self.inner.revoked.lock().unwrap() = list;
    }

    /// Publishes a status list JWT under `name`.
    pub fn set_status_list(&self, name: &str, jwt: String) {
        self.inner
            .status_lists
            .lock()
            .unwrap()
            .insert(name.to_string(), jwt);
    }

    /// Changes how every endpoint answers.
    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock().unwrap() = mode;
    }

    /// Sets the JWKS `Cache-Control: max-age` (none by default).
    pub fn set_max_age(&self, secs: Option<u64>) {
        *self.inner.max_age.lock().unwrap() = secs;
    }

    /// How many JWKS requests were received.
    pub fn jwks_hits(&self) -> usize {
        self.inner.jwks_hits.load(Ordering::SeqCst)
    }

    /// How many revocation list requests were received.
    pub fn revocation_hits(&self) -> usize {
        self.inner.revocation_hits.load(Ordering::SeqCst)
    }

    /// How many status list requests were received.
    pub fn status_hits(&self) -> usize {
        self.inner.status_hits.load(Ordering::SeqCst)
    }
}

async fn apply_mode(inner: &Inner) -> Option<Response> {
    let mode = *inner.mode.lock().unwrap();
    match mode {
        Mode::Normal => None,
        Mode::Fail(code) => Some(
            StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response(),
        ),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Some(StatusCode::GATEWAY_TIMEOUT.into_response())
        }
        Mode::Garbage => Some((StatusCode::OK, "<html>not json{{").into_response()),
    }
}

async fn jwks_handler(State(inner): State<Arc<Inner>>) -> Response {
    inner.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = apply_mode(&inner).await {
        return r;
    }
    let body = inner.jwks.lock().unwrap().to_string();
    let max_age = *inner.max_age.lock().unwrap();
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Some(secs) = max_age {
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            format!("public, max-age={secs}").parse().expect("header"),
        );
    }
    resp
}

async fn revoked_handler(State(inner): State<Arc<Inner>>) -> Response {
    inner.revocation_hits.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = apply_mode(&inner).await {
        return r;
    }
    let body = inner.revoked.lock().unwrap().to_string();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn status_handler(State(inner): State<Arc<Inner>>, Path(name): Path<String>) -> Response {
    inner.status_hits.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = apply_mode(&inner).await {
        return r;
    }
    let jwt = inner.status_lists.lock().unwrap().get(&name).cloned();
    match jwt {
        Some(jwt) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/statuslist+jwt")],
            jwt,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

//! Shared test support: sandboxes, clients, a webhook receiver and the OpenAPI contract check.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use proofgate_core::client::{ClientConfig, ProofApiClient};
use proofgate_core::webhook::{self, WebhookEvent};
use proofgate_core::RevocationStore;
use proofgate_sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use serde_json::Value;

pub const TEST_KEY: &str = "pk_test_sandbox_tests";
pub const LIVE_KEY: &str = "pk_live_sandbox_tests";

/// A sandbox that records its responses for the contract check.
pub async fn sandbox() -> SandboxHandle {
    sandbox_with(SandboxConfig::default()).await
}

/// A recording sandbox with `config`.
pub async fn sandbox_with(mut config: SandboxConfig) -> SandboxHandle {
    config.record_responses = true;
    config.webhook_retry_delay = Duration::from_millis(50);
    Sandbox::start_with("127.0.0.1:0", config)
        .await
        .expect("sandbox starts")
}

/// The project's client, with fast retries.
pub fn client(sb: &SandboxHandle, key: &str) -> ProofApiClient {
    ProofApiClient::with_config(sb.base_url(), key, fast()).expect("client")
}

/// The default policy with short delays so tests stay quick.
pub fn fast() -> ClientConfig {
    ClientConfig::default()
        .retry_base_delay(Duration::from_millis(20))
        .timeout(Duration::from_secs(10))
}

/// A raw HTTP client for hand-made requests.
pub fn raw() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest")
}

/// A received webhook.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub event: WebhookEvent,
}

/// A webhook endpoint on loopback that checks signatures and, when given a store, applies
/// `proof.revoked` at once — what the gateway's `/.proofgate/webhook` does.
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub fail_first: Arc<Mutex<usize>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct ReceiverState {
    secret: String,
    store: Option<Arc<RevocationStore>>,
    received: Arc<Mutex<Vec<Received>>>,
    fail_first: Arc<Mutex<usize>>,
}

async fn receive(State(st): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    {
        let mut left = st.fail_first.lock().expect("lock");
        if *left > 0 {
            *left -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    if webhook::verify_headers(st.secret.as_bytes(), &headers, &body).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = serde_json::from_slice::<WebhookEvent>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if event.event == "proof.revoked" {
        if let (Some(store), Some(id)) = (&st.store, event.subject_proof_id()) {
            store.revoke_now(id);
        }
    }
    st.received.lock().expect("lock").push(Received {
        headers,
        body,
        event,
    });
    StatusCode::OK
}

impl Receiver {
    pub async fn start(secret: &str, store: Option<Arc<RevocationStore>>) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let fail_first = Arc::new(Mutex::new(0));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(ReceiverState {
                secret: secret.to_string(),
                store,
                received: received.clone(),
                fail_first: fail_first.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            url: format!("http://{addr}/hook"),
            received,
            fail_first,
            _stop: tx,
        }
    }

    /// Waits (up to 10 s) for a verified webhook of `event`.
    pub async fn wait_for(&self, event: &str) -> Received {
        for _ in 0..200 {
            if let Some(r) = self
                .received
                .lock()
                .expect("lock")
                .iter()
                .find(|r| r.event.event == event)
            {
                return r.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {event} webhook arrived");
    }
}

// ----- the OpenAPI contract check -----

const OPENAPI: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../spec/proof-api/openapi.json"
));

/// Webhook event types of the official SDKs (proof-holdings-sdk 1.2.0) that `openapi.json`'s
/// `WebhookEventType` does not list.
const SDK_EVENT_TYPES: &[&str] = &[
    "confirmation.approved",
    "confirmation.denied",
    "authorization.approved",
    "authorization.denied",
    "proof.revoked",
    "proof.suspended",
    "proof.unsuspended",
    "account.deletion_scheduled",
    "account.deletion_cancelled",
];

/// OpenAPI 3.0's `nullable: true` becomes a JSON-Schema type union; everything else of draft 4
/// is kept as is.
fn to_json_schema(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), serde_json::json!([t, "null"]));
                }
            }
            for (_, child) in map.iter_mut() {
                to_json_schema(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        _ => {}
    }
}

/// Validates every JSON body the sandbox recorded against the OpenAPI response schema for its
/// path, method and status (falling back to `ErrorResponse` for an error status the document
/// does not list for that path). Returns how many bodies were checked.
pub fn assert_contract(sb: &SandboxHandle) -> usize {
    let mut doc: Value = serde_json::from_str(OPENAPI).expect("openapi parses");
    to_json_schema(&mut doc);
    // Where the official SDKs know more than `openapi.json`, the sandbox answers in both shapes:
    // the SDKs' event types (proof-holdings-sdk 1.2.0) are valid deliveries too.
    if let Some(Value::Array(events)) = doc.pointer_mut("/components/schemas/WebhookEventType/enum")
    {
        for extra in SDK_EVENT_TYPES {
            if !events.iter().any(|e| e == extra) {
                events.push(Value::from(*extra));
            }
        }
    }
    // Approvals (`spec/proof-api/AGENTS-AND-APPROVALS.md`): the official SDKs' `action_type:
    // "confirmation"`, the newer proof types `confirmation`/`authorization` (CONTRACT.md) and
    // the `browser` channel of an approval's proof are valid values too.
    for (pointer, extra) in [
        ("/components/schemas/ActionType/enum", &["confirmation"][..]),
        (
            "/components/schemas/VerificationType/enum",
            &["confirmation", "authorization"][..],
        ),
        (
            "/components/schemas/VerificationChannel/enum",
            &["browser"][..],
        ),
    ] {
        if let Some(Value::Array(values)) = doc.pointer_mut(pointer) {
            for x in extra {
                if !values.iter().any(|v| v == x) {
                    values.push(Value::from(*x));
                }
            }
        }
    }
    let components = doc["components"].clone();
    let mut checked = 0;
    let mut failures = Vec::new();
    for r in sb.recorded() {
        let Some(op) = doc["paths"]
            .get(&r.route)
            .and_then(|p| p.get(r.method.to_lowercase()))
        else {
            continue; // not in the document: the status list, proof status, hosted pages
        };
        let is_json = r
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json"));
        assert!(
            is_json,
            "{} {} → {}: not JSON ({:?})",
            r.method, r.path, r.status, r.content_type
        );
        let body: Value = serde_json::from_slice(&r.body).expect("recorded body is JSON");
        let status = r.status.to_string();
        let schema = match op["responses"]
            .get(&status)
            .or_else(|| op["responses"].get("default"))
        {
            Some(resp) => resp["content"]["application/json"]["schema"].clone(),
            None if r.status >= 400 => {
                serde_json::json!({"$ref": "#/components/schemas/ErrorResponse"})
            }
            None => {
                failures.push(format!(
                    "{} {} → {}: status not in the document",
                    r.method, r.route, r.status
                ));
                continue;
            }
        };
        let mut root = schema;
        if let Value::Object(m) = &mut root {
            m.insert("components".into(), components.clone());
        }
        let validator = jsonschema::draft4::new(&root).expect("schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if !errors.is_empty() {
            failures.push(format!(
                "{} {} → {}: {}\n  body: {}",
                r.method,
                r.path,
                r.status,
                errors.join("; "),
                body
            ));
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "contract violations:\n{}",
        failures.join("\n")
    );
    checked
}

/// The JSON payload of a compact JWS, and its header.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    use base64::Engine;
    let mut parts = token.split('.');
    let mut next = || {
        let p = parts.next().expect("part");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("json")
    };
    let header = next();
    let payload = next();
    (header, payload)
}

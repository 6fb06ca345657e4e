//! # proofgate-sandbox
//!
//! A local HTTP emulator of the proof.holdings Proof API in test mode: the embedded issuer
//! behind `proofgate dev`, the issuer in every end-to-end test, and the target of the load
//! harness. It follows `spec/proof-api/openapi.json` and `test-vectors.json` for shapes,
//! status codes and the error envelope, and issues real RS256 (or ES256) proof tokens that the
//! core verifier accepts against the sandbox's JWKS.
//!
//! | endpoint | notes |
//! | --- | --- |
//! | `GET /health`, `GET /api/v1` | no key |
//! | `GET /.well-known/jwks.json` | `Cache-Control: public, max-age=86400` |
//! | `GET /api/v1/proofs/revoked` | signed (`signature` = JWS over `{"revoked": […]}`, `kid`) |
//! | `GET /api/v1/proofs/status-list` | `application/statuslist+jwt`; tokens carry `status.status_list` |
//! | `POST/GET /api/v1/verifications`, `GET …/{id}`, `POST …/{id}/submit`, `…/{id}/test-verify` | key |
//! | `POST/GET /api/v1/sessions`, `GET …/{id}` | key; with or without `phone` (phone-first: the session learns the phone when completed) |
//! | `GET /api/v1/webhook-deliveries` (`status`, `event_type`, `verification_request_id`, `limit`, `page`), `GET …/stats`, `GET …/{id}`, `POST …/{id}/retry` | key; the deliveries the sandbox's webhook sender really made, each attempt recorded |
//! | `POST/GET /api/v1/verification-requests`, `GET/DELETE …/{id}` | key; `verification_url` is a hosted page here |
//! | `POST /api/v1/proofs/validate` | key optional |
//! | `GET /api/v1/proofs/{id}/status`, `POST …/{id}/revoke` | key; `{id}` may be a `ph_ctl_…` control-proof or `ph_dlg_…` delegation handle |
//! | `POST/GET /api/v1/delegations`, `GET …/{id}`, `POST …/{id}/revoke` | key; delegations from a domain control proof (module `delegations`) |
//! | `POST /api/v1/hitl`, `GET …/{id}`, `POST …/{id}/finalize` | key; HITL configurations (module `approvals`) |
//! | `POST/GET /api/v1/confirmations`, `GET …/{id}`, `POST …/{id}/approval-link`, `GET …/{id}/events` (SSE) | key; confirmations (module `approvals`) |
//! | `POST /api/v1/confirmations/{id}/test-approve`, `…/test-deny` | `pk_test_` key only |
//! | `GET /hosted/confirmations/{id}?e&n&s`, `POST …/approve`, `…/deny` | the hosted approval page, behind the link's HMAC |
//!
//! `docs/sandbox.md` describes the delegation and approval resources for people, with runnable
//! examples against `proofgate dev`.
//!
//! Where `openapi.json` and the official SDKs (proof-holdings-sdk 1.2.0) describe a resource
//! differently, the sandbox accepts both forms and answers with the fields of both.
//!
//! A session's `deep_link` opens the sandbox's stand-in for the messenger bot,
//! `GET /hosted/sessions/{id}`; `POST /hosted/sessions/{id}/complete` (optional form field
//! `phone`) completes it as the person would in the chat ([`SandboxHandle::complete_session`]
//! does the same).
//!
//! The hosted page of a verification request, `GET /hosted/requests/{id}`, has one form per
//! asset (`POST /hosted/requests/{id}/assets/{index}/complete`, fields `identifier` and
//! `channel`, both optional) and a button that completes every pending asset at once
//! (`POST /hosted/requests/{id}/complete`). Once the request is completed the person is sent with
//! `303 See Other` to `redirect_url`, with `verification_request_id` and `status` added to its
//! query; a `verification_request.completed` webhook is posted to `callback_url` and to every
//! configured webhook URL.
//!
//! Keys: `Authorization: Bearer pk_test_…` or `pk_live_…` (any suffix); `test-verify` refuses
//! `pk_live_` with 403 `test_mode_required`. Requests per key are limited to 100 a minute
//! (configurable), with `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`
//! (Unix seconds) and, on 429, `Retry-After`.
//!
//! Operators (tests, demos) steer it through [`SandboxHandle`]: rotate the signing key, withdraw
//! an old one (`proof_tombstones`), switch to ES256, make an endpoint fail, hang or answer 429
//! for a number of calls or a while ([`FailureRule`]), revoke a proof, complete a hosted
//! request, read webhook deliveries.
//!
//! ```no_run
//! # async fn run() -> Result<(), proofgate_sandbox::SandboxError> {
//! let sandbox = proofgate_sandbox::Sandbox::start("127.0.0.1:0").await?;
//! println!("Proof API at {}", sandbox.base_url());
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod approval_page;
mod approvals;
mod control;
mod delegations;
mod deliveries;
mod envelope;
mod hosted;
mod sessions;
mod state;
mod webhooks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proofgate_core::testing::SigningKey;
use serde_json::{json, Value};
use tokio::sync::watch;

pub use control::{Failure, FailureRule, RecordedResponse};
pub use webhooks::WebhookDelivery;

use state::{lock, Data, Keys};

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The persisted key file could not be read, parsed or written.
    #[error("key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A configured URL is not a valid URL.
    #[error("invalid URL {0}")]
    Url(String),
}

/// Options of the sandbox.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SandboxConfig {
    /// A file holding the RS256 signing key (PKCS#8 DER), created on first start, so that tokens
    /// survive a restart.
    ///
    /// Defaults to `None` (a fresh key each start).
    pub key_file: Option<PathBuf>,
    /// The URL clients reach the sandbox at, used in `verification_url`, deep links and the
    /// status-list `uri` of tokens.
    ///
    /// Defaults to `http://<bound address>`.
    pub public_url: Option<String>,
    /// Requests per minute per API key; `None` disables the limit (load tests).
    ///
    /// Defaults to `Some(100)`.
    pub rate_limit_per_minute: Option<u32>,
    /// Whether tokens carry a `status.status_list` slot and the status list is served.
    ///
    /// Defaults to `true`.
    pub status_list: bool,
    /// The status list's `ttl`, in seconds.
    ///
    /// Defaults to `60`.
    pub status_list_ttl: i64,
    /// `max-age` of the JWKS's `Cache-Control`.
    ///
    /// Defaults to `86400`.
    pub jwks_max_age: u64,
    /// `max-age` of the revocation list's `Cache-Control`.
    ///
    /// Defaults to `300`.
    pub revocation_max_age: u64,
    /// The webhook signing secret.
    ///
    /// Defaults to `whsec_sandbox_secret`.
    pub webhook_secret: String,
    /// URLs every webhook is posted to (besides a request's own `callback_url`).
    ///
    /// Defaults to none.
    pub webhook_urls: Vec<String>,
    /// Delivery attempts per webhook.
    ///
    /// Defaults to `3`.
    pub webhook_attempts: u32,
    /// Delay before the first redelivery; doubles after each.
    ///
    /// Defaults to `1 s`.
    pub webhook_retry_delay: Duration,
    /// Keep a copy of every API response, for contract tests ([`SandboxHandle::recorded`]).
    ///
    /// Defaults to `false`.
    pub record_responses: bool,
    /// Lifetime of issued tokens when the request does not say (`proof_expiry_days`).
    ///
    /// Defaults to 30 days.
    pub token_lifetime: Duration,
    /// The decision window of a HITL configuration created without `timeout_seconds`
    /// (whole seconds, at least 1).
    ///
    /// Defaults to `300 s`.
    pub hitl_timeout: Duration,
    /// Lifetime, in days, of an approval's proof token when the confirmation does not say
    /// (`proof_expiry_days`).
    ///
    /// Defaults to `1`.
    pub confirmation_proof_days: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            key_file: None,
            public_url: None,
            rate_limit_per_minute: Some(100),
            status_list: true,
            status_list_ttl: 60,
            jwks_max_age: 86_400,
            revocation_max_age: 300,
            webhook_secret: "whsec_sandbox_secret".into(),
            webhook_urls: Vec::new(),
            webhook_attempts: 3,
            webhook_retry_delay: Duration::from_secs(1),
            record_responses: false,
            token_lifetime: Duration::from_secs(30 * 86_400),
            hitl_timeout: Duration::from_secs(300),
            confirmation_proof_days: 1,
        }
    }
}

/// Starts sandboxes.
#[derive(Debug, Clone, Copy)]
pub struct Sandbox;

impl Sandbox {
    /// Starts a sandbox with the default [`SandboxConfig`] on `addr` (`127.0.0.1:0` for an
    /// ephemeral port).
    pub async fn start(addr: &str) -> Result<SandboxHandle, SandboxError> {
        Self::start_with(addr, SandboxConfig::default()).await
    }

    /// Starts a sandbox with `config` on `addr`.
    pub async fn start_with(
        addr: &str,
        config: SandboxConfig,
    ) -> Result<SandboxHandle, SandboxError> {
        let signing = Arc::new(load_or_generate_key(config.key_file.as_ref())?);
        let es256 = Arc::new(SigningKey::es256(format!(
            "sandbox-es256-{}",
            state::hex_id(4)
        )));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let base_url = match &config.public_url {
            Some(u) => {
                url::Url::parse(u).map_err(|_| SandboxError::Url(u.clone()))?;
                u.trim_end_matches('/').to_string()
            }
            None => format!("http://{local}"),
        };
        for u in &config.webhook_urls {
            url::Url::parse(u).map_err(|_| SandboxError::Url(u.clone()))?;
        }
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let delegation = Arc::new(SigningKey::rsa(format!(
            "sandbox-delegation-{}",
            state::hex_id(4)
        )));
        let mut link_secret = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut link_secret[..]);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SandboxError::Url(e.to_string()))?;
        let shared = Arc::new(Shared {
            webhook_urls: Mutex::new(config.webhook_urls.clone()),
            config,
            base_url,
            keys: Mutex::new(Keys {
                published: vec![signing.clone()],
                signing,
                es256,
                delegation,
                delegation_not_before: state::now(),
                tombstones: Vec::new(),
            }),
            data: Mutex::new(Data::default()),
            failures: Mutex::new(Vec::new()),
            hits: Mutex::new(HashMap::new()),
            rate: Mutex::new(HashMap::new()),
            recorded: Mutex::new(Vec::new()),
            deliveries: Mutex::new(Vec::new()),
            http,
            shutdown: shutdown_rx,
            runtime: tokio::runtime::Handle::current(),
            link_secret,
            changes: watch::channel(0).0,
        });
        approvals::spawn_sweeper(&shared);
        let app = api::router(shared.clone());
        let stop = shared.shutdown.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped(stop))
                .await;
        });
        tracing::info!(addr = %local, "sandbox Proof API listening");
        Ok(SandboxHandle {
            addr: local,
            shared,
            shutdown: shutdown_tx,
            task: Mutex::new(Some(task)),
        })
    }
}

/// Resolves once the sandbox is told to stop.
pub(crate) async fn stopped(mut rx: watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

fn load_or_generate_key(path: Option<&PathBuf>) -> Result<SigningKey, SandboxError> {
    let Some(path) = path else {
        return Ok(SigningKey::rsa(format!(
            "sandbox-rs256-{}",
            state::hex_id(4)
        )));
    };
    let err = |message: String| SandboxError::KeyFile {
        path: path.clone(),
        message,
    };
    match std::fs::read(path) {
        Ok(der) => SigningKey::rsa_from_pkcs8(kid_for(&der), &der).map_err(err),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fresh = SigningKey::rsa("pending");
            let der = fresh
                .rsa_pkcs8()
                .ok_or_else(|| err("cannot encode the key".into()))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            }
            std::fs::write(path, &der).map_err(|e| err(e.to_string()))?;
            SigningKey::rsa_from_pkcs8(kid_for(&der), &der).map_err(err)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// A persisted key's `kid` is derived from the key, so it is stable across restarts.
fn kid_for(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    let hex: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sandbox-rs256-{hex}")
}

/// State shared by the handlers and the handle.
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    pub(crate) base_url: String,
    pub(crate) keys: Mutex<Keys>,
    pub(crate) data: Mutex<Data>,
    pub(crate) failures: Mutex<Vec<FailureRule>>,
    pub(crate) hits: Mutex<HashMap<String, usize>>,
    pub(crate) rate: Mutex<HashMap<String, control::Window>>,
    pub(crate) recorded: Mutex<Vec<RecordedResponse>>,
    pub(crate) deliveries: Mutex<Vec<WebhookDelivery>>,
    pub(crate) webhook_urls: Mutex<Vec<String>>,
    pub(crate) http: reqwest::Client,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Signs approval links (random per start).
    pub(crate) link_secret: [u8; 32],
    /// Bumped on every confirmation decision, to wake event streams.
    pub(crate) changes: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn status_list_uri(&self) -> String {
        format!("{}/api/v1/proofs/status-list", self.base_url)
    }

    pub(crate) fn signing_key(&self) -> Arc<SigningKey> {
        lock(&self.keys).signing.clone()
    }

    /// Marks a verification verified and issues its token. The caller holds `data`.
    pub(crate) fn issue(
        &self,
        data: &mut Data,
        verification_id: &str,
    ) -> Option<state::ProofRecord> {
        let key = self.signing_key();
        let v = data.verifications.get_mut(verification_id)?;
        let now = state::now();
        v.status = "verified";
        v.verified_at = Some(now);
        v.updated_at = now;
        let mut claims = proofgate_core::testing::claims(&v.id, &v.kind, &v.channel, &v.identifier);
        claims.exp = Some(now + v.lifetime_secs);
        let idx = if self.config.status_list {
            let idx = data.statuses.len() as u64;
            data.statuses.push(0);
            claims = proofgate_core::testing::with_status(claims, &self.status_list_uri(), idx);
            Some(idx)
        } else {
            None
        };
        let token = key.sign(&claims);
        // A domain proof is a control proof: it gets the handle delegations name.
        let handle = (v.kind == "domain").then(|| format!("ph_ctl_{}", state::hex_id(16)));
        let record = state::ProofRecord {
            id: v.id.clone(),
            token: token.clone(),
            kind: v.kind.clone(),
            channel: v.channel.clone(),
            identifier_hash: claims
                .identifier_hash
                .as_deref()
                .unwrap_or_default()
                .to_owned(),
            user_id: claims.user_id.as_deref().unwrap_or_default().to_owned(),
            exp: now + v.lifetime_secs,
            verified_at: now,
            status_idx: idx,
            revoked: None,
            callback_url: v.callback_url.clone(),
            handle: handle.clone(),
        };
        if let Some(h) = handle {
            data.control_handles.insert(h, record.id.clone());
        }
        data.tokens.insert(token, record.id.clone());
        data.proofs.insert(record.id.clone(), record.clone());
        Some(record)
    }

    /// Issues the proof token of an approved confirmation (see `approvals`). The caller holds
    /// `data`. Returns the token.
    pub(crate) fn issue_confirmation(
        &self,
        data: &mut Data,
        id: &str,
        channel: &str,
        message: &str,
        lifetime_secs: i64,
    ) -> String {
        let key = self.signing_key();
        let now = state::now();
        let mut claims = proofgate_core::testing::claims(id, "confirmation", channel, message);
        claims.exp = Some(now + lifetime_secs);
        claims.decision = Some(Box::new(json!("approve")));
        let idx = if self.config.status_list {
            let idx = data.new_slot();
            claims = proofgate_core::testing::with_status(claims, &self.status_list_uri(), idx);
            Some(idx)
        } else {
            None
        };
        let token = key.sign(&claims);
        let record = state::ProofRecord {
            id: id.to_string(),
            token: token.clone(),
            kind: "confirmation".into(),
            channel: channel.into(),
            identifier_hash: claims
                .identifier_hash
                .as_deref()
                .unwrap_or_default()
                .to_owned(),
            user_id: claims.user_id.as_deref().unwrap_or_default().to_owned(),
            exp: now + lifetime_secs,
            verified_at: now,
            status_idx: idx,
            revoked: None,
            callback_url: None,
            handle: None,
        };
        data.tokens.insert(token.clone(), record.id.clone());
        data.proofs.insert(record.id.clone(), record);
        token
    }

    /// The proof id a path names: a proof id, or a domain proof's `ph_ctl_…` handle.
    pub(crate) fn proof_id_of(&self, id: &str) -> String {
        if id.starts_with("ph_ctl_") {
            if let Some(p) = lock(&self.data).control_handles.get(id) {
                return p.clone();
            }
        }
        id.to_string()
    }

    /// Revokes a proof: the list, the status list and a `proof.revoked` webhook; a control
    /// proof's delegations go with it (their status-list slots flip to revoked). Returns the
    /// revocation time and reason, or `None` for an unknown id. Revoking twice keeps the first.
    pub(crate) fn revoke(self: &Arc<Self>, proof_id: &str, reason: &str) -> Option<(i64, String)> {
        let (result, event) = {
            let mut data = lock(&self.data);
            let data = &mut *data;
            let proof = data.proofs.get_mut(proof_id)?;
            if let Some(done) = &proof.revoked {
                return Some(done.clone());
            }
            let now = state::now();
            proof.revoked = Some((now, reason.to_string()));
            if let Some(idx) = proof.status_idx.and_then(|i| usize::try_from(i).ok()) {
                if let Some(slot) = data.statuses.get_mut(idx) {
                    *slot = 1;
                }
            }
            data.revoked_order.push(proof_id.to_string());
            let event = json!({
                "event": "proof.revoked",
                "proof_id": proof_id,
                "revoked_at": state::time(now),
                "reason": reason,
                "test": true,
                "data": {"proof_id": proof_id, "revoked_at": state::time(now), "reason": reason},
            });
            let callback = proof.callback_url.clone();
            delegations::cascade(data, proof_id);
            ((now, reason.to_string()), (event, callback))
        };
        self.send_webhook(event.0, event.1.as_deref());
        Some(result)
    }

    /// Posts `payload` to `extra` (a request's callback URL) and every configured URL.
    pub(crate) fn send_webhook(self: &Arc<Self>, payload: Value, extra: Option<&str>) {
        let mut urls: Vec<String> = lock(&self.webhook_urls).clone();
        if let Some(u) = extra {
            if !urls.iter().any(|x| x == u) {
                urls.push(u.to_string());
            }
        }
        for url in urls {
            webhooks::deliver(self, url, payload.clone());
        }
    }
}

/// A running sandbox. Dropping it stops the server (in-flight requests are cut at once);
/// [`SandboxHandle::shutdown`] stops it gracefully.
pub struct SandboxHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("addr", &self.addr)
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

impl SandboxHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// `<base>/.well-known/jwks.json`.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.shared.base_url)
    }

    /// `<base>/api/v1/proofs/revoked`.
    pub fn revocation_url(&self) -> String {
        format!("{}/api/v1/proofs/revoked", self.shared.base_url)
    }

    /// `<base>/api/v1/proofs/status-list`, the `uri` in issued tokens.
    pub fn status_list_url(&self) -> String {
        self.shared.status_list_uri()
    }

    /// The webhook signing secret.
    pub fn webhook_secret(&self) -> &str {
        &self.shared.config.webhook_secret
    }

    /// The options it runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// Stops the server: no new connections; in-flight requests (and hangs) end at once.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let task = lock(&self.task).take();
        if let Some(task) = task {
            // Hangs watch the same signal, so this returns promptly; bounded all the same.
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    // ----- keys -----

    /// The `kid` new tokens are signed with.
    pub fn signing_kid(&self) -> String {
        lock(&self.shared.keys).signing.kid().to_string()
    }

    /// The JWKS document as served.
    pub fn jwks(&self) -> Value {
        lock(&self.shared.keys).jwks()
    }

    /// Rotates the signing key: a fresh RSA-2048 key signs from now on and is published; the
    /// previous keys stay published (so tokens already issued keep verifying) until
    /// [`SandboxHandle::retire_key`]. Returns the new `kid`.
    pub fn rotate_signing_key(&self) -> String {
        let key = Arc::new(SigningKey::rsa(format!(
            "sandbox-rs256-{}",
            state::hex_id(4)
        )));
        let kid = key.kid().to_string();
        let mut keys = lock(&self.shared.keys);
        keys.published.push(key.clone());
        keys.signing = key;
        kid
    }

    /// Publishes the ES256 key and signs with it from now on. Returns its `kid`.
    pub fn use_es256(&self) -> String {
        let mut keys = lock(&self.shared.keys);
        let key = keys.es256.clone();
        if !keys.published.iter().any(|k| k.kid() == key.kid()) {
            keys.published.push(key.clone());
        }
        keys.signing = key.clone();
        key.kid().to_string()
    }

    /// Removes a key from the JWKS. The key in use cannot be retired (returns `false`).
    pub fn retire_key(&self, kid: &str) -> bool {
        let mut keys = lock(&self.shared.keys);
        if keys.signing.kid() == kid {
            return false;
        }
        let before = keys.published.len();
        keys.published.retain(|k| k.kid() != kid);
        keys.published.len() != before
    }

    /// Withdraws a published key the way the issuer does when a key must no longer be trusted:
    /// it stays in the JWKS and is listed in its `proof_tombstones` (revoked now), so verifiers
    /// refuse what it signed. The key in use, or one not published, cannot be withdrawn (returns
    /// `false`); rotate first.
    pub fn withdraw_key(&self, kid: &str) -> bool {
        let mut keys = lock(&self.shared.keys);
        if keys.signing.kid() == kid || !keys.published.iter().any(|k| k.kid() == kid) {
            return false;
        }
        if !keys.tombstones.iter().any(|(k, _)| k == kid) {
            keys.tombstones.push((kid.to_owned(), state::now()));
        }
        true
    }

    /// The key in use, to mint tokens of one's own (hostile ones included) in tests.
    pub fn signing_key(&self) -> Arc<SigningKey> {
        self.shared.signing_key()
    }

    // ----- failures -----

    /// Adds a failure rule; rules are tried in the order added, the first that matches wins.
    pub fn inject(&self, rule: FailureRule) {
        lock(&self.shared.failures).push(rule);
    }

    /// Removes every failure rule.
    pub fn clear_failures(&self) {
        lock(&self.shared.failures).clear();
    }

    /// How many requests reached a route, by its template (e.g.
    /// `/api/v1/verifications/{id}/test-verify`) — failed and rate-limited ones included.
    pub fn hits(&self, route: &str) -> usize {
        lock(&self.shared.hits).get(route).copied().unwrap_or(0)
    }

    // ----- data -----

    /// Revokes a proof as `POST /api/v1/proofs/{id}/revoke` would. `false` for an unknown id.
    pub fn revoke(&self, proof_id: &str, reason: &str) -> bool {
        self.shared.revoke(proof_id, reason).is_some()
    }

    /// Completes every pending asset of a hosted verification request, as a person on the
    /// hosted page would. Returns the request as the API shows it, or `None` if unknown or
    /// already over.
    pub fn complete_request(&self, id: &str) -> Option<Value> {
        hosted::complete_all(&self.shared, id).ok()
    }

    /// Completes a phone-first session as the person would in the chat, sharing `phone` (a
    /// session created with one keeps it; without either, a sandbox number is used). Returns the
    /// session as the API shows it, or `None` if unknown, expired or not a phone number.
    pub fn complete_session(&self, id: &str, phone: Option<&str>) -> Option<Value> {
        sessions::complete(&self.shared, id, phone).ok()
    }

    /// Decides a pending confirmation as an approver on the hosted page would (channel
    /// `browser`). Returns the confirmation as the API shows it, or `None` if unknown or already
    /// decided.
    pub fn approve_confirmation(&self, id: &str) -> Option<Value> {
        approvals::decide(
            &self.shared,
            id,
            approvals::Decision::Approve,
            "browser",
            None,
        )
        .ok()
    }

    /// Denies a pending confirmation (channel `browser`); `None` if unknown or already decided.
    pub fn deny_confirmation(&self, id: &str) -> Option<Value> {
        approvals::decide(&self.shared, id, approvals::Decision::Deny, "browser", None).ok()
    }

    /// A fresh signed link to a pending confirmation's hosted approval page, as
    /// `POST /api/v1/confirmations/{id}/approval-link` answers; `None` if unknown or decided.
    pub fn approval_url(&self, id: &str) -> Option<String> {
        approvals::sweep(&self.shared);
        let exp = {
            let data = lock(&self.shared.data);
            let c = data.confirmations.get(id)?;
            (c.status == "pending").then_some(c.timeout_at)?
        };
        Some(approvals::approval_url(&self.shared, id, exp))
    }

    /// The control-proof handle (`ph_ctl_…`) of a domain proof, by proof (verification) id.
    pub fn control_proof_handle(&self, proof_id: &str) -> Option<String> {
        lock(&self.shared.data).proofs.get(proof_id)?.handle.clone()
    }

    /// The delegation key, published with `proof_purpose: "delegation"`: to mint delegation
    /// tokens of one's own (hostile ones included) in tests.
    pub fn delegation_signing_key(&self) -> Arc<SigningKey> {
        lock(&self.shared.keys).delegation.clone()
    }

    /// Suspends a delegation (by id or `ph_dlg_…` handle): its status-list slot becomes 2 and
    /// its `effective_status` `suspended`. `false` if unknown or revoked.
    pub fn suspend_delegation(&self, id: &str) -> bool {
        delegations::suspend(&self.shared, id, true)
    }

    /// Lifts a suspension: the slot is 0 again. `false` if unknown or revoked.
    pub fn unsuspend_delegation(&self, id: &str) -> bool {
        delegations::suspend(&self.shared, id, false)
    }

    /// Adds a URL every later webhook is posted to.
    pub fn add_webhook_url(&self, url: &str) {
        lock(&self.shared.webhook_urls).push(url.to_string());
    }

    /// Every webhook delivery so far, with its state.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        lock(&self.shared.deliveries).clone()
    }

    /// Every API response so far, when [`SandboxConfig::record_responses`] is on.
    pub fn recorded(&self) -> Vec<RecordedResponse> {
        lock(&self.shared.recorded).clone()
    }
}

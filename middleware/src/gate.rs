//! [`Proofgate`]: the state every [`ProofLayer`](crate::ProofLayer) of an application shares —
//! one key set, one revocation store, one verified-token cache, one step-up protocol — and the
//! [`Refresher`] that keeps keys and revocation data fresh in the background.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use proofgate_core::gate::{Gate, GateBuilder};
use proofgate_core::keys::{KeyStore, KeysConfig};
use proofgate_core::render::StepUpLinks;
use proofgate_core::revocation::{RevocationConfig, RevocationStore};
use proofgate_core::stepup::{StepUp, StepUpConfig};
use proofgate_core::tokens::TokenSource;
use proofgate_core::{Enforcer, Policy, VerifierConfig};

/// Why a [`Proofgate`] could not be built: the core's [`GateError`](proofgate_core::gate::GateError).
/// Per-request failures are never errors: they are decisions, answered as responses.
pub use proofgate_core::gate::GateError as InitError;

/// Builds a [`Proofgate`] for an issuer. Created by [`Proofgate::builder`].
#[derive(Debug, Clone)]
pub struct ProofgateBuilder {
    gate: GateBuilder,
    https: bool,
}

impl ProofgateBuilder {
    fn new(api_base: &str) -> Self {
        Self {
            gate: GateBuilder::new(api_base),
            https: false,
        }
    }

    /// Whether people reach this service over HTTPS (its own TLS, or a TLS terminator in
    /// front): the step-up return address (`redirect_url`) then uses `https`, as the gateway's
    /// does on a TLS listener. A tower service cannot see the connection, so it must be told;
    /// [`ProofgateBuilder::public_url`] settles scheme and host together and wins over this.
    ///
    /// Defaults to `false` (`http`, or the scheme of an absolute request URI, as HTTP/2 gives).
    pub fn https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// The Proof API key (`pk_live_…` or `pk_test_…`) used to start step-ups. Without one,
    /// step-up starts are answered `503 step_up_unavailable`.
    ///
    /// Defaults to none.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.gate = self.gate.api_key(Some(key.into()));
        self
    }

    /// Key of the step-up state cookie's HMAC, 32 bytes or more, the same on every replica.
    ///
    /// Defaults to a random key: flows then cannot finish on another replica or after a restart.
    pub fn cookie_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.gate = self.gate.cookie_key(Some(key.into()));
        self
    }

    /// Secret of incoming webhooks (`whsec_…`), to accept `proof.revoked` events.
    ///
    /// Defaults to none (the webhook endpoint answers 404).
    pub fn webhook_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.gate.step_up_config_mut().webhook_secret = Some(secret.into());
        self
    }

    /// Whether cookies are marked `Secure` (turn off only for plain-HTTP development).
    ///
    /// Defaults to `true`.
    pub fn secure_cookies(mut self, secure: bool) -> Self {
        self.gate.step_up_config_mut().secure_cookies = secure;
        self
    }

    /// Absolute URL of this site (e.g. `https://app.example`), used for the step-up
    /// `redirect_url`.
    ///
    /// Defaults to the request's own host, over `http` (or the scheme of an absolute request
    /// URI), and only for a host in [`ProofgateBuilder::allowed_hosts`] or a loopback name;
    /// any other `Host` is refused.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.gate.step_up_config_mut().public_url = Some(url.into());
        self
    }

    /// Host patterns (`app.example`, `*.example.com`) a step-up may build its `redirect_url` on
    /// when no [`ProofgateBuilder::public_url`] is set.
    ///
    /// Defaults to none (loopback names only).
    pub fn allowed_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.gate.step_up_config_mut().allowed_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Where tokens are looked for, in order.
    ///
    /// Defaults to `Authorization: Bearer`, then `x-proof-token`, then the `proof_token` cookie.
    pub fn token_sources(mut self, sources: Vec<TokenSource>) -> Self {
        self.gate = self.gate.token_sources(sources);
        self
    }

    /// The key store's settings.
    ///
    /// Defaults to `KeysConfig::new("{api_base}/.well-known/jwks.json")`.
    pub fn keys_config(mut self, config: KeysConfig) -> Self {
        self.gate = self.gate.keys_config(config);
        self
    }

    /// The revocation store's settings.
    ///
    /// Defaults to `RevocationConfig::new(api_base)`.
    pub fn revocation_config(mut self, config: RevocationConfig) -> Self {
        self.gate = self.gate.revocation_config(config);
        self
    }

    /// The verifier's settings (issuer, leeway, token size cap, cache capacity).
    ///
    /// Defaults to `VerifierConfig::default()`.
    pub fn verifier_config(mut self, config: VerifierConfig) -> Self {
        self.gate = self.gate.verifier_config(config);
        self
    }

    /// The step-up settings (prefix, cookie names, state lifetime, rate limits). The cookie key,
    /// webhook secret, `Secure` flag, public URL and allowed hosts set on this builder are kept.
    ///
    /// Defaults to `StepUpConfig::new(cookie_key)`.
    pub fn step_up_config(mut self, config: StepUpConfig) -> Self {
        let new = self.gate.step_up_config_mut();
        let kept = std::mem::replace(new, config);
        new.webhook_secret = kept.webhook_secret.or(new.webhook_secret.take());
        new.secure_cookies = kept.secure_cookies && new.secure_cookies;
        new.public_url = kept.public_url.or(new.public_url.take());
        if new.allowed_hosts.is_empty() {
            new.allowed_hosts = kept.allowed_hosts;
        }
        self
    }

    /// The pages browsers get instead of problem+json (branding, template): see
    /// [`proofgate_core::pages`].
    ///
    /// Defaults to `Pages::default()` (the built-in template, no branding).
    pub fn pages(mut self, pages: proofgate_core::pages::Pages) -> Self {
        self.gate = self.gate.pages(pages);
        self
    }

    /// The realm in `WWW-Authenticate`.
    ///
    /// Defaults to `proofgate`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.gate = self.gate.realm(realm);
        self
    }

    /// Builds the shared state. Nothing is fetched yet: start a [`Refresher`] with
    /// [`Proofgate::spawn_refresher`]; until the first fetch, decisions fail closed with
    /// `jwks_stale`.
    pub fn build(self) -> Result<Proofgate, InitError> {
        Ok(Proofgate::new(self.gate.build()?, self.https))
    }
}

pub(crate) struct Shared {
    pub(crate) gate: Gate,
    /// Whether people reach the service over HTTPS ([`ProofgateBuilder::https`]).
    pub(crate) https: bool,
    /// Policies by name, for step-up starts. Written when layers are built, read on `start`.
    policies: RwLock<HashMap<String, Arc<Policy>>>,
}

/// The state all the proof layers of an application share: one [`Enforcer`] (so one key set,
/// one revocation store and one verified-token cache), the step-up protocol, and the policies
/// the layers enforce (so `start?policy=…` knows them). Cheap to clone.
///
/// Build it with [`Proofgate::builder`], keep the [`Refresher`] from
/// [`Proofgate::spawn_refresher`] for as long as the application serves, and make a layer per
/// route or router with [`Proofgate::layer`].
#[derive(Clone)]
pub struct Proofgate {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Proofgate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proofgate")
            .field("gate", &self.shared.gate)
            .finish_non_exhaustive()
    }
}

impl Proofgate {
    /// A builder for the issuer at `api_base` (`https://api.proof.holdings`, or a sandbox's
    /// base URL); the JWKS, revocation list and status list derive from it.
    pub fn builder(api_base: &str) -> ProofgateBuilder {
        ProofgateBuilder::new(api_base)
    }

    /// State over parts built elsewhere (for an application that already runs an
    /// [`Enforcer`], or a test that installs keys by hand).
    pub fn from_parts(enforcer: Arc<Enforcer>, step_up: StepUp, links: StepUpLinks) -> Self {
        Self::from_gate(Gate::from_parts(enforcer, step_up, links))
    }

    /// State over a core [`Gate`] built elsewhere (reached over plain HTTP unless an absolute
    /// request URI says otherwise; see [`ProofgateBuilder::https`]).
    pub fn from_gate(gate: Gate) -> Self {
        Self::new(gate, false)
    }

    fn new(gate: Gate, https: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                gate,
                https,
                policies: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The core's gate: every decision and step-up answer is its.
    pub fn gate(&self) -> &Gate {
        &self.shared.gate
    }

    /// A layer enforcing `policy`. The policy is also registered for step-up starts (a later
    /// policy of the same name replaces it).
    pub fn layer(&self, policy: impl Into<Policy>) -> crate::ProofLayer {
        crate::ProofLayer::new(self.clone(), policy)
    }

    /// The decision engine.
    pub fn enforcer(&self) -> &Arc<Enforcer> {
        self.shared.gate.enforcer()
    }

    /// The step-up protocol.
    pub fn step_up(&self) -> &StepUp {
        self.shared.gate.step_up_protocol()
    }

    /// How step-up links and `WWW-Authenticate` are rendered.
    pub fn links(&self) -> &StepUpLinks {
        self.shared.gate.links()
    }

    /// The key store.
    pub fn keys(&self) -> &Arc<KeyStore> {
        self.shared.gate.keys()
    }

    /// The revocation store.
    pub fn revocation(&self) -> &Arc<RevocationStore> {
        self.shared.gate.revocation()
    }

    /// A registered policy by name.
    pub fn policy(&self, name: &str) -> Option<Arc<Policy>> {
        self.shared
            .policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Registers a policy for step-up starts (done by every layer built for it).
    pub fn register(&self, policy: Arc<Policy>) {
        self.shared
            .policies
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(policy.name.clone(), policy);
    }

    /// Whether keys, the revocation list and the status lists are fresh enough to decide:
    /// `Err` lists what is not (`jwks_stale`, `revocation_stale`, `status_list_unavailable`),
    /// as the gateway's `/readyz` does ([`Gate::readiness`]). For a readiness probe.
    pub fn ready(&self) -> Result<(), Vec<&'static str>> {
        self.shared.gate.readiness()
    }

    /// Starts the background refreshers of keys and revocation data on the current Tokio
    /// runtime. Keep the returned handle while the application serves; stop it with
    /// [`Refresher::shutdown`] (dropping it stops the tasks too, without waiting for them).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, as `tokio::spawn` does.
    pub fn spawn_refresher(&self) -> Refresher {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let keys = tokio::spawn(self.keys().clone().run(stopped(rx.clone())));
        let revocation = tokio::spawn(self.revocation().clone().run(stopped(rx)));
        Refresher {
            stop,
            tasks: vec![keys, revocation],
        }
    }
}

/// The running background refreshers of one [`Proofgate`]: the JWKS refresher and the revocation
/// refresher. Dropping it asks them to stop; [`Refresher::shutdown`] also waits until they have.
#[derive(Debug)]
#[must_use = "dropping the Refresher stops the background refresh"]
pub struct Refresher {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Refresher {
    /// Whether every refresher task is still running.
    pub fn is_running(&self) -> bool {
        self.tasks.iter().all(|t| !t.is_finished())
    }

    /// Stops the refreshers and waits for them to finish (an in-flight fetch is dropped; the last
    /// good data stays installed). For graceful shutdown, after the server has stopped serving.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

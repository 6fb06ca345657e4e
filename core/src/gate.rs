//! The gate: the one facade every adapter uses. Built once ([`GateBuilder`]) from the issuer's
//! settings, it holds the [`Enforcer`], the step-up protocol and the link settings, and answers
//! the three questions an adapter asks:
//!
//! - [`Gate::decide`]: what to do with this request under this route table — forward it (with
//!   which target, `Host` and header edits) or answer it (with which rendered response);
//! - [`Gate::step_up`]: answer a request to one of the step-up endpoints;
//! - [`Gate::readiness`]: whether decisions can be made on fresh data.
//!
//! An adapter translates its request into a [`RequestView`] (or a [`StepUpRequest`]) and applies
//! the [`Outcome`]: it decides nothing, renders nothing and builds no redirect of its own.
//!
//! ```
//! use std::sync::Arc;
//! use http::{HeaderMap, Method};
//! use proofgate_core::decision::RequestView;
//! use proofgate_core::gate::{Action, ForwardOptions, GateBuilder};
//! use proofgate_core::policy::Policy;
//! use proofgate_core::routes::{PathPattern, Route, RouteTable};
//!
//! let gate = GateBuilder::new("http://127.0.0.1:7700").build().unwrap();
//! let routes = RouteTable::new(
//!     vec![Route {
//!         name: "docs".into(),
//!         hosts: vec![],
//!         path: PathPattern::parse("/docs/**").unwrap(),
//!         methods: vec![],
//!         policy: Arc::new(Policy::public("open")),
//!         upstream: None,
//!         preflight: Default::default(),
//!     }],
//!     Arc::new(Policy::deny("zero-trust")),
//! );
//! let mut headers = HeaderMap::new();
//! headers.insert("host", "app.example".parse().unwrap());
//! let view = RequestView {
//!     method: &Method::GET,
//!     host: Some("app.example"),
//!     target: b"/docs/../docs/./intro",
//!     headers: &headers,
//!     client_delegates: &[],
//! };
//! let outcome = gate.decide(&routes, &view, ForwardOptions::default());
//! assert_eq!((outcome.route, outcome.decision), ("docs", "allow"));
//! let Action::Forward(forward) = outcome.action else { unreachable!() };
//! assert_eq!(forward.target.as_deref(), Some("/docs/intro"));
//!
//! let view = RequestView { target: b"/admin", ..view };
//! let outcome = gate.decide(&routes, &view, ForwardOptions::default());
//! assert_eq!((outcome.decision, outcome.reason), ("deny", "route_denied"));
//! let Action::Respond(answer) = outcome.action else { unreachable!() };
//! assert_eq!(answer.status, 403);
//! ```
//!
//! Layer 6 (the top): imports from every layer below, nothing imports it but the adapters.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::approval::{Approvals, ApprovalsConfig, HeldBody, LocalLedger, TicketLedger, Verdict};
use crate::client::ProofApiClient;
use crate::decision::{Decision, Enforcer, RequestView, Routed};
use crate::delegation::Delegated;
use crate::forward::{delegation_edits, upstream_edits, UpstreamEdits};
use crate::keys::{KeyStore, KeysConfig};
use crate::pages::{Page, Pages};
use crate::policy::Policy;
use crate::proof::VerifiedProof;
use crate::render::{self, Asked, Rendered, StepUpLinks};
use crate::revocation::{RevocationConfig, RevocationStore};
use crate::routes::{Preflight, RouteTable};
use crate::stepup::{query_param, Endpoint, StartRequest, StepUp, StepUpAnswer, StepUpConfig};
use crate::stepup::{EventSink, SharedOnce, SharedStartBudget};
use crate::tokens::TokenSource;
use crate::verify::{Verifier, VerifierConfig};

/// The route name [`Outcome::route`] reports for a request refused before any route was chosen
/// (an unacceptable target or host).
pub const NO_ROUTE: &str = "none";

/// Why a [`Gate`] could not be built. Per-request failures are never errors: they are decisions,
/// answered as responses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The issuer's base URL is not an absolute `http(s)` URL.
    #[error("issuer base URL {0:?} is not an absolute http(s) URL")]
    ApiBase(String),
    /// The Proof API client could not be built (bad base URL or API key).
    #[error("Proof API client: {0}")]
    ApiClient(String),
    /// The step-up cookie key is shorter than 32 bytes.
    #[error("the step-up cookie key must be at least 32 bytes")]
    CookieKeyTooShort,
}

/// Builds a [`Gate`]: one for the gateway, one per application for the tower layer, from the
/// same settings and with the same fallbacks.
#[derive(Debug, Clone)]
pub struct GateBuilder {
    api_base: String,
    keys: KeysConfig,
    revocation: RevocationConfig,
    verifier: VerifierConfig,
    sources: Vec<TokenSource>,
    step_up: StepUpConfig,
    cookie_key: Option<Vec<u8>>,
    api_key: Option<String>,
    realm: String,
    pages: Pages,
    shared_budget: Option<Arc<dyn SharedStartBudget>>,
    event_sink: Option<Arc<dyn EventSink>>,
    shared_once: Option<Arc<dyn SharedOnce>>,
    approvals: ApprovalsConfig,
    ticket_ledger: Option<Arc<dyn TicketLedger>>,
}

impl GateBuilder {
    /// Settings for the issuer at `api_base`: its JWKS, revocation list and status list derive
    /// from it, and every other setting has its default.
    pub fn new(api_base: &str) -> Self {
        let base = api_base.trim_end_matches('/');
        Self {
            api_base: base.to_string(),
            keys: KeysConfig::new(format!("{base}/.well-known/jwks.json")),
            revocation: RevocationConfig::new(base),
            verifier: VerifierConfig::default(),
            sources: TokenSource::defaults(),
            step_up: StepUpConfig::new(Vec::new()),
            cookie_key: None,
            api_key: None,
            realm: "proofgate".into(),
            pages: Pages::default(),
            shared_budget: None,
            event_sink: None,
            shared_once: None,
            approvals: ApprovalsConfig::default(),
            ticket_ledger: None,
        }
    }

    /// Step-up start budgets counted with other replicas (e.g. the `cluster` feature's Redis
    /// store); each replica's own limiter decides whenever it cannot be reached. Defaults to
    /// none: budgets per replica.
    pub fn shared_budget(mut self, budget: Arc<dyn SharedStartBudget>) -> Self {
        self.shared_budget = Some(budget);
        self
    }

    /// Single use across replicas (e.g. the `cluster` feature's Redis store): a step-up state
    /// completes once across all of them. Defaults to none: once per replica.
    pub fn shared_once(mut self, once: Arc<dyn SharedOnce>) -> Self {
        self.shared_once = Some(once);
        self
    }

    /// Where webhook events this gate applies are sent on to other replicas (e.g. the
    /// `cluster` feature's Redis stream). Defaults to none.
    pub fn event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.event_sink = Some(sink);
        self
    }

    /// The approvals' settings (see [`crate::approval`]). Defaults to
    /// `ApprovalsConfig::default()`.
    pub fn approvals_config(mut self, config: ApprovalsConfig) -> Self {
        self.approvals = config;
        self
    }

    /// Where used approval tickets are remembered. Defaults to a [`LocalLedger`] (single use
    /// per process); install a shared one for single use across replicas.
    pub fn ticket_ledger(mut self, ledger: Arc<dyn TicketLedger>) -> Self {
        self.ticket_ledger = Some(ledger);
        self
    }

    /// The pages browsers get (branding, template). Defaults to `Pages::default()`.
    pub fn pages(mut self, pages: Pages) -> Self {
        self.pages = pages;
        self
    }

    /// The key store's settings. Defaults to `KeysConfig::new("{api_base}/.well-known/jwks.json")`.
    pub fn keys_config(mut self, config: KeysConfig) -> Self {
        self.keys = config;
        self
    }

    /// The revocation store's settings. Defaults to `RevocationConfig::new(api_base)`.
    pub fn revocation_config(mut self, config: RevocationConfig) -> Self {
        self.revocation = config;
        self
    }

    /// The verifier's settings. Defaults to `VerifierConfig::default()`.
    pub fn verifier_config(mut self, config: VerifierConfig) -> Self {
        self.verifier = config;
        self
    }

    /// Where tokens are looked for, in order. Defaults to [`TokenSource::defaults`].
    pub fn token_sources(mut self, sources: Vec<TokenSource>) -> Self {
        self.sources = sources;
        self
    }

    /// The step-up settings; their `cookie_key` is replaced by [`GateBuilder::cookie_key`].
    /// Defaults to `StepUpConfig::new(..)`.
    pub fn step_up_config(mut self, config: StepUpConfig) -> Self {
        self.step_up = config;
        self
    }

    /// The current step-up settings, to adjust in place.
    pub fn step_up_config_mut(&mut self) -> &mut StepUpConfig {
        &mut self.step_up
    }

    /// The state cookie's HMAC key, 32 bytes or more, the same on every replica. Defaults to
    /// none: a random key is made (and a warning logged), so a step-up can finish only on the
    /// replica and process that started it.
    pub fn cookie_key(mut self, key: Option<Vec<u8>>) -> Self {
        self.cookie_key = key;
        self
    }

    /// The Proof API key for step-up. Defaults to none: step-up starts answer 503.
    pub fn api_key(mut self, key: Option<String>) -> Self {
        self.api_key = key;
        self
    }

    /// The realm in `WWW-Authenticate`. Defaults to `proofgate`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Builds the gate. Nothing is fetched yet: the key and revocation stores' `run` loops
    /// (background tasks the adapter starts) fetch; until then decisions fail closed with
    /// `jwks_stale`.
    pub fn build(self) -> Result<Gate, GateError> {
        if !(self.api_base.starts_with("http://") || self.api_base.starts_with("https://")) {
            return Err(GateError::ApiBase(self.api_base));
        }
        let mut step_up = self.step_up;
        step_up.cookie_key = match self.cookie_key {
            Some(key) if key.len() < 32 => return Err(GateError::CookieKeyTooShort),
            Some(key) => key,
            None => {
                tracing::warn!("no step-up cookie key set (PROOFGATE_COOKIE_KEY): using a random key, so step-ups cannot finish on another replica or after a restart");
                (0..32).map(|_| rand::random::<u8>()).collect()
            }
        };
        let api = match &self.api_key {
            Some(key) => Some(
                ProofApiClient::new(&self.api_base, key.as_str())
                    .map_err(|e| GateError::ApiClient(e.to_string()))?,
            ),
            None => None,
        };
        let keys = KeyStore::new(self.keys);
        let revocation = RevocationStore::new(self.revocation, keys.clone());
        let verifier = Arc::new(Verifier::new(keys, self.verifier));
        let enforcer = Arc::new(Enforcer::new(verifier, revocation, self.sources));
        let links = StepUpLinks {
            prefix: step_up.prefix.clone(),
            realm: self.realm,
        };
        let pages = Arc::new(self.pages);
        let approvals = Approvals::new(
            self.approvals,
            &step_up.cookie_key,
            api.clone(),
            self.ticket_ledger
                .unwrap_or_else(|| Arc::new(LocalLedger::default())),
            pages.clone(),
            &step_up.prefix,
            step_up.secure_cookies,
        );
        let step_up = StepUp::new(step_up, api)
            .with_pages(pages)
            .with_shared_budget(self.shared_budget)
            .with_event_sink(self.event_sink)
            .with_shared_once(self.shared_once);
        Ok(Gate::from_parts(enforcer, step_up, links).with_approvals(approvals))
    }
}

/// How an allowed request is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardOptions {
    /// Remove the token (bearer `Authorization`, token headers, the proof cookie) before
    /// forwarding. Defaults to `false`.
    pub strip_token: bool,
    /// Set the identity headers (`x-proof-subject`, …). Client-sent ones are removed either
    /// way. Defaults to `true`.
    pub identity_headers: bool,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        Self {
            strip_token: false,
            identity_headers: true,
        }
    }
}

/// An allowed request: what to change before it is sent upstream.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The origin-form request-target to send instead of the one received (the normalized path
    /// and the query as received); `None` when the received one is already exactly that.
    pub target: Option<String>,
    /// The `Host` to send instead of the one received (an absolute-form target's authority).
    pub host: Option<String>,
    /// Header edits: client-sent identity headers (and, if configured, the token) removed, ours
    /// set.
    pub edits: UpstreamEdits,
    /// The verified proofs that satisfied the policy (empty on public routes).
    pub proofs: Vec<Arc<VerifiedProof>>,
    /// The delegations that satisfied the policy's delegation requirements, each with whether
    /// its delegate was bound.
    pub delegations: Vec<Delegated>,
}

/// What the adapter does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send the request upstream with these changes.
    Forward(Forward),
    /// Answer with this response; nothing reaches the upstream.
    Respond(Rendered),
}

/// A decided request, with what the adapter logs and counts.
#[derive(Debug, Clone)]
pub struct Outcome<'t> {
    /// The route's name ([`crate::routes::DEFAULT_ROUTE_NAME`] for the default, [`NO_ROUTE`]
    /// when refused before routing).
    pub route: &'t str,
    /// The upstream the route names, if any (else the adapter's default).
    pub upstream: Option<&'t str>,
    /// `allow`, `deny` or `step_up`.
    pub decision: &'static str,
    /// The machine-readable reason; empty for `allow`.
    pub reason: &'static str,
    /// What to do.
    pub action: Action,
    /// A request the policy allowed that waits for a person's approval: an adapter that holds
    /// requests for approval reads the body and calls [`Gate::approve`]; any other answers
    /// [`Outcome::action`], a `503 approval_unavailable` (fail closed).
    pub approval: Option<Box<PendingApproval>>,
}

/// An allowed request whose policy asks for a person's approval ([`crate::approval`]).
#[derive(Debug, Clone)]
pub struct PendingApproval {
    /// The policy's approval.
    pub rule: Arc<crate::policy::ApprovalRule>,
    /// The policy's name.
    pub policy: String,
    /// The normalized path and the query as received: what the ticket binds.
    pub target: String,
    /// How the request is forwarded once approved (the ticket is taken off as well).
    pub forward: Forward,
}

/// What [`Gate::approve`] decided, with what the adapter logs and counts.
#[derive(Debug, Clone)]
pub struct ApprovalOutcome {
    /// `allow` (forwarded once), `approval` (202: waiting for a person) or `deny`.
    pub decision: &'static str,
    /// The machine-readable reason; empty when forwarded.
    pub reason: &'static str,
    /// What to do.
    pub action: Action,
}

/// A webhook body as the adapter read it (up to [`crate::webhook::MAX_BODY_BYTES`]).
#[derive(Debug, Clone)]
pub enum WebhookBody {
    /// Not read (not a webhook, or not a `POST`).
    None,
    /// The whole body.
    Read(Bytes),
    /// Longer than [`crate::webhook::MAX_BODY_BYTES`]; reading stopped.
    TooLarge,
}

/// A request to a step-up endpoint, as the adapter received it.
pub struct StepUpRequest<'a> {
    /// The method.
    pub method: &'a Method,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The query, without `?` (empty when none).
    pub query: &'a str,
    /// `https` when the request arrived over TLS, else `http`.
    pub scheme: &'a str,
    /// The `Host` (or `:authority`) as received.
    pub host: Option<&'a str>,
    /// The host patterns the adapter's current routes name: this site's own names, which a
    /// start may return to (see [`StepUp::origin`]).
    pub site_hosts: &'a [String],
    /// The client's address, for rate limiting starts.
    pub client: &'a str,
    /// Looks a policy up by name (the adapter's current policies), for `start`.
    pub policy: &'a (dyn Fn(&str) -> Option<Arc<Policy>> + Sync),
    /// The body, for `webhook`.
    pub body: WebhookBody,
}

/// The one facade of the core; see the [module docs](self).
pub struct Gate {
    enforcer: Arc<Enforcer>,
    step_up: StepUp,
    links: StepUpLinks,
    approvals: Approvals,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("enforcer", &self.enforcer)
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate over parts built elsewhere (an application that already runs an [`Enforcer`], a
    /// test that installs keys by hand).
    pub fn from_parts(enforcer: Arc<Enforcer>, step_up: StepUp, links: StepUpLinks) -> Self {
        let random: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
        let approvals = Approvals::new(
            ApprovalsConfig::default(),
            &random,
            None,
            Arc::new(LocalLedger::default()),
            step_up.pages().clone(),
            &links.prefix,
            step_up.config().secure_cookies,
        );
        Self {
            enforcer,
            step_up,
            links,
            approvals,
        }
    }

    /// The same gate with these approvals (see [`crate::approval`]).
    pub fn with_approvals(mut self, approvals: Approvals) -> Self {
        self.approvals = approvals;
        self
    }

    /// The approvals.
    pub fn approvals(&self) -> &Approvals {
        &self.approvals
    }

    /// The decision engine.
    pub fn enforcer(&self) -> &Arc<Enforcer> {
        &self.enforcer
    }

    /// The step-up protocol.
    pub fn step_up_protocol(&self) -> &StepUp {
        &self.step_up
    }

    /// How step-up links and `WWW-Authenticate` are rendered.
    pub fn links(&self) -> &StepUpLinks {
        &self.links
    }

    /// The key store (its `run` loop is the adapter's to start).
    pub fn keys(&self) -> &Arc<KeyStore> {
        self.enforcer.verifier().keys()
    }

    /// The revocation store (its `run` loop is the adapter's to start).
    pub fn revocation(&self) -> &Arc<RevocationStore> {
        self.enforcer.revocation()
    }

    /// Which step-up endpoint `path` names, if any.
    pub fn endpoint(&self, path: &str) -> Option<Endpoint> {
        self.step_up.endpoint(path)
    }

    /// Whether every document a decision may need is fresh: `Err` lists what is not —
    /// `jwks_stale`, `revocation_stale`, `status_list_unavailable` (a status list fetched at
    /// start is missing or expired, so every token naming it would be `status_unavailable`).
    pub fn readiness(&self) -> Result<(), Vec<&'static str>> {
        let mut problems = Vec::new();
        if self.keys().is_stale() {
            problems.push("jwks_stale");
        }
        if self.revocation().is_stale() {
            problems.push("revocation_stale");
        }
        if !self.revocation().status_lists_usable() {
            problems.push("status_list_unavailable");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Decides a request under a route table: the request-target and host are checked, the
    /// path normalized, the route chosen and its policy applied ([`Enforcer::decide_request`]);
    /// the outcome says what to forward or what to answer. A refused gRPC call
    /// ([`render::is_grpc`]) is answered with a gRPC status (HTTP `200`, see [`render`]'s
    /// module docs): read [`Outcome::decision`], not the answer's status, for the verdict.
    pub fn decide<'t>(
        &self,
        routes: &'t RouteTable,
        req: &RequestView<'_>,
        options: ForwardOptions,
    ) -> Outcome<'t> {
        match self.enforcer.decide_request(routes, req) {
            Routed::InvalidPath(_) => self.refused_before_routing(
                req,
                "invalid_path",
                "The request path is not acceptable",
            ),
            Routed::InvalidHost => self.refused_before_routing(
                req,
                "invalid_host",
                "The request must name exactly one host",
            ),
            Routed::Decided {
                route,
                rewrite,
                host,
                decision,
                ..
            } => {
                let return_to = match &rewrite {
                    Some(target) => target.as_str(),
                    None => std::str::from_utf8(req.target).unwrap_or("/"),
                };
                let (decision, reason, mut action, mut approval) =
                    self.apply(decision, route.policy, req, return_to, options);
                if let Some(pending) = &mut approval {
                    pending.forward.target = rewrite.clone();
                    pending.forward.host = host.clone();
                }
                if let Action::Forward(f) = &mut action {
                    f.target = rewrite;
                    f.host = host;
                }
                Outcome {
                    route: route.name,
                    upstream: route.upstream,
                    decision,
                    reason,
                    action,
                    approval,
                }
            }
        }
    }

    /// Decides a request under one policy (the tower layer: the application's router has
    /// chosen the route). `return_to` is the original path and query, for step-up links. A CORS
    /// preflight is decided like any request ([`Preflight::Deny`]; see
    /// [`Gate::decide_policy_with`]).
    pub fn decide_policy(
        &self,
        policy: &Policy,
        req: &RequestView<'_>,
        return_to: &str,
        options: ForwardOptions,
    ) -> Outcome<'static> {
        self.decide_policy_with(policy, Preflight::Deny, req, return_to, options)
    }

    /// [`Gate::decide_policy`] with the route's CORS preflight setting: under
    /// [`Preflight::Forward`] a CORS preflight ([`crate::decision::cors_preflight`]) is allowed
    /// without a policy decision ([`Enforcer::decide_with_preflight`]).
    pub fn decide_policy_with(
        &self,
        policy: &Policy,
        preflight: Preflight,
        req: &RequestView<'_>,
        return_to: &str,
        options: ForwardOptions,
    ) -> Outcome<'static> {
        let decision = self.enforcer.decide_with_preflight(policy, preflight, req);
        let (decision, reason, action, approval) =
            self.apply(decision, policy, req, return_to, options);
        Outcome {
            route: "",
            upstream: None,
            decision,
            reason,
            action,
            approval,
        }
    }

    fn apply(
        &self,
        decision: Decision,
        policy: &Policy,
        req: &RequestView<'_>,
        return_to: &str,
        options: ForwardOptions,
    ) -> (
        &'static str,
        &'static str,
        Action,
        Option<Box<PendingApproval>>,
    ) {
        let kind = decision.kind();
        match decision {
            Decision::Allow {
                proofs,
                delegations,
            } => {
                let identity: &[_] = if options.identity_headers {
                    &proofs
                } else {
                    &[]
                };
                let mut edits = upstream_edits(
                    req.headers,
                    identity,
                    self.enforcer.sources(),
                    options.strip_token,
                );
                let used: &[_] = if options.identity_headers {
                    &delegations
                } else {
                    &[]
                };
                delegation_edits(&mut edits, req.headers, used, options.strip_token);
                let forward = Forward {
                    target: None,
                    host: None,
                    edits,
                    proofs,
                    delegations,
                };
                // A CORS preflight carries no body and changes nothing: never held.
                if let Some(rule) = policy
                    .approval
                    .as_ref()
                    .filter(|_| crate::decision::cors_preflight(req).is_none())
                {
                    let pending = PendingApproval {
                        rule: rule.clone(),
                        policy: policy.name.clone(),
                        target: return_to.to_owned(),
                        forward,
                    };
                    let reason = crate::reason::Reason::ApprovalUnavailable;
                    let answer = self.error_answer(
                        req.headers,
                        reason.status(),
                        reason.as_str(),
                        "This request needs an approval, which is not supported here",
                        (
                            "Approval is not available here",
                            "This request needs a person's approval, which this site cannot \
                             ask for. Nothing was sent.",
                        ),
                        None,
                    );
                    return (
                        "deny",
                        reason.as_str(),
                        Action::Respond(answer),
                        Some(Box::new(pending)),
                    );
                }
                (kind, "", Action::Forward(forward), None)
            }
            Decision::Refuse(refusal) => {
                let navigation = render::is_navigation(req.method);
                let html = render::wants_html(req.headers);
                let asked = Asked {
                    return_to,
                    html,
                    navigation,
                    back: if navigation {
                        None
                    } else {
                        render::same_site_referer(req.headers, req.host)
                    },
                    // Only a page tells a wrong identity apart: API clients skip the lookup.
                    wrong_identity: html
                        && refusal.reason() == crate::reason::Reason::PolicyUnmet
                        && self.holds_a_kind_asked_for(policy, req.headers),
                    grpc: render::is_grpc(req.headers),
                };
                let answer = render::render_refusal(
                    &refusal,
                    policy,
                    &asked,
                    &self.links,
                    self.step_up.pages(),
                );
                (
                    kind,
                    refusal.reason().as_str(),
                    Action::Respond(answer),
                    None,
                )
            }
        }
    }

    /// Whether the request carries a valid proof of a type `policy` asks for (only computed
    /// for a `policy_unmet` refusal: the tokens are verified again, from the cache).
    fn holds_a_kind_asked_for(&self, policy: &Policy, headers: &HeaderMap) -> bool {
        let Ok(tokens) = crate::tokens::extract_tokens(headers, self.enforcer.sources()) else {
            return false;
        };
        let wanted: Vec<&str> = policy
            .requirements()
            .iter()
            .flat_map(|r| r.types.iter().map(String::as_str))
            .collect();
        let any_type = policy
            .requirements()
            .iter()
            .any(|r| r.types.is_empty() && r.delegation.is_none());
        tokens
            .iter()
            .filter_map(|t| self.enforcer.check_token(t).ok())
            .any(|p| {
                any_type
                    || p.claims
                        .proof_type
                        .as_deref()
                        .is_some_and(|k| wanted.contains(&k))
            })
    }

    /// Answers a request to a step-up endpoint, with the outcome and reason the adapter logs
    /// and counts ([`StepUpAnswer`]).
    pub async fn step_up(&self, endpoint: Endpoint, req: StepUpRequest<'_>) -> StepUpAnswer {
        let step_up = &self.step_up;
        match endpoint {
            Endpoint::Start => {
                let html = render::wants_html(req.headers);
                let policy = query_param(req.query, "policy").and_then(|n| (req.policy)(&n));
                let start = StartRequest {
                    query: req.query,
                    scheme: req.scheme,
                    host: req.host,
                    site_hosts: req.site_hosts,
                    client: req.client,
                    html,
                    headers: req.headers,
                };
                step_up.start(policy.as_deref(), start).await
            }
            Endpoint::Callback => {
                step_up
                    .callback(&self.enforcer, req.headers, req.query, req.policy)
                    .await
            }
            Endpoint::Logout => step_up.logout(req.headers, req.query),
            Endpoint::Webhook => {
                let refused = |status, code, title| StepUpAnswer {
                    response: render::simple(status, code, title),
                    outcome: "refused",
                    reason: code,
                };
                if req.method != Method::POST {
                    return refused(405, "method_not_allowed", "Webhooks are POSTed");
                }
                match req.body {
                    WebhookBody::Read(body) => {
                        let answer = step_up.webhook(&self.enforcer, req.headers, &body);
                        // Signed and new: a confirmation's decision is the approvals'.
                        if answer.outcome == "applied" {
                            self.approvals.on_webhook(&self.enforcer, &body);
                        }
                        answer
                    }
                    WebhookBody::None => step_up.webhook(&self.enforcer, req.headers, b""),
                    WebhookBody::TooLarge => {
                        refused(413, "body_too_large", "The webhook body is too large")
                    }
                }
            }
        }
    }

    /// Decides a request held for approval ([`Outcome::approval`]) once the adapter has read
    /// its body (up to [`crate::approval::ApprovalsConfig::max_body_bytes`]): a confirmation is
    /// created and `202` answered, or the request's ticket is redeemed — forwarded once when
    /// approved, without the ticket — or refused. See [`crate::approval`].
    pub async fn approve(
        &self,
        pending: PendingApproval,
        method: &Method,
        headers: &HeaderMap,
        body: HeldBody<'_>,
    ) -> ApprovalOutcome {
        let held = crate::approval::Held {
            rule: &pending.rule,
            policy: &pending.policy,
            method,
            target: &pending.target,
            headers,
            proofs: &pending.forward.proofs,
            delegations: &pending.forward.delegations,
            body,
        };
        let answer = self.approvals.decide(&self.enforcer, held).await;
        let reason = answer.reason.map_or("", |r| r.as_str());
        let action = match answer.verdict {
            Verdict::Forward => {
                let mut forward = pending.forward;
                crate::approval::strip_ticket(&mut forward.edits, headers);
                Action::Forward(forward)
            }
            Verdict::Respond(r) => Action::Respond(r),
        };
        ApprovalOutcome {
            decision: answer.decision,
            reason,
            action,
        }
    }

    /// The confirmation id `path` names when it is the approval status endpoint
    /// (`<prefix>approvals/<id>`).
    pub fn approval_status_endpoint<'p>(&self, path: &'p str) -> Option<&'p str> {
        self.approvals.status_endpoint(path)
    }

    /// Answers the approval status endpoint for confirmation `cid`; the outcome is
    /// `pending`, `approved`, `denied`, `expired`, `refused` or `failed`.
    pub async fn approval_status(
        &self,
        cid: &str,
        method: &Method,
        headers: &HeaderMap,
        query: &str,
    ) -> StepUpAnswer {
        let (response, outcome, reason) = self
            .approvals
            .status_page(&self.enforcer, cid, method, headers, query)
            .await;
        StepUpAnswer {
            response,
            outcome,
            reason,
        }
    }

    /// The pages browsers are answered with.
    pub fn pages(&self) -> &Pages {
        self.step_up.pages()
    }

    /// An answer that is not a policy decision (an upstream that does not answer, a request the
    /// adapter cannot read): problem+json `{type, title, status, reason}`, for a browser
    /// ([`render::wants_html`]) a page with `heading` and `message` and a "Try again" link to
    /// `retry` when given, and for a gRPC call ([`render::is_grpc`]) a gRPC status
    /// ([`render::grpc_code_for_http`] of `status`, `title` as its message, `reason` as
    /// `proofgate-reason`).
    pub fn error_answer(
        &self,
        headers: &HeaderMap,
        status: u16,
        reason: &str,
        title: &str,
        (heading, message): (&str, &str),
        retry: Option<&str>,
    ) -> Rendered {
        if render::is_grpc(headers) {
            return render::grpc(
                render::grpc_code_for_http(status),
                title,
                reason,
                None,
                None,
            );
        }
        if !render::wants_html(headers) {
            return render::simple(status, reason, title);
        }
        let mut page = Page::new(status, reason, heading, message);
        if let Some(retry) = retry {
            page = page.action("Try again", retry);
        }
        self.pages()
            .render(&page.action("Go to the home page", "/"))
    }

    fn refused_before_routing(
        &self,
        req: &RequestView<'_>,
        reason: &'static str,
        title: &str,
    ) -> Outcome<'static> {
        let answer = self.error_answer(
            req.headers,
            400,
            reason,
            title,
            (
                "This address can't be opened",
                "The address or request is not one this site accepts. Check the link.",
            ),
            None,
        );
        Outcome {
            route: NO_ROUTE,
            upstream: None,
            decision: "deny",
            reason,
            action: Action::Respond(answer),
            approval: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySet;
    use crate::policy::{OnFailure, Requirement};
    use crate::revocation::RevocationConfig;
    use crate::routes::{PathPattern, Route};
    use crate::testing::{self, SigningKey};

    /// A gate whose issuer key `k1` is installed by hand (no network), and that key.
    fn gate() -> (Gate, SigningKey) {
        let issuer = SigningKey::rsa("k1");
        let mut revocation = RevocationConfig::new("http://127.0.0.1:9");
        revocation.list_url = None;
        let gate = GateBuilder::new("http://127.0.0.1:9")
            .revocation_config(revocation)
            .cookie_key(Some(vec![7; 32]))
            .build()
            .unwrap();
        let jwks = testing::jwks(&[&issuer]).to_string();
        gate.keys()
            .install(KeySet::from_jwks(jwks.as_bytes()).unwrap(), vec![1]);
        (gate, issuer)
    }

    fn staff() -> Policy {
        Policy::any_of(
            "staff",
            vec![Requirement::of_type("email").identifiers(["alice@corp.example"])],
        )
        .on_failure(OnFailure::StepUp)
    }

    fn grpc_headers(token: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/grpc+proto".parse().unwrap());
        // A gRPC call is answered as gRPC even if it says it takes HTML.
        h.insert("accept", "text/html".parse().unwrap());
        h.insert("host", "app.example".parse().unwrap());
        if let Some(t) = token {
            h.insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        h
    }

    fn header<'a>(r: &'a Rendered, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    /// Checks a Trailers-Only answer and returns its `grpc-status`.
    fn trailers_only<'o>(outcome: &'o Outcome<'_>) -> (u8, &'o Rendered) {
        let Action::Respond(r) = &outcome.action else {
            panic!("not refused: {outcome:?}");
        };
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty(), "{:?}", r.body);
        assert_eq!(header(r, "content-type"), Some("application/grpc"));
        assert_eq!(header(r, "proofgate-reason"), Some(outcome.reason));
        assert!(header(r, "www-authenticate").is_none());
        assert!(header(r, "location").is_none());
        let code = header(r, "grpc-status").unwrap().parse().unwrap();
        (code, r)
    }

    fn view<'a>(target: &'a [u8], headers: &'a HeaderMap) -> RequestView<'a> {
        RequestView {
            method: &Method::POST,
            host: headers.get("host").and_then(|v| v.to_str().ok()),
            target,
            headers,
            client_delegates: &[],
        }
    }

    #[test]
    fn grpc_refusals_are_trailers_only_statuses() {
        let (gate, issuer) = gate();
        let path = "/corp.Admin/ListUsers";
        let start = gate.links().start_url("staff", path);
        let decide = |h: &HeaderMap, policy: &Policy| {
            gate.decide_policy(policy, &view(b"", h), path, ForwardOptions::default())
        };

        // No proof, step-up policy: UNAUTHENTICATED with the start link as metadata.
        let o = decide(&grpc_headers(None), &staff());
        assert_eq!((o.decision, o.reason), ("step_up", "missing"));
        let (code, r) = trailers_only(&o);
        assert_eq!(code, 16);
        assert_eq!(
            header(r, "grpc-message"),
            Some("A proof token is required.")
        );
        assert_eq!(header(r, "proofgate-step-up"), Some(start.as_str()));
        assert_eq!(header(r, "proofgate-policy"), Some("staff"));

        // A valid proof that does not meet the policy: PERMISSION_DENIED, step-up still offered.
        let mallory = issuer.sign(&testing::claims(
            "m",
            "email",
            "email",
            "mallory@corp.example",
        ));
        let o = decide(&grpc_headers(Some(&mallory)), &staff());
        assert_eq!(o.reason, "policy_unmet");
        let (code, r) = trailers_only(&o);
        assert_eq!(code, 7);
        assert_eq!(header(r, "proofgate-step-up"), Some(start.as_str()));

        // Deny on failure: no step-up link; an expired proof is UNAUTHENTICATED.
        let deny = staff().on_failure(OnFailure::Deny);
        let mut expired = testing::claims("a", "email", "email", "alice@corp.example");
        expired.iat = Some(testing::now() - 7200);
        expired.exp = Some(testing::now() - 3600);
        let o = decide(&grpc_headers(Some(&issuer.sign(&expired))), &deny);
        let (code, r) = trailers_only(&o);
        assert_eq!((code, o.reason), (16, "expired"));
        assert!(header(r, "proofgate-step-up").is_none());
        let o = decide(&grpc_headers(Some(&mallory)), &deny);
        assert_eq!(trailers_only(&o).0, 7);

        // Alice is let through: the call is forwarded with her identity.
        let alice = issuer.sign(&testing::claims(
            "a",
            "email",
            "email",
            "alice@corp.example",
        ));
        let o = decide(&grpc_headers(Some(&alice)), &staff());
        assert!(matches!(o.action, Action::Forward(ref f) if f.proofs.len() == 1));

        // gRPC-Web and other content types keep their answers.
        let mut web = grpc_headers(None);
        web.insert("content-type", "application/grpc-web".parse().unwrap());
        web.insert("accept", "application/json".parse().unwrap());
        let Action::Respond(r) = decide(&web, &staff()).action else {
            panic!()
        };
        assert_eq!(r.status, 401);
        assert_eq!(header(&r, "content-type"), Some("application/problem+json"));
    }

    #[test]
    fn grpc_unavailable_denied_and_refused_before_routing() {
        // Keys never fetched: UNAVAILABLE.
        let stale = GateBuilder::new("http://127.0.0.1:9")
            .cookie_key(Some(vec![7; 32]))
            .build()
            .unwrap();
        let (_, issuer) = gate();
        let token = issuer.sign(&testing::claims("a", "email", "email", "a@b.example"));
        let h = grpc_headers(Some(&token));
        let o = stale.decide_policy(
            &staff(),
            &view(b"", &h),
            "/x.Y/Z",
            ForwardOptions::default(),
        );
        let (code, r) = trailers_only(&o);
        assert_eq!((code, o.reason), (14, "jwks_stale"));
        assert!(header(r, "proofgate-step-up").is_none());

        let (gate, _) = gate();
        let routes = RouteTable::new(
            vec![Route {
                name: "admin".into(),
                hosts: vec![],
                path: PathPattern::parse("/corp.Admin/**").unwrap(),
                methods: vec![],
                policy: Arc::new(staff()),
                upstream: None,
                preflight: Default::default(),
            }],
            Arc::new(Policy::deny("zero-trust")),
        );
        let h = grpc_headers(None);
        let o = gate.decide(
            &routes,
            &view(b"/corp.Other/Call", &h),
            ForwardOptions::default(),
        );
        let (code, r) = trailers_only(&o);
        assert_eq!((code, o.reason), (7, "route_denied"));
        assert_eq!(header(r, "proofgate-policy"), Some("zero-trust"));
        let o = gate.decide(
            &routes,
            &view(b"/corp.Admin/List", &h),
            ForwardOptions::default(),
        );
        assert_eq!(trailers_only(&o).0, 16);

        // Refused before routing: INVALID_ARGUMENT, no policy named.
        let o = gate.decide(
            &routes,
            &view(b"/corp.Admin%2fList", &h),
            ForwardOptions::default(),
        );
        let (code, r) = trailers_only(&o);
        assert_eq!((code, o.reason), (3, "invalid_path"));
        assert!(header(r, "proofgate-policy").is_none());
        let mut no_host = h.clone();
        no_host.remove("host");
        let o = gate.decide(
            &routes,
            &view(b"/corp.Admin/List", &no_host),
            ForwardOptions::default(),
        );
        assert_eq!((trailers_only(&o).0, o.reason), (3, "invalid_host"));

        // Answers that are not decisions: an upstream that does not answer is UNAVAILABLE.
        let r = gate.error_answer(
            &h,
            502,
            "upstream_unavailable",
            "Bad gateway",
            ("", ""),
            None,
        );
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "grpc-status"), Some("14"));
        assert_eq!(header(&r, "grpc-message"), Some("Bad gateway"));
    }

    fn preflight_headers(origin: bool, announced: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", "api.example".parse().unwrap());
        h.insert("accept", "*/*".parse().unwrap());
        h.insert("x-proof-subject", "spoofed".parse().unwrap());
        if origin {
            h.insert("origin", "https://app.example".parse().unwrap());
        }
        for m in announced {
            h.append("access-control-request-method", m.parse().unwrap());
        }
        h
    }

    #[test]
    fn cors_preflights_follow_the_routes_setting() {
        let (gate, _) = gate();
        let route = |name: &str, path: &str, methods: Vec<Method>, preflight| Route {
            name: name.into(),
            hosts: vec![],
            path: PathPattern::parse(path).unwrap(),
            methods,
            policy: Arc::new(staff()),
            upstream: Some(format!("{name}-upstream")),
            preflight,
        };
        let routes = RouteTable::new(
            vec![
                route("api", "/api/**", vec![], Preflight::Forward),
                route("posts", "/posts/**", vec![Method::POST], Preflight::Forward),
                route("admin", "/admin/**", vec![], Preflight::Deny),
            ],
            Arc::new(Policy::deny("zero-trust")),
        );
        let decide = |method: &Method, target: &str, headers: &HeaderMap| {
            let view = RequestView {
                method,
                host: Some("api.example"),
                target: target.as_bytes(),
                headers,
                client_delegates: &[],
            };
            let o = gate.decide(&routes, &view, ForwardOptions::default());
            (o.route, o.upstream, o.decision, o.reason, o.action)
        };
        let options = Method::OPTIONS;
        let preflight = preflight_headers(true, &["PUT"]);

        // Forwarded without a decision: no proofs, client-sent identity headers removed.
        let (route, upstream, decision, _, action) = decide(&options, "/api/x", &preflight);
        assert_eq!(
            (route, upstream, decision),
            ("api", Some("api-upstream"), "allow")
        );
        let Action::Forward(f) = action else { panic!() };
        assert!(f.proofs.is_empty());
        assert!(f.edits.remove.iter().any(|h| h == "x-proof-subject"));
        assert!(f.edits.set.is_empty());

        // A route that covers only POST forwards the preflights of its POSTs, not of a GET.
        let post = preflight_headers(true, &["POST"]);
        let (route, _, decision, ..) = decide(&options, "/posts/1", &post);
        assert_eq!((route, decision), ("posts", "allow"));
        let get = preflight_headers(true, &["GET"]);
        let (route, _, decision, reason, _) = decide(&options, "/posts/1", &get);
        assert_eq!(
            (route, decision, reason),
            ("default", "deny", "route_denied")
        );

        // Not preflights: decided under the policy like any request.
        for (method, headers) in [
            (&options, preflight_headers(false, &["PUT"])),
            (&options, preflight_headers(true, &[])),
            (&options, preflight_headers(true, &["PUT", "POST"])),
            (&options, preflight_headers(true, &["NOT A METHOD"])),
            (&Method::GET, preflight_headers(true, &["PUT"])),
        ] {
            let (route, _, decision, reason, _) = decide(method, "/api/x", &headers);
            assert_eq!(
                (route, decision, reason),
                ("api", "step_up", "missing"),
                "{method} {headers:?}"
            );
        }
        // A route that denies preflights (the default) decides them.
        let (route, _, decision, reason, _) = decide(&options, "/admin/x", &preflight);
        assert_eq!((route, decision, reason), ("admin", "step_up", "missing"));
        // `OPTIONS *` names no route: the default decides it.
        let (route, _, decision, ..) = decide(&options, "*", &preflight);
        assert_eq!((route, decision), ("default", "deny"));

        // One policy (the tower layer): the caller says what preflights get.
        let view = RequestView {
            method: &options,
            host: Some("api.example"),
            target: b"",
            headers: &preflight,
            client_delegates: &[],
        };
        let forward = gate.decide_policy_with(
            &staff(),
            Preflight::Forward,
            &view,
            "/api/x",
            ForwardOptions::default(),
        );
        assert_eq!(forward.decision, "allow");
        let deny = gate.decide_policy(&staff(), &view, "/api/x", ForwardOptions::default());
        assert_eq!((deny.decision, deny.reason), ("step_up", "missing"));
        let not_preflight = RequestView {
            method: &Method::DELETE,
            ..view
        };
        let o = gate.decide_policy_with(
            &staff(),
            Preflight::Forward,
            &not_preflight,
            "/api/x",
            ForwardOptions::default(),
        );
        assert_eq!(o.reason, "missing");
    }
}

//! Reasons, decisions and the [`Enforcer`] that makes them.

use std::sync::Arc;

use crate::clock::Now;
use crate::delegation::{extract_delegations, Delegated, DelegationVerifier};
use crate::policy::{OnFailure, Policy, Rule};
use crate::proof::VerifiedProof;
use crate::reason::{Family, Reason};
use crate::revocation::RevocationStore;
use crate::routes::{Preflight, RouteMatch, RouteTable};
use crate::tokens::{extract_tokens, TokenSource};
use crate::verify::Verifier;

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Forward it; `proofs` are the verified proofs that satisfied the policy (for identity
    /// headers and extractors), empty on public routes.
    Allow {
        /// The proofs.
        proofs: Vec<Arc<VerifiedProof>>,
        /// The delegations that satisfied delegation requirements (empty unless the policy has
        /// one), each with whether its delegate was bound.
        delegations: Vec<Delegated>,
    },
    /// Answer instead of forwarding ([`crate::render::render`] makes the answer).
    Refuse(Refusal),
}

/// A refused request: what to answer, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Answer with the reason's status.
    Deny(Reason),
    /// Offer a hosted verification (302 for browsers, 401 with a start link for API clients).
    StepUp(Reason),
}

impl Refusal {
    /// Why.
    pub fn reason(self) -> Reason {
        match self {
            Refusal::Deny(r) | Refusal::StepUp(r) => r,
        }
    }

    /// `deny` or `step_up`.
    pub fn kind(self) -> &'static str {
        match self {
            Refusal::Deny(_) => "deny",
            Refusal::StepUp(_) => "step_up",
        }
    }
}

impl Decision {
    /// Allowed with no proof and no delegation (public routes, forwarded preflights).
    pub fn allow_none() -> Self {
        Decision::Allow {
            proofs: Vec::new(),
            delegations: Vec::new(),
        }
    }

    /// The reason, `None` for `Allow`.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Decision::Allow { .. } => None,
            Decision::Refuse(r) => Some(r.reason()),
        }
    }

    /// `allow`, `deny` or `step_up`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Refuse(r) => r.kind(),
        }
    }
}

/// A routed request: either refused for its target or host, or decided under its route's
/// policy.
#[derive(Debug)]
pub enum Routed<'t> {
    /// The request-target is not accepted, or its path is ambiguous or malformed (an encoded
    /// `/`, `\`, NUL, a bad escape, `foo:/admin`): answer 400 `invalid_path`.
    InvalidPath(crate::path::PathError),
    /// The request names no host, or more than one `Host` (RFC 9112 §3.2): answer 400
    /// `invalid_host`. Deciding it anyway would skip every host-restricted route.
    InvalidHost,
    /// The route and the decision.
    Decided {
        /// The matched route (or the default).
        route: crate::routes::RouteMatch<'t>,
        /// The normalized path the decision was made on (`*` for `OPTIONS *`).
        normalized: String,
        /// The origin-form request-target to send upstream — the normalized path and the query
        /// as received — when it differs from the target as received; `None` when the received
        /// target is already exactly that.
        rewrite: Option<String>,
        /// The host the route was chosen for, when it is not the `Host` header as received (an
        /// absolute-form target's authority): the adapter sets `Host` to it upstream.
        host: Option<String>,
        /// The decision.
        decision: Decision,
    },
}

/// What an adapter knows about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The host as the adapter received it: the `Host` header, or HTTP/2's `:authority`.
    /// An absolute-form target's authority takes precedence over it.
    pub host: Option<&'a str>,
    /// The request-target exactly as received (path and query, or an absolute-form URI, or
    /// `*`); see [`crate::path::request_target`].
    pub target: &'a [u8],
    /// The headers.
    pub headers: &'a http::HeaderMap,
    /// The delegates the adapter resolved itself for this connection (the canonical URI SANs
    /// of a verified mTLS client certificate, [`crate::delegation::ClientDelegates`]); empty
    /// when none, and a delegation is then unbound. Never taken from a request header.
    pub client_delegates: &'a [String],
}

/// The method a CORS preflight announces: `Some` when `req` is an `OPTIONS` request with an
/// `Origin` header and one `Access-Control-Request-Method` header that names a method (the
/// Fetch standard's preflight), else `None` — such a request is decided like any other.
///
/// ```
/// use http::{HeaderMap, Method};
/// use proofgate_core::decision::{cors_preflight, RequestView};
/// let mut headers = HeaderMap::new();
/// headers.insert("origin", "https://app.example".parse().unwrap());
/// headers.insert("access-control-request-method", "PUT".parse().unwrap());
/// let view = RequestView { method: &Method::OPTIONS, host: Some("api.example"), target: b"/x", headers: &headers, client_delegates: &[] };
/// assert_eq!(cors_preflight(&view), Some(Method::PUT));
/// assert_eq!(cors_preflight(&RequestView { method: &Method::GET, ..view }), None);
/// let mut no_origin = headers.clone();
/// no_origin.remove("origin");
/// assert_eq!(cors_preflight(&RequestView { headers: &no_origin, ..view }), None);
/// ```
pub fn cors_preflight(req: &RequestView<'_>) -> Option<http::Method> {
    if req.method != http::Method::OPTIONS || !req.headers.contains_key(http::header::ORIGIN) {
        return None;
    }
    let mut announced = req
        .headers
        .get_all(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        .iter();
    let method = announced.next()?;
    if announced.next().is_some() {
        return None;
    }
    http::Method::from_bytes(method.as_bytes().trim_ascii()).ok()
}

/// Which route forwards a CORS preflight that announces `announced`, if any: the route the
/// preflight itself matched, or else the route the announced request would match (a route that
/// covers only `POST` still says what happens to its preflights), when that route's
/// [`Preflight`] is `Forward`.
fn preflight_forwarded_by<'t>(
    routes: &'t RouteTable,
    matched: RouteMatch<'t>,
    announced: &http::Method,
    host: &str,
    path: &str,
) -> Option<RouteMatch<'t>> {
    let forwards = |m: &RouteMatch<'_>| m.route.is_some_and(|r| r.preflight == Preflight::Forward);
    if forwards(&matched) {
        return Some(matched);
    }
    let m = routes.route(announced, Some(host), path);
    forwards(&m).then_some(m)
}

/// Turns a request and a policy into a [`Decision`]. The one place decisions are made.
#[derive(Debug)]
pub struct Enforcer {
    verifier: Arc<Verifier>,
    revocation: Arc<RevocationStore>,
    sources: Vec<TokenSource>,
    delegations: DelegationVerifier,
}

impl Enforcer {
    /// An enforcer over a verifier and a revocation store, reading tokens from `sources`.
    pub fn new(
        verifier: Arc<Verifier>,
        revocation: Arc<RevocationStore>,
        sources: Vec<TokenSource>,
    ) -> Self {
        let config = crate::delegation::DelegationConfig {
            issuer: verifier.config().issuer.clone(),
            leeway: verifier.config().leeway,
            cache_capacity: verifier.config().cache_capacity,
        };
        let delegations =
            DelegationVerifier::new(verifier.keys().clone(), revocation.clone(), config);
        Self {
            verifier,
            revocation,
            sources,
            delegations,
        }
    }

    /// The delegation verifier (same keys, status lists and cache settings as proofs).
    pub fn delegations(&self) -> &DelegationVerifier {
        &self.delegations
    }

    /// The verifier.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// The revocation store.
    pub fn revocation(&self) -> &Arc<RevocationStore> {
        &self.revocation
    }

    /// The token sources.
    pub fn sources(&self) -> &[TokenSource] {
        &self.sources
    }

    /// Verifies one token fully: signature and claims (cached), then revocation (never cached).
    pub fn check_token(&self, token: &str) -> Result<Arc<VerifiedProof>, Reason> {
        self.check_token_at(token, Now::read())
    }

    /// [`Enforcer::check_token`] as of `now`.
    pub fn check_token_at(&self, token: &str, now: Now) -> Result<Arc<VerifiedProof>, Reason> {
        let proof = self.verifier.verify_with(token, now)?;
        self.revocation.check_at(&proof.claims, now)?;
        Ok(proof)
    }

    /// Routes a request and decides it: the request-target is checked (origin-form, `http`/`https`
    /// absolute-form, or `OPTIONS *`; anything else refused), its path normalized (an ambiguous
    /// one is refused), the host taken from the target or the one `Host` header (none, or two,
    /// is refused), the route table picks the policy and upstream, and the policy is applied.
    /// The gateway's whole per-request logic. The upstream must be sent the normalized path
    /// ([`Routed::Decided::rewrite`]).
    ///
    /// A CORS preflight ([`cors_preflight`]) is allowed without a policy decision (no proofs)
    /// when the route it matches, or else the route the request it announces would match (by
    /// path, host and the method in `Access-Control-Request-Method`), has
    /// [`Preflight::Forward`]; that route is the one reported, and its upstream is used.
    /// Otherwise it is decided like any `OPTIONS` request.
    pub fn decide_request<'t>(&self, routes: &'t RouteTable, req: &RequestView<'_>) -> Routed<'t> {
        use crate::path::{normalize_path, request_target, RequestTarget};
        let target = match request_target(req.target, req.method) {
            Ok(t) => t,
            Err(e) => return Routed::InvalidPath(e),
        };
        if req
            .headers
            .get_all(http::header::HOST)
            .iter()
            .nth(1)
            .is_some()
        {
            return Routed::InvalidHost;
        }
        let (normalized, rewrite, authority) = match target {
            RequestTarget::Asterisk => ("*".to_owned(), None, None),
            RequestTarget::Path {
                path,
                query,
                authority,
            } => {
                let normalized = match normalize_path(path) {
                    Ok(p) => p,
                    Err(e) => return Routed::InvalidPath(e),
                };
                let exact = authority.is_none()
                    && path == normalized
                    && req.target.len() == path.len() + query.map_or(0, |q| q.len() + 1);
                let rewrite = (!exact).then(|| match query {
                    Some(q) => format!("{normalized}?{q}"),
                    None => normalized.clone(),
                });
                (normalized, rewrite, authority)
            }
        };
        let Some(host) = authority.or(req.host).filter(|h| !h.is_empty()) else {
            return Routed::InvalidHost;
        };
        // `OPTIONS *` names no resource: no route's path can match it, so the default applies.
        let m = if normalized == "*" {
            routes.default_match()
        } else {
            routes.route(req.method, Some(host), &normalized)
        };
        let forwarded = (normalized != "*")
            .then(|| cors_preflight(req))
            .flatten()
            .and_then(|announced| preflight_forwarded_by(routes, m, &announced, host, &normalized));
        let (m, decision) = match forwarded {
            Some(m) => (m, Decision::allow_none()),
            None => (
                m,
                self.decide_bound(m.policy, req.headers, req.client_delegates),
            ),
        };
        Routed::Decided {
            route: m,
            normalized,
            rewrite,
            host: authority.map(str::to_owned),
            decision,
        }
    }

    /// Decides a request under `policy` and a route's [`Preflight`] setting: under
    /// [`Preflight::Forward`] a CORS preflight ([`cors_preflight`]) is allowed without a
    /// decision (no proofs); anything else is [`Enforcer::decide`]d.
    pub fn decide_with_preflight(
        &self,
        policy: &Policy,
        preflight: Preflight,
        req: &RequestView<'_>,
    ) -> Decision {
        if preflight == Preflight::Forward && cors_preflight(req).is_some() {
            return Decision::allow_none();
        }
        self.decide_bound(policy, req.headers, req.client_delegates)
    }

    /// Decides a request under `policy` (no delegate resolved by the adapter: delegations are
    /// unbound).
    pub fn decide(&self, policy: &Policy, headers: &http::HeaderMap) -> Decision {
        self.decide_bound(policy, headers, &[])
    }

    /// Decides a request under `policy`, `client` being the delegates the adapter resolved
    /// itself ([`RequestView::client_delegates`]).
    pub fn decide_bound(
        &self,
        policy: &Policy,
        headers: &http::HeaderMap,
        client: &[String],
    ) -> Decision {
        if policy.has_delegation() {
            return self.decide_with_delegations(policy, headers, client);
        }
        let optional = match &policy.rule {
            Rule::Public => return Decision::allow_none(),
            Rule::Deny => return Decision::Refuse(Refusal::Deny(Reason::RouteDenied)),
            Rule::Optional => true,
            Rule::Require { .. } => false,
        };
        let tokens = match extract_tokens(headers, &self.sources) {
            Ok(t) => t,
            // On an optional route, badly presented tokens just mean "anonymous".
            Err(_) if optional => return Decision::allow_none(),
            Err(reason) => return fail(policy, reason),
        };
        let now = Now::read();
        let mut proofs = Vec::with_capacity(tokens.len());
        let mut first_failure: Option<Reason> = None;
        for token in tokens {
            match self.check_token_at(token, now) {
                Ok(p) => proofs.push(p),
                Err(r) => {
                    // A "cannot check now" failure outranks a bad token: it must not turn into a
                    // step-up loop or a 401 while the issuer is unreachable.
                    let worse = first_failure.is_none_or(|f| {
                        r.family() == Family::Unavailable && f.family() != Family::Unavailable
                    });
                    if worse {
                        first_failure = Some(r);
                    }
                }
            }
        }
        if optional {
            return Decision::Allow {
                proofs,
                delegations: Vec::new(),
            };
        }
        match policy.evaluate(&proofs, now.unix) {
            Some(used) => {
                let proofs = if used.len() == proofs.len() {
                    proofs
                } else {
                    used.into_iter().map(|i| proofs[i].clone()).collect()
                };
                Decision::Allow {
                    proofs,
                    delegations: Vec::new(),
                }
            }
            None => {
                let reason = match first_failure {
                    Some(r) => r,
                    None if proofs.is_empty() => Reason::Missing,
                    None => Reason::PolicyUnmet,
                };
                fail(policy, reason)
            }
        }
    }
}

fn fail(policy: &Policy, reason: Reason) -> Decision {
    // A step-up (a person verifying) never helps an agent's delegation.
    if reason.family() == Family::Unavailable
        || policy.on_failure == OnFailure::Deny
        || reason.is_delegation()
    {
        Decision::Refuse(Refusal::Deny(reason))
    } else {
        Decision::Refuse(Refusal::StepUp(reason))
    }
}

/// One requirement's answer in [`Enforcer::decide_with_delegations`].
enum Met {
    Proof(usize),
    Delegation(Delegated),
}

impl Enforcer {
    /// [`Enforcer::decide_bound`] for a policy with a delegation requirement: each requirement
    /// is met by a proof token (proof requirements) or checked against each delegation token
    /// ([`DelegationVerifier::check`], delegation requirements). When nothing meets the policy,
    /// the reason is a "cannot check now" one if any, else the first reason of a requirement for
    /// which a token of its kind was presented, else the first requirement's.
    fn decide_with_delegations(
        &self,
        policy: &Policy,
        headers: &http::HeaderMap,
        client: &[String],
    ) -> Decision {
        let Rule::Require {
            combine,
            requirements,
        } = &policy.rule
        else {
            return Decision::allow_none();
        };
        let now = Now::read();
        let (tokens, mut proof_failure) = match extract_tokens(headers, &self.sources) {
            Ok(t) => (t, None),
            Err(r) => (Vec::new(), Some(r)),
        };
        let mut proofs = Vec::with_capacity(tokens.len());
        for token in &tokens {
            match self.check_token_at(token, now) {
                Ok(p) => proofs.push(p),
                Err(r) => {
                    if proof_failure.is_none_or(|f| {
                        r.family() == Family::Unavailable && f.family() != Family::Unavailable
                    }) {
                        proof_failure = Some(r);
                    }
                }
            }
        }
        let (delegation_tokens, delegation_failure) = match extract_delegations(headers) {
            Ok(t) => (t, None),
            Err(r) => (Vec::new(), Some(r)),
        };
        // Each requirement: met, or why not and whether a token of its kind was presented.
        let answer = |r: &crate::policy::Requirement| -> Result<Met, (Reason, bool)> {
            match &r.delegation {
                Some(d) => {
                    if let Some(f) = delegation_failure {
                        return Err((f, true));
                    }
                    let mut failure: Option<Reason> = None;
                    for token in &delegation_tokens {
                        match self.delegations.check(token, d, client, now) {
                            Ok(ok) => return Ok(Met::Delegation(ok)),
                            Err(e) => {
                                if failure.is_none_or(|f| {
                                    e.family() == Family::Unavailable
                                        && f.family() != Family::Unavailable
                                }) {
                                    failure = Some(e);
                                }
                            }
                        }
                    }
                    Err(match failure {
                        Some(f) => (f, true),
                        None => (Reason::DelegationMissing, false),
                    })
                }
                None => match proofs.iter().position(|p| r.is_met_by(p, now.unix)) {
                    Some(i) => Ok(Met::Proof(i)),
                    None => Err(match proof_failure {
                        Some(f) => (f, true),
                        None if proofs.is_empty() => (Reason::Missing, false),
                        None => (Reason::PolicyUnmet, true),
                    }),
                },
            }
        };
        let mut used_proofs: Vec<usize> = Vec::new();
        let mut used_delegations: Vec<Delegated> = Vec::new();
        let mut failures: Vec<(Reason, bool)> = Vec::new();
        for r in requirements {
            match answer(r) {
                Ok(Met::Proof(i)) => {
                    if !used_proofs.contains(&i) {
                        used_proofs.push(i);
                    }
                    if *combine == crate::policy::Combine::AnyOf {
                        break;
                    }
                }
                Ok(Met::Delegation(d)) => {
                    used_delegations.push(d);
                    if *combine == crate::policy::Combine::AnyOf {
                        break;
                    }
                }
                Err(f) => {
                    failures.push(f);
                    if *combine == crate::policy::Combine::AllOf {
                        break;
                    }
                }
            }
        }
        let met = match combine {
            crate::policy::Combine::AnyOf => {
                !used_proofs.is_empty() || !used_delegations.is_empty()
            }
            crate::policy::Combine::AllOf => failures.is_empty(),
        };
        if met {
            return Decision::Allow {
                proofs: used_proofs.into_iter().map(|i| proofs[i].clone()).collect(),
                delegations: used_delegations,
            };
        }
        let reason = failures
            .iter()
            .find(|(r, _)| r.family() == Family::Unavailable)
            .or_else(|| failures.iter().find(|(_, presented)| *presented))
            .or(failures.first())
            .map_or(Reason::Missing, |(r, _)| *r);
        fail(policy, reason)
    }
}

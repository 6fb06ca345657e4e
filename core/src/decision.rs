//! Reasons, decisions and the [`Enforcer`] that makes them.

use std::sync::Arc;

use crate::policy::{OnFailure, Policy, Rule};
use crate::revocation::RevocationStore;
use crate::routes::RouteTable;
use crate::verify::{Now, VerifiedProof, Verifier};

/// Why a request was not allowed (or why a token was refused). The same names are used in
/// responses, metrics labels and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// No token was presented.
    Missing,
    /// The token (or how it was presented) is not a well-formed compact JWS within the size cap.
    Malformed,
    /// The header names an algorithm outside RS256/ES256 (`none`, `HS256`, …).
    UnsupportedAlgorithm,
    /// The header carries a key or key reference (`jwk`, `jku`, `x5u`, `x5c`), `crit` or `cty`.
    ForbiddenHeader,
    /// The signature does not verify.
    InvalidSignature,
    /// No published key matches the token's `kid` and algorithm.
    UnknownKey,
    /// `exp` has passed.
    Expired,
    /// `iat` or `nbf` is in the future.
    NotYetValid,
    /// `iss` is not the configured issuer.
    Issuer,
    /// A required claim is missing or a claim has a refused value (`exp`, `sub`, `aud`, …).
    InvalidClaims,
    /// The proof is revoked (list, status list or webhook).
    Revoked,
    /// The proof is suspended.
    Suspended,
    /// Revocation data is stale or unavailable, so the token cannot be checked now.
    StatusUnavailable,
    /// The key set is stale or was never fetched, so no token can be checked now.
    JwksStale,
    /// Valid proofs were presented but they do not meet the route's policy.
    PolicyUnmet,
    /// The route's policy denies every request.
    RouteDenied,
}

/// The HTTP family of a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// 401: the token is missing or bad.
    Unauthenticated,
    /// 403: the token is fine but not enough for this route.
    Forbidden,
    /// 503: we cannot check right now.
    Unavailable,
}

impl Reason {
    /// Every reason, for metrics registration and tests.
    pub const ALL: [Reason; 16] = [
        Reason::Missing,
        Reason::Malformed,
        Reason::UnsupportedAlgorithm,
        Reason::ForbiddenHeader,
        Reason::InvalidSignature,
        Reason::UnknownKey,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::Issuer,
        Reason::InvalidClaims,
        Reason::Revoked,
        Reason::Suspended,
        Reason::StatusUnavailable,
        Reason::JwksStale,
        Reason::PolicyUnmet,
        Reason::RouteDenied,
    ];

    /// The machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Malformed => "malformed",
            Reason::UnsupportedAlgorithm => "unsupported_algorithm",
            Reason::ForbiddenHeader => "forbidden_header",
            Reason::InvalidSignature => "invalid_signature",
            Reason::UnknownKey => "unknown_key",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Issuer => "issuer",
            Reason::InvalidClaims => "invalid_claims",
            Reason::Revoked => "revoked",
            Reason::Suspended => "suspended",
            Reason::StatusUnavailable => "status_unavailable",
            Reason::JwksStale => "jwks_stale",
            Reason::PolicyUnmet => "policy_unmet",
            Reason::RouteDenied => "route_denied",
        }
    }

    /// A sentence for people.
    pub fn message(self) -> &'static str {
        match self {
            Reason::Missing => "A proof token is required.",
            Reason::Malformed => "The proof token is malformed.",
            Reason::UnsupportedAlgorithm => {
                "The proof token uses an algorithm that is not accepted."
            }
            Reason::ForbiddenHeader => "The proof token carries a header that is not accepted.",
            Reason::InvalidSignature => "The proof token's signature is invalid.",
            Reason::UnknownKey => "The proof token was signed by a key that is not published.",
            Reason::Expired => "The proof token has expired.",
            Reason::NotYetValid => "The proof token is not valid yet.",
            Reason::Issuer => "The proof token was not issued by the expected issuer.",
            Reason::InvalidClaims => "The proof token's claims are not acceptable.",
            Reason::Revoked => "The proof has been revoked.",
            Reason::Suspended => "The proof is suspended.",
            Reason::StatusUnavailable => {
                "The proof's revocation status cannot be checked right now."
            }
            Reason::JwksStale => "The issuer's signing keys cannot be refreshed right now.",
            Reason::PolicyUnmet => "The presented proofs do not meet this route's requirements.",
            Reason::RouteDenied => "This route is not available.",
        }
    }

    /// 401, 403 or 503.
    pub fn family(self) -> Family {
        match self {
            Reason::StatusUnavailable | Reason::JwksStale => Family::Unavailable,
            Reason::PolicyUnmet | Reason::RouteDenied => Family::Forbidden,
            _ => Family::Unauthenticated,
        }
    }

    /// The HTTP status for a denial with this reason.
    pub fn status(self) -> u16 {
        match self.family() {
            Family::Unauthenticated => 401,
            Family::Forbidden => 403,
            Family::Unavailable => 503,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Forward it; `proofs` are the verified proofs that satisfied the policy (for identity
    /// headers and extractors), empty on public routes.
    Allow {
        /// The proofs.
        proofs: Vec<Arc<VerifiedProof>>,
    },
    /// Answer with the reason's status.
    Deny {
        /// Why.
        reason: Reason,
    },
    /// Offer a hosted verification (302 for browsers, 401 with a start link for API clients).
    StepUp {
        /// Why the request did not pass as it was.
        reason: Reason,
    },
}

impl Decision {
    /// The reason, `None` for `Allow`.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Decision::Allow { .. } => None,
            Decision::Deny { reason } | Decision::StepUp { reason } => Some(*reason),
        }
    }

    /// `allow`, `deny` or `step_up`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Deny { .. } => "deny",
            Decision::StepUp { .. } => "step_up",
        }
    }
}

/// Where tokens are looked for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer …` (a request with two `Authorization` headers is malformed).
    Bearer,
    /// A header (default `x-proof-token`); repeated headers and comma-separated values give
    /// several tokens.
    Header(http::HeaderName),
    /// A cookie (default `proof_token`); repeated cookies give several tokens.
    Cookie(String),
}

impl TokenSource {
    /// Bearer, then `x-proof-token`, then the `proof_token` cookie.
    pub fn defaults() -> Vec<TokenSource> {
        vec![
            TokenSource::Bearer,
            TokenSource::Header(http::HeaderName::from_static("x-proof-token")),
            TokenSource::Cookie("proof_token".into()),
        ]
    }
}

/// Separates several tokens in one proof cookie (never part of a compact JWS).
pub const COOKIE_TOKEN_SEPARATOR: &str = "~";

/// Most tokens looked at in one request.
pub const MAX_TOKENS_PER_REQUEST: usize = 4;

/// Collects the tokens of the first source, in order, that has any.
pub fn extract_tokens<'h>(
    headers: &'h http::HeaderMap,
    sources: &[TokenSource],
) -> Result<Vec<&'h str>, Reason> {
    let mut tokens = Vec::new();
    for source in sources {
        match source {
            TokenSource::Bearer => {
                let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
                let (Some(value), rest) = (values.next(), values.next()) else {
                    continue;
                };
                if rest.is_some() {
                    return Err(Reason::Malformed);
                }
                let value = value.to_str().map_err(|_| Reason::Malformed)?;
                if let Some((scheme, token)) = value.split_once(' ') {
                    if scheme.eq_ignore_ascii_case("bearer") {
                        let token = token.trim();
                        if token.is_empty() {
                            return Err(Reason::Malformed);
                        }
                        tokens.push(token);
                    }
                }
            }
            TokenSource::Header(name) => {
                for value in headers.get_all(name) {
                    let value = value.to_str().map_err(|_| Reason::Malformed)?;
                    tokens.extend(value.split(',').map(str::trim).filter(|t| !t.is_empty()));
                }
            }
            TokenSource::Cookie(name) => {
                for value in headers.get_all(http::header::COOKIE) {
                    let Ok(value) = value.to_str() else { continue };
                    for pair in value.split(';') {
                        if let Some((k, v)) = pair.split_once('=') {
                            if k.trim() == name {
                                tokens.extend(
                                    v.trim()
                                        .trim_matches('"')
                                        .split(COOKIE_TOKEN_SEPARATOR)
                                        .filter(|t| !t.is_empty()),
                                );
                            }
                        }
                    }
                }
            }
        }
        if tokens.len() > MAX_TOKENS_PER_REQUEST {
            return Err(Reason::Malformed);
        }
        if !tokens.is_empty() {
            return Ok(tokens);
        }
    }
    Ok(tokens)
}

/// A routed request: either refused for its target or host, or decided under its route's
/// policy.
#[derive(Debug)]
pub enum Routed<'t> {
    /// The request-target is not accepted, or its path is ambiguous or malformed (an encoded
    /// `/`, `\`, NUL, a bad escape, `foo:/admin`): answer 400 `invalid_path`.
    InvalidPath(crate::routes::PathError),
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
    /// `*`); see [`crate::routes::request_target`].
    pub target: &'a [u8],
    /// The headers.
    pub headers: &'a http::HeaderMap,
}

/// Turns a request and a policy into a [`Decision`]. The one place decisions are made.
#[derive(Debug)]
pub struct Enforcer {
    verifier: Arc<Verifier>,
    revocation: Arc<RevocationStore>,
    sources: Vec<TokenSource>,
}

impl Enforcer {
    /// An enforcer over a verifier and a revocation store, reading tokens from `sources`.
    pub fn new(
        verifier: Arc<Verifier>,
        revocation: Arc<RevocationStore>,
        sources: Vec<TokenSource>,
    ) -> Self {
        Self {
            verifier,
            revocation,
            sources,
        }
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
    pub fn decide_request<'t>(&self, routes: &'t RouteTable, req: &RequestView<'_>) -> Routed<'t> {
        use crate::routes::{normalize_path, request_target, RequestTarget};
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
        let decision = self.decide(m.policy, req.headers);
        Routed::Decided {
            route: m,
            normalized,
            rewrite,
            host: authority.map(str::to_owned),
            decision,
        }
    }

    /// Decides a request under `policy`.
    pub fn decide(&self, policy: &Policy, headers: &http::HeaderMap) -> Decision {
        let optional = match &policy.rule {
            Rule::Public => return Decision::Allow { proofs: Vec::new() },
            Rule::Deny => {
                return Decision::Deny {
                    reason: Reason::RouteDenied,
                }
            }
            Rule::Optional => true,
            Rule::Require { .. } => false,
        };
        let tokens = match extract_tokens(headers, &self.sources) {
            Ok(t) => t,
            // On an optional route, badly presented tokens just mean "anonymous".
            Err(_) if optional => return Decision::Allow { proofs: Vec::new() },
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
            return Decision::Allow { proofs };
        }
        match policy.evaluate(&proofs, now.unix) {
            Some(used) => {
                let proofs = if used.len() == proofs.len() {
                    proofs
                } else {
                    used.into_iter().map(|i| proofs[i].clone()).collect()
                };
                Decision::Allow { proofs }
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
    if reason.family() == Family::Unavailable || policy.on_failure == OnFailure::Deny {
        Decision::Deny { reason }
    } else {
        Decision::StepUp { reason }
    }
}

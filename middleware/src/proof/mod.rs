//! Middleware that lets through only requests carrying a proof token that meets a policy.
//!
//! [`ProofLayer`] wraps a service with a [`Policy`](proofgate_core::Policy). Each request's
//! tokens (`Authorization: Bearer`, then `x-proof-token`, then the `proof_token` cookie) are
//! checked by the core's [`Enforcer`](proofgate_core::Enforcer) against keys and revocation data
//! held in memory — no network call per request, a cached token costs a lookup — and:
//!
//! | decision | what happens |
//! | --- | --- |
//! | allow | the inner service is called; the verified proofs are in the request extensions ([`VerifiedProofs`](crate::VerifiedProofs), or the [`VerifiedProof`](crate::VerifiedProof) extractor), incoming `x-proof-*` headers are removed and the identity headers set |
//! | deny | `401`/`403`/`503` `application/problem+json`, with `WWW-Authenticate: Proof realm="proofgate", error="…"` on a 401 |
//! | step-up | a browser gets a `302` to `/.proofgate/start?policy=…&return_to=…`; an API client a `401` whose body and `WWW-Authenticate` carry that link |
//! | refused gRPC call | a gRPC status (`content-type: application/grpc`, see below) |
//!
//! The answers are rendered by [`proofgate_core::render`], the code the gateway uses, so a
//! request gets the same status, reason and body from the gateway and from the middleware.
//!
//! # gRPC (tonic)
//!
//! tonic services are tower services, and the layer guards them as they are. A request whose
//! `content-type` is `application/grpc` or `application/grpc+…` is refused with a gRPC status
//! — a Trailers-Only response (HTTP `200`, `grpc-status`, `grpc-message`, no body) that a
//! tonic client reports as `Err(Status)` — never a page, a redirect or problem+json:
//! `UNAUTHENTICATED` (16) for the 401 reasons, `PERMISSION_DENIED` (7) for `policy_unmet` and
//! `route_denied`, `UNAVAILABLE` (14) when proofs cannot be checked. The status's metadata
//! carries `proofgate-reason`, `proofgate-policy` and, when a step-up is offered,
//! `proofgate-step-up` (the start link). The proof travels as `authorization: Bearer …`
//! metadata; an allowed call reaches the handler with the identity headers as metadata
//! (`x-proof-subject`, …) and the [`VerifiedProofs`](crate::VerifiedProofs) in
//! `request.extensions()`. Allowed responses, their trailers included, pass through untouched.
//!
//! One policy for a whole server: `tonic::transport::Server::builder().layer(gate.layer(policy))`.
//! One policy per service needs the crate's `tonic` feature, which gives [`ProofService`]
//! tonic's `NamedService` (the wrapped service's name), so that
//! `Server::builder().add_service(gate.layer(policy).layer(AdminServer::new(admin)))` routes
//! the service's calls through its own layer.
//!
//! # CORS preflights
//!
//! By default a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`,
//! which browsers send without credentials) is decided like any request, so refused without a
//! token; [`ProofLayer::preflight`] with [`Preflight::Forward`](crate::Preflight::Forward) lets
//! it through undecided to a CORS layer inside this one, as the gateway's per-route
//! `preflight = "forward"` does.
//!
//! The inner service is called only on the allow path, through an unboxed future; its
//! `poll_ready` is passed through, so back-pressure is preserved.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use http::{Request, StatusCode};
//! use proofgate_tower::{require, Proofgate, ProofLayer, VerifiedProof};
//! use tower::ServiceExt;
//! # use proofgate_core::keys::KeySet;
//! # use proofgate_core::revocation::RevocationConfig;
//! # use proofgate_core::testing::{self, SigningKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One shared state per application; `spawn_refresher` keeps keys and revocation data fresh.
//! let gate = Proofgate::builder("https://api.proof.holdings")
//! #   .revocation_config({
//! #       let mut r = RevocationConfig::new("https://api.proof.holdings");
//! #       r.list_url = None;
//! #       r
//! #   })
//!     .build()?;
//! # // The doctest installs its own issuer key instead of fetching the real JWKS.
//! # let issuer = SigningKey::rsa("k1");
//! # let jwks = testing::jwks(&[&issuer]).to_string();
//! # gate.keys().install(KeySet::from_jwks(jwks.as_bytes())?, vec![1]);
//!
//! let staff = require::any_of("staff").email(["alice@corp.example"]).deny();
//! let app = Router::new()
//!     .route("/admin", get(|proof: VerifiedProof| async move { proof.subject().to_owned() }))
//!     .route_layer(ProofLayer::new(gate.clone(), staff));
//!
//! // Without a token: 401 problem+json.
//! let res = app.clone().oneshot(Request::get("/admin").body(axum::body::Body::empty())?).await?;
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(res.headers()["content-type"], "application/problem+json");
//!
//! // With Alice's email proof: the handler runs and sees the proof.
//! # let token = issuer.sign(&testing::claims("proof-1", "email", "email", "alice@corp.example"));
//! let res = app
//!     .oneshot(
//!         Request::get("/admin")
//!             .header("authorization", format!("Bearer {token}"))
//!             .body(axum::body::Body::empty())?,
//!     )
//!     .await?;
//! assert_eq!(res.status(), StatusCode::OK);
//! # Ok(())
//! # }
//! ```

mod body;
mod future;
mod layer;
mod service;

pub use body::ProofBody;
pub use future::ResponseFuture;
pub use layer::ProofLayer;
pub use service::ProofService;

pub(crate) use layer::LayerState;
pub(crate) use service::into_response;

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
//!
//! The answers are rendered by [`proofgate_core::render`], the code the gateway uses, so a
//! request gets the same status, reason and body from the gateway and from the middleware.
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

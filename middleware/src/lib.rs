//! # proofgate-tower
//!
//! proofgate's enforcement in-process: a tower [`ProofLayer`] that lets through only requests
//! carrying a proof token that meets a policy, an axum extractor for the verified proof, and the
//! step-up endpoints as an axum router. The decisions and every answer come from
//! [`proofgate_core`], the code the gateway runs, so a request gets the same status, reason and
//! body in-process as through the gateway.
//!
//! | item | what |
//! | --- | --- |
//! | [`Proofgate`] | shared state: one key set, one revocation store, one token cache, step-up |
//! | [`Refresher`] | the background refresh of keys and revocation data, owned by the app |
//! | [`proof`] — [`ProofLayer`], [`ProofService`] | the middleware, one policy per layer |
//! | [`require`] | a builder for the common policies |
//! | [`VerifiedProof`], [`VerifiedProofs`] | the verified proofs, as request extension and extractor |
//! | [`endpoints`] | `/.proofgate/start`, `callback`, `webhook`, `logout` as an axum `Router` |
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{routing::{get, post}, Router};
//! use proofgate_tower::{require, Proofgate, VerifiedProof};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let gate = Proofgate::builder("https://api.proof.holdings")
//!         .api_key(std::env::var("PROOF_API_KEY")?)
//!         .cookie_key(std::env::var("PROOFGATE_COOKIE_KEY")?)
//!         .webhook_secret(std::env::var("PROOF_WEBHOOK_SECRET")?)
//!         .build()?;
//!     let refresher = gate.spawn_refresher();
//!
//!     let admin = Router::new()
//!         .route("/admin", get(|p: VerifiedProof| async move { p.subject().to_owned() }))
//!         .route_layer(gate.layer(require::any_of("staff").email(["alice@corp.example"]).domain(["corp.example"])));
//!     let payouts = Router::new()
//!         .route("/payouts", post(|| async { "sent" }))
//!         .route_layer(gate.layer(require::any_of("payouts").phone().max_age(Duration::from_secs(600)).deny()));
//!     let app = Router::new()
//!         .route("/", get(|| async { "public" }))
//!         .merge(admin)
//!         .merge(payouts)
//!         .merge(gate.step_up_router());
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//!     refresher.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! tonic services are tower services: the layer guards them too, and answers a refused gRPC
//! call with a gRPC status (see [`proof`]); the `tonic` feature lets a layered service keep its
//! gRPC name in tonic's router. Cross-origin browser apps: see [`ProofLayer::preflight`].
//!
//! Routing is axum's: unlike the gateway, the middleware does not normalize paths, so declare the
//! routes you protect and keep the application's fallback closed.

#[cfg(feature = "axum")]
pub mod endpoints;
mod gate;
pub mod proof;
pub mod require;
pub mod verified;

pub use gate::{InitError, Proofgate, ProofgateBuilder, Refresher};
pub use proof::{ProofLayer, ProofService};
pub use verified::{ProofRejection, VerifiedProof, VerifiedProofs};

/// The core's types a user of the middleware needs, re-exported.
pub use proofgate_core::{
    self as core, policy::OnFailure, routes::Preflight, Policy, Reason, Requirement,
};

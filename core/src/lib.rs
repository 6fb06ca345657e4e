//! # proofgate-core
//!
//! The decision engine of proofgate. Both adapters — the Pingora gateway and the tower
//! middleware — translate an HTTP request into a [`RequestView`] and hand it to
//! [`Enforcer::decide`]; the [`Decision`] that comes back is rendered by shared code in
//! [`problem`]. Nothing on that path takes a lock or waits on the network: keys and revocation
//! data are read from `ArcSwap` snapshots that background refreshers replace, and verified tokens
//! come from a bounded moka cache.
//!
//! | module | holds |
//! | --- | --- |
//! | [`claims`] | the proof-token claims |
//! | [`identifier`] | identifier normalization and hashing |
//! | [`keys`] | the JWKS key set and its refresher |
//! | [`revocation`] | the revocation list, the Token Status List and the webhook overlay |
//! | [`verify`] | token → verified proof or a typed reason, with a cache |
//! | [`policy`] | requirements per route and their evaluation |
//! | [`decision`] | reasons, decisions and the enforcer |
//! | [`problem`] | problem+json and `WWW-Authenticate` rendering |
//! | [`client`] | the Proof API client with the service's retry policy |
//! | [`webhook`] | webhook signature checks |
//! | [`stepup`] | the step-up protocol: start, callback, webhook, logout |
//! | [`routes`] | route matching on normalized paths |

pub mod catalog;
pub mod claims;
pub mod client;
pub mod clock;
pub mod decision;
mod fetch;
pub mod forward;
pub mod gate;
pub mod identifier;
mod jws;
pub mod keys;
pub mod params;
pub mod path;
pub mod policy;
pub mod proof;
pub mod reason;
pub mod render;
pub mod revocation;
pub mod routes;
pub mod stepup;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod verify;
pub mod webhook;

pub use claims::ProofClaims;
pub use clock::Now;
pub use decision::{Decision, Enforcer, RequestView};
pub use keys::{KeyStore, KeysConfig};
pub use policy::{Policy, Requirement};
pub use proof::VerifiedProof;
pub use reason::Reason;
pub use revocation::{RevocationConfig, RevocationStore};
pub use verify::{Verifier, VerifierConfig};

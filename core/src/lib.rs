//! # proofgate-core
//!
//! The decision engine of proofgate. Both adapters — the Pingora gateway and the tower
//! middleware — translate an HTTP request into a [`RequestView`] and hand it to the [`gate`]
//! ([`gate::Gate::decide`]); the [`gate::Outcome`] that comes back says what to forward or what
//! to answer, rendered once in [`render`]. Nothing on that path takes a lock or waits on the
//! network: keys and revocation data are read from `ArcSwap` snapshots that background
//! refreshers replace, and verified tokens come from a bounded moka cache.
//!
//! ## Layers
//!
//! Modules are layered; a module imports only from its own layer or the layers below it, never
//! from above (`core/tests/layers.rs` reads this table and checks every `crate::` path in the
//! sources against it). Within a layer, imports go one way.
//!
//! | layer | module | holds |
//! | --- | --- | --- |
//! | 1 | [`reason`] | why a request was refused: one table of names, messages and families |
//! | 1 | [`clock`] | one reading of the clocks per decision, the default leeway |
//! | 1 | [`params`] | query parameters and cookies |
//! | 1 | [`catalog`] | verification types, channels, identity header names |
//! | 1 | [`claims`] | the proof-token claims |
//! | 1 | [`identifier`] | identifier normalization and hashing |
//! | 1 | `fetch` | bounded HTTP fetches of the issuer's documents |
//! | 1 | [`webhook`] | webhook signature checks |
//! | 1 | [`client`] | the Proof API client with the service's retry policy |
//! | 2 | [`keys`] | the JWKS key set and its refresher |
//! | 2 | `jws` | compact JWS checks against a key set |
//! | 2 | [`proof`] | a verified proof and its identity header values |
//! | 2 | [`tokens`] | token sources and extraction |
//! | 3 | [`verify`] | token → verified proof or a typed reason, with a cache |
//! | 3 | [`revocation`] | the revocation list, the Token Status List and the webhook overlay |
//! | 3 | [`delegation`] | delegation tokens: carriers, canonical forms, offline verification |
//! | 3 | [`policy`] | requirements per route and their evaluation |
//! | 4 | [`path`] | request-target forms and path normalization |
//! | 4 | [`routes`] | route matching on normalized paths |
//! | 4 | [`decision`] | decisions and the enforcer |
//! | 4 | [`forward`] | the header edits of an allowed request |
//! | 5 | [`pages`] | HTML pages for people: template, branding, CSP, policies in words |
//! | 5 | [`render`] | refusals as problem+json, `WWW-Authenticate`, step-up redirects and gRPC statuses |
//! | 6 | [`stepup`] | the step-up protocol: start, callback, webhook, logout |
//! | 6 | [`approval`] | a person's approval before a risky request: tickets, confirmations, the status page |
//! | 6 | [`gate`] | the facade the adapters use: decide, step up, readiness |
//! | 6 | [`forward_auth`] | a request another proxy describes (forward auth): read, decided by the gate, answered |
//! | 6 | `cluster` | (feature `cluster`) replicas sharing revocations, start budgets and single use through Redis |
//!
//! `testing` (feature `testing`) is test support and may import from any layer.

pub mod approval;
pub mod catalog;
pub mod claims;
pub mod client;
pub mod clock;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod decision;
pub mod delegation;
mod fetch;
pub mod forward;
pub mod forward_auth;
pub mod gate;
pub mod identifier;
mod jws;
pub mod keys;
pub mod pages;
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

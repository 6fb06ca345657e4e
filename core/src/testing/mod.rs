//! Test support: mint keys, JWKS documents, tokens, revocation lists and status lists, and serve
//! them from a real HTTP server on loopback that can be made to fail, hang, rotate keys or
//! answer garbage. Enabled by the `testing` feature; used by the project's tests, benches and
//! the sandbox.

mod mint;
mod server;
mod table;

pub use mint::*;
pub use server::{IssuerServer, Mode};
pub use table::*;

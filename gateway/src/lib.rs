//! # proofgate
//!
//! The Pingora gateway: a [`ProxyHttp`](pingora::proxy::ProxyHttp) that turns each request into
//! the core's decision and renders it — forward with identity headers, a problem+json denial, or
//! a step-up — plus the admin listener, the background refreshers and the CLI.
//!
//! The decision itself is made in `proofgate-core`; this crate only translates HTTP.

pub mod admin;
pub mod dev;
pub mod error;
mod health;
pub mod inspect;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod server;
pub mod state;
pub mod tls;
mod upgrade;
pub mod websocket;

pub use error::GatewayError;
pub use server::{GatewayHandle, StartMode};
pub use state::Gateway;

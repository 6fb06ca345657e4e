//! What can keep a gateway from starting, or a configuration from being applied: one typed
//! error for the crate, each variant naming the listener, upstream or file it is about. Per-
//! request failures are never errors here: they are answers.

use std::net::SocketAddr;

/// Why the gateway (or `proofgate dev`) could not start, or a reload was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// A TLS listener's certificate or key cannot be loaded, or they do not match.
    #[error("TLS listener {listener}: {message}")]
    Tls {
        /// The listener's address.
        listener: String,
        /// What is wrong with the files.
        message: String,
    },
    /// A listener address cannot be bound (taken by another process, or not this machine's).
    #[error("listener {address}: cannot listen there: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
    /// Pingora's listener did not come up (see the log for Pingora's own reason).
    #[error("{0}")]
    NotListening(String),
    /// An upstream's addresses or health check cannot be set up.
    #[error("upstream {name}: {message}")]
    Upstream {
        /// The upstream's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The admin listener cannot be bound.
    #[error("admin listener {address}: {source}")]
    Admin {
        /// The address.
        address: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The core's gate cannot be built (issuer URL, API key, cookie key).
    #[error(transparent)]
    Gate(#[from] proofgate_core::gate::GateError),
    /// The configuration does not validate.
    #[error("{0}")]
    Config(#[from] proofgate_config::ConfigErrors),
    /// The sandbox of `proofgate dev` cannot start.
    #[error("sandbox: {0}")]
    Sandbox(#[from] proofgate_sandbox::SandboxError),
    /// A thread, runtime, socket or signal handler the process needs cannot be set up.
    #[error("{what}: {source}")]
    System {
        /// What was being set up.
        what: &'static str,
        /// The system's reason.
        source: std::io::Error,
    },
    /// The side runtime (refreshers, admin, reload) stopped before the gateway was up.
    #[error("the side runtime stopped")]
    SideRuntimeStopped,
    /// The proxy server's thread ended by panicking.
    #[error("the proxy server stopped on an internal error (see the log)")]
    ServerCrashed,
    /// `[cluster]` cannot be set up (no URL, or one the Redis client refuses).
    #[error("[cluster]: {0}")]
    Cluster(String),
}

impl GatewayError {
    /// A [`GatewayError::System`] for `what`.
    pub(crate) fn system(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::System { what, source }
    }
}

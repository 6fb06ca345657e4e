use std::sync::Arc;

use proofgate_core::routes::Preflight;
use proofgate_core::Policy;
use tower::Layer;

use super::ProofService;
use crate::Proofgate;

/// Applies [`ProofService`]: enforces one [`Policy`] on every request of the service it wraps.
///
/// See the [module docs](crate::proof) for an example.
#[derive(Debug, Clone)]
pub struct ProofLayer {
    pub(crate) state: Arc<LayerState>,
}

#[derive(Debug)]
pub(crate) struct LayerState {
    pub(crate) gate: Proofgate,
    pub(crate) policy: Arc<Policy>,
    pub(crate) identity_headers: bool,
    pub(crate) strip_token: bool,
    pub(crate) preflight: Preflight,
}

impl ProofLayer {
    /// A layer enforcing `policy` with the shared state of `gate`. The policy is registered with
    /// `gate` so the step-up `start` endpoint knows it.
    pub fn new(gate: Proofgate, policy: impl Into<Policy>) -> Self {
        let policy = Arc::new(policy.into());
        gate.register(policy.clone());
        Self {
            state: Arc::new(LayerState {
                gate,
                policy,
                identity_headers: true,
                strip_token: false,
                preflight: Preflight::Deny,
            }),
        }
    }

    /// Whether allowed requests get the identity headers (`x-proof-subject`, `x-proof-type`,
    /// `x-proof-channel`, `x-proof-identifier-hash`, `x-proof-verified-at`), as the gateway sends
    /// them upstream. Incoming `x-proof-*` headers are removed either way, so a handler never
    /// sees a client's own.
    ///
    /// Defaults to `true`.
    pub fn identity_headers(self, on: bool) -> Self {
        self.with(|s| s.identity_headers = on)
    }

    /// Whether the token itself is removed before the inner service sees the request (the
    /// bearer `Authorization`, token headers and the proof cookie, other cookies kept), as the
    /// gateway's `strip_token` does. The verified proofs stay in the request extensions.
    ///
    /// Defaults to `false`.
    pub fn strip_token(self, on: bool) -> Self {
        self.with(|s| s.strip_token = on)
    }

    /// What happens to a CORS preflight (an `OPTIONS` request with `Origin` and
    /// `Access-Control-Request-Method`), as the gateway's per-route `preflight`:
    /// [`Preflight::Deny`] decides it under the policy like any request, so it is refused
    /// without a token (a browser never sends one on a preflight); [`Preflight::Forward`] lets
    /// it through to the inner service (a CORS layer inside it, such as tower-http's
    /// `CorsLayer`, answers it) with no proofs and client-sent identity headers removed. The
    /// actual request that follows is decided as always.
    ///
    /// ```
    /// # let gate = proofgate_tower::Proofgate::builder("https://api.proof.holdings").build().unwrap();
    /// use proofgate_tower::{require, Preflight, ProofLayer};
    /// let api = ProofLayer::new(gate, require::any_of("staff").email(["alice@corp.example"]))
    ///     .preflight(Preflight::Forward);
    /// ```
    ///
    /// Defaults to [`Preflight::Deny`]: nothing reaches the inner service undecided unless you
    /// say so. Put the CORS layer *inside* this one for `Forward` to matter: a CORS layer
    /// outside answers preflights before this layer sees them.
    pub fn preflight(self, preflight: Preflight) -> Self {
        self.with(|s| s.preflight = preflight)
    }

    fn with(self, f: impl FnOnce(&mut LayerState)) -> Self {
        let mut state = LayerState {
            gate: self.state.gate.clone(),
            policy: self.state.policy.clone(),
            identity_headers: self.state.identity_headers,
            strip_token: self.state.strip_token,
            preflight: self.state.preflight,
        };
        f(&mut state);
        Self {
            state: Arc::new(state),
        }
    }

    /// The policy enforced.
    pub fn policy(&self) -> &Policy {
        &self.state.policy
    }

    /// The shared state.
    pub fn gate(&self) -> &Proofgate {
        &self.state.gate
    }
}

impl<S> Layer<S> for ProofLayer {
    type Service = ProofService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProofService {
            inner,
            state: self.state.clone(),
        }
    }
}

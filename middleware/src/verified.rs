//! The verified proofs of an allowed request, and the axum extractors that hand them to
//! handlers.
//!
//! [`ProofService`](crate::ProofService) inserts a [`VerifiedProofs`] into the extensions of
//! every request it lets through. Handlers take:
//!
//! | extractor | gets | when there is none |
//! | --- | --- | --- |
//! | [`VerifiedProof`] | the first proof that met the policy | the same `401 missing` problem response the layer gives |
//! | `Option<VerifiedProof>` | it, or `None` | never rejects (for `optional` routes) |
//! | [`VerifiedProofs`] | every proof that met the policy | as `VerifiedProof` |
//!
//! ```
//! use axum::{routing::get, Router};
//! use proofgate_tower::VerifiedProof;
//!
//! async fn whoami(proof: Option<VerifiedProof>) -> String {
//!     match proof {
//!         Some(p) => format!("{} proof {}", p.claims.proof_type.as_deref().unwrap_or("?"), p.subject()),
//!         None => "anonymous".into(),
//!     }
//! }
//! let app: Router = Router::new().route("/whoami", get(whoami));
//! ```

use std::sync::Arc;

use proofgate_core::decision::Refusal;
use proofgate_core::reason::Reason;
use proofgate_core::render::StepUpLinks;

use crate::proof::LayerState;

/// The proofs that satisfied the route's policy (empty on public routes, and on optional routes
/// without a valid token), as found in the request extensions of an allowed request.
#[derive(Clone)]
pub struct VerifiedProofs {
    proofs: Vec<Arc<proofgate_core::VerifiedProof>>,
    state: Arc<LayerState>,
}

impl std::fmt::Debug for VerifiedProofs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedProofs")
            .field("policy", &self.state.policy.name)
            .field(
                "subjects",
                &self.proofs.iter().map(|p| p.subject()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl VerifiedProofs {
    pub(crate) fn new(
        proofs: Vec<Arc<proofgate_core::VerifiedProof>>,
        state: Arc<LayerState>,
    ) -> Self {
        Self { proofs, state }
    }

    /// The proofs, in the order the policy used them.
    pub fn proofs(&self) -> &[Arc<proofgate_core::VerifiedProof>] {
        &self.proofs
    }

    /// The first proof, if any.
    pub fn first(&self) -> Option<&Arc<proofgate_core::VerifiedProof>> {
        self.proofs.first()
    }

    /// The name of the policy that let the request through.
    pub fn policy(&self) -> &str {
        &self.state.policy.name
    }
}

impl std::ops::Deref for VerifiedProofs {
    type Target = [Arc<proofgate_core::VerifiedProof>];

    fn deref(&self) -> &Self::Target {
        &self.proofs
    }
}

/// One verified proof: the first that satisfied the route's policy. Dereferences to the core's
/// [`VerifiedProof`](proofgate_core::VerifiedProof) (claims, `identifier_hash`, `verified_at`).
#[derive(Debug, Clone)]
pub struct VerifiedProof(pub Arc<proofgate_core::VerifiedProof>);

impl std::ops::Deref for VerifiedProof {
    type Target = proofgate_core::VerifiedProof;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The rejection of the proof extractors: the core's `401 missing` answer for the route's
/// policy, the answer the layer itself gives to a request without a token (problem+json, for a
/// browser the page, for a gRPC call a gRPC status).
#[derive(Debug)]
pub struct ProofRejection {
    rendered: proofgate_core::render::Rendered,
}

impl ProofRejection {
    /// The layer's own answer for the route's policy with no proof: a gRPC status for a gRPC
    /// call, a page for a browser (`headers` ask for HTML), else problem+json.
    fn new(proofs: Option<&VerifiedProofs>, headers: &http::HeaderMap) -> Self {
        let refusal = Refusal::Deny(Reason::Missing);
        let rendered = match proofs {
            Some(p) => {
                let asked = proofgate_core::render::Asked {
                    return_to: "/",
                    html: proofgate_core::render::wants_html(headers),
                    navigation: true,
                    back: None,
                    wrong_identity: false,
                    grpc: proofgate_core::render::is_grpc(headers),
                };
                proofgate_core::render::render_refusal(
                    &refusal,
                    &p.state.policy,
                    &asked,
                    p.state.gate.links(),
                    p.state.gate.gate().pages(),
                )
            }
            None if proofgate_core::render::is_grpc(headers) => proofgate_core::render::grpc(
                proofgate_core::render::grpc_code(Reason::Missing),
                Reason::Missing.message(),
                Reason::Missing.as_str(),
                None,
                None,
            ),
            None => {
                proofgate_core::render::render(&refusal, "", "/", false, &StepUpLinks::default())
            }
        };
        Self { rendered }
    }

    /// The HTTP status: 401, or 200 for a gRPC call (its `grpc-status` is 16 UNAUTHENTICATED).
    pub fn status(&self) -> u16 {
        self.rendered.status
    }
}

#[cfg(feature = "axum")]
mod axum_impls {
    use axum::extract::{FromRequestParts, OptionalFromRequestParts};
    use axum::response::{IntoResponse, Response};
    use http::request::Parts;

    use super::*;

    impl IntoResponse for ProofRejection {
        fn into_response(self) -> Response {
            crate::proof::into_response::<axum::body::Body>(self.rendered)
                .map(axum::body::Body::new)
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for VerifiedProofs {
        type Rejection = ProofRejection;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
            match parts.extensions.get::<VerifiedProofs>() {
                Some(p) if !p.proofs.is_empty() => Ok(p.clone()),
                other => Err(ProofRejection::new(other, &parts.headers)),
            }
        }
    }

    impl<S: Send + Sync> OptionalFromRequestParts<S> for VerifiedProofs {
        type Rejection = std::convert::Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            Ok(parts
                .extensions
                .get::<VerifiedProofs>()
                .filter(|p| !p.proofs.is_empty())
                .cloned())
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for VerifiedProof {
        type Rejection = ProofRejection;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
            let proofs = parts.extensions.get::<VerifiedProofs>();
            match proofs.and_then(|p| p.first()) {
                Some(p) => Ok(VerifiedProof(p.clone())),
                None => Err(ProofRejection::new(proofs, &parts.headers)),
            }
        }
    }

    impl<S: Send + Sync> OptionalFromRequestParts<S> for VerifiedProof {
        type Rejection = std::convert::Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            Ok(parts
                .extensions
                .get::<VerifiedProofs>()
                .and_then(|p| p.first())
                .map(|p| VerifiedProof(p.clone())))
        }
    }
}

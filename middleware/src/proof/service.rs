use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use proofgate_core::decision::RequestView;
use proofgate_core::gate::{Action, ForwardOptions};
use proofgate_core::render::Rendered;
use tower::Service;

use super::layer::LayerState;
use super::{ProofBody, ProofLayer, ResponseFuture};
use crate::VerifiedProofs;

/// Enforces one policy in front of an inner service: the request's tokens are checked by the
/// core's [`Enforcer`](proofgate_core::Enforcer); an allowed request reaches the inner service
/// with its verified proofs in the request extensions ([`VerifiedProofs`]) and the identity
/// headers set; any other request is answered by the core's rendering of the decision
/// (problem+json, `WWW-Authenticate`, a step-up redirect, a page, or for a gRPC call a gRPC
/// status) without reaching it.
///
/// Readiness is the inner service's: `poll_ready` is passed through, so back-pressure (a
/// `ConcurrencyLimit`, a load shedder…) is preserved.
///
/// See the [module docs](crate::proof) for an example.
#[derive(Debug)]
pub struct ProofService<S> {
    pub(crate) inner: S,
    pub(crate) state: Arc<LayerState>,
}

impl<S: Clone> Clone for ProofService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            state: self.state.clone(),
        }
    }
}

impl<S> ProofService<S> {
    /// Wraps `inner` with the policy and shared state of `layer`.
    pub fn new(inner: S, layer: &ProofLayer) -> Self {
        Self {
            inner,
            state: layer.state.clone(),
        }
    }

    /// A reference to the inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// A mutable reference to the inner service.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The policy enforced.
    pub fn policy(&self) -> &proofgate_core::Policy {
        &self.state.policy
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ProofService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ProofBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let state = &self.state;
        // The host is only used for pages here (the application routed the request): a form
        // that could not be sent returns to its page when the `Referer` is this host's.
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok());
        let view = RequestView {
            method: req.method(),
            host,
            target: b"",
            headers: req.headers(),
            // An application that terminates mTLS itself inserts the delegates of the verified
            // client certificate; nothing a client sends can.
            client_delegates: req
                .extensions()
                .get::<proofgate_core::delegation::ClientDelegates>()
                .map_or(&[], |c| c.0.as_slice()),
        };
        let options = ForwardOptions {
            strip_token: state.strip_token,
            identity_headers: state.identity_headers,
        };
        let outcome = state.gate.gate().decide_policy_with(
            &state.policy,
            state.preflight,
            &view,
            return_to(&req),
            options,
        );
        match outcome.action {
            Action::Forward(forward) => {
                // The core's header edits, as the gateway applies them: client-sent identity
                // headers removed (a handler never sees a client's own), then ours set.
                let headers = req.headers_mut();
                for name in &forward.edits.remove {
                    headers.remove(name);
                }
                headers.reserve(forward.edits.set.len());
                for (name, value) in forward.edits.set {
                    headers.insert(name, value);
                }
                if !forward.delegations.is_empty() {
                    req.extensions_mut().insert(forward.delegations);
                }
                req.extensions_mut()
                    .insert(VerifiedProofs::new(forward.proofs, state.clone()));
                ResponseFuture::allowed(self.inner.call(req))
            }
            Action::Respond(rendered) => ResponseFuture::rejected(into_response(rendered)),
        }
    }
}

/// A tonic service behind the layer keeps its gRPC name, so that tonic's router
/// (`Server::add_service`) serves it under that name with the layer's policy:
/// `Server::builder().add_service(gate.layer(policy).layer(AdminServer::new(admin)))`.
#[cfg(feature = "tonic")]
impl<S: tonic::server::NamedService> tonic::server::NamedService for ProofService<S> {
    const NAME: &'static str = S::NAME;
}

/// The original path and query: under a nested axum router the request's URI has lost its
/// prefix, but the step-up link must bring the person back to the URL they asked for.
fn return_to<B>(req: &Request<B>) -> &str {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::OriginalUri(uri)) = req.extensions().get() {
        return uri.path_and_query().map_or("/", |p| p.as_str());
    }
    req.uri().path_and_query().map_or("/", |p| p.as_str())
}

/// A core-rendered answer as an HTTP response.
pub(crate) fn into_response<B>(r: Rendered) -> Response<ProofBody<B>> {
    let mut response = Response::new(ProofBody::rejected(r.body));
    *response.status_mut() =
        http::StatusCode::from_u16(r.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in r.headers {
        headers.append(name, value);
    }
    response
}

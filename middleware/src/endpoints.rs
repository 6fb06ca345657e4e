//! The step-up endpoints as an axum [`Router`]: `start`, `callback`, `webhook` and `logout`
//! under the reserved prefix (`/.proofgate/` by default), each a thin call into the core's
//! [`StepUp`](proofgate_core::stepup::StepUp) — the same protocol, cookies and answers as the
//! gateway's.
//!
//! | endpoint | does |
//! | --- | --- |
//! | `GET /.proofgate/start?policy=…&return_to=…` | creates a hosted verification request for a policy some layer enforces; a browser is redirected to the hosted page, an API client gets JSON with `verification_url` and `state` |
//! | `GET /.proofgate/callback` | checks the signed state, fetches the request, verifies its tokens, sets the `proof_token` cookie and returns to the original URL (or answers the tokens in JSON) |
//! | `POST /.proofgate/webhook` | applies signed `proof.revoked`, `proof.suspended`, `proof.unsuspended` events at once |
//! | `GET /.proofgate/logout` | clears the proof cookie |
//!
//! Merge the router into the application, outside any proof layer:
//!
//! ```
//! use axum::{routing::get, Router};
//! use proofgate_tower::{require, Proofgate};
//!
//! # fn main() -> Result<(), proofgate_tower::InitError> {
//! let gate = Proofgate::builder("http://127.0.0.1:7700")
//!     .api_key("pk_test_example")
//!     .cookie_key([7u8; 32])
//!     .build()?;
//! let staff = gate.layer(require::any_of("staff").email(["alice@corp.example"]));
//! let app: Router = Router::new()
//!     .route("/admin", get(|| async { "admin" }))
//!     .route_layer(staff)
//!     .merge(gate.step_up_router());
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! Starts are rate limited per client address, which comes from axum's
//! [`ConnectInfo`] (serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`); without it all clients share one
//! bucket, so the global limit still holds.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use proofgate_core::gate::{StepUpRequest, WebhookBody};
use proofgate_core::render::Rendered;
use proofgate_core::stepup::Endpoint;
use proofgate_core::webhook::MAX_BODY_BYTES;

use crate::Proofgate;

fn respond(r: Rendered) -> Response {
    crate::proof::into_response::<Body>(r).map(Body::new)
}

impl Proofgate {
    /// The step-up endpoints (`start`, `callback`, `webhook`, `logout`) under the configured
    /// prefix, to merge into the application's router. See [`crate::endpoints`].
    pub fn step_up_router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let prefix = self.links().prefix.clone();
        let mut router = Router::new();
        for (name, endpoint) in [
            ("start", Endpoint::Start),
            ("callback", Endpoint::Callback),
            ("webhook", Endpoint::Webhook),
            ("logout", Endpoint::Logout),
        ] {
            let gate = self.clone();
            router = router.route(
                &format!("{prefix}{name}"),
                any(move |req: Request| {
                    let gate = gate.clone();
                    async move { respond(gate.step_up_endpoint(endpoint, req).await) }
                }),
            );
        }
        router
    }

    /// Answers one step-up endpoint: the core's [`Gate::step_up`](proofgate_core::gate::Gate::step_up),
    /// as the gateway does.
    pub async fn step_up_endpoint(&self, endpoint: Endpoint, req: Request) -> Rendered {
        let (parts, body) = req.into_parts();
        let body = if endpoint == Endpoint::Webhook && parts.method == http::Method::POST {
            match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
                Ok(body) => WebhookBody::Read(body),
                Err(_) => WebhookBody::TooLarge,
            }
        } else {
            WebhookBody::None
        };
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default();
        let host = parts
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| parts.headers.get(http::header::HOST)?.to_str().ok());
        let policy = |name: &str| self.policy(name);
        let request = StepUpRequest {
            method: &parts.method,
            headers: &parts.headers,
            query: parts.uri.query().unwrap_or(""),
            // A tower service cannot see whether the connection was TLS: it is told
            // (`ProofgateBuilder::https`), or an absolute request URI (HTTP/2) says so.
            scheme: match parts.uri.scheme_str() {
                Some(scheme) => scheme,
                None if self.shared.https => "https",
                None => "http",
            },
            host,
            // Routes are the application's own here: allowed hosts come from the builder.
            site_hosts: &[],
            client: &client,
            policy: &policy,
            body,
        };
        self.gate().step_up(endpoint, request).await.response
    }
}

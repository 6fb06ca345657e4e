//! The Pingora [`ProxyHttp`]: request → [`RequestView`]-style inputs
//! → the core's decision → forward with identity headers, or a rendered answer.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use proofgate_core::decision::{Decision, RequestView, Routed};
use proofgate_core::problem::{self, Rendered};
use proofgate_core::stepup::Endpoint;

use crate::app::Gateway;

/// Largest webhook body read.
const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// The proxy.
pub struct Proxy {
    gateway: Arc<Gateway>,
}

impl Proxy {
    /// A proxy over the gateway's state.
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }
}

/// Per-request state, for upstream selection and the access log.
#[derive(Debug)]
pub struct Ctx {
    route: String,
    upstream: Option<String>,
    decision: &'static str,
    reason: &'static str,
    started: Instant,
}

async fn respond(session: &mut Session, r: Rendered) -> Result<()> {
    let mut resp = ResponseHeader::build(r.status, Some(r.headers.len() + 2))?;
    for (name, value) in r.headers {
        resp.append_header(name, value)?;
    }
    resp.insert_header(http::header::CONTENT_LENGTH, r.body.len().to_string())?;
    let empty = r.body.is_empty();
    session.write_response_header(Box::new(resp), empty).await?;
    if !empty {
        session.write_response_body(Some(r.body), true).await?;
    }
    Ok(())
}

/// The identity headers' names as `&'static str`. Pingora keeps each request header's spelling
/// beside it: from a `&'static str` it keeps the string as is, from a `HeaderName` it spells a
/// new title-cased copy on every insert.
fn wire_name(name: &http::HeaderName) -> Option<&'static str> {
    problem::IDENTITY_HEADER_NAMES
        .into_iter()
        .find(|n| name.as_str() == *n)
}

fn host_of(session: &Session) -> Option<String> {
    let req = session.req_header();
    req.uri.host().map(str::to_owned).or_else(|| {
        req.headers
            .get(http::header::HOST)?
            .to_str()
            .ok()
            .map(str::to_owned)
    })
}

impl Proxy {
    async fn step_up(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        endpoint: Endpoint,
    ) -> Result<bool> {
        let g = &self.gateway;
        let req = session.req_header();
        let query = req.uri.query().unwrap_or("").to_owned();
        ctx.route = format!("step_up_{endpoint:?}").to_lowercase();
        let rendered = match endpoint {
            Endpoint::Start => {
                let html = problem::wants_html(&req.headers, &req.method);
                let policy = proofgate_core::stepup::query_param(&query, "policy")
                    .and_then(|name| g.live.load().policies.get(&name).cloned());
                let host = host_of(session).unwrap_or_else(|| "localhost".into());
                let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
                let origin = format!("{}://{host}", if tls { "https" } else { "http" });
                let client = session
                    .client_addr()
                    .and_then(|a| a.as_inet().map(|i| i.ip().to_string()))
                    .unwrap_or_default();
                let r = g
                    .step_up
                    .start(policy.as_deref(), &query, &origin, &client, html)
                    .await;
                let outcome = match r.status {
                    200 | 302 => "started",
                    429 => "rate_limited",
                    _ => "failed",
                };
                g.metrics.step_up_starts.with_label_values(&[outcome]).inc();
                r
            }
            Endpoint::Callback => {
                let headers = req.headers.clone();
                g.step_up.callback(&g.enforcer, &headers, &query).await
            }
            Endpoint::Logout => g.step_up.logout(&query),
            Endpoint::Webhook => {
                if req.method != http::Method::POST {
                    problem::simple(405, "method_not_allowed", "Webhooks are POSTed")
                } else {
                    let headers = req.headers.clone();
                    let mut body = Vec::new();
                    let mut too_large = false;
                    while let Some(chunk) = session.read_request_body().await? {
                        if body.len() + chunk.len() > MAX_WEBHOOK_BODY {
                            too_large = true;
                            break;
                        }
                        body.extend_from_slice(&chunk);
                    }
                    g.metrics.webhooks.inc();
                    if too_large {
                        problem::simple(413, "body_too_large", "The webhook body is too large")
                    } else {
                        g.step_up.webhook(&g.enforcer, &headers, &body)
                    }
                }
            }
        };
        ctx.decision = "step_up_endpoint";
        respond(session, rendered).await?;
        Ok(true)
    }
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            route: String::new(),
            upstream: None,
            decision: "none",
            reason: "",
            started: Instant::now(),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let g = self.gateway.clone();
        let path = session.req_header().uri.path().to_owned();
        if let Some(endpoint) = g.step_up.endpoint(&path) {
            return self.step_up(session, ctx, endpoint).await;
        }
        let host = host_of(session);
        let live = g.live.load();
        let req = session.req_header();
        let view = RequestView {
            method: &req.method,
            host: host.as_deref(),
            path: &path,
            headers: &req.headers,
        };
        let started = Instant::now();
        let (m, normalized, decision) = match g.enforcer.decide_request(&live.routes, &view) {
            Routed::InvalidPath(_) => {
                ctx.decision = "deny";
                ctx.reason = "invalid_path";
                respond(
                    session,
                    problem::simple(400, "invalid_path", "The request path is not acceptable"),
                )
                .await?;
                return Ok(true);
            }
            Routed::Decided {
                route,
                normalized,
                decision,
            } => (route, normalized, decision),
        };
        ctx.route = m.name.to_owned();
        ctx.decision = decision.kind();
        ctx.reason = decision.reason().map_or("", |r| r.as_str());
        g.metrics
            .observe_decision(ctx.decision, started.elapsed().as_secs_f64());
        g.metrics
            .count_decision(&ctx.route, ctx.decision, ctx.reason);
        match decision {
            Decision::Allow { proofs } => {
                ctx.upstream = m.upstream.map(str::to_owned);
                // The upstream sees the path the decision was made on, so the two can never
                // disagree about which resource was asked for.
                let forwarded = if normalized != path {
                    let query = req.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                    Some(format!("{normalized}{query}"))
                } else {
                    None
                };
                let req = session.req_header_mut();
                if let Some(uri) = forwarded.and_then(|f| f.parse::<http::Uri>().ok()) {
                    req.set_uri(uri);
                }
                let edits = problem::upstream_edits(
                    &req.headers,
                    &proofs,
                    g.enforcer.sources(),
                    live.strip_token,
                );
                for name in &edits.remove {
                    req.remove_header(name);
                }
                for (name, value) in edits.set {
                    match wire_name(&name) {
                        Some(name) => req.insert_header(name, value)?,
                        None => req.insert_header(name, value)?,
                    }
                }
                Ok(false)
            }
            other => {
                let req = session.req_header();
                let html = problem::wants_html(&req.headers, &req.method);
                let return_to = req
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                let rendered = problem::render(&other, &m.policy.name, &return_to, html, &g.links);
                drop(live);
                if let Some(r) = rendered {
                    respond(session, r).await?;
                }
                Ok(true)
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let live = self.gateway.live.load();
        let name = ctx
            .upstream
            .as_deref()
            .or_else(|| live.routes.default_upstream())
            .ok_or_else(|| {
                Error::explain(ErrorType::HTTPStatus(502), "no upstream for this route")
            })?;
        let pool = live
            .upstreams
            .get(name)
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(502), "unknown upstream"))?;
        let backend = pool
            .lb
            .select(b"", 256)
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(502), "no healthy upstream"))?;
        let mut peer = HttpPeer::new(
            backend.addr,
            pool.tls.is_some(),
            pool.tls.clone().unwrap_or_default(),
        );
        peer.options.connection_timeout = Some(pool.connect_timeout);
        peer.options.total_connection_timeout = Some(pool.connect_timeout);
        peer.options.read_timeout = Some(pool.read_timeout);
        peer.options.verify_cert = pool.verify_cert;
        peer.options.verify_hostname = pool.verify_cert;
        Ok(Box::new(peer))
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(c) => *c,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => 504,
            _ if e.esource() == &ErrorSource::Upstream => 502,
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed => 0,
            _ => 502,
        };
        ctx.decision = "error";
        // The connection is not reused after a failed proxy (below); say so in the answer, as
        // Pingora's own error responses do, or a pooling client's next request on it fails.
        session.set_keepalive(None);
        if code > 0 {
            let (reason, title) = if code == 504 {
                ("upstream_timeout", "The upstream did not answer in time")
            } else {
                ("upstream_unavailable", "The upstream could not be reached")
            };
            let _ = respond(session, problem::simple(code, reason, title)).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// Once the gateway is draining, no connection is kept alive: the answer says
    /// `Connection: close` (see [`Gateway::draining`]). Here for requests that begin then, in
    /// `response_filter` for those proxied when it began.
    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Ctx) -> Result<()> {
        if self.gateway.draining() {
            session.set_keepalive(None);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        _upstream_response: &mut ResponseHeader,
        _ctx: &mut Ctx,
    ) -> Result<()> {
        if self.gateway.draining() {
            session.set_keepalive(None);
        }
        Ok(())
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let req = session.req_header();
        // The path only: a query string may carry a token.
        tracing::info!(
            target: "access",
            method = %req.method,
            path = %req.uri.path(),
            status,
            route = %ctx.route,
            decision = ctx.decision,
            reason = ctx.reason,
            micros = ctx.started.elapsed().as_micros() as u64,
        );
    }
}

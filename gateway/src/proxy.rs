//! The Pingora [`ProxyHttp`]: request → [`RequestView`]-style inputs
//! → the core's decision → forward with identity headers, or a rendered answer.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use proofgate_core::decision::{Decision, RequestView, Routed};
use proofgate_core::render::{self, Rendered};
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
    proofgate_core::proof::IDENTITY_HEADER_NAMES
        .into_iter()
        .find(|n| name.as_str() == *n)
}

/// The host as received: the `Host` header, or HTTP/2's `:authority` (which Pingora keeps in
/// the URI). An absolute-form target's authority is the core's to prefer.
fn host_of(session: &Session) -> Option<&str> {
    let req = session.req_header();
    match req.headers.get(http::header::HOST) {
        Some(h) => h.to_str().ok(),
        None if req.version == http::Version::HTTP_2 => req.uri.authority().map(|a| a.as_str()),
        None => None,
    }
}

/// One `Content-Length` for the upstream (RFC 9112 §6.3): a repeated header or a list of equal
/// values (`5, 5`), which Pingora accepts for framing, is sent on as one value; unequal or
/// unparsable values are refused (`Err`).
fn normalize_content_length(req: &mut RequestHeader) -> std::result::Result<(), ()> {
    let values = req.headers.get_all(http::header::CONTENT_LENGTH);
    let mut iter = values.iter();
    match (iter.next(), iter.next()) {
        (None, _) => return Ok(()),
        (Some(one), None) if !one.as_bytes().contains(&b',') => return Ok(()),
        _ => {}
    }
    let mut length: Option<u64> = None;
    for value in values {
        for token in value.to_str().map_err(|_| ())?.split(',') {
            let n: u64 = token.trim().parse().map_err(|_| ())?;
            if length.is_some_and(|l| l != n) {
                return Err(());
            }
            length = Some(n);
        }
    }
    let n = length.ok_or(())?;
    req.insert_header(http::header::CONTENT_LENGTH, n.to_string())
        .map_err(|_| ())
}

impl Proxy {
    /// Answers 400 for a request refused before any route was chosen, counted under route
    /// `none` so that such refusals show in `proofgate_decisions_total` too.
    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        reason: &'static str,
        title: &str,
    ) -> Result<bool> {
        ctx.decision = "deny";
        ctx.reason = reason;
        self.gateway
            .metrics
            .count_decision("none", ctx.decision, ctx.reason);
        respond(session, render::simple(400, reason, title)).await?;
        Ok(true)
    }

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
                let html = render::wants_html(&req.headers, &req.method);
                let policy = proofgate_core::stepup::query_param(&query, "policy")
                    .and_then(|name| g.live.load().policies.get(&name).cloned());
                let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
                let scheme = if tls { "https" } else { "http" };
                let client = session
                    .client_addr()
                    .and_then(|a| a.as_inet().map(|i| i.ip().to_string()))
                    .unwrap_or_default();
                let r = g
                    .step_up
                    .start(
                        policy.as_deref(),
                        &query,
                        scheme,
                        host_of(session),
                        &client,
                        html,
                    )
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
                    render::simple(405, "method_not_allowed", "Webhooks are POSTed")
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
                        render::simple(413, "body_too_large", "The webhook body is too large")
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
            if session.req_header().raw_path().starts_with(b"/") {
                return self.step_up(session, ctx, endpoint).await;
            }
        }
        if normalize_content_length(session.req_header_mut()).is_err() {
            let title = "The request's Content-Length is ambiguous";
            return self.refuse(session, ctx, "invalid_request", title).await;
        }
        let live = g.live.load();
        let req = session.req_header();
        let view = RequestView {
            method: &req.method,
            host: host_of(session),
            target: req.raw_path(),
            headers: &req.headers,
        };
        let started = Instant::now();
        let (m, rewrite, host, decision) = match g.enforcer.decide_request(&live.routes, &view) {
            Routed::InvalidPath(_) => {
                let title = "The request path is not acceptable";
                return self.refuse(session, ctx, "invalid_path", title).await;
            }
            Routed::InvalidHost => {
                let title = "The request must name exactly one host";
                return self.refuse(session, ctx, "invalid_host", title).await;
            }
            Routed::Decided {
                route,
                rewrite,
                host,
                decision,
                ..
            } => (route, rewrite, host, decision),
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
                let req = session.req_header_mut();
                // The upstream sees exactly the target the decision was made on (origin-form,
                // normalized path, the query as received), so the two can never disagree about
                // which resource was asked for.
                if let Some(target) = rewrite {
                    match target.parse::<http::Uri>() {
                        Ok(uri) => req.set_uri(uri),
                        // Fail closed: never forward a target other than the decided one.
                        Err(_) => {
                            let title = "The request path is not acceptable";
                            return self.refuse(session, ctx, "invalid_path", title).await;
                        }
                    }
                }
                if let Some(host) = host {
                    // An absolute-form target's authority replaces `Host` (RFC 9112 §3.2.2): the
                    // route was chosen for it.
                    req.insert_header(http::header::HOST, host)?;
                }
                let edits = proofgate_core::forward::upstream_edits(
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
            Decision::Refuse(refusal) => {
                let req = session.req_header();
                let html = render::wants_html(&req.headers, &req.method);
                let return_to = req.uri.path_and_query().map_or("/", |p| p.as_str());
                let rendered = render::render(&refusal, &m.policy.name, return_to, html, &g.links);
                drop(live);
                respond(session, rendered).await?;
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
        let downstream = e.esource() == &ErrorSource::Downstream;
        let code = match e.etype() {
            ErrorType::HTTPStatus(c) => *c,
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed
                if downstream =>
            {
                0
            }
            ErrorType::ReadTimedout if downstream => 408,
            // The client sent a body Pingora could not frame (a malformed chunk, …): its fault.
            _ if downstream => 400,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => 504,
            _ if e.esource() == &ErrorSource::Upstream => 502,
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed => 0,
            _ => 502,
        };
        ctx.decision = "error";
        // The connection is not reused after a failed proxy (below); say so in the answer, as
        // Pingora's own error responses do, or a pooling client's next request on it fails.
        session.set_keepalive(None);
        let (reason, title) = match code {
            504 => ("upstream_timeout", "The upstream did not answer in time"),
            408 => ("request_timeout", "The request body did not arrive in time"),
            400..=499 => ("invalid_request", "The request body is malformed"),
            _ => ("upstream_unavailable", "The upstream could not be reached"),
        };
        ctx.reason = reason;
        if (400..500).contains(&code) {
            self.gateway.metrics.client_errors.inc();
        }
        if code > 0 {
            let _ = respond(session, render::simple(code, reason, title)).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// A client's malformed request is counted and logged at `info` in the access log, not as
    /// Pingora's `ERROR Fail to proxy` line.
    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, e: &Error) -> bool {
        e.esource() == &ErrorSource::Downstream
    }

    /// What Pingora's own error and warning lines say about a request: the method, the path
    /// without its query (which may carry a token) and the host.
    fn request_summary(&self, session: &Session, _ctx: &Ctx) -> String {
        let req = session.req_header();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        format!("{} {}, Host: {host}", req.method, req.uri.path())
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

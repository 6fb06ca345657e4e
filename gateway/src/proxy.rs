//! The Pingora [`ProxyHttp`]: a translation of Pingora's session into the core's terms and
//! back. The request becomes a [`RequestView`] (or a step-up request), the core's gate decides,
//! and the outcome is applied: the forwarded target, `Host` and header edits, or the rendered
//! answer. Nothing here decides a policy, checks a token or writes an answer of its own, except
//! for transport: `Content-Length` framing and upstream failures.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use proofgate_core::approval::HeldBody;
use proofgate_core::decision::RequestView;
use proofgate_core::gate::{
    Action, ForwardOptions, PendingApproval, StepUpRequest, WebhookBody, NO_ROUTE,
};
use proofgate_core::render::{self, Rendered};
use proofgate_core::stepup::Endpoint;
use proofgate_core::webhook::MAX_BODY_BYTES;

use crate::state::{Gateway, FAVICON_PATH};

mod forward_auth;

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

/// Per-request state, for upstream selection, the metrics and the access log.
#[derive(Debug)]
pub struct Ctx {
    route: String,
    /// The route's upstream; once one is chosen, the upstream actually used (the default
    /// upstream for routes naming none).
    upstream: Option<String>,
    decision: &'static str,
    reason: &'static str,
    /// How a step-up endpoint's request went (`started`, `completed`, …); empty otherwise.
    outcome: &'static str,
    /// Why no upstream could be chosen ([`UPSTREAM_ERROR_KINDS`](crate::metrics::UPSTREAM_ERROR_KINDS)), for the error count.
    upstream_error: Option<&'static str>,
    /// [`subject_hashes`] of the proofs an allowed request used.
    subjects: Option<String>,
    /// An allowed upgrade request (a WebSocket): what its upstream connection watches.
    upgrade: Option<crate::websocket::Upgrade>,
    started: Instant,
}

/// How many hex digits of a subject's SHA-256 the access log shows: 64 bits, enough to tell
/// people apart in a log, too few to be worth a lookup table of its own.
const SUBJECT_HASH_HEX: usize = 16;

/// The access log's `subject` field: for each proof, the first [`SUBJECT_HASH_HEX`] hex
/// digits of the SHA-256 of its subject (the proof id, `sub`), comma-separated. Never the
/// subject or the token itself; `printf %s "$sub" | sha256sum | cut -c1-16` finds a known
/// proof's lines.
///
/// `None` while the access log is off: nothing reads it then, and it is a SHA-256 per proof.
fn subject_hashes(proofs: &[Arc<proofgate_core::VerifiedProof>]) -> Option<String> {
    if !access_log_enabled() {
        return None;
    }
    let hashes: Vec<String> = proofs
        .iter()
        .map(|p| p.subject())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut h = proofgate_core::identifier::hash_normalized(s);
            h.truncate(SUBJECT_HASH_HEX);
            h
        })
        .collect();
    (!hashes.is_empty()).then(|| hashes.join(","))
}

/// Whether the access log's lines are written at the current level (`info` and below).
fn access_log_enabled() -> bool {
    tracing::enabled!(target: "access", tracing::Level::INFO)
}

/// Longest `User-Agent` the access log keeps, in characters.
const MAX_LOGGED_USER_AGENT: usize = 200;
/// Longest `Host` the access log keeps, in characters.
const MAX_LOGGED_HOST: usize = 255;

/// A header value for the access log: at most `max` characters, every byte that is not
/// printable ASCII replaced by `?` (no control character, no invalid UTF-8 reaches a log line),
/// `…` marking a cut.
fn loggable(value: Option<&[u8]>, max: usize) -> String {
    let Some(bytes) = value else {
        return String::new();
    };
    let mut out: String = bytes
        .iter()
        .take(max)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    if bytes.len() > max {
        out.push('…');
    }
    out
}

/// The `404` for `/favicon.ico` under `server.favicon = "not_found"`: empty, not stored.
fn favicon_not_found() -> Rendered {
    Rendered {
        status: 404,
        headers: vec![(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        )],
        body: bytes::Bytes::new(),
    }
}

/// [`UPSTREAM_ERROR_KINDS`](crate::metrics::UPSTREAM_ERROR_KINDS) for a failure to get the upstream's answer.
fn upstream_error_kind(e: &Error) -> &'static str {
    match e.etype() {
        ErrorType::ConnectTimedout => "connect_timeout",
        ErrorType::ConnectRefused
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::ConnectProxyFailure
        | ErrorType::TLSWantX509Lookup
        | ErrorType::TLSHandshakeFailure
        | ErrorType::TLSHandshakeTimedout
        | ErrorType::InvalidCert
        | ErrorType::HandshakeError
        | ErrorType::SocketError
        | ErrorType::BindError => "connect_failed",
        ErrorType::ReadTimedout => "read_timeout",
        ErrorType::WriteTimedout => "write_timeout",
        _ => "response_failed",
    }
}

async fn respond(session: &mut Session, r: Rendered) -> Result<()> {
    let mut resp = ResponseHeader::build(r.status, Some(r.headers.len() + 2))?;
    for (name, value) in r.headers {
        resp.append_header(name, value)?;
    }
    let empty = r.body.is_empty();
    // A gRPC refusal over HTTP/2 is Trailers-Only: its headers alone, in one HEADERS frame that
    // ends the stream (END_STREAM frames it; no Content-Length).
    let trailers_only = empty
        && session.req_header().version == http::Version::HTTP_2
        && render::is_grpc(&resp.headers);
    if !trailers_only {
        resp.insert_header(http::header::CONTENT_LENGTH, r.body.len().to_string())?;
    }
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
        .chain(proofgate_core::delegation::DELEGATION_IDENTITY_HEADER_NAMES)
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

/// The delegates the verified mTLS client certificate of this connection names (attached at the
/// handshake by [`crate::tls::ClientCertDelegates`]); empty on a plain listener, a TLS listener
/// without a client CA, or a connection without a client certificate.
fn client_delegates(session: &Session) -> &[String] {
    session
        .digest()
        .and_then(|d| d.ssl_digest.as_deref())
        .and_then(|t| {
            t.extension
                .get::<proofgate_core::delegation::ClientDelegates>()
        })
        .map_or(&[], |c| c.0.as_slice())
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
    /// Answers a step-up endpoint through the core's gate; only reading the webhook body (up
    /// to the core's cap) and the metrics are the adapter's.
    async fn step_up(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        endpoint: Endpoint,
    ) -> Result<bool> {
        let g = &self.gateway;
        ctx.route = format!("step_up_{endpoint:?}").to_lowercase();
        ctx.decision = "step_up_endpoint";
        let body =
            if endpoint == Endpoint::Webhook && session.req_header().method == http::Method::POST {
                let mut body = Vec::new();
                let mut too_large = false;
                while let Some(chunk) = session.read_request_body().await? {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        too_large = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                if too_large {
                    WebhookBody::TooLarge
                } else {
                    WebhookBody::Read(body.into())
                }
            } else {
                WebhookBody::None
            };
        let req = session.req_header();
        let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        let live = g.live.load();
        let client = forward_auth::client_address(session, &live);
        let policy = |name: &str| live.policies.get(name).cloned();
        let request = StepUpRequest {
            method: &req.method,
            headers: &req.headers,
            query: req.uri.query().unwrap_or(""),
            scheme: if tls { "https" } else { "http" },
            host: host_of(session),
            site_hosts: &live.hosts,
            client: &client,
            policy: &policy,
            body,
        };
        let answer = g.gate.step_up(endpoint, request).await;
        ctx.outcome = answer.outcome;
        let counter = match endpoint {
            Endpoint::Start => Some(&g.metrics.step_up_starts),
            Endpoint::Callback => Some(&g.metrics.step_up_callbacks),
            Endpoint::Webhook => Some(&g.metrics.webhooks),
            Endpoint::Logout => None,
        };
        if let Some(counter) = counter {
            counter.with_label_values(&[answer.outcome]).inc();
        }
        ctx.reason = answer.reason;
        drop(live);
        respond(session, answer.response).await?;
        Ok(true)
    }
}

/// The access log's `outcome` of an approval answer (`decision`, `reason`).
fn approval_outcome(decision: &str, reason: &str) -> &'static str {
    match (decision, reason) {
        ("allow", _) => "used",
        (_, "approval_required") => "created",
        (_, "approval_pending") => "pending",
        (_, "approval_denied") => "denied",
        (_, "approval_expired") => "expired",
        (_, "approval_ticket_used") => "replay_refused",
        (_, "approval_unavailable") => "unavailable",
        (_, "approval_body_too_large") => "too_large",
        (_, "approval_rate_limited") => "rate_limited",
        _ => "ticket_refused",
    }
}

impl Proxy {
    /// Answers the approval status endpoint through the core's gate.
    async fn approval_status(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        cid: String,
    ) -> Result<bool> {
        let g = &self.gateway;
        ctx.route = "approval_status".to_owned();
        ctx.decision = "step_up_endpoint";
        let req = session.req_header();
        let answer = g
            .gate
            .approval_status(
                &cid,
                &req.method,
                &req.headers,
                req.uri.query().unwrap_or(""),
            )
            .await;
        ctx.outcome = answer.outcome;
        ctx.reason = answer.reason;
        g.metrics
            .approval_status
            .with_label_values(&[answer.outcome])
            .inc();
        respond(session, answer.response).await?;
        Ok(true)
    }

    /// A request held for approval: its body is read (up to `[approvals] max_body_bytes`,
    /// kept in Pingora's retry buffer so that a forwarded request still carries it, unchanged)
    /// and the core's gate decides.
    async fn approve(
        &self,
        session: &mut Session,
        pending: PendingApproval,
    ) -> Result<proofgate_core::gate::ApprovalOutcome> {
        let g = &self.gateway;
        let max = g.gate.approvals().config().max_body_bytes;
        // A client that waits for `100 Continue` before sending its body (curl does, above
        // 1 KiB) gets it now: the body is needed before anything else is answered. The upstream
        // is sent the body read here, without the `Expect` it has no more use for.
        let expects = session
            .req_header()
            .headers
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if expects {
            if session.req_header().version == http::Version::HTTP_11 {
                session.write_continue_response().await?;
            }
            session
                .req_header_mut()
                .remove_header(&http::header::EXPECT);
        }
        session.enable_retry_buffering();
        let mut body = Vec::new();
        let mut too_large = false;
        while let Some(chunk) = session.read_request_body().await? {
            if body.len() + chunk.len() > max {
                too_large = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        if too_large {
            // The rest of the body is not read: the connection cannot be reused.
            session.set_keepalive(None);
        }
        let held = if too_large {
            HeldBody::TooLarge
        } else {
            HeldBody::Read(&body)
        };
        let req = session.req_header();
        Ok(g.gate
            .approve(pending, &req.method, &req.headers, held)
            .await)
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
            outcome: "",
            upstream_error: None,
            subjects: None,
            upgrade: None,
            started: Instant::now(),
        }
    }

    /// Translation only: the request becomes a [`RequestView`], the core's gate decides, and
    /// the [`Outcome`](proofgate_core::gate::Outcome) is applied — the forwarded target, `Host`
    /// and header edits, or the rendered answer.
    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let g = self.gateway.clone();
        if forward_auth::endpoint_rest(&g.live.load(), session.req_header().raw_path()).is_some() {
            return self.forward_auth(session, ctx).await;
        }
        if session.req_header().raw_path().starts_with(b"/") {
            if let Some(endpoint) = g.gate.endpoint(session.req_header().uri.path()) {
                return self.step_up(session, ctx, endpoint).await;
            }
            let path = session.req_header().uri.path();
            if let Some(cid) = g.gate.approval_status_endpoint(path).map(str::to_owned) {
                return self.approval_status(session, ctx, cid).await;
            }
        }
        if g.live.load().favicon_not_found {
            let req = session.req_header();
            let get = req.method == http::Method::GET || req.method == http::Method::HEAD;
            if get && req.uri.path() == FAVICON_PATH {
                // Not a decision: not counted, logged as `decision=none`.
                ctx.route = NO_ROUTE.to_owned();
                respond(session, favicon_not_found()).await?;
                return Ok(true);
            }
        }
        if normalize_content_length(session.req_header_mut()).is_err() {
            ctx.route = NO_ROUTE.to_owned();
            ctx.decision = "deny";
            ctx.reason = "invalid_request";
            g.metrics.count_decision(NO_ROUTE, ctx.decision, ctx.reason);
            let title = "The request's Content-Length is ambiguous";
            respond(session, render::simple(400, ctx.reason, title)).await?;
            return Ok(true);
        }
        let live = g.live.load();
        let req = session.req_header();
        let view = RequestView {
            method: &req.method,
            host: host_of(session),
            target: req.raw_path(),
            headers: &req.headers,
            client_delegates: client_delegates(session),
        };
        let options = ForwardOptions {
            strip_token: live.strip_token,
            identity_headers: true,
        };
        let started = Instant::now();
        let outcome = g.gate.decide(&live.routes, &view, options);
        ctx.route = outcome.route.to_owned();
        ctx.upstream = outcome.upstream.map(str::to_owned);
        ctx.decision = outcome.decision;
        ctx.reason = outcome.reason;
        let routed = outcome.route != NO_ROUTE;
        let (mut action, approval) = (outcome.action, outcome.approval);
        // Nothing below reads the routes: released before any wait.
        drop(live);
        if let Some(pending) = approval {
            let answer = self.approve(session, *pending).await?;
            ctx.decision = answer.decision;
            ctx.reason = answer.reason;
            ctx.outcome = approval_outcome(answer.decision, answer.reason);
            action = answer.action;
        }
        // Fail closed: never forward a target other than the decided one. Checked before the
        // decision is counted, so that the metrics say what happened.
        let uri = match &action {
            Action::Forward(f) => match f.target.as_deref().map(str::parse::<http::Uri>) {
                Some(Err(_)) => Err(()),
                parsed => Ok(parsed.and_then(Result::ok)),
            },
            Action::Respond(_) => Ok(None),
        };
        if uri.is_err() {
            ctx.upstream = None;
            ctx.decision = "deny";
            ctx.reason = "invalid_path";
        }
        if routed {
            g.metrics
                .observe_decision(ctx.decision, started.elapsed().as_secs_f64());
        }
        g.metrics
            .count_decision(&ctx.route, ctx.decision, ctx.reason);
        let Ok(uri) = uri else {
            let title = "The request path is not acceptable";
            respond(session, render::simple(400, ctx.reason, title)).await?;
            return Ok(true);
        };
        let forward = match action {
            Action::Forward(forward) => {
                ctx.subjects = subject_hashes(&forward.proofs);
                forward
            }
            Action::Respond(rendered) => {
                // Answered here: no upstream in the access line.
                ctx.upstream = None;
                respond(session, rendered).await?;
                return Ok(true);
            }
        };
        let req = session.req_header_mut();
        if let Some(uri) = uri {
            req.set_uri(uri);
        }
        if let Some(host) = forward.host {
            req.insert_header(http::header::HOST, host)?;
        }
        for name in &forward.edits.remove {
            req.remove_header(name);
        }
        for (name, value) in forward.edits.set {
            match wire_name(&name) {
                Some(name) => req.insert_header(name, value)?,
                None => req.insert_header(name, value)?,
            }
        }
        ctx.upgrade =
            crate::websocket::Upgrade::begin(session, &forward.proofs, &forward.delegations);
        Ok(false)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let live = self.gateway.live.load();
        if ctx.upstream.is_none() {
            ctx.upstream = live.routes.default_upstream().map(str::to_owned);
        }
        ctx.upstream_error = Some("no_healthy_backend");
        let name = ctx.upstream.as_deref().ok_or_else(|| {
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
        ctx.upstream_error = None;
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
        crate::state::set_protocol(&mut peer, pool.protocol);
        if let Some(upgrade) = &ctx.upgrade {
            upgrade.configure(&mut peer, pool, &self.gateway);
        }
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
        if code == 502 || code == 504 {
            let kind = ctx.upstream_error.unwrap_or_else(|| upstream_error_kind(e));
            let upstream = ctx.upstream.as_deref().unwrap_or(NO_ROUTE);
            self.gateway
                .metrics
                .upstream_errors
                .with_label_values(&[upstream, kind])
                .inc();
        }
        if code > 0 {
            // A browser gets a page that says whose fault it is and offers to try again (the
            // same address, for a navigation: nothing is replayed for a form).
            let req = session.req_header();
            let page = match code {
                504 => (
                    "The application took too long to answer",
                    "The site behind this gateway did not answer in time. Try again in a moment.",
                ),
                400..=499 => (
                    "The request could not be read",
                    "Your browser's request did not arrive whole. Try again.",
                ),
                _ => (
                    "The application is not answering",
                    "The site behind this gateway cannot be reached right now. This is not \
                     your fault: try again in a moment.",
                ),
            };
            let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
            let retry = (render::is_navigation(&req.method)
                && target.starts_with('/')
                && !target.starts_with("//")
                && !target.contains('\\'))
            .then(|| render::without_tokens(target).into_owned());
            let answer = self.gateway.gate.error_answer(
                &req.headers,
                code,
                reason,
                title,
                page,
                retry.as_deref(),
            );
            let _ = respond(session, answer).await;
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
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if self.gateway.draining() {
            session.set_keepalive(None);
        }
        if let Some(upgrade) = ctx.upgrade.as_mut() {
            upgrade.on_response(session, upstream_response.status.as_u16());
        }
        Ok(())
    }

    /// An upgraded connection's frames, for the Close frame the gateway sends when it ends one.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(upgrade) = ctx.upgrade.as_mut() {
            upgrade.on_body(body, end_of_stream);
        }
        Ok(None)
    }

    /// One access line per request, whatever became of it: proxied, answered by a step-up
    /// endpoint, refused before routing, or failed upstream. The path only (a query string may
    /// carry a token); `Host` and `User-Agent` cut and cleaned ([`loggable`]) and passed as
    /// strings, which both formats quote; a hash of the subject, never the subject or token.
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        // Below `info` (the load benchmarks run at `warn`, as nginx and HAProxy run there
        // without an access log) nothing is formatted.
        if !access_log_enabled() {
            return;
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet().map(|i| i.ip().to_string()))
            .unwrap_or_default();
        let req = session.req_header();
        let host = loggable(host_of(session).map(str::as_bytes), MAX_LOGGED_HOST);
        let user_agent = loggable(
            req.headers
                .get(http::header::USER_AGENT)
                .map(http::HeaderValue::as_bytes),
            MAX_LOGGED_USER_AGENT,
        );
        tracing::info!(
            target: "access",
            client = client.as_str(),
            method = %req.method,
            host = host.as_str(),
            path = %req.uri.path(),
            user_agent = user_agent.as_str(),
            status,
            route = ctx.route.as_str(),
            upstream = ctx.upstream.as_deref().unwrap_or(""),
            decision = ctx.decision,
            reason = ctx.reason,
            // An upgraded connection the gateway ended: why (`revoked`, `idle_timeout`, …).
            outcome = ctx.upgrade.as_ref().and_then(|u| u.closed_reason()).unwrap_or(ctx.outcome),
            subject = ctx.subjects.as_deref().unwrap_or(""),
            micros = ctx.started.elapsed().as_micros() as u64,
        );
    }
}

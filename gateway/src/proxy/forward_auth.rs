//! The forward-auth endpoint (`[forward_auth]`, default `/.proofgate/auth`) on the proxy
//! listeners: a translation of a fronting proxy's check request into the core's
//! [`forward_auth::decide`] and back. The adapter's own part is the trust check — only a peer
//! in `trusted_proxies` may describe a request; anyone else is refused `403 untrusted_proxy`,
//! so that a client reaching proofgate directly cannot describe a request it is not making —
//! and the metrics and access-log fields, the same as proxy mode's.

use std::net::IpAddr;
use std::time::Instant;

use pingora::prelude::*;
use pingora::proxy::Session;
use proofgate_core::forward_auth::{self, Check};
use proofgate_core::gate::NO_ROUTE;
use proofgate_core::render;

use super::{respond, subject_hashes, Ctx, Proxy};
use crate::state::Live;

/// What follows the endpoint's path in `raw` (the request-target as received) when `raw` is a
/// request to the forward-auth endpoint: the path itself, with a query, or (Envoy) with the
/// original path after it. `None` when forward auth is off or `raw` is anything else.
pub(super) fn endpoint_rest<'r>(live: &Live, raw: &'r [u8]) -> Option<&'r [u8]> {
    let fa = &live.forward_auth;
    if !fa.enabled {
        return None;
    }
    let rest = raw.strip_prefix(fa.path.as_bytes())?;
    matches!(rest.first(), None | Some(b'?') | Some(b'/')).then_some(rest)
}

/// The peer's address (an IPv4-mapped IPv6 address as IPv4).
fn peer(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet().map(|i| i.ip().to_canonical()))
}

/// The address a step-up start is rate limited by: the peer's, or, when the peer is a trusted
/// proxy (forward auth on), the last address of the `X-Forwarded-For` it sent — the client it
/// saw — so that the people behind one proxy do not share one limit.
pub(super) fn client_address(session: &Session, live: &Live) -> String {
    let Some(ip) = peer(session) else {
        return String::new();
    };
    let fa = &live.forward_auth;
    if fa.enabled && fa.trusts(ip) {
        let forwarded = session
            .req_header()
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        if let Some(client) = forwarded {
            return client.to_canonical().to_string();
        }
    }
    ip.to_string()
}

impl Proxy {
    /// Answers a check request: refused unless the peer is trusted, else decided by the core
    /// ([`forward_auth::decide`]) and counted as proxy mode counts a decision. The access line
    /// shows the endpoint's path with `outcome=forward_auth_<convention>` and the original
    /// request's route, decision and reason.
    pub(super) async fn forward_auth(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let g = self.gateway.clone();
        let live = g.live.load();
        ctx.outcome = "forward_auth";
        if !peer(session).is_some_and(|ip| live.forward_auth.trusts(ip)) {
            ctx.route = NO_ROUTE.to_owned();
            ctx.decision = "deny";
            ctx.reason = "untrusted_proxy";
            g.metrics.count_decision(NO_ROUTE, ctx.decision, ctx.reason);
            let title = "Forward-auth checks are accepted only from the trusted proxies";
            drop(live);
            respond(session, render::simple(403, ctx.reason, title)).await?;
            return Ok(true);
        }
        let req = session.req_header();
        let Some(rest) = endpoint_rest(&live, req.raw_path()) else {
            // Unreachable: the dispatch checked it with the same snapshot's settings or an
            // earlier one; answered as a request that cannot be checked.
            drop(live);
            respond(
                session,
                render::simple(400, "invalid_request", "Not a check"),
            )
            .await?;
            return Ok(true);
        };
        let check = Check {
            method: &req.method,
            rest,
            headers: &req.headers,
        };
        let started = Instant::now();
        let decided = forward_auth::decide(&g.gate, &live.routes, &check);
        ctx.route = decided.route.to_owned();
        ctx.decision = decided.decision;
        ctx.reason = decided.reason;
        ctx.outcome = match decided.convention {
            Some(forward_auth::Convention::Original) => "forward_auth_original",
            Some(forward_auth::Convention::Forwarded) => "forward_auth_forwarded",
            Some(forward_auth::Convention::Envoy) => "forward_auth_envoy",
            Some(forward_auth::Convention::SignIn) => "forward_auth_sign_in",
            None => "forward_auth",
        };
        if decided.route != NO_ROUTE {
            g.metrics
                .observe_decision(ctx.decision, started.elapsed().as_secs_f64());
        }
        g.metrics
            .count_decision(&ctx.route, ctx.decision, ctx.reason);
        ctx.subjects = subject_hashes(&decided.proofs);
        let answer = decided.answer;
        drop(live);
        respond(session, answer).await?;
        Ok(true)
    }
}

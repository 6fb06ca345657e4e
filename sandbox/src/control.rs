//! The operator switch (failures, hangs, 429s), the per-key rate limit and response recording,
//! as middleware around the matched routes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::envelope::ApiErr;
use crate::state::lock;
use crate::Shared;

/// What a failing endpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Answer this status with an error envelope (e.g. 500, 502, 503).
    Status(u16),
    /// Wait this long, then answer normally. A client with a shorter timeout sees a timeout.
    Hang(Duration),
    /// Answer 429 `rate_limited` with `Retry-After: <seconds>`.
    RateLimited {
        /// The `Retry-After` value, in seconds.
        retry_after: u64,
    },
}

/// Makes one route (or every route) fail, for a number of calls or a while.
#[derive(Debug, Clone)]
pub struct FailureRule {
    route: String,
    method: Option<Method>,
    failure: Failure,
    remaining: Option<u32>,
    until: Option<Instant>,
}

impl FailureRule {
    /// Fails `route` — a route template such as `/api/v1/verifications/{id}/test-verify`, a
    /// concrete path such as `/api/v1/verifications/abc/test-verify`, or `*` for every route —
    /// until the rule is cleared.
    pub fn new(route: impl Into<String>, failure: Failure) -> Self {
        Self {
            route: route.into(),
            method: None,
            failure,
            remaining: None,
            until: None,
        }
    }

    /// Only for requests of this method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Only for the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Only for this long from now.
    pub fn for_duration(mut self, d: Duration) -> Self {
        self.until = Some(Instant::now() + d);
        self
    }

    fn matches(&self, method: &Method, template: &str, path: &str) -> bool {
        (self.route == "*" || self.route == template || self.route == path)
            && self.method.as_ref().is_none_or(|m| m == method)
            && self.until.is_none_or(|t| Instant::now() < t)
            && self.remaining.is_none_or(|n| n > 0)
    }
}

/// An API response as the sandbox sent it.
#[derive(Debug, Clone)]
pub struct RecordedResponse {
    /// The request method.
    pub method: String,
    /// The route template, as in the OpenAPI document (`/api/v1/verifications/{id}`).
    pub route: String,
    /// The concrete path.
    pub path: String,
    /// The status.
    pub status: u16,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A fixed one-minute window of one key.
pub struct Window {
    started: Instant,
    started_unix: i64,
    count: u32,
}

fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string())
}

/// Counts hits and applies the first matching failure rule.
pub async fn failures(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let route = route_of(&req);
    let path = req.uri().path().to_string();
    *lock(&shared.hits).entry(route.clone()).or_insert(0) += 1;
    let failure = {
        let mut rules = lock(&shared.failures);
        let found = rules
            .iter_mut()
            .find(|r| r.matches(req.method(), &route, &path));
        found.map(|r| {
            if let Some(n) = r.remaining.as_mut() {
                *n -= 1;
            }
            r.failure
        })
    };
    match failure {
        None => next.run(req).await,
        Some(Failure::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = match status.as_u16() {
                503 => "service_unavailable",
                502 | 504 => "bad_gateway",
                429 => "rate_limited",
                s if s >= 500 => "internal_error",
                _ => "injected_failure",
            };
            ApiErr::new(status, code, "Failure injected by the sandbox operator").into_response()
        }
        Some(Failure::RateLimited { retry_after }) => {
            ApiErr::rate_limited(retry_after).into_response()
        }
        Some(Failure::Hang(d)) => {
            let stop = shared.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(d) => next.run(req).await,
                _ = crate::stopped(stop) => {
                    ApiErr::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", "Shutting down").into_response()
                }
            }
        }
    }
}

/// The per-key limit: a fixed window of one minute per `pk_…` key.
pub async fn rate_limit(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let Some(limit) = shared.config.rate_limit_per_minute else {
        return next.run(req).await;
    };
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|k| k.starts_with("pk_test_") || k.starts_with("pk_live_"))
        .map(str::to_string);
    let Some(key) = key else {
        return next.run(req).await;
    };
    let (allowed, remaining, reset) = {
        let mut windows = lock(&shared.rate);
        let now = Instant::now();
        // Bounded memory whatever keys a client invents: old windows are dropped.
        if windows.len() >= 10_000 {
            windows.retain(|_, w| now.duration_since(w.started) < Duration::from_secs(60));
        }
        let w = windows.entry(key).or_insert(Window {
            started: now,
            started_unix: crate::state::now(),
            count: 0,
        });
        if now.duration_since(w.started) >= Duration::from_secs(60) {
            w.started = now;
            w.started_unix = crate::state::now();
            w.count = 0;
        }
        let reset = w.started_unix + 60;
        if w.count >= limit {
            (false, 0, reset)
        } else {
            w.count += 1;
            (true, limit - w.count, reset)
        }
    };
    let mut response = if allowed {
        next.run(req).await
    } else {
        let wait = (reset - crate::state::now()).max(1);
        ApiErr::rate_limited(u64::try_from(wait).unwrap_or(1)).into_response()
    };
    let h = response.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    response
}

/// Keeps a copy of each response when recording is on.
pub async fn record(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if !shared.config.record_responses {
        return next.run(req).await;
    }
    let method = req.method().to_string();
    let route = route_of(&req);
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let (parts, body) = response.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // An event stream is endless: recorded without its body, passed through as it streams.
    if content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("text/event-stream"))
    {
        lock(&shared.recorded).push(RecordedResponse {
            method,
            route,
            path,
            status: parts.status.as_u16(),
            content_type,
            body: Vec::new(),
        });
        return Response::from_parts(parts, body);
    }
    // Our own bodies are small and finite; a hang never reaches here with a body pending.
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    lock(&shared.recorded).push(RecordedResponse {
        method,
        route,
        path,
        status: parts.status.as_u16(),
        content_type,
        body: bytes.to_vec(),
    });
    Response::from_parts(parts, Body::from(bytes))
}

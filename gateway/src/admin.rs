//! The admin listener (`/metrics`, `/healthz`, `/readyz`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::state::Gateway;

/// Serves the admin endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(gateway);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "admin listener failed");
    }
}

async fn metrics(State(g): State<Arc<Gateway>>) -> impl IntoResponse {
    let m = &g.metrics;
    m.cache_entries
        .set(g.gate.enforcer().verifier().cached() as i64);
    let (hits, misses) = g.gate.enforcer().verifier().cache_stats();
    m.sync_cache_lookups(hits, misses);
    m.jwks_age
        .set(g.gate.keys().age().map_or(-1.0, |a| a.as_secs_f64()));
    m.revocation_age.set(
        g.gate
            .revocation()
            .list_age()
            .map_or(-1.0, |a| a.as_secs_f64()),
    );
    m.refresh_failures
        .with_label_values(&["jwks"])
        .set(g.gate.keys().consecutive_failures() as i64);
    m.refresh_failures
        .with_label_values(&["revocation"])
        .set(g.gate.revocation().consecutive_failures() as i64);
    m.sync_fail_open(g.gate.revocation().fail_open_count());
    if let Some(cluster) = &g.cluster {
        m.sync_cluster(cluster);
    }
    m.sync_approvals(&g.gate.approvals().counts());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
}

/// `200 ready` or `503 not ready: …` with what is missing; either way followed, with
/// `[cluster]`, by `cluster: connected` or `cluster: unreachable (local fallback)` (a detail:
/// without the shared store each replica decides alone, which does not make it less ready), and
/// by the settings a reload could not apply, if any (`restart needed for: listeners, …`): those
/// keep their old values, which does not make the gateway less ready either.
async fn readyz(State(g): State<Arc<Gateway>>) -> impl IntoResponse {
    let (status, mut body) = match g.ready() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(problems) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join(", ")),
        ),
    };
    if let Some(cluster) = g.cluster_status() {
        // A detail: the edge keeps serving on its local fallbacks.
        body.push_str(&format!("cluster: {cluster}\n"));
    }
    let restart = g.restart_needed();
    if !restart.is_empty() {
        body.push_str(&format!("restart needed for: {}\n", restart.join(", ")));
    }
    (status, body)
}

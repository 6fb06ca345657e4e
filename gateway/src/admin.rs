//! The admin listener (`/metrics`, `/healthz`, `/readyz`) and configuration hot reload.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::app::Gateway;

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
    m.fail_open
        .set(g.gate.revocation().fail_open_count() as i64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
}

async fn readyz(State(g): State<Arc<Gateway>>) -> impl IntoResponse {
    match g.ready() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(problems) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join(", ")),
        ),
    }
}

/// Reloads the configuration at `path` when the file changes (checked every second) or on
/// SIGHUP. A file that does not validate is rejected, logged and counted; the running
/// configuration keeps serving.
pub async fn watch_config(
    path: PathBuf,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mtime = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last: Option<SystemTime> = mtime(&path);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hup_fut = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup_fut = std::future::pending::<()>();
        let forced = tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            _ = hup_fut => true,
        };
        let now = mtime(&path);
        if !forced && now == last {
            continue;
        }
        last = now;
        reload(&path, &gateway);
    }
}

/// Loads, validates and applies the file at `path`; returns whether it was applied.
pub fn reload(path: &PathBuf, gateway: &Gateway) -> bool {
    let result = proofgate_config::Config::load(path)
        .map_err(|e| e.to_string())
        .and_then(|c| gateway.reload(&c));
    match result {
        Ok(()) => {
            gateway.metrics.reloads.with_label_values(&["ok"]).inc();
            tracing::info!(path = %path.display(), "configuration reloaded");
            true
        }
        Err(e) => {
            gateway
                .metrics
                .reloads
                .with_label_values(&["rejected"])
                .inc();
            tracing::error!(path = %path.display(), error = %e, "configuration rejected; the previous one keeps serving");
            false
        }
    }
}

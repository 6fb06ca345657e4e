//! Configuration hot reload: the file is watched (and reloaded on `SIGHUP`); a file that does not
//! validate is rejected, logged and counted, and the running configuration keeps serving.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::state::Gateway;

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
        .and_then(|c| gateway.reload(&c).map_err(|e| e.to_string()));
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

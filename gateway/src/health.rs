//! Upstream health checks: each pool with an interval is probed in the background, and a backend
//! that fails is left out of selection until it passes again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::state::Gateway;

/// Runs each upstream's health check on its interval; a backend that fails is skipped by
/// selection until it passes again. Reads the live upstreams each round, so reloads apply.
pub(crate) async fn health_checks(
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut last: HashMap<String, std::time::Instant> = HashMap::new();
    loop {
        let live = gateway.live.load_full();
        for (name, pool) in &live.upstreams {
            let Some(interval) = pool.health_check_interval else {
                continue;
            };
            if last.get(name).is_some_and(|t| t.elapsed() < interval) {
                continue;
            }
            last.insert(name.clone(), std::time::Instant::now());
            pool.lb.backends().run_health_check(true).await;
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

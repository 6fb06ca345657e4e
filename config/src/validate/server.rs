//! `[server]`: Pingora's threads, keep-alive pool, shutdown timings and upgrade socket.

use std::path::PathBuf;
use std::time::Duration;

use super::Check;
use crate::config::{FaviconMode, ServerSettings, DEFAULT_UPGRADE_SOCK};
use crate::file::ServerFile;

pub(super) fn server(c: &mut Check, f: &ServerFile) -> ServerSettings {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    ServerSettings {
        threads: c.int("server.threads", f.threads, cores, 1, 1024) as usize,
        work_stealing: f.work_stealing.unwrap_or(false),
        upstream_keepalive_pool_size: c.int(
            "server.upstream_keepalive_pool_size",
            f.upstream_keepalive_pool_size,
            128,
            0,
            1_000_000,
        ) as usize,
        grace_period: c.duration(
            "server.grace_period",
            f.grace_period.as_ref(),
            Duration::from_secs(300),
            Duration::ZERO,
            Duration::from_secs(3600),
        ),
        graceful_shutdown_timeout: c.duration(
            "server.graceful_shutdown_timeout",
            f.graceful_shutdown_timeout.as_ref(),
            Duration::from_secs(5),
            Duration::ZERO,
            Duration::from_secs(3600),
        ),
        upgrade_sock: upgrade_sock(c, f.upgrade_sock.as_deref()),
        favicon: match f.favicon.as_deref() {
            None | Some("not_found") => FaviconMode::NotFound,
            Some("policy") => FaviconMode::Policy,
            Some(other) => {
                c.err(
                    "server.favicon",
                    format!("{other:?}; use \"not_found\" (404 without a policy decision) or \"policy\""),
                );
                FaviconMode::NotFound
            }
        },
    }
}
fn upgrade_sock(c: &mut Check, value: Option<&str>) -> PathBuf {
    const AT: &str = "server.upgrade_sock";
    let Some(v) = value else {
        return PathBuf::from(DEFAULT_UPGRADE_SOCK);
    };
    // A Unix socket address holds at most 107 bytes of path (108 with the terminating NUL).
    if !v.starts_with('/') {
        c.err(AT, format!("{v:?} is not an absolute path; both processes of an upgrade must name the same file"));
    } else if v.len() > 107 {
        c.err(
            AT,
            format!("{} bytes; a Unix socket path holds at most 107", v.len()),
        );
    } else if v.ends_with('/') || v.contains('\0') {
        c.err(AT, format!("{v:?} is not a file path"));
    }
    PathBuf::from(v)
}

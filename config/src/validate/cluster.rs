//! `[cluster]`: the Redis the replicas share, its key prefix and timeouts. Credentials come from
//! the environment only: a URL with a user or password in the file is refused.

use std::time::Duration;

use super::Check;
use crate::config::{ClusterSettings, DEFAULT_CLUSTER_KEY_PREFIX};
use crate::file::ClusterFile;
use crate::secrets::{REDIS_PASSWORD_ENV, REDIS_URL_ENV, REDIS_USERNAME_ENV};

pub(super) fn cluster(c: &mut Check, f: &ClusterFile) -> ClusterSettings {
    let redis_url = f.redis_url.as_ref().and_then(|raw| redis_url(c, raw));
    let key_prefix = f
        .key_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_CLUSTER_KEY_PREFIX.to_owned());
    let printable = key_prefix.bytes().all(|b| b.is_ascii_graphic());
    if key_prefix.is_empty() || key_prefix.len() > 64 || !printable {
        c.err(
            "cluster.key_prefix",
            format!(
                "{key_prefix:?} must be 1 to 64 printable ASCII characters without spaces, \
                 like \"{DEFAULT_CLUSTER_KEY_PREFIX}\""
            ),
        );
    }
    let connect_timeout = c.duration(
        "cluster.connect_timeout",
        f.connect_timeout.as_ref(),
        Duration::from_secs(1),
        Duration::from_millis(10),
        Duration::from_secs(30),
    );
    let command_timeout = c.duration(
        "cluster.command_timeout",
        f.command_timeout.as_ref(),
        Duration::from_millis(50),
        Duration::from_millis(1),
        Duration::from_secs(5),
    );
    ClusterSettings {
        redis_url,
        key_prefix,
        connect_timeout,
        command_timeout,
    }
}

/// A `redis://` or `rediss://` URL with a host, no credentials, no query or fragment, and at
/// most a database number as its path.
fn redis_url(c: &mut Check, raw: &str) -> Option<String> {
    const KEY: &str = "cluster.redis_url";
    let parsed = match url::Url::parse(raw) {
        Ok(u) => u,
        Err(e) => {
            c.err(KEY, format!("{raw:?} is not a URL: {e}"));
            return None;
        }
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // The value is not repeated: it holds a credential.
        c.err(
            KEY,
            format!(
                "credentials in the URL are not allowed; remove them and set \
                 {REDIS_USERNAME_ENV} / {REDIS_PASSWORD_ENV} in the environment (or the \
                 whole URL in {REDIS_URL_ENV})"
            ),
        );
        return None;
    }
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        c.err(
            KEY,
            format!(
                "{raw:?}: scheme {:?}; use redis:// or rediss:// (TLS)",
                parsed.scheme()
            ),
        );
        return None;
    }
    let db = parsed.path().trim_start_matches('/');
    if parsed.host_str().is_none_or(str::is_empty)
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !(db.is_empty() || db.parse::<u16>().is_ok())
    {
        c.err(
            KEY,
            format!(
                "{raw:?} must be redis://host[:port][/db] or rediss://…, with no query or \
                 fragment, like \"redis://redis.proofgate.svc:6379\""
            ),
        );
        return None;
    }
    Some(raw.to_owned())
}

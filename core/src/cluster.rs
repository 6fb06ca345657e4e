//! Replicas that act as one (feature `cluster`): state the replicas share through a Redis (or
//! Valkey) server, with each replica falling back to its own local behaviour whenever that
//! server is away or slow.
//!
//! - **Revocation fan-out.** A webhook event a replica applies ([`EventSink::publish`]) is
//!   queued in memory and appended, in the background, to the stream `{prefix}revocations`
//!   (`XADD … MAXLEN ~ 10000`; fields `id`, `change` (`revoked`, `suspended`, `unsuspended`),
//!   `at`, `exp`, `from`). Every replica reads the stream with `XREAD BLOCK` on a connection of
//!   its own and applies each entry through the same ordering rules as a webhook
//!   ([`crate::stepup::StepUp::apply_event`]). A replica that starts reads the newest
//!   [`ClusterConfig::catch_up`] entries first; one that reconnects goes on from the last entry
//!   it saw. An event published while the server is away stays queued (at most
//!   [`MAX_QUEUED`]) and is sent once it is back, so it is not lost.
//! - **Shared start budgets** ([`SharedStartBudget`]): a fixed window per minute of the
//!   replica's clock, counted by one Lua script (`INCR` + `EXPIRE` of a per-client and a global
//!   counter), so that the replicas together start no more than the configured budget.
//! - **Single use** ([`Cluster::claim_once`], [`SharedOnce`], [`SharedTicketLedger`]):
//!   `SET key 1 NX PX ttl`, for a step-up state's completion (a state completes once across
//!   replicas) and approval tickets (used once across replicas).
//!
//! Nothing on the request path waits longer than [`ClusterConfig::command_timeout`], and
//! nothing waits at all while the server is known to be away: the request is decided locally
//! and the fallback counted. Whether the server is reachable is checked in the background
//! (a `PING` each second), logged once per change, and read by [`Cluster::is_connected`].
//!
//! Layer 6: implements the step-up protocol's [`SharedStartBudget`], [`SharedOnce`] and
//! [`EventSink`], and the approvals' [`TicketLedger`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::AsyncConnectionConfig;

use crate::approval::{Claim, LocalLedger, TicketLedger};
use crate::clock::unix_now;
use crate::revocation::Pushed;
use crate::stepup::{BoxFuture, EventSink, PushedEvent, SharedOnce, SharedStartBudget};

/// Most events queued for publishing while the server is away; beyond it the oldest are
/// dropped (and counted): the issuer's revocation list still carries them.
pub const MAX_QUEUED: usize = 10_000;

/// Approximate most entries the revocation stream keeps (`MAXLEN ~`).
pub const STREAM_MAX_LEN: usize = 10_000;

/// How long one `XREAD` blocks waiting for new entries.
const BLOCK: Duration = Duration::from_millis(1000);

/// The fallbacks counted by [`Cluster::fallbacks`], as `proofgate_cluster_fallback_total{what}`:
/// `budget` (a start decided by the local limiter), `once` (a single-use claim — a step-up
/// state's completion, an approval ticket — decided locally), `publish` (an event queued
/// because the server was away).
pub const FALLBACKS: [&str; 3] = ["budget", "once", "publish"];

const BUDGET: usize = 0;
const ONCE: usize = 1;
const PUBLISH: usize = 2;

/// Settings of the shared store.
#[derive(Clone)]
pub struct ClusterConfig {
    /// `redis://` or `rediss://` URL, credentials included (a secret: never logged).
    pub url: String,
    /// Prefix of every key. Defaults to `proofgate:`.
    pub key_prefix: String,
    /// Longest wait for a connection. Defaults to 1 s.
    pub connect_timeout: Duration,
    /// Longest wait for one command on the request path. Defaults to 50 ms.
    pub command_timeout: Duration,
    /// Entries of the revocation stream read at first start. Defaults to 1000.
    pub catch_up: usize,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("url", &redacted(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

/// `scheme://host:port` of a URL, without credentials or path.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().unwrap_or(6379)
        ),
        Err(_) => "<invalid>".into(),
    }
}

impl ClusterConfig {
    /// Defaults for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: "proofgate:".into(),
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_millis(50),
            catch_up: 1000,
        }
    }
}

/// Why the store could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The URL is not one the client accepts.
    #[error("cluster Redis URL {0}: {1}")]
    Url(String, String),
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// The shared store; see the [module docs](self). Share it as `Arc<Cluster>` and start
/// [`Cluster::run`] once.
pub struct Cluster {
    config: ClusterConfig,
    client: redis::Client,
    manager: ArcSwapOption<ConnectionManager>,
    state: AtomicU8,
    fallbacks: [AtomicU64; 3],
    published: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    queue: Mutex<VecDeque<PushedEvent>>,
    queued: tokio::sync::Notify,
    /// This process's id in the entries it publishes, so that it skips its own.
    instance: String,
    budget: redis::Script,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("config", &self.config)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// Per-client then global fixed-window counters. KEYS: per-client, global. ARGV: per-client
/// limit, global limit, window TTL (s). Returns 0 taken, 1 over the per-client limit, 2 over
/// the global one. A start refused per client does not count globally.
const BUDGET_SCRIPT: &str = r"
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if c > tonumber(ARGV[1]) then return 1 end
local g = redis.call('INCR', KEYS[2])
if g == 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
if g > tonumber(ARGV[2]) then return 2 end
return 0
";

impl Cluster {
    /// The store for `config`; nothing is connected until [`Cluster::run`].
    pub fn new(config: ClusterConfig) -> Result<Arc<Self>, ClusterError> {
        if config.url.starts_with("rediss://") {
            // Several rustls crypto providers may be compiled in; the client needs a default.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| ClusterError::Url(redacted(&config.url), e.to_string()))?;
        let instance: String = (0..8)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        Ok(Arc::new(Self {
            config,
            client,
            manager: ArcSwapOption::empty(),
            state: AtomicU8::new(UNKNOWN),
            fallbacks: Default::default(),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            queue: Mutex::new(VecDeque::new()),
            queued: tokio::sync::Notify::new(),
            instance,
            budget: redis::Script::new(BUDGET_SCRIPT),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Whether the server answered the last command or check.
    pub fn is_connected(&self) -> bool {
        self.state.load(Ordering::Relaxed) == UP
    }

    /// Fallbacks so far, by [`FALLBACKS`] name.
    pub fn fallbacks(&self) -> [(&'static str, u64); 3] {
        [BUDGET, ONCE, PUBLISH].map(|i| (FALLBACKS[i], self.fallbacks[i].load(Ordering::Relaxed)))
    }

    /// Counts a fallback.
    fn fell_back(&self, what: usize) {
        self.fallbacks[what].fetch_add(1, Ordering::Relaxed);
    }

    /// Events this replica appended to the stream.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Events from other replicas read from the stream.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Events dropped from a full publish queue.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events waiting to be published.
    pub fn queued(&self) -> usize {
        self.queue.lock().map_or(0, |q| q.len())
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.config.key_prefix)
    }

    fn stream_key(&self) -> String {
        self.key("revocations")
    }

    /// Records whether the server answered; logs only a change.
    fn set_connected(&self, up: bool, why: &str) {
        let new = if up { UP } else { DOWN };
        let old = self.state.swap(new, Ordering::Relaxed);
        if old == new {
            return;
        }
        let server = redacted(&self.config.url);
        if up {
            tracing::info!(%server, "cluster store reached: revocations, start budgets and tickets are shared again");
        } else {
            tracing::warn!(%server, error = why, "cluster store unreachable: this replica falls back to its local revocations, budgets and tickets until it is back");
        }
    }

    /// The connection for a request-path command, or `None` (decide locally) while the server
    /// is away.
    fn connection(&self) -> Option<ConnectionManager> {
        if !self.is_connected() {
            return None;
        }
        self.manager
            .load_full()
            .map(|m| ConnectionManager::clone(&m))
    }

    /// Runs `cmd` within the command timeout; a failure marks the server away.
    async fn bounded<T, F>(&self, cmd: F) -> Option<T>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.config.command_timeout, cmd).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.set_connected(false, &e.to_string());
                None
            }
            Err(_) => {
                self.set_connected(false, "command timed out");
                None
            }
        }
    }

    /// Takes one start for `client` within `per_client` and `global` per minute, counted across
    /// replicas; `None` when the server cannot be asked now (counted as a `budget` fallback).
    pub async fn take_start(
        &self,
        client: &str,
        per_client: u32,
        global: u32,
    ) -> Option<Result<(), u64>> {
        let taken = self.take_start_shared(client, per_client, global).await;
        if taken.is_none() {
            self.fell_back(BUDGET);
        }
        taken
    }

    async fn take_start_shared(
        &self,
        client: &str,
        per_client: u32,
        global: u32,
    ) -> Option<Result<(), u64>> {
        let mut conn = self.connection()?;
        let now = unix_now();
        let minute = now.div_euclid(60);
        // The client's address is hashed: the store holds no addresses.
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, client.as_bytes());
        let hashed: String = digest.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // One hash tag, so that both keys live in one slot (Redis Cluster).
        let per_client_key = self.key(&format!("{{budget}}:{minute}:c:{hashed}"));
        let global_key = self.key(&format!("{{budget}}:{minute}:g"));
        let mut invocation = self.budget.prepare_invoke();
        invocation
            .key(per_client_key)
            .key(global_key)
            .arg(per_client)
            .arg(global)
            .arg(120);
        let verdict: i64 = self.bounded(invocation.invoke_async(&mut conn)).await?;
        let retry = (60 - now.rem_euclid(60)).max(1) as u64;
        Some(match verdict {
            0 => Ok(()),
            _ => Err(retry),
        })
    }

    /// Claims `key` once for `ttl` across replicas (`SET NX PX`): `Some(true)` for the first
    /// claim, `Some(false)` for any later one while it lasts, `None` when the server cannot be
    /// asked now (the caller decides locally; counted as a `once` fallback).
    pub async fn claim_once(&self, key: &str, ttl: Duration) -> Option<bool> {
        let claimed = self.claim_once_shared(key, ttl).await;
        if claimed.is_none() {
            self.fell_back(ONCE);
        }
        claimed
    }

    async fn claim_once_shared(&self, key: &str, ttl: Duration) -> Option<bool> {
        let mut conn = self.connection()?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
        let hashed: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("once:{hashed}")))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        let set: Option<String> = self.bounded(cmd.query_async(&mut conn)).await?;
        Some(set.is_some())
    }

    /// Queues `event` for the stream; never blocks.
    pub fn publish_event(&self, event: &PushedEvent) {
        if !self.is_connected() {
            self.fell_back(PUBLISH);
        }
        if let Ok(mut queue) = self.queue.lock() {
            if queue.len() >= MAX_QUEUED {
                queue.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            queue.push_back(event.clone());
        }
        self.queued.notify_one();
    }

    /// Runs the connection check, the publisher and the stream reader until `shutdown`
    /// resolves; `apply` applies an event another replica published.
    pub async fn run(
        self: Arc<Self>,
        apply: impl Fn(&PushedEvent) + Send + Sync + 'static,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let tasks = [
            tokio::spawn(self.clone().check_loop()),
            tokio::spawn(self.clone().publish_loop()),
            tokio::spawn(self.clone().read_loop(apply)),
        ];
        shutdown.await;
        for t in tasks {
            t.abort();
        }
    }

    /// Connects the command connection and `PING`s it every second.
    async fn check_loop(self: Arc<Self>) {
        loop {
            if self.manager.load().is_none() {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.config.connect_timeout))
                    .set_response_timeout(Some(
                        self.config.command_timeout.max(Duration::from_millis(500)),
                    ))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(100))
                    .set_max_delay(Duration::from_secs(1));
                let connect = ConnectionManager::new_with_config(self.client.clone(), config);
                match tokio::time::timeout(self.config.connect_timeout * 2, connect).await {
                    Ok(Ok(m)) => self.manager.store(Some(Arc::new(m))),
                    Ok(Err(e)) => self.set_connected(false, &e.to_string()),
                    Err(_) => self.set_connected(false, "connect timed out"),
                }
            }
            if let Some(m) = self.manager.load_full() {
                let mut conn = ConnectionManager::clone(&m);
                let cmd = redis::cmd("PING");
                let ping = cmd.query_async::<String>(&mut conn);
                // The check allows more than a request-path command: it decides whether the
                // request path asks at all.
                let limit = self.config.command_timeout.max(Duration::from_millis(250));
                match tokio::time::timeout(limit, ping).await {
                    Ok(Ok(_)) => {
                        self.set_connected(true, "");
                        self.queued.notify_one();
                    }
                    Ok(Err(e)) => self.set_connected(false, &e.to_string()),
                    Err(_) => self.set_connected(false, "PING timed out"),
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Appends queued events to the stream, in order, while the server is reachable.
    async fn publish_loop(self: Arc<Self>) {
        loop {
            let next = self.queue.lock().ok().and_then(|q| q.front().cloned());
            let Some(event) = next else {
                self.queued.notified().await;
                continue;
            };
            let Some(mut conn) = self.connection() else {
                // Woken by the connection check once the server is back (or by a new event).
                tokio::select! {
                    _ = self.queued.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            };
            let mut cmd = redis::cmd("XADD");
            cmd.arg(self.stream_key())
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAX_LEN)
                .arg("*")
                .arg("id")
                .arg(&event.proof_id)
                .arg("change")
                .arg(change_name(event.change))
                .arg("at")
                .arg(event.at)
                .arg("exp")
                .arg(event.exp)
                .arg("from")
                .arg(&self.instance);
            let limit = self.config.command_timeout.max(Duration::from_millis(500));
            match tokio::time::timeout(limit, cmd.query_async::<String>(&mut conn)).await {
                Ok(Ok(_)) => {
                    if let Ok(mut q) = self.queue.lock() {
                        if q.front() == Some(&event) {
                            q.pop_front();
                        }
                    }
                    self.published.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    self.set_connected(false, &e.to_string());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(_) => {
                    self.set_connected(false, "XADD timed out");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Reads the stream on a connection of its own (an `XREAD BLOCK` would hold up the
    /// commands behind it on a shared one), reconnecting and catching up after a failure.
    async fn read_loop(self: Arc<Self>, apply: impl Fn(&PushedEvent) + Send + Sync + 'static) {
        let mut last: Option<String> = None;
        let mut failures = 0u32;
        loop {
            if failures > 0 {
                let wait = Duration::from_millis(100 * 2u64.pow(failures.min(3)));
                tokio::time::sleep(wait).await;
            }
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.config.connect_timeout))
                .set_response_timeout(Some(
                    BLOCK + self.config.connect_timeout + Duration::from_secs(1),
                ));
            let connect = self
                .client
                .get_multiplexed_async_connection_with_config(&config);
            let mut conn =
                match tokio::time::timeout(self.config.connect_timeout * 2, connect).await {
                    Ok(Ok(c)) => c,
                    _ => {
                        failures += 1;
                        continue;
                    }
                };
            if last.is_none() {
                // First start: the newest entries, oldest first.
                let mut cmd = redis::cmd("XREVRANGE");
                cmd.arg(self.stream_key())
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(self.config.catch_up);
                let Ok(reply) = cmd.query_async::<StreamRangeReply>(&mut conn).await else {
                    failures += 1;
                    continue;
                };
                let now = unix_now();
                for entry in reply.ids.iter().rev() {
                    self.receive(entry, now, &apply);
                }
                last = Some(
                    reply
                        .ids
                        .first()
                        .map_or_else(|| "0-0".to_owned(), |e| e.id.clone()),
                );
            }
            failures = 0;
            while let Some(from) = last.clone() {
                let mut cmd = redis::cmd("XREAD");
                cmd.arg("COUNT")
                    .arg(500)
                    .arg("BLOCK")
                    .arg(BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(self.stream_key())
                    .arg(&from);
                match cmd.query_async::<Option<StreamReadReply>>(&mut conn).await {
                    Ok(reply) => {
                        let now = unix_now();
                        for entry in reply.iter().flat_map(|r| &r.keys).flat_map(|k| &k.ids) {
                            self.receive(entry, now, &apply);
                            last = Some(entry.id.clone());
                        }
                    }
                    Err(_) => {
                        failures += 1;
                        break;
                    }
                }
            }
        }
    }

    /// Applies one stream entry unless this replica published it or it has expired.
    fn receive(&self, entry: &StreamId, now: i64, apply: &impl Fn(&PushedEvent)) {
        if entry.get::<String>("from").as_deref() == Some(self.instance.as_str()) {
            return;
        }
        let (Some(proof_id), Some(change)) = (
            entry.get::<String>("id"),
            entry.get::<String>("change").and_then(|c| parse_change(&c)),
        ) else {
            return;
        };
        let exp = entry.get::<i64>("exp").unwrap_or(i64::MAX);
        if exp <= now {
            return;
        }
        self.received.fetch_add(1, Ordering::Relaxed);
        apply(&PushedEvent {
            proof_id,
            change,
            at: entry.get::<i64>("at").unwrap_or(0),
            exp,
        });
    }
}

/// Approval tickets used once across replicas: each claim is recorded in this replica's
/// [`LocalLedger`] first (a replay here never needs the network), then claimed in the store
/// (`SET NX PX` until the ticket expires). When the store cannot be asked within the command
/// timeout, the local record decides (counted as a `once` fallback): single use then holds per
/// replica, as without `[cluster]`, until the store is back.
#[derive(Debug)]
pub struct SharedTicketLedger {
    cluster: Arc<Cluster>,
    local: LocalLedger,
}

impl SharedTicketLedger {
    /// A ledger on `cluster`, with a default [`LocalLedger`].
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Self {
            cluster,
            local: LocalLedger::default(),
        }
    }
}

impl TicketLedger for SharedTicketLedger {
    fn claim<'a>(&'a self, ticket_id: &'a str, expires_at: i64) -> BoxFuture<'a, Claim> {
        Box::pin(async move {
            let now = unix_now();
            if self.local.claim_at(ticket_id, expires_at, now) == Claim::Replayed {
                return Claim::Replayed;
            }
            let ttl = Duration::from_secs(expires_at.saturating_sub(now).max(1) as u64);
            match self
                .cluster
                .claim_once(&format!("ticket:{ticket_id}"), ttl)
                .await
            {
                Some(false) => Claim::Replayed,
                Some(true) | None => Claim::First,
            }
        })
    }
}

fn change_name(change: Option<Pushed>) -> &'static str {
    match change {
        Some(Pushed::Revoked) => "revoked",
        Some(Pushed::Suspended) => "suspended",
        None => "unsuspended",
    }
}

fn parse_change(name: &str) -> Option<Option<Pushed>> {
    match name {
        "revoked" => Some(Some(Pushed::Revoked)),
        "suspended" => Some(Some(Pushed::Suspended)),
        "unsuspended" => Some(None),
        _ => None,
    }
}

impl SharedStartBudget for Cluster {
    fn take<'a>(
        &'a self,
        client: &'a str,
        per_client: u32,
        global: u32,
    ) -> BoxFuture<'a, Option<Result<(), u64>>> {
        Box::pin(self.take_start(client, per_client, global))
    }
}

impl SharedOnce for Cluster {
    fn claim<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Option<bool>> {
        Box::pin(self.claim_once(key, ttl))
    }
}

impl EventSink for Cluster {
    fn publish(&self, event: &PushedEvent) {
        self.publish_event(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_never_shown_with_its_credentials() {
        let config = ClusterConfig::new("rediss://user:hunter2@redis.example:6380/0");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("user"),
            "{shown}"
        );
        assert!(shown.contains("rediss://redis.example:6380"), "{shown}");
    }

    #[test]
    fn changes_round_trip() {
        for change in [Some(Pushed::Revoked), Some(Pushed::Suspended), None] {
            assert_eq!(parse_change(change_name(change)), Some(change));
        }
        assert_eq!(parse_change("other"), None);
    }
}

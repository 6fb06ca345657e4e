//! Revocation data: the issuer's revocation list, Token Status Lists, and revocations pushed by
//! webhook — each a snapshot in an `ArcSwap`, checked on every decision (cache hits included).
//!
//! - The **revocation list** (`/api/v1/proofs/revoked`) is refreshed on its own schedule
//!   (5 min by default). Its `signature`, when present, is a JWS over the revoked entries and must
//!   verify against the issuer's keys and name exactly the listed ids.
//! - A token's **status-list** slot (`status.status_list.{idx,uri}`) is read from a cached list;
//!   only URIs on the issuer's origin (or an origin trusted explicitly) are ever fetched. A list not yet cached is fetched in the
//!   background and the request is answered `status_unavailable` meanwhile — the request path
//!   never waits on the network.
//! - The **overlay** holds revocations and suspensions pushed by signed webhooks; they apply at
//!   once and are dropped once the list itself carries them.
//!
//! Past the maximum staleness, checks fail closed (`status_unavailable`) unless configured to
//! fail open; either way it is counted.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use crate::claims::ProofClaims;
use crate::clock::{unix_now, Now};
use crate::fetch::{self, FetchError};
use crate::jws;
use crate::keys::KeyStore;
use crate::reason::Reason;

/// Settings of the revocation store.
#[derive(Debug, Clone)]
pub struct RevocationConfig {
    /// The revocation list URL; `None` disables the list (status lists and webhooks still apply).
    pub list_url: Option<String>,
    /// The issuer's origin (`scheme://host[:port]`); status lists are fetched only from there
    /// and from [`RevocationConfig::trusted_status_list_origins`].
    pub issuer_origin: String,
    /// Further origins status lists may be fetched from (e.g. the issuer's CDN), each
    /// `scheme://host[:port]`. Defaults to none.
    pub trusted_status_list_origins: Vec<String>,
    /// Interval between list refreshes. Defaults to 5 min.
    pub list_refresh: Duration,
    /// Longest the list may go unrefreshed before checks fail. Defaults to 1 h.
    pub max_staleness: Duration,
    /// Answer `Allow` instead of `status_unavailable` when revocation data is stale or missing.
    /// Defaults to `false` (fail closed).
    pub fail_open: bool,
    /// Refuse lists whose `signature` is null or absent. Defaults to `false` (older lists are
    /// unsigned).
    pub require_signature: bool,
    /// Status-list refresh interval when the list has no `ttl`. Defaults to 5 min.
    pub status_default_ttl: Duration,
    /// Largest revocation list accepted. Defaults to 32 MiB.
    pub max_list_bytes: usize,
    /// Largest status list accepted (compressed, as fetched). Defaults to 512 KiB.
    pub max_status_list_bytes: usize,
    /// First retry delay after a failed fetch; doubles up to `backoff_max`. Defaults to 1 s.
    pub backoff_initial: Duration,
    /// Longest retry delay. Defaults to 1 min.
    pub backoff_max: Duration,
    /// Timeout of one fetch. Defaults to 10 s.
    pub fetch_timeout: Duration,
    /// Status lists fetched at start and kept fresh, so that the first token naming one is not
    /// answered `status_unavailable`. Defaults to `{api_base}/api/v1/proofs/status-list`.
    pub prefetch_status_lists: Vec<String>,
}

impl RevocationConfig {
    /// Defaults for an issuer at `api_base` (e.g. `https://api.proof.holdings`).
    pub fn new(api_base: &str) -> Self {
        let base = api_base.trim_end_matches('/');
        Self {
            list_url: Some(format!("{base}/api/v1/proofs/revoked")),
            issuer_origin: origin_of(base).unwrap_or_else(|| base.to_string()),
            trusted_status_list_origins: Vec::new(),
            list_refresh: Duration::from_secs(300),
            max_staleness: Duration::from_secs(3600),
            fail_open: false,
            require_signature: false,
            status_default_ttl: Duration::from_secs(300),
            max_list_bytes: 32 * 1024 * 1024,
            max_status_list_bytes: 512 * 1024,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(10),
            prefetch_status_lists: vec![format!("{base}/api/v1/proofs/status-list")],
        }
    }
}

/// `scheme://host[:port]` of a URL, normalized by the `url` crate.
pub fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    match u.origin() {
        url::Origin::Tuple(..) => Some(u.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// Whether a JWS `typ` names a status list: `statuslist+jwt`, or the same media type with its
/// `application/` prefix (RFC 7515 §4.1.9 lets the prefix be omitted; media types compare
/// case-insensitively).
pub fn is_status_list_typ(typ: &str) -> bool {
    let bare = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    bare.eq_ignore_ascii_case("statuslist+jwt")
}

/// Shortest time between two fetches of one status list asked for by requests (a slot not yet
/// in our copy, or a list not yet fetched).
pub const STATUS_REFETCH_COOLDOWN: Duration = Duration::from_secs(1);

/// The revocation list as last fetched.
#[derive(Debug, Default)]
pub struct RevocationSnapshot {
    ids: HashSet<Box<str>>,
    /// When it was fetched (`None`: never).
    pub fetched_at: Option<Instant>,
    /// The list's own `issued_at` (or older `generated_at`).
    pub issued_at: Option<String>,
}

impl RevocationSnapshot {
    /// Number of revoked ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is revoked.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `id` is listed.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }
}

/// A decoded Token Status List.
#[derive(Debug)]
pub struct StatusList {
    bits: u8,
    bytes: Vec<u8>,
    /// The list's `exp`: past it the list is not used.
    pub expires_at: i64,
    /// When to fetch it again.
    pub refresh_at: Instant,
}

/// A slot's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotStatus {
    /// 0.
    Valid,
    /// 1.
    Revoked,
    /// 2.
    Suspended,
    /// 3 or anything the list cannot answer.
    Unavailable,
}

impl StatusList {
    /// Decodes a status list payload's `status_list` member.
    pub fn decode(
        bits: u8,
        lst: &str,
        expires_at: i64,
        refresh_at: Instant,
    ) -> Result<Self, String> {
        if !matches!(bits, 1 | 2 | 4 | 8) {
            return Err(format!("unsupported bits {bits}"));
        }
        let compressed = URL_SAFE_NO_PAD
            .decode(lst.trim_end_matches('='))
            .map_err(|e| format!("lst is not base64url: {e}"))?;
        // A small compressed list can inflate enormously; cap what we accept.
        const MAX_INFLATED: u64 = 16 * 1024 * 1024;
        let mut bytes = Vec::new();
        flate2::read::ZlibDecoder::new(compressed.as_slice())
            .take(MAX_INFLATED + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("lst is not zlib: {e}"))?;
        if bytes.len() as u64 > MAX_INFLATED {
            return Err("lst inflates past 16 MiB".into());
        }
        Ok(Self {
            bits,
            bytes,
            expires_at,
            refresh_at,
        })
    }

    /// Whether the list has a slot `idx`.
    pub fn covers(&self, idx: u64) -> bool {
        idx.checked_mul(u64::from(self.bits))
            .is_some_and(|bit| bit / 8 < self.bytes.len() as u64)
    }

    /// The value of slot `idx` (least-significant bits first).
    pub fn get(&self, idx: u64) -> SlotStatus {
        let bits = u64::from(self.bits);
        let bit = idx.saturating_mul(bits);
        let Some(byte) = self.bytes.get((bit / 8) as usize) else {
            return SlotStatus::Unavailable;
        };
        let mask = ((1u16 << bits) - 1) as u8;
        match (byte >> (bit % 8)) & mask {
            0 => SlotStatus::Valid,
            1 => SlotStatus::Revoked,
            2 => SlotStatus::Suspended,
            _ => SlotStatus::Unavailable,
        }
    }
}

/// Pushed by webhook: what happened to a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// `proof.revoked`.
    Revoked,
    /// `proof.suspended` (undone by `proof.unsuspended`).
    Suspended,
}

/// Revocation state shared by every request. Share it as `Arc<RevocationStore>`.
pub struct RevocationStore {
    config: RevocationConfig,
    keys: Arc<KeyStore>,
    list: ArcSwap<RevocationSnapshot>,
    overlay: ArcSwap<HashMap<Box<str>, Pushed>>,
    status_lists: ArcSwap<HashMap<String, Arc<StatusList>>>,
    wanted: tokio::sync::mpsc::Sender<String>,
    wanted_rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<String>>>,
    list_failures: AtomicU64,
    fail_open_allowed: AtomicU64,
    client: reqwest::Client,
}

impl std::fmt::Debug for RevocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationStore")
            .field("listed", &self.list.load().len())
            .field("overlay", &self.overlay.load().len())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawList {
    revoked: Vec<RawEntry>,
    #[serde(default)]
    issued_at: Option<String>,
    #[serde(default)]
    generated_at: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

#[derive(Deserialize)]
struct RawEntry {
    proof_id: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SignedEntries {
    Wrapped { revoked: Vec<RawEntry> },
    Bare(Vec<RawEntry>),
}

#[derive(Deserialize)]
struct RawStatusPayload {
    sub: String,
    exp: i64,
    #[serde(default)]
    ttl: Option<u64>,
    status_list: RawStatusList,
}

#[derive(Deserialize)]
struct RawStatusList {
    #[serde(default = "two")]
    bits: u8,
    lst: String,
}

fn two() -> u8 {
    2
}

impl RevocationStore {
    /// An empty store; the list counts as stale until fetched.
    pub fn new(config: RevocationConfig, keys: Arc<KeyStore>) -> Arc<Self> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        Arc::new(Self {
            config,
            keys,
            list: ArcSwap::from_pointee(RevocationSnapshot::default()),
            overlay: ArcSwap::from_pointee(HashMap::new()),
            status_lists: ArcSwap::from_pointee(HashMap::new()),
            wanted: tx,
            wanted_rx: std::sync::Mutex::new(Some(rx)),
            list_failures: AtomicU64::new(0),
            fail_open_allowed: AtomicU64::new(0),
            client: fetch::http_client(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &RevocationConfig {
        &self.config
    }

    /// The current list snapshot.
    pub fn list(&self) -> arc_swap::Guard<Arc<RevocationSnapshot>> {
        self.list.load()
    }

    /// Time since the list was last fetched; `None` if never (or if no list is configured).
    pub fn list_age(&self) -> Option<Duration> {
        self.list.load().fetched_at.map(|t| t.elapsed())
    }

    /// Whether the list is configured and stale (never fetched, or older than the maximum).
    pub fn is_stale(&self) -> bool {
        self.config.list_url.is_some()
            && self
                .list_age()
                .is_none_or(|a| a > self.config.max_staleness)
    }

    /// How many decisions were allowed only because the store is configured to fail open.
    pub fn fail_open_count(&self) -> u64 {
        self.fail_open_allowed.load(Ordering::Relaxed)
    }

    /// Consecutive failed list fetches.
    pub fn consecutive_failures(&self) -> u64 {
        self.list_failures.load(Ordering::Relaxed)
    }

    /// Applies a pushed event at once (from a verified webhook).
    pub fn push(&self, proof_id: &str, what: Option<Pushed>) {
        // A revocation is final: no later suspension or unsuspension undoes it.
        if self.overlay.load().get(proof_id) == Some(&Pushed::Revoked) {
            return;
        }
        self.overlay.rcu(|current| {
            let mut next = HashMap::clone(current);
            if next.get(proof_id) == Some(&Pushed::Revoked) {
                return next;
            }
            match what {
                Some(w) => {
                    next.insert(proof_id.into(), w);
                }
                None => {
                    next.remove(proof_id);
                }
            }
            next
        });
    }

    /// `proof.revoked` for `proof_id`, applied at once.
    pub fn revoke_now(&self, proof_id: &str) {
        self.push(proof_id, Some(Pushed::Revoked));
    }

    /// Checks a verified token's claims against every source of revocation data.
    pub fn check(&self, claims: &ProofClaims) -> Result<(), Reason> {
        self.check_at(claims, Now::read())
    }

    /// [`RevocationStore::check`] as of `now`.
    pub fn check_at(&self, claims: &ProofClaims, now: Now) -> Result<(), Reason> {
        match self.check_strict(claims, now) {
            Err(Reason::StatusUnavailable) if self.config.fail_open => {
                self.fail_open_allowed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            other => other,
        }
    }

    /// [`RevocationStore::check`] again for a proof already allowed (an open WebSocket): the
    /// same answer, except that an allowance under `fail_open` is not counted a second time.
    pub fn recheck(&self, claims: &ProofClaims) -> Result<(), Reason> {
        match self.check_strict(claims, Now::read()) {
            Err(Reason::StatusUnavailable) if self.config.fail_open => Ok(()),
            other => other,
        }
    }

    fn check_strict(&self, claims: &ProofClaims, now: Now) -> Result<(), Reason> {
        let overlay = self.overlay.load();
        if !overlay.is_empty() {
            for id in claims.revocation_ids() {
                match overlay.get(id) {
                    Some(Pushed::Revoked) => return Err(Reason::Revoked),
                    Some(Pushed::Suspended) => return Err(Reason::Suspended),
                    None => {}
                }
            }
        }
        if self.config.list_url.is_some() {
            let list = self.list.load();
            if claims.revocation_ids().any(|id| list.contains(id)) {
                return Err(Reason::Revoked);
            }
            if list
                .fetched_at
                .is_none_or(|t| now.mono.saturating_duration_since(t) > self.config.max_staleness)
            {
                return Err(Reason::StatusUnavailable);
            }
        }
        if let Some(status) = &claims.status {
            let slot = &status.status_list;
            let lists = self.status_lists.load();
            let Some(list) = lists.get(&*slot.uri) else {
                if self.may_fetch(&slot.uri) {
                    let _ = self.wanted.try_send(slot.uri.to_string());
                }
                return Err(Reason::StatusUnavailable);
            };
            if list.expires_at <= now.unix {
                let _ = self.wanted.try_send(slot.uri.to_string());
                return Err(Reason::StatusUnavailable);
            }
            if !list.covers(slot.idx) {
                // A token newer than our copy of a growing list: fetch it again (coalesced and
                // spaced by a cooldown in the refresher).
                let _ = self.wanted.try_send(slot.uri.to_string());
                return Err(Reason::StatusUnavailable);
            }
            match list.get(slot.idx) {
                SlotStatus::Valid => {}
                SlotStatus::Revoked => return Err(Reason::Revoked),
                SlotStatus::Suspended => return Err(Reason::Suspended),
                SlotStatus::Unavailable => return Err(Reason::StatusUnavailable),
            }
        }
        Ok(())
    }

    /// What a webhook pushed for `id` (revoked or suspended), if anything: for delegations,
    /// whose handle is not on the revocation list.
    pub fn pushed(&self, id: &str) -> Option<Pushed> {
        self.overlay.load().get(id).copied()
    }

    /// The value of one status-list slot as of `now`, from the cached list: `Unavailable` when
    /// the list is not held yet, past its `exp`, too short for the slot (each of which asks the
    /// background refresher for it; the request never waits) or the slot reads 3. Used for
    /// delegation tokens, which fail closed on anything but a readable slot.
    pub fn status_slot(&self, slot: &crate::claims::StatusListRef, now: Now) -> SlotStatus {
        let lists = self.status_lists.load();
        let Some(list) = lists.get(&*slot.uri) else {
            if self.may_fetch(&slot.uri) {
                let _ = self.wanted.try_send(slot.uri.to_string());
            }
            return SlotStatus::Unavailable;
        };
        if list.expires_at <= now.unix || !list.covers(slot.idx) {
            let _ = self.wanted.try_send(slot.uri.to_string());
            return SlotStatus::Unavailable;
        }
        list.get(slot.idx)
    }

    /// Whether a copy of the status list at `uri` is held (fresh or not).
    pub fn has_status_list(&self, uri: &str) -> bool {
        self.status_lists.load().contains_key(uri)
    }

    /// Whether every status list named in [`RevocationConfig::prefetch_status_lists`] that may
    /// be fetched is held.
    pub fn prefetched(&self) -> bool {
        self.config
            .prefetch_status_lists
            .iter()
            .filter(|uri| self.may_fetch(uri))
            .all(|uri| self.has_status_list(uri))
    }

    /// Whether every status list named in [`RevocationConfig::prefetch_status_lists`] that may
    /// be fetched is held and not past its `exp`: what readiness needs, since a token naming a
    /// list that is missing or expired is answered `status_unavailable`.
    pub fn status_lists_usable(&self) -> bool {
        let now = unix_now();
        let lists = self.status_lists.load();
        self.config
            .prefetch_status_lists
            .iter()
            .filter(|uri| self.may_fetch(uri))
            .all(|uri| lists.get(uri.as_str()).is_some_and(|l| l.expires_at > now))
    }

    /// Only status lists on the issuer's origin, or on an origin in
    /// [`RevocationConfig::trusted_status_list_origins`], are ever fetched.
    pub fn may_fetch(&self, uri: &str) -> bool {
        origin_of(uri).is_some_and(|o| {
            o == self.config.issuer_origin || self.config.trusted_status_list_origins.contains(&o)
        })
    }

    /// Fetches the revocation list once and installs it.
    pub async fn refresh_list(&self) -> Result<usize, FetchError> {
        let Some(url) = &self.config.list_url else {
            return Ok(0);
        };
        let fetched = fetch::get(
            &self.client,
            url,
            "application/json",
            self.config.fetch_timeout,
            self.config.max_list_bytes,
        )
        .await?;
        let raw: RawList = serde_json::from_slice(&fetched.body)
            .map_err(|e| FetchError::Invalid(e.to_string()))?;
        let ids: HashSet<Box<str>> = raw
            .revoked
            .into_iter()
            .map(|e| e.proof_id.into_boxed_str())
            .collect();
        match raw.signature.as_deref().filter(|s| !s.is_empty()) {
            Some(sig) => self.check_list_signature(sig, &ids)?,
            None if self.config.require_signature => {
                return Err(FetchError::Invalid("the list is not signed".into()))
            }
            None => {}
        }
        let n = ids.len();
        // Pushed revocations the list now carries are no longer needed in the overlay.
        if self.overlay.load().keys().any(|k| ids.contains(k)) {
            self.overlay.rcu(|current| {
                current
                    .iter()
                    .filter(|(k, v)| !(ids.contains(*k) && **v == Pushed::Revoked))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect::<HashMap<_, _>>()
            });
        }
        self.list.store(Arc::new(RevocationSnapshot {
            ids,
            fetched_at: Some(Instant::now()),
            issued_at: raw.issued_at.or(raw.generated_at),
        }));
        Ok(n)
    }

    fn check_list_signature(&self, sig: &str, ids: &HashSet<Box<str>>) -> Result<(), FetchError> {
        let keys = self.keys.snapshot();
        let verified = jws::verify(sig, &keys.set, "proof")
            .or_else(|_| jws::verify(sig, &keys.set, "status-list"))
            .map_err(|e| FetchError::Invalid(format!("list signature refused: {e:?}")))?;
        let signed: SignedEntries = serde_json::from_slice(&verified.payload)
            .map_err(|e| FetchError::Invalid(format!("signed payload: {e}")))?;
        let entries = match signed {
            SignedEntries::Wrapped { revoked } | SignedEntries::Bare(revoked) => revoked,
        };
        let signed_ids: HashSet<Box<str>> = entries
            .into_iter()
            .map(|e| e.proof_id.into_boxed_str())
            .collect();
        if &signed_ids != ids {
            return Err(FetchError::Invalid(
                "the signature covers other entries than the list".into(),
            ));
        }
        Ok(())
    }

    /// Fetches one status list and installs it.
    pub async fn refresh_status_list(&self, uri: &str) -> Result<Instant, FetchError> {
        if !self.may_fetch(uri) {
            return Err(FetchError::Invalid(
                "status list outside the issuer's trusted origins".into(),
            ));
        }
        let fetched = fetch::get(
            &self.client,
            uri,
            "application/statuslist+jwt",
            self.config.fetch_timeout,
            self.config.max_status_list_bytes,
        )
        .await?;
        let text = std::str::from_utf8(&fetched.body)
            .map_err(|_| FetchError::Invalid("status list is not text".into()))?
            .trim();
        let keys = self.keys.snapshot();
        let verified = jws::verify(text, &keys.set, "status-list")
            .map_err(|e| FetchError::Invalid(format!("status list signature refused: {e:?}")))?;
        if !verified.typ.as_deref().is_some_and(is_status_list_typ) {
            return Err(FetchError::Invalid(
                "status list typ is not statuslist+jwt".into(),
            ));
        }
        let payload: RawStatusPayload = serde_json::from_slice(&verified.payload)
            .map_err(|e| FetchError::Invalid(format!("status list payload: {e}")))?;
        if payload.sub != uri {
            return Err(FetchError::Invalid(
                "status list sub differs from its uri".into(),
            ));
        }
        let now = unix_now();
        if payload.exp <= now {
            return Err(FetchError::Invalid("status list expired".into()));
        }
        let until_exp = Duration::from_secs((payload.exp - now) as u64);
        let ttl = payload
            .ttl
            .map(Duration::from_secs)
            .unwrap_or(self.config.status_default_ttl);
        let refresh_at = Instant::now() + ttl.min(until_exp).max(Duration::from_secs(1));
        let list = StatusList::decode(
            payload.status_list.bits,
            &payload.status_list.lst,
            payload.exp,
            refresh_at,
        )
        .map_err(FetchError::Invalid)?;
        let list = Arc::new(list);
        self.status_lists.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(uri.to_string(), list.clone());
            next
        });
        Ok(refresh_at)
    }

    /// Runs the list refresher and the status-list refresher until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Signatures are checked against the issuer's keys: give the key store a moment to load
        // them, so that the first fetch is not refused for want of keys.
        let waited = Instant::now();
        while self.keys.snapshot().fetched_at.is_none()
            && waited.elapsed() < self.config.fetch_timeout
        {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        let rx = self.wanted_rx.lock().ok().and_then(|mut r| r.take());
        let status = rx.map(|rx| tokio::spawn(self.clone().run_status_lists(rx)));
        for uri in &self.config.prefetch_status_lists {
            if self.may_fetch(uri) {
                let _ = self.wanted.try_send(uri.clone());
            }
        }
        loop {
            let wait = match self.refresh_list().await {
                Ok(n) => {
                    self.list_failures.store(0, Ordering::Relaxed);
                    tracing::debug!(revoked = n, "revocation list refreshed");
                    fetch::jitter(self.config.list_refresh)
                }
                Err(e) => {
                    let n = self.list_failures.fetch_add(1, Ordering::Relaxed) + 1;
                    let next = fetch::backoff(
                        self.config.backoff_initial,
                        self.config.backoff_max,
                        n as u32,
                    )
                    .min(self.config.list_refresh);
                    tracing::warn!(error = %e, failures = n, retry_in = ?next, "revocation list refresh failed; keeping the last good list");
                    next
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        if let Some(task) = status {
            task.abort();
        }
    }

    async fn run_status_lists(self: Arc<Self>, mut wanted: tokio::sync::mpsc::Receiver<String>) {
        let mut due: HashMap<String, Instant> = HashMap::new();
        let mut failures: HashMap<String, u32> = HashMap::new();
        let mut last_fetch: HashMap<String, Instant> = HashMap::new();
        loop {
            let next = due.values().min().copied();
            let sleep = next.map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(Instant::now())
            });
            tokio::select! {
                uri = wanted.recv() => {
                    let Some(uri) = uri else { return };
                    // Asked-for refetches are spaced by a cooldown per list.
                    let earliest = last_fetch
                        .get(&uri)
                        .map_or_else(Instant::now, |t| *t + STATUS_REFETCH_COOLDOWN);
                    // Bounded: a flood of distinct (issuer-origin) URIs cannot grow this past 1024.
                    if due.len() < 1024 || due.contains_key(&uri) {
                        let at = due.entry(uri).or_insert(earliest);
                        if earliest < *at {
                            *at = earliest;
                        }
                    }
                }
                _ = tokio::time::sleep(sleep) => {}
            }
            let now = Instant::now();
            let ready: Vec<String> = due
                .iter()
                .filter(|(_, t)| **t <= now)
                .map(|(u, _)| u.clone())
                .collect();
            for uri in ready {
                last_fetch.insert(uri.clone(), Instant::now());
                let at = match self.refresh_status_list(&uri).await {
                    Ok(at) => {
                        failures.remove(&uri);
                        at
                    }
                    Err(e) => {
                        let n = failures.entry(uri.clone()).or_insert(0);
                        *n += 1;
                        tracing::warn!(error = %e, "status list refresh failed");
                        Instant::now()
                            + fetch::backoff(
                                self.config.backoff_initial,
                                self.config.backoff_max,
                                *n,
                            )
                    }
                };
                due.insert(uri, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recheck_answers_as_a_check_without_counting_fail_open_again() {
        let keys = KeyStore::new(crate::keys::KeysConfig::new("http://127.0.0.1:9/jwks"));
        let mut config = RevocationConfig::new("http://127.0.0.1:9");
        config.list_url = Some("http://127.0.0.1:9/revoked".into());
        config.fail_open = true;
        // Never fetched: stale, so every check fails open.
        let store = RevocationStore::new(config, keys);
        let claims = ProofClaims {
            sub: Some("proof_1".into()),
            ..ProofClaims::default()
        };
        assert_eq!(store.check(&claims), Ok(()));
        assert_eq!(store.fail_open_count(), 1);
        assert_eq!(store.recheck(&claims), Ok(()));
        assert_eq!(store.fail_open_count(), 1);
        // A pushed revocation is seen by both.
        store.revoke_now("proof_1");
        assert_eq!(store.recheck(&claims), Err(Reason::Revoked));
        assert_eq!(store.check(&claims), Err(Reason::Revoked));
    }

    #[test]
    fn slots_are_lsb_first() {
        let lst = crate::testing::pack_status_list(2, &[0, 1, 2, 3, 0, 1]);
        let list = StatusList::decode(2, &lst, i64::MAX, Instant::now()).unwrap();
        assert_eq!(list.get(0), SlotStatus::Valid);
        assert_eq!(list.get(1), SlotStatus::Revoked);
        assert_eq!(list.get(2), SlotStatus::Suspended);
        assert_eq!(list.get(3), SlotStatus::Unavailable);
        assert_eq!(list.get(5), SlotStatus::Revoked);
        assert_eq!(list.get(1_000_000), SlotStatus::Unavailable);
        assert_eq!(list.get(u64::MAX), SlotStatus::Unavailable);
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(StatusList::decode(3, "eJwDAAAAAAE", 0, Instant::now()).is_err());
        assert!(StatusList::decode(2, "!!!", 0, Instant::now()).is_err());
        assert!(StatusList::decode(2, "AAAA", 0, Instant::now()).is_err());
    }

    #[test]
    fn both_spellings_of_the_status_list_typ() {
        assert!(is_status_list_typ("statuslist+jwt"));
        assert!(is_status_list_typ("application/statuslist+jwt"));
        assert!(is_status_list_typ("Application/StatusList+JWT"));
        assert!(!is_status_list_typ("JWT"));
        assert!(!is_status_list_typ("application/jwt"));
        assert!(!is_status_list_typ("application/"));
        assert!(!is_status_list_typ("text/statuslist+jwt"));
        assert!(!is_status_list_typ("é"));
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://api.proof.holdings/api/v1/x").as_deref(),
            Some("https://api.proof.holdings")
        );
        assert_eq!(
            origin_of("HTTP://127.0.0.1:80/x").as_deref(),
            Some("http://127.0.0.1")
        );
        assert_eq!(origin_of("not a url"), None);
    }
}

//! Shared set-up for core integration tests: a real issuer server on loopback and a core wired
//! to it with short intervals.
#![allow(dead_code, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use proofgate_core::keys::{KeyStore, KeysConfig};
use proofgate_core::revocation::{RevocationConfig, RevocationStore};
use proofgate_core::testing::{self, IssuerServer, SigningKey};
use proofgate_core::tokens::TokenSource;
use proofgate_core::{Enforcer, Verifier, VerifierConfig};

pub struct Rig {
    pub server: IssuerServer,
    pub key: SigningKey,
    pub keys: Arc<KeyStore>,
    pub revocation: Arc<RevocationStore>,
    pub verifier: Arc<Verifier>,
    pub enforcer: Enforcer,
    _stop: tokio::sync::watch::Sender<bool>,
}

pub struct Tuning {
    pub max_staleness: Duration,
    pub revocation_refresh: Duration,
    pub revocation_max_staleness: Duration,
    pub cooldown: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            max_staleness: Duration::from_secs(3600),
            revocation_refresh: Duration::from_millis(200),
            revocation_max_staleness: Duration::from_secs(3600),
            cooldown: Duration::from_millis(200),
        }
    }
}

pub async fn rig() -> Rig {
    rig_with(Tuning::default()).await
}

pub async fn rig_with(t: Tuning) -> Rig {
    let key = SigningKey::rsa("proof-holdings-2026-01");
    let server = IssuerServer::start(testing::jwks(&[&key])).await;
    let mut kc = KeysConfig::new(server.jwks_url());
    kc.max_staleness = t.max_staleness;
    kc.unknown_kid_cooldown = t.cooldown;
    kc.min_refresh = Duration::from_millis(100);
    kc.backoff_initial = Duration::from_millis(50);
    kc.backoff_max = Duration::from_millis(200);
    kc.fetch_timeout = Duration::from_millis(500);
    let keys = KeyStore::new(kc);
    let mut rc = RevocationConfig::new(&server.base_url());
    rc.list_refresh = t.revocation_refresh;
    rc.max_staleness = t.revocation_max_staleness;
    rc.backoff_initial = Duration::from_millis(50);
    rc.backoff_max = Duration::from_millis(200);
    rc.fetch_timeout = Duration::from_millis(500);
    let revocation = RevocationStore::new(rc, keys.clone());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };
    tokio::spawn(keys.clone().run(stop(rx.clone())));
    wait_for("keys", || !keys.is_stale()).await;
    tokio::spawn(revocation.clone().run(stop(rx)));
    wait_for("revocation list", || !revocation.is_stale()).await;
    let verifier = Arc::new(Verifier::new(keys.clone(), VerifierConfig::default()));
    let enforcer = Enforcer::new(
        verifier.clone(),
        revocation.clone(),
        TokenSource::defaults(),
    );
    Rig {
        server,
        key,
        keys,
        revocation,
        verifier,
        enforcer,
        _stop: tx,
    }
}

/// Polls `cond` every 20 ms for up to 10 s.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn phone_token(key: &SigningKey, sub: &str) -> String {
    key.sign(&testing::claims(sub, "phone", "sms", "+37069199199"))
}

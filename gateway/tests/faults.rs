//! Fault scenarios: what the gateway does on a bad day, with the sandbox's failure switch. Each
//! test is bounded to seconds by short intervals; the only timing assertions are generous upper
//! bounds on waiting.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{config_text, echo_upstream, free_port, problem, stack, Options, Stack};
use proofgate::GatewayHandle;
use proofgate_config::{Config, Secret, Secrets};
use proofgate_sandbox::{Failure, FailureRule, Sandbox, SandboxConfig, SandboxHandle};

const JWKS: &str = "/.well-known/jwks.json";

/// Like `common::stack`, but lets the test break the sandbox before the gateway starts and does
/// not wait for the gateway to be ready.
/// The memory test measures this process's RSS: no other test of this file may allocate while
/// it runs. It takes the lock exclusively; every other test shares it.
static MEMORY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

async fn stack_with(o: Options, before: impl FnOnce(&SandboxHandle)) -> Stack {
    let mut sc = SandboxConfig::default();
    sc.rate_limit_per_minute = None;
    let sandbox = Sandbox::start_with("127.0.0.1:0", sc).await.unwrap();
    before(&sandbox);
    let upstream = echo_upstream().await;
    let (proxy, admin) = (free_port(), free_port());
    let text = config_text(proxy, admin, sandbox.base_url(), upstream, &o);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("proofgate.toml");
    std::fs::write(&config_path, &text).unwrap();
    let mut config = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    config.issuer.jwks_refresh = Duration::from_secs(1);
    config.issuer.jwks_max_staleness = o.jwks_max_staleness;
    config.issuer.revocation_refresh = Duration::from_millis(500);
    // Failed fetches retry at least once a second, so recovery is quick once the issuer is back.
    config.issuer.retry_max_delay = Duration::from_secs(1);
    config.server.work_stealing = true;
    let secrets = Secrets {
        api_key: Some(Secret::new(common::API_KEY)),
        cookie_key: Some(Secret::new(common::COOKIE_KEY)),
        webhook_secret: Some(Secret::new(sandbox.webhook_secret())),
        ..Secrets::default()
    };
    let gateway = tokio::task::spawn_blocking(move || GatewayHandle::start(config, secrets, None))
        .await
        .unwrap()
        .unwrap();
    Stack {
        sandbox,
        gateway: Some(gateway),
        proxy: format!("http://127.0.0.1:{proxy}"),
        admin: format!("http://127.0.0.1:{admin}"),
        upstream,
        config_path,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        dir,
    }
}

async fn status_of(s: &Stack, url: &str) -> u16 {
    match s.http.get(url).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

async fn eventually(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A proof token signed with the sandbox's current key, minted without calling its API (which
/// may be down in the test).
fn offline_phone_token(sandbox: &SandboxHandle, sub: &str) -> String {
    sandbox.signing_key().sign(&proofgate_core::testing::claims(
        sub,
        "phone",
        "sms",
        "+447700900123",
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_down_at_start_then_recovers_by_itself() {
    let _memory = MEMORY.read().await;
    let s = stack_with(Options::default(), |sandbox| {
        sandbox.inject(FailureRule::new("*", Failure::Status(503)));
    })
    .await;
    let token = offline_phone_token(&s.sandbox, "down-at-start");
    // The gateway is up (it answers), not ready, and fails closed with a reason.
    eventually("the proxy listener", Duration::from_secs(10), async || {
        status_of(&s, &s.url("/public/ping")).await == 200
    })
    .await;
    let r = s
        .http
        .get(format!("{}/readyz", s.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(body.contains("jwks_stale"), "{body}");
    let (st, body, h) = problem(
        s.http
            .get(s.url("/payouts/x"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (st, body["reason"].as_str()),
        (503, Some("jwks_stale")),
        "{body}"
    );
    assert_eq!(h["content-type"], "application/problem+json");
    assert!(h.contains_key("retry-after"), "{h:?}");
    // A request without a token on a protected route is still told what it lacks (never a
    // step-up loop into a broken issuer, never an open door).
    let (st, _, _) = problem(s.http.get(s.url("/payouts/x")).send().await.unwrap()).await;
    assert!(st == 401 || st == 503, "{st}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status_of(&s, &format!("{}/readyz", s.admin)).await, 503);

    // The issuer comes back: the gateway recovers without a restart.
    s.sandbox.clear_failures();
    eventually("readiness", Duration::from_secs(20), async || {
        status_of(&s, &format!("{}/readyz", s.admin)).await == 200
    })
    .await;
    eventually("the token to pass", Duration::from_secs(10), async || {
        s.get_bearer("/payouts/x", &token).await.status() == 200
    })
    .await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_status_list() {
    let _memory = MEMORY.read().await;
    // Keys and the revocation list load; the status list does not.
    let s = stack_with(Options::default(), |sandbox| {
        sandbox.inject(FailureRule::new(
            "/api/v1/proofs/status-list",
            Failure::Status(503),
        ));
    })
    .await;
    eventually("the proxy listener", Duration::from_secs(10), async || {
        status_of(&s, &s.url("/public/ping")).await == 200
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = s
        .http
        .get(format!("{}/readyz", s.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("status_list_unavailable") && !body.contains("jwks_stale"),
        "{body}"
    );
    // The list comes back: ready, without a restart.
    s.sandbox.clear_failures();
    eventually("readiness", Duration::from_secs(20), async || {
        status_of(&s, &format!("{}/readyz", s.admin)).await == 200
    })
    .await;
    s.shutdown().await;
}

/// Sends `n` requests with `token` concurrently and returns the statuses and the slowest answer.
async fn burst(s: &Stack, path: &str, token: &str, n: usize) -> (Vec<u16>, Duration) {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (http, url, token) = (s.http.clone(), s.url(path), token.to_string());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let st = match http.get(url).bearer_auth(token).send().await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            (st, start.elapsed())
        }));
    }
    let mut statuses = Vec::new();
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (st, took) = t.await.unwrap();
        statuses.push(st);
        slowest = slowest.max(took);
    }
    (statuses, slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_garbage_jwks_keeps_the_last_good_keys_and_no_request_waits() {
    let _memory = MEMORY.read().await;
    let s = stack(Options::default()).await;
    let (token, _) = s.token("phone", "sms", "+447700900123").await;
    assert_eq!(s.get_bearer("/payouts/x", &token).await.status(), 200);

    // Slow: every JWKS fetch hangs far longer than any request may wait.
    s.sandbox.inject(FailureRule::new(
        JWKS,
        Failure::Hang(Duration::from_secs(4)),
    ));
    let hits = s.sandbox.hits(JWKS);
    // A token with an unknown kid asks for a refetch, which hangs; nothing waits for it.
    let stranger = proofgate_core::testing::SigningKey::rsa("not-yet-published");
    let unknown = stranger.sign(&proofgate_core::testing::claims(
        "u",
        "phone",
        "sms",
        "+447700900123",
    ));
    for round in 0..3 {
        let (statuses, slowest) = burst(&s, "/payouts/x", &token, 20).await;
        assert!(
            statuses.iter().all(|st| *st == 200),
            "round {round}: {statuses:?}"
        );
        assert!(
            slowest < Duration::from_secs(2),
            "round {round}: waited {slowest:?}"
        );
        let (statuses, slowest) = burst(&s, "/payouts/x", &unknown, 10).await;
        assert!(
            statuses.iter().all(|st| *st == 401),
            "round {round}: {statuses:?}"
        );
        assert!(
            slowest < Duration::from_secs(2),
            "round {round}: waited {slowest:?}"
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(
        s.sandbox.hits(JWKS) > hits,
        "the gateway never tried to refresh"
    );

    // Garbage: the JWKS answers 200 with a body that is not a key set.
    s.sandbox.clear_failures();
    s.sandbox
        .inject(FailureRule::new(JWKS, Failure::Status(200)));
    let hits = s.sandbox.hits(JWKS);
    eventually("a garbage fetch", Duration::from_secs(10), async || {
        s.sandbox.hits(JWKS) > hits
    })
    .await;
    let (statuses, slowest) = burst(&s, "/payouts/x", &token, 20).await;
    assert!(statuses.iter().all(|st| *st == 200), "{statuses:?}");
    assert!(slowest < Duration::from_secs(2), "waited {slowest:?}");
    assert_eq!(status_of(&s, &format!("{}/readyz", s.admin)).await, 200);
    let metrics = s.metrics().await;
    let failures = metrics
        .lines()
        .find(|l| l.starts_with("proofgate_refresh_failures{source=\"jwks\"}"))
        .unwrap_or_default();
    assert!(
        !failures.ends_with(" 0"),
        "refresh failures not counted: {failures:?}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_under_load_denies_no_valid_request() {
    let _memory = MEMORY.read().await;
    let s = stack(Options::default()).await;
    let (old, _) = s.token("phone", "sms", "+447700900123").await;
    assert_eq!(s.get_bearer("/payouts/x", &old).await.status(), 200);

    let stop = Arc::new(AtomicBool::new(false));
    let denied = Arc::new(Mutex::new(Vec::<String>::new()));
    let served = Arc::new(AtomicUsize::new(0));
    // Tokens every load task sends; a token joins once the gateway has accepted it once.
    let tokens = Arc::new(Mutex::new(vec![old.clone()]));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (http, url) = (s.http.clone(), s.url("/payouts/x"));
        let (stop, denied, served, tokens) =
            (stop.clone(), denied.clone(), served.clone(), tokens.clone());
        load.push(tokio::spawn(async move {
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                let token = {
                    let t = tokens.lock().unwrap();
                    t[i % t.len()].clone()
                };
                i += 1;
                match http.get(&url).bearer_auth(&token).send().await {
                    Ok(r) if r.status() == 200 => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        let st = r.status();
                        let body = r.text().await.unwrap_or_default();
                        denied.lock().unwrap().push(format!("{st} {body}"));
                    }
                    Err(e) => denied.lock().unwrap().push(format!("transport: {e}")),
                }
            }
        }));
    }
    // Rotate twice while the load runs; tokens of every key stay valid (no key is retired).
    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let kid = s.sandbox.rotate_signing_key();
        let (fresh, _) = s.token("phone", "sms", "+447700900123").await;
        // The first sight of a new kid may be refused (`unknown_key`) until the coalesced
        // refetch lands; from its first acceptance on, the load uses it too.
        eventually(
            &format!("rotation {round} ({kid})"),
            Duration::from_secs(10),
            async || s.get_bearer("/payouts/x", &fresh).await.status() == 200,
        )
        .await;
        tokens.lock().unwrap().push(fresh);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    let denied = std::mem::take(&mut *denied.lock().unwrap());
    assert!(
        denied.is_empty(),
        "{} of {} requests denied during rotation: {:?}",
        denied.len(),
        denied.len() + served.load(Ordering::Relaxed),
        &denied[..denied.len().min(5)]
    );
    assert!(served.load(Ordering::Relaxed) > 20);
    s.shutdown().await;
}

/// The issuer withdraws a key it still serves (`proof_tombstones` in its JWKS): from the next
/// key refresh on, every token that key signed is refused — one the gateway has cached included —
/// with `proof_key_revoked`, while the current key's tokens go through; a browser on a step-up
/// route is offered a new proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_key_is_refused_from_the_next_key_refresh() {
    let _memory = MEMORY.read().await;
    let s = stack(Options::default()).await;
    let old_kid = s.sandbox.signing_kid();
    let (old, _) = s.token("phone", "sms", "+447700900123").await;
    let (old_alice, _) = s.token("email", "email", "alice@corp.example").await;
    assert_eq!(s.get_bearer("/payouts/x", &old).await.status(), 200);
    s.sandbox.rotate_signing_key();
    let (new, _) = s.token("phone", "sms", "+447700900124").await;
    eventually("the rotated key", Duration::from_secs(10), async || {
        s.get_bearer("/payouts/x", &new).await.status() == 200
    })
    .await;

    assert!(s.sandbox.withdraw_key(&old_kid));
    // The gateway refreshes its keys every second here.
    eventually("the tombstone", Duration::from_secs(10), async || {
        s.get_bearer("/payouts/x", &old).await.status() == 401
    })
    .await;
    let (st, body, h) = problem(s.get_bearer("/payouts/x", &old).await).await;
    assert_eq!(
        (st, body["reason"].as_str()),
        (401, Some("proof_key_revoked"))
    );
    let challenge = h["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("proof_key_revoked"), "{challenge}");
    assert!(!body.to_string().contains(&old), "no token in the body");
    assert_eq!(s.get_bearer("/payouts/x", &new).await.status(), 200);

    // A person on a step-up route (`/admin`) is sent to get a new proof, not shown an error.
    let r = s
        .http
        .get(s.url("/admin/x"))
        .header("accept", "text/html")
        .bearer_auth(&old_alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{:?}", r.headers());
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/.proofgate/start?policy=staff&"), "{to}");
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(r#"reason="proof_key_revoked""#),
        "no proof_key_revoked in the decisions:\n{metrics}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_list_of_100k_entries_stays_bounded() {
    let _memory = MEMORY.write().await;
    use proofgate_core::keys::{KeyStore, KeysConfig};
    use proofgate_core::revocation::{RevocationConfig, RevocationStore};
    use proofgate_core::testing::{self, IssuerServer, SigningKey};
    use proofgate_core::tokens::TokenSource;
    use proofgate_core::{Enforcer, Reason, Verifier, VerifierConfig};

    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    let key = SigningKey::rsa("big-list");
    let server = IssuerServer::start(testing::jwks(&[&key])).await;
    let ids: Vec<String> = (0..100_000).map(|i| format!("{i:024x}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    server.set_revocation_list(testing::revocation_list(Some(&key), &refs));
    let keys = KeyStore::new(KeysConfig::new(server.jwks_url()));
    keys.refresh().await.unwrap();
    let revocation = RevocationStore::new(RevocationConfig::new(&server.base_url()), keys.clone());
    let before = rss_kib();
    let started = Instant::now();
    assert_eq!(revocation.refresh_list().await.unwrap(), 100_000);
    let load_time = started.elapsed();
    // Refreshing the same list again and again replaces it; memory does not pile up.
    for _ in 0..2 {
        revocation.refresh_list().await.unwrap();
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 256,
        "100k entries and 3 loads grew RSS by {grown_mib} MiB"
    );
    assert!(
        load_time < Duration::from_secs(20),
        "loading took {load_time:?}"
    );
    let verifier = Arc::new(Verifier::new(keys, VerifierConfig::default()));
    let enforcer = Enforcer::new(verifier, revocation.clone(), TokenSource::defaults());
    let sign = |sub: &str| key.sign(&testing::claims(sub, "phone", "sms", "+447700900123"));
    let revoked = sign(&ids[77_777]);
    let fine = sign("not-on-the-list");
    let started = Instant::now();
    for _ in 0..20_000 {
        assert_eq!(enforcer.check_token(&revoked).err(), Some(Reason::Revoked));
        assert!(enforcer.check_token(&fine).is_ok());
    }
    let lookups = started.elapsed();
    assert!(
        lookups < Duration::from_secs(20),
        "40k checks against 100k entries took {lookups:?}"
    );
    eprintln!(
        "100k-entry list: loaded in {load_time:?}, RSS +{grown_mib} MiB after 3 loads, 40k checks in {lookups:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_slow_is_a_504_problem_and_down_is_a_502() {
    let _memory = MEMORY.read().await;
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_addr = slow.local_addr().unwrap();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "too late"
        });
        let _ = axum::serve(slow, app).await;
    });
    let extra: &'static str = Box::leak(
        format!(
            r#"
[[upstreams]]
name = "slow"
addresses = ["{slow_addr}"]
connect_timeout = "1s"
read_timeout = "1s"

[[routes]]
name = "slow"
path = "/slow/**"
policy = "public"
upstream = "slow"
"#
        )
        .into_boxed_str(),
    );
    let s = stack(Options {
        extra,
        ..Options::default()
    })
    .await;
    let started = Instant::now();
    let (st, body, h) = problem(s.http.get(s.url("/slow/x")).send().await.unwrap()).await;
    assert_eq!(
        (st, body["reason"].as_str()),
        (504, Some("upstream_timeout")),
        "{body}"
    );
    assert_eq!(h["content-type"], "application/problem+json");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The connection is closed after a failed proxy, and the answer says so: a pooling client
    // must not send its next request on it.
    assert_eq!(h["connection"], "close");
    let (st, body, h) = problem(s.http.get(s.url("/dead/x")).send().await.unwrap()).await;
    assert_eq!(h["connection"], "close");
    assert_eq!(
        (st, body["reason"].as_str()),
        (502, Some("upstream_unavailable")),
        "{body}"
    );
    // A browser gets pages that say so, with a way to try again (no token echoed).
    for (path, status, says) in [
        (
            "/dead/x?y=1&proof_token=secret",
            502,
            "The application is not answering",
        ),
        ("/slow/x", 504, "The application took too long to answer"),
    ] {
        let r = s
            .http
            .get(s.url(path))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let page = r.text().await.unwrap();
        assert!(page.contains(says), "{page}");
        let retry = path
            .replace("&proof_token=secret", "")
            .replace('&', "&amp;");
        assert!(
            page.contains(&format!("href=\"{retry}\">Try again")),
            "{page}"
        );
        assert!(!page.contains("secret"), "{page}");
    }
    // The gateway is unharmed.
    assert_eq!(status_of(&s, &s.url("/public/ping")).await, 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_step_up_starts_stays_under_the_api_budget() {
    let _memory = MEMORY.read().await;
    let s = stack(Options::default()).await;
    const CREATE: &str = "/api/v1/verification-requests";
    let before = s.sandbox.hits(CREATE);
    let start_path = "/.proofgate/start?policy=staff&return_to=%2Fadmin";
    let minute =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 60;
    let first_minute = minute(std::time::SystemTime::now());
    // 200 clients on distinct loopback addresses, three starts each.
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8));
        let url = s.url(start_path);
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .local_address(ip)
                .redirect(reqwest::redirect::Policy::none())
                // Generous: on a loaded machine 600 requests at once can queue (the statuses,
                // not the speed, are what this test checks).
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mut got = Vec::new();
            for _ in 0..3 {
                let st = match http
                    .get(&url)
                    .header("accept", "application/json")
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                got.push(st);
            }
            got
        }));
    }
    let mut started = 0;
    let mut limited = 0;
    for t in tasks {
        for st in t.await.unwrap() {
            match st {
                200 => started += 1,
                429 => limited += 1,
                other => panic!("unexpected status {other} for a step-up start"),
            }
        }
    }
    let minutes = minute(std::time::SystemTime::now()) - first_minute + 1;
    let calls = s.sandbox.hits(CREATE) - before;
    // The configured global budget is 90 starts a minute (below the API's 100/min).
    assert!(
        calls as u64 <= 90 * minutes,
        "{calls} Proof API calls in {minutes} minute window(s)"
    );
    assert_eq!(
        calls, started,
        "every API call is a start that was let through"
    );
    assert!(
        limited >= 600 - 90 * minutes as usize,
        "{limited} rate limited"
    );
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("proofgate_step_up_starts_total{outcome=\"rate_limited\"}"),
        "{metrics}"
    );
    // Protected routes keep answering while starts are refused.
    assert_eq!(status_of(&s, &s.url("/public/ping")).await, 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_under_load_drops_no_request() {
    let _memory = MEMORY.read().await;
    let s = stack(Options {
        watch: true,
        ..Options::default()
    })
    .await;
    let (token, _) = s.token("phone", "sms", "+447700900123").await;
    assert_eq!(s.get_bearer("/payouts/x", &token).await.status(), 200);
    let original = std::fs::read_to_string(&s.config_path).unwrap();
    // A change that touches routes, policies and upstreams but not what the load asks for.
    let changed = format!(
        "{original}\n[[upstreams]]\nname = \"extra\"\naddresses = [\"{}\"]\n\n[[routes]]\nname = \"extra\"\npath = \"/extra/**\"\npolicy = \"public\"\nupstream = \"extra\"\n",
        s.upstream
    );
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let served = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, failures, served) = (stop.clone(), failures.clone(), served.clone());
        let (public, payouts, token) = (s.url("/public/x"), s.url("/payouts/x"), token.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0u32;
            // Half the workers reuse connections, half open a new one per request.
            let pooled = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let http = if worker % 2 == 0 {
                    pooled.clone()
                } else {
                    reqwest::Client::builder()
                        .pool_max_idle_per_host(0)
                        .build()
                        .unwrap()
                };
                n += 1;
                let req = if n.is_multiple_of(2) {
                    http.get(&public)
                } else {
                    http.get(&payouts).bearer_auth(&token)
                };
                match req.send().await {
                    Ok(r) if r.status() == 200 => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", r.status())),
                    Err(e) => failures.lock().unwrap().push(format!("transport: {e}")),
                }
            }
        }));
    }
    let gateway = s.gateway.as_ref().unwrap().gateway.clone();
    let path = s.config_path.clone();
    // Many reloads in a row, directly (the same code path as a file change or SIGHUP) …
    for i in 0..40 {
        std::fs::write(&path, if i % 2 == 0 { &changed } else { &original }).unwrap();
        let applied = {
            let (path, gateway) = (path.clone(), gateway.clone());
            tokio::task::spawn_blocking(move || proofgate::reload::reload(&path, &gateway))
                .await
                .unwrap()
        };
        assert!(applied, "reload {i} was rejected");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // … and through the file watcher.
    std::fs::write(&path, &changed).unwrap();
    eventually(
        "the watcher's reload",
        Duration::from_secs(10),
        async || status_of(&s, &s.url("/extra/x")).await == 200,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during reloads: {:?}",
        failures.len(),
        failures.len() + served.load(Ordering::Relaxed),
        &failures[..failures.len().min(5)]
    );
    assert!(served.load(Ordering::Relaxed) > 40);
    s.shutdown().await;
}

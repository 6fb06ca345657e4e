//! Replicas share nothing: three real `proofgate` processes behind a round-robin front, with the
//! sandbox as issuer. A step-up started on one replica finishes on another (they share only the
//! configuration and `PROOFGATE_COOKIE_KEY`), and a revocation reaches every replica within one
//! revocation refresh interval, with no webhook and nothing shared between them.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::free_port;
use proofgate_core::testing::browser::{self, html};
use proofgate_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

const API_KEY: &str = "pk_test_replica_tests";
const COOKIE_KEY: &str = "replicas-share-this-cookie-key-0123456789";
/// The smallest `revocation_refresh` a configuration file may hold.
const REVOCATION_REFRESH: Duration = Duration::from_secs(10);
/// Time for one fetch and one request on a loaded two-core machine.
const SLACK: Duration = Duration::from_secs(3);

/// One `proofgate run` process; killed on drop.
struct Replica {
    child: Child,
    proxy: String,
    admin: String,
    log: PathBuf,
}

impl Replica {
    fn spawn(
        dir: &Path,
        n: usize,
        sandbox: &SandboxHandle,
        upstream: SocketAddr,
        cookie_key: &str,
    ) -> Self {
        let (proxy, admin) = (free_port(), free_port());
        let config = dir.join(format!("replica-{n}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"
default_policy = "deny-all"

[[listeners]]
address = "127.0.0.1:{proxy}"

[admin]
address = "127.0.0.1:{admin}"

[server]
threads = 1
grace_period = "0s"
graceful_shutdown_timeout = "1s"

[[upstreams]]
name = "app"
addresses = ["{upstream}"]

[issuer]
api_base = "{sandbox}"
jwks_refresh = "1m"
revocation_refresh = "{refresh}s"
revocation_max_staleness = "1h"
unknown_kid_cooldown = "1s"

[step_up]
cookie_secure = false
per_client_per_minute = 50
global_per_minute = 90

[logging]
level = "warn"

[[policies]]
name = "deny-all"
rule = "deny"

[[policies]]
name = "public"
rule = "public"

[[policies]]
name = "staff"
rule = "any_of"
requirements = [{{ types = ["email"], identifiers = ["alice@corp.example"] }}]

[[policies]]
name = "payouts"
rule = "any_of"
on_failure = "deny"
requirements = [{{ types = ["phone"] }}]

[[routes]]
name = "public"
path = "/public/**"
policy = "public"

[[routes]]
name = "admin"
path = "/admin/**"
policy = "staff"

[[routes]]
name = "payouts"
path = "/payouts/**"
policy = "payouts"
"#,
                sandbox = sandbox.base_url(),
                refresh = REVOCATION_REFRESH.as_secs(),
            ),
        )
        .unwrap();
        let log = dir.join(format!("replica-{n}.log"));
        let child = common::run_proofgate(
            &config,
            &[],
            &[
                ("PROOF_API_KEY", API_KEY),
                ("PROOFGATE_COOKIE_KEY", cookie_key),
                ("PROOF_WEBHOOK_SECRET", sandbox.webhook_secret()),
            ],
            &log,
        );
        Self {
            child,
            proxy: format!("127.0.0.1:{proxy}"),
            admin: format!("http://127.0.0.1:{admin}"),
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("replica exited with {status}:\n{}", self.logs());
            }
            let ready = match http.get(format!("{}/readyz", self.admin)).send().await {
                Ok(r) if r.status() == 200 => http
                    .get(self.url("/public/ping"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200),
                _ => false,
            };
            if ready {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "replica never became ready:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP round-robin front: connection `n` goes to backend `n % len`. It records which backend
/// took each connection, so that a test can tell which replica answered.
struct Front {
    addr: SocketAddr,
    served: Arc<Mutex<Vec<usize>>>,
}

impl Front {
    async fn start(backends: Vec<String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(Mutex::new(Vec::new()));
        let log = served.clone();
        tokio::spawn(async move {
            let mut next = 0usize;
            while let Ok((mut client, _)) = listener.accept().await {
                let i = next % backends.len();
                next += 1;
                log.lock().unwrap().push(i);
                let backend = backends[i].clone();
                tokio::spawn(async move {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(&backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        Self { addr, served }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The replica that took the last connection.
    fn last(&self) -> usize {
        *self.served.lock().unwrap().last().expect("a connection")
    }
}

struct Cluster {
    sandbox: SandboxHandle,
    replicas: Vec<Replica>,
    front: Front,
    /// A client that opens a new connection per request, so the front balances every request.
    http: reqwest::Client,
    dir: tempfile::TempDir,
    upstream: SocketAddr,
}

async fn cluster() -> Cluster {
    let mut sc = SandboxConfig::default();
    sc.rate_limit_per_minute = None;
    let sandbox = Sandbox::start_with("127.0.0.1:0", sc).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, proofgate::dev::demo_upstream()).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut replicas: Vec<Replica> = (0..3)
        .map(|n| Replica::spawn(dir.path(), n, &sandbox, upstream, COOKIE_KEY))
        .collect();
    for r in &mut replicas {
        r.wait_ready(&http).await;
    }
    let front = Front::start(replicas.iter().map(|r| r.proxy.clone()).collect()).await;
    Cluster {
        sandbox,
        replicas,
        front,
        http,
        dir,
        upstream,
    }
}

impl Cluster {
    /// A proof token from the sandbox's API (create + test-verify) and its proof id, minted
    /// with the project's own client.
    async fn token(&self, kind: &str, channel: &str, identifier: &str) -> (String, String) {
        use proofgate_core::client::{CreateVerification, ProofApiClient};
        let api = ProofApiClient::new(self.sandbox.base_url(), API_KEY).unwrap();
        let created = api
            .create_verification(&CreateVerification::new(kind, channel, identifier))
            .await
            .unwrap();
        let done = api.test_verify(&created.id).await.unwrap();
        (done.token().expect("a token").to_string(), created.id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_started_on_one_replica_finishes_on_another() {
    let c = cluster().await;
    let (front, path) = (c.front.url(""), "/admin/reports?page=2");
    // A browser without a proof is sent to the start link; one replica starts the flow: a
    // hosted verification and a signed state cookie.
    let started = browser::start(&c.http, &front, path, c.sandbox.base_url()).await;
    let started_on = c.front.last();
    // The person completes the hosted page, which sends them back through the front.
    let callback = browser::complete(&c.http, &started, &front).await;
    // Another replica finishes it: it has never seen this flow, only the cookie.
    let (pair, _) = browser::finish(&c.http, &started, &callback, path).await;
    let finished_on = c.front.last();
    assert_ne!(
        started_on, finished_on,
        "the front balanced both to one replica"
    );
    // The proof opens the page on every replica.
    for replica in &c.replicas {
        let r = html(c.http.get(replica.url("/admin/reports?page=2")))
            .header("cookie", &pair)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", replica.logs());
    }
    // A replica started with another cookie key refuses the same state: the key is what the
    // replicas share, not memory.
    let mut stranger = Replica::spawn(
        c.dir.path(),
        3,
        &c.sandbox,
        c.upstream,
        "another-key-another-key-another-key!",
    );
    stranger.wait_ready(&c.http).await;
    let callback_path = callback.trim_start_matches(&front);
    let r = html(c.http.get(stranger.url(callback_path)))
        .header("cookie", &started.state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
    drop(stranger);
    c.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_enforces_a_revocation_within_one_refresh() {
    let c = cluster().await;
    let (token, id) = c.token("phone", "sms", "+447700900123").await;
    // Every replica accepts the token (a fresh replica may answer 503 until it has cached the
    // token's status list).
    for replica in &c.replicas {
        let start = Instant::now();
        loop {
            let r = c
                .http
                .get(replica.url("/payouts/x"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            if r.status() == 200 {
                break;
            }
            assert!(
                r.status() == 503 && start.elapsed() < Duration::from_secs(10),
                "{}: {}",
                r.status(),
                r.text().await.unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Revoke at the issuer. No webhook is configured: each replica learns it from its own
    // refresh of the revocation list.
    let r = c
        .http
        .post(format!(
            "{}/api/v1/proofs/{id}/revoke",
            c.sandbox.base_url()
        ))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({"reason": "fraud"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let revoked_at = Instant::now();
    let mut pending: Vec<usize> = (0..c.replicas.len()).collect();
    let mut took = vec![Duration::ZERO; c.replicas.len()];
    while !pending.is_empty() {
        let mut still = Vec::new();
        for &i in &pending {
            let r = c
                .http
                .get(c.replicas[i].url("/payouts/x"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            if status == 401 {
                assert_eq!(body["reason"], "revoked", "{body}");
                took[i] = revoked_at.elapsed();
            } else {
                assert_eq!(status, 200, "{body}");
                still.push(i);
            }
        }
        pending = still;
        assert!(
            revoked_at.elapsed() < REVOCATION_REFRESH + SLACK,
            "replicas {pending:?} still accept a revoked token after {:?} (refresh {:?})",
            revoked_at.elapsed(),
            REVOCATION_REFRESH
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("revocation reached the replicas after {took:?}");
    // Through the front, every replica now refuses it.
    for _ in 0..c.replicas.len() {
        let r = c
            .http
            .get(c.front.url("/payouts/x"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let mut seen: Vec<usize> = c.front.served.lock().unwrap().clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, vec![0, 1, 2], "the front reached every replica");
    c.sandbox.shutdown().await;
}

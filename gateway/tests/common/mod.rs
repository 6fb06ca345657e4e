//! A real stack for gateway tests: the sandbox as issuer, an echo upstream, and the gateway's
//! Pingora listener, all on loopback ephemeral ports.
#![allow(dead_code, missing_docs)]

pub mod browser;
pub mod redis;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use proofgate::GatewayHandle;
use proofgate_config::{Config, Secret, Secrets};
use proofgate_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

pub const API_KEY: &str = "pk_test_gateway_tests";
pub const COOKIE_KEY: &str = "0123456789abcdef0123456789abcdef";

pub use proofgate_core::testing::free_port;

pub struct Stack {
    pub sandbox: SandboxHandle,
    pub gateway: Option<GatewayHandle>,
    pub proxy: String,
    pub admin: String,
    pub upstream: SocketAddr,
    pub config_path: PathBuf,
    pub http: reqwest::Client,
    /// Holds the configuration file; removed when the stack is dropped.
    pub dir: tempfile::TempDir,
}

pub struct Options {
    pub jwks_max_staleness: Duration,
    pub extra: &'static str,
    pub watch: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            jwks_max_staleness: Duration::from_secs(3600),
            extra: "",
            watch: false,
        }
    }
}

pub fn config_text(
    proxy: u16,
    admin: u16,
    sandbox: &str,
    upstream: SocketAddr,
    o: &Options,
) -> String {
    format!(
        r#"
default_policy = "deny-all"
default_upstream = "app"

[[listeners]]
address = "127.0.0.1:{proxy}"

[admin]
address = "127.0.0.1:{admin}"

[server]
threads = 1

[[upstreams]]
name = "app"
addresses = ["{upstream}"]
connect_timeout = "1s"
read_timeout = "2s"

[[upstreams]]
name = "dead"
addresses = ["127.0.0.1:{dead}"]
connect_timeout = "1s"
read_timeout = "1s"

[issuer]
api_base = "{sandbox}"
jwks_refresh = "1m"
jwks_max_staleness = "1h"
revocation_refresh = "10s"
revocation_max_staleness = "1h"
unknown_kid_cooldown = "1s"

[identity_headers]
strip_token = true

[step_up]
cookie_secure = false
per_client_per_minute = 50
global_per_minute = 90

[logging]
level = "info"

[[policies]]
name = "deny-all"
rule = "deny"

[[policies]]
name = "public"
rule = "public"

[[policies]]
name = "staff"
rule = "any_of"
on_failure = "step_up"
requirements = [
  {{ types = ["email"], identifiers = ["alice@corp.example"] }},
  {{ types = ["domain"], identifiers = ["corp.example"] }},
]

[[policies]]
name = "payouts"
rule = "any_of"
on_failure = "deny"
requirements = [{{ types = ["phone"], max_age = "10m" }}]

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

[[routes]]
name = "dead"
path = "/dead/**"
policy = "public"
upstream = "dead"
{extra}
"#,
        dead = free_port(),
        // `{upstream}` and `{dead}` in `extra` stand for the echo upstream and a closed port.
        extra = o
            .extra
            .replace("{upstream}", &upstream.to_string())
            .replace("{dead}", &free_port().to_string()),
    )
}

/// The smallest configuration, everything public: one upstream `app` at `upstream`, an issuer
/// nobody answers at (nothing here needs one), and `sections` (listeners, `[admin]`, `[server]`,
/// TOML) for what the test is about.
pub fn public_config(sections: &str, upstream: &str) -> String {
    format!(
        r#"
default_policy = "public"
default_upstream = "app"

{sections}

[[upstreams]]
name = "app"
addresses = ["{upstream}"]
read_timeout = "10s"

[issuer]
api_base = "http://127.0.0.1:9"

[[policies]]
name = "public"
rule = "public"
"#
    )
}

/// The real binary: `proofgate run -c <config>` and `args`, with `envs` (and no inherited
/// `RUST_LOG`), its stdout and stderr written to `log`.
pub fn run_proofgate(config: &Path, args: &[&str], envs: &[(&str, &str)], log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_proofgate"))
        .args(["run", "-c"])
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// A child process that is killed and waited for when dropped, so that a test that fails (or
/// panics) half-way leaves no process behind. Derefs to the [`Child`].
pub struct Process(pub Child);

impl Process {
    /// [`run_proofgate`], killed on drop.
    pub fn proofgate(config: &Path, args: &[&str], envs: &[(&str, &str)], log: &Path) -> Self {
        Self(run_proofgate(config, args, envs, log))
    }
}

impl std::ops::Deref for Process {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Process {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Nothing to do if it has exited and been waited for already.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `sig` (`-TERM`, `-QUIT`, …) to `child` with kill(1).
/// The real `proofgate` binary on loopback over a sandbox (no rate limit) and an echo upstream,
/// with the tests' configuration ([`config_text`], changed by `edit`), the three secrets in its
/// environment plus `envs`, and its log in a file. The process is killed, then the directory
/// removed, on drop.
pub struct Binary {
    pub sandbox: SandboxHandle,
    pub proxy: u16,
    pub admin: u16,
    /// The configuration file and the text first written to it.
    pub config: PathBuf,
    pub text: String,
    pub log: PathBuf,
    /// The sandbox's webhook secret, as the binary was given it.
    pub secret: String,
    pub process: Process,
    pub dir: tempfile::TempDir,
}

impl Binary {
    pub async fn start(edit: impl FnOnce(String) -> String, envs: &[(&str, &str)]) -> Self {
        let mut sc = SandboxConfig::default();
        sc.rate_limit_per_minute = None;
        let sandbox = Sandbox::start_with("127.0.0.1:0", sc).await.unwrap();
        let upstream = echo_upstream().await;
        let (proxy, admin) = (free_port(), free_port());
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("proofgate.toml");
        let text = edit(config_text(
            proxy,
            admin,
            sandbox.base_url(),
            upstream,
            &Options::default(),
        ));
        std::fs::write(&config, &text).unwrap();
        let log = dir.path().join("proofgate.log");
        let secret = sandbox.webhook_secret().to_string();
        let mut all = envs.to_vec();
        all.extend([
            ("PROOF_API_KEY", API_KEY),
            ("PROOFGATE_COOKIE_KEY", COOKIE_KEY),
            ("PROOF_WEBHOOK_SECRET", secret.as_str()),
        ]);
        let process = Process::proofgate(&config, &[], &all, &log);
        Self {
            sandbox,
            proxy,
            admin,
            config,
            text,
            log,
            secret,
            process,
            dir,
        }
    }

    /// The log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most 30 s, else fails with the log) until the admin listener's `/readyz`
    /// answers 200.
    pub async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{}/readyz", self.admin);
        let started = Instant::now();
        while http
            .get(&url)
            .send()
            .await
            .map_or(true, |r| r.status() != 200)
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never ready:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn signal(child: &Child, sig: &str) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success());
}

/// Sends `GET path` on a raw HTTP/1.1 connection (blocking; give it a read timeout) and reads
/// one response, its body sized by `Content-Length`: returns the head (status line and
/// headers, lower-cased, each line ending in CRLF) and the body.
pub fn raw_get(stream: &mut std::net::TcpStream, path: &str) -> std::io::Result<(String, Vec<u8>)> {
    use std::io::{Error, ErrorKind, Read, Write};
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut read_more = |buf: &mut Vec<u8>| match stream.read(&mut chunk)? {
        0 => Err(Error::new(
            ErrorKind::UnexpectedEof,
            "closed before the response ended",
        )),
        n => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    };
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(&mut buf)?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::other(format!("no content-length in {head}")))?;
    while buf.len() < head_end + len {
        read_more(&mut buf)?;
    }
    Ok((head, buf[head_end..head_end + len].to_vec()))
}

/// What the peer did next on `stream` (blocking, until its read timeout): `Ok(0)` if it closed
/// the connection cleanly, an error such as `ConnectionReset` otherwise.
pub fn read_end(stream: &mut std::net::TcpStream) -> std::io::Result<usize> {
    use std::io::Read;
    stream.read(&mut [0u8; 1024])
}

/// Waits for `child` to exit, at most `limit`; `context` (its logs, say) goes in the failure.
pub async fn wait_exit(child: &mut Child, limit: Duration, context: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "process did not exit\n{context}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An upstream that echoes what it received as JSON.
pub async fn echo_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, proofgate::dev::demo_upstream()).await;
    });
    addr
}

pub async fn stack(o: Options) -> Stack {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let mut sc = SandboxConfig::default();
    sc.rate_limit_per_minute = None;
    sc.webhook_retry_delay = Duration::from_millis(100);
    let sandbox = Sandbox::start_with("127.0.0.1:0", sc).await.unwrap();
    let upstream = echo_upstream().await;
    let (proxy, admin) = (free_port(), free_port());
    let text = config_text(proxy, admin, sandbox.base_url(), upstream, &o);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("proofgate.toml");
    std::fs::write(&config_path, &text).unwrap();
    let mut config = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    // Intervals shorter than a file may hold, so that each test runs in seconds.
    config.issuer.jwks_refresh = Duration::from_secs(1);
    config.issuer.jwks_max_staleness = o.jwks_max_staleness;
    config.issuer.revocation_refresh = Duration::from_millis(500);
    // Several Pingora servers start and stop in this one test process. Pingora's no-steal
    // runtime keeps per-process handles that outlive a stopped server, so a second server in the
    // same process would spawn its accept loop onto the dead runtime; the work-stealing runtime
    // has no such state. (One gateway per process, as in production, is unaffected.)
    config.server.work_stealing = true;
    let secrets = Secrets {
        api_key: Some(Secret::new(API_KEY)),
        cookie_key: Some(Secret::new(COOKIE_KEY)),
        webhook_secret: Some(Secret::new(sandbox.webhook_secret())),
        ..Secrets::default()
    };
    let path = o.watch.then(|| config_path.clone());
    let gateway = tokio::task::spawn_blocking(move || GatewayHandle::start(config, secrets, path))
        .await
        .unwrap()
        .unwrap();
    let s = Stack {
        sandbox,
        gateway: Some(gateway),
        proxy: format!("http://127.0.0.1:{proxy}"),
        admin: format!("http://127.0.0.1:{admin}"),
        upstream,
        config_path,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        dir,
    };
    s.wait_ready().await;
    s
}

impl Stack {
    pub async fn wait_ready(&self) {
        let start = Instant::now();
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.admin)).send().await {
                if r.status() == 200 {
                    if let Ok(r) = self
                        .http
                        .get(format!("{}/public/ping", self.proxy))
                        .send()
                        .await
                    {
                        if r.status() == 200 {
                            return;
                        }
                    }
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "gateway never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let r = self.http.get(format!("{}/metrics", self.admin)).send();
        r.await.unwrap().text().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.proxy)
    }

    /// A proof token from the sandbox through its API (create + test-verify), with the
    /// project's own client.
    pub async fn token(&self, kind: &str, channel: &str, identifier: &str) -> (String, String) {
        mint(self.sandbox.base_url(), kind, channel, identifier).await
    }

    /// GETs `path` with a bearer token, retrying while the answer is a 503 (status list not yet
    /// cached on a fresh gateway).
    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        let start = Instant::now();
        loop {
            let r = self
                .http
                .get(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            if r.status() != 503 || start.elapsed() > Duration::from_secs(5) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(g) = self.gateway.take() {
            tokio::task::spawn_blocking(move || g.shutdown())
                .await
                .unwrap();
        }
    }
}

/// A proof token minted by the sandbox at `base` through its API (create + test-verify), with
/// the project's own client; returns the token and its proof id.
pub async fn mint(base: &str, kind: &str, channel: &str, identifier: &str) -> (String, String) {
    use proofgate_core::client::{CreateVerification, ProofApiClient};
    let api = ProofApiClient::new(base, API_KEY).unwrap();
    let created = api
        .create_verification(&CreateVerification::new(kind, channel, identifier))
        .await
        .unwrap();
    let done = api.test_verify(&created.id).await.unwrap();
    (done.token().expect("a token").to_string(), created.id)
}

/// An API client's step-up: `start` (a path under the gateway at `base`, with the query) asked
/// for JSON, then the hosted verification completed as the person would. Returns the flow's
/// sealed `state`, for `callback?state=…`.
pub async fn json_step_up(http: &reqwest::Client, base: &str, start: &str) -> String {
    let r = http
        .get(format!("{base}{start}"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{start}");
    let started: serde_json::Value = r.json().await.unwrap();
    let hosted = started["verification_url"].as_str().unwrap();
    let r = http
        .post(format!("{hosted}/complete"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    started["state"].as_str().unwrap().to_owned()
}

pub async fn problem(r: reqwest::Response) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    (status, body, headers)
}

/// A HITL configuration at the sandbox at `base` (approvers reached in a browser), named `name`,
/// with the sandbox's default timeout or `timeout_seconds`, finalized: its id.
pub async fn hitl(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    timeout_seconds: Option<u64>,
) -> String {
    let mut body = serde_json::json!({"name": name, "channels": [{"type": "browser"}]});
    if let Some(t) = timeout_seconds {
        body["timeout_seconds"] = t.into();
    }
    let created: serde_json::Value = http
        .post(format!("{base}/api/v1/hitl"))
        .bearer_auth(API_KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let r = http
        .post(format!("{base}/api/v1/hitl/{id}/finalize"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    id
}

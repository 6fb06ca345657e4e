//! A real `redis-server` for the cluster tests: started on a free loopback port in a temporary
//! directory, with no persistence, killed (and waited for) on drop, also when a test panics.
//!
//! Without `redis-server` on the `PATH`, [`Redis::start`] prints a loud "skipped" line and
//! returns `None`, or panics when the `CI` environment variable is set, so that CI never passes
//! by skipping. `REDIS_SERVER` may name the binary instead.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A running `redis-server`; see the module documentation.
pub struct Redis {
    child: Option<Child>,
    /// Its port on 127.0.0.1 (kept across [`Redis::restart`]).
    pub port: u16,
    binary: PathBuf,
    dir: tempfile::TempDir,
    /// TLS only, with these certificate files (`tests/data/tls`), and this password.
    tls: Option<PathBuf>,
    password: Option<String>,
}

fn binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

impl Redis {
    /// Starts one, or `None` (skipped loudly) when `redis-server` is missing and `CI` is unset.
    pub fn start() -> Option<Self> {
        Self::start_with(None, None)
    }

    /// [`Redis::start`] serving TLS only, with the certificate and key in `tls_dir` (`cert.pem`,
    /// `key.pem`), and requiring `password` (`requirepass`).
    pub fn start_tls(tls_dir: &std::path::Path, password: &str) -> Option<Self> {
        Self::start_with(Some(tls_dir.to_owned()), Some(password.to_owned()))
    }

    fn start_with(tls: Option<PathBuf>, password: Option<String>) -> Option<Self> {
        let binary = binary();
        let found = Command::new(&binary)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed (apt-get install redis-server), and CI is set"
            );
            eprintln!(
                "\n*** SKIPPED: redis-server is not installed; install it (apt-get install \
                 redis-server) to run the cluster tests ***\n"
            );
            return None;
        }
        let mut redis = Self {
            child: None,
            port: free_port(),
            binary,
            dir: tempfile::tempdir().unwrap(),
            tls,
            password,
        };
        redis.spawn();
        Some(redis)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).unwrap();
        let mut command = Command::new(&self.binary);
        command.args(["--bind", "127.0.0.1"]);
        match &self.tls {
            None => {
                command.arg("--port").arg(self.port.to_string());
            }
            Some(dir) => {
                command
                    .args(["--port", "0", "--tls-port"])
                    .arg(self.port.to_string())
                    .arg("--tls-cert-file")
                    .arg(dir.join("cert.pem"))
                    .arg("--tls-key-file")
                    .arg(dir.join("key.pem"))
                    .args(["--tls-auth-clients", "no"]);
            }
        }
        if let Some(password) = &self.password {
            command.arg("--requirepass").arg(password);
        }
        let child = command
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // For `stall` (DEBUG SLEEP); from loopback only.
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Ready once it accepts and answers PING.
        let start = Instant::now();
        while !self.pings() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pings(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls.is_some() || self.password.is_some() {
            // Accepting is enough: PING would need the handshake or the password.
            return true;
        }
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// Makes the server unresponsive for `seconds` (`DEBUG SLEEP`: it accepts connections and
    /// reads commands but answers nothing meanwhile), without waiting for it.
    pub fn stall(&self, seconds: f64) {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(format!("DEBUG SLEEP {seconds}\r\n").as_bytes())
            .unwrap();
        // The answer comes when the sleep ends; the connection is dropped on another thread.
        std::thread::spawn(move || {
            use std::io::Read;
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            let _ = s.read(&mut [0u8; 16]);
        });
    }

    /// The server's `total_commands_processed` (plain, password-less servers only).
    pub fn commands_processed(&self) -> u64 {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"INFO stats\r\n").unwrap();
        let mut text = String::new();
        let mut buf = [0u8; 8192];
        while !text.contains("total_commands_processed:") || !text.ends_with("\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "INFO ended early: {text}");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        text.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("total_commands_processed")
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` with TLS), without the password.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Its log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Kills it (SIGKILL: no goodbye to the clients) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty (no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

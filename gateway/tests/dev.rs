//! `proofgate dev` as a new user runs it: the real binary starts, prints its URLs and curl lines,
//! and answers them as it says.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proofgate_core::testing::free_port;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .output()
        .expect("bash");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `script` as a user in a clone would: from the repository root, with `proofgate` on the
/// `PATH`.
fn sh_as_user(script: &str) -> String {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_proofgate"))
        .parent()
        .expect("bin dir");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("PATH", path)
        .output()
        .expect("bash");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dev_answers_its_printed_curl_lines() {
    let (proxy, admin, sandbox) = (free_port(), free_port(), free_port());
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_proofgate"))
            .args([
                "dev",
                "--listen",
                &format!("127.0.0.1:{proxy}"),
                "--admin",
                &format!("127.0.0.1:{admin}"),
                "--sandbox",
                &format!("127.0.0.1:{sandbox}"),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("proofgate dev starts"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let end = line.starts_with("complete the verification");
            if tx.send(line).is_err() || end {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let end = line.starts_with("complete the verification");
        banner.push(line);
        if end {
            break;
        }
    }
    let banner = banner.join("\n");
    assert!(
        banner.contains(&format!("http://127.0.0.1:{proxy}")),
        "{banner}"
    );

    // Wait until ready.
    let start = Instant::now();
    while sh(&format!(
        "curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{admin}/readyz"
    )) != "200"
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "dev never became ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The three single-line examples, as printed, with the status each comment promises.
    let status_of = |needle: &str| {
        let line = banner
            .lines()
            .find(|l| l.trim_start().starts_with("curl -i") && l.contains(needle))
            .unwrap_or_else(|| panic!("no printed curl line for {needle}"));
        let cmd = line.split('#').next().unwrap().trim().to_string();
        sh(&format!("{cmd} -s -o /dev/null -w '%{{http_code}}'"))
    };
    assert_eq!(status_of("/public/hello"), "200");
    assert_eq!(status_of("/admin "), "401");
    assert_eq!(status_of("/nowhere"), "403");

    // The token block, run as printed: the request must be let through, and `proofgate verify`
    // (with the sandbox's real URL, printed) must call the token valid.
    let block: Vec<&str> = banner
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("ID=$("))
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(block.len() >= 4, "{banner}");
    let script = block.join("\n");
    let mut last = String::new();
    for _ in 0..20 {
        last = sh_as_user(&format!("set -e\n{script}"));
        if last.contains("HTTP/1.1 200") && last.contains("verdict: valid") {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(last.contains("HTTP/1.1 200"), "{last}");
    assert!(
        last.contains("verdict: valid"),
        "the printed verify line works on these ports: {last}"
    );
    assert!(
        last.contains("x-proof-subject"),
        "identity headers reach the upstream: {last}"
    );
    drop(child);
}

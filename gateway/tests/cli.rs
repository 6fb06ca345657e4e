//! The `proofgate` command line: `check` and `verify`, run as a user runs them.

mod common;

use std::process::Command;

use proofgate_sandbox::{Sandbox, SandboxConfig};

fn proofgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_proofgate"))
        .args(args)
        .env_remove("PROOF_API_KEY")
        .output()
        .expect("run proofgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_every_example_and_reports_every_problem() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (code, out, err) = proofgate(&["check", "-c", path.to_str().unwrap()]);
            assert_eq!(code, 0, "{}: {out}{err}", path.display());
            assert!(out.contains(": ok ("), "{out}");
            n += 1;
        }
    }
    assert!(n >= 3);
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "default_policy = \"nope\"\n[[routes]]\nname = \"a\"\npath = \"/a/**\"\npolicy = \"missing\"\n",
    )
    .unwrap();
    let (code, _, err) = proofgate(&["check", "-c", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("default_policy") && err.contains("routes[0].policy"),
        "{err}"
    );
    let (code, _, err) = proofgate(&["check", "-c", "/nonexistent/proofgate.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/proofgate.toml"), "{err}");
}

#[test]
fn check_loads_tls_files_that_are_here() {
    let tls = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tls");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tls.toml");
    let write = |cert: &str| {
        let listener = format!(
            "[[listeners]]\naddress = \"127.0.0.1:8443\"\n[listeners.tls]\ncert = \"{cert}\"\nkey = \"{tls}/key.pem\""
        );
        std::fs::write(&file, common::public_config(&listener, "127.0.0.1:9")).unwrap();
    };
    // The matching pair: ok.
    write(&format!("{tls}/cert.pem"));
    let (code, out, err) = proofgate(&["check", "-c", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    // A certificate that does not belong to the key: refused, as `run` would.
    write(&format!("{tls}/ca.pem"));
    let (code, _, err) = proofgate(&["check", "-c", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("TLS listener 127.0.0.1:8443"), "{err}");
    // Files that are not on this machine: a note, not a failure.
    write("/etc/proofgate/tls/nowhere.pem");
    let (code, out, err) = proofgate(&["check", "-c", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("not checked"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_prints_claims_and_a_verdict() {
    let sandbox = Sandbox::start_with("127.0.0.1:0", SandboxConfig::default())
        .await
        .unwrap();
    let base = sandbox.base_url().to_string();
    let (token, id) = common::mint(&base, "email", "email", "alice@corp.example").await;
    let dev =
        include_str!("../../config/examples/dev.toml").replace("http://127.0.0.1:7700", &base);
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("dev.toml");
    std::fs::write(&config, dev).unwrap();
    let config = config.to_str().unwrap().to_string();

    let (code, out, err) = {
        let (t, c) = (token.clone(), config.clone());
        tokio::task::spawn_blocking(move || proofgate(&["verify", &t, "-c", &c]))
            .await
            .unwrap()
    };
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("\"iss\": \"proof.holdings\"") && out.contains(&id),
        "{out}"
    );
    assert!(out.contains("verdict: valid"), "{out}");
    assert!(
        !err.contains(&token) && !out.contains(&token),
        "the token is never echoed"
    );

    let (code, out, err) = {
        let c = config.clone();
        tokio::task::spawn_blocking(move || proofgate(&["verify", "not.a.token", "-c", &c]))
            .await
            .unwrap()
    };
    assert_eq!(code, 1);
    assert!(err.contains("verdict: malformed"), "{out}{err}");

    sandbox.revoke(&id, "fraud");
    let (code, _, err) =
        tokio::task::spawn_blocking(move || proofgate(&["verify", &token, "-c", &config]))
            .await
            .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("verdict: revoked"), "{err}");
}

#[test]
fn check_warns_when_step_up_would_trust_any_host() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lan.toml");
    let staff = r#"
[[listeners]]
address = "0.0.0.0:8080"

[[policies]]
name = "staff"
rule = "any_of"
on_failure = "step_up"
requirements = [{ types = ["email"], identifiers = ["alice@corp.example"] }]

[[routes]]
name = "admin"
path = "/admin/**"
policy = "staff"
"#;
    std::fs::write(&file, common::public_config(staff, "127.0.0.1:9")).unwrap();
    let (code, out, err) = proofgate(&["check", "-c", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning:")
            && err.contains("0.0.0.0:8080")
            && err.contains("step_up.public_url")
            && err.contains("return only to loopback names ("),
        "{err}"
    );
    // With public_url set, or only on loopback, there is nothing to warn about. (Over this
    // plain-HTTP listener, names in allowed_hosts need cookie_secure = false: with Secure
    // cookies their step-up could never finish, which `check` refuses, see tests/check.rs.)
    for fix in [
        "[step_up]\npublic_url = \"https://app.example\"\n",
        "[step_up]\nallowed_hosts = [\"app.example\"]\ncookie_secure = false\n",
    ] {
        std::fs::write(
            &file,
            common::public_config(&format!("{staff}\n{fix}"), "127.0.0.1:9"),
        )
        .unwrap();
        let (code, out, err) = proofgate(&["check", "-c", file.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
        if fix.contains("public_url") {
            assert!(!err.contains("warning:"), "{err}");
        } else {
            assert!(err.contains("app.example and loopback names"), "{err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_takes_the_sandbox_url_from_the_command_line() {
    // The shipped dev file as is, with a sandbox on whatever port it got: `--issuer` names it.
    let sandbox = Sandbox::start_with("127.0.0.1:0", SandboxConfig::default())
        .await
        .unwrap();
    let base = sandbox.base_url().to_string();
    let (token, id) = common::mint(&base, "email", "email", "alice@corp.example").await;
    let dev = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/examples/dev.toml");
    let (code, out, err) = {
        let (t, b) = (token.clone(), base.clone());
        tokio::task::spawn_blocking(move || proofgate(&["verify", &t, "-c", dev, "--issuer", &b]))
            .await
            .unwrap()
    };
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&id) && out.contains("verdict: valid"), "{out}");
    assert!(err.contains(&format!("issuer: {base}")), "{err}");
    assert!(!err.contains(&token) && !out.contains(&token));

    // A URL the file format refuses is reported as such.
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        proofgate(&[
            "verify",
            &token,
            "-c",
            dev,
            "--issuer",
            "http://proof.example",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("issuer.api_base"), "{err}");
}

//! Hot reload: a good new file is applied without a restart; a bad one is rejected, counted, and
//! the running configuration keeps serving.

mod common;

use std::time::{Duration, Instant};

use common::{config_text, stack, Options};

async fn wait_status(s: &common::Stack, path: &str, want: u16) {
    let start = Instant::now();
    loop {
        let got = s
            .http
            .get(s.url(path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{path}: still {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metric(s: &common::Stack, line_prefix: &str) -> f64 {
    let m = s.metrics().await;
    m.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_reload_applies_and_bad_reload_is_rejected() {
    let s = stack(Options {
        watch: true,
        ..Options::default()
    })
    .await;
    assert_eq!(
        s.http
            .get(s.url("/public/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let original = std::fs::read_to_string(&s.config_path).unwrap();

    // A good change: /public/** now needs the staff policy.
    let changed = original.replace(
        "name = \"public\"\npath = \"/public/**\"\npolicy = \"public\"",
        "name = \"public\"\npath = \"/public/**\"\npolicy = \"staff\"",
    );
    assert_ne!(changed, original, "the test's edit must apply");
    std::fs::write(&s.config_path, &changed).unwrap();
    wait_status(&s, "/public/x", 401).await;
    assert!(metric(&s, "proofgate_config_reloads_total{result=\"ok\"}").await >= 1.0);

    // A bad change: rejected, counted, and the last good configuration keeps serving.
    std::fs::write(
        &s.config_path,
        changed.replace("policy = \"staff\"", "policy = \"no-such-policy\""),
    )
    .unwrap();
    let start = Instant::now();
    while metric(&s, "proofgate_config_reloads_total{result=\"rejected\"}").await < 1.0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the bad file was never looked at"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        s.http
            .get(s.url("/public/x"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    std::fs::write(&s.config_path, "this is [not toml").unwrap();
    let start = Instant::now();
    while metric(&s, "proofgate_config_reloads_total{result=\"rejected\"}").await < 2.0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the garbage file was never looked at"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        s.http
            .get(s.url("/public/x"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // And back.
    std::fs::write(&s.config_path, &original).unwrap();
    wait_status(&s, "/public/x", 200).await;
    let _ = config_text;
    s.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_even_when_the_file_time_did_not_change() {
    let s = stack(Options {
        watch: true,
        ..Options::default()
    })
    .await;
    assert_eq!(
        s.http
            .get(s.url("/public/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let original = std::fs::read_to_string(&s.config_path).unwrap();
    let mtime = std::fs::metadata(&s.config_path)
        .unwrap()
        .modified()
        .unwrap();
    let since = mtime.duration_since(std::time::UNIX_EPOCH).unwrap();
    let changed = original.replace(
        "name = \"public\"\npath = \"/public/**\"\npolicy = \"public\"",
        "name = \"public\"\npath = \"/public/**\"\npolicy = \"deny-all\"",
    );
    assert_ne!(changed, original);
    std::fs::write(&s.config_path, &changed).unwrap();
    // Put the old modification time back, so only the signal can cause the reload.
    let stamp = format!("@{}.{:09}", since.as_secs(), since.subsec_nanos());
    let ok = std::process::Command::new("touch")
        .args(["-m", "-d", &stamp, s.config_path.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert_eq!(
        std::fs::metadata(&s.config_path)
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        s.http
            .get(s.url("/public/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "no reload without a signal"
    );
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    wait_status(&s, "/public/x", 403).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_clears_the_proof_cookie() {
    let s = stack(Options::default()).await;
    let r = s
        .http
        .get(s.url("/.proofgate/logout?return_to=%2Fpublic%2Fbye"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/public/bye");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("proof_token=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
    let r = s
        .http
        .get(s.url("/.proofgate/logout?return_to=%2F%2Fevil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    s.shutdown().await;
}

/// A host a reloaded route names is this site's own from then on: a step-up started under it
/// may return there (before the reload it was refused as `untrusted_host`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloaded_route_hosts_become_step_up_hosts() {
    let s = stack(Options {
        watch: true,
        ..Options::default()
    })
    .await;
    let start = |s: &common::Stack| {
        let rb = s
            .http
            .get(s.url("/.proofgate/start?policy=staff"))
            .header("host", "portal.example")
            .header("accept", "application/json");
        async move { common::problem(rb.send().await.unwrap()).await }
    };
    let (status, body, _) = start(&s).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (400, Some("untrusted_host"))
    );
    let original = std::fs::read_to_string(&s.config_path).unwrap();
    let changed = format!(
        "{original}\n[[routes]]\nname = \"portal\"\nhosts = [\"portal.example\"]\npath = \"/portal/**\"\npolicy = \"staff\"\n"
    );
    std::fs::write(&s.config_path, &changed).unwrap();
    let begun = Instant::now();
    loop {
        let (status, body, _) = start(&s).await;
        if status == 200 {
            assert!(body["verification_url"].is_string(), "{body}");
            break;
        }
        assert_eq!(body["reason"], "untrusted_host", "{body}");
        assert!(
            begun.elapsed() < Duration::from_secs(10),
            "the reloaded host never became allowed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.shutdown().await;
}

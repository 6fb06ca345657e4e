//! Hot reload: a good new file is applied without a restart; a bad one is rejected, counted, and
//! the running configuration keeps serving; what only a restart applies is named (log line,
//! `/readyz`, `proofgate_config_restart_required`), the log level is applied at once.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{config_text, free_port, stack, Binary, Options};

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

/// Replaces the file at `path` in one step (a rename), so that the watcher never reads it half
/// written.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The real binary: a route change is applied and needs no restart; a log level change is
/// applied (debug lines appear from then on, and stop after the level goes back); a listener
/// address and `step_up.state_ttl` change is named in the reload's log line, in `/readyz` (still
/// ready, the old listener serving) and in `proofgate_config_restart_required`, until a reload
/// puts them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_what_it_can_and_names_what_needs_a_restart() {
    let bin = Binary::start(|text| text, &[]).await;
    let (proxy, admin, config, original, log) =
        (bin.proxy, bin.admin, &bin.config, &bin.text, &bin.log);
    let logs = || bin.logs();
    let count = |needle: &str| logs().lines().filter(|l| l.contains(needle)).count();
    let http = reqwest::Client::new();
    let admin_get = |path: &'static str| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://127.0.0.1:{admin}{path}"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let status_of = |port: u16, path: &'static str| {
        let http = http.clone();
        async move {
            http.get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    };
    let restart_metric = || async {
        let (_, text) = admin_get("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix("proofgate_config_restart_required "))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no proofgate_config_restart_required in\n{text}"))
    };
    bin.wait_ready().await;
    assert_eq!(restart_metric().await, "0");
    let reloaded = "configuration reloaded";
    let applied = "configuration applied";
    let route = |name: &str| {
        format!("\n[[routes]]\nname = \"{name}\"\npath = \"/{name}/**\"\npolicy = \"deny-all\"\n")
    };

    // A route: applied, nothing awaits a restart, no debug line at `info`.
    let text = format!("{original}{}", route("one"));
    replace_file(config, &text);
    wait_for("the reload of a new route", log, || count(reloaded) >= 1).await;
    assert_eq!(status_of(proxy, "/one/x").await.unwrap(), 403);
    assert!(!logs().contains("restart needed"), "{}", logs());
    assert_eq!(count(applied), 0, "{}", logs());
    assert_eq!(restart_metric().await, "0");
    let (status, body) = admin_get("/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));

    // The log level: applied at once, the reload's own debug line is written.
    let text = format!("{original}{}{}", route("one"), route("two"))
        .replace("level = \"info\"", "level = \"debug\"");
    replace_file(config, &text);
    // (The reload's own line says so; its debug line is written just before it.)
    wait_for("the reload to debug", log, || {
        count("log_level=\"debug\"") >= 1
    })
    .await;
    assert_eq!(status_of(proxy, "/two/x").await.unwrap(), 403);
    assert_eq!(count(applied), 1, "{}", logs());
    assert!(!logs().contains("restart needed"), "{}", logs());
    // And back to info: no debug line from the next reload on.
    let text = format!("{original}{}{}", route("one"), route("three"));
    replace_file(config, &text);
    wait_for("the reload back to info", log, || count(reloaded) >= 3).await;
    let debug_lines = count(applied);
    let text = format!("{original}{}{}", route("one"), route("four"));
    replace_file(config, &text);
    wait_for("the next reload", log, || count(reloaded) >= 4).await;
    assert_eq!(status_of(proxy, "/four/x").await.unwrap(), 403);
    assert_eq!(count(applied), debug_lines, "{}", logs());

    // A listener address and the step-up state lifetime: named, the old values keep serving.
    let moved = free_port();
    let text = format!("{original}{}", route("four"))
        .replace(
            &format!("address = \"127.0.0.1:{proxy}\""),
            &format!("address = \"127.0.0.1:{moved}\""),
        )
        .replace("[step_up]\n", "[step_up]\nstate_ttl = \"5m\"\n");
    replace_file(config, &text);
    let named = "configuration reloaded; restart needed for: listeners, step_up.state_ttl";
    wait_for("the restart-needed line", log, || count(named) >= 1).await;
    assert_eq!(restart_metric().await, "1");
    let (status, body) = admin_get("/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            "ready\nrestart needed for: listeners, step_up.state_ttl\n"
        )
    );
    assert_eq!(status_of(proxy, "/public/x").await.unwrap(), 200);
    assert!(status_of(moved, "/public/x").await.is_err());

    // Put back: nothing awaits a restart any more.
    let text = format!("{original}{}", route("four"));
    replace_file(config, &text);
    wait_for("the reload that puts them back", log, || {
        count(reloaded) >= 6
    })
    .await;
    assert_eq!(restart_metric().await, "0");
    let (status, body) = admin_get("/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    assert_eq!(count("restart needed"), 1, "{}", logs());
}

/// Waits (at most 15 s) until `done`; the log at `log` goes in the failure.
async fn wait_for(what: &str, log: &Path, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{what}: never happened\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Started at `warn`, nothing below is written, and the filters say so up front (Pingora's
/// `log` lines are dropped at the macro); a reload to `info` brings back both kinds of line the
/// start level hid: the access lines (`tracing`) and Pingora's own `info` lines (the `log`
/// crate, whose level is set apart from `tracing`'s — here its shutdown line).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_raised_by_reload_reaches_access_lines_and_pingoras_own_lines() {
    let mut bin = Binary::start(
        |text| text.replace("level = \"info\"", "level = \"warn\""),
        &[],
    )
    .await;
    bin.wait_ready().await;
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/public/x", bin.proxy);
    let access = |logs: &str| logs.matches(" access: ").count();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(access(&bin.logs()), 0, "{}", bin.logs());

    let text = bin.text.replace("level = \"warn\"", "level = \"info\"");
    replace_file(&bin.config, &text);
    wait_for("the reload to info", &bin.log, || {
        bin.logs().contains("configuration reloaded")
    })
    .await;
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    wait_for("an access line", &bin.log, || access(&bin.logs()) == 1).await;

    common::signal(&bin.process.0, "-INT");
    let _ = bin.process.0.wait();
    assert!(
        bin.logs().contains("SIGINT received, exiting"),
        "Pingora's info line, through the log crate:\n{}",
        bin.logs()
    );
}

//! `proofgate check -c FILE`, run as a user runs it: every unknown key at once, each with its
//! line and a suggestion; one error per mistake; routes that can never match, with both routes'
//! lines; a `Secure` cookie that plain HTTP would drop, and the fixes it names; and every
//! configuration the project ships passes.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `proofgate check -c path`: exit code, stdout, stderr.
fn check(path: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_proofgate"))
        .args(["check", "-c"])
        .arg(path)
        .env_remove("RUST_LOG")
        .output()
        .expect("run proofgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A file holding `text` in a directory removed on drop.
struct File {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn write(text: &str) -> File {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proofgate.toml");
    std::fs::write(&path, text).unwrap();
    File { _dir: dir, path }
}

/// `check` refuses `text` with exactly these problems (each `location (line …): message`).
#[track_caller]
fn assert_refused(text: &str, problems: &[String]) {
    let file = write(text);
    let (code, out, err) = check(&file.path);
    assert_eq!(code, 1, "{out}{err}");
    let n = problems.len();
    let mut expected = format!(
        "proofgate: {}: {n} problem{} in the configuration:\n",
        file.path.display(),
        if n == 1 { "" } else { "s" }
    );
    for p in problems {
        expected.push_str(&format!("  - {p}\n"));
    }
    expected.push('\n');
    assert_eq!(err, expected);
    assert_eq!(out, "");
}

/// `check` accepts `text`; returns its stderr (warnings and notes).
#[track_caller]
fn assert_accepted(text: &str) -> String {
    let file = write(text);
    let (code, out, err) = check(&file.path);
    assert_eq!(code, 0, "{text}\n{out}{err}");
    assert!(out.contains(": ok ("), "{out}");
    err
}

/// 1-based number of the first line of `text` that is `line`.
#[track_caller]
fn line_of(text: &str, line: &str) -> usize {
    text.lines()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no line {line:?}"))
        + 1
}

/// A valid file with a step-up policy; `{listener}`, `{step_up}` and `{routes}` are filled in.
const BASE: &str = r#"default_policy = "deny-all"

[[listeners]]
address = "{listener}"

[[upstreams]]
name = "app"
addresses = ["127.0.0.1:3000"]

[step_up]
{step_up}

[[policies]]
name = "deny-all"
rule = "deny"

[[policies]]
name = "staff"
rule = "any_of"
requirements = [{ types = ["email"], identifiers = ["alice@corp.example"] }]

[[routes]]
name = "admin"
path = "/admin/**"
policy = "staff"
{routes}"#;

fn base(listener: &str, step_up: &str, routes: &str) -> String {
    BASE.replace("{listener}", listener)
        .replace("{step_up}", step_up)
        .replace("{routes}", routes)
}

#[test]
fn every_unknown_key_in_one_run_with_suggestions() {
    let text = r#"default_polcy = "deny-all"

[[listeners]]
address = "127.0.0.1:8080"

[[upstreams]]
name = "app"
adresses = ["127.0.0.1:3000"]

[step_up]
cookie_secur = false
state_tll = "10m"

[[policies]]
name = "deny-all"
rule = "deny"

[[routes]]
name = "all"
path = "/**"
polciy = "deny-all"
"#;
    let line = |l: &str| line_of(text, l);
    assert_refused(
        text,
        &[
            format!(
                "default_polcy (line {}, column 1): unknown key `default_polcy` at the top \
                 level; did you mean `default_policy`?",
                line("default_polcy = \"deny-all\"")
            ),
            format!(
                "upstreams[0].adresses (line {}, column 1): unknown key `adresses` in \
                 [[upstreams]]; did you mean `addresses`?",
                line("adresses = [\"127.0.0.1:3000\"]")
            ),
            format!(
                "step_up.cookie_secur (line {}, column 1): unknown key `cookie_secur` in \
                 [step_up]; did you mean `cookie_secure`?",
                line("cookie_secur = false")
            ),
            format!(
                "step_up.state_tll (line {}, column 1): unknown key `state_tll` in [step_up]; \
                 did you mean `state_ttl`?",
                line("state_tll = \"10m\"")
            ),
            format!(
                "routes[0].polciy (line {}, column 1): unknown key `polciy` in [[routes]]; did \
                 you mean `policy`?",
                line("polciy = \"deny-all\"")
            ),
        ],
    );
    // Spelt as suggested, the same file passes.
    let fixed = text
        .replace("default_polcy", "default_policy")
        .replace("adresses", "addresses")
        .replace("cookie_secur ", "cookie_secure ")
        .replace("state_tll", "state_ttl")
        .replace("polciy", "policy");
    assert_accepted(&fixed);
}

#[test]
fn a_bad_duration_is_one_error() {
    let text = base("127.0.0.1:8080", "state_ttl = \"10 minutes\"", "")
        + "\n[issuer]\njwks_refresh = \"1 day\"\njwks_max_staleness = \"2h\"\n";
    let (ttl, jwks) = (
        line_of(&text, "state_ttl = \"10 minutes\""),
        line_of(&text, "jwks_refresh = \"1 day\""),
    );
    // Neither is followed by an error about the default standing in for it (`jwks_max_staleness`
    // is not "shorter than jwks_refresh (24h)": the file says nothing valid about that).
    assert_refused(
        &text,
        &[
            format!(
                "step_up.state_ttl (line {ttl}, column 1): unknown unit \" minutes\" in \"10 \
                 minutes\"; use ms, s, m (minutes), h, d or w"
            ),
            format!(
                "issuer.jwks_refresh (line {jwks}, column 1): unknown unit \" day\" in \"1 \
                 day\"; use ms, s, m (minutes), h, d or w"
            ),
        ],
    );
    assert_accepted(
        &text
            .replace("10 minutes", "10m")
            .replace("\"1 day\"", "\"1h\""),
    );
}

#[test]
fn shadowed_and_repeated_routes_name_both_routes_and_lines() {
    let text = base(
        "127.0.0.1:8080",
        "",
        r#"
[[routes]]
name = "reports"
path = "/admin/reports/**"
policy = "deny-all"

[[routes]]
name = "public"
path = "/public"
policy = "deny-all"

[[routes]]
name = "public-again"
path = "/public/**"
methods = ["GET"]
policy = "staff"
"#,
    );
    let admin = line_of(&text, "path = \"/admin/**\"");
    let reports = line_of(&text, "path = \"/admin/reports/**\"");
    let public = line_of(&text, "path = \"/public\"");
    let again = line_of(&text, "path = \"/public/**\"");
    assert_refused(
        &text,
        &[
            format!(
                "routes[1].path (line {reports}, column 1): route \"reports\" (routes[1], line \
                 {reports}, path \"/admin/reports/**\") can never match: route \"admin\" \
                 (routes[0], line {admin}, path \"/admin/**\") comes first and matches every \
                 request it would (the first match wins); move it above \"admin\" or remove it"
            ),
            format!(
                "routes[3].path (line {again}, column 1): route \"public-again\" (routes[3], \
                 line {again}, path \"/public/**\") can never match: route \"public\" \
                 (routes[2], line {public}, path \"/public\") comes first and matches every \
                 request it would (the first match wins); move it above \"public\" or remove it"
            ),
        ],
    );
    // The same path twice, hosts and methods alike.
    let twice = base(
        "127.0.0.1:8080",
        "",
        "\n[[routes]]\nname = \"admin2\"\npath = \"/admin/**\"\npolicy = \"deny-all\"\n",
    );
    let first = line_of(&twice, "path = \"/admin/**\"");
    let second = twice
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "path = \"/admin/**\"")
        .nth(1)
        .unwrap()
        .0
        + 1;
    assert_refused(
        &twice,
        &[format!(
            "routes[1].path (line {second}, column 1): route \"admin2\" (routes[1], line \
             {second}, path \"/admin/**\") repeats route \"admin\" (routes[0], line {first}, \
             path \"/admin/**\"): both match the same requests (same paths, hosts and methods) \
             and the first match wins, so this one never matches; remove one of them"
        )],
    );
    // In the other order, each route matches something: the specific one first.
    let ordered = base(
        "127.0.0.1:8080",
        "",
        "\n[[routes]]\nname = \"everything\"\npath = \"/**\"\npolicy = \"deny-all\"\n",
    )
    .replacen(
        "[[routes]]\nname = \"admin\"",
        "[[routes]]\nname = \"reports\"\npath = \"/admin/reports/**\"\npolicy = \"deny-all\"\n\n[[routes]]\nname = \"admin\"",
        1,
    );
    assert_accepted(&ordered);
}

#[test]
fn a_secure_cookie_over_plain_http_on_a_lan_is_refused_and_the_fixes_pass() {
    let lan = base("0.0.0.0:8080", "allowed_hosts = [\"gateway.lan\"]", "");
    let line = line_of(&lan, "[step_up]");
    assert_refused(
        &lan,
        &[format!(
            "step_up.cookie_secure (line {line}, column 2): cookie_secure is true (the \
             default), but plain-HTTP listener 0.0.0.0:8080 lets a step-up start for \
             gateway.lan (step_up.allowed_hosts, routes' hosts) and step_up.public_url is not \
             set: browsers drop a Secure cookie that comes over plain HTTP, so the state cookie \
             never comes back and the step-up can never finish. Set step_up.cookie_secure = \
             false for plain HTTP on a LAN; or serve TLS on the listener ([listeners.tls]); or, \
             when TLS terminates in front of proofgate, set step_up.public_url = \"https://…\""
        )],
    );
    let http_url = base(
        "0.0.0.0:8080",
        "public_url = \"http://gateway.lan:8080\"\ncookie_secure = true",
        "",
    );
    let line = line_of(&http_url, "cookie_secure = true");
    assert_refused(
        &http_url,
        &[format!(
            "step_up.cookie_secure (line {line}, column 1): cookie_secure = true, but \
             plain-HTTP listener 0.0.0.0:8080 serves step-up and step_up.public_url is \
             \"http://gateway.lan:8080\", not https: browsers drop a Secure cookie that comes \
             over plain HTTP, so the state cookie never comes back and the step-up can never \
             finish. Set step_up.cookie_secure = false for plain HTTP on a LAN; or serve TLS on \
             the listener ([listeners.tls]); or, when TLS terminates in front of proofgate, set \
             step_up.public_url = \"https://…\""
        )],
    );

    // The fixes the message names.
    let warnings = assert_accepted(&base(
        "0.0.0.0:8080",
        "allowed_hosts = [\"gateway.lan\"]\ncookie_secure = false",
        "",
    ));
    assert!(
        warnings.contains("gateway.lan and loopback names"),
        "{warnings}"
    );
    assert_accepted(&base(
        "0.0.0.0:8080",
        "public_url = \"http://gateway.lan:8080\"\ncookie_secure = false",
        "",
    ));
    let warnings = assert_accepted(&base(
        "0.0.0.0:8080",
        "allowed_hosts = [\"gateway.lan\"]\npublic_url = \"https://gateway.example\"",
        "",
    ));
    assert!(!warnings.contains("warning:"), "{warnings}");
    let tls = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tls");
    assert_accepted(&base(
        &format!(
            "0.0.0.0:8443\"\n[listeners.tls]\ncert = \"{tls}/cert.pem\"\nkey = \"{tls}/key.pem"
        ),
        "allowed_hosts = [\"gateway.lan\"]",
        "",
    ));

    // Where no LAN name can start a step-up, nothing is refused; the warning says why such
    // names are refused, and what plain HTTP needs besides.
    let warnings = assert_accepted(&base("0.0.0.0:8080", "", ""));
    assert!(
        warnings.contains("return only to loopback names (")
            && warnings.contains(
                "this listener is plain HTTP: there, also set step_up.cookie_secure = false"
            ),
        "{warnings}"
    );
}

/// The quick start's file, and its plain-HTTP-on-a-LAN variant as the guide says to write it.
#[test]
fn the_quick_start_file_passes_and_so_does_its_lan_variant() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/quick-start.md"
    ))
    .unwrap();
    let blocks: Vec<&str> = guide
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let full = blocks
        .iter()
        .find(|b| b.contains("[[listeners]]"))
        .expect("the quick start's proofgate.toml");
    let lan = blocks
        .iter()
        .find(|b| b.starts_with("# fragment\n[step_up]") && b.contains("cookie_secure = false"))
        .expect("the quick start's plain-HTTP [step_up]")
        .trim_start_matches("# fragment\n");
    assert_accepted(full);
    let https_step_up = "[step_up]\npublic_url = \"https://app.corp.example\"\n";
    assert!(full.contains(https_step_up), "{full}");
    let variant = full.replace(https_step_up, lan);
    assert_accepted(&variant);
    // Without `cookie_secure = false`, check says what to change.
    let file = write(&variant.replace("cookie_secure = false", ""));
    let (code, _, err) = check(&file.path);
    assert_eq!(code, 1);
    assert!(
        err.contains("step_up.cookie_secure") && err.contains("Set step_up.cookie_secure = false"),
        "{err}"
    );
}

/// Every configuration the project ships, as the places that use it fill it in.
#[test]
fn every_shipped_configuration_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let mut files: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(root.join("config/examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = format!(
                "config/examples/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            files.push((name.clone(), read(&name)));
        }
    }
    files.push((
        "deploy/container/proofgate.toml".into(),
        read("deploy/container/proofgate.toml"),
    ));
    // The ConfigMap's embedded file: the block under `proofgate.toml: |`, unindented.
    let configmap = read("deploy/kubernetes/configmap.yaml");
    let (_, block) = configmap.split_once("proofgate.toml: |\n").unwrap();
    let embedded: String = block
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    files.push(("deploy/kubernetes/configmap.yaml".into(), embedded));
    // bench/load's, with what run.sh puts in place of its placeholders.
    let bench = read("bench/load/proofgate.toml")
        .replace("@LISTEN_PORT@", "18080")
        .replace("@ADMIN_PORT@", "19091")
        .replace("@UPSTREAM_PORT@", "13000")
        .replace("@ISSUER@", "http://127.0.0.1:17700")
        .replace("@SERVER_SETTINGS@", "threads = 2")
        .replace("@LOG_LEVEL@", "warn");
    assert!(
        !bench
            .lines()
            .any(|l| !l.starts_with('#') && l.contains('@')),
        "a placeholder run.sh fills in is not replaced here"
    );
    files.push(("bench/load/proofgate.toml".into(), bench));
    assert!(files.len() >= 6);
    for (name, text) in files {
        let file = write(&text);
        let (code, out, err) = check(&file.path);
        assert_eq!(code, 0, "{name}: {out}{err}");
    }
}

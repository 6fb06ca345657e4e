//! Hostile and degenerate input: never a panic, always an answer.

use proofgate_config::{Config, ConfigFile, ErrorKind};

/// Parses on a thread with a small stack (256 KiB, in a debug build) so that runaway recursion
/// shows as a failure here rather than passing on a big main-thread stack.
fn parse(text: String) -> Result<(), proofgate_config::ConfigErrors> {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || Config::from_toml_str(&text).map(|_| ()))
        .unwrap()
        .join()
        .expect("parsing panicked")
}

#[test]
fn empty_and_blank_files() {
    for text in ["", " ", "\n\n", "# only a comment\n", "\u{feff}"] {
        let e = parse(text.to_string()).unwrap_err();
        assert!(
            e.has("default_policy") || e.errors()[0].kind == ErrorKind::Syntax,
            "{text:?}: {e}"
        );
    }
}

#[test]
fn binary_garbage() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [1, 7, 64, 1000, 65_536] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(parse(text).is_err());
    }
    assert!(parse("\0\0\0".into()).is_err());
    assert!(parse("[[[[[[".into()).is_err());
    assert!(parse("= = =".into()).is_err());
}

#[test]
fn huge_numbers() {
    for v in [
        "99999999999999999999999999",
        "-9223372036854775808",
        "9223372036854775807",
        "1e400",
        "-1",
        "nan",
        "inf",
        "0x7fffffffffffffff",
    ] {
        for key in ["threads", "upstream_keepalive_pool_size"] {
            let e = parse(format!("[server]\n{key} = {v}\n")).unwrap_err();
            assert!(!e.is_empty(), "{key} = {v}");
        }
        let e = parse(format!("[tokens]\nmax_token_size = {v}\n")).unwrap_err();
        assert!(!e.is_empty());
    }
    let e = parse("[server]\ngrace_period = \"99999999999999999999999999h\"".into()).unwrap_err();
    assert!(
        e.iter()
            .any(|e| e.location == "server.grace_period" && e.message.contains("too large")),
        "{e}"
    );
    let e = parse("[server]\ngrace_period = \"18446744073709551615w\"".into()).unwrap_err();
    assert!(e.has("server.grace_period"), "{e}");
}

#[test]
fn deep_nesting() {
    for depth in [100, 10_000, 200_000] {
        let arrays = format!("x = {}1{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse(arrays).is_err(), "arrays {depth}");
        let tables = format!("x = {}1{}", "{a = ".repeat(depth), "}".repeat(depth));
        assert!(parse(tables).is_err(), "inline tables {depth}");
        let dotted = format!("{} = 1", vec!["a"; depth].join("."));
        assert!(parse(dotted).is_err(), "dotted keys {depth}");
        let headers = format!("[{}]", vec!["a"; depth].join("."));
        assert!(parse(headers).is_err(), "table header {depth}");
    }
}

#[test]
fn many_and_long_entries() {
    // Many routes, all wrong in the same way: every one is reported.
    let mut text = String::from("default_policy = \"d\"\n");
    for i in 0..2_000 {
        text.push_str(&format!(
            "[[routes]]\nname = \"r{i}\"\npath = \"/x{i}\"\npolicy = \"nope\"\n"
        ));
    }
    let e = parse(text).unwrap_err();
    assert!(
        e.iter()
            .filter(|e| e.location.starts_with("routes[") && e.message.contains("unknown policy"))
            .count()
            == 2_000
    );

    // A megabyte-long string value.
    let long = "a".repeat(1 << 20);
    let e = parse(format!("default_policy = \"{long}\"")).unwrap_err();
    assert!(e.has("default_policy"));

    // Long keys, weird but valid TOML keys, unicode.
    assert!(parse(format!("\"{}\" = 1", "k".repeat(100_000))).is_err());
    assert!(parse("\"\u{202e}evil\" = 1\n[\"ü\"]\n".into()).is_err());
}

#[test]
fn hostile_strings_in_every_kind_of_field() {
    for s in [
        "",
        " ",
        "\\u0000",
        "../../etc/passwd",
        "/admin/..;/x",
        "%00",
        "*",
        "**",
        "\\r\\nInjected: yes",
        "😀",
        "\\u202e",
    ] {
        let text = format!(
            r#"
default_policy = "{s}"
default_upstream = "{s}"
[[listeners]]
address = "{s}"
[admin]
address = "{s}"
[[upstreams]]
name = "{s}"
addresses = ["{s}"]
connect_timeout = "{s}"
[issuer]
api_base = "{s}"
fail_mode = "{s}"
leeway = "{s}"
[tokens]
sources = ["{s}"]
header = "{s}"
cookie = "{s}"
[[policies]]
name = "{s}"
rule = "{s}"
on_failure = "{s}"
[[policies]]
name = "p"
rule = "any_of"
requirements = [{{ types = ["{s}"], channels = ["{s}"], identifiers = ["{s}"], max_age = "{s}" }}]
[[routes]]
name = "{s}"
path = "{s}"
hosts = ["{s}"]
methods = ["{s}"]
policy = "{s}"
upstream = "{s}"
[step_up]
prefix = "{s}"
cookie_name = "{s}"
state_cookie = "{s}"
[logging]
level = "{s}"
"#
        );
        let e = parse(text).unwrap_err();
        assert!(e.len() > 5, "{s:?}: {e}");
    }
}

#[test]
fn file_format_round_trip_of_defaults() {
    // An empty [sections] file parses to defaults without panicking in validate.
    let file = ConfigFile::from_toml_str(
        "[server]\n[issuer]\n[tokens]\n[identity_headers]\n[step_up]\n[logging]\n",
    )
    .unwrap();
    assert!(file.validate().is_err());
    assert!(ConfigFile::default().validate().is_err());
}

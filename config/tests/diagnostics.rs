//! What validation says about a file as a whole: every unknown key at once, each with its line
//! and a suggestion; one error per mistake (never a second one about the default standing in
//! for a bad value); routes that can never match; a `Secure` cookie that plain HTTP would drop.

use proofgate_config::{Config, ConfigErrors, ErrorKind};

fn errors(text: &str) -> ConfigErrors {
    match Config::from_toml_str(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// The problems as `(location, line, message)`, in the order reported.
fn problems(e: &ConfigErrors) -> Vec<(String, Option<usize>, String)> {
    e.iter()
        .map(|e| {
            (
                e.location.clone(),
                e.line_col.map(|(l, _)| l),
                e.message.clone(),
            )
        })
        .collect()
}

/// The only problem, as `(location, message)`.
#[track_caller]
fn only(e: &ConfigErrors) -> (String, String) {
    assert_eq!(e.len(), 1, "expected exactly one problem:\n{e}");
    (
        e.errors()[0].location.clone(),
        e.errors()[0].message.clone(),
    )
}

/// A valid file with a step-up policy on `/admin/**`; `{listener}`, `{step_up}` and `{extra}`
/// are filled in by [`file`].
const STEP_UP: &str = r#"default_policy = "deny-all"

[[listeners]]
{listener}

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
{extra}
"#;

fn file(listener: &str, step_up: &str, extra: &str) -> String {
    STEP_UP
        .replace("{listener}", listener)
        .replace("{step_up}", step_up)
        .replace("{extra}", extra)
}

const LOOPBACK: &str = "address = \"127.0.0.1:8080\"";
const LAN: &str = "address = \"0.0.0.0:8080\"";

#[test]
fn the_base_files_are_valid() {
    Config::from_toml_str(&file(LOOPBACK, "", "")).unwrap();
    // A LAN listener where a step-up can only return to loopback names: valid (`proofgate
    // check` warns that other names are refused).
    Config::from_toml_str(&file(LAN, "", "")).unwrap();
}

#[test]
fn every_unknown_key_is_reported_at_once_with_its_line_and_a_suggestion() {
    let text = r#"frobnicate = 1
default_policy = "deny-all"

[[listeners]]
address = "127.0.0.1:8080"
adress = "127.0.0.1:8081"

[[upstreams]]
name = "app"
addresses = ["127.0.0.1:3000"]
[upstreams.tls]
snii = "app.internal"

[[policies]]
name = "deny-all"
rule = "deny"
requirements = [{ types = ["email"], typs = ["phone"] }]

[[routes]]
name = "all"
pathh = "/"
policy = "deny-all"

[step_up]
cookie_secur = false
Cookie-Secure = false

[tokens]
cookie_secure = false

[setp_up]
anything = "is not looked at under an unknown table"
"#;
    let e = errors(text);
    assert!(e.iter().all(|e| e.kind == ErrorKind::Syntax), "{e}");
    let expected: Vec<(&str, usize, &str)> = vec![
        (
            "frobnicate",
            1,
            "unknown key `frobnicate` at the top level; the keys there are `default_policy`, \
             `default_upstream`, `listeners`, `admin`, `server`, `upstreams`, `issuer`, \
             `tokens`, `policies`, `routes`, `identity_headers`, `step_up`, `logging`, `pages`, \
             `forward_auth`, `cluster`, `approvals`",
        ),
        (
            "listeners[0].adress",
            6,
            "unknown key `adress` in [[listeners]]; did you mean `address`?",
        ),
        (
            "upstreams[0].tls.snii",
            12,
            "unknown key `snii` in [upstreams.tls]; did you mean `sni`?",
        ),
        (
            "policies[0].requirements[0].typs",
            17,
            "unknown key `typs` in [[policies.requirements]]; did you mean `types`?",
        ),
        (
            "routes[0].pathh",
            21,
            "unknown key `pathh` in [[routes]]; did you mean `path`?",
        ),
        (
            "step_up.cookie_secur",
            25,
            "unknown key `cookie_secur` in [step_up]; did you mean `cookie_secure`?",
        ),
        (
            "step_up.Cookie-Secure",
            26,
            "unknown key `Cookie-Secure` in [step_up]; did you mean `cookie_secure`?",
        ),
        (
            "tokens.cookie_secure",
            29,
            "unknown key `cookie_secure` in [tokens]; it is a key of [step_up]",
        ),
        (
            "setp_up",
            31,
            "unknown key `setp_up` at the top level; did you mean `step_up`?",
        ),
    ];
    let got = problems(&e);
    let want: Vec<(String, Option<usize>, String)> = expected
        .iter()
        .map(|(l, n, m)| (l.to_string(), Some(*n), m.to_string()))
        .collect();
    assert_eq!(got, want, "{e}");
    // As printed: location, line and column, message.
    assert!(
        e.to_string().contains(
            "  - step_up.cookie_secur (line 25, column 1): unknown key `cookie_secur` in \
             [step_up]; did you mean `cookie_secure`?\n"
        ),
        "{e}"
    );
}

#[test]
fn secrets_and_unknown_keys_are_reported_together_and_once() {
    let e = errors("default_policy = \"x\"\nfrobnicate = 1\n[step_up]\napi_key = \"abc\"\n");
    let got = problems(&e);
    assert_eq!(got.len(), 2, "{e}");
    assert_eq!((got[0].0.as_str(), got[0].1), ("frobnicate", Some(2)));
    assert_eq!((got[1].0.as_str(), got[1].1), ("step_up.api_key", Some(4)));
    assert_eq!(e.errors()[1].kind, ErrorKind::Secret);
    assert!(got[1].2.contains("PROOF_API_KEY"), "{e}");
}

#[test]
fn a_key_of_other_tables_names_them() {
    let e = errors("name = \"x\"\n");
    assert_eq!(
        only(&e).1,
        "unknown key `name` at the top level; it is a key of [[policies]], [[routes]] and \
         [[upstreams]]"
    );
}

#[test]
fn step_up_settings_are_checked_even_without_a_default_policy() {
    let text = file(LOOPBACK, "state_ttl = \"2h\"", "")
        .replace("default_policy = \"deny-all\"", "default_policy = \"nope\"");
    let e = errors(&text);
    let locations: Vec<&str> = e.iter().map(|e| e.location.as_str()).collect();
    assert_eq!(locations, ["default_policy", "step_up.state_ttl"], "{e}");
}

#[test]
fn validation_errors_carry_the_line_of_their_key() {
    let text = file(LOOPBACK, "state_ttl = \"10 minutes\"", "");
    let e = errors(&text);
    let (location, message) = only(&e);
    assert_eq!(location, "step_up.state_ttl");
    assert_eq!(
        message,
        "unknown unit \" minutes\" in \"10 minutes\"; use ms, s, m (minutes), h, d or w"
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("state_ttl"))
        .unwrap()
        + 1;
    assert_eq!(e.errors()[0].line_col, Some((line, 1)), "{e}");
}

/// One mistake, one error: a check comparing two keys is skipped when one of them is bad,
/// and a name whose declaration is bad is not reported again where it is used.
#[test]
fn a_bad_value_gives_one_error_not_a_second_one_about_its_stand_in() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[issuer]\njwks_refresh = \"1 day\"\njwks_max_staleness = \"2h\"",
            "",
            "issuer.jwks_refresh",
        ),
        (
            "[issuer]\njwks_refresh = \"1h\"\njwks_max_staleness = \"forever\"",
            "",
            "issuer.jwks_max_staleness",
        ),
        (
            "[issuer]\nrevocation_refresh = \"5 min\"\nrevocation_max_staleness = \"2m\"",
            "",
            "issuer.revocation_refresh",
        ),
        (
            "[issuer]\napi_base = \"ftp://issuer.example\"\nstatus_list_url = \"https://issuer.example/list\"",
            "",
            "issuer.api_base",
        ),
        (
            "[issuer]\nstatus_list_origins = [\"https://cdn.example/path\"]\nstatus_list_url = \"https://cdn.example/list\"",
            "",
            "issuer.status_list_origins[0]",
        ),
        ("[tokens]\ncookie = \"bad cookie\"", "", "tokens.cookie"),
        (
            "[tokens]\nsources = [\"bearer\", \"cookies\"]",
            "",
            "tokens.sources[1]",
        ),
        (
            "[admin]\naddress = \"localhost:9091\"\n[[listeners]]\naddress = \"127.0.0.1:9091\"",
            "",
            "admin.address",
        ),
        ("", "per_client_per_minute = 50\nglobal_per_minute = 0", "step_up.global_per_minute"),
        (
            "[[policies]]\nname = \"reports\"\nrule = \"any-of\"\n[[routes]]\nname = \"reports\"\npath = \"/reports\"\npolicy = \"reports\"",
            "",
            "policies[2].rule",
        ),
        (
            "[[policies]]\nname = \"bad name\"\nrule = \"deny\"\n[[routes]]\nname = \"x\"\npath = \"/x\"\npolicy = \"bad name\"",
            "",
            "policies[2].name",
        ),
        // A bad method is not "any method": the later route is not reported as shadowed.
        (
            "[[routes]]\nname = \"all\"\npath = \"/**\"\nmethods = [\"GET,POST\"]\npolicy = \"staff\"\n[[routes]]\nname = \"x\"\npath = \"/x\"\npolicy = \"staff\"",
            "",
            "routes[1].methods[0]",
        ),
        // A TLS listener whose key is missing is not a plain-HTTP one.
        (
            "",
            "allowed_hosts = [\"app.lan\"]\n[listeners.tls]\ncert = \"/etc/tls/cert.pem\"",
            "listeners[0].tls.key",
        ),
        (
            "",
            "allowed_hosts = [\"app.lan\"]\npublic_url = \"https://app.lan/path\"",
            "step_up.public_url",
        ),
    ];
    for (extra, step_up, location) in cases {
        let listener = if step_up.contains("allowed_hosts") {
            LAN
        } else {
            LOOPBACK
        };
        // Tables after the last route: `extra` goes at the end, `step_up` in [step_up]; a
        // [listeners.tls] sub-table belongs right after the listener.
        let (step_up, listener) = match step_up.split_once("\n[listeners.tls]") {
            Some((s, tls)) => (s.to_string(), format!("{listener}\n[listeners.tls]{tls}")),
            None => (step_up.to_string(), listener.to_string()),
        };
        let text = file(&listener, &step_up, extra);
        let e = errors(&text);
        assert_eq!(only(&e).0, *location, "{text}\n{e}");
    }
    // An upstream with a bad name, used by name.
    let text = file(
        LOOPBACK,
        "",
        "[[routes]]\nname = \"x\"\npath = \"/x\"\npolicy = \"staff\"\nupstream = \"two words\"",
    )
    .replace("name = \"app\"", "name = \"two words\"");
    assert_eq!(only(&errors(&text)).0, "upstreams[0].name");
}

#[test]
fn a_route_that_can_never_match_is_reported_with_both_routes() {
    let text = file(
        LOOPBACK,
        "",
        r#"
[[routes]]
name = "reports"
path = "/admin/reports/**"
policy = "deny-all"

[[routes]]
name = "admin-again"
path = "/Admin"
policy = "staff"
"#,
    );
    let e = errors(&text);
    let line = |needle: &str| text.lines().position(|l| l == needle).unwrap() + 1;
    let (admin, reports, again) = (
        line("path = \"/admin/**\""),
        line("path = \"/admin/reports/**\""),
        line("path = \"/Admin\""),
    );
    assert_eq!(
        problems(&e),
        vec![
            (
                "routes[1].path".to_string(),
                Some(reports),
                format!(
                    "route \"reports\" (routes[1], line {reports}, path \"/admin/reports/**\") \
                     can never match: route \"admin\" (routes[0], line {admin}, path \
                     \"/admin/**\") comes first and matches every request it would (the first \
                     match wins); move it above \"admin\" or remove it"
                )
            ),
            (
                "routes[2].path".to_string(),
                Some(again),
                format!(
                    "route \"admin-again\" (routes[2], line {again}, path \"/Admin\") repeats \
                     route \"admin\" (routes[0], line {admin}, path \"/admin/**\"): both match \
                     the same requests (same paths, hosts and methods) and the first match \
                     wins, so this one never matches; remove one of them"
                )
            ),
        ],
        "{e}"
    );
}

#[test]
fn routes_that_only_overlap_are_not_shadowed() {
    // Each pair: the second route still matches some request the first does not.
    let pairs: &[(&str, &str)] = &[
        // More specific first: the usual order.
        ("path = \"/admin/reports/**\"", "path = \"/admin/**\""),
        // A method, a host or a path the first does not cover.
        ("path = \"/x/**\"\nmethods = [\"GET\"]", "path = \"/x/**\""),
        (
            "path = \"/x/**\"\nmethods = [\"GET\"]",
            "path = \"/x/**\"\nmethods = [\"POST\"]",
        ),
        (
            "path = \"/x/**\"\nhosts = [\"a.example\"]",
            "path = \"/x/**\"",
        ),
        (
            "path = \"/x/**\"\nhosts = [\"*.example.com\"]",
            "path = \"/x/**\"\nhosts = [\"example.com\"]",
        ),
        // `*` is exactly one segment; `**` also matches `/x` itself.
        ("path = \"/x/*\"", "path = \"/x/**\""),
        ("path = \"/x/*/y\"", "path = \"/x/**/y\""),
        ("path = \"/x/a\"", "path = \"/x/*\""),
        ("path = \"/api\"", "path = \"/apix\""),
        // A prefix goes on below its last segment; the glob stops there.
        ("path = \"/x/*/z\"", "path = \"/x/y/z\""),
    ];
    for (first, second) in pairs {
        let extra = format!(
            "[[routes]]\nname = \"first\"\n{first}\npolicy = \"staff\"\n\
             [[routes]]\nname = \"second\"\n{second}\npolicy = \"staff\""
        );
        let text = file(LOOPBACK, "", &extra).replacen("path = \"/admin/**\"", "path = \"/zz\"", 1);
        if let Err(e) = Config::from_toml_str(&text) {
            panic!("{first} / {second}:\n{e}");
        }
    }
    // ...and pairs where it does not.
    let shadowed: &[(&str, &str)] = &[
        ("path = \"/**\"", "path = \"/anything/at/all\""),
        ("path = \"/x\"", "path = \"/x/**\""),
        ("path = \"/x/*/z/**\"", "path = \"/x/y/z\""),
        ("path = \"/x/**\"", "path = \"/x/*/z/**\""),
        (
            "path = \"/x/**\"\nmethods = [\"GET\", \"POST\"]",
            "path = \"/x/y\"\nmethods = [\"HEAD\"]",
        ),
        (
            "path = \"/x/**\"\nhosts = [\"*.example.com\"]",
            "path = \"/x\"\nhosts = [\"a.b.example.com\", \"*.c.example.com\"]",
        ),
        (
            "path = \"/x\"\nhosts = [\"A.example.\"]",
            "path = \"/x\"\nhosts = [\"a.example\"]",
        ),
    ];
    for (first, second) in shadowed {
        let extra = format!(
            "[[routes]]\nname = \"first\"\n{first}\npolicy = \"staff\"\n\
             [[routes]]\nname = \"second\"\n{second}\npolicy = \"staff\""
        );
        let text = file(LOOPBACK, "", &extra).replacen("path = \"/admin/**\"", "path = \"/zz\"", 1);
        let e = errors(&text);
        let (location, message) = only(&e);
        assert_eq!(location, "routes[2].path", "{first} / {second}: {e}");
        assert!(message.contains("route \"first\" (routes[1]"), "{message}");
    }
}

#[test]
fn a_secure_cookie_over_plain_http_on_a_lan_is_refused_with_the_fix() {
    let allowed = "allowed_hosts = [\"app.lan\"]";
    let e = errors(&file(LAN, allowed, ""));
    let (location, message) = only(&e);
    assert_eq!(location, "step_up.cookie_secure");
    assert_eq!(
        message,
        "cookie_secure is true (the default), but plain-HTTP listener 0.0.0.0:8080 lets a \
         step-up start for app.lan (step_up.allowed_hosts, routes' hosts) and \
         step_up.public_url is not set: browsers drop a Secure cookie that comes over plain \
         HTTP, so the state cookie never comes back and the step-up can never finish. Set \
         step_up.cookie_secure = false for plain HTTP on a LAN; or serve TLS on the listener \
         ([listeners.tls]); or, when TLS terminates in front of proofgate, set \
         step_up.public_url = \"https://…\""
    );

    // The same through an http public_url, a route's hosts, an IPv6 wildcard address, and an
    // explicit `cookie_secure = true`.
    let e = errors(&file(LAN, "public_url = \"http://app.lan:8080\"", ""));
    assert!(
        only(&e).1.starts_with(
            "cookie_secure is true (the default), but plain-HTTP listener 0.0.0.0:8080 serves \
             step-up and step_up.public_url is \"http://app.lan:8080\", not https: "
        ),
        "{e}"
    );
    let hosts =
        "[[routes]]\nname = \"app\"\nhosts = [\"app.lan\"]\npath = \"/app\"\npolicy = \"deny-all\"";
    assert_eq!(
        only(&errors(&file(LAN, "", hosts))).0,
        "step_up.cookie_secure"
    );
    let e = errors(&file(
        "address = \"[::]:8080\"\n[[listeners]]\naddress = \"10.0.0.5:8080\"",
        &format!("{allowed}\ncookie_secure = true"),
        "",
    ));
    assert!(
        only(&e)
            .1
            .starts_with("cookie_secure = true, but plain-HTTP listeners [::]:8080, 10.0.0.5:8080 let a step-up start for app.lan"),
        "{e}"
    );

    // Each fix the message names passes; so do the cases where no step-up can start over
    // plain HTTP under a LAN name.
    for (listener, step_up) in [
        (LAN, format!("{allowed}\ncookie_secure = false")),
        (LAN, format!("{allowed}\npublic_url = \"https://app.example\"")),
        (
            "address = \"0.0.0.0:8443\"\n[listeners.tls]\ncert = \"/etc/tls/cert.pem\"\nkey = \"/etc/tls/key.pem\"",
            allowed.to_string(),
        ),
        (LOOPBACK, allowed.to_string()),
        (LAN, "allowed_hosts = [\"localhost\", \"*.localhost\", \"127.0.0.1\"]".to_string()),
        (LAN, "public_url = \"http://localhost:8080\"".to_string()),
    ] {
        let text = file(listener, &step_up, "");
        if let Err(e) = Config::from_toml_str(&text) {
            panic!("{text}\n{e}");
        }
    }
    // No step-up, no state cookie.
    let deny = file(LAN, allowed, "").replace(
        "rule = \"any_of\"",
        "rule = \"any_of\"\non_failure = \"deny\"",
    );
    Config::from_toml_str(&deny).unwrap();
}

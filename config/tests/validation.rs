//! Every validation error path: each problem is reported, at its location, all at once.

use proofgate_config::{Config, ConfigErrors, ErrorKind};

/// A valid configuration the tests below break one piece at a time.
const BASE: &str = r#"
default_policy = "deny-all"

[[listeners]]
address = "127.0.0.1:8080"

[[upstreams]]
name = "app"
addresses = ["127.0.0.1:3000"]

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
"#;

fn errors(text: &str) -> ConfigErrors {
    match Config::from_toml_str(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts a problem at `location` whose message contains `needle`.
#[track_caller]
fn assert_problem(errors: &ConfigErrors, location: &str, needle: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.location == location && e.message.contains(needle)),
        "no problem at {location} containing {needle:?} in:\n{errors}"
    );
}

/// `BASE` with `extra` appended.
fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

#[test]
fn base_is_valid() {
    Config::from_toml_str(BASE).unwrap();
}

#[test]
fn reports_every_problem_at_once_with_locations() {
    let e = errors(
        r#"
default_policy = "deny-al"

[[listeners]]
address = "nowhere"

[[upstreams]]
name = "app"
addresses = []

[[upstreams]]
name = "app"
addresses = ["10.0.0.1:80"]

[[policies]]
name = "deny-all"
rule = "deny"

[[policies]]
name = "admin"
rule = "any_of"
requirements = [{ types = ["phone"], channels = ["email"], max_age = "ten minutes" }]

[[routes]]
name = "a"
path = "/a"
policy = "admin"
upstream = "ap"

[[routes]]
name = "b"
path = "/b/v*"
policy = "admin"

[[routes]]
name = "c"
path = "/c"
policy = "admn"
"#,
    );
    assert_problem(
        &e,
        "default_policy",
        "unknown policy \"deny-al\" (did you mean \"deny-all\"?)",
    );
    assert_problem(&e, "listeners[0].address", "not ip:port");
    assert_problem(&e, "upstreams[0].addresses", "empty");
    assert_problem(
        &e,
        "upstreams[1].name",
        "duplicate name \"app\" (first used by upstreams[0])",
    );
    assert_problem(
        &e,
        "policies[1].requirements[0].channels[0]",
        "\"email\" is not a channel of type phone",
    );
    assert_problem(&e, "policies[1].requirements[0].max_age", "not a duration");
    assert_problem(
        &e,
        "routes[0].upstream",
        "unknown upstream \"ap\" (did you mean \"app\"?)",
    );
    assert_problem(&e, "routes[1].path", "whole segments");
    assert_problem(
        &e,
        "routes[2].policy",
        "unknown policy \"admn\" (did you mean \"admin\"?)",
    );
    assert!(e.len() >= 9, "{e}");
    assert!(e.iter().all(|e| e.kind == ErrorKind::Invalid));
    // The rendering names each location, with the line of its key.
    let text = e.to_string();
    assert!(
        text.contains("routes[2].policy (line 38, column 1): unknown policy \"admn\""),
        "{text}"
    );
    assert!(e.iter().all(|e| e.line_col.is_some()), "{text}");
    assert!(text.starts_with(&format!("{} problems", e.len())), "{text}");
}

#[test]
fn missing_required_pieces() {
    let e = errors("");
    assert_problem(&e, "default_policy", "missing");
    assert_problem(&e, "listeners", "at least one");
    assert_problem(&e, "upstreams", "at least one");

    let e = errors(
        r#"
default_policy = "x"
[[listeners]]
[[upstreams]]
[[policies]]
[[routes]]
"#,
    );
    assert_problem(&e, "listeners[0].address", "missing");
    assert_problem(&e, "upstreams[0].name", "missing");
    assert_problem(&e, "upstreams[0].addresses", "empty");
    assert_problem(&e, "policies[0].name", "missing");
    assert_problem(&e, "policies[0].rule", "missing");
    assert_problem(&e, "routes[0].name", "missing");
    assert_problem(&e, "routes[0].path", "missing");
    assert_problem(&e, "routes[0].policy", "missing");
    assert_problem(&e, "default_policy", "unknown policy \"x\"");
}

#[test]
fn duplicate_names() {
    let e = errors(&with(
        r#"
[[policies]]
name = "staff"
rule = "public"

[[routes]]
name = "admin"
path = "/x"
policy = "staff"

[[routes]]
name = "default"
path = "/y"
policy = "staff"
"#,
    ));
    assert_problem(
        &e,
        "policies[2].name",
        "duplicate name \"staff\" (first used by policies[1])",
    );
    assert_problem(
        &e,
        "routes[1].name",
        "duplicate name \"admin\" (first used by routes[0])",
    );
    assert_problem(&e, "routes[2].name", "reserved");
}

#[test]
fn bad_names() {
    let e = errors(&BASE.replace("name = \"app\"", "name = \"my app\""));
    assert_problem(&e, "upstreams[0].name", "not a valid name");
}

#[test]
fn bad_listeners_and_admin() {
    let e = errors(&with(
        r#"
[[listeners]]
address = "127.0.0.1:8080"
[listeners.tls]
cert = "cert.pem"

[[listeners]]
address = "localhost:80"

[admin]
address = "127.0.0.1:99999"
"#,
    ));
    assert_problem(
        &e,
        "listeners[1].address",
        "already used by listeners[0].address",
    );
    assert_problem(&e, "listeners[1].tls.key", "missing");
    assert_problem(&e, "listeners[2].address", "not ip:port");
    assert_problem(&e, "admin.address", "not ip:port");

    let e = errors(&with("[admin]\naddress = \"127.0.0.1:8080\""));
    assert_problem(&e, "admin.address", "already used by listeners[0].address");
}

#[test]
fn bad_server_settings() {
    let e = errors(&with(
        r#"
[server]
threads = 0
upstream_keepalive_pool_size = 100000000
grace_period = "forever"
graceful_shutdown_timeout = "2h"
"#,
    ));
    assert_problem(&e, "server.threads", "out of range");
    assert_problem(&e, "server.upstream_keepalive_pool_size", "out of range");
    assert_problem(&e, "server.grace_period", "not a duration");
    assert_problem(&e, "server.graceful_shutdown_timeout", "too long");

    let e = errors(&with("[server]\nupgrade_sock = \"run/upgrade.sock\""));
    assert_problem(&e, "server.upgrade_sock", "not an absolute path");
    let long = format!("/{}", "s".repeat(107));
    let e = errors(&with(&format!("[server]\nupgrade_sock = \"{long}\"")));
    assert_problem(&e, "server.upgrade_sock", "at most 107");
    let e = errors(&with("[server]\nupgrade_sock = \"/run/proofgate/\""));
    assert_problem(&e, "server.upgrade_sock", "not a file path");
}

#[test]
fn favicon_defaults_to_not_found_and_takes_policy() {
    use proofgate_config::FaviconMode;
    let c = Config::from_toml_str(&with("")).unwrap();
    assert_eq!(c.server.favicon, FaviconMode::NotFound);
    let c = Config::from_toml_str(&with("[server]\nfavicon = \"policy\"")).unwrap();
    assert_eq!(c.server.favicon, FaviconMode::Policy);
    let e = errors(&with("[server]\nfavicon = \"ignore\""));
    assert_problem(&e, "server.favicon", "use \"not_found\"");
}

#[test]
fn upgrade_sock_defaults_and_is_taken_as_given() {
    let c = Config::from_toml_str(BASE).unwrap();
    assert_eq!(
        c.server.upgrade_sock,
        std::path::Path::new(proofgate_config::DEFAULT_UPGRADE_SOCK)
    );
    let c = Config::from_toml_str(&with("[server]\nupgrade_sock = \"/run/pg/u.sock\"")).unwrap();
    assert_eq!(
        c.server.upgrade_sock,
        std::path::Path::new("/run/pg/u.sock")
    );
}

#[test]
fn bad_upstreams() {
    let e = errors(&BASE.replace(
        "addresses = [\"127.0.0.1:3000\"]",
        r#"addresses = ["http://app:80", "app:80", "app:80", "app"]
connect_timeout = "0s"
read_timeout = "5 minutes"
[upstreams.health_check]
path = "health"
interval = "0s"
[upstreams.tls]
sni = "*.bad""#,
    ));
    assert_problem(&e, "upstreams[0].addresses[0]", "not host:port");
    assert_problem(&e, "upstreams[0].addresses[2]", "listed twice");
    assert_problem(&e, "upstreams[0].addresses[3]", "not host:port");
    assert_problem(&e, "upstreams[0].connect_timeout", "too short");
    assert_problem(&e, "upstreams[0].read_timeout", "unknown unit");
    assert_problem(&e, "upstreams[0].health_check.path", "plain absolute path");
    assert_problem(&e, "upstreams[0].health_check.interval", "too short");
    assert_problem(&e, "upstreams[0].tls.sni", "not a host name");

    let e = errors(&BASE.replace(
        "addresses = [\"127.0.0.1:3000\"]",
        "addresses = [\"10.0.0.1:443\"]\n[upstreams.tls]\nverify = true",
    ));
    assert_problem(
        &e,
        "upstreams[0].tls.sni",
        "required when the first address is an IP",
    );

    let ok = Config::from_toml_str(&BASE.replace(
        "addresses = [\"127.0.0.1:3000\"]",
        "addresses = [\"app.internal:443\"]\n[upstreams.tls]",
    ))
    .unwrap();
    assert_eq!(ok.upstreams[0].tls.as_ref().unwrap().sni, "app.internal");
    assert!(ok.upstreams[0].tls.as_ref().unwrap().verify);
}

#[test]
fn several_upstreams_need_a_default_or_explicit_upstreams() {
    let two = with("[[upstreams]]\nname = \"other\"\naddresses = [\"127.0.0.1:4000\"]");
    let e = errors(&two);
    assert_problem(&e, "routes[0].upstream", "required when several upstreams");
    // The default policy denies, so the default route needs no upstream.
    assert!(!e.has("default_upstream"), "{e}");

    let c = Config::from_toml_str(&format!("default_upstream = \"other\"\n{two}")).unwrap();
    assert_eq!(
        c.routes.route(&http::Method::GET, None, "/admin").upstream,
        Some("other")
    );

    let e = errors(&format!("default_upstream = \"nope\"\n{two}"));
    assert_problem(&e, "default_upstream", "unknown upstream \"nope\"");

    let e = errors(&two.replace("rule = \"deny\"", "rule = \"public\""));
    assert_problem(&e, "default_upstream", "required when several upstreams");
}

#[test]
fn bad_issuer_settings() {
    let e = errors(&with(
        r#"
[issuer]
api_base = "http://api.proof.holdings"
jwks_url = "ftp://x/jwks"
revocation_url = "not a url"
status_list_url = "https://user:pw@api.proof.holdings/status"
issuer = ""
jwks_refresh = "24h"
jwks_max_staleness = "1h"
revocation_refresh = "5m"
revocation_max_staleness = "1m"
unknown_kid_cooldown = "0s"
fetch_timeout = "0s"
retry_max_delay = "2h"
leeway = "1h"
fail_mode = "ajar"
"#,
    ));
    assert_problem(
        &e,
        "issuer.api_base",
        "plain http is allowed only for loopback",
    );
    assert_problem(&e, "issuer.jwks_url", "scheme \"ftp\"");
    assert_problem(&e, "issuer.revocation_url", "not a URL");
    assert_problem(&e, "issuer.status_list_url", "credentials");
    assert_problem(&e, "issuer.issuer", "non-empty");
    assert_problem(&e, "issuer.jwks_max_staleness", "shorter than jwks_refresh");
    assert_problem(
        &e,
        "issuer.revocation_max_staleness",
        "shorter than revocation_refresh",
    );
    assert_problem(&e, "issuer.unknown_kid_cooldown", "too short");
    assert_problem(&e, "issuer.fetch_timeout", "too short");
    assert_problem(&e, "issuer.retry_max_delay", "too long");
    assert_problem(&e, "issuer.leeway", "too long");
    assert_problem(&e, "issuer.fail_mode", "\"ajar\"");

    let e = errors(&with("[issuer]\napi_base = \"https://api.example/?x=1\""));
    assert_problem(&e, "issuer.api_base", "no query");
}

#[test]
fn issuer_urls_derive_from_api_base_unless_given() {
    let c = Config::from_toml_str(&with(
        r#"
[issuer]
api_base = "https://proof.internal/"
jwks_url = "https://keys.internal/jwks.json"
fail_mode = "open"
"#,
    ))
    .unwrap();
    assert_eq!(c.issuer.api_base, "https://proof.internal");
    assert_eq!(c.issuer.jwks_url, "https://keys.internal/jwks.json");
    assert_eq!(
        c.issuer.revocation_url,
        "https://proof.internal/api/v1/proofs/revoked"
    );
    assert_eq!(
        c.issuer.status_list_url,
        "https://proof.internal/api/v1/proofs/status-list"
    );
    assert!(c.revocation_config().fail_open);
    let c = Config::from_toml_str(&with("[issuer]\napi_base = \"http://localhost:9999\"")).unwrap();
    assert_eq!(
        c.keys_config().jwks_url,
        "http://localhost:9999/.well-known/jwks.json"
    );
}

#[test]
fn fetch_timeout_and_retry_delay_reach_both_stores() {
    let c = Config::from_toml_str(BASE).unwrap();
    let (keys, revocation) = (c.keys_config(), c.revocation_config());
    assert_eq!(keys.fetch_timeout, std::time::Duration::from_secs(10));
    assert_eq!(keys.backoff_max, std::time::Duration::from_secs(60));
    assert_eq!(revocation.backoff_max, std::time::Duration::from_secs(60));
    let c = Config::from_toml_str(&with(
        "[issuer]\nfetch_timeout = \"3s\"\nretry_max_delay = \"500ms\"",
    ));
    // Below the 1 s floor: refused rather than silently raised.
    assert!(c.is_err());
    let c = Config::from_toml_str(&with(
        "[issuer]\nfetch_timeout = \"3s\"\nretry_max_delay = \"15s\"",
    ))
    .unwrap();
    for (timeout, max, initial) in [
        (
            c.keys_config().fetch_timeout,
            c.keys_config().backoff_max,
            c.keys_config().backoff_initial,
        ),
        (
            c.revocation_config().fetch_timeout,
            c.revocation_config().backoff_max,
            c.revocation_config().backoff_initial,
        ),
    ] {
        assert_eq!(timeout, std::time::Duration::from_secs(3));
        assert_eq!(max, std::time::Duration::from_secs(15));
        assert!(initial <= max);
    }
}

#[test]
fn bad_token_settings() {
    let e = errors(&with(
        r#"
[tokens]
sources = ["bearer", "query", "bearer"]
header = "bad header"
cookie = "bad;cookie"
max_token_size = 10
cache_capacity = 0
"#,
    ));
    assert_problem(&e, "tokens.sources[1]", "\"query\"");
    assert_problem(&e, "tokens.sources[2]", "listed twice");
    assert_problem(&e, "tokens.header", "not a valid header name");
    assert_problem(&e, "tokens.cookie", "not a valid cookie name");
    assert_problem(&e, "tokens.max_token_size", "out of range");
    assert_problem(&e, "tokens.cache_capacity", "out of range");

    let e = errors(&with("[tokens]\nsources = []\nheader = \"Authorization\""));
    assert_problem(&e, "tokens.sources", "empty");
    assert_problem(&e, "tokens.header", "use the \"bearer\"");
    let e = errors(&with("[tokens]\nheader = \"x-proof-subject\""));
    assert_problem(&e, "tokens.header", "identity header");
}

#[test]
fn bad_policies() {
    let e = errors(&with(
        r#"
[[policies]]
name = "p2"
rule = "some_of"

[[policies]]
name = "p3"
rule = "all_of"

[[policies]]
name = "p4"
rule = "public"
requirements = [{ types = ["email"] }]

[[policies]]
name = "p5"
rule = "any_of"
on_failure = "shrug"
requirements = [
  { types = ["email", "domain"], identifiers = ["corp.example"] },
  { types = ["email"], identifiers = ["not-an-email", ""] },
  { types = ["phone"], identifiers = ["call me maybe"] },
  { types = ["domain"], channels = ["dns", "sms"], identifiers = ["localhost"] },
  { types = ["wallet"], channels = ["ethereum", "email"] },
  { types = [""], channels = [""] },
  { max_age = "0s" },
  { max_age = "10" },
]
"#,
    ));
    assert_problem(&e, "policies[2].rule", "\"some_of\"");
    assert_problem(
        &e,
        "policies[3].requirements",
        "needs at least one requirement",
    );
    assert_problem(&e, "policies[4].requirements", "only any_of and all_of");
    assert_problem(&e, "policies[5].on_failure", "\"shrug\"");
    let r = "policies[5].requirements";
    assert_problem(&e, &format!("{r}[0].identifiers"), "exactly one type");
    assert_problem(
        &e,
        &format!("{r}[1].identifiers[0]"),
        "not an email address",
    );
    assert_problem(&e, &format!("{r}[1].identifiers[1]"), "empty identifier");
    assert_problem(&e, &format!("{r}[2].identifiers[0]"), "not a phone number");
    assert_problem(
        &e,
        &format!("{r}[3].channels[1]"),
        "\"sms\" is not a channel of type domain; valid: dns, http",
    );
    assert_problem(&e, &format!("{r}[3].identifiers[0]"), "not a domain name");
    assert_problem(
        &e,
        &format!("{r}[4].channels[1]"),
        "not a channel of type wallet",
    );
    assert_problem(&e, &format!("{r}[5].types[0]"), "empty type");
    assert_problem(&e, &format!("{r}[5].channels[0]"), "empty channel");
    assert_problem(&e, &format!("{r}[6].max_age"), "too short");
    assert_problem(&e, &format!("{r}[7].max_age"), "not a duration");
}

#[test]
fn type_and_channel_combinations_from_the_contract() {
    let policy = |req: &str| {
        with(&format!(
            "[[policies]]\nname = \"p\"\nrule = \"any_of\"\nrequirements = [{req}]"
        ))
    };
    for ok in [
        r#"{ types = ["phone"], channels = ["whatsapp", "telegram", "viber", "sms"] }"#,
        r#"{ types = ["email"], channels = ["email"] }"#,
        r#"{ types = ["domain"], channels = ["dns", "http"] }"#,
        // The OpenAPI document's and the SDKs' domain channels, beside the test vectors' two.
        r#"{ types = ["domain"], channels = ["auto", "email"] }"#,
        r#"{ types = ["social"], channels = ["github", "x", "tiktok"] }"#,
        r#"{ types = ["wallet"], channels = ["ethereum", "solana", "bitcoin"] }"#,
        // Several types: a channel of any of them.
        r#"{ types = ["phone", "email"], channels = ["sms", "email"] }"#,
        // The OpenAPI document's other types.
        r#"{ types = ["account"], channels = ["coinbase"] }"#,
        r#"{ types = ["telegram_bot", "phone"], channels = ["telegram_bot_token"] }"#,
        r#"{ types = ["waba"], channels = ["waba_otp"] }"#,
        // Unknown (newer) types pass unchecked, alone or with known ones.
        r#"{ types = ["confirmation"], channels = ["brand-new-channel"] }"#,
        // No type: any channel.
        r#"{ channels = ["sms", "brand-new-channel"] }"#,
        // Case is folded.
        r#"{ types = ["Phone"], channels = ["SMS"], max_age = "10m" }"#,
    ] {
        Config::from_toml_str(&policy(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        r#"{ types = ["phone"], channels = ["email"] }"#,
        r#"{ types = ["email"], channels = ["sms"] }"#,
        r#"{ types = ["domain"], channels = ["ethereum"] }"#,
        r#"{ types = ["social"], channels = ["dns"] }"#,
        r#"{ types = ["wallet"], channels = ["kraken"] }"#,
        r#"{ types = ["account"], channels = ["sms"] }"#,
        r#"{ types = ["telegram_bot"], channels = ["telegram"] }"#,
    ] {
        let e = errors(&policy(bad));
        assert_problem(
            &e,
            "policies[2].requirements[0].channels[0]",
            "is not a channel of type",
        );
    }
}

#[test]
fn bad_routes() {
    let e = errors(&with(
        r#"
[[routes]]
name = "r1"
path = "admin"
policy = "staff"
hosts = ["", "exa mple.com", "example.com:443", "*.ok.example"]
methods = ["GET", "G E T", "post"]

[[routes]]
name = "r2"
path = "/a/../b"
policy = "staff"

[[routes]]
name = "r3"
path = "/a%2fb/**"
policy = "staff"

[[routes]]
name = "r4"
path = "/a;b"
policy = "staff"
"#,
    ));
    assert_problem(&e, "routes[1].path", "must start with '/'");
    assert_problem(&e, "routes[1].hosts[0]", "empty");
    assert_problem(&e, "routes[1].hosts[1]", "host name");
    assert_problem(&e, "routes[1].hosts[2]", "without port");
    assert!(!e.has("routes[1].hosts[3]"), "{e}");
    assert_problem(&e, "routes[1].methods[1]", "not an HTTP method");
    assert!(
        !e.has("routes[1].methods[2]"),
        "lowercase methods are uppercased: {e}"
    );
    assert_problem(&e, "routes[2].path", "'.' or '..'");
    assert_problem(&e, "routes[3].path", "encoded '/'");
    assert_problem(&e, "routes[4].path", "';'");
}

#[test]
fn route_preflight_defaults_to_deny_and_takes_forward() {
    use proofgate_core::routes::Preflight;
    let c = Config::from_toml_str(BASE).unwrap();
    assert_eq!(c.routes.routes()[0].preflight, Preflight::Deny);
    let c = Config::from_toml_str(&with(
        r#"
[[routes]]
name = "api"
path = "/api/**"
policy = "staff"
preflight = "forward"

[[routes]]
name = "other"
path = "/other/**"
policy = "staff"
preflight = "deny"
"#,
    ))
    .unwrap();
    let preflights: Vec<_> = c.routes.routes().iter().map(|r| r.preflight).collect();
    assert_eq!(
        preflights,
        [Preflight::Deny, Preflight::Forward, Preflight::Deny]
    );
    let e = errors(&with(
        r#"
[[routes]]
name = "api"
path = "/api/**"
policy = "staff"
preflight = "allow"

[[routes]]
name = "closed"
path = "/closed/**"
policy = "deny-all"
preflight = "forward"
"#,
    ));
    assert_problem(&e, "routes[1].preflight", "use \"forward\" or \"deny\"");
    assert_problem(&e, "routes[2].preflight", "denies every request");
}

#[test]
fn identity_headers_prefix_is_fixed() {
    Config::from_toml_str(&with("[identity_headers]\nprefix = \"x-proof-\"")).unwrap();
    let e = errors(&with("[identity_headers]\nprefix = \"x-user-\""));
    assert_problem(&e, "identity_headers.prefix", "fixed to \"x-proof-\"");
}

#[test]
fn bad_step_up_settings() {
    let e = errors(&with(
        r#"
[step_up]
prefix = "proofgate"
state_ttl = "1s"
per_client_per_minute = 50
global_per_minute = 100
cookie_name = "other_cookie"
state_cookie = "proof_token"
"#,
    ));
    assert_problem(&e, "step_up.prefix", "starting and ending with '/'");
    assert_problem(&e, "step_up.state_ttl", "too short");
    assert_problem(&e, "step_up.global_per_minute", "100 requests per minute");
    assert_problem(&e, "step_up.cookie_name", "never be read back");
    // 50 is not above the 100 written; the global limit's error is the only one about it.
    assert!(!e.has("step_up.per_client_per_minute"), "{e}");
    let e = errors(&with(
        "[step_up]\nper_client_per_minute = 50\nglobal_per_minute = 20",
    ));
    assert_problem(
        &e,
        "step_up.per_client_per_minute",
        "50 is above global_per_minute (20)",
    );
    assert_eq!(e.len(), 1, "{e}");

    let e = errors(&with("[step_up]\nstate_cookie = \"proof_token\""));
    assert_problem(&e, "step_up.state_cookie", "other than the proof cookie");

    for prefix in ["/", "/.proofgate", "/a/../b/", "//x/", "/x*/"] {
        let e = errors(&with(&format!("[step_up]\nprefix = \"{prefix}\"")));
        assert_problem(&e, "step_up.prefix", "must be a plain path");
    }
}

#[test]
fn step_up_needs_the_cookie_source() {
    let e = errors(&with("[tokens]\nsources = [\"bearer\"]"));
    assert_problem(&e, "tokens.sources", "\"cookie\" is not a token source");
    // With on_failure = "deny" no cookie is ever set.
    Config::from_toml_str(&with("[tokens]\nsources = [\"bearer\"]").replace(
        "rule = \"any_of\"",
        "rule = \"any_of\"\non_failure = \"deny\"",
    ))
    .unwrap();
}

#[test]
fn bad_logging() {
    let e = errors(&with("[logging]\nlevel = \"loud\""));
    assert_problem(&e, "logging.level", "\"loud\"");
}

#[test]
fn unknown_keys_and_wrong_types_carry_line_and_column() {
    let e = errors(&with("[server]\nthreds = 4"));
    assert_eq!(e.len(), 1);
    let err = &e.errors()[0];
    assert_eq!(err.kind, ErrorKind::Syntax);
    assert_eq!(err.location, "server.threds");
    assert_eq!(
        err.message,
        "unknown key `threds` in [server]; did you mean `threads`?"
    );
    let (line, _) = err.line_col.unwrap();
    assert_eq!(line, BASE.lines().count() + 3, "{err}");

    let e = errors(&with("[server]\nthreads = \"four\""));
    assert!(e.errors()[0].message.contains("invalid type"), "{e}");
    assert!(e.errors()[0].line_col.is_some());

    let e = errors(&with("[server]\nthreads = -1"));
    assert!(e.errors()[0].line_col.is_some(), "{e}");

    let e = errors("default_policy = \"x\"\nlisteners = \"not a list\"\n");
    assert_eq!(e.errors()[0].line_col.map(|(l, _)| l), Some(2), "{e}");
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let e = errors("default_policy = \"deny\"\n\n[server\nthreads = 1\n");
    let err = &e.errors()[0];
    assert_eq!(err.kind, ErrorKind::Syntax);
    assert_eq!(err.line_col.map(|(l, _)| l), Some(3), "{err}");
    assert!(err.to_string().starts_with("line 3, column "), "{err}");

    let e = errors("a = \"unterminated\nb = 1");
    assert_eq!(e.errors()[0].line_col.map(|(l, _)| l), Some(1));
    let e = errors("x = 1\nx = 2\n");
    assert_eq!(e.errors()[0].line_col.map(|(l, _)| l), Some(2), "{e}");
}

#[test]
fn secrets_in_the_file_are_refused_with_the_variable_to_use() {
    let e = errors(&with(
        r#"
[issuer]
api_key = "pk_live_abcdef123456"

[step_up]
cookie_key = "0123456789abcdef0123456789abcdef"
webhook_secret = "whsec_abc"
"#,
    ));
    assert!(e.iter().all(|e| e.kind == ErrorKind::Secret), "{e}");
    assert_problem(
        &e,
        "issuer.api_key",
        "set the PROOF_API_KEY environment variable",
    );
    assert_problem(&e, "step_up.cookie_key", "PROOFGATE_COOKIE_KEY");
    assert_problem(&e, "step_up.webhook_secret", "PROOF_WEBHOOK_SECRET");
    let text = e.to_string();
    assert!(
        !text.contains("pk_live_abcdef") && !text.contains("whsec_abc"),
        "{text}"
    );
    assert!(!text.contains("0123456789abcdef"), "{text}");

    // Anywhere, any case.
    let e = errors(&with(
        "[[policies]]\nname = \"x\"\nrule = \"deny\"\nPassword = \"hunter2\"",
    ));
    assert_problem(&e, "policies[2].Password", "environment");
    assert!(!e.to_string().contains("hunter2"));
    let e = errors("API_KEY = 1");
    assert_problem(&e, "API_KEY", "PROOF_API_KEY");

    // A secret-looking value in an innocent field.
    let e = errors(&BASE.replace("\"alice@corp.example\"", "\"pk_test_0000\""));
    assert_problem(
        &e,
        "policies[1].requirements[0].identifiers[0]",
        "looks like a secret",
    );
    assert!(!e.to_string().contains("pk_test_0000"));
    let e = errors(&with("[logging]\nlevel = \"-----BEGIN PRIVATE KEY-----\""));
    assert_problem(&e, "logging.level", "looks like a secret");
}

#[test]
fn load_reports_io_problems() {
    let e = Config::load("/definitely/not/here.toml").unwrap_err();
    assert_eq!(e.errors()[0].kind, ErrorKind::Io);
    assert_eq!(e.errors()[0].location, "/definitely/not/here.toml");

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bad_utf8 = dir.join("latin1.toml");
    std::fs::write(&bad_utf8, b"default_policy = \"caf\xe9\"").unwrap();
    let e = Config::load(&bad_utf8).unwrap_err();
    assert!(e.errors()[0].message.contains("not UTF-8"), "{e}");

    let syntax = dir.join("syntax.toml");
    std::fs::write(&syntax, "[[listeners]\n").unwrap();
    let e = Config::load(&syntax).unwrap_err();
    assert_eq!(e.errors()[0].location, syntax.display().to_string());
    assert!(e.to_string().contains("line 1"), "{e}");

    let big = dir.join("big.toml");
    std::fs::write(
        &big,
        vec![b'#'; proofgate_config::MAX_FILE_BYTES as usize + 1],
    )
    .unwrap();
    let e = Config::load(&big).unwrap_err();
    assert!(e.errors()[0].message.contains("at most"), "{e}");
}

#[test]
fn step_up_public_url_is_an_origin() {
    let c =
        Config::from_toml_str(&with("[step_up]\npublic_url = \"https://app.example/\"")).unwrap();
    assert_eq!(c.step_up.public_url.as_deref(), Some("https://app.example"));
    assert_eq!(
        Config::from_toml_str(BASE).unwrap().step_up.public_url,
        None
    );
    for bad in [
        "app.example",
        "ftp://app.example",
        "https://app.example/path",
        "https://app.example/?q=1",
        "https://user@app.example",
        "//app.example",
    ] {
        let e = errors(&with(&format!("[step_up]\npublic_url = \"{bad}\"")));
        assert_problem(&e, "step_up.public_url", "absolute http(s) URL");
    }
}

#[test]
fn status_list_settings_reach_the_revocation_store() {
    // By default the list at api_base is fetched at start, and only api_base's origin is trusted.
    let c =
        Config::from_toml_str(&with("[issuer]\napi_base = \"https://proof.internal\"")).unwrap();
    let r = c.revocation_config();
    assert_eq!(
        r.prefetch_status_lists,
        ["https://proof.internal/api/v1/proofs/status-list"]
    );
    assert!(r.trusted_status_list_origins.is_empty());

    // A list on a trusted CDN origin: fetched at start, and its origin trusted for tokens too.
    let c = Config::from_toml_str(&with(
        r#"
[issuer]
api_base = "https://proof.internal"
status_list_url = "https://status.cdn.example/lists/1"
status_list_origins = ["https://status.cdn.example/", "https://other.cdn.example:8443"]
"#,
    ))
    .unwrap();
    let r = c.revocation_config();
    assert_eq!(
        r.prefetch_status_lists,
        ["https://status.cdn.example/lists/1"]
    );
    assert_eq!(
        r.trusted_status_list_origins,
        [
            "https://status.cdn.example",
            "https://other.cdn.example:8443"
        ]
    );

    // An issuer without a status list.
    let c = Config::from_toml_str(&with("[issuer]\nstatus_list_url = \"\"")).unwrap();
    assert!(c.revocation_config().prefetch_status_lists.is_empty());
}

#[test]
fn status_lists_off_the_trusted_origins_are_refused() {
    let e = errors(&with(
        r#"
[issuer]
api_base = "https://proof.internal"
status_list_url = "https://status.cdn.example/lists/1"
"#,
    ));
    assert_problem(&e, "issuer.status_list_url", "status_list_origins");
    let e = errors(&with(
        r#"
[issuer]
status_list_origins = ["https://cdn.example/lists", "http://cdn.example", "not a url"]
"#,
    ));
    assert_problem(&e, "issuer.status_list_origins[0]", "without a path");
    assert_problem(&e, "issuer.status_list_origins[1]", "plain http");
    assert_problem(&e, "issuer.status_list_origins[2]", "not a URL");
}

#[test]
fn listener_http2_settings() {
    let c = Config::from_toml_str(&with(
        r#"
[[listeners]]
address = "127.0.0.1:8081"
h2c = true

[[listeners]]
address = "127.0.0.1:8443"
[listeners.tls]
cert = "cert.pem"
key = "key.pem"

[[listeners]]
address = "127.0.0.1:8444"
[listeners.tls]
cert = "cert.pem"
key = "key.pem"
h2 = false
"#,
    ))
    .unwrap();
    let l = &c.listeners;
    assert!(!l[0].h2c, "h2c is off by default");
    assert!(l[1].h2c);
    assert!(
        l[2].tls.as_ref().unwrap().h2,
        "TLS listeners offer h2 by default"
    );
    assert!(!l[3].tls.as_ref().unwrap().h2);

    let e = errors(&with(
        r#"
[[listeners]]
address = "127.0.0.1:8443"
h2c = true
[listeners.tls]
cert = "cert.pem"
key = "key.pem"
"#,
    ));
    assert_problem(&e, "listeners[1].h2c", "listeners.tls.h2");
}

#[test]
fn upstream_protocols_and_websocket_idle_timeout() {
    use proofgate_config::{UpstreamProtocol, DEFAULT_WEBSOCKET_IDLE_TIMEOUT};
    let c = Config::from_toml_str(BASE).unwrap();
    assert_eq!(c.upstreams[0].protocol, UpstreamProtocol::H1);
    assert_eq!(
        c.upstreams[0].websocket_idle_timeout,
        DEFAULT_WEBSOCKET_IDLE_TIMEOUT
    );
    let upstream = |extra: &str| {
        BASE.replace(
            "addresses = [\"127.0.0.1:3000\"]",
            &format!("addresses = [\"app.internal:3000\"]\n{extra}"),
        )
    };
    let c = Config::from_toml_str(&upstream(
        "protocol = \"h2c\"\nwebsocket_idle_timeout = \"1h\"",
    ))
    .unwrap();
    assert_eq!(c.upstreams[0].protocol, UpstreamProtocol::H2c);
    assert_eq!(
        c.upstreams[0].websocket_idle_timeout,
        std::time::Duration::from_secs(3600)
    );
    let c = Config::from_toml_str(&upstream("protocol = \"h2\"\n[upstreams.tls]")).unwrap();
    assert_eq!(c.upstreams[0].protocol, UpstreamProtocol::H2);
    let c = Config::from_toml_str(&upstream("protocol = \"h1\"\n[upstreams.tls]")).unwrap();
    assert_eq!(c.upstreams[0].protocol, UpstreamProtocol::H1);

    let e = errors(&upstream("protocol = \"http2\""));
    assert_problem(&e, "upstreams[0].protocol", "\"h1\"");
    let e = errors(&upstream("protocol = \"h2\""));
    assert_problem(
        &e,
        "upstreams[0].protocol",
        "needs an [upstreams.tls] table",
    );
    let e = errors(&upstream("protocol = \"h2c\"\n[upstreams.tls]"));
    assert_problem(&e, "upstreams[0].protocol", "write \"h2\"");
    let e = errors(&upstream("websocket_idle_timeout = \"0s\""));
    assert_problem(&e, "upstreams[0].websocket_idle_timeout", "too short");
    let e = errors(&upstream("websocket_idle_timeout = \"25h\""));
    assert_problem(&e, "upstreams[0].websocket_idle_timeout", "too long");
}

#[test]
fn forward_auth_is_off_by_default_and_validated() {
    let config = Config::from_toml_str(BASE).unwrap();
    assert!(!config.forward_auth.enabled);
    assert_eq!(config.forward_auth.path, "/.proofgate/auth");

    let config = Config::from_toml_str(&with(
        "[forward_auth]\nenabled = true\ntrusted_proxies = [\"127.0.0.1/32\", \"10.0.0.0/8\", \"::1\", \"fd00::/8\"]\n",
    ))
    .unwrap();
    let fa = &config.forward_auth;
    assert!(fa.enabled);
    for (ip, trusted) in [
        ("127.0.0.1", true),
        ("127.0.0.2", false),
        ("10.200.0.1", true),
        ("::1", true),
        ("::ffff:10.1.2.3", true),
        ("fd12::1", true),
        ("192.168.0.1", false),
    ] {
        assert_eq!(fa.trusts(ip.parse().unwrap()), trusted, "{ip}");
    }

    // Enabled without trusted proxies: the key and the fix are named.
    let e = errors(&with("[forward_auth]\nenabled = true\n"));
    assert_problem(&e, "forward_auth.trusted_proxies", "127.0.0.1/32");
    let e = errors(&with(
        "[forward_auth]\nenabled = true\ntrusted_proxies = []\n",
    ));
    assert_problem(&e, "forward_auth.trusted_proxies", "empty");
    // Each bad entry at its index, all at once.
    let e = errors(&with(
        "[forward_auth]\nenabled = true\ntrusted_proxies = [\"127.0.0.1/32\", \"10.0.0.0/33\", \"localhost\", \"10.0.0.0/\"]\n",
    ));
    assert_problem(&e, "forward_auth.trusted_proxies[1]", "CIDR range");
    assert_problem(&e, "forward_auth.trusted_proxies[2]", "\"localhost\"");
    assert_problem(&e, "forward_auth.trusted_proxies[3]", "not an address");
    assert_eq!(e.len(), 3, "{e}");
    // Paths: plain, and never over a step-up endpoint.
    for path in [
        "auth", "/", "/a/", "/a//b", "/a/../b", "/a?x", "/a b", "/a*",
    ] {
        let e = errors(&with(&format!("[forward_auth]\npath = {path:?}\n")));
        assert_problem(&e, "forward_auth.path", "plain absolute path");
    }
    for path in ["/.proofgate/start", "/.proofgate"] {
        let e = errors(&with(&format!("[forward_auth]\npath = {path:?}\n")));
        assert_problem(&e, "forward_auth.path", "step-up endpoint");
    }
    let config = Config::from_toml_str(&with(
        "[forward_auth]\npath = \"/_auth/check\"\n[step_up]\nprefix = \"/_auth/\"\n",
    ))
    .unwrap();
    assert_eq!(config.forward_auth.path, "/_auth/check");
    // A misspelt key is caught like any other.
    let e = errors(&with("[forward_auth]\ntrusted_proxy = []\n"));
    assert_eq!(e.errors()[0].kind, ErrorKind::Syntax);
    assert!(
        e.errors()[0]
            .message
            .contains("did you mean `trusted_proxies`?"),
        "{e}"
    );
}

#[test]
fn delegation_requirements_are_normalized_and_checked() {
    use proofgate_core::delegation::DelegationRequirement;
    use proofgate_core::policy::Requirement;
    let c = Config::from_toml_str(&with(
        r#"
[[listeners]]
address = "127.0.0.1:8443"
[listeners.tls]
cert = "cert.pem"
key = "key.pem"
client_ca = "ca.pem"

[[policies]]
name = "agents"
rule = "any_of"
on_failure = "deny"
requirements = [
  { types = ["email"] },
  { delegation = { principals = [" Corp.Example "], scopes = ["payments-read", "payments-read"], delegates = ["https://Agent.Example:443/bot/"], require_binding = true } },
]
"#,
    ))
    .unwrap();
    let agents = c.policies.iter().find(|p| p.name == "agents").unwrap();
    let mut want = DelegationRequirement::new(["corp.example"], ["payments-read"])
        .delegates(["https://agent.example/bot"])
        .require_binding(true);
    want.principals = vec!["corp.example".into()];
    assert_eq!(agents.requirements()[1], Requirement::delegation(want));
    assert!(agents.requirements()[0].delegation.is_none());

    let e = errors(&with(
        r#"
[[policies]]
name = "agents"
rule = "any_of"
requirements = [
  { types = ["email"], delegation = { principals = ["corp.example"], scopes = ["a"] } },
  { delegation = { principals = [], scopes = [] } },
  { delegation = { principals = ["localhost", "corp.example"], scopes = ["payments:read", "*", "Payments", "payments-"], delegates = ["http://agent.example/bot", "pkg:npm/agent@1.0.0"] } },
]
"#,
    ));
    let at = "policies[2].requirements";
    assert_problem(&e, &format!("{at}[0].delegation"), "takes no types");
    assert_problem(&e, &format!("{at}[1].delegation.principals"), "empty");
    assert_problem(&e, &format!("{at}[1].delegation.scopes"), "empty");
    assert_problem(
        &e,
        &format!("{at}[2].delegation.principals[0]"),
        "not a domain name",
    );
    for k in 0..4 {
        assert_problem(
            &e,
            &format!("{at}[2].delegation.scopes[{k}]"),
            "no wildcard or prefix",
        );
    }
    assert_problem(&e, &format!("{at}[2].delegation.delegates[0]"), "https URL");
    assert_problem(
        &e,
        &format!("{at}[2].delegation.delegates[1]"),
        "without version",
    );
    let e = errors(&with(
        r#"
[[policies]]
name = "agents"
rule = "any_of"
requirements = [{ delegation = { principals = ["corp.example"], scopes = ["a"], scope = ["b"] } }]
"#,
    ));
    assert!(e.to_string().contains("scope"), "{e}");
    // Binding required where nothing can bind.
    let e = errors(&with(
        r#"
[[policies]]
name = "agents"
rule = "any_of"
requirements = [{ delegation = { principals = ["corp.example"], scopes = ["a"], require_binding = true } }]
"#,
    ));
    assert_problem(
        &e,
        "policies[2].requirements[0].delegation.require_binding",
        "add client_ca",
    );
}

#[test]
fn mtls_listener_keys_are_checked() {
    let c = Config::from_toml_str(&with(
        r#"
[[listeners]]
address = "127.0.0.1:8443"
[listeners.tls]
cert = "cert.pem"
key = "key.pem"
client_ca = "ca.pem"
client_auth = "optional"
"#,
    ))
    .unwrap();
    let tls = c.listeners[1].tls.as_ref().unwrap();
    assert_eq!(
        tls.client_ca.as_deref(),
        Some(std::path::Path::new("ca.pem"))
    );
    assert!(!tls.client_auth_required);
    let e = errors(&with(
        r#"
[[listeners]]
address = "127.0.0.1:8443"
[listeners.tls]
cert = "cert.pem"
key = "key.pem"
client_auth = "sometimes"
"#,
    ));
    assert_problem(
        &e,
        "listeners[1].tls.client_auth",
        "\"required\" or \"optional\"",
    );
    assert_problem(&e, "listeners[1].tls.client_auth", "needs client_ca");
}

#[test]
fn a_delegation_only_policy_offers_no_step_up() {
    let text = r#"
default_policy = "agents"

[[listeners]]
address = "127.0.0.1:8080"

[[upstreams]]
name = "app"
addresses = ["127.0.0.1:3000"]

[[policies]]
name = "agents"
rule = "any_of"
requirements = [{ delegation = { principals = ["corp.example"], scopes = ["orders-read"] } }]
"#;
    let c = Config::from_toml_str(text).unwrap();
    assert!(!c.uses_step_up());
    let mixed = text.replace(
        "requirements = [",
        "requirements = [{ types = [\"email\"] }, ",
    );
    assert!(Config::from_toml_str(&mixed).unwrap().uses_step_up());
}

#[test]
fn cluster_settings_defaults_and_errors() {
    use proofgate_config::{Secret, Secrets};
    // Without the section: no cluster at all.
    assert!(Config::from_toml_str(BASE).unwrap().cluster.is_none());
    let c = Config::from_toml_str(&with("[cluster]\nredis_url = \"redis://redis:6379\""))
        .unwrap()
        .cluster
        .unwrap();
    assert_eq!(c.redis_url.as_deref(), Some("redis://redis:6379"));
    assert_eq!(c.key_prefix, "proofgate:");
    assert_eq!(c.connect_timeout, std::time::Duration::from_secs(1));
    assert_eq!(c.command_timeout, std::time::Duration::from_millis(50));
    // Credentials come from the environment and fill the URL in.
    let secrets = Secrets {
        redis_username: Some(Secret::new("gate")),
        redis_password: Some(Secret::new("s3cret pass")),
        ..Secrets::default()
    };
    let url = c.connection_url(&secrets).unwrap();
    assert_eq!(url.expose(), "redis://gate:s3cret%20pass@redis:6379");
    assert_eq!(format!("{url:?}"), "[redacted]");
    // A whole URL from the environment wins, and may stand in for the file's.
    let whole = Secrets {
        redis_url: Some(Secret::new("rediss://u:p@managed.example:6380")),
        ..Secrets::default()
    };
    assert_eq!(
        c.connection_url(&whole).unwrap().expose(),
        "rediss://u:p@managed.example:6380"
    );
    let bare = Config::from_toml_str(&with("[cluster]")).unwrap();
    assert!(bare
        .cluster
        .as_ref()
        .unwrap()
        .connection_url(&whole)
        .is_some());
    let missing = Secrets::default().require_for(&bare).unwrap_err();
    assert!(
        missing.to_string().contains("PROOFGATE_REDIS_URL"),
        "{missing}"
    );
    // (BASE steps up, so the API and cookie keys are still missing; the URL is not.)
    let rest = whole.require_for(&bare).unwrap_err().to_string();
    assert!(!rest.contains("PROOFGATE_REDIS_URL"), "{rest}");

    let e = errors(&with(
        "[cluster]\nredis_url = \"redis://:hunter2@redis:6379\"\nkey_prefix = \"\"\n\
         connect_timeout = \"1ms\"\ncommand_timeout = \"1m\"",
    ));
    assert_problem(&e, "cluster.redis_url", "PROOFGATE_REDIS_PASSWORD");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert_problem(&e, "cluster.key_prefix", "1 to 64 printable");
    assert_problem(&e, "cluster.connect_timeout", "too short");
    assert_problem(&e, "cluster.command_timeout", "too long");
    for (url, needle) in [
        ("http://redis:6379", "use redis:// or rediss://"),
        ("redis://redis:6379/x", "redis://host[:port][/db]"),
        ("redis://redis:6379?db=1", "no query"),
        ("not a url", "is not a URL"),
    ] {
        let e = errors(&with(&format!("[cluster]\nredis_url = \"{url}\"")));
        assert_problem(&e, "cluster.redis_url", needle);
    }
    // TLS and a database number are fine.
    Config::from_toml_str(&with(
        "[cluster]\nredis_url = \"rediss://redis.example:6380/2\"",
    ))
    .unwrap();
}

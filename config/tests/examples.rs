//! Every file in `config/examples/` parses and validates, and says what it claims to.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Method;
use proofgate_config::{Config, ConfigFile, FailMode};
use proofgate_core::path::normalize_path;
use proofgate_core::policy::{Combine, OnFailure, Rule};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn example(name: &str) -> Config {
    Config::load(examples_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The route name a raw request path gets, as the gateway computes it.
fn route_name(config: &Config, method: Method, raw_path: &str) -> String {
    let path = normalize_path(raw_path).unwrap();
    config.routes.route(&method, None, &path).name.to_string()
}

#[test]
fn every_example_validates_and_says_how_to_run_it() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let rel = format!(
            "config/examples/{}",
            path.file_name().unwrap().to_str().unwrap()
        );
        assert!(
            text.starts_with('#'),
            "{rel} must start with a comment saying how to run it"
        );
        assert!(
            text.contains(&format!("proofgate check -c {rel}"))
                && text.contains(&format!("proofgate run   -c {rel}")),
            "{rel} must show its `proofgate run -c` and `proofgate check -c` lines"
        );
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        // Zero trust everywhere: what matches no route is denied.
        assert_eq!(
            config.routes.default_policy().rule,
            Rule::Deny,
            "{rel}: default policy"
        );
        assert!(!config.listeners.is_empty() && !config.upstreams.is_empty());
        // Every route resolves to an upstream.
        for r in config.routes.routes() {
            let upstream = r.upstream.as_deref().or(config.routes.default_upstream());
            assert!(
                upstream.is_some(),
                "{rel}: route {} has no upstream",
                r.name
            );
        }
    }
    assert!(
        seen >= 3,
        "expected at least minimal, zero-trust and dev examples"
    );
}

#[test]
fn minimal_example() {
    let c = example("minimal.toml");
    assert_eq!(c.upstreams.len(), 1);
    assert_eq!(c.upstreams[0].addresses, ["127.0.0.1:3000"]);
    assert_eq!(c.routes.routes().len(), 1);
    assert_eq!(route_name(&c, Method::GET, "/anything"), "app");
    assert_eq!(c.routes.default_upstream(), Some("app"));
    // Defaults.
    assert_eq!(c.issuer.api_base, "https://api.proof.holdings");
    assert_eq!(
        c.issuer.jwks_url,
        "https://api.proof.holdings/.well-known/jwks.json"
    );
    assert_eq!(c.issuer.jwks_refresh, Duration::from_secs(86_400));
    assert_eq!(c.issuer.revocation_refresh, Duration::from_secs(300));
    assert_eq!(c.issuer.fail_mode, FailMode::Closed);
    assert!(!c.server.work_stealing);
    assert!(c.admin.is_none());
    assert!(!c.uses_step_up());
}

#[test]
fn zero_trust_example() {
    let c = example("zero-trust.toml");

    // /admin/** by an email allowlist or a domain proof of corp.example.
    let staff = c.policy("staff").unwrap();
    let Rule::Require {
        combine,
        requirements,
    } = &staff.rule
    else {
        panic!("staff is not a requirement policy");
    };
    assert_eq!(*combine, Combine::AnyOf);
    assert_eq!(staff.on_failure, OnFailure::StepUp);
    assert_eq!(requirements[0].types, ["email"]);
    let emails: Vec<&str> = requirements[0]
        .identifiers
        .iter()
        .map(|i| i.normalized.as_str())
        .collect();
    assert!(emails.contains(&"alice@corp.example"));
    assert_eq!(
        requirements[0].identifiers[0].hash,
        proofgate_core::identifier::identifier_hash("email", "alice@corp.example")
    );
    assert_eq!(requirements[1].types, ["domain"]);
    assert_eq!(requirements[1].identifiers[0].normalized, "corp.example");

    // /payouts/** by a phone proof from the last ten minutes, with step-up.
    let phone = c.policy("fresh-phone").unwrap();
    assert_eq!(phone.on_failure, OnFailure::StepUp);
    assert_eq!(phone.requirements()[0].types, ["phone"]);
    assert_eq!(
        phone.requirements()[0].max_age,
        Some(Duration::from_secs(600))
    );

    // Routes, path tricks included.
    for raw in [
        "/admin",
        "/admin/users",
        "/ADMIN/x",
        "//admin",
        "/public/../admin",
        "/%2e%2e/admin",
    ] {
        assert_eq!(route_name(&c, Method::GET, raw), "admin", "{raw}");
    }
    assert_eq!(route_name(&c, Method::POST, "/payouts/42"), "payouts");
    assert_eq!(route_name(&c, Method::DELETE, "/payouts/42"), "default");
    assert_eq!(route_name(&c, Method::GET, "/public/logo.png"), "public");
    assert_eq!(route_name(&c, Method::GET, "/elsewhere"), "default");
    let payouts = c.routes.route(&Method::POST, None, "/payouts/1");
    assert_eq!(payouts.upstream, Some("payments"));
    assert_eq!(
        c.routes.route(&Method::GET, None, "/admin").upstream,
        Some("app")
    );
    assert_eq!(
        c.routes.route(&Method::GET, None, "/x").policy.rule,
        Rule::Deny
    );

    // The rest of the file.
    assert_eq!(c.listeners.len(), 2);
    assert!(c.listeners[1].tls.is_some());
    assert_eq!(c.admin.as_ref().unwrap().address.port(), 9091);
    assert_eq!(c.upstream("app").unwrap().addresses.len(), 2);
    assert_eq!(
        c.upstream("payments").unwrap().tls.as_ref().unwrap().sni,
        "payments.internal"
    );
    assert!(c.identity_headers.strip_token);
    assert!(c.step_up.global_per_minute < 100);
    assert!(c.step_up.cookie_secure);
    assert_eq!(c.step_up.cookie_name, "proof_token");
    assert!(c.logging.json);
    assert!(c.uses_step_up());

    // The core configurations derived from it.
    assert_eq!(c.keys_config().max_staleness, Duration::from_secs(86_400));
    assert!(!c.revocation_config().fail_open);
    assert_eq!(
        c.revocation_config().max_staleness,
        Duration::from_secs(3600)
    );
    assert_eq!(c.verifier_config().issuer, "proof.holdings");
}

#[test]
fn dev_example_points_at_a_loopback_sandbox() {
    let c = example("dev.toml");
    assert!(c.issuer.api_base.starts_with("http://127.0.0.1:"));
    assert!(c.issuer.jwks_url.starts_with(&c.issuer.api_base));
    assert!(!c.step_up.cookie_secure);
    assert!(c.listeners.iter().all(|l| l.address.ip().is_loopback()));
    assert_eq!(route_name(&c, Method::GET, "/me"), "me");
}

#[test]
fn dev_example_takes_the_sandbox_port_from_the_cli() {
    // What `proofgate dev` does: parse, set the sandbox's real address, validate.
    let mut file = ConfigFile::load(examples_dir().join("dev.toml")).unwrap();
    file.issuer.api_base = Some("http://127.0.0.1:45123".into());
    file.upstreams[0].addresses = vec!["127.0.0.1:45124".into()];
    let c = file.validate().unwrap();
    assert_eq!(
        c.issuer.jwks_url,
        "http://127.0.0.1:45123/.well-known/jwks.json"
    );
    assert_eq!(
        c.issuer.revocation_url,
        "http://127.0.0.1:45123/api/v1/proofs/revoked"
    );
    assert_eq!(
        c.revocation_config().issuer_origin,
        "http://127.0.0.1:45123"
    );
    assert_eq!(c.upstreams[0].addresses, ["127.0.0.1:45124"]);
}

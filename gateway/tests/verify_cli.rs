//! `proofgate verify`, run as a user runs it, against a real sandbox: a request decided as the
//! gateway decides it (`--path`, `--method`, `--host`), claims shown for tokens it refuses
//! (marked unverified, with the reason), times in RFC 3339, and the token never echoed.

mod common;

use std::process::Command;

use proofgate_core::claims::decode_unverified;
use proofgate_core::testing::{b64, claims, now, rfc3339, SigningKey};
use proofgate_sandbox::{Sandbox, SandboxConfig, SandboxHandle};

/// Routes beyond `common::config_text`'s (public, admin → staff, payouts → phone and deny,
/// default deny-all): one only for a host, one only for POST.
const EXTRA: &str = r#"
[[routes]]
name = "app-only"
path = "/app/**"
hosts = ["app.example"]
policy = "public"

[[routes]]
name = "submit"
path = "/submit"
methods = ["POST"]
policy = "staff"
"#;

struct Run {
    code: i32,
    out: String,
    err: String,
}

/// `proofgate verify TOKEN -c CONFIG ARGS…`, off the async runtime; asserts the token appears
/// in neither stream, whatever the outcome.
async fn verify(token: &str, config: &str, args: &[&str]) -> Run {
    let mut argv = vec![
        "verify".to_string(),
        token.to_string(),
        "-c".into(),
        config.into(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let run = tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_proofgate"))
            .args(&argv)
            .env_remove("PROOF_API_KEY")
            .env_remove("RUST_LOG")
            .output()
            .expect("run proofgate");
        Run {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap();
    assert!(
        !run.out.contains(token) && !run.err.contains(token),
        "the token is never echoed (args {args:?})"
    );
    // Nor any of its segments (a header or payload printed as received).
    for segment in token.split('.').filter(|s| s.len() > 16) {
        assert!(!run.out.contains(segment) && !run.err.contains(segment));
    }
    run
}

async fn sandbox() -> SandboxHandle {
    Sandbox::start_with("127.0.0.1:0", SandboxConfig::default())
        .await
        .unwrap()
}

/// The test stack's configuration file (nothing listens: only `verify` reads it).
fn config_file(dir: &tempfile::TempDir, sandbox: &SandboxHandle) -> String {
    let o = common::Options {
        extra: EXTRA,
        ..Default::default()
    };
    let text = common::config_text(
        common::free_port(),
        common::free_port(),
        sandbox.base_url(),
        "127.0.0.1:9".parse().unwrap(),
        &o,
    );
    let path = dir.path().join("proofgate.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The line of `out` that starts with `prefix`.
fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_is_decided_as_the_gateway_decides() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &sandbox);
    let base = sandbox.base_url().to_string();
    let (alice, _) = common::mint(&base, "email", "email", "alice@corp.example").await;
    let (bob, _) = common::mint(&base, "email", "email", "bob@else.example").await;

    // A public route, and a route whose policy the token meets: allowed, exit 0.
    for path in ["/public/x", "/admin/users"] {
        let r = verify(&alice, &config, &["--path", path]).await;
        assert_eq!(r.code, 0, "{path}: {}{}", r.out, r.err);
        assert!(r.out.contains("claims: verified"), "{}", r.out);
        assert_eq!(line(&r.out, "decision: "), "decision: allow");
        assert!(!r.out.contains("reason: "), "{}", r.out);
        assert!(
            line(&r.out, "request: ").contains("token in Authorization: Bearer"),
            "{}",
            r.out
        );
    }
    let r = verify(&alice, &config, &["--path", "/admin/users"]).await;
    assert_eq!(line(&r.out, "route: "), "route: admin");
    assert!(
        line(&r.out, "policy: ").starts_with("policy: staff (any_of"),
        "{}",
        r.out
    );

    // The same kind of token for someone else: the staff route steps up, policy_unmet.
    let r = verify(&bob, &config, &["--path", "/admin/users"]).await;
    assert_eq!(r.code, 1, "{}{}", r.out, r.err);
    assert!(r.out.contains("claims: verified"), "{}", r.out);
    assert_eq!(line(&r.out, "route: "), "route: admin");
    assert_eq!(line(&r.out, "decision: "), "decision: step_up");
    assert!(line(&r.out, "reason: ").starts_with("reason: policy_unmet — "));
    assert!(line(&r.out, "answer: ").starts_with("answer: 401"));
    assert!(
        line(&r.out, "step-up: ").contains("start?policy=staff"),
        "{}",
        r.out
    );
    assert!(r.out.contains("requires any one of:"), "{}", r.out);
    assert!(
        r.out.contains(
            "1. type email, identifier alice@corp.example: not met — its identifier is none of these"
        ),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("2. type domain, identifier corp.example: not met — its type is \"email\""),
        "{}",
        r.out
    );
    assert!(
        r.err.contains("would refuse") && r.err.contains("step_up (policy_unmet)"),
        "{}",
        r.err
    );

    // A policy that denies on failure: deny, 403.
    let r = verify(&alice, &config, &["--path", "/payouts/1"]).await;
    assert_eq!(r.code, 1);
    assert_eq!(line(&r.out, "decision: "), "decision: deny");
    assert!(line(&r.out, "reason: ").starts_with("reason: policy_unmet"));
    assert!(line(&r.out, "answer: ").starts_with("answer: 403"));
    assert!(
        r.out
            .contains("verified within 10m: not met — its type is \"email\""),
        "{}",
        r.out
    );

    // No route: the default policy.
    let r = verify(&alice, &config, &["--path", "/nowhere"]).await;
    assert_eq!(r.code, 1);
    assert_eq!(line(&r.out, "route: "), "route: default");
    assert!(line(&r.out, "policy: ").starts_with("policy: deny-all (deny"));
    assert!(line(&r.out, "reason: ").starts_with("reason: route_denied"));

    // --host and --method choose the route as the gateway does.
    let r = verify(&bob, &config, &["--path", "/app/home"]).await;
    assert_eq!((r.code, line(&r.out, "route: ")), (1, "route: default"));
    let r = verify(
        &bob,
        &config,
        &["--path", "/app/home", "--host", "app.example"],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert_eq!(line(&r.out, "route: "), "route: app-only");
    // `-`: the token from standard input (not in the process list), the same answer.
    let stdin = {
        let (config, alice) = (config.clone(), alice.clone());
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = Command::new(env!("CARGO_BIN_EXE_proofgate"))
                .args([
                    "verify", "-", "-c", &config, "--path", "/submit", "--method", "POST",
                ])
                .env_remove("PROOF_API_KEY")
                .env_remove("RUST_LOG")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            writeln!(child.stdin.take().unwrap(), "{alice}").unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    };
    let out = String::from_utf8_lossy(&stdin.stdout);
    assert_eq!(stdin.status.code(), Some(0), "{out}");
    assert_eq!(line(&out, "route: "), "route: submit");
    assert!(!out.contains(&alice) && !String::from_utf8_lossy(&stdin.stderr).contains(&alice));
    let r = verify(&alice, &config, &["--path", "/submit"]).await;
    assert_eq!((r.code, line(&r.out, "route: ")), (1, "route: default"));
    let r = verify(&alice, &config, &["--path", "/submit", "--method", "POST"]).await;
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert_eq!(line(&r.out, "route: "), "route: submit");
    assert!(line(&r.out, "request: ").starts_with("request: POST /submit  (Host: localhost"));

    // A path the gateway refuses before routing.
    let r = verify(&alice, &config, &["--path", "/a/%2e%2e/%2Fadmin"]).await;
    assert_eq!(r.code, 1);
    assert_eq!(line(&r.out, "route: "), "route: none");
    assert!(line(&r.out, "reason: ").starts_with("reason: invalid_path — "));

    // A token in the query of --path is not echoed either.
    let r = verify(
        &alice,
        &config,
        &["--path", &format!("/public/x?a=1&token={bob}")],
    )
    .await;
    assert_eq!(r.code, 0);
    assert!(!r.out.contains(&bob), "{}", r.out);
    assert!(line(&r.out, "request: ").starts_with("request: GET /public/x?a=1  "));

    // Usage mistakes.
    let r = verify(&alice, &config, &["--method", "POST"]).await;
    assert_eq!(r.code, 2, "--method needs --path: {}", r.err);
    let r = verify(&alice, &config, &["--path", "/x", "--method", "GE T"]).await;
    assert_eq!(r.code, 1);
    assert!(r.err.contains("--method"), "{}", r.err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_refused_tokens_are_shown_unverified_with_times() {
    let sandbox = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&dir, &sandbox);
    let base = sandbox.base_url().to_string();

    // A valid token: times as the number, RFC 3339 UTC and relative.
    let (valid, id) = common::mint(&base, "email", "email", "alice@corp.example").await;
    let exp = decode_unverified(&valid).unwrap().payload["exp"]
        .as_i64()
        .unwrap();
    let r = verify(&valid, &config, &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(
        r.out.contains(&id) && r.out.contains("verdict: valid"),
        "{}",
        r.out
    );
    let exp_line = line(&r.out, "  exp ");
    let exp_rfc3339 = rfc3339(exp).replace(".000Z", "Z");
    assert!(
        exp_line.contains(&format!("{exp}  {exp_rfc3339}  expires in ")),
        "{exp_line}"
    );
    assert!(line(&r.out, "times (now ").ends_with("Z):"), "{}", r.out);
    assert!(line(&r.out, "  iat ").contains(" ago"), "{}", r.out);

    // Expired three hours ago, signed by the issuer's real key.
    let t = now();
    let mut expired = claims("proof-expired-1", "email", "email", "alice@corp.example");
    expired.iat = Some(t - 4 * 3600);
    expired.exp = Some(t - 3 * 3600);
    let expired = sandbox.signing_key().sign(&expired);
    let r = verify(&expired, &config, &[]).await;
    assert_eq!(r.code, 1);
    assert!(r.err.contains("verdict: expired"), "{}", r.err);
    assert!(
        r.out
            .contains("claims: UNVERIFIED — expired: The proof token has expired."),
        "{}",
        r.out
    );
    assert!(r.out.contains("\"sub\": \"proof-expired-1\""), "{}", r.out);
    let exp_rfc3339 = rfc3339(t - 3 * 3600).replace(".000Z", "Z");
    let exp_line = line(&r.out, "  exp ");
    assert!(
        exp_line.contains(&format!("{}  {exp_rfc3339}  expired 3h", t - 3 * 3600))
            && exp_line.ends_with(" ago"),
        "{exp_line}"
    );
    assert!(line(&r.out, "header: ").contains("\"alg\":\"RS256\""));
    // Refused on a route that needs a proof, with the token's own reason; a public route
    // lets the request through whatever the token.
    let r = verify(&expired, &config, &["--path", "/admin"]).await;
    assert_eq!(r.code, 1);
    assert_eq!(line(&r.out, "decision: "), "decision: step_up");
    assert!(line(&r.out, "reason: ").starts_with("reason: expired"));
    let r = verify(&expired, &config, &["--path", "/public/x"]).await;
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("claims: UNVERIFIED — expired"), "{}", r.out);

    // Badly signed: another key under the issuer's kid, and the issuer's own token with its
    // claims edited.
    let forger = SigningKey::rsa(sandbox.signing_kid());
    let forged = forger.sign(&claims(
        "proof-forged-1",
        "email",
        "email",
        "alice@corp.example",
    ));
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let mut payload = decode_unverified(&valid).unwrap().payload;
    payload.insert("sub".into(), "proof-edited-1".into());
    parts[1] = b64(serde_json::to_vec(&payload).unwrap());
    let edited = parts.join(".");
    for (token, sub) in [(&forged, "proof-forged-1"), (&edited, "proof-edited-1")] {
        let r = verify(token, &config, &[]).await;
        assert_eq!(r.code, 1);
        assert!(
            r.out.contains("claims: UNVERIFIED — invalid_signature: "),
            "{}",
            r.out
        );
        assert!(r.out.contains(&format!("\"sub\": \"{sub}\"")), "{}", r.out);
        assert!(r.err.contains("verdict: invalid_signature"), "{}", r.err);
        assert!(line(&r.out, "  exp ").contains("expires in "), "{}", r.out);
    }

    // Signed by a key the issuer never published.
    let stranger = SigningKey::rsa("stranger-1");
    let r = verify(
        &stranger.sign(&claims("proof-stranger", "email", "email", "a@b.example")),
        &config,
        &[],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(
        r.out.contains("claims: UNVERIFIED — unknown_key: "),
        "{}",
        r.out
    );

    // Revoked: the signature holds, the revocation check does not.
    sandbox.revoke(&id, "fraud");
    let r = verify(&valid, &config, &[]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.out.contains("claims: UNVERIFIED — revoked: "),
        "{}",
        r.out
    );
    assert!(r.out.contains(&id), "{}", r.out);

    // An issuer that cannot be reached: warned about, the claims still shown, and the verdict
    // the gateway would give (no keys: jwks_stale).
    let nowhere = format!("http://127.0.0.1:{}", common::free_port());
    let r = verify(&valid, &config, &["--issuer", &nowhere]).await;
    assert_eq!(r.code, 1);
    assert!(r.err.contains("warning: the JWKS"), "{}", r.err);
    assert!(
        r.out.contains("claims: UNVERIFIED — jwks_stale: "),
        "{}",
        r.out
    );
    assert!(r.out.contains(&id), "{}", r.out);
    let r = verify(
        &valid,
        &config,
        &["--issuer", &nowhere, "--path", "/admin/x"],
    )
    .await;
    assert_eq!(line(&r.out, "decision: "), "decision: deny");
    assert!(
        line(&r.out, "answer: ").starts_with("answer: 503"),
        "{}",
        r.out
    );

    // Not a compact JWS: nothing to show.
    let r = verify("not.a.token", &config, &[]).await;
    assert_eq!(r.code, 1);
    assert!(r.out.contains("claims: not shown"), "{}", r.out);
    assert!(r.err.contains("verdict: malformed"), "{}", r.err);

    // Signed by a key the issuer has since withdrawn (still served, in `proof_tombstones`).
    let (old, old_id) = common::mint(&base, "email", "email", "bob@corp.example").await;
    let old_kid = sandbox.signing_kid();
    sandbox.rotate_signing_key();
    assert!(sandbox.withdraw_key(&old_kid));
    let r = verify(&old, &config, &[]).await;
    assert_eq!(r.code, 1);
    assert!(r.err.contains("verdict: proof_key_revoked"), "{}", r.err);
    assert!(
        r.out.contains(
            "claims: UNVERIFIED — proof_key_revoked: \
             The proof token was signed by a key the issuer has withdrawn."
        ),
        "{}",
        r.out
    );
    assert!(r.out.contains(&old_id), "{}", r.out);
}

/// The decision `verify --path` prints is the one a running gateway makes on the same file,
/// token and path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_agrees_with_a_running_gateway() {
    let s = common::stack(common::Options::default()).await;
    let config = s.config_path.to_str().unwrap().to_owned();
    let (alice, _) = s.token("email", "email", "alice@corp.example").await;
    let (phone, _) = s.token("phone", "sms", "+14155550100").await;
    for token in [&alice, &phone] {
        for path in ["/public/x", "/admin/a", "/payouts/1", "/nowhere"] {
            let r = s.get_bearer(path, token).await;
            let status = r.status().as_u16();
            let (_, body, _) = common::problem(r).await;
            let v = verify(token, &config, &["--path", path]).await;
            let want = if status == 200 { 0 } else { 1 };
            assert_eq!(v.code, want, "{path}: gateway {status}\n{}{}", v.out, v.err);
            if status == 200 {
                assert_eq!(line(&v.out, "decision: "), "decision: allow", "{path}");
            } else {
                let reason = body["reason"].as_str().unwrap();
                assert!(
                    line(&v.out, "reason: ").starts_with(&format!("reason: {reason} — ")),
                    "{path}: gateway said {reason}\n{}",
                    v.out
                );
                assert_eq!(
                    line(&v.out, "answer: ").split(' ').nth(1),
                    Some(&*status.to_string()),
                    "{path}"
                );
            }
        }
    }
    s.shutdown().await;
}

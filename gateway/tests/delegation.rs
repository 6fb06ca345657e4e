//! Delegations through the real `proofgate` binary on loopback: the delegation attack table
//! (`proofgate_core::testing::delegation_cases`, the same one the tower layer runs) against an
//! issuer on loopback whose JWKS carries key purposes, windows and tombstones
//! (`proofgate_core::testing::DelegationIssuer`, served by `IssuerServer`), and the binding of a
//! delegation to the delegate the gateway resolves itself: the URI SAN of a client certificate
//! verified on a TLS listener with `client_ca` (fixtures in `tests/data/mtls/`).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{echo_upstream, free_port, Process};
use proofgate_core::testing::{
    delegation_cases, DelegationIssuer, DelegationToken, IssuerServer, DELEGATION_CONFIG,
    DELEGATION_STATUS_LIST,
};
use serde_json::{json, Value};

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

struct Rig {
    issuer: DelegationIssuer,
    server: IssuerServer,
    plain: String,
    /// A TLS listener with `client_auth = "optional"`.
    optional: u16,
    /// A TLS listener with a client certificate required.
    required: u16,
    admin: String,
    http: reqwest::Client,
    log: PathBuf,
    config: PathBuf,
    _process: Process,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let server = IssuerServer::start(json!({"keys": []})).await;
    let issuer = DelegationIssuer::new(&server.base_url());
    server.set_jwks(issuer.jwks());
    server.set_status_list(DELEGATION_STATUS_LIST, issuer.status_list());
    let upstream = echo_upstream().await;
    let ws = ws_echo().await;
    let (plain, optional, required, admin) = (free_port(), free_port(), free_port(), free_port());
    let tls = |port: u16, auth: &str| {
        format!(
            r#"
[[listeners]]
address = "127.0.0.1:{port}"
[listeners.tls]
cert = "{cert}"
key = "{key}"
client_ca = "{ca}"
{auth}
"#,
            cert = data("tls/cert.pem").display(),
            key = data("tls/key.pem").display(),
            ca = data("mtls/client-ca.pem").display(),
        )
    };
    let text = format!(
        r#"
default_policy = "deny-all"
default_upstream = "app"

[[listeners]]
address = "127.0.0.1:{plain}"
{optional_listener}
{required_listener}

[admin]
address = "127.0.0.1:{admin}"

[server]
threads = 1

[[upstreams]]
name = "app"
addresses = ["{upstream}"]

[[upstreams]]
name = "ws"
addresses = ["{ws}"]

[[routes]]
name = "agents-ws"
path = "/ws/**"
policy = "agents"
upstream = "ws"

[issuer]
api_base = "{base}"
status_list_url = "{status}"
revocation_refresh = "10s"
unknown_kid_cooldown = "1s"

[identity_headers]
strip_token = true

[step_up]
cookie_secure = false

[logging]
level = "debug"

[forward_auth]
enabled = true
trusted_proxies = ["127.0.0.1/32"]

[[policies]]
name = "deny-all"
rule = "deny"
{DELEGATION_CONFIG}
"#,
        optional_listener = tls(optional, r#"client_auth = "optional""#),
        required_listener = tls(required, ""),
        base = server.base_url(),
        status = issuer.status_list_url(),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proofgate.toml");
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("proofgate.log");
    let process = Process::proofgate(
        &config,
        &[],
        &[
            ("PROOF_API_KEY", common::API_KEY),
            ("PROOFGATE_COOKIE_KEY", common::COOKIE_KEY),
        ],
        &log,
    );
    let rig = Rig {
        issuer,
        server,
        plain: format!("http://127.0.0.1:{plain}"),
        optional,
        required,
        admin: format!("http://127.0.0.1:{admin}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        log,
        config: config.clone(),
        _process: process,
        _dir: dir,
    };
    let started = Instant::now();
    loop {
        let ready = rig.http.get(format!("{}/readyz", rig.admin)).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never ready:\n{}",
            rig.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rig
}

impl Rig {
    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An HTTPS client trusting the test server CA, presenting the client certificate `who`
    /// (`agent`, `other`, `rogue`) or none.
    fn https(&self, who: Option<&str>) -> reqwest::Client {
        let ca = std::fs::read(data("tls/ca.pem")).unwrap();
        let mut b = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .http1_only()
            .timeout(Duration::from_secs(10));
        if let Some(who) = who {
            let mut pem = std::fs::read(data(&format!("mtls/{who}.pem"))).unwrap();
            pem.extend(std::fs::read(data(&format!("mtls/{who}-key.pem"))).unwrap());
            b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        b.build().unwrap()
    }
}

/// A WebSocket upstream that echoes messages.
async fn ws_echo() -> std::net::SocketAddr {
    use futures_util::{SinkExt, StreamExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Status and problem reason, or `bound=<x-proof-delegation-bound>` for an allowed request.
async fn outcome(r: reqwest::Response) -> String {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or_default();
    match status {
        200 => {
            assert_eq!(v["authorization_forwarded"], false, "{v}");
            format!(
                "bound={}",
                v["identity"]["x-proof-delegation-bound"]
                    .as_str()
                    .unwrap_or("-")
            )
        }
        _ => format!("{status} {}", v["reason"].as_str().unwrap_or("-")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attack_table_through_the_gateway() {
    let rig = rig().await;
    let mut failures = Vec::new();
    let mut tokens = Vec::new();
    for case in delegation_cases() {
        let headers = case.headers(&rig.issuer);
        tokens.extend(
            headers
                .iter()
                .filter(|(k, _)| *k == "authorization" || *k == "x-proof-delegation")
                .filter_map(|(_, v)| v.to_str().ok()?.rsplit(' ').next().map(str::to_owned)),
        );
        let r = rig
            .http
            .get(format!("{}{}", rig.plain, case.path))
            .headers(headers)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let h = r.headers().clone();
        let body = r.bytes().await.unwrap();
        if let Err(e) = case.check(status, &h, &body) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // No hosted verification is offered for a policy only an agent's delegation meets.
    let r = rig
        .http
        .get(format!(
            "{}/.proofgate/start?policy=agents&return_to=%2Fagents%2Fx",
            rig.plain
        ))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await, "404 unknown_policy");

    // Every refusal counted by its reason, like proofs'.
    let metrics = rig
        .http
        .get(format!("{}/metrics", rig.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for reason in [
        "wrong_key_purpose",
        "scope_not_granted",
        "key_revoked",
        "delegation_revoked",
        "delegation_status_unavailable",
        "delegate_unbound",
    ] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("proofgate_decisions_total")
                    && l.contains(&format!("reason=\"{reason}\""))
                    && !l.ends_with(" 0")
            })
            .unwrap_or_else(|| panic!("no {reason} count"));
        assert!(line.contains("decision=\"deny\""), "{line}");
    }
    // No token, nor any of its segments, in any log line (debug level).
    let logs = rig.logs();
    assert!(!logs.is_empty());
    for token in tokens.iter().filter(|t| t.len() > 40) {
        let signature = token.rsplit('.').next().unwrap_or(token);
        assert!(
            !logs.contains(token.as_str()) && (signature.len() < 20 || !logs.contains(signature)),
            "a token in the log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_binds_a_delegation_to_the_client_certificate() {
    let rig = rig().await;
    let token = rig.issuer.mint(DelegationToken::Valid);
    let other = rig.issuer.mint(DelegationToken::OtherDelegate);
    let get = |client: &reqwest::Client, port: u16, path: &str, token: &str| {
        client
            .get(format!("https://localhost:{port}{path}"))
            .header("authorization", format!("Delegation {token}"))
            .send()
    };
    let agent = rig.https(Some("agent"));
    let other_client = rig.https(Some("other"));
    let anonymous = rig.https(None);

    // The copied token without a certificate: allowed where binding is not required, but the
    // upstream is told it is unbound; refused where it is.
    let r = get(&anonymous, rig.optional, "/agents/x", &token)
        .await
        .unwrap();
    assert_eq!(outcome(r).await, "bound=false");
    let r = get(&anonymous, rig.optional, "/bound/x", &token)
        .await
        .unwrap();
    assert_eq!(outcome(r).await, "401 delegate_unbound");
    // Presented by the delegate itself (its certificate's URI SAN, canonicalized, is the
    // token's delegate): bound.
    let r = get(&agent, rig.optional, "/agents/x", &token)
        .await
        .unwrap();
    assert_eq!(outcome(r).await, "bound=true");
    let r = get(&agent, rig.optional, "/bound/x", &token).await.unwrap();
    assert_eq!(outcome(r).await, "bound=true");
    let r = get(&agent, rig.required, "/bound/x", &token).await.unwrap();
    assert_eq!(outcome(r).await, "bound=true");
    // The agent's token copied by another certificate holder: refused.
    let r = get(&other_client, rig.optional, "/agents/x", &token)
        .await
        .unwrap();
    assert_eq!(outcome(r).await, "403 delegate_mismatch");
    let r = get(&other_client, rig.required, "/bound/x", &token)
        .await
        .unwrap();
    assert_eq!(outcome(r).await, "403 delegate_mismatch");
    // Each delegate with its own token.
    let r = get(&other_client, rig.required, "/bound/x", &other)
        .await
        .unwrap();
    assert_eq!(outcome(r).await, "bound=true");
    // A header cannot claim a binding.
    let r = anonymous
        .get(format!("https://localhost:{}/bound/x", rig.optional))
        .header("authorization", format!("Delegation {token}"))
        .header("x-proof-delegation-bound", "true")
        .header("x-proof-delegation-delegate", "https://agent.example/bot")
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await, "401 delegate_unbound");

    // Handshakes the listener refuses: no certificate where one is required, a certificate from
    // a CA it does not trust anywhere.
    assert!(get(&anonymous, rig.required, "/bound/x", &token)
        .await
        .is_err());
    let rogue = rig.https(Some("rogue"));
    assert!(get(&rogue, rig.optional, "/agents/x", &token)
        .await
        .is_err());
    assert!(get(&rogue, rig.required, "/agents/x", &token)
        .await
        .is_err());
    // The plain listener never binds.
    let r = rig
        .http
        .get(format!("{}/bound/x", rig.plain))
        .header("authorization", format!("Delegation {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await, "401 delegate_unbound");
}

/// Another proxy asking through forward auth: the delegation is decided alike and its identity
/// headers are in the answer, always unbound (the proxy terminated the connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_answers_delegations_unbound() {
    let rig = rig().await;
    let ask = |path: &'static str, token: String| {
        rig.http
            .get(format!("{}/.proofgate/auth", rig.plain))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", path)
            .header("x-forwarded-host", "app.example")
            .header("x-forwarded-proto", "https")
            .header("authorization", format!("Delegation {token}"))
            .send()
    };
    let r = ask("/agents/x", rig.issuer.mint(DelegationToken::Valid))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-proof-delegation-principal"], "corp.example");
    assert_eq!(
        r.headers()["x-proof-delegation-scopes"],
        "payments-read payments-write"
    );
    assert_eq!(r.headers()["x-proof-delegation-bound"], "false");
    let r = ask("/bound/x", rig.issuer.mint(DelegationToken::Valid))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = ask("/agents/x", rig.issuer.mint(DelegationToken::MissingScope))
        .await
        .unwrap();
    assert_eq!(outcome(r).await, "403 scope_not_granted");
}

/// End to end with the real sandbox as issuer: a delegation minted through the project's own
/// client from a domain control proof, presented to the real gateway (allowed, unbound), then
/// revoked at the issuer and refused once the status list is refetched; a revoked control proof
/// takes its delegations with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_delegation_is_allowed_then_refused_once_revoked() {
    use proofgate_core::client::{CreateDelegation, CreateVerification, Delegate, ProofApiClient};
    use proofgate_sandbox::{Sandbox, SandboxConfig};

    let mut sc = SandboxConfig::default();
    sc.rate_limit_per_minute = None;
    // The status list says to refetch it every second: a revocation shows within seconds.
    sc.status_list_ttl = 1;
    let sandbox = Sandbox::start_with("127.0.0.1:0", sc).await.unwrap();
    let upstream = echo_upstream().await;
    let (proxy, admin) = (free_port(), free_port());
    let options = common::Options {
        extra: r#"
[[policies]]
name = "payments-agents"
rule = "any_of"
on_failure = "deny"
requirements = [{ delegation = { principals = ["corp.example"], scopes = ["payments-read"] } }]

[[routes]]
name = "agents"
path = "/agents/**"
policy = "payments-agents"
"#,
        ..common::Options::default()
    };
    let text = common::config_text(proxy, admin, sandbox.base_url(), upstream, &options);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proofgate.toml");
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("proofgate.log");
    let secret = sandbox.webhook_secret().to_string();
    let _process = Process::proofgate(
        &config,
        &[],
        &[
            ("PROOF_API_KEY", common::API_KEY),
            ("PROOFGATE_COOKIE_KEY", common::COOKIE_KEY),
            ("PROOF_WEBHOOK_SECRET", secret.as_str()),
        ],
        &log,
    );
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http
        .get(format!("http://127.0.0.1:{admin}/readyz"))
        .send()
        .await
        .map_or(true, |r| r.status() != 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never ready:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // corp.example's owner: a domain control proof, then delegations through the client.
    let api = ProofApiClient::new(sandbox.base_url(), common::API_KEY).unwrap();
    let created = api
        .create_verification(&CreateVerification::new("domain", "dns", "corp.example"))
        .await
        .unwrap();
    let verified = api.test_verify(&created.id).await.unwrap();
    let control = verified.public_proof_id.clone().expect("ph_ctl_ handle");
    let delegate = |scope: &str| CreateDelegation {
        control_proof: control.clone(),
        delegate: Delegate::url("https://Agent.Example/bot/"),
        scope: vec![scope.to_owned()],
        expires_in: None,
    };
    let reader = api
        .create_delegation(&delegate("payments-read"))
        .await
        .unwrap();
    let writer = api
        .create_delegation(&delegate("payments-write"))
        .await
        .unwrap();
    let token = reader.token.clone().expect("a token");
    let handle = reader.delegation_id.clone().expect("a ph_dlg_ handle");

    let call = |token: String| {
        let http = http.clone();
        async move {
            http.get(format!("http://127.0.0.1:{proxy}/agents/orders"))
                .header("authorization", format!("Delegation {token}"))
                .send()
                .await
                .unwrap()
        }
    };
    // Allowed: the upstream gets who delegated what, and that it is unbound.
    let r = call(token.clone()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let id = &v["identity"];
    assert_eq!(id["x-proof-delegation-principal"], "corp.example");
    assert_eq!(
        id["x-proof-delegation-delegate"],
        "https://agent.example/bot"
    );
    assert_eq!(id["x-proof-delegation-scopes"], "payments-read");
    assert_eq!(id["x-proof-delegation-handle"], handle.as_str());
    assert_eq!(id["x-proof-delegation-bound"], "false");
    assert_eq!(v["authorization_forwarded"], false);
    // A delegation of another scope, and a proof token in the delegation carrier.
    let r = call(writer.token.clone().unwrap()).await;
    assert_eq!(outcome(r).await, "403 scope_not_granted");
    let proof = verified.token().unwrap().to_owned();
    assert_eq!(outcome(call(proof).await).await, "401 delegation_malformed");

    // Revoked at the issuer: refused within the status list's refresh.
    api.revoke_delegation(&reader.id, None).await.unwrap();
    let revoked_at = Instant::now();
    loop {
        match outcome(call(token.clone()).await).await.as_str() {
            "401 delegation_revoked" => break,
            "bound=false" => {}
            other => panic!("{other}"),
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(15),
            "still allowed after a revocation"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Revoking the control proof takes the sibling delegations with it.
    let sibling = api
        .create_delegation(&delegate("payments-read"))
        .await
        .unwrap();
    let sibling = sibling.token.unwrap();
    let started = Instant::now();
    while outcome(call(sibling.clone()).await).await != "bound=false" {
        // A fresh slot may be past the end of the gateway's copy of the list for a moment.
        assert!(started.elapsed() < Duration::from_secs(15));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    api.revoke_proof(
        &created.id,
        proofgate_core::client::RevocationReason::UserRequest,
    )
    .await
    .unwrap();
    let started = Instant::now();
    while outcome(call(sibling.clone()).await).await != "401 delegation_revoked" {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "cascade not seen"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !logs.contains(&token) && !logs.contains(&sibling),
        "a token in the log"
    );
}

/// A WebSocket opened with a delegation is closed (1008) once the delegation is revoked, as one
/// opened with a proof is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_websocket_closes_when_its_delegation_is_revoked() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message;

    let rig = rig().await;
    let token = rig.issuer.mint(DelegationToken::Valid);
    let url = format!("{}/ws/feed", rig.plain.replace("http://", "ws://"));
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Delegation {token}").parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("ping")).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed, Message::text("ping"));

    // The issuer revokes slot 0; the gateway refetches the list (ttl 1 s) and re-checks the
    // socket every second.
    rig.server.set_status_list(
        DELEGATION_STATUS_LIST,
        rig.issuer.status_list_with(&[1, 1, 2, 3]),
    );
    let started = Instant::now();
    let code = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("still open 10 s after the revocation");
        match next {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break None,
        }
    };
    assert_eq!(code, Some(CloseCode::Policy));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

/// `proofgate verify` checks a delegation token as one (claims, key rules, status) and, with
/// `--path`, presents it as `Authorization: Delegation`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_cli_checks_a_delegation() {
    let rig = rig().await;
    let run = |token: String, extra: &'static [&'static str]| {
        let config = rig.config.clone();
        async move {
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_proofgate"))
                    .arg("verify")
                    .arg(&token)
                    .arg("-c")
                    .arg(&config)
                    .args(extra)
                    .env_remove("RUST_LOG")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        }
    };
    let (ok, out) = run(rig.issuer.mint(DelegationToken::Valid), &[]).await;
    assert!(ok, "{out}");
    assert!(out.contains("claims: verified (a delegation"), "{out}");
    assert!(out.contains("verdict: valid delegation"), "{out}");
    let (ok, out) = run(rig.issuer.mint(DelegationToken::Tombstoned), &[]).await;
    assert!(!ok);
    assert!(out.contains("UNVERIFIED — key_revoked"), "{out}");
    let (ok, out) = run(rig.issuer.mint(DelegationToken::Revoked), &[]).await;
    assert!(!ok);
    assert!(out.contains("UNVERIFIED — delegation_revoked"), "{out}");
    let (ok, out) = run(
        rig.issuer.mint(DelegationToken::Valid),
        &["--path", "/agents/x"],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("token in Authorization: Delegation"), "{out}");
    assert!(out.contains("decision: allow"), "{out}");
    let (ok, out) = run(
        rig.issuer.mint(DelegationToken::MissingScope),
        &["--path", "/agents/x"],
    )
    .await;
    assert!(!ok);
    assert!(out.contains("scope_not_granted"), "{out}");
    assert!(
        out.contains("a delegation from corp.example granting payments-read"),
        "{out}"
    );
}

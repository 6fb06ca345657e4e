//! The delegation attack table (`proofgate_core::testing::delegation_cases`) through the gate,
//! against a real issuer on loopback (JWKS with key purposes, windows and tombstones; a
//! delegation status list), plus what the table cannot show: binding by a resolved client
//! delegate, the cache, a revocation flipping a slot, and fail-closed status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, Method};
use proofgate_core::decision::RequestView;
use proofgate_core::gate::{Action, ForwardOptions, Gate, GateBuilder};
use proofgate_core::keys::KeysConfig;
use proofgate_core::policy::Policy;
use proofgate_core::revocation::RevocationConfig;
use proofgate_core::testing::{
    delegation_cases, delegation_policies, DelegationIssuer, DelegationToken, IssuerServer,
    DELEGATION_ROUTES, DELEGATION_STATUS_LIST, OTHER_DELEGATE, TABLE_DELEGATE,
};
use proofgate_core::Reason;
use serde_json::json;

struct Rig {
    issuer: DelegationIssuer,
    server: IssuerServer,
    gate: Gate,
    policies: Vec<Policy>,
    _shutdown: tokio::sync::watch::Sender<()>,
}

async fn rig() -> Rig {
    let server = IssuerServer::start(json!({"keys": []})).await;
    let issuer = DelegationIssuer::new(&server.base_url());
    server.set_jwks(issuer.jwks());
    server.set_status_list(DELEGATION_STATUS_LIST, issuer.status_list());
    let mut revocation = RevocationConfig::new(&server.base_url());
    revocation.prefetch_status_lists = vec![issuer.status_list_url()];
    let mut keys = KeysConfig::new(server.jwks_url());
    keys.unknown_kid_cooldown = Duration::from_millis(100);
    let gate = GateBuilder::new(&server.base_url())
        .keys_config(keys)
        .revocation_config(revocation)
        .cookie_key(Some(vec![7; 32]))
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::watch::channel(());
    let stop = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    tokio::spawn(gate.keys().clone().run(stop(rx.clone())));
    tokio::spawn(gate.revocation().clone().run(stop(rx)));
    let started = Instant::now();
    while gate.readiness().is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            gate.readiness()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Rig {
        issuer,
        server,
        gate,
        policies: delegation_policies(),
        _shutdown: tx,
    }
}

impl Rig {
    fn policy(&self, path: &str) -> &Policy {
        let name = DELEGATION_ROUTES
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .map(|(_, name)| *name)
            .unwrap();
        self.policies.iter().find(|p| p.name == name).unwrap()
    }

    /// Decides `path` with `headers` and `client` delegates; answers as an adapter would:
    /// status, headers and body, an allowed request's body being the identity the upstream
    /// received.
    fn answer(
        &self,
        path: &str,
        headers: &HeaderMap,
        client: &[String],
    ) -> (u16, HeaderMap, Vec<u8>) {
        let view = RequestView {
            method: &Method::GET,
            host: Some("api.example"),
            target: path.as_bytes(),
            headers,
            client_delegates: client,
        };
        let options = ForwardOptions {
            strip_token: true,
            identity_headers: true,
        };
        let outcome = self
            .gate
            .decide_policy(self.policy(path), &view, path, options);
        match outcome.action {
            Action::Forward(f) => {
                let mut upstream = headers.clone();
                for name in &f.edits.remove {
                    upstream.remove(name);
                }
                for (name, value) in f.edits.set {
                    upstream.insert(name, value);
                }
                let identity: serde_json::Map<_, _> = upstream
                    .iter()
                    .filter(|(k, _)| proofgate_core::proof::is_identity_spelling(k.as_str()))
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap())))
                    .collect();
                assert!(
                    !upstream.contains_key("authorization"),
                    "token not stripped"
                );
                assert!(
                    !upstream.contains_key("x-proof-delegation"),
                    "token not stripped"
                );
                let body = json!({ "identity": identity }).to_string().into_bytes();
                (200, HeaderMap::new(), body)
            }
            Action::Respond(r) => {
                let mut h = HeaderMap::new();
                for (k, v) in r.headers {
                    h.append(k, v);
                }
                (r.status, h, r.body.to_vec())
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attack_table_through_the_gate() {
    let rig = rig().await;
    let mut failures = Vec::new();
    let cases = delegation_cases();
    assert!(cases.len() >= 40);
    // Twice: the second pass answers from the cache, and must answer alike.
    for pass in 0..2 {
        for case in &cases {
            let headers = case.headers(&rig.issuer);
            let (status, h, body) = rig.answer(case.path, &headers, &[]);
            if let Err(e) = case.check(status, &h, &body) {
                failures.push(format!("pass {pass}, {}: {e}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A repeated token is answered from the cache (the signature is checked once), with the
    // route-dependent checks and the status still made on every request.
    let token = rig.issuer.mint(DelegationToken::Valid);
    let (hits, misses) = rig.gate.enforcer().delegations().cache_stats();
    for _ in 0..3 {
        assert_eq!(
            reason(&rig.answer("/agents/x", &delegation(&token), &[])),
            "200 allowed"
        );
    }
    assert_eq!(
        reason(&rig.answer(
            "/pinned/x",
            &delegation(&token),
            &[OTHER_DELEGATE.to_owned()]
        )),
        "403 delegate_mismatch"
    );
    let (hits2, misses2) = rig.gate.enforcer().delegations().cache_stats();
    assert_eq!((hits2 - hits, misses2 - misses), (3, 1));
}

fn delegation(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        format!("Delegation {token}").parse().unwrap(),
    );
    h
}

fn reason(answer: &(u16, HeaderMap, Vec<u8>)) -> String {
    let v: serde_json::Value = serde_json::from_slice(&answer.2).unwrap_or_default();
    format!("{} {}", answer.0, v["reason"].as_str().unwrap_or("allowed"))
}

fn bound_header(answer: &(u16, HeaderMap, Vec<u8>)) -> String {
    let v: serde_json::Value = serde_json::from_slice(&answer.2).unwrap();
    v["identity"]["x-proof-delegation-bound"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_delegate_binds_the_token() {
    let rig = rig().await;
    let token = rig.issuer.mint(DelegationToken::Valid);
    let h = delegation(&token);
    let ours = vec![TABLE_DELEGATE.to_owned()];
    let theirs = vec![OTHER_DELEGATE.to_owned()];

    // A copied token without binding: allowed, and the upstream is told it is unbound.
    let a = rig.answer("/agents/x", &h, &[]);
    assert_eq!(bound_header(&a), "false");
    // Presented by the delegate the gateway resolved (mTLS): bound.
    let a = rig.answer("/agents/x", &h, &ours);
    assert_eq!(bound_header(&a), "true");
    let a = rig.answer("/bound/x", &h, &ours);
    assert_eq!(bound_header(&a), "true");
    // Presented by another client certificate: refused, bound or not required.
    assert_eq!(
        reason(&rig.answer("/agents/x", &h, &theirs)),
        "403 delegate_mismatch"
    );
    assert_eq!(
        reason(&rig.answer("/bound/x", &h, &theirs)),
        "403 delegate_mismatch"
    );
    // No certificate where binding is required.
    assert_eq!(
        reason(&rig.answer("/bound/x", &h, &[])),
        "401 delegate_unbound"
    );
    // A header naming a delegate binds nothing: only the adapter's resolution counts.
    let mut spoof = h.clone();
    spoof.insert(
        "x-proof-delegation-delegate",
        TABLE_DELEGATE.parse().unwrap(),
    );
    spoof.insert("x-client-cert-uri", TABLE_DELEGATE.parse().unwrap());
    assert_eq!(
        reason(&rig.answer("/bound/x", &spoof, &[])),
        "401 delegate_unbound"
    );
    // A certificate naming several delegates binds any of them.
    let both = vec![OTHER_DELEGATE.to_owned(), TABLE_DELEGATE.to_owned()];
    assert_eq!(bound_header(&rig.answer("/bound/x", &h, &both)), "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_status_fail_closed() {
    let rig = rig().await;
    let token = rig.issuer.mint(DelegationToken::Valid);
    let h = delegation(&token);
    assert_eq!(reason(&rig.answer("/agents/x", &h, &[])), "200 allowed");

    // The issuer flips slot 0 to revoked: refused once the list is refetched (ttl 1 s), even
    // though the verified token is cached.
    rig.server.set_status_list(
        DELEGATION_STATUS_LIST,
        rig.issuer.status_list_with(&[1, 1, 2, 3]),
    );
    let started = Instant::now();
    loop {
        let a = rig.answer("/agents/x", &h, &[]);
        if reason(&a) == "401 delegation_revoked" {
            break;
        }
        assert_eq!(reason(&a), "200 allowed");
        assert!(started.elapsed() < Duration::from_secs(10), "never revoked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A webhook-pushed revocation of the handle applies at once.
    let rig = rig_with_valid().await;
    let token = rig.issuer.mint(DelegationToken::Valid);
    let h = delegation(&token);
    assert_eq!(reason(&rig.answer("/agents/x", &h, &[])), "200 allowed");
    rig.gate
        .revocation()
        .revoke_now("ph_dlg_0123456789abcdef0123456789abcdef");
    assert_eq!(
        reason(&rig.answer("/agents/x", &h, &[])),
        "401 delegation_revoked"
    );
}

async fn rig_with_valid() -> Rig {
    rig().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_decides_which_requirement_speaks() {
    let rig = rig().await;
    let staff_proof = rig.issuer.proof.sign(&proofgate_core::testing::claims(
        "alice",
        "email",
        "email",
        "alice@corp.example",
    ));
    // The mixed policy (any_of email proof, delegation): a proof alone is enough, and the
    // upstream sees no delegation headers.
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        format!("Bearer {staff_proof}").parse().unwrap(),
    );
    let a = rig.answer("/mixed/x", &h, &[]);
    assert_eq!(reason(&a), "200 allowed");
    let v: serde_json::Value = serde_json::from_slice(&a.2).unwrap();
    assert_eq!(v["identity"]["x-proof-subject"], "alice");
    assert!(v["identity"].get("x-proof-delegation-principal").is_none());
    // Nothing presented on the mixed policy: a person may step up, so `missing` (401).
    let a = rig.answer("/mixed/x", &HeaderMap::new(), &[]);
    assert_eq!(reason(&a), "401 missing");
    // A delegation refused on a delegation-only policy is never a step-up.
    let a = rig.answer("/agents/x", &HeaderMap::new(), &[]);
    assert_eq!(reason(&a), "401 delegation_missing");
    let www = a.1.get("www-authenticate").unwrap().to_str().unwrap();
    assert!(www.starts_with("Delegation realm="), "{www}");
    assert!(!www.contains("step_up"), "{www}");

    // all_of a proof and a delegation: both needed, each from its own carrier.
    let both = Policy::all_of(
        "both",
        vec![
            proofgate_core::policy::Requirement::of_type("email"),
            proofgate_core::policy::Requirement::delegation(
                proofgate_core::delegation::DelegationRequirement::new(
                    ["corp.example"],
                    ["payments-read"],
                ),
            ),
        ],
    );
    let decide = |h: &HeaderMap| {
        let view = RequestView {
            method: &Method::GET,
            host: Some("api.example"),
            target: b"/x",
            headers: h,
            client_delegates: &[],
        };
        let o = rig
            .gate
            .decide_policy(&both, &view, "/x", ForwardOptions::default());
        (o.decision, o.reason)
    };
    let token = rig.issuer.mint(DelegationToken::Valid);
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        format!("Bearer {staff_proof}").parse().unwrap(),
    );
    assert_eq!(decide(&h), ("deny", "delegation_missing"));
    h.insert("x-proof-delegation", token.parse().unwrap());
    assert_eq!(decide(&h), ("allow", ""));
    let mut only = HeaderMap::new();
    only.insert("x-proof-delegation", token.parse().unwrap());
    assert_eq!(decide(&only), ("step_up", "missing"));
    let _ = Arc::new(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_never_fetched_fail_closed() {
    let server = IssuerServer::start(json!({"keys": []})).await;
    let issuer = DelegationIssuer::new(&server.base_url());
    let gate = GateBuilder::new(&server.base_url())
        .cookie_key(Some(vec![7; 32]))
        .build()
        .unwrap();
    let policies = delegation_policies();
    let token = issuer.mint(DelegationToken::Valid);
    let h = delegation(&token);
    let view = RequestView {
        method: &Method::GET,
        host: Some("api.example"),
        target: b"/agents/x",
        headers: &h,
        client_delegates: &[],
    };
    let o = gate.decide_policy(&policies[0], &view, "/agents/x", ForwardOptions::default());
    assert_eq!((o.decision, o.reason), ("deny", Reason::JwksStale.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_is_never_sent_to_verify_a_delegation() {
    use proofgate_core::stepup::StepUp;
    let policies = delegation_policies();
    // Only the proof requirement of the mixed policy becomes an asset to verify.
    let mixed = policies
        .iter()
        .find(|p| p.name == "agents-or-staff")
        .unwrap();
    let request = serde_json::to_value(StepUp::request_for(mixed)).unwrap();
    assert_eq!(request["assets"].as_array().unwrap().len(), 1, "{request}");
    assert_eq!(request["assets"][0]["type"], "email");
    assert!(!policies[0].has_proof_requirement());
    assert_eq!(
        proofgate_core::pages::describe_policy(&policies[0]),
        "an agent's delegation from corp.example for payments-read"
    );
}

mod properties {
    use http::HeaderMap;
    use proofgate_core::delegation::{
        canonical_delegate, extract_delegations, is_valid_scope, DelegationConfig,
        DelegationRequirement, DelegationVerifier,
    };
    use proofgate_core::keys::KeysConfig;
    use proofgate_core::revocation::{RevocationConfig, RevocationStore};
    use proofgate_core::{KeyStore, Now};
    use proptest::prelude::*;

    /// A verifier whose keys were never fetched (built once: each builds an HTTP client).
    static VERIFIER: std::sync::LazyLock<DelegationVerifier> = std::sync::LazyLock::new(|| {
        let keys = KeyStore::new(KeysConfig::new("http://127.0.0.1:9/jwks"));
        let revocation =
            RevocationStore::new(RevocationConfig::new("http://127.0.0.1:9"), keys.clone());
        DelegationVerifier::new(keys, revocation, DelegationConfig::default())
    });

    fn delegate_like() -> impl Strategy<Value = String> {
        prop_oneof![
            "https://[a-zA-Z0-9.:@/%?#_ -]{0,40}",
            "pkg:[a-zA-Z0-9./@_?# -]{0,40}",
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Canonical forms are canonical: a fixed point, without whitespace, within 512
        /// characters; never a panic on any input.
        #[test]
        fn canonical_delegates_are_fixed_points(raw in delegate_like()) {
            if let Some(c) = canonical_delegate(&raw) {
                let again = canonical_delegate(&c);
                prop_assert_eq!(again.as_deref(), Some(c.as_str()), "{:?}", raw);
                prop_assert!(!c.chars().any(char::is_whitespace));
                prop_assert!(c.chars().count() <= 512);
                prop_assert!(c.starts_with("https://") || c.starts_with("pkg:"));
            }
            let _ = is_valid_scope(&raw);
        }

        /// Any header value in either carrier, and any token, is refused without a panic (no
        /// key was ever fetched here, so nothing can be allowed).
        #[test]
        fn hostile_carriers_and_tokens_are_refused(value in any::<String>(), token in "[A-Za-z0-9_.=-]{0,300}") {
            let mut h = HeaderMap::new();
            if let Ok(v) = value.parse() {
                h.insert("x-proof-delegation", v);
            }
            if let Ok(v) = format!("Delegation {value}").parse() {
                h.insert("authorization", v);
            }
            let _ = extract_delegations(&h);
            let verifier = &*VERIFIER;
            let req = DelegationRequirement::new(["corp.example"], ["payments-read"]);
            prop_assert!(verifier.check(&token, &req, &[], Now::read()).is_err());
            prop_assert!(verifier.check(&value, &req, &["https://a.example".into()], Now::read()).is_err());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_carrier_is_kept_without_strip_token_and_identity_headers_can_be_off() {
    let rig = rig().await;
    let token = rig.issuer.mint(DelegationToken::Valid);
    let mut h = HeaderMap::new();
    h.insert("x-proof-delegation", token.parse().unwrap());
    h.insert("x-proof-delegation-bound", "true".parse().unwrap());
    let view = RequestView {
        method: &Method::GET,
        host: Some("api.example"),
        target: b"/agents/x",
        headers: &h,
        client_delegates: &[],
    };
    let decide = |options| {
        rig.gate
            .decide_policy(rig.policy("/agents/x"), &view, "/agents/x", options)
    };
    let Action::Forward(f) = decide(ForwardOptions::default()).action else {
        panic!("refused")
    };
    // Not stripped: the carrier stays, the client's own identity header goes, ours is set.
    assert!(!f.edits.remove.iter().any(|n| n == "x-proof-delegation"));
    assert!(f
        .edits
        .remove
        .iter()
        .any(|n| n == "x-proof-delegation-bound"));
    assert!(f
        .edits
        .set
        .iter()
        .any(|(n, v)| n == "x-proof-delegation-bound" && v == "false"));
    assert_eq!(f.delegations.len(), 1);
    assert!(!f.delegations[0].bound);
    let off = ForwardOptions {
        strip_token: false,
        identity_headers: false,
    };
    let Action::Forward(f) = decide(off).action else {
        panic!("refused")
    };
    assert!(f.edits.set.is_empty());
    assert!(f
        .edits
        .remove
        .iter()
        .any(|n| n == "x-proof-delegation-bound"));
}

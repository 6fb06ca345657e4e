//! Policies and decisions through the enforcer, with tokens verified against a real issuer.

mod common;

use std::time::Duration;

use common::rig;
use http::{HeaderMap, HeaderValue};
use proofgate_core::decision::Refusal;
use proofgate_core::policy::{OnFailure, Policy, Requirement};
use proofgate_core::render::{self, StepUpLinks};
use proofgate_core::testing;
use proofgate_core::{Decision, Reason};

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

fn reason(d: &Decision) -> Option<Reason> {
    d.reason()
}

#[tokio::test]
async fn any_of_all_of_identifiers_and_age() {
    let r = rig().await;
    let admin = Policy::any_of(
        "admin",
        vec![
            Requirement::of_type("email").identifiers(["Alice@Corp.Example"]),
            Requirement::of_type("domain").identifiers(["corp.example"]),
        ],
    );
    let alice = r.key.sign(&testing::claims(
        "a",
        "email",
        "email",
        "alice@corp.example",
    ));
    let mallory = r.key.sign(&testing::claims(
        "m",
        "email",
        "email",
        "mallory@corp.example",
    ));
    let domain = r.key.sign(&testing::claims(
        "d",
        "domain",
        "dns",
        "https://www.corp.example/",
    ));
    assert!(
        matches!(r.enforcer.decide(&admin, &bearer(&alice)), Decision::Allow { ref proofs, .. } if proofs.len() == 1)
    );
    assert!(matches!(
        r.enforcer.decide(&admin, &bearer(&domain)),
        Decision::Allow { .. }
    ));
    let d = r.enforcer.decide(&admin, &bearer(&mallory));
    assert!(
        matches!(d, Decision::Refuse(Refusal::StepUp(Reason::PolicyUnmet))),
        "{d:?}"
    );

    // All-of met by two tokens presented together.
    let both = Policy::all_of(
        "both",
        vec![
            Requirement::of_type("email"),
            Requirement::of_type("phone").channels(["sms", "whatsapp"]),
        ],
    );
    let phone = common::phone_token(&r.key, "p");
    assert_eq!(
        reason(&r.enforcer.decide(&both, &bearer(&alice))),
        Some(Reason::PolicyUnmet)
    );
    let mut h = HeaderMap::new();
    h.append(
        "x-proof-token",
        HeaderValue::from_str(&format!("{alice}, {phone}")).unwrap(),
    );
    match r.enforcer.decide(&both, &h) {
        Decision::Allow { proofs, .. } => assert_eq!(proofs.len(), 2),
        other => panic!("{other:?}"),
    }

    // A phone proof verified in the last ten minutes.
    let payouts = Policy::any_of(
        "payouts",
        vec![Requirement::of_type("phone").max_age(Duration::from_secs(600))],
    )
    .on_failure(OnFailure::Deny);
    assert!(matches!(
        r.enforcer.decide(&payouts, &bearer(&phone)),
        Decision::Allow { .. }
    ));
    let mut old = testing::claims("o", "phone", "sms", "+37069199199");
    old.verified_at = Some(testing::rfc3339(testing::now() - 3600).into());
    let old = r.key.sign(&old);
    assert!(matches!(
        r.enforcer.decide(&payouts, &bearer(&old)),
        Decision::Refuse(Refusal::Deny(Reason::PolicyUnmet))
    ));
}

#[tokio::test]
async fn sources_missing_and_bad_presentation() {
    let r = rig().await;
    let p = Policy::any_of("p", vec![Requirement::of_type("phone")]);
    let token = common::phone_token(&r.key, "p");
    assert!(matches!(
        r.enforcer.decide(&p, &HeaderMap::new()),
        Decision::Refuse(Refusal::StepUp(Reason::Missing))
    ));
    let mut h = HeaderMap::new();
    h.insert(
        "cookie",
        HeaderValue::from_str(&format!("a=b; proof_token={token}; c=d")).unwrap(),
    );
    assert!(matches!(r.enforcer.decide(&p, &h), Decision::Allow { .. }));
    let mut h = bearer(&token);
    h.append(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    assert_eq!(reason(&r.enforcer.decide(&p, &h)), Some(Reason::Malformed));
    // Header first: a bad bearer token is not rescued by a good cookie.
    let mut h = bearer("garbage");
    h.insert(
        "cookie",
        HeaderValue::from_str(&format!("proof_token={token}")).unwrap(),
    );
    assert_eq!(reason(&r.enforcer.decide(&p, &h)), Some(Reason::Malformed));
    let mut h = HeaderMap::new();
    h.insert(
        "x-proof-token",
        HeaderValue::from_str(&[token.as_str(); 5].join(",")).unwrap(),
    );
    assert_eq!(reason(&r.enforcer.decide(&p, &h)), Some(Reason::Malformed));
    // Public, optional and deny rules.
    assert!(matches!(
        r.enforcer
            .decide(&Policy::public("pub"), &bearer("garbage")),
        Decision::Allow { .. }
    ));
    assert!(matches!(
        r.enforcer.decide(&Policy::deny("no"), &bearer(&token)),
        Decision::Refuse(Refusal::Deny(Reason::RouteDenied))
    ));
}

#[tokio::test]
async fn unavailable_beats_step_up_and_renders_503() {
    let r = rig().await;
    let p = Policy::any_of("p", vec![Requirement::of_type("phone")]);
    let uri = r.server.status_list_url("none");
    let token = r.key.sign(&testing::with_status(
        testing::claims("s", "phone", "sms", "+1 555"),
        &uri,
        0,
    ));
    let d = r.enforcer.decide(&p, &bearer(&token));
    assert!(
        matches!(
            d,
            Decision::Refuse(Refusal::Deny(Reason::StatusUnavailable))
        ),
        "{d:?}"
    );
    let Decision::Refuse(refusal) = d else {
        panic!("{d:?}")
    };
    let out = render::render(&refusal, "p", "/x", false, &StepUpLinks::default());
    assert_eq!(out.status, 503);
    let body: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(body["reason"], "status_unavailable");
    assert!(!String::from_utf8_lossy(&out.body).contains(&token[..20]));
}

#[test]
fn rendering_of_step_up_and_deny() {
    let links = StepUpLinks::default();
    let d = Refusal::StepUp(Reason::Missing);
    let html = render::render(&d, "admin", "/admin/x?y=1", true, &links);
    assert_eq!(html.status, 302);
    assert_eq!(
        html.headers
            .iter()
            .find(|(k, _)| k == "location")
            .unwrap()
            .1,
        "/.proofgate/start?policy=admin&return_to=%2Fadmin%2Fx%3Fy%3D1"
    );
    let api = render::render(&d, "admin", "/admin", false, &links);
    assert_eq!(api.status, 401);
    let www = api
        .headers
        .iter()
        .find(|(k, _)| k == "www-authenticate")
        .unwrap()
        .1
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        www.starts_with("Proof realm=\"proofgate\", error=\"missing\""),
        "{www}"
    );
    let body: serde_json::Value = serde_json::from_slice(&api.body).unwrap();
    assert_eq!(
        body["step_up"]["start"],
        "/.proofgate/start?policy=admin&return_to=%2Fadmin"
    );
    let deny = render::render(&Refusal::Deny(Reason::Expired), "p", "/", false, &links);
    assert_eq!(deny.status, 401);
    assert!(deny
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/problem+json"));
}

#[tokio::test]
async fn an_approval_or_consent_token_is_no_proof_of_control() {
    let r = rig().await;
    // "Any proof" (no type named) and a channel-only requirement: proofs of control only.
    let any = Policy::any_of("any", vec![Requirement::default()]);
    let browser = Policy::any_of(
        "browser",
        vec![Requirement::default().channels(["browser"])],
    );
    let phone = r
        .key
        .sign(&testing::claims("p", "phone", "sms", "+37069199199"));
    assert!(matches!(
        r.enforcer.decide(&any, &bearer(&phone)),
        Decision::Allow { .. }
    ));
    for kind in ["confirmation", "authorization"] {
        let mut claims = testing::claims("conf_1", kind, "browser", "approver");
        claims.decision = Some(Box::new(serde_json::json!("approve")));
        let token = r.key.sign(&claims);
        for policy in [&any, &browser] {
            let d = r.enforcer.decide(policy, &bearer(&token));
            assert_eq!(
                reason(&d),
                Some(Reason::PolicyUnmet),
                "{kind} on {}",
                policy.name
            );
        }
        // Named, it is accepted: an operator may ask for it on purpose.
        let named = Policy::any_of("named", vec![Requirement::of_type(kind)]);
        assert!(
            matches!(
                r.enforcer.decide(&named, &bearer(&token)),
                Decision::Allow { .. }
            ),
            "{kind} named"
        );
    }
}

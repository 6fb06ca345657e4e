//! Request-level tricks the core decides: token presentation, path normalization and
//! identity headers.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method};
use proofgate_core::decision::Decision;
use proofgate_core::forward::upstream_edits;
use proofgate_core::path::{normalize_path, PathError};
use proofgate_core::policy::{OnFailure, Policy, Requirement};
use proofgate_core::proof::identity_headers;
use proofgate_core::routes::{PathPattern, Route, RouteTable};
use proofgate_core::testing::{self, SigningKey};
use proofgate_core::tokens::{extract_tokens, TokenSource};
use proofgate_core::Reason;

use crate::common::{phone_token, rig};
use crate::KID;

/// Request-level tricks that the core decides: how tokens are presented, which path a policy
/// is looked up for, and which identity headers reach the upstream.
#[tokio::test]
async fn request_level_attacks() {
    let r = rig().await;
    let k = &r.key;
    let good = phone_token(k, "req");
    let forged = phone_token(&SigningKey::rsa(KID), "req");
    let policy =
        Policy::any_of("phones", vec![Requirement::of_type("phone")]).on_failure(OnFailure::Deny);
    let decide = |pairs: &[(&str, &[u8])]| {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        r.enforcer.decide(&policy, &h)
    };
    let bearer = format!("Bearer {good}");
    let forged_bearer = format!("Bearer {forged}");
    let big = format!("Bearer {}", "a".repeat(1024 * 1024));
    type Headers = Vec<(&'static str, Vec<u8>)>;
    let cases: Vec<(&str, Headers, Option<Reason>)> = vec![
        (
            "control: bearer",
            vec![("authorization", bearer.clone().into())],
            None,
        ),
        (
            "two Authorization headers, good first",
            vec![
                ("authorization", bearer.clone().into()),
                ("authorization", forged_bearer.clone().into()),
            ],
            Some(Reason::Malformed),
        ),
        (
            "two Authorization headers, good second",
            vec![
                ("authorization", forged_bearer.clone().into()),
                ("authorization", bearer.clone().into()),
            ],
            Some(Reason::Malformed),
        ),
        (
            "two bearer tokens in one header",
            vec![(
                "authorization",
                format!("Bearer {good}, Bearer {forged}").into(),
            )],
            Some(Reason::Malformed),
        ),
        (
            "empty bearer",
            vec![("authorization", b"Bearer ".to_vec())],
            Some(Reason::Malformed),
        ),
        (
            "folded-looking bearer",
            vec![("authorization", format!("Bearer\t{good}").into())],
            Some(Reason::Missing),
        ),
        (
            "obs-text in the bearer",
            vec![(
                "authorization",
                [b"Bearer ".as_slice(), good.as_bytes(), &[0xff]].concat(),
            )],
            Some(Reason::Malformed),
        ),
        (
            "a forged bearer does not fall back to a good cookie",
            vec![
                ("authorization", forged_bearer.clone().into()),
                ("cookie", format!("proof_token={good}").into()),
            ],
            Some(Reason::InvalidSignature),
        ),
        (
            "Basic auth is not a token; the cookie is used",
            vec![
                ("authorization", b"Basic dXNlcjpwYXNz".to_vec()),
                ("cookie", format!("proof_token={good}").into()),
            ],
            None,
        ),
        (
            "five tokens in x-proof-token",
            vec![("x-proof-token", [good.as_str(); 5].join(",").into())],
            Some(Reason::Malformed),
        ),
        (
            "five x-proof-token headers",
            (0..5)
                .map(|_| ("x-proof-token", good.clone().into_bytes()))
                .collect(),
            Some(Reason::Malformed),
        ),
        (
            "one good, one forged token (any_of)",
            vec![("x-proof-token", format!("{forged}, {good}").into())],
            None,
        ),
        (
            "cookie name in capitals",
            vec![("cookie", format!("PROOF_TOKEN={good}").into())],
            Some(Reason::Missing),
        ),
        (
            "cookie name prefixed",
            vec![("cookie", format!("xproof_token={good}").into())],
            Some(Reason::Missing),
        ),
        (
            "1 MB bearer",
            vec![("authorization", big.into())],
            Some(Reason::Malformed),
        ),
        (
            "spoofed identity headers alone",
            vec![
                ("x-proof-subject", b"admin".to_vec()),
                ("x-proof-type", b"phone".to_vec()),
            ],
            Some(Reason::Missing),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, pairs, want) in &cases {
        let refs: Vec<(&str, &[u8])> = pairs.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let d = decide(&refs);
        let ok = match want {
            None => matches!(d, Decision::Allow { .. }),
            Some(w) => d.reason() == Some(*w) && !matches!(d, Decision::Allow { .. }),
        };
        if !ok {
            wrong.push(format!("{name}: want {want:?}, got {d:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Spoofed identity headers never survive to the upstream, whatever their case, and the
    // real ones come only from verified claims.
    let mut h = HeaderMap::new();
    h.insert(http::header::AUTHORIZATION, bearer.parse().unwrap());
    for name in [
        "x-proof-subject",
        "X-Proof-Type",
        "X-PROOF-CHANNEL",
        "x-proof-identifier-hash",
        "x-proof-verified-at",
        "x-proof-admin",
    ] {
        h.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static("spoofed"),
        );
    }
    let Decision::Allow { proofs, .. } = r.enforcer.decide(&policy, &h) else {
        panic!("the good token was refused");
    };
    let edits = upstream_edits(&h, &proofs, r.enforcer.sources(), true);
    for name in h.keys().filter(|n| n.as_str().starts_with("x-proof-")) {
        assert!(
            edits.remove.contains(name),
            "{name} would reach the upstream"
        );
    }
    assert!(edits.remove.contains(&http::header::AUTHORIZATION));
    assert!(edits.set.iter().all(|(_, v)| v != "spoofed"));
    let set: Vec<&str> = edits.set.iter().map(|(n, _)| n.as_str()).collect();
    assert!(set.contains(&"x-proof-subject"), "{set:?}");

    // Header injection through claim values: a value that is not a valid header is left out.
    let hostile = testing::claims(
        "inj",
        "phone",
        "sms\r\nx-proof-subject: admin",
        "+37069199199",
    );
    let proof = r.enforcer.check_token(&k.sign(&hostile)).unwrap();
    let headers = identity_headers(&[proof]);
    assert!(
        headers
            .iter()
            .all(|(n, v)| n != "x-proof-channel" && !v.as_bytes().contains(&b'\n')),
        "{headers:?}"
    );
    assert_eq!(
        headers
            .iter()
            .filter(|(n, _)| n == "x-proof-subject")
            .count(),
        1
    );

    // Token extraction refuses or ignores what it cannot read, without panicking.
    let mut h = HeaderMap::new();
    h.insert(
        http::header::COOKIE,
        HeaderValue::from_bytes(b"proof_token=\xff\xfe").unwrap(),
    );
    assert_eq!(extract_tokens(&h, &TokenSource::defaults()), Ok(vec![]));
}

#[test]
fn path_tricks_get_the_policy_of_the_resource_they_name() {
    let route = |name: &str, path: &str| Route {
        name: name.into(),
        hosts: vec![],
        path: PathPattern::parse(path).unwrap(),
        methods: vec![],
        policy: Arc::new(Policy::public(name)),
        upstream: None,
        preflight: Default::default(),
    };
    let table = RouteTable::new(
        vec![route("admin", "/admin/**"), route("public", "/public/**")],
        Arc::new(Policy::deny("default")),
    );
    let cases: &[(&str, Result<&str, PathError>)] = &[
        ("/admin", Ok("admin")),
        ("/ADMIN/users", Ok("admin")),
        ("//admin", Ok("admin")),
        ("///admin//users", Ok("admin")),
        ("/public/../admin", Ok("admin")),
        ("/public/%2e%2e/admin", Ok("admin")),
        ("/public/%2E%2e/admin", Ok("admin")),
        ("/public/.%2e/admin", Ok("admin")),
        ("/public/./../admin", Ok("admin")),
        ("/public/x/../../admin", Ok("admin")),
        ("/../../../admin", Ok("admin")),
        ("/%61dmin", Ok("admin")),
        ("/%41DMIN", Ok("admin")),
        ("/admin;jsessionid=1/users", Ok("admin")),
        ("/admin/;/users", Ok("admin")),
        ("/admin?/public/x", Ok("admin")),
        ("/admin#/public/x", Ok("admin")),
        ("/public/x?../../admin", Ok("public")),
        ("/public/..%2fadmin", Err(PathError::EncodedSlash)),
        ("/public%2f..%2fadmin", Err(PathError::EncodedSlash)),
        ("/public/..;/admin", Err(PathError::DotSegmentParameters)),
        ("/public/.;x/admin", Err(PathError::DotSegmentParameters)),
        ("/public\\..\\admin", Err(PathError::Backslash)),
        ("/public/..%5cadmin", Err(PathError::Backslash)),
        ("/public/%252e%252e/admin", Err(PathError::DoubleEncoding)),
        ("/public/%25252e/admin", Err(PathError::DoubleEncoding)),
        ("/admin%00.public", Err(PathError::Nul)),
        ("/public/%0a/../admin", Err(PathError::ControlCharacter)),
        ("/public/%zz", Err(PathError::InvalidEscape)),
        ("/public/%2", Err(PathError::InvalidEscape)),
        ("admin", Err(PathError::NotAbsolute)),
        ("http://evil.example/admin", Err(PathError::NotAbsolute)),
        // Look-alikes are other resources: they fall to the default (deny), never to public.
        ("/admin%20", Ok("default")),
        ("/admin.", Ok("default")),
        ("/\u{ff41}dmin", Ok("default")),
        ("/publicx/../admin", Ok("admin")),
        ("/publicity", Ok("default")),
    ];
    let mut wrong = Vec::new();
    for (raw, want) in cases {
        let got = normalize_path(raw).map(|p| table.route(&Method::GET, None, &p).name.to_string());
        if got.as_deref().map_err(|e| *e) != *want {
            wrong.push(format!("{raw:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

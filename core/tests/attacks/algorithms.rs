//! Algorithm attacks: `alg` none in every spelling, HS/RS confusion with the public key as the
//! secret, algorithms outside the allow-list, and a token's `alg` that disagrees with its key's.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use proofgate_core::testing::{b64, SigningKey};
use proofgate_core::Reason;
use serde_json::{json, Value};

use crate::common::rig;
use crate::{base_claims, parts, Corpus, KID};

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

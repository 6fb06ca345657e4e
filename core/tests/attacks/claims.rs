//! Claim attacks: other types where a NumericDate belongs, duplicated claims, issuer
//! look-alikes, audience and subject, extreme dates, and payload forms.

use proofgate_core::testing;
use proofgate_core::Reason;
use serde_json::{json, Value};

use crate::common::rig;
use crate::{base_claims, with, Corpus};

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

//! The verifier and revocation checks against a real issuer server on loopback.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{phone_token, rig, rig_with, wait_for, Tuning};
use proofgate_core::testing::{self, b64, Mode, SigningKey};
use proofgate_core::{Reason, RevocationConfig, RevocationStore};
use serde_json::json;

fn hs256(secret: &[u8], header: &serde_json::Value, payload: &serde_json::Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(payload.to_string()));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

fn claims_json(key: &SigningKey) -> serde_json::Value {
    let _ = key;
    serde_json::to_value(testing::claims(
        "507f1f77bcf86cd799439011",
        "email",
        "email",
        "a@corp.example",
    ))
    .unwrap()
}

#[tokio::test]
async fn valid_rs256_and_es256_tokens_verify() {
    let r = rig().await;
    let token = phone_token(&r.key, "p1");
    let proof = r.enforcer.check_token(&token).expect("valid RS256");
    assert_eq!(proof.subject(), "p1");
    assert_eq!(proof.kid.as_deref(), Some("proof-holdings-2026-01"));
    assert_eq!(
        proof.identifier_hash(),
        Some("1a84d7ea4cfcfa4a7fde9c221c967e6f1cfa22fd5b68e4cbac0912ceb8b602f9")
    );

    let ec = SigningKey::es256("proof-holdings-ec-1");
    r.server.set_jwks(testing::jwks(&[&r.key, &ec]));
    r.keys.refresh().await.unwrap();
    let token = phone_token(&ec, "p2");
    assert_eq!(r.enforcer.check_token(&token).unwrap().subject(), "p2");
}

#[tokio::test]
async fn hostile_tokens_get_their_reason() {
    let r = rig().await;
    let k = &r.key;
    let good = phone_token(k, "p1");
    let claims = claims_json(k);
    let (h, p, s) = {
        let mut it = good.split('.');
        (
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
        )
    };
    let mut cases: Vec<(&str, String, Reason)> = vec![
        ("empty", String::new(), Reason::Malformed),
        ("two segments", format!("{h}.{p}"), Reason::Malformed),
        ("four segments", format!("{good}.x"), Reason::Malformed),
        (
            "bad base64 header",
            format!("!!!.{p}.{s}"),
            Reason::Malformed,
        ),
        ("padded header", format!("{h}=.{p}.{s}"), Reason::Malformed),
        ("whitespace", format!("{h} .{p}.{s}"), Reason::Malformed),
        (
            "header not json",
            format!("{}.{p}.{s}", b64("nope")),
            Reason::Malformed,
        ),
        (
            "header an array",
            format!("{}.{p}.{s}", b64("[1]")),
            Reason::Malformed,
        ),
        ("huge", "a".repeat(1_000_000), Reason::Malformed),
        (
            "stripped signature",
            format!("{h}.{p}."),
            Reason::InvalidSignature,
        ),
        (
            "payload swapped",
            format!(
                "{h}.{}.{s}",
                b64(json!({"iss":"proof.holdings","sub":"x","exp":9999999999u64}).to_string())
            ),
            Reason::InvalidSignature,
        ),
    ];
    for alg in ["none", "None", "NONE", "nOnE"] {
        let t = format!(
            "{}.{}.",
            b64(json!({"alg": alg, "typ": "JWT"}).to_string()),
            b64(claims.to_string())
        );
        cases.push(("alg none", t, Reason::UnsupportedAlgorithm));
    }
    // HS256 signed with the RSA public key's bytes as the HMAC secret (algorithm confusion).
    cases.push((
        "hs/rs confusion",
        hs256(
            &k.public_key_bytes(),
            &json!({"alg":"HS256","typ":"JWT","kid":k.kid()}),
            &claims,
        ),
        Reason::UnsupportedAlgorithm,
    ));
    for (name, extra) in [
        ("jwk header", json!({"jwk": k.jwk()})),
        (
            "jku header",
            json!({"jku": "https://evil.example/jwks.json"}),
        ),
        (
            "x5u header",
            json!({"x5u": "https://evil.example/cert.pem"}),
        ),
        ("x5c header", json!({"x5c": ["MIIB"]})),
        ("crit header", json!({"crit": ["exp"]})),
    ] {
        let mut header = k.header();
        header
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        cases.push((
            name,
            k.sign_raw(&header, claims.to_string().as_bytes()),
            Reason::ForbiddenHeader,
        ));
    }
    let sign = |payload: serde_json::Value| k.sign_json(&payload);
    let mut c = claims.clone();
    c["exp"] = json!(c["exp"].as_i64().unwrap().to_string());
    cases.push(("exp as string", sign(c), Reason::Malformed));
    cases.push((
        "payload not an object",
        k.sign_raw(&k.header(), b"[1,2]"),
        Reason::Malformed,
    ));
    cases.push((
        "payload not json",
        k.sign_raw(&k.header(), b"hello"),
        Reason::Malformed,
    ));
    let mut c = claims.clone();
    c.as_object_mut().unwrap().remove("exp");
    cases.push(("no exp", sign(c), Reason::InvalidClaims));
    let mut c = claims.clone();
    c["exp"] = json!(testing::now() - 60);
    cases.push(("expired", sign(c), Reason::Expired));
    let mut c = claims.clone();
    c["iat"] = json!(testing::now() + 3600);
    cases.push(("iat in the future", sign(c), Reason::NotYetValid));
    let mut c = claims.clone();
    c["iss"] = json!("evil.example");
    cases.push(("wrong iss", sign(c), Reason::Issuer));
    let mut c = claims.clone();
    c["iss"] = json!("proof.holdings ");
    cases.push(("iss almost", sign(c), Reason::Issuer));
    let mut c = claims.clone();
    c["aud"] = json!("someone");
    cases.push(("audience", sign(c), Reason::InvalidClaims));
    let mut c = claims.clone();
    c["sub"] = json!(42);
    cases.push(("sub not a string", sign(c), Reason::Malformed));
    let mut c = claims.clone();
    c["token_type"] = json!("delegation");
    cases.push(("delegation token", sign(c), Reason::InvalidClaims));
    let dup = format!(
        "{{\"iss\":\"proof.holdings\",\"sub\":\"a\",\"exp\":{},\"exp\":1}}",
        testing::now() + 60
    );
    cases.push((
        "duplicate claim",
        k.sign_raw(&k.header(), dup.as_bytes()),
        Reason::Malformed,
    ));
    let unknown = SigningKey::rsa("not-published");
    cases.push((
        "unknown kid",
        phone_token(&unknown, "p"),
        Reason::UnknownKey,
    ));
    let other = SigningKey::rsa("proof-holdings-2026-01");
    cases.push((
        "same kid, other key",
        phone_token(&other, "p"),
        Reason::InvalidSignature,
    ));
    let ec_as_rs = {
        let ec = SigningKey::es256("proof-holdings-2026-01");
        ec.sign_raw(
            &json!({"alg":"ES256","kid":"proof-holdings-2026-01"}),
            claims.to_string().as_bytes(),
        )
    };
    cases.push(("ES256 against an RSA kid", ec_as_rs, Reason::UnknownKey));

    for (name, token, want) in cases {
        let got = r.enforcer.check_token(&token).err();
        assert_eq!(got, Some(want), "case {name}");
    }
    // A byte flipped anywhere in a valid token makes it fail.
    for i in (0..good.len()).step_by(7) {
        let mut bytes = good.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(bytes).unwrap();
        if t != good {
            assert!(r.verifier.verify(&t).is_err(), "flip at {i} still verified");
        }
    }
    assert!(r.enforcer.check_token(&good).is_ok());
}

#[tokio::test]
async fn es256_psychic_signature_is_refused() {
    let r = rig().await;
    let ec = SigningKey::es256("ec");
    r.server.set_jwks(testing::jwks(&[&r.key, &ec]));
    r.keys.refresh().await.unwrap();
    let good = phone_token(&ec, "p");
    let signing_input = good.rsplit_once('.').unwrap().0;
    let zero = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
    assert_eq!(
        r.enforcer.check_token(&zero).err(),
        Some(Reason::InvalidSignature)
    );
}

#[tokio::test]
async fn rotation_is_picked_up_through_an_unknown_kid_refetch() {
    let r = rig().await;
    let new_key = SigningKey::rsa("proof-holdings-2026-02");
    let token = phone_token(&new_key, "rotated");
    assert_eq!(
        r.enforcer.check_token(&token).err(),
        Some(Reason::UnknownKey)
    );
    let before = r.server.jwks_hits();
    r.server.set_jwks(testing::jwks(&[&r.key, &new_key]));
    // The first request asked for a refetch; a burst of the same unknown kid asks for no more.
    for _ in 0..50 {
        let _ = r.enforcer.check_token(&token);
    }
    wait_for("the rotated key", || r.enforcer.check_token(&token).is_ok()).await;
    assert!(
        r.server.jwks_hits() - before <= 2,
        "refetches were not coalesced"
    );
    // The old key, now removed from the set, stops verifying even for a cached token.
    let old = phone_token(&r.key, "old");
    assert!(r.enforcer.check_token(&old).is_ok());
    r.server.set_jwks(testing::jwks(&[&new_key]));
    r.keys.refresh().await.unwrap();
    assert_eq!(r.enforcer.check_token(&old).err(), Some(Reason::UnknownKey));
}

#[tokio::test]
async fn jwks_outage_keeps_last_good_keys_then_reports_stale() {
    let r = rig_with(Tuning {
        max_staleness: Duration::from_millis(1500),
        ..Tuning::default()
    })
    .await;
    let token = phone_token(&r.key, "p1");
    r.server.set_mode(Mode::Fail(503));
    r.keys.refresh().await.expect_err("fetch fails while down");
    assert!(
        r.enforcer.check_token(&token).is_ok(),
        "last good keys keep verifying"
    );
    r.server.set_mode(Mode::Garbage);
    r.keys.refresh().await.expect_err("garbage is refused");
    assert!(r.enforcer.check_token(&token).is_ok());
    wait_for("staleness", || r.keys.is_stale()).await;
    assert_eq!(
        r.enforcer.check_token(&token).err(),
        Some(Reason::JwksStale)
    );
    // A bad token is still reported as bad, not as unavailable.
    assert_eq!(r.enforcer.check_token("a.b").err(), Some(Reason::Malformed));
    r.server.set_mode(Mode::Normal);
    wait_for("recovery", || r.enforcer.check_token(&token).is_ok()).await;
}

#[tokio::test]
async fn a_hanging_jwks_never_blocks_verification() {
    let r = rig().await;
    let token = phone_token(&r.key, "p1");
    r.server.set_mode(Mode::Hang);
    let refresh = tokio::spawn({
        let keys = r.keys.clone();
        async move { keys.refresh().await }
    });
    let start = std::time::Instant::now();
    for i in 0..100 {
        assert!(r.enforcer.check_token(&token).is_ok(), "{i}");
    }
    assert!(start.elapsed() < Duration::from_millis(400));
    assert!(
        refresh.await.unwrap().is_err(),
        "the hanging fetch times out"
    );
}

#[tokio::test]
async fn a_listed_revocation_denies_a_cached_token_after_the_next_refresh() {
    let r = rig().await;
    let token = phone_token(&r.key, "507f1f77bcf86cd799439015");
    assert!(r.enforcer.check_token(&token).is_ok());
    assert!(r.verifier.cached() <= 1);
    r.server.set_revocation_list(testing::revocation_list(
        Some(&r.key),
        &["507f1f77bcf86cd799439015"],
    ));
    wait_for("revocation", || {
        r.enforcer.check_token(&token).err() == Some(Reason::Revoked)
    })
    .await;
}

#[tokio::test]
async fn a_list_with_a_forged_signature_is_refused() {
    let r = rig().await;
    let forger = SigningKey::rsa("proof-holdings-2026-01");
    let mut list = testing::revocation_list(Some(&forger), &["x"]);
    r.server.set_revocation_list(list.clone());
    assert!(r.revocation.refresh_list().await.is_err());
    // Entries added after signing are refused too.
    list = testing::revocation_list(Some(&r.key), &["x"]);
    list["revoked"]
        .as_array_mut()
        .unwrap()
        .push(json!({"proof_id": "y"}));
    r.server.set_revocation_list(list);
    assert!(r.revocation.refresh_list().await.is_err());
    // An older list keyed generated_at, unsigned, is accepted.
    r.server.set_revocation_list(json!({"revoked":[{"proof_id":"z","revoked_at":"2026-02-04T14:00:00.000Z","reason":"fraud"}],"generated_at":"2026-02-04T15:00:00.000Z","count":1,"signature":null}));
    assert_eq!(r.revocation.refresh_list().await.unwrap(), 1);
    assert!(r.revocation.list().contains("z"));
}

#[tokio::test]
async fn webhook_overlay_revokes_at_once() {
    let r = rig().await;
    let token = phone_token(&r.key, "pushed");
    assert!(r.enforcer.check_token(&token).is_ok());
    r.revocation.revoke_now("pushed");
    assert_eq!(r.enforcer.check_token(&token).err(), Some(Reason::Revoked));
}

#[tokio::test]
async fn status_list_slots_revoke_and_suspend() {
    let r = rig().await;
    let uri = r.server.status_list_url("1");
    r.server.set_status_list(
        "1",
        testing::status_list_jwt(&r.key, &uri, 2, &[0, 1, 2, 3], 60),
    );
    let tok = |idx: u64| {
        r.key.sign(&testing::with_status(
            testing::claims(&format!("s{idx}"), "email", "email", "a@b.c"),
            &uri,
            idx,
        ))
    };
    // Not cached yet: unavailable, and fetched in the background.
    assert_eq!(
        r.enforcer.check_token(&tok(0)).err(),
        Some(Reason::StatusUnavailable)
    );
    wait_for("status list", || r.enforcer.check_token(&tok(0)).is_ok()).await;
    assert_eq!(r.enforcer.check_token(&tok(1)).err(), Some(Reason::Revoked));
    assert_eq!(
        r.enforcer.check_token(&tok(2)).err(),
        Some(Reason::Suspended)
    );
    assert_eq!(
        r.enforcer.check_token(&tok(3)).err(),
        Some(Reason::StatusUnavailable)
    );
    assert_eq!(
        r.enforcer.check_token(&tok(99_999)).err(),
        Some(Reason::StatusUnavailable)
    );
    // A list on another origin is never fetched.
    let foreign = r.key.sign(&testing::with_status(
        testing::claims("f", "email", "email", "a@b.c"),
        "http://evil.example/status/1",
        0,
    ));
    let hits = r.server.status_hits();
    assert_eq!(
        r.enforcer.check_token(&foreign).err(),
        Some(Reason::StatusUnavailable)
    );
    assert!(!r.revocation.may_fetch("http://evil.example/status/1"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.server.status_hits(), hits);
}

#[tokio::test]
async fn status_list_with_wrong_sub_or_typ_is_refused() {
    let r = rig().await;
    let uri = r.server.status_list_url("2");
    r.server.set_status_list(
        "2",
        testing::status_list_jwt(&r.key, "http://other/", 2, &[0], 60),
    );
    assert!(r.revocation.refresh_status_list(&uri).await.is_err());
    let jwt = r.key.sign_json(&json!({"sub": uri, "exp": testing::now() + 60, "status_list": {"bits": 2, "lst": testing::pack_status_list(2, &[0])}}));
    r.server.set_status_list("2", jwt);
    assert!(
        r.revocation.refresh_status_list(&uri).await.is_err(),
        "typ JWT is not a status list"
    );
}

#[tokio::test]
async fn stale_revocation_fails_closed() {
    let r = rig_with(Tuning {
        revocation_max_staleness: Duration::from_millis(800),
        ..Tuning::default()
    })
    .await;
    let token = phone_token(&r.key, "p1");
    assert!(r.enforcer.check_token(&token).is_ok());
    r.server.set_mode(Mode::Fail(500));
    wait_for("revocation staleness", || r.revocation.is_stale()).await;
    assert_eq!(
        r.enforcer.check_token(&token).err(),
        Some(Reason::StatusUnavailable)
    );
}

/// A status list JWT with `typ` and `exp` of one's choosing.
fn status_list_with(key: &SigningKey, uri: &str, typ: &str, exp: i64, slots: &[u8]) -> String {
    let header = json!({"alg": key.alg(), "typ": typ, "kid": key.kid()});
    let payload = json!({
        "sub": uri,
        "iat": testing::now(),
        "exp": exp,
        "ttl": 60,
        "status_list": {"bits": 2, "lst": testing::pack_status_list(2, slots)},
    });
    key.sign_raw(&header, payload.to_string().as_bytes())
}

#[tokio::test]
async fn status_list_typ_with_its_media_type_prefix_is_accepted() {
    let r = rig().await;
    let uri = r.server.status_list_url("3");
    for typ in ["application/statuslist+jwt", "statuslist+jwt"] {
        r.server.set_status_list(
            "3",
            status_list_with(&r.key, &uri, typ, testing::now() + 3600, &[0, 1]),
        );
        r.revocation
            .refresh_status_list(&uri)
            .await
            .unwrap_or_else(|e| panic!("typ {typ} refused: {e}"));
    }
    let revoked = r.key.sign(&testing::with_status(
        testing::claims("s1", "email", "email", "a@b.c"),
        &uri,
        1,
    ));
    assert_eq!(
        r.enforcer.check_token(&revoked).err(),
        Some(Reason::Revoked)
    );
}

#[tokio::test]
async fn status_lists_come_only_from_the_issuer_or_a_trusted_origin() {
    let r = rig().await;
    // An issuer whose API is elsewhere publishes its lists here (say, on a CDN).
    let uri = r.server.status_list_url("4");
    r.server
        .set_status_list("4", testing::status_list_jwt(&r.key, &uri, 2, &[0], 60));
    let elsewhere = "https://api.proof.example";
    let untrusted = RevocationStore::new(RevocationConfig::new(elsewhere), r.keys.clone());
    assert!(!untrusted.may_fetch(&uri));
    let hits = r.server.status_hits();
    assert!(untrusted.refresh_status_list(&uri).await.is_err());
    assert_eq!(
        r.server.status_hits(),
        hits,
        "an untrusted origin is never asked"
    );

    let mut rc = RevocationConfig::new(elsewhere);
    rc.trusted_status_list_origins =
        vec![proofgate_core::revocation::origin_of(&r.server.base_url()).expect("origin")];
    let trusted = RevocationStore::new(rc, r.keys.clone());
    assert!(trusted.may_fetch(&uri));
    assert!(!trusted.may_fetch("http://evil.example/status/4"));
    trusted
        .refresh_status_list(&uri)
        .await
        .expect("a trusted origin's list is fetched");
    assert!(trusted.has_status_list(&uri));
}

#[tokio::test]
async fn status_lists_usable_follows_the_prefetched_lists() {
    let r = rig().await;
    let uri = r.server.status_list_url("5");
    let mut rc = RevocationConfig::new(&r.server.base_url());
    rc.prefetch_status_lists = vec![uri.clone()];
    rc.backoff_initial = Duration::from_millis(50);
    rc.backoff_max = Duration::from_millis(200);
    rc.fetch_timeout = Duration::from_millis(500);
    let store = RevocationStore::new(rc, r.keys.clone());
    // Not fetched yet: unusable.
    assert!(!store.status_lists_usable());
    // A list that expires in two seconds, and an issuer that then stops answering.
    r.server.set_status_list(
        "5",
        status_list_with(&r.key, &uri, "statuslist+jwt", testing::now() + 2, &[0]),
    );
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    tokio::spawn(store.clone().run(async move {
        let _ = rx.changed().await;
    }));
    wait_for("the prefetched list", || store.status_lists_usable()).await;
    r.server.set_mode(Mode::Fail(500));
    wait_for("the list to expire", || !store.status_lists_usable()).await;
    let _ = tx.send(true);
}

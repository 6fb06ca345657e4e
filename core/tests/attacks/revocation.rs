//! Revocation evasion: a listed token stays refused, whatever its status claim vouches for or
//! points to.

use proofgate_core::testing;
use proofgate_core::Reason;
use serde_json::json;

use crate::common::rig;
use crate::{base_claims, with, Corpus};

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

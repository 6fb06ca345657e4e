//! Every normalization, hashing and proof-token vector in the issuer's `test-vectors.json`.

mod common;

use proofgate_core::identifier::{canonical_hash, hash_normalized, normalize};
use proofgate_core::testing;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../spec/proof-api/test-vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).expect("test-vectors.json parses")
}

#[test]
fn normalization_vectors() {
    let v = vectors();
    let cases = v["normalization_vectors"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let kind = case["type"].as_str().unwrap();
        let input = case["input"].as_str().unwrap();
        let want = case["expected_normalized"].as_str().unwrap();
        assert_eq!(normalize(kind, input), want, "{}", case["description"]);
    }
}

#[test]
fn identifier_hash_vectors() {
    let v = vectors();
    let cases = v["identifier_hash_vectors"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        assert_eq!(case["algorithm"], "sha256");
        let got = hash_normalized(case["normalized_identifier"].as_str().unwrap());
        let want = case["expected_hash"].as_str().unwrap();
        assert_eq!(got, want, "{}", case["description"]);
        // One of the issuer's documents writes the claim with a `sha256:` prefix.
        assert_eq!(canonical_hash(&format!("sha256:{want}")), want);
    }
}

#[tokio::test]
async fn proof_token_vectors_verify_with_exactly_their_claims() {
    let v = vectors();
    let r = common::rig().await;
    for case in v["proof_token_vectors"].as_array().unwrap() {
        let input = &case["input"];
        let expected = &case["expected_claims"];
        // The claims the issuer would mint: the vector's, with iat now and exp = iat + lifetime.
        let iat = testing::now();
        let mut claims = expected.clone();
        claims["iat"] = iat.into();
        claims["exp"] = (iat + input["expires_in_seconds"].as_i64().unwrap()).into();
        assert_eq!(
            hash_normalized(input["normalized_identifier"].as_str().unwrap()),
            expected["identifier_hash"].as_str().unwrap()
        );
        if let Some(header) = case.get("expected_header") {
            assert_eq!(header["kid"].as_str(), Some(r.key.kid()));
            assert_eq!(r.key.header(), *header);
        }
        let token = r.key.sign_json(&claims);
        let proof = r
            .enforcer
            .check_token(&token)
            .unwrap_or_else(|e| panic!("{}: {e}", case["description"]));
        let round_trip = serde_json::to_value(&proof.claims).unwrap();
        assert_eq!(round_trip, claims, "{}", case["description"]);
        assert_eq!(proof.subject(), input["verification_id"].as_str().unwrap());
        assert_eq!(proof.claims.proof_type.as_deref(), input["type"].as_str());
        assert_eq!(
            proof.verified_at,
            Some(
                chrono::DateTime::parse_from_rfc3339(input["verified_at"].as_str().unwrap())
                    .unwrap()
                    .timestamp()
            )
        );
    }
}

#[tokio::test]
async fn newer_optional_claims_and_unknown_claims_are_accepted() {
    let r = common::rig().await;
    let mut claims =
        serde_json::to_value(testing::claims("n1", "email", "email", "a@b.c")).unwrap();
    claims["proof_schema_version"] = "1.3".into();
    claims["proof_id"] = "n1".into();
    claims["decision"] = serde_json::json!({"allow": true});
    claims["something_new"] = serde_json::json!([1, 2, 3]);
    claims["identifier_hash"] =
        format!("sha256:{}", claims["identifier_hash"].as_str().unwrap()).into();
    let proof = r.enforcer.check_token(&r.key.sign_json(&claims)).unwrap();
    assert_eq!(
        proof.identifier_hash(),
        Some(hash_normalized("a@b.c").as_str())
    );
}

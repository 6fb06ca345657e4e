//! Verification cost: cold (cache miss, RS256), warm (cache hit), and the baselines measured in
//! the same run — a raw aws-lc-rs RSA-2048 verify with a pre-parsed key, and jsonwebtoken's
//! `crypto::verify` (which re-parses the key on every call).
//!
//! Run: `cargo bench -p proofgate-bench --bench verify`

// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

use std::sync::Arc;

use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use proofgate_core::clock::unix_now;
use proofgate_core::keys::{KeySet, KeyStore, KeysConfig};
use proofgate_core::policy::{Policy, Requirement};
use proofgate_core::revocation::{RevocationConfig, RevocationStore};
use proofgate_core::testing::{self, SigningKey};
use proofgate_core::tokens::TokenSource;
use proofgate_core::{Enforcer, Verifier, VerifierConfig};

fn bench(c: &mut Criterion) {
    let key = SigningKey::rsa("proof-holdings-2026-01");
    let jwks = testing::jwks(&[&key]);
    let keys = KeyStore::new(KeysConfig::new("http://127.0.0.1:9/unused"));
    keys.install(
        KeySet::from_jwks(jwks.to_string().as_bytes()).unwrap(),
        vec![1],
    );
    let verifier = Arc::new(Verifier::new(keys.clone(), VerifierConfig::default()));
    let token = key.sign(&testing::claims(
        "507f1f77bcf86cd799439011",
        "phone",
        "sms",
        "+37069199199",
    ));
    let now = unix_now();

    let (signing_input, sig_b64) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();
    let jwk = key.jwk();
    // The baseline: the same public key, parsed once by aws-lc-rs itself.
    let parsed = ParsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        key.public_key_bytes(),
    )
    .unwrap();

    let mut g = c.benchmark_group("verify");
    g.bench_function("raw_aws_lc_rsa2048_preparsed", |b| {
        b.iter(|| {
            parsed
                .verify_sig(black_box(signing_input.as_bytes()), black_box(&sig))
                .unwrap()
        })
    });
    let jwt_key =
        jsonwebtoken::DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), "AQAB").unwrap();
    g.bench_function("jsonwebtoken_crypto_verify", |b| {
        b.iter(|| {
            assert!(jsonwebtoken::crypto::verify(
                black_box(sig_b64),
                black_box(signing_input.as_bytes()),
                &jwt_key,
                jsonwebtoken::Algorithm::RS256
            )
            .unwrap())
        })
    });
    g.bench_function("cold_rs256_uncached", |b| {
        b.iter(|| verifier.verify_uncached(black_box(&token), now).unwrap())
    });
    // The cold path by stage: the payload's base64, its claims JSON, then a whole cold verify
    // with the cache insert (never-seen tokens into a cache at capacity, so each insert also
    // evicts), against `cold_rs256_uncached` above (the same without the cache).
    let (_, payload_b64) = signing_input.split_once('.').unwrap();
    g.bench_function("stage_payload_base64", |b| {
        b.iter(|| URL_SAFE_NO_PAD.decode(black_box(payload_b64)).unwrap())
    });
    // The cache key's cost on every request, hit or miss: the token's SHA-256 (the key now)
    // against foldhash over the whole token (the key's hash before, plus a compare on a hit).
    g.bench_function("stage_token_sha256", |b| {
        b.iter(|| {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(token.as_bytes()))
        })
    });
    let seeded = foldhash::fast::RandomState::default();
    g.bench_function("stage_token_foldhash", |b| {
        b.iter(|| std::hash::BuildHasher::hash_one(&seeded, black_box(token.as_str())))
    });
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).unwrap();
    g.bench_function("stage_claims_json", |b| {
        b.iter(|| {
            serde_json::from_slice::<proofgate_core::ProofClaims>(black_box(&payload)).unwrap()
        })
    });
    let fresh: Vec<String> = (0..20_000)
        .map(|i| {
            key.sign(&testing::claims(
                &format!("cold-{i:08}"),
                "phone",
                "sms",
                "+37069199199",
            ))
        })
        .collect();
    let small = Verifier::new(
        keys.clone(),
        VerifierConfig {
            cache_capacity: 1_000,
            ..VerifierConfig::default()
        },
    );
    let mut next = 0usize;
    g.bench_function("cold_rs256_with_cache_insert", |b| {
        b.iter(|| {
            // Each token once per pass over the pool; the pool is 20 × the cache.
            next = (next + 1) % fresh.len();
            small.verify(black_box(&fresh[next])).unwrap()
        })
    });
    verifier.verify(&token).unwrap();
    g.bench_function("warm_cache_hit", |b| {
        b.iter(|| verifier.verify(black_box(&token)).unwrap())
    });

    let mut rc = RevocationConfig::new("http://127.0.0.1:9");
    rc.list_url = None;
    let revocation = RevocationStore::new(rc, keys.clone());
    let enforcer = Enforcer::new(verifier.clone(), revocation, TokenSource::defaults());
    let policy = Policy::any_of("payouts", vec![Requirement::of_type("phone")]);
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    g.bench_function("warm_decide_allow", |b| {
        b.iter(|| black_box(enforcer.decide(&policy, black_box(&headers))))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);

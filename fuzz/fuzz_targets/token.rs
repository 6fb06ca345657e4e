//! Token parsing and verification.
//!
//! The input is read two ways:
//! - as a compact JWS handed to the verifier as it is (shape, base64url, header JSON, algorithm
//!   allow-list, refused headers, key selection, signature) — nothing here can forge a signature,
//!   so this half exercises everything before and around the signature check;
//! - split at the first `\n` into a header and a payload that are **signed with a published
//!   ES256 key** and then verified, so the claims parsing and every claim check after the
//!   signature (dates, issuer, audience, lifetime, status claim, `typ`) get fuzzed too.
//!
//! Either way the verifier must return, never panic, and a token it accepts must carry an `exp`
//! in the future and the configured issuer.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use proofgate_core::keys::{KeySet, KeyStore, KeysConfig};
use proofgate_core::testing::{self, SigningKey};
use proofgate_core::{Verifier, VerifierConfig};

/// 2026-03-01T00:00:00Z: a fixed clock keeps runs reproducible.
const NOW: i64 = 1_772_323_200;

struct Rig {
    ec: SigningKey,
    verifier: Verifier,
}

static RIG: LazyLock<Rig> = LazyLock::new(|| {
    let rsa = SigningKey::rsa("fuzz-rsa");
    let ec = SigningKey::es256("fuzz-ec");
    let store = KeyStore::new(KeysConfig::new("http://127.0.0.1:9/unused"));
    let jwks = testing::jwks(&[&rsa, &ec]).to_string();
    store.install(KeySet::from_jwks(jwks.as_bytes()).expect("jwks"), vec![1]);
    let verifier = Verifier::new(store, VerifierConfig::default());
    Rig { ec, verifier }
});

fuzz_target!(|data: &[u8]| {
    let rig = &*RIG;
    if let Ok(token) = std::str::from_utf8(data) {
        if let Ok(proof) = rig.verifier.verify_uncached(token, NOW) {
            // Only a forged signature could get here; fail loudly.
            panic!("an unsigned input verified: {:?}", proof.claims);
        }
    }
    let (header, payload) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let header =
        serde_json::from_slice::<serde_json::Value>(header).unwrap_or_else(|_| rig.ec.header());
    let token = rig.ec.sign_raw(&header, payload);
    if let Ok(proof) = rig.verifier.verify_uncached(&token, NOW) {
        assert!(proof.exp > NOW - 5, "accepted an expired token");
        assert_eq!(proof.claims.iss.as_deref(), Some("proof.holdings"));
        assert!(!proof.subject().is_empty());
    }
    // Key sets are parsed from the same bytes too (the issuer's JWKS is remote input).
    let _ = KeySet::from_jwks(data);
});

//! The attack corpus: hostile tokens and requests, by attack class, each with the exact decision
//! reason it must get. Run against a real issuer server on loopback (see `../common/mod.rs`).
//!
//! `verify.rs` holds the first hostile-token cases (alg `none` spellings, the basic HS/RS
//! confusion, one case per refused header, a stripped signature, a swapped payload, a numeric
//! string `exp`, a duplicated `exp`, the zero ES256 signature); this test crate adds the rest of each
//! class and the request-level tricks. A case list is checked as a whole, so one run reports
//! every case that gets the wrong reason.
//!
//! One module per attack class: `algorithms`, `keys` (key selection, purpose and validity
//! window), `signatures`, `encoding` (encodings and sizes), `claims`, `revocation` and
//! `requests` (request-level tricks and path normalization); the corpus and the helpers they
//! share are here.

#[path = "../common/mod.rs"]
mod common;

mod algorithms;
mod claims;
mod encoding;
mod keys;
mod requests;
mod revocation;
mod signatures;

use common::Rig;
use proofgate_core::testing;
use proofgate_core::Reason;
use serde_json::Value;

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

fn parts(token: &str) -> (String, String, String) {
    let mut it = token.split('.');
    (
        it.next().unwrap().into(),
        it.next().unwrap().into(),
        it.next().unwrap().into(),
    )
}

//! The claims of a proof.holdings proof token, and [`decode_unverified`], which reads a token's
//! header and claims without checking anything (for showing a token to a person).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A NumericDate: seconds since the Unix epoch. JSON numbers only; a numeric string is refused
/// when the claims are parsed, as the issuer's SDKs do.
pub type NumericDate = i64;

/// The claims of a proof token, as the issuer documents them.
///
/// Every claim is optional at the type level so that a token missing one gets a precise reason
/// from the verifier instead of a parse error; unknown claims are ignored; a claim present twice
/// makes the token malformed.
///
/// Strings are `Box<str>` and rare JSON values boxed: a verified proof keeps its claims for as long
/// as it is cached, and this layout is 136 bytes smaller per entry than `String`s and inline
/// values (see `bench/src/bin/cachekit.rs`). The four claims that nearly every token repeats —
/// `iss`, `proof_schema_version`, `type` and `channel` — are `Arc<str>`, shared with every other
/// token that carries the same known value ([`interned`]): 40 bytes less per cached token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProofClaims {
    /// Issuer; `proof.holdings` for real tokens.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "interned",
        default
    )]
    pub iss: Option<Arc<str>>,
    /// The proof id (the verification id); what the revocation list names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<Box<str>>,
    /// Issued at.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date",
        default
    )]
    pub iat: Option<NumericDate>,
    /// Expiry; required by proofgate.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date",
        default
    )]
    pub exp: Option<NumericDate>,
    /// Not before; never issued by proof.holdings but honoured when present.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date",
        default
    )]
    pub nbf: Option<NumericDate>,
    /// Audience; never issued, and refused when non-empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Box<serde_json::Value>>,
    /// Token id; must be a string when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<Box<str>>,
    /// `"1.0"` up to `"1.3"`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "interned",
        default
    )]
    pub proof_schema_version: Option<Arc<str>>,
    /// The account that owns the proof.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Box<str>>,
    /// phone, email, domain, social, wallet, account, telegram_bot, …
    #[serde(
        rename = "type",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "interned",
        default
    )]
    pub proof_type: Option<Arc<str>>,
    /// whatsapp, telegram, sms, email, dns, http, github, …
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "interned",
        default
    )]
    pub channel: Option<Arc<str>>,
    /// Hex SHA-256 of the normalized identifier (optionally prefixed `sha256:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier_hash: Option<Box<str>>,
    /// RFC 3339 time of the verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Box<str>>,
    /// Newer: where this token's status lives in a Token Status List.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusClaim>,
    /// Newer: the proof id, when it differs from `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_id: Option<Box<str>>,
    /// Newer: `"delegation"` for delegation tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<Box<str>>,
    /// Newer: an authorization decision carried by the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Box<serde_json::Value>>,
}

/// The `status` claim of draft-ietf-oauth-status-list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusClaim {
    /// The slot reference.
    pub status_list: StatusListRef,
}

/// A slot in a Token Status List.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListRef {
    /// Index of the slot.
    pub idx: u64,
    /// Where the list is published.
    pub uri: Box<str>,
}

/// The claim values many tokens share: the issuer, the schema version, the verification types
/// and their channels, the decision types. One `Arc` each for the life of the process.
static INTERNED: LazyLock<Vec<Arc<str>>> = LazyLock::new(|| {
    let types = crate::catalog::VERIFICATION_TYPES.iter();
    ["proof.holdings", "1.0"]
        .into_iter()
        .chain(types.clone().map(|(kind, _)| *kind))
        .chain(types.flat_map(|(_, channels)| channels.iter().copied()))
        .chain(crate::catalog::DECISION_TYPES)
        .map(Arc::from)
        .collect()
});

/// A string claim as an `Arc<str>`: the shared one for a value in [`INTERNED`], else its own.
/// The comparison is on the decoded value (read in place, not copied first), so an escaped
/// spelling of a known value is shared too.
fn interned<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Arc<str>>, D::Error> {
    struct Claim;
    impl<'de> serde::de::Visitor<'de> for Claim {
        type Value = Option<Arc<str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(
                INTERNED
                    .iter()
                    .find(|known| ***known == *v)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(v)),
            ))
        }
    }
    d.deserialize_option(Claim)
}

fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NumericDate>, D::Error> {
    // JSON numbers only; fractions are allowed by RFC 7519 and truncated.
    let v = Option::<f64>::deserialize(d)?;
    match v {
        None => Ok(None),
        Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f as i64)),
        Some(_) => Err(serde::de::Error::custom("NumericDate out of range")),
    }
}

impl ProofClaims {
    /// The proof id used for revocation: `proof_id` when present, else `sub`.
    pub fn revocation_ids(&self) -> impl Iterator<Item = &str> {
        self.sub
            .as_deref()
            .into_iter()
            .chain(self.proof_id.as_deref())
    }
}

/// A compact JWS's header and payload as decoded by [`decode_unverified`]: nothing about them
/// has been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Unverified {
    /// The protected header (`alg`, `kid`, `typ`, …).
    pub header: Map<String, Value>,
    /// The payload: the claims, every one of them (unknown ones included).
    pub payload: Map<String, Value>,
}

/// Decodes a compact JWS's header and payload **without verifying anything** — not the
/// signature, the key, the times, the issuer or revocation. For showing a token to a person
/// (`proofgate verify` prints the claims of a token it refuses, marked unverified); never for
/// deciding anything: decisions go through [`crate::verify::Verifier`].
///
/// `None` unless `token` is three `.`-separated segments of which the first two are base64url
/// (unpadded) JSON objects; the signature segment is not looked at. Pure: no keys, no clock.
///
/// ```
/// use proofgate_core::claims::decode_unverified;
/// // {"alg":"RS256"} . {"sub":"p1","exp":1700000000} . (any signature)
/// let t = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwMSIsImV4cCI6MTcwMDAwMDAwMH0.c2ln";
/// let d = decode_unverified(t).unwrap();
/// assert_eq!(d.header["alg"], "RS256");
/// assert_eq!(d.payload["exp"], 1700000000);
/// assert!(decode_unverified("not.a.token").is_none());
/// ```
pub fn decode_unverified(token: &str) -> Option<Unverified> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let object = |segment: &str| -> Option<Map<String, Value>> {
        let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(map) => Some(map),
            _ => None,
        }
    };
    Some(Unverified {
        header: object(h)?,
        payload: object(p)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn decodes_header_and_every_claim_of_any_compact_jws() {
        let h = b64(r#"{"alg":"none","kid":"k1"}"#);
        let p = b64(r#"{"iss":"elsewhere","exp":"soon","extra":[1,2]}"#);
        for sig in ["", "garbage!", "c2ln"] {
            let d = decode_unverified(&format!("{h}.{p}.{sig}")).unwrap();
            assert_eq!(d.header["kid"], "k1");
            assert_eq!(d.payload["exp"], "soon");
            assert_eq!(d.payload["extra"], serde_json::json!([1, 2]));
        }
    }

    #[test]
    fn refuses_what_is_not_a_compact_jws_with_json_objects() {
        let obj = b64("{}");
        for bad in [
            String::new(),
            "..".to_string(),
            format!("{obj}.{obj}"),
            format!("{obj}.{obj}.s.x"),
            format!("{obj}.{}.s", b64("[1]")),
            format!("{}.{obj}.s", b64("\"null\"")),
            format!("{obj}.{}.s", b64("{\"a\":")),
            format!("{obj}=.{obj}.s"),
            format!("{obj}.%%%.s"),
        ] {
            assert!(decode_unverified(&bad).is_none(), "{bad}");
        }
        assert!(decode_unverified(&format!("{obj}.{obj}.")).is_some());
    }

    #[test]
    fn known_values_of_the_repeated_claims_are_shared_and_others_kept_as_given() {
        let parse = |json: &str| serde_json::from_str::<ProofClaims>(json).unwrap();
        let a = parse(
            r#"{"iss":"proof.holdings","type":"phone","channel":"sms","proof_schema_version":"1.0"}"#,
        );
        // An escaped spelling of a known value is the same value.
        let b = parse(
            r#"{"iss":"proof.holdings","type":"ph\u006fne","channel":"sms","proof_schema_version":"1.0"}"#,
        );
        for (x, y) in [
            (&a.iss, &b.iss),
            (&a.proof_type, &b.proof_type),
            (&a.channel, &b.channel),
            (&a.proof_schema_version, &b.proof_schema_version),
        ] {
            let (x, y) = (x.as_ref().unwrap(), y.as_ref().unwrap());
            assert!(Arc::ptr_eq(x, y), "{x} is not shared");
        }
        assert_eq!(b.proof_type.as_deref(), Some("phone"));
        let c = parse(r#"{"iss":"elsewhere","type":"carrier-pigeon","channel":null}"#);
        assert_eq!(c.iss.as_deref(), Some("elsewhere"));
        assert_eq!(c.proof_type.as_deref(), Some("carrier-pigeon"));
        assert_eq!(c.channel, None);
        // Still one value each: a repeated claim, or one of another JSON type, is refused.
        for bad in [
            r#"{"type":"phone","type":"email"}"#,
            r#"{"type":5}"#,
            r#"{"channel":["sms"]}"#,
        ] {
            assert!(serde_json::from_str::<ProofClaims>(bad).is_err(), "{bad}");
        }
    }
}

//! The claims of a proof.holdings proof token.

use serde::{Deserialize, Serialize};

/// A NumericDate: seconds since the Unix epoch. JSON numbers only; a numeric string is refused
/// when the claims are parsed, as the issuer's SDKs do.
pub type NumericDate = i64;

/// The claims of a proof token, as the issuer documents them.
///
/// Every claim is optional at the type level so that a token missing one gets a precise reason
/// from the verifier instead of a parse error; unknown claims are ignored; a claim present twice
/// makes the token malformed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProofClaims {
    /// Issuer; `proof.holdings` for real tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The proof id (the verification id); what the revocation list names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
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
    pub aud: Option<serde_json::Value>,
    /// Token id; must be a string when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `"1.0"` up to `"1.3"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_schema_version: Option<String>,
    /// The account that owns the proof.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// phone, email, domain, social, wallet, account, telegram_bot, …
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub proof_type: Option<String>,
    /// whatsapp, telegram, sms, email, dns, http, github, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Hex SHA-256 of the normalized identifier (optionally prefixed `sha256:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier_hash: Option<String>,
    /// RFC 3339 time of the verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
    /// Newer: where this token's status lives in a Token Status List.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusClaim>,
    /// Newer: the proof id, when it differs from `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_id: Option<String>,
    /// Newer: `"delegation"` for delegation tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Newer: an authorization decision carried by the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<serde_json::Value>,
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
    pub uri: String,
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

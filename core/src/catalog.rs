//! The issuer's vocabulary that more than one crate needs: verification types and the channels
//! each may be verified over, and the names of the identity headers proofgate sets. The
//! configuration checks policies against it, the sandbox serves it, the core sets the headers.
//!
//! Sources (vendored in `spec/proof-api/`): the types and channels are the OpenAPI document's
//! `VerificationType` and `VerificationChannel` enums, grouped per type as the contract's test
//! vectors and the official SDKs group them (a test checks the two agree).
//!
//! Layer 1 (vocabulary): imports nothing from the crate.

/// Verification types and the channels valid for each.
pub const VERIFICATION_TYPES: &[(&str, &[&str])] = &[
    ("phone", &["whatsapp", "telegram", "viber", "sms"]),
    ("email", &["email"]),
    ("domain", &["dns", "http", "auto", "email"]),
    (
        "social",
        &[
            "github",
            "google",
            "facebook",
            "x",
            "linkedin",
            "instagram",
            "youtube",
            "tiktok",
        ],
    ),
    ("wallet", &["ethereum", "solana", "bitcoin"]),
    ("account", &["coinbase", "kraken"]),
    ("waba", &["waba_otp"]),
    ("telegram_bot", &["telegram_bot_token"]),
];

/// The channels of verification type `kind`, or `None` for a type this version does not know.
pub fn channels_of(kind: &str) -> Option<&'static [&'static str]> {
    VERIFICATION_TYPES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, c)| *c)
}

/// Whether `channel` is a channel of any known type.
pub fn known_channel(channel: &str) -> bool {
    VERIFICATION_TYPES
        .iter()
        .any(|(_, cs)| cs.contains(&channel))
}

/// Token `type`s the issuer signs with the proof key that record a person's decision, not control
/// of an identifier: a human approval (`confirmation`) and a recipient's consent
/// (`authorization`). A requirement that names no type accepts any proof of control, never
/// these; one that lists them by name accepts them.
pub const DECISION_TYPES: [&str; 2] = ["confirmation", "authorization"];

/// The identity headers' names, in the order they are set.
pub const IDENTITY_HEADER_NAMES: [&str; 5] = [
    "x-proof-subject",
    "x-proof-type",
    "x-proof-channel",
    "x-proof-identifier-hash",
    "x-proof-verified-at",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalog names exactly the types and channels the OpenAPI document enumerates.
    #[test]
    fn agrees_with_the_openapi_document() {
        let spec: serde_json::Value =
            serde_json::from_str(include_str!("../../spec/proof-api/openapi.json")).unwrap();
        let schemas = &spec["components"]["schemas"];
        let listed = |name: &str| -> Vec<String> {
            let mut v: Vec<String> = schemas[name]["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let mut types: Vec<String> = VERIFICATION_TYPES
            .iter()
            .map(|(t, _)| t.to_string())
            .collect();
        types.sort();
        assert_eq!(types, listed("VerificationType"));
        let mut channels: Vec<String> = VERIFICATION_TYPES
            .iter()
            .flat_map(|(_, cs)| cs.iter().map(|c| c.to_string()))
            .collect();
        channels.sort();
        channels.dedup();
        assert_eq!(channels, listed("VerificationChannel"));
    }
}

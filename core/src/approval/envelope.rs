//! The encrypted message envelope of the issuer's HITL crypto (contract §2, "`encrypted` and
//! hitl_crypto"): when a HITL configuration has a public key, the confirmation's `message` is a
//! JSON string `{v:1, alg:"RSA-OAEP-256+AES-256-GCM", ek, iv, ct, tag, kid}` that only the
//! approvers can read. A fresh AES-256-GCM key encrypts the message (12-byte IV, 16-byte tag,
//! AAD = the HITL id), and is wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256) under the
//! configuration's key; `kid` is the hex SHA-256 of the key's SubjectPublicKeyInfo DER; binary
//! members are base64url without padding.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The `alg` of a version 1 envelope.
pub const ALG: &str = "RSA-OAEP-256+AES-256-GCM";

/// A version 1 envelope, as sent in a confirmation's `message` (serialized to a JSON string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// `1`.
    pub v: u8,
    /// [`ALG`].
    pub alg: String,
    /// The AES key wrapped with RSA-OAEP-256, base64url.
    pub ek: String,
    /// The 12-byte GCM IV, base64url.
    pub iv: String,
    /// The ciphertext, base64url.
    pub ct: String,
    /// The 16-byte GCM tag, base64url.
    pub tag: String,
    /// Hex SHA-256 of the recipient key's SubjectPublicKeyInfo DER.
    pub kid: String,
}

/// Why a message could not be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The public key is neither a PEM `PUBLIC KEY` nor SubjectPublicKeyInfo DER of an RSA key.
    #[error("the HITL public key is not an RSA SubjectPublicKeyInfo (PEM or DER)")]
    BadKey,
    /// The cryptographic library failed.
    #[error("encryption failed")]
    Crypto,
}

/// An approvers' public key, ready to encrypt to.
pub struct RecipientKey {
    key: OaepPublicEncryptingKey,
    kid: String,
}

impl std::fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl RecipientKey {
    /// Reads a key given as PEM (`-----BEGIN PUBLIC KEY-----`) or as SubjectPublicKeyInfo DER.
    pub fn parse(key: &[u8]) -> Result<Self, EnvelopeError> {
        let der = match std::str::from_utf8(key) {
            Ok(text) if text.contains("-----BEGIN") => pem_body(text)?,
            _ => key.to_vec(),
        };
        let public = PublicEncryptingKey::from_der(&der).map_err(|_| EnvelopeError::BadKey)?;
        let spki = AsDer::<PublicKeyX509Der>::as_der(&public).map_err(|_| EnvelopeError::BadKey)?;
        let kid =
            hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki.as_ref()).as_ref());
        let key = OaepPublicEncryptingKey::new(public).map_err(|_| EnvelopeError::BadKey)?;
        Ok(Self { key, kid })
    }

    /// Hex SHA-256 of the key's SubjectPublicKeyInfo DER.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Encrypts `plaintext` for the approvers of `hitl_id`; the envelope as its JSON text.
    pub fn seal(&self, hitl_id: &str, plaintext: &[u8]) -> Result<String, EnvelopeError> {
        let rng = SystemRandom::new();
        let mut cek = [0u8; 32];
        let mut iv = [0u8; 12];
        rng.fill(&mut cek).map_err(|_| EnvelopeError::Crypto)?;
        rng.fill(&mut iv).map_err(|_| EnvelopeError::Crypto)?;
        let aead = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &cek).map_err(|_| EnvelopeError::Crypto)?,
        );
        let mut ct = plaintext.to_vec();
        let tag = aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(hitl_id.as_bytes()),
                &mut ct,
            )
            .map_err(|_| EnvelopeError::Crypto)?;
        let mut wrapped = vec![0u8; self.key.ciphertext_size()];
        let ek = self
            .key
            .encrypt(&OAEP_SHA256_MGF1SHA256, &cek, &mut wrapped, None)
            .map_err(|_| EnvelopeError::Crypto)?;
        let envelope = Envelope {
            v: 1,
            alg: ALG.to_owned(),
            ek: URL_SAFE_NO_PAD.encode(ek),
            iv: URL_SAFE_NO_PAD.encode(iv),
            ct: URL_SAFE_NO_PAD.encode(&ct),
            tag: URL_SAFE_NO_PAD.encode(tag.as_ref()),
            kid: self.kid.clone(),
        };
        serde_json::to_string(&envelope).map_err(|_| EnvelopeError::Crypto)
    }
}

/// The DER inside the first PEM block of `text`.
fn pem_body(text: &str) -> Result<Vec<u8>, EnvelopeError> {
    let mut inside = false;
    let mut b64 = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN") {
            inside = true;
        } else if line.starts_with("-----END") {
            break;
        } else if inside {
            b64.push_str(line);
        }
    }
    STANDARD.decode(b64).map_err(|_| EnvelopeError::BadKey)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::{KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey};

    /// What an approver's app does: unwrap the key, open the message with the HITL id as AAD.
    fn open(private: &PrivateDecryptingKey, hitl_id: &str, text: &str) -> Vec<u8> {
        let e: Envelope = serde_json::from_str(text).unwrap();
        assert_eq!((e.v, e.alg.as_str()), (1, ALG));
        let oaep = OaepPrivateDecryptingKey::new(private.clone()).unwrap();
        let ek = URL_SAFE_NO_PAD.decode(&e.ek).unwrap();
        let mut cek = vec![0u8; oaep.min_output_size()];
        let cek = oaep
            .decrypt(&OAEP_SHA256_MGF1SHA256, &ek, &mut cek, None)
            .unwrap()
            .to_vec();
        let iv: [u8; 12] = URL_SAFE_NO_PAD.decode(&e.iv).unwrap().try_into().unwrap();
        let mut data = URL_SAFE_NO_PAD.decode(&e.ct).unwrap();
        let tag = URL_SAFE_NO_PAD.decode(&e.tag).unwrap();
        assert_eq!(tag.len(), 16);
        data.extend_from_slice(&tag);
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek).unwrap());
        key.open_in_place(
            Nonce::assume_unique_for_key(iv),
            Aad::from(hitl_id),
            &mut data,
        )
        .expect("opens with the HITL id as AAD")
        .to_vec()
    }

    #[test]
    fn round_trip_aad_and_kid() {
        let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
        let spki = AsDer::<PublicKeyX509Der>::as_der(&private.public_key()).unwrap();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(spki.as_ref())
        );
        for given in [pem.as_bytes(), spki.as_ref()] {
            let key = RecipientKey::parse(given).unwrap();
            let expected_kid =
                hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki.as_ref()).as_ref());
            assert_eq!(key.kid(), expected_kid);
            let text = key
                .seal("hitl_1", "POST /payouts: 100 EUR".as_bytes())
                .unwrap();
            assert!(!text.contains("payouts"), "{text}");
            assert_eq!(open(&private, "hitl_1", &text), b"POST /payouts: 100 EUR");
            let e: Envelope = serde_json::from_str(&text).unwrap();
            assert_eq!(e.kid, expected_kid);
            assert_eq!(URL_SAFE_NO_PAD.decode(&e.ek).unwrap().len(), 256);
        }
        // Another HITL id (the AAD) does not open it.
        let key = RecipientKey::parse(spki.as_ref()).unwrap();
        let text = key.seal("hitl_1", b"x").unwrap();
        let result = std::panic::catch_unwind(|| open(&private, "hitl_2", &text));
        assert!(result.is_err());
        assert_eq!(
            RecipientKey::parse(b"not a key").unwrap_err(),
            EnvelopeError::BadKey
        );
    }
}

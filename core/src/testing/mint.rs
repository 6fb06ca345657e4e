//! Minting keys, JWKS documents, tokens, revocation lists and status lists.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::claims::{ProofClaims, StatusClaim, StatusListRef};
use crate::identifier;

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Base64url without padding, as JWS uses it.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Pair {
    Rsa(Box<RsaKeyPair>),
    Ec(Box<EcdsaKeyPair>),
}

/// A private signing key with its `kid`, able to sign any header and payload (including hostile
/// ones, for tests).
pub struct SigningKey {
    kid: String,
    pair: Pair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh RSA-2048 key (RS256).
    pub fn rsa(kid: impl Into<String>) -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        Self {
            kid: kid.into(),
            pair: Pair::Rsa(Box::new(pair)),
        }
    }

    /// A fresh P-256 key (ES256).
    pub fn es256(kid: impl Into<String>) -> Self {
        let doc = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .expect("EC key generation");
        let pair =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                .expect("EC key parse");
        Self {
            kid: kid.into(),
            pair: Pair::Ec(Box::new(pair)),
        }
    }

    /// Loads an RSA key from PKCS#8 DER (as written by [`SigningKey::rsa_pkcs8`]).
    pub fn rsa_from_pkcs8(kid: impl Into<String>, der: &[u8]) -> Result<Self, String> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| e.to_string())?;
        Ok(Self {
            kid: kid.into(),
            pair: Pair::Rsa(Box::new(pair)),
        })
    }

    /// The PKCS#8 DER of an RSA key, for persisting it; `None` for EC keys.
    pub fn rsa_pkcs8(&self) -> Option<Vec<u8>> {
        match &self.pair {
            Pair::Rsa(p) => p.as_der().ok().map(|d| d.as_ref().to_vec()),
            Pair::Ec(_) => None,
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `"RS256"` or `"ES256"`.
    pub fn alg(&self) -> &'static str {
        match self.pair {
            Pair::Rsa(_) => "RS256",
            Pair::Ec(_) => "ES256",
        }
    }

    /// The public key as a JWK, as the issuer publishes it.
    pub fn jwk(&self) -> Value {
        match &self.pair {
            Pair::Rsa(p) => {
                let public = p.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.kid,
                })
            }
            Pair::Ec(p) => {
                let point = p.public_key().as_ref();
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": b64(&point[1..33]),
                    "y": b64(&point[33..65]),
                    "use": "sig",
                    "alg": "ES256",
                    "kid": self.kid,
                })
            }
        }
    }

    /// The bytes an attacker would use as an HMAC secret in an algorithm-confusion attack: the
    /// public key's DER.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(p) => p
                .public_key()
                .as_der()
                .map(|d| d.as_ref().to_vec())
                .unwrap_or_default(),
            Pair::Ec(p) => p.public_key().as_ref().to_vec(),
        }
    }

    /// Raw signature over `message` with this key's algorithm.
    pub fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(p) => {
                let mut sig = vec![0; p.public_modulus_len()];
                p.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .expect("RSA sign");
                sig
            }
            Pair::Ec(p) => p
                .sign(&SystemRandom::new(), message)
                .expect("EC sign")
                .as_ref()
                .to_vec(),
        }
    }

    /// Signs `payload` under `header` exactly as given (no field is added or checked).
    pub fn sign_raw(&self, header: &Value, payload: &[u8]) -> String {
        let signing_input = format!("{}.{}", b64(header.to_string()), b64(payload));
        let sig = self.sign_bytes(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(sig))
    }

    /// The header the issuer uses: `{"alg", "typ": "JWT", "kid"}`.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid})
    }

    /// Signs a JSON payload with the issuer's header.
    pub fn sign_json(&self, payload: &Value) -> String {
        self.sign_raw(&self.header(), payload.to_string().as_bytes())
    }

    /// Signs proof claims with the issuer's header.
    pub fn sign(&self, claims: &ProofClaims) -> String {
        self.sign_raw(
            &self.header(),
            serde_json::to_vec(claims)
                .expect("claims serialize")
                .as_slice(),
        )
    }
}

/// A JWKS document for the given keys.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

/// Valid claims for a proof of `identifier` of `kind` over `channel`, issued now, valid 30 days.
pub fn claims(sub: &str, kind: &str, channel: &str, identifier: &str) -> ProofClaims {
    let now = now();
    ProofClaims {
        iss: Some("proof.holdings".into()),
        sub: Some(sub.into()),
        iat: Some(now),
        exp: Some(now + 30 * 24 * 3600),
        proof_schema_version: Some("1.0".into()),
        user_id: Some("507f1f77bcf86cd799439012".into()),
        proof_type: Some(kind.into()),
        channel: Some(channel.into()),
        identifier_hash: Some(identifier::identifier_hash(kind, identifier).into()),
        verified_at: Some(rfc3339(now).into()),
        ..ProofClaims::default()
    }
}

/// The same claims with a status-list slot.
pub fn with_status(mut claims: ProofClaims, uri: &str, idx: u64) -> ProofClaims {
    claims.status = Some(StatusClaim {
        status_list: StatusListRef {
            idx,
            uri: uri.into(),
        },
    });
    claims
}

/// RFC 3339 with milliseconds and `Z`, as the issuer writes times.
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A revocation list document; signed over `{"revoked": [...]}` when `signer` is given.
pub fn revocation_list(signer: Option<&SigningKey>, proof_ids: &[&str]) -> Value {
    let entries: Vec<Value> = proof_ids
        .iter()
        .map(|id| json!({"proof_id": id, "revoked_at": rfc3339(now()), "reason": "user_request"}))
        .collect();
    let signature = signer.map(|k| k.sign_json(&json!({ "revoked": entries })));
    json!({
        "revoked": entries,
        "issued_at": rfc3339(now()),
        "count": proof_ids.len(),
        "signature": signature,
        "kid": signer.map(|k| k.kid().to_string()),
    })
}

/// Packs 2-bit (or `bits`-bit) statuses least-significant-bits first, zlib-compresses and
/// base64url-encodes them, as the `lst` of a Token Status List.
pub fn pack_status_list(bits: u8, statuses: &[u8]) -> String {
    let per_byte = 8 / bits as usize;
    let mut bytes = vec![0u8; statuses.len().div_ceil(per_byte)];
    for (i, s) in statuses.iter().enumerate() {
        bytes[i / per_byte] |= (s & ((1u16 << bits) - 1) as u8) << ((i % per_byte) * bits as usize);
    }
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&bytes).expect("zlib");
    b64(enc.finish().expect("zlib"))
}

/// A signed Token Status List JWT for `uri`.
pub fn status_list_jwt(key: &SigningKey, uri: &str, bits: u8, statuses: &[u8], ttl: i64) -> String {
    let now = now();
    let header = json!({"alg": key.alg(), "typ": "statuslist+jwt", "kid": key.kid()});
    let payload = json!({
        "sub": uri,
        "iat": now,
        "exp": now + 3600,
        "ttl": ttl,
        "status_list": {"bits": bits, "lst": pack_status_list(bits, statuses)},
    });
    key.sign_raw(&header, payload.to_string().as_bytes())
}

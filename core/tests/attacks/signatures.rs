//! Signature attacks: stripped, degenerate (RSA, ES256 "psychic") and re-encoded signatures,
//! valid signatures over a modified payload or header, and segment games.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proofgate_core::testing::{self, b64, SigningKey};
use proofgate_core::Reason;
use serde_json::json;

use crate::common::rig;
use crate::{base_claims, parts, with, Corpus, KID};

/// The same signing input with another signature.
fn resigned(token: &str, signature: &[u8]) -> String {
    let (h, p, _) = parts(token);
    format!("{h}.{p}.{}", b64(signature))
}

#[tokio::test]
async fn signature_attacks() {
    let r = rig().await;
    let k = &r.key;
    let ec = SigningKey::es256("proof-holdings-ec-1");
    r.server.set_jwks(testing::jwks(&[k, &ec]));
    r.keys.refresh().await.unwrap();
    let claims = base_claims();
    let rs = k.sign_json(&claims);
    let es = ec.sign_json(&claims);
    let (h, p, s) = parts(&rs);
    let mut c = Corpus::default();

    // Signature stripping.
    c.add(
        "signature stripping",
        "RS256, two segments",
        format!("{h}.{p}"),
        Reason::Malformed,
    );
    c.add(
        "signature stripping",
        "RS256, empty signature",
        format!("{h}.{p}."),
        Reason::InvalidSignature,
    );
    let (eh, ep, es_sig) = parts(&es);
    c.add(
        "signature stripping",
        "ES256, empty signature",
        format!("{eh}.{ep}."),
        Reason::InvalidSignature,
    );
    c.add(
        "signature stripping",
        "signature \"AA\"",
        format!("{h}.{p}.AA"),
        Reason::InvalidSignature,
    );

    // ES256 "psychic signatures" (CVE-2022-21449) and other degenerate ECDSA values.
    let n = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let mut r_eq_s_eq_n = n.clone();
    r_eq_s_eq_n.extend_from_slice(&n);
    let mut r0_s1 = vec![0u8; 63];
    r0_s1.push(1);
    let mut r1_s0 = vec![0u8; 31];
    r1_s0.push(1);
    r1_s0.extend_from_slice(&[0u8; 32]);
    for (name, sig) in [
        ("r = s = 0", vec![0u8; 64]),
        ("r = s = n", r_eq_s_eq_n),
        ("r = 0, s = 1", r0_s1),
        ("r = 1, s = 0", r1_s0),
        ("all ones", vec![0xff; 64]),
        (
            "DER-encoded r = s = 0",
            vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00],
        ),
        ("63 bytes", vec![1u8; 63]),
        ("65 bytes", vec![1u8; 65]),
    ] {
        c.add(
            "psychic signature",
            name,
            resigned(&es, &sig),
            Reason::InvalidSignature,
        );
    }
    // The real ES256 signature DER-encoded instead of fixed-width.
    let raw = URL_SAFE_NO_PAD.decode(&es_sig).unwrap();
    c.add(
        "psychic signature",
        "the real signature, DER-encoded",
        resigned(&es, &der_ecdsa(&raw[..32], &raw[32..])),
        Reason::InvalidSignature,
    );
    // RSA degenerate signatures.
    let rsa_sig = URL_SAFE_NO_PAD.decode(&s).unwrap();
    let mut longer = vec![0u8];
    longer.extend_from_slice(&rsa_sig);
    let mut one = vec![0u8; 255];
    one.push(1);
    for (name, sig) in [
        ("zeros", vec![0u8; 256]),
        ("one", one),
        ("modulus-length ones", vec![0xff; 256]),
        ("the real signature with a leading zero byte", longer),
        ("the real signature truncated", rsa_sig[..255].to_vec()),
    ] {
        c.add(
            "rsa signature",
            name,
            resigned(&rs, &sig),
            Reason::InvalidSignature,
        );
    }
    // A valid signature over a modified payload or header.
    let swap = |h: &str, p: String| format!("{h}.{}.{s}", b64(p));
    c.add(
        "modified payload",
        "same claims, other whitespace",
        swap(&h, serde_json::to_string_pretty(&claims).unwrap()),
        Reason::InvalidSignature,
    );
    c.add(
        "modified payload",
        "subject changed",
        swap(
            &h,
            with(claims.clone(), "sub", json!("someone-else")).to_string(),
        ),
        Reason::InvalidSignature,
    );
    c.add(
        "modified payload",
        "exp extended",
        swap(
            &h,
            with(claims.clone(), "exp", json!(9_999_999_999i64)).to_string(),
        ),
        Reason::InvalidSignature,
    );
    c.add(
        "modified payload",
        "identifier hash replaced",
        swap(
            &h,
            with(
                claims.clone(),
                "identifier_hash",
                json!(proofgate_core::identifier::identifier_hash(
                    "email",
                    "ceo@corp.example"
                )),
            )
            .to_string(),
        ),
        Reason::InvalidSignature,
    );
    c.add(
        "modified header",
        "typ dropped",
        format!(
            "{}.{p}.{s}",
            b64(json!({"alg": "RS256", "kid": KID}).to_string())
        ),
        Reason::InvalidSignature,
    );
    c.add(
        "modified header",
        "header re-encoded with padding bits changed",
        format!("{}.{p}.{s}", reencode_with_spaces(&h)),
        Reason::InvalidSignature,
    );
    // Segments swapped or repeated.
    c.add(
        "segment games",
        "payload and header swapped",
        format!("{p}.{h}.{s}"),
        Reason::Malformed,
    );
    // The payload is decoded only once the signature holds over the exact bytes.
    c.add(
        "segment games",
        "header twice",
        format!("{h}.{h}.{s}"),
        Reason::InvalidSignature,
    );
    c.add(
        "segment games",
        "two tokens glued",
        format!("{rs}.{es}"),
        Reason::Malformed,
    );
    c.ok("control", "RS256", rs.clone());
    c.ok("control", "ES256", es.clone());
    c.check(&r);
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn der_ecdsa(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn int(v: &[u8]) -> Vec<u8> {
        let v = &v[v.iter().take_while(|b| **b == 0).count().min(v.len() - 1)..];
        let mut out = vec![0x02];
        let pad = v[0] & 0x80 != 0;
        out.push((v.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
        out
    }
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

/// The header's JSON with a space after the first `{`: same meaning, other bytes.
fn reencode_with_spaces(h: &str) -> String {
    let json = String::from_utf8(URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    b64(json.replacen('{', "{ ", 1))
}

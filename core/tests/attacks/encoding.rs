//! Encoding and size attacks: whitespace, base64url padding and trailing bits, header forms,
//! nested JWTs, and the size cap applied before any parsing.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use proofgate_core::testing::b64;
use proofgate_core::Reason;
use serde_json::json;

use crate::common::{phone_token, rig};
use crate::{base_claims, parts, with, Corpus, KID};

#[tokio::test]
async fn encoding_and_size_attacks() {
    let r = rig().await;
    let k = &r.key;
    let good = phone_token(k, "enc");
    let (h, p, s) = parts(&good);
    let mut c = Corpus::default();

    // Whitespace anywhere. Inside the payload segment it breaks the signature first: the payload
    // is decoded only once the signature holds over the exact bytes.
    c.add(
        "whitespace",
        "CRLF in the payload",
        format!("{h}.{}\r\n{}.{s}", &p[..10], &p[10..]),
        Reason::InvalidSignature,
    );
    c.add(
        "whitespace",
        "tab after a dot",
        format!("{h}.\t{p}.{s}"),
        Reason::InvalidSignature,
    );
    for (name, t) in [
        ("leading space", format!(" {good}")),
        ("trailing space", format!("{good} ")),
        ("trailing newline", format!("{good}\n")),
        (
            "space in the signature",
            format!("{h}.{p}.{} {}", &s[..10], &s[10..]),
        ),
        ("NUL at the end", format!("{good}\u{0}")),
        ("zero-width space", format!("{h}\u{200b}.{p}.{s}")),
    ] {
        c.add("whitespace", name, t, Reason::Malformed);
    }
    // Padding and alphabet variants of base64url.
    let std_sig = STANDARD.encode(URL_SAFE_NO_PAD.decode(&s).unwrap());
    for (name, t) in [
        ("padded header", format!("{h}==.{p}.{s}")),
        ("padded signature", format!("{h}.{p}.{s}==")),
        ("standard base64 signature", format!("{h}.{p}.{std_sig}")),
        ("percent-encoded dot", format!("{h}%2E{p}.{s}")),
    ] {
        let want = if name == "standard base64 signature" && !std_sig.contains(['+', '/', '=']) {
            None
        } else {
            Some(Reason::Malformed)
        };
        match want {
            Some(w) => c.add("padding", name, t, w),
            None => c.ok("padding", name, t),
        }
    }
    c.add(
        "padding",
        "padded payload",
        format!("{h}.{p}=.{s}"),
        Reason::InvalidSignature,
    );
    // Non-canonical trailing bits in the last base64 character decode to the same bytes in
    // lenient decoders; here they are refused.
    let last = s.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).unwrap();
    let sibling = alphabet.chars().nth(idx ^ 1).unwrap();
    c.add(
        "padding",
        "signature with non-canonical trailing bits",
        format!("{h}.{p}.{}{sibling}", &s[..s.len() - 1]),
        Reason::Malformed,
    );
    // Header forms.
    for (name, header) in [
        ("header with a BOM", "\u{feff}{\"alg\":\"RS256\"}"),
        ("header JSON string", "\"RS256\""),
        ("header null", "null"),
        ("header truncated", "{\"alg\":\"RS256\""),
        ("header with a comment", "{\"alg\":\"RS256\" /* x */}"),
        ("header single quotes", "{'alg':'RS256'}"),
        (
            "header deep nesting",
            &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        ),
    ] {
        c.add(
            "header form",
            name,
            format!("{}.{p}.{s}", b64(header)),
            Reason::Malformed,
        );
    }
    // Sizes: the cap applies before any parsing.
    let mb = 1024 * 1024;
    c.add("size", "1 MB of 'a'", "a".repeat(mb), Reason::Malformed);
    c.add("size", "1 MB of dots", ".".repeat(mb), Reason::Malformed);
    c.add(
        "size",
        "1 MB payload in a well-formed token",
        format!("{h}.{}.{s}", "A".repeat(mb)),
        Reason::Malformed,
    );
    c.add(
        "size",
        "1 MB signed token",
        k.sign_json(&with(base_claims(), "user_id", json!("u".repeat(mb)))),
        Reason::Malformed,
    );
    c.add(
        "size",
        "1 MB header",
        format!(
            "{}.{p}.{s}",
            b64(format!(
                "{{\"alg\":\"RS256\",\"x\":\"{}\"}}",
                "x".repeat(mb)
            ))
        ),
        Reason::Malformed,
    );
    // The exact boundary: the largest token under the 8 KiB cap verifies, one byte more does not.
    let cap = r.verifier.config().max_token_bytes;
    let sized =
        |filler: usize| k.sign_json(&with(base_claims(), "user_id", json!("u".repeat(filler))));
    // Binary search for the largest filler that keeps the token within the cap.
    let (mut lo, mut hi) = (1, cap);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if sized(mid).len() <= cap {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let filler = lo;
    let (at, over) = (sized(filler), sized(filler + 1));
    assert!(at.len() <= cap && over.len() > cap);
    c.ok("size", format!("{} bytes (at the cap)", at.len()), at);
    c.add(
        "size",
        format!("{} bytes (over the cap)", over.len()),
        over,
        Reason::Malformed,
    );
    // Nested JWTs: a signed token whose payload is itself a token.
    let inner = phone_token(k, "inner");
    c.add(
        "nested JWT",
        "payload is a token",
        k.sign_raw(&k.header(), inner.as_bytes()),
        Reason::Malformed,
    );
    c.add(
        "nested JWT",
        "payload is a token, cty JWT",
        k.sign_raw(
            &json!({"alg": "RS256", "kid": KID, "cty": "JWT"}),
            inner.as_bytes(),
        ),
        Reason::ForbiddenHeader,
    );
    c.add(
        "nested JWT",
        "payload is a JSON string holding a token",
        k.sign_raw(&k.header(), json!(inner).to_string().as_bytes()),
        Reason::Malformed,
    );
    c.add(
        "nested JWT",
        "typ at+jwt",
        k.sign_raw(
            &json!({"alg": "RS256", "kid": KID, "typ": "at+jwt"}),
            base_claims().to_string().as_bytes(),
        ),
        Reason::Malformed,
    );
    c.ok(
        "nested JWT",
        "typ jwt in lower case",
        k.sign_raw(
            &json!({"alg": "RS256", "kid": KID, "typ": "jwt"}),
            base_claims().to_string().as_bytes(),
        ),
    );
    c.add(
        "nested JWT",
        "a JWE (five segments)",
        format!("{h}.{p}.{s}.{p}.{s}"),
        Reason::Malformed,
    );
    c.ok("control", "the real token", good);
    c.check(&r);
}

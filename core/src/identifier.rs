//! Identifier normalization and hashing, exactly as the issuer does it.
//!
//! A proof token never carries the identifier itself, only `identifier_hash`: the lowercase hex
//! SHA-256 of the *normalized* identifier. An allowlist entry in a policy is normalized and hashed
//! the same way once, at configuration time, and compared with the token's claim.

use aws_lc_rs::digest;

/// Normalizes `input` the way the issuer does before hashing.
///
/// - `phone`: E.164 — a leading `+` followed by the digits only (spaces, dashes, dots and
///   brackets dropped);
/// - `email`: trimmed and lowercased (plus addressing kept);
/// - `domain`: lowercased, without scheme, leading `www.`, path or trailing slash or dot;
/// - `wallet`: lowercased for `0x…` (Ethereum-style) addresses, kept as is otherwise
///   (base58 addresses are case-sensitive);
/// - any other type: trimmed.
pub fn normalize(kind: &str, input: &str) -> String {
    let input = input.trim();
    match kind {
        "phone" => normalize_phone(input),
        "email" => input.to_lowercase(),
        "domain" => normalize_domain(input),
        "wallet" => {
            if input.len() > 2 && (input.starts_with("0x") || input.starts_with("0X")) {
                input.to_lowercase()
            } else {
                input.to_string()
            }
        }
        _ => input.to_string(),
    }
}

fn normalize_phone(input: &str) -> String {
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::with_capacity(digits.len() + 1);
    out.push('+');
    // "00" is the international prefix written out; E.164 drops it.
    out.push_str(if !input.starts_with('+') && digits.starts_with("00") {
        &digits[2..]
    } else {
        &digits
    });
    out
}

fn normalize_domain(input: &str) -> String {
    let lower = input.to_lowercase();
    let mut rest = lower.as_str();
    if let Some(pos) = rest.find("://") {
        rest = &rest[pos + 3..];
    }
    // Drop any path, query or fragment, then a port is kept out of the comparison as well.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest = &rest[..end];
    if let Some(at) = rest.rfind('@') {
        rest = &rest[at + 1..];
    }
    if let Some(colon) = rest.find(':') {
        rest = &rest[..colon];
    }
    rest = rest.trim_end_matches('.');
    rest = rest.strip_prefix("www.").unwrap_or(rest);
    rest.to_string()
}

/// Lowercase hex SHA-256 of an already normalized identifier.
pub fn hash_normalized(normalized: &str) -> String {
    let d = digest::digest(&digest::SHA256, normalized.as_bytes());
    hex_lower(d.as_ref())
}

/// Normalizes `input` for `kind` and returns its identifier hash.
pub fn identifier_hash(kind: &str, input: &str) -> String {
    hash_normalized(&normalize(kind, input))
}

/// Brings an `identifier_hash` claim to its canonical form: the optional `sha256:` prefix (one of
/// the issuer's documents shows it) removed and the hex lowercased.
pub fn canonical_hash(claim: &str) -> String {
    bare_hash(claim).to_ascii_lowercase()
}

/// [`canonical_hash`] before lowercasing: the claim trimmed, without its `sha256:` prefix.
pub(crate) fn bare_hash(claim: &str) -> &str {
    let claim = claim.trim();
    claim
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("sha256:"))
        .map_or(claim, |_| &claim[7..])
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_variants() {
        assert_eq!(normalize("phone", "+370 (691) 99.199"), "+37069199199");
        assert_eq!(normalize("phone", "0037069199199"), "+37069199199");
    }

    #[test]
    fn domain_variants() {
        assert_eq!(
            normalize("domain", "HTTP://www.Example.com:8080/path?q"),
            "example.com"
        );
        assert_eq!(normalize("domain", "example.com."), "example.com");
    }

    #[test]
    fn canonical_hash_accepts_prefix() {
        assert_eq!(canonical_hash("sha256:ABCD"), "abcd");
        assert_eq!(canonical_hash("SHA256:abcd"), "abcd");
        assert_eq!(canonical_hash("abcd"), "abcd");
    }
}

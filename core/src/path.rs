//! Request-targets and path normalization: which request-target forms are accepted
//! ([`request_target`]) and the one spelling of a path that routes are matched on and the
//! upstream is sent ([`normalize_path`]). See [`crate::routes`] for why paths are normalized
//! before they are matched.
//!
//! Layer 4 (routes and decisions), below [`crate::routes`]: imports nothing from the crate.

use http::Method;

/// Why a request path was refused by [`normalize_path`]. The adapter answers 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("invalid percent escape")]
    InvalidEscape,
    /// `%2F`: an encoded `/` would make the gateway and the upstream disagree on segments.
    #[error("encoded '/' in path")]
    EncodedSlash,
    /// `\` raw or encoded: some servers read it as `/`.
    #[error("backslash in path")]
    Backslash,
    /// NUL raw or encoded.
    #[error("NUL in path")]
    Nul,
    /// A control character (raw or encoded) other than NUL.
    #[error("control character in path")]
    ControlCharacter,
    /// `%25` followed by two hex digits: a double encoding, read differently by servers that
    /// decode twice.
    #[error("double percent-encoding in path")]
    DoubleEncoding,
    /// A `.` or `..` segment with `;` parameters (`/..;/`), which some servers treat as `..`.
    #[error("dot segment with parameters in path")]
    DotSegmentParameters,
    /// Percent escapes that decode to bytes which are not UTF-8 (an overlong `%C0%AE` for `.`,
    /// a lone continuation byte, …): some servers decode them leniently into other characters.
    #[error("percent escapes that are not UTF-8 in path")]
    InvalidUtf8,
    /// The request-target is neither origin-form (`/path`), absolute-form with an `http` or
    /// `https` scheme, nor `*` of an `OPTIONS` request: `foo:/admin` and the like, which an
    /// upstream may read as `/admin` while no route saw that path.
    #[error("request-target form not accepted")]
    TargetForm,
}

/// A request-target the gateway accepts (RFC 9112 §3.2), split from the raw request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestTarget<'a> {
    /// Origin-form (`/path?query`), or the path and query of an `http`/`https` absolute-form
    /// target (`http://host/path?query`).
    Path {
        /// The path, not yet normalized; `/` for an absolute-form target without one.
        path: &'a str,
        /// The query without its `?`, if any.
        query: Option<&'a str>,
        /// The authority of an absolute-form target (which then replaces the `Host` header, as
        /// RFC 9112 §3.2.2 says a proxy must).
        authority: Option<&'a str>,
    },
    /// `*` of an `OPTIONS` request: the server as a whole, no resource.
    Asterisk,
}

/// Splits a raw request-target into the forms the gateway accepts; anything else (a scheme
/// other than `http`/`https`, `foo:/admin`, authority-form outside `CONNECT`, an empty target,
/// non-ASCII bytes) is [`PathError::TargetForm`] and answered 400, so a route is never chosen
/// for a path other than the one the upstream will read.
///
/// ```
/// use http::Method;
/// use proofgate_core::path::{request_target, PathError, RequestTarget};
///
/// assert_eq!(
///     request_target(b"/admin?x=1", &Method::GET),
///     Ok(RequestTarget::Path { path: "/admin", query: Some("x=1"), authority: None })
/// );
/// assert_eq!(
///     request_target(b"HTTP://app.example", &Method::GET),
///     Ok(RequestTarget::Path { path: "/", query: None, authority: Some("app.example") })
/// );
/// assert_eq!(request_target(b"*", &Method::OPTIONS), Ok(RequestTarget::Asterisk));
/// for hostile in ["foo:/admin", "urn:/public/../admin", "x-y:/admin", "*", "admin", ""] {
///     assert_eq!(request_target(hostile.as_bytes(), &Method::GET), Err(PathError::TargetForm));
/// }
/// ```
pub fn request_target<'a>(raw: &'a [u8], method: &Method) -> Result<RequestTarget<'a>, PathError> {
    let raw = std::str::from_utf8(raw)
        .ok()
        .filter(|r| r.is_ascii())
        .ok_or(PathError::TargetForm)?;
    if raw == "*" {
        return if *method == Method::OPTIONS {
            Ok(RequestTarget::Asterisk)
        } else {
            Err(PathError::TargetForm)
        };
    }
    let split = |path_and_query: &'a str, authority| {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        RequestTarget::Path {
            path: if path.is_empty() { "/" } else { path },
            query,
            authority,
        }
    };
    if raw.starts_with('/') {
        return Ok(split(raw, None));
    }
    let rest = ["http://", "https://"]
        .iter()
        .find(|s| raw.len() >= s.len() && raw[..s.len()].eq_ignore_ascii_case(s))
        .map(|s| &raw[s.len()..])
        .ok_or(PathError::TargetForm)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(end);
    // No user information (`user@host`): it has no place in a request and hides the real host.
    if authority.is_empty() || authority.contains('@') || path_and_query.starts_with('#') {
        return Err(PathError::TargetForm);
    }
    Ok(split(path_and_query, Some(authority)))
}

/// Normalizes a request path so that every spelling of a resource gives the same string.
///
/// In order:
/// 1. the query (`?…`) and any fragment (`#…`) are dropped;
/// 2. `\` (raw or `%5C`) is refused: Windows servers and some frameworks read it as `/`;
/// 3. percent escapes are checked (`%` must be followed by two hex digits) and those of
///    unreserved characters (`A–Z a–z 0–9 - . _ ~`) decoded, so `%2e%2e` is `..` and `%41` is
///    `A`; an encoded `/` (`%2F`), NUL or control character is refused; other escapes are kept,
///    with uppercase hex, because decoding them would change the path's meaning (`%3F` is not
///    `?`) and the result must stay a valid path the adapter can forward byte for byte; a
///    double encoding (`%25` then two hex digits) is refused;
/// 4. characters not allowed raw in a path (space, `"`, `<`, non-ASCII, …) are percent-encoded,
///    control characters refused;
/// 5. empty segments are dropped (`//admin` → `/admin`), `.` segments removed and `..` segments
///    remove the segment before them, never climbing above `/`; a dot segment carrying `;`
///    parameters (`/..;/`) is refused;
/// 6. a trailing `/` (or a trailing dot segment) is kept as `/`.
///
/// Case is kept: the upstream may care. Route matching ignores ASCII case instead.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let raw = raw.split(['?', '#']).next().unwrap_or("");
    if raw.is_empty() {
        return Ok("/".to_string());
    }
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let mut out = String::with_capacity(raw.len());
    // Whether the path ends with a segment separator (`/a/`, `/a/.`, `/a/..`).
    let mut trailing_slash = false;
    for segment in raw[1..].split('/') {
        let start = out.len();
        out.push('/');
        push_decoded_segment(&mut out, segment)?;
        let decoded = &out[start + 1..];
        let name = decoded.split(';').next().unwrap_or(decoded);
        let is_dot = matches!(name, "." | "..");
        if is_dot && name.len() != decoded.len() {
            return Err(PathError::DotSegmentParameters);
        }
        if decoded == ".." {
            out.truncate(start);
            let parent = out.rfind('/').unwrap_or(0);
            out.truncate(parent);
            trailing_slash = true;
        } else if decoded.is_empty() || decoded == "." {
            out.truncate(start);
            trailing_slash = true;
        } else {
            trailing_slash = false;
        }
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Appends `segment` to `out` with unreserved escapes decoded and other bytes encoded as needed.
fn push_decoded_segment(out: &mut String, segment: &str) -> Result<(), PathError> {
    let start = out.len();
    push_decoded_bytes(out, segment)?;
    // Checked on the result, so that `%25%41F` (→ `%25AF`) is caught as well as `%25AF`.
    let pushed = &out.as_bytes()[start..];
    let double = pushed
        .windows(5)
        .any(|w| w.starts_with(b"%25") && w[3].is_ascii_hexdigit() && w[4].is_ascii_hexdigit());
    if double {
        return Err(PathError::DoubleEncoding);
    }
    Ok(())
}

fn push_decoded_bytes(out: &mut String, segment: &str) -> Result<(), PathError> {
    let bytes = segment.as_bytes();
    let mut i = 0;
    // Escapes of bytes above 0x7F must decode to UTF-8 (checked only when one occurs).
    let mut high = Vec::new();
    while i < bytes.len() {
        if !high.is_empty() && bytes[i] != b'%' {
            check_utf8(&mut high)?;
        }
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|h| hex_value(*h)),
                bytes.get(i + 2).and_then(|l| hex_value(*l)),
            ) else {
                return Err(PathError::InvalidEscape);
            };
            let decoded = hi << 4 | lo;
            match decoded {
                b'/' => return Err(PathError::EncodedSlash),
                b'\\' => return Err(PathError::Backslash),
                0 => return Err(PathError::Nul),
                0x01..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
                d if is_unreserved(d) => out.push(d as char),
                d => push_escape(out, d),
            }
            if decoded >= 0x80 {
                high.push(decoded);
            } else if !high.is_empty() {
                check_utf8(&mut high)?;
            }
            i += 3;
            continue;
        }
        match b {
            b'\\' => return Err(PathError::Backslash),
            0 => return Err(PathError::Nul),
            0x01..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
            b if is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b'@' => {
                out.push(b as char)
            }
            b => push_escape(out, b),
        }
        i += 1;
    }
    check_utf8(&mut high)
}

/// Refuses a run of percent-decoded bytes above 0x7F that is not UTF-8 (overlong forms such as
/// `%C0%AE`, surrogates, stray continuation bytes), then empties it.
fn check_utf8(high: &mut Vec<u8>) -> Result<(), PathError> {
    let ok = std::str::from_utf8(high).is_ok();
    high.clear();
    if ok {
        Ok(())
    } else {
        Err(PathError::InvalidUtf8)
    }
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[usize::from(byte >> 4)] as char);
    out.push(HEX[usize::from(byte & 0xf)] as char);
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// Decodes unreserved escapes of a pattern segment, for spotting `%2e%2e` in patterns.
pub(crate) fn decode_unreserved_lossy(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    match push_decoded_segment(&mut out, segment) {
        Ok(()) => out,
        Err(_) => segment.to_string(),
    }
}

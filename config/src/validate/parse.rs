//! Text → file format: TOML syntax, nesting depth and a scan for secrets, before any typed
//! parsing.

use crate::error::{line_col, ConfigError, ConfigErrors, ErrorKind};
use crate::file::ConfigFile;
use crate::secrets::{API_KEY_ENV, COOKIE_KEY_ENV, WEBHOOK_SECRET_ENV};

/// Keys that would hold a secret, and the variable to use instead.
const SECRET_KEYS: &[(&str, &str)] = &[
    ("api_key", API_KEY_ENV),
    ("proof_api_key", API_KEY_ENV),
    ("apikey", API_KEY_ENV),
    ("cookie_key", COOKIE_KEY_ENV),
    ("cookie_secret", COOKIE_KEY_ENV),
    ("state_key", COOKIE_KEY_ENV),
    ("webhook_secret", WEBHOOK_SECRET_ENV),
    ("proof_webhook_secret", WEBHOOK_SECRET_ENV),
    ("secret", ""),
    ("secret_key", ""),
    ("hmac_key", ""),
    ("password", ""),
    ("private_key", ""),
];
/// Parses the text: a TOML table first (syntax errors with line and column), then a scan for
/// secrets, then the typed file format.
pub(crate) fn parse(text: &str) -> Result<ConfigFile, ConfigErrors> {
    let syntax = |e: toml::de::Error| {
        ConfigErrors::one(ConfigError {
            kind: ErrorKind::Syntax,
            location: String::new(),
            line_col: e.span().map(|s| line_col(text, s.start)),
            message: e.message().trim().to_string(),
        })
    };
    if let Some(offset) = too_deep(text) {
        return Err(ConfigErrors::one(ConfigError {
            kind: ErrorKind::Syntax,
            location: String::new(),
            line_col: Some(line_col(text, offset)),
            message: format!("arrays and tables nested deeper than {MAX_NESTING} levels"),
        }));
    }
    let table: toml::Table = text.parse().map_err(syntax)?;
    let mut errors = Vec::new();
    scan_secrets(&toml::Value::Table(table), &mut String::new(), &mut errors);
    if let Some(errors) = ConfigErrors::from_vec(errors) {
        return Err(errors);
    }
    toml::from_str(text).map_err(syntax)
}

/// Deepest nesting of `[` and `{` accepted; the real format needs 3.
const MAX_NESTING: usize = 32;

/// The offset where brackets nest deeper than [`MAX_NESTING`], if they do.
///
/// The TOML parser recurses once per level and stops at 80, which takes more than 1 MiB of
/// stack in a debug build; refusing deep input up front keeps parsing cheap on any thread.
/// Strings and comments are skipped so that brackets inside them neither count nor hide others.
fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let triple = b[i..].starts_with(&[q, q, q]);
                i += if triple { 3 } else { 1 };
                while i < b.len() {
                    if q == b'"' && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q && (!triple || b[i..].starts_with(&[q, q, q])) {
                        i += if triple { 2 } else { 0 };
                        break;
                    }
                    if !triple && b[i] == b'\n' {
                        break;
                    }
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

fn scan_secrets(value: &toml::Value, path: &mut String, errors: &mut Vec<ConfigError>) {
    let secret = |location: &str, message: String| ConfigError {
        kind: ErrorKind::Secret,
        location: location.to_string(),
        line_col: None,
        message,
    };
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let lower = key.to_ascii_lowercase();
                if let Some((_, var)) = SECRET_KEYS.iter().find(|(k, _)| *k == lower) {
                    let message = if var.is_empty() {
                        format!(
                            "secrets are never read from the configuration file; proofgate reads \
                             them from the environment only ({API_KEY_ENV}, {COOKIE_KEY_ENV}, \
                             {WEBHOOK_SECRET_ENV})"
                        )
                    } else {
                        format!(
                            "secrets are never read from the configuration file; remove this key \
                             and set the {var} environment variable instead"
                        )
                    };
                    errors.push(secret(path, message));
                } else {
                    scan_secrets(value, path, errors);
                }
                path.truncate(len);
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                scan_secrets(item, path, errors);
                path.truncate(len);
            }
        }
        toml::Value::String(s) => {
            let looks_secret = s.starts_with("pk_live_")
                || s.starts_with("pk_test_")
                || s.starts_with("whsec_")
                || s.contains("PRIVATE KEY-----");
            if looks_secret {
                // The value itself is never repeated in the message.
                errors.push(secret(
                    path,
                    format!(
                        "this value looks like a secret (an API key, webhook secret or private \
                         key); secrets are read from the environment only ({API_KEY_ENV}, \
                         {COOKIE_KEY_ENV}, {WEBHOOK_SECRET_ENV})"
                    ),
                ));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_outside_strings_and_comments() {
        let deep = |n: usize| format!("x = {}1{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(too_deep(&deep(MAX_NESTING)), None);
        assert_eq!(too_deep(&deep(MAX_NESTING + 1)), Some(4 + MAX_NESTING));
        // Closing brackets in strings and comments do not hide depth...
        let hidden = format!(
            "x = [ \"{}\", '{}', \"\"\"\n{}\"\"\" # {}\n{}",
            "]".repeat(40),
            "]".repeat(40),
            "]".repeat(40),
            "]".repeat(40),
            "[".repeat(40)
        );
        assert!(too_deep(&hidden).is_some());
        // ...and opening ones there do not count.
        let quoted = format!(
            "a = \"{}\"\nb = '{}' # {}\nc = \"\\\"[[[\"",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert_eq!(too_deep(&quoted), None);
        assert_eq!(too_deep("[[routes]]\nx = [{ a = [1] }]"), None);
    }
}

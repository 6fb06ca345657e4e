//! Text → file format: TOML syntax, nesting depth, a scan for secrets and every unknown key,
//! before any typed parsing.

use toml_edit::{Item, TableLike, Value};

use super::edit_distance;
use super::schema::{self, join, Tables};
use crate::error::{line_col, ConfigError, ConfigErrors, ErrorKind, Locations};
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
/// Parses the text: the TOML document first (syntax errors with line and column), then one walk
/// over it that reports every secret and every unknown key, each with its line, and records
/// where each key is; then, if the walk found nothing, the typed file format.
///
/// Unknown keys stop here, before validation: the value a misspelt key meant to set is not
/// there, and checking the default in its place would only add misleading errors.
pub(crate) fn parse(text: &str) -> Result<ConfigFile, ConfigErrors> {
    let syntax = |message: &str, span: Option<std::ops::Range<usize>>| {
        ConfigErrors::one(ConfigError {
            kind: ErrorKind::Syntax,
            location: String::new(),
            line_col: span.map(|s| line_col(text, s.start)),
            message: message.trim().to_string(),
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
    let document = toml_edit::ImDocument::parse(text).map_err(|e| syntax(e.message(), e.span()))?;
    let mut walk = Walk {
        text,
        tables: schema::tables(),
        errors: Vec::new(),
        locations: Locations::default(),
    };
    walk.table(document.as_table(), Some(""), "");
    if !walk.errors.is_empty() {
        let mut errors = walk.errors;
        errors.sort_by_key(|e| e.line_col);
        return Err(ConfigErrors::from_vec(errors).expect("non-empty"));
    }
    let mut file: ConfigFile = toml::from_str(text).map_err(|e| syntax(e.message(), e.span()))?;
    file.locations = walk.locations;
    Ok(file)
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

/// One pass over the document: secrets, unknown keys, and where each key is.
struct Walk<'a> {
    text: &'a str,
    tables: &'static Tables,
    errors: Vec<ConfigError>,
    locations: Locations,
}

impl Walk<'_> {
    fn at(&self, span: Option<std::ops::Range<usize>>) -> Option<(usize, usize)> {
        span.map(|s| line_col(self.text, s.start))
    }

    /// The keys of `table`, found at `location`; `schema` is its path in the file format when
    /// its keys are known (`None` under a key that is itself unknown or not a table).
    fn table(&mut self, table: &dyn TableLike, schema: Option<&str>, location: &str) {
        let known = schema.and_then(|s| self.tables.get(s)).map(|t| t.keys);
        for (key, item) in table.iter() {
            let here = join(location, key);
            let at = self
                .at(table.key(key).and_then(|k| k.span()))
                .or_else(|| self.at(item.span()));
            if let Some(at) = at {
                self.locations.insert(here.clone(), at);
            }
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
                self.errors.push(secret(here, at, message));
                continue;
            }
            let child = match (schema, known) {
                (Some(schema), Some(Some(keys))) if !keys.contains(&key) => {
                    self.errors.push(ConfigError {
                        kind: ErrorKind::Syntax,
                        location: here.clone(),
                        line_col: at,
                        message: unknown_key(self.tables, schema, key, keys),
                    });
                    None
                }
                (Some(schema), Some(_)) => Some(join(schema, key)),
                _ => None,
            };
            self.item(item, child.as_deref(), &here);
        }
    }

    fn item(&mut self, item: &Item, schema: Option<&str>, location: &str) {
        match item {
            Item::Table(t) => self.table(t, schema, location),
            Item::ArrayOfTables(list) => {
                for (i, t) in list.iter().enumerate() {
                    let here = format!("{location}[{i}]");
                    if let Some(at) = self.at(t.span()) {
                        self.locations.insert(here.clone(), at);
                    }
                    self.table(t, schema, &here);
                }
            }
            Item::Value(v) => self.value(v, schema, location),
            Item::None => {}
        }
    }

    fn value(&mut self, value: &Value, schema: Option<&str>, location: &str) {
        match value {
            Value::String(s) => {
                let s = s.value();
                let looks_secret = s.starts_with("pk_live_")
                    || s.starts_with("pk_test_")
                    || s.starts_with("whsec_")
                    || s.contains("PRIVATE KEY-----");
                if looks_secret {
                    // The value itself is never repeated in the message.
                    let at = self.at(value.span());
                    self.errors.push(secret(
                        location.to_string(),
                        at,
                        format!(
                            "this value looks like a secret (an API key, webhook secret or \
                             private key); secrets are read from the environment only \
                             ({API_KEY_ENV}, {COOKIE_KEY_ENV}, {WEBHOOK_SECRET_ENV})"
                        ),
                    ));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    let here = format!("{location}[{i}]");
                    if let Some(at) = self.at(v.span()) {
                        self.locations.insert(here.clone(), at);
                    }
                    self.value(v, schema, &here);
                }
            }
            Value::InlineTable(t) => self.table(t, schema, location),
            _ => {}
        }
    }
}

fn secret(location: String, line_col: Option<(usize, usize)>, message: String) -> ConfigError {
    ConfigError {
        kind: ErrorKind::Secret,
        location,
        line_col,
        message,
    }
}

/// How a table of the file format is written: `[step_up]`, `[[routes]]`, `[listeners.tls]`.
fn header(tables: &Tables, path: &str) -> String {
    match tables.get(path) {
        _ if path.is_empty() => "top level".to_string(),
        Some(t) if t.in_list => format!("[[{path}]]"),
        _ => format!("[{path}]"),
    }
}

/// The message for `key`, unknown in the table at `schema` whose keys are `keys`: the close
/// key it is probably a misspelling of, else the table it belongs to, else the keys there are.
fn unknown_key(tables: &Tables, schema: &str, key: &str, keys: &[&str]) -> String {
    let here = match schema {
        "" => "at the top level".to_string(),
        table => format!("in {}", header(tables, table)),
    };
    let normal = |k: &str| k.to_ascii_lowercase().replace('-', "_");
    let close = keys
        .iter()
        .map(|k| (edit_distance(&normal(key), k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3) && *d < key.chars().count())
        .min();
    if let Some((_, k)) = close {
        return format!("unknown key `{key}` {here}; did you mean `{k}`?");
    }
    let elsewhere: Vec<String> = tables
        .iter()
        .filter(|(path, t)| {
            *path != schema && t.keys.is_some_and(|ks| ks.contains(&normal(key).as_str()))
        })
        .map(|(path, _)| header(tables, path))
        .collect();
    if let Some((last, rest)) = elsewhere.split_last() {
        let tables = if rest.is_empty() {
            last.clone()
        } else {
            format!("{} and {last}", rest.join(", "))
        };
        return format!("unknown key `{key}` {here}; it is a key of {tables}");
    }
    format!(
        "unknown key `{key}` {here}; the keys there are {}",
        keys.iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
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

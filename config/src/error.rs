//! Configuration errors: every problem found, each with where it is.

use std::collections::HashMap;
use std::fmt;

/// What kind of problem a [`ConfigError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// The file is not valid TOML, or a value has the wrong type or an unknown key.
    Syntax,
    /// The file holds a secret, which belongs in the environment.
    Secret,
    /// A value is well-formed TOML but not acceptable (unknown name, bad pattern, …).
    Invalid,
    /// A secret from the environment is missing or malformed.
    Environment,
}

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What kind of problem.
    pub kind: ErrorKind,
    /// Where: a key path such as `routes[2].policy`, an environment variable, or the file.
    pub location: String,
    /// 1-based line and column in the file, when known.
    pub line_col: Option<(usize, usize)>,
    /// What is wrong, and where it helps, what to do.
    pub message: String,
}

impl ConfigError {
    /// An [`ErrorKind::Invalid`] problem at `location`.
    pub fn invalid(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Invalid,
            location: location.into(),
            line_col: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.location.is_empty(), self.line_col) {
            (false, Some((line, col))) => {
                write!(
                    f,
                    "{} (line {line}, column {col}): {}",
                    self.location, self.message
                )
            }
            (true, Some((line, col))) => write!(f, "line {line}, column {col}: {}", self.message),
            (false, None) => write!(f, "{}: {}", self.location, self.message),
            (true, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, in file order where possible. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Wraps `errors`; `None` when there are none.
    pub fn from_vec(errors: Vec<ConfigError>) -> Option<Self> {
        (!errors.is_empty()).then_some(Self { errors })
    }

    /// A single problem.
    pub fn one(error: ConfigError) -> Self {
        Self {
            errors: vec![error],
        }
    }

    /// The problems.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// Iterates over the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always `false`: a `ConfigErrors` holds at least one problem.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Whether some problem is at `location`.
    pub fn has(&self, location: &str) -> bool {
        self.errors.iter().any(|e| e.location == location)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{n} problem{} in the configuration:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

/// Where each key of a configuration file was written: key paths as [`ConfigError::location`]
/// spells them (`step_up.state_ttl`, `routes[2].policy`, `routes[2]` for the `[[routes]]` entry
/// itself) → 1-based line and column.
///
/// [`ConfigFile::from_toml_str`](crate::ConfigFile::from_toml_str) fills it in, and validation
/// uses it to give every problem a line: the key's own, or that of the nearest enclosing key
/// or table written in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locations {
    at: HashMap<String, (usize, usize)>,
}

impl Locations {
    pub(crate) fn insert(&mut self, path: String, line_col: (usize, usize)) {
        self.at.entry(path).or_insert(line_col);
    }

    /// Line and column of the key at `path`, if it was written in the file.
    pub fn get(&self, path: &str) -> Option<(usize, usize)> {
        self.at.get(path).copied()
    }

    /// Line and column of the key at `path`, or else of the nearest enclosing key or table
    /// written in the file (`routes[2].path` → `routes[2]` → `routes`).
    pub fn nearest(&self, path: &str) -> Option<(usize, usize)> {
        let mut path = path;
        loop {
            if let Some(at) = self.get(path) {
                return Some(at);
            }
            path = &path[..path.rfind(['.', '['])?];
        }
    }

    /// Whether no key was recorded.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

/// 1-based line and column of byte `offset` in `text`, counting characters.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before, |i| &before[i + 1..])
        .chars()
        .count()
        + 1;
    (line, col)
}

//! Secrets, read from the environment only.
//!
//! The configuration file has no field for a secret, and a file that tries (`api_key = …`, or
//! any value that looks like an API key or webhook secret) is refused: files get committed,
//! copied into images and printed by `proofgate check`; environment variables come from a
//! secret store.

use std::fmt;

use crate::config::Config;
use crate::error::{ConfigError, ConfigErrors, ErrorKind};

/// The Proof API key (`pk_live_…` or `pk_test_…`), needed for step-up.
pub const API_KEY_ENV: &str = "PROOF_API_KEY";
/// The key signing the step-up state cookie, at least 32 bytes; every replica needs the same.
pub const COOKIE_KEY_ENV: &str = "PROOFGATE_COOKIE_KEY";
/// The webhook signing secret (`whsec_…`), needed to accept `proof.revoked` webhooks.
pub const WEBHOOK_SECRET_ENV: &str = "PROOF_WEBHOOK_SECRET";

/// The whole URL of the cluster's Redis, credentials included (`rediss://user:pass@host`);
/// replaces `cluster.redis_url`.
pub const REDIS_URL_ENV: &str = "PROOFGATE_REDIS_URL";
/// The cluster's Redis ACL user name (with `cluster.redis_url`).
pub const REDIS_USERNAME_ENV: &str = "PROOFGATE_REDIS_USERNAME";
/// The cluster's Redis password (with `cluster.redis_url`).
pub const REDIS_PASSWORD_ENV: &str = "PROOFGATE_REDIS_PASSWORD";

/// Shortest cookie key accepted, in bytes.
pub const MIN_COOKIE_KEY_BYTES: usize = 32;

/// A secret value. Its `Debug` and `Display` print `[redacted]`, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The secrets proofgate uses, each optional until [`Secrets::require_for`] says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// `PROOF_API_KEY`.
    pub api_key: Option<Secret>,
    /// `PROOFGATE_COOKIE_KEY`.
    pub cookie_key: Option<Secret>,
    /// `PROOF_WEBHOOK_SECRET`.
    pub webhook_secret: Option<Secret>,
    /// `PROOFGATE_REDIS_URL`: the cluster's whole Redis URL, credentials included.
    pub redis_url: Option<Secret>,
    /// `PROOFGATE_REDIS_USERNAME`.
    pub redis_username: Option<Secret>,
    /// `PROOFGATE_REDIS_PASSWORD`.
    pub redis_password: Option<Secret>,
}

impl Secrets {
    /// Reads the secrets from the process environment. An unset or empty variable is `None`;
    /// a malformed one is an error naming the variable (never its value).
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the secrets through `lookup` (the environment in [`Secrets::from_env`]; a map in
    /// tests, since the process environment is shared between test threads).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut errors = Vec::new();
        let api_key = get(API_KEY_ENV);
        if let Some(key) = &api_key {
            if !(key.starts_with("pk_live_") || key.starts_with("pk_test_")) || key.trim() != key {
                errors.push(env_error(
                    API_KEY_ENV,
                    "must be a Proof API key starting with pk_live_ or pk_test_",
                ));
            }
        }
        let cookie_key = get(COOKIE_KEY_ENV);
        if let Some(key) = &cookie_key {
            if key.len() < MIN_COOKIE_KEY_BYTES {
                errors.push(env_error(
                    COOKIE_KEY_ENV,
                    format!(
                        "must be at least {MIN_COOKIE_KEY_BYTES} bytes of random text \
                         (e.g. `openssl rand -base64 48`)"
                    ),
                ));
            }
        }
        let webhook_secret = get(WEBHOOK_SECRET_ENV);
        if let Some(secret) = &webhook_secret {
            if secret.trim() != secret {
                errors.push(env_error(
                    WEBHOOK_SECRET_ENV,
                    "has leading or trailing whitespace",
                ));
            }
        }
        let redis_url = get(REDIS_URL_ENV);
        if let Some(url) = &redis_url {
            let scheme = url::Url::parse(url).map(|u| u.scheme().to_owned());
            if !matches!(scheme.as_deref(), Ok("redis" | "rediss")) {
                errors.push(env_error(
                    REDIS_URL_ENV,
                    "must be a redis:// or rediss:// URL (rediss for TLS)",
                ));
            }
        }
        match ConfigErrors::from_vec(errors) {
            Some(errors) => Err(errors),
            None => Ok(Self {
                api_key: api_key.map(Secret),
                cookie_key: cookie_key.map(Secret),
                webhook_secret: webhook_secret.map(Secret),
                redis_url: redis_url.map(Secret),
                redis_username: get(REDIS_USERNAME_ENV).map(Secret),
                redis_password: get(REDIS_PASSWORD_ENV).map(Secret),
            }),
        }
    }

    /// Checks that the secrets `config` needs are present: the API key and the cookie key when
    /// some policy steps up. The webhook secret stays optional (without it the webhook endpoint
    /// answers 404 and revocations arrive with the next list refresh).
    pub fn require_for(&self, config: &Config) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        if config.uses_step_up() {
            if self.api_key.is_none() {
                errors.push(env_error(
                    API_KEY_ENV,
                    "not set; a policy uses step_up, which creates verification requests \
                     through the Proof API",
                ));
            }
            if self.cookie_key.is_none() {
                errors.push(env_error(
                    COOKIE_KEY_ENV,
                    "not set; a policy uses step_up, whose state cookie it signs",
                ));
            }
        }
        if let Some(cluster) = &config.cluster {
            if cluster.redis_url.is_none() && self.redis_url.is_none() {
                errors.push(env_error(
                    REDIS_URL_ENV,
                    "not set, and [cluster] has no redis_url; set cluster.redis_url (without \
                     credentials) or PROOFGATE_REDIS_URL",
                ));
            }
        }
        if config.uses_approval() && !config.uses_step_up() {
            if self.api_key.is_none() {
                errors.push(env_error(
                    API_KEY_ENV,
                    "not set; a policy asks for approval, which creates confirmations through \
                     the Proof API",
                ));
            }
            if self.cookie_key.is_none() {
                errors.push(env_error(
                    COOKIE_KEY_ENV,
                    "not set; a policy asks for approval, whose tickets are signed with a key \
                     derived from it",
                ));
            }
        }
        ConfigErrors::from_vec(errors).map_or(Ok(()), Err)
    }
}

fn env_error(name: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        kind: ErrorKind::Environment,
        location: format!("environment variable {name}"),
        line_col: None,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_and_redacts() {
        let s = Secrets::from_lookup(lookup(&[
            (API_KEY_ENV, "pk_test_abcdef"),
            (COOKIE_KEY_ENV, "0123456789abcdef0123456789abcdef-extra"),
            (WEBHOOK_SECRET_ENV, "whsec_xyz"),
        ]))
        .unwrap();
        assert_eq!(s.api_key.as_ref().unwrap().expose(), "pk_test_abcdef");
        let shown = format!("{s:?} {}", s.webhook_secret.as_ref().unwrap());
        assert!(!shown.contains("pk_test_abcdef"), "{shown}");
        assert!(!shown.contains("whsec_xyz"), "{shown}");
        assert!(!shown.contains("0123456789"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn unset_and_empty_are_none() {
        let s = Secrets::from_lookup(lookup(&[(API_KEY_ENV, "")])).unwrap();
        assert_eq!(s, Secrets::default());
    }

    #[test]
    fn malformed_values_are_errors_without_the_value() {
        let errors = Secrets::from_lookup(lookup(&[
            (API_KEY_ENV, "sk_wrong_kind"),
            (COOKIE_KEY_ENV, "short"),
            (WEBHOOK_SECRET_ENV, " whsec_padded "),
        ]))
        .unwrap_err();
        assert_eq!(errors.len(), 3);
        let text = errors.to_string();
        assert!(text.contains(API_KEY_ENV) && text.contains(COOKIE_KEY_ENV));
        assert!(!text.contains("sk_wrong_kind") && !text.contains("short\""));
        assert!(errors.iter().all(|e| e.kind == ErrorKind::Environment));
    }

    #[test]
    fn the_redis_url_must_be_one_and_is_never_repeated() {
        let errors =
            Secrets::from_lookup(lookup(&[(REDIS_URL_ENV, "https://u:hunter2@host")])).unwrap_err();
        let text = errors.to_string();
        assert!(
            text.contains(REDIS_URL_ENV) && !text.contains("hunter2"),
            "{text}"
        );
        let s = Secrets::from_lookup(lookup(&[
            (REDIS_URL_ENV, "rediss://u:hunter2@host:6380"),
            (REDIS_PASSWORD_ENV, "hunter3"),
        ]))
        .unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
    }
}

//! How a call travels: the client's options (timeouts and the retry policy), the URL of an
//! endpoint, and the send loop that retries.

use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use super::{ApiError, ProofApiClient};

/// Options of a [`ProofApiClient`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Time allowed for one attempt, from sending to the last byte of the body.
    ///
    /// Defaults to `30 s`.
    pub timeout: Duration,
    /// Time allowed to open a connection.
    ///
    /// Defaults to `10 s`.
    pub connect_timeout: Duration,
    /// How many times a retryable failure is retried.
    ///
    /// Defaults to `2`.
    pub max_retries: u32,
    /// The first retry's delay; retry `n` waits `min(base · 2^n, retry_max_delay)`.
    ///
    /// Defaults to `1 s`.
    pub retry_base_delay: Duration,
    /// The longest computed retry delay.
    ///
    /// Defaults to `10 s`.
    pub retry_max_delay: Duration,
    /// The longest `Retry-After` the client waits for; a longer one ends the call with
    /// [`ApiError::RateLimited`] at once, so that a caller on a request path is not held for
    /// minutes.
    ///
    /// Defaults to `60 s`.
    pub max_retry_after: Duration,
    /// The `User-Agent` sent.
    ///
    /// Defaults to `proofgate/<version>`.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_retries: 2,
            retry_base_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            user_agent: concat!("proofgate/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl ClientConfig {
    /// Sets [`ClientConfig::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`ClientConfig::max_retries`].
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets [`ClientConfig::retry_base_delay`].
    pub fn retry_base_delay(mut self, delay: Duration) -> Self {
        self.retry_base_delay = delay;
        self
    }

    /// Sets [`ClientConfig::retry_max_delay`].
    pub fn retry_max_delay(mut self, delay: Duration) -> Self {
        self.retry_max_delay = delay;
        self
    }

    /// Sets [`ClientConfig::max_retry_after`].
    pub fn max_retry_after(mut self, limit: Duration) -> Self {
        self.max_retry_after = limit;
        self
    }

    /// The delay before retry `attempt` (0-based) when the response said nothing:
    /// `min(base · 2^attempt, max)`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(20));
        self.retry_base_delay
            .saturating_mul(factor)
            .min(self.retry_max_delay)
    }
}

impl ProofApiClient {
    pub(super) fn url_for(&self, segments: &[&str], api: bool) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            if api {
                path.extend(["api", "v1"]);
            }
            // Each id is one segment, percent-encoded: an id cannot climb out of its path.
            path.extend(segments);
        }
        url
    }

    pub(super) async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let url = self.url_for(segments, true);
        self.send(method, url, body, query).await
    }

    pub(super) async fn send<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let body = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| ApiError::Config {
                message: e.to_string(),
            })?),
            None => None,
        };
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.key.0)).map_err(|_| {
            ApiError::Config {
                message: "API key not a valid header value".into(),
            }
        })?;
        auth.set_sensitive(true);
        let mut attempt = 0u32;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, auth.clone())
                .header(reqwest::header::ACCEPT, "application/json");
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(b) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone());
            }
            let error = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(bytes) if status.is_success() => {
                            return serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
                                message: format!("{} {}: {e}", method, url.path()),
                            });
                        }
                        Ok(bytes) => ApiError::from_response(status, &headers, &bytes),
                        Err(e) => ApiError::from_reqwest(&e),
                    }
                }
                Err(e) => ApiError::from_reqwest(&e),
            };
            if !error.is_retryable() || attempt >= self.config.max_retries {
                return Err(error);
            }
            let delay = match &error {
                ApiError::RateLimited {
                    retry_after: Some(after),
                    ..
                } => {
                    if *after > self.config.max_retry_after {
                        return Err(error);
                    }
                    *after
                }
                _ => self.config.backoff(attempt),
            };
            tracing::debug!(
                method = %method,
                path = url.path(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "retrying Proof API call"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_official_policy() {
        let c = ClientConfig::default();
        assert_eq!(c.backoff(0), Duration::from_secs(1));
        assert_eq!(c.backoff(1), Duration::from_secs(2));
        assert_eq!(c.backoff(3), Duration::from_secs(8));
        assert_eq!(c.backoff(4), Duration::from_secs(10));
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(10));
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.max_retries, 2);
    }

    #[test]
    fn ids_are_single_percent_encoded_segments() {
        let c = ProofApiClient::new("http://127.0.0.1:9/prefix/", "pk_test_x").expect("client");
        let url = c.url_for(&["verifications", "../../admin?x=1"], true);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/prefix/api/v1/verifications/..%2F..%2Fadmin%3Fx=1"
        );
    }
}

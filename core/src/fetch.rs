//! The one HTTP GET the background refreshers use: bounded in time and size.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

/// Why a background fetch failed. The refresher keeps its last good snapshot either way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Connection, TLS or protocol failure.
    #[error("request failed: {0}")]
    Network(String),
    /// No answer within the fetch timeout.
    #[error("timed out")]
    Timeout,
    /// A status other than 200.
    #[error("unexpected status {0}")]
    Status(u16),
    /// The body was larger than allowed.
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    /// The body was not the document expected.
    #[error("invalid document: {0}")]
    Invalid(String),
}

pub(crate) struct Fetched {
    pub body: Bytes,
    pub max_age: Option<Duration>,
}

pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("proofgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    accept: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Fetched, FetchError> {
    let work = async {
        let mut resp = client
            .get(url)
            .header(http::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| FetchError::Network(e.to_string()))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        let max_age = resp
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        if resp
            .content_length()
            .is_some_and(|n| n as usize > max_bytes)
        {
            return Err(FetchError::TooLarge(max_bytes));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Network(e.to_string()))?
        {
            if body.len() + chunk.len() > max_bytes {
                return Err(FetchError::TooLarge(max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            body: body.freeze(),
            max_age,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(FetchError::Timeout))
}

/// `max-age` from a `Cache-Control` value; `no-store`/`no-cache` count as zero.
pub(crate) fn parse_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(Duration::ZERO);
        }
        if let Some((name, v)) = directive.split_once('=') {
            if name.trim().eq_ignore_ascii_case("max-age") {
                max_age = v
                    .trim()
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs);
            }
        }
    }
    max_age
}

/// Exponential backoff: `initial · 2^(failures-1)`, capped.
pub(crate) fn backoff(initial: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    initial.saturating_mul(factor).min(max)
}

/// `d` shortened by a random 0–10 %, so replicas do not refresh in lockstep.
pub(crate) fn jitter(d: Duration) -> Duration {
    let cut: f64 = rand::random::<f64>() * 0.1;
    d.mul_f64(1.0 - cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_forms() {
        assert_eq!(
            parse_max_age("public, max-age=86400"),
            Some(Duration::from_secs(86400))
        );
        assert_eq!(
            parse_max_age("max-age=\"60\""),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), s(60), 1), s(1));
        assert_eq!(backoff(s(1), s(60), 3), s(4));
        assert_eq!(backoff(s(1), s(60), 30), s(60));
    }
}

//! Humane durations: `"500ms"`, `"30s"`, `"5m"`, `"24h"`, `"7d"`, `"2w"`, `"1h30m"`.
//!
//! A twenty-line parser rather than the `humantime` crate: the configuration needs whole
//! numbers of a few fixed units and nothing else, and `humantime` also accepts months and years
//! of fractional days, which have no place in a `max_age`. Note that `m` is minutes here,
//! unlike the Proof API's `validity_requirement` where it stands for months; the step-up code
//! converts.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The string is empty.
    #[error("empty duration; write a number and a unit, like \"30s\" or \"5m\"")]
    Empty,
    /// A number without a unit, or a unit without a number.
    #[error("{0:?} is not a duration; write numbers with units ms, s, m, h, d or w, like \"30s\" or \"1h30m\"")]
    Syntax(String),
    /// An unknown unit.
    #[error("unknown unit {unit:?} in {input:?}; use ms, s, m (minutes), h, d or w")]
    Unit {
        /// The whole input.
        input: String,
        /// The unit found.
        unit: String,
    },
    /// The value does not fit.
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// Parses a humane duration: one or more `<integer><unit>` pairs with units `ms`, `s`, `m`
/// (minutes), `h`, `d` (24 h) and `w` (7 d), summed: `"1h30m"` is 90 minutes.
///
/// ```
/// use std::time::Duration;
/// use proofgate_config::parse_duration;
///
/// assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert!(parse_duration("10").is_err());
/// assert!(parse_duration("-5s").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let syntax = || DurationError::Syntax(input.to_string());
    let overflow = || DurationError::Overflow(input.to_string());
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(syntax());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| overflow())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => return Err(syntax()),
            other => {
                return Err(DurationError::Unit {
                    input: input.to_string(),
                    unit: other.to_string(),
                })
            }
        };
        let ms = value.checked_mul(ms_per_unit).ok_or_else(overflow)?;
        total_ms = total_ms.checked_add(ms).ok_or_else(overflow)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way [`parse_duration`] reads it, largest units first: `5400 s` is
/// `"1h30m"`, zero is `"0s"`.
pub fn format_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        for (s, secs) in [
            ("30s", 30),
            ("5m", 300),
            ("24h", 86_400),
            ("10m", 600),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1h30m", 5_400),
            (" 1m ", 60),
            ("0s", 0),
        ] {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(secs)), "{s}");
        }
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        for s in ["10", "s", "-5s", "1.5h", "1 h", "h1", "5m3", "+5s", "١s"] {
            assert!(parse_duration(s).is_err(), "{s:?}");
        }
        assert!(matches!(
            parse_duration("5min"),
            Err(DurationError::Unit { .. })
        ));
        assert!(matches!(
            parse_duration("3y"),
            Err(DurationError::Unit { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse_duration("18446744073709551615w"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "0s",
            "30s",
            "5m",
            "1h30m",
            "1d",
            "2w",
            "250ms",
            "1w1d1h1m1s1ms",
        ] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}

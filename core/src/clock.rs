//! The clock a decision reads: one [`Now`] per decision, and the default leeway.
//!
//! Layer 1 (vocabulary): imports nothing from the crate.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Default clock tolerance, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 5;

/// One reading of both clocks, taken once per decision and passed down, so that a decision
/// reads the time twice rather than once per check (each reading is a `clock_gettime`).
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Seconds since the Unix epoch, for claims (`exp`, `iat`, `verified_at`).
    pub unix: i64,
    /// The monotonic clock, for the age of keys and revocation data.
    pub mono: Instant,
}

impl Now {
    /// Reads both clocks.
    pub fn read() -> Self {
        Self {
            unix: unix_now(),
            mono: Instant::now(),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

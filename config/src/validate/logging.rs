//! `[logging]`: text or JSON, and the level.

use super::Check;
use crate::config::{LogLevel, Logging};
use crate::file::LoggingFile;

pub(super) fn logging(c: &mut Check, f: &LoggingFile) -> Logging {
    let level = match f.level.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("info") => LogLevel::Info,
        Some("trace") => LogLevel::Trace,
        Some("debug") => LogLevel::Debug,
        Some("warn" | "warning") => LogLevel::Warn,
        Some("error") => LogLevel::Error,
        Some(other) => {
            c.err(
                "logging.level",
                format!("{other:?}; use trace, debug, info, warn or error"),
            );
            LogLevel::Info
        }
    };
    Logging {
        json: f.json.unwrap_or(false),
        level,
    }
}

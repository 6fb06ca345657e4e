//! `[identity_headers]`: the fixed `x-proof-` prefix and whether the token is stripped.

use super::Check;
use crate::config::IdentityHeaders;
use crate::file::IdentityHeadersFile;

pub(super) fn identity_headers(c: &mut Check, f: &IdentityHeadersFile) -> IdentityHeaders {
    if let Some(prefix) = &f.prefix {
        if !prefix.eq_ignore_ascii_case("x-proof-") {
            c.err(
                "identity_headers.prefix",
                format!("{prefix:?}: the prefix is fixed to \"x-proof-\"; remove the key"),
            );
        }
    }
    IdentityHeaders {
        prefix: "x-proof-",
        strip_token: f.strip_token.unwrap_or(false),
    }
}

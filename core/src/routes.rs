//! Route matching (see issue 4): host, path prefix or glob, methods → policy and upstream.

//! The Proof API client (see issue 3).

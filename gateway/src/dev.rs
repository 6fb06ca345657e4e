//! `proofgate dev` (filled in below).

//! The `proofgate` command.
fn main() {}

//! Benchmarks for proofgate; see `benches/` and `load/`.

//! Benchmarks for proofgate: criterion benches in `benches/`, results in `RESULTS.md`.

//! Memory and allocations of the verified-token cache, counted exactly in-process.
//!
//! Run: `cargo run -p proofgate-bench --release --bin cachekit -- [--tokens 100000] [--hits 100000]`
//! and, for the RSS the gateway's allocator gives (no counts then):
//! `cargo run -p proofgate-bench --release --features mimalloc --bin cachekit`
//!
//! Mints `--tokens` distinct RS256 proof tokens like the load harness's (~900 bytes each),
//! verifies each once through a [`Verifier`] whose cache holds them all, and reports:
//! - **bytes per cached token**: heap bytes still allocated after the cache settled, minus the
//!   bytes allocated before the first verify (the tokens themselves are the request data, not the
//!   cache), divided by the number of tokens — what the allocator was asked for, without its own
//!   overhead; and the process's RSS growth over the same span, which includes that overhead;
//! - **allocations per cold verify** (signature, claims, cache insert) and **per cache hit**.
//!
//! Counting is dhat's (its global allocator wraps the system allocator and records every block),
//! so the RSS figure of the default build is glibc's plus dhat's records; the gateway runs on
//! mimalloc, which the `mimalloc` feature installs instead (then only RSS is reported).
//! `bench/load/run.sh` reports the running gateway's own RSS per cached token.
//!
//! `--profile cold|hit|mixed` skips the memory report and runs only one loop, for instruction
//! counts under callgrind (best with `--features mimalloc`, the gateway's allocator):
//! `valgrind --tool=callgrind --toggle-collect='*profiled_*' cachekit --profile cold --tokens 300`
//! counts the instructions of `--tokens - 1` cold verifies with their cache inserts (and the
//! cache's housekeeping after them); `hit` of `--hits` cache hits on one token, `mixed` of
//! `--hits` cache hits cycling over every token (no two in a row the same). Divide callgrind's
//! total by the count the run prints.

use std::process::ExitCode;
use std::sync::Arc;

use proofgate_core::keys::{KeySet, KeyStore, KeysConfig};
use proofgate_core::testing::{self, SigningKey};
use proofgate_core::{Verifier, VerifierConfig};

#[cfg(not(feature = "mimalloc"))]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Heap statistics: dhat's counts, or nothing under mimalloc.
#[derive(Clone, Copy, Default)]
struct Heap {
    curr_bytes: usize,
    total_blocks: u64,
}

impl Heap {
    #[cfg(not(feature = "mimalloc"))]
    fn get() -> Self {
        let s = dhat::HeapStats::get();
        Self {
            curr_bytes: s.curr_bytes,
            total_blocks: s.total_blocks,
        }
    }
    #[cfg(feature = "mimalloc")]
    fn get() -> Self {
        Self::default()
    }
}

fn flag(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn run(args: &[String]) -> Result<(), String> {
    let count = flag(args, "--tokens", 100_000)?.max(2);
    let hits = flag(args, "--hits", 100_000)?.max(1);

    let key = SigningKey::rsa("proof-holdings-2026-01");
    let keys = KeyStore::new(KeysConfig::new("http://127.0.0.1:9/unused"));
    let jwks = testing::jwks(&[&key]).to_string();
    keys.install(
        KeySet::from_jwks(jwks.as_bytes()).map_err(|e| format!("jwks: {e:?}"))?,
        vec![1],
    );
    let config = VerifierConfig {
        cache_capacity: count as u64,
        ..VerifierConfig::default()
    };
    let verifier = Arc::new(Verifier::new(keys, config));

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut tokens = vec![String::new(); count];
    let chunk = count.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (c, slots) in tokens.chunks_mut(chunk).enumerate() {
            let key = &key;
            s.spawn(move || {
                for (i, slot) in slots.iter_mut().enumerate() {
                    let sub = format!("load-{:08}", c * chunk + i);
                    *slot = key.sign(&testing::claims(&sub, "phone", "sms", "+37069199199"));
                }
            });
        }
    });
    let mean_len = tokens.iter().map(String::len).sum::<usize>() / count;

    if let Some(i) = args.iter().position(|a| a == "--profile") {
        return profile(
            &verifier,
            &tokens,
            args.get(i + 1).map(String::as_str),
            hits,
        );
    }

    // Warm the one-time structures (key parsing, moka's internals) with a token that is then
    // dropped from the count.
    verifier
        .verify(&tokens[0])
        .map_err(|r| format!("the first token was refused: {r:?}"))?;
    verifier.run_pending_tasks();

    #[cfg(not(feature = "mimalloc"))]
    let _profiler = dhat::Profiler::builder()
        .testing()
        .trim_backtraces(Some(1))
        .build();
    let stats0 = Heap::get();
    let rss0 = rss_kib();
    for t in &tokens[1..] {
        verifier
            .verify(t)
            .map_err(|r| format!("a token was refused: {r:?}"))?;
    }
    let stats1 = Heap::get();
    verifier.run_pending_tasks();
    let settled = Heap::get();
    let rss1 = rss_kib();
    let cached = verifier.cached();
    let n = (count - 1) as f64;

    let stats2 = Heap::get();
    for i in 0..hits {
        let t = &tokens[i % count];
        std::hint::black_box(
            verifier
                .verify(t)
                .map_err(|r| format!("hit refused: {r:?}"))?,
        );
    }
    let stats3 = Heap::get();

    println!(
        "tokens {count} (mean {mean_len} bytes), cached {cached}; a VerifiedProof is {} bytes inline, its claims {}",
        std::mem::size_of::<proofgate_core::VerifiedProof>(),
        std::mem::size_of::<proofgate_core::ProofClaims>()
    );
    let counted = cfg!(not(feature = "mimalloc"));
    // A second cache, filled the same way while the first is kept: the first fill may have
    // reused memory freed earlier (the minting threads' pages) and so under-count; by now that
    // is used up, so this growth is what each further cached token costs.
    let second = Verifier::new(verifier.keys().clone(), verifier.config().clone());
    let rss2 = rss_kib();
    for t in &tokens {
        second
            .verify(t)
            .map_err(|r| format!("a token was refused: {r:?}"))?;
    }
    second.run_pending_tasks();
    let rss3 = rss_kib();
    if counted {
        println!(
            "heap bytes per cached token: {:.0} (requested from the allocator)",
            (settled.curr_bytes as f64 - stats0.curr_bytes as f64) / n
        );
    }
    println!(
        "RSS growth per cached token: {:.0} bytes ({}, {} KiB → {} KiB)",
        (rss1 as f64 - rss0 as f64) * 1024.0 / n,
        if counted {
            "glibc under dhat"
        } else {
            "mimalloc"
        },
        rss0,
        rss1
    );
    println!(
        "RSS growth per cached token, a second cache filled after the first: {:.0} bytes",
        (rss3 as f64 - rss2 as f64) * 1024.0 / count as f64
    );
    if counted {
        println!(
            "allocations per cold verify (with cache insert): {:.2}",
            (stats1.total_blocks - stats0.total_blocks) as f64 / n
        );
        println!(
            "allocations per cache hit: {:.2}",
            (stats3.total_blocks - stats2.total_blocks) as f64 / hits as f64
        );
    }
    Ok(())
}

/// Runs one loop for callgrind (`--profile`); see the module doc.
fn profile(
    verifier: &Verifier,
    tokens: &[String],
    mode: Option<&str>,
    hits: usize,
) -> Result<(), String> {
    match mode {
        Some("cold") => {
            let n = profiled_cold(verifier, &tokens[1..])?;
            println!("cold verifies (with cache insert): {n}");
        }
        Some("hit") => {
            verifier.verify(&tokens[0]).map_err(|r| format!("{r:?}"))?;
            let n = profiled_hit(verifier, std::iter::repeat_n(&tokens[0], hits))?;
            println!("cache hits on one token: {n}");
        }
        Some("mixed") => {
            for t in tokens {
                verifier.verify(t).map_err(|r| format!("{r:?}"))?;
            }
            verifier.run_pending_tasks();
            let n = profiled_hit(verifier, tokens.iter().cycle().take(hits))?;
            println!("cache hits cycling over {} tokens: {n}", tokens.len());
        }
        _ => return Err("--profile needs cold, hit or mixed".into()),
    }
    Ok(())
}

#[inline(never)]
fn profiled_cold(verifier: &Verifier, tokens: &[String]) -> Result<usize, String> {
    for t in tokens {
        std::hint::black_box(verifier.verify(t).map_err(|r| format!("{r:?}"))?);
    }
    verifier.run_pending_tasks();
    Ok(tokens.len())
}

#[inline(never)]
fn profiled_hit<'a>(
    verifier: &Verifier,
    tokens: impl Iterator<Item = &'a String>,
) -> Result<usize, String> {
    let mut n = 0;
    for t in tokens {
        std::hint::black_box(verifier.verify(t).map_err(|r| format!("{r:?}"))?);
        n += 1;
    }
    Ok(n)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cachekit: {e}");
            ExitCode::FAILURE
        }
    }
}

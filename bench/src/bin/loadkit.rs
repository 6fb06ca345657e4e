//! `loadkit`: the helper behind `bench/load/run.sh`.
//!
//! ```text
//! loadkit mint DIR [--mixed N] [--cold N]   # RSA key, JWKS, PEM public key, token files
//! loadkit issuer DIR                        # serve DIR's JWKS + an empty revocation list
//! loadkit report RESULTS [--md FILE] [--png FILE] [--title TEXT]
//! loadkit rsa DIR [--seconds S]              # raw RSA-2048 verifies per second, this thread
//! ```
//!
//! `mint` writes into `DIR`: `key.pk8` (the issuer's RSA-2048 key, kept between runs),
//! `jwks.json`, `public.pem` (SPKI, for HAProxy's `jwt_verify`), `token-hit.txt` (one token),
//! `tokens-mixed.txt` and `tokens-cold.txt` (one distinct token a line). Tokens are valid 30
//! days; files that already hold enough fresh tokens for the same key are kept, because RSA
//! signing is what makes minting slow (about a millisecond a token).
//!
//! `issuer` serves the JWKS and an empty revocation list on an ephemeral loopback port (the
//! core's test [`IssuerServer`]), writes `http://127.0.0.1:PORT` to `DIR/issuer.url` and runs
//! until it is killed. The tokens carry no `status` claim, so no status list is needed.
//!
//! `report` reads the lines `run.sh` appends (`key=value` fields: `target`, `rep`, `requests`,
//! `duration_us`, `p50_us`, `p99_us`, `errors`, `rss_kb`, `cpu_pct`), prints a Markdown table of
//! per-target medians with each target's ratio to `pingora`, and draws requests/s and p99 by
//! target as a PNG.
//!
//! `rsa` measures the ceiling for `proofgate-cold`: RS256 signature checks per second on one
//! thread with the key pre-parsed (what the criterion bench calls `raw_aws_lc_rsa2048_preparsed`),
//! on a token from `DIR`. Run it pinned (`taskset -c 0`) to compare per core.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use proofgate_core::keys::KeySet;
use proofgate_core::testing::{claims, jwks, IssuerServer, SigningKey};

const KID: &str = "load-1";
/// Tokens older than this are minted again (they expire after 30 days).
const MAX_TOKEN_AGE_SECS: i64 = 20 * 24 * 3600;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("mint") => mint_cmd(&args[1..]),
        Some("issuer") => issuer_cmd(&args[1..]),
        Some("report") => report_cmd(&args[1..]),
        Some("rsa") => rsa_cmd(&args[1..]),
        _ => Err("usage: loadkit mint DIR [--mixed N] [--cold N] | issuer DIR | report RESULTS [--md FILE] [--png FILE] [--title TEXT] | rsa DIR [--seconds S]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadkit: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The value after `--name`, if given.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn count_flag(args: &[String], name: &str, default: usize) -> Result<usize, String> {
    flag(args, name).map_or(Ok(default), |v| {
        v.parse().map_err(|_| format!("{name}: not a number: {v}"))
    })
}

fn dir_arg(args: &[String]) -> Result<PathBuf, String> {
    args.first()
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .ok_or_else(|| "a directory is required".to_string())
}

fn load_or_create_key(dir: &Path) -> Result<SigningKey, String> {
    let path = dir.join("key.pk8");
    if let Ok(der) = std::fs::read(&path) {
        return SigningKey::rsa_from_pkcs8(KID, &der);
    }
    let key = SigningKey::rsa(KID);
    let der = key.rsa_pkcs8().ok_or("RSA key without PKCS#8")?;
    std::fs::write(&path, der).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(key)
}

/// The SPKI DER of the public key, PEM-armoured.
fn public_pem(key: &SigningKey) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(key.public_key_bytes());
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

/// `count` distinct tokens (subjects `{prefix}-{i}`), signed on every core.
fn mint_tokens(key: &SigningKey, prefix: &str, count: usize) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut tokens = vec![String::new(); count];
    let chunk = count.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (c, slots) in tokens.chunks_mut(chunk).enumerate() {
            s.spawn(move || {
                for (i, slot) in slots.iter_mut().enumerate() {
                    let sub = format!("{prefix}-{:08}", c * chunk + i);
                    *slot = key.sign(&claims(&sub, "phone", "sms", "+37069199199"));
                }
            });
        }
    });
    tokens
}

/// Whether `path` holds at least `count` lines and was written less than the maximum token age
/// ago.
fn fresh_enough(path: &Path, count: usize) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let young = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| (age.as_secs() as i64) < MAX_TOKEN_AGE_SECS);
    young
        && std::fs::read(path)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count() >= count)
            .unwrap_or(false)
}

fn write_tokens(
    dir: &Path,
    name: &str,
    key: &SigningKey,
    prefix: &str,
    count: usize,
) -> Result<(), String> {
    let path = dir.join(name);
    if fresh_enough(&path, count) {
        eprintln!("loadkit: {} already holds {count}+ tokens", path.display());
        return Ok(());
    }
    let started = std::time::Instant::now();
    let tokens = mint_tokens(key, prefix, count);
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?,
    );
    for t in &tokens {
        writeln!(out, "{t}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    eprintln!(
        "loadkit: minted {count} tokens into {} in {:.1}s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn mint_cmd(args: &[String]) -> Result<(), String> {
    let dir = dir_arg(args)?;
    let mixed = count_flag(args, "--mixed", 10_000)?;
    let cold = count_flag(args, "--cold", 200_000)?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let had_key = dir.join("key.pk8").exists();
    let key = load_or_create_key(&dir)?;
    if !had_key {
        // A new key invalidates any tokens lying around.
        for f in ["token-hit.txt", "tokens-mixed.txt", "tokens-cold.txt"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
    }
    let write = |name: &str, body: String| {
        std::fs::write(dir.join(name), body).map_err(|e| format!("{name}: {e}"))
    };
    write("jwks.json", jwks(&[&key]).to_string())?;
    write("public.pem", public_pem(&key))?;
    write_tokens(&dir, "token-hit.txt", &key, "hit", 1)?;
    write_tokens(&dir, "tokens-mixed.txt", &key, "mixed", mixed)?;
    write_tokens(&dir, "tokens-cold.txt", &key, "cold", cold)?;
    Ok(())
}

fn issuer_cmd(args: &[String]) -> Result<(), String> {
    let dir = dir_arg(args)?;
    let jwks_doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("jwks.json")).map_err(|e| format!("jwks.json: {e}"))?,
    )
    .map_err(|e| format!("jwks.json: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let server = IssuerServer::start(jwks_doc).await;
        let url_file = dir.join("issuer.url");
        std::fs::write(&url_file, server.base_url()).map_err(|e| e.to_string())?;
        eprintln!("loadkit: issuer at {}", server.base_url());
        let _ = tokio::signal::ctrl_c().await;
        let _ = std::fs::remove_file(url_file);
        Ok(())
    })
}

fn rsa_cmd(args: &[String]) -> Result<(), String> {
    let dir = dir_arg(args)?;
    let seconds: f64 = flag(args, "--seconds")
        .unwrap_or("3")
        .parse()
        .map_err(|_| "--seconds: not a number")?;
    let jwks_doc = std::fs::read(dir.join("jwks.json")).map_err(|e| format!("jwks.json: {e}"))?;
    let keys = KeySet::from_jwks(&jwks_doc).map_err(|e| format!("jwks.json: {e}"))?;
    let key = keys.by_kid(KID).ok_or("jwks.json: no load key")?;
    let token = std::fs::read_to_string(dir.join("token-hit.txt"))
        .map_err(|e| format!("token-hit.txt: {e}"))?;
    let (message, sig) = token.trim().rsplit_once('.').ok_or("token: not a JWS")?;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|e| format!("token signature: {e}"))?;
    if !key.verify(message.as_bytes(), &sig) {
        return Err("the token does not verify under the key".into());
    }
    let started = std::time::Instant::now();
    let mut count = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        for _ in 0..100 {
            std::hint::black_box(key.verify(
                std::hint::black_box(message.as_bytes()),
                std::hint::black_box(&sig),
            ));
        }
        count += 100;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    println!(
        "rsa2048_verify_per_sec={rate:.0} us_per_verify={:.2}",
        1e6 / rate
    );
    Ok(())
}

/// One measured run, as `run.sh` records it.
#[derive(Debug, Clone, Default)]
struct Run {
    target: String,
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    rss_kb: u64,
    cpu_pct: f64,
    /// The load generator's CPU over the run, percent of one core.
    gen_cpu_pct: f64,
    /// Whether `run.sh` judged the generator, not the server, to have set the pace.
    generator_bound: bool,
}

fn parse_line(line: &str) -> Option<Run> {
    let fields: BTreeMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .collect();
    let num = |k: &str| fields.get(k).and_then(|v| v.parse::<f64>().ok());
    let requests = num("requests")?;
    let duration_us = num("duration_us").filter(|d| *d > 0.0)?;
    Some(Run {
        target: fields.get("target")?.to_string(),
        rps: requests / (duration_us / 1e6),
        p50_us: num("p50_us").unwrap_or(0.0),
        p99_us: num("p99_us").unwrap_or(0.0),
        errors: num("errors").unwrap_or(0.0) as u64,
        rss_kb: num("rss_kb").unwrap_or(0.0) as u64,
        cpu_pct: num("cpu_pct").unwrap_or(0.0),
        gen_cpu_pct: num("gen_cpu_pct").unwrap_or(0.0),
        generator_bound: num("generator_bound").is_some_and(|v| v > 0.0),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Per-target medians over the repetitions.
#[derive(Debug, Clone)]
struct Summary {
    target: String,
    runs: usize,
    rps: f64,
    rps_min: f64,
    rps_max: f64,
    p50_us: f64,
    p99_us: f64,
    rss_kb: f64,
    cpu_pct: f64,
    /// Requests per second of server CPU time (median over runs): the cost per request, which
    /// holds up better than requests/s when other work shares the machine.
    per_cpu: f64,
    /// The load generator's CPU, percent of one core (median over runs).
    gen_cpu_pct: f64,
    /// Runs in which the generator, not the server, set the pace.
    generator_bound: usize,
    errors: u64,
}

fn summarize(runs: &[Run]) -> Vec<Summary> {
    let mut order: Vec<String> = Vec::new();
    for r in runs {
        if !order.contains(&r.target) {
            order.push(r.target.clone());
        }
    }
    order
        .into_iter()
        .map(|target| {
            let mine: Vec<&Run> = runs.iter().filter(|r| r.target == target).collect();
            let col = |f: fn(&Run) -> f64| median(mine.iter().map(|r| f(r)).collect());
            let rps: Vec<f64> = mine.iter().map(|r| r.rps).collect();
            Summary {
                runs: mine.len(),
                rps: col(|r| r.rps),
                rps_min: rps.iter().copied().fold(f64::INFINITY, f64::min),
                rps_max: rps.iter().copied().fold(0.0, f64::max),
                p50_us: col(|r| r.p50_us),
                p99_us: col(|r| r.p99_us),
                rss_kb: mine.iter().map(|r| r.rss_kb as f64).fold(0.0, f64::max),
                cpu_pct: col(|r| r.cpu_pct),
                per_cpu: col(|r| {
                    if r.cpu_pct > 0.0 {
                        r.rps / (r.cpu_pct / 100.0)
                    } else {
                        0.0
                    }
                }),
                gen_cpu_pct: col(|r| r.gen_cpu_pct),
                generator_bound: mine.iter().filter(|r| r.generator_bound).count(),
                errors: mine.iter().map(|r| r.errors).sum(),
                target,
            }
        })
        .collect()
}

fn markdown(summaries: &[Summary]) -> String {
    let base = summaries.iter().find(|s| s.target == "pingora");
    let mut out = String::from(
        "| target | req/s (median) | min–max | p50 ms | p99 ms | peak RSS MiB | server CPU % | req per server CPU-s | req/s vs pingora | per CPU-s vs pingora | p99 vs pingora | generator CPU % | runs | failed requests |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for s in summaries {
        let (ratio, eff_ratio, p99_ratio) = match base {
            Some(b) if b.rps > 0.0 && b.p99_us > 0.0 && b.per_cpu > 0.0 => (
                format!("{:.2}", s.rps / b.rps),
                format!("{:.2}", s.per_cpu / b.per_cpu),
                format!("{:.2}", s.p99_us / b.p99_us),
            ),
            _ => ("–".into(), "–".into(), "–".into()),
        };
        out.push_str(&format!(
            "| {} | {:.0} | {:.0}–{:.0} | {:.2} | {:.2} | {:.1} | {:.0} | {:.0} | {} | {} | {} | {:.0}{} | {} | {} |\n",
            s.target,
            s.rps,
            s.rps_min,
            s.rps_max,
            s.p50_us / 1000.0,
            s.p99_us / 1000.0,
            s.rss_kb / 1024.0,
            s.cpu_pct,
            s.per_cpu,
            ratio,
            eff_ratio,
            p99_ratio,
            s.gen_cpu_pct,
            if s.generator_bound > 0 {
                format!(" (bound in {} of {})", s.generator_bound, s.runs)
            } else {
                String::new()
            },
            s.runs,
            s.errors
        ));
    }
    out
}

fn report_cmd(args: &[String]) -> Result<(), String> {
    let input = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .ok_or("a results file is required")?;
    let text = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let runs: Vec<Run> = text.lines().filter_map(parse_line).collect();
    if runs.is_empty() {
        return Err(format!("{input}: no complete runs"));
    }
    let summaries = summarize(&runs);
    let table = markdown(&summaries);
    print!("{table}");
    if let Some(md) = flag(args, "--md") {
        std::fs::write(md, &table).map_err(|e| format!("{md}: {e}"))?;
    }
    if let Some(png) = flag(args, "--png") {
        let title = flag(args, "--title").unwrap_or("proofgate load");
        plot(&summaries, Path::new(png), title)?;
    }
    Ok(())
}

/// Registers a system sans-serif font for the plot's text (plotters draws none without one).
fn register_font() -> Result<(), String> {
    const CANDIDATES: [&str; 3] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    let bytes = CANDIDATES
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or("no DejaVuSans.ttf found (Debian: apt-get install fonts-dejavu-core)")?;
    plotters::style::register_font(
        "sans-serif",
        plotters::style::FontStyle::Normal,
        Box::leak(bytes.into_boxed_slice()),
    )
    .map_err(|_| "DejaVuSans.ttf: not a usable font".to_string())
}

fn plot(summaries: &[Summary], path: &Path, title: &str) -> Result<(), String> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    register_font()?;
    let err = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    let root = BitMapBackend::new(path, (1800, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 24))
        .map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(900);
    let n = summaries.len() as u32;
    type Value = fn(&Summary) -> f64;
    let panels: [(_, &str, Value, RGBColor); 2] = [
        (left, "requests/s (median)", |s| s.rps, BLUE),
        (
            right,
            "p99 latency, ms (median)",
            |s| s.p99_us / 1000.0,
            RED,
        ),
    ];
    for (area, caption, value, colour) in panels {
        let top = summaries.iter().map(&value).fold(0.0, f64::max) * 1.15 + 1e-9;
        let mut chart = ChartBuilder::on(&area)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            // A segmented `a..b` has a slot for `b` too.
            .build_cartesian_2d((0u32..n.saturating_sub(1)).into_segmented(), 0f64..top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(summaries.len())
            .x_label_style(("sans-serif", 12))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => summaries
                    .get(*i as usize)
                    .map(|s| s.target.clone())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_style(("sans-serif", 13))
            .y_label_formatter(&|v| {
                if top > 100.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            })
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(summaries.iter().enumerate().map(|(i, s)| {
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i as u32), 0.0),
                        (SegmentValue::Exact(i as u32 + 1), value(s)),
                    ],
                    colour.mix(0.7).filled(),
                );
                bar.set_margin(0, 0, 8, 8);
                bar
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(summaries.iter().enumerate().map(|(i, s)| {
                let v = value(s);
                let label = if v >= 100.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                };
                Text::new(
                    label,
                    (SegmentValue::CenterOf(i as u32), v + top * 0.01),
                    TextStyle::from(("sans-serif", 12).into_font())
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )
            }))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

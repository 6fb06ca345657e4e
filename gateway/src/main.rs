//! The `proofgate` command: `run`, `check`, `verify` and `dev`.
//!
//! ```text
//! proofgate dev                          # sandbox + demo upstream + gateway, on loopback
//! proofgate run -c config/examples/zero-trust.toml
//! proofgate run -c config/examples/zero-trust.toml --upgrade   # then: kill -QUIT <old pid>
//! proofgate check -c config/examples/zero-trust.toml
//! proofgate verify TOKEN -c config/examples/dev.toml --issuer http://127.0.0.1:7700
//! proofgate verify TOKEN -c config/examples/dev.toml --path /admin --method GET --host localhost
//! ```
//!
//! `verify` prints the token's header and claims — marked `UNVERIFIED`, with the reason, when
//! the signature, key, times, issuer, claims or revocation check fails — and `iat`, `nbf`, `exp`
//! as RFC 3339 UTC and relative to now. Alone it ends with the verdict (`verdict: valid`, or the
//! reason on stderr); with `--path` (and `--method`, default `GET`; `--host`, default
//! `localhost`) it decides that request as the gateway would, the token where the gateway looks
//! first, and prints the route, decision, reason and answer status, and what the policy requires
//! when refused. Exit status 0 when the token is valid (with `--path`: when the request would be
//! allowed), 1 otherwise. The token is never printed. See `proofgate::inspect`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use proofgate::dev;
use proofgate::server::{GatewayHandle, StartMode};
use proofgate_config::{Config, Secrets};

#[derive(Parser)]
#[command(
    name = "proofgate",
    version,
    about = "An edge gateway that enforces proof.holdings proof tokens"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway with a configuration file.
    Run {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// Take the listening sockets over from the running proofgate (graceful upgrade): start
        /// this, and once it logs that it is waiting for the sockets (within about 3 s), send
        /// the old process SIGQUIT. Both must use the same `server.upgrade_sock`. See
        /// docs/operations.md.
        #[arg(short, long)]
        upgrade: bool,
    },
    /// Validate a configuration file and print every problem; TLS certificate and key files
    /// that exist on this machine are loaded and matched too.
    Check {
        /// The configuration file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Verify a token against the configured issuer and print its header, its claims (marked
    /// UNVERIFIED, with the reason, when a check fails), their times and the verdict; with
    /// `--path`, decide a request carrying it as the gateway would. Exit status 0 when the token
    /// is valid (with `--path`: when the request would be allowed), 1 otherwise.
    Verify {
        /// The token (never printed), or `-` to read it from standard input (then it shows in
        /// neither the process list nor the shell's history).
        token: String,
        /// The configuration file (issuer settings, token sources, routes and policies).
        #[arg(short, long)]
        config: PathBuf,
        /// The issuer's base URL, in place of the file's `issuer.api_base` (the JWKS, revocation
        /// and status-list URLs the file does not set follow it) — e.g. the sandbox `proofgate
        /// dev` started, which prints this URL.
        #[arg(long, value_name = "URL")]
        issuer: Option<String>,
        /// Decide a request for this path (and query) carrying the token where the gateway looks
        /// first (by default `Authorization: Bearer`), under the file's routes and policies:
        /// prints the route, decision (allow, deny, step_up), reason and, when refused, what the
        /// policy requires.
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
        /// The request's method, with `--path`.
        #[arg(long, value_name = "METHOD", default_value = "GET", requires = "path")]
        method: String,
        /// The request's `Host`, with `--path` (default `localhost`).
        #[arg(long, value_name = "HOST", requires = "path")]
        host: Option<String>,
    },
    /// Run the sandbox, a demo upstream and the gateway together, on loopback.
    Dev {
        /// The gateway's proxy address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The admin address.
        #[arg(long, default_value = "127.0.0.1:9091")]
        admin: SocketAddr,
        /// The sandbox address.
        #[arg(long, default_value = "127.0.0.1:7700")]
        sandbox: SocketAddr,
    },
}

/// mimalloc instead of glibc's allocator: under load the proxy allocates and frees per request
/// (Pingora's header maps and buffers, ours), and glibc's `malloc`/`free` (with
/// `malloc_consolidate`) took about 16 % of the gateway's cycles. bench/RESULTS.md has the
/// before and after.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Logging at `level` (or `RUST_LOG`), text or JSON lines. Pingora's own `debug` and `trace`
/// lines are never written, whatever the level: they print whole request headers (the
/// `Authorization` header, the proof cookie, `x-proof-token`) and query strings. Its `info`
/// and above stay, and the lines it writes about a request carry only the path (see
/// `ProxyHttp::request_summary` in `proxy.rs`). `gateway/tests/canary.rs` runs everything at
/// `trace` and fails on any token or secret in the log.
///
/// The level sits behind a `reload` layer, and a configuration reload swaps it
/// ([`proofgate::reload::set_log_level_hook`]); while `RUST_LOG` is set, it decides and the
/// file's level is not applied.
///
/// Lines below the level cost one comparison where they are written: the filters tell
/// `tracing` the most verbose level they let through, and `try_init` and each reload give the
/// `log` crate (which Pingora writes through) the same level. Without that hint, every one of
/// Pingora's per-request `debug!` lines went through the `log` bridge and both filters before
/// being dropped (with the access log's early return when it is off, 14 % of the instructions
/// of a request on a public route: bench/RESULTS.md, "Load").
fn init_logging(json: bool, level: &str) {
    use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt, LevelFilter};
    use tracing_subscriber::prelude::*;

    let from_env = EnvFilter::try_from_default_env().ok();
    let env_decides = from_env.is_some();
    let level = from_env.unwrap_or_else(|| EnvFilter::new(level));
    let (level, handle) = tracing_subscriber::reload::Layer::new(level);
    // It restricts targets, not the level: its hint is "anything", so that the combined
    // filter's hint is the level's (a filter without a hint makes the whole hint "anything").
    let no_header_dumps = filter_fn(|meta| {
        !(meta.target().starts_with("pingora") && *meta.level() > tracing::Level::INFO)
    })
    .with_max_level_hint(LevelFilter::TRACE);
    let filter = level.and(no_header_dumps);
    let registry = tracing_subscriber::registry();
    let installed = if json {
        let layer = tracing_subscriber::fmt::layer().json().with_filter(filter);
        registry.with(layer).try_init()
    } else {
        // Colours for a terminal only: not as escape codes in a file or a log collector.
        let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::env::var_os("NO_COLOR").is_none();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(colour)
            .with_filter(filter);
        registry.with(layer).try_init()
    };
    if installed.is_ok() {
        proofgate::reload::set_log_level_hook(move |level| {
            if env_decides {
                return Err("RUST_LOG is set and decides the level".into());
            }
            handle
                .reload(EnvFilter::new(level))
                .map_err(|e| e.to_string())
        });
    }
}

/// An error for the person at the terminal: printed after `proofgate: `, exit status 1. The
/// library's own errors are typed ([`proofgate::GatewayError`], the configuration's
/// `ConfigErrors`); only this edge turns them into text.
type CliError = Box<dyn std::error::Error>;

fn load(path: &PathBuf) -> Result<Config, CliError> {
    Config::load(path).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { config } => load(&config).and_then(|c| {
            check_tls_files(&c)?;
            for warning in step_up_origin_warnings(&c) {
                eprintln!("warning: {}: {warning}", config.display());
            }
            println!(
                "{}: ok ({} routes, {} policies, {} upstreams)",
                config.display(),
                c.routes.routes().len(),
                c.policies.len(),
                c.upstreams.len()
            );
            Ok(())
        }),
        Command::Run {
            config: path,
            upgrade,
        } => (|| -> Result<(), CliError> {
            let config = load(&path)?;
            init_logging(config.logging.json, config.logging.level.as_str());
            let secrets = Secrets::from_env()?;
            secrets.require_for(&config)?;
            let mode = if upgrade {
                StartMode::Upgrade
            } else {
                StartMode::Fresh
            };
            let handle = GatewayHandle::start_with(config, secrets, Some(path), mode)?;
            tracing::info!(proxy = ?handle.proxy_addrs, admin = ?handle.admin_addr, "proofgate running");
            Ok(handle.wait()?)
        })(),
        Command::Verify {
            token,
            config,
            issuer,
            path,
            method,
            host,
        } => token_argument(token).and_then(|token| {
            proofgate::inspect::verify(&proofgate::inspect::VerifyArgs {
                token,
                config,
                issuer,
                request: path.map(|path| proofgate::inspect::RequestArgs { path, method, host }),
            })
        }),
        Command::Dev {
            listen,
            admin,
            sandbox,
        } => (|| -> Result<(), CliError> {
            init_logging(false, "info");
            let stack = dev::start(dev::DevPorts {
                proxy: listen,
                admin,
                sandbox,
            })?;
            println!("{}", dev::banner(&stack));
            Ok(stack.gateway.wait()?)
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proofgate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The token argument of `verify`: itself, or for `-` the first line of standard input.
fn token_argument(token: String) -> Result<String, CliError> {
    if token != "-" {
        return Ok(token);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading the token from standard input: {e}"))?;
    let line = line.trim();
    if line.is_empty() {
        return Err("no token on standard input (verify - reads one line)".into());
    }
    Ok(line.to_owned())
}

/// Where a step-up's return address would come from the request's `Host` on a listener people
/// reach by a non-loopback address: without `public_url` only the allowed hosts (and routes'
/// hosts) can start a step-up there, which an operator should know before the first person
/// meets `untrusted_host`. (Where such a name can start one over plain HTTP with `Secure`
/// cookies, validation itself refuses the file: that step-up could never finish.)
fn step_up_origin_warnings(config: &Config) -> Vec<String> {
    let s = &config.step_up;
    if !config.uses_step_up() || s.public_url.is_some() {
        return Vec::new();
    }
    let hosts: Vec<&str> = s
        .allowed_hosts
        .iter()
        .chain(config.routes.routes().iter().flat_map(|r| r.hosts.iter()))
        .map(String::as_str)
        .collect();
    let hosts = if hosts.is_empty() {
        "loopback names".to_string()
    } else {
        format!("{} and loopback names", hosts.join(", "))
    };
    config
        .listeners
        .iter()
        .filter(|l| !l.address.ip().is_loopback())
        .map(|l| {
            let plain = if l.tls.is_none() && s.cookie_secure {
                " (this listener is plain HTTP: there, also set step_up.cookie_secure = false, \
                 or browsers drop the state cookie)"
            } else {
                ""
            };
            format!(
                "listener {} offers step-up but step_up.public_url is not set: a verification \
                 can return only to {hosts} (step_up.allowed_hosts, routes' hosts), any other \
                 Host is refused (untrusted_host). Set step_up.public_url = \"https://your.site\" \
                 or list the site's names in step_up.allowed_hosts{plain}",
                l.address
            )
        })
        .collect()
}

/// TLS files that exist here are loaded and matched as `run` will; missing ones are only
/// mentioned (the file is often checked away from the machine that holds the certificates).
fn check_tls_files(config: &Config) -> Result<(), CliError> {
    for l in &config.listeners {
        let Some(tls) = &l.tls else { continue };
        if !tls.cert_path.exists() || !tls.key_path.exists() {
            eprintln!(
                "note: listener {}: {} or {} is not on this machine; not checked",
                l.address,
                tls.cert_path.display(),
                tls.key_path.display()
            );
            continue;
        }
        proofgate::tls::check_listener_tls(l)?;
    }
    Ok(())
}

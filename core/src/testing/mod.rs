//! Test support: mint keys, JWKS documents, tokens, revocation lists and status lists, and serve
//! them from a real HTTP server on loopback that can be made to fail, hang, rotate keys or
//! answer garbage. Enabled by the `testing` feature; used by the project's tests, benches and
//! the sandbox.

pub mod browser;
mod delegation;
mod mint;
mod server;
mod table;

pub use delegation::*;
pub use mint::*;
pub use server::{IssuerServer, Mode};
pub use table::*;

/// A loopback TCP port that was free a moment ago, for a server a test configures by address
/// (a config file, another process). Chosen below Linux's ephemeral range (32768–60999): a port
/// the kernel hands out with `bind(…:0)` can be taken again at any moment as the local port of
/// an outgoing connection, which made tests fail now and then with "address in use".
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000;
    // Each process starts at its own offset, so parallel test binaries rarely meet.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOW + (seed.wrapping_add(n.wrapping_mul(7)) % SPAN);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOW}..{}", LOW + SPAN)
}

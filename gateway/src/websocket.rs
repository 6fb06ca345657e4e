//! WebSocket (and any other HTTP/1.1 `Upgrade`) connections through the proxy.
//!
//! The handshake is an ordinary request: the route's policy decides it, a refusal is the usual
//! `401`/`403`/step-up answer, and Pingora relays the frames both ways once the upstream answers
//! `101`. What this module adds is what a long-lived connection needs beyond one decision:
//!
//! - the connection to the upstream is a [`WatchedSocket`], which ends the connection when no
//!   byte has crossed it in either direction for the upstream's `websocket_idle_timeout` (and,
//!   until the upstream's first byte, its `read_timeout`), and when a proof the handshake was
//!   allowed with stops being valid: its `exp` (plus the issuer's `leeway`) passes, or it is
//!   revoked or suspended, or its status can no longer be checked under `fail_mode = "closed"`
//!   — the same checks a new request gets, re-run every [`RECHECK_INTERVAL`];
//! - before the connection ends for one of those reasons, the client gets a WebSocket Close
//!   frame (`1008` policy violation for a proof, `1001` going away for idleness), written
//!   between two of the upstream's frames ([`Frames`]).
//!
//! The socket sits below TLS, so it works the same for TLS upstreams, and the watch costs one
//! timer per connection. When the upstream answers the handshake with something other than
//! `101`, the client's connection is closed after that answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use pingora::connectors::L4Connect;
use pingora::prelude::*;
use pingora::protocols::l4::socket::SocketAddr;
use pingora::protocols::l4::stream::Stream;
use pingora::protocols::l4::virt::{VirtualSockOpt, VirtualSocket, VirtualSocketStream};
use pingora::proxy::Session;
use proofgate_core::delegation::{Delegated, VerifiedDelegation};
use proofgate_core::revocation::RevocationStore;
use proofgate_core::{Reason, VerifiedProof};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::state::{Gateway, UpstreamPool};

/// How often an open upgraded connection's proofs are checked again (expiry, revocation,
/// suspension). A revocation the gateway has learnt (by webhook at once, from the revocation
/// list every `issuer.revocation_refresh`) closes the connection within this time.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The `reason` an idle upgraded connection is closed with (the access log's `outcome`).
pub const IDLE_TIMEOUT: &str = "idle_timeout";

/// An allowed request that asks for an upgrade: what its upstream connection must watch, and
/// why the gateway ended it (if it did).
#[derive(Debug)]
pub struct Upgrade {
    proofs: Vec<Arc<VerifiedProof>>,
    delegations: Vec<Arc<VerifiedDelegation>>,
    websocket: bool,
    closed: Arc<OnceLock<&'static str>>,
    /// Whether the upstream answered `101` (from then on its bytes are frames).
    switched: bool,
    frames: Frames,
}

impl Upgrade {
    /// For an allowed request: `Some` when it asks for an HTTP/1.1 upgrade. The downstream read
    /// timeout is lifted (a WebSocket client may send nothing for long while it receives); the
    /// upstream socket's idle timeout bounds the connection instead.
    pub fn begin(
        session: &mut Session,
        proofs: &[Arc<VerifiedProof>],
        delegations: &[Delegated],
    ) -> Option<Self> {
        if !session.is_upgrade_req() {
            return None;
        }
        let websocket = session
            .req_header()
            .headers
            .get(http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
            });
        session.set_read_timeout(None);
        Some(Self {
            proofs: proofs.to_vec(),
            delegations: delegations.iter().map(|d| d.delegation.clone()).collect(),
            websocket,
            closed: Arc::new(OnceLock::new()),
            switched: false,
            frames: Frames::default(),
        })
    }

    /// Points the upstream peer at a [`WatchedSocket`]: HTTP/1.1 (an upgrade has no HTTP/2
    /// form upstream), Pingora's per-read timeout off (the socket enforces idleness both ways),
    /// and a connection of its own, never shared through the pool.
    pub fn configure(&self, peer: &mut HttpPeer, pool: &UpstreamPool, gateway: &Gateway) {
        peer.options.set_http_version(1, 1);
        peer.options.read_timeout = None;
        peer.group_key = rand::random();
        peer.options.custom_l4 = Some(Arc::new(WatchedConnect {
            watch: Watch {
                proofs: self.proofs.clone(),
                delegations: self.delegations.clone(),
                revocation: gateway.gate.revocation().clone(),
                leeway: gateway.started_with.issuer.leeway,
            },
            closed: self.closed.clone(),
            connect_timeout: pool.connect_timeout,
            first_byte_timeout: pool.read_timeout,
            idle_timeout: pool.websocket_idle_timeout,
        }));
    }

    /// The upstream's answer: `101` switches to frames. Anything else answers an ordinary
    /// request, and the client's connection is closed after it (its read timeout was lifted
    /// for the upgrade that did not happen).
    pub fn on_response(&mut self, session: &mut Session, status: u16) {
        if status == 101 {
            self.switched = true;
        } else {
            session.set_keepalive(None);
        }
    }

    /// Follows the upstream's frames to the client; when the gateway ends the connection, the
    /// last chunk gets a Close frame (if the stream is between two frames).
    pub fn on_body(&mut self, body: &mut Option<Bytes>, end_of_stream: bool) {
        if !(self.websocket && self.switched) {
            return;
        }
        if let Some(b) = body.as_ref() {
            self.frames.feed(b);
        }
        if !end_of_stream || !self.frames.at_boundary() {
            return;
        }
        let Some(reason) = self.closed.get().copied() else {
            return;
        };
        let close = if reason == IDLE_TIMEOUT {
            close_frame(1001, "idle timeout")
        } else {
            close_frame(1008, "proof no longer valid")
        };
        let mut out = BytesMut::with_capacity(body.as_ref().map_or(0, Bytes::len) + close.len());
        if let Some(b) = body.take() {
            out.put(b);
        }
        out.put(close);
        *body = Some(out.freeze());
        // Sent once.
        self.switched = false;
    }

    /// Why the gateway ended the connection: a [`Reason`] name (`expired`, `revoked`, …) or
    /// [`IDLE_TIMEOUT`]; `None` if it did not.
    pub fn closed_reason(&self) -> Option<&'static str> {
        self.closed.get().copied()
    }
}

/// A WebSocket Close frame from the server (unmasked) with `code` and `reason` (at most 123
/// bytes).
fn close_frame(code: u16, reason: &str) -> Bytes {
    let reason = &reason.as_bytes()[..reason.len().min(123)];
    let mut frame = BytesMut::with_capacity(4 + reason.len());
    frame.put_u8(0x88);
    frame.put_u8(2 + reason.len() as u8);
    frame.put_u16(code);
    frame.put_slice(reason);
    frame.freeze()
}

/// Where a stream of WebSocket frames is: in a frame's header or payload, or between frames.
#[derive(Debug, Default)]
struct Frames {
    header: [u8; 14],
    have: usize,
    remaining: u64,
}

impl Frames {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len() as u64);
                self.remaining -= n;
                data = &data[n as usize..];
                continue;
            }
            self.header[self.have] = data[0];
            self.have += 1;
            data = &data[1..];
            if let Some(payload) = frame_payload_len(&self.header[..self.have]) {
                self.remaining = payload;
                self.have = 0;
            }
        }
    }

    fn at_boundary(&self) -> bool {
        self.have == 0 && self.remaining == 0
    }
}

/// A frame's payload length once `header` holds its whole header (RFC 6455 §5.2), else `None`.
fn frame_payload_len(header: &[u8]) -> Option<u64> {
    let second = *header.get(1)?;
    let masked = second & 0x80 != 0;
    let (extended, short) = match second & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let full = 2 + extended + if masked { 4 } else { 0 };
    if header.len() < full {
        return None;
    }
    Some(short.unwrap_or_else(|| {
        header[2..2 + extended]
            .iter()
            .fold(0u64, |n, b| (n << 8) | u64::from(*b))
    }))
}

/// The proofs an upgraded connection was allowed with, and how to check them again.
#[derive(Debug, Clone)]
struct Watch {
    proofs: Vec<Arc<VerifiedProof>>,
    /// The delegations it was allowed with: checked again like the proofs.
    delegations: Vec<Arc<VerifiedDelegation>>,
    revocation: Arc<RevocationStore>,
    leeway: Duration,
}

impl Watch {
    /// Why the proofs no longer allow the connection, if they do not: the checks a new request
    /// gets for expiry and revocation.
    fn problem(&self) -> Option<Reason> {
        let now = proofgate_core::clock::unix_now();
        let leeway = self.leeway.as_secs() as i64;
        self.proofs
            .iter()
            .find_map(|p| {
                if p.exp <= now - leeway {
                    return Some(Reason::Expired);
                }
                self.revocation.recheck(&p.claims).err()
            })
            .or_else(|| {
                let now = proofgate_core::clock::Now::read();
                self.delegations.iter().find_map(|d| {
                    proofgate_core::delegation::recheck(&self.revocation, d, self.leeway, now).err()
                })
            })
    }
}

/// Pingora's L4 connector for an upgrade request's upstream: a TCP connection (within the
/// upstream's `connect_timeout`) wrapped in a [`WatchedSocket`].
#[derive(Debug)]
struct WatchedConnect {
    watch: Watch,
    closed: Arc<OnceLock<&'static str>>,
    connect_timeout: Duration,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
}

#[async_trait]
impl L4Connect for WatchedConnect {
    async fn connect(&self, addr: &SocketAddr) -> Result<Stream> {
        let addr = *addr
            .as_inet()
            .ok_or_else(|| Error::explain(ErrorType::ConnectError, "not an IP upstream"))?;
        let tcp = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                let etype = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    ErrorType::ConnectRefused
                } else {
                    ErrorType::ConnectError
                };
                return Err(Error::because(etype, format!("connecting to {addr}"), e));
            }
            Err(_) => {
                return Err(Error::explain(
                    ErrorType::ConnectTimedout,
                    format!("connecting to {addr}"),
                ))
            }
        };
        let socket = WatchedSocket {
            tcp,
            watch: self.watch.clone(),
            closed: self.closed.clone(),
            first_byte_timeout: self.first_byte_timeout,
            idle_timeout: self.idle_timeout,
            last_activity: Instant::now(),
            answered: false,
            tick: Box::pin(tokio::time::sleep(Duration::ZERO)),
        };
        Ok(VirtualSocketStream::new(Box::new(socket)).into())
    }
}

/// An upstream TCP connection that reads as ended once its proofs stop being valid or it has
/// been idle too long (see the [module](self) documentation). Checked on a timer polled with
/// every read, which Pingora keeps pending for as long as the connection is open.
struct WatchedSocket {
    tcp: TcpStream,
    watch: Watch,
    closed: Arc<OnceLock<&'static str>>,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
    last_activity: Instant,
    /// Whether the upstream has sent a byte (from then on `idle_timeout` applies).
    answered: bool,
    tick: Pin<Box<Sleep>>,
}

impl std::fmt::Debug for WatchedSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedSocket")
            .field("closed", &self.closed.get())
            .finish_non_exhaustive()
    }
}

impl WatchedSocket {
    /// Checks idleness and the proofs; returns whether the connection is to end, and otherwise
    /// sets the timer for the next check.
    fn check(&mut self) -> bool {
        if self.closed.get().is_some() {
            return true;
        }
        let now = Instant::now();
        let limit = if self.answered {
            self.idle_timeout
        } else {
            self.first_byte_timeout
        };
        let idle_until = self.last_activity + limit;
        let reason = if now >= idle_until {
            Some(IDLE_TIMEOUT)
        } else {
            self.watch.problem().map(Reason::as_str)
        };
        if let Some(reason) = reason {
            let _ = self.closed.set(reason);
            tracing::info!(
                reason,
                "closing an upgraded connection: {}",
                if reason == IDLE_TIMEOUT {
                    "idle"
                } else {
                    "its proof is no longer valid"
                }
            );
            return true;
        }
        let next = if self.watch.proofs.is_empty() && self.watch.delegations.is_empty() {
            idle_until
        } else {
            idle_until.min(now + RECHECK_INTERVAL)
        };
        self.tick.as_mut().reset(next);
        false
    }

    fn ended(&self) -> bool {
        self.closed.get().is_some()
    }
}

impl AsyncRead for WatchedSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.ended() {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        if let Poll::Ready(r) = Pin::new(&mut self.tcp).poll_read(cx, buf) {
            if buf.filled().len() > before {
                self.last_activity = Instant::now();
                if !self.answered {
                    // From now on the idle timeout applies, which may be shorter than the wait
                    // for the first byte the timer was set for: check again at once.
                    self.answered = true;
                    let now = self.last_activity;
                    self.tick.as_mut().reset(now);
                }
            }
            return Poll::Ready(r);
        }
        while self.tick.as_mut().poll(cx).is_ready() {
            if self.check() {
                // Read as the end of the stream: Pingora ends the upgraded connection both ways.
                return Poll::Ready(Ok(()));
            }
        }
        Poll::Pending
    }
}

impl AsyncWrite for WatchedSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.ended() {
            // Ending: what the client still sends is dropped.
            return Poll::Ready(Ok(buf.len()));
        }
        let r = Pin::new(&mut self.tcp).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.last_activity = Instant::now();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl VirtualSocket for WatchedSocket {
    fn set_socket_option(&self, opt: VirtualSockOpt) -> std::io::Result<()> {
        match opt {
            VirtualSockOpt::NoDelay => self.tcp.set_nodelay(true),
            // Idleness is this socket's own to watch.
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_followed_across_chunks() {
        let mut f = Frames::default();
        assert!(f.at_boundary());
        // A 5-byte text frame, split in three.
        let frame = [0x81, 0x05, b'h', b'e', b'l', b'l', b'o'];
        f.feed(&frame[..1]);
        assert!(!f.at_boundary());
        f.feed(&frame[1..4]);
        assert!(!f.at_boundary());
        f.feed(&frame[4..]);
        assert!(f.at_boundary());
        // A 300-byte binary frame (16-bit length), then an empty ping in the same chunk.
        let mut big = vec![0x82, 126, 0x01, 0x2c];
        big.extend(std::iter::repeat_n(7u8, 300));
        big.extend([0x89, 0x00]);
        f.feed(&big[..3]);
        assert!(!f.at_boundary());
        f.feed(&big[3..200]);
        assert!(!f.at_boundary());
        f.feed(&big[200..]);
        assert!(f.at_boundary());
        // A masked frame (client to server) with a 64-bit length.
        let mut masked = vec![0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 3, 4];
        f.feed(&masked);
        assert!(!f.at_boundary());
        masked = vec![9, 9];
        f.feed(&masked);
        assert!(f.at_boundary());
    }

    #[test]
    fn close_frames_are_well_formed() {
        let f = close_frame(1008, "proof no longer valid");
        assert_eq!(f[0], 0x88);
        assert_eq!(usize::from(f[1]), f.len() - 2);
        assert_eq!(u16::from_be_bytes([f[2], f[3]]), 1008);
        assert_eq!(&f[4..], b"proof no longer valid");
        let long = "x".repeat(300);
        assert_eq!(close_frame(1001, &long).len(), 2 + 2 + 123);
    }
}

//! WebSockets through the real gateway to a real WebSocket upstream (tokio-tungstenite on both
//! ends): the handshake is decided by the route's policy (refused `401`/`403` as any request),
//! frames flow both ways, an idle connection is closed after the upstream's
//! `websocket_idle_timeout` (and not after its `read_timeout`), and a proof that is revoked or
//! expires while the socket is open closes it within the documented bound
//! (`docs/protocols.md`): a Close frame `1008` within about a second of the gateway learning of
//! it (webhook at once, revocation list every `issuer.revocation_refresh`), or of `exp`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{free_port, stack, Options, Stack};
use futures_util::{SinkExt, StreamExt};
use proofgate::GatewayHandle;
use proofgate_config::{Config, Secrets};
use proofgate_core::testing::{self, IssuerServer, SigningKey};
use proofgate_core::webhook;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket upstream: greets each connection with `hello <x-proof-type>` (the identity
/// header the handshake reached it with, `-` without one) and echoes text and binary messages.
async fn ws_upstream() -> SocketAddr {
    ws_upstream_answering_after(Duration::ZERO).await
}

/// [`ws_upstream`], answering each handshake only after `delay`.
async fn ws_upstream_answering_after(delay: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut kind = String::from("-");
                // The signature is tungstenite's handshake callback's.
                #[allow(clippy::result_large_err)]
                let callback =
                    |req: &tungstenite::handshake::server::Request,
                     resp: tungstenite::handshake::server::Response| {
                        if let Some(v) = req.headers().get("x-proof-type") {
                            kind = v.to_str().unwrap_or("?").to_owned();
                        }
                        Ok(resp)
                    };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                if ws
                    .send(Message::text(format!("hello {kind}")))
                    .await
                    .is_err()
                {
                    return;
                }
                while let Some(Ok(msg)) = ws.next().await {
                    let reply = match msg {
                        Message::Text(_) | Message::Binary(_) => msg,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if ws.send(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Routes `/ws/payouts/**` (phone proof, denied otherwise) and `/ws/public/**` to the WebSocket
/// upstream `ws` (read timeout 1 s, idle timeout 30 s), and `/ws/idle/**` (public) to
/// `ws-idle`, whose idle timeout is 1 s (and read timeout the default 60 s) and which answers
/// handshakes after 300 ms.
async fn ws_options() -> Options {
    let ws = ws_upstream().await;
    let slow = ws_upstream_answering_after(Duration::from_millis(300)).await;
    let extra = format!(
        r#"
[[upstreams]]
name = "ws"
addresses = ["{ws}"]
read_timeout = "1s"
websocket_idle_timeout = "30s"

[[upstreams]]
name = "ws-idle"
addresses = ["{slow}"]
websocket_idle_timeout = "1s"

[[routes]]
name = "ws-payouts"
path = "/ws/payouts/**"
policy = "payouts"
upstream = "ws"

[[routes]]
name = "ws-public"
path = "/ws/public/**"
policy = "public"
upstream = "ws"

[[routes]]
name = "ws-idle"
path = "/ws/idle/**"
policy = "public"
upstream = "ws-idle"
"#
    );
    Options {
        extra: Box::leak(extra.into_boxed_str()),
        ..Options::default()
    }
}

fn ws_url(s: &Stack, path: &str) -> String {
    format!("{}{path}", s.proxy.replacen("http://", "ws://", 1))
}

/// Opens a WebSocket through the gateway with `header` (name, value) on the handshake.
async fn connect(url: &str, header: Option<(&str, &str)>) -> Result<Ws, tungstenite::Error> {
    let mut req = url.into_client_request().unwrap();
    if let Some((name, value)) = header {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let (ws, resp) = tokio_tungstenite::connect_async(req).await?;
    assert_eq!(resp.status(), 101);
    Ok(ws)
}

/// The status of a refused handshake, with its body's `reason`.
fn refused(e: tungstenite::Error) -> (u16, String) {
    match e {
        tungstenite::Error::Http(resp) => {
            let body: serde_json::Value = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or_default();
            (
                resp.status().as_u16(),
                body["reason"].as_str().unwrap_or("").to_owned(),
            )
        }
        other => panic!("not an HTTP refusal: {other}"),
    }
}

/// The next data message (text or binary), skipping pings and pongs; panics after 5 s.
async fn next_data(ws: &mut Ws) -> Message {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("the connection is open")
            .expect("a valid frame");
        if matches!(msg, Message::Text(_) | Message::Binary(_)) {
            return msg;
        }
    }
}

/// Waits (at most `limit`) for the connection to end; returns the Close frame's code, if the
/// peer sent one, and how long it took.
async fn wait_closed(ws: &mut Ws, limit: Duration) -> (Option<CloseCode>, Duration) {
    let start = Instant::now();
    loop {
        let next = tokio::time::timeout(limit.saturating_sub(start.elapsed()), ws.next())
            .await
            .unwrap_or_else(|_| panic!("still open after {limit:?}"));
        match next {
            Some(Ok(Message::Close(frame))) => return (frame.map(|f| f.code), start.elapsed()),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return (None, start.elapsed()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_is_decided_by_the_route_policy_and_frames_flow_both_ways() {
    let s = stack(ws_options().await).await;
    let url = ws_url(&s, "/ws/payouts/feed");

    // No proof: the handshake is refused like any request, with the usual problem answer.
    let (status, reason) = refused(connect(&url, None).await.unwrap_err());
    assert_eq!((status, reason.as_str()), (401, "missing"));
    // A proof that does not meet the policy (email, where a phone is needed): 403.
    let (email, _) = s.token("email", "email", "bob@corp.example").await;
    let bearer = format!("Bearer {email}");
    let (status, reason) = refused(
        connect(&url, Some(("authorization", &bearer)))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, reason.as_str()), (403, "policy_unmet"));

    // A phone proof: upgraded, with the identity headers on the handshake the upstream got.
    let (phone, _) = s.token("phone", "sms", "+447700900123").await;
    // (A fresh gateway may answer 503 until the token's status list is fetched.)
    assert_eq!(s.get_bearer("/payouts/x", &phone).await.status(), 200);
    let bearer = format!("Bearer {phone}");
    let mut ws = connect(&url, Some(("authorization", &bearer)))
        .await
        .unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("hello phone"));
    ws.send(Message::text("ping from the client"))
        .await
        .unwrap();
    assert_eq!(
        next_data(&mut ws).await,
        Message::text("ping from the client")
    );
    let blob: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(blob.clone())).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::binary(blob));
    // Quiet for longer than the upstream's read_timeout (1 s): still open, the idle timeout
    // (30 s) is what bounds a quiet WebSocket.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    ws.send(Message::text("still here")).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("still here"));
    ws.close(None).await.unwrap();

    // The proof cookie works for a handshake too (browsers cannot set Authorization there).
    let cookie = format!("proof_token={phone}");
    let mut ws = connect(&url, Some(("cookie", &cookie))).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("hello phone"));
    ws.close(None).await.unwrap();

    // A public route needs no proof; the upstream sees no identity.
    let mut ws = connect(&ws_url(&s, "/ws/public/feed"), None).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("hello -"));
    ws.close(None).await.unwrap();
    s.shutdown().await;
}

/// POSTs a signed `event` webhook for `proof_id` to the gateway, as the issuer would.
async fn post_event(s: &Stack, event: &str, proof_id: &str) -> u16 {
    let body = format!(r#"{{"event":"{event}","data":{{"proof_id":"{proof_id}"}}}}"#);
    let ts = proofgate_core::clock::unix_now().to_string();
    let signature = webhook::sign(s.sandbox.webhook_secret().as_bytes(), &ts, body.as_bytes());
    s.http
        .post(s.url("/.proofgate/webhook"))
        .header("content-type", "application/json")
        .header(webhook::TIMESTAMP_HEADER, &ts)
        .header(webhook::SIGNATURE_HEADER, signature)
        .header(webhook::DELIVERY_HEADER, format!("ws-{proof_id}"))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The bound docs/protocols.md promises once the gateway knows of a revocation (one re-check
/// period, 1 s), with room for a loaded machine.
const CLOSE_BOUND: Duration = Duration::from_millis(2_500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_revoked_while_the_socket_is_open_closes_it() {
    let s = stack(ws_options().await).await;
    let url = ws_url(&s, "/ws/payouts/feed");
    let (phone, id) = s.token("phone", "sms", "+447700900123").await;
    assert_eq!(s.get_bearer("/payouts/x", &phone).await.status(), 200);
    let bearer = format!("Bearer {phone}");
    let mut ws = connect(&url, Some(("authorization", &bearer)))
        .await
        .unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("hello phone"));
    // Another socket with another proof stays open throughout.
    let (other, _) = s.token("phone", "sms", "+447700900456").await;
    let other_bearer = format!("Bearer {other}");
    let mut kept = connect(&url, Some(("authorization", &other_bearer)))
        .await
        .unwrap();
    assert_eq!(next_data(&mut kept).await, Message::text("hello phone"));

    // The issuer says the proof is revoked (a signed webhook: applied at once).
    assert_eq!(post_event(&s, "proof.revoked", &id).await, 204);
    let (code, took) = wait_closed(&mut ws, CLOSE_BOUND).await;
    assert_eq!(
        code,
        Some(CloseCode::Policy),
        "closed with 1008 policy violation"
    );
    assert!(took < CLOSE_BOUND, "{took:?}");
    // A new handshake with it is refused.
    let (status, reason) = refused(
        connect(&url, Some(("authorization", &bearer)))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, reason.as_str()), (401, "revoked"));
    // The other socket still carries frames both ways.
    kept.send(Message::text("unaffected")).await.unwrap();
    assert_eq!(next_data(&mut kept).await, Message::text("unaffected"));
    kept.close(None).await.unwrap();
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_socket_is_closed_after_the_idle_timeout_and_a_busy_one_is_not() {
    let s = stack(ws_options().await).await;
    let url = ws_url(&s, "/ws/idle/feed");

    // Busy: a frame each way every 300 ms for 2.4 s, more than twice the 1 s idle timeout.
    let mut busy = connect(&url, None).await.unwrap();
    assert_eq!(next_data(&mut busy).await, Message::text("hello -"));
    for i in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        busy.send(Message::text(format!("tick {i}"))).await.unwrap();
        assert_eq!(
            next_data(&mut busy).await,
            Message::text(format!("tick {i}"))
        );
    }
    busy.close(None).await.unwrap();

    // Idle: closed with 1001 going away after about 1 s, not before (the 60 s read timeout
    // bounds only the wait for the handshake's answer).
    let mut idle = connect(&url, None).await.unwrap();
    assert_eq!(next_data(&mut idle).await, Message::text("hello -"));
    let (code, took) = wait_closed(&mut idle, Duration::from_secs(5)).await;
    assert_eq!(code, Some(CloseCode::Away));
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(2_500),
        "{took:?}"
    );
    s.shutdown().await;
}

/// A gateway in this process deciding with the tokens of `issuer`: the payouts policy (a phone
/// proof) on `/ws/**` to the WebSocket upstream, no leeway on `exp`, the revocation list
/// fetched every 500 ms. Returns the handle and its proxy base URL.
async fn issuer_gateway(issuer: &IssuerServer, ws: SocketAddr) -> (GatewayHandle, String) {
    let (proxy, admin) = (free_port(), free_port());
    let text = format!(
        r#"
default_policy = "payouts"
default_upstream = "ws"

[[listeners]]
address = "127.0.0.1:{proxy}"

[admin]
address = "127.0.0.1:{admin}"

[server]
threads = 1
work_stealing = true

[[upstreams]]
name = "ws"
addresses = ["{ws}"]

[issuer]
api_base = "{base}"
status_list_url = ""
leeway = "0s"

[[policies]]
name = "payouts"
rule = "any_of"
on_failure = "deny"
requirements = [{{ types = ["phone"] }}]
"#,
        base = issuer.base_url(),
    );
    let mut config = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}"));
    config.issuer.revocation_refresh = Duration::from_millis(500);
    let handle =
        tokio::task::spawn_blocking(move || GatewayHandle::start(config, Secrets::default(), None))
            .await
            .unwrap()
            .unwrap();
    let http = reqwest::Client::new();
    let start = Instant::now();
    while !matches!(
        http.get(format!("http://127.0.0.1:{admin}/readyz")).send().await,
        Ok(r) if r.status() == 200
    ) {
        assert!(start.elapsed() < Duration::from_secs(20), "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (handle, format!("ws://127.0.0.1:{proxy}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_that_expires_or_is_listed_revoked_while_open_closes_the_socket() {
    let key = SigningKey::es256("k1");
    let issuer = IssuerServer::start(testing::jwks(&[&key])).await;
    let (gateway, base) = issuer_gateway(&issuer, ws_upstream().await).await;

    // Expiry: a token valid for 3 more seconds is closed at its exp (no leeway here).
    let mut claims = testing::claims("proof_short", "phone", "sms", "+447700900123");
    let exp = testing::now() + 3;
    claims.exp = Some(exp);
    let bearer = format!("Bearer {}", key.sign(&claims));
    let mut ws = connect(&format!("{base}/ws/x"), Some(("authorization", &bearer)))
        .await
        .unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("hello phone"));
    let (code, _) = wait_closed(&mut ws, Duration::from_secs(8)).await;
    let now = testing::now();
    assert_eq!(code, Some(CloseCode::Policy));
    // Closed once exp had passed, within the re-check period (and the clock's second).
    assert!(now >= exp && now <= exp + 2, "closed at {now}, exp {exp}");

    // Revocation by the list (no webhook): closed within the list refresh (500 ms here) and
    // the re-check period.
    let claims = testing::claims("proof_listed", "phone", "sms", "+447700900123");
    let bearer = format!("Bearer {}", key.sign(&claims));
    let mut ws = connect(&format!("{base}/ws/x"), Some(("authorization", &bearer)))
        .await
        .unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("hello phone"));
    issuer.set_revocation_list(testing::revocation_list(Some(&key), &["proof_listed"]));
    let (code, took) = wait_closed(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(code, Some(CloseCode::Policy));
    assert!(took < Duration::from_millis(500) + CLOSE_BOUND, "{took:?}");
    tokio::task::spawn_blocking(move || gateway.shutdown())
        .await
        .unwrap();
}

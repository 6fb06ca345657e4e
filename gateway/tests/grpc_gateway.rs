//! gRPC through the real gateway: a `tonic` client on an `h2c` listener, a `tonic` server
//! behind it as an `h2c` upstream. The proof travels in the `authorization` metadata; an
//! allowed call reaches the service with the identity metadata and its answer (trailers
//! included) comes back; refusals are real gRPC statuses the client reads — UNAUTHENTICATED
//! without a proof, PERMISSION_DENIED with one that does not meet the policy, UNAVAILABLE when
//! the upstream cannot be reached — written as Trailers-Only responses, never HTML or JSON.
//!
//! No protoc: the messages are Rust structs deriving `prost::Message`, and the service is
//! written by hand the way tonic's generated code is.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use common::{free_port, stack, Options, Stack};
use tonic::codegen::{http, BoxFuture, Context, Poll, Service};
use tonic::{Code, Status};

#[derive(Clone, PartialEq, prost::Message)]
struct Ping {
    #[prost(string, tag = "1")]
    text: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Pong {
    #[prost(string, tag = "1")]
    text: String,
    /// The `x-proof-type` metadata the call reached the service with (`-` without).
    #[prost(string, tag = "2")]
    proof_type: String,
}

/// `test.Echo`: `Say` answers the text with the caller's proof type; any other method is
/// UNIMPLEMENTED (from the service itself).
#[derive(Clone)]
struct Echo;

impl tonic::server::NamedService for Echo {
    const NAME: &'static str = "test.Echo";
}

struct Say;

impl tonic::server::UnaryService<Ping> for Say {
    type Response = Pong;
    type Future = BoxFuture<tonic::Response<Pong>, Status>;

    fn call(&mut self, request: tonic::Request<Ping>) -> Self::Future {
        let proof_type = request
            .metadata()
            .get("x-proof-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        let text = request.into_inner().text;
        Box::pin(async move { Ok(tonic::Response::new(Pong { text, proof_type })) })
    }
}

impl Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() == "/test.Echo/Say" {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                return Ok(grpc.unary(Say, req).await);
            }
            Ok(Status::unimplemented("no such method").into_http())
        })
    }
}

/// Starts the tonic server on a loopback port (cleartext HTTP/2, as tonic serves).
async fn grpc_upstream() -> SocketAddr {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(Echo)
            .serve(addr),
    );
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return addr;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the gRPC server did not start");
}

/// The stack with an `h2c` listener, the tonic server as the `h2c` upstream `grpc` behind the
/// payouts policy (a phone proof) on `/test.Echo/**` and the staff policy (which offers a
/// step-up) on `/test.Staff/**`, and `/test.Dead/**` (public) to an `h2c`
/// upstream nobody listens on. Returns the stack and the h2c listener's port.
async fn grpc_stack() -> (Stack, u16) {
    let grpc = grpc_upstream().await;
    let port = free_port();
    let extra = format!(
        r#"
[[listeners]]
address = "127.0.0.1:{port}"
h2c = true

[[upstreams]]
name = "grpc"
addresses = ["{grpc}"]
protocol = "h2c"

[[upstreams]]
name = "grpc-dead"
addresses = ["127.0.0.1:{{dead}}"]
connect_timeout = "1s"
protocol = "h2c"

[[routes]]
name = "echo"
path = "/test.Echo/**"
policy = "payouts"
upstream = "grpc"

[[routes]]
name = "staff-grpc"
path = "/test.Staff/**"
policy = "staff"
upstream = "grpc"

[[routes]]
name = "dead-grpc"
path = "/test.Dead/**"
policy = "public"
upstream = "grpc-dead"
"#
    );
    let s = stack(Options {
        extra: Box::leak(extra.into_boxed_str()),
        ..Options::default()
    })
    .await;
    (s, port)
}

/// Calls `path` (a unary method taking a `Ping`) through the gateway's h2c listener, with
/// `authorization: Bearer <token>` metadata when a token is given.
async fn call(port: u16, path: &'static str, token: Option<&str>) -> Result<Pong, Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut req = tonic::Request::new(Ping {
        text: "hello".into(),
    });
    if let Some(token) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<Ping, Pong>::default();
    grpc.unary(req, http::uri::PathAndQuery::from_static(path), codec)
        .await
        .map(tonic::Response::into_inner)
}

/// [`call`], retried while the answer is UNAVAILABLE for at most 5 s (a fresh gateway answers
/// so until the token's status list is fetched).
async fn call_warm(port: u16, path: &'static str, token: Option<&str>) -> Result<Pong, Status> {
    let start = std::time::Instant::now();
    loop {
        let r = call(port, path, token).await;
        match &r {
            Err(s) if s.code() == Code::Unavailable && start.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            _ => return r,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_are_decided_and_refusals_are_real_grpc_statuses() {
    let (s, port) = grpc_stack().await;
    let (phone, _) = s.token("phone", "sms", "+447700900123").await;
    let (email, _) = s.token("email", "email", "bob@corp.example").await;

    // Allowed with a proof: the service answers, with the identity it was given.
    let pong = call_warm(port, "/test.Echo/Say", Some(&phone))
        .await
        .unwrap();
    assert_eq!(
        pong,
        Pong {
            text: "hello".into(),
            proof_type: "phone".into()
        }
    );
    // The service's own error status comes back through the gateway intact.
    let status = call(port, "/test.Echo/Nope", Some(&phone))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(status.message(), "no such method");

    // No proof: UNAUTHENTICATED.
    let status = call(port, "/test.Echo/Say", None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(!status.message().is_empty());
    // A garbled proof: UNAUTHENTICATED too.
    let status = call(port, "/test.Echo/Say", Some("not-a-token"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // A valid proof that does not meet the policy (an email where a phone is needed).
    let status = call_warm(port, "/test.Echo/Say", Some(&email))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(!status.message().is_empty());
    // A policy that offers a step-up: UNAUTHENTICATED, with the step-up link in the metadata
    // for the application to show (a gRPC client cannot follow a redirect).
    let status = call(port, "/test.Staff/Say", None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let link = status
        .metadata()
        .get("proofgate-step-up")
        .map(|v| v.to_str().unwrap());
    assert!(
        link.is_some_and(|l| l.contains("/.proofgate/start")),
        "{status:?}"
    );
    assert_eq!(status.metadata().get("proofgate-policy").unwrap(), "staff");
    // An upstream that cannot be reached: UNAVAILABLE.
    let status = call(port, "/test.Dead/Say", None).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // Its message is the gateway's words, not an HTML page or a JSON body.
    let message = status.message();
    assert!(
        !message.contains('<') && !message.contains('{'),
        "{message}"
    );
    s.shutdown().await;
}

/// The refusal on the wire, read with a plain HTTP/2 client: HTTP 200, `application/grpc`,
/// `grpc-status` and `grpc-message` in the headers of a response without a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_refusal_is_a_trailers_only_response() {
    let (s, port) = grpc_stack().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    // A gRPC frame: uncompressed, length 7, the Ping message `text = "hello"`.
    let mut frame = vec![0u8, 0, 0, 0, 7];
    frame.extend(prost::Message::encode_to_vec(&Ping {
        text: "hello".into(),
    }));
    let r = h2
        .post(format!("http://127.0.0.1:{port}/test.Echo/Say"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(frame)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/grpc"));
    assert_eq!(headers["grpc-status"], "16");
    assert_eq!(headers["grpc-message"], "A proof token is required.");
    assert_eq!(headers["proofgate-reason"], "missing");
    // Trailers-Only: the headers end the stream, no body and no Content-Length.
    assert!(!headers.contains_key("content-length"), "{headers:?}");
    assert!(r.bytes().await.unwrap().is_empty());
    s.shutdown().await;
}

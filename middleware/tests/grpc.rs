//! gRPC behind the layer: real tonic servers on loopback (h2c) with `ProofLayer` in front, called
//! by a real tonic client, with the sandbox as issuer. Refusals must reach the client as gRPC
//! statuses (code, message and proofgate's metadata), and an allowed call must reach the
//! handler with the identity headers as metadata.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use proofgate_core::testing::{self, table_policies};
use proofgate_tower::{Policy, Proofgate, VerifiedProofs};
use tonic::body::Body;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tower::Layer;

/// The call: a name.
#[derive(Clone, PartialEq, prost::Message)]
struct Hello {
    #[prost(string, tag = "1")]
    name: String,
}

/// The answer: who the handler says called, by the identity metadata and by the verified
/// proofs in the request extensions, and whether a client-sent identity header got through.
#[derive(Clone, PartialEq, prost::Message)]
struct Reply {
    #[prost(string, tag = "1")]
    greeting: String,
    #[prost(string, tag = "2")]
    subject_header: String,
    #[prost(string, repeated, tag = "3")]
    subjects: Vec<String>,
    #[prost(bool, tag = "4")]
    spoofed: bool,
}

/// A hand-written tonic service (what `tonic-build` generates, without protoc): one unary
/// method, `/{NAME}/Hello`, any other answered UNIMPLEMENTED.
#[derive(Clone)]
struct Greeter<const ADMIN: bool>;

impl tonic::server::NamedService for Greeter<false> {
    const NAME: &'static str = "test.Greeter";
}

impl tonic::server::NamedService for Greeter<true> {
    const NAME: &'static str = "test.Payouts";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<const ADMIN: bool> tower::Service<http::Request<Body>> for Greeter<ADMIN> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            if !req.uri().path().ends_with("/Hello") {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let hello = tower::service_fn(|req: tonic::Request<Hello>| async move {
                let subject_header = req
                    .metadata()
                    .get("x-proof-subject")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let subjects = req
                    .extensions()
                    .get::<VerifiedProofs>()
                    .map(|p| p.iter().map(|p| p.subject().to_owned()).collect())
                    .unwrap_or_default();
                let spoofed = req
                    .metadata()
                    .iter()
                    .any(|kv| matches!(kv, tonic::metadata::KeyAndValueRef::Ascii(_, v) if v == "spoofed"));
                Ok::<_, Status>(tonic::Response::new(Reply {
                    greeting: format!("hello {}", req.get_ref().name),
                    subject_header,
                    subjects,
                    spoofed,
                }))
            });
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Reply, Hello>::default());
            Ok(grpc.unary(hello, req).await)
        })
    }
}

fn policy(name: &str) -> Policy {
    table_policies()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
}

/// A tonic server on a loopback port, stopped when dropped.
struct GrpcServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl GrpcServer {
    /// Serves `router` (a tonic `Router` with its services added) on a fresh loopback port.
    async fn start<L, ResBody>(router: tonic::transport::server::Router<L>) -> Self
    where
        L: tower::Layer<tonic::service::Routes> + Send + 'static,
        L::Service: tower::Service<http::Request<Body>, Response = http::Response<ResBody>>
            + Clone
            + Send
            + 'static,
        <L::Service as tower::Service<http::Request<Body>>>::Future: Send,
        <L::Service as tower::Service<http::Request<Body>>>::Error:
            Into<Box<dyn std::error::Error + Send + Sync>> + Send,
        ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn client(&self) -> tonic::client::Grpc<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap();
        tonic::client::Grpc::new(channel)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Calls `/{service}/Hello` with `token` as `authorization: Bearer …` metadata (if any) and
/// `extra` metadata.
async fn hello(
    client: &mut tonic::client::Grpc<Channel>,
    service: &str,
    token: Option<&str>,
    extra: &[(&'static str, &str)],
) -> Result<Reply, Status> {
    let mut req = tonic::Request::new(Hello {
        name: "proofgate".into(),
    });
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    for (k, v) in extra {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = PathAndQuery::from_maybe_shared(format!("/{service}/Hello")).unwrap();
    client
        .unary(req, path, ProstCodec::<Hello, Reply>::default())
        .await
        .map(tonic::Response::into_inner)
}

fn metadata<'s>(status: &'s Status, key: &str) -> Option<&'s str> {
    status.metadata().get(key).and_then(|v| v.to_str().ok())
}

/// Checks a refusal as the tonic client reports it: the code, the reason's message, and
/// proofgate's metadata.
fn assert_refused(
    result: Result<Reply, Status>,
    code: Code,
    reason: proofgate_core::Reason,
    policy: &str,
    step_up: Option<&str>,
) {
    let status = match result {
        Err(s) => s,
        Ok(reply) => panic!("allowed: {reply:?}"),
    };
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status.message(), reason.message(), "{status:?}");
    assert_eq!(metadata(&status, "proofgate-reason"), Some(reason.as_str()));
    assert_eq!(metadata(&status, "proofgate-policy"), Some(policy));
    assert_eq!(metadata(&status, "proofgate-step-up"), step_up);
}

/// Tokens signed by the sandbox's issuer key.
struct Tokens {
    alice: String,
    mallory: String,
    phone: String,
}

fn tokens(s: &common::Stack) -> Tokens {
    let key = s.sandbox.signing_key();
    Tokens {
        alice: key.sign(&testing::claims(
            "grpc-alice",
            "email",
            "email",
            "alice@corp.example",
        )),
        mallory: key.sign(&testing::claims(
            "grpc-mallory",
            "email",
            "email",
            "mallory@corp.example",
        )),
        phone: key.sign(&testing::claims(
            "grpc-phone",
            "phone",
            "sms",
            "+37069199199",
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_services_each_behind_their_own_layer() {
    let s = common::stack().await;
    let t = tokens(&s);
    // Each service with its own policy, added to tonic's router under its own name.
    let router = Server::builder()
        .add_service(s.gate.layer(policy("staff")).layer(Greeter::<false>))
        .add_service(s.gate.layer(policy("payouts")).layer(Greeter::<true>));
    let server = GrpcServer::start(router).await;
    let mut client = server.client().await;
    let greeter = "test.Greeter";
    let start = "/.proofgate/start?policy=staff&return_to=%2Ftest.Greeter%2FHello";

    // Allowed: the handler sees the identity as metadata and the proofs as an extension; a
    // client-sent identity header does not get through.
    let reply = hello(
        &mut client,
        greeter,
        Some(&t.alice),
        &[("x-proof-subject", "spoofed")],
    )
    .await
    .unwrap();
    assert_eq!(reply.greeting, "hello proofgate");
    assert_eq!(reply.subject_header, "grpc-alice");
    assert_eq!(reply.subjects, ["grpc-alice"]);
    assert!(!reply.spoofed);

    // No proof: UNAUTHENTICATED, with the step-up link the route offers.
    let r = hello(&mut client, greeter, None, &[]).await;
    assert_refused(
        r,
        Code::Unauthenticated,
        proofgate_core::Reason::Missing,
        "staff",
        Some(start),
    );
    // A valid proof that does not meet the policy: PERMISSION_DENIED.
    let r = hello(&mut client, greeter, Some(&t.mallory), &[]).await;
    assert_refused(
        r,
        Code::PermissionDenied,
        proofgate_core::Reason::PolicyUnmet,
        "staff",
        Some(start),
    );
    // A bad token: UNAUTHENTICATED, with its reason.
    let r = hello(&mut client, greeter, Some("not.a.token"), &[]).await;
    assert_refused(
        r,
        Code::Unauthenticated,
        proofgate_core::Reason::Malformed,
        "staff",
        Some(start),
    );

    // The other service, under a deny-on-failure policy: no step-up link.
    let payouts = "test.Payouts";
    let reply = hello(&mut client, payouts, Some(&t.phone), &[])
        .await
        .unwrap();
    assert_eq!(reply.subjects, ["grpc-phone"]);
    let r = hello(&mut client, payouts, Some(&t.alice), &[]).await;
    assert_refused(
        r,
        Code::PermissionDenied,
        proofgate_core::Reason::PolicyUnmet,
        "payouts",
        None,
    );
    let r = hello(&mut client, payouts, None, &[]).await;
    assert_refused(
        r,
        Code::Unauthenticated,
        proofgate_core::Reason::Missing,
        "payouts",
        None,
    );
    // The same connection still serves calls after refusals.
    assert!(hello(&mut client, greeter, Some(&t.alice), &[])
        .await
        .is_ok());
    server.stop().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_layer_in_front_of_the_whole_tonic_server() {
    let s = common::stack().await;
    let t = tokens(&s);
    let router = Server::builder()
        .layer(s.gate.layer(policy("payouts")))
        .add_service(Greeter::<false>)
        .add_service(Greeter::<true>);
    let server = GrpcServer::start(router).await;
    let mut client = server.client().await;
    for service in ["test.Greeter", "test.Payouts"] {
        let reply = hello(&mut client, service, Some(&t.phone), &[])
            .await
            .unwrap();
        assert_eq!(reply.subject_header, "grpc-phone");
        let r = hello(&mut client, service, Some(&t.mallory), &[]).await;
        assert_refused(
            r,
            Code::PermissionDenied,
            proofgate_core::Reason::PolicyUnmet,
            "payouts",
            None,
        );
        let r = hello(&mut client, service, None, &[]).await;
        assert_refused(
            r,
            Code::Unauthenticated,
            proofgate_core::Reason::Missing,
            "payouts",
            None,
        );
    }
    server.stop().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_that_cannot_check_answers_unavailable() {
    let s = common::stack().await;
    let t = tokens(&s);
    // A gate whose key set is never fetched (no refresher): every check fails closed.
    let stale = Proofgate::builder(s.sandbox.base_url())
        .cookie_key(common::COOKIE_KEY)
        .build()
        .unwrap();
    let router =
        Server::builder().add_service(stale.layer(policy("staff")).layer(Greeter::<false>));
    let server = GrpcServer::start(router).await;
    let mut client = server.client().await;
    let start = Instant::now();
    let r = hello(&mut client, "test.Greeter", Some(&t.alice), &[]).await;
    assert_refused(
        r,
        Code::Unavailable,
        proofgate_core::Reason::JwksStale,
        "staff",
        None,
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    server.stop().await;
    s.shutdown().await;
}

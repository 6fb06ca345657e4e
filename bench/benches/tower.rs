//! The middleware's cost per request, in one run: a bare axum handler; the same handler behind
//! `ProofLayer` with a cached token (the steady state); and behind `jwt-authorizer` configured
//! on the same RS256 key and presented the same token. Each request is an in-process
//! `tower::Service::call` through `oneshot` — no sockets — so the figures are the layers' own.
//!
//! The proof layer runs its production path: the key set and a revocation list are fetched once
//! from a loopback issuer before measuring (the list is consulted on every request, cache hits
//! included), and the identity headers are set. jwt-authorizer has no cache and no revocation:
//! it verifies the RS256 signature on every request.
//!
//! Run: `cargo bench -p proofgate-bench --bench tower`

// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{HeaderValue, Request, Response};
use jwt_authorizer::IntoLayer;
use proofgate_core::keys::KeysConfig;
use proofgate_core::revocation::RevocationConfig;
use proofgate_core::testing::{self, IssuerServer, SigningKey};
use proofgate_tower::{require, ProofLayer, Proofgate};
use tower::{Layer, Service, ServiceExt};

/// The handler's answer, as a type jwt-authorizer can build its rejections into (it answers with
/// `S::Response: From<AuthError>`; its own `From` targets axum 0.7's response type).
struct Answer(#[allow(dead_code)] Response<Body>);

impl From<jwt_authorizer::AuthError> for Answer {
    fn from(_: jwt_authorizer::AuthError) -> Self {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = http::StatusCode::UNAUTHORIZED;
        Answer(r)
    }
}

/// Runs a future that never waits on I/O to completion on this thread, without an executor's
/// overhead (every future measured here is ready on its first poll).
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("a benchmarked request waited on something");
}

fn request(auth: &HeaderValue) -> Request<Body> {
    let mut req = Request::new(Body::empty());
    *req.uri_mut() = http::Uri::from_static("/admin");
    req.headers_mut()
        .insert(http::header::AUTHORIZATION, auth.clone());
    req
}

async fn handler() -> &'static str {
    "ok"
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SigningKey::rsa("proof-holdings-2026-01");
    let jwks = testing::jwks(&[&key]);
    let token = key.sign(&testing::claims(
        "507f1f77bcf86cd799439011",
        "email",
        "email",
        "alice@corp.example",
    ));
    let auth = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();

    // The proof layer, on keys and a revocation list fetched from a loopback issuer.
    let issuer = rt.block_on(IssuerServer::start(jwks.clone()));
    issuer.set_revocation_list(testing::revocation_list(
        Some(&key),
        &["5f0000000000000000000001", "5f0000000000000000000002"],
    ));
    let mut revocation = RevocationConfig::new(&issuer.base_url());
    revocation.list_url = Some(issuer.revocation_url());
    revocation.prefetch_status_lists.clear();
    let gate = Proofgate::builder(&issuer.base_url())
        .keys_config(KeysConfig::new(issuer.jwks_url()))
        .revocation_config(revocation)
        .cookie_key([7u8; 32])
        .build()
        .unwrap();
    rt.block_on(async {
        gate.keys().refresh().await.unwrap();
        gate.revocation().refresh_list().await.unwrap();
    });
    let staff = require::any_of("staff")
        .email(["alice@corp.example"])
        .domain(["corp.example"]);

    let to_answer = |r: Response<Body>| Answer(r);
    let answer = |router: Router| ServiceExt::<Request<Body>>::map_response(router, to_answer);
    let bare = answer(Router::new().route("/admin", get(handler)));
    let proof = answer(
        Router::new()
            .route("/admin", get(handler))
            .route_layer(ProofLayer::new(gate.clone(), staff.clone())),
    );
    let proof_no_identity = answer(
        Router::new()
            .route("/admin", get(handler))
            .route_layer(ProofLayer::new(gate.clone(), staff).identity_headers(false)),
    );
    let authorizer = rt
        .block_on(
            jwt_authorizer::JwtAuthorizer::<serde_json::Value>::from_jwks_text(&jwks.to_string())
                .validation(jwt_authorizer::Validation::new().iss(&["proof.holdings"]))
                .no_refresh()
                .build(),
        )
        .unwrap();
    let jwt = vec![authorizer]
        .into_layer()
        .layer(answer(Router::new().route("/admin", get(handler))));

    // Every service answers 200 to the token before anything is measured (and the proof layer's
    // cache holds it from here on).
    for svc in [&bare, &proof, &proof_no_identity] {
        let Answer(r) = run(svc.clone().oneshot(request(&auth))).unwrap();
        assert_eq!(r.status(), 200);
    }
    let _guard = rt.enter();
    let Answer(r) = run(jwt.clone().oneshot(request(&auth))).unwrap();
    assert_eq!(r.status(), 200);

    let mut g = c.benchmark_group("middleware");
    g.bench_function("bare_axum_handler", |b| {
        b.iter(|| black_box(run(bare.clone().oneshot(request(&auth)))))
    });
    g.bench_function("proof_layer_cached_token", |b| {
        b.iter(|| black_box(run(proof.clone().oneshot(request(&auth)))))
    });
    g.bench_function("proof_layer_cached_token_no_identity_headers", |b| {
        b.iter(|| black_box(run(proof_no_identity.clone().oneshot(request(&auth)))))
    });
    g.bench_function("jwt_authorizer_same_key_and_token", |b| {
        b.iter(|| {
            let mut svc = jwt.clone();
            let req = request(&auth);
            black_box(run(async move {
                std::future::poll_fn(|cx| Service::<Request<Body>>::poll_ready(&mut svc, cx))
                    .await?;
                svc.call(req).await
            }))
        })
    });
    g.finish();
    drop(issuer);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);

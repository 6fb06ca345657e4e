//! The middleware end to end: a real axum server on loopback behind proof layers, with the
//! sandbox as issuer, asserted over HTTP.

mod common;

use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use common::{json, parts, stack};
use proofgate_core::identifier::identifier_hash;
use proofgate_core::testing::browser::{self, html};
use proofgate_core::testing::{self, table_cases, REVOKED_SUBJECT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_request_reaches_the_handler_with_the_extractors_data() {
    let s = stack().await;
    let (token, id) = s.token("email", "email", "Alice@Corp.Example").await;
    let r = s.get_bearer("/admin/panel", &token).await;
    let (status, _, body) = parts(r).await;
    let body = json(&body);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["policy"], "staff");
    assert_eq!(body["subjects"], serde_json::json!([id]));
    let identity = &body["identity"];
    assert_eq!(identity["x-proof-subject"], id.as_str());
    assert_eq!(identity["x-proof-type"], "email");
    assert_eq!(identity["x-proof-channel"], "email");
    assert_eq!(
        identity["x-proof-identifier-hash"],
        identifier_hash("email", "alice@corp.example").as_str()
    );
    // Spoofed identity headers never reach the handler.
    let r = s
        .http
        .get(s.url("/admin/panel"))
        .bearer_auth(&token)
        .header("x-proof-subject", "spoofed")
        .header("x-proof-anything", "spoofed")
        .send()
        .await
        .unwrap();
    let body = json(&parts(r).await.2);
    assert_eq!(body["identity"]["x-proof-subject"], id.as_str());
    assert!(body["identity"].get("x-proof-anything").is_none(), "{body}");
    // The public route answers without a proof; its handler's optional extractor sees none.
    let body = json(
        &parts(s.http.get(s.url("/public/x")).send().await.unwrap())
            .await
            .2,
    );
    assert_eq!(body["subjects"], serde_json::json!([]));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_table_gives_the_expected_answers() {
    let s = stack().await;
    s.gate.revocation().revoke_now(REVOKED_SUBJECT);
    let issuer = s.sandbox.signing_key();
    let mut failures = Vec::new();
    for case in table_cases() {
        let req = case.request(&issuer);
        let r = s
            .http
            .request(req.method().clone(), s.url(&req.uri().to_string()))
            .headers(req.headers().clone())
            .send()
            .await
            .unwrap();
        let (status, headers, body) = parts(r).await;
        if let Err(e) = case.check_answer(status, &headers, &body) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extractor_rejection_is_the_layers_problem_response() {
    use axum::routing::get;
    use proofgate_tower::{require, VerifiedProof};
    use tower::ServiceExt;

    let s = stack().await;
    // An optional route: the handler demands a proof through the extractor.
    let app = axum::Router::new()
        .route(
            "/me",
            get(|p: VerifiedProof| async move { p.subject().to_owned() }),
        )
        .route_layer(s.gate.layer(require::optional("me")));
    let res = app
        .oneshot(
            http::Request::get("/me")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(
        res.headers()["www-authenticate"],
        "Proof realm=\"proofgate\", error=\"missing\""
    );
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body = json(&body);
    assert_eq!(body["reason"], "missing");
    assert_eq!(body["policy"], "me");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_browser_flow_through_the_hosted_page_sets_the_cookie() {
    let s = stack().await;
    let path = "/admin/reports?page=2";
    let walk = browser::step_up(&s.http, &s.base, path, s.sandbox.base_url()).await;
    assert_eq!(
        walk.started.start,
        "/.proofgate/start?policy=staff&return_to=%2Fadmin%2Freports%3Fpage%3D2"
    );
    let (pair, callback) = (walk.cookie, walk.callback);
    // The cookie now opens the original URL (retrying a 503 while the new status-list slot is
    // fetched).
    let started = Instant::now();
    let r = loop {
        let r = html(s.http.get(s.url(path)))
            .header("cookie", &pair)
            .send()
            .await
            .unwrap();
        if r.status() != 503 || started.elapsed() > Duration::from_secs(10) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, _, body) = parts(r).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["identity"]["x-proof-type"], "email");
    // A replayed callback without the state fails cleanly.
    let r = html(s.http.get(&callback)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Logout clears the cookie.
    let r = s
        .http
        .get(s.url("/.proofgate/logout?return_to=/public/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/public/x");
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("proof_token=; Path=/; Max-Age=0"));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_for_api_clients_through_json() {
    let s = stack().await;
    let (status, headers, body) = parts(
        s.http
            .get(s.url("/admin/panel"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let start = json(&body)["step_up"]["start"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains(&format!("step_up=\"{start}\"")));
    let (status, _, body) = parts(
        s.http
            .get(s.url(&start))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let started = json(&body);
    let state = started["state"].as_str().unwrap().to_string();
    let rid = started["request_id"].as_str().unwrap().to_string();
    assert!(started["verification_url"]
        .as_str()
        .unwrap()
        .starts_with(s.sandbox.base_url()));
    assert!(s.sandbox.complete_request(&rid).is_some());
    let (status, _, body) = parts(
        s.http
            .get(s.url(&format!(
                "/.proofgate/callback?state={}",
                proofgate_core::render::urlencode(&state)
            )))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let done = json(&body);
    assert_eq!(done["return_to"], "/admin/panel");
    let token = done["proof_tokens"][0].as_str().unwrap().to_string();
    assert_eq!(s.get_bearer("/admin/panel", &token).await.status(), 200);
    // An unknown policy and an off-site return target are refused by the core.
    let r = s
        .http
        .get(s.url("/.proofgate/start?policy=nope&return_to=/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .http
        .get(s.url("/.proofgate/start?policy=staff&return_to=%2F%2Fevil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_by_webhook_takes_effect() {
    let s = stack().await;
    s.sandbox.add_webhook_url(&s.url("/.proofgate/webhook"));
    let (token, id) = s.token("email", "email", "alice@corp.example").await;
    assert_eq!(s.get_bearer("/admin/panel", &token).await.status(), 200);
    // The token is now cached as verified: revocation must still land.
    let r = s
        .http
        .post(format!(
            "{}/api/v1/proofs/{id}/revoke",
            s.sandbox.base_url()
        ))
        .bearer_auth(common::API_KEY)
        .json(&serde_json::json!({"reason": "fraud"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let started = Instant::now();
    loop {
        let (status, _, body) = parts(s.get_bearer("/admin/panel", &token).await).await;
        if status == 401 {
            assert_eq!(json(&body)["reason"], "revoked");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "revocation never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(s
        .sandbox
        .webhook_deliveries()
        .iter()
        .any(|d| format!("{d:?}").contains("proof.revoked")));
    // Webhooks are POSTed and signed.
    let r = s
        .http
        .get(s.url("/.proofgate/webhook"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = s
        .http
        .post(s.url("/.proofgate/webhook"))
        .body(r#"{"event":"proof.revoked","data":{"proof_id":"x"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_ready_back_pressure_is_preserved() {
    use tower::limit::ConcurrencyLimit;
    use tower::{service_fn, Layer, Service};

    let s = stack().await;
    let issuer = s.sandbox.signing_key();
    let token = issuer.sign(&testing::claims(
        "bp-alice",
        "email",
        "email",
        "alice@corp.example",
    ));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let handler = service_fn(move |_req: http::Request<String>| {
        let mut rx = release_rx.clone();
        async move {
            let _ = rx.wait_for(|r| *r).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(String::from("done")))
        }
    });
    let layer = proofgate_tower::ProofLayer::new(
        s.gate.clone(),
        proofgate_tower::require::any_of("staff").email(["alice@corp.example"]),
    );
    let mut first = layer.layer(ConcurrencyLimit::new(handler, 1));
    let mut second = first.clone();
    let mut cx = Context::from_waker(Waker::noop());
    let req = || {
        http::Request::get("/admin")
            .header("authorization", format!("Bearer {token}"))
            .body(String::new())
            .unwrap()
    };

    assert!(matches!(first.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    let in_flight = tokio::spawn(first.call(req()));
    // The one permit is taken: the proof service is not ready either.
    assert!(second.poll_ready(&mut cx).is_pending());
    release_tx.send(true).unwrap();
    let res = in_flight.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    // The permit is back: ready again, and the next request goes through.
    std::future::poll_fn(|cx| second.poll_ready(cx))
        .await
        .unwrap();
    let res = second.call(req()).await.unwrap();
    assert_eq!(res.status(), 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresher_stops_on_shutdown() {
    let mut s = stack().await;
    let refresher = s.refresher.take().unwrap();
    assert!(refresher.is_running());
    refresher.shutdown().await;
    // Decisions still use the last good data.
    assert!(s.gate.ready().is_ok());
    s.shutdown().await;
}

/// The step-up return address a tower service gives the issuer: `http` by default, `https` when
/// the service is told it is reached over HTTPS — as the gateway does on a TLS listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_return_address_follows_the_https_setting() {
    use proofgate_core::client::ProofApiClient;
    use proofgate_tower::Proofgate;

    let sandbox = proofgate_sandbox::Sandbox::start_with("127.0.0.1:0", Default::default())
        .await
        .unwrap();
    for (https, scheme) in [(false, "http"), (true, "https")] {
        let gate = Proofgate::builder(sandbox.base_url())
            .api_key(common::API_KEY)
            .cookie_key(common::COOKIE_KEY)
            .https(https)
            .build()
            .unwrap();
        gate.register(std::sync::Arc::new(proofgate_core::Policy::any_of(
            "staff",
            vec![proofgate_core::Requirement::of_type("email")],
        )));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app: axum::Router = gate.step_up_router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let r = reqwest::Client::new()
            .get(format!("http://{addr}/.proofgate/start?policy=staff"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let started: serde_json::Value = r.json().await.unwrap();
        let id = started["request_id"].as_str().unwrap();
        let api = ProofApiClient::new(sandbox.base_url(), common::API_KEY).unwrap();
        let request = api.get_verification_request(id).await.unwrap();
        // Each flow has its own callback: `…/callback?flow=<12 hex>`.
        let redirect = request.redirect_url.unwrap();
        let flow = redirect
            .strip_prefix(&format!("{scheme}://{addr}/.proofgate/callback?flow="))
            .unwrap_or_else(|| panic!("{redirect}"));
        assert!(
            flow.len() == 12 && flow.bytes().all(|b| b.is_ascii_hexdigit()),
            "{redirect}"
        );
        server.abort();
    }
}

//! CORS preflights through the real gateway: on a route with `preflight = "forward"` the
//! preflight reaches the upstream without a proof, while an `OPTIONS` that is no preflight, the
//! actual request and preflights elsewhere are decided.

mod common;

use common::{stack, Options};
use reqwest::Method;

const ROUTES: &str = r#"
[[routes]]
name = "api"
path = "/api/**"
policy = "staff"
preflight = "forward"

[[routes]]
name = "posts"
path = "/posts/**"
methods = ["POST"]
policy = "staff"
preflight = "forward"
"#;

const ORIGIN: &str = "https://app.example";

/// Sends `method path` with `headers` and returns the status and the body as JSON (`Null` when
/// it is not JSON).
async fn send(
    s: &common::Stack,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut req = s
        .http
        .request(method, s.url(path))
        .header("accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_reach_the_upstream_only_where_the_route_forwards_them() {
    let s = stack(Options {
        extra: ROUTES,
        ..Options::default()
    })
    .await;

    // A preflight on the forwarding route reaches the upstream, without a proof and without
    // the client's identity headers.
    let (status, body) = send(
        &s,
        Method::OPTIONS,
        "/api/items?x=1",
        &[
            ("origin", ORIGIN),
            ("access-control-request-method", "PUT"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
            ("x-proof-subject", "spoofed"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["upstream"], "demo");
    assert_eq!(body["method"], "OPTIONS");
    assert_eq!(body["path"], "/api/items");
    assert_eq!(body["identity"], serde_json::json!({}), "{body}");

    // An OPTIONS that is no preflight is decided under the route's policy.
    let start = "/.proofgate/start?policy=staff&return_to=%2Fapi%2Fitems";
    for headers in [
        vec![("access-control-request-method", "PUT")],
        vec![("origin", ORIGIN)],
    ] {
        let (status, body) = send(&s, Method::OPTIONS, "/api/items", &headers).await;
        assert_eq!(status, 401, "{headers:?}: {body}");
        assert_eq!(body["reason"], "missing");
        assert_eq!(body["step_up"]["start"], start);
    }
    // So is the actual request, even with the preflight's headers.
    let (status, body) = send(
        &s,
        Method::PUT,
        "/api/items",
        &[("origin", ORIGIN), ("access-control-request-method", "PUT")],
    )
    .await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("missing")));

    // A route that covers only POST forwards its POSTs' preflights; a GET's preflight there
    // matches no route and is denied.
    let post = [
        ("origin", ORIGIN),
        ("access-control-request-method", "POST"),
    ];
    let (status, body) = send(&s, Method::OPTIONS, "/posts/1", &post).await;
    assert_eq!((status, body["path"].as_str()), (200, Some("/posts/1")));
    let get = [("origin", ORIGIN), ("access-control-request-method", "GET")];
    let (status, body) = send(&s, Method::OPTIONS, "/posts/1", &get).await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (403, Some("route_denied"))
    );

    // A route that keeps the default (`deny`) decides its preflights.
    let put = [("origin", ORIGIN), ("access-control-request-method", "PUT")];
    let (status, body) = send(&s, Method::OPTIONS, "/admin/panel", &put).await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("missing")));
    s.shutdown().await;
}

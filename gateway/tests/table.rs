//! The shared adapter table (`proofgate_core::testing::table_cases`) through the real gateway:
//! the middleware runs the same table (`middleware/tests/middleware.rs`), so both adapters give
//! the same statuses, reasons, headers and bodies.

mod common;

use common::{stack, Options};
use proofgate_core::testing::{table_cases, REVOKED_SUBJECT, TABLE_PREFLIGHT_ROUTE};

/// The table's preflight route ([`TABLE_PREFLIGHT_ROUTE`]), added to the test configuration.
const PREFLIGHT_ROUTE: &str = r#"
[[routes]]
name = "cors"
path = "/cors/**"
policy = "staff"
preflight = "forward"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_table_gives_the_expected_answers() {
    assert_eq!(TABLE_PREFLIGHT_ROUTE, ("/cors", "staff"));
    let s = stack(Options {
        extra: PREFLIGHT_ROUTE,
        ..Options::default()
    })
    .await;
    s.gateway
        .as_ref()
        .unwrap()
        .gateway
        .gate
        .revocation()
        .revoke_now(REVOKED_SUBJECT);
    let issuer = s.sandbox.signing_key();
    let mut failures = Vec::new();
    let cases = table_cases();
    assert!(cases.len() >= 20);
    for case in cases {
        let req = case.request(&issuer);
        let r = s
            .http
            .request(req.method().clone(), s.url(&req.uri().to_string()))
            .headers(req.headers().clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap();
        if let Err(e) = case.check_answer(status, &headers, &body) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    s.shutdown().await;
}

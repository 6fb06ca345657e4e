//! Step-up in a real browser: a headless Chromium, driven over WebDriver, walks the real stack
//! (the gateway's Pingora listener, the sandbox as issuer and its hosted page, the demo
//! upstream) as a person would, clicking, and the test asserts what each page says.
//!
//! Needs `chromium` and `chromedriver` on the `PATH` (Debian/Ubuntu: `apt-get install chromium
//! chromium-driver`; `.ci/run` installs them; `CHROMEDRIVER` / `CHROMIUM` may name other
//! binaries). Without them each test prints a loud "skipped: install chromium chromium-driver"
//! and passes, except when the `CI` environment variable is set: then it fails.
//!
//! Screenshots of each step go to a temporary directory; to keep them, name a directory
//! (relative to the repository root):
//!
//! ```text
//! PROOFGATE_SCREENSHOTS=docs/img cargo test -p proofgate --test browser
//! ```
//!
//! The harness is `tests/common/browser.rs` ([`Browser`]).

mod common;

use common::browser::Browser;
use common::{stack, Options};
use serde_json::Value;

/// The JSON the demo upstream answered, as the browser shows it (a JSON document renders as
/// its text, with perhaps a viewer's controls around it).
fn upstream_json(text: &str) -> Value {
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        panic!("no JSON on the page:\n{text}");
    };
    serde_json::from_str(&text[start..=end]).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_by_clicking_through_the_hosted_page_then_log_out() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let s = stack(Options::default()).await;
    let hosted = format!("{}/hosted/requests/", s.sandbox.base_url());

    // 1. A protected page without a proof: the browser lands on the sandbox's hosted page,
    //    which offers the staff policy's two alternatives.
    b.goto(&s.url("/admin/reports?page=2")).await;
    b.wait_url_prefix(&hosted).await;
    let text = b.wait_text("Verify any one of these").await;
    assert!(text.contains("Status: pending"), "{text}");
    let email = text
        .find("Email address alice@corp.example one option")
        .unwrap_or_else(|| panic!("{text}"));
    let domain = text
        .find("Domain corp.example one option")
        .unwrap_or_else(|| panic!("{text}"));
    let or = text.find("\nor\n").unwrap_or_else(|| panic!("{text}"));
    assert!(email < or && or < domain, "{text}");
    assert!(!text.contains("required"), "{text}");
    assert!(b.cookie("proof_token").await.is_none());
    b.screenshot("step-up-1-hosted-page").await;

    // 2. The person chooses their email address: back on the page they asked for, with the
    //    upstream's answer and the identity the gateway forwarded.
    b.click_button("Verify alice@corp.example").await;
    let url = b.wait_url_prefix(&s.url("/admin/reports")).await;
    assert_eq!(url, s.url("/admin/reports?page=2"));
    let text = b.wait_text("\"upstream\"").await;
    let page = upstream_json(&text);
    assert_eq!(page["upstream"], "demo", "{text}");
    assert_eq!(page["path"], "/admin/reports", "{text}");
    assert_eq!(page["identity"]["x-proof-type"], "email", "{text}");
    assert_eq!(page["identity"]["x-proof-channel"], "email", "{text}");
    assert_eq!(
        page["identity"]["x-proof-identifier-hash"],
        proofgate_core::identifier::identifier_hash("email", "alice@corp.example").as_str(),
        "{text}"
    );
    let cookie = b
        .cookie("proof_token")
        .await
        .expect("the proof cookie is set");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    // The token itself never shows on the page.
    assert!(!text.contains(cookie.value()), "{text}");
    b.screenshot("step-up-2-protected-page").await;

    // The proof opens the next protected page directly.
    b.goto(&s.url("/admin/settings")).await;
    let text = b.wait_text("\"/admin/settings\"").await;
    assert_eq!(b.url().await, s.url("/admin/settings"));
    assert_eq!(upstream_json(&text)["identity"]["x-proof-type"], "email");

    // 3. Log out: the proof cookie is gone from the browser, the logout returns where it was
    //    told to, and the protected page asks for a verification again.
    b.goto(&s.url("/.proofgate/logout?return_to=%2Fpublic%2Fbye"))
        .await;
    b.wait_url_prefix(&s.url("/public/bye")).await;
    let text = b.wait_text("\"/public/bye\"").await;
    assert_eq!(upstream_json(&text)["upstream"], "demo", "{text}");
    assert!(b.cookie("proof_token").await.is_none());
    b.screenshot("step-up-3-logged-out").await;
    b.goto(&s.url("/admin/reports")).await;
    b.wait_url_prefix(&hosted).await;
    b.wait_text("Verify any one of these").await;

    s.shutdown().await;
}

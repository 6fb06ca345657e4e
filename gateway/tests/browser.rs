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

/// The harness's helpers against real pages (the sandbox's hosted forms), so that walks built
/// on them can trust them: typing into a field, submitting a form, a page-made POST, a second
/// tab, a link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_fills_forms_posts_opens_tabs_and_follows_links() {
    use proofgate_core::client::{AssetRequest, CreateVerificationRequest, ProofApiClient};

    let Some(b) = Browser::start().await else {
        return;
    };
    let sandbox = proofgate_sandbox::Sandbox::start("127.0.0.1:0")
        .await
        .unwrap();
    let api = ProofApiClient::new(sandbox.base_url(), common::API_KEY).unwrap();
    let hosted_page = async |kind: &str| {
        let req = CreateVerificationRequest::new(vec![AssetRequest::new(kind)]);
        let created = api.create_verification_request(&req).await.unwrap();
        (created.verification_url.unwrap(), created.id)
    };
    let verified = "All done. You can close this page.";

    // fill + click_button: the person types their number and presses the button.
    let (phone, phone_id) = hosted_page("phone").await;
    b.goto(&phone).await;
    b.wait_text("Phone number required").await;
    b.fill("identifier", "+370 691 99199").await;
    b.click_button("Verify this phone number").await;
    b.wait_text(verified).await;
    let done = api.get_verification_request(&phone_id).await.unwrap();
    assert_eq!(done.assets[0].identifier.as_deref(), Some("+370 691 99199"));

    // fill_and_submit: the same through the form.
    let (email, email_id) = hosted_page("email").await;
    b.goto(&email).await;
    b.fill_and_submit(
        "form[action$='/assets/0/complete']",
        &[("identifier", "bob@example.com")],
        "Verify this email address",
    )
    .await;
    b.wait_text(verified).await;
    let done = api.get_verification_request(&email_id).await.unwrap();
    assert_eq!(
        done.assets[0].identifier.as_deref(),
        Some("bob@example.com")
    );

    // new_tab + post_form: a second tab, where the page posts a form of its own; the first tab
    // keeps its page.
    let first = b.window().await;
    let second = b.new_tab().await;
    assert_ne!(first, second);
    let (domain, domain_id) = hosted_page("domain").await;
    b.goto(&domain).await;
    b.wait_text("Domain required").await;
    b.post_form(
        &format!("{domain}/assets/0/complete"),
        &[("identifier", "corp.example"), ("channel", "dns")],
    )
    .await;
    b.wait_text(verified).await;
    let done = api.get_verification_request(&domain_id).await.unwrap();
    assert_eq!(done.assets[0].identifier.as_deref(), Some("corp.example"));
    assert_eq!(done.assets[0].verified_channel.as_deref(), Some("dns"));
    b.switch_to(&first).await;
    assert!(b.text().await.contains(verified));
    assert_eq!(b.client().windows().await.unwrap().len(), 2);

    // click_link: from a page with a link to the hosted page.
    let (social, _) = hosted_page("social").await;
    b.goto(&format!(
        "data:text/html,<a href=\"{social}\">Open the verification</a>"
    ))
    .await;
    b.click_link("Open the verification").await;
    b.wait_url_prefix(&social).await;
    b.wait_text("Social account required").await;

    sandbox.shutdown().await;
}

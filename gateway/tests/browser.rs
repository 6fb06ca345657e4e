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

/// Two more policies for the walk below: `team` (an email of two people, so the hosted page
/// asks which address) and `money` (any phone), both stepping up.
const WALK_ROUTES: &str = r#"
[[policies]]
name = "team"
rule = "any_of"
on_failure = "step_up"
requirements = [{ types = ["email"], identifiers = ["carol@corp.example", "dave@corp.example"] }]

[[policies]]
name = "money"
rule = "any_of"
on_failure = "step_up"
requirements = [{ types = ["phone"] }]

[[routes]]
name = "team"
path = "/team/**"
policy = "team"

[[routes]]
name = "money"
path = "/money/**"
policy = "money"
"#;

/// Everything a person meets when things go wrong, in a real browser: the deny page; a
/// verification with the wrong address explained (nothing saved, one button to try again);
/// two step-ups in two tabs at once; the proofs of three pages kept together; a form POST
/// explained and stepped up back to its page; signing out. Asserts what each page says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_explain_wrong_identity_parallel_tabs_kept_proofs_forms_and_sign_out() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let s = stack(Options {
        extra: WALK_ROUTES,
        ..Options::default()
    })
    .await;
    let hosted = format!("{}/hosted/requests/", s.sandbox.base_url());

    // 1. A page nobody may open: a page that says so, with a way home.
    b.goto(&s.url("/nowhere/at/all")).await;
    let text = b.wait_text("This page is not available").await;
    assert!(text.contains("There is nothing at this address"), "{text}");
    assert!(text.contains("route_denied"), "{text}");
    assert!(!text.contains("{"), "no JSON for a person: {text}");
    b.screenshot("page-1-denied").await;
    b.click_link("Go to the home page").await;
    b.wait_text("This page is not available").await;

    // 2. The wrong address: the person verifies bob@, which the page does not allow. The
    //    callback says what was verified and what the page needs; nothing is saved.
    b.goto(&s.url("/team/board")).await;
    b.wait_url_prefix(&hosted).await;
    let text = b.wait_text("Verify to continue").await;
    assert!(
        text.contains("/team/board"),
        "the hosted page says why: {text}"
    );
    b.fill("identifier", "bob@other.example").await;
    b.click_button("Verify this email address").await;
    let text = b
        .wait_text("That verification doesn't open this page")
        .await;
    assert!(text.contains("bob@other.example"), "{text}");
    assert!(
        text.contains("an email address (carol@corp.example or dave@corp.example)"),
        "{text}"
    );
    assert!(text.contains("Nothing was saved"), "{text}");
    assert!(b.cookie("proof_token").await.is_none());
    b.screenshot("page-2-wrong-identity").await;
    // One button to try again, with an address the page allows.
    b.click_link("Try again with another address").await;
    b.wait_url_prefix(&hosted).await;
    b.wait_text("Verify to continue").await;
    b.fill("identifier", "carol@corp.example").await;
    b.click_button("Verify this email address").await;
    let text = b.wait_text("\"/team/board\"").await;
    assert_eq!(upstream_json(&text)["identity"]["x-proof-type"], "email");

    // 3. Two tabs, two step-ups at once: A starts (admin), B starts and finishes (money), then
    //    A finishes. Neither breaks the other.
    // Tab A: carol's email proof is of the kind the admin page asks for but not an address it
    // allows — explained, with one button; a phone proof alone would have gone straight on.
    let tab_a = b.window().await;
    b.goto(&s.url("/admin/reports")).await;
    let text = b
        .wait_text("Your verification doesn't open this page")
        .await;
    assert!(
        text.contains("one of: an email address (alice@corp.example); a domain (corp.example)"),
        "{text}"
    );
    b.screenshot("page-3-verify-another").await;
    b.click_link("Verify with another address").await;
    b.wait_url_prefix(&hosted).await;
    b.wait_text("Verify any one of these").await;
    let tab_b = b.new_tab().await;
    b.goto(&s.url("/money/send")).await;
    b.wait_url_prefix(&hosted).await;
    b.wait_text("Verify to continue").await;
    b.fill("identifier", "+370 691 99199").await;
    b.click_button("Verify this phone number").await;
    let text = b.wait_text("\"/money/send\"").await;
    assert_eq!(upstream_json(&text)["identity"]["x-proof-type"], "phone");
    b.switch_to(&tab_a).await;
    b.click_button("Verify alice@corp.example").await;
    let text = b.wait_text("\"/admin/reports\"").await;
    assert_eq!(upstream_json(&text)["identity"]["x-proof-type"], "email");

    // 4. The proofs earned for each page are kept together: all three open without a new
    //    verification, in either tab.
    for (path, kind) in [
        ("/team/board", "email"),
        ("/money/send", "phone"),
        ("/admin/settings", "email"),
    ] {
        b.goto(&s.url(path)).await;
        let text = b.wait_text(&format!("\"{path}\"")).await;
        assert_eq!(b.url().await, s.url(path), "{text}");
        assert_eq!(upstream_json(&text)["identity"]["x-proof-type"], kind);
    }
    b.switch_to(&tab_b).await;
    b.goto(&s.url("/admin/settings")).await;
    b.wait_text("\"/admin/settings\"").await;
    b.close_tab().await;
    b.switch_to(&tab_a).await;

    // 5. Sign out: a page that says so; every protected page asks again.
    b.goto(&s.url("/.proofgate/logout")).await;
    let text = b.wait_text("You are signed out").await;
    assert!(text.contains("removed from this browser"), "{text}");
    assert!(b.cookie("proof_token").await.is_none());
    b.screenshot("page-5-signed-out").await;
    b.goto(&s.url("/money/send")).await;
    b.wait_url_prefix(&hosted).await;

    // 6. A form POST without a proof: not lost silently — a page explains that it was not
    //    sent and steps up back to the page the form is on.
    b.goto(&s.url("/public/form")).await;
    b.wait_text("\"/public/form\"").await;
    b.post_form(&s.url("/money/send"), &[("amount", "100")])
        .await;
    let text = b.wait_text("Verify to continue").await;
    assert!(text.contains("What you submitted was not sent"), "{text}");
    assert!(text.contains("a phone number"), "{text}");
    b.screenshot("page-4-form-post").await;
    b.click_link("Verify").await;
    b.wait_url_prefix(&hosted).await;
    b.fill("identifier", "+370 691 99199").await;
    b.click_button("Verify this phone number").await;
    b.wait_url(&format!("= {}", s.url("/public/form")), |u| {
        u == s.url("/public/form")
    })
    .await;

    s.shutdown().await;
}

/// A link held for a person's approval: the browser waits on a page that reloads itself (no
/// script), the approver clicks Approve on the sandbox's hosted page in another tab, and the
/// waiting tab continues to the page — forwarded once, without the ticket cookie; opening it
/// again asks for a new approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_waits_for_approval_and_continues_once_approved() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let s = stack(Options {
        watch: true,
        ..Options::default()
    })
    .await;
    let api = s.sandbox.base_url().to_owned();
    let hitl = common::hitl(&s.http, &api, "reports", None).await;
    // A page anyone may open, once someone approves (the route added by a reload).
    let mut text = std::fs::read_to_string(&s.config_path).unwrap();
    text.push_str(&format!(
        r#"
[[policies]]
name = "approved-reports"
rule = "public"
approval = {{ hitl = "{hitl}", message = "{{method}} {{path}}", timeout = "2m" }}

[[routes]]
name = "reports"
path = "/reports/**"
policy = "approved-reports"
"#
    ));
    std::fs::write(&s.config_path, &text).unwrap();
    let started = std::time::Instant::now();
    while !s
        .metrics()
        .await
        .contains("proofgate_config_reloads_total{result=\"ok\"} 1")
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no reload"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // 1. The page is held: "Waiting for approval", reloading itself onto the status URL.
    let waiting = b.window().await;
    b.goto(&s.url("/reports/q3?year=2026")).await;
    let page = b.wait_text("Waiting for approval").await;
    assert!(page.contains("GET /reports/q3?year=2026"), "{page}");
    b.screenshot("approval-1-waiting").await;
    let status = b.wait_url_prefix(&s.url("/.proofgate/approvals/")).await;
    let cid = status[s.url("/.proofgate/approvals/").len()..]
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    b.wait_text("Waiting for approval").await;

    // 2. The approver opens the hosted approval page in another tab, reads what is asked and
    //    approves.
    let link: Value = s
        .http
        .post(format!("{api}/api/v1/confirmations/{cid}/approval-link"))
        .bearer_auth(common::API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    b.new_tab().await;
    b.goto(link["approval_url"].as_str().unwrap()).await;
    let asked = b.wait_text("You are asked to approve").await;
    assert!(asked.contains("GET /reports/q3?year=2026"), "{asked}");
    b.screenshot("approval-2-approver").await;
    b.click_button("Approve").await;
    b.wait_text("You approved this request.").await;
    b.close_tab().await;

    // 3. The waiting tab continues by itself to the page, forwarded without the ticket.
    b.switch_to(&waiting).await;
    let url = b.wait_url_prefix(&s.url("/reports/q3")).await;
    assert_eq!(url, s.url("/reports/q3?year=2026"));
    let text = b.wait_text("\"/reports/q3\"").await;
    let page = upstream_json(&text);
    assert_eq!(page["upstream"], "demo", "{text}");
    assert!(
        !page["cookies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "proofgate_approval"),
        "{text}"
    );
    b.screenshot("approval-3-continued").await;

    // 4. Once only: opening it again asks for a new approval.
    b.goto(&s.url("/reports/q3?year=2026")).await;
    b.wait_text("Waiting for approval").await;
    assert!(b.cookie("proofgate_approval").await.is_none());

    s.shutdown().await;
}

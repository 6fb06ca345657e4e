//! The hosted verification page as a person reads it: the `action_context` texts (escaped), and
//! labels that say which assets are needed. Each label is checked against what the sandbox then
//! does: "any one of these" must finish with one, "optional" must not be needed, "required" must.

mod support;

use proofgate_core::client::{
    ActionContext, AssetRequest, CreateVerificationRequest, RequestStatus, VerificationRequest,
};
use proofgate_sandbox::SandboxHandle;
use support::*;

/// `html` as the words a person sees: the tags dropped (block ends become line breaks) and the
/// character references decoded, whitespace collapsed per line.
fn visible_text(html: &str) -> String {
    let body = html.split_once("<body>").map_or(html, |(_, b)| b);
    let mut out = String::new();
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = &rest[open + 1..open + close];
        if ["/p", "/legend", "/h1", "/fieldset", "/form", "/section"]
            .iter()
            .any(|t| tag.eq_ignore_ascii_case(t))
        {
            out.push('\n');
        }
        rest = &rest[open + close + 1..];
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn asset(kind: &str, identifier: &str, required: bool) -> AssetRequest {
    let mut a = AssetRequest::new(kind).identifier(identifier);
    a.required = Some(required);
    a
}

async fn create(sb: &SandboxHandle, req: CreateVerificationRequest) -> VerificationRequest {
    client(sb, TEST_KEY)
        .create_verification_request(&req)
        .await
        .expect("create")
}

/// The page's HTML and its visible text.
async fn page(url: &str) -> (String, String) {
    let r = raw().get(url).send().await.expect("page");
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let html = r.text().await.expect("html");
    let text = visible_text(&html);
    (html, text)
}

/// Verifies asset `index` by posting its form as the browser would: back to the page (303), or,
/// once that completes the request (no `redirect_url` here), the "Verified" page (200).
async fn verify(url: &str, index: usize) {
    let r = raw()
        .post(format!("{url}/assets/{index}/complete"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .expect("complete");
    assert!(matches!(r.status().as_u16(), 200 | 303), "asset {index}");
}

async fn status(sb: &SandboxHandle, id: &str) -> RequestStatus {
    client(sb, TEST_KEY)
        .get_verification_request(id)
        .await
        .expect("get")
        .status
}

#[tokio::test]
async fn any_of_request_reads_as_alternatives_and_one_finishes_it() {
    let sb = sandbox().await;
    // How the gateway asks for an any-of policy: no asset required, partial_ok.
    let mut req = CreateVerificationRequest::new(vec![
        asset("email", "alice@corp.example", false),
        asset("domain", "corp.example", false),
    ]);
    req.partial_ok = Some(true);
    let created = create(&sb, req).await;
    let url = created.verification_url.expect("url");
    let (_, text) = page(&url).await;
    assert!(
        text.contains("Verify any one of these to continue (one is enough):"),
        "{text}"
    );
    // The two alternatives in order, with one "or" between them; neither is called required or
    // optional.
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {text}"))
    };
    let email = at("Email address alice@corp.example one option\n");
    let or = at("\nor\n");
    let domain = at("Domain corp.example one option\n");
    assert!(email < or && or < domain, "{text}");
    assert_eq!(text.lines().filter(|l| *l == "or").count(), 1, "{text}");
    assert!(!text.contains("required"), "{text}");
    assert!(!text.contains("optional"), "{text}");
    assert!(
        text.contains("Verify the first option (test mode)"),
        "{text}"
    );

    // What the words promise: the second alternative alone finishes the request.
    verify(&url, 1).await;
    assert_eq!(status(&sb, &created.id).await, RequestStatus::Completed);
    let (_, text) = page(&url).await;
    assert!(text.contains("Status: completed"), "{text}");
    assert!(
        text.contains("Domain corp.example one option\nVerified by"),
        "{text}"
    );
    assert!(!text.contains("Verify the first option"), "{text}");
    sb.shutdown().await;
}

#[tokio::test]
async fn required_and_optional_assets_say_so_and_mean_it() {
    let sb = sandbox().await;
    let created = create(
        &sb,
        CreateVerificationRequest::new(vec![
            asset("email", "bob@example.com", true),
            asset("phone", "+37069199199", false),
            AssetRequest::new("domain"),
        ]),
    )
    .await;
    let url = created.verification_url.expect("url");
    let (html, text) = page(&url).await;
    assert!(text.contains("Verify each of these to continue:"), "{text}");
    assert!(
        text.contains("Email address bob@example.com required"),
        "{text}"
    );
    // No identifier given: the person types theirs; the service's default is `required`.
    assert!(text.contains("Domain required"), "{text}");
    assert!(html.contains("name=\"identifier\""), "{html}");
    assert!(text.contains("Verify this domain"), "{text}");
    assert!(
        text.contains("Optional: you can also verify these, but you do not need to."),
        "{text}"
    );
    assert!(
        text.contains("Phone number +37069199199 optional, not needed to continue"),
        "{text}"
    );
    assert!(!text.contains("any one of these"), "{text}");
    assert!(!text.lines().any(|l| l == "or"), "{text}");
    assert!(text.contains("Verify everything (test mode)"), "{text}");

    // The optional one does not finish it; the required ones do, without the optional one.
    verify(&url, 1).await;
    assert_eq!(status(&sb, &created.id).await, RequestStatus::Partial);
    verify(&url, 0).await;
    assert_eq!(status(&sb, &created.id).await, RequestStatus::Partial);
    let r = raw()
        .post(format!("{url}/assets/2/complete"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("identifier=corp.example")
        .send()
        .await
        .expect("complete");
    assert_eq!(r.status(), 200);
    assert!(visible_text(&r.text().await.expect("html")).contains("Verified\nAll done."));
    assert_eq!(status(&sb, &created.id).await, RequestStatus::Completed);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_single_asset_is_required_even_when_not_marked() {
    let sb = sandbox().await;
    let mut req = CreateVerificationRequest::new(vec![asset("phone", "+37069199199", false)]);
    req.partial_ok = Some(true);
    let created = create(&sb, req).await;
    let url = created.verification_url.expect("url");
    let (_, text) = page(&url).await;
    assert!(text.contains("Verify this to continue:"), "{text}");
    assert!(
        text.contains("Phone number +37069199199 required"),
        "{text}"
    );
    assert!(
        !text.contains("one option") && !text.contains("optional"),
        "{text}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn action_context_is_shown_and_escaped() {
    let sb = sandbox().await;
    let mut req = CreateVerificationRequest::new(vec![asset("email", "a@example.com", true)]);
    req.action_context = Some(ActionContext {
        title: Some("Approve <b>payout</b> & \"more\"".into()),
        description: Some("You asked to send €120 to <script>alert(1)</script> O'Brien.".into()),
    });
    let created = create(&sb, req).await;
    let url = created.verification_url.expect("url");
    let (html, text) = page(&url).await;
    // Shown as written, as text.
    assert!(
        text.contains("Approve <b>payout</b> & \"more\"\nYou asked to send €120 to <script>alert(1)</script> O'Brien.\nStatus: pending"),
        "{text}"
    );
    assert!(
        html.contains("<title>Approve &lt;b&gt;payout&lt;/b&gt; &amp; &quot;more&quot; · proof.holdings sandbox</title>"),
        "{html}"
    );
    // Never as markup.
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>"), "{html}");

    // Without a context (or with blank texts) the page has its default title and no description.
    let mut req = CreateVerificationRequest::new(vec![asset("email", "a@example.com", true)]);
    req.action_context = Some(ActionContext {
        title: Some("   ".into()),
        description: Some(" ".into()),
    });
    let created = create(&sb, req).await;
    let (html, text) = page(&created.verification_url.expect("url")).await;
    assert!(
        text.starts_with("proof.holdings — sandbox (test mode, nothing is sent)\nVerify your identity\nStatus: pending"),
        "{text}"
    );
    assert!(!html.contains("class=\"description\""), "{html}");
    sb.shutdown().await;
}

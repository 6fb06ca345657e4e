//! Pages for people: the small HTML pages a browser gets instead of problem+json (a refusal, a
//! step-up that cannot finish, an upstream that does not answer). Self-contained — no external
//! asset but the operator's logo, no JavaScript — and served with `Cache-Control: no-store` and
//! a strict `Content-Security-Policy`.
//!
//! Operators brand them ([`Branding`]: product name, logo, support link) or replace the template
//! ([`Pages::with_template`], a `page.html` in their template directory). The template's
//! variables, each written `{{name}}`:
//!
//! | variable | value |
//! | --- | --- |
//! | `title` | the page's heading, then the product name (for `<title>`) |
//! | `heading` | what happened, in a few words |
//! | `message` | what happened and what to do, in a sentence or two |
//! | `details` | a `<dl>` of facts (what was verified, what the page needs), or nothing |
//! | `actions` | the next steps as links (the first is the main one), or nothing |
//! | `product_name` | the product name, or nothing |
//! | `logo` | an `<img>` of the logo, or nothing |
//! | `support` | a "Contact support" link, or nothing |
//! | `status` | the HTTP status |
//! | `reason` | the machine-readable reason (the problem+json `reason`) |
//!
//! Every value is HTML-escaped (`details`, `actions`, `logo` and `support` are markup built from
//! escaped values). A `<style>` element of the template is allowed by its hash in the CSP; no
//! script runs.
//!
//! Layer 5: imports the policy vocabulary only.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};

use crate::policy::{Combine, Policy, Requirement, Rule};

/// What operators put on every page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    /// The product's name, shown at the top of each page and in the hosted verification's
    /// context. Defaults to none.
    pub product_name: Option<String>,
    /// An absolute `https://` URL (or a path on this site) of a logo. Defaults to none.
    pub logo_url: Option<String>,
    /// Where a person can get help: an `https://`, `http://` or `mailto:` URL. Defaults to none.
    pub support_url: Option<String>,
}

/// A link on a page. The first one of a page is its main action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// What the link says.
    pub label: String,
    /// Where it goes: a path on this site or the URL given by the operator.
    pub href: String,
}

impl Link {
    /// A link.
    pub fn new(label: impl Into<String>, href: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            href: href.into(),
        }
    }
}

/// One page's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The HTTP status.
    pub status: u16,
    /// The machine-readable reason, shown small for support requests.
    pub reason: String,
    /// What happened, in a few words.
    pub heading: String,
    /// What happened and what to do, in a sentence or two.
    pub message: String,
    /// Facts, as label and value (what was verified, what the page needs).
    pub details: Vec<(String, String)>,
    /// The next steps; the first is the main one.
    pub actions: Vec<Link>,
}

impl Page {
    /// A page without details or actions.
    pub fn new(
        status: u16,
        reason: impl Into<String>,
        heading: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            reason: reason.into(),
            heading: heading.into(),
            message: message.into(),
            details: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// Adds a fact.
    pub fn detail(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.push((label.into(), value.into()));
        self
    }

    /// Adds a next step.
    pub fn action(mut self, label: impl Into<String>, href: impl Into<String>) -> Self {
        self.actions.push(Link::new(label, href));
        self
    }
}

/// Why a template could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PagesError {
    /// The template file could not be read.
    #[error("{path}: {source}; the template directory must contain page.html")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The template names a variable that does not exist.
    #[error("{path}: unknown variable {{{{{name}}}}}; the variables are {known}")]
    UnknownVariable {
        /// The file.
        path: String,
        /// The variable.
        name: String,
        /// The known ones.
        known: String,
    },
    /// The template has no place for the message or the actions.
    #[error("{path}: the template must use {{{{heading}}}}, {{{{message}}}} and {{{{actions}}}}")]
    Incomplete {
        /// The file.
        path: String,
    },
    /// A branding URL is not acceptable.
    #[error("{0}")]
    Branding(String),
}

const VARIABLES: &[&str] = &[
    "title",
    "heading",
    "message",
    "details",
    "actions",
    "product_name",
    "logo",
    "support",
    "status",
    "reason",
];

/// The template used when the operator gives none.
pub const DEFAULT_TEMPLATE: &str = include_str!("pages/page.html");

/// Renders [`Page`]s with the operator's branding and template. Built once at start.
#[derive(Debug, Clone)]
pub struct Pages {
    branding: Branding,
    template: String,
    csp: HeaderValue,
}

impl Default for Pages {
    fn default() -> Self {
        Self::new(Branding::default()).expect("no branding URL to check")
    }
}

impl Pages {
    /// Pages with the default template. The logo and support URLs are checked: the logo must
    /// be `https://` or a path on this site, the support link `https://`, `http://` or `mailto:`.
    pub fn new(branding: Branding) -> Result<Self, PagesError> {
        Self::with_template(branding, DEFAULT_TEMPLATE.to_owned(), "(built-in)")
    }

    /// Pages with a template read from `dir/page.html`.
    pub fn from_dir(branding: Branding, dir: &std::path::Path) -> Result<Self, PagesError> {
        let path = dir.join("page.html");
        let text = std::fs::read_to_string(&path).map_err(|source| PagesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::with_template(branding, text, &path.display().to_string())
    }

    /// Pages with the given template text; `origin` names it in errors.
    pub fn with_template(
        branding: Branding,
        template: String,
        origin: &str,
    ) -> Result<Self, PagesError> {
        if let Some(logo) = &branding.logo_url {
            let ok =
                logo.starts_with("https://") || (logo.starts_with('/') && !logo.starts_with("//"));
            if !ok || logo.chars().any(|c| c.is_control() || c == '"' || c == ' ') {
                return Err(PagesError::Branding(format!(
                    "pages.logo_url {logo:?} must be an https:// URL or a path on this site"
                )));
            }
        }
        if let Some(support) = &branding.support_url {
            let ok = ["https://", "http://", "mailto:"]
                .iter()
                .any(|p| support.starts_with(p));
            if !ok || support.chars().any(|c| c.is_control()) {
                return Err(PagesError::Branding(format!(
                    "pages.support_url {support:?} must be an https://, http:// or mailto: URL"
                )));
            }
        }
        let mut used = Vec::new();
        for name in variables(&template) {
            if !VARIABLES.contains(&name) {
                return Err(PagesError::UnknownVariable {
                    path: origin.to_owned(),
                    name: name.to_owned(),
                    known: VARIABLES.join(", "),
                });
            }
            used.push(name);
        }
        if !["heading", "message", "actions"]
            .iter()
            .all(|v| used.contains(v))
        {
            return Err(PagesError::Incomplete {
                path: origin.to_owned(),
            });
        }
        let csp = csp(&template, branding.logo_url.as_deref());
        Ok(Self {
            branding,
            template,
            csp,
        })
    }

    /// The branding.
    pub fn branding(&self) -> &Branding {
        &self.branding
    }

    /// The page as an HTML response.
    pub fn render(&self, page: &Page) -> crate::render::Rendered {
        let product = self.branding.product_name.as_deref().unwrap_or("");
        let title = if product.is_empty() {
            page.heading.clone()
        } else {
            format!("{} · {product}", page.heading)
        };
        let mut details = String::new();
        if !page.details.is_empty() {
            details.push_str("<dl>");
            for (label, value) in &page.details {
                details.push_str(&format!(
                    "<dt>{}</dt><dd>{}</dd>",
                    escape(label),
                    escape(value)
                ));
            }
            details.push_str("</dl>");
        }
        let mut actions = String::new();
        if !page.actions.is_empty() {
            actions.push_str("<nav class=\"actions\">");
            for (i, link) in page.actions.iter().enumerate() {
                let class = if i == 0 { "primary" } else { "secondary" };
                actions.push_str(&format!(
                    "<a class=\"{class}\" href=\"{}\">{}</a>",
                    escape(&link.href),
                    escape(&link.label)
                ));
            }
            actions.push_str("</nav>");
        }
        let logo = self
            .branding
            .logo_url
            .as_deref()
            .map_or(String::new(), |url| {
                format!(
                    "<img class=\"logo\" src=\"{}\" alt=\"{}\">",
                    escape(url),
                    escape(product)
                )
            });
        let support = self
            .branding
            .support_url
            .as_deref()
            .map_or(String::new(), |url| {
                format!(
                    "<a class=\"support\" href=\"{}\">Contact support</a>",
                    escape(url)
                )
            });
        let status = page.status.to_string();
        let body = substitute(&self.template, |name| match name {
            "title" => escape(&title),
            "heading" => escape(&page.heading),
            "message" => escape(&page.message),
            "details" => details.clone(),
            "actions" => actions.clone(),
            "product_name" => escape(product),
            "logo" => logo.clone(),
            "support" => support.clone(),
            "status" => status.clone(),
            "reason" => escape(&page.reason),
            _ => String::new(),
        });
        crate::render::Rendered {
            status: page.status,
            headers: self.headers(),
            body: Bytes::from(body),
        }
    }

    /// The headers of every page: HTML, `no-store`, the CSP, no framing, no sniffing, no
    /// referrer.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        vec![
            (
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ),
            (http::header::CONTENT_SECURITY_POLICY, self.csp.clone()),
            (
                http::header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                http::header::X_FRAME_OPTIONS,
                HeaderValue::from_static("DENY"),
            ),
            (
                http::header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ]
    }
}

/// The `{{name}}` variables of a template, in order.
fn variables(template: &str) -> impl Iterator<Item = &str> {
    template.split("{{").skip(1).filter_map(|rest| {
        let (name, _) = rest.split_once("}}")?;
        Some(name.trim())
    })
}

fn substitute(template: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 512);
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].split_once("}}") {
            Some((name, after)) => {
                out.push_str(&value(name.trim()));
                rest = after;
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The policy: nothing loads but the template's own styles (by hash) and the logo; no script,
/// no frame, forms only to this site.
fn csp(template: &str, logo: Option<&str>) -> HeaderValue {
    use base64::Engine;
    let mut styles = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("<style>") {
        let after = &rest[start + "<style>".len()..];
        let Some(end) = after.find("</style>") else {
            break;
        };
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &after.as_bytes()[..end]);
        styles.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
        ));
        rest = &after[end..];
    }
    let style = if styles.is_empty() {
        "'none'".to_owned()
    } else {
        styles.join(" ")
    };
    let img = match logo {
        Some(url) if url.starts_with("https://") => {
            let origin_end = url["https://".len()..]
                .find('/')
                .map_or(url.len(), |i| i + "https://".len());
            format!("'self' {}", &url[..origin_end])
        }
        Some(_) => "'self'".to_owned(),
        None => "'none'".to_owned(),
    };
    let value = format!(
        "default-src 'none'; style-src {style}; img-src {img}; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a policy needs, in words a person understands: "an email address (alice@corp.example)",
/// "one of: a phone number verified by SMS; a domain (corp.example)".
pub fn describe_policy(policy: &Policy) -> String {
    match &policy.rule {
        Rule::Public | Rule::Optional => "nothing".to_owned(),
        Rule::Deny => "access this site does not give".to_owned(),
        Rule::Require {
            combine,
            requirements,
        } => {
            let parts: Vec<String> = requirements.iter().map(describe_requirement).collect();
            match (parts.len(), combine) {
                (1, _) => parts[0].clone(),
                (_, Combine::AnyOf) => format!("one of: {}", parts.join("; ")),
                (_, Combine::AllOf) => format!("all of: {}", parts.join("; ")),
            }
        }
    }
}

/// A kind of proof in words: "an email address", "a phone number".
pub fn describe_type(kind: &str) -> String {
    match kind {
        "email" => "an email address".to_owned(),
        "phone" => "a phone number".to_owned(),
        "domain" => "a domain".to_owned(),
        "wallet" => "a wallet".to_owned(),
        other => format!("a {other} proof"),
    }
}

fn describe_channel(channel: &str) -> &str {
    match channel {
        "sms" => "SMS",
        "whatsapp" => "WhatsApp",
        "email" => "email",
        "dns" => "DNS",
        "telegram" => "Telegram",
        other => other,
    }
}

/// One requirement in words.
pub fn describe_requirement(r: &Requirement) -> String {
    if let Some(d) = &r.delegation {
        return format!(
            "an agent's delegation from {} for {}",
            d.principals.join(" or "),
            d.scopes.join(" and ")
        );
    }
    let mut text = if r.types.is_empty() {
        "a verified proof".to_owned()
    } else {
        r.types
            .iter()
            .map(|t| describe_type(t))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    if !r.identifiers.is_empty() {
        let ids: Vec<&str> = r
            .identifiers
            .iter()
            .map(|i| i.normalized.as_str())
            .collect();
        text.push_str(&format!(" ({})", ids.join(" or ")));
    }
    if !r.channels.is_empty() {
        let channels: Vec<&str> = r.channels.iter().map(|c| describe_channel(c)).collect();
        text.push_str(&format!(" verified by {}", channels.join(" or ")));
    }
    if let Some(max_age) = r.max_age {
        text.push_str(&format!(
            ", verified within the last {}",
            human_duration(max_age.as_secs())
        ));
    }
    text
}

/// `90` → "2 minutes" (rounded up), `3600` → "1 hour".
pub fn human_duration(secs: u64) -> String {
    let (n, unit) = if secs < 60 {
        (secs, "second")
    } else if secs < 3600 {
        (secs.div_ceil(60), "minute")
    } else if secs < 86_400 {
        (secs.div_ceil(3600), "hour")
    } else {
        (secs.div_ceil(86_400), "day")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_escaped_with_strict_headers() {
        let pages = Pages::new(Branding {
            product_name: Some("Acme <Admin>".into()),
            logo_url: Some("https://cdn.acme.example/logo.png".into()),
            support_url: Some("mailto:help@acme.example".into()),
        })
        .unwrap();
        let page = Page::new(403, "policy_unmet", "Not <allowed>", "Try \"again\"")
            .detail("You verified", "<script>alert(1)</script>")
            .action("Verify", "/.proofgate/start?policy=a&return_to=%2F");
        let r = pages.render(&page);
        let body = std::str::from_utf8(&r.body).unwrap();
        assert_eq!(r.status, 403);
        assert!(body.contains("Not &lt;allowed&gt;"));
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!body.contains("<script"));
        assert!(body.contains("href=\"/.proofgate/start?policy=a&amp;return_to=%2F\""));
        assert!(body.contains("Acme &lt;Admin&gt;"));
        assert!(body.contains("mailto:help@acme.example"));
        let h = |n: HeaderName| {
            r.headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
                .unwrap()
        };
        assert_eq!(h(http::header::CACHE_CONTROL), "no-store");
        let csp = h(http::header::CONTENT_SECURITY_POLICY);
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(
            csp.contains("img-src 'self' https://cdn.acme.example;"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
    }

    #[test]
    fn templates_are_checked() {
        let b = Branding::default();
        let ok = "<h1>{{heading}}</h1><p>{{ message }}</p>{{actions}}";
        assert!(Pages::with_template(b.clone(), ok.into(), "t").is_ok());
        let err = Pages::with_template(b.clone(), format!("{ok}{{{{tokn}}}}"), "t/page.html")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t/page.html: unknown variable {{tokn}}"),
            "{err}"
        );
        let err = Pages::with_template(b.clone(), "{{heading}}".into(), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must use"), "{err}");
        for logo in [
            "http://x.example/l.png",
            "//x.example/l.png",
            "javascript:x",
        ] {
            let b = Branding {
                logo_url: Some(logo.into()),
                ..Branding::default()
            };
            assert!(Pages::new(b).is_err(), "{logo}");
        }
    }

    #[test]
    fn policies_in_words() {
        let p = Policy::any_of(
            "admin",
            vec![
                Requirement::of_type("email").identifiers(["Alice@Corp.example"]),
                Requirement::of_type("domain").identifiers(["corp.example"]),
            ],
        );
        assert_eq!(
            describe_policy(&p),
            "one of: an email address (alice@corp.example); a domain (corp.example)"
        );
        let p = Policy::all_of(
            "payouts",
            vec![Requirement::of_type("phone")
                .channels(["sms"])
                .max_age(std::time::Duration::from_secs(900))],
        );
        assert_eq!(
            describe_policy(&p),
            "a phone number verified by SMS, verified within the last 15 minutes"
        );
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(7200), "2 hours");
    }
}

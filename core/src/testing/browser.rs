//! A person's browser through a step-up, hop by hop, against a gateway (or a service with the
//! middleware) and the sandbox's hosted page. Each hop asserts what every step-up must do and
//! returns what a test needs for its own assertions. Used by the gateway's and the middleware's
//! tests, so that both walk the flow the same way.

use reqwest::{Client, RequestBuilder};

/// Marks a request as a browser's (HTML preferred), which is what makes a protected page answer
/// with a redirect rather than problem+json.
pub fn html(rb: RequestBuilder) -> RequestBuilder {
    rb.header("accept", "text/html,application/xhtml+xml")
}

/// The first two hops: the start link and the hosted page, with the state cookie.
#[derive(Debug, Clone)]
pub struct Started {
    /// The start link the protected page redirected to, as sent (relative).
    pub start: String,
    /// The hosted verification page the start link redirected to.
    pub hosted: String,
    /// The state cookie, as `name=value`.
    pub state_cookie: String,
}

/// The whole flow: [`Started`], the callback URL and the proof cookie it set.
#[derive(Debug, Clone)]
pub struct Walk {
    /// The first two hops.
    pub started: Started,
    /// Where the hosted page sent the person back.
    pub callback: String,
    /// The proof cookie, as `name=value`, ready for a `Cookie` header.
    pub cookie: String,
    /// The proof cookie's whole `Set-Cookie` value (attributes included).
    pub set_cookie: String,
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location in a {} answer", r.status()))
        .to_string()
}

/// GETs `base` + `path` as a browser without a proof: it must redirect (302) to a start link,
/// which must redirect (302) to the hosted page under `sandbox`, setting the state cookie.
pub async fn start(http: &Client, base: &str, path: &str, sandbox: &str) -> Started {
    let r = html(http.get(format!("{base}{path}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "protected page {path}");
    let start = location(&r);
    let r = html(http.get(format!("{base}{start}")))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let hosted = if status == 302 {
        location(&r)
    } else {
        String::new()
    };
    let state_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        // The flow's own state cookie, `proofgate_state_<flow>` (not one cleared on the way).
        .find(|c| c.starts_with("proofgate_state_") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap_or_default().to_string());
    assert_eq!(
        status,
        302,
        "start link {start}: {}",
        r.text().await.unwrap_or_default()
    );
    assert!(
        hosted.starts_with(sandbox),
        "hosted page {hosted} not under {sandbox}"
    );
    Started {
        start,
        hosted,
        state_cookie: state_cookie.expect("a proofgate_state_<flow> cookie"),
    }
}

/// Completes the hosted page as the person would; it must send them back (303) to the callback
/// under `base`, which is returned.
pub async fn complete(http: &Client, started: &Started, base: &str) -> String {
    let r = http
        .post(format!("{}/complete", started.hosted))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "completing {}", started.hosted);
    let callback = location(&r);
    assert!(
        callback.starts_with(&format!("{base}/.proofgate/callback")),
        "callback {callback} not under {base}"
    );
    callback
}

/// Follows `callback` with the state cookie: it must redirect (302) to `return_to` and set a
/// proof cookie that is `HttpOnly` and `SameSite=Lax`. Returns that cookie as `name=value` and
/// its whole `Set-Cookie` value.
pub async fn finish(
    http: &Client,
    started: &Started,
    callback: &str,
    return_to: &str,
) -> (String, String) {
    let r = html(http.get(callback))
        .header("cookie", &started.state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "callback {callback}");
    assert_eq!(location(&r), return_to);
    let set_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("proof_token="))
        .expect("a proof cookie")
        .to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_string();
    (cookie, set_cookie)
}

/// [`start`], [`complete`] and [`finish`] in a row, for `path` on the gateway or service at
/// `base`, coming back to `path`.
pub async fn step_up(http: &Client, base: &str, path: &str, sandbox: &str) -> Walk {
    let started = start(http, base, path, sandbox).await;
    let callback = complete(http, &started, base).await;
    let (cookie, set_cookie) = finish(http, &started, &callback, path).await;
    Walk {
        started,
        callback,
        cookie,
        set_cookie,
    }
}

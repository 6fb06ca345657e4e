//! A real headless Chromium for end-to-end tests, driven over WebDriver (`chromedriver`) with
//! `fantoccini`.
//!
//! [`Browser::start`] runs `chromedriver` on a free loopback port as a child process and opens
//! one headless Chromium session on a fresh profile in a temporary directory. Everything it
//! started is ended when the [`Browser`] is dropped, also when a test panics half-way: the
//! WebDriver session is deleted (Chromium quits), `chromedriver` and its process group are
//! killed, and any process still running on this browser's profile directory is killed by id.
//!
//! Without `chromedriver` (or Chromium) on the `PATH`, [`Browser::start`] returns `None` after
//! printing a loud "skipped" line, or panics when the `CI` environment variable is set, so that
//! CI never passes by skipping. `CHROMEDRIVER` and `CHROMIUM` may name the binaries instead.
//!
//! Every wait is for a condition (an element, a URL, a text) with a deadline
//! ([`Browser::timeout`], 30 s), never a fixed sleep; a wait that times out panics with the
//! current URL and the page's text.
//!
//! Screenshots ([`Browser::screenshot`]) go to a temporary directory, or, with
//! `PROOFGATE_SCREENSHOTS=<dir>` (relative to the repository root), to `<dir>`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::cookies::Cookie;
use fantoccini::elements::Element;
use fantoccini::wd::WindowHandle;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use super::{free_port, Process};

/// The size of the page's viewport: screenshots are this big.
pub const VIEWPORT: (u32, u32) = (1000, 700);

/// A headless Chromium session; see the module documentation.
pub struct Browser {
    client: Client,
    /// How long each wait may take.
    pub timeout: Duration,
    shots: Shots,
    // Dropped after `client`, in this order: the driver (session, processes), then the profile.
    driver: Driver,
    profile: tempfile::TempDir,
}

enum Shots {
    Temp(tempfile::TempDir),
    Dir(PathBuf),
}

/// `chromedriver` and the session it runs; ended on drop.
struct Driver {
    process: Process,
    port: u16,
    session: Option<String>,
    profile: PathBuf,
}

/// The first executable file called one of `names` on the `PATH` (or the path in `env_var`).
fn find_binary(env_var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether this process runs as root (Chromium's sandbox refuses to start then).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            == Some("0")
    })
}

/// An XPath string literal for `s`, whatever quotes it holds.
pub fn xpath_literal(s: &str) -> String {
    if !s.contains('\'') {
        format!("'{s}'")
    } else if !s.contains('"') {
        format!("\"{s}\"")
    } else {
        let parts: Vec<String> = s.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// An XPath for a `<button>` (or `<input type=submit|button>`) whose text is `text`, under
/// `scope` (`""` for the whole page, `"."` for inside the context element).
fn button_xpath(scope: &str, text: &str) -> String {
    let lit = xpath_literal(text);
    format!(
        "{scope}//button[normalize-space(.)={lit}] | \
         {scope}//input[(@type='submit' or @type='button') and normalize-space(@value)={lit}]"
    )
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session; `None` (after a loud line on
    /// stderr) when they are not installed, unless `CI` is set, where that is a failure.
    pub async fn start() -> Option<Browser> {
        let driver_bin = find_binary("CHROMEDRIVER", &["chromedriver"]);
        let chromium = find_binary(
            "CHROMIUM",
            &[
                "chromium",
                "chromium-browser",
                "google-chrome",
                "google-chrome-stable",
            ],
        );
        let (Some(driver_bin), Some(chromium)) = (driver_bin, chromium) else {
            let why = "chromedriver and Chromium are not on the PATH (Debian/Ubuntu: \
                       apt-get install chromium chromium-driver; or set CHROMEDRIVER and CHROMIUM)";
            if std::env::var_os("CI").is_some() {
                panic!("browser tests cannot run: {why}");
            }
            // Straight to the process's stderr: the test harness captures `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "\n========================================================================\n\
                 skipped: install chromium chromium-driver to run the browser tests\n  {why}\n\
                 ========================================================================\n"
            );
            return None;
        };

        let profile = tempfile::Builder::new()
            .prefix("proofgate-browser-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let log = profile.path().join("chromedriver.log");
        let out = std::fs::File::create(&log).unwrap();
        let process = {
            use std::os::unix::process::CommandExt;
            Process(
                Command::new(&driver_bin)
                    .arg(format!("--port={port}"))
                    .stdin(Stdio::null())
                    .stdout(out.try_clone().unwrap())
                    .stderr(out)
                    // Its own process group, so that drop can end Chromium with it.
                    .process_group(0)
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_bin.display())),
            )
        };
        let mut driver = Driver {
            process,
            port,
            session: None,
            profile: profile.path().join("profile"),
        };
        let timeout = Duration::from_secs(30);
        driver.wait_ready(timeout, &log);

        let mut args = vec![
            "--headless=new".to_string(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={},{}", VIEWPORT.0, VIEWPORT.1),
            format!("--user-data-dir={}", driver.profile.display()),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-default-apps".into(),
            "--disable-extensions".into(),
            "--disable-sync".into(),
            "--password-store=basic".into(),
            "--lang=en-US".into(),
        ];
        if is_root() {
            args.push("--no-sandbox".into());
        }
        let caps = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": args,
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot open a Chromium session through chromedriver: {e}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        driver.session = client.session_id().await.ok().flatten();
        // The window holds more than the page (headless keeps room for the browser's own bars):
        // grow it so that the viewport, and so every screenshot, is exactly VIEWPORT.
        let inner = client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .unwrap();
        let (w, h) = client.get_window_size().await.unwrap();
        let inner = |i: usize| inner[i].as_u64().unwrap_or(0);
        client
            .set_window_size(
                (w + u64::from(VIEWPORT.0)).saturating_sub(inner(0)) as u32,
                (h + u64::from(VIEWPORT.1)).saturating_sub(inner(1)) as u32,
            )
            .await
            .unwrap();
        let shots = match std::env::var_os("PROOFGATE_SCREENSHOTS").filter(|d| !d.is_empty()) {
            Some(dir) => {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
                std::fs::create_dir_all(&dir).unwrap();
                Shots::Dir(dir)
            }
            None => Shots::Temp(tempfile::tempdir().unwrap()),
        };
        Some(Browser {
            client,
            timeout,
            shots,
            driver,
            profile,
        })
    }

    /// The WebDriver client, for anything the helpers here do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` (waits for it to load).
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// The page's visible text (the body's rendered text).
    pub async fn text(&self) -> String {
        self.try_text().await.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn try_text(&self) -> Result<String, String> {
        let body = self
            .client
            .find(Locator::Css("body"))
            .await
            .map_err(|e| format!("no page body: {e}"))?;
        body.text().await.map_err(|e| format!("page text: {e}"))
    }

    /// The page's HTML source.
    pub async fn html(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        self.client.title().await.unwrap()
    }

    /// Where a wait that timed out was: the URL and the page's text.
    async fn describe(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .map_or_else(|e| format!("(no URL: {e})"), |u| u.to_string());
        let text = self.try_text().await.unwrap_or_else(|e| e);
        format!("at {url}, the page says:\n{text}")
    }

    /// Polls `probe` until it gives `Some`, at most [`Browser::timeout`]; panics with `what`
    /// and where the browser is.
    async fn until<T>(&self, what: &str, mut probe: impl AsyncFnMut(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(v) = probe(self).await {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {:?} waiting for {what}\n{}",
                    self.timeout,
                    self.describe().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's text contains `needle`; returns the text.
    pub async fn wait_text(&self, needle: &str) -> String {
        self.until(&format!("the text {needle:?}"), async |b: &Self| {
            b.try_text().await.ok().filter(|t| t.contains(needle))
        })
        .await
    }

    /// Waits until the current URL satisfies `ok` (`what` describes it); returns the URL.
    pub async fn wait_url(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        self.until(&format!("a URL {what}"), async |b: &Self| {
            let u = b.client.current_url().await.ok()?.to_string();
            ok(&u).then_some(u)
        })
        .await
    }

    /// Waits until the current URL starts with `prefix`; returns the URL.
    pub async fn wait_url_prefix(&self, prefix: &str) -> String {
        self.wait_url(&format!("starting with {prefix}"), |u| {
            u.starts_with(prefix)
        })
        .await
    }

    /// Waits for an element matching `locator` that is displayed.
    pub async fn wait_element(&self, what: &str, locator: Locator<'_>) -> Element {
        self.until(what, async |b: &Self| {
            let e = b.client.find(locator).await.ok()?;
            e.is_displayed().await.ok()?.then_some(e)
        })
        .await
    }

    /// Clicks the link whose text is exactly `text`.
    pub async fn click_link(&self, text: &str) {
        let e = self
            .wait_element(&format!("a link {text:?}"), Locator::LinkText(text))
            .await;
        e.click()
            .await
            .unwrap_or_else(|err| panic!("click link {text:?}: {err}"));
    }

    /// Clicks the button (a `<button>`, or an `<input type=submit|button>`) whose text is
    /// exactly `text` (whitespace collapsed).
    pub async fn click_button(&self, text: &str) {
        let xpath = button_xpath("", text);
        let e = self
            .wait_element(&format!("a button {text:?}"), Locator::XPath(&xpath))
            .await;
        e.click()
            .await
            .unwrap_or_else(|err| panic!("click button {text:?}: {err}"));
    }

    /// Types `value` into the field named `name` (replacing what it held).
    pub async fn fill(&self, name: &str, value: &str) {
        let lit = xpath_literal(name);
        let e = self
            .wait_element(
                &format!("a field named {name:?}"),
                Locator::XPath(&format!("//*[@name={lit}]")),
            )
            .await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    /// Fills the form matched by `form` (a CSS selector) with `fields` by name and submits it
    /// by clicking its button whose text is `button` (as [`Browser::click_button`]).
    pub async fn fill_and_submit(&self, form: &str, fields: &[(&str, &str)], button: &str) {
        let el = self
            .wait_element(&format!("a form {form:?}"), Locator::Css(form))
            .await;
        let f = self.client.form(Locator::Css(form)).await.unwrap();
        for (name, value) in fields {
            f.set_by_name(name, value)
                .await
                .unwrap_or_else(|e| panic!("form {form:?} field {name:?}: {e}"));
        }
        el.find(Locator::XPath(&button_xpath(".", button)))
            .await
            .unwrap_or_else(|e| panic!("form {form:?} has no button {button:?}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("form {form:?} button {button:?}: {e}"));
    }

    /// Submits a form the page builds: `POST url` with `fields` (urlencoded), as a top-level
    /// navigation of the current tab, with the cookies a browser sends on it.
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) {
        let fields: Vec<Value> = fields.iter().map(|(k, v)| json!([k, v])).collect();
        self.client
            .execute(
                "const [url, fields] = arguments;
                 const f = document.createElement('form');
                 f.method = 'post';
                 f.action = url;
                 for (const [k, v] of fields) {
                   const i = document.createElement('input');
                   i.type = 'hidden'; i.name = k; i.value = v;
                   f.appendChild(i);
                 }
                 document.body.appendChild(f);
                 f.submit();",
                vec![json!(url), Value::Array(fields)],
            )
            .await
            .unwrap_or_else(|e| panic!("post_form {url}: {e}"));
    }

    /// Goes back in history.
    pub async fn back(&self) {
        self.client.back().await.unwrap();
    }

    /// Every cookie the browser holds for the current page.
    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        self.client.get_all_cookies().await.unwrap()
    }

    /// The cookie called `name` for the current page, if any.
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.cookies().await.into_iter().find(|c| c.name() == name)
    }

    /// Opens a new tab and switches to it; returns its handle (the previous one is
    /// [`Browser::window`] before the call).
    pub async fn new_tab(&self) -> WindowHandle {
        let w = self.client.new_window(true).await.unwrap();
        self.client
            .switch_to_window(w.handle.clone())
            .await
            .unwrap();
        w.handle
    }

    /// Opens a new window and switches to it.
    pub async fn new_window(&self) -> WindowHandle {
        let w = self.client.new_window(false).await.unwrap();
        self.client
            .switch_to_window(w.handle.clone())
            .await
            .unwrap();
        w.handle
    }

    /// The current tab or window.
    pub async fn window(&self) -> WindowHandle {
        self.client.window().await.unwrap()
    }

    /// Switches to the tab or window `handle`.
    pub async fn switch_to(&self, handle: &WindowHandle) {
        self.client.switch_to_window(handle.clone()).await.unwrap();
    }

    /// Closes the current tab or window (switch to another one afterwards).
    pub async fn close_tab(&self) {
        self.client.close_window().await.unwrap();
    }

    /// Saves a PNG of the current viewport as `<name>.png` in the screenshot directory (see the
    /// module documentation); returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = match &self.shots {
            Shots::Temp(t) => t.path(),
            Shots::Dir(d) => d.as_path(),
        };
        let path = dir.join(format!("{name}.png"));
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((size(16), size(20)), VIEWPORT, "the screenshot's size");
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// This browser's profile directory (removed on drop).
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }
}

impl Driver {
    /// Waits until chromedriver answers `/status` with `ready: true`.
    fn wait_ready(&mut self, timeout: Duration, log: &Path) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                panic!(
                    "chromedriver exited ({status}) before it was ready:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if let Some(body) = self.request("GET", "/status") {
                if body.contains("\"ready\":true") || body.contains("\"ready\": true") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver never became ready on port {}:\n{}",
                self.port,
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One blocking HTTP/1.1 request to chromedriver; the body of a complete answer, `None` on
    /// any failure. Blocking on purpose: it runs in `Drop`, where no runtime may be left.
    fn request(&self, method: &str, path: &str) -> Option<String> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(15))).ok()?;
        s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        )
        .ok()?;
        // chromedriver may keep the connection open: read the head, then `Content-Length` bytes.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return Some(
                        String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned(),
                    );
                }
            }
            match s.read(&mut chunk).ok()? {
                0 => return None,
                n => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The ids of running processes whose command line names this browser's profile.
    fn profile_processes(&self) -> Vec<u32> {
        let needle = self.profile.to_string_lossy().into_owned();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
            })
            .collect()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ask chromedriver to end the session: Chromium quits cleanly.
        if let Some(id) = self.session.take() {
            let _ = self.request("DELETE", &format!("/session/{id}"));
        }
        // Then end chromedriver's process group (it and anything it started in it) ...
        let pgid = self.process.id().to_string();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.process.kill();
        let _ = self.process.wait();
        // ... and, by id, any process still running on this browser's own profile directory.
        for pid in self.profile_processes() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

//! Route matching: host, path prefix or glob, and methods → policy and upstream.
//!
//! A [`RouteTable`] holds the configured [`Route`]s in order and a default policy. Each request is
//! matched against the routes in that order; the first route whose hosts, path and methods all
//! match wins, and a request that matches none gets the default policy (`deny` in the shipped
//! examples: zero trust).
//!
//! # Paths are normalized before they are matched
//!
//! A route's policy is only as good as the path it is matched on. An attacker who can make the
//! gateway see `/public/x` while the upstream serves `/admin/x` walks past the admin policy, so
//! the adapter calls [`normalize_path`] on the raw request path first and:
//!
//! - matches the routes on the normalized path ([`RouteTable::route`]);
//! - forwards the normalized path upstream, so that both sides see the same resource;
//! - answers `400 Bad Request` when normalization fails (encoded `/`, `\`, NUL, bad escapes, …):
//!   such a path is hostile or broken, and no upstream needs it.
//!
//! ```
//! use std::sync::Arc;
//! use http::Method;
//! use proofgate_core::policy::Policy;
//! use proofgate_core::path::normalize_path;
//! use proofgate_core::routes::{PathPattern, Route, RouteTable};
//!
//! let admin = Route {
//!     name: "admin".into(),
//!     hosts: vec![],
//!     path: PathPattern::parse("/admin/**").unwrap(),
//!     methods: vec![],
//!     policy: Arc::new(Policy::deny("admins-only")),
//!     upstream: Some("backoffice".into()),
//!     preflight: Default::default(),
//! };
//! let table = RouteTable::new(vec![admin], Arc::new(Policy::public("open")));
//!
//! for raw in ["/admin/../admin/users", "/%2e%2e/ADMIN", "//admin", "/Admin/", "/a/./../admin?x=1"] {
//!     let path = normalize_path(raw).unwrap();
//!     assert_eq!(table.route(&Method::GET, None, &path).name, "admin", "{raw}");
//! }
//! let path = normalize_path("/admin/../x").unwrap();
//! assert_eq!(path, "/x");
//! assert!(table.route(&Method::GET, None, &path).is_default());
//! assert!(normalize_path("/admin%2fusers").is_err());
//! ```
//!
//! # Hot path
//!
//! [`RouteTable::route`] takes no lock and allocates nothing: patterns are parsed once when the
//! table is built, and a path is walked segment by segment in place. [`normalize_path`] allocates
//! the normalized string and nothing else.
//!
//! # Invariants (for property tests)
//!
//! For every `raw` where `normalize_path(raw)` is `Ok(p)`:
//! - `p` starts with `/`, is ASCII, has no `?` or `#`, no `\`, no empty segment (`//`), no `.`
//!   or `..` segment, and no `%` escape of an unreserved character;
//! - `normalize_path(&p) == Ok(p)` (idempotent);
//! - matching is blind to ASCII case: `route(m, h, &p)` and `route(m, h, &p.to_ascii_uppercase())`
//!   pick the same route.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use http::Method;

use crate::path::{decode_unreserved_lossy, normalize_path, PathError};
use crate::policy::Policy;

/// The name [`RouteTable::route`] reports when no route matched.
pub const DEFAULT_ROUTE_NAME: &str = "default";

/// One route: which requests it covers and what applies to them.
#[derive(Debug, Clone)]
pub struct Route {
    /// Name used in logs, metrics and responses; unique within a table.
    pub name: String,
    /// Host names this route covers: exact (`api.example.com`) or a wildcard (`*.example.com`,
    /// any name below `example.com` but not `example.com` itself). Compared without case, the
    /// port and a trailing dot ignored. Empty means any host.
    pub hosts: Vec<String>,
    /// The path pattern.
    pub path: PathPattern,
    /// Methods this route covers; a route covering `GET` covers `HEAD` too. Empty means any.
    pub methods: Vec<Method>,
    /// The policy applied to matching requests.
    pub policy: Arc<Policy>,
    /// The upstream (by name) matching requests go to; `None` means the table's default.
    pub upstream: Option<String>,
    /// What happens to a CORS preflight for this route ([`Preflight`]).
    pub preflight: Preflight,
}

/// What a route does with a CORS preflight: an `OPTIONS` request with an `Origin` and an
/// `Access-Control-Request-Method` header, which a browser sends — by the Fetch standard,
/// without credentials — before a cross-origin request that is not "simple" (one with an
/// `Authorization` header, a JSON body, a `PUT`…). Only the preflight is concerned: the actual
/// request that follows is decided under the route's policy like any other.
///
/// See [`crate::decision::Enforcer::decide_request`] for which route's setting applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preflight {
    /// The preflight is decided under the route's policy like any request: without a token (a
    /// browser never sends one on a preflight) it is refused, so a browser app on another
    /// origin cannot call the route. The default: nothing reaches an upstream without a
    /// decision unless the operator says so, and routes that are not called cross-origin (most)
    /// need nothing else.
    #[default]
    Deny,
    /// The preflight is sent to the route's upstream without a policy decision (client-sent
    /// identity headers still removed), so that the upstream answers it with its own CORS
    /// headers.
    Forward,
}

impl Preflight {
    /// `deny` or `forward`, as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Preflight::Deny => "deny",
            Preflight::Forward => "forward",
        }
    }
}

impl FromStr for Preflight {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "deny" => Ok(Preflight::Deny),
            "forward" => Ok(Preflight::Forward),
            other => Err(format!(
                "{other:?} is not a preflight setting; use \"forward\" or \"deny\""
            )),
        }
    }
}

impl Route {
    /// Whether this route covers a request. `path` must come from [`normalize_path`].
    pub fn matches(&self, method: &Method, host: Option<&str>, path: &str) -> bool {
        self.matches_method(method) && self.matches_host(host) && self.path.matches(path)
    }

    fn matches_method(&self, method: &Method) -> bool {
        self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|m| m == method || (*m == Method::GET && *method == Method::HEAD))
    }

    fn matches_host(&self, host: Option<&str>) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        let Some(host) = host.map(host_without_port) else {
            return false;
        };
        self.hosts.iter().any(|pattern| host_matches(pattern, host))
    }
}

/// The result of [`RouteTable::route`]: the route that applies, or the default.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'a> {
    /// The route's name, [`DEFAULT_ROUTE_NAME`] for the default.
    pub name: &'a str,
    /// The policy to apply.
    pub policy: &'a Arc<Policy>,
    /// The upstream to forward to: the route's own or else the table's default.
    pub upstream: Option<&'a str>,
    /// The route that matched; `None` for the default.
    pub route: Option<&'a Route>,
}

impl RouteMatch<'_> {
    /// Whether no route matched and the default applies.
    pub fn is_default(&self) -> bool {
        self.route.is_none()
    }
}

/// Routes in order, plus the policy (and upstream) for requests that match none.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
    default_policy: Arc<Policy>,
    default_upstream: Option<String>,
}

impl RouteTable {
    /// A table trying `routes` in order, with `default_policy` for requests that match none.
    pub fn new(routes: Vec<Route>, default_policy: Arc<Policy>) -> Self {
        Self {
            routes,
            default_policy,
            default_upstream: None,
        }
    }

    /// The same table with an upstream for the default route and for routes that name none.
    /// Defaults to `None`.
    pub fn with_default_upstream(mut self, upstream: Option<String>) -> Self {
        self.default_upstream = upstream;
        self
    }

    /// The routes, in matching order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The policy for requests that match no route.
    pub fn default_policy(&self) -> &Arc<Policy> {
        &self.default_policy
    }

    /// The upstream for the default route and for routes that name none.
    pub fn default_upstream(&self) -> Option<&str> {
        self.default_upstream.as_deref()
    }

    /// The default route's match, for requests no route can name (`OPTIONS *`).
    pub fn default_match(&self) -> RouteMatch<'_> {
        RouteMatch {
            name: DEFAULT_ROUTE_NAME,
            policy: &self.default_policy,
            upstream: self.default_upstream.as_deref(),
            route: None,
        }
    }

    /// The route for a request: the first that matches, or the default.
    ///
    /// `host` is the request's host (the `Host` header or the URI's authority; a port is
    /// ignored). `path` must come from [`normalize_path`]: matching a raw path would let
    /// `/public/../admin` through as `/public/**`.
    pub fn route(&self, method: &Method, host: Option<&str>, path: &str) -> RouteMatch<'_> {
        match self.routes.iter().find(|r| r.matches(method, host, path)) {
            Some(route) => RouteMatch {
                name: &route.name,
                policy: &route.policy,
                upstream: route
                    .upstream
                    .as_deref()
                    .or(self.default_upstream.as_deref()),
                route: Some(route),
            },
            None => self.default_match(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hosts

/// Checks a route host pattern: an exact name or `*.` followed by a name; names are made of
/// letters, digits, `-`, `_` and `.`, or are a bracketed IPv6 literal. Ports are not allowed.
pub fn check_host_pattern(pattern: &str) -> Result<(), PatternError> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    if name.is_empty() {
        return Err(PatternError::EmptyHost);
    }
    if name.starts_with('[') && name.ends_with(']') && name.len() > 2 && name.len() == pattern.len()
    {
        return if name[1..name.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            Ok(())
        } else {
            Err(PatternError::InvalidHost(pattern.to_string()))
        };
    }
    let valid = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.')
        && !name.contains("..");
    if valid {
        Ok(())
    } else {
        Err(PatternError::InvalidHost(pattern.to_string()))
    }
}

/// `example.com:8080` → `example.com`, `[::1]:8080` → `[::1]`, and a trailing dot dropped.
pub(crate) fn host_without_port(host: &str) -> &str {
    let host = if host.starts_with('[') {
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        host.split(':').next().unwrap_or(host)
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// Whether a request's `host` (a `Host` value; port and trailing dot ignored) is covered by a
/// route host `pattern` (`app.example` or `*.example.com`), as [`Route::hosts`] says.
pub fn host_matches_pattern(pattern: &str, host: &str) -> bool {
    host_matches(pattern, host_without_port(host))
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    match pattern.strip_prefix("*.") {
        // `*.example.com` covers `a.example.com` and `a.b.example.com`, not `example.com` nor
        // `badexample.com`.
        Some(suffix) => {
            let (host, suffix) = (host.as_bytes(), suffix.as_bytes());
            host.len() > suffix.len() + 1
                && host[host.len() - suffix.len() - 1] == b'.'
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        }
        None => host.eq_ignore_ascii_case(pattern),
    }
}

// ---------------------------------------------------------------------------------------------
// Path patterns

/// A route's path pattern: a prefix or a segment glob.
///
/// - **Prefix** (`/api`): matches `/api` and everything below it (`/api/`, `/api/v1/x`), never
///   `/apix`. `/` matches every path.
/// - **Glob** (`/admin/**`, `/users/*/keys`): `*` stands for exactly one non-empty segment, `**`
///   for any number of segments, none included, so `/admin/**` matches `/admin` itself. A `*`
///   must be a whole segment: `/v*/x` is refused.
///
/// Both compare segments without ASCII case and ignore `;` path parameters (`/admin;x=1/users`
/// is matched as `/admin/users`), because Tomcat, Jetty and Spring strip them before routing and
/// an upstream must never see `/admin` where the gateway saw something else.
///
/// The matcher is written by hand rather than taken from a glob crate: only whole-segment `*`
/// and `**` are needed, it must work on segments of an already [normalized](normalize_path)
/// path (a character glob would let `*` span a `/` or compare encodings), and it must not
/// allocate per request.
#[derive(Clone)]
pub struct PathPattern {
    source: String,
    glob: bool,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// A literal segment, compared without ASCII case.
    Literal(String),
    /// `*`: exactly one segment.
    One,
    /// `**`: any number of segments.
    Any,
}

impl PathPattern {
    /// Parses `pattern` as a glob if it contains `*`, else as a prefix.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        if pattern.contains('*') {
            Self::glob(pattern)
        } else {
            Self::prefix(pattern)
        }
    }

    /// A prefix pattern: `prefix` and every path below it. A trailing `/` is ignored.
    pub fn prefix(prefix: &str) -> Result<Self, PatternError> {
        let mut segments = Self::literal_segments(prefix, false)?;
        segments.push(Segment::Any);
        Ok(Self {
            source: prefix.to_string(),
            glob: false,
            segments,
        })
    }

    /// A glob pattern: `*` is one segment, `**` any number of segments.
    pub fn glob(glob: &str) -> Result<Self, PatternError> {
        let segments = Self::literal_segments(glob, true)?;
        Ok(Self {
            source: glob.to_string(),
            glob: true,
            segments,
        })
    }

    fn literal_segments(pattern: &str, glob: bool) -> Result<Vec<Segment>, PatternError> {
        if !pattern.starts_with('/') {
            return Err(PatternError::NotAbsolute(pattern.to_string()));
        }
        if pattern.contains(['?', '#']) {
            return Err(PatternError::QueryOrFragment(pattern.to_string()));
        }
        let has_dot_segment = pattern
            .split('/')
            .any(|s| matches!(decode_unreserved_lossy(s).as_str(), "." | ".."));
        if has_dot_segment {
            return Err(PatternError::DotSegment(pattern.to_string()));
        }
        if pattern.contains(';') {
            return Err(PatternError::Parameter(pattern.to_string()));
        }
        let normalized = normalize_path(pattern).map_err(|error| PatternError::Path {
            pattern: pattern.to_string(),
            error,
        })?;
        normalized
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "*" if glob => Ok(Segment::One),
                "**" if glob => Ok(Segment::Any),
                s if s.contains('*') => Err(PatternError::PartialWildcard(pattern.to_string())),
                s => Ok(Segment::Literal(s.to_string())),
            })
            .collect()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether this is a glob (else a prefix).
    pub fn is_glob(&self) -> bool {
        self.glob
    }

    /// Whether `path` (from [`normalize_path`]) matches.
    ///
    /// Segment-wise wildcard matching with single backtracking to the last `**`: linear in the
    /// common case, `O(pattern × path)` segments at worst, never exponential, no allocation.
    pub fn matches(&self, path: &str) -> bool {
        let pattern = &self.segments;
        let mut p = 0;
        let mut pos = 0;
        // After a `**`: the pattern index following it and the path position it resumes at.
        let mut star: Option<(usize, usize)> = None;
        loop {
            match next_segment(path, pos) {
                Some((segment, next)) => {
                    let step = match pattern.get(p) {
                        Some(Segment::Literal(lit)) => lit.eq_ignore_ascii_case(segment),
                        Some(Segment::One) => true,
                        Some(Segment::Any) => {
                            p += 1;
                            star = Some((p, pos));
                            continue;
                        }
                        None => false,
                    };
                    if step {
                        p += 1;
                        pos = next;
                    } else if let Some((star_p, star_pos)) = star {
                        // Let the last `**` swallow one more segment and retry after it.
                        let Some((_, after)) = next_segment(path, star_pos) else {
                            return false;
                        };
                        star = Some((star_p, after));
                        p = star_p;
                        pos = after;
                    } else {
                        return false;
                    }
                }
                None => {
                    return pattern[p..].iter().all(|s| *s == Segment::Any);
                }
            }
        }
    }
}

/// The next non-empty segment of `path` at or after byte `pos`, without its `;` parameters, and
/// the position after it (the next `/`, or the end).
///
/// One pass over the bytes: segments are short, and a byte loop costs less than the two
/// substring searches it replaces (`find('/')`, `split(';')`), on every route of every request.
/// Slicing is at `/` and `;`, which are ASCII, so always on a character boundary.
fn next_segment(path: &str, mut pos: usize) -> Option<(&str, usize)> {
    let bytes = path.as_bytes();
    loop {
        while pos < bytes.len() && bytes[pos] == b'/' {
            pos += 1;
        }
        if pos >= bytes.len() {
            return None;
        }
        let start = pos;
        let mut name_end = None;
        while pos < bytes.len() && bytes[pos] != b'/' {
            if bytes[pos] == b';' && name_end.is_none() {
                name_end = Some(pos);
            }
            pos += 1;
        }
        let segment = &path[start..name_end.unwrap_or(pos)];
        if !segment.is_empty() {
            return Some((segment, pos));
        }
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple(if self.glob { "Glob" } else { "Prefix" })
            .field(&self.source)
            .finish()
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for PathPattern {
    fn eq(&self, other: &Self) -> bool {
        self.glob == other.glob && self.segments == other.segments
    }
}

impl Eq for PathPattern {}

impl FromStr for PathPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Why a route pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The path pattern does not start with `/`.
    #[error("path pattern {0:?} must start with '/'")]
    NotAbsolute(String),
    /// The path pattern has a `?` or `#`.
    #[error("path pattern {0:?} must not contain a query or fragment")]
    QueryOrFragment(String),
    /// The path pattern has a `.` or `..` segment.
    #[error("path pattern {0:?} must not contain '.' or '..' segments")]
    DotSegment(String),
    /// The path pattern has a `;` parameter, which matching ignores.
    #[error("path pattern {0:?} must not contain ';' (path parameters are ignored when matching)")]
    Parameter(String),
    /// A `*` is part of a segment instead of the whole of it.
    #[error("path pattern {0:?}: '*' and '**' must be whole segments, as in /a/*/b or /a/**")]
    PartialWildcard(String),
    /// The path pattern does not normalize.
    #[error("path pattern {pattern:?}: {error}")]
    Path {
        /// The pattern.
        pattern: String,
        /// Why it does not normalize.
        error: PathError,
    },
    /// A host pattern is empty.
    #[error("host pattern is empty")]
    EmptyHost,
    /// A host pattern is not a host name, `*.` and a host name, or a bracketed IPv6 address.
    #[error("host pattern {0:?} must be a host name (letters, digits, '-', '.') or '*.' and one, without port")]
    InvalidHost(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> String {
        normalize_path(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
    }

    fn route(name: &str, path: &str) -> Route {
        Route {
            name: name.into(),
            hosts: vec![],
            path: PathPattern::parse(path).unwrap(),
            methods: vec![],
            policy: Arc::new(Policy::public(name)),
            upstream: None,
            preflight: Preflight::Deny,
        }
    }

    fn table(routes: Vec<Route>) -> RouteTable {
        RouteTable::new(routes, Arc::new(Policy::deny("zero-trust")))
    }

    /// The route name for a raw path, as an adapter would compute it; `None` if refused.
    fn route_of(t: &RouteTable, raw: &str) -> Option<String> {
        let path = normalize_path(raw).ok()?;
        Some(t.route(&Method::GET, None, &path).name.to_string())
    }

    #[test]
    fn normalizes_plain_paths() {
        assert_eq!(norm(""), "/");
        assert_eq!(norm("/"), "/");
        assert_eq!(norm("/a/b"), "/a/b");
        assert_eq!(norm("/a/b/"), "/a/b/");
        assert_eq!(norm("/A/B"), "/A/B", "case is kept");
    }

    #[test]
    fn strips_query_and_fragment() {
        assert_eq!(norm("/a?b=/../admin"), "/a");
        assert_eq!(norm("/a#frag"), "/a");
        assert_eq!(norm("?x"), "/");
    }

    #[test]
    fn collapses_empty_segments() {
        assert_eq!(norm("//admin"), "/admin");
        assert_eq!(norm("///admin///x//"), "/admin/x/");
    }

    #[test]
    fn resolves_dot_segments_never_above_root() {
        assert_eq!(norm("/admin/../x"), "/x");
        assert_eq!(norm("/a/./b"), "/a/b");
        assert_eq!(norm("/a/b/.."), "/a/");
        assert_eq!(norm("/a/b/."), "/a/b/");
        assert_eq!(norm("/.."), "/");
        assert_eq!(norm("/../../../etc/passwd"), "/etc/passwd");
        assert_eq!(norm("/a/../../b"), "/b");
        assert_eq!(norm("/..."), "/...", "three dots is a name");
        assert_eq!(norm("/.a/..b"), "/.a/..b");
    }

    #[test]
    fn decodes_unreserved_escapes_only() {
        assert_eq!(norm("/%2e%2e/admin"), "/admin");
        assert_eq!(norm("/%2E%2E/admin"), "/admin");
        assert_eq!(norm("/x/%2e%2e/admin"), "/admin");
        assert_eq!(norm("/%2e/admin"), "/admin");
        assert_eq!(norm("/.%2e/admin"), "/admin");
        assert_eq!(norm("/%61dmin"), "/admin");
        assert_eq!(norm("/%7euser"), "/~user");
        assert_eq!(
            norm("/a%3fb"),
            "/a%3Fb",
            "an encoded '?' stays encoded, hex uppercased"
        );
        assert_eq!(norm("/a%20b"), "/a%20b");
        assert_eq!(norm("/caf%C3%A9"), "/caf%C3%A9");
    }

    #[test]
    fn encodes_characters_not_allowed_raw() {
        assert_eq!(norm("/a b"), "/a%20b");
        assert_eq!(norm("/café"), "/caf%C3%A9");
        assert_eq!(norm("/a\"<>`{}|^"), "/a%22%3C%3E%60%7B%7D%7C%5E");
        assert_eq!(norm("/a:b@c!$&'()*+,;="), "/a:b@c!$&'()*+,;=");
    }

    #[test]
    fn refuses_hostile_paths() {
        for (raw, error) in [
            ("/admin%2fusers", PathError::EncodedSlash),
            ("/admin%2Fusers", PathError::EncodedSlash),
            ("/public/..%2fadmin", PathError::EncodedSlash),
            ("/admin\\users", PathError::Backslash),
            ("/public/..\\admin", PathError::Backslash),
            ("/admin%5cusers", PathError::Backslash),
            ("/admin%00", PathError::Nul),
            ("/admin\0", PathError::Nul),
            ("/a%0d%0aSet-Cookie:x", PathError::ControlCharacter),
            ("/a\r\nb", PathError::ControlCharacter),
            ("/a%7f", PathError::ControlCharacter),
            ("/a%", PathError::InvalidEscape),
            ("/a%2", PathError::InvalidEscape),
            ("/a%zz", PathError::InvalidEscape),
            ("/a%%32e", PathError::InvalidEscape),
            ("/%252e%252e/admin", PathError::DoubleEncoding),
            ("/%25%32e", PathError::DoubleEncoding),
            ("/%25%41F", PathError::DoubleEncoding),
            ("/public/..;/admin", PathError::DotSegmentParameters),
            ("/public/.;x/admin", PathError::DotSegmentParameters),
            ("/public/%2e%2e;/admin", PathError::DotSegmentParameters),
            ("admin", PathError::NotAbsolute),
            ("http://evil/admin", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
        ] {
            assert_eq!(normalize_path(raw), Err(error), "{raw:?}");
        }
        // A lone "%25" not followed by hex is a literal percent sign, kept encoded.
        assert_eq!(norm("/100%25"), "/100%25");
        assert_eq!(norm("/100%25off"), "/100%25off");
    }

    #[test]
    fn normalization_is_idempotent_and_clean() {
        for raw in [
            "",
            "/",
            "//a//b//",
            "/a/./b/../c",
            "/%2e%2e/%41dmin/",
            "/a%3fb%3F",
            "/café/x y",
            "/a;b=c/d",
            "/../..",
            "/.../x",
            "/%7E",
        ] {
            let once = norm(raw);
            assert_eq!(norm(&once), once, "{raw:?}");
            assert!(once.starts_with('/') && once.is_ascii(), "{raw:?}");
            assert!(!once.contains("//") && !once.contains('\\'), "{raw:?}");
            assert!(!once.split('/').any(|s| s == "." || s == ".."), "{raw:?}");
        }
    }

    #[test]
    fn every_path_trick_falls_under_the_admin_route() {
        let t = table(vec![
            route("admin", "/admin/**"),
            route("public", "/public/**"),
        ]);
        for raw in [
            "/admin",
            "/admin/",
            "/admin/users",
            "/ADMIN",
            "/Admin/",
            "/aDmIn/Users/1",
            "//admin",
            "///admin//users",
            "/%2e%2e/admin",
            "/%2E%2E/%2e%2e/admin/x",
            "/./admin",
            "/public/../admin",
            "/public/%2e%2e/admin",
            "/x/y/../../admin",
            "/%61dmin",
            "/%41DMIN/x",
            "/admin;jsessionid=1/users",
            "/admin/users?next=/public",
            "/admin#/public",
        ] {
            assert_eq!(route_of(&t, raw).as_deref(), Some("admin"), "{raw:?}");
        }
        assert_eq!(route_of(&t, "/admin/../x").as_deref(), Some("default"));
        assert_eq!(route_of(&t, "/adminx").as_deref(), Some("default"));
        assert_eq!(route_of(&t, "/public/x").as_deref(), Some("public"));
        // Refused outright rather than routed anywhere.
        for raw in [
            "/public/..;/admin",
            "/public/..%2fadmin",
            "/public\\..\\admin",
        ] {
            assert_eq!(route_of(&t, raw), None, "{raw:?}");
        }
    }

    #[test]
    fn prefix_matches_whole_segments() {
        let p = PathPattern::parse("/api").unwrap();
        assert!(!p.is_glob());
        for path in ["/api", "/api/", "/api/v1/x", "/API/x", "/api;v=1/x"] {
            assert!(p.matches(path), "{path}");
        }
        for path in ["/apix", "/ap", "/", "/x/api"] {
            assert!(!p.matches(path), "{path}");
        }
        let trailing = PathPattern::parse("/api/").unwrap();
        assert_eq!(trailing, p);
        let root = PathPattern::parse("/").unwrap();
        for path in ["/", "/a", "/a/b/c"] {
            assert!(root.matches(path), "{path}");
        }
    }

    #[test]
    fn glob_star_is_one_segment() {
        let p = PathPattern::parse("/users/*/keys").unwrap();
        assert!(p.is_glob());
        assert!(p.matches("/users/42/keys"));
        assert!(p.matches("/Users/42/KEYS"));
        assert!(!p.matches("/users/keys"));
        assert!(!p.matches("/users/1/2/keys"));
        assert!(!p.matches("/users/42/keys/x"));
        let any = PathPattern::parse("/*").unwrap();
        assert!(any.matches("/x"));
        assert!(!any.matches("/"));
        assert!(!any.matches("/x/y"));
    }

    #[test]
    fn glob_double_star_is_any_number_of_segments() {
        let p = PathPattern::parse("/admin/**").unwrap();
        for path in ["/admin", "/admin/", "/admin/a", "/admin/a/b/c"] {
            assert!(p.matches(path), "{path}");
        }
        assert!(!p.matches("/adminx"));
        assert!(!p.matches("/"));

        let mid = PathPattern::parse("/a/**/z").unwrap();
        for path in ["/a/z", "/a/b/z", "/a/b/c/z", "/a/z/z", "/a/z/b/z"] {
            assert!(mid.matches(path), "{path}");
        }
        for path in ["/a", "/a/b", "/a/z/b", "/z"] {
            assert!(!mid.matches(path), "{path}");
        }

        let many = PathPattern::parse("/**/x/**/y/*").unwrap();
        assert!(many.matches("/x/y/1"));
        assert!(many.matches("/a/b/x/c/y/1"));
        assert!(many.matches("/x/x/y/y/1"));
        assert!(!many.matches("/x/y"));
        assert!(!many.matches("/y/x/1"));

        let all = PathPattern::parse("/**").unwrap();
        assert!(all.matches("/") && all.matches("/a/b"));
    }

    /// The byte loop of `next_segment` against the substring searches it replaced, on every
    /// string of up to six characters over `/`, `;`, `a` and `é` (a multi-byte character next to
    /// the separators), from every start position.
    #[test]
    fn next_segment_agrees_with_the_substring_searches() {
        fn reference(path: &str, mut pos: usize) -> Option<(&str, usize)> {
            let bytes = path.as_bytes();
            loop {
                while pos < bytes.len() && bytes[pos] == b'/' {
                    pos += 1;
                }
                if pos >= bytes.len() {
                    return None;
                }
                let end = path[pos..].find('/').map_or(bytes.len(), |i| pos + i);
                let segment = &path[pos..end];
                let segment = segment.split(';').next().unwrap_or(segment);
                if !segment.is_empty() {
                    return Some((segment, end));
                }
                pos = end;
            }
        }
        let alphabet = ['/', ';', 'a', 'é'];
        let mut strings = vec![String::new()];
        let mut checked = 0;
        for _ in 0..6 {
            strings = strings
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            for s in &strings {
                for pos in (0..=s.len()).filter(|&p| s.is_char_boundary(p)) {
                    assert_eq!(next_segment(s, pos), reference(s, pos), "{s:?} at {pos}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 20_000, "{checked}");
    }

    #[test]
    fn glob_matching_is_not_exponential() {
        let p = PathPattern::parse("/**/a/**/a/**/a/**/a/**/b").unwrap();
        let path = "/a".repeat(2_000);
        assert!(!p.matches(&path));
    }

    #[test]
    fn refuses_bad_patterns() {
        for bad in [
            "admin",
            "",
            "/v*/x",
            "/a/***",
            "/a**",
            "/a/../b",
            "/a/./b",
            "/%2e%2e/a",
            "/a?x",
            "/a#x",
            "/a;b",
            "/a\\b",
            "/a%2fb",
            "/a%zz",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            PathPattern::parse("/v*/x"),
            Err(PatternError::PartialWildcard("/v*/x".into()))
        );
    }

    #[test]
    fn patterns_are_normalized_like_paths() {
        let a = PathPattern::parse("//Admin//**").unwrap();
        assert!(a.matches("/admin/x"));
        let encoded = PathPattern::parse("/%61dmin").unwrap();
        assert!(encoded.matches("/admin"));
        assert_eq!(encoded.as_str(), "/%61dmin");
        assert_eq!(encoded.to_string(), "/%61dmin");
    }

    #[test]
    fn hosts_exact_and_wildcard() {
        let mut r = route("r", "/");
        r.hosts = vec!["api.example.com".into(), "*.corp.example".into()];
        let get = Method::GET;
        for host in [
            "api.example.com",
            "API.Example.COM",
            "api.example.com:8443",
            "api.example.com.",
            "a.corp.example",
            "a.b.corp.example:80",
        ] {
            assert!(r.matches(&get, Some(host), "/"), "{host}");
        }
        for host in [
            "example.com",
            "corp.example",
            "xcorp.example",
            "api.example.com.evil",
            "",
        ] {
            assert!(!r.matches(&get, Some(host), "/"), "{host}");
        }
        assert!(!r.matches(&get, None, "/"));

        r.hosts = vec!["[::1]".into()];
        assert!(r.matches(&get, Some("[::1]:8080"), "/"));
        assert!(!r.matches(&get, Some("[::2]"), "/"));

        r.hosts = vec![];
        assert!(r.matches(&get, None, "/"));
    }

    #[test]
    fn host_patterns_are_checked() {
        for ok in [
            "example.com",
            "*.example.com",
            "localhost",
            "[::1]",
            "a-b_c.example",
        ] {
            assert_eq!(check_host_pattern(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "*.",
            "*",
            "a.*.com",
            "example.com:80",
            "exa mple.com",
            ".example.com",
            "a..b",
            "http://x",
            "[zz]",
        ] {
            assert!(check_host_pattern(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn methods_and_head_follows_get() {
        let mut r = route("r", "/");
        assert!(r.matches(&Method::DELETE, None, "/"));
        r.methods = vec![Method::GET, Method::POST];
        assert!(r.matches(&Method::GET, None, "/"));
        assert!(r.matches(&Method::HEAD, None, "/"));
        assert!(r.matches(&Method::POST, None, "/"));
        assert!(!r.matches(&Method::DELETE, None, "/"));
        r.methods = vec![Method::POST];
        assert!(!r.matches(&Method::HEAD, None, "/"));
    }

    #[test]
    fn first_match_wins_else_default() {
        let mut narrow = route("narrow", "/api/admin");
        narrow.methods = vec![Method::DELETE];
        narrow.upstream = Some("special".into());
        let t = table(vec![
            narrow,
            route("api", "/api"),
            route("api-again", "/api"),
        ])
        .with_default_upstream(Some("app".into()));

        let m = t.route(&Method::DELETE, None, "/api/admin/1");
        assert_eq!((m.name, m.upstream), ("narrow", Some("special")));
        assert!(!m.is_default());

        let m = t.route(&Method::GET, None, "/api/admin/1");
        assert_eq!((m.name, m.upstream), ("api", Some("app")));
        assert_eq!(m.policy.name, "api");

        let m = t.route(&Method::GET, None, "/other");
        assert!(m.is_default());
        assert_eq!(m.name, DEFAULT_ROUTE_NAME);
        assert_eq!(m.policy.name, "zero-trust");
        assert_eq!(m.upstream, Some("app"));
        assert_eq!(t.default_upstream(), Some("app"));
        assert_eq!(t.routes().len(), 3);
        assert_eq!(t.default_policy().name, "zero-trust");
    }

    #[test]
    fn empty_table_routes_everything_to_the_default() {
        let t = table(vec![]);
        let m = t.route(&Method::GET, Some("x"), "/");
        assert!(m.is_default());
        assert_eq!(m.upstream, None);
    }
}

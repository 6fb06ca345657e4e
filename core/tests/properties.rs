//! Property tests: path normalization and route matching, token extraction from headers and
//! cookies, and token parsing and verification.
//!
//! Each property runs 256 cases (proptest's default); set `PROPTEST_CASES` for a longer run.

use std::sync::{Arc, LazyLock};

use http::{HeaderMap, HeaderValue, Method};
use proofgate_core::decision::{Enforcer, RequestView, Routed};
use proofgate_core::keys::{KeySet, KeyStore, KeysConfig};
use proofgate_core::path::normalize_path;
use proofgate_core::policy::Policy;
use proofgate_core::revocation::{RevocationConfig, RevocationStore};
use proofgate_core::routes::{PathPattern, Route, RouteTable};
use proofgate_core::stepup::{cookie, query_param, safe_return_to};
use proofgate_core::testing::{self, b64, SigningKey};
use proofgate_core::tokens::{extract_tokens, TokenSource};
use proofgate_core::{ProofClaims, Reason, Verifier, VerifierConfig};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Paths

/// Bytes that make paths interesting: separators, dots, escapes, case, reserved and hostile
/// characters.
fn path_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec!['/', '.', '%', 'a', 'A', 'd', 'm', 'i', 'n']),
        2 => prop::sample::select(vec!['2', 'e', 'E', 'f', 'F', '5', 'c', 'C', '0', '1']),
        1 => prop::sample::select(vec![
            ';', '?', '#', '\\', ' ', '~', '-', '_', '@', ':', '+', '&', '=', '"', '<', '\0',
            '\t', '\u{7f}', 'é', '/'
        ]),
    ]
}

fn raw_path() -> impl Strategy<Value = String> {
    prop::collection::vec(path_char(), 0..40).prop_map(|cs| {
        let mut s: String = cs.into_iter().collect();
        if !s.starts_with('/') {
            s.insert(0, '/');
        }
        s
    })
}

/// A plain segment of unreserved characters (never `.` or `..`).
fn segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_~-][a-zA-Z0-9._~-]{0,7}"
}

/// The same segment spelled another way: some unreserved characters percent-encoded (either hex
/// case), and ASCII case flipped.
fn disguise_segment(seg: &str, mask: u64, flip_case: bool) -> String {
    let mut out = String::new();
    for (i, c) in seg.chars().enumerate() {
        let c = if flip_case && c.is_ascii_alphabetic() {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        } else {
            c
        };
        if mask >> (i % 64) & 1 == 1 {
            if i % 2 == 0 {
                out.push_str(&format!("%{:02X}", c as u32));
            } else {
                out.push_str(&format!("%{:02x}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn assert_canonical(p: &str) {
    assert!(p.starts_with('/'), "{p:?}");
    assert!(p.is_ascii(), "{p:?}");
    assert!(!p.contains(['?', '#', '\\']), "{p:?}");
    assert!(!p.contains("//"), "{p:?}");
    for seg in p.split('/').skip(1) {
        assert!(seg != "." && seg != "..", "{p:?}");
    }
    let bytes = p.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            let v = u8::from_str_radix(hex, 16).unwrap();
            assert!(
                !(v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~')),
                "{p:?} keeps an escape of an unreserved character"
            );
            assert_eq!(hex, hex.to_ascii_uppercase(), "{p:?}");
        }
    }
}

fn table(patterns: &[&str]) -> RouteTable {
    let routes = patterns
        .iter()
        .map(|p| Route {
            name: (*p).to_string(),
            hosts: vec![],
            path: PathPattern::parse(p).unwrap(),
            methods: vec![],
            policy: Arc::new(Policy::public(*p)),
            upstream: None,
            preflight: Default::default(),
        })
        .collect();
    RouteTable::new(routes, Arc::new(Policy::deny("default")))
}

static TABLE: LazyLock<RouteTable> = LazyLock::new(|| {
    table(&[
        "/admin/**",
        "/api/*/keys",
        "/public",
        "/a/**/z",
        "/m/*/*/**",
    ])
});

proptest! {
    #[test]
    fn normalization_is_canonical_and_idempotent(raw in raw_path()) {
        if let Ok(p) = normalize_path(&raw) {
            assert_canonical(&p);
            prop_assert_eq!(normalize_path(&p), Ok(p.clone()), "from {:?}", raw);
        }
    }

    #[test]
    fn normalization_never_panics_on_any_string(raw in ".{0,64}") {
        let _ = normalize_path(&raw);
        let _ = safe_return_to(&raw);
        let _ = query_param(&raw, "policy");
    }

    #[test]
    fn matching_is_blind_to_ascii_case(raw in raw_path(), method in prop::sample::select(vec![Method::GET, Method::POST, Method::HEAD])) {
        if let Ok(p) = normalize_path(&raw) {
            let a = TABLE.route(&method, None, &p).name;
            let b = TABLE.route(&method, None, &p.to_ascii_uppercase()).name;
            let c = TABLE.route(&method, None, &p.to_ascii_lowercase()).name;
            prop_assert_eq!(a, b);
            prop_assert_eq!(a, c);
        }
    }

    /// Every spelling of a path — `//`, `./`, `x/../`, percent-encoded unreserved characters,
    /// other case, a query — normalizes to a path that gets the same route as the plain one.
    #[test]
    fn disguised_spellings_get_the_route_of_the_plain_path(
        segs in prop::collection::vec(segment(), 0..6),
        tricks in prop::collection::vec((0u8..5, any::<u64>(), any::<bool>()), 6),
        root in prop::sample::select(vec!["admin", "api", "public", "a", "m", "other"]),
        trailing_slash in any::<bool>(),
        query in prop::option::of("[a-z=&/.]{0,10}"),
    ) {
        let mut plain = format!("/{root}");
        let mut disguised = match tricks[0].0 {
            0 => format!("//{}", disguise_segment(root, tricks[0].1, tricks[0].2)),
            1 => format!("/./{}", disguise_segment(root, tricks[0].1, tricks[0].2)),
            2 => format!("/zz/../{}", disguise_segment(root, tricks[0].1, tricks[0].2)),
            3 => format!("/../{}", disguise_segment(root, tricks[0].1, tricks[0].2)),
            _ => format!("/{}", disguise_segment(root, tricks[0].1, tricks[0].2)),
        };
        for (i, s) in segs.iter().enumerate() {
            plain.push('/');
            plain.push_str(s);
            let (trick, mask, flip) = tricks[(i + 1) % tricks.len()];
            let d = disguise_segment(s, mask, flip);
            match trick {
                0 => disguised.push_str(&format!("//{d}")),
                1 => disguised.push_str(&format!("/./{d}")),
                2 => disguised.push_str(&format!("/x%2E%2e/../{d}")),
                3 => disguised.push_str(&format!("/{d}/.")),
                _ => disguised.push_str(&format!("/{d}")),
            }
        }
        if trailing_slash {
            plain.push('/');
            disguised.push('/');
        }
        if let Some(q) = &query {
            disguised.push('?');
            disguised.push_str(q);
        }
        let p = normalize_path(&plain).unwrap();
        let d = normalize_path(&disguised).unwrap_or_else(|e| panic!("{disguised:?}: {e}"));
        prop_assert!(p.eq_ignore_ascii_case(&d) || d.trim_end_matches('/').eq_ignore_ascii_case(p.trim_end_matches('/')),
            "{:?} → {:?}, plain {:?} → {:?}", disguised, d, plain, p);
        for m in [Method::GET, Method::POST] {
            prop_assert_eq!(TABLE.route(&m, None, &p).name, TABLE.route(&m, None, &d).name,
                "{:?} vs {:?}", plain, disguised);
        }
    }

    /// Prefix and glob semantics on normalized paths: `/admin/**` covers `/admin` and everything
    /// below, never a sibling like `/administrator`; `*` is exactly one segment.
    #[test]
    fn glob_and_prefix_semantics(segs in prop::collection::vec(segment(), 0..5), sibling in "[a-z]{1,6}") {
        let below = format!("/admin/{}", segs.join("/"));
        let below = normalize_path(&below).unwrap();
        prop_assert_eq!(TABLE.route(&Method::GET, None, &below).name, "/admin/**");
        let sib = normalize_path(&format!("/admin{sibling}/{}", segs.join("/"))).unwrap();
        prop_assert_ne!(TABLE.route(&Method::GET, None, &sib).name, "/admin/**");
        let api = normalize_path(&format!("/api/{}/keys", segs.join("/"))).unwrap();
        let want = if segs.len() == 1 { "/api/*/keys" } else { "default" };
        prop_assert_eq!(TABLE.route(&Method::GET, None, &api).name, want, "{}", api);
        let public = normalize_path(&format!("/public/{}", segs.join("/"))).unwrap();
        prop_assert_eq!(TABLE.route(&Method::GET, None, &public).name, "/public");
        let publicx = normalize_path(&format!("/public{sibling}")).unwrap();
        prop_assert_eq!(TABLE.route(&Method::GET, None, &publicx).name, "default");
        let az = normalize_path(&format!("/a/{}/z", segs.join("/"))).unwrap();
        prop_assert_eq!(TABLE.route(&Method::GET, None, &az).name, "/a/**/z");
    }

    /// No encoded `/`, `\` or NUL ever survives normalization, whatever surrounds it.
    #[test]
    fn hostile_escapes_are_refused(
        before in "[a-z/.]{0,8}",
        after in "[a-z/.]{0,8}",
        esc in prop::sample::select(vec!["%2f", "%2F", "%5c", "%5C", "%00", "\\", "%0a", "%252e", "%25%32%65"]),
    ) {
        let raw = format!("/{before}{esc}{after}");
        prop_assert!(normalize_path(&raw).is_err(), "{:?} → {:?}", raw, normalize_path(&raw));
    }
}

// ---------------------------------------------------------------------------------------------
// Token extraction

// ---------------------------------------------------------------------------------------------
// Request-targets: what the upstream receives

/// An enforcer for public and deny routes: it never reads a token, so nothing is fetched.
static ENFORCER: LazyLock<Enforcer> = LazyLock::new(|| {
    let keys = KeyStore::new(KeysConfig::new("http://127.0.0.1:9/jwks"));
    let revocation =
        RevocationStore::new(RevocationConfig::new("http://127.0.0.1:9"), keys.clone());
    let verifier = Arc::new(Verifier::new(keys, VerifierConfig::default()));
    Enforcer::new(verifier, revocation, TokenSource::defaults())
});

/// Request-targets of every form: origin-form paths, absolute-form with `http`/`https` or
/// another scheme, scheme-only (`foo:/admin`), `*`, and anything at all.
fn request_target() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec![
        "http://a.example",
        "HTTPS://a.example",
        "http://a.example:8080",
        "foo:",
        "x-y:",
        "urn:",
        "ftp://a.example",
        "http:",
        "",
        "*",
        "//",
    ]);
    prop_oneof![
        3 => raw_path(),
        3 => (scheme, raw_path()).prop_map(|(s, p)| format!("{s}{p}")),
        1 => ".{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the target, the request is refused, or the upstream receives an origin-form
    /// target whose path — as an HTTP parser reads it — is exactly the normalized path the
    /// route was chosen for.
    #[test]
    fn the_upstream_gets_the_path_the_route_was_chosen_for(
        target in request_target(),
        method in prop::sample::select(vec![Method::GET, Method::POST, Method::OPTIONS]),
    ) {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, HeaderValue::from_static("a.example"));
        let view = RequestView { method: &method, host: Some("a.example"), target: target.as_bytes(), headers: &headers, client_delegates: &[] };
        match ENFORCER.decide_request(&TABLE, &view) {
            Routed::InvalidPath(_) | Routed::InvalidHost => {}
            Routed::Decided { route, normalized, rewrite, .. } => {
                let forwarded = rewrite.unwrap_or_else(|| target.clone());
                if normalized == "*" {
                    prop_assert_eq!(&forwarded, "*");
                    prop_assert_eq!(&method, &Method::OPTIONS);
                    prop_assert!(route.is_default());
                    return Ok(());
                }
                prop_assert!(forwarded.starts_with('/'), "{:?} forwarded as {:?}", target, forwarded);
                // A target `http::Uri` cannot parse is refused by the adapter (fail closed).
                if let Ok(uri) = forwarded.parse::<http::Uri>() {
                    prop_assert_eq!(uri.path(), normalized.as_str(), "{:?}", target);
                    prop_assert_eq!(TABLE.route(&method, Some("a.example"), uri.path()).name, route.name);
                }
                prop_assert_eq!(normalize_path(&normalized), Ok(normalized.clone()));
            }
        }
    }
}

fn token_like() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,12}\\.[A-Za-z0-9_-]{1,12}\\.[A-Za-z0-9_-]{0,12}"
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(b"abc.=;, \t\"~Bearer".to_vec()),
            1 => any::<u8>(),
        ],
        0..48,
    )
}

proptest! {
    #[test]
    fn bearer_token_is_extracted_exactly(t in token_like(), scheme in prop::sample::select(vec!["Bearer", "bearer", "BEARER"]), pad in " {0,3}") {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, format!("{scheme} {pad}{t}{pad}").parse().unwrap());
        let got = extract_tokens(&h, &TokenSource::defaults()).unwrap();
        prop_assert_eq!(got, vec![t.as_str()]);
        // A second Authorization header makes the request malformed, whatever it holds.
        h.append(http::header::AUTHORIZATION, format!("Bearer {t}").parse().unwrap());
        prop_assert_eq!(extract_tokens(&h, &TokenSource::defaults()), Err(Reason::Malformed));
    }

    #[test]
    fn header_tokens_are_split_on_commas_in_order(ts in prop::collection::vec(token_like(), 1..=4), spaces in " {0,2}") {
        let mut h = HeaderMap::new();
        h.insert("x-proof-token", ts.join(&format!(",{spaces}")).parse().unwrap());
        let got = extract_tokens(&h, &TokenSource::defaults()).unwrap();
        let want: Vec<&str> = ts.iter().map(String::as_str).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn more_than_four_tokens_are_malformed(ts in prop::collection::vec(token_like(), 5..10)) {
        let mut h = HeaderMap::new();
        h.insert("x-proof-token", ts.join(",").parse().unwrap());
        prop_assert_eq!(extract_tokens(&h, &TokenSource::defaults()), Err(Reason::Malformed));
    }

    #[test]
    fn cookie_tokens_are_found_among_other_cookies(
        ts in prop::collection::vec(token_like(), 1..=3),
        before in prop::collection::vec(("[a-z]{1,6}", "[a-zA-Z0-9]{0,8}"), 0..3),
        after in prop::collection::vec(("[a-z]{1,6}", "[a-zA-Z0-9]{0,8}"), 0..3),
        quoted in any::<bool>(),
    ) {
        let mut parts: Vec<String> = before
            .iter()
            .filter(|(k, _)| k != "proof_token")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let value = ts.join("~");
        parts.push(if quoted { format!("proof_token=\"{value}\"") } else { format!("proof_token={value}") });
        parts.extend(after.iter().filter(|(k, _)| k != "proof_token").map(|(k, v)| format!("{k}={v}")));
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, parts.join("; ").parse().unwrap());
        let got = extract_tokens(&h, &TokenSource::defaults()).unwrap();
        let want: Vec<&str> = ts.iter().map(String::as_str).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(cookie(&h, "proof_token").map(|v| v.trim_matches('"')), Some(value.as_str()));
    }

    /// The first configured source that has a token wins; the others are not looked at.
    #[test]
    fn sources_are_tried_in_order(a in token_like(), b in token_like(), c in token_like()) {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, format!("proof_token={c}").parse().unwrap());
        prop_assert_eq!(extract_tokens(&h, &TokenSource::defaults()).unwrap(), vec![c.as_str()]);
        h.insert("x-proof-token", b.parse().unwrap());
        prop_assert_eq!(extract_tokens(&h, &TokenSource::defaults()).unwrap(), vec![b.as_str()]);
        h.insert(http::header::AUTHORIZATION, format!("Bearer {a}").parse().unwrap());
        prop_assert_eq!(extract_tokens(&h, &TokenSource::defaults()).unwrap(), vec![a.as_str()]);
        let reversed: Vec<TokenSource> = TokenSource::defaults().into_iter().rev().collect();
        prop_assert_eq!(extract_tokens(&h, &reversed).unwrap(), vec![c.as_str()]);
    }

    /// Arbitrary header bytes never panic the extractors; what comes out is at most four
    /// non-empty tokens.
    #[test]
    fn extraction_never_panics(auth in header_bytes(), hdr in header_bytes(), ck in header_bytes()) {
        let mut h = HeaderMap::new();
        for (name, v) in [(http::header::AUTHORIZATION.as_str(), &auth), ("x-proof-token", &hdr), ("cookie", &ck)] {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                h.insert(http::HeaderName::from_static(name), v);
            }
        }
        if let Ok(tokens) = extract_tokens(&h, &TokenSource::defaults()) {
            prop_assert!(tokens.len() <= 4);
            for t in tokens {
                prop_assert!(!t.is_empty());
            }
        }
        let _ = cookie(&h, "proof_token");
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

struct Keys {
    rsa: SigningKey,
    ec: SigningKey,
    verifier: Verifier,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let rsa = SigningKey::rsa("prop-rsa");
    let ec = SigningKey::es256("prop-ec");
    let store = KeyStore::new(KeysConfig::new("http://127.0.0.1:9/unused"));
    let jwks = testing::jwks(&[&rsa, &ec]).to_string();
    store.install(KeySet::from_jwks(jwks.as_bytes()).unwrap(), vec![1]);
    let verifier = Verifier::new(store, VerifierConfig::default());
    Keys { rsa, ec, verifier }
});

fn claims_strategy() -> impl Strategy<Value = ProofClaims> {
    (
        "[a-zA-Z0-9_-]{1,24}",
        prop::sample::select(vec!["phone", "email", "domain", "wallet", "social"]),
        prop::sample::select(vec!["sms", "email", "dns", "whatsapp", "github"]),
        ".{0,20}",
        60i64..400 * 86400,
        0i64..86400,
        prop::option::of("[ -~]{0,16}"),
    )
        .prop_map(|(sub, kind, channel, ident, lifetime, age, user)| {
            let mut c = testing::claims(&sub, kind, channel, &ident);
            let now = testing::now();
            c.iat = Some(now - age);
            c.exp = Some(now + lifetime);
            c.user_id = user.map(String::into_boxed_str);
            c
        })
}

proptest! {
    /// Arbitrary strings, and three base64url segments over arbitrary bytes, are refused with a
    /// reason and never panic.
    #[test]
    fn token_parsing_never_panics(raw in ".{0,300}") {
        prop_assert!(KEYS.verifier.verify(&raw).is_err());
    }

    #[test]
    fn three_segments_of_anything_never_verify(
        h in prop::collection::vec(any::<u8>(), 0..64),
        p in prop::collection::vec(any::<u8>(), 0..64),
        s in prop::collection::vec(any::<u8>(), 0..300),
        json_header in any::<bool>(),
    ) {
        let header = if json_header {
            b64(format!("{{\"alg\":\"RS256\",\"kid\":\"prop-rsa\",\"x\":{:?}}}", String::from_utf8_lossy(&h)))
        } else {
            b64(&h)
        };
        let token = format!("{header}.{}.{}", b64(&p), b64(&s));
        prop_assert!(KEYS.verifier.verify_uncached(&token, testing::now()).is_err());
    }

    /// A token the issuer signs verifies, gives back exactly its claims, and verifies again (from
    /// the cache and without it) after a round trip through a `String`.
    #[test]
    fn signed_tokens_verify_and_round_trip(claims in claims_strategy(), ec in any::<bool>()) {
        let key = if ec { &KEYS.ec } else { &KEYS.rsa };
        let token = key.sign(&claims);
        let now = testing::now();
        let proof = KEYS.verifier.verify_at(&token, now).unwrap();
        prop_assert_eq!(&proof.claims, &claims);
        prop_assert_eq!(proof.kid.as_deref(), Some(key.kid()));
        let again: String = token.chars().collect();
        prop_assert_eq!(&KEYS.verifier.verify_at(&again, now).unwrap().claims, &claims);
        prop_assert_eq!(&KEYS.verifier.verify_uncached(&again, now).unwrap().claims, &claims);
        // The same claims re-serialized and re-signed verify to the same claims.
        let reparsed: ProofClaims = serde_json::from_value(serde_json::to_value(&proof.claims).unwrap()).unwrap();
        prop_assert_eq!(&KEYS.verifier.verify_uncached(&key.sign(&reparsed), now).unwrap().claims, &claims);
    }

    /// Any single byte of a signed token changed to any other printable ASCII byte makes it fail.
    #[test]
    fn any_single_byte_change_fails(
        claims in claims_strategy(),
        ec in any::<bool>(),
        at in any::<prop::sample::Index>(),
        to in 0x21u8..0x7f,
    ) {
        let key = if ec { &KEYS.ec } else { &KEYS.rsa };
        let token = key.sign(&claims);
        let mut bytes = token.clone().into_bytes();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != to);
        bytes[i] = to;
        let tampered = String::from_utf8(bytes).unwrap();
        let now = testing::now();
        prop_assert!(KEYS.verifier.verify_at(&tampered, now).is_err(), "byte {} → {:?} still verifies", i, to as char);
        prop_assert!(KEYS.verifier.verify_uncached(&tampered, now).is_err());
    }

    /// Truncating a signed token anywhere makes it fail.
    #[test]
    fn any_truncation_fails(claims in claims_strategy(), at in any::<prop::sample::Index>()) {
        let token = KEYS.rsa.sign(&claims);
        let cut = at.index(token.len());
        prop_assert!(KEYS.verifier.verify_uncached(&token[..cut], testing::now()).is_err());
    }
}

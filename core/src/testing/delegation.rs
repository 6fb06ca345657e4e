//! Delegation tokens for tests: an issuer's key family ([`DelegationIssuer`]: keys of each
//! purpose, a tombstoned key, keys outside or without a window, a legacy key), its JWKS and
//! delegation status list, a minting helper for any claims, and the **delegation attack table**
//! ([`delegation_cases`]) every adapter runs, so the gateway and the tower layer are proven to
//! answer each attack with the same reason.
//!
//! An adapter's harness must:
//! 1. use an issuer (e.g. [`super::IssuerServer`]) at the base URL given to
//!    [`DelegationIssuer::new`], serving [`DelegationIssuer::jwks`] and, under the status-list
//!    name [`DELEGATION_STATUS_LIST`], [`DelegationIssuer::status_list`];
//! 2. serve the paths of [`DELEGATION_ROUTES`] under the policies of [`delegation_policies`]
//!    (anything else denied), with `strip_token` on;
//! 3. answer an allowed request with a JSON body whose `identity` object maps each `x-proof-*`
//!    header the application received to its value (the gateway's demo upstream does).

use serde_json::{json, Value};

use super::mint::{b64, now, SigningKey};
use crate::delegation::DelegationRequirement;
use crate::policy::{OnFailure, Policy, Requirement};
use crate::reason::Reason;

/// The status-list name (under the issuer's `/status/`) delegation tokens point at: slot 0
/// valid, 1 revoked, 2 suspended, 3 "could not resolve".
pub const DELEGATION_STATUS_LIST: &str = "delegations";

/// The principal every table token is granted by (unless the case says otherwise).
pub const TABLE_PRINCIPAL: &str = "corp.example";

/// The delegate every table token names (unless the case says otherwise).
pub const TABLE_DELEGATE: &str = "https://agent.example/bot";

/// Another delegate, on no allowlist.
pub const OTHER_DELEGATE: &str = "https://other.example/bot";

/// The scope the table's policies require.
pub const TABLE_SCOPE: &str = "payments-read";

/// Paths and their policies: `/agents` needs a delegation from `corp.example` granting
/// `payments-read`; `/bound` the same with `require_binding`; `/pinned` the same restricted to
/// [`TABLE_DELEGATE`]; `/mixed` that delegation or an email proof of `alice@corp.example`.
pub const DELEGATION_ROUTES: [(&str, &str); 4] = [
    ("/agents", "agents"),
    ("/bound", "agents-bound"),
    ("/pinned", "agents-pinned"),
    ("/mixed", "agents-or-staff"),
];

/// The policies of [`DELEGATION_ROUTES`], as the gateway tests' configuration writes them.
pub fn delegation_policies() -> Vec<Policy> {
    let base = || DelegationRequirement::new([TABLE_PRINCIPAL], [TABLE_SCOPE]);
    vec![
        Policy::any_of("agents", vec![Requirement::delegation(base())]).on_failure(OnFailure::Deny),
        Policy::any_of(
            "agents-bound",
            vec![Requirement::delegation(base().require_binding(true))],
        )
        .on_failure(OnFailure::Deny),
        Policy::any_of(
            "agents-pinned",
            vec![Requirement::delegation(base().delegates([TABLE_DELEGATE]))],
        )
        .on_failure(OnFailure::Deny),
        Policy::any_of(
            "agents-or-staff",
            vec![
                Requirement::of_type("email").identifiers(["alice@corp.example"]),
                Requirement::delegation(base()),
            ],
        )
        .on_failure(OnFailure::StepUp),
    ]
}

/// The gateway configuration of [`delegation_policies`] and [`DELEGATION_ROUTES`] (TOML).
pub const DELEGATION_CONFIG: &str = r#"
[[policies]]
name = "agents"
rule = "any_of"
on_failure = "deny"
requirements = [{ delegation = { principals = ["Corp.Example"], scopes = ["payments-read"] } }]

[[policies]]
name = "agents-bound"
rule = "any_of"
on_failure = "deny"
requirements = [{ delegation = { principals = ["corp.example"], scopes = ["payments-read"], require_binding = true } }]

[[policies]]
name = "agents-pinned"
rule = "any_of"
on_failure = "deny"
requirements = [{ delegation = { principals = ["corp.example"], scopes = ["payments-read"], delegates = ["https://Agent.Example/bot/"] } }]

[[policies]]
name = "agents-or-staff"
rule = "any_of"
on_failure = "step_up"
requirements = [
  { types = ["email"], identifiers = ["alice@corp.example"] },
  { delegation = { principals = ["corp.example"], scopes = ["payments-read"] } },
]

[[routes]]
name = "agents"
path = "/agents/**"
policy = "agents"

[[routes]]
name = "bound"
path = "/bound/**"
policy = "agents-bound"

[[routes]]
name = "pinned"
path = "/pinned/**"
policy = "agents-pinned"

[[routes]]
name = "mixed"
path = "/mixed/**"
policy = "agents-or-staff"
"#;

/// An issuer's keys as the newer JWKS publishes them, with one of each kind an attack needs.
pub struct DelegationIssuer {
    base: String,
    /// Purpose `proof` (signs proofs; must not sign delegations).
    pub proof: SigningKey,
    /// Purpose `delegation`, window from a day ago to a year ahead, 90-day token lifetime.
    pub delegation: SigningKey,
    /// Purpose `status-list` (signs the status list).
    pub status: SigningKey,
    /// Purpose `delegation`, listed in `proof_tombstones` (still served).
    pub tombstoned: SigningKey,
    /// Purpose `delegation`, window ten to nine days ago.
    pub past_window: SigningKey,
    /// Purpose `delegation`, no window member at all.
    pub windowless: SigningKey,
    /// `proof_legacy: true`, no purpose: skips the purpose and window checks.
    pub legacy: SigningKey,
}

impl std::fmt::Debug for DelegationIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelegationIssuer")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The longest lifetime the table's delegation key allows (`max_token_lifetime`).
pub const DELEGATION_KEY_LIFETIME: i64 = 90 * 24 * 3600;

impl DelegationIssuer {
    /// Fresh keys for an issuer at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            proof: SigningKey::rsa("dlg-proof"),
            delegation: SigningKey::es256("dlg-delegation"),
            status: SigningKey::es256("dlg-status"),
            tombstoned: SigningKey::es256("dlg-tombstoned"),
            past_window: SigningKey::es256("dlg-past-window"),
            windowless: SigningKey::es256("dlg-windowless"),
            legacy: SigningKey::es256("dlg-legacy"),
        }
    }

    /// The issuer's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of the delegation status list ([`DELEGATION_STATUS_LIST`]).
    pub fn status_list_url(&self) -> String {
        format!("{}/status/{DELEGATION_STATUS_LIST}", self.base)
    }

    /// The JWKS: every key with its purpose and window, and `proof_tombstones` naming the
    /// tombstoned key.
    pub fn jwks(&self) -> Value {
        let now = now();
        let with = |k: &SigningKey, extra: Value| {
            let mut jwk = k.jwk();
            if let (Some(o), Value::Object(e)) = (jwk.as_object_mut(), extra) {
                o.extend(e);
            }
            jwk
        };
        let window = json!({"not_before": now - 86_400, "not_after": now + 365 * 86_400});
        let mut delegation = window.clone();
        delegation["proof_purpose"] = json!("delegation");
        delegation["max_token_lifetime"] = json!(DELEGATION_KEY_LIFETIME);
        let mut proof = window.clone();
        proof["proof_purpose"] = json!("proof");
        let mut status = window.clone();
        status["proof_purpose"] = json!("status-list");
        let mut tombstoned = window.clone();
        tombstoned["proof_purpose"] = json!("delegation");
        json!({
            "keys": [
                with(&self.proof, proof),
                with(&self.delegation, delegation),
                with(&self.status, status),
                with(&self.tombstoned, tombstoned),
                with(&self.past_window, json!({
                    "proof_purpose": "delegation",
                    "not_before": now - 10 * 86_400,
                    "not_after": now - 9 * 86_400,
                })),
                with(&self.windowless, json!({"proof_purpose": "delegation"})),
                with(&self.legacy, json!({"proof_legacy": true})),
            ],
            "proof_tombstones": [{"kid": self.tombstoned.kid(), "revoked_at": now - 3600}],
        })
    }

    /// The delegation status list (2 bits: slot 0 valid, 1 revoked, 2 suspended, 3 value 3),
    /// signed by the status-list key.
    pub fn status_list(&self) -> String {
        self.status_list_with(&[0, 1, 2, 3])
    }

    /// The delegation status list with the given slot values.
    pub fn status_list_with(&self, slots: &[u8]) -> String {
        super::mint::status_list_jwt(&self.status, &self.status_list_url(), 2, slots, 1)
    }

    /// Valid delegation claims: `corp.example` delegates [`TABLE_DELEGATE`] for
    /// `payments-read` and `payments-write`, issued now, valid 30 days, status slot `slot` of
    /// the delegation list.
    pub fn claims(&self, slot: u64) -> Value {
        let now = now();
        json!({
            "iss": "proof.holdings",
            "sub": "ph_dlg_0123456789abcdef0123456789abcdef",
            "token_type": "delegation",
            "delegation_schema_version": "1.0",
            "principal": TABLE_PRINCIPAL,
            "delegate": TABLE_DELEGATE,
            "scope": ["payments-read", "payments-write"],
            "control_proof": "ph_ctl_0123456789abcdef0123456789abcdef",
            "iat": now,
            "exp": now + 30 * 86_400,
            "status": {"status_list": {"idx": slot, "uri": self.status_list_url()}},
        })
    }

    /// `claims` signed by `key` under the issuer's header.
    pub fn sign(key: &SigningKey, claims: &Value) -> String {
        key.sign_json(claims)
    }

    /// Mints the token of one table case.
    pub fn mint(&self, kind: DelegationToken) -> String {
        use DelegationToken as T;
        let valid = || self.claims(0);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = valid();
            f(&mut c);
            self.delegation.sign_json(&c)
        };
        let now = now();
        match kind {
            T::Valid => self.delegation.sign_json(&valid()),
            T::OtherDelegate => with(&|c| c["delegate"] = json!(OTHER_DELEGATE)),
            T::Legacy => self.legacy.sign_json(&valid()),
            T::ProofKey => self.proof.sign_json(&valid()),
            T::StatusKey => self.status.sign_json(&valid()),
            T::OtherPrincipal => with(&|c| c["principal"] = json!("evil.example")),
            T::PrincipalCase => with(&|c| c["principal"] = json!(" CORP.example ")),
            T::MissingScope => with(&|c| c["scope"] = json!(["payments-write"])),
            T::ScopePrefix => with(&|c| c["scope"] = json!(["payments"])),
            T::ScopeLonger => with(&|c| c["scope"] = json!(["payments-read-all"])),
            T::ScopeWildcard => with(&|c| c["scope"] = json!(["*"])),
            T::ScopeUppercase => with(&|c| c["scope"] = json!(["Payments-Read"])),
            T::Revoked => self.delegation.sign_json(&self.claims(1)),
            T::Suspended => self.delegation.sign_json(&self.claims(2)),
            T::Unresolved => self.delegation.sign_json(&self.claims(3)),
            T::UnservedList => with(&|c| {
                c["status"]["status_list"]["uri"] = json!(format!("{}/status/absent", self.base))
            }),
            T::NoSlot => with(&|c| {
                c.as_object_mut().map(|o| o.remove("status"));
            }),
            T::Expired => with(&|c| {
                c["iat"] = json!(now - 7200);
                c["exp"] = json!(now - 3600);
            }),
            T::NotYetValid => with(&|c| {
                c["iat"] = json!(now + 3600);
            }),
            T::Tombstoned => self.tombstoned.sign_json(&valid()),
            T::PastWindow => self.past_window.sign_json(&valid()),
            T::Windowless => self.windowless.sign_json(&valid()),
            T::TooLong => with(&|c| c["exp"] = json!(now + DELEGATION_KEY_LIFETIME + 86_400)),
            T::AlgNone => {
                let header = json!({"alg": "none", "typ": "JWT"});
                format!("{}.{}.", b64(header.to_string()), b64(valid().to_string()))
            }
            T::Hs256 => {
                let header = json!({"alg": "HS256", "typ": "JWT", "kid": self.delegation.kid()});
                let input = format!("{}.{}", b64(header.to_string()), b64(valid().to_string()));
                let key = aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    &self.delegation.public_key_bytes(),
                );
                let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
                format!("{input}.{}", b64(tag.as_ref()))
            }
            T::BadSignature => {
                let token = self.delegation.sign_json(&valid());
                let (input, sig) = token.rsplit_once('.').unwrap_or((&token, ""));
                let mut sig: Vec<u8> = sig.bytes().collect();
                let mid = sig.len() / 2;
                if let Some(b) = sig.get_mut(mid) {
                    *b = if *b == b'A' { b'B' } else { b'A' };
                }
                format!("{input}.{}", String::from_utf8_lossy(&sig))
            }
            T::Unpublished => SigningKey::es256("dlg-unpublished").sign_json(&valid()),
            T::ForgedOtherPrincipal => {
                let mut c = valid();
                c["principal"] = json!("evil.example");
                SigningKey::es256("dlg-unpublished").sign_json(&c)
            }
            T::NoKid => {
                let header = json!({"alg": "ES256", "typ": "JWT"});
                self.delegation
                    .sign_raw(&header, valid().to_string().as_bytes())
            }
            T::WrongIssuer => with(&|c| c["iss"] = json!("evil.example")),
            T::SchemaTwo => with(&|c| c["delegation_schema_version"] = json!("2.0")),
            T::ProofTokenType => with(&|c| c["token_type"] = json!("proof")),
            T::EmptyScope => with(&|c| c["scope"] = json!([])),
            T::NumericSub => with(&|c| c["sub"] = json!(42)),
            T::EmbeddedJwk => {
                let mut header = self.delegation.header();
                header["jwk"] = self.delegation.jwk();
                self.delegation
                    .sign_raw(&header, valid().to_string().as_bytes())
            }
            T::ProofToken => self.proof.sign(&super::mint::claims(
                "table-alice",
                "email",
                "email",
                "alice@corp.example",
            )),
            T::Garbage => "not.a.token".into(),
            T::Oversized => format!("{}.{}.{}", "a".repeat(5000), "b".repeat(5000), "c"),
        }
    }
}

/// The delegation tokens of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DelegationToken {
    /// Valid, slot 0, delegate [`TABLE_DELEGATE`].
    Valid,
    /// Valid, naming [`OTHER_DELEGATE`].
    OtherDelegate,
    /// Valid claims signed by the legacy key (no purpose, no window: accepted).
    Legacy,
    /// Signed by the `proof`-purpose key.
    ProofKey,
    /// Signed by the `status-list`-purpose key.
    StatusKey,
    /// Granted by `evil.example`.
    OtherPrincipal,
    /// Granted by `" CORP.example "` (the same principal once trimmed and lowercased).
    PrincipalCase,
    /// Grants `payments-write` only.
    MissingScope,
    /// Grants `payments` (a prefix of the required scope).
    ScopePrefix,
    /// Grants `payments-read-all` (the required scope is its prefix).
    ScopeLonger,
    /// Grants `*`.
    ScopeWildcard,
    /// Grants `Payments-Read`.
    ScopeUppercase,
    /// Slot 1 (revoked).
    Revoked,
    /// Slot 2 (suspended).
    Suspended,
    /// Slot 3 (the issuer could not resolve the control proof).
    Unresolved,
    /// A slot in a status list the issuer does not serve.
    UnservedList,
    /// No status claim.
    NoSlot,
    /// Expired an hour ago.
    Expired,
    /// Issued an hour ahead.
    NotYetValid,
    /// Signed by the tombstoned key.
    Tombstoned,
    /// Signed by the key whose window ended nine days ago.
    PastWindow,
    /// Signed by the purpose key without any window member.
    Windowless,
    /// Lives longer than the key's `max_token_lifetime`.
    TooLong,
    /// `alg: none`, empty signature.
    AlgNone,
    /// `alg: HS256` keyed with the delegation key's public bytes.
    Hs256,
    /// One signature character changed.
    BadSignature,
    /// Signed by a key the issuer never published.
    Unpublished,
    /// Granted by `evil.example` and signed by a key the issuer never published: refused for
    /// the principal, since claims are checked before the signature.
    ForgedOtherPrincipal,
    /// No `kid` (the set has purposes: only legacy keys are tried).
    NoKid,
    /// `iss` = `evil.example`.
    WrongIssuer,
    /// `delegation_schema_version` = `2.0`.
    SchemaTwo,
    /// `token_type` = `proof`.
    ProofTokenType,
    /// `scope` = `[]`.
    EmptyScope,
    /// `sub` a number.
    NumericSub,
    /// A header-embedded `jwk`.
    EmbeddedJwk,
    /// A valid proof token (email, Alice) signed by the proof key.
    ProofToken,
    /// Not a JWS.
    Garbage,
    /// Over the 8 KiB cap.
    Oversized,
}

/// How a case presents its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// `Authorization: Delegation <token>`.
    Authorization,
    /// `x-proof-delegation: <token>`.
    Header,
    /// `Authorization: Bearer <token>` (a proof carrier: never read as a delegation).
    Bearer,
}

/// What the adapter must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Forwarded, with the delegation identity headers and `x-proof-delegation-bound`.
    Allow {
        /// The expected `x-proof-delegation-bound`.
        bound: bool,
    },
    /// Refused with this reason (and its status).
    Refuse(Reason),
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct DelegationCase {
    /// A short name for failure messages.
    pub name: &'static str,
    /// The request path.
    pub path: &'static str,
    /// The token and how it is presented; `None`: no token.
    pub token: Option<(DelegationToken, Carrier)>,
    /// The answer.
    pub expect: Expect,
}

impl DelegationCase {
    /// The request's headers (`accept: application/json`, the token in its carrier).
    pub fn headers(&self, issuer: &DelegationIssuer) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::ACCEPT, "application/json".parse().unwrap());
        // A client's own identity headers, which must never reach the upstream.
        h.insert(
            "x-proof-delegation-principal",
            "spoofed.example".parse().unwrap(),
        );
        h.insert("x_proof_delegation_bound", "true".parse().unwrap());
        if let Some((kind, carrier)) = self.token {
            let token = issuer.mint(kind);
            let (name, value) = match carrier {
                Carrier::Authorization => ("authorization", format!("Delegation {token}")),
                Carrier::Header => (crate::delegation::DELEGATION_HEADER, token),
                Carrier::Bearer => ("authorization", format!("Bearer {token}")),
            };
            h.insert(
                http::header::HeaderName::from_static(name),
                value.parse().unwrap(),
            );
        }
        h
    }

    /// Checks an adapter's answer: status and problem `reason` (and the `Delegation` scheme in
    /// `WWW-Authenticate` on a 401), or, for an allowed request, the identity the application
    /// received (`identity` in the JSON body): our delegation headers, none of the client's.
    pub fn check(&self, status: u16, headers: &http::HeaderMap, body: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(body);
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match self.expect {
            Expect::Refuse(reason) => {
                if status != reason.status() || json["reason"] != reason.as_str() {
                    return Err(format!(
                        "expected {} {reason}, got {status} {text}",
                        reason.status()
                    ));
                }
                if status == 401 {
                    let www = headers
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let scheme = if reason.is_delegation() {
                        "Delegation "
                    } else {
                        "Proof "
                    };
                    if !www.starts_with(scheme) {
                        return Err(format!("www-authenticate {www:?}"));
                    }
                }
                Ok(())
            }
            Expect::Allow { bound } => {
                if status != 200 {
                    return Err(format!("expected 200, got {status} {text}"));
                }
                let id = &json["identity"];
                let want = [
                    ("x-proof-delegation-principal", TABLE_PRINCIPAL),
                    ("x-proof-delegation-delegate", TABLE_DELEGATE),
                    ("x-proof-delegation-scopes", "payments-read payments-write"),
                    (
                        "x-proof-delegation-handle",
                        "ph_dlg_0123456789abcdef0123456789abcdef",
                    ),
                    (
                        "x-proof-delegation-bound",
                        if bound { "true" } else { "false" },
                    ),
                ];
                for (name, value) in want {
                    if id[name] != value {
                        return Err(format!("{name} = {}, expected {value:?}: {text}", id[name]));
                    }
                }
                if id.get("x_proof_delegation_bound").is_some() {
                    return Err(format!(
                        "a client's identity header reached the upstream: {text}"
                    ));
                }
                Ok(())
            }
        }
    }
}

/// The delegation attack table, for the adapters' harnesses (see the module docs).
pub fn delegation_cases() -> Vec<DelegationCase> {
    use Carrier::{Authorization as A, Bearer, Header as H};
    use DelegationToken as T;
    use Expect::{Allow, Refuse};
    let case = |name, path, token, expect| DelegationCase {
        name,
        path,
        token,
        expect,
    };
    let unbound = Allow { bound: false };
    vec![
        case(
            "valid, Authorization: Delegation",
            "/agents/x",
            Some((T::Valid, A)),
            unbound,
        ),
        case(
            "valid, x-proof-delegation",
            "/agents/x",
            Some((T::Valid, H)),
            unbound,
        ),
        case("legacy key", "/agents/x", Some((T::Legacy, A)), unbound),
        case(
            "principal trimmed and lowercased",
            "/agents/x",
            Some((T::PrincipalCase, A)),
            unbound,
        ),
        case(
            "no token",
            "/agents/x",
            None,
            Refuse(Reason::DelegationMissing),
        ),
        case(
            "delegation as a Bearer proof",
            "/agents/x",
            Some((T::Valid, Bearer)),
            Refuse(Reason::DelegationMissing),
        ),
        case(
            "proof token as a delegation",
            "/agents/x",
            Some((T::ProofToken, A)),
            Refuse(Reason::DelegationMalformed),
        ),
        case(
            "wrong purpose key (proof)",
            "/agents/x",
            Some((T::ProofKey, A)),
            Refuse(Reason::WrongKeyPurpose),
        ),
        case(
            "wrong purpose key (status-list)",
            "/agents/x",
            Some((T::StatusKey, H)),
            Refuse(Reason::WrongKeyPurpose),
        ),
        case(
            "other principal",
            "/agents/x",
            Some((T::OtherPrincipal, A)),
            Refuse(Reason::PrincipalMismatch),
        ),
        case(
            "missing scope",
            "/agents/x",
            Some((T::MissingScope, A)),
            Refuse(Reason::ScopeNotGranted),
        ),
        case(
            "scope prefix",
            "/agents/x",
            Some((T::ScopePrefix, A)),
            Refuse(Reason::ScopeNotGranted),
        ),
        case(
            "scope extension",
            "/agents/x",
            Some((T::ScopeLonger, A)),
            Refuse(Reason::ScopeNotGranted),
        ),
        case(
            "scope wildcard",
            "/agents/x",
            Some((T::ScopeWildcard, A)),
            Refuse(Reason::ScopeNotGranted),
        ),
        case(
            "scope case",
            "/agents/x",
            Some((T::ScopeUppercase, A)),
            Refuse(Reason::ScopeNotGranted),
        ),
        case(
            "revoked slot",
            "/agents/x",
            Some((T::Revoked, A)),
            Refuse(Reason::DelegationRevoked),
        ),
        case(
            "suspended slot",
            "/agents/x",
            Some((T::Suspended, A)),
            Refuse(Reason::DelegationSuspended),
        ),
        case(
            "slot 3",
            "/agents/x",
            Some((T::Unresolved, A)),
            Refuse(Reason::DelegationStatusUnavailable),
        ),
        case(
            "status list unavailable",
            "/agents/x",
            Some((T::UnservedList, A)),
            Refuse(Reason::DelegationStatusUnavailable),
        ),
        case(
            "no status slot",
            "/agents/x",
            Some((T::NoSlot, A)),
            Refuse(Reason::DelegationStatusUnavailable),
        ),
        case(
            "expired",
            "/agents/x",
            Some((T::Expired, A)),
            Refuse(Reason::DelegationExpired),
        ),
        case(
            "not yet valid",
            "/agents/x",
            Some((T::NotYetValid, A)),
            Refuse(Reason::DelegationNotYetValid),
        ),
        case(
            "tombstoned key",
            "/agents/x",
            Some((T::Tombstoned, A)),
            Refuse(Reason::KeyRevoked),
        ),
        case(
            "outside key window",
            "/agents/x",
            Some((T::PastWindow, A)),
            Refuse(Reason::OutsideKeyWindow),
        ),
        case(
            "key without window",
            "/agents/x",
            Some((T::Windowless, A)),
            Refuse(Reason::OutsideKeyWindow),
        ),
        case(
            "lifetime over the key's",
            "/agents/x",
            Some((T::TooLong, A)),
            Refuse(Reason::DelegationLifetime),
        ),
        case(
            "alg none",
            "/agents/x",
            Some((T::AlgNone, A)),
            Refuse(Reason::DelegationUnsupportedAlgorithm),
        ),
        case(
            "alg HS256",
            "/agents/x",
            Some((T::Hs256, H)),
            Refuse(Reason::DelegationUnsupportedAlgorithm),
        ),
        case(
            "bad signature",
            "/agents/x",
            Some((T::BadSignature, A)),
            Refuse(Reason::DelegationInvalidSignature),
        ),
        case(
            "unpublished key",
            "/agents/x",
            Some((T::Unpublished, A)),
            Refuse(Reason::DelegationInvalidSignature),
        ),
        case(
            "no kid, purposed set",
            "/agents/x",
            Some((T::NoKid, A)),
            Refuse(Reason::DelegationInvalidSignature),
        ),
        case(
            "wrong issuer",
            "/agents/x",
            Some((T::WrongIssuer, A)),
            Refuse(Reason::DelegationMalformed),
        ),
        case(
            "schema 2.0",
            "/agents/x",
            Some((T::SchemaTwo, A)),
            Refuse(Reason::DelegationMalformed),
        ),
        case(
            "token_type proof",
            "/agents/x",
            Some((T::ProofTokenType, A)),
            Refuse(Reason::DelegationMalformed),
        ),
        case(
            "empty scope",
            "/agents/x",
            Some((T::EmptyScope, A)),
            Refuse(Reason::DelegationMalformed),
        ),
        case(
            "numeric sub",
            "/agents/x",
            Some((T::NumericSub, A)),
            Refuse(Reason::DelegationMalformed),
        ),
        case(
            "embedded jwk",
            "/agents/x",
            Some((T::EmbeddedJwk, A)),
            Refuse(Reason::DelegationMalformed),
        ),
        case(
            "garbage",
            "/agents/x",
            Some((T::Garbage, H)),
            Refuse(Reason::DelegationMalformed),
        ),
        case(
            "oversized",
            "/agents/x",
            Some((T::Oversized, H)),
            Refuse(Reason::DelegationMalformed),
        ),
        // Checks run in the contract's order: claims before the signature.
        case(
            "forged signature, other principal",
            "/agents/x",
            Some((T::ForgedOtherPrincipal, A)),
            Refuse(Reason::PrincipalMismatch),
        ),
        case(
            "copied token without binding, binding required",
            "/bound/x",
            Some((T::Valid, A)),
            Refuse(Reason::DelegateUnbound),
        ),
        case(
            "allowlisted delegate",
            "/pinned/x",
            Some((T::Valid, A)),
            unbound,
        ),
        case(
            "delegate not allowlisted",
            "/pinned/x",
            Some((T::OtherDelegate, A)),
            Refuse(Reason::DelegateMismatch),
        ),
        case(
            "mixed policy, delegation",
            "/mixed/x",
            Some((T::Valid, H)),
            unbound,
        ),
        case(
            "mixed policy, bad delegation",
            "/mixed/x",
            Some((T::MissingScope, H)),
            Refuse(Reason::ScopeNotGranted),
        ),
    ]
}

//! Why a request was refused, in one table: each [`Reason`]'s machine-readable name, its
//! sentence for people and its HTTP family are written once, in the `reasons!` table below,
//! and everything else (`as_str`, `message`, `family`, `ALL`) is generated from it. The same
//! names are used in responses, metrics labels and logs.
//!
//! Layer 1 (vocabulary): imports nothing from the crate.

/// The HTTP family of a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// 401: the token is missing or bad.
    Unauthenticated,
    /// 403: the token is fine but not enough for this route.
    Forbidden,
    /// 503: we cannot check right now.
    Unavailable,
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $family:ident, $message:literal; )*) => {
        /// Why a request was not allowed (or why a token was refused).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason, for metrics registration and tests.
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )* ];

            /// The machine-readable name (`missing`, `policy_unmet`, …).
            pub fn as_str(self) -> &'static str {
                match self { $( Reason::$variant => $name, )* }
            }

            /// A sentence for people.
            pub fn message(self) -> &'static str {
                match self { $( Reason::$variant => $message, )* }
            }

            /// 401, 403 or 503 family.
            pub fn family(self) -> Family {
                match self { $( Reason::$variant => Family::$family, )* }
            }
        }
    };
}

reasons! {
    /// No token was presented.
    Missing = "missing", Unauthenticated, "A proof token is required.";
    /// The token (or how it was presented) is not a well-formed compact JWS within the size cap.
    Malformed = "malformed", Unauthenticated, "The proof token is malformed.";
    /// The header names an algorithm outside RS256/ES256 (`none`, `HS256`, …).
    UnsupportedAlgorithm = "unsupported_algorithm", Unauthenticated,
        "The proof token uses an algorithm that is not accepted.";
    /// The header carries a key or key reference (`jwk`, `jku`, `x5u`, `x5c`), `crit` or `cty`.
    ForbiddenHeader = "forbidden_header", Unauthenticated,
        "The proof token carries a header that is not accepted.";
    /// The signature does not verify.
    InvalidSignature = "invalid_signature", Unauthenticated,
        "The proof token's signature is invalid.";
    /// No published key matches the token's `kid` and algorithm.
    UnknownKey = "unknown_key", Unauthenticated,
        "The proof token was signed by a key that is not published.";
    /// The signing key's `kid` is listed in the JWKS's `proof_tombstones`: the issuer withdrew
    /// the key, even if it still serves it.
    ProofKeyRevoked = "proof_key_revoked", Unauthenticated,
        "The proof token was signed by a key the issuer has withdrawn.";
    /// `exp` has passed.
    Expired = "expired", Unauthenticated, "The proof token has expired.";
    /// `iat` or `nbf` is in the future.
    NotYetValid = "not_yet_valid", Unauthenticated, "The proof token is not valid yet.";
    /// `iss` is not the configured issuer.
    Issuer = "issuer", Unauthenticated,
        "The proof token was not issued by the expected issuer.";
    /// A required claim is missing or a claim has a refused value (`exp`, `sub`, `aud`, …).
    InvalidClaims = "invalid_claims", Unauthenticated,
        "The proof token's claims are not acceptable.";
    /// The proof is revoked (list, status list or webhook).
    Revoked = "revoked", Unauthenticated, "The proof has been revoked.";
    /// The proof is suspended.
    Suspended = "suspended", Unauthenticated, "The proof is suspended.";
    /// Revocation data is stale or unavailable, so the token cannot be checked now.
    StatusUnavailable = "status_unavailable", Unavailable,
        "The proof's revocation status cannot be checked right now.";
    /// The key set is stale or was never fetched, so no token can be checked now.
    JwksStale = "jwks_stale", Unavailable,
        "The issuer's signing keys cannot be refreshed right now.";
    /// Valid proofs were presented but they do not meet the route's policy.
    PolicyUnmet = "policy_unmet", Forbidden,
        "The presented proofs do not meet this route's requirements.";
    /// The route's policy denies every request.
    RouteDenied = "route_denied", Forbidden, "This route is not available.";
    // Human approval (`crate::approval`): answered with the statuses of
    // `Reason::approval_status`, not only their family's.
    /// The request needs a person's approval; a confirmation was created (answered 202).
    ApprovalRequired = "approval_required", Forbidden,
        "This request needs a person's approval before it is forwarded.";
    /// The approval ticket is valid but no one has decided yet (answered 202).
    ApprovalPending = "approval_pending", Forbidden,
        "The approval of this request is still pending.";
    /// The approver denied the request.
    ApprovalDenied = "approval_denied", Forbidden, "The approver denied this request.";
    /// No one decided in time (the approval's timeout, or the issuer's).
    ApprovalExpired = "approval_expired", Forbidden,
        "No one approved this request in time.";
    /// The approval ticket is malformed, forged or past its lifetime.
    ApprovalTicketInvalid = "approval_ticket_invalid", Forbidden,
        "The approval ticket is malformed, forged or expired.";
    /// The approval ticket was already used (a ticket forwards one request).
    ApprovalTicketUsed = "approval_ticket_used", Forbidden,
        "The approval ticket has already been used.";
    /// The approval ticket was issued for another method or path.
    ApprovalTicketOtherRequest = "approval_ticket_other_request", Forbidden,
        "The approval ticket was issued for another request.";
    /// The approval ticket was issued for another request body.
    ApprovalTicketOtherBody = "approval_ticket_other_body", Forbidden,
        "The approval ticket was issued for another request body.";
    /// The approval ticket was issued to another requester.
    ApprovalTicketOtherSubject = "approval_ticket_other_subject", Forbidden,
        "The approval ticket was issued to someone else.";
    /// Too many approvals asked for, by this requester or by all (answered 429).
    ApprovalRateLimited = "approval_rate_limited", Unavailable,
        "Too many approvals were asked for; try again later.";
    /// The body is larger than the gateway digests for an approval (answered 413).
    ApprovalBodyTooLarge = "approval_body_too_large", Forbidden,
        "The request body is too large to be approved.";
    /// The issuer cannot be reached (or approvals are not configured or not supported here).
    ApprovalUnavailable = "approval_unavailable", Unavailable,
        "Approvals cannot be requested or checked right now.";
    // Delegations (`crate::delegation`): one block, in the order the checks run.
    /// The route needs a delegation token and none was presented.
    DelegationMissing = "delegation_missing", Unauthenticated,
        "A delegation token is required.";
    /// Not a delegation token: shape, size, `iss`, `token_type`, schema version or claim types.
    DelegationMalformed = "delegation_malformed", Unauthenticated,
        "The delegation token is malformed.";
    /// The header names an algorithm outside RS256/ES256 (`none`, `HS256`, …).
    DelegationUnsupportedAlgorithm = "delegation_unsupported_algorithm", Unauthenticated,
        "The delegation token uses an algorithm that is not accepted.";
    /// `exp` has passed (5 s leeway).
    DelegationExpired = "delegation_expired", Unauthenticated,
        "The delegation token has expired.";
    /// `iat` is in the future (5 s leeway).
    DelegationNotYetValid = "delegation_not_yet_valid", Unauthenticated,
        "The delegation token is not valid yet.";
    /// The authorizing domain is not one the route accepts.
    PrincipalMismatch = "principal_mismatch", Forbidden,
        "The delegation was granted by a domain this route does not accept.";
    /// The token's delegate is not the one the gateway resolved (mTLS) or allows.
    DelegateMismatch = "delegate_mismatch", Forbidden,
        "The delegation names another delegate than the one presenting it.";
    /// The route requires the delegate to be bound (mTLS) and it is not.
    DelegateUnbound = "delegate_unbound", Unauthenticated,
        "The delegate must authenticate with a client certificate.";
    /// A scope the route requires is not granted (exact membership).
    ScopeNotGranted = "scope_not_granted", Forbidden,
        "The delegation does not grant the scopes this route requires.";
    /// The signing key is not a delegation key.
    WrongKeyPurpose = "wrong_key_purpose", Unauthenticated,
        "The delegation token was signed by a key that does not sign delegations.";
    /// `iat` lies outside the signing key's window (±300 s), or the key has no window.
    OutsideKeyWindow = "outside_key_window", Unauthenticated,
        "The delegation token was signed outside its key's validity window.";
    /// `exp - iat` exceeds the key's `max_token_lifetime`.
    DelegationLifetime = "delegation_lifetime", Unauthenticated,
        "The delegation token lives longer than its key allows.";
    /// The signing key is tombstoned in the JWKS.
    KeyRevoked = "key_revoked", Unauthenticated,
        "The delegation token was signed by a revoked key.";
    /// No published delegation key verifies the signature.
    DelegationInvalidSignature = "delegation_invalid_signature", Unauthenticated,
        "The delegation token's signature is invalid.";
    /// The delegation's status-list slot says revoked (or a webhook did).
    DelegationRevoked = "delegation_revoked", Unauthenticated,
        "The delegation has been revoked.";
    /// The delegation's status-list slot says suspended.
    DelegationSuspended = "delegation_suspended", Unauthenticated,
        "The delegation is suspended.";
    /// The delegation's status cannot be read now (no slot, list missing or stale, slot 3).
    DelegationStatusUnavailable = "delegation_status_unavailable", Unavailable,
        "The delegation's status cannot be checked right now.";
}

impl Reason {
    /// The HTTP status for a denial with this reason.
    pub fn status(self) -> u16 {
        match self.family() {
            Family::Unauthenticated => 401,
            Family::Forbidden => 403,
            Family::Unavailable => 503,
        }
    }
}

impl Reason {
    /// Whether this is one of the approval reasons (`approval_*`).
    pub fn is_approval(self) -> bool {
        self.as_str().starts_with("approval_")
    }

    /// The HTTP status an approval answer with this reason gets: `202` while a person is
    /// asked (`approval_required`, `approval_pending`), `413` for a body too large to digest,
    /// `429` when rate limited, else [`Reason::status`].
    pub fn approval_status(self) -> u16 {
        match self {
            Reason::ApprovalRequired | Reason::ApprovalPending => 202,
            Reason::ApprovalBodyTooLarge => 413,
            Reason::ApprovalRateLimited => 429,
            other => other.status(),
        }
    }

    /// Whether this reason comes from a delegation check (the `delegation` block above): such a
    /// refusal is never answered with a step-up, which cannot help an agent.
    pub fn is_delegation(self) -> bool {
        matches!(
            self,
            Reason::DelegationMissing
                | Reason::DelegationMalformed
                | Reason::DelegationUnsupportedAlgorithm
                | Reason::DelegationExpired
                | Reason::DelegationNotYetValid
                | Reason::PrincipalMismatch
                | Reason::DelegateMismatch
                | Reason::DelegateUnbound
                | Reason::ScopeNotGranted
                | Reason::WrongKeyPurpose
                | Reason::OutsideKeyWindow
                | Reason::DelegationLifetime
                | Reason::KeyRevoked
                | Reason::DelegationInvalidSignature
                | Reason::DelegationRevoked
                | Reason::DelegationSuspended
                | Reason::DelegationStatusUnavailable
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_statuses_follow_families() {
        let mut names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
        for r in Reason::ALL {
            assert!(r
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(r.message().ends_with('.'));
        }
        assert_eq!(Reason::Missing.status(), 401);
        assert_eq!(Reason::PolicyUnmet.status(), 403);
        assert_eq!(Reason::JwksStale.status(), 503);
    }
}

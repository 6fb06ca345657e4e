//! A builder for the common policies, in the words of the route that needs them.
//!
//! ```
//! use std::time::Duration;
//! use proofgate_tower::require;
//!
//! // Staff: a proof of one of these emails, or of control of the corporate domain; a person
//! // without one is offered a hosted verification (step-up).
//! let staff = require::any_of("staff")
//!     .email(["alice@corp.example", "bob@corp.example"])
//!     .domain(["corp.example"])
//!     .step_up();
//!
//! // Payouts: a phone proof verified in the last ten minutes, else 401/403 without step-up.
//! let payouts = require::any_of("payouts")
//!     .phone()
//!     .max_age(Duration::from_secs(600))
//!     .deny();
//!
//! assert_eq!(staff.build().requirements().len(), 2);
//! assert_eq!(payouts.build().requirements()[0].max_age, Some(Duration::from_secs(600)));
//! ```
//!
//! Allowlists compare identifier *hashes* (tokens never carry the identifier in clear), so an
//! allowlist names whole identifiers: `alice@corp.example`, not `@corp.example`. For "anyone at
//! corp.example", require a `domain` proof of `corp.example` (control of the domain) or list
//! the addresses.

use std::time::Duration;

use proofgate_core::policy::{OnFailure, Policy, Requirement};

/// A policy met by any one of its requirements.
pub fn any_of(name: impl Into<String>) -> PolicyBuilder {
    PolicyBuilder {
        policy: Policy::any_of(name, Vec::new()),
    }
}

/// A policy met only when all of its requirements are (each possibly by a different token
/// presented with the same request).
pub fn all_of(name: impl Into<String>) -> PolicyBuilder {
    PolicyBuilder {
        policy: Policy::all_of(name, Vec::new()),
    }
}

/// A policy that verifies proofs when present and passes them on, never requiring one (use the
/// `Option<VerifiedProof>` extractor on such routes).
pub fn optional(name: impl Into<String>) -> Policy {
    let mut p = Policy::public(name);
    p.rule = proofgate_core::policy::Rule::Optional;
    p
}

/// Builds a [`Policy`] requirement by requirement. Each requirement method adds one requirement;
/// [`channels`](PolicyBuilder::channels) and [`max_age`](PolicyBuilder::max_age) refine the last
/// one added.
#[derive(Debug, Clone)]
#[must_use]
pub struct PolicyBuilder {
    policy: Policy,
}

impl PolicyBuilder {
    fn push(mut self, r: Requirement) -> Self {
        if let proofgate_core::policy::Rule::Require { requirements, .. } = &mut self.policy.rule {
            requirements.push(r);
        }
        self
    }

    fn last(mut self, f: impl FnOnce(Requirement) -> Requirement) -> Self {
        if let proofgate_core::policy::Rule::Require { requirements, .. } = &mut self.policy.rule {
            if let Some(r) = requirements.pop() {
                requirements.push(f(r));
            }
        }
        self
    }

    /// Adds a requirement: a proof of `kind` (`phone`, `email`, `domain`, `wallet`, …) for one of
    /// `identifiers` (normalized and hashed as the issuer does); an empty list accepts any.
    pub fn proof<I, S>(self, kind: &str, identifiers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.push(Requirement::of_type(kind).identifiers(identifiers))
    }

    /// Adds a requirement: an email proof of one of `addresses`.
    pub fn email<I: IntoIterator<Item = S>, S: AsRef<str>>(self, addresses: I) -> Self {
        self.proof("email", addresses)
    }

    /// Adds a requirement: a proof of control of one of `domains`.
    pub fn domain<I: IntoIterator<Item = S>, S: AsRef<str>>(self, domains: I) -> Self {
        self.proof("domain", domains)
    }

    /// Adds a requirement: a phone proof of any number.
    pub fn phone(self) -> Self {
        self.push(Requirement::of_type("phone"))
    }

    /// Adds a requirement: a phone proof of one of `numbers` (normalized to E.164).
    pub fn phone_numbers<I: IntoIterator<Item = S>, S: AsRef<str>>(self, numbers: I) -> Self {
        self.proof("phone", numbers)
    }

    /// Restricts the last requirement to proofs made over one of `channels` (`sms`,
    /// `whatsapp`, `dns`, …).
    pub fn channels<I: IntoIterator<Item = S>, S: Into<String>>(self, channels: I) -> Self {
        self.last(|r| r.channels(channels))
    }

    /// Requires the last requirement's proof to have been verified at most `max_age` ago.
    pub fn max_age(self, max_age: Duration) -> Self {
        self.last(|r| r.max_age(max_age))
    }

    /// On failure, offer a hosted verification (302 for browsers, 401 with a start link for API
    /// clients). This is the default.
    pub fn step_up(mut self) -> Self {
        self.policy.on_failure = OnFailure::StepUp;
        self
    }

    /// On failure, answer 401/403 without offering a verification.
    pub fn deny(mut self) -> Self {
        self.policy.on_failure = OnFailure::Deny;
        self
    }

    /// The policy.
    pub fn build(self) -> Policy {
        self.policy
    }
}

impl From<PolicyBuilder> for Policy {
    fn from(b: PolicyBuilder) -> Policy {
        b.policy
    }
}

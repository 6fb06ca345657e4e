//! Policies: what a route requires of the proofs presented with a request.
//!
//! A [`Policy`] is one of: public (no proof looked at), optional (proofs verified when present and
//! passed on, never required), deny (nothing gets through), or a set of [`Requirement`]s joined
//! by any-of or all-of. Under all-of, each requirement may be met by a different token presented
//! with the same request, so a phone proof and an email proof together can satisfy a route that
//! needs both.

use std::time::Duration;

use crate::delegation::DelegationRequirement;
use crate::identifier;
use crate::proof::VerifiedProof;

/// What happens when a request does not satisfy its route's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Offer a hosted verification that brings the person back with a proof.
    #[default]
    StepUp,
    /// Answer 401/403 without offering a verification.
    Deny,
}

/// How a policy's requirements combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Combine {
    /// At least one requirement met.
    #[default]
    AnyOf,
    /// Every requirement met, possibly each by a different token.
    AllOf,
}

/// The rule a policy applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Forwarded without looking at any proof.
    Public,
    /// Proofs are verified when present and passed on; their absence or failure is not an error.
    Optional,
    /// Always denied (the zero-trust default for routes that match nothing).
    Deny,
    /// Proofs required.
    Require {
        /// How the requirements combine.
        combine: Combine,
        /// The requirements; never empty after validation.
        requirements: Vec<Requirement>,
    },
}

/// A named policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Name used in logs, metrics and responses.
    pub name: String,
    /// The rule.
    pub rule: Rule,
    /// What a failure leads to. Defaults to `StepUp`.
    pub on_failure: OnFailure,
    /// A person's approval needed after the rule is met (see `crate::approval`). Defaults
    /// to none.
    pub approval: Option<std::sync::Arc<ApprovalRule>>,
}

impl Policy {
    /// A policy with no requirement.
    pub fn public(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            rule: Rule::Public,
            on_failure: OnFailure::Deny,
            approval: None,
        }
    }

    /// A policy that denies everything.
    pub fn deny(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            rule: Rule::Deny,
            on_failure: OnFailure::Deny,
            approval: None,
        }
    }

    /// A policy requiring any one of `requirements`.
    pub fn any_of(name: impl Into<String>, requirements: Vec<Requirement>) -> Self {
        Self {
            name: name.into(),
            rule: Rule::Require {
                combine: Combine::AnyOf,
                requirements,
            },
            on_failure: OnFailure::StepUp,
            approval: None,
        }
    }

    /// A policy requiring all of `requirements`.
    pub fn all_of(name: impl Into<String>, requirements: Vec<Requirement>) -> Self {
        Self {
            name: name.into(),
            rule: Rule::Require {
                combine: Combine::AllOf,
                requirements,
            },
            on_failure: OnFailure::StepUp,
            approval: None,
        }
    }

    /// The same policy with another failure mode.
    pub fn on_failure(mut self, on_failure: OnFailure) -> Self {
        self.on_failure = on_failure;
        self
    }

    /// The same policy, with a person's approval required once its rule is met.
    pub fn with_approval(mut self, approval: ApprovalRule) -> Self {
        self.approval = Some(std::sync::Arc::new(approval));
        self
    }

    /// Whether any requirement is a proof requirement, which a person can meet by verifying
    /// (a step-up); a policy of delegation requirements only has none.
    pub fn has_proof_requirement(&self) -> bool {
        self.requirements().iter().any(|r| r.delegation.is_none())
    }

    /// Whether any requirement is a delegation requirement.
    pub fn has_delegation(&self) -> bool {
        self.requirements().iter().any(|r| r.delegation.is_some())
    }

    /// The requirements, empty for public, optional and deny policies.
    pub fn requirements(&self) -> &[Requirement] {
        match &self.rule {
            Rule::Require { requirements, .. } => requirements,
            _ => &[],
        }
    }

    /// Evaluates the policy over verified proofs at `now` (Unix seconds). Returns the indices of
    /// the proofs that satisfied it (in requirement order, deduplicated) or `None`.
    pub fn evaluate(
        &self,
        proofs: &[std::sync::Arc<VerifiedProof>],
        now: i64,
    ) -> Option<Vec<usize>> {
        match &self.rule {
            Rule::Public | Rule::Optional => Some((0..proofs.len()).collect()),
            Rule::Deny => None,
            Rule::Require {
                combine,
                requirements,
            } => {
                let mut used = Vec::new();
                match combine {
                    Combine::AnyOf => {
                        for r in requirements {
                            if let Some(i) = proofs.iter().position(|p| r.is_met_by(p, now)) {
                                used.push(i);
                                return Some(used);
                            }
                        }
                        None
                    }
                    Combine::AllOf => {
                        for r in requirements {
                            let i = proofs.iter().position(|p| r.is_met_by(p, now))?;
                            if !used.contains(&i) {
                                used.push(i);
                            }
                        }
                        Some(used)
                    }
                }
            }
        }
    }
}

/// An allowed identifier: kept in clear (for step-up) and as the hash tokens carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedIdentifier {
    /// The identifier as configured, normalized.
    pub normalized: String,
    /// Its identifier hash.
    pub hash: String,
}

/// One requirement: a proof of one of `types`, over one of `channels`, for one of
/// `identifiers`, verified at most `max_age` ago. An empty list means "any".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Requirement {
    /// Accepted proof types (`phone`, `email`, `domain`, …).
    pub types: Vec<String>,
    /// Accepted channels (`sms`, `whatsapp`, `dns`, …).
    pub channels: Vec<String>,
    /// Accepted identifiers, compared through `identifier_hash`.
    pub identifiers: Vec<AllowedIdentifier>,
    /// Maximum age of `verified_at`.
    pub max_age: Option<Duration>,
    /// A delegation requirement instead of a proof requirement: met only by a delegation token
    /// ([`crate::delegation`]), never by a proof; the fields above are then unused.
    pub delegation: Option<DelegationRequirement>,
}

impl Requirement {
    /// A requirement for a proof of type `kind`.
    pub fn of_type(kind: impl Into<String>) -> Self {
        Self {
            types: vec![kind.into()],
            ..Self::default()
        }
    }

    /// Restricts channels.
    pub fn channels<I: IntoIterator<Item = S>, S: Into<String>>(mut self, channels: I) -> Self {
        self.channels = channels.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts identifiers; each is normalized for this requirement's first type (or taken as
    /// given when no type is set) and hashed.
    pub fn identifiers<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, identifiers: I) -> Self {
        let kind = self.types.first().map(String::as_str).unwrap_or("");
        self.identifiers = identifiers
            .into_iter()
            .map(|i| {
                let normalized = identifier::normalize(kind, i.as_ref());
                let hash = identifier::hash_normalized(&normalized);
                AllowedIdentifier { normalized, hash }
            })
            .collect();
        self
    }

    /// A requirement met by a delegation token meeting `delegation` (never by a proof).
    pub fn delegation(delegation: DelegationRequirement) -> Self {
        Self {
            delegation: Some(delegation),
            ..Self::default()
        }
    }

    /// Requires `verified_at` no older than `max_age`.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Whether `proof` meets this requirement at `now` (Unix seconds).
    pub fn is_met_by(&self, proof: &VerifiedProof, now: i64) -> bool {
        if self.delegation.is_some() {
            return false;
        }
        let claims = &proof.claims;
        if self.types.is_empty() {
            // "Any proof" means any proof of control: an approval or consent token is signed by
            // the same key but proves a decision, so it meets only a requirement naming its type.
            if claims
                .proof_type
                .as_deref()
                .is_some_and(|t| crate::catalog::DECISION_TYPES.contains(&t))
            {
                return false;
            }
        } else if !one_of(&self.types, claims.proof_type.as_deref()) {
            return false;
        }
        if !self.channels.is_empty() && !one_of(&self.channels, claims.channel.as_deref()) {
            return false;
        }
        if !self.identifiers.is_empty() {
            let Some(hash) = proof.identifier_hash() else {
                return false;
            };
            if !self.identifiers.iter().any(|i| i.hash == hash) {
                return false;
            }
        }
        if let Some(max_age) = self.max_age {
            let Some(verified_at) = proof.verified_at else {
                return false;
            };
            let age = now.saturating_sub(verified_at);
            if age < -(crate::clock::DEFAULT_LEEWAY_SECS as i64) || age as u64 > max_age.as_secs() {
                return false;
            }
        }
        true
    }
}

fn one_of(list: &[String], value: Option<&str>) -> bool {
    value.is_some_and(|v| list.iter().any(|x| x == v))
}

/// A person's approval a policy asks for before an allowed request is forwarded: a confirmation
/// is sent to the approvers of a HITL configuration of the issuer, and the request is held until
/// they decide (see `crate::approval`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// The issuer's HITL configuration id (who is asked, over which channels).
    pub hitl: String,
    /// The message template: `{method}`, `{path}`, `{subject}` and `{policy}` are replaced;
    /// the named headers and body fields follow it, one per line.
    pub message: String,
    /// How long the gateway waits for a decision before the request counts as expired.
    pub timeout: Duration,
    /// Request headers (lowercase names) shown to the approvers.
    pub headers: Vec<String>,
    /// Body fields shown to the approvers: top-level or dotted (`payee.iban`) JSON members, or
    /// form (`application/x-www-form-urlencoded`) field names.
    pub body_fields: Vec<String>,
}

impl ApprovalRule {
    /// An approval by the approvers of `hitl`, with `message`, waiting 5 minutes at most.
    pub fn new(hitl: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            hitl: hitl.into(),
            message: message.into(),
            timeout: Duration::from_secs(300),
            headers: Vec::new(),
            body_fields: Vec::new(),
        }
    }
}

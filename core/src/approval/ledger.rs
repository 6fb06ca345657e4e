//! Where "this ticket was used" is remembered: the [`TicketLedger`] trait and the bounded local
//! [`LocalLedger`] used by default (single use per replica; a shared implementation makes it
//! single use across replicas).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// Where "this ticket was used" is remembered.
pub trait TicketLedger: Send + Sync + std::fmt::Debug {
    /// Records `ticket_id` as used until `expires_at` (Unix s); `Claim::First` exactly once.
    fn claim<'a>(
        &'a self,
        ticket_id: &'a str,
        expires_at: i64,
    ) -> Pin<Box<dyn Future<Output = Claim> + Send + 'a>>;
}

/// The answer of [`TicketLedger::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The ticket had not been used: it is now, and this request may go.
    First,
    /// The ticket was used before (or the ledger cannot tell: it fails closed).
    Replayed,
}

/// The default ledger: in memory, per process. Entries are kept until their ticket expires
/// (a ticket past its expiry is refused before the ledger is asked), at most `capacity` live
/// ones; when that many live tickets are held, a new claim is refused as [`Claim::Replayed`]
/// rather than forgetting one that may be replayed (each ticket needs a person's approval, so
/// the bound is never reached in practice).
#[derive(Debug)]
pub struct LocalLedger {
    used: Mutex<HashMap<String, i64>>,
    capacity: usize,
}

/// Default [`LocalLedger`] capacity.
pub const DEFAULT_CAPACITY: usize = 100_000;

impl Default for LocalLedger {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl LocalLedger {
    /// A ledger holding at most `capacity` live tickets.
    pub fn new(capacity: usize) -> Self {
        Self {
            used: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The claim, at `now` (Unix s).
    pub fn claim_at(&self, ticket_id: &str, expires_at: i64, now: i64) -> Claim {
        let Ok(mut used) = self.used.lock() else {
            return Claim::Replayed;
        };
        if used.contains_key(ticket_id) {
            return Claim::Replayed;
        }
        if used.len() >= self.capacity {
            used.retain(|_, exp| *exp > now);
            if used.len() >= self.capacity {
                tracing::warn!(
                    capacity = self.capacity,
                    "the approval ticket ledger is full; refusing the ticket"
                );
                return Claim::Replayed;
            }
        }
        used.insert(ticket_id.to_owned(), expires_at);
        Claim::First
    }
}

impl TicketLedger for LocalLedger {
    fn claim<'a>(
        &'a self,
        ticket_id: &'a str,
        expires_at: i64,
    ) -> Pin<Box<dyn Future<Output = Claim> + Send + 'a>> {
        let claim = self.claim_at(ticket_id, expires_at, crate::clock::unix_now());
        Box::pin(std::future::ready(claim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_bounded_and_expiring() {
        let l = LocalLedger::new(2);
        assert_eq!(l.claim_at("a", 100, 0), Claim::First);
        assert_eq!(l.claim_at("a", 100, 0), Claim::Replayed);
        assert_eq!(l.claim_at("b", 10, 0), Claim::First);
        // Full of live tickets: refused, nothing forgotten.
        assert_eq!(l.claim_at("c", 100, 5), Claim::Replayed);
        assert_eq!(l.claim_at("a", 100, 5), Claim::Replayed);
        // Once "b" has expired, its room is reused; "a" is still remembered.
        assert_eq!(l.claim_at("c", 100, 11), Claim::First);
        assert_eq!(l.claim_at("a", 100, 11), Claim::Replayed);
    }

    #[tokio::test]
    async fn the_trait_object_claims_once() {
        let l: std::sync::Arc<dyn TicketLedger> = std::sync::Arc::new(LocalLedger::default());
        let far = crate::clock::unix_now() + 60;
        assert_eq!(l.claim("x", far).await, Claim::First);
        assert_eq!(l.claim("x", far).await, Claim::Replayed);
    }
}

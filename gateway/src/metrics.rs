//! Prometheus metrics, registered once per gateway.

use std::collections::HashMap;

use arc_swap::ArcSwap;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

/// Decision counters by route, then by `(decision, reason)`.
type DecisionCounters = HashMap<String, HashMap<(&'static str, &'static str), IntCounter>>;

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    /// `proofgate_decisions_total{route, decision, reason}`.
    pub decisions: IntCounterVec,
    /// `proofgate_decision_seconds{decision}`: time to decide, verification included.
    pub decision_seconds: HistogramVec,
    /// `proofgate_cache_entries`: verified tokens cached.
    pub cache_entries: IntGauge,
    /// `proofgate_jwks_age_seconds`: time since the key set was fetched (-1: never).
    pub jwks_age: Gauge,
    /// `proofgate_revocation_age_seconds`: time since the revocation list was fetched (-1: never).
    pub revocation_age: Gauge,
    /// `proofgate_refresh_failures{source}`: consecutive failed refreshes.
    pub refresh_failures: prometheus::IntGaugeVec,
    /// `proofgate_fail_open_total`: decisions allowed only because fail mode is open.
    pub fail_open: IntGauge,
    /// `proofgate_step_up_starts_total{outcome}`.
    pub step_up_starts: IntCounterVec,
    /// `proofgate_config_reloads_total{result}`.
    pub reloads: IntCounterVec,
    /// `proofgate_webhooks_total`: webhooks received.
    pub webhooks: IntCounter,
    /// `proofgate_client_errors_total`: requests whose body the client sent malformed (a bad
    /// chunk, …) or too slowly, answered 400/408 without reaching the upstream's answer.
    pub client_errors: IntCounter,
    /// `proofgate_cache_lookups_total{result}`: verified-token cache lookups, `hit` or `miss`
    /// (a miss costs a signature check). Brought up to date at each scrape.
    pub cache_lookups: IntCounterVec,
    /// The children of `decisions` already used. `with_label_values` hashes the labels and takes
    /// the vector's lock on every call; the request path reads this instead (lock-free) and
    /// only a combination never seen before goes through the vector.
    decision_counters: ArcSwap<DecisionCounters>,
    /// `decision_seconds` for `allow`, `deny` and `step_up`.
    decision_timers: [Histogram; 3],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new(
                "proofgate_decisions_total",
                "Decisions by route, decision and reason.",
            ),
            &["route", "decision", "reason"],
        )
        .expect("metric");
        let decision_seconds = HistogramVec::new(
            HistogramOpts::new("proofgate_decision_seconds", "Time to decide a request.").buckets(
                vec![
                    0.000_001, 0.000_002, 0.000_005, 0.000_01, 0.000_02, 0.000_05, 0.000_1,
                    0.000_5, 0.001, 0.005,
                ],
            ),
            &["decision"],
        )
        .expect("metric");
        let cache_entries =
            IntGauge::new("proofgate_cache_entries", "Verified tokens cached.").expect("metric");
        let jwks_age = Gauge::new(
            "proofgate_jwks_age_seconds",
            "Seconds since the JWKS was fetched.",
        )
        .expect("metric");
        let revocation_age = Gauge::new(
            "proofgate_revocation_age_seconds",
            "Seconds since the revocation list was fetched.",
        )
        .expect("metric");
        let refresh_failures = prometheus::IntGaugeVec::new(
            Opts::new(
                "proofgate_refresh_failures",
                "Consecutive failed refreshes.",
            ),
            &["source"],
        )
        .expect("metric");
        let fail_open = IntGauge::new(
            "proofgate_fail_open_total",
            "Decisions allowed only because the fail mode is open.",
        )
        .expect("metric");
        let step_up_starts = IntCounterVec::new(
            Opts::new(
                "proofgate_step_up_starts_total",
                "Step-up starts by outcome.",
            ),
            &["outcome"],
        )
        .expect("metric");
        let reloads = IntCounterVec::new(
            Opts::new(
                "proofgate_config_reloads_total",
                "Configuration reloads by result.",
            ),
            &["result"],
        )
        .expect("metric");
        let webhooks =
            IntCounter::new("proofgate_webhooks_total", "Webhooks received.").expect("metric");
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "proofgate_cache_lookups_total",
                "Verified-token cache lookups by result (hit, miss).",
            ),
            &["result"],
        )
        .expect("metric");
        let client_errors = IntCounter::new(
            "proofgate_client_errors_total",
            "Requests refused for a malformed or too slow request body.",
        )
        .expect("metric");
        for c in [
            Box::new(client_errors.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(decisions.clone()),
            Box::new(decision_seconds.clone()),
            Box::new(cache_entries.clone()),
            Box::new(jwks_age.clone()),
            Box::new(revocation_age.clone()),
            Box::new(refresh_failures.clone()),
            Box::new(fail_open.clone()),
            Box::new(step_up_starts.clone()),
            Box::new(reloads.clone()),
            Box::new(webhooks.clone()),
            Box::new(cache_lookups.clone()),
        ] {
            registry.register(c).expect("register metric");
        }
        let decision_timers =
            ["allow", "deny", "step_up"].map(|k| decision_seconds.with_label_values(&[k]));
        Self {
            registry,
            decision_counters: ArcSwap::from_pointee(HashMap::new()),
            decision_timers,
            decisions,
            decision_seconds,
            cache_entries,
            jwks_age,
            revocation_age,
            refresh_failures,
            fail_open,
            step_up_starts,
            reloads,
            webhooks,
            client_errors,
            cache_lookups,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Metrics {
    /// Counts one decision in `proofgate_decisions_total{route, decision, reason}`.
    pub fn count_decision(&self, route: &str, decision: &'static str, reason: &'static str) {
        if let Some(c) = self
            .decision_counters
            .load()
            .get(route)
            .and_then(|by_kind| by_kind.get(&(decision, reason)))
        {
            c.inc();
            return;
        }
        let c = self.decisions.with_label_values(&[route, decision, reason]);
        c.inc();
        self.decision_counters.rcu(|current| {
            let mut next = DecisionCounters::clone(current);
            next.entry(route.to_owned())
                .or_default()
                .insert((decision, reason), c.clone());
            next
        });
    }

    /// Observes the time one decision of `kind` ([`proofgate_core::Decision::kind`]) took.
    pub fn observe_decision(&self, kind: &'static str, seconds: f64) {
        match kind {
            "allow" => self.decision_timers[0].observe(seconds),
            "deny" => self.decision_timers[1].observe(seconds),
            "step_up" => self.decision_timers[2].observe(seconds),
            other => self
                .decision_seconds
                .with_label_values(&[other])
                .observe(seconds),
        }
    }

    /// Brings `proofgate_cache_lookups_total` up to the verifier's own totals.
    pub fn sync_cache_lookups(&self, hits: u64, misses: u64) {
        for (label, total) in [("hit", hits), ("miss", misses)] {
            let c = self.cache_lookups.with_label_values(&[label]);
            let seen = c.get();
            if total > seen {
                c.inc_by(total - seen);
            }
        }
    }
}

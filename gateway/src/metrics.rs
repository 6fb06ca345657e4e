//! Prometheus metrics, registered once per gateway.
//!
//! Names follow Prometheus' conventions: counters end in `_total`, durations and ages are in
//! seconds and say so. Every labelled counter whose label values are known in advance is
//! created at 0 (reload results, step-up outcomes, the decisions each route's policy can
//! reach, each upstream's error kinds), so that `rate()`, `increase()` and alerts see the
//! first event, not only the second.

use std::collections::HashMap;

use arc_swap::ArcSwap;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};
use proofgate_core::policy::{OnFailure, Policy, Rule};
use proofgate_core::reason::{Family, Reason};
use proofgate_core::routes::RouteTable;

/// The results of `proofgate_config_reloads_total`.
pub const RELOAD_RESULTS: [&str; 2] = ["ok", "rejected"];

/// The outcomes of `proofgate_step_up_starts_total` (the core's `StepUpAnswer::outcome` for a
/// start).
pub const STEP_UP_START_OUTCOMES: [&str; 4] = ["started", "rate_limited", "refused", "failed"];

/// The outcomes of `proofgate_step_up_callbacks_total`.
pub const STEP_UP_CALLBACK_OUTCOMES: [&str; 4] = ["completed", "policy_unmet", "refused", "failed"];

/// The outcomes of `proofgate_webhooks_total`.
pub const WEBHOOK_OUTCOMES: [&str; 3] = ["applied", "duplicate", "refused"];

/// The kinds of `proofgate_upstream_errors_total`: `connect_failed` (refused, unreachable,
/// TLS handshake: 502), `connect_timeout` (504), `read_timeout` (the upstream took longer than
/// its `read_timeout` to answer: 504), `write_timeout` (504), `no_healthy_backend` (every
/// address failed its health check: 502), `response_failed` (the connection broke or the
/// answer was not HTTP: 502).
pub const UPSTREAM_ERROR_KINDS: [&str; 6] = [
    "connect_failed",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "no_healthy_backend",
    "response_failed",
];

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
    /// `proofgate_fail_open_total`: decisions allowed only because fail mode is open. A
    /// counter, brought up to the revocation store's own total at each scrape
    /// ([`Metrics::sync_fail_open`]); it was exported as a gauge before.
    pub fail_open: IntCounter,
    /// `proofgate_step_up_starts_total{outcome}`: `started`, `rate_limited`, `failed`, …
    pub step_up_starts: IntCounterVec,
    /// `proofgate_step_up_callbacks_total{outcome}`: how the returns from the hosted
    /// verification went.
    pub step_up_callbacks: IntCounterVec,
    /// `proofgate_config_reloads_total{result}`: `ok` or `rejected`.
    pub reloads: IntCounterVec,
    /// `proofgate_config_restart_required`: 1 while the configuration file holds a change that
    /// only a restart applies (the log line of the reload and `/readyz` name the settings).
    pub restart_required: IntGauge,
    /// `proofgate_upstream_errors_total{upstream, kind}`: requests that got no answer from
    /// their upstream (502/504), by [`UPSTREAM_ERROR_KINDS`].
    pub upstream_errors: IntCounterVec,
    /// `proofgate_webhooks_total{outcome}`: requests to the webhook endpoint, `applied`,
    /// `duplicate` or `refused`.
    pub webhooks: IntCounterVec,
    /// `proofgate_client_errors_total`: requests whose body the client sent malformed (a bad
    /// chunk, …) or too slowly, answered 400/408 without reaching the upstream's answer.
    pub client_errors: IntCounter,
    /// `proofgate_cache_lookups_total{result}`: verified-token cache lookups, `hit` or `miss`
    /// (a miss costs a signature check). Brought up to date at each scrape.
    pub cache_lookups: IntCounterVec,
    /// `proofgate_approvals_total{outcome}`: human approvals, by
    /// [`proofgate_core::approval::OUTCOMES`] (`created`, `approved`, `denied`, `expired`,
    /// `used`, `replay_refused`, …). Brought up to the core's own totals at each scrape.
    pub approvals: IntCounterVec,
    /// `proofgate_approval_status_total{outcome}`: requests to the approval status endpoint,
    /// by what they were answered (`pending`, `approved`, `denied`, `expired`, `refused`,
    /// `failed`).
    pub approval_status: IntCounterVec,
    /// The children of `decisions` already used. `with_label_values` hashes the labels and takes
    /// the vector's lock on every call; the request path reads this instead (lock-free) and
    /// only a combination never seen before goes through the vector.
    decision_counters: ArcSwap<DecisionCounters>,
    /// `decision_seconds` for `allow`, `deny` and `step_up`.
    decision_timers: [Histogram; 3],
    /// The `proofgate_cluster_*` metrics, registered with `[cluster]` only
    /// ([`Metrics::init_cluster`]).
    cluster: std::sync::OnceLock<ClusterMetrics>,
}

/// The metrics of the shared store (`[cluster]`).
struct ClusterMetrics {
    /// `proofgate_cluster_connected`: 1 while the shared store answers, 0 while this replica
    /// decides alone.
    connected: IntGauge,
    /// `proofgate_cluster_fallback_total{what}`: decisions taken locally because the store
    /// could not be asked: `budget` (a step-up start), `once` (a single-use claim: a step-up
    /// state's completion, an approval ticket), `publish` (a webhook event queued for later).
    fallback: IntCounterVec,
    /// `proofgate_cluster_events_total{direction}`: webhook events `published` to the other
    /// replicas, `received` from them, `dropped` from a full queue.
    events: IntCounterVec,
    /// `proofgate_cluster_publish_queue`: events waiting for the store to come back.
    queued: IntGauge,
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
        let fail_open = IntCounter::new(
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
        let step_up_callbacks = IntCounterVec::new(
            Opts::new(
                "proofgate_step_up_callbacks_total",
                "Step-up callbacks (returns from the hosted verification) by outcome.",
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
        let restart_required = IntGauge::new(
            "proofgate_config_restart_required",
            "1 while the configuration file holds a change that only a restart applies.",
        )
        .expect("metric");
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "proofgate_upstream_errors_total",
                "Requests that got no answer from their upstream (502/504), by upstream and kind.",
            ),
            &["upstream", "kind"],
        )
        .expect("metric");
        let webhooks = IntCounterVec::new(
            Opts::new(
                "proofgate_webhooks_total",
                "Webhooks received, by outcome (applied, duplicate, refused).",
            ),
            &["outcome"],
        )
        .expect("metric");
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "proofgate_cache_lookups_total",
                "Verified-token cache lookups by result (hit, miss).",
            ),
            &["result"],
        )
        .expect("metric");
        let approvals = IntCounterVec::new(
            Opts::new(
                "proofgate_approvals_total",
                "Human approvals by outcome (created, approved, denied, expired, used, \
                 replay_refused, ticket_refused, unavailable, rate_limited).",
            ),
            &["outcome"],
        )
        .expect("metric");
        for outcome in proofgate_core::approval::OUTCOMES {
            approvals.with_label_values(&[outcome]);
        }
        let approval_status = IntCounterVec::new(
            Opts::new(
                "proofgate_approval_status_total",
                "Requests to the approval status endpoint, by answer.",
            ),
            &["outcome"],
        )
        .expect("metric");
        for outcome in [
            "pending", "approved", "denied", "expired", "refused", "failed",
        ] {
            approval_status.with_label_values(&[outcome]);
        }
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
            Box::new(step_up_callbacks.clone()),
            Box::new(reloads.clone()),
            Box::new(restart_required.clone()),
            Box::new(upstream_errors.clone()),
            Box::new(webhooks.clone()),
            Box::new(approvals.clone()),
            Box::new(approval_status.clone()),
            Box::new(cache_lookups.clone()),
        ] {
            registry.register(c).expect("register metric");
        }
        let decision_timers =
            ["allow", "deny", "step_up"].map(|k| decision_seconds.with_label_values(&[k]));
        for result in RELOAD_RESULTS {
            reloads.with_label_values(&[result]);
        }
        for outcome in STEP_UP_START_OUTCOMES {
            step_up_starts.with_label_values(&[outcome]);
        }
        for outcome in STEP_UP_CALLBACK_OUTCOMES {
            step_up_callbacks.with_label_values(&[outcome]);
        }
        for outcome in WEBHOOK_OUTCOMES {
            webhooks.with_label_values(&[outcome]);
        }
        for result in ["hit", "miss"] {
            cache_lookups.with_label_values(&[result]);
        }
        for source in ["jwks", "revocation"] {
            refresh_failures.with_label_values(&[source]);
        }
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
            step_up_callbacks,
            reloads,
            restart_required,
            upstream_errors,
            webhooks,
            client_errors,
            cache_lookups,
            cluster: std::sync::OnceLock::new(),
            approvals,
            approval_status,
        }
    }

    /// Registers the `proofgate_cluster_*` metrics (with `[cluster]`), every series at 0.
    pub fn init_cluster(&self) {
        self.cluster.get_or_init(|| {
            let connected = IntGauge::new(
                "proofgate_cluster_connected",
                "1 while the shared store ([cluster]) answers, 0 while this replica decides alone.",
            )
            .expect("metric");
            let fallback = IntCounterVec::new(
                Opts::new(
                    "proofgate_cluster_fallback_total",
                    "Decisions taken locally because the shared store could not be asked, by what (budget, once, publish).",
                ),
                &["what"],
            )
            .expect("metric");
            let events = IntCounterVec::new(
                Opts::new(
                    "proofgate_cluster_events_total",
                    "Webhook events published to the other replicas, received from them, or dropped from a full queue.",
                ),
                &["direction"],
            )
            .expect("metric");
            let queued = IntGauge::new(
                "proofgate_cluster_publish_queue",
                "Webhook events waiting for the shared store to come back.",
            )
            .expect("metric");
            for what in proofgate_core::cluster::FALLBACKS {
                fallback.with_label_values(&[what]);
            }
            for direction in ["published", "received", "dropped"] {
                events.with_label_values(&[direction]);
            }
            for c in [
                Box::new(connected.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(fallback.clone()),
                Box::new(events.clone()),
                Box::new(queued.clone()),
            ] {
                self.registry.register(c).expect("register metric");
            }
            ClusterMetrics {
                connected,
                fallback,
                events,
                queued,
            }
        });
    }

    /// Brings the `proofgate_cluster_*` metrics up to the store's own counts.
    pub fn sync_cluster(&self, cluster: &proofgate_core::cluster::Cluster) {
        let Some(m) = self.cluster.get() else { return };
        m.connected.set(i64::from(cluster.is_connected()));
        m.queued.set(cluster.queued() as i64);
        let totals = cluster.fallbacks().into_iter().chain([
            ("published", cluster.published()),
            ("received", cluster.received()),
            ("dropped", cluster.dropped()),
        ]);
        for (label, total) in totals {
            let c = match label {
                "published" | "received" | "dropped" => m.events.with_label_values(&[label]),
                what => m.fallback.with_label_values(&[what]),
            };
            let seen = c.get();
            if total > seen {
                c.inc_by(total - seen);
            }
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

    /// Creates, at 0, the series of `proofgate_decisions_total` that `routes` can reach: for
    /// each route (and the default) the decisions its policy can make, and the refusals before
    /// routing. Called at start and on each reload; series of routes since removed stay.
    pub fn init_decisions(&self, routes: &RouteTable) {
        use proofgate_core::gate::NO_ROUTE;
        use proofgate_core::routes::DEFAULT_ROUTE_NAME;
        let named = routes.routes().iter().map(|r| (r.name.as_str(), &r.policy));
        let default = std::iter::once((DEFAULT_ROUTE_NAME, routes.default_policy()));
        for (route, policy) in named.chain(default) {
            for (decision, reason) in reachable_decisions(policy) {
                self.decisions.with_label_values(&[route, decision, reason]);
            }
        }
        // `untrusted_proxy`: a forward-auth check from an address not in `trusted_proxies`.
        for reason in [
            "invalid_path",
            "invalid_host",
            "invalid_request",
            "untrusted_proxy",
        ] {
            self.decisions
                .with_label_values(&[NO_ROUTE, "deny", reason]);
        }
    }

    /// Creates, at 0, `proofgate_upstream_errors_total` for each of `upstreams` and each kind.
    pub fn init_upstreams<'a>(&self, upstreams: impl IntoIterator<Item = &'a str>) {
        for upstream in upstreams {
            for kind in UPSTREAM_ERROR_KINDS {
                self.upstream_errors.with_label_values(&[upstream, kind]);
            }
        }
    }

    /// Brings `proofgate_fail_open_total` up to the revocation store's own total.
    pub fn sync_fail_open(&self, total: u64) {
        let seen = self.fail_open.get();
        if total > seen {
            self.fail_open.inc_by(total - seen);
        }
    }

    /// Brings `proofgate_approvals_total` up to the core's own totals (per outcome).
    pub fn sync_approvals(&self, totals: &[(&str, u64)]) {
        for (label, total) in totals {
            let c = self.approvals.with_label_values(&[label]);
            let seen = c.get();
            if *total > seen {
                c.inc_by(total - seen);
            }
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

/// The `(decision, reason)` pairs a policy can produce (as the core's enforcer decides):
/// public and optional policies only allow; a deny policy only denies (`route_denied`); a
/// policy with requirements allows, or refuses for any other reason — with a step-up when its
/// `on_failure` says so and the reason is not "cannot check now", else with a denial.
fn reachable_decisions(policy: &Policy) -> Vec<(&'static str, &'static str)> {
    let mut pairs = policy_decisions(policy);
    // A policy with an approval: held (202), refused for an approval reason, or forwarded.
    if policy.approval.is_some() {
        for r in Reason::ALL.iter().filter(|r| r.is_approval()) {
            let decision = match r {
                Reason::ApprovalRequired | Reason::ApprovalPending => "approval",
                _ => "deny",
            };
            pairs.push((decision, r.as_str()));
        }
    }
    pairs
}

fn policy_decisions(policy: &Policy) -> Vec<(&'static str, &'static str)> {
    match &policy.rule {
        Rule::Public | Rule::Optional => vec![("allow", "")],
        Rule::Deny => vec![("deny", Reason::RouteDenied.as_str())],
        Rule::Require { .. } => std::iter::once(("allow", ""))
            .chain(
                Reason::ALL
                    .iter()
                    .filter(|r| **r != Reason::RouteDenied && !r.is_approval())
                    .map(|r| {
                        let deny = r.family() == Family::Unavailable
                            || policy.on_failure == OnFailure::Deny
                            || r.is_delegation();
                        (if deny { "deny" } else { "step_up" }, r.as_str())
                    }),
            )
            .collect(),
    }
}

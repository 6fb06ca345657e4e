//! The Grafana dashboard (`deploy/grafana/proofgate.json`) queries only what a real gateway
//! exports: every metric name, every label it groups by or matches on, and every label value it
//! compares with, checked against the `/metrics` of a gateway that has served traffic. And the
//! other way round: every metric the gateway exports has a panel.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{stack, Options};

const DASHBOARD: &str = include_str!("../../deploy/grafana/proofgate.json");

/// Labels Prometheus adds to every scraped series (the ServiceMonitor's target labels).
const TARGET_LABELS: &[&str] = &[
    "job",
    "instance",
    "pod",
    "namespace",
    "service",
    "endpoint",
    "container",
];

/// Sample name → label name → values seen, from a text exposition.
fn parse_exposition(text: &str) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut samples: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = samples.entry(line[..end].to_string()).or_default();
        if line[end..].starts_with('{') {
            let body = &line[end + 1..line.rfind('}').expect("closing brace")];
            for (k, v) in parse_label_pairs(body) {
                labels.entry(k).or_default().insert(v);
            }
        }
    }
    samples
}

/// `a="x",b="y"` (values may hold escaped quotes) → pairs.
fn parse_label_pairs(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        assert!(after.starts_with('"'), "label value of {key} not quoted");
        let mut value = String::new();
        let mut chars = after[1..].char_indices();
        let mut consumed = 0;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '"' => {
                    consumed = i + 2;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key, value));
        rest = &after[consumed..];
    }
    out
}

/// Every `expr` in the dashboard, with the title of its panel.
fn queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(v: &serde_json::Value, title: &str, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                let title = m.get("title").and_then(|t| t.as_str()).unwrap_or(title);
                if let Some(e) = m.get("expr").and_then(|e| e.as_str()) {
                    out.push((title.to_string(), e.to_string()));
                }
                for v in m.values() {
                    walk(v, title, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, title, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], "", &mut out);
    out
}

/// A label matcher of a PromQL selector: label, operator (`=`, `!=`, `=~`, `!~`), value.
type Matcher = (String, String, String);

/// The metric names a PromQL expression selects, each with its `{…}` matchers (if any).
fn selectors(expr: &str) -> Vec<(String, Vec<Matcher>)> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = expr[i..].find("proofgate_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = expr[start..end].to_string();
        let mut matchers = Vec::new();
        if bytes.get(end) == Some(&b'{') {
            let close = end + expr[end..].find('}').expect("closing brace");
            for m in expr[end + 1..close].split(',') {
                let m = m.trim();
                let op_at = m.find(['=', '!']).expect("a matcher operator");
                let op_end = op_at + m[op_at..].find('"').expect("a quoted value");
                let (label, op) = (m[..op_at].trim(), m[op_at..op_end].trim());
                let value = m[op_end..].trim().trim_matches('"');
                matchers.push((label.to_string(), op.to_string(), value.to_string()));
            }
            end = close + 1;
        }
        out.push((name, matchers));
        i = end;
    }
    out
}

/// The labels named in `by (…)` / `without (…)` clauses.
fn grouping_labels(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for keyword in ["by (", "by(", "without (", "without("] {
        let mut rest = expr;
        while let Some(at) = rest.find(keyword) {
            let after = &rest[at + keyword.len()..];
            let close = after.find(')').expect("closing parenthesis");
            out.extend(
                after[..close]
                    .split(',')
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty()),
            );
            rest = &after[close..];
        }
    }
    out
}

#[test]
fn dashboard_is_well_formed() {
    let d: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    assert_eq!(d["uid"], "proofgate-overview");
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id {}",
            p["id"]
        );
        let grid = &p["gridPos"];
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "{} overflows the grid",
            p["title"]
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
        for t in targets {
            assert!(
                t["expr"].as_str().unwrap().contains("proofgate_"),
                "{}",
                p["title"]
            );
        }
        assert!(
            p["description"].as_str().is_some_and(|s| !s.is_empty()),
            "{} has no description",
            p["title"]
        );
    }
    // The issue's list: decisions by reason, decision latency, cache, key and revocation age,
    // refresh failures, step-ups.
    let all: String = queries(&d).into_iter().map(|(_, e)| e + "\n").collect();
    for needle in [
        "by (decision, reason)",
        "proofgate_decision_seconds_bucket",
        "proofgate_cache_entries",
        "proofgate_jwks_age_seconds",
        "proofgate_revocation_age_seconds",
        "proofgate_refresh_failures",
        "proofgate_step_up_starts_total",
    ] {
        assert!(all.contains(needle), "no panel queries {needle}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exported() {
    let s = stack(Options::default()).await;
    // Traffic that makes every labelled series appear: each decision kind, a step-up start, a
    // webhook and a configuration reload.
    let _ = s.http.get(s.url("/admin")).send().await.unwrap(); // step_up, missing
    let _ = s.http.get(s.url("/nowhere")).send().await.unwrap(); // deny, route_denied
    let (phone, _) = s.token("phone", "sms", "+447700900123").await;
    assert_eq!(s.get_bearer("/payouts/x", &phone).await.status(), 200); // allow
    let r = s
        .http
        .get(s.url("/.proofgate/start?policy=staff&return_to=%2Fadmin"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = s
        .http
        .post(s.url("/.proofgate/webhook"))
        .body("{}")
        .send()
        .await
        .unwrap();
    let gateway = s.gateway.as_ref().unwrap().gateway.clone();
    assert!(proofgate::reload::reload(&s.config_path, &gateway));

    let text = s.metrics().await;
    let exported = parse_exposition(&text);
    let families: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect();
    assert!(families.len() >= 10, "{text}");

    let d: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let mut problems = Vec::new();
    let mut queried = BTreeSet::new();
    for (title, expr) in queries(&d) {
        let sel = selectors(&expr);
        let mut labels_here: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
        labels_here.insert("le");
        for (name, matchers) in &sel {
            let Some(labels) = exported.get(name) else {
                problems.push(format!("{title}: {name} is not exported"));
                continue;
            };
            queried.insert(name.clone());
            labels_here.extend(labels.keys().map(String::as_str));
            for (label, op, value) in matchers {
                if TARGET_LABELS.contains(&label.as_str()) {
                    continue;
                }
                match labels.get(label) {
                    None => problems.push(format!("{title}: {name} has no label {label}")),
                    Some(values) if (op == "=" || op == "!=") && !values.contains(value) => {
                        problems.push(format!(
                            "{title}: {name}{{{label}{op}\"{value}\"}}: {value} never exported ({values:?})"
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        for label in grouping_labels(&expr) {
            if !labels_here.contains(label.as_str()) {
                problems.push(format!(
                    "{title}: groups by {label}, which no queried metric has"
                ));
            }
        }
    }
    // Every exported family has a panel (a histogram through any of its series).
    for family in &families {
        let covered = queried.iter().any(|q| {
            q == family
                || q.strip_prefix(family.as_str())
                    .is_some_and(|rest| ["_bucket", "_sum", "_count"].contains(&rest))
        });
        if !covered {
            problems.push(format!("{family} is exported but no panel shows it"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}\n\n{text}");
    s.shutdown().await;
}

#[test]
fn promql_helpers() {
    let e = r#"sum by (decision, reason) (rate(proofgate_decisions_total{job=~"$job", decision!="allow"}[5m])) / proofgate_x"#;
    let sel = selectors(e);
    assert_eq!(sel[0].0, "proofgate_decisions_total");
    assert_eq!(
        sel[0].1,
        vec![
            ("job".into(), "=~".into(), "$job".into()),
            ("decision".into(), "!=".into(), "allow".into())
        ]
    );
    assert_eq!(sel[1].0, "proofgate_x");
    assert_eq!(grouping_labels(e), vec!["decision", "reason"]);
    let m = parse_exposition("# TYPE a counter\na{x=\"1\",y=\"q\\\"z\"} 2\nb 3\n");
    assert_eq!(m["a"]["y"].iter().next().unwrap(), "q\"z");
    assert!(m.contains_key("b"));
}

//! The Grafana dashboard (`manifests/grafana/hearth.json`): valid JSON, every panel queries
//! something, and every PromQL expression (and templating query) names only metrics hearth
//! exports, as registered by `hearth::report::metrics`.

mod report_promql;

use std::path::Path;

fn dashboard() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/grafana/hearth.json");
    let text = std::fs::read_to_string(&p).expect("read dashboard");
    serde_json::from_str(&text).expect("dashboard is JSON")
}

/// Every `expr` anywhere in the document.
fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

#[test]
fn dashboard_queries_only_exported_metrics() {
    let d = dashboard();
    let known = report_promql::exported_series_names();
    let mut all = Vec::new();
    exprs(&d, &mut all);
    assert!(all.len() >= 15, "only {} expressions", all.len());
    let mut used = std::collections::BTreeSet::new();
    for e in &all {
        let names = report_promql::metric_names(e);
        assert!(!names.is_empty(), "{e:?} names no metric");
        for m in names {
            assert!(known.contains(&m), "{e:?}: {m} is not exported by hearth");
            used.insert(m);
        }
    }
    // Templating: label_values(<metric>, <label>).
    for v in d["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["query"]["query"].as_str().or(v["query"].as_str())
            && let Some(rest) = q.strip_prefix("label_values(")
            && let Some((metric, _)) = rest.split_once(',')
        {
            assert!(known.contains(metric.trim()), "templating {q:?}");
        }
    }
    // The dashboard shows the headline metrics.
    for m in [
        "hearth_deployment_phase",
        "hearth_deployment_wedged",
        "hearth_reconcile_total",
        "hearth_reconcile_duration_seconds_bucket",
        "hearth_docker_requests_total",
    ] {
        assert!(used.contains(m), "the dashboard does not show {m}");
    }
}

#[test]
fn every_panel_has_a_query_and_a_unique_id() {
    let d = dashboard();
    let panels = d["panels"].as_array().expect("panels");
    let mut ids = std::collections::BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_i64().expect("id")), "duplicate id");
        let t = p["targets"].as_array().expect("targets");
        assert!(!t.is_empty(), "panel {} has no query", p["title"]);
    }
}

//! The alert rules: `promtool check rules` and `promtool test rules` (a unit test for every alert)
//! pass; every alert has a runbook page that exists and a severity; the rules query only metrics
//! hearth exports (and `up`); the committed rule files are `hearth rules`' output (one source).

mod report_promql;

use std::path::Path;
use std::process::Command;

const RULES: &str = "manifests/prometheus/hearth-rules.yaml";
const RULE_TESTS: &str = "manifests/prometheus/hearth-rules.test.yaml";

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool: {e}; it comes from Debian's prometheus package: run scripts/swarm-up")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

fn rules() -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(RULES))
        .expect("read rules");
    serde_saphyr::from_str(&text).expect("rules are YAML")
}

fn alerts(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter(|r| r.get("alert").is_some())
        .collect()
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let check = promtool(&["check", "rules", RULES]);
    assert!(check.contains("SUCCESS"), "{check}");
    let test = promtool(&["test", "rules", RULE_TESTS]);
    assert!(test.contains("SUCCESS"), "{test}");
}

#[test]
fn every_alert_has_a_unit_test_a_runbook_and_a_severity() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests_text = std::fs::read_to_string(root.join(RULE_TESTS)).expect("read rule tests");
    let tests: serde_json::Value = serde_saphyr::from_str(&tests_text).expect("YAML");
    let tested: Vec<String> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().cloned().unwrap_or_default())
        // A test that expects the alert to fire, not only that it stays quiet.
        .filter(|a| a["exp_alerts"].as_array().is_some_and(|x| !x.is_empty()))
        .filter_map(|a| a["alertname"].as_str().map(str::to_string))
        .collect();
    let all = alerts(&rules());
    assert!(all.len() >= 9, "{} alerts", all.len());
    for a in &all {
        let name = a["alert"].as_str().expect("alert name");
        assert!(
            tested.iter().any(|t| t == name),
            "{name} has no firing unit test"
        );
        let url = a["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no runbook_url"));
        // Absolute, under the default base; the page is docs/runbooks/<alert>.md here.
        let base = hearth::report::rules::DEFAULT_RUNBOOK_BASE_URL;
        assert_eq!(url, format!("{base}/{name}.md"));
        let url = format!("docs/runbooks/{name}.md");
        let page = std::fs::read_to_string(root.join(&url))
            .unwrap_or_else(|e| panic!("{name}: runbook {url}: {e}"));
        for section in ["## What it means", "## What to check", "## What to do"] {
            assert!(page.contains(section), "{url} lacks {section:?}");
        }
        assert!(page.contains("hearth "), "{url} names no hearth command");
        let sev = a["labels"]["severity"].as_str().unwrap_or_default();
        assert!(matches!(sev, "warning" | "critical"), "{name}: {sev:?}");
    }
    for required in [
        "HearthDeploymentWedged",
        "HearthDeploymentDrifted",
        "HearthDeploymentConflict",
        "HearthAdvanceFailed",
        "HearthDeploymentNotReady",
        "HearthReconcileErrors",
        "HearthDockerUnreachable",
        "HearthManifestSourceStale",
        "HearthManifestInvalid",
        "HearthAbsent",
    ] {
        assert!(all.iter().any(|a| a["alert"] == required), "{required}");
    }
}

#[test]
fn rules_query_only_hearth_metrics() {
    let known = report_promql::exported_series_names();
    for a in alerts(&rules()) {
        let expr = a["expr"].as_str().expect("expr");
        for m in report_promql::metric_names(expr) {
            assert!(
                m == "up" || known.contains(&m),
                "{}: {m} is not exported by hearth",
                a["alert"]
            );
        }
    }
}

/// manifests/prometheus/ and the chart hold exactly what `hearth rules` prints with the default
/// runbook base; another base changes only the links.
#[test]
fn committed_rules_are_the_generated_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("rules")
        .env_remove("HEARTH_RUNBOOK_BASE_URL")
        .output()
        .expect("run hearth rules");
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf8");
    for f in [RULES, "charts/hearth/files/hearth-rules.yaml"] {
        let committed = std::fs::read_to_string(root.join(f)).expect("read rules");
        assert!(
            committed == generated,
            "{f} is stale: run `hearth rules > {f}` (edit src/report/hearth-rules.yaml.in)"
        );
    }
    let other = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["rules", "--runbook-base-url", "https://wiki.example/rb/"])
        .output()
        .expect("run hearth rules");
    let other = String::from_utf8(other.stdout).expect("utf8");
    assert!(other.contains("runbook_url: https://wiki.example/rb/HearthDeploymentWedged.md"));
    assert_eq!(other.lines().count(), generated.lines().count());
}

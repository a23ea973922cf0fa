//! What can be checked of `charts/hearth/` without a `helm` binary: the non-template files are valid
//! YAML with the fields Helm needs; the alert rules are `manifests/prometheus/hearth-rules.yaml` byte
//! for byte; every `.Values.x.y` a template uses is declared in values.yaml, and every value there is
//! documented by a comment; templates have balanced actions and blocks, use only defined helpers, and
//! are YAML of the expected kind once their actions are blanked out. Rendering with real values is NOT
//! checked here (see charts/hearth/README.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/hearth")
}

fn read(rel: &str) -> String {
    let p = chart().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn yaml(text: &str, what: &str) -> Value {
    serde_saphyr::from_str::<Value>(text).unwrap_or_else(|e| panic!("{what}: not YAML: {e}"))
}

/// The templates: (file name, text), `.yaml` files only (helpers and NOTES are not manifests).
fn templates() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(chart().join("templates"))
        .expect("templates dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| {
            let text = read(&format!("templates/{n}"));
            (n, text)
        })
        .collect();
    out.sort();
    out
}

/// Every file under templates/ (including helpers and NOTES.txt).
fn all_template_files() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(chart().join("templates"))
        .expect("templates dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .map(|n| {
            let text = read(&format!("templates/{n}"));
            (n, text)
        })
        .collect();
    out.sort();
    out
}

/// The `{{ ... }}` actions of a template, trimmed of `-` markers and spaces.
fn actions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            panic!(
                "unclosed action near {:?}",
                &rest[i..rest.len().min(i + 40)]
            );
        };
        out.push(
            after[..j]
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim()
                .to_string(),
        );
        rest = &after[j + 2..];
    }
    out
}

/// `.Values.a.b.c` paths used in `text`.
fn value_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(".Values.") {
        let tail = &rest[i + ".Values.".len()..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].trim_end_matches('.').to_string());
        rest = &tail[end..];
    }
    out
}

/// values.yaml's keys as dotted paths, each with whether a comment documents it (a comment line
/// right above at the same indentation, or a trailing comment).
fn documented_keys(text: &str) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut prev_comment_indent: Option<usize> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() {
            prev_comment_indent = None;
            continue;
        }
        if trimmed.starts_with('#') {
            // A comment block: remember its indentation (the first line of the block wins).
            if prev_comment_indent.is_none() {
                prev_comment_indent = Some(indent);
            }
            continue;
        }
        if trimmed.starts_with('-') {
            prev_comment_indent = None;
            continue;
        }
        let Some(colon) = trimmed.find(':') else {
            prev_comment_indent = None;
            continue;
        };
        let key = &trimmed[..colon];
        if !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            prev_comment_indent = None;
            continue;
        }
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path = stack
            .iter()
            .map(|(_, k)| k.as_str())
            .chain([key])
            .collect::<Vec<_>>()
            .join(".");
        let trailing = trimmed[colon..].contains(" # ");
        out.insert(path, trailing || prev_comment_indent == Some(indent));
        stack.push((indent, key.to_string()));
        prev_comment_indent = None;
    }
    out
}

/// A template with its actions blanked: action-only lines dropped, inline actions replaced by a
/// placeholder scalar. What is left must be YAML of the template's shape.
fn blanked(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("{{") && t.ends_with("}}") && actions(t).len() == 1 && t.len() > 4 {
            // An action alone on its line: control flow or an `nindent` include.
            let inner = &t[2..t.len() - 2];
            if !inner.contains("{{") {
                continue;
            }
        }
        let mut l = String::new();
        let mut rest = line;
        while let Some(i) = rest.find("{{") {
            l.push_str(&rest[..i]);
            let j = rest[i..].find("}}").expect("closed") + i;
            l.push('X');
            rest = &rest[j + 2..];
        }
        l.push_str(rest);
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn chart_metadata_and_values_are_yaml() {
    let c = yaml(&read("Chart.yaml"), "Chart.yaml");
    assert_eq!(c["apiVersion"], "v2", "Helm 3 chart");
    assert_eq!(c["name"], "hearth");
    for k in ["version", "appVersion", "description"] {
        assert!(c[k].is_string(), "Chart.yaml: {k}");
    }
    let cargo = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("Cargo.toml");
    let version = format!("version = \"{}\"", c["appVersion"].as_str().unwrap_or(""));
    assert!(
        cargo.contains(&version),
        "appVersion is hearth's crate version"
    );
    let v = yaml(&read("values.yaml"), "values.yaml");
    assert!(v["docker"]["host"].is_string());
    yaml(&read("files/hearth-rules.yaml"), "files/hearth-rules.yaml");
}

#[test]
fn rules_are_the_prometheus_manifest_byte_for_byte() {
    let ours = std::fs::read(chart().join("files/hearth-rules.yaml")).expect("chart rules");
    let theirs = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/prometheus/hearth-rules.yaml"),
    )
    .expect("manifest rules");
    assert!(
        ours == theirs,
        "charts/hearth/files/hearth-rules.yaml differs from manifests/prometheus/hearth-rules.yaml: \
         cp manifests/prometheus/hearth-rules.yaml charts/hearth/files/"
    );
    let rule = read("templates/prometheusrule.yaml");
    assert!(rule.contains(".Files.Get \"files/hearth-rules.yaml\""));
    assert!(
        !rule.contains("tpl "),
        "the rules' {{ $labels }} must not be templated"
    );
}

#[test]
fn every_value_used_is_declared_and_every_value_documented() {
    let keys = documented_keys(&read("values.yaml"));
    let undocumented: Vec<_> = keys.iter().filter(|(_, d)| !**d).map(|(k, _)| k).collect();
    assert!(
        undocumented.is_empty(),
        "values without a comment: {undocumented:?}"
    );
    let mut used = BTreeSet::new();
    for (name, text) in all_template_files() {
        for r in value_refs(&text) {
            assert!(
                keys.contains_key(&r),
                "templates/{name} uses .Values.{r}, not in values.yaml"
            );
            used.insert(r);
        }
    }
    // And nothing in values.yaml is dead: each leaf or its parent is used somewhere.
    let unused: Vec<_> = keys
        .keys()
        .filter(|k| {
            !used.iter().any(|u| {
                u == *k || k.starts_with(&format!("{u}.")) || u.starts_with(&format!("{k}."))
            })
        })
        .collect();
    assert!(unused.is_empty(), "values no template uses: {unused:?}");
}

#[test]
fn values_scanner_sees_paths_and_missing_comments() {
    let k = documented_keys("# a\na:\n  # b\n  b: 1\n  c: 2  # c\nd: 3\n");
    assert_eq!(k.get("a"), Some(&true));
    assert_eq!(k.get("a.b"), Some(&true));
    assert_eq!(k.get("a.c"), Some(&true));
    assert_eq!(k.get("d"), Some(&false));
    assert_eq!(
        value_refs("{{ .Values.a.b | quote }} {{ .Values.c }}"),
        BTreeSet::from(["a.b".to_string(), "c".to_string()])
    );
}

#[test]
fn templates_have_balanced_blocks_and_known_helpers() {
    let helpers = read("templates/_helpers.tpl");
    let defined: BTreeSet<String> = actions(&helpers)
        .iter()
        .filter_map(|a| a.strip_prefix("define "))
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect();
    for (name, text) in all_template_files() {
        let mut depth: i32 = 0;
        for a in actions(&text) {
            if a.starts_with("/*") {
                continue;
            }
            let word = a.split_whitespace().next().unwrap_or("");
            match word {
                "if" | "range" | "with" | "define" | "block" => depth += 1,
                "end" => depth -= 1,
                _ => {}
            }
            assert!(depth >= 0, "templates/{name}: `end` without a block");
            let mut rest = a.as_str();
            while let Some(i) = rest.find("include \"") {
                let tail = &rest[i + 9..];
                let j = tail.find('"').expect("closing quote");
                assert!(
                    defined.contains(&tail[..j]),
                    "templates/{name}: include of undefined {:?}",
                    &tail[..j]
                );
                rest = &tail[j..];
            }
        }
        assert_eq!(depth, 0, "templates/{name}: unclosed block");
    }
}

#[test]
fn templates_are_yaml_of_the_expected_kinds() {
    let expected = BTreeMap::from([
        ("configmap.yaml", ("v1", "ConfigMap")),
        ("deployment.yaml", ("apps/v1", "Deployment")),
        ("pvc.yaml", ("v1", "PersistentVolumeClaim")),
        ("secret.yaml", ("v1", "Secret")),
        ("service.yaml", ("v1", "Service")),
        (
            "servicemonitor.yaml",
            ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ),
        (
            "prometheusrule.yaml",
            ("monitoring.coreos.com/v1", "PrometheusRule"),
        ),
    ]);
    let found: BTreeSet<String> = templates().into_iter().map(|(n, _)| n).collect();
    let wanted: BTreeSet<String> = expected.keys().map(|s| s.to_string()).collect();
    assert_eq!(found, wanted, "template files");
    for (name, text) in templates() {
        let doc = yaml(
            &blanked(&text),
            &format!("templates/{name} (actions blanked)"),
        );
        let (api, kind) = expected[name.as_str()];
        assert_eq!(doc["apiVersion"], api, "{name}");
        assert_eq!(doc["kind"], kind, "{name}");
        assert!(doc["metadata"]["name"].is_string(), "{name}: metadata.name");
    }
}

#[test]
fn the_deployment_reaches_a_remote_daemon_over_tls() {
    let d = read("templates/deployment.yaml");
    for needle in [
        "name: DOCKER_HOST",
        "name: DOCKER_TLS_VERIFY",
        "name: DOCKER_CERT_PATH",
        "secretName: {{ required",
        "path: /healthz",
        "path: /readyz",
    ] {
        assert!(d.contains(needle), "deployment.yaml lacks {needle:?}");
    }
    let doc = yaml(&blanked(&d), "deployment");
    let c = &doc["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "hearth");
    assert_eq!(c["args"][0], "run");
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    assert!(mounts.contains(&"/var/lib/hearth/snapshots"), "{mounts:?}");
    assert!(mounts.contains(&"/var/lib/hearth/cache"), "{mounts:?}");
    // Off loopback in the pod: the API token from a Secret.
    assert!(mounts.contains(&"/etc/hearth/api-token"), "{mounts:?}");
    assert!(
        d.contains("name: HEARTH_API_TOKEN_FILE"),
        "no API token env"
    );
    assert_eq!(doc["spec"]["strategy"]["type"], "Recreate");
}

fn values_schema() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(&read("values.schema.json")).expect("values.schema.json is JSON");
    jsonschema::validator_for(&schema).expect("values.schema.json is a JSON Schema")
}

fn schema_errors(v: &jsonschema::Validator, values: &Value) -> Vec<String> {
    v.iter_errors(values)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn values_schema_accepts_values_yaml_and_rejects_bad_values() {
    let v = values_schema();
    let values = yaml(&read("values.yaml"), "values.yaml");
    let errors = schema_errors(&v, &values);
    assert!(
        errors.is_empty(),
        "values.yaml does not validate against values.schema.json:\n{}",
        errors.join("\n")
    );
    // Every top-level value is described by the schema (additionalProperties is false there).
    let props = serde_json::from_str::<Value>(&read("values.schema.json")).unwrap()["properties"]
        .as_object()
        .expect("properties")
        .clone();
    for k in values.as_object().expect("values").keys() {
        assert!(props.contains_key(k), "values.schema.json lacks {k}");
    }
    let bad = |path: &[&str], val: Value| {
        let mut b = values.clone();
        let mut cur = &mut b;
        for p in &path[..path.len() - 1] {
            cur = &mut cur[*p];
        }
        cur[path[path.len() - 1]] = val;
        let errors = schema_errors(&v, &b);
        assert!(!errors.is_empty(), "{path:?} should be rejected");
    };
    bad(&["manifests", "source"], Value::from("svn"));
    bad(&["replicaCount"], Value::from("two"));
    bad(&["controller", "resync"], Value::from("soon"));
    bad(&["controller", "port"], Value::from(70000));
    bad(&["docker", "tls", "verfiy"], Value::from(true));
    bad(
        &["podSecurityContext", "seccompProfile", "type"],
        Value::from("Default"),
    );
}

#[test]
fn the_pod_meets_the_restricted_pod_security_standard() {
    let d = read("templates/deployment.yaml");
    let doc = yaml(&blanked(&d), "deployment");
    let pod = &doc["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert!(d.contains("toYaml .Values.podSecurityContext"));
    assert!(d.contains("toYaml .Values.securityContext"));
    let values = yaml(&read("values.yaml"), "values.yaml");
    let psc = &values["podSecurityContext"];
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(psc["runAsNonRoot"], true);
    let sc = &values["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
}

#[test]
fn chart_says_where_it_comes_from() {
    let c = yaml(&read("Chart.yaml"), "Chart.yaml");
    let home = c["home"].as_str().expect("home");
    assert!(home.starts_with("https://"), "{home}");
    assert!(
        c["sources"][0]
            .as_str()
            .is_some_and(|s| s.starts_with("https://"))
    );
    assert!(c["maintainers"][0]["name"].is_string());
    // The comment about replicas speaks of the leader lease, not of a missing one.
    let values = read("values.yaml");
    assert!(values.contains("leader lease"));
    assert!(!values.contains("Keep 1 unless"));
}

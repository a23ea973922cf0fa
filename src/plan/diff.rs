//! Field-level comparison of a desired object with its live counterpart, in both directions.
//!
//! Both sides are compared as JSON (the Docker API's own field names). Objects are compared key by
//! key, recursively:
//! - a field the desired value sets must hold the same on the live side. A desired zero value
//!   (`false`, `0`, `""`, `[]`, `{}`) matches an absent live one, since Docker omits empty fields;
//!   any other absent or `null` live value differs from a desired one;
//! - a live field the desired value does not set is drift too (an out-of-band `--env-add`,
//!   `--label-add`, `scale`), unless it holds exactly what Docker itself fills in there (the list
//!   in [`super::defaults`], documented in docs/drift.md) or is empty (`null`, `{}`, `[]`: Docker
//!   treats an empty field as unset). A live field with a default is compared with that default,
//!   never skipped: live replicas 2 where Docker's default is 1 is drift.
//!
//! Arrays and scalars are one field each (an array of mounts or env entries is reported whole).
//! Inside an array, elements are compared in order; an element that is an object is compared on the
//! keys the desired element sets, and its other live keys must hold Docker's defaults (a port's
//! `Protocol: tcp`, a secret's resolved `SecretID`); an extra element is drift. A drift item names
//! the field and carries both values as JSON text: for a field only the live side has, `desired`
//! is Docker's default for it, or `null`.

use serde::Serialize;
use serde_json::Value;

use super::defaults;

/// One difference between desired and live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldDiff {
    /// Dotted path of the field in Docker's API names, e.g. `TaskTemplate.ContainerSpec.Env`.
    pub field: String,
    /// The desired value as JSON text (Docker's default, or `null`, when the desired spec does not
    /// set the field).
    pub desired: String,
    /// The live value as JSON text (`null` when absent).
    pub live: String,
}

/// Differences of `live` from `desired`, both ways, in a stable order (the desired spec's fields
/// first, then the live-only ones, each by name).
pub fn diff(desired: &Value, live: &Value) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    walk("", desired, live, &mut out);
    out
}

/// Like [`diff`] but skipping the fields whose dotted path `ignore` returns true for.
pub fn diff_ignoring(
    desired: &Value,
    live: &Value,
    ignore: &dyn Fn(&str) -> bool,
) -> Vec<FieldDiff> {
    diff(desired, live)
        .into_iter()
        .filter(|d| !ignore(&d.field))
        .collect()
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The one place a difference is recorded (both values as JSON text).
fn push(out: &mut Vec<FieldDiff>, field: String, desired: String, live: &Value) {
    out.push(FieldDiff {
        field,
        desired,
        live: live.to_string(),
    });
}

fn walk(path: &str, desired: &Value, live: &Value, out: &mut Vec<FieldDiff>) {
    match desired {
        Value::Null => extra(path, live, out),
        Value::Object(d) => {
            let empty = serde_json::Map::new();
            let l = live.as_object().unwrap_or(&empty);
            let mut keys: Vec<&String> = d.keys().collect();
            keys.sort();
            for k in keys {
                walk(&child(path, k), &d[k], get_field(l, k), out);
            }
            for k in live_only(d, l) {
                extra(&child(path, k), &l[k], out);
            }
        }
        _ if equal(path, desired, live) => {}
        _ => push(out, path.to_string(), desired.to_string(), live),
    }
}

/// The keys of `live` that `desired` does not have (by Docker's case-insensitive names), sorted.
fn live_only<'a>(
    desired: &serde_json::Map<String, Value>,
    live: &'a serde_json::Map<String, Value>,
) -> Vec<&'a String> {
    let mut keys: Vec<&String> = live
        .keys()
        .filter(|k| {
            !desired.contains_key(k.as_str()) && !desired.keys().any(|d| d.eq_ignore_ascii_case(k))
        })
        .collect();
    keys.sort();
    keys
}

/// Reports a live field the desired spec does not set, unless it holds Docker's default or is empty.
fn extra(path: &str, live: &Value, out: &mut Vec<FieldDiff>) {
    if let Some(def) = defaults::at(path) {
        if !def.value.matches(live) && !live.is_null() {
            push(out, path.to_string(), def.value.to_json(), live);
        }
        return;
    }
    match live {
        Value::Null => {}
        Value::Array(a) if a.is_empty() => {}
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for k in keys {
                extra(&child(path, k), &o[k], out);
            }
        }
        _ => push(out, path.to_string(), "null".to_string(), live),
    }
}

/// Whether a live field the desired spec does not set is fine (what [`extra`] reports nothing for).
fn extra_ok(path: &str, live: &Value) -> bool {
    if let Some(def) = defaults::at(path) {
        return live.is_null() || def.value.matches(live);
    }
    match live {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.iter().all(|(k, v)| extra_ok(&child(path, k), v)),
        _ => false,
    }
}

/// Whether `live` has what `desired` sets at `path`, and nothing else but Docker's defaults:
/// objects on desired keys, arrays element by element (`path[]`), numbers by value.
fn equal(path: &str, desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (_, Value::Null) => is_zero(desired),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            let elem = format!("{path}[]");
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(&elem, p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.iter()
                .all(|(k, v)| equal(&child(path, k), v, get_field(y, k)))
                && live_only(x, y)
                    .into_iter()
                    .all(|k| extra_ok(&child(path, k), &y[k]))
        }
        _ => desired == live,
    }
}

/// A field by name; like Docker's own JSON decoding, a name that matches only case-insensitively
/// counts (bollard's models say `HealthCheck` where Docker says `Healthcheck`).
fn get_field<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> &'a Value {
    map.get(key)
        .or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .unwrap_or(&Value::Null)
}

/// Values Docker leaves out of what it returns (Go's `omitempty`).
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn live_defaults_are_not_drift() {
        let desired = json!({"Name": "s", "TaskTemplate": {"ContainerSpec": {"Image": "i"}}});
        let live = json!({
            "Name": "s",
            "TaskTemplate": {"ContainerSpec": {"Image": "i", "Isolation": "default"},
                             "ForceUpdate": 0, "Runtime": "container"},
            "Mode": {"Replicated": {"Replicas": 1}}
        });
        assert_eq!(diff(&desired, &live), vec![]);
    }

    #[test]
    fn arrays_are_compared_whole() {
        let desired = json!({"Env": ["A=1", "B=2"]});
        let live = json!({"Env": ["A=1", "B=2", "C=3"]});
        let d = diff(&desired, &live);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].field, "Env");
        assert_eq!(d[0].desired, r#"["A=1","B=2"]"#);
        assert_eq!(d[0].live, r#"["A=1","B=2","C=3"]"#);
    }

    #[test]
    fn nested_changes_name_their_path_and_missing_live_is_null() {
        let desired = json!({"TaskTemplate": {"ContainerSpec": {"Image": "a", "User": "app"}}});
        let live = json!({"TaskTemplate": {"ContainerSpec": {"Image": "b"}}});
        let d = diff(&desired, &live);
        let fields: Vec<_> = d
            .iter()
            .map(|x| (x.field.as_str(), x.live.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("TaskTemplate.ContainerSpec.Image", "\"b\""),
                ("TaskTemplate.ContainerSpec.User", "null")
            ]
        );
    }

    #[test]
    fn maps_inside_arrays_ignore_key_order_and_number_form() {
        let desired = json!({"Ports": [{"TargetPort": 80, "Protocol": "tcp"}]});
        let live = json!({"Ports": [{"Protocol": "tcp", "TargetPort": 80.0}]});
        assert!(diff(&desired, &live).is_empty());
    }

    #[test]
    fn label_maps_compare_per_key_and_an_extra_live_label_is_drift() {
        let desired = json!({"Labels": {"a": "1"}});
        let live = json!({"Labels": {"a": "2", "oob": "x"}});
        let d = diff(&desired, &live);
        let got: Vec<_> = d
            .iter()
            .map(|x| (x.field.as_str(), x.desired.as_str(), x.live.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Labels.a", "\"1\"", "\"2\""),
                ("Labels.oob", "null", "\"x\"")
            ]
        );
    }

    #[test]
    fn array_elements_are_compared_on_desired_keys_plus_docker_defaults() {
        let desired = json!({"TaskTemplate": {"ContainerSpec": {
            "Secrets": [{"SecretName": "s", "File": {"Name": "s", "Mode": 292}}]}}});
        let live = json!({"TaskTemplate": {"ContainerSpec": {
            "Secrets": [{"SecretName": "s", "SecretID": "abc", "File": {"Name": "s", "Mode": 292}}]}}});
        assert!(diff(&desired, &live).is_empty());
        // A key Docker does not fill in, added to an element, is drift (the array is one field).
        let live = json!({"TaskTemplate": {"ContainerSpec": {
            "Secrets": [{"SecretName": "s", "File": {"Name": "s", "Mode": 292, "UID": "5"}}]}}});
        assert_eq!(
            diff(&desired, &live)[0].field,
            "TaskTemplate.ContainerSpec.Secrets"
        );
        let live = json!({"TaskTemplate": {"ContainerSpec": {
            "Secrets": [{"SecretName": "s", "File": {"Name": "s", "Mode": 256}}]}}});
        assert_eq!(diff(&desired, &live).len(), 1);
        let live = json!({"TaskTemplate": {"ContainerSpec": {"Secrets": []}}});
        assert_eq!(diff(&desired, &live).len(), 1);
    }

    #[test]
    fn port_defaults_inside_elements_are_not_drift_but_other_values_are() {
        let desired =
            json!({"EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}});
        let live = json!({"EndpointSpec": {"Mode": "vip", "Ports": [{"TargetPort": 80,
            "PublishedPort": 8080, "Protocol": "tcp", "PublishMode": "ingress"}]}});
        assert!(diff(&desired, &live).is_empty());
        let live = json!({"EndpointSpec": {"Ports": [{"TargetPort": 80,
            "PublishedPort": 8080, "Protocol": "udp"}]}});
        assert_eq!(diff(&desired, &live)[0].field, "EndpointSpec.Ports");
        // An extra element is drift.
        let live = json!({"EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 8080},
            {"TargetPort": 81, "PublishedPort": 8081}]}});
        assert_eq!(diff(&desired, &live)[0].field, "EndpointSpec.Ports");
    }

    #[test]
    fn out_of_band_additions_are_drift_with_field_and_both_values() {
        let desired = json!({"Name": "s", "Labels": {"a": "1"},
            "TaskTemplate": {"ContainerSpec": {"Image": "i"}, "Placement": {}, "Resources": {}},
            "Mode": {"Replicated": {}}, "EndpointSpec": {}});
        let live = json!({"Name": "s", "Labels": {"a": "1"},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "i", "Isolation": "default", "Env": ["X=1"],
                    "Mounts": [{"Type": "volume", "Source": "v", "Target": "/d"}]},
                "Placement": {"Constraints": ["node.role==manager"]},
                "Resources": {"Limits": {"NanoCPUs": 500000000}, "Reservations": {}},
                "ForceUpdate": 0, "Runtime": "container"},
            "Mode": {"Replicated": {"Replicas": 2}},
            "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "PublishMode": "host",
                "PublishedPort": 18081, "TargetPort": 80}]}});
        let got: Vec<_> = diff(&desired, &live)
            .into_iter()
            .map(|d| (d.field, d.desired))
            .collect();
        let want = [
            ("EndpointSpec.Ports", "null"),
            ("Mode.Replicated.Replicas", "1"),
            ("TaskTemplate.ContainerSpec.Env", "null"),
            ("TaskTemplate.ContainerSpec.Mounts", "null"),
            ("TaskTemplate.Placement.Constraints", "null"),
            ("TaskTemplate.Resources.Limits.NanoCPUs", "null"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(f, d)| (f.to_string(), d.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn live_fields_with_a_default_are_compared_with_it_never_skipped() {
        let desired = json!({"Mode": {"Replicated": {}}, "TaskTemplate": {}});
        let live = json!({"Mode": {"Replicated": {"Replicas": 0}},
                          "TaskTemplate": {"Runtime": "plugin", "ForceUpdate": 3}});
        let d = diff(&desired, &live);
        let got: Vec<_> = d
            .iter()
            .map(|x| (x.field.as_str(), x.desired.as_str(), x.live.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Mode.Replicated.Replicas", "1", "0"),
                ("TaskTemplate.ForceUpdate", "0", "3"),
                ("TaskTemplate.Runtime", "\"container\"", "\"plugin\"")
            ]
        );
    }

    #[test]
    fn empty_live_objects_and_cli_written_defaults_are_not_drift() {
        let desired = json!({"TaskTemplate": {"ContainerSpec": {"Image": "i"}}});
        let live = json!({"TaskTemplate": {
            "ContainerSpec": {"Image": "i", "DNSConfig": {}, "Privileges":
                {"CredentialSpec": null, "SELinuxContext": null}},
            "Resources": {"Limits": {}, "Reservations": {}}, "Placement": {"Constraints": []},
            "RestartPolicy": {"Condition": "any", "Delay": 5000000000u64, "MaxAttempts": 0}},
            "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5000000000u64,
                             "MaxFailureRatio": 0, "Order": "stop-first"}});
        assert_eq!(diff(&desired, &live), vec![]);
        let mut live = live;
        live["UpdateConfig"]["Parallelism"] = json!(0);
        live["TaskTemplate"]["ContainerSpec"]["Init"] = json!(false);
        let fields: Vec<_> = diff(&desired, &live).into_iter().map(|d| d.field).collect();
        assert_eq!(
            fields,
            [
                "TaskTemplate.ContainerSpec.Init",
                "UpdateConfig.Parallelism"
            ]
        );
    }

    #[test]
    fn desired_zero_values_match_absent_live_ones() {
        let desired = json!({"ReadOnly": false, "Args": [], "Replicas": 0, "User": ""});
        assert!(diff(&desired, &json!({})).is_empty());
        let desired = json!({"ReadOnly": true});
        assert_eq!(diff(&desired, &json!({})).len(), 1);
        let desired = json!({"Args": ["x"]});
        assert_eq!(diff(&desired, &json!({})).len(), 1);
    }

    #[test]
    fn field_names_match_case_insensitively_like_docker() {
        let desired = json!({"HealthCheck": {"Retries": 5}});
        let live = json!({"Healthcheck": {"Retries": 5}});
        assert!(diff(&desired, &live).is_empty());
        let live = json!({"Healthcheck": {"Retries": 3}});
        assert_eq!(diff(&desired, &live)[0].field, "HealthCheck.Retries");
    }

    #[test]
    fn ignore_filter_drops_fields() {
        let desired = json!({"Labels": {"hearth.spec-hash": "x", "a": "1"}});
        let live = json!({"Labels": {"hearth.spec-hash": "y", "a": "1"}});
        assert!(diff_ignoring(&desired, &live, &|f| f == "Labels.hearth.spec-hash").is_empty());
        assert_eq!(diff(&desired, &live).len(), 1);
    }
}

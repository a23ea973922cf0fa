//! Field-level comparison of a desired object with its live counterpart, on the fields hearth sets.
//!
//! Both sides are compared as JSON (the Docker API's own field names). Only fields present in the
//! desired value are looked at, so whatever Swarm fills in by default on the live side is never drift.
//! Objects are compared key by key, recursively; arrays and scalars are compared whole (an array of
//! mounts or env entries is one field). Inside an array, an element that is an object is compared
//! on the keys the desired element sets (Swarm adds `SecretID`, default modes, ...). A desired zero
//! value (`false`, `0`, `""`, `[]`, `{}`) matches an absent live one, since Docker omits empty
//! fields; any other absent or `null` live value differs from a desired one.

use serde::Serialize;
use serde_json::Value;

/// One difference between desired and live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldDiff {
    /// Dotted path of the field in Docker's API names, e.g. `TaskTemplate.ContainerSpec.Env`.
    pub field: String,
    /// The desired value as JSON text.
    pub desired: String,
    /// The live value as JSON text (`null` when absent).
    pub live: String,
}

/// Differences of `live` from `desired`, on the fields `desired` sets, in a stable order.
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

fn walk(path: &str, desired: &Value, live: &Value, out: &mut Vec<FieldDiff>) {
    match desired {
        Value::Null => {}
        Value::Object(d) => {
            let empty = serde_json::Map::new();
            let l = live.as_object().unwrap_or(&empty);
            let mut keys: Vec<&String> = d.keys().collect();
            keys.sort();
            for k in keys {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(&child, &d[k], get_field(l, k), out);
            }
        }
        _ if equal(desired, live) => {}
        _ => out.push(FieldDiff {
            field: path.to_string(),
            desired: desired.to_string(),
            live: live.to_string(),
        }),
    }
}

/// Whether `live` has what `desired` sets: objects on desired keys, arrays element by element,
/// numbers by value.
fn equal(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (_, Value::Null) => is_zero(desired),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => x.iter().all(|(k, v)| equal(v, get_field(y, k))),
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
    fn label_maps_compare_per_key_so_extra_live_labels_are_not_drift() {
        let desired = json!({"Labels": {"a": "1"}});
        let live = json!({"Labels": {"a": "1", "added.by.swarm": "x"}});
        assert!(diff(&desired, &live).is_empty());
        let live = json!({"Labels": {"a": "2"}});
        assert_eq!(diff(&desired, &live)[0].field, "Labels.a");
    }

    #[test]
    fn array_elements_are_compared_on_desired_keys() {
        let desired = json!({"Secrets": [{"SecretName": "s", "File": {"Name": "s", "Mode": 292}}]});
        let live = json!({"Secrets": [{"SecretName": "s", "SecretID": "abc",
                                        "File": {"Name": "s", "Mode": 292, "UID": "0"}}]});
        assert!(diff(&desired, &live).is_empty());
        let live = json!({"Secrets": [{"SecretName": "s", "File": {"Name": "s", "Mode": 256}}]});
        assert_eq!(diff(&desired, &live)[0].field, "Secrets");
        let live = json!({"Secrets": []});
        assert_eq!(diff(&desired, &live).len(), 1);
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

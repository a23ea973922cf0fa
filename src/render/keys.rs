//! Docker's own spelling of field names for printed specs. bollard's models follow Docker's
//! swagger file, which in a few places spells a key differently from the Go structs that the
//! daemon serializes (`docker service inspect`, the API's responses). Docker reads either (Go's
//! JSON decoding ignores case), so what hearth sends is unchanged and the spec hash is computed on
//! bollard's spelling; `hearth render` and `hearth plan` print Docker's. The table is checked
//! against `docker service inspect` by tests/render_keys.rs (docs/compose-support.md).

use serde_json::Value;

/// (key of the enclosing object, bollard's key, Docker's key).
const RENAMES: &[(&str, &str, &str)] = &[
    // swarm.ContainerSpec `Healthcheck *container.HealthConfig` (swagger: `HealthCheck`).
    ("ContainerSpec", "HealthCheck", "Healthcheck"),
];

/// `v` with every key bollard spells otherwise written as Docker writes it.
pub fn docker_key_names(v: Value) -> Value {
    rename(v, "")
}

fn rename(v: Value, parent: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let v = rename(v, &k);
                    let k = RENAMES
                        .iter()
                        .find(|(p, from, _)| *p == parent && *from == k)
                        .map_or(k, |(_, _, to)| (*to).to_owned());
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| rename(v, parent)).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::docker_key_names;
    use serde_json::json;

    #[test]
    fn healthcheck_is_spelled_as_docker_does_only_in_a_container_spec() {
        let v = docker_key_names(json!({
            "services": [{"spec": {"TaskTemplate": {"ContainerSpec": {
                "HealthCheck": {"Test": ["NONE"]}, "Labels": {"HealthCheck": "x"}}}}}]
        }));
        let c = &v["services"][0]["spec"]["TaskTemplate"]["ContainerSpec"];
        assert_eq!(c["Healthcheck"], json!({"Test": ["NONE"]}));
        assert!(c.get("HealthCheck").is_none());
        assert_eq!(c["Labels"]["HealthCheck"], "x", "label keys are data");
    }
}

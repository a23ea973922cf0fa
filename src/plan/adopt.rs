//! Adoption: taking over a stack someone else deployed (`abra app deploy`, `docker stack deploy`)
//! without restarting a task. Pure decisions over the live specs; see docs/abra.md.
//!
//! - A foreign service of the deployment's stack namespace is updated with its live spec exactly
//!   as Docker returned it, but for hearth's labels (and the desired `UpdateConfig`,
//!   `RollbackConfig` and replica count): Swarm restarts tasks only when the task template or the
//!   endpoint changes, so nothing restarts. It is marked `hearth.adopted=<version>`.
//! - While a service carries that mark and the desired version is that version, every difference
//!   that would restart tasks (under `TaskTemplate` or `EndpointSpec`) is *deferred*: listed, not
//!   applied. The next version change, or `hearth apply --restart`, sends the full desired spec,
//!   which drops the mark.
//! - Foreign secrets and configs of the stack (by namespace label, or secrets named
//!   `<stack>_...` as abra names them) get hearth's labels (Swarm allows label-only updates) and
//!   are used as they are; foreign networks of the namespace are used as they are (their labels
//!   cannot change).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::diff::FieldDiff;
use crate::render::LABEL_NAMESPACE;

/// `hearth.adopted=<version>` on a service adopted without a restart: its task template is still
/// the one the previous deployer made.
pub const LABEL_ADOPTED: &str = "hearth.adopted";

/// Whether changing this field (a dotted path of the service spec) makes Swarm replace the tasks.
pub fn restarts_tasks(field: &str) -> bool {
    field.starts_with("TaskTemplate") || field.starts_with("EndpointSpec")
}

/// Whether an object with these labels and this name belongs to `stack`'s namespace and may be
/// adopted: `com.docker.stack.namespace=<stack>`, or (secrets abra creates carry no labels) a name
/// starting with `<stack>_`.
pub fn in_namespace(labels: Option<&HashMap<String, String>>, name: &str, stack: &str) -> bool {
    labels
        .and_then(|l| l.get(LABEL_NAMESPACE))
        .is_some_and(|ns| ns == stack)
        || name
            .strip_prefix(stack)
            .is_some_and(|rest| rest.starts_with('_'))
}

/// The version a desired or live spec's labels say (`coop-cloud.<stack>.version`).
pub fn version_of(spec: &Value, stack: &str) -> Option<String> {
    spec.get("Labels")?
        .get(crate::render::version_label(stack))?
        .as_str()
        .map(str::to_string)
}

/// The spec that adopts a live service: its live spec as Docker returned it (`live_raw`, network
/// IDs untouched), with the desired labels added (plus [`LABEL_ADOPTED`]`=version`) and the
/// desired `UpdateConfig`, `RollbackConfig` and replica count, none of which restart a task.
pub fn adoption_spec(live_raw: &Value, desired: &Value, version: &str) -> Value {
    let mut spec = live_raw.clone();
    let Some(obj) = spec.as_object_mut() else {
        return spec;
    };
    // The service labels become the desired ones plus the mark: the drift diff compares labels in
    // both directions (docs/drift.md), so a live-only label kept here would be planned again on
    // every pass. Service labels never restart a task.
    let mut labels: serde_json::Map<String, Value> = desired
        .get("Labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(LABEL_ADOPTED.into(), Value::String(version.into()));
    obj.insert("Labels".into(), Value::Object(labels));
    for key in ["UpdateConfig", "RollbackConfig"] {
        if let Some(v) = desired.get(key) {
            obj.insert(key.into(), v.clone());
        }
    }
    if let (Some(want), Some(live)) = (
        desired.pointer("/Mode/Replicated/Replicas"),
        obj.get_mut("Mode")
            .and_then(|m| m.get_mut("Replicated"))
            .and_then(Value::as_object_mut),
    ) {
        live.insert("Replicas".into(), want.clone());
    }
    spec
}

/// The adoption spec as the typed spec the applier sends. Docker writes the healthcheck as
/// `Healthcheck`, bollard's model reads `HealthCheck`: renamed first so it is not lost (Docker
/// reads either spelling).
pub(crate) fn typed(spec: &Value) -> Result<bollard::models::ServiceSpec, String> {
    let mut spec = spec.clone();
    if let Some(cs) = spec
        .pointer_mut("/TaskTemplate/ContainerSpec")
        .and_then(Value::as_object_mut)
        && let Some(hc) = cs.remove("Healthcheck")
    {
        cs.insert("HealthCheck".into(), hc);
    }
    serde_json::from_value(spec).map_err(|e| format!("live service spec: {e}"))
}

/// Splits differences into those applied now and those deferred (they would restart tasks).
pub fn split(diffs: Vec<FieldDiff>) -> (Vec<FieldDiff>, Vec<FieldDiff>) {
    diffs.into_iter().partition(|d| !restarts_tasks(&d.field))
}

/// Labels for an adopted secret or config: its live labels plus the desired ones.
pub fn merged_labels(
    live: Option<&HashMap<String, String>>,
    desired: &BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut out = live.cloned().unwrap_or_default();
    out.extend(desired.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_template_and_endpoint_changes_restart() {
        assert!(restarts_tasks("TaskTemplate.ContainerSpec.Env"));
        assert!(restarts_tasks("EndpointSpec.Ports"));
        assert!(!restarts_tasks("Labels.hearth.managed-by"));
        assert!(!restarts_tasks("Mode.Replicated.Replicas"));
        assert!(!restarts_tasks("UpdateConfig.Parallelism"));
    }

    #[test]
    fn namespace_by_label_or_abra_secret_name() {
        let ns: HashMap<String, String> = [(LABEL_NAMESPACE.to_string(), "a_b".to_string())].into();
        assert!(in_namespace(Some(&ns), "anything", "a_b"));
        assert!(in_namespace(None, "a_b_db_password_v1", "a_b"));
        assert!(!in_namespace(None, "a_bc_db_password_v1", "a_b"));
        assert!(!in_namespace(None, "other", "a_b"));
    }

    #[test]
    fn adoption_keeps_the_live_template_and_adds_labels() {
        let live = json!({
            "Name": "s_app",
            "Labels": {"com.docker.stack.namespace": "s", "coop-cloud.s.version": "1.0.0"},
            "TaskTemplate": {"ContainerSpec": {"Image": "i@sha256:x", "Healthcheck": {"Retries": 3}},
                             "Networks": [{"Target": "netid", "Aliases": ["app"]}]},
            "Mode": {"Replicated": {"Replicas": 1}},
        });
        let desired = json!({
            "Name": "s_app",
            "Labels": {"com.docker.stack.namespace": "s", "hearth.managed-by": "hearth",
                       "coop-cloud.s.version": "1.0.0"},
            "TaskTemplate": {"ContainerSpec": {"Image": "i", "Env": ["X=1"]}},
            "Mode": {"Replicated": {"Replicas": 2}},
            "UpdateConfig": {"Parallelism": 1},
        });
        let spec = adoption_spec(&live, &desired, "1.0.0");
        assert_eq!(spec["TaskTemplate"], live["TaskTemplate"]);
        assert_eq!(spec["Labels"]["hearth.managed-by"], "hearth");
        assert_eq!(spec["Labels"]["com.docker.stack.namespace"], "s");
        assert_eq!(spec["Labels"][LABEL_ADOPTED], "1.0.0");
        // Labels only the live side had are not kept (they would be label drift on every pass).
        let mut live_extra = live.clone();
        live_extra["Labels"]["abra.only"] = json!("x");
        let spec2 = adoption_spec(&live_extra, &desired, "1.0.0");
        assert!(spec2["Labels"].get("abra.only").is_none());
        assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 2);
        assert_eq!(spec["UpdateConfig"]["Parallelism"], 1);
        let t = typed(&spec).unwrap();
        let hc = t
            .task_template
            .unwrap()
            .container_spec
            .unwrap()
            .health_check;
        assert_eq!(hc.unwrap().retries, Some(3));
        assert_eq!(version_of(&live, "s").as_deref(), Some("1.0.0"));
    }
}

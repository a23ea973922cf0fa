//! The values Docker itself fills into a service spec: the one list the drift diff
//! ([`super::diff`]) compares a live field with when the desired spec does not set that field.
//!
//! A live field the desired spec leaves out is drift unless it holds exactly the value listed here
//! for its path (or is empty: `null`, `{}`, `[]`, which Docker treats as unset). Each entry says
//! which Docker behaviour it stands for; docs/drift.md mirrors this list, and the integration test
//! `tests/drift_defaults.rs` proves it against the real swarm (it fails when Docker adds something
//! not listed here, or when an entry claims a value Docker does not add).
//!
//! Paths use Docker's API field names, dotted; `[]` stands for every element of an array
//! (`EndpointSpec.Ports[].Protocol`). An entry applies only where the enclosing object exists on
//! the live side (`RestartPolicy.Condition` only inside a live `RestartPolicy`).

use serde_json::Value;

/// Who writes a default into the stored spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// dockerd (Swarm) stores it on every create and update when the field is unset and its
    /// enclosing object is there.
    Daemon,
    /// The docker CLI writes it when it creates the enclosing object (`docker service update
    /// --restart-condition ...`, `--update-parallelism ...`); it is what Swarm does when the whole
    /// object is unset, so it means the same as leaving the field out.
    Cli,
    /// Filled in when the spec is sent, from a field the desired spec does set and the diff
    /// compares (hearth's apply resolves `SecretName`/`ConfigName` to the object's ID): any
    /// value matches.
    Resolved,
}

/// A default value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val {
    Str(&'static str),
    Int(i64),
    /// Any value ([`Source::Resolved`] only).
    Any,
}

impl Val {
    /// Whether a live value is this default (numbers by value, like the rest of the diff).
    pub fn matches(&self, live: &Value) -> bool {
        match (self, live) {
            (Val::Any, _) => true,
            (Val::Str(s), Value::String(l)) => s == l,
            (Val::Int(n), Value::Number(l)) => l.as_f64() == Some(*n as f64),
            _ => false,
        }
    }

    /// The default as JSON text (how a drift item shows it).
    pub fn to_json(&self) -> String {
        match self {
            Val::Str(s) => Value::String(s.to_string()).to_string(),
            Val::Int(n) => n.to_string(),
            Val::Any => "null".to_string(),
        }
    }
}

/// One server-side default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DockerDefault {
    pub path: &'static str,
    pub value: Val,
    pub source: Source,
    /// The Docker behaviour it stands for.
    pub behaviour: &'static str,
}

const fn d(
    path: &'static str,
    value: Val,
    source: Source,
    behaviour: &'static str,
) -> DockerDefault {
    DockerDefault {
        path,
        value,
        source,
        behaviour,
    }
}

const SECOND5: i64 = 5_000_000_000;

/// Every default, grouped by the object it lives in. Measured on dockerd 20.10 (API 1.41).
pub const DEFAULTS: &[DockerDefault] = &[
    d(
        "TaskTemplate.ContainerSpec.Isolation",
        Val::Str("default"),
        Source::Daemon,
        "Swarm stores isolation `default` on every service",
    ),
    d(
        "TaskTemplate.ForceUpdate",
        Val::Int(0),
        Source::Daemon,
        "Swarm stores the force-update counter, 0 until `docker service update --force`",
    ),
    d(
        "TaskTemplate.Runtime",
        Val::Str("container"),
        Source::Daemon,
        "Swarm stores the runtime `container` for a container service",
    ),
    d(
        "Mode.Replicated.Replicas",
        Val::Int(1),
        Source::Daemon,
        "a replicated service without replicas (or without any mode) runs one task",
    ),
    d(
        "Mode.ReplicatedJob.MaxConcurrent",
        Val::Int(1),
        Source::Daemon,
        "a replicated job without max-concurrent runs one task at a time",
    ),
    d(
        "Mode.ReplicatedJob.TotalCompletions",
        Val::Int(1),
        Source::Daemon,
        "a replicated job without total-completions completes max-concurrent (1) tasks",
    ),
    d(
        "EndpointSpec.Mode",
        Val::Str("vip"),
        Source::Daemon,
        "an endpoint spec without a mode resolves by virtual IP (`--endpoint-mode vip`)",
    ),
    d(
        "EndpointSpec.Ports[].Protocol",
        Val::Str("tcp"),
        Source::Daemon,
        "a published port without a protocol is TCP",
    ),
    d(
        "EndpointSpec.Ports[].PublishMode",
        Val::Str("ingress"),
        Source::Daemon,
        "a published port without a mode goes through the ingress routing mesh",
    ),
    d(
        "TaskTemplate.RestartPolicy.Condition",
        Val::Str("any"),
        Source::Daemon,
        "a restart policy without a condition restarts on any exit",
    ),
    d(
        "TaskTemplate.RestartPolicy.MaxAttempts",
        Val::Int(0),
        Source::Daemon,
        "a restart policy without max-attempts restarts without limit (0)",
    ),
    d(
        "TaskTemplate.RestartPolicy.Delay",
        Val::Int(SECOND5),
        Source::Cli,
        "Swarm waits 5 s between restarts when no delay is set; the CLI writes it",
    ),
    d(
        "UpdateConfig.FailureAction",
        Val::Str("pause"),
        Source::Daemon,
        "an update that fails pauses",
    ),
    d(
        "UpdateConfig.MaxFailureRatio",
        Val::Int(0),
        Source::Daemon,
        "an update tolerates no failed task",
    ),
    d(
        "UpdateConfig.Order",
        Val::Str("stop-first"),
        Source::Daemon,
        "an update stops the old task before starting the new one",
    ),
    d(
        "UpdateConfig.Parallelism",
        Val::Int(1),
        Source::Cli,
        "Swarm updates one task at a time when no update config is set; the CLI writes it",
    ),
    d(
        "UpdateConfig.Monitor",
        Val::Int(SECOND5),
        Source::Cli,
        "Swarm watches an updated task for 5 s when no monitor is set; the CLI writes it",
    ),
    d(
        "RollbackConfig.FailureAction",
        Val::Str("pause"),
        Source::Daemon,
        "a rollback that fails pauses",
    ),
    d(
        "RollbackConfig.MaxFailureRatio",
        Val::Int(0),
        Source::Daemon,
        "a rollback tolerates no failed task",
    ),
    d(
        "RollbackConfig.Order",
        Val::Str("stop-first"),
        Source::Daemon,
        "a rollback stops the task before starting the previous version",
    ),
    d(
        "RollbackConfig.Parallelism",
        Val::Int(1),
        Source::Cli,
        "Swarm rolls back one task at a time when no rollback config is set; the CLI writes it",
    ),
    d(
        "RollbackConfig.Monitor",
        Val::Int(SECOND5),
        Source::Cli,
        "Swarm watches a rolled-back task for 5 s when no monitor is set; the CLI writes it",
    ),
    d(
        "TaskTemplate.ContainerSpec.Secrets[].SecretID",
        Val::Any,
        Source::Resolved,
        "hearth's apply (like docker stack deploy) sends the ID of the secret the spec names",
    ),
    d(
        "TaskTemplate.ContainerSpec.Configs[].ConfigID",
        Val::Any,
        Source::Resolved,
        "hearth's apply (like docker stack deploy) sends the ID of the config the spec names",
    ),
];

/// The default at `path` (Docker's field names match case-insensitively, as Docker reads them).
pub fn at(path: &str) -> Option<&'static DockerDefault> {
    DEFAULTS.iter().find(|d| d.path.eq_ignore_ascii_case(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_unique_and_look_up_case_insensitively() {
        for (i, x) in DEFAULTS.iter().enumerate() {
            assert!(
                DEFAULTS[i + 1..].iter().all(|y| y.path != x.path),
                "{}",
                x.path
            );
            assert!(!x.behaviour.is_empty());
            assert_eq!(at(&x.path.to_lowercase()), Some(x));
            assert_eq!(
                x.value == Val::Any,
                x.source == Source::Resolved,
                "{}",
                x.path
            );
        }
        assert_eq!(at("Mode.Replicated.Replicas").unwrap().value, Val::Int(1));
        assert!(at("TaskTemplate.ContainerSpec.Env").is_none());
    }

    #[test]
    fn values_match_by_value_and_type() {
        assert!(Val::Int(1).matches(&json!(1)));
        assert!(Val::Int(1).matches(&json!(1.0)));
        assert!(!Val::Int(1).matches(&json!(2)));
        assert!(!Val::Int(0).matches(&json!("0")));
        assert!(Val::Str("vip").matches(&json!("vip")));
        assert!(!Val::Str("vip").matches(&json!("dnsrr")));
        assert!(Val::Any.matches(&json!("abc")));
        assert_eq!(Val::Str("vip").to_json(), "\"vip\"");
        assert_eq!(Val::Int(5).to_json(), "5");
    }
}

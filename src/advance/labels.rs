//! The advance [`Record`] as labels on one hearth-owned Swarm config per deployment,
//! `<stack>_hearth-advance` (Swarm's raft store is the database). The config carries the usual
//! ownership labels (so `plan_prune` removes it with its deployment) plus
//! `hearth.kind=advance-state` (so `plan_deployment` never removes it as an unused config) and the
//! record under `hearth.advance.*`. Pure: building specs and reading them back.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{Config, ConfigSpec};

use super::machine::{Failure, Record, State};
use crate::render::{LABEL_DEPLOYMENT, LABEL_MANAGED_BY, LABEL_NAMESPACE, LABEL_POOL};

/// `hearth.kind=<kind>` on hearth objects that are not part of a rendered stack.
pub const LABEL_KIND: &str = "hearth.kind";
/// The kind of the advance-state config.
pub const KIND_ADVANCE_STATE: &str = "advance-state";

const STATE: &str = "hearth.advance.state";
const LAST_GOOD: &str = "hearth.advance.last-good";
const TARGET: &str = "hearth.advance.target";
const SNAPSHOT: &str = "hearth.advance.snapshot";
const STARTED_AT: &str = "hearth.advance.started-at";
const SINCE: &str = "hearth.advance.since";
const FAILED_VERSION: &str = "hearth.advance.failed-version";
const FAILED_REASON: &str = "hearth.advance.failed-reason";
const FAILED_MESSAGE: &str = "hearth.advance.failed-message";
const AT_LAST_GOOD: &str = "hearth.advance.failed-at-last-good";
/// Who wrote the record last: the writer's lease identity (`hearth run`), or `cli:<host>:<pid>`
/// for `hearth advance retry`. An outside observer compares it with the lease holder of the
/// moment (`scripts/chaos`'s checker): two replicas writing at once show here.
pub const AUTHOR: &str = "hearth.advance.author";

/// Longest failure message kept (a crash's log tail can be long).
const MAX_MESSAGE: usize = 2000;

/// The config's content (Swarm wants some; the record is in the labels).
pub const DATA: &[u8] = b"hearth advance state: see the hearth.advance.* labels\n";

/// `<stack>_hearth-advance`.
pub fn config_name(stack: &str) -> String {
    format!("{stack}_hearth-advance")
}

/// A record as read from the swarm, with what a compare-and-swap needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: String,
    /// Swarm's version index the config was read at.
    pub version: u64,
    pub record: Record,
    /// The config's labels as read (ownership labels are kept on update).
    pub labels: HashMap<String, String>,
}

/// The record's labels.
pub fn record_labels(r: &Record) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(STATE.to_string(), r.state.as_str().to_string());
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            l.insert(k.to_string(), v);
        }
    };
    put(LAST_GOOD, r.last_good.clone());
    put(TARGET, r.target.clone());
    put(SNAPSHOT, r.snapshot.clone());
    put(STARTED_AT, r.started_at.map(|t| t.to_string()));
    put(SINCE, r.since.map(|t| t.to_string()));
    if let Some(f) = &r.failed {
        put(FAILED_VERSION, Some(f.version.clone()));
        put(FAILED_REASON, Some(f.reason.clone()));
        put(FAILED_MESSAGE, Some(truncate(&f.message, MAX_MESSAGE)));
        put(AT_LAST_GOOD, Some(f.at_last_good.to_string()));
    }
    l
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Reads a record from labels; an unknown state reads as `Ready` (keeping the last-good).
pub fn parse_record(l: &HashMap<String, String>) -> Record {
    let get = |k: &str| l.get(k).filter(|v| !v.is_empty()).cloned();
    let num = |k: &str| get(k).and_then(|v| v.parse().ok());
    let failed = get(FAILED_VERSION).map(|version| Failure {
        version,
        reason: get(FAILED_REASON).unwrap_or_default(),
        message: get(FAILED_MESSAGE).unwrap_or_default(),
        at_last_good: get(AT_LAST_GOOD).as_deref() != Some("false"),
    });
    Record {
        state: get(STATE)
            .and_then(|s| State::parse(&s))
            .unwrap_or_default(),
        last_good: get(LAST_GOOD),
        target: get(TARGET),
        snapshot: get(SNAPSHOT),
        started_at: num(STARTED_AT),
        since: num(SINCE),
        failed,
    }
}

/// Who owns the config: the labels every object of the deployment carries.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub pool: &'a str,
    pub deployment: &'a str,
    pub stack: &'a str,
    /// The pool's extra labels (`spec.labels`).
    pub extra: &'a BTreeMap<String, String>,
}

/// The spec of a new advance-state config holding `r`.
pub fn new_spec(owner: &Owner, r: &Record) -> ConfigSpec {
    let mut labels: HashMap<String, String> = owner
        .extra
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(LABEL_MANAGED_BY.into(), "hearth".into());
    labels.insert(LABEL_POOL.into(), owner.pool.into());
    labels.insert(LABEL_DEPLOYMENT.into(), owner.deployment.into());
    labels.insert(LABEL_NAMESPACE.into(), owner.stack.into());
    labels.insert(LABEL_KIND.into(), KIND_ADVANCE_STATE.into());
    labels.extend(record_labels(r));
    ConfigSpec {
        name: Some(config_name(owner.stack)),
        labels: Some(labels),
        data: Some(crate::render::base64(DATA)),
        ..Default::default()
    }
}

/// The spec that replaces `stored`'s with `r` (its other labels kept; name and data unchanged,
/// as Swarm requires).
pub fn updated_spec(name: &str, stored: &Stored, r: &Record) -> ConfigSpec {
    let mut labels: HashMap<String, String> = stored
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with("hearth.advance."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend(record_labels(r));
    ConfigSpec {
        name: Some(name.to_string()),
        labels: Some(labels),
        data: Some(crate::render::base64(DATA)),
        ..Default::default()
    }
}

/// `spec` with its author label set to `author` (each write names its writer).
pub fn authored(mut spec: ConfigSpec, author: &str) -> ConfigSpec {
    spec.labels
        .get_or_insert_with(Default::default)
        .insert(AUTHOR.to_string(), author.to_string());
    spec
}

/// True for the advance-state config (never an unused config version to remove).
pub fn is_advance_state(labels: Option<&HashMap<String, String>>) -> bool {
    labels.and_then(|l| l.get(LABEL_KIND)).map(String::as_str) == Some(KIND_ADVANCE_STATE)
}

/// The deployment's advance-state config among `configs` (a snapshot's), if hearth made it for
/// this pool and deployment.
pub fn find(configs: &[Config], pool: &str, deployment: &str, stack: &str) -> Option<Stored> {
    let name = config_name(stack);
    configs.iter().find_map(|c| {
        let spec = c.spec.as_ref()?;
        let labels = spec.labels.as_ref()?;
        let ours = spec.name.as_deref() == Some(name.as_str())
            && is_advance_state(Some(labels))
            && labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some("hearth")
            && labels.get(LABEL_POOL).map(String::as_str) == Some(pool)
            && labels.get(LABEL_DEPLOYMENT).map(String::as_str) == Some(deployment);
        ours.then(|| Stored {
            id: c.id.clone().unwrap_or_default(),
            version: c.version.as_ref().and_then(|v| v.index).unwrap_or(0),
            record: parse_record(labels),
            labels: labels.clone(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ObjectVersion;

    fn full() -> Record {
        Record {
            state: State::Restoring,
            last_good: Some("1.0.0+1".into()),
            target: Some("1.1.0+2".into()),
            snapshot: Some("20261123T181500Z-ab12".into()),
            started_at: Some(1_700_000_000),
            since: Some(1_700_000_060),
            failed: Some(Failure {
                version: "1.1.0+2".into(),
                reason: "CrashLoop".into(),
                message: "app: exit 2: FATAL: cannot write config".into(),
                at_last_good: true,
            }),
        }
    }

    /// Regression (scripts/chaos, seed 1): the record a stack move copied had no author, so the
    /// outside check "one writer at a time" could not attribute it.
    #[test]
    fn every_write_names_its_author_and_an_update_replaces_it() {
        let extra = BTreeMap::new();
        let owner = Owner {
            pool: "p",
            deployment: "d",
            stack: "s",
            extra: &extra,
        };
        let spec = authored(new_spec(&owner, &full()), "node1/hearth.1");
        let labels = spec.labels.clone().unwrap();
        assert_eq!(
            labels.get(AUTHOR).map(String::as_str),
            Some("node1/hearth.1")
        );
        let stored = Stored {
            id: "c".into(),
            version: 3,
            record: full(),
            labels,
        };
        let next = authored(
            updated_spec("s_hearth-advance", &stored, &full()),
            "node2/hearth.2",
        );
        assert_eq!(
            next.labels.unwrap().get(AUTHOR).map(String::as_str),
            Some("node2/hearth.2")
        );
    }

    #[test]
    fn record_round_trips_through_labels() {
        for r in [Record::default(), full()] {
            let l: HashMap<String, String> = record_labels(&r).into_iter().collect();
            assert_eq!(parse_record(&l), r);
        }
        let mut r = full();
        r.failed.as_mut().unwrap().at_last_good = false;
        let l: HashMap<String, String> = record_labels(&r).into_iter().collect();
        assert_eq!(parse_record(&l), r);
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let mut r = full();
        r.failed.as_mut().unwrap().message = "é".repeat(3000);
        let l = record_labels(&r);
        let m = &l[FAILED_MESSAGE];
        assert!(m.len() <= MAX_MESSAGE + 3 && m.ends_with("..."));
    }

    fn config(spec: ConfigSpec) -> Config {
        Config {
            id: Some("cfg1".into()),
            version: Some(ObjectVersion { index: Some(42) }),
            spec: Some(spec),
            ..Default::default()
        }
    }

    #[test]
    fn found_only_for_its_pool_and_deployment() {
        let extra = BTreeMap::from([("hearth.test".to_string(), "t".to_string())]);
        let owner = Owner {
            pool: "p",
            deployment: "gitea",
            stack: "git_example_org",
            extra: &extra,
        };
        let spec = new_spec(&owner, &full());
        let labels = spec.labels.clone().unwrap();
        assert_eq!(labels["hearth.test"], "t");
        assert_eq!(labels[LABEL_NAMESPACE], "git_example_org");
        assert_eq!(spec.name.as_deref(), Some("git_example_org_hearth-advance"));
        let configs = [config(spec)];
        let s = find(&configs, "p", "gitea", "git_example_org").expect("found");
        assert_eq!((s.id.as_str(), s.version), ("cfg1", 42));
        assert_eq!(s.record, full());
        assert!(find(&configs, "other", "gitea", "git_example_org").is_none());
        assert!(find(&configs, "p", "other", "git_example_org").is_none());
    }

    #[test]
    fn update_keeps_ownership_and_replaces_the_record() {
        let extra = BTreeMap::new();
        let owner = Owner {
            pool: "p",
            deployment: "d",
            stack: "s",
            extra: &extra,
        };
        let configs = [config(new_spec(&owner, &full()))];
        let stored = find(&configs, "p", "d", "s").unwrap();
        let r = Record {
            last_good: Some("1.1.0+2".into()),
            ..Default::default()
        };
        let spec = updated_spec("s_hearth-advance", &stored, &r);
        let l = spec.labels.clone().unwrap();
        assert_eq!(l[LABEL_POOL], "p");
        assert_eq!(l[LABEL_KIND], KIND_ADVANCE_STATE);
        assert!(!l.contains_key(FAILED_REASON), "old failure labels dropped");
        assert_eq!(parse_record(&l), r);
    }
}

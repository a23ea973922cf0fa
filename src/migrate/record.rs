//! Where a move's state lives: hearth configs in Swarm's raft store (like the advance record, see
//! `advance::labels`). Pure: building specs and reading them back.
//!
//! - The move record: one config per deployment, `hearth-migrate_<pool>_<deployment>`, labelled
//!   `hearth.kind=migration-state` and `hearth.migrate.*`.
//! - Volume records: Docker volume labels are immutable, so "this volume was migrated away" is a
//!   config per volume, `hearth-volume_<volume>`, labelled `hearth.kind=volume-record`,
//!   `hearth.volume=<volume>` and `hearth.migrated-to=<stack>`.
//!
//! Both carry the ownership labels (`hearth.managed-by`, `hearth.pool`, `hearth.deployment`) so a
//! pruned deployment takes them along, and no stack namespace (they belong to no stack).
//! Names longer than Docker's 64 characters end in a hash of the full name.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{Config, ConfigSpec};
use sha2::{Digest, Sha256};

use super::machine::{Record, State};
use crate::advance::LABEL_KIND;
use crate::render::{LABEL_DEPLOYMENT, LABEL_MANAGED_BY, LABEL_POOL};

pub const KIND_MIGRATION: &str = "migration-state";
pub const KIND_VOLUME: &str = "volume-record";
/// On a volume record: the volume it is about.
pub const LABEL_VOLUME: &str = "hearth.volume";
/// On a volume record: the stack the volume's data moved to.
pub const LABEL_MIGRATED_TO: &str = "hearth.migrated-to";

const STATE: &str = "hearth.migrate.state";
const FROM: &str = "hearth.migrate.from";
const TO: &str = "hearth.migrate.to";
const SNAPSHOT: &str = "hearth.migrate.snapshot";
const SINCE: &str = "hearth.migrate.since";
const ERROR: &str = "hearth.migrate.error";

const DATA: &[u8] = b"hearth record: see the labels\n";
const NAME_MAX: usize = 64;

/// A name that fits Docker's limit: cut and suffixed with 8 hex digits of its SHA-256 when long.
fn fit(name: String) -> String {
    if name.len() <= NAME_MAX {
        return name;
    }
    let hash = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    let keep: String = name.chars().take(NAME_MAX - 9).collect();
    format!("{keep}_{hash}")
}

/// The move record's config name.
pub fn record_name(pool: &str, deployment: &str) -> String {
    fit(format!("hearth-migrate_{pool}_{deployment}"))
}

/// A volume record's config name.
pub fn volume_record_name(volume: &str) -> String {
    fit(format!("hearth-volume_{volume}"))
}

fn owner_labels(
    pool: &str,
    deployment: &str,
    extra: &BTreeMap<String, String>,
    kind: &str,
) -> HashMap<String, String> {
    let mut l: HashMap<String, String> = extra.clone().into_iter().collect();
    l.insert(LABEL_MANAGED_BY.into(), "hearth".into());
    l.insert(LABEL_POOL.into(), pool.into());
    l.insert(LABEL_DEPLOYMENT.into(), deployment.into());
    l.insert(LABEL_KIND.into(), kind.into());
    l
}

/// The record's own labels.
pub fn record_labels(r: &Record) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(STATE.into(), r.state.as_str().into());
    l.insert(FROM.into(), r.from.clone());
    l.insert(TO.into(), r.to.clone());
    if let Some(s) = &r.snapshot {
        l.insert(SNAPSHOT.into(), s.clone());
    }
    if let Some(s) = r.since {
        l.insert(SINCE.into(), s.to_string());
    }
    if let Some(e) = &r.error {
        let mut e = e.clone();
        if e.len() > 2000 {
            let mut end = 2000;
            while !e.is_char_boundary(end) {
                end -= 1;
            }
            e.truncate(end);
        }
        l.insert(ERROR.into(), e);
    }
    l
}

/// The spec of a move record config holding `r` (created, or replacing the old one's labels).
pub fn record_spec(
    pool: &str,
    deployment: &str,
    extra: &BTreeMap<String, String>,
    r: &Record,
) -> ConfigSpec {
    let mut labels = owner_labels(pool, deployment, extra, KIND_MIGRATION);
    labels.extend(record_labels(r));
    ConfigSpec {
        name: Some(record_name(pool, deployment)),
        labels: Some(labels),
        data: Some(crate::render::base64(DATA)),
        ..Default::default()
    }
}

/// Reads a record back; `None` when the labels are not a move record.
pub fn parse_record(l: &HashMap<String, String>) -> Option<Record> {
    if l.get(LABEL_KIND).map(String::as_str) != Some(KIND_MIGRATION) {
        return None;
    }
    let get = |k: &str| l.get(k).filter(|v| !v.is_empty()).cloned();
    Some(Record {
        state: get(STATE).and_then(|s| State::parse(&s))?,
        from: get(FROM)?,
        to: get(TO)?,
        snapshot: get(SNAPSHOT),
        since: get(SINCE).and_then(|s| s.parse().ok()),
        error: get(ERROR),
    })
}

/// The deployment's move record among `configs`, with the config's ID and version index.
pub fn find_record<'a>(
    configs: &'a [Config],
    pool: &str,
    deployment: &str,
) -> Option<(&'a Config, Record)> {
    let name = record_name(pool, deployment);
    configs.iter().find_map(|c| {
        let spec = c.spec.as_ref()?;
        if spec.name.as_deref() != Some(name.as_str()) {
            return None;
        }
        let l = spec.labels.as_ref()?;
        if l.get(LABEL_POOL).map(String::as_str) != Some(pool)
            || l.get(LABEL_DEPLOYMENT).map(String::as_str) != Some(deployment)
        {
            return None;
        }
        Some((c, parse_record(l)?))
    })
}

/// The spec of the record saying `volume` (of `deployment`) moved to stack `to`.
pub fn volume_record_spec(
    pool: &str,
    deployment: &str,
    extra: &BTreeMap<String, String>,
    volume: &str,
    to: &str,
) -> ConfigSpec {
    let mut labels = owner_labels(pool, deployment, extra, KIND_VOLUME);
    labels.insert(LABEL_VOLUME.into(), volume.into());
    labels.insert(LABEL_MIGRATED_TO.into(), to.into());
    ConfigSpec {
        name: Some(volume_record_name(volume)),
        labels: Some(labels),
        data: Some(crate::render::base64(DATA)),
        ..Default::default()
    }
}

/// `(volume, migrated-to stack)` of a volume record's labels.
pub fn parse_volume_record(l: &HashMap<String, String>) -> Option<(&str, &str)> {
    if l.get(LABEL_KIND).map(String::as_str) != Some(KIND_VOLUME) {
        return None;
    }
    Some((l.get(LABEL_VOLUME)?, l.get(LABEL_MIGRATED_TO)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_its_labels() {
        let r = Record {
            state: State::StackCreated,
            from: "warm-x_example_org".into(),
            to: "warm-canon-x_example_org".into(),
            snapshot: Some("20261203T093000Z-ab12".into()),
            since: Some(1_700_000_000),
            error: None,
        };
        let spec = record_spec("p", "kc", &BTreeMap::new(), &r);
        assert_eq!(spec.name.as_deref(), Some("hearth-migrate_p_kc"));
        let labels = spec.labels.unwrap();
        assert_eq!(labels[LABEL_KIND], KIND_MIGRATION);
        assert_eq!(parse_record(&labels), Some(r));
        let cfg = Config {
            id: Some("c1".into()),
            spec: Some(ConfigSpec {
                labels: Some(labels),
                name: Some("hearth-migrate_p_kc".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(find_record(std::slice::from_ref(&cfg), "p", "kc").is_some());
        assert!(find_record(std::slice::from_ref(&cfg), "q", "kc").is_none());
    }

    #[test]
    fn volume_records_name_the_volume_and_its_new_stack() {
        let spec = volume_record_spec("p", "kc", &BTreeMap::new(), "a_data", "b");
        let labels = spec.labels.unwrap();
        assert_eq!(parse_volume_record(&labels), Some(("a_data", "b")));
        assert_eq!(parse_record(&labels), None);
    }

    #[test]
    fn long_names_fit_dockers_limit_and_stay_distinct() {
        let a = volume_record_name(&"v".repeat(80));
        let b = volume_record_name(&format!("{}w", "v".repeat(79)));
        assert!(a.len() <= NAME_MAX && b.len() <= NAME_MAX);
        assert_ne!(a, b);
        assert_eq!(volume_record_name("x_data"), "hearth-volume_x_data");
    }
}

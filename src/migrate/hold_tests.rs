//! The hold decisions over hand-built snapshots.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{Config, ConfigSpec, Network, Secret, SecretSpec, ServiceSpec};

use super::hold::{Hold, Owners, Subject, decide};
use super::machine::{Record, State, request};
use super::record::{record_spec, volume_record_spec};
use crate::assess::Phase;
use crate::observed::{LiveVolume, Snapshot};

fn labels(pool: &str, dep: &str, stack: &str) -> HashMap<String, String> {
    HashMap::from([
        ("hearth.managed-by".to_string(), "hearth".to_string()),
        ("hearth.pool".to_string(), pool.to_string()),
        ("hearth.deployment".to_string(), dep.to_string()),
        ("com.docker.stack.namespace".to_string(), stack.to_string()),
    ])
}

fn service(pool: &str, dep: &str, stack: &str) -> bollard::models::Service {
    bollard::models::Service {
        id: Some(format!("{stack}-app")),
        spec: Some(ServiceSpec {
            name: Some(format!("{stack}_app")),
            labels: Some(labels(pool, dep, stack)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn volume(name: &str, pool: &str, dep: &str, stack: &str) -> LiveVolume {
    LiveVolume {
        name: name.into(),
        labels: labels(pool, dep, stack),
    }
}

fn config(spec: ConfigSpec) -> Config {
    Config {
        id: Some("c".into()),
        spec: Some(spec),
        ..Default::default()
    }
}

fn subject<'a>(dep: &'a str, stack: &'a str, volumes: Vec<&'a str>) -> Subject<'a> {
    Subject {
        pool: "p",
        deployment: dep,
        stack,
        volumes,
        allow_migration: false,
    }
}

/// The canonical `kc` lives in `warm-kc`; its manifests now give `warm-canon-kc`.
fn moved() -> Snapshot {
    let mut snap = Snapshot::default();
    snap.push_service(service("p", "kc", "warm-kc"));
    snap.networks.push(Network {
        name: Some("warm-kc_internal".into()),
        labels: Some(labels("p", "kc", "warm-kc")),
        ..Default::default()
    });
    snap.secrets.push(Secret {
        spec: Some(SecretSpec {
            name: Some("warm-kc_pw_v1".into()),
            labels: Some(labels("p", "kc", "warm-kc")),
            ..Default::default()
        }),
        ..Default::default()
    });
    snap.volumes
        .push(volume("warm-kc_data", "p", "kc", "warm-kc"));
    snap
}

#[test]
fn a_changed_stack_is_held_naming_both_stacks_and_the_data() {
    let snap = moved();
    let owners = Owners::new(&snap);
    let hold = decide(
        &owners,
        &subject("kc", "warm-canon-kc", vec!["warm-canon-kc_data"]),
    );
    let Some(h @ Hold::StackMove { .. }) = hold else {
        panic!("{hold:?}")
    };
    assert_eq!((h.phase(), h.reason()), (Phase::Held, "StackMoveHeld"));
    let msg = h.message("kc");
    for want in ["warm-kc", "warm-canon-kc", "warm-kc_data", "hearth migrate"] {
        assert!(msg.contains(want), "{want}: {msg}");
    }
}

#[test]
fn allow_migration_turns_the_hold_into_a_move() {
    let snap = moved();
    let owners = Owners::new(&snap);
    let mut s = subject("kc", "warm-canon-kc", vec![]);
    s.allow_migration = true;
    let h = decide(&owners, &s).unwrap();
    assert_eq!((h.phase(), h.reason()), (Phase::Progressing, "Migrating"));
}

#[test]
fn the_same_stack_is_not_held() {
    let snap = moved();
    let owners = Owners::new(&snap);
    assert_eq!(
        decide(&owners, &subject("kc", "warm-kc", vec!["warm-kc_data"])),
        None
    );
    // A deployment with nothing live is not held either.
    assert_eq!(decide(&owners, &subject("new", "new_org", vec![])), None);
}

#[test]
fn a_stack_name_another_deployment_holds_is_pending() {
    let snap = moved();
    let owners = Owners::new(&snap);
    let h = decide(&owners, &subject("prov", "warm-kc", vec!["warm-kc_data"])).unwrap();
    assert_eq!((h.phase(), h.reason()), (Phase::Pending, "StackNameHeld"));
    assert!(
        h.message("prov")
            .contains("deployment \"kc\" of pool \"p\"")
    );
    // The same name in another pool is another owner too.
    let h = Owners::new(&snap);
    let other = Subject {
        pool: "q",
        ..subject("kc", "warm-kc", vec![])
    };
    assert_eq!(decide(&h, &other).unwrap().reason(), "StackNameHeld");
}

#[test]
fn a_volume_of_another_deployment_is_never_mounted() {
    let mut snap = Snapshot::default();
    snap.volumes.push(volume("x_data", "p", "other", "x"));
    snap.volumes.push(volume("free", "p", "me", "y"));
    snap.volumes.push(LiveVolume {
        name: "by-hand".into(),
        labels: HashMap::new(),
    });
    let owners = Owners::new(&snap);
    let h = decide(&owners, &subject("me", "y", vec!["x_data"])).unwrap();
    assert_eq!((h.phase(), h.reason()), (Phase::Held, "VolumeOwnedByOther"));
    assert!(h.message("me").contains("x_data"));
    assert!(h.message("me").contains("\"other\""));
    // Its own volumes and unlabelled ones (made by hand) are fine.
    assert_eq!(
        decide(&owners, &subject("me", "y", vec!["free", "by-hand"])),
        None
    );
}

#[test]
fn a_migrated_volume_is_held_naming_where_its_data_went() {
    let mut snap = Snapshot::default();
    snap.volumes
        .push(volume("warm-kc_data", "p", "kc", "warm-kc"));
    snap.configs.push(config(volume_record_spec(
        "p",
        "kc",
        &BTreeMap::new(),
        "warm-kc_data",
        "warm-canon-kc",
    )));
    // The canonical's own services are in the new stack now.
    snap.push_service(service("p", "kc", "warm-canon-kc"));
    let owners = Owners::new(&snap);
    let h = decide(&owners, &subject("prov", "warm-kc", vec!["warm-kc_data"])).unwrap();
    assert_eq!(h.reason(), "VolumeOwnedByOther");
    assert!(
        h.message("prov")
            .contains("migrated to stack warm-canon-kc"),
        "{}",
        h.message("prov")
    );
    // Once the operator removed the volume, its record no longer holds anything.
    let mut gone = snap.clone();
    gone.volumes.clear();
    let owners_gone = Owners::new(&gone);
    assert_eq!(
        decide(
            &owners_gone,
            &subject("prov", "warm-kc", vec!["warm-kc_data"])
        ),
        None
    );
    // The records themselves hold no stack.
    assert_eq!(
        decide(&owners, &subject("kc", "warm-canon-kc", vec![])),
        None
    );
}

#[test]
fn a_running_move_reports_its_state_and_a_failed_one_its_error() {
    let mut snap = moved();
    let r = Record {
        state: State::StackCreated,
        ..request("warm-kc", "warm-canon-kc", 0)
    };
    snap.configs
        .push(config(record_spec("p", "kc", &BTreeMap::new(), &r)));
    let owners = Owners::new(&snap);
    let h = decide(&owners, &subject("kc", "warm-canon-kc", vec![])).unwrap();
    assert_eq!(
        h,
        Hold::Migrating {
            from: "warm-kc".into(),
            to: "warm-canon-kc".into(),
            state: "StackCreated".into()
        }
    );

    let mut snap = moved();
    let r = Record {
        state: State::Failed,
        error: Some("restore failed: boom".into()),
        ..request("warm-kc", "warm-canon-kc", 0)
    };
    snap.configs
        .push(config(record_spec("p", "kc", &BTreeMap::new(), &r)));
    let owners = Owners::new(&snap);
    let mut s = subject("kc", "warm-canon-kc", vec![]);
    s.allow_migration = true;
    let h = decide(&owners, &s).unwrap();
    // A failed move is not retried on its own, even with allowMigration.
    assert_eq!(h.reason(), "StackMoveHeld");
    assert!(h.message("kc").contains("restore failed: boom"));
}

fn node(id: &str) -> bollard::models::Node {
    use bollard::models::{NodeSpec, NodeSpecAvailabilityEnum, NodeState, NodeStatus};
    bollard::models::Node {
        id: Some(id.into()),
        spec: Some(NodeSpec {
            availability: Some(NodeSpecAvailabilityEnum::ACTIVE),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: Some(NodeState::READY),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Regression (scripts/chaos, seed 1, step 1): on a swarm of three nodes the leader talked to a
/// node that did not hold the canonical's old volume, so the record's volume was "not present",
/// the provider was created and Swarm started it on the other node, on the canonical's old data.
#[test]
fn with_several_nodes_a_migrated_volume_not_listed_here_still_holds() {
    let mut snap = Snapshot::default();
    snap.configs.push(config(volume_record_spec(
        "p",
        "kc",
        &BTreeMap::new(),
        "warm-kc_data",
        "warm-canon-kc",
    )));
    snap.push_service(service("p", "kc", "warm-canon-kc"));
    let provider = subject("prov", "warm-kc", vec!["warm-kc_data"]);
    // One node: its list is complete, the volume is gone, nothing holds.
    snap.nodes = vec![node("a")];
    assert_eq!(decide(&Owners::new(&snap), &provider), None);
    // Two nodes: the volume may be on the other one.
    snap.nodes.push(node("b"));
    let h = decide(&Owners::new(&snap), &provider).expect("held");
    assert_eq!((h.phase(), h.reason()), (Phase::Held, "VolumeOwnedByOther"));
    // Also while the other node is down (seed 2026, step 21: right after a heal only one node
    // was ready, the hold lifted, and Swarm started the provider on the old data).
    snap.nodes[1].status = None;
    let h = decide(&Owners::new(&snap), &provider).expect("held while the node is down");
    assert_eq!(h.reason(), "VolumeOwnedByOther");
}

#[test]
fn a_failed_advance_hold_says_what_stays_live() {
    let rolled = Hold::AdvanceFailed {
        version: "3.6.0".into(),
        last_good: Some("3.5.3".into()),
        reason: "CrashLoop".into(),
        at_last_good: true,
    };
    assert_eq!(
        (rolled.phase(), rolled.reason()),
        (Phase::AdvanceFailed, "AdvanceFailed")
    );
    let m = rolled.message("forge");
    assert!(
        m.contains("3.6.0 failed (CrashLoop)") && m.contains("stays at 3.5.3"),
        "{m}"
    );
    assert!(m.contains("hearth retry forge"), "{m}");
    let left = Hold::AdvanceFailed {
        version: "3.6.0".into(),
        last_good: Some("3.5.3".into()),
        reason: "CrashLoop".into(),
        at_last_good: false,
    };
    assert!(
        left.message("forge").contains("3.6.0 stays live"),
        "{}",
        left.message("forge")
    );
}

//! Keeping stateful services on the node that holds their data (`pinVolumes`, on by default).
//!
//! A service that mounts local named volumes and that Swarm moves to another node starts there on
//! an empty volume. So once such a service's tasks run on one node, hearth records that node in
//! the service label [`LABEL_PIN_NODE`] and adds the placement constraint `node.id==<id>`; from
//! then on the pin comes from the label, whatever the recipe renders. The pin is part of the
//! desired spec (and of its `hearth.spec-hash`), so the plan never takes it for drift, and
//! `pinVolumes: false` (no pin in the desired spec) removes it with an ordinary update.
//!
//! Cost, measured on dockerd 20.10 (three-node swarm): adding the constraint is one service
//! update that restarts nothing, since Swarm keeps a task whose node still meets changed
//! constraints. Pinning at creation would need the volume's location (a volume list on every
//! node: requests growing with the nodes), so a new service is pinned once its first task runs.
//! A service whose node is gone waits (`VolumeNodeDown` in the assessment) instead of starting
//! elsewhere on empty data. Global services and services whose running tasks span several nodes
//! are not pinned (each task has its own node's volume).
//!
//! On a swarm with one node that can run tasks (ready and `active`), a pin cannot matter: nothing
//! is pinned, so `hearth apply --wait` ends with a plan that is clean. A new pin is made only when
//! a second such node exists; a recorded pin is kept whatever the node count (it protects data
//! already written). Node eligibility ignores the service's own placement constraints
//! (docs/decisions.md, "Pins wait for a second node").

use crate::observed::live::{Service, Task};
use bollard::models::{Node, NodeSpecAvailabilityEnum, NodeState, TaskState};

use crate::observed::{Snapshot, StackView};
use crate::render::{ServicePlan, StackSpec};

/// Service label: the ID of the node hearth pinned the service to.
pub const LABEL_PIN_NODE: &str = "hearth.pin-node";

/// `hearth.kind` of the pins record: the config that keeps a pruned deployment's pins, so that
/// added back it starts where its volumes are. Found by scripts/chaos (seed 2026): `pds` removed
/// and added back started on another node, on an empty volume, its data left on the old one.
pub const KIND_PINS: &str = "pins";
/// Pins record label: the deployment it is for (not `hearth.deployment`, so the record is no
/// object of the deployment: prune keeps it, purge removes it).
pub const LABEL_PINS_DEPLOYMENT: &str = "hearth.pins.deployment";
/// Pins record label prefix: `hearth.pin.<service name>=<node id>`.
pub const LABEL_PIN_PREFIX: &str = "hearth.pin.";

/// The pins record's config name.
pub fn pins_record_name(pool: &str, deployment: &str) -> String {
    use sha2::Digest;
    let name = format!("hearth-pins_{pool}_{deployment}");
    if name.len() <= 64 {
        return name;
    }
    // Cut and suffixed with 8 hex digits of its SHA-256, as the move records are.
    let hash = hex::encode(&sha2::Sha256::digest(name.as_bytes())[..4]);
    let keep: String = name.chars().take(55).collect();
    format!("{keep}_{hash}")
}

/// Every pool's pins records, by (pool, deployment): service name -> node ID.
pub fn recorded_pins(
    configs: &[bollard::models::Config],
) -> std::collections::HashMap<(String, String), std::collections::BTreeMap<String, String>> {
    let mut out: std::collections::HashMap<_, std::collections::BTreeMap<_, _>> =
        Default::default();
    for c in configs {
        let Some(l) = c.spec.as_ref().and_then(|s| s.labels.as_ref()) else {
            continue;
        };
        if l.get(crate::advance::LABEL_KIND).map(String::as_str) != Some(KIND_PINS) {
            continue;
        }
        let (Some(pool), Some(dep)) = (
            l.get(crate::render::LABEL_POOL),
            l.get(LABEL_PINS_DEPLOYMENT),
        ) else {
            continue;
        };
        let pins = out.entry((pool.clone(), dep.clone())).or_default();
        for (k, v) in l {
            if let Some(service) = k.strip_prefix(LABEL_PIN_PREFIX) {
                pins.insert(service.to_string(), v.clone());
            }
        }
    }
    out
}

/// One pin in a desired stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub service: String,
    pub node: String,
    /// Recorded by an earlier pass (from the label), not new in this one.
    pub recorded: bool,
}

/// `stack` with its stateful services pinned against `snap`, and the pins.
pub fn pin_volumes(stack: &StackSpec, snap: &Snapshot) -> (StackSpec, Vec<Pin>) {
    pin_volumes_in(
        stack,
        &snap.stack(&stack.stack),
        eligible_nodes(&snap.nodes),
        None,
    )
    .unwrap_or_else(|| (stack.clone(), Vec::new()))
}

/// Nodes that can run tasks: status ready and availability active.
pub fn eligible_nodes(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .filter(|n| n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY))
        .filter(|n| {
            n.spec.as_ref().and_then(|s| s.availability) == Some(NodeSpecAvailabilityEnum::ACTIVE)
        })
        .count()
}

/// [`pin_volumes`] against the stack's own part of a snapshot (`view`, grouped once per pass),
/// the number of [`eligible_nodes`] and the deployment's pins record (a service that does not
/// exist yet is created pinned to its recorded node): `None` when nothing is pinned, so the common
/// case copies nothing.
pub fn pin_volumes_in(
    stack: &StackSpec,
    view: &StackView,
    eligible_nodes: usize,
    recorded_pins: Option<&std::collections::BTreeMap<String, String>>,
) -> Option<(StackSpec, Vec<Pin>)> {
    let mut pins = Vec::new();
    for s in &stack.services {
        if !s.pinnable() {
            continue;
        }
        let Some(live) = view.services.iter().find(|l| name(l) == Some(&s.name)) else {
            if let Some(node) = recorded_pins.and_then(|r| r.get(&s.name)) {
                pins.push(Pin {
                    service: s.name.clone(),
                    node: node.clone(),
                    recorded: true,
                });
            }
            continue;
        };
        let recorded = live
            .spec
            .as_ref()
            .and_then(|sp| sp.labels.as_ref())
            .and_then(|l| l.get(LABEL_PIN_NODE))
            .filter(|n| !n.is_empty())
            .cloned();
        let node = match &recorded {
            Some(n) => n.clone(),
            // One node that can run it: a pin cannot matter (and would make a plan right after
            // `apply --wait` unclean); pin once a second node could take the task.
            None if eligible_nodes < 2 => continue,
            None => match running_node(live, &view.tasks) {
                Some(n) => n,
                None => continue,
            },
        };
        pins.push(Pin {
            service: s.name.clone(),
            node,
            recorded: recorded.is_some(),
        });
    }
    if pins.is_empty() {
        return None;
    }
    let mut out = stack.clone();
    for p in &pins {
        if let Some(s) = out.services.iter_mut().find(|s| s.name == p.service) {
            pin(s, &p.node);
        }
    }
    Some((out, pins))
}

/// `stack` with every stateful (pinnable) service pinned to `node`: a stack move restores the data
/// on the node hearth talks to, so the new stack's services must start there and nowhere else
/// (`swarm::migrate`).
pub fn pin_to_node(stack: &StackSpec, node: &str) -> StackSpec {
    let mut out = stack.clone();
    for s in out.services.iter_mut().filter(|s| s.pinnable()) {
        pin(s, node);
    }
    out
}

/// Adds the constraint and the label to one service, and re-hashes it.
fn pin(s: &mut ServicePlan, node: &str) {
    let mut spec = s.spec();
    let constraint = format!("node.id=={node}");
    let placement = spec
        .task_template
        .get_or_insert_with(Default::default)
        .placement
        .get_or_insert_with(Default::default);
    let constraints = placement.constraints.get_or_insert_with(Vec::new);
    let same =
        |c: &String| c.chars().filter(|c| !c.is_whitespace()).collect::<String>() == constraint;
    if !constraints.iter().any(same) {
        constraints.push(constraint);
    }
    spec.labels
        .get_or_insert_with(Default::default)
        .insert(LABEL_PIN_NODE.to_string(), node.to_string());
    s.set_spec(spec);
}

fn name(s: &Service) -> Option<&String> {
    s.spec.as_ref()?.name.as_ref()
}

/// The one node the live service's running tasks run on (none, or several: `None`).
fn running_node(live: &Service, tasks: &[&Task]) -> Option<String> {
    let mut nodes = tasks
        .iter()
        .filter(|t| t.service_id.is_some() && t.service_id == live.id)
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .filter_map(|t| t.node_id.clone());
    let first = nodes.next()?;
    nodes.all(|n| n == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{LABEL_SPEC_HASH, spec_hash};
    use bollard::models::{
        Mount, MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig, ServiceSpec,
        ServiceSpecMode, TaskSpec, TaskSpecContainerSpec, TaskStatus,
    };
    use std::collections::HashMap;

    fn plan(name: &str, volume: Option<&str>) -> ServicePlan {
        let mounts = volume.map(|v| {
            vec![Mount {
                typ: Some(MountType::VOLUME),
                source: Some(v.into()),
                target: Some("/data".into()),
                ..Default::default()
            }]
        });
        let mut spec = ServiceSpec {
            name: Some(name.into()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some("img".into()),
                    mounts,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let hash = spec_hash(&spec);
        spec.labels = Some(HashMap::from([
            (LABEL_SPEC_HASH.into(), hash),
            ("com.docker.stack.namespace".into(), "s".into()),
        ]));
        ServicePlan::new(name.into(), name.into(), spec)
    }

    fn stack(services: Vec<ServicePlan>) -> StackSpec {
        StackSpec {
            stack: "s".into(),
            networks: vec![],
            volumes: vec![],
            secrets: vec![],
            configs: vec![],
            services,
            warnings: vec![],
        }
    }

    fn live(p: &ServicePlan, labels: &[(&str, &str)]) -> Service {
        live_full(p, labels).into()
    }

    /// The live service as Docker lists it (with its full spec).
    fn live_full(p: &ServicePlan, labels: &[(&str, &str)]) -> bollard::models::Service {
        let mut spec = p.spec();
        let l = spec.labels.get_or_insert_with(Default::default);
        l.insert("com.docker.stack.namespace".into(), "s".into());
        for (k, v) in labels {
            l.insert(k.to_string(), v.to_string());
        }
        bollard::models::Service {
            id: Some(format!("id-{}", p.name)),
            spec: Some(spec),
            ..Default::default()
        }
    }

    fn task(service: &str, node: &str, state: TaskState) -> Task {
        Task {
            service_id: Some(format!("id-{service}")),
            node_id: Some(node.into()),
            desired_state: Some(TaskState::RUNNING),
            status: Some(TaskStatus {
                state: Some(state),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn constraints(s: &ServicePlan) -> Vec<String> {
        s.spec()
            .task_template
            .as_ref()
            .and_then(|t| t.placement.as_ref())
            .and_then(|p| p.constraints.clone())
            .unwrap_or_default()
    }

    #[test]
    fn a_service_added_back_is_created_pinned_to_its_recorded_node() {
        let st = stack(vec![plan("db", Some("data")), plan("web", None)]);
        let view = StackView::default();
        // No live service and no record: nothing to pin to.
        assert!(pin_volumes_in(&st, &view, 3, None).is_none());
        let recorded = std::collections::BTreeMap::from([
            ("db".to_string(), "n2".to_string()),
            ("web".to_string(), "n3".to_string()),
        ]);
        let (out, pins) = pin_volumes_in(&st, &view, 3, Some(&recorded)).expect("pinned");
        assert_eq!(
            pins,
            vec![Pin {
                service: "db".into(),
                node: "n2".into(),
                recorded: true
            }]
        );
        assert_eq!(
            constraints(&out.services[0]),
            vec!["node.id==n2".to_string()]
        );
        assert!(constraints(&out.services[1]).is_empty(), "not stateful");
    }

    #[test]
    fn pins_record_names_fit_docker() {
        assert_eq!(pins_record_name("p", "web"), "hearth-pins_p_web");
        let long = pins_record_name("pool", &"d".repeat(80));
        assert_eq!(long.len(), 64);
        assert_ne!(long, pins_record_name("pool", &"d".repeat(81)));
    }

    #[test]
    fn pin_to_node_pins_only_the_stateful_services() {
        let st = stack(vec![plan("db", Some("data")), plan("web", None)]);
        let out = pin_to_node(&st, "n1");
        assert_eq!(
            constraints(&out.services[0]),
            vec!["node.id==n1".to_string()]
        );
        assert!(constraints(&out.services[1]).is_empty());
        assert_eq!(
            out.services[0].spec().labels.unwrap().get(LABEL_PIN_NODE),
            Some(&"n1".to_string())
        );
    }

    #[test]
    fn a_volume_service_is_pinned_to_the_node_it_runs_on() {
        let db = plan("s_db", Some("s_data"));
        let web = plan("s_web", None);
        let snap = Snapshot {
            nodes: nodes(2),
            services: vec![live(&db, &[]), live(&web, &[])],
            tasks: vec![
                task("s_db", "n2", TaskState::RUNNING),
                task("s_web", "n1", TaskState::RUNNING),
            ],
            ..Default::default()
        };
        let (out, pins) = pin_volumes(&stack(vec![db.clone(), web.clone()]), &snap);
        assert_eq!(
            pins,
            [Pin {
                service: "s_db".into(),
                node: "n2".into(),
                recorded: false
            }]
        );
        let pinned = &out.services[0];
        assert_eq!(constraints(pinned), ["node.id==n2"]);
        assert_eq!(pinned.spec().labels.as_ref().unwrap()[LABEL_PIN_NODE], "n2");
        // re-hashed: the hash label matches the pinned spec, and differs from the unpinned one
        assert_eq!(pinned.spec_hash, spec_hash(&pinned.spec()));
        assert_eq!(
            pinned.spec().labels.as_ref().unwrap()[LABEL_SPEC_HASH],
            pinned.spec_hash
        );
        assert_ne!(pinned.spec_hash, db.spec_hash);
        // the stateless service is untouched
        assert_eq!(out.services[1], web);
    }

    #[test]
    fn the_recorded_node_wins_and_the_pin_is_stable() {
        let db = plan("s_db", Some("s_data"));
        let snap = Snapshot {
            services: vec![live(&db, &[(LABEL_PIN_NODE, "n3")])],
            // Swarm could not start it anywhere else: nothing runs
            tasks: vec![task("s_db", "n1", TaskState::PENDING)],
            ..Default::default()
        };
        let (out, pins) = pin_volumes(&stack(vec![db.clone()]), &snap);
        assert!(pins[0].recorded);
        assert_eq!(constraints(&out.services[0]), ["node.id==n3"]);
        // pinning the pinned spec again changes nothing (same hash: no update, no drift)
        let (again, _) = pin_volumes(&out, &snap);
        assert_eq!(again, out);
    }

    #[test]
    fn nothing_to_pin_to_yet_or_not_a_local_volume() {
        let db = plan("s_db", Some("s_data"));
        // not created yet / not running yet
        let (out, pins) = pin_volumes(&stack(vec![db.clone()]), &Snapshot::default());
        assert!(pins.is_empty() && out.services[0] == db);
        let snap = Snapshot {
            services: vec![live(&db, &[])],
            tasks: vec![task("s_db", "n1", TaskState::PREPARING)],
            ..Default::default()
        };
        assert!(pin_volumes(&stack(vec![db.clone()]), &snap).1.is_empty());
        // running on two nodes: each has its own volume, no single home
        let snap = Snapshot {
            services: vec![live(&db, &[])],
            tasks: vec![
                task("s_db", "n1", TaskState::RUNNING),
                task("s_db", "n2", TaskState::RUNNING),
            ],
            ..Default::default()
        };
        assert!(pin_volumes(&stack(vec![db.clone()]), &snap).1.is_empty());
        // a volume of another driver (shared storage) and a global service are left alone
        let mut nfs_spec = db.spec();
        if let Some(m) = nfs_spec
            .task_template
            .as_mut()
            .and_then(|t| t.container_spec.as_mut())
            .and_then(|c| c.mounts.as_mut())
        {
            m[0].volume_options = Some(MountVolumeOptions {
                driver_config: Some(MountVolumeOptionsDriverConfig {
                    name: Some("nfs".into()),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        let mut nfs = db.clone();
        nfs.set_spec(nfs_spec);
        let mut global_spec = db.spec();
        global_spec.mode = Some(ServiceSpecMode {
            global: Some(Default::default()),
            ..Default::default()
        });
        let mut global = db.clone();
        global.set_spec(global_spec);
        for s in [nfs, global] {
            let snap = Snapshot {
                services: vec![live(&s, &[])],
                tasks: vec![task("s_db", "n1", TaskState::RUNNING)],
                ..Default::default()
            };
            assert!(pin_volumes(&stack(vec![s]), &snap).1.is_empty());
        }
    }

    /// `n` ready, active nodes `n1`..; plus one drained node that never counts.
    fn nodes(n: usize) -> Vec<Node> {
        use bollard::models::{NodeSpec, NodeStatus};
        let node = |i: usize, availability| Node {
            id: Some(format!("n{i}")),
            spec: Some(NodeSpec {
                availability: Some(availability),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                state: Some(NodeState::READY),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut out: Vec<Node> = (1..=n)
            .map(|i| node(i, NodeSpecAvailabilityEnum::ACTIVE))
            .collect();
        out.push(node(n + 1, NodeSpecAvailabilityEnum::DRAIN));
        out
    }

    #[test]
    fn one_eligible_node_pins_nothing_a_second_one_pins_and_the_pin_stays() {
        let db = plan("s_db", Some("s_data"));
        let running = vec![task("s_db", "n1", TaskState::RUNNING)];
        let one = Snapshot {
            nodes: nodes(1),
            services: vec![live(&db, &[])],
            tasks: running.clone(),
            ..Default::default()
        };
        assert_eq!(eligible_nodes(&one.nodes), 1);
        let (out, pins) = pin_volumes(&stack(vec![db.clone()]), &one);
        assert!(pins.is_empty() && out.services[0] == db);
        // A second node joins: the service is pinned where it runs.
        let two = Snapshot {
            nodes: nodes(2),
            ..one.clone()
        };
        let (pinned, pins) = pin_volumes(&stack(vec![db.clone()]), &two);
        assert_eq!(pins.len(), 1);
        assert_eq!(constraints(&pinned.services[0]), ["node.id==n1"]);
        // Back to one eligible node: the recorded pin is kept.
        let back = Snapshot {
            nodes: nodes(1),
            services: vec![live(&db, &[(LABEL_PIN_NODE, "n1")])],
            tasks: running,
            ..Default::default()
        };
        let (kept, pins) = pin_volumes(&stack(vec![db.clone()]), &back);
        assert!(pins[0].recorded);
        assert_eq!(kept, pinned);
    }

    #[test]
    fn the_pin_is_not_drift_for_the_plan() {
        use crate::plan::diff::diff_ignoring;
        let db = plan("s_db", Some("s_data"));
        let snap = Snapshot {
            nodes: nodes(2),
            services: vec![live(&db, &[])],
            tasks: vec![task("s_db", "n2", TaskState::RUNNING)],
            ..Default::default()
        };
        let (pinned, _) = pin_volumes(&stack(vec![db]), &snap);
        // after hearth applied the pinned spec, the live spec is the pinned one
        let mut applied = Snapshot {
            nodes: nodes(2),
            tasks: snap.tasks.clone(),
            ..Default::default()
        };
        applied.push_service(live_full(&pinned.services[0], &[]));
        let (again, _) = pin_volumes(&stack(vec![plan("s_db", Some("s_data"))]), &applied);
        let want = serde_json::to_value(again.services[0].spec()).unwrap();
        let have = applied.live_spec(&applied.services[0]);
        let d = diff_ignoring(&want, &have, &|_| false);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(again.services[0].spec_hash, pinned.services[0].spec_hash);
    }
}

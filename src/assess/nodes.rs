//! Reading Swarm nodes for assessment: which are up, drained or gone, their hostnames, and which
//! placement constraints or reservations no node can satisfy (so `Unschedulable` names them).
//! Constraints are evaluated the way Swarm does (`node.id`, `node.hostname`, `node.role`,
//! `node.platform.os|arch`, `node.labels.*`, `engine.labels.*` with `==` / `!=`); a key hearth does
//! not know is never blamed.

use bollard::models::{Node, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState};

/// The node's state is `ready`.
pub fn is_ready(n: &Node) -> bool {
    n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY)
}

/// The node's availability is `drain`.
pub fn is_drained(n: &Node) -> bool {
    n.spec.as_ref().and_then(|s| s.availability) == Some(NodeSpecAvailabilityEnum::DRAIN)
}

/// Ready and `active` (not drained, not paused): the scheduler may put new tasks there.
pub fn is_schedulable(n: &Node) -> bool {
    is_ready(n)
        && n.spec.as_ref().and_then(|s| s.availability) != Some(NodeSpecAvailabilityEnum::DRAIN)
        && n.spec.as_ref().and_then(|s| s.availability) != Some(NodeSpecAvailabilityEnum::PAUSE)
}

/// The node's hostname, else its ID.
pub fn name(n: &Node) -> String {
    n.description
        .as_ref()
        .and_then(|d| d.hostname.clone())
        .or_else(|| n.id.clone())
        .unwrap_or_default()
}

/// The node's state as Swarm says it (`down`, `unknown`, `disconnected`, `ready`).
pub fn state(n: &Node) -> String {
    n.status
        .as_ref()
        .and_then(|s| s.state)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub fn by_id<'a>(nodes: &'a [Node], id: &str) -> Option<&'a Node> {
    nodes.iter().find(|n| n.id.as_deref() == Some(id))
}

/// Whether `n` satisfies one constraint; `None` when the key is not one hearth knows.
pub fn satisfies(n: &Node, constraint: &str) -> Option<bool> {
    let (key, want, equal) = if let Some((k, v)) = constraint.split_once("!=") {
        (k, v, false)
    } else {
        let (k, v) = constraint.split_once("==")?;
        (k, v, true)
    };
    let (key, want) = (key.trim(), want.trim());
    let desc = n.description.as_ref();
    let have: Option<String> = match key {
        "node.id" => n.id.clone(),
        "node.hostname" => desc.and_then(|d| d.hostname.clone()),
        "node.role" => n.spec.as_ref().and_then(|s| s.role).map(|r| match r {
            NodeSpecRoleEnum::MANAGER => "manager".to_string(),
            _ => "worker".to_string(),
        }),
        "node.platform.os" => desc
            .and_then(|d| d.platform.as_ref())
            .and_then(|p| p.os.clone()),
        "node.platform.arch" => desc
            .and_then(|d| d.platform.as_ref())
            .and_then(|p| p.architecture.clone()),
        _ => {
            let engine = || {
                desc.and_then(|d| d.engine.as_ref())
                    .and_then(|e| e.labels.as_ref())
            };
            let labels = match key.strip_prefix("node.labels.") {
                Some(l) => Some((l, n.spec.as_ref().and_then(|s| s.labels.as_ref()))),
                None => key.strip_prefix("engine.labels.").map(|l| (l, engine())),
            };
            let (label, map) = labels?;
            map.and_then(|m| m.get(label).cloned())
        }
    };
    // Swarm compares case-insensitively; a missing label never equals anything.
    let same = have.is_some_and(|h| h.eq_ignore_ascii_case(want));
    Some(if equal { same } else { !same })
}

/// The constraints that no schedulable node satisfies (each on its own), in their order; empty
/// when there are no nodes to judge by.
pub fn unsatisfied(constraints: &[String], nodes: &[Node]) -> Vec<String> {
    let usable: Vec<&Node> = nodes.iter().filter(|n| is_schedulable(n)).collect();
    if nodes.is_empty() {
        return Vec::new();
    }
    constraints
        .iter()
        .filter(|c| usable.iter().all(|n| satisfies(n, c).is_some_and(|ok| !ok)))
        .cloned()
        .collect()
}

/// The most memory and CPUs (nano) any schedulable node has.
pub fn largest(nodes: &[Node]) -> (i64, i64) {
    nodes
        .iter()
        .filter(|n| is_schedulable(n))
        .filter_map(|n| n.description.as_ref()?.resources.as_ref())
        .fold((0, 0), |(m, c), r| {
            (
                m.max(r.memory_bytes.unwrap_or(0)),
                c.max(r.nano_cpus.unwrap_or(0)),
            )
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bollard::models::{
        EngineDescription, NodeDescription, NodeSpec, NodeStatus, Platform, ResourceObject,
    };
    use std::collections::HashMap;

    /// A node `id` with hostname `host`, a role, a state and an availability, label hearth.node=id.
    pub fn node(
        id: &str,
        host: &str,
        manager: bool,
        state: NodeState,
        availability: NodeSpecAvailabilityEnum,
    ) -> Node {
        Node {
            id: Some(id.into()),
            description: Some(NodeDescription {
                hostname: Some(host.into()),
                platform: Some(Platform {
                    architecture: Some("x86_64".into()),
                    os: Some("linux".into()),
                }),
                resources: Some(ResourceObject {
                    nano_cpus: Some(2_000_000_000),
                    memory_bytes: Some(8 << 30),
                    ..Default::default()
                }),
                engine: Some(EngineDescription {
                    labels: Some(HashMap::from([("zone".into(), "a".into())])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            spec: Some(NodeSpec {
                role: Some(if manager {
                    NodeSpecRoleEnum::MANAGER
                } else {
                    NodeSpecRoleEnum::WORKER
                }),
                availability: Some(availability),
                labels: Some(HashMap::from([("hearth.node".into(), id.into())])),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                state: Some(state),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn three() -> Vec<Node> {
        use NodeSpecAvailabilityEnum::*;
        vec![
            node("1", "h1", true, NodeState::READY, ACTIVE),
            node("2", "h2", false, NodeState::READY, ACTIVE),
            node("3", "h3", false, NodeState::DOWN, ACTIVE),
        ]
    }

    #[test]
    fn constraints_are_evaluated_like_swarm() {
        let n = &three()[1];
        assert_eq!(satisfies(n, "node.role==worker"), Some(true));
        assert_eq!(satisfies(n, "node.role == manager"), Some(false));
        assert_eq!(satisfies(n, "node.hostname!=h1"), Some(true));
        assert_eq!(satisfies(n, "node.id==2"), Some(true));
        assert_eq!(satisfies(n, "node.labels.hearth.node==2"), Some(true));
        assert_eq!(satisfies(n, "node.labels.nope==1"), Some(false));
        assert_eq!(satisfies(n, "node.labels.nope!=1"), Some(true));
        assert_eq!(satisfies(n, "engine.labels.zone==A"), Some(true));
        assert_eq!(satisfies(n, "node.platform.os==linux"), Some(true));
        assert_eq!(satisfies(n, "node.platform.arch==arm64"), Some(false));
        assert_eq!(satisfies(n, "node.weird==1"), None);
        assert_eq!(satisfies(n, "garbage"), None);
    }

    #[test]
    fn only_constraints_no_usable_node_meets_are_blamed() {
        let nodes = three();
        let cs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // node 3 would satisfy it, but it is down
        assert_eq!(
            unsatisfied(&cs(&["node.role==worker", "node.id==3"]), &nodes),
            ["node.id==3"]
        );
        assert!(unsatisfied(&cs(&["node.labels.hearth.node!=1"]), &nodes).is_empty());
        assert_eq!(
            unsatisfied(&cs(&["node.labels.nope==1", "node.weird==x"]), &nodes),
            ["node.labels.nope==1"]
        );
        assert!(unsatisfied(&cs(&["node.labels.nope==1"]), &[]).is_empty());
    }

    #[test]
    fn drained_and_down_nodes_are_not_schedulable() {
        use NodeSpecAvailabilityEnum::*;
        let drained = node("4", "h4", false, NodeState::READY, DRAIN);
        assert!(is_drained(&drained) && !is_schedulable(&drained));
        assert!(!is_schedulable(&three()[2]));
        assert_eq!(state(&three()[2]), "down");
        assert_eq!(largest(&three()), (8 << 30, 2_000_000_000));
    }
}

//! Where a probe goes: the running tasks of a compose service (`<stack>_<key>`) in a [`Snapshot`],
//! and, per task, the addresses hearth can reach it on.
//!
//! Why not the service's name or VIP: Swarm's service VIPs and the ingress routing mesh do not route
//! on every host (they do not on hearth's test machine), and a VIP answers for *some* task, so it
//! cannot say which task is unready. Task addresses always work, so probes go to each running task:
//!
//! - [`ReachPolicy::GwbridgeFirst`] (hearth runs on a swarm node, outside any container): a task
//!   whose container runs on the daemon hearth talks to is reached on the container's
//!   `docker_gwbridge` IPv4 address (the host is on that bridge); a task elsewhere on its overlay
//!   addresses (which the host can only reach when it is itself attached, so such a probe may fail
//!   with a clear "connect" message).
//! - [`ReachPolicy::Overlay`] (hearth runs in a container attached to the apps' overlay
//!   networks): the task's overlay addresses (`NetworksAttachments[].Addresses`), optionally only
//!   on the named networks. `docker_gwbridge` does not help there: it has inter-container traffic
//!   disabled (`enable_icc=false`).
//!
//! Everything here except [`Reach::observe`] is pure over inspect data, so the rules are tested
//! without Docker. [`Reach::observe`] makes three calls per probe round (daemon info, the gwbridge
//! network, the running tasks as raw JSON) whatever the number of probes.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::observed::live::Task;
use bollard::models::TaskState;
use serde_json::Value;

use super::ProbeError;
use crate::observed::Snapshot;
use crate::swarm::{Client, SwarmError};

/// How hearth reaches task addresses; see the module doc.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReachPolicy {
    /// `docker_gwbridge` for containers on hearth's daemon, overlay addresses for the others.
    #[default]
    GwbridgeFirst,
    /// Overlay addresses only; when `networks` is not empty, only on those networks (by name).
    Overlay { networks: Vec<String> },
}

impl std::str::FromStr for ReachPolicy {
    type Err = String;

    /// `gwbridge`, `overlay`, or `overlay:NET[,NET...]`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().split_once(':') {
            None if s.trim() == "gwbridge" => Ok(ReachPolicy::GwbridgeFirst),
            None if s.trim() == "overlay" => Ok(ReachPolicy::Overlay { networks: vec![] }),
            Some(("overlay", nets)) => {
                let networks: Vec<String> = nets
                    .split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect();
                if networks.is_empty() {
                    return Err("overlay: names no network (use `overlay` for every one)".into());
                }
                Ok(ReachPolicy::Overlay { networks })
            }
            _ => Err(format!(
                "{s:?}: expected `gwbridge`, `overlay` or `overlay:NET[,NET...]`"
            )),
        }
    }
}

/// A task's address on one overlay network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayAddress {
    pub network: String,
    pub ip: IpAddr,
}

/// How an address was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Gwbridge,
    Overlay(String),
}

/// One address of a task, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub ip: IpAddr,
    pub via: Via,
}

/// What a probe round knows about reachability: read once per round, shared by every probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub policy: ReachPolicy,
    /// The swarm node ID of the daemon hearth talks to.
    pub local_node: Option<String>,
    /// `docker_gwbridge` IPv4 address by container ID (only containers of the local daemon).
    pub gwbridge: HashMap<String, IpAddr>,
    /// Overlay addresses by task ID.
    pub overlay: HashMap<String, Vec<OverlayAddress>>,
}

/// One running task of the probed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTarget {
    pub task_id: String,
    /// `<service>.<slot>` (or `<service>.<node>` for global services), for messages.
    pub label: String,
    pub node_id: String,
    pub container_id: Option<String>,
    /// The container runs on the daemon hearth talks to (exec and inspect work on it).
    pub local: bool,
    /// Best first, per [`ReachPolicy`]; may be empty.
    pub addresses: Vec<Address>,
}

impl TaskTarget {
    /// The address a network probe uses (the first, best one).
    pub(crate) fn address(&self) -> Result<IpAddr, ProbeError> {
        self.addresses
            .first()
            .map(|a| a.ip)
            .ok_or_else(|| ProbeError::NoTaskAddress {
                task: self.label.clone(),
            })
    }
}

/// The Docker service name of compose service `key` in `stack`.
pub fn service_name(stack: &str, key: &str) -> String {
    format!("{stack}_{key}")
}

/// The running tasks of `<stack>_<key>` (desired and current state running), each with its
/// reachable addresses; an error says why there is nothing to probe.
pub fn resolve(
    snapshot: &Snapshot,
    stack: &str,
    key: &str,
    reach: &Reach,
) -> Result<Vec<TaskTarget>, ProbeError> {
    resolve_where(snapshot, stack, key, reach, is_running)
}

/// Like [`resolve`], but also the tasks Swarm holds in `starting` while their container's
/// healthcheck has not passed yet (their container exists: the `docker` probe reads its health).
pub(crate) fn resolve_started(
    snapshot: &Snapshot,
    stack: &str,
    key: &str,
    reach: &Reach,
) -> Result<Vec<TaskTarget>, ProbeError> {
    resolve_where(snapshot, stack, key, reach, |t| {
        is_running(t)
            || (t.desired_state == Some(TaskState::RUNNING)
                && t.status.as_ref().and_then(|s| s.state) == Some(TaskState::STARTING))
    })
}

fn resolve_where(
    snapshot: &Snapshot,
    stack: &str,
    key: &str,
    reach: &Reach,
    keep: fn(&Task) -> bool,
) -> Result<Vec<TaskTarget>, ProbeError> {
    let name = service_name(stack, key);
    let service = snapshot
        .services
        .iter()
        .find(|s| s.spec.as_ref().and_then(|sp| sp.name.as_deref()) == Some(name.as_str()))
        .ok_or_else(|| ProbeError::ServiceNotFound {
            service: name.clone(),
        })?;
    let id = service.id.as_deref().unwrap_or_default();
    let tasks: Vec<&Task> = snapshot
        .tasks
        .iter()
        .filter(|t| t.service_id.as_deref() == Some(id))
        .collect();
    let running: Vec<TaskTarget> = tasks
        .iter()
        .filter(|t| keep(t))
        .map(|t| task_target(&name, t, reach))
        .collect();
    if running.is_empty() {
        return Err(ProbeError::NoRunningTask {
            states: describe_states(&tasks),
            service: name,
        });
    }
    Ok(running)
}

fn is_running(t: &Task) -> bool {
    t.desired_state == Some(TaskState::RUNNING)
        && t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
}

/// `2 failed, 1 preparing`, or `no tasks`: the states of the tasks Swarm still wants running
/// (all tasks when none is wanted).
fn describe_states(tasks: &[&Task]) -> String {
    let wanted: Vec<&&Task> = tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .collect();
    let pool: Vec<&Task> = if wanted.is_empty() {
        tasks.to_vec()
    } else {
        wanted.into_iter().copied().collect()
    };
    if pool.is_empty() {
        return "no tasks".into();
    }
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for t in pool {
        let state = t
            .status
            .as_ref()
            .and_then(|s| s.state)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into());
        *counts.entry(state).or_default() += 1;
    }
    counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One task's target: its label, locality and addresses per the policy.
fn task_target(service: &str, task: &Task, reach: &Reach) -> TaskTarget {
    let task_id = task.id.clone().unwrap_or_default();
    let node_id = task.node_id.clone().unwrap_or_default();
    let container_id = task
        .status
        .as_ref()
        .and_then(|s| s.container_status.as_ref())
        .and_then(|c| c.container_id.clone())
        .filter(|c| !c.is_empty());
    let label = match task.slot {
        Some(slot) if slot > 0 => format!("{service}.{slot}"),
        _ => format!("{service}.{}", short(&node_id)),
    };
    let local = reach.local_node.as_deref().is_some_and(|n| n == node_id);
    let overlay = reach
        .overlay
        .get(&task_id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let addresses = addresses(
        &reach.policy,
        local,
        container_id
            .as_deref()
            .and_then(|c| reach.gwbridge.get(c))
            .copied(),
        overlay,
    );
    TaskTarget {
        task_id,
        label,
        node_id,
        container_id,
        local,
        addresses,
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The reachability rule itself: the addresses of one task, best first.
fn addresses(
    policy: &ReachPolicy,
    local: bool,
    gwbridge: Option<IpAddr>,
    overlay: &[OverlayAddress],
) -> Vec<Address> {
    let overlay_addrs = |only: &[String]| {
        overlay
            .iter()
            .filter(|o| o.network != "ingress")
            .filter(|o| only.is_empty() || only.contains(&o.network))
            .map(|o| Address {
                ip: o.ip,
                via: Via::Overlay(o.network.clone()),
            })
            .collect::<Vec<_>>()
    };
    match policy {
        ReachPolicy::GwbridgeFirst => {
            let mut out = Vec::new();
            if let (true, Some(ip)) = (local, gwbridge) {
                out.push(Address {
                    ip,
                    via: Via::Gwbridge,
                });
            }
            out.extend(overlay_addrs(&[]));
            out
        }
        ReachPolicy::Overlay { networks } => overlay_addrs(networks),
    }
}

/// `docker_gwbridge` addresses by container ID from the network's inspect (`Containers`).
fn gwbridge_addresses(
    containers: &HashMap<String, bollard::models::EndpointResource>,
) -> HashMap<String, IpAddr> {
    containers
        .iter()
        .filter_map(|(id, ep)| Some((id.clone(), parse_cidr_ip(ep.ipv4_address.as_deref()?)?)))
        .collect()
}

/// Overlay addresses by task ID from raw task JSON (`NetworksAttachments[].Addresses`, CIDR).
fn overlay_addresses(raw_tasks: &[Value]) -> HashMap<String, Vec<OverlayAddress>> {
    let mut out = HashMap::new();
    for t in raw_tasks {
        let Some(id) = t["ID"].as_str() else { continue };
        let mut addrs = Vec::new();
        for att in t["NetworksAttachments"].as_array().into_iter().flatten() {
            let network = att["Network"]["Spec"]["Name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            for a in att["Addresses"].as_array().into_iter().flatten() {
                if let Some(ip) = a.as_str().and_then(parse_cidr_ip) {
                    addrs.push(OverlayAddress {
                        network: network.clone(),
                        ip,
                    });
                }
            }
        }
        out.insert(id.to_string(), addrs);
    }
    out
}

/// `10.0.1.5/24` -> `10.0.1.5` (a bare address is accepted too).
fn parse_cidr_ip(s: &str) -> Option<IpAddr> {
    s.split('/').next()?.trim().parse().ok()
}

impl Reach {
    /// Reads what a probe round needs, concurrently: the daemon's node ID, the `docker_gwbridge`
    /// network (a missing network means no container has one) and the running tasks' overlay
    /// addresses. The error is the first failed call's.
    pub async fn observe(client: &Client, policy: ReachPolicy) -> Result<Reach, SwarmError> {
        let (info, gw, tasks) = tokio::join!(
            client.info(),
            client.inspect_network("docker_gwbridge"),
            client.list_tasks_raw(Some("running")),
        );
        let info = info?;
        let gwbridge = match gw {
            Ok(n) => gwbridge_addresses(&n.containers.unwrap_or_default()),
            Err(e) if e.is_not_found() => HashMap::new(),
            Err(e) => return Err(e),
        };
        let tasks = tasks?;
        Ok(Reach {
            policy,
            local_node: info.swarm.and_then(|s| s.node_id).filter(|n| !n.is_empty()),
            gwbridge,
            overlay: overlay_addresses(&tasks),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::live::{Service, ServiceSpec};
    use bollard::models::{ContainerStatus, EndpointResource, TaskStatus};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ov(net: &str, a: &str) -> OverlayAddress {
        OverlayAddress {
            network: net.into(),
            ip: ip(a),
        }
    }

    fn task(id: &str, svc: &str, slot: i64, node: &str, state: TaskState, c: &str) -> Task {
        Task {
            id: Some(id.into()),
            service_id: Some(svc.into()),
            slot: Some(slot),
            node_id: Some(node.into()),
            desired_state: Some(TaskState::RUNNING),
            status: Some(TaskStatus {
                state: Some(state),
                container_status: Some(ContainerStatus {
                    container_id: Some(c.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            services: vec![Service {
                id: Some("s1".into()),
                spec: Some(ServiceSpec {
                    name: Some("web_app".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            tasks: vec![
                task("t1", "s1", 1, "n1", TaskState::RUNNING, "c1"),
                task("t2", "s1", 2, "n2", TaskState::RUNNING, "c2"),
                task("t3", "s1", 3, "n1", TaskState::FAILED, "c3"),
                task("x1", "other", 1, "n1", TaskState::RUNNING, "cx"),
            ],
            ..Default::default()
        }
    }

    fn reach(policy: ReachPolicy) -> Reach {
        Reach {
            policy,
            local_node: Some("n1".into()),
            gwbridge: HashMap::from([("c1".into(), ip("172.18.0.5"))]),
            overlay: HashMap::from([
                (
                    "t1".into(),
                    vec![ov("ingress", "10.0.0.9"), ov("web_default", "10.0.1.5")],
                ),
                (
                    "t2".into(),
                    vec![ov("web_default", "10.0.1.6"), ov("proxy", "10.0.2.6")],
                ),
            ]),
        }
    }

    #[test]
    fn gwbridge_first_for_local_containers_overlay_for_others() {
        let t = resolve(
            &snapshot(),
            "web",
            "app",
            &reach(ReachPolicy::GwbridgeFirst),
        )
        .unwrap();
        assert_eq!(t.len(), 2, "only running tasks of web_app: {t:?}");
        assert_eq!(t[0].label, "web_app.1");
        assert!(t[0].local);
        assert_eq!(
            t[0].addresses,
            vec![
                Address {
                    ip: ip("172.18.0.5"),
                    via: Via::Gwbridge
                },
                Address {
                    ip: ip("10.0.1.5"),
                    via: Via::Overlay("web_default".into())
                }
            ],
            "gwbridge first, ingress never"
        );
        assert!(!t[1].local);
        assert_eq!(t[1].address().unwrap(), ip("10.0.1.6"));
    }

    #[test]
    fn overlay_policy_skips_gwbridge_and_filters_networks() {
        let any = resolve(
            &snapshot(),
            "web",
            "app",
            &reach(ReachPolicy::Overlay { networks: vec![] }),
        )
        .unwrap();
        assert_eq!(any[0].address().unwrap(), ip("10.0.1.5"));
        let proxy = ReachPolicy::Overlay {
            networks: vec!["proxy".into()],
        };
        let only = resolve(&snapshot(), "web", "app", &reach(proxy)).unwrap();
        assert!(only[0].addresses.is_empty());
        assert_eq!(
            only[0].address().unwrap_err().to_string(),
            "task web_app.1 has no address hearth can reach (container not on docker_gwbridge \
             and no overlay address)"
        );
        assert_eq!(only[1].address().unwrap(), ip("10.0.2.6"));
    }

    #[test]
    fn a_local_container_missing_from_gwbridge_falls_back_to_overlay() {
        let mut r = reach(ReachPolicy::GwbridgeFirst);
        r.gwbridge.clear();
        let t = resolve(&snapshot(), "web", "app", &r).unwrap();
        assert_eq!(t[0].address().unwrap(), ip("10.0.1.5"));
        // A remote container's gwbridge entry (impossible from one daemon) is never used.
        let a = addresses(
            &ReachPolicy::GwbridgeFirst,
            false,
            Some(ip("172.18.0.9")),
            &[],
        );
        assert!(a.is_empty());
    }

    #[test]
    fn missing_service_and_no_running_task_are_explained() {
        let r = reach(ReachPolicy::GwbridgeFirst);
        let err = resolve(&snapshot(), "web", "db", &r).unwrap_err();
        assert_eq!(err.to_string(), "service web_db not found");
        let mut snap = snapshot();
        snap.tasks.retain(|t| t.id.as_deref() == Some("t3"));
        snap.tasks
            .push(task("t4", "s1", 4, "n1", TaskState::STARTING, "c4"));
        assert_eq!(
            resolve_started(&snap, "web", "app", &r).unwrap()[0].task_id,
            "t4",
            "a starting task has a container whose health can be read"
        );
        snap.tasks.pop();
        let err = resolve(&snap, "web", "app", &r).unwrap_err();
        assert_eq!(err.to_string(), "no running task of web_app (1 failed)");
        snap.tasks.clear();
        let err = resolve(&snap, "web", "app", &r).unwrap_err();
        assert_eq!(err.to_string(), "no running task of web_app (no tasks)");
    }

    #[test]
    fn global_tasks_are_labelled_by_node() {
        let mut t = task("g", "s1", 0, "abcdefghijklmnop", TaskState::RUNNING, "c");
        t.slot = None;
        let tt = task_target("web_edge", &t, &Reach::default());
        assert_eq!(tt.label, "web_edge.abcdefghijkl");
        assert!(!tt.local, "no known local node: nothing is local");
    }

    #[test]
    fn inspect_data_is_parsed() {
        let raw = serde_json::json!([
            {"ID": "t1", "NetworksAttachments": [
                {"Network": {"Spec": {"Name": "web_default"}}, "Addresses": ["10.0.1.5/24"]},
                {"Network": {"Spec": {"Name": "proxy"}}, "Addresses": ["10.0.2.5/24", "junk"]}
            ]},
            {"ID": "t2"},
            {"NoId": true}
        ]);
        let o = overlay_addresses(raw.as_array().unwrap());
        assert_eq!(
            o["t1"],
            vec![ov("web_default", "10.0.1.5"), ov("proxy", "10.0.2.5")]
        );
        assert!(o["t2"].is_empty());
        assert_eq!(o.len(), 2);
        let gw = gwbridge_addresses(&HashMap::from([
            (
                "c1".to_string(),
                EndpointResource {
                    ipv4_address: Some("172.18.0.5/16".into()),
                    ..Default::default()
                },
            ),
            ("c2".to_string(), EndpointResource::default()),
        ]));
        assert_eq!(gw, HashMap::from([("c1".to_string(), ip("172.18.0.5"))]));
        assert_eq!(parse_cidr_ip("fd00::1/64"), Some(ip("fd00::1")));
        assert_eq!(parse_cidr_ip("nope"), None);
    }

    #[test]
    fn reach_policy_parses_from_the_command_line() {
        assert_eq!("gwbridge".parse(), Ok(ReachPolicy::GwbridgeFirst));
        assert_eq!(
            "overlay".parse(),
            Ok(ReachPolicy::Overlay { networks: vec![] })
        );
        assert_eq!(
            "overlay:proxy, internal".parse(),
            Ok(ReachPolicy::Overlay {
                networks: vec!["proxy".into(), "internal".into()]
            })
        );
        assert!("overlay:".parse::<ReachPolicy>().is_err());
        assert!(
            "vip"
                .parse::<ReachPolicy>()
                .unwrap_err()
                .contains("expected")
        );
    }
}

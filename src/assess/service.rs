//! Judging one service from its tasks: how many of its desired tasks run the current spec, and if
//! it is wedged, why (the per-service half of the precedence in the module doc of `assess`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::observed::live::{Service, Task};
use bollard::models::{
    MountType, Node, NodeSpecAvailabilityEnum, NodeState, ServiceUpdateStatusStateEnum, TaskState,
};

use super::model::{Wedge, WedgeReason};
use super::nodes;
use super::tasks::{
    self, ERR_NO_SUCH_IMAGE, ERR_NO_SUITABLE_NODE, ERR_UNHEALTHY, describe_failure, exit_code,
};
use super::{Convergence, ServiceProgress};
use crate::render::LABEL_SPEC_HASH;

/// What a service is judged against, besides its own tasks.
pub struct Context<'a> {
    pub now: SystemTime,
    pub nodes: &'a [Node],
    /// `Some(h)`: the spec hash the desired spec has; `None`: unknown.
    pub expected_hash: Option<&'a str>,
    pub logs: &'a HashMap<String, Vec<String>>,
    /// The healthcheck's `Test` from the raw spec (see `AssessInput::raw_specs`).
    pub healthcheck: Option<Vec<String>>,
    pub crash_window: Duration,
    pub crash_threshold: usize,
}

/// One service's standing.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub progress: ServiceProgress,
    pub wedge: Option<Wedge>,
    /// Containers whose log tail would explain this service's failures (newest first).
    pub logs_wanted: Vec<String>,
}

/// Log lines quoted in a message at most.
const LOG_LINES: usize = 10;

pub fn judge(service: &Service, tasks: &[&Task], cx: &Context) -> Verdict {
    let spec = service.spec.as_ref();
    let name = spec.and_then(|s| s.name.clone()).unwrap_or_default();
    let (desired, job) = desired_tasks(service, cx.nodes);

    let all = tasks::newest_first(tasks.iter().copied());
    let current: Vec<&Task> = all
        .iter()
        .copied()
        .filter(|t| tasks::is_current(service, t))
        .collect();
    let wanted: Vec<&Task> = current
        .iter()
        .copied()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .collect();
    let running = wanted
        .iter()
        .filter(|t| tasks::state(t) == Some(TaskState::RUNNING))
        .count() as u64;
    let stale_running = all
        .iter()
        .any(|t| t.desired_state == Some(TaskState::RUNNING) && !tasks::is_current(service, t));
    let converged = running >= desired && wanted.len() as u64 == running && !stale_running || job;

    let recent: Vec<&Task> = current
        .iter()
        .copied()
        .filter(|t| tasks::is_failure(t, job) && within(cx, t))
        .filter(|t| !tasks::replaced_before_it_ended(t, &all))
        .collect();
    let newest_failure_any = all.iter().copied().find(|t| tasks::is_failure(t, job));
    let newest_failure_current = current.iter().copied().find(|t| tasks::is_failure(t, job));

    let live_hash = spec
        .and_then(|s| s.labels.as_ref())
        .and_then(|l| l.get(LABEL_SPEC_HASH))
        .map(String::as_str);
    let outdated = cx.expected_hash.is_some_and(|h| live_hash != Some(h));
    let update = service.update_status.as_ref();
    let update_state = update.and_then(|u| u.state);
    let update_msg = update
        .and_then(|u| u.message.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| update_state.map(|s| s.to_string()).unwrap_or_default());

    let mut logs_wanted = Vec::new();
    let mut want_logs = |t: Option<&Task>| {
        if let Some(c) = t.and_then(tasks::container_id)
            && !logs_wanted.iter().any(|w| w == c)
        {
            logs_wanted.push(c.to_string());
        }
    };
    let wedge = |reason, message: String, t: Option<&Task>| Wedge {
        reason,
        service: name.clone(),
        message,
        exit_code: t.and_then(exit_code),
    };
    let last = |t: Option<&Task>| {
        t.map(|t| format!("; last failure: {}{}", describe_failure(t), log_tail(cx, t)))
            .unwrap_or_default()
    };

    // Swarm's own verdict on an update comes first: the task failures are its cause.
    let rolled_back = matches!(
        update_state,
        Some(ServiceUpdateStatusStateEnum::ROLLBACK_STARTED)
            | Some(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED)
    ) && (cx.expected_hash.is_none() || outdated);
    let mut found = None;
    if update_state == Some(ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED) {
        want_logs(newest_failure_any);
        found = Some(wedge(
            WedgeReason::RollbackPaused,
            format!(
                "{name}: the update failed and Swarm paused rolling it back ({update_msg}){}",
                last(newest_failure_any)
            ),
            newest_failure_any,
        ));
    } else if rolled_back {
        // The failed tasks ran the spec that was rolled back, not the current one.
        let failed = all
            .iter()
            .copied()
            .find(|t| tasks::is_failure(t, job) && !tasks::is_current(service, t))
            .or(newest_failure_any);
        want_logs(failed);
        found = Some(wedge(
            WedgeReason::RolledBack,
            format!(
                "{name}: the update failed and Swarm rolled it back ({update_msg}){}",
                last(failed)
            ),
            failed,
        ));
    } else if update_state == Some(ServiceUpdateStatusStateEnum::PAUSED) {
        let failed = newest_failure_current.or(newest_failure_any);
        want_logs(failed);
        found = Some(wedge(
            WedgeReason::UpdatePaused,
            format!(
                "{name}: Swarm paused the update ({update_msg}){}",
                last(failed)
            ),
            failed,
        ));
    } else if !converged {
        found = task_wedge(service, &name, &current, &recent, cx);
        if found.as_ref().is_some_and(|w| {
            matches!(
                w.reason,
                WedgeReason::CrashLoop | WedgeReason::HealthcheckFailing
            )
        }) {
            want_logs(recent.first().copied());
        }
    }

    let state = match &found {
        Some(w) => Convergence::Failed(w.message.clone()),
        None if update_state == Some(ServiceUpdateStatusStateEnum::UPDATING) => {
            Convergence::Progressing(format!("update in progress: {update_msg}"))
        }
        None if outdated => Convergence::Progressing(
            "the live spec is not the desired one yet (update pending)".into(),
        ),
        None if converged => Convergence::Converged,
        None => {
            want_logs(recent.first().copied());
            let problem = newest_failure_current
                .map(describe_failure)
                .or_else(|| waiting(&wanted));
            short_of_tasks(running, desired, problem)
        }
    };
    Verdict {
        progress: ServiceProgress {
            service: name.clone(),
            desired,
            running,
            state,
        },
        wedge: found,
        logs_wanted,
    }
}

/// How many tasks `service` should run (0 for jobs, which only have to finish), and whether it
/// is a job. Global services: Docker's `ServiceStatus.DesiredTasks`, else the usable nodes.
fn desired_tasks(service: &Service, nodes: &[Node]) -> (u64, bool) {
    let mode = service.spec.as_ref().and_then(|s| s.mode.as_ref());
    let job = mode.is_some_and(|m| m.replicated_job.is_some() || m.global_job.is_some());
    let global = mode.is_some_and(|m| m.global.is_some());
    let desired = if job {
        0
    } else if global {
        service
            .service_status
            .as_ref()
            .and_then(|s| s.desired_tasks)
            .unwrap_or_else(|| usable_nodes(nodes))
    } else {
        mode.and_then(|m| m.replicated.as_ref())
            .and_then(|r| r.replicas)
            .unwrap_or(1)
            .max(0) as u64
    };
    (desired, job)
}

/// `2/3 tasks running; last problem: ...`.
fn short_of_tasks(running: u64, desired: u64, problem: Option<String>) -> Convergence {
    Convergence::Progressing(format!(
        "{running}/{desired} tasks running{}",
        problem
            .map(|p| format!("; last problem: {p}"))
            .unwrap_or_default()
    ))
}

/// Wedges read from the current spec's tasks: a missing image, no node to run on, a crash loop
/// (through a failing healthcheck or not).
fn task_wedge(
    service: &Service,
    name: &str,
    current: &[&Task],
    recent: &[&Task],
    cx: &Context,
) -> Option<Wedge> {
    let template = service.spec.as_ref().and_then(|s| s.task_template.as_ref());
    let container = template.and_then(|t| t.container_spec.as_ref());
    let mk = |reason, message: String, t: Option<&Task>| Wedge {
        reason,
        service: name.to_string(),
        message,
        exit_code: t.and_then(exit_code),
    };

    // The newest failure of this spec was a rejection for a missing image.
    let newest_failure = current
        .iter()
        .copied()
        .find(|t| tasks::is_failure(t, false));
    if let Some(t) = newest_failure.filter(|t| {
        tasks::state(t) == Some(TaskState::REJECTED)
            && tasks::err(t).is_some_and(|e| e.contains(ERR_NO_SUCH_IMAGE))
    }) {
        let err = tasks::err(t).unwrap_or_default();
        let image = err
            .split_once(": ")
            .map(|(_, i)| i.trim().to_string())
            .or_else(|| container.and_then(|c| c.image.clone()))
            .unwrap_or_default();
        return Some(mk(
            WedgeReason::ImageMissing,
            format!(
                "{name}: image {image} is missing: the node has no such image and could not pull it ({err})"
            ),
            None,
        ));
    }

    // A task waiting for a node the scheduler cannot find.
    if let Some(w) = unschedulable(service, name, current, cx) {
        return Some(w);
    }

    // Enough recent failures of this spec: a crash loop, or a healthcheck killing it.
    if cx.crash_threshold == 0 || recent.len() < cx.crash_threshold {
        return lost_with_node(service, name, current, cx);
    }
    let newest = recent[0];
    let window = humantime::format_duration(cx.crash_window);
    let n = recent.len();
    let health = cx
        .healthcheck
        .clone()
        .or_else(|| container.and_then(|c| c.health_check.as_ref()?.test.clone()))
        .filter(|t| t.first().is_some_and(|k| k != "NONE"));
    let killed = tasks::err(newest).is_some_and(|e| e.contains(ERR_UNHEALTHY));
    let all_exited_cleanly = recent
        .iter()
        .all(|t| tasks::state(t) == Some(TaskState::COMPLETE));
    if killed || (health.is_some() && all_exited_cleanly) {
        let test = health
            .map(|t| {
                format!(
                    " `{}`",
                    t.iter().skip(1).cloned().collect::<Vec<_>>().join(" ")
                )
            })
            .unwrap_or_default();
        let how = if killed {
            ""
        } else {
            " (the containers exited 0 when stopped)"
        };
        return Some(mk(
            WedgeReason::HealthcheckFailing,
            format!(
                "{name}: healthcheck{test} failing: {n} tasks stopped within {window}{how}; last: {}{}",
                describe_failure(newest),
                log_tail(cx, newest)
            ),
            Some(newest),
        ));
    }
    let code = exit_code(newest)
        .map(|c| format!(", last with exit code {c}"))
        .unwrap_or_default();
    Some(mk(
        WedgeReason::CrashLoop,
        format!(
            "{name}: crash loop: {n} tasks failed within {window}{code} ({}){}",
            describe_failure(newest),
            log_tail(cx, newest)
        ),
        Some(newest),
    ))
}

/// A task of the current spec waiting for a node the scheduler cannot find: `NodeDown` /
/// `VolumeNodeDown` when it is pinned to a node that is down, else `Unschedulable` naming what it
/// asks for and what no node gives.
fn unschedulable(service: &Service, name: &str, current: &[&Task], cx: &Context) -> Option<Wedge> {
    let template = service.spec.as_ref().and_then(|s| s.task_template.as_ref());
    let container = template.and_then(|t| t.container_spec.as_ref());
    let mk = |reason, message: String| Wedge {
        reason,
        service: name.to_string(),
        message,
        exit_code: None,
    };
    let pending = current.iter().copied().find(|t| {
        t.desired_state == Some(TaskState::RUNNING)
            && matches!(
                tasks::state(t),
                Some(TaskState::NEW | TaskState::ALLOCATED | TaskState::PENDING)
            )
            && tasks::err(t).is_some_and(|e| e.contains(ERR_NO_SUITABLE_NODE))
    });
    let t = pending?;
    let err = tasks::err(t).unwrap_or_default();
    let placement = template.and_then(|t| t.placement.as_ref());
    let constraints = placement
        .and_then(|p| p.constraints.clone())
        .unwrap_or_default();
    if let Some((constraint, node, why)) = down_pin(&constraints, cx.nodes) {
        let volumes = container
            .and_then(|c| c.mounts.as_ref())
            .is_some_and(|m| m.iter().any(|m| m.typ == Some(MountType::VOLUME)));
        let (reason, extra) = if volumes {
            (WedgeReason::VolumeNodeDown, " where its volumes live")
        } else {
            (WedgeReason::NodeDown, "")
        };
        return Some(mk(
            reason,
            format!("{name}: pinned to node {node}{extra} ({constraint}), which is {why} ({err})"),
        ));
    }
    let mut asks = Vec::new();
    if !constraints.is_empty() {
        asks.push(format!("constraints {}", constraints.join(", ")));
    }
    let reserve = template
        .and_then(|t| t.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    if let Some(m) = reserve.and_then(|r| r.memory_bytes).filter(|m| *m > 0) {
        asks.push(format!("reserves {} memory", bytes(m)));
    }
    if let Some(c) = reserve.and_then(|r| r.nano_cpus).filter(|c| *c > 0) {
        asks.push(format!("reserves {} CPUs", c as f64 / 1e9));
    }
    if let Some(m) = placement.and_then(|p| p.max_replicas).filter(|m| *m > 0) {
        asks.push(format!("at most {m} per node"));
    }
    let asks = if asks.is_empty() {
        String::new()
    } else {
        format!("; it asks for {}", asks.join("; "))
    };
    let blame = blame(&constraints, reserve, cx.nodes);
    Some(mk(
        WedgeReason::Unschedulable,
        format!("{name}: no node can run it: {err}{asks}{blame}"),
    ))
}

/// `; no ready node satisfies X, Y; no ready node has N memory (the largest has M)`: what the
/// live nodes cannot give (empty when the nodes are unknown or every ask is met by some node).
fn blame(
    constraints: &[String],
    reserve: Option<&bollard::models::ResourceObject>,
    nodes: &[Node],
) -> String {
    let mut out = Vec::new();
    let bad = nodes::unsatisfied(constraints, nodes);
    if !bad.is_empty() {
        out.push(format!("no ready node satisfies {}", bad.join(", ")));
    }
    let (mem, cpus) = nodes::largest(nodes);
    if let Some(m) = reserve.and_then(|r| r.memory_bytes).filter(|m| *m > mem) {
        out.push(format!(
            "no ready node has {} memory (the largest has {})",
            bytes(m),
            bytes(mem)
        ));
    }
    if let Some(c) = reserve.and_then(|r| r.nano_cpus).filter(|c| *c > cpus) {
        out.push(format!(
            "no ready node has {} CPUs (the largest has {})",
            c as f64 / 1e9,
            cpus as f64 / 1e9
        ));
    }
    if nodes.is_empty() || out.is_empty() {
        String::new()
    } else {
        format!("; {}", out.join("; "))
    }
}

/// Tasks Swarm last saw running on a node that is no longer ready (down, unknown, gone): the
/// service is short because of the node, and Swarm reschedules them (no write from hearth helps).
/// `VolumeNodeDown` when the service mounts volumes and is pinned to that node.
fn lost_with_node(service: &Service, name: &str, current: &[&Task], cx: &Context) -> Option<Wedge> {
    if cx.nodes.is_empty() {
        return None;
    }
    let mut lost: Vec<(&str, String, String)> = Vec::new(); // (node id, hostname, state)
    for t in current {
        let on_its_way = matches!(
            tasks::state(t),
            Some(
                TaskState::ASSIGNED
                    | TaskState::ACCEPTED
                    | TaskState::PREPARING
                    | TaskState::READY
                    | TaskState::STARTING
                    | TaskState::RUNNING
            )
        );
        let wanted = matches!(
            t.desired_state,
            Some(TaskState::RUNNING | TaskState::SHUTDOWN)
        );
        let Some(id) = t.node_id.as_deref().filter(|_| on_its_way && wanted) else {
            continue;
        };
        let (host, state) = match nodes::by_id(cx.nodes, id) {
            Some(n) if nodes::is_ready(n) => continue,
            Some(n) => (nodes::name(n), nodes::state(n)),
            None => (id.to_string(), "gone".to_string()),
        };
        if !lost.iter().any(|(i, _, _)| *i == id) {
            lost.push((id, host, state));
        }
    }
    let (id, host, state) = lost.first()?.clone();
    let count = current
        .iter()
        .filter(|t| t.node_id.as_deref() == Some(id))
        .filter(|t| {
            matches!(
                tasks::state(t),
                Some(TaskState::STARTING | TaskState::RUNNING)
            )
        })
        .count()
        .max(1);
    let template = service.spec.as_ref().and_then(|s| s.task_template.as_ref());
    let volumes = template
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.mounts.as_ref())
        .is_some_and(|m| m.iter().any(|m| m.typ == Some(MountType::VOLUME)));
    let pinned_here = template
        .and_then(|t| t.placement.as_ref())
        .and_then(|p| p.constraints.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                let c: String = c.chars().filter(|c| !c.is_whitespace()).collect();
                c == format!("node.id=={id}") || c == format!("node.hostname=={host}")
            })
        });
    let others: Vec<&str> = lost.iter().skip(1).map(|(_, h, _)| h.as_str()).collect();
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(" (also on {})", others.join(", "))
    };
    Some(if volumes && pinned_here {
        Wedge {
            reason: WedgeReason::VolumeNodeDown,
            service: name.to_string(),
            message: format!(
                "{name}: its volumes live on node {host}, which is {state}: it waits there rather \
                 than start elsewhere on empty volumes"
            ),
            exit_code: None,
        }
    } else {
        Wedge {
            reason: WedgeReason::NodeDown,
            service: name.to_string(),
            message: format!(
                "{name}: {count} task(s) lost with node {host}, which is {state}{others}; Swarm \
                 reschedules them"
            ),
            exit_code: None,
        }
    })
}

/// A constraint pinning to one node (`node.hostname==H`, `node.id==I`) whose node is down, not
/// active, or gone: (constraint, node, why).
fn down_pin(constraints: &[String], nodes: &[Node]) -> Option<(String, String, &'static str)> {
    constraints.iter().find_map(|c| {
        let (key, value) = c.split_once("==")?;
        let (key, value) = (key.trim(), value.trim());
        let node = nodes.iter().find(|n| match key {
            "node.hostname" => {
                n.description.as_ref().and_then(|d| d.hostname.as_deref()) == Some(value)
            }
            "node.id" => n.id.as_deref() == Some(value),
            _ => false,
        });
        if !matches!(key, "node.hostname" | "node.id") || nodes.is_empty() {
            return None;
        }
        let why = match node {
            None => "not in the swarm",
            Some(n) if n.status.as_ref().and_then(|s| s.state) != Some(NodeState::READY) => "down",
            Some(n)
                if n.spec.as_ref().and_then(|s| s.availability)
                    == Some(NodeSpecAvailabilityEnum::DRAIN) =>
            {
                "drained"
            }
            Some(_) => return None,
        };
        Some((c.clone(), value.to_string(), why))
    })
}

/// Nodes a global service runs on when Docker gives no count: ready and not drained.
fn usable_nodes(nodes: &[Node]) -> u64 {
    nodes
        .iter()
        .filter(|n| n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY))
        .filter(|n| {
            n.spec.as_ref().and_then(|s| s.availability) != Some(NodeSpecAvailabilityEnum::DRAIN)
        })
        .count() as u64
}

fn within(cx: &Context, t: &Task) -> bool {
    match tasks::timestamp(t) {
        Some(ts) => cx
            .now
            .duration_since(ts)
            .map(|age| age <= cx.crash_window)
            .unwrap_or(true),
        None => false,
    }
}

/// What a task that is not running waits for (`task pending: pending task scheduling`).
fn waiting(wanted: &[&Task]) -> Option<String> {
    wanted.iter().find_map(|t| {
        let s = t.status.as_ref()?;
        match s.state {
            Some(TaskState::RUNNING) | None => None,
            Some(state) => {
                let msg = s.message.clone().unwrap_or_default();
                Some(match tasks::err(t) {
                    Some(e) => format!("task {state}: {e}"),
                    None => format!("task {state}: {msg}"),
                })
            }
        }
    })
}

/// `; last log lines:` and the container's log tail, when known.
fn log_tail(cx: &Context, t: &Task) -> String {
    let Some(lines) = tasks::container_id(t).and_then(|c| cx.logs.get(c)) else {
        return String::new();
    };
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(LOG_LINES)..];
    format!("; last log lines:\n    {}", tail.join("\n    "))
}

fn bytes(b: i64) -> String {
    const GIB: i64 = 1 << 30;
    const MIB: i64 = 1 << 20;
    if b >= GIB && b % GIB == 0 {
        format!("{} GiB", b / GIB)
    } else if b >= MIB {
        format!("{} MiB", b / MIB)
    } else {
        format!("{b} B")
    }
}

//! Synthetic edge cases of the assessment: windows and thresholds, spec versions, modes, the
//! manifest's switches, dependencies, degraded, drift, probes and the precedence between them.

use std::time::{Duration, SystemTime};

use bollard::models::{
    ContainerStatus, Node, NodeDescription, NodeSpec, NodeSpecAvailabilityEnum, NodeStatus,
    ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec,
    TaskStatus,
};

use super::*;
use crate::observed::StackView;
use crate::plan::DriftItem;
use bollard::models::{NodeState, TaskState};

fn t0() -> SystemTime {
    humantime::parse_rfc3339("2026-01-01T12:00:00Z").unwrap()
}

fn at(secs: u64) -> SystemTime {
    t0() + Duration::from_secs(secs)
}

fn stamp(secs: u64) -> String {
    humantime::format_rfc3339_nanos(at(secs)).to_string()
}

fn template(image: &str) -> TaskSpec {
    TaskSpec {
        container_spec: Some(TaskSpecContainerSpec {
            image: Some(image.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn replicated(name: &str, replicas: i64, image: &str) -> Service {
    bollard::models::Service {
        id: Some(format!("id-{name}")),
        spec: Some(ServiceSpec {
            name: Some(name.into()),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(replicas),
                }),
                ..Default::default()
            }),
            task_template: Some(template(image)),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into()
}

fn global(name: &str) -> Service {
    let mut s = replicated(name, 1, "img:1");
    s.spec.as_mut().unwrap().mode = Some(Box::new(ServiceSpecMode {
        global: Some(Default::default()),
        ..Default::default()
    }));
    s
}

/// A task of `service` running `image`, in `state` since `secs`.
fn task(service: &Service, image: &str, desired: TaskState, state: TaskState, secs: u64) -> Task {
    let failed = state == TaskState::FAILED;
    bollard::models::Task {
        id: Some(format!("t{secs}{state}")),
        service_id: service.id.clone(),
        spec: Some(template(image)),
        desired_state: Some(desired),
        status: Some(TaskStatus {
            state: Some(state),
            timestamp: Some(stamp(secs)),
            err: failed.then(|| "task: non-zero exit (2)".into()),
            container_status: Some(ContainerStatus {
                container_id: Some(format!("c{secs}")),
                exit_code: Some(if failed { 2 } else { 0 }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
    .into()
}

fn running(s: &Service, secs: u64) -> Task {
    task(s, "img:1", TaskState::RUNNING, TaskState::RUNNING, secs)
}

fn failed(s: &Service, image: &str, secs: u64) -> Task {
    task(s, image, TaskState::SHUTDOWN, TaskState::FAILED, secs)
}

fn view<'a>(services: &[&'a Service], tasks: &'a [Task]) -> StackView<'a> {
    StackView {
        services: services.to_vec(),
        tasks: tasks.iter().collect(),
        ..Default::default()
    }
}

fn node(state: NodeState) -> Node {
    Node {
        id: Some("n1".into()),
        description: Some(NodeDescription {
            hostname: Some("h1".into()),
            ..Default::default()
        }),
        spec: Some(NodeSpec {
            availability: Some(NodeSpecAvailabilityEnum::ACTIVE),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: Some(state),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A service "app" (1 replica, img:1) with `fails` failed tasks at the given seconds and a task
/// waiting to restart.
fn crashing(fails: &[u64]) -> (Service, Vec<Task>) {
    let s = replicated("app", 1, "img:1");
    let mut ts: Vec<Task> = fails.iter().map(|&f| failed(&s, "img:1", f)).collect();
    ts.push(task(&s, "img:1", TaskState::RUNNING, TaskState::READY, 100));
    (s, ts)
}

#[test]
fn crash_threshold_exactly_reached_wedges() {
    let (s, ts) = crashing(&[50, 70, 90]);
    let v = view(&[&s], &ts);
    let a = assess(&AssessInput::new(at(100), &v));
    let w = a.wedge.as_ref().expect("wedged");
    assert_eq!((a.phase, w.reason), (Phase::Wedged, WedgeReason::CrashLoop));
    assert_eq!(w.exit_code, Some(2));
    assert_eq!(a.logs_wanted, vec!["c90".to_string()]);

    let (s, ts) = crashing(&[70, 90]);
    let v = view(&[&s], &ts);
    let a = assess(&AssessInput::new(at(100), &v));
    assert_eq!(a.phase, Phase::Progressing, "two failures are not certain");
    assert_eq!(a.reason, "ServicesProgressing");
}

#[test]
fn failures_outside_the_window_do_not_count() {
    // The first failure is 61 s old at t=100: only two are within 60 s.
    let (s, ts) = crashing(&[39, 70, 90]);
    let v = view(&[&s], &ts);
    let a = assess(&AssessInput::new(at(100), &v));
    assert_eq!(a.phase, Phase::Progressing, "{}", a.message);
    // Exactly 60 s old still counts.
    let (s, ts) = crashing(&[40, 70, 90]);
    let v = view(&[&s], &ts);
    let a = assess(&AssessInput::new(at(100), &v));
    assert_eq!(a.phase, Phase::Wedged, "{}", a.message);
    // A wider window takes the old one in.
    let (s, ts) = crashing(&[10, 70, 90]);
    let v = view(&[&s], &ts);
    let mut input = AssessInput::new(at(100), &v);
    input.crash_window = Duration::from_secs(120);
    assert_eq!(assess(&input).phase, Phase::Wedged);
}

#[test]
fn failures_of_an_old_spec_never_wedge_the_new_one() {
    let s = replicated("app", 1, "img:2");
    let ts = vec![
        failed(&s, "img:1", 80),
        failed(&s, "img:1", 85),
        failed(&s, "img:1", 90),
        task(&s, "img:2", TaskState::RUNNING, TaskState::STARTING, 95),
    ];
    let v = view(&[&s], &ts);
    let a = assess(&AssessInput::new(at(100), &v));
    assert_eq!(a.phase, Phase::Progressing, "{}", a.message);
    assert!(a.wedge.is_none());
    assert_eq!(
        a.message,
        "progressing: app: 0/1 tasks running; last problem: task starting: "
    );
}

#[test]
fn a_task_of_an_old_spec_still_running_is_not_converged() {
    let s = replicated("app", 1, "img:2");
    let ts = vec![
        task(&s, "img:1", TaskState::RUNNING, TaskState::RUNNING, 10),
        task(&s, "img:2", TaskState::RUNNING, TaskState::RUNNING, 20),
    ];
    let v = view(&[&s], &ts);
    assert_eq!(
        assess(&AssessInput::new(at(30), &v)).phase,
        Phase::Progressing
    );
}

#[test]
fn zero_replicas_is_ready() {
    let s = replicated("app", 0, "img:1");
    let ts = vec![task(
        &s,
        "img:1",
        TaskState::SHUTDOWN,
        TaskState::SHUTDOWN,
        10,
    )];
    let v = view(&[&s], &ts);
    let a = assess(&AssessInput::new(at(30), &v));
    assert_eq!(a.phase, Phase::Ready, "{}", a.message);
    assert_eq!((a.services[0].desired, a.services[0].running), (0, 0));
}

#[test]
fn global_mode_counts_usable_nodes_without_docker_status() {
    let s = global("edge");
    let ts = vec![running(&s, 10)];
    let v = view(&[&s], &ts);
    let mut drained = node(NodeState::READY);
    drained.id = Some("n2".into());
    drained.spec.as_mut().unwrap().availability = Some(NodeSpecAvailabilityEnum::DRAIN);
    let nodes = [node(NodeState::READY), drained.clone()];
    let mut input = AssessInput::new(at(30), &v);
    input.nodes = &nodes;
    let a = assess(&input);
    assert_eq!(a.phase, Phase::Ready, "{}", a.message);
    assert_eq!(a.services[0].desired, 1);
    let mut second = node(NodeState::READY);
    second.id = Some("n3".into());
    let nodes = [node(NodeState::READY), second];
    input.nodes = &nodes;
    let a = assess(&input);
    assert_eq!(a.phase, Phase::Progressing);
    assert_eq!(a.services[0].desired, 2);
}

#[test]
fn waiting_for_a_dependency_names_it() {
    let v = StackView::default();
    let deps = [
        ("db".to_string(), Phase::Ready),
        ("keycloak".to_string(), Phase::Progressing),
    ];
    let mut input = AssessInput::new(at(0), &v);
    input.dependencies = &deps;
    let a = assess(&input);
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Pending, "WaitingForDependency")
    );
    assert_eq!(a.message, "waiting for dependency keycloak (Progressing)");
    let c = a.condition("DependenciesReady").unwrap();
    assert!(!c.status && c.message.contains("keycloak"));

    // Once deployed, a dependency going down is a condition, not the phase.
    let s = replicated("app", 1, "img:1");
    let ts = vec![running(&s, 10)];
    let v = view(&[&s], &ts);
    let mut input = AssessInput::new(at(30), &v);
    input.dependencies = &deps;
    let a = assess(&input);
    assert_eq!(a.phase, Phase::Ready);
    assert!(!a.condition("DependenciesReady").unwrap().status);
}

#[test]
fn nothing_deployed_is_pending() {
    let v = StackView::default();
    let expected = [ExpectedService {
        name: "app".into(),
        spec_hash: Some("h".into()),
    }];
    let mut input = AssessInput::new(at(0), &v);
    input.expected = &expected;
    let a = assess(&input);
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Pending, "NotDeployed")
    );
    assert!(
        a.message.contains("services not created yet: app"),
        "{}",
        a.message
    );
}

#[test]
fn a_missing_service_or_an_older_spec_is_progressing() {
    let mut s = replicated("app", 1, "img:1");
    s.spec.as_mut().unwrap().labels = Some(
        [(
            crate::render::LABEL_SPEC_HASH.to_string(),
            "old".to_string(),
        )]
        .into(),
    );
    let ts = vec![running(&s, 10)];
    let v = view(&[&s], &ts);
    let expected = [
        ExpectedService {
            name: "app".into(),
            spec_hash: Some("new".into()),
        },
        ExpectedService {
            name: "db".into(),
            spec_hash: None,
        },
    ];
    let mut input = AssessInput::new(at(30), &v);
    input.expected = &expected;
    let a = assess(&input);
    assert_eq!(a.phase, Phase::Progressing);
    assert_eq!(
        a.message,
        "progressing: app: the live spec is not the desired one yet (update pending); services \
         not created yet: db"
    );
    let expected = [ExpectedService {
        name: "app".into(),
        spec_hash: Some("old".into()),
    }];
    input.expected = &expected;
    assert_eq!(assess(&input).phase, Phase::Ready);
}

#[test]
fn suspended_parked_and_invalid() {
    let (s, ts) = crashing(&[50, 70, 90]);
    let v = view(&[&s], &ts);
    let mut input = AssessInput::new(at(100), &v);
    input.suspended = true;
    let a = assess(&input);
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Suspended, "Suspended")
    );
    assert!(a.wedge.is_none(), "wedge only in phase Wedged");
    let c = a.condition("Wedged").unwrap();
    assert!(
        c.status && c.reason == "CrashLoop",
        "the crash stays visible"
    );

    input.invalid = Some("gitea.yml:3:5: spec.version: no tag 9.9.9".into());
    let a = assess(&input);
    assert_eq!(a.phase, Phase::Invalid, "invalid beats suspended");
    assert_eq!(
        a.message,
        "invalid: gitea.yml:3:5: spec.version: no tag 9.9.9"
    );

    let mut input = AssessInput::new(at(100), &v);
    input.desired_running = false;
    let a = assess(&input);
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Progressing, "Parking")
    );
    assert!(!a.condition("Wedged").unwrap().status);
    let empty = StackView::default();
    let mut input = AssessInput::new(at(100), &empty);
    input.desired_running = false;
    assert_eq!(assess(&input).phase, Phase::Parked);
}

#[test]
fn degraded_after_ready_unless_wedged() {
    let s = replicated("app", 2, "img:1");
    let ts = vec![
        running(&s, 10),
        task(&s, "img:1", TaskState::RUNNING, TaskState::PENDING, 90),
    ];
    let v = view(&[&s], &ts);
    let mut input = AssessInput::new(at(100), &v);
    input.was_ready = true;
    input.progressing_since = Some(at(0));
    input.progress_deadline = Duration::from_secs(10);
    let a = assess(&input);
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Degraded, "ReplicasLost")
    );
    assert!(
        a.message.starts_with("degraded: app: 1/2 tasks running"),
        "{}",
        a.message
    );
    assert!(a.condition("Degraded").unwrap().status);

    input.was_ready = false;
    let a = assess(&input);
    assert_eq!(
        a.wedge.as_ref().map(|w| w.reason),
        Some(WedgeReason::DeadlineExceeded),
        "not Ready before the deadline"
    );

    let (s, mut ts) = crashing(&[50, 70, 90]);
    ts.push(running(&s, 10));
    let mut s = s;
    s.spec.as_mut().unwrap().mode = Some(Box::new(ServiceSpecMode {
        replicated: Some(ServiceSpecModeReplicated { replicas: Some(2) }),
        ..Default::default()
    }));
    let v = view(&[&s], &ts);
    let mut input = AssessInput::new(at(100), &v);
    input.was_ready = true;
    assert_eq!(
        assess(&input).wedge.map(|w| w.reason),
        Some(WedgeReason::CrashLoop),
        "a wedge beats degraded"
    );
}

#[test]
fn drift_is_a_condition_not_a_phase() {
    let s = replicated("app", 1, "img:1");
    let ts = vec![running(&s, 10)];
    let v = view(&[&s], &ts);
    let drift = [DriftItem {
        service: "app".into(),
        field: "TaskTemplate.ContainerSpec.Env".into(),
        desired: "[\"A=1\"]".into(),
        live: "[\"A=2\"]".into(),
    }];
    let mut input = AssessInput::new(at(30), &v);
    let a = assess(&input);
    assert!(!a.condition("Drifted").unwrap().status);
    input.drift = &drift;
    let a = assess(&input);
    assert_eq!(a.phase, Phase::Ready);
    let c = a.condition("Drifted").unwrap();
    assert!(c.status);
    assert_eq!(c.reason, "LiveSpecChanged");
    assert_eq!(
        c.message,
        "1 field(s) changed out of band: app TaskTemplate.ContainerSpec.Env: desired [\"A=1\"], live [\"A=2\"]"
    );
    assert_eq!(a.drift, drift.to_vec());
}

#[test]
fn failing_probe_keeps_it_from_ready() {
    let s = replicated("app", 1, "img:1");
    let ts = vec![running(&s, 10)];
    let v = view(&[&s], &ts);
    let probes = [
        ProbeOutcome {
            name: "http app:3000/api/healthz".into(),
            ok: false,
            message: "status 502, want 200".into(),
        },
        ProbeOutcome {
            name: "tcp app:64738".into(),
            ok: true,
            message: String::new(),
        },
    ];
    let mut input = AssessInput::new(at(30), &v);
    input.probes = &probes;
    let a = assess(&input);
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Progressing, "ProbeFailing")
    );
    assert_eq!(
        a.message,
        "progressing: probe http app:3000/api/healthz failing: status 502, want 200"
    );
    assert!(!a.condition("ProbesPassing").unwrap().status);

    input.progressing_since = Some(at(0));
    input.progress_deadline = Duration::from_secs(30);
    let a = assess(&input);
    let w = a.wedge.as_ref().expect("wedged at the deadline");
    assert_eq!(
        (w.reason, w.service.as_str()),
        (WedgeReason::ProbeFailing, "")
    );

    input.was_ready = true;
    let a = assess(&input);
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Degraded, "ProbeFailing")
    );

    let ok = [probes[1].clone()];
    input.probes = &ok;
    let a = assess(&input);
    assert_eq!(a.phase, Phase::Ready);
    assert_eq!(
        a.message,
        "1 service(s) running their desired tasks, 1 probe(s) passing"
    );
}

#[test]
fn a_wedge_notes_dependencies_not_ready() {
    let (s, ts) = crashing(&[50, 70, 90]);
    let v = view(&[&s], &ts);
    let deps = [("db".to_string(), Phase::Wedged)];
    let mut input = AssessInput::new(at(100), &v);
    input.dependencies = &deps;
    let a = assess(&input);
    assert_eq!(a.phase, Phase::Wedged);
    assert!(
        a.message.ends_with("; dependencies not Ready: db (Wedged)"),
        "{}",
        a.message
    );
}

#[test]
fn down_node_with_volumes_is_volume_node_down() {
    let mut s = replicated("db", 1, "img:1");
    {
        let tt = s.spec.as_mut().unwrap().task_template.as_mut().unwrap();
        tt.placement = Some(Box::new(bollard::models::TaskSpecPlacement {
            constraints: Some(vec!["node.id==n1".into()]),
            ..Default::default()
        }));
        tt.container_spec.as_mut().unwrap().mounts = Some(vec![bollard::models::Mount {
            typ: Some(bollard::models::MountType::VOLUME),
            target: Some("/data".into()),
            ..Default::default()
        }]);
    }
    let mut t = task(&s, "img:1", TaskState::RUNNING, TaskState::PENDING, 90);
    t.spec_digest = s
        .spec
        .as_ref()
        .unwrap()
        .task_template
        .as_ref()
        .map(|t| t.digest);
    t.status.as_mut().unwrap().err =
        Some("no suitable node (scheduling constraints not satisfied on 1 node)".into());
    let ts = vec![t];
    let v = view(&[&s], &ts);
    let nodes = [node(NodeState::DOWN)];
    let mut input = AssessInput::new(at(100), &v);
    input.nodes = &nodes;
    let a = assess(&input);
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Degraded, "VolumeNodeDown")
    );
    assert!(a.wedge.is_none(), "a down node is not a wedge");
    assert!(
        a.message.starts_with(
            "degraded: db: pinned to node n1 where its volumes live (node.id==n1), which is down"
        ),
        "{}",
        a.message
    );
}

#[test]
fn phase_and_reason_names() {
    assert_eq!(Phase::ALL.len(), 10);
    assert_eq!(Phase::AdvanceFailed.to_string(), "AdvanceFailed");
    assert!(WedgeReason::RollbackPaused < WedgeReason::CrashLoop);
    assert!(WedgeReason::CrashLoop < WedgeReason::DeadlineExceeded);
    assert_eq!(
        WedgeReason::HealthcheckFailing.to_string(),
        "HealthcheckFailing"
    );
}

// --- nodes: lost tasks, drained nodes, hearth's pin -----------------------------------------

fn on(mut t: Task, node: &str) -> Task {
    t.node_id = Some(node.into());
    t
}

fn cluster(down: &str, drained: &str) -> Vec<Node> {
    use super::nodes::tests::node;
    ["n1", "n2", "n3"]
        .iter()
        .map(|id| {
            let state = if *id == down {
                NodeState::DOWN
            } else {
                NodeState::READY
            };
            let avail = if *id == drained {
                NodeSpecAvailabilityEnum::DRAIN
            } else {
                NodeSpecAvailabilityEnum::ACTIVE
            };
            node(id, &format!("host-{id}"), *id == "n1", state, avail)
        })
        .collect()
}

#[test]
fn tasks_lost_with_a_down_node_are_node_down_then_ready_once_rescheduled() {
    let s = replicated("web", 2, "img:1");
    // node n3 went down: Swarm shut its task down (it still reads running) and made a new one
    let lost = on(
        task(&s, "img:1", TaskState::SHUTDOWN, TaskState::RUNNING, 10),
        "n3",
    );
    let kept = on(running(&s, 11), "n2");
    let fresh = on(
        task(&s, "img:1", TaskState::RUNNING, TaskState::PREPARING, 20),
        "n1",
    );
    let ts = vec![lost.clone(), kept.clone(), fresh];
    let v = view(&[&s], &ts);
    let nodes = cluster("n3", "");
    let mut input = AssessInput::new(at(21), &v);
    input.nodes = &nodes;
    input.was_ready = true;
    let a = assess(&input);
    assert_eq!((a.phase, a.reason.as_str()), (Phase::Degraded, "NodeDown"));
    assert!(a.wedge.is_none());
    assert!(
        a.message
            .contains("web: 1 task(s) lost with node host-n3, which is down; Swarm reschedules"),
        "{}",
        a.message
    );
    // the same while the node is still up is plain progress, not NodeDown
    let up = cluster("", "");
    input.nodes = &up;
    assert_eq!(assess(&input).reason, "ReplicasLost");

    // Swarm healed it: the replacement runs; the lost task lingers in the list
    let ts = vec![lost, kept, on(running(&s, 25), "n1")];
    let v = view(&[&s], &ts);
    let mut input = AssessInput::new(at(26), &v);
    input.nodes = &nodes;
    input.was_ready = true;
    assert_eq!(assess(&input).phase, Phase::Ready);
}

#[test]
fn a_pinned_volume_service_whose_node_died_is_volume_node_down_before_swarm_retries() {
    let mut s = replicated("db", 1, "img:1");
    {
        let tt = s.spec.as_mut().unwrap().task_template.as_mut().unwrap();
        tt.placement = Some(Box::new(bollard::models::TaskSpecPlacement {
            constraints: Some(vec!["node.id == n2".into()]),
            ..Default::default()
        }));
        tt.container_spec.as_mut().unwrap().mounts = Some(vec![bollard::models::Mount {
            typ: Some(bollard::models::MountType::VOLUME),
            target: Some("/data".into()),
            ..Default::default()
        }]);
    }
    let mut t = on(
        task(&s, "img:1", TaskState::SHUTDOWN, TaskState::RUNNING, 10),
        "n2",
    );
    t.spec_digest = s
        .spec
        .as_ref()
        .unwrap()
        .task_template
        .as_ref()
        .map(|t| t.digest);
    let ts = vec![t];
    let v = view(&[&s], &ts);
    let nodes = cluster("n2", "");
    let mut input = AssessInput::new(at(12), &v);
    input.nodes = &nodes;
    input.was_ready = true;
    let a = assess(&input);
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Degraded, "VolumeNodeDown")
    );
    assert!(
        a.message
            .contains("its volumes live on node host-n2, which is down"),
        "{}",
        a.message
    );
}

#[test]
fn a_drained_node_is_a_condition_not_a_fight() {
    let s = replicated("web", 1, "img:1");
    let ts = vec![on(running(&s, 10), "n2")];
    let v = view(&[&s], &ts);
    let nodes = cluster("", "n2");
    let mut input = AssessInput::new(at(12), &v);
    input.nodes = &nodes;
    let a = assess(&input);
    assert_eq!(a.phase, Phase::Ready);
    let c = a.condition("NodeDrained").expect("drained condition");
    assert!(c.status && c.message.contains("host-n2"), "{}", c.message);
    // no drained node: no condition
    let nodes = cluster("", "");
    input.nodes = &nodes;
    assert!(assess(&input).condition("NodeDrained").is_none());
}

#[test]
fn a_task_pinned_in_place_stays_current() {
    // hearth added `node.id==n1` to the service; Swarm kept the running task (its spec copy has
    // no constraint): it is still the current spec's task
    let mut s = replicated("db", 1, "img:1");
    s.spec
        .as_mut()
        .unwrap()
        .task_template
        .as_mut()
        .unwrap()
        .placement = Some(Box::new(bollard::models::TaskSpecPlacement {
        constraints: Some(vec!["node.id==n1".into()]),
        ..Default::default()
    }));
    let ts = vec![on(running(&s, 10), "n1")];
    let v = view(&[&s], &ts);
    let nodes = cluster("", "");
    let mut input = AssessInput::new(at(12), &v);
    input.nodes = &nodes;
    assert_eq!(assess(&input).phase, Phase::Ready);
    // but another image is another spec
    let ts = vec![on(
        task(&s, "img:2", TaskState::RUNNING, TaskState::RUNNING, 10),
        "n1",
    )];
    let v = view(&[&s], &ts);
    let mut input = AssessInput::new(at(12), &v);
    input.nodes = &nodes;
    assert_ne!(assess(&input).phase, Phase::Ready);
}

#[test]
fn tasks_failed_after_their_node_came_back_are_no_crash_loop() {
    // Three tasks of slot 1 lost with nodes that were killed: each was replaced while its node
    // was down, and reported `non-zero exit (255)` only when the node returned.
    let s = replicated("web", 1, "img:1");
    let mut ts = Vec::new();
    for (i, (created, _replaced_at, ended)) in
        [(0, 10, 20), (10, 30, 40), (30, 50, 55)].iter().enumerate()
    {
        let mut t = failed(&s, "img:1", *ended);
        t.id = Some(format!("lost{i}"));
        t.slot = Some(1);
        t.created_at = Some(stamp(*created));
        ts.push(t);
    }
    let mut now_running = running(&s, 52);
    now_running.slot = Some(1);
    now_running.created_at = Some(stamp(50));
    ts.push(now_running);
    let v = view(&[&s], &ts);
    let input = AssessInput::new(at(56), &v);
    assert_eq!(assess(&input).phase, Phase::Ready);
    // the same failures while no replacement existed yet are a crash loop
    let mut crashing = ts.clone();
    crashing.pop();
    for (i, t) in crashing.iter_mut().enumerate() {
        t.created_at = Some(stamp([0, 21, 41][i]));
    }
    let mut waiting = task(&s, "img:1", TaskState::RUNNING, TaskState::READY, 56);
    waiting.slot = Some(1);
    waiting.created_at = Some(stamp(56));
    crashing.push(waiting);
    let v = view(&[&s], &crashing);
    let input = AssessInput::new(at(57), &v);
    assert_eq!(assess(&input).reason, "CrashLoop");
}

#[test]
fn a_secret_only_an_operator_can_make_keeps_it_pending() {
    let v = StackView::default();
    let mut input = AssessInput::new(at(0), &v);
    input.waiting = Some("secret s_smtp_v1 (compose key smtp) does not exist".into());
    let a = assess(&input);
    assert_eq!(
        (a.phase, a.reason.as_str()),
        (Phase::Pending, "SecretMissing")
    );
    assert!(a.message.contains("s_smtp_v1"), "{}", a.message);
}

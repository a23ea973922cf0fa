//! Assessment of task histories recorded on a real Docker 20.10 swarm
//! (`tests/fixtures/tasks/<scenario>/`, made by `tests/fixtures/tasks/record.sh`), read into
//! bollard's types exactly as Docker sent them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::observed::live::{Service, Task};
use bollard::models::{Node, NodeState};

use super::*;
use crate::observed::StackView;

/// Assesses a [`Recorded`] scenario after `$body` changed the default input `$i`.
macro_rules! assess_with {
    ($r:expr, |$i:ident| $body:expr) => {{
        let view = $r.view();
        #[allow(unused_mut)]
        let mut $i = AssessInput::new($r.now(), &view);
        $i.nodes = &$r.nodes;
        $i.raw_specs = &$r.raw_specs;
        #[allow(clippy::no_effect, clippy::unused_unit)]
        {
            $body;
        }
        assess(&$i)
    }};
}

struct Recorded {
    service: Service,
    tasks: Vec<Task>,
    nodes: Vec<Node>,
    logs: HashMap<String, Vec<String>>,
    /// Service ID -> raw `Spec`, as `Snapshot::service_specs` has it.
    raw_specs: HashMap<String, serde_json::Value>,
}

fn dir(scenario: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tasks")
        .join(scenario)
}

fn load(scenario: &str) -> Recorded {
    let read = |file: &str| {
        let path = dir(scenario).join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let logs = match std::fs::read_to_string(dir(scenario).join("logs.json")) {
        Ok(text) => serde_json::from_str(&text).expect("logs.json"),
        Err(_) => HashMap::new(),
    };
    let raw: serde_json::Value = serde_json::from_str(&read("service.json")).expect("service.json");
    let raw_specs = HashMap::from([(
        raw["ID"].as_str().expect("ID").to_string(),
        raw["Spec"].clone(),
    )]);
    Recorded {
        raw_specs,
        service: serde_json::from_value(raw).expect("service.json"),
        tasks: serde_json::from_str(&read("tasks.json")).expect("tasks.json"),
        nodes: serde_json::from_str(&read("nodes.json")).expect("nodes.json"),
        logs,
    }
}

impl Recorded {
    fn view(&self) -> StackView<'_> {
        StackView {
            services: vec![&self.service],
            tasks: self.tasks.iter().collect(),
            ..Default::default()
        }
    }

    /// A moment shortly after the newest task event.
    fn now(&self) -> SystemTime {
        self.tasks
            .iter()
            .filter_map(tasks::timestamp)
            .max()
            .expect("a timestamp")
            + Duration::from_secs(2)
    }

    fn assess(&self) -> Assessment {
        assess_with!(self, |_i| {})
    }

    fn newest_failed_container(&self) -> String {
        tasks::newest_first(self.tasks.iter())
            .into_iter()
            .find(|t| tasks::is_failure(t, false))
            .and_then(tasks::container_id)
            .expect("a failed task with a container")
            .to_string()
    }
}

fn wedge(a: &Assessment) -> &Wedge {
    a.wedge
        .as_ref()
        .unwrap_or_else(|| panic!("not wedged: {:?} {}", a.phase, a.message))
}

#[test]
fn running_service_is_ready() {
    let r = load("running");
    let a = r.assess();
    assert_eq!(a.phase, Phase::Ready, "{}", a.message);
    assert_eq!(a.reason, "AllReady");
    assert_eq!((a.services[0].desired, a.services[0].running), (1, 1));
    assert!(a.condition("Ready").unwrap().status);
    assert!(a.wedge.is_none());
}

#[test]
fn global_service_is_ready_on_its_one_node() {
    let r = load("global");
    let a = r.assess();
    assert_eq!(a.phase, Phase::Ready, "{}", a.message);
    assert_eq!(a.services[0].desired, 1);
}

#[test]
fn crash_loop_names_exit_code_and_log_tail() {
    let r = load("crashloop");
    let a = assess_with!(r, |i| i.logs = &r.logs);
    let w = wedge(&a);
    assert_eq!((a.phase, w.reason), (Phase::Wedged, WedgeReason::CrashLoop));
    assert_eq!(a.reason, "CrashLoop");
    assert_eq!(w.exit_code, Some(3));
    assert_eq!(w.service, "rec_crashloop");
    assert!(w.message.contains("rec_crashloop: crash loop: 4 tasks failed within 1m, last with exit code 3 (task: non-zero exit (3))"), "{}", w.message);
    assert!(
        w.message.contains("last log lines:")
            && w.message.contains("crashing on cue with exit code 3"),
        "{}",
        w.message
    );
    assert_eq!(a.logs_wanted.first(), Some(&r.newest_failed_container()));
}

#[test]
fn crash_loop_without_logs_asks_for_them() {
    let r = load("crashloop");
    let a = r.assess();
    let w = wedge(&a);
    assert_eq!(w.reason, WedgeReason::CrashLoop);
    assert!(!w.message.contains("log lines"), "{}", w.message);
    assert_eq!(a.logs_wanted, vec![r.newest_failed_container()]);
}

#[test]
fn crash_loop_is_reported_at_the_threshold_not_the_deadline() {
    let r = load("crashloop");
    // Four failures were recorded; a threshold of five is not reached yet, four is.
    let a = assess_with!(r, |i| i.crash_threshold = 5);
    assert_eq!(a.phase, Phase::Progressing, "{}", a.message);
    assert!(
        a.message.contains("last problem: task: non-zero exit (3)"),
        "{}",
        a.message
    );
    let a = assess_with!(r, |i| i.crash_threshold = 4);
    assert_eq!(wedge(&a).reason, WedgeReason::CrashLoop);
}

#[test]
fn crash_loop_failures_age_out_of_the_window() {
    let r = load("crashloop");
    let later = r.now() + Duration::from_secs(120);
    let a = assess_with!(r, |i| i.now = later);
    assert_eq!(a.phase, Phase::Progressing, "{}", a.message);
}

#[test]
fn missing_image_is_named() {
    let r = load("image_missing");
    let a = r.assess();
    let w = wedge(&a);
    assert_eq!(w.reason, WedgeReason::ImageMissing);
    assert!(
        w.message
            .starts_with("rec_image_missing: image hearth-fixture:nope is missing")
            && w.message.contains("(No such image: hearth-fixture:nope)"),
        "{}",
        w.message
    );
    assert_eq!(w.exit_code, None);
}

#[test]
fn impossible_constraint_is_unschedulable_with_the_constraint() {
    let r = load("constraint");
    let a = r.assess();
    let w = wedge(&a);
    assert_eq!(w.reason, WedgeReason::Unschedulable);
    assert_eq!(
        w.message,
        "rec_constraint: no node can run it: no suitable node (scheduling constraints not \
         satisfied on 1 node); it asks for constraints node.labels.nope==1; no ready node \
         satisfies node.labels.nope==1"
    );
}

#[test]
fn impossible_reservation_is_unschedulable_with_the_reservation() {
    let r = load("resources");
    let w = wedge(&r.assess()).clone();
    assert_eq!(w.reason, WedgeReason::Unschedulable);
    assert_eq!(
        w.message,
        "rec_resources: no node can run it: no suitable node (insufficient resources on 1 \
         node); it asks for reserves 1000 GiB memory; no ready node has 1000 GiB memory (the \
         largest has 24105 MiB)"
    );
}

#[test]
fn pinned_to_a_down_node_is_node_down() {
    let mut r = load("constraint");
    let host = r.nodes[0]
        .description
        .as_ref()
        .and_then(|d| d.hostname.clone())
        .unwrap();
    let pin = format!("node.hostname == {host}");
    let placement = r
        .service
        .spec
        .as_mut()
        .and_then(|s| s.task_template.as_mut())
        .and_then(|t| t.placement.as_mut())
        .unwrap();
    placement.constraints = Some(vec![pin.clone()]);
    for t in &mut r.tasks {
        t.spec_digest = r
            .service
            .spec
            .as_ref()
            .and_then(|s| s.task_template.as_ref())
            .map(|t| t.digest);
    }
    // While the node is up, the pin is not the problem.
    assert_eq!(wedge(&r.assess()).reason, WedgeReason::Unschedulable);
    r.nodes[0].status.as_mut().unwrap().state = Some(NodeState::DOWN);
    // A down node is Swarm's to heal: Degraded, not Wedged.
    let a = r.assess();
    assert_eq!(a.phase, crate::assess::Phase::Degraded);
    assert_eq!(a.reason, "NodeDown");
    assert!(a.wedge.is_none());
    assert!(
        a.message
            .contains(&format!("pinned to node {host} ({pin}), which is down")),
        "{}",
        a.message
    );
}

#[test]
fn healthcheck_kill_with_exit_137() {
    let r = load("unhealthy_killed");
    let a = assess_with!(r, |i| i.logs = &r.logs);
    let w = wedge(&a);
    assert_eq!(w.reason, WedgeReason::HealthcheckFailing);
    assert_eq!(w.exit_code, Some(137));
    assert!(
        w.message.contains(
            "healthcheck `hearth-fixture get http://127.0.0.1:8080/health` failing: 3 tasks stopped"
        ) && w.message.contains("dockerexec: unhealthy container")
            && w.message.contains("GET /health -> 503"),
        "{}",
        w.message
    );
}

#[test]
fn healthcheck_kill_of_an_app_exiting_0_on_sigterm() {
    // Docker reports these as `complete` / `finished`, exit 0, no error at all.
    let r = load("unhealthy");
    let w = wedge(&r.assess()).clone();
    assert_eq!(w.reason, WedgeReason::HealthcheckFailing);
    assert_eq!(w.exit_code, Some(0));
    assert!(w.message.contains("exited 0 when stopped"), "{}", w.message);
    // Without the raw spec the healthcheck is unknown (bollard's typed spec drops it): then it is
    // only a loop of clean exits.
    let none = HashMap::new();
    let a = assess_with!(r, |i| i.raw_specs = &none);
    let w = wedge(&a);
    assert_eq!((w.reason, w.exit_code), (WedgeReason::CrashLoop, Some(0)));
    assert!(
        w.message.contains("the container exited (exit code 0)"),
        "{}",
        w.message
    );
}

#[test]
fn slow_start_is_progressing_then_misses_the_deadline() {
    let r = load("slow_start");
    let a = r.assess();
    assert_eq!(a.phase, Phase::Progressing, "{}", a.message);
    assert_eq!(
        a.message,
        "progressing: rec_slow_start: 0/1 tasks running; last problem: task starting: starting"
    );
    assert!(a.condition("Progressing").unwrap().status);
    let now = r.now();
    let a = assess_with!(r, |i| {
        i.progressing_since = Some(now - Duration::from_secs(300));
        i.progress_deadline = Duration::from_secs(300);
    });
    let w = wedge(&a);
    assert_eq!(w.reason, WedgeReason::DeadlineExceeded);
    assert_eq!(w.service, "rec_slow_start");
    assert!(
        w.message.starts_with("not Ready 5m after the desired spec was applied (progressDeadline 5m): rec_slow_start: 0/1"),
        "{}",
        w.message
    );
    let a = assess_with!(r, |i| {
        i.progressing_since = Some(now - Duration::from_secs(299));
        i.progress_deadline = Duration::from_secs(300);
    });
    assert_eq!(a.phase, Phase::Progressing);
}

#[test]
fn paused_update_names_the_failure() {
    let r = load("update_paused");
    // Two failures of the new spec: below a threshold of 3, and the pause wins over them anyway.
    for threshold in [3, 2] {
        let a = assess_with!(r, |i| i.crash_threshold = threshold);
        let w = wedge(&a);
        assert_eq!(w.reason, WedgeReason::UpdatePaused);
        assert_eq!(w.exit_code, Some(4));
        assert!(
            w.message.starts_with("rec_update_paused: Swarm paused the update (update paused due to failure or early termination of task ")
                && w.message.contains("last failure: task: non-zero exit (4)"),
            "{}",
            w.message
        );
    }
}

#[test]
fn swarm_rollback_is_never_ready() {
    let r = load("rolled_back");
    let a = r.assess();
    let w = wedge(&a);
    assert_eq!(w.reason, WedgeReason::RolledBack);
    assert_eq!(w.exit_code, Some(4), "the failure of the rolled-back spec");
    assert!(
        w.message
            .contains("the update failed and Swarm rolled it back (rollback completed); last failure: task: non-zero exit (4)"),
        "{}",
        w.message
    );
    assert!(!a.condition("Ready").unwrap().status);
    // The services run fine: the rollback alone makes it a failure.
    assert_eq!(a.services[0].running, 1);
}

#[test]
fn rollback_is_a_failure_while_the_desired_spec_is_another() {
    let mut r = load("rolled_back");
    let labels = r
        .service
        .spec
        .as_mut()
        .unwrap()
        .labels
        .get_or_insert_default();
    labels.insert(crate::render::LABEL_SPEC_HASH.into(), "old".into());
    let expect = |hash: &str| {
        vec![ExpectedService {
            name: "rec_rolled_back".into(),
            spec_hash: Some(hash.into()),
        }]
    };
    let new = expect("new");
    let a = assess_with!(r, |i| i.expected = &new);
    assert_eq!(wedge(&a).reason, WedgeReason::RolledBack);
    // The desired spec is the one Swarm rolled back to: it runs, that is Ready.
    let old = expect("old");
    let a = assess_with!(r, |i| i.expected = &old);
    assert_eq!(a.phase, Phase::Ready, "{}", a.message);
}

#[test]
fn rollback_of_a_crashing_spec() {
    let r = load("rolled_back_crashing");
    let w = wedge(&r.assess()).clone();
    assert_eq!(
        w.reason,
        WedgeReason::RolledBack,
        "rollback beats the crash loop"
    );
    // The spec rolled back to crashes too; its failures pushed the new spec's out of the task
    // history, so the newest failure is quoted.
    assert_eq!(w.exit_code, Some(3));
}

#[test]
fn paused_rollback() {
    let r = load("rollback_paused");
    let a = assess_with!(r, |i| i.logs = &r.logs);
    let w = wedge(&a);
    assert_eq!(w.reason, WedgeReason::RollbackPaused);
    assert_eq!(w.exit_code, Some(3));
    assert!(
        w.message
            .contains("Swarm paused rolling it back (update paused due to failure")
            && w.message.contains("crashing on cue with exit code 3"),
        "{}",
        w.message
    );
}

#[test]
fn the_worst_wedge_of_several_services_wins() {
    let crash = load("crashloop");
    let image = load("image_missing");
    let view = StackView {
        services: vec![&crash.service, &image.service],
        tasks: crash.tasks.iter().chain(image.tasks.iter()).collect(),
        ..Default::default()
    };
    let now = crash.now().max(image.now());
    let a = assess(&AssessInput::new(now, &view));
    let w = wedge(&a);
    assert_eq!(w.reason, WedgeReason::ImageMissing);
    assert!(
        w.message
            .ends_with("; also wedged: rec_crashloop (CrashLoop)"),
        "{}",
        w.message
    );
    assert_eq!(a.services.len(), 2);
    assert_eq!(a.services[0].service, "rec_crashloop", "sorted by name");
}

#[test]
fn every_recorded_scenario_deserializes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tasks");
    let mut n = 0;
    for entry in std::fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_dir() {
            let r = load(&entry.file_name().to_string_lossy());
            assert!(!r.tasks.is_empty() && !r.nodes.is_empty());
            n += 1;
        }
    }
    assert!(n >= 12, "{n} scenarios");
}

//! Pure assessment of live state (docs/architecture.md §6): a deployment's services, tasks and nodes, its
//! probes, dependencies and manifest switches -> a [`Phase`] with a reason, a human message
//! naming the service and the cause, [`Condition`]s and, when it will not converge without a
//! change, a [`Wedge`]. No Docker calls; the time is passed in ([`AssessInput::now`]).
//!
//! # Readiness
//! Ready = every expected service exists with the desired spec (its `hearth.spec-hash`), every
//! service runs its desired number of tasks of its current spec (replicas; for global services
//! Docker's `ServiceStatus.DesiredTasks`, else the ready, undrained nodes) and no task of an older
//! spec is still meant to run, and every probe passes. Docker healthchecks are covered by the
//! task state: Swarm keeps a task `starting` until its container is healthy.
//!
//! Only tasks of the service's current spec count (a task carries a copy of
//! `Spec.TaskTemplate`), so failures of an old spec never wedge a new one.
//!
//! # Precedence (first match wins)
//! 1. `Invalid` (render or manifest error) — an invalid manifest cannot be trusted to say
//!    anything else.
//! 2. `Suspended` (`spec.suspend`).
//! 3. `state: parked`: `Parked` when no service is left, else `Progressing/Parking`.
//! 4. Nothing deployed and a `dependsOn` deployment not Ready: `Pending/WaitingForDependency`
//!    naming it (once deployed, a dependency not Ready is only the `DependenciesReady` condition
//!    and a note in the message).
//! 5. A wedged service: `Wedged` with its reason. Per service, first match:
//!    `RollbackPaused` (UpdateStatus `rollback_paused`) > `RolledBack` (`rollback_started` or
//!    `rollback_completed` while the live spec is not the desired one, or the desired hash is
//!    unknown: a Swarm rollback is a failure, never success) > `UpdatePaused` (`paused`) — Swarm's
//!    verdict comes first, the task failure that caused it is quoted in the message — then, only
//!    while the service is short of its desired tasks: `ImageMissing` (the newest failure of the
//!    spec is a rejection `No such image: …`) > `VolumeNodeDown` / `NodeDown` (pending with `no
//!    suitable node`, and a `node.hostname==`/`node.id==` constraint names a node that is down,
//!    drained or gone; Volume… when the service mounts volumes) > `Unschedulable` (pending with
//!    `no suitable node (…)`) > `HealthcheckFailing` / `CrashLoop` (at least `crash_threshold`
//!    failed tasks within `crash_window`, reported at once, not at the deadline; healthcheck when
//!    the newest was `… unhealthy container`, or the spec has a healthcheck and every one exited 0,
//!    as apps that exit cleanly on SIGTERM do). Across services the lowest [`WedgeReason`] wins,
//!    then the service name; the others are named in the message.
//! 6. `Ready` (`AllReady`; needs at least one live service).
//! 7. `was_ready`: `Degraded` (`ReplicasLost`, `ServiceMissing` or `ProbeFailing`).
//! 8. `progress_deadline` passed since `progressing_since`: `Wedged/ProbeFailing` when only
//!    probes fail, else `Wedged/DeadlineExceeded`, with what it still waits for.
//! 9. `Pending/NotDeployed` when no service exists yet, else `Progressing`
//!    (`ServicesProgressing`, `ServicesMissing` or `ProbeFailing`).
//!
//! `AdvanceFailed` and `Held` belong to the version-advance machine and are never produced here.
//! [`Assessment::wedge`] is set only in phase `Wedged`; the `Wedged` condition also shows a
//! service wedge seen while `Invalid` or `Suspended`. Drift never changes the phase: it is the
//! `Drifted` condition with the plan's items.
//!
//! [`service_progress`] is the older per-service view used by `hearth apply --wait`.

mod deployment;
mod model;
pub mod nodes;
mod service;
pub mod tasks;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod tests_assess;

pub use deployment::assess;
pub use model::rfc3339;
pub use model::{
    AssessInput, Assessment, Condition, DEFAULT_CRASH_THRESHOLD, DEFAULT_CRASH_WINDOW,
    DEFAULT_PROGRESS_DEADLINE, ExpectedService, Phase, ProbeOutcome, Standing, Wedge, WedgeReason,
};

use crate::observed::live::{Service, Task};
use serde::Serialize;

/// Where one service stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceProgress {
    pub service: String,
    pub desired: u64,
    pub running: u64,
    pub state: Convergence,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "message")]
pub enum Convergence {
    Converged,
    /// Still moving; the message says what it waits for.
    Progressing(String),
    /// Swarm gave up (update paused, rolled back): it will not converge without a change.
    Failed(String),
}

/// How far `service` is from running its desired tasks, for `hearth apply --wait`: the same
/// verdict the controller's assessment gives ([`service::judge`]), without what only the
/// controller knows (no expected spec hash, no nodes, no crash window, no logs). `tasks` are the
/// service's tasks (any state).
pub fn service_progress(service: &Service, tasks: &[&Task]) -> ServiceProgress {
    let logs = std::collections::HashMap::new();
    let cx = service::Context {
        now: std::time::SystemTime::UNIX_EPOCH,
        nodes: &[],
        expected_hash: None,
        logs: &logs,
        healthcheck: None,
        crash_window: std::time::Duration::ZERO,
        crash_threshold: 0,
    };
    service::judge(service, tasks, &cx).progress
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::live::ServiceSpec;
    use bollard::models::{
        ServiceServiceStatus, ServiceSpecMode, ServiceSpecModeReplicated, ServiceUpdateStatus,
        ServiceUpdateStatusStateEnum, TaskState, TaskStatus,
    };

    fn service(desired: u64) -> Service {
        Service {
            spec: Some(ServiceSpec {
                name: Some("s_app".into()),
                mode: Some(Box::new(ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated {
                        replicas: Some(desired as i64),
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            service_status: Some(Box::new(ServiceServiceStatus {
                desired_tasks: Some(desired),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn task(desired: TaskState, state: TaskState, err: Option<&str>, ts: &str) -> Task {
        Task {
            desired_state: Some(desired),
            status: Some(TaskStatus {
                state: Some(state),
                err: err.map(String::from),
                timestamp: Some(format!("2026-12-03T10:00:0{ts}Z")),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn converged_when_desired_tasks_run() {
        let t = task(TaskState::RUNNING, TaskState::RUNNING, None, "2");
        let p = service_progress(&service(1), &[&t]);
        assert_eq!(p.state, Convergence::Converged);
        assert_eq!((p.desired, p.running), (1, 1));
    }

    #[test]
    fn waiting_names_the_newest_failure() {
        let old = task(
            TaskState::SHUTDOWN,
            TaskState::FAILED,
            Some("old error"),
            "1",
        );
        let new = task(
            TaskState::SHUTDOWN,
            TaskState::FAILED,
            Some("task: non-zero exit (2)"),
            "3",
        );
        let pending = task(TaskState::RUNNING, TaskState::PENDING, None, "2");
        let p = service_progress(&service(1), &[&old, &new, &pending]);
        assert_eq!(
            p.state,
            Convergence::Progressing(
                "0/1 tasks running; last problem: task: non-zero exit (2)".into()
            )
        );
    }

    #[test]
    fn rollback_is_a_failure_not_success() {
        let t = task(TaskState::RUNNING, TaskState::RUNNING, None, "2");
        let mut s = service(1);
        s.update_status = Some(Box::new(ServiceUpdateStatus {
            state: Some(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED),
            message: Some("rollback completed".into()),
            ..Default::default()
        }));
        assert!(matches!(
            service_progress(&s, &[&t]).state,
            Convergence::Failed(_)
        ));
    }

    #[test]
    fn zero_replicas_is_converged_with_no_tasks() {
        assert_eq!(
            service_progress(&service(0), &[]).state,
            Convergence::Converged
        );
    }
}

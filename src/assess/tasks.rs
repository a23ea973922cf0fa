//! Reading one Swarm task: its time, state, error, exit code and container, whether it belongs to
//! the service's current spec, and whether it ended as a failure. Texts matched here are the ones
//! Docker 20.10 really produces (recorded in `tests/fixtures/tasks/README.md`).

use std::time::SystemTime;

use crate::observed::live::{Service, Task};
use bollard::models::TaskState;

/// `Status.Err` of a task rejected because its image is not on the node (after a failed pull).
pub const ERR_NO_SUCH_IMAGE: &str = "No such image";
/// `Status.Err` of a pending task the scheduler cannot place, e.g. `no suitable node (scheduling
/// constraints not satisfied on 1 node)` or `no suitable node (insufficient resources on 1 node)`.
pub const ERR_NO_SUITABLE_NODE: &str = "no suitable node";
/// Ends `Status.Err` of a task killed by its healthcheck:
/// `task: non-zero exit (137): dockerexec: unhealthy container`.
pub const ERR_UNHEALTHY: &str = "unhealthy container";

pub fn state(t: &Task) -> Option<TaskState> {
    t.status.as_ref().and_then(|s| s.state)
}

/// `Status.Timestamp` (RFC 3339, UTC, as Swarm writes it).
pub fn timestamp(t: &Task) -> Option<SystemTime> {
    let ts = t.status.as_ref()?.timestamp.as_deref()?;
    humantime::parse_rfc3339_weak(ts).ok()
}

/// `Status.Err` when not empty.
pub fn err(t: &Task) -> Option<&str> {
    t.status
        .as_ref()
        .and_then(|s| s.err.as_deref())
        .filter(|e| !e.is_empty())
}

/// The container's exit code: `ContainerStatus.ExitCode` of an ended task, else the `N` of
/// `non-zero exit (N)` in the error. A task that never started has none.
pub fn exit_code(t: &Task) -> Option<i64> {
    let from_err = err(t).and_then(|e| {
        let rest = e.split("non-zero exit (").nth(1)?;
        rest.split(')').next()?.trim().parse().ok()
    });
    let from_status = t
        .status
        .as_ref()
        .and_then(|s| s.container_status.as_ref())
        .and_then(|c| c.exit_code);
    match state(t) {
        Some(TaskState::COMPLETE) => from_status.or(Some(0)),
        Some(TaskState::FAILED) => from_err.or(from_status.filter(|c| *c != 0)),
        _ => from_err,
    }
}

pub fn container_id(t: &Task) -> Option<&str> {
    t.status
        .as_ref()
        .and_then(|s| s.container_status.as_ref())
        .and_then(|c| c.container_id.as_deref())
        .filter(|c| !c.is_empty())
}

/// Whether `t` runs the service's current spec. Swarm copies `Spec.TaskTemplate` into each task
/// (without `Runtime`), so a task of an older spec version differs. Without specs to compare,
/// every task counts as current. `Placement` is not compared: like Swarm (which keeps a task
/// whose node still meets changed constraints, measured on 20.10), a task hearth pinned to the
/// node it already runs on stays current; one whose node no longer fits is shut down by Swarm.
pub fn is_current(service: &Service, t: &Task) -> bool {
    let Some(want) = service.spec.as_ref().and_then(|s| s.task_template.as_ref()) else {
        return true;
    };
    let Some(have) = t.spec_digest else {
        return true;
    };
    // Both digests leave out Runtime and Placement (`crate::observed::live::template_digest`).
    want.digest == have
}

/// Whether the task ended in a way a long-running service should not: failed, rejected, or
/// (unless the service is a job) completed, which for a service means it exited and is restarted.
pub fn is_failure(t: &Task, job: bool) -> bool {
    match state(t) {
        Some(TaskState::FAILED) | Some(TaskState::REJECTED) => true,
        Some(TaskState::COMPLETE) => !job,
        _ => false,
    }
}

/// Whether Swarm had already replaced `t` (a newer task in its slot, or on its node for a global
/// service) before `t` was reported ended: a task lost with its node (Swarm rescheduled it while
/// the node was down) that is marked failed (`non-zero exit (255)`) only when the node comes back.
/// Such an end is the node's doing, not a crash of the app.
pub fn replaced_before_it_ended(t: &Task, all: &[&Task]) -> bool {
    let (Some(ended), Some(born)) = (timestamp(t), created(t)) else {
        return false;
    };
    all.iter().any(|o| {
        let same_slot = match (t.slot, o.slot) {
            (Some(a), Some(b)) => a == b,
            (None, None) => t.node_id.is_some() && t.node_id == o.node_id,
            _ => false,
        };
        same_slot && o.id != t.id && created(o).is_some_and(|c| c > born && c < ended)
    })
}

/// `CreatedAt` of a task.
fn created(t: &Task) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(t.created_at.as_deref()?).ok()
}

/// `tasks` newest first (by status timestamp; tasks without one last).
pub fn newest_first<'a>(tasks: impl IntoIterator<Item = &'a Task>) -> Vec<&'a Task> {
    let mut ts: Vec<&Task> = tasks.into_iter().collect();
    ts.sort_by_key(|t| std::cmp::Reverse(timestamp(t)));
    ts
}

/// One line for a task's failure: its error (or state and message) and exit code.
pub fn describe_failure(t: &Task) -> String {
    let exit = exit_code(t);
    let mut out = match err(t) {
        Some(e) => e.to_string(),
        None => {
            let msg = t
                .status
                .as_ref()
                .and_then(|s| s.message.clone())
                .unwrap_or_default();
            match state(t) {
                Some(TaskState::COMPLETE) => "the container exited".to_string(),
                Some(s) if msg.is_empty() => format!("task {s}"),
                Some(s) => format!("task {s}: {msg}"),
                None => "task in an unknown state".to_string(),
            }
        }
    };
    if let Some(code) = exit.filter(|_| !out.contains("non-zero exit")) {
        out.push_str(&format!(" (exit code {code})"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::live::template_digest;
    use bollard::models::{ContainerStatus, TaskSpec, TaskStatus};

    fn task(state: TaskState, err: Option<&str>, code: Option<i64>) -> Task {
        Task {
            status: Some(TaskStatus {
                state: Some(state),
                err: err.map(String::from),
                timestamp: Some("2026-11-23T16:17:54.632123456Z".into()),
                container_status: Some(ContainerStatus {
                    exit_code: code,
                    container_id: Some("c1".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn exit_codes_come_from_the_error_or_the_container() {
        let t = task(
            TaskState::FAILED,
            Some("task: non-zero exit (137): dockerexec: unhealthy container"),
            Some(137),
        );
        assert_eq!(exit_code(&t), Some(137));
        assert_eq!(
            exit_code(&task(TaskState::FAILED, Some("boom"), Some(3))),
            Some(3)
        );
        assert_eq!(exit_code(&task(TaskState::COMPLETE, None, None)), Some(0));
        // A rejected task never ran: Docker reports ExitCode 0, which means nothing.
        assert_eq!(
            exit_code(&task(
                TaskState::REJECTED,
                Some("No such image: x"),
                Some(0)
            )),
            None
        );
    }

    #[test]
    fn timestamps_parse_with_nanoseconds() {
        let t = task(TaskState::FAILED, None, None);
        let got = timestamp(&t).unwrap();
        let want = humantime::parse_rfc3339("2026-11-23T16:17:54Z").unwrap();
        assert_eq!(
            got.duration_since(want).unwrap().as_nanos(),
            632_123_456,
            "fraction kept"
        );
    }

    #[test]
    fn a_task_of_another_spec_is_not_current() {
        let spec = |image: &str, runtime: Option<&str>| TaskSpec {
            container_spec: Some(bollard::models::TaskSpecContainerSpec {
                image: Some(image.into()),
                ..Default::default()
            }),
            runtime: runtime.map(String::from),
            ..Default::default()
        };
        let service: Service = bollard::models::Service {
            spec: Some(bollard::models::ServiceSpec {
                task_template: Some(spec("a", Some("container"))),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into();
        let mut t = task(TaskState::RUNNING, None, None);
        assert!(
            is_current(&service, &t),
            "a task without a spec counts as current"
        );
        t.spec_digest = Some(template_digest(&spec("a", None)));
        assert!(is_current(&service, &t), "Runtime is not copied to tasks");
        t.spec_digest = Some(template_digest(&spec("b", None)));
        assert!(!is_current(&service, &t));
    }

    #[test]
    fn failures_name_error_and_exit_code() {
        assert_eq!(
            describe_failure(&task(
                TaskState::FAILED,
                Some("task: non-zero exit (3)"),
                Some(3)
            )),
            "task: non-zero exit (3)"
        );
        assert_eq!(
            describe_failure(&task(TaskState::COMPLETE, None, Some(0))),
            "the container exited (exit code 0)"
        );
        assert!(is_failure(&task(TaskState::COMPLETE, None, None), false));
        assert!(!is_failure(&task(TaskState::COMPLETE, None, None), true));
        assert!(!is_failure(&task(TaskState::SHUTDOWN, None, None), false));
    }
}

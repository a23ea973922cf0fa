//! Pure assessment of live state: task and service state -> whether a service has converged, and
//! if not, why. (The full phase and wedge vocabulary of DESIGN §5 grows here with the controller.)

use bollard::models::{Service, ServiceUpdateStatusStateEnum, Task, TaskState};
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

/// How far `service` is from running its desired tasks. `tasks` are the service's tasks (any
/// state); the newest failed one explains a wait.
pub fn service_progress(service: &Service, tasks: &[&Task]) -> ServiceProgress {
    let name = service
        .spec
        .as_ref()
        .and_then(|s| s.name.clone())
        .unwrap_or_default();
    let status = service.service_status.as_ref();
    let current: Vec<&&Task> = tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .collect();
    let running = current
        .iter()
        .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
        .count() as u64;
    let desired = status
        .and_then(|s| s.desired_tasks)
        .or_else(|| {
            service
                .spec
                .as_ref()
                .and_then(|s| s.mode.as_ref())
                .and_then(|m| m.replicated.as_ref())
                .map(|r| r.replicas.unwrap_or(1) as u64)
        })
        .unwrap_or(1);
    let update = service.update_status.as_ref();
    let update_state = update.and_then(|u| u.state);
    let update_msg = update.and_then(|u| u.message.clone()).unwrap_or_default();
    let state = match update_state {
        Some(ServiceUpdateStatusStateEnum::PAUSED) => {
            Convergence::Failed(format!("update paused: {update_msg}"))
        }
        Some(ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED) => {
            Convergence::Failed(format!("rollback paused: {update_msg}"))
        }
        Some(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED) => {
            Convergence::Failed(format!("update rolled back: {update_msg}"))
        }
        Some(ServiceUpdateStatusStateEnum::UPDATING)
        | Some(ServiceUpdateStatusStateEnum::ROLLBACK_STARTED) => {
            Convergence::Progressing(format!("update in progress: {update_msg}"))
        }
        _ if running >= desired && current.len() as u64 == running => Convergence::Converged,
        _ => Convergence::Progressing(format!(
            "{running}/{desired} tasks running{}",
            last_problem(tasks)
                .map(|p| format!("; last problem: {p}"))
                .unwrap_or_default()
        )),
    };
    ServiceProgress {
        service: name,
        desired,
        running,
        state,
    }
}

/// The newest task error (a failed or rejected task says why), else the newest task that is
/// not running and its state.
fn last_problem(tasks: &[&Task]) -> Option<String> {
    let mut ts: Vec<&&Task> = tasks.iter().collect();
    ts.sort_by(|a, b| {
        let key = |t: &Task| t.status.as_ref().and_then(|s| s.timestamp.clone());
        key(b).cmp(&key(a))
    });
    let error = ts.iter().find_map(|t| {
        let s = t.status.as_ref()?;
        let err = s.err.clone().filter(|e| !e.is_empty())?;
        let exit = s
            .container_status
            .as_ref()
            .and_then(|c| c.exit_code)
            .filter(|c| *c != 0)
            .map(|c| format!(" (exit code {c})"))
            .unwrap_or_default();
        Some(format!("{err}{exit}"))
    });
    error.or_else(|| {
        ts.iter().find_map(|t| {
            let s = t.status.as_ref()?;
            match s.state {
                Some(TaskState::RUNNING) | None => None,
                Some(state) => Some(format!(
                    "task {state}: {}",
                    s.message.clone().unwrap_or_default()
                )),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ServiceServiceStatus, ServiceSpec, ServiceUpdateStatus, TaskStatus};

    fn service(desired: u64) -> Service {
        Service {
            spec: Some(ServiceSpec {
                name: Some("s_app".into()),
                ..Default::default()
            }),
            service_status: Some(ServiceServiceStatus {
                desired_tasks: Some(desired),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn task(desired: TaskState, state: TaskState, err: Option<&str>, ts: &str) -> Task {
        Task {
            desired_state: Some(desired),
            status: Some(TaskStatus {
                state: Some(state),
                err: err.map(String::from),
                timestamp: Some(ts.into()),
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
        s.update_status = Some(ServiceUpdateStatus {
            state: Some(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED),
            message: Some("rollback completed".into()),
            ..Default::default()
        });
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

//! Reviving a service whose tasks Swarm will not start again (pure, over the snapshot).
//!
//! A replicated service with `restart_policy: condition: on-failure` (common in Co-op Cloud
//! recipes) or `none` whose container is stopped from outside, by a daemon restart or a reboot
//! that sends SIGTERM, ends with exit code 0: Swarm records the task `complete` and, by that
//! policy, starts no replacement. The service then stays at 0 of N running for good (moby/moby
//! issue 32416; found here by scripts/chaos: a dockerd restart left a canonical down). hearth
//! sees it (Degraded, `ReplicasLost`) and revives it with a forced update (`ForceUpdate` + 1,
//! as `docker service update --force`), which restarts nothing that runs.
//!
//! A task that had run for [`RAN_AT_LEAST`] before completing is revived at once. One that ended
//! sooner (stopped early in its life, or a program that ends by itself: a job in the wrong mode)
//! is revived only when the service was not updated for [`BACKOFF`]: at most once per backoff,
//! never a tight loop.

use std::time::Duration;

use bollard::models::{ServiceSpecMode, TaskState};

use crate::observed::live::{Service, Task};

/// How long a completed task must have run to count as stopped from outside.
pub const RAN_AT_LEAST: Duration = Duration::from_secs(30);
/// The least time between two revives of a service whose tasks end soon after they start.
pub const BACKOFF: Duration = Duration::from_secs(60);

fn time(s: Option<&str>) -> Option<std::time::SystemTime> {
    humantime::parse_rfc3339_weak(s?).ok()
}

/// Why `live` needs a forced restart (`tasks`: its tasks in the snapshot, as the plan's index
/// groups them; `now`: when the snapshot was taken), or `None`.
pub fn stopped_for_good(
    live: &Service,
    tasks: &[&Task],
    now: Option<std::time::SystemTime>,
) -> Option<String> {
    let mode: &ServiceSpecMode = live.spec.as_ref()?.mode.as_deref()?;
    let replicas = mode.replicated.as_ref()?.replicas.unwrap_or(1);
    if replicas < 1 {
        return None;
    }
    // Swarm is still trying for every slot: not ours to touch.
    let wanted = tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .count() as i64;
    if wanted >= replicas {
        return None;
    }
    let newest = tasks
        .iter()
        .max_by(|a, b| a.created_at.cmp(&b.created_at))?;
    let status = newest.status.as_ref()?;
    if status.state != Some(TaskState::COMPLETE) {
        return None;
    }
    let (created, ended) = (
        time(newest.created_at.as_deref())?,
        time(status.timestamp.as_deref())?,
    );
    let ran = ended.duration_since(created).unwrap_or_default();
    let updated = time(live.updated_at.as_deref());
    let quiet = match (now, updated) {
        (Some(now), Some(u)) => now.duration_since(u).unwrap_or_default() >= BACKOFF,
        _ => false,
    };
    // Updated since the stop (a revive already sent, or a change that started no task, such as a
    // label): Swarm's turn, for a backoff.
    if updated.is_some_and(|u| u >= ended) && !quiet {
        return None;
    }
    if ran < RAN_AT_LEAST && !quiet {
        return None;
    }
    Some(format!(
        "{wanted} of {replicas} tasks wanted: the last one completed (exit code 0) after running \
         {}s, and the restart policy starts no replacement for a clean exit (a daemon restart or \
         reboot stops containers that way); forced update",
        ran.as_secs()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ServiceSpecModeReplicated, TaskStatus};

    fn service(replicas: i64) -> Service {
        Service {
            id: Some("s".into()),
            spec: Some(crate::observed::live::ServiceSpec {
                mode: Some(Box::new(ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated {
                        replicas: Some(replicas),
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn task(created: &str, ended: &str, state: TaskState, desired: TaskState) -> Task {
        Task {
            id: Some(format!("t{created}")),
            created_at: Some(created.into()),
            service_id: Some("s".into()),
            desired_state: Some(desired),
            status: Some(TaskStatus {
                state: Some(state),
                timestamp: Some(ended.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_task_stopped_cleanly_after_running_a_while_is_revived() {
        let t = task(
            "2026-12-03T16:40:00.123456789Z",
            "2026-12-03T16:45:31.5Z",
            TaskState::COMPLETE,
            TaskState::SHUTDOWN,
        );
        let why = stopped_for_good(&service(1), &[&t], None).expect("revive");
        assert!(why.contains("0 of 1") && why.contains("331s"), "{why}");
        // Once revived (the service updated after the stop), not again.
        let mut revived = service(1);
        revived.updated_at = Some("2026-12-03T16:45:32Z".into());
        assert_eq!(stopped_for_good(&revived, &[&t], None), None);
        // Regression (scripts/chaos, seed 2026, step 5): an update after the stop that started no
        // task (a label) held the revive back for good; after a backoff it goes.
        let at = |s: &str| humantime::parse_rfc3339(s).ok();
        assert_eq!(
            stopped_for_good(&revived, &[&t], at("2026-12-03T16:46:00Z")),
            None
        );
        assert!(stopped_for_good(&revived, &[&t], at("2026-12-03T16:46:40Z")).is_some());
    }

    #[test]
    fn a_short_lived_task_is_revived_at_most_once_per_backoff() {
        // Regression (scripts/chaos, seed 1, step 6): a replacement task stopped by a dockerd
        // restart 17s into its life stayed down.
        let t = task(
            "2026-12-03T17:02:05Z",
            "2026-12-03T17:02:22Z",
            TaskState::COMPLETE,
            TaskState::SHUTDOWN,
        );
        let at = |s: &str| humantime::parse_rfc3339(s).ok();
        let mut svc = service(1);
        svc.updated_at = Some("2026-12-03T17:00:20Z".into());
        // The service was last updated more than a backoff ago: revived.
        assert!(stopped_for_good(&svc, &[&t], at("2026-12-03T17:02:38Z")).is_some());
        // Updated 30s ago: not yet (a program that ends by itself is not restarted in a loop).
        svc.updated_at = Some("2026-12-03T17:02:00Z".into());
        assert_eq!(
            stopped_for_good(&svc, &[&t], at("2026-12-03T17:02:30Z")),
            None
        );
    }

    #[test]
    fn nothing_when_swarm_still_tries_or_the_program_ends_by_itself() {
        let done = task(
            "2026-12-03T16:40:00Z",
            "2026-12-03T16:45:00Z",
            TaskState::COMPLETE,
            TaskState::SHUTDOWN,
        );
        // A replacement is wanted already.
        let next = task(
            "2026-12-03T16:45:01Z",
            "2026-12-03T16:45:01Z",
            TaskState::STARTING,
            TaskState::RUNNING,
        );
        assert_eq!(stopped_for_good(&service(1), &[&done, &next], None), None);
        // Ended at once by itself: reported by the assessment, not restarted in a loop.
        let quick = task(
            "2026-12-03T16:40:00Z",
            "2026-12-03T16:40:05Z",
            TaskState::COMPLETE,
            TaskState::SHUTDOWN,
        );
        assert_eq!(stopped_for_good(&service(1), &[&quick], None), None);
        // A failure is Swarm's to restart (on-failure), and a service scaled to zero wants nothing.
        let failed = task(
            "2026-12-03T16:40:00Z",
            "2026-12-03T16:45:00Z",
            TaskState::FAILED,
            TaskState::SHUTDOWN,
        );
        assert_eq!(stopped_for_good(&service(1), &[&failed], None), None);
        assert_eq!(stopped_for_good(&service(0), &[&done], None), None);
    }
}

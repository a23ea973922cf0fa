//! The `docker` probe: Docker's own healthcheck of every running task's container (on the daemon
//! hearth talks to), including tasks Swarm holds in `starting` until their healthcheck passes.
//! Swarm replaces a task whose container turns `unhealthy`, so that state is seen only briefly;
//! `starting` with failing checks is the common failure. `healthy` passes; a container without a healthcheck passes and says so;
//! `starting` and `unhealthy` fail, the latter with the last healthcheck output line.

use std::time::Duration;

use bollard::models::{Health, HealthStatusEnum};

use super::{Check, Round, Subject, last_line, local_tasks, on_every_task, target};
use crate::manifest::DockerProbe;
use crate::swarm::Client;

/// One probe check, each container inspect bounded by `timeout`.
pub async fn check(
    client: &Client,
    round: Round<'_>,
    subject: &Subject,
    p: &DockerProbe,
    timeout: Duration,
) -> Check {
    let tasks = target::resolve_started(round.snapshot, &subject.stack, &p.service, round.reach)
        .map_err(|e| e.to_string())?;
    let (tasks, note) = local_tasks(tasks)?;
    let verdict = on_every_task(&tasks, |t| async move {
        let container = t
            .container_id
            .as_deref()
            .ok_or_else(|| "task has no container yet".to_string())?;
        let info = tokio::time::timeout(timeout, client.inspect_container(container))
            .await
            .map_err(|_| format!("no answer from Docker within {timeout:?}"))?
            .map_err(|e| e.to_string())?;
        judge(info.state.and_then(|s| s.health).as_ref())
    })
    .await;
    verdict.map(|m| format!("{m}{note}"))
}

/// The verdict on a container's `State.Health` (pure).
pub fn judge(health: Option<&Health>) -> Check {
    let status = health.and_then(|h| h.status);
    let last_output = || {
        health
            .and_then(|h| h.log.as_ref())
            .and_then(|log| log.last())
            .map(|r| {
                let line = last_line(r.output.as_deref().unwrap_or_default());
                match r.exit_code {
                    Some(code) if line.is_empty() => format!("last check exit {code}"),
                    Some(code) => format!("last check exit {code}: {line}"),
                    None => line,
                }
            })
            .unwrap_or_default()
    };
    let with = |head: &str| {
        let out = last_output();
        if out.is_empty() {
            head.to_string()
        } else {
            format!("{head} ({out})")
        }
    };
    match status {
        None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) => {
            Ok("no healthcheck".into())
        }
        Some(HealthStatusEnum::HEALTHY) => Ok("healthy".into()),
        Some(HealthStatusEnum::STARTING) => Err(with("health: starting")),
        Some(HealthStatusEnum::UNHEALTHY) => {
            let streak = health.and_then(|h| h.failing_streak).unwrap_or(0);
            Err(with(&format!("unhealthy, failing streak {streak}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::HealthcheckResult;

    fn health(status: HealthStatusEnum, out: Option<(i64, &str)>) -> Health {
        Health {
            status: Some(status),
            failing_streak: Some(4),
            log: out.map(|(code, o)| {
                vec![HealthcheckResult {
                    exit_code: Some(code),
                    output: Some(o.into()),
                    ..Default::default()
                }]
            }),
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(judge(None), Ok("no healthcheck".into()));
        assert_eq!(
            judge(Some(&health(HealthStatusEnum::NONE, None))),
            Ok("no healthcheck".into())
        );
        assert_eq!(
            judge(Some(&health(HealthStatusEnum::HEALTHY, None))),
            Ok("healthy".into())
        );
        assert_eq!(
            judge(Some(&health(
                HealthStatusEnum::UNHEALTHY,
                Some((1, "GET /health: 503\n"))
            ))),
            Err("unhealthy, failing streak 4 (last check exit 1: GET /health: 503)".into())
        );
        assert_eq!(
            judge(Some(&health(HealthStatusEnum::STARTING, None))),
            Err("health: starting".into())
        );
    }
}

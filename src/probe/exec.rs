//! The `exec` probe: the command runs in the container of every running task on the daemon hearth
//! talks to (Docker exec, through the counted client); it passes on exit code 0. The message is
//! the last line of the command's output.

use std::time::Duration;

use super::{Check, Round, Subject, last_line, local_tasks, on_every_task, target};
use crate::manifest::ExecProbe;
use crate::swarm::Client;

/// One probe check, each exec bounded by `timeout`.
pub async fn check(
    client: &Client,
    round: Round<'_>,
    subject: &Subject,
    p: &ExecProbe,
    timeout: Duration,
) -> Check {
    let tasks = target::resolve(round.snapshot, &subject.stack, &p.service, round.reach)
        .map_err(|e| e.to_string())?;
    let (tasks, note) = local_tasks(tasks)?;
    let verdict = on_every_task(&tasks, |t| async move {
        let container = t
            .container_id
            .as_deref()
            .ok_or_else(|| "task has no container yet".to_string())?;
        let out = tokio::time::timeout(timeout, client.exec(container, &p.command))
            .await
            .map_err(|_| format!("no exit within {timeout:?}"))?
            .map_err(|e| e.to_string())?;
        judge(out.exit_code, &out.output)
    })
    .await;
    verdict.map(|m| format!("{m}{note}"))
}

/// Exit code 0 passes; the message is the last line of output (pure).
pub fn judge(exit_code: Option<i64>, output: &str) -> Check {
    let line = last_line(output);
    match exit_code {
        Some(0) if line.is_empty() => Ok("exit 0".into()),
        Some(0) => Ok(line),
        Some(code) if line.is_empty() => Err(format!("exit {code}")),
        Some(code) => Err(format!("exit {code}: {line}")),
        None => Err(format!("no exit code reported: {line}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(
            judge(Some(0), "starting\naccepting connections\n"),
            Ok("accepting connections".into())
        );
        assert_eq!(judge(Some(0), ""), Ok("exit 0".into()));
        assert_eq!(
            judge(Some(1), "no such file\n"),
            Err("exit 1: no such file".into())
        );
        assert_eq!(judge(Some(127), ""), Err("exit 127".into()));
        assert!(judge(None, "x").is_err());
    }
}

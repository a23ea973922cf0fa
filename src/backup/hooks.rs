//! Hooks: `sh -c` commands from the backupbot labels, run in a running task's container of the
//! service on the node hearth talks to, bounded in time; anything but exit 0 is an error carrying
//! service, hook, command, exit code and output.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::TaskState;

use super::labels::LiveService;
use super::{BackupError, Options};
use crate::swarm::Client;

type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// Runs a hook (`sh -c cmd`) in the service's running container on this node, bounded by
/// `opts.hook_timeout`; anything but exit 0 is a [`BackupError::Hook`].
pub(super) async fn run_hook(
    client: &Client,
    opts: &Options,
    svc: &LiveService,
    service: &str,
    hook: &str,
    cmd: &str,
    progress: Progress<'_>,
) -> Result<(), BackupError> {
    let container = running_container(client, opts, svc, service, hook).await?;
    progress(&format!("{service}: {hook}: {cmd}"));
    let argv = vec!["sh".to_string(), "-c".to_string(), cmd.to_string()];
    let fail = |exit_code, output: String| BackupError::Hook {
        service: service.to_string(),
        hook: hook.to_string(),
        command: cmd.to_string(),
        exit_code,
        output: output.trim().to_string(),
    };
    match tokio::time::timeout(opts.hook_timeout, client.exec(&container, &argv)).await {
        Err(_) => Err(fail(
            None,
            format!("no exit within {:?}", opts.hook_timeout),
        )),
        Ok(Err(e)) => Err(fail(None, e.to_string())),
        Ok(Ok(out)) if out.exit_code == Some(0) => Ok(()),
        Ok(Ok(out)) => Err(fail(out.exit_code, out.output)),
    }
}

/// The container of a running task of the service on this node, waiting up to
/// `opts.wait_running` for one.
async fn running_container(
    client: &Client,
    opts: &Options,
    svc: &LiveService,
    service: &str,
    hook: &str,
) -> Result<String, BackupError> {
    let node = client
        .info()
        .await?
        .swarm
        .and_then(|s| s.node_id)
        .unwrap_or_default();
    let filter = HashMap::from([
        ("service".to_string(), vec![svc.name.clone()]),
        ("desired-state".to_string(), vec!["running".to_string()]),
    ]);
    let deadline = tokio::time::Instant::now() + opts.wait_running;
    loop {
        let tasks: Vec<crate::observed::live::Task> = client
            .list_tasks(Some(filter.clone()))
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
        let mut seen = BTreeMap::new();
        for t in &tasks {
            if !svc.id.is_empty() && t.service_id.as_deref() != Some(svc.id.as_str()) {
                continue;
            }
            let state = t.status.as_ref().and_then(|s| s.state);
            let container = crate::assess::tasks::container_id(t);
            let local = t.node_id.as_deref() == Some(node.as_str());
            if state == Some(TaskState::RUNNING)
                && local
                && let Some(c) = container
            {
                return Ok(c.to_string());
            }
            let where_ = if local { "here" } else { "on another node" };
            *seen.entry(format!("{state:?} {where_}")).or_insert(0usize) += 1;
        }
        if tokio::time::Instant::now() >= deadline {
            let state = if seen.is_empty() {
                "no task".to_string()
            } else {
                seen.iter()
                    .map(|(k, n)| format!("{n} task(s) {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(BackupError::NotRunning {
                service: service.to_string(),
                hook: hook.to_string(),
                message: format!("after {:?}: {state}", opts.wait_running),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::labels::{LABEL_BACKUP_PRE, LABEL_RESTORE_POST};

    #[test]
    fn hook_errors_name_service_hook_exit_code_and_output() {
        let e = BackupError::Hook {
            service: "db".into(),
            hook: LABEL_BACKUP_PRE.into(),
            command: "/pg_backup.sh backup".into(),
            exit_code: Some(3),
            output: "disk full".into(),
        };
        assert_eq!(
            e.to_string(),
            "db: backupbot.backup.pre-hook `/pg_backup.sh backup` failed (exit 3): disk full"
        );
        let e = BackupError::Hook {
            exit_code: None,
            output: "no exit within 1s".into(),
            service: "db".into(),
            hook: LABEL_RESTORE_POST.into(),
            command: "x".into(),
        };
        assert!(e.to_string().contains("(no exit code): no exit within 1s"));
    }
}

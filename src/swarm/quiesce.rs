//! One copy of a deployment running at a time during a stack move (`swarm::migrate`): the old
//! stack's services are scaled to zero before their data is copied (those whose snapshot runs a
//! backup hook right after it, since the hook runs in their container), with the replica count
//! recorded in a label so that a failed move starts them again exactly as they were. Without this
//! the old stack kept serving, and taking writes, after its snapshot: writes lost at the switch,
//! and two copies of one service running (found by scripts/chaos, invariant
//! `one-service-per-name`).

use std::time::{Duration, Instant};

use bollard::models::{Service, ServiceSpec};

use super::{Client, label_filter};
use crate::backup::labels::{LABEL_BACKUP_POST, LABEL_BACKUP_PRE};
use crate::render::{LABEL_DEPLOYMENT, LABEL_POOL};

/// Service label: the replicas a move stopped the service from (so a failed move restores them).
pub const LABEL_STOPPED_REPLICAS: &str = "hearth.migrate.stopped-replicas";

type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// Which of a stack's services [`stop`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Those whose snapshot needs no hook in their running container.
    WithoutBackupHooks,
    /// All of them.
    All,
}

fn has_backup_hook(s: &Service) -> bool {
    s.spec
        .as_ref()
        .and_then(|s| s.labels.as_ref())
        .is_some_and(|l| l.contains_key(LABEL_BACKUP_PRE) || l.contains_key(LABEL_BACKUP_POST))
}

async fn services(
    client: &Client,
    pool: &str,
    deployment: &str,
    stack: &str,
) -> Result<Vec<Service>, String> {
    let filter = label_filter(&[
        &format!("com.docker.stack.namespace={stack}"),
        &format!("{LABEL_POOL}={pool}"),
        &format!("{LABEL_DEPLOYMENT}={deployment}"),
    ]);
    client
        .list_services(Some(filter))
        .await
        .map_err(|e| format!("listing the services of {stack}: {e}"))
}

/// Scales `stack`'s replicated services of the deployment to zero (recording their replicas) and
/// waits until none of their tasks runs.
pub async fn stop(
    client: &Client,
    pool: &str,
    deployment: &str,
    stack: &str,
    which: Which,
    progress: Progress<'_>,
) -> Result<(), String> {
    let mut stopped = Vec::new();
    for s in services(client, pool, deployment, stack).await? {
        if which == Which::WithoutBackupHooks && has_backup_hook(&s) {
            continue;
        }
        let (Some(id), Some(mut spec)) = (s.id.clone(), s.spec.clone()) else {
            continue;
        };
        let name = spec.name.clone().unwrap_or_default();
        let Some(r) = spec.mode.as_mut().and_then(|m| m.replicated.as_mut()) else {
            continue;
        };
        let n = r.replicas.unwrap_or(1);
        if n == 0 {
            stopped.push(id);
            continue;
        }
        r.replicas = Some(0);
        spec.labels
            .get_or_insert_with(Default::default)
            .insert(LABEL_STOPPED_REPLICAS.into(), n.to_string());
        write(client, &s, spec, "stopping").await?;
        progress(&format!(
            "{name}: stopped ({n} replicas recorded) before its data moves"
        ));
        stopped.push(id);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let tasks = client
            .list_tasks_live()
            .await
            .map_err(|e| format!("listing tasks: {e}"))?;
        let running = tasks
            .iter()
            .filter(|t| t.service_id.as_ref().is_some_and(|s| stopped.contains(s)))
            .filter(|t| {
                t.status
                    .as_ref()
                    .and_then(|s| s.state)
                    .is_some_and(|s| s == bollard::models::TaskState::RUNNING)
            })
            .count();
        if running == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{running} task(s) of stack {stack} still run 120s after their stop"
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Writes `spec` over service `s` at the version it was read at (`doing`: for the error).
async fn write(client: &Client, s: &Service, spec: ServiceSpec, doing: &str) -> Result<(), String> {
    let name = spec.name.clone().unwrap_or_default();
    let version = s.version.as_ref().and_then(|v| v.index).unwrap_or(0);
    client
        .update_service(s.id.as_deref().unwrap_or_default(), version, spec)
        .await
        .map(|_| ())
        .map_err(|e| format!("{doing} {name}: {e}"))
}

/// Starts again what [`stop`] stopped in `stack` (a failed move): the recorded replicas, the
/// label removed.
pub async fn start(
    client: &Client,
    pool: &str,
    deployment: &str,
    stack: &str,
    progress: Progress<'_>,
) -> Result<(), String> {
    for s in services(client, pool, deployment, stack).await? {
        let Some(mut spec) = s.spec.clone() else {
            continue;
        };
        let Some(n) = spec
            .labels
            .as_mut()
            .and_then(|l| l.remove(LABEL_STOPPED_REPLICAS))
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        let name = spec.name.clone().unwrap_or_default();
        if let Some(r) = spec.mode.as_mut().and_then(|m| m.replicated.as_mut()) {
            r.replicas = Some(n);
        }
        write(client, &s, spec, "starting again").await?;
        progress(&format!(
            "{name}: started again ({n} replicas): the move failed"
        ));
    }
    Ok(())
}

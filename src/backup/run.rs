//! The executor: takes a snapshot of a live stack's labelled volumes (hooks in the service's running
//! container, data copied through short-lived helper containers) and restores one. Helper
//! containers mount one volume each at [`MOUNT`], never start for a take (the archive API reads a
//! created container's volumes) and run one `sh -c` to empty the volume (or the snapshot's paths)
//! before a restore; they are removed on every path, and leftovers of a killed run are swept first.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::helper::{
    BlockingRead, CLEAR_SCRIPT, MOUNT, PIPE_BUFFER, is_broken_pipe, require_volume, sweep_helpers,
    with_helper,
};
use super::hooks::run_hook;
use super::labels::{
    LABEL_BACKUP_POST, LABEL_BACKUP_PRE, LABEL_RESTORE_POST, LABEL_RESTORE_PRE, LiveService,
    ServicePlan, parse_paths, plan_service, plan_stack,
};
use super::store::{SnapshotMeta, Store, VolumeEntry, new_id, sha256_file};
use super::{BackupError, Options, archive};
use crate::swarm::{Client, label_filter};

type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// Takes a snapshot of `stack` (deployment `deployment` at `version`) into `store`: for each
/// service labelled `backupbot.backup=true`, its pre-hook (a failure stops the snapshot), the copy
/// of its volumes, its post-hook (also when the copy failed). The snapshot is verified, then made
/// visible, then retention runs.
pub async fn take(
    client: &Client,
    store: &Store,
    opts: &Options,
    deployment: &str,
    stack: &str,
    version: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SnapshotMeta, BackupError> {
    take_with(
        client, store, opts, deployment, stack, version, false, progress,
    )
    .await
}

/// [`take`] of every named volume of every service of `stack` when `all` (a stack move carries
/// all its data, labelled or not; a service's backupbot hooks and path labels still apply).
#[allow(clippy::too_many_arguments)]
pub async fn take_with(
    client: &Client,
    store: &Store,
    opts: &Options,
    deployment: &str,
    stack: &str,
    version: &str,
    all: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SnapshotMeta, BackupError> {
    let mut live = live_services(client, stack).await?;
    if all {
        for s in &mut live {
            s.labels
                .insert(super::labels::LABEL_BACKUP.to_string(), "true".to_string());
        }
    }
    let plans = plan_stack(stack, &live)?;
    store.sweep_tmp(deployment, Duration::from_secs(3600));
    sweep_helpers(client, stack).await;
    let (id, created) = new_id(SystemTime::now());
    let tmp = store.begin(deployment, &id)?;
    progress(&format!(
        "snapshot {id} of {stack}: {} service(s), {} volume(s)",
        plans.len(),
        plans.iter().map(|p| p.volumes.len()).sum::<usize>()
    ));
    let mut volumes = Vec::new();
    for plan in &plans {
        match take_service(client, opts, stack, plan, &tmp, progress).await {
            Ok(mut v) => volumes.append(&mut v),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        }
    }
    let meta = SnapshotMeta {
        id,
        deployment: deployment.to_string(),
        stack: stack.to_string(),
        version: version.to_string(),
        created,
        bytes: volumes.iter().map(|v| v.bytes).sum(),
        volumes,
    };
    progress(&format!(
        "snapshot {}: verifying {} bytes",
        meta.id, meta.bytes
    ));
    let committed = blocking({
        let (store, tmp, meta) = (store.clone(), tmp.clone(), meta.clone());
        move || store.commit(&tmp, &meta)
    })
    .await;
    match committed {
        Ok(pruned) => {
            let note = if pruned.is_empty() {
                String::new()
            } else {
                format!("; retention removed {}", pruned.join(", "))
            };
            progress(&format!("snapshot {} stored and verified{note}", meta.id));
            Ok(meta)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Restores `meta` into the live stack `meta.stack`: verifies the snapshot, then per service its
/// restore pre-hook (a failure stops the restore), the replacement of each volume's content (only
/// the snapshot's paths when it took paths) by the snapshot's, and its restore post-hook (only
/// when the copy succeeded: it typically loads what was copied).
pub async fn restore(
    client: &Client,
    store: &Store,
    opts: &Options,
    meta: &SnapshotMeta,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), BackupError> {
    progress(&format!("restore {}: verifying the snapshot", meta.id));
    blocking({
        let (store, meta) = (store.clone(), meta.clone());
        move || store.verify(&meta)
    })
    .await?;
    let stack = &meta.stack;
    let live = live_services(client, stack).await?;
    sweep_helpers(client, stack).await;
    let mut services: Vec<&str> = Vec::new();
    for v in &meta.volumes {
        if !services.contains(&v.service.as_str()) {
            services.push(&v.service);
        }
    }
    for service in services {
        let swarm_name = format!("{stack}_{service}");
        let Some(svc) = live.iter().find(|s| s.name == swarm_name) else {
            return Err(BackupError::NotFound(format!(
                "service {swarm_name} (snapshot {} restores its volumes)",
                meta.id
            )));
        };
        let plan = plan_service(stack, svc)?;
        let hooks = plan.as_ref().map(|p| p.hooks.clone()).unwrap_or_default();
        let image = opts
            .helper_image
            .clone()
            .unwrap_or_else(|| svc.image.clone());
        if let Some(cmd) = &hooks.restore_pre {
            run_hook(client, opts, svc, service, LABEL_RESTORE_PRE, cmd, progress).await?;
        }
        for v in meta.volumes.iter().filter(|v| v.service == service) {
            let file = store.volume_file(meta, v)?;
            restore_volume(client, opts, stack, &image, v, &file, progress).await?;
        }
        if let Some(cmd) = &hooks.restore_post {
            run_hook(
                client,
                opts,
                svc,
                service,
                LABEL_RESTORE_POST,
                cmd,
                progress,
            )
            .await?;
        }
    }
    progress(&format!("restore {} done", meta.id));
    Ok(())
}

/// The stack's services as the plan needs them.
async fn live_services(client: &Client, stack: &str) -> Result<Vec<LiveService>, BackupError> {
    let filter = label_filter(&[&format!("com.docker.stack.namespace={stack}")]);
    let services = client.list_services(Some(filter)).await?;
    Ok(services
        .into_iter()
        .map(|s| LiveService::from_service(&s.into()))
        .collect())
}

async fn take_service(
    client: &Client,
    opts: &Options,
    stack: &str,
    plan: &ServicePlan,
    tmp: &Path,
    progress: Progress<'_>,
) -> Result<Vec<VolumeEntry>, BackupError> {
    let svc = LiveService {
        id: plan.swarm_id.clone(),
        name: plan.swarm_name.clone(),
        ..Default::default()
    };
    if let Some(cmd) = &plan.hooks.backup_pre {
        run_hook(
            client,
            opts,
            &svc,
            &plan.service,
            LABEL_BACKUP_PRE,
            cmd,
            progress,
        )
        .await?;
    }
    let copied = async {
        let mut out = Vec::new();
        for v in &plan.volumes {
            out.push(take_volume(client, opts, stack, plan, v, tmp, progress).await?);
        }
        Ok::<_, BackupError>(out)
    }
    .await;
    let post = match &plan.hooks.backup_post {
        Some(cmd) => {
            run_hook(
                client,
                opts,
                &svc,
                &plan.service,
                LABEL_BACKUP_POST,
                cmd,
                progress,
            )
            .await
        }
        None => Ok(()),
    };
    let copied = copied?;
    post?;
    Ok(copied)
}

async fn take_volume(
    client: &Client,
    opts: &Options,
    stack: &str,
    plan: &ServicePlan,
    v: &super::VolumePlan,
    tmp: &Path,
    progress: Progress<'_>,
) -> Result<VolumeEntry, BackupError> {
    let what = if v.paths.is_empty() {
        String::from("whole volume")
    } else {
        format!("paths {}", v.paths.join(", "))
    };
    progress(&format!(
        "{}: copying volume {} ({what})",
        plan.service, v.volume
    ));
    require_volume(client, &v.docker_volume).await?;
    let image = opts
        .helper_image
        .clone()
        .unwrap_or_else(|| plan.image.clone());
    let file = file_name(&plan.service, &v.volume);
    let dest = tmp.join(&file);
    let rels: Vec<String> = if v.paths.is_empty() {
        vec![String::new()]
    } else {
        v.paths.clone()
    };
    // Each archive streams from Docker through a pipe into the tar rewrite on a blocking thread,
    // which writes the stored tar directly (no intermediate copy on disk).
    let handle = tokio::runtime::Handle::current();
    let (writers, readers): (Vec<_>, Vec<_>) = rels
        .iter()
        .map(|rel| {
            let (w, r) = tokio::io::duplex(PIPE_BUFFER);
            let r = BlockingRead {
                inner: r,
                handle: handle.clone(),
            };
            (w, (r, rel.clone()))
        })
        .collect();
    let worker = tokio::task::spawn_blocking({
        let dest = dest.clone();
        move || archive::build_volume_tar(readers, &dest)
    });
    let copied = with_helper(
        client,
        opts,
        stack,
        &image,
        &v.docker_volume,
        vec!["exit 0".into()],
        |id| {
            let rels = &rels;
            async move {
                for (mut w, rel) in writers.into_iter().zip(rels) {
                    let src = if rel.is_empty() {
                        MOUNT.to_string()
                    } else {
                        format!("{MOUNT}/{rel}")
                    };
                    let copied = every_step(progress, &plan.service, &v.volume, "copied");
                    client
                        .download_archive(&id, &src, &mut w, &copied)
                        .await
                        .map_err(|e| missing_path(e, rel, v))?;
                }
                Ok(())
            }
        },
    )
    .await;
    let built = worker.await.map_err(|e| BackupError::Io {
        path: dest.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let entries = match (copied, built) {
        (Ok(()), built) => built?,
        // The rewrite failed first and closed the pipe: its error is the cause.
        (Err(e), Err(b)) if is_broken_pipe(&e) => return Err(b),
        (Err(e), _) => return Err(e),
    };
    let (sha256, bytes) = blocking({
        let dest = dest.clone();
        move || sha256_file(&dest)
    })
    .await?;
    progress(&format!(
        "{}: volume {}: {entries} entries, {bytes} bytes",
        plan.service, v.volume
    ));
    Ok(VolumeEntry {
        service: plan.service.clone(),
        volume: v.volume.clone(),
        docker_volume: v.docker_volume.clone(),
        paths: v.paths.clone(),
        file,
        bytes,
        sha256,
    })
}

async fn restore_volume(
    client: &Client,
    opts: &Options,
    stack: &str,
    image: &str,
    v: &VolumeEntry,
    file: &Path,
    progress: Progress<'_>,
) -> Result<(), BackupError> {
    let label = |message: String| BackupError::Label {
        service: v.service.clone(),
        label: format!("snapshot paths of volume {}", v.volume),
        message,
    };
    // The paths come from the stored metadata: check them as the labels were checked.
    let paths = if v.paths.is_empty() {
        Vec::new()
    } else {
        let p = parse_paths(&v.paths.join(",")).map_err(label)?;
        if p != v.paths {
            return Err(label(format!("{:?} is not in normal form", v.paths)));
        }
        p
    };
    let what = if paths.is_empty() {
        "emptying the volume".to_string()
    } else {
        format!("removing {}", paths.join(", "))
    };
    progress(&format!(
        "{}: restoring volume {} ({what}, then {} bytes)",
        v.service, v.volume, v.bytes
    ));
    require_volume(client, &v.docker_volume).await?;
    let mut cmd = vec![CLEAR_SCRIPT.to_string(), "sh".into(), MOUNT.into()];
    cmd.extend(paths);
    with_helper(
        client,
        opts,
        stack,
        image,
        &v.docker_volume,
        cmd,
        |id| async move {
            client.start_container(&id).await?;
            let code = client.wait_container(&id).await?;
            if code != 0 {
                let log = client
                    .container_log_tail(&id, 20)
                    .await
                    .unwrap_or_default()
                    .join("\n");
                return Err(BackupError::Helper {
                    volume: v.docker_volume.clone(),
                    message: format!("emptying the volume exited {code}: {log}"),
                });
            }
            let copied = every_step(progress, &v.service, &v.volume, "restored");
            client.upload_archive(&id, MOUNT, file, &copied).await?;
            Ok(())
        },
    )
    .await
}

/// Bytes between two progress lines of one copy.
pub const PROGRESS_STEP: u64 = 64 * 1024 * 1024;

/// A byte counter that reports a line each time another [`PROGRESS_STEP`] has been copied.
fn every_step<'a>(
    progress: Progress<'a>,
    service: &'a str,
    volume: &'a str,
    verb: &'a str,
) -> impl Fn(u64) + Sync + 'a {
    let reported = std::sync::atomic::AtomicU64::new(0);
    move |n: u64| {
        let step = n / PROGRESS_STEP;
        if step > reported.load(std::sync::atomic::Ordering::Relaxed) {
            reported.store(step, std::sync::atomic::Ordering::Relaxed);
            progress(&format!(
                "{service}: volume {volume}: {} MiB {verb}",
                n / (1024 * 1024)
            ));
        }
    }
}

/// A labelled path the volume does not hold is named as such (Docker's 404 names the helper's path).
fn missing_path(e: crate::swarm::SwarmError, rel: &str, v: &super::VolumePlan) -> BackupError {
    if e.is_not_found() && !rel.is_empty() {
        BackupError::NotFound(format!(
            "path {rel} in volume {} (label backupbot.backup.volumes.{}.path)",
            v.docker_volume, v.volume
        ))
    } else {
        e.into()
    }
}

/// The stored tar's name of a volume: `<service>.<volume>.tar`, other characters as `_`.
pub fn file_name(service: &str, volume: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}.{}.tar", clean(service), clean(volume))
}

/// Runs blocking file work (tar, checksums) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackupError::Io {
            path: PathBuf::new(),
            source: std::io::Error::other(e.to_string()),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_progress_reports_once_per_step() {
        let lines = std::sync::Mutex::new(Vec::new());
        let progress = |l: &str| lines.lock().unwrap().push(l.to_string());
        let copied = every_step(&progress, "db", "pg", "copied");
        for n in [
            1,
            PROGRESS_STEP - 1,
            PROGRESS_STEP,
            PROGRESS_STEP + 5,
            3 * PROGRESS_STEP + 1,
        ] {
            copied(n);
        }
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "db: volume pg: 64 MiB copied",
                "db: volume pg: 192 MiB copied"
            ]
        );
    }

    #[test]
    fn file_names_are_store_safe() {
        assert_eq!(file_name("db", "postgres"), "db.postgres.tar");
        assert_eq!(file_name("a.b", "x/y z"), "a_b.x_y_z.tar");
    }
}

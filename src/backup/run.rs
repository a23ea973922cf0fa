//! The executor: takes a snapshot of a live stack's labelled volumes (hooks in the service's running
//! container, data copied through short-lived helper containers) and restores one. Helper
//! containers mount one volume each at [`MOUNT`], never start for a take (the archive API reads a
//! created container's volumes) and run one `sh -c` to empty the volume (or the snapshot's paths)
//! before a restore; they are removed on every path, and leftovers of a killed run are swept first.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, MountVolumeOptions, TaskState,
};

use super::labels::{
    LABEL_BACKUP_POST, LABEL_BACKUP_PRE, LABEL_RESTORE_POST, LABEL_RESTORE_PRE, LiveService,
    ServicePlan, parse_paths, plan_service, plan_stack,
};
use super::store::{SnapshotMeta, Store, VolumeEntry, new_id, sha256_file};
use super::{BackupError, Options, archive};
use crate::swarm::{Client, label_filter};

/// Where a helper container mounts the volume it copies.
pub const MOUNT: &str = "/hearth-volume";
/// The label that marks helper containers (value [`ROLE_HELPER`]).
pub const LABEL_ROLE: &str = "hearth.role";
pub const ROLE_HELPER: &str = "backup-helper";
/// The stack a helper works for (leftovers are swept per stack).
pub const LABEL_HELPER_STACK: &str = "hearth.backup.stack";

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
    let live = live_services(client, stack).await?;
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
    Ok(services.iter().map(LiveService::from_service).collect())
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
    let parts: Vec<(PathBuf, String)> = rels
        .iter()
        .enumerate()
        .map(|(i, rel)| (tmp.join(format!(".{file}.part{i}")), rel.clone()))
        .collect();
    with_helper(
        client,
        opts,
        stack,
        &image,
        &v.docker_volume,
        vec!["exit 0".into()],
        |id| {
            let parts = &parts;
            async move {
                for (part, rel) in parts {
                    let src = if rel.is_empty() {
                        MOUNT.to_string()
                    } else {
                        format!("{MOUNT}/{rel}")
                    };
                    client.download_archive(&id, &src, part).await?;
                }
                Ok(())
            }
        },
    )
    .await?;
    let entries = blocking({
        let (parts, dest) = (parts.clone(), dest.clone());
        move || {
            let n = archive::build_volume_tar(&parts, &dest);
            for (p, _) in &parts {
                let _ = std::fs::remove_file(p);
            }
            n
        }
    })
    .await?;
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
            client.upload_archive(&id, MOUNT, file).await?;
            Ok(())
        },
    )
    .await
}

/// Run as `sh -c CLEAR_SCRIPT sh <mount> [<rel>...]`: removes the given paths of the volume, or
/// everything in it (dot-files included) when none are given.
const CLEAR_SCRIPT: &str = r#"set -e
cd "$1"
shift
if [ "$#" -eq 0 ]; then set -- * .[!.]* ..?*; fi
rm -rf -- "$@"
"#;

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

/// The labels of a helper container.
pub fn helper_labels(opts: &Options, stack: &str, volume: &str) -> HashMap<String, String> {
    let mut l: HashMap<String, String> = opts.labels.clone().into_iter().collect();
    l.insert("hearth.managed-by".into(), "hearth".into());
    l.insert(LABEL_ROLE.into(), ROLE_HELPER.into());
    l.insert(LABEL_HELPER_STACK.into(), stack.into());
    l.insert("hearth.backup.volume".into(), volume.into());
    l
}

/// Creates a helper container mounting `volume` at [`MOUNT`] (running `sh -c cmd...` if started),
/// runs `body` with its id, and removes it whatever happened.
async fn with_helper<F, Fut>(
    client: &Client,
    opts: &Options,
    stack: &str,
    image: &str,
    volume: &str,
    cmd: Vec<String>,
    body: F,
) -> Result<(), BackupError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), BackupError>>,
{
    let mut rand = [0u8; 4];
    let _ = getrandom::fill(&mut rand);
    let name = format!("hearth-backup-{}", hex::encode(rand));
    let spec = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        cmd: Some(cmd),
        user: Some("0:0".into()),
        labels: Some(helper_labels(opts, stack, volume)),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            mounts: Some(vec![Mount {
                target: Some(MOUNT.into()),
                source: Some(volume.into()),
                typ: Some(MountType::VOLUME),
                volume_options: Some(MountVolumeOptions {
                    no_copy: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = client.create_container(&name, spec).await?;
    let res = body(id.clone()).await;
    let removed = client.remove_container(&id).await;
    res?;
    removed?;
    Ok(())
}

/// Removes helper containers of `stack` left by a run that was killed or cancelled.
async fn sweep_helpers(client: &Client, stack: &str) {
    let filter = label_filter(&[
        &format!("{LABEL_ROLE}={ROLE_HELPER}"),
        &format!("{LABEL_HELPER_STACK}={stack}"),
    ]);
    for c in client
        .list_containers(Some(filter))
        .await
        .unwrap_or_default()
    {
        if let Some(id) = c.id {
            let _ = client.remove_container(&id).await;
        }
    }
}

/// The volume exists on this node (a helper would otherwise create an empty, unlabelled one).
async fn require_volume(client: &Client, name: &str) -> Result<(), BackupError> {
    let filter = HashMap::from([("name".to_string(), vec![name.to_string()])]);
    let found = client.list_volumes(Some(filter)).await?;
    if found.iter().any(|v| v.name == name) {
        Ok(())
    } else {
        Err(BackupError::NotFound(format!("volume {name} on this node")))
    }
}

/// Runs a hook (`sh -c cmd`) in the service's running container on this node, bounded by
/// `opts.hook_timeout`; anything but exit 0 is a [`BackupError::Hook`].
async fn run_hook(
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
        let tasks = client.list_tasks(Some(filter.clone())).await?;
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

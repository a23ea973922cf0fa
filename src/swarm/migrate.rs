//! The executor of a stack move: reads the move record (`migrate::record`) from a fresh snapshot,
//! asks the pure machine (`migrate::machine`) for the next action, runs it through Docker and
//! writes the record after it. Killed anywhere, the next run resumes from the record alone.
//! `docs/migrate.md` describes the move.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use indexmap::IndexMap;

use super::Client;
use super::apply::{Ids, apply_plan};
use super::quiesce::{self, Which};
use crate::advance::LABEL_KIND;
use crate::assess::{Convergence, service_progress};
use crate::backup::{self, BackupError, Store};
use crate::desired::Desired;
use crate::manifest::{Probe, SecretSource};
use crate::migrate::machine::{self, Action, Observed, Record};
use crate::migrate::{Owners, record};
use crate::observed::Snapshot;
use crate::plan::{Action as Step, Intent, Plan, SnapIndex, plan_indexed};
use crate::render::{LABEL_DEPLOYMENT, LABEL_MANAGED_BY, LABEL_NAMESPACE, LABEL_POOL};

/// One deployment's move, with everything the executor needs.
#[derive(Clone)]
pub struct Job {
    pub pool: String,
    pub deployment: String,
    /// The pool's labels (`hearth.pool` and `spec.labels`), put on the records.
    pub extra: BTreeMap<String, String>,
    /// The deployment rendered at its new stack.
    pub desired: Arc<Desired>,
    pub secrets: IndexMap<String, SecretSource>,
    pub probes: Vec<Probe>,
    pub reach: crate::probe::ReachPolicy,
    pub store: Store,
    pub backup: backup::Options,
    /// How long the new stack may take to converge with passing probes after the restore.
    pub deadline: Duration,
    /// The writer's name on the records it writes (`hearth.advance.author`).
    pub author: String,
}

type Progress<'a> = &'a (dyn Fn(&str) + Sync);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs (or resumes) the move of `job.deployment` to `job.desired.stack` until it is done or
/// failed. `start`: begin a move when none is recorded (`hearth migrate`, `allowMigration`);
/// without it only a recorded move is resumed. Returns the final record (`None`: nothing to move).
pub async fn run(
    client: &Client,
    job: &Job,
    start: bool,
    progress: Progress<'_>,
) -> Result<Option<Record>, String> {
    let to = job.desired.stack.clone();
    loop {
        let snap = client.snapshot().await.map_err(|e| e.to_string())?;
        let found = record::find_record(&snap.configs, &job.pool, &job.deployment);
        let resumable = found
            .as_ref()
            .is_some_and(|(_, r)| r.state.in_progress() && r.to == to);
        let finished = found
            .as_ref()
            .filter(|(_, r)| r.state == machine::State::Done && r.to == to)
            .map(|(_, r)| r.clone());
        let rec = if resumable {
            found.as_ref().map(|(_, r)| r.clone()).expect("found")
        } else if let Some(r) = finished {
            // A finished move whose old objects are still listed (Docker lags behind a removal,
            // or one failed): remove them again, never a new move from an emptied stack.
            let owners = Owners::new(&snap);
            let left = owners
                .stacks_of(&job.pool, &job.deployment)
                .contains(r.from.as_str());
            if !left || !start {
                return Ok(Some(r));
            }
            let again = Record {
                state: machine::State::Verified,
                ..r
            };
            persist(client, &snap, job, &again).await?;
            continue;
        } else {
            if !start {
                return Ok(found.map(|(_, r)| r));
            }
            let owners = Owners::new(&snap);
            let from = owners
                .stacks_of(&job.pool, &job.deployment)
                .into_iter()
                .find(|s| *s != to);
            let Some(from) = from else {
                progress(&format!(
                    "{}: nothing to move (no object outside stack {to})",
                    job.deployment
                ));
                return Ok(found.map(|(_, r)| r));
            };
            let r = machine::request(from, &to, now());
            persist(client, &snap, job, &r).await?;
            progress(&format!(
                "{}: moving from stack {from} to stack {to}",
                job.deployment
            ));
            continue;
        };
        let verified = if rec.state == machine::State::Restored {
            verify(client, &snap, job).await
        } else {
            Err(String::new())
        };
        let obs = Observed {
            now: now(),
            verified: verified.is_ok(),
            deadline: job.deadline.as_secs(),
        };
        let (next, action) = machine::next(&rec, &obs);
        if next != rec {
            persist(client, &snap, job, &next).await?;
        }
        match action {
            Action::Nothing => {
                if let Some(e) = &next.error {
                    progress(&format!("{}: move failed: {e}", job.deployment));
                }
                if next.state == machine::State::Failed {
                    restart_old(client, job, &next.from, progress).await;
                }
                return Ok(Some(next));
            }
            Action::Wait => {
                if let Err(why) = verified
                    && !why.is_empty()
                {
                    progress(&format!("{}: verifying {to}: {why}", job.deployment));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            _ => {}
        }
        progress(&format!(
            "{}: {} ({})",
            job.deployment,
            describe(&action),
            next.state
        ));
        let result = execute(client, &snap, job, &next, &action, progress).await;
        let after = match result {
            Ok(snapshot) => machine::done(&next, &action, snapshot, now()),
            Err(e) => {
                restart_old(client, job, &next.from, progress).await;
                machine::failed(&next, &action, &e, now())
            }
        };
        let snap = client.snapshot().await.map_err(|e| e.to_string())?;
        persist(client, &snap, job, &after).await?;
    }
}

/// A failed move: the old stack serves again (what [`quiesce::stop`] stopped starts).
async fn restart_old(client: &Client, job: &Job, from: &str, progress: Progress<'_>) {
    if let Err(e) = quiesce::start(client, &job.pool, &job.deployment, from, progress).await {
        progress(&format!("{}: {e}", job.deployment));
    }
}

fn describe(a: &Action) -> &'static str {
    match a {
        Action::TakeSnapshot => "taking a snapshot of every named volume of the old stack",
        Action::CreateStack => "creating the new stack (volumes first, nothing removed)",
        Action::Restore { .. } => "restoring the snapshot into the new stack's volumes",
        Action::RemoveOld => "removing the old stack's services, networks, secrets and configs",
        Action::Wait | Action::Nothing => "waiting",
    }
}

/// Creates or replaces the move record (a compare-and-swap on the config's version).
async fn persist(client: &Client, snap: &Snapshot, job: &Job, r: &Record) -> Result<(), String> {
    let spec = record::record_spec(&job.pool, &job.deployment, &job.extra, r);
    let name = record::record_name(&job.pool, &job.deployment);
    let existing = snap
        .configs
        .iter()
        .find(|c| c.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name.as_str()));
    match existing {
        Some(c) => {
            let version = c.version.as_ref().and_then(|v| v.index).unwrap_or(0);
            let mut spec = spec;
            // Swarm wants the data unchanged.
            spec.data = c.spec.as_ref().and_then(|s| s.data.clone());
            client
                .update_config(c.id.as_deref().unwrap_or_default(), version, spec)
                .await
        }
        None => client.create_config(spec).await.map(|_| ()),
    }
    .map_err(|e| format!("writing the move record {name}: {e}"))
}

async fn execute(
    client: &Client,
    snap: &Snapshot,
    job: &Job,
    r: &Record,
    action: &Action,
    progress: Progress<'_>,
) -> Result<Option<String>, String> {
    match action {
        Action::TakeSnapshot => {
            // The new stack's generated secrets first: they take the old values, read from the
            // old stack's containers while those still run.
            create_stack(client, snap, job, Part::Secrets, progress).await?;
            let (pool, dep) = (&job.pool, &job.deployment);
            quiesce::stop(
                client,
                pool,
                dep,
                &r.from,
                Which::WithoutBackupHooks,
                progress,
            )
            .await?;
            let version = job.desired.version.clone();
            let taken = backup::take_with(
                client,
                &job.store,
                &job.backup,
                &job.deployment,
                &r.from,
                &version,
                true,
                progress,
            )
            .await;
            let id = match taken {
                Ok(meta) => Some(meta.id),
                Err(BackupError::NothingToBackUp { .. }) => None,
                Err(e) => return Err(e.to_string()),
            };
            // Services whose snapshot ran a hook in them stop right after it.
            quiesce::stop(client, pool, dep, &r.from, Which::All, progress).await?;
            Ok(id)
        }
        // Without a snapshot there is no restore to wait for: the new stack starts at once.
        Action::CreateStack => {
            let part = if r.snapshot.is_some() {
                Part::Stopped
            } else {
                Part::Started
            };
            create_stack(client, snap, job, part, progress)
                .await
                .map(|_| None)
        }
        Action::Restore { snapshot } => {
            if let Some(secs) = std::env::var("HEARTH_TEST_PAUSE_BEFORE_RESTORE")
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
            {
                progress(&format!("pausing {secs}s before the restore (test hook)"));
                tokio::time::sleep(Duration::from_secs(secs)).await;
            }
            let meta = job
                .store
                .get(&job.deployment, snapshot)
                .map_err(|e| e.to_string())?;
            let rebased = rebase(&meta, &r.to, &job.desired);
            backup::restore(client, &job.store, &job.backup, &rebased, progress)
                .await
                .map_err(|e| e.to_string())?;
            // The data is in place: now the services that were created stopped may start.
            let snap = client.snapshot().await.map_err(|e| e.to_string())?;
            create_stack(client, &snap, job, Part::Started, progress).await?;
            Ok(None)
        }
        Action::RemoveOld => remove_old(client, snap, job, r, progress)
            .await
            .map(|_| None),
        Action::Wait | Action::Nothing => Ok(None),
    }
}

/// The snapshot's volumes renamed into stack `to` (the compose volume keeps its key).
fn rebase(meta: &backup::SnapshotMeta, to: &str, desired: &Desired) -> backup::SnapshotMeta {
    let mut m = meta.clone();
    m.stack = to.to_string();
    for v in &mut m.volumes {
        v.docker_volume = desired
            .stack_spec
            .volumes
            .iter()
            .find(|p| p.key == v.volume)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| format!("{to}_{}", v.volume));
    }
    m
}

/// The new stack's plan without its removals, applied. Generated secrets take the old stack's
/// values (read from a running task of the old stack), so restored data and new credentials agree.
///
/// On a swarm of several nodes the restore writes the data on the node hearth talks to (where the
/// snapshot was taken, next to the old volumes), so every stateful service of the new stack is
/// pinned to that node. [`Part::Stopped`] creates the services without restore hooks with no
/// replica: nothing runs on an empty volume before the restore fills it, and never two copies
/// (services with restore hooks need a running container for them). Found by scripts/chaos: the
/// new canonical started on another node, on an empty volume, while its data was restored
/// elsewhere.
async fn create_stack(
    client: &Client,
    snap: &Snapshot,
    job: &Job,
    part: Part,
    progress: Progress<'_>,
) -> Result<(), String> {
    let stopped = part == Part::Stopped;
    let mut spec = job.desired.stack_spec.clone();
    if part != Part::Secrets && snap.nodes.len() > 1 {
        let info = client.info().await.map_err(|e| e.to_string())?;
        let node = info.swarm.and_then(|s| s.node_id).unwrap_or_default();
        if node.is_empty() {
            return Err("cannot tell which node this is (docker info has no swarm node ID)".into());
        }
        spec = crate::plan::pin_to_node(&spec, &node);
        if stopped {
            progress(&format!(
                "stateful services pinned to this node ({node}), where the data is restored"
            ));
        }
    }
    if stopped {
        spec = stopped_until_restored(&spec);
    }
    let ix = SnapIndex::new(snap);
    let mut plan: Plan = plan_indexed(
        &Intent {
            pool: &job.pool,
            deployment: &job.deployment,
            stack: &job.desired.stack,
            desired: Some(&spec),
            secrets: &job.secrets,
            secret_files: &job.desired.secret_files,
            secret_hints: &job.desired.secret_hints,
            adopt: false,
            restart: false,
        },
        &ix,
    );
    if !plan.problems.is_empty() {
        return Err(plan.problems.join("; "));
    }
    plan.steps.retain(|s| {
        !matches!(
            s.action,
            Step::RemoveService { .. }
                | Step::RemoveConfig { .. }
                | Step::RemoveNetwork { .. }
                | Step::RemoveSecret { .. }
        ) && (part != Part::Secrets || matches!(s.action, Step::CreateSecret { .. }))
    });
    carry_secrets(client, snap, job, &mut plan, progress).await;
    let mut ids = Ids::from_snapshot(snap);
    let step = |e: super::apply::StepEvent<'_>| {
        if let super::apply::StepEvent::Done(s) = e {
            progress(&format!("{} {}", s.action.kind(), s.action.object()));
        }
    };
    apply_plan(client, &plan, &mut ids, &step)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What [`create_stack`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Only the generated secrets (before the old stack stops).
    Secrets,
    /// Everything, services without restore hooks at no replica.
    Stopped,
    /// Everything as desired (after the restore).
    Started,
}

/// `stack` with its services that have no restore hook at zero replicas: one copy of the
/// deployment runs at a time, and none on a volume the restore has not filled yet.
fn stopped_until_restored(stack: &crate::render::StackSpec) -> crate::render::StackSpec {
    use crate::backup::labels::{LABEL_RESTORE_POST, LABEL_RESTORE_PRE};
    let mut out = stack.clone();
    for s in out.services.iter_mut() {
        let mut spec = s.spec();
        let hooks = spec.labels.as_ref().is_some_and(|l| {
            l.contains_key(LABEL_RESTORE_PRE) || l.contains_key(LABEL_RESTORE_POST)
        });
        let replicated = spec.mode.as_mut().and_then(|m| m.replicated.as_mut());
        if let (false, Some(r)) = (hooks, replicated) {
            r.replicas = Some(0);
            s.set_spec(spec);
        }
    }
    out
}

/// For each generated secret the new stack creates: the old stack's value, read with `cat` from
/// a running container of an old service that mounts it (best effort; a value that cannot be
/// read is generated afresh and said so).
async fn carry_secrets(
    client: &Client,
    snap: &Snapshot,
    job: &Job,
    plan: &mut Plan,
    progress: Progress<'_>,
) {
    let owners = Owners::new(snap);
    let Some(from) = owners
        .stacks_of(&job.pool, &job.deployment)
        .into_iter()
        .find(|s| *s != job.desired.stack)
    else {
        return;
    };
    let view = snap.stack(from);
    for step in &mut plan.steps {
        let Step::CreateSecret {
            name, source, key, ..
        } = &mut step.action
        else {
            continue;
        };
        if !matches!(source, crate::plan::SecretValue::Generate { .. }) {
            continue;
        }
        let Some(suffix) = name.strip_prefix(&format!("{}_", job.desired.stack)) else {
            continue;
        };
        let old = format!("{from}_{suffix}");
        let mut value = None;
        'svc: for s in &view.services {
            let raw = s.id.as_deref().and_then(|id| snap.raw_spec(id));
            let refs: Vec<(String, Option<String>)> = raw
                .as_ref()
                .and_then(|r| r.pointer("/TaskTemplate/ContainerSpec/Secrets"))
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    Some((
                        r["SecretName"].as_str()?.to_string(),
                        r.pointer("/File/Name")
                            .and_then(|n| n.as_str())
                            .map(str::to_string),
                    ))
                })
                .collect();
            for (secret_name, file) in refs {
                if secret_name != old {
                    continue;
                }
                let target = file.unwrap_or_else(|| old.clone());
                let path = if target.starts_with('/') {
                    target
                } else {
                    format!("/run/secrets/{target}")
                };
                let running = view.tasks.iter().find(|t| {
                    t.service_id == s.id
                        && t.status.as_ref().and_then(|st| st.state)
                            == Some(bollard::models::TaskState::RUNNING)
                });
                let Some(cid) = running
                    .and_then(|t| crate::assess::tasks::container_id(t))
                    .map(str::to_string)
                else {
                    continue;
                };
                if let Ok(out) = client.exec(&cid, &["cat".into(), path]).await
                    && out.exit_code == Some(0)
                {
                    value = Some(out.output.into_bytes());
                    break 'svc;
                }
            }
        }
        match value {
            Some(v) => {
                progress(&format!(
                    "secret {name}: the value of {old} (compose key {key})"
                ));
                *source = crate::plan::SecretValue::Data(v);
            }
            None => progress(&format!(
                "secret {name}: the value of {old} could not be read from a running task; \
                 a new value is generated"
            )),
        }
    }
}

/// `Ok` when every service of the new stack converged and every probe passes; else why not.
async fn verify(client: &Client, snap: &Snapshot, job: &Job) -> Result<(), String> {
    let to = &job.desired.stack;
    let view = snap.stack(to);
    let mut waiting = Vec::new();
    for want in &job.desired.stack_spec.services {
        let Some(s) = view
            .services
            .iter()
            .find(|s| s.spec.as_ref().and_then(|sp| sp.name.as_deref()) == Some(&want.name))
        else {
            waiting.push(format!("{}: missing", want.name));
            continue;
        };
        let tasks: Vec<_> = view
            .tasks
            .iter()
            .copied()
            .filter(|t| t.service_id == s.id)
            .collect();
        let p = service_progress(s, &tasks);
        if p.state != Convergence::Converged {
            waiting.push(format!("{}: {:?}", p.service, p.state));
        }
    }
    if !waiting.is_empty() {
        return Err(waiting.join("; "));
    }
    if job.probes.is_empty() {
        return Ok(());
    }
    let reach = crate::probe::Reach::observe(client, job.reach.clone())
        .await
        .map_err(|e| format!("probes: {e}"))?;
    let subject = crate::probe::Subject {
        stack: to.clone(),
        domain: job.desired.domain.clone(),
    };
    let names = crate::probe::probe_names(&job.probes);
    for (name, p) in names.iter().zip(&job.probes) {
        let settings = crate::probe::Settings::from_timing(p.timing());
        let round = crate::probe::Round {
            snapshot: snap,
            reach: &reach,
        };
        if let Err(e) = crate::probe::check(client, round, &subject, p, &settings).await {
            return Err(format!("probe {name}: {e}"));
        }
    }
    Ok(())
}

/// The old stack's objects of the deployment (never hearth's records), the advance record moved
/// to the new stack, the old volumes recorded as migrated.
async fn remove_old(
    client: &Client,
    snap: &Snapshot,
    job: &Job,
    r: &Record,
    progress: Progress<'_>,
) -> Result<(), String> {
    let owners = Owners::new(snap);
    for v in owners.volumes_in(&job.pool, &job.deployment, &r.from) {
        let spec = record::volume_record_spec(&job.pool, &job.deployment, &job.extra, &v, &r.to);
        match client.create_config(spec).await {
            Ok(_) => progress(&format!(
                "volume {v} kept, recorded as migrated to {}",
                r.to
            )),
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(format!("volume record of {v}: {e}")),
        }
    }
    // The advance record (last-good version and all) moves with the deployment.
    if let Some(old) =
        crate::advance::labels::find(&snap.configs, &job.pool, &job.deployment, &r.from)
    {
        let exists = crate::advance::labels::find(&snap.configs, &job.pool, &job.deployment, &r.to);
        if exists.is_none() {
            let owner = crate::advance::labels::Owner {
                pool: &job.pool,
                deployment: &job.deployment,
                stack: &r.to,
                extra: &job.extra,
            };
            let spec = crate::advance::labels::new_spec(&owner, &old.record);
            match client
                .create_config(crate::advance::labels::authored(spec, &job.author))
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(format!("moving the advance record: {e}")),
            }
        }
        remove(client, "config", &old.id, || client.remove_config(&old.id)).await?;
    }
    let mine = |l: Option<&std::collections::HashMap<String, String>>| {
        l.is_some_and(|l| {
            l.get(LABEL_MANAGED_BY).map(String::as_str) == Some("hearth")
                && l.get(LABEL_POOL) == Some(&job.pool)
                && l.get(LABEL_DEPLOYMENT) == Some(&job.deployment)
                && l.get(LABEL_NAMESPACE) == Some(&r.from)
                && !l.contains_key(LABEL_KIND)
        })
    };
    let mut services = BTreeSet::new();
    for s in &snap.services {
        if mine(s.spec.as_ref().and_then(|sp| sp.labels.as_ref())) {
            let id = s.id.clone().unwrap_or_default();
            remove(client, "service", &id, || client.remove_service(&id)).await?;
            services.insert(id);
        }
    }
    if !services.is_empty() {
        progress(&format!("removed {} old service(s)", services.len()));
    }
    // Networks and secrets in use by a task that is still stopping refuse removal: retry.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let snap = client.snapshot().await.map_err(|e| e.to_string())?;
        let mut left = Vec::new();
        for n in &snap.networks {
            if mine(n.labels.as_ref()) {
                let id = n.id.clone().unwrap_or_default();
                if let Err(e) = remove(client, "network", &id, || client.remove_network(&id)).await
                {
                    left.push(e);
                }
            }
        }
        for s in &snap.secrets {
            if mine(s.spec.as_ref().and_then(|sp| sp.labels.as_ref())) {
                let id = s.id.clone().unwrap_or_default();
                if let Err(e) = remove(client, "secret", &id, || client.remove_secret(&id)).await {
                    left.push(e);
                }
            }
        }
        for c in &snap.configs {
            if mine(c.spec.as_ref().and_then(|sp| sp.labels.as_ref())) {
                let id = c.id.clone().unwrap_or_default();
                if let Err(e) = remove(client, "config", &id, || client.remove_config(&id)).await {
                    left.push(e);
                }
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(left.join("; "));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn remove<F, Fut>(_client: &Client, what: &str, id: &str, f: F) -> Result<(), String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), super::SwarmError>>,
{
    match f().await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(format!("removing {what} {id}: {e}")),
    }
}

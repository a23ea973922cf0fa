//! The executor of the advance machine ([`crate::advance`]) inside the controller. Two hooks in
//! `reconcile`: [`Advancer::prepare`] (before planning: read the persisted record from the pass's
//! snapshot and pick the version to converge, re-rendering the last-good version from the recipe
//! store when it is not the declared one) and [`Advancer::drive`] (after judging: one machine step,
//! the record written back with a compare-and-swap, the step's action started). Snapshots,
//! applies and restores run as spawned tasks off the pass loop; their results feed the next step.
//! A result is only forgotten once the record it led to is persisted, so a failed write or a
//! restart repeats the step (every state resumes from its record).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use tokio::task::JoinHandle;

use crate::advance::labels::Owner;
use crate::advance::{self, Action, Event, Observed, Policy, Record, Stored, Target};
use crate::assess::Standing;
use crate::backup::{self, BackupError};
use crate::desired::{self, Desired};
use crate::manifest::{Deployment, DesiredState, Loaded};
use crate::observed::Snapshot;
use crate::plan::Plan;
use crate::recipe::RecipeStore;
use crate::swarm::Client;
use crate::swarm::apply::{Ids, apply_plan};

use super::status::Shared;

/// Where snapshots go and how they are taken (`hearth run --snapshot-dir/--snapshot-keep/
/// --backup-image`).
#[derive(Debug, Clone)]
pub struct AdvanceConfig {
    pub snapshot_dir: PathBuf,
    pub snapshot_keep: usize,
    /// Helper container image; `None`: the service's own image.
    pub backup_image: Option<String>,
    /// The writer's name on advance records (`hearth.advance.author`): the lease identity.
    pub author: String,
}

impl Default for AdvanceConfig {
    fn default() -> Self {
        AdvanceConfig {
            snapshot_dir: PathBuf::from("/var/lib/hearth/snapshots"),
            snapshot_keep: 5,
            backup_image: None,
            author: crate::controller::lease::default_identity(),
        }
    }
}

/// What `prepare` found for one deployment.
pub(super) struct Prepared {
    stored: Option<Stored>,
    record: Record,
    pub target: Target,
    /// The rendered converge target when it is not the declared version.
    pub desired: Option<Desired>,
}

/// What `drive` decided.
#[derive(Default)]
pub(super) struct Driven {
    /// The status to report instead of the judge's.
    pub status: Option<Standing>,
    /// The machine started an apply (the progress clock restarts).
    pub applied: bool,
    /// Look at the deployment again soon (the record moved on).
    pub again: bool,
}

pub(super) struct Advancer {
    cfg: AdvanceConfig,
    store: backup::Store,
    /// In-flight steps, with the event that stands for a step whose task died (a panic).
    running: HashMap<String, (JoinHandle<Event>, Event)>,
    /// Finished steps whose resulting record is not persisted yet.
    finished: HashMap<String, Event>,
    /// The last progress line of each running step.
    progress: Arc<Mutex<HashMap<String, String>>>,
    /// Renders of other versions than the declared one, by deployment, with their key.
    renders: HashMap<String, (String, Desired)>,
}

/// Everything `drive` needs from the pass.
pub(super) struct Pass<'a> {
    pub client: &'a Client,
    pub shared: &'a Arc<Shared>,
    pub deployment: &'a Deployment,
    pub pool: &'a str,
    pub pool_labels: &'a std::collections::BTreeMap<String, String>,
    pub stack: &'a str,
    pub live: Option<String>,
    pub verdict: &'a Standing,
    pub plan: &'a Plan,
    pub ids: &'a Ids,
    pub now: SystemTime,
    pub deadline: Duration,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The deployment's advance policy.
pub fn policy(d: &Deployment) -> Policy {
    Policy {
        backup: d.spec.advance.backup,
        rollback: d.spec.advance.rollback,
        allow_major: d.spec.advance.allow_major,
        approved: d
            .metadata
            .annotations
            .get(advance::APPROVE_ANNOTATION)
            .cloned(),
    }
}

impl Advancer {
    pub fn new(cfg: AdvanceConfig) -> Advancer {
        let store = backup::Store::new(cfg.snapshot_dir.clone(), cfg.snapshot_keep);
        Advancer {
            cfg,
            store,
            running: HashMap::new(),
            finished: HashMap::new(),
            progress: Default::default(),
            renders: HashMap::new(),
        }
    }

    /// Collects a finished step of `name` into `finished`.
    fn harvest(&mut self, name: &str) {
        let done = self.running.get(name).is_some_and(|(h, _)| h.is_finished());
        if !done {
            return;
        }
        if let Some((h, died)) = self.running.remove(name) {
            let ev = h.now_or_never().and_then(|r| r.ok()).unwrap_or(died);
            self.finished.insert(name.to_string(), ev);
            self.progress.lock().expect("progress").remove(name);
        }
    }

    /// Before planning: the record and the version to converge. `None`: the advance machine
    /// does not apply (parked or suspended deployments).
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        &mut self,
        loaded: &Loaded,
        recipes: Option<RecipeStore>,
        d: &Deployment,
        declared: &Desired,
        pool: &str,
        snap: &Snapshot,
        live: Option<&str>,
    ) -> Option<Prepared> {
        if d.spec.suspend || d.spec.state == DesiredState::Parked {
            return None;
        }
        self.harvest(d.name());
        let stored = advance::labels::find(&snap.configs, pool, d.name(), &declared.stack);
        let record = stored
            .as_ref()
            .map(|s| s.record.clone())
            .unwrap_or_default();
        let target = advance::converge(&record, &d.spec.version, live);
        let desired = if target.version == d.spec.version {
            None
        } else {
            match self.render(loaded, recipes, d, &target.version) {
                Ok(x) => Some(x),
                Err(e) => {
                    tracing::warn!(deployment = %d.name(), "cannot render version {}: {e}; converging the declared version", target.version);
                    return Some(Prepared {
                        stored,
                        record,
                        target: Target {
                            version: d.spec.version.clone(),
                            normal_apply: target.normal_apply,
                        },
                        desired: None,
                    });
                }
            }
        };
        Some(Prepared {
            stored,
            record,
            target,
            desired,
        })
    }

    /// Renders `d` at `version` (cached while the manifests and the version stay the same).
    fn render(
        &mut self,
        loaded: &Loaded,
        recipes: Option<RecipeStore>,
        d: &Deployment,
        version: &str,
    ) -> Result<Desired, String> {
        let mut spec = d.spec.clone();
        spec.version = version.to_string();
        // The live domain too: a canonical named from the swarm renders where it lives.
        let key = format!(
            "{:?}|{:?}|{:?}",
            loaded.pool.as_ref().map(|p| &p.spec),
            spec,
            d.live_domain
        );
        if let Some((k, r)) = self.renders.get(d.name())
            && *k == key
        {
            return Ok(r.clone());
        }
        let store = recipes.ok_or("no recipe store")?;
        let mut overridden = loaded.clone();
        for x in &mut overridden.deployments {
            if x.name() == d.name() {
                x.spec.version = version.to_string();
            }
        }
        let pool = desired::build(&overridden, &store, Some(d.name()));
        match pool.get(d.name()) {
            Some(r) => {
                self.renders.insert(d.name().to_string(), (key, r.clone()));
                Ok(r.clone())
            }
            None => Err(pool
                .invalid
                .get(d.name())
                .map(|ps| {
                    ps.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_else(|| "did not render".into())),
        }
    }

    /// After judging: one step of the machine, persisted, and its action started.
    pub async fn drive(&mut self, p: Prepared, pass: Pass<'_>) -> Driven {
        let name = pass.deployment.name().to_string();
        let busy = self.running.contains_key(&name);
        let event = self.finished.get(&name).cloned().unwrap_or(Event::Observe);
        let obs = Observed {
            declared: pass.deployment.spec.version.clone(),
            live: pass.live.clone(),
            verdict: pass.verdict.clone(),
            plan_pending: !pass.plan.steps.is_empty(),
            busy,
            now: unix(pass.now),
            deadline: pass.deadline,
            policy: policy(pass.deployment),
        };
        let next = advance::step(&p.record, &obs, &event);
        let mut out = Driven::default();
        if next.record != p.record {
            let owner = Owner {
                pool: pass.pool,
                deployment: &name,
                stack: pass.stack,
                extra: pass.pool_labels,
            };
            if let Err(e) = crate::controller::advance_store::save(
                pass.client,
                &owner,
                p.stored.as_ref(),
                &next.record,
                &self.cfg.author,
            )
            .await
            {
                // Not persisted: nothing happens; the next pass reads the record again.
                tracing::warn!(deployment = %name, "advance record not written: {e}");
                out.status = advance::status(&p.record, &obs);
                out.again = true;
                return out;
            }
            tracing::info!(deployment = %name, "advance: {} -> {}", p.record.state, next.record.state);
            out.again = true;
        }
        self.finished.remove(&name);
        if let Some(o) = next.outcome {
            pass.shared.counters.advanced(&name, o.as_str());
        }
        match next.action {
            Action::Nothing | Action::Record => {}
            Action::TakeSnapshot => self.spawn_snapshot(&pass),
            Action::ApplyVersion(v) => {
                if v == p.target.version && !pass.plan.steps.is_empty() && !busy {
                    self.spawn_apply(&name, pass.client, pass.plan.clone(), pass.ids.clone());
                    out.applied = true;
                } else {
                    // Planned for another version: the next pass plans the right one.
                    out.again = true;
                }
            }
            Action::Restore(id) => {
                if !busy {
                    self.spawn_restore(&pass, &id);
                }
            }
        }
        out.status = advance::status(&next.record, &obs).map(|mut s| {
            if let Some(line) = self.progress.lock().expect("progress").get(&name) {
                s.message = format!("{} ({line})", s.message);
            }
            s
        });
        out
    }

    fn options(&self, pool_labels: &std::collections::BTreeMap<String, String>) -> backup::Options {
        backup::Options {
            helper_image: self.cfg.backup_image.clone(),
            labels: pool_labels.clone(),
            ..Default::default()
        }
    }

    fn reporter(&self, name: &str) -> impl Fn(&str) + Sync + Send + 'static {
        let progress = self.progress.clone();
        let name = name.to_string();
        move |line: &str| {
            tracing::info!(deployment = %name, "{line}");
            progress
                .lock()
                .expect("progress")
                .insert(name.clone(), line.to_string());
        }
    }

    fn spawn_snapshot(&mut self, pass: &Pass<'_>) {
        let name = pass.deployment.name().to_string();
        let (client, store) = (pass.client.clone(), self.store.clone());
        let opts = self.options(pass.pool_labels);
        let (stack, version) = (
            pass.stack.to_string(),
            pass.live.clone().unwrap_or_default(),
        );
        let report = self.reporter(&name);
        let n = name.clone();
        let h = tokio::spawn(async move {
            let r = backup::take(&client, &store, &opts, &n, &stack, &version, &report).await;
            Event::Snapshot(match r {
                Ok(meta) => Ok(Some(meta.id)),
                Err(BackupError::NothingToBackUp { .. }) => Ok(None),
                Err(e) => Err(e.to_string()),
            })
        });
        let died = Event::Snapshot(Err("the snapshot task died".into()));
        self.running.insert(name, (h, died));
    }

    fn spawn_apply(&mut self, name: &str, client: &Client, plan: Plan, mut ids: Ids) {
        let client = client.clone();
        let report = self.reporter(name);
        let h = tokio::spawn(async move {
            let progress = |e: crate::swarm::apply::StepEvent<'_>| {
                if let crate::swarm::apply::StepEvent::Done(s) = e {
                    report(&format!("{} {}", s.action.kind(), s.action.object()));
                }
            };
            Event::Applied(
                apply_plan(&client, &plan, &mut ids, &progress)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            )
        });
        let died = Event::Applied(Err("the apply task died".into()));
        self.running.insert(name.to_string(), (h, died));
    }

    fn spawn_restore(&mut self, pass: &Pass<'_>, id: &str) {
        let name = pass.deployment.name().to_string();
        let (client, store) = (pass.client.clone(), self.store.clone());
        let opts = self.options(pass.pool_labels);
        let report = self.reporter(&name);
        let (n, id) = (name.clone(), id.to_string());
        let h = tokio::spawn(async move {
            let r = async {
                let meta = store.get(&n, &id)?;
                backup::restore(&client, &store, &opts, &meta, &report).await
            };
            Event::Restored(r.await.map_err(|e: BackupError| e.to_string()))
        });
        let died = Event::Restored(Err("the restore task died".into()));
        self.running.insert(name, (h, died));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_reads_advance_and_the_approval_annotation() {
        let text = "apiVersion: hearth/v1\nkind: Pool\nmetadata: {name: p}\nspec: {domain: x.test}\n\
                    ---\napiVersion: hearth/v1\nkind: Deployment\nmetadata:\n  name: mm\n  \
                    annotations: {hearth.approve-version: \"9.0.0+10.0.0\"}\nspec:\n  \
                    recipe: mattermost\n  version: 9.0.0+10.0.0\n  \
                    advance: {backup: false, rollback: true}\n";
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("m.yml"), text).expect("write");
        let loaded = crate::manifest::load_paths(&[dir.path().to_path_buf()]);
        let d = loaded.deployment("mm").expect("loaded");
        let p = policy(d);
        assert_eq!(
            p,
            Policy {
                backup: false,
                rollback: true,
                allow_major: false,
                approved: Some("9.0.0+10.0.0".into()),
            }
        );
    }
}

//! The shell half of a reconcile: gathers one deployment's [`Facts`], runs the pure stages of
//! [`decide`](super::decide) with the two I/O steps between them (log tails of crashed
//! containers, the advance machine's step), then commits the [`Outcome`] exactly once: publish
//! the status, move the progress clock, start the apply or move, tell the queue. Also the
//! publishing of statuses and the applies' start and end (docs/architecture.md §3).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tracing::Instrument;

use crate::assess::Phase;
use crate::desired;
use crate::observed::StackView;
use crate::plan::Plan;
use crate::swarm::apply::{Ids, StepEvent, apply_plan};

use super::decide::{self, Advanced, Clock, Facts, Outcome, Requeue, Work};
use super::{Applied, Controller, advancer, status::DeploymentStatus};

impl Controller {
    /// Plans, decides, assesses one deployment; spawns its apply when there is work.
    /// `view` is the deployment's stack in the pass's snapshot (empty when it has nothing live).
    pub(super) async fn reconcile(
        &mut self,
        name: &str,
        pass: &decide::Pass<'_>,
        view: StackView<'_>,
    ) {
        let facts = self.facts(name, pass, view);
        let outcome = self.outcome(&facts).await;
        self.commit(name, outcome, pass.ids);
    }

    /// One deployment's facts, read from the manifests, the renders and what is published.
    fn facts<'a>(
        &mut self,
        name: &'a str,
        pass: &'a decide::Pass<'a>,
        view: StackView<'a>,
    ) -> Facts<'a> {
        let deployment = self.loaded.deployment(name).cloned();
        let declared = self.desired.shared(name).cloned();
        let claims = declared.as_ref().map(|d| self.claims.get(d));
        let dependencies = deployment
            .iter()
            .flat_map(|d| d.spec.depends_on.iter())
            .map(|dep| {
                let phase = self.shared.phase(dep).unwrap_or_default();
                (dep.clone(), phase)
            })
            .collect();
        let probe_outcomes = self
            .probe_outcomes
            .read()
            .expect("outcomes")
            .get(name)
            .cloned()
            .unwrap_or_default();
        Facts {
            name,
            now: SystemTime::now(),
            pass,
            view,
            previous: self.shared.status(name).unwrap_or_default(),
            pool: self.loaded.pool.as_ref().map(|p| decide::PoolFacts {
                name: p.metadata.name.clone(),
                prune: p.spec.defaults.prune,
                self_heal: p.spec.defaults.self_heal,
                progress_deadline: p.spec.defaults.progress_deadline,
            }),
            orphan: self.orphans.contains(name),
            invalid: self.desired.invalid.get(name).map(|problems| {
                problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            deployment,
            declared,
            claims,
            dependencies,
            probe_outcomes,
            progressing_since: self.progressing_since.get(name).copied(),
            applies_running: self.applies.len(),
            concurrency: self.concurrency(),
        }
    }

    /// The pure stages, with the log tails and the advance machine's step between them.
    async fn outcome(&mut self, f: &Facts<'_>) -> Outcome {
        let t = match decide::triage(f) {
            Ok(t) => t,
            Err(exit) => return *exit,
        };
        let d = f
            .deployment
            .as_ref()
            .expect("triaged deployments are known");
        // A version advance in progress (or held, or failed) may converge another version.
        let prepared = self.advancer.prepare(
            &self.loaded,
            self.store(),
            d,
            &t.desired,
            &t.pool,
            f.pass.snap,
            t.st.live_version.as_deref(),
        );
        let converge = prepared.as_ref().and_then(|p| p.desired.clone());
        let mut a = decide::assess(f, t, converge, &self.logs);
        let missing = a.missing_logs(&self.logs);
        if !missing.is_empty() {
            for id in missing {
                let lines = self
                    .client
                    .container_log_tail(&id, 10)
                    .await
                    .unwrap_or_default();
                self.logs.insert(id, lines);
            }
            decide::rejudge(f, &mut a, &self.logs);
        }
        if self.logs.len() > 1000 {
            self.logs.clear();
        }
        let advanced = match prepared {
            Some(p) => Some(self.drive(f, &a, p).await),
            None => None,
        };
        decide::decide(f, a, advanced)
    }

    /// One step of the advance machine (it persists its record and may start its own work).
    async fn drive(
        &mut self,
        f: &Facts<'_>,
        a: &decide::Assessed,
        prepared: advancer::Prepared,
    ) -> Advanced {
        let d = f
            .deployment
            .as_ref()
            .expect("triaged deployments are known");
        let normal_apply = prepared.target.normal_apply;
        let pool_labels = self
            .loaded
            .pool
            .as_ref()
            .map(desired::pool_labels)
            .unwrap_or_default();
        let driven = self
            .advancer
            .drive(
                prepared,
                advancer::Pass {
                    client: &self.client,
                    shared: &self.shared,
                    deployment: d,
                    pool: &a.pool,
                    pool_labels: &pool_labels,
                    stack: &a.desired.stack,
                    live: a.st.live_version.clone(),
                    verdict: &a.verdict.standing,
                    plan: &a.plan,
                    ids: f.pass.ids,
                    now: f.now,
                    deadline: a.deadline,
                },
            )
            .await;
        Advanced {
            normal_apply,
            driven,
        }
    }

    /// Carries out a decision: the progress clock, the status, the work, the queue.
    fn commit(&mut self, name: &str, outcome: Outcome, ids: &Ids) {
        match outcome.clock {
            Clock::Keep => {}
            Clock::Restart(at) => {
                self.progressing_since.insert(name.to_string(), at);
            }
            Clock::Stop => {
                self.progressing_since.remove(name);
            }
        }
        if let Some(st) = outcome.status {
            if outcome.verdict {
                tracing::debug!(deployment = %name, phase = %st.phase, reason = %st.reason, "{}", st.message);
            }
            self.publish(st);
        }
        if outcome.verdict {
            self.shared.counters.reconciled(name, true);
        }
        match outcome.work {
            Work::Nothing => {}
            Work::Apply(plan) => self.spawn_apply(*plan, ids.clone()),
            Work::Migrate {
                start,
                deployment,
                desired,
            } => self.spawn_migrate(start, &deployment, desired),
        }
        match outcome.requeue {
            Requeue::Running => {}
            Requeue::Done => {
                self.queue.done(name, true, Instant::now());
            }
            Requeue::DoneAndMark => {
                self.queue.done(name, true, Instant::now());
                self.queue.mark(name);
            }
        }
    }

    /// Runs (`start`) or resumes a stack move in an apply slot.
    fn spawn_migrate(
        &mut self,
        start: bool,
        d: &crate::manifest::Deployment,
        desired: Arc<desired::Desired>,
    ) {
        let Some(pool) = self.loaded.pool.as_ref() else {
            self.queue.done(d.name(), true, Instant::now());
            return;
        };
        let extra = desired::pool_labels(pool);
        let adv = &self.cfg.advance;
        let job = crate::swarm::migrate::Job {
            pool: pool.metadata.name.clone(),
            deployment: d.name().to_string(),
            extra: extra.clone(),
            desired,
            secrets: d.spec.secrets.clone(),
            probes: d.spec.probes.clone(),
            reach: self.cfg.probe_reach.clone(),
            store: crate::backup::Store::new(adv.snapshot_dir.clone(), adv.snapshot_keep),
            backup: crate::backup::Options {
                helper_image: adv.backup_image.clone(),
                labels: extra,
                ..Default::default()
            },
            deadline: d
                .spec
                .progress_deadline
                .unwrap_or(pool.spec.defaults.progress_deadline),
            author: adv.author.clone(),
        };
        let client = self.client.clone();
        self.applies.spawn(async move {
            let deployment = job.deployment.clone();
            let progress = |line: &str| tracing::info!(deployment = %deployment, "{line}");
            let result = crate::swarm::migrate::run(&client, &job, start, &progress).await;
            Applied {
                deployment: job.deployment.clone(),
                result: result.map(|_| 0),
            }
        });
    }

    pub(super) fn publish(&mut self, st: DeploymentStatus) {
        let mut statuses = self.shared.statuses.write().expect("statuses");
        let old = statuses.get(&st.name).map(|o| o.phase);
        if old != Some(st.phase) {
            tracing::info!(
                deployment = %st.name,
                phase = %st.phase,
                reason = %st.reason,
                "{}",
                st.message
            );
        }
        let name = st.name.clone();
        let became_ready = st.phase == Phase::Ready && old != Some(Phase::Ready);
        statuses.insert(name.clone(), st);
        drop(statuses);
        if became_ready {
            // Dependents waiting on it can go now.
            let dependents: Vec<String> = self
                .loaded
                .deployments
                .iter()
                .filter(|d| d.spec.depends_on.contains(&name))
                .map(|d| d.name().to_string())
                .collect();
            for d in dependents {
                self.queue.mark(&d);
            }
        }
    }

    pub(super) fn spawn_apply(&mut self, plan: Plan, mut ids: Ids) {
        let client = self.client.clone();
        let shared = self.shared.clone();
        let span = tracing::info_span!("apply", deployment = %plan.deployment);
        self.applies.spawn(async move {
            let deployment = plan.deployment.clone();
            let progress = |e: StepEvent<'_>| match e {
                StepEvent::Started(_) => {}
                StepEvent::Done(s) => {
                    shared.counters.action(s.action.kind());
                    tracing::info!(
                        deployment = %deployment,
                        action = s.action.kind(),
                        "{} {}: {}",
                        s.action.kind(),
                        s.action.object(),
                        s.reason
                    );
                }
                StepEvent::Failed(s, m) => tracing::warn!(
                    deployment = %deployment,
                    action = s.action.kind(),
                    "{} {} failed: {m}",
                    s.action.kind(),
                    s.action.object()
                ),
            };
            // Losing the lease cuts the apply between two Docker calls.
            let mut leadership = shared.leadership.subscribe();
            let result = tokio::select! {
                r = apply_plan(&client, &plan, &mut ids, &progress) => r.map_err(|e| e.to_string()),
                _ = leadership.wait_for(|l| !l.leading) => {
                    tracing::warn!(deployment = %deployment, "lost the leader lease: apply stopped");
                    Err("lost the leader lease: apply stopped".to_string())
                }
            };
            Applied { deployment, result }
        }.instrument(span));
    }

    pub(super) fn finish_apply(&mut self, done: Applied) {
        let ok = done.result.is_ok();
        self.shared.counters.reconciled(&done.deployment, ok);
        if let Some(mut st) = self.shared.status(&done.deployment) {
            st.last_error = done.result.as_ref().err().cloned();
            self.shared
                .statuses
                .write()
                .expect("statuses")
                .insert(done.deployment.clone(), st);
        }
        if let Some(delay) = self.queue.done(&done.deployment, ok, Instant::now()) {
            tracing::warn!(
                deployment = %done.deployment,
                "apply failed: {}; retrying in {delay:?}",
                done.result.err().unwrap_or_default()
            );
        } else {
            // Look again at what the apply did.
            self.queue.mark(&done.deployment);
        }
    }
}

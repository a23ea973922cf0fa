//! The pure half of a reconcile: from the facts of one deployment in one pass to an
//! [`Outcome`] (the status to publish, the apply or move to start, the requeue, the progress
//! clock), the way a kube-runtime reconciler returns an `Action`. Nothing here touches Docker,
//! channels, the queue or the controller: the shell (`reconcile.rs`) gathers [`Facts`], runs
//! the two I/O steps that sit between the stages (log tails of crashed containers, the advance
//! machine's step), and commits the outcome exactly once. docs/architecture.md §3 has the flow.
//!
//! Three stages, each pure:
//! - [`triage`]: the exits before planning (an orphan, an invalid or unrendered manifest, a
//!   hold of `migrate::hold`);
//! - [`assess`] (and [`rejudge`] once the wanted log tails are read): the plan against the
//!   pass's indexes and the judge's verdict;
//! - [`decide`]: the advance machine's word, the apply slots, the apply, or the verdict.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::assess::{Condition, Phase, ProbeOutcome, Standing};
use crate::desired::Desired;
use crate::manifest::{Deployment, DesiredState};
use crate::observed::{Snapshot, StackView};
use crate::plan::{Intent, Plan, SnapIndex, plan_indexed, plan_prune};
use crate::swarm::apply::Ids;

use super::advancer::Driven;
use super::judge::{self, Verdict};
use super::status::{self, DeploymentStatus};

/// What one pass computed once for all the deployments it looks at (no Docker call).
pub struct Pass<'a> {
    pub snap: &'a Snapshot,
    pub ids: &'a Ids,
    pub ix: &'a SnapIndex<'a>,
    pub owners: &'a crate::migrate::Owners<'a>,
    /// Other stacks' aliases, router hosts and namespaces.
    pub held: &'a crate::conflicts::SwarmIndex,
}

/// The pool's settings a reconcile reads.
#[derive(Debug, Clone)]
pub struct PoolFacts {
    pub name: String,
    pub prune: bool,
    pub self_heal: bool,
    pub progress_deadline: Duration,
}

/// Everything one reconcile of one deployment looks at, as plain data.
pub struct Facts<'a> {
    pub name: &'a str,
    /// The clock of this reconcile.
    pub now: SystemTime,
    pub pass: &'a Pass<'a>,
    /// The deployment's stack in the snapshot (empty when nothing is live).
    pub view: StackView<'a>,
    /// The status published last (default when none).
    pub previous: DeploymentStatus,
    /// `None`: not in the manifests.
    pub deployment: Option<Deployment>,
    /// `None`: no Pool manifest.
    pub pool: Option<PoolFacts>,
    /// Found on the swarm as this pool's but gone from the manifests.
    pub orphan: bool,
    /// Why the manifest must not be applied (its problems, joined).
    pub invalid: Option<String>,
    /// The render of the declared version (`None`: it did not render).
    pub declared: Option<Arc<Desired>>,
    /// What the render claims against other stacks.
    pub claims: Option<Arc<crate::conflicts::Claims>>,
    /// Each dependency's published phase.
    pub dependencies: Vec<(String, Phase)>,
    /// The prober's latest results for this deployment.
    pub probe_outcomes: Vec<ProbeOutcome>,
    /// When hearth last applied a change of its desired spec (this process's memory).
    pub progressing_since: Option<SystemTime>,
    pub applies_running: usize,
    pub concurrency: usize,
}

/// What to start.
#[derive(Debug)]
pub enum Work {
    Nothing,
    /// Apply this plan in an apply slot.
    Apply(Box<Plan>),
    /// Run (`start`) or resume a stack move in an apply slot.
    Migrate {
        start: bool,
        deployment: Box<Deployment>,
        desired: Arc<Desired>,
    },
}

/// What the queue hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Work was started: its end tells the queue.
    Running,
    /// Done for now.
    Done,
    /// Done, and looked at again soon.
    DoneAndMark,
}

/// The progress clock (`progressing_since`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Keep,
    /// A change of the desired spec was applied at this time.
    Restart(SystemTime),
    /// The deployment is Ready: forget it.
    Stop,
}

/// The decision of one reconcile, committed at once by the controller.
#[derive(Debug)]
pub struct Outcome {
    /// The status to publish.
    pub status: Option<DeploymentStatus>,
    pub work: Work,
    pub requeue: Requeue,
    pub clock: Clock,
    /// The judge's verdict is reported as is (logged at debug, counted as a reconcile).
    pub verdict: bool,
}

impl Outcome {
    fn report(st: DeploymentStatus) -> Outcome {
        Outcome {
            status: Some(st),
            work: Work::Nothing,
            requeue: Requeue::Done,
            clock: Clock::Keep,
            verdict: false,
        }
    }
}

/// A deployment past [`triage`].
#[derive(Debug)]
pub struct Triaged {
    pub st: DeploymentStatus,
    pub desired: Arc<Desired>,
    pub pool: String,
}

/// The exits before planning: an orphan (pruned when the pool prunes), an invalid manifest, a
/// render missing, a hold. `Ok` when the deployment is to be planned.
pub fn triage(f: &Facts) -> Result<Triaged, Box<Outcome>> {
    let now = f.now;
    let Some(d) = &f.deployment else {
        // Not in the manifests: an orphan of this pool, removed only when the pool prunes.
        let prune = f.pool.as_ref().filter(|p| p.prune);
        return Err(Box::new(match prune {
            Some(pool) if f.orphan => Outcome {
                status: None,
                work: Work::Apply(Box::new(plan_prune(&pool.name, f.name, f.pass.snap))),
                requeue: Requeue::Running,
                clock: Clock::Keep,
                verdict: false,
            },
            _ => Outcome {
                status: None,
                work: Work::Nothing,
                requeue: Requeue::Done,
                clock: Clock::Keep,
                verdict: false,
            },
        }));
    };
    let mut st = f.previous.clone();
    st.name = f.name.to_string();
    st.recipe = d.spec.recipe.clone();
    st.role = format!("{:?}", d.spec.role).to_lowercase();
    st.desired_version = d.spec.version.clone();
    st.last_reconcile = Some(now);
    if let Some(msg) = &f.invalid {
        st.set_phase(Phase::Invalid, "InvalidManifest", msg, now);
        return Err(Box::new(Outcome::report(st)));
    }
    let Some(desired) = f.declared.clone() else {
        st.set_phase(
            Phase::Invalid,
            "NotRendered",
            "the deployment did not render",
            now,
        );
        return Err(Box::new(Outcome::report(st)));
    };
    st.stack = desired.stack.clone();
    st.domain = desired.domain.clone();
    st.live_version = judge::live_version(&f.view, &desired.stack);
    let pool = f.pool.as_ref().map(|p| p.name.clone()).unwrap_or_default();
    // A stack move held or running, a stack name or volume held by another: nothing else.
    let subject = crate::migrate::subject_of(&pool, d, &desired.stack, &desired.stack_spec);
    if let Some(hold) = crate::migrate::decide(f.pass.owners, &subject) {
        return Err(Box::new(held(f, st, d, desired, &hold)));
    }
    Ok(Triaged { st, desired, pool })
}

/// Reports a hold (`migrate::hold`); a move that is to run (allowed, or recorded and left half
/// done) runs in an apply slot.
fn held(
    f: &Facts,
    mut st: DeploymentStatus,
    d: &Deployment,
    desired: Arc<Desired>,
    hold: &crate::migrate::Hold,
) -> Outcome {
    use crate::migrate::Hold;
    let held = hold.held(f.name);
    st.drift.clear();
    st.set_phase(held.phase, &held.reason, &held.message, f.now);
    let condition =
        |kind: &str, status: bool| Condition::new(kind, status, &held.reason, &held.message);
    st.set_conditions(
        vec![condition("Ready", false), condition("Held", true)],
        f.now,
    );
    let run = match hold {
        Hold::StackMove { auto: true, .. } => Some(true),
        Hold::Migrating { .. } => Some(false),
        _ => None,
    };
    match (run, &f.pool) {
        (Some(start), Some(_)) => Outcome {
            status: Some(st),
            work: Work::Migrate {
                start,
                deployment: Box::new(d.clone()),
                desired,
            },
            requeue: Requeue::Running,
            clock: Clock::Keep,
            verdict: false,
        },
        _ => Outcome::report(st),
    }
}

/// A planned and judged deployment.
#[derive(Debug)]
pub struct Assessed {
    pub st: DeploymentStatus,
    /// What is converged (the advance machine's version, pinned).
    pub desired: Arc<Desired>,
    pub pool: String,
    pub plan: Plan,
    pub verdict: Verdict,
    pub deadline: Duration,
    /// Neither suspended, nor waiting for a dependency's first Ready, nor with plan problems.
    pub may_apply: bool,
    probes: Vec<ProbeOutcome>,
    progressing_since: Option<SystemTime>,
    was_ready: bool,
}

impl Assessed {
    /// Containers whose log tail the verdict wants and `logs` does not have yet.
    pub fn missing_logs(&self, logs: &HashMap<String, Vec<String>>) -> Vec<String> {
        self.verdict
            .logs_wanted
            .iter()
            .filter(|id| !logs.contains_key(*id))
            .cloned()
            .collect()
    }
}

fn parked(f: &Facts) -> bool {
    f.deployment
        .as_ref()
        .is_some_and(|d| d.spec.state == DesiredState::Parked)
}

fn suspended(f: &Facts) -> bool {
    f.deployment.as_ref().is_some_and(|d| d.spec.suspend)
}

/// Plans `converge` (the advance machine's version; the declared render when `None`) against
/// the pass's indexes and judges the live stack.
pub fn assess(
    f: &Facts,
    t: Triaged,
    converge: Option<Desired>,
    logs: &HashMap<String, Vec<String>>,
) -> Assessed {
    let Triaged {
        mut st,
        desired,
        pool,
    } = t;
    let d = f
        .deployment
        .as_ref()
        .expect("triaged deployments are known");
    let mut desired = match converge {
        Some(other) => Arc::new(other),
        None => desired,
    };
    // Stateful services stay on the node holding their data (plan/pin.rs), whichever version
    // is converged.
    if d.spec.pin_volumes
        && let Some((pinned, _)) = crate::plan::pin_volumes_in(
            &desired.stack_spec,
            &f.view,
            crate::plan::eligible_nodes(&f.pass.snap.nodes),
            f.pass.ix.recorded_pins(&pool, f.name),
        )
    {
        let mut with_pins = (*desired).clone();
        with_pins.stack_spec = pinned;
        desired = Arc::new(with_pins);
    }
    let parked = parked(f);
    let mut plan = plan_indexed(
        &Intent {
            pool: &pool,
            deployment: f.name,
            stack: &desired.stack,
            desired: (!parked).then_some(&desired.stack_spec),
            secrets: &d.spec.secrets,
            secret_files: &desired.secret_files,
            secret_hints: &desired.secret_hints,
            adopt: d.spec.adopt,
            restart: false,
        },
        f.pass.ix,
    );
    if !f.pool.as_ref().is_none_or(|p| p.self_heal) {
        plan.steps.retain(|s| !s.heals_drift);
    }
    st.drift = plan.drift.clone();
    crate::redact::with(|r| st.drift.iter_mut().for_each(|d| r.drift(d)));
    let deadline = d
        .spec
        .progress_deadline
        .or(f.pool.as_ref().map(|p| p.progress_deadline))
        .unwrap_or(Duration::from_secs(600));
    let probes = probes(f, parked);
    st.probes = probes
        .iter()
        .map(|p| status::ProbeStatus {
            name: p.name.clone(),
            ok: p.ok,
            message: p.message.clone(),
        })
        .collect();
    let progressing_since = f
        .progressing_since
        .or_else(|| judge::last_spec_change(&f.view));
    // "Was Ready" counts since the last change hearth applied: a deployment mid-update is
    // Progressing, not Degraded.
    let was_ready = match (st.last_ready, f.progressing_since) {
        (Some(ready), Some(changed)) => ready >= changed,
        (ready, _) => ready.is_some(),
    };
    // A dependent is first deployed once its dependencies are Ready; once deployed it is kept
    // converged (a provider's hiccup does not freeze its dependents' updates).
    let deps_waiting = f.dependencies.iter().any(|(_, p)| *p != Phase::Ready);
    let deployed = !f.view.services.is_empty();
    let may_apply = !d.spec.suspend && (!deps_waiting || deployed) && plan.problems.is_empty();
    let mut a = Assessed {
        st,
        desired,
        pool,
        plan,
        verdict: Verdict {
            standing: Standing::default(),
            services: Vec::new(),
            conditions: Vec::new(),
            logs_wanted: Vec::new(),
        },
        deadline,
        may_apply,
        probes,
        progressing_since,
        was_ready,
    };
    rejudge(f, &mut a, logs);
    a
}

/// Every configured probe counts; one without a result yet is not passing.
fn probes(f: &Facts, parked: bool) -> Vec<ProbeOutcome> {
    let Some(d) = f.deployment.as_ref().filter(|d| !parked && !d.spec.suspend) else {
        return Vec::new();
    };
    crate::probe::probe_names(&d.spec.probes)
        .into_iter()
        .map(|n| {
            f.probe_outcomes
                .iter()
                .find(|o| o.name == n)
                .cloned()
                .unwrap_or(ProbeOutcome {
                    name: n,
                    ok: false,
                    message: "not probed yet".into(),
                })
        })
        .collect()
}

/// Judges the live stack again (after the log tails it wanted were read).
pub fn rejudge(f: &Facts, a: &mut Assessed, logs: &HashMap<String, Vec<String>>) {
    a.verdict = judge::judge(&judge::Facts {
        now: f.now,
        snap: f.pass.snap,
        view: &f.view,
        desired: &a.desired,
        parked: parked(f),
        suspended: suspended(f),
        plan: &a.plan,
        probes: &a.probes,
        dependencies: &f.dependencies,
        progressing_since: a.progressing_since,
        deadline: a.deadline,
        was_ready: a.was_ready,
        logs,
    });
}

/// What the advance machine did this pass.
pub struct Advanced {
    /// The converged version is the declared one's usual apply (not the machine's own).
    pub normal_apply: bool,
    pub driven: Driven,
}

/// The last stage: the advance machine's status, a wait for an apply slot, the apply, or the
/// judge's verdict. `advance` is `None` where the machine does not apply (parked, suspended).
pub fn decide(f: &Facts, a: Assessed, advance: Option<Advanced>) -> Outcome {
    let now = f.now;
    let Assessed {
        mut st,
        mut plan,
        verdict,
        may_apply,
        ..
    } = a;
    st.services = verdict.services.clone();
    let mut conditions = verdict.conditions.clone();
    // Collisions with other stacks never change the phase: they are conditions.
    let conflicts = match &f.claims {
        Some(claims) => crate::conflicts::find(claims, &a.pool, f.name, f.pass.held),
        None => Vec::new(),
    };
    conditions.extend(crate::conflicts::conditions(&conflicts));
    st.set_conditions(conditions, now);

    let mut clock = Clock::Keep;
    if let Some(adv) = advance {
        if adv.driven.applied {
            clock = Clock::Restart(now);
        }
        if let Some(s) = adv.driven.status {
            st.set_phase(s.phase, &s.reason, &s.message, now);
            let apply = adv.normal_apply && may_apply && !plan.is_empty();
            return Outcome {
                status: Some(st),
                work: if apply {
                    Work::Apply(Box::new(plan))
                } else {
                    Work::Nothing
                },
                requeue: match (apply, adv.driven.again) {
                    (true, _) => Requeue::Running,
                    (false, true) => Requeue::DoneAndMark,
                    (false, false) => Requeue::Done,
                },
                clock,
                verdict: false,
            };
        }
        if !adv.normal_apply {
            plan.steps.clear();
        }
    }
    if may_apply && !plan.is_empty() && f.applies_running >= f.concurrency {
        // Every apply slot is busy: look again when one frees up.
        st.set_phase(
            Phase::Progressing,
            "WaitingForApplySlot",
            &format!(
                "{} change(s) queued behind {} running apply(s)",
                plan.steps.len(),
                f.applies_running
            ),
            now,
        );
        return Outcome {
            status: Some(st),
            work: Work::Nothing,
            requeue: Requeue::DoneAndMark,
            clock,
            verdict: false,
        };
    }
    if may_apply && !plan.is_empty() {
        if plan.steps.iter().any(|s| !s.heals_drift) {
            clock = Clock::Restart(now);
        }
        st.set_phase(
            Phase::Progressing,
            "Applying",
            &format!("applying {} change(s)", plan.steps.len()),
            now,
        );
        return Outcome {
            status: Some(st),
            work: Work::Apply(Box::new(plan)),
            requeue: Requeue::Running,
            clock,
            verdict: false,
        };
    }
    let v = &verdict.standing;
    st.set_phase(v.phase, &v.reason, &v.message, now);
    if v.phase == Phase::Ready {
        clock = Clock::Stop;
    }
    Outcome {
        status: Some(st),
        work: Work::Nothing,
        requeue: Requeue::Done,
        clock,
        verdict: true,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;

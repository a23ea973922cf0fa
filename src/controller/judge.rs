//! The controller's side of assessment: gathers the facts of a pass (the stack's live objects,
//! what is expected, drift, probes, dependencies, the deadline) into the pure [`assess`] and turns
//! its verdict into reported phase, reason, message and conditions.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::assess::{
    AssessInput, Assessment, Condition, ExpectedService, Phase, ProbeOutcome, ServiceProgress,
    Standing, assess,
};
use crate::desired::Desired;
use crate::observed::{Snapshot, StackView};
use crate::plan::Plan;

pub struct Facts<'a> {
    pub now: SystemTime,
    pub snap: &'a Snapshot,
    pub view: &'a StackView<'a>,
    pub desired: &'a Desired,
    pub parked: bool,
    pub suspended: bool,
    pub plan: &'a Plan,
    pub probes: &'a [ProbeOutcome],
    pub dependencies: &'a [(String, Phase)],
    pub progressing_since: Option<SystemTime>,
    pub deadline: Duration,
    pub was_ready: bool,
    pub logs: &'a HashMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Phase, reason and message: what is reported unless something overrides it (an advance, an
    /// apply), and what the advance machine verifies.
    pub standing: Standing,
    pub services: Vec<ServiceProgress>,
    pub conditions: Vec<Condition>,
    /// Containers whose log tail would explain a crash (fetch them and judge again).
    pub logs_wanted: Vec<String>,
}

/// abra's version label on the stack's services, if they agree on one.
pub fn live_version(view: &StackView, stack: &str) -> Option<String> {
    let key = crate::render::version_label(stack);
    view.services
        .iter()
        .filter_map(|s| s.spec.as_ref()?.labels.as_ref()?.get(&key).cloned())
        .next()
}

/// When the live services last changed spec (Swarm's `UpdatedAt`): the progress clock after a
/// restart of hearth, when its own memory of the last apply is gone.
pub fn last_spec_change(view: &StackView) -> Option<SystemTime> {
    view.services
        .iter()
        .filter_map(|s| s.updated_at.as_deref())
        .filter_map(|t| humantime::parse_rfc3339_weak(t.split('.').next()?).ok())
        .max()
}

pub fn judge(f: &Facts) -> Verdict {
    let expected: Vec<ExpectedService> = if f.parked {
        Vec::new()
    } else {
        f.desired
            .stack_spec
            .services
            .iter()
            .map(|s| ExpectedService {
                name: s.name.clone(),
                spec_hash: Some(s.spec_hash.clone()),
            })
            .collect()
    };
    let problems = (!f.plan.problems.is_empty()).then(|| f.plan.problems.join("; "));
    let raw_specs = f.snap.raw_specs_of(&f.view.services);
    let input = AssessInput {
        nodes: &f.snap.nodes,
        expected: &expected,
        desired_running: !f.parked,
        suspended: f.suspended,
        invalid: problems,
        waiting: (!f.plan.pending.is_empty()).then(|| f.plan.pending.join("; ")),
        drift: &f.plan.drift,
        probes: f.probes,
        dependencies: f.dependencies,
        progressing_since: f.progressing_since,
        progress_deadline: f.deadline,
        was_ready: f.was_ready,
        raw_specs: &raw_specs,
        logs: f.logs,
        ..AssessInput::new(f.now, f.view)
    };
    verdict(assess(&input))
}

fn verdict(a: Assessment) -> Verdict {
    Verdict {
        standing: Standing {
            phase: a.phase,
            reason: a.reason,
            message: a.message,
        },
        services: a.services,
        conditions: a.conditions,
        logs_wanted: a.logs_wanted,
    }
}

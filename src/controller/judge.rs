//! The controller's verdict on one deployment from the facts of a pass: phase, reason, message and
//! conditions, from the pure assessment of its services, the plan (drift, problems), its
//! dependencies and the progress deadline.

use std::time::{Duration, SystemTime};

use crate::assess::{Convergence, ServiceProgress, service_progress};
use crate::plan::Plan;
use crate::swarm::StackView;

use super::status::ConditionStatus;

pub struct Facts<'a> {
    pub now: SystemTime,
    pub view: &'a StackView<'a>,
    pub parked: bool,
    pub suspended: bool,
    pub plan: &'a Plan,
    pub deps_waiting: &'a [String],
    pub progressing_since: Option<SystemTime>,
    pub deadline: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub phase: String,
    pub reason: String,
    pub message: String,
    pub services: Vec<ServiceProgress>,
    pub conditions: Vec<ConditionStatus>,
}

/// Phases that want another look soon (not settled).
pub fn unsettled(phase: &str) -> bool {
    matches!(
        phase,
        "Progressing" | "Pending" | "Degraded" | "Wedged" | ""
    )
}

/// abra's version label on the stack's services, if they agree on one.
pub fn live_version(view: &StackView, stack: &str) -> Option<String> {
    let key = crate::render::version_label(stack);
    view.services
        .iter()
        .filter_map(|s| s.spec.as_ref()?.labels.as_ref()?.get(&key).cloned())
        .next()
}

fn cond(kind: &str, status: bool, reason: &str, message: &str) -> ConditionStatus {
    ConditionStatus {
        kind: kind.into(),
        status,
        reason: reason.into(),
        message: message.into(),
        since: None,
    }
}

pub fn judge(f: &Facts) -> Verdict {
    let services: Vec<ServiceProgress> = f
        .view
        .services
        .iter()
        .map(|s| {
            let tasks: Vec<_> = f
                .view
                .tasks
                .iter()
                .copied()
                .filter(|t| t.service_id == s.id)
                .collect();
            service_progress(s, &tasks)
        })
        .collect();
    let drifted = !f.plan.drift.is_empty();
    let drift_msg = f
        .plan
        .drift
        .iter()
        .map(|d| format!("{} {}", d.service, d.field))
        .collect::<Vec<_>>()
        .join(", ");
    let mut conditions = vec![cond(
        "Drifted",
        drifted,
        if drifted { "OutOfBandChange" } else { "" },
        &drift_msg,
    )];
    let (phase, reason, message) = if !f.plan.problems.is_empty() {
        ("Invalid", "Blocked", f.plan.problems.join("; "))
    } else if f.parked {
        (
            "Parked",
            "Parked",
            "services removed; volumes and secrets kept".into(),
        )
    } else if f.suspended {
        (
            "Suspended",
            "Suspended",
            "changes are suspended; still reporting".into(),
        )
    } else if !f.deps_waiting.is_empty() {
        (
            "Pending",
            "WaitingForDependency",
            format!("waiting for {} to be Ready", f.deps_waiting.join(", ")),
        )
    } else if let Some((s, m)) = services.iter().find_map(|p| match &p.state {
        Convergence::Failed(m) => Some((p.service.clone(), m.clone())),
        _ => None,
    }) {
        ("Wedged", "UpdatePaused", format!("{s}: {m}"))
    } else if services.is_empty() || services.iter().any(|p| p.state != Convergence::Converged) {
        let waiting: Vec<String> = services
            .iter()
            .filter_map(|p| match &p.state {
                Convergence::Progressing(m) => Some(format!("{}: {m}", p.service)),
                _ => None,
            })
            .collect();
        let late = f
            .progressing_since
            .and_then(|t| f.now.duration_since(t).ok())
            .is_some_and(|d| d > f.deadline);
        if late {
            (
                "Wedged",
                "DeadlineExceeded",
                format!("not ready after {:?}: {}", f.deadline, waiting.join("; ")),
            )
        } else {
            ("Progressing", "Converging", waiting.join("; "))
        }
    } else {
        (
            "Ready",
            "AllServicesRunning",
            format!("{} service(s) running their desired tasks", services.len()),
        )
    };
    let ready = phase == "Ready";
    conditions.insert(0, cond("Ready", ready, reason, &message));
    Verdict {
        phase: phase.into(),
        reason: reason.into(),
        message,
        services,
        conditions,
    }
}

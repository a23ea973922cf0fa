//! The advance state machine: pure, no Docker. Given the persisted [`Record`], what was observed
//! this pass ([`Observed`]: declared and live version, the judge's verdict, whether the converge
//! target still has changes to apply) and what just finished ([`Event`]), [`step`] returns the next
//! record and ONE [`Action`] for the executor. [`converge`] says which version the controller keeps
//! converged meanwhile, [`status`] what is reported.
//!
//! The machine is level-triggered: every state can be resumed from its record alone after a
//! restart (an apply is repeated while the plan still has changes; a restore is repeated; a
//! verification measures its deadline from the persisted `since`).

use std::time::Duration;

use crate::assess::{Phase, Standing};
use crate::recipe::{Version, is_major_bump};

/// Annotation on a Deployment's `metadata.annotations` approving a major bump to exactly this
/// version: `hearth.approve-version: 4.0.0+1.2.3`.
pub const APPROVE_ANNOTATION: &str = "hearth.approve-version";

/// Where an advance stands (persisted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// Nothing in progress; `last_good` (if any) is the version last verified Ready.
    #[default]
    Ready,
    /// A major bump waits for `advance.allowMajor` or the approval annotation.
    Held,
    SnapshotTaken,
    Updating,
    Verifying,
    RollingBack,
    Restoring,
    /// The advance failed; no retry until the declared version changes or `hearth retry`.
    AdvanceFailed,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Ready,
        State::Held,
        State::SnapshotTaken,
        State::Updating,
        State::Verifying,
        State::RollingBack,
        State::Restoring,
        State::AdvanceFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "Ready",
            State::Held => "Held",
            State::SnapshotTaken => "SnapshotTaken",
            State::Updating => "Updating",
            State::Verifying => "Verifying",
            State::RollingBack => "RollingBack",
            State::Restoring => "Restoring",
            State::AdvanceFailed => "AdvanceFailed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed advance, remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The version that failed.
    pub version: String,
    /// Classified reason (`CrashLoop`, `HealthcheckFailing`, `DeadlineExceeded`, `SnapshotFailed`,
    /// `ApplyFailed`, ...).
    pub reason: String,
    pub message: String,
    /// The live stack is (being) put back at `last_good` (rolled back, or never left it).
    pub at_last_good: bool,
}

/// The persisted record of one deployment's advance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub state: State,
    /// The last version verified Ready.
    pub last_good: Option<String>,
    /// The version being advanced to (or held).
    pub target: Option<String>,
    /// The snapshot taken before the update.
    pub snapshot: Option<String>,
    /// Unix seconds the advance started.
    pub started_at: Option<u64>,
    /// Unix seconds the current state was entered (deadlines of Verifying and RollingBack).
    pub since: Option<u64>,
    pub failed: Option<Failure>,
}

/// What the Deployment allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `advance.backup`: take a snapshot before updating.
    pub backup: bool,
    /// `advance.rollback`: roll back (and restore) on failure.
    pub rollback: bool,
    /// `advance.allowMajor`.
    pub allow_major: bool,
    /// The [`APPROVE_ANNOTATION`] value, if any.
    pub approved: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            backup: true,
            rollback: true,
            allow_major: false,
            approved: None,
        }
    }
}

/// What a pass observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The manifest's version.
    pub declared: String,
    /// abra's version label on the live services (`None`: nothing live).
    pub live: Option<String>,
    /// The judge's verdict on the converge target (see [`converge`]).
    pub verdict: Standing,
    /// The converge target's plan still has changes to apply.
    pub plan_pending: bool,
    /// A long step (snapshot, apply, restore) of this deployment is in flight.
    pub busy: bool,
    /// Unix seconds.
    pub now: u64,
    /// `progressDeadline`.
    pub deadline: Duration,
    pub policy: Policy,
}

/// What just finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A pass; nothing finished.
    Observe,
    /// The snapshot: its id, `None` when there was nothing to back up, or why it failed.
    Snapshot(Result<Option<String>, String>),
    /// An apply started for the machine.
    Applied(Result<(), String>),
    /// A restore.
    Restored(Result<(), String>),
}

/// What the executor does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Only persist the new record.
    Record,
    TakeSnapshot,
    /// Apply this version's rendered stack (the executor applies only when it is the converge
    /// target of the record it planned with; otherwise it persists and looks again).
    ApplyVersion(String),
    Restore(String),
}

/// How an advance ended (for `hearth_advance_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    pub record: Record,
    pub action: Action,
    pub outcome: Option<Outcome>,
}

/// Which version the controller converges (plans and judges) while in `record`, and whether its
/// ordinary applies may run (otherwise only the machine's own applies change the stack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub version: String,
    pub normal_apply: bool,
}

/// The version to converge for this record.
pub fn converge(r: &Record, declared: &str, live: Option<&str>) -> Target {
    let hold = |v: Option<&String>, normal_apply| Target {
        version: v.cloned().unwrap_or_else(|| declared.to_string()),
        normal_apply,
    };
    match r.state {
        State::Ready => match pending_from(r, declared, live) {
            Some(base) => Target {
                version: base,
                normal_apply: false,
            },
            None => hold(None, true),
        },
        State::Held => hold(r.last_good.as_ref(), true),
        State::SnapshotTaken | State::Updating | State::Verifying => hold(r.target.as_ref(), false),
        State::RollingBack | State::Restoring => hold(r.last_good.as_ref(), false),
        State::AdvanceFailed => match &r.failed {
            Some(f) if !f.at_last_good => hold(Some(&f.version), true),
            _ => hold(r.last_good.as_ref(), true),
        },
    }
}

/// When an advance is pending in `Ready`/`Held`: the version it starts from. An advance needs
/// something live at another version than declared; a cold deploy (nothing live) or a stack
/// already at the declared version is not one.
fn pending_from(r: &Record, declared: &str, live: Option<&str>) -> Option<String> {
    let live = live?;
    if live == declared {
        return None;
    }
    Some(r.last_good.clone().unwrap_or_else(|| live.to_string()))
}

/// True when `from -> to` is a major bump the policy does not allow.
fn held(from: &str, to: &str, p: &Policy) -> bool {
    let (Ok(a), Ok(b)) = (Version::parse(from), Version::parse(to)) else {
        return false;
    };
    is_major_bump(&a, &b) && !p.allow_major && p.approved.as_deref() != Some(to)
}

/// `hearth retry`: forget a failure so the controller tries the declared version again.
pub fn retry(r: &Record) -> Option<Record> {
    (r.state == State::AdvanceFailed).then(|| Record {
        state: State::Ready,
        last_good: r.last_good.clone(),
        ..Default::default()
    })
}

fn next(record: Record, action: Action) -> Next {
    Next {
        record,
        action,
        outcome: None,
    }
}

/// One step of the machine.
pub fn step(r: &Record, o: &Observed, ev: &Event) -> Next {
    let mut n = step_inner(r, o, ev);
    if n.action == Action::Nothing && n.record != *r {
        n.action = Action::Record;
    }
    n
}

fn step_inner(r: &Record, o: &Observed, ev: &Event) -> Next {
    let stay = || next(r.clone(), Action::Nothing);
    let enter = |state: State| Record {
        state,
        since: Some(o.now),
        ..r.clone()
    };
    match r.state {
        State::Ready | State::Held => pending(r, o, ev),
        State::SnapshotTaken => {
            let target = r.target.clone().unwrap_or_default();
            next(enter(State::Updating), Action::ApplyVersion(target))
        }
        State::Updating => match ev {
            Event::Applied(Ok(())) => next(enter(State::Verifying), Action::Nothing),
            Event::Applied(Err(e)) => fail(r, o, "ApplyFailed", e),
            _ if o.busy => stay(),
            _ if o.plan_pending => next(
                r.clone(),
                Action::ApplyVersion(r.target.clone().unwrap_or_default()),
            ),
            _ => next(enter(State::Verifying), Action::Nothing),
        },
        State::Verifying => {
            if o.busy {
                return stay();
            }
            let v = &o.verdict;
            match v.phase {
                Phase::Ready => {
                    let rec = Record {
                        state: State::Ready,
                        last_good: r.target.clone(),
                        ..Default::default()
                    };
                    Next {
                        record: rec,
                        action: Action::Record,
                        outcome: Some(Outcome::Succeeded),
                    }
                }
                Phase::Wedged | Phase::Invalid => fail(r, o, &v.reason, &v.message),
                _ if past(r.since, o) => {
                    let msg = format!(
                        "not Ready within the progress deadline of {}: {} {}: {}",
                        humantime::format_duration(o.deadline),
                        v.phase,
                        v.reason,
                        v.message
                    );
                    fail(r, o, "DeadlineExceeded", &msg)
                }
                _ => stay(),
            }
        }
        State::RollingBack => {
            if matches!(ev, Event::Applied(_)) || o.busy {
                // The next pass judges the rolled-back stack (a failed apply is retried there).
                return stay();
            }
            if o.plan_pending {
                let v = r.last_good.clone().unwrap_or_default();
                return next(r.clone(), Action::ApplyVersion(v));
            }
            let settled = !matches!(o.verdict.phase, Phase::Progressing | Phase::Pending);
            if !settled && !past(r.since, o) {
                return stay();
            }
            match &r.snapshot {
                Some(id) => next(enter(State::Restoring), Action::Restore(id.clone())),
                None => failed(r, None),
            }
        }
        State::Restoring => match ev {
            Event::Restored(res) => {
                let id = r.snapshot.clone().unwrap_or_default();
                let note = match res {
                    Ok(()) => format!("snapshot {id} restored"),
                    Err(e) => format!("restoring snapshot {id} failed: {e}"),
                };
                failed(r, Some(note))
            }
            _ if o.busy => stay(),
            _ => next(
                r.clone(),
                Action::Restore(r.snapshot.clone().unwrap_or_default()),
            ),
        },
        State::AdvanceFailed => {
            let failed_version = r.failed.as_ref().map(|f| f.version.as_str());
            if failed_version == Some(o.declared.as_str()) {
                return stay();
            }
            // The declared version changed: forget the failure and look again.
            let fresh = Record {
                state: State::Ready,
                last_good: r.last_good.clone(),
                ..Default::default()
            };
            let mut n = pending(&fresh, o, ev);
            if n.action == Action::Nothing {
                n.action = Action::Record;
            }
            n
        }
    }
}

fn past(since: Option<u64>, o: &Observed) -> bool {
    since.is_some_and(|s| o.now.saturating_sub(s) > o.deadline.as_secs())
}

/// `Ready` or `Held`: record the last-good version when the declared one is Ready, or start (or
/// hold) an advance.
fn pending(r: &Record, o: &Observed, ev: &Event) -> Next {
    let declared = o.declared.clone();
    let Some(base) = pending_from(r, &declared, o.live.as_deref()) else {
        // Not an advance: a cold deploy, or already at the declared version.
        let mut rec = Record {
            state: State::Ready,
            last_good: r.last_good.clone(),
            ..Default::default()
        };
        if o.verdict.phase == Phase::Ready && o.live.as_deref() == Some(declared.as_str()) {
            rec.last_good = Some(declared);
        }
        return next(rec, Action::Nothing);
    };
    if held(&base, &declared, &o.policy) {
        let rec = Record {
            state: State::Held,
            last_good: Some(base),
            target: Some(declared),
            ..Default::default()
        };
        return next(rec, Action::Nothing);
    }
    let ready = Record {
        state: State::Ready,
        last_good: Some(base),
        ..Default::default()
    };
    let start = |state: State, snapshot: Option<String>| Record {
        state,
        target: Some(declared.clone()),
        snapshot,
        started_at: Some(o.now),
        since: Some(o.now),
        ..ready.clone()
    };
    match ev {
        Event::Snapshot(Ok(id)) => next(start(State::SnapshotTaken, id.clone()), Action::Nothing),
        Event::Snapshot(Err(e)) => Next {
            record: Record {
                state: State::AdvanceFailed,
                target: Some(declared.clone()),
                failed: Some(Failure {
                    version: declared.clone(),
                    reason: "SnapshotFailed".into(),
                    message: format!("the snapshot before the update failed: {e}"),
                    at_last_good: true,
                }),
                since: Some(o.now),
                ..ready.clone()
            },
            action: Action::Record,
            outcome: Some(Outcome::Failed),
        },
        _ if o.busy => next(ready, Action::Nothing),
        _ if o.policy.backup => next(ready, Action::TakeSnapshot),
        _ => next(start(State::Updating, None), Action::ApplyVersion(declared)),
    }
}

/// The update failed: roll back, or stop here when `advance.rollback: false`.
fn fail(r: &Record, o: &Observed, reason: &str, message: &str) -> Next {
    let failure = Failure {
        version: r.target.clone().unwrap_or_default(),
        reason: if reason.is_empty() {
            "Failed".into()
        } else {
            reason.into()
        },
        message: message.into(),
        at_last_good: o.policy.rollback,
    };
    if o.policy.rollback {
        let rec = Record {
            state: State::RollingBack,
            since: Some(o.now),
            failed: Some(failure),
            ..r.clone()
        };
        let v = r.last_good.clone().unwrap_or_default();
        return next(rec, Action::ApplyVersion(v));
    }
    Next {
        record: Record {
            state: State::AdvanceFailed,
            since: Some(o.now),
            failed: Some(failure),
            ..r.clone()
        },
        action: Action::Record,
        outcome: Some(Outcome::Failed),
    }
}

/// The end of a failed advance, with a note on the restore.
fn failed(r: &Record, note: Option<String>) -> Next {
    let mut f = r.failed.clone().unwrap_or(Failure {
        version: r.target.clone().unwrap_or_default(),
        reason: "Failed".into(),
        message: String::new(),
        at_last_good: true,
    });
    if let Some(note) = note {
        f.message = format!("{}; {note}", f.message);
    }
    Next {
        record: Record {
            state: State::AdvanceFailed,
            failed: Some(f),
            ..r.clone()
        },
        action: Action::Record,
        outcome: Some(Outcome::Failed),
    }
}

/// What is reported (phase, reason, message) for `r` (after the step), given what was observed;
/// `None`: the judge's own verdict.
pub fn status(r: &Record, o: &Observed) -> Option<Standing> {
    let s =
        |phase: Phase, reason: &str, message: String| Some(Standing::new(phase, reason, message));
    let from = r.last_good.clone().unwrap_or_else(|| "?".into());
    let to = r.target.clone().unwrap_or_else(|| o.declared.clone());
    match r.state {
        State::Ready => match pending_from(r, &o.declared, o.live.as_deref()) {
            Some(base) => s(
                Phase::Progressing,
                "Snapshotting",
                format!(
                    "taking a snapshot before advancing {base} -> {}",
                    o.declared
                ),
            ),
            None => None,
        },
        State::Held => s(
            Phase::Held,
            "MajorVersionBump",
            format!(
                "{from} -> {to} is a major version bump; still running {from}. Set \
                 advance.allowMajor: true or annotate the Deployment {APPROVE_ANNOTATION}: \"{to}\""
            ),
        ),
        State::SnapshotTaken => s(
            Phase::Progressing,
            "SnapshotTaken",
            format!(
                "snapshot {} taken; updating {from} -> {to}",
                r.snapshot.as_deref().unwrap_or("-")
            ),
        ),
        State::Updating => s(
            Phase::Progressing,
            "Updating",
            format!("updating {from} -> {to}"),
        ),
        State::Verifying => {
            let left = r
                .since
                .map(|t| o.deadline.as_secs().saturating_sub(o.now.saturating_sub(t)))
                .unwrap_or(0);
            let v = &o.verdict;
            s(
                Phase::Progressing,
                "Verifying",
                format!(
                    "verifying {to} ({left}s of the deadline left): {} {}: {}",
                    v.phase, v.reason, v.message
                ),
            )
        }
        State::RollingBack => s(
            Phase::Progressing,
            "RollingBack",
            format!("{}; rolling back to {from}", failure_text(r)),
        ),
        State::Restoring => s(
            Phase::Progressing,
            "Restoring",
            format!(
                "{}; rolled back to {from}; restoring snapshot {}",
                failure_text(r),
                r.snapshot.as_deref().unwrap_or("-")
            ),
        ),
        State::AdvanceFailed => {
            let f = r.failed.clone();
            let reason = f.as_ref().map(|f| f.reason.clone()).unwrap_or_default();
            let at = match &f {
                Some(f) if f.at_last_good => format!("running {from}"),
                _ => "not rolled back (advance.rollback: false)".into(),
            };
            s(
                Phase::AdvanceFailed,
                &reason,
                format!(
                    "{}; {at}; change the version or run `hearth retry` to try again",
                    failure_text(r)
                ),
            )
        }
    }
}

fn failure_text(r: &Record) -> String {
    match &r.failed {
        Some(f) => format!(
            "advance {} -> {} failed: {}: {}",
            r.last_good.as_deref().unwrap_or("?"),
            f.version,
            f.reason,
            f.message
        ),
        None => "advance failed".into(),
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;

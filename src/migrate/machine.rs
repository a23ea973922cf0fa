//! The stack-move state machine: pure, no Docker. A [`Record`] (persisted on a hearth config, see
//! [`super::record`]) says how far a move of one deployment from stack `from` to stack `to` got;
//! [`next`] gives the ONE action to run now, [`done`] and [`failed`] the record after it.
//!
//! `Requested` -> (snapshot every named volume of `from`) `SnapshotTaken` -> (create the new stack,
//! volumes first, nothing removed) `StackCreated` -> (restore the snapshot into `to`'s volumes)
//! `Restored` -> (convergence + probes of `to`, within the deadline) `Verified` -> (remove the old
//! services, networks, secrets and configs; move the advance record; record the old volumes as
//! migrated) `Done`. A failure anywhere is `Failed`: the old stack was not removed, so it still
//! serves; `hearth migrate` again starts over from `Requested`.
//!
//! Every step is repeatable, so a hearth killed at any point resumes from the record alone: a
//! snapshot is taken again, an apply re-plans, a restore empties the volume first, removals skip
//! what is gone.

/// Where a move stands (persisted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Requested,
    SnapshotTaken,
    StackCreated,
    Restored,
    Verified,
    Done,
    Failed,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Requested,
        State::SnapshotTaken,
        State::StackCreated,
        State::Restored,
        State::Verified,
        State::Done,
        State::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Requested => "Requested",
            State::SnapshotTaken => "SnapshotTaken",
            State::StackCreated => "StackCreated",
            State::Restored => "Restored",
            State::Verified => "Verified",
            State::Done => "Done",
            State::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A move that still has work to do.
    pub fn in_progress(self) -> bool {
        !matches!(self, State::Done | State::Failed)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The persisted record of one deployment's stack move.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub state: State,
    /// The stack the deployment lives in (its data's volumes).
    pub from: String,
    /// The stack it moves to.
    pub to: String,
    /// The snapshot of `from`'s volumes.
    pub snapshot: Option<String>,
    /// Unix seconds the current state was entered (the verification deadline).
    pub since: Option<u64>,
    /// Why the move failed (state `Failed`).
    pub error: Option<String>,
}

/// What the executor does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Snapshot every named volume of `from` (all of them, not only backupbot-labelled ones); a
    /// stack with none gives no snapshot, and the restore is skipped.
    TakeSnapshot,
    /// Apply the new stack's plan without its removals (volumes first, with owner labels).
    CreateStack,
    /// Restore the snapshot into `to`'s volumes.
    Restore { snapshot: String },
    /// Wait: the new stack is not converged (or a probe fails) yet.
    Wait,
    /// Remove the old stack's services, networks, secrets and configs; move the advance record;
    /// record the old volumes as migrated to `to`.
    RemoveOld,
    /// Nothing (done or failed).
    Nothing,
}

/// What the executor saw of the new stack this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// Unix seconds now.
    pub now: u64,
    /// Every service of `to` converged and every probe passing.
    pub verified: bool,
    /// How long verification may take, seconds.
    pub deadline: u64,
}

/// A fresh record for a move from `from` to `to`.
pub fn request(from: &str, to: &str, now: u64) -> Record {
    Record {
        state: State::Requested,
        from: from.to_string(),
        to: to.to_string(),
        snapshot: None,
        since: Some(now),
        error: None,
    }
}

/// The action for the record now, and the record after a verification verdict (verification
/// has no separate "done" event: the observation decides). Returns the (possibly new) record.
pub fn next(r: &Record, o: &Observed) -> (Record, Action) {
    match r.state {
        State::Requested => (r.clone(), Action::TakeSnapshot),
        State::SnapshotTaken => (r.clone(), Action::CreateStack),
        State::StackCreated => match &r.snapshot {
            Some(s) => (
                r.clone(),
                Action::Restore {
                    snapshot: s.clone(),
                },
            ),
            // No named volume to carry (the snapshot took nothing): nothing to restore.
            None => (enter(r, State::Restored, o.now), Action::Wait),
        },
        State::Restored if o.verified => (enter(r, State::Verified, o.now), Action::RemoveOld),
        State::Restored => {
            let since = r.since.unwrap_or(o.now);
            if o.now.saturating_sub(since) > o.deadline {
                let mut f = enter(r, State::Failed, o.now);
                f.error = Some(format!(
                    "stack {} did not converge with passing probes within {}s after the \
                     restore; stack {} still serves",
                    r.to, o.deadline, r.from
                ));
                (f, Action::Nothing)
            } else {
                (r.clone(), Action::Wait)
            }
        }
        State::Verified => (r.clone(), Action::RemoveOld),
        State::Done | State::Failed => (r.clone(), Action::Nothing),
    }
}

/// The record after `action` succeeded (`snapshot`: the id a [`Action::TakeSnapshot`] made).
pub fn done(r: &Record, action: &Action, snapshot: Option<String>, now: u64) -> Record {
    match action {
        Action::TakeSnapshot => {
            let mut n = enter(r, State::SnapshotTaken, now);
            n.snapshot = snapshot.or_else(|| r.snapshot.clone());
            n
        }
        Action::CreateStack => enter(r, State::StackCreated, now),
        Action::Restore { .. } => enter(r, State::Restored, now),
        Action::RemoveOld => enter(r, State::Done, now),
        Action::Wait | Action::Nothing => r.clone(),
    }
}

/// The record after `action` failed: `Failed` with the reason (the old stack still serves).
pub fn failed(r: &Record, action: &Action, message: &str, now: u64) -> Record {
    let what = match action {
        Action::TakeSnapshot => "snapshot of the old volumes",
        Action::CreateStack => "creating the new stack",
        Action::Restore { .. } => "restore into the new volumes",
        Action::RemoveOld => "removing the old stack",
        Action::Wait | Action::Nothing => "verification",
    };
    let mut f = enter(r, State::Failed, now);
    f.error = Some(format!("{what} failed: {message}"));
    f
}

fn enter(r: &Record, state: State, now: u64) -> Record {
    Record {
        state,
        since: Some(now),
        error: None,
        ..r.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(now: u64, verified: bool) -> Observed {
        Observed {
            now,
            verified,
            deadline: 60,
        }
    }

    /// Runs the machine with every action succeeding (verification at once).
    fn run(mut r: Record) -> Vec<Action> {
        let mut actions = Vec::new();
        for t in 0..20 {
            let (n, a) = next(&r, &obs(t, true));
            if a == Action::Nothing {
                break;
            }
            actions.push(a.clone());
            r = done(&n, &a, Some("snap-1".into()), t);
        }
        assert_eq!(r.state, State::Done);
        actions
    }

    #[test]
    fn a_move_runs_snapshot_create_restore_verify_remove_in_order() {
        let actions = run(request("a", "b", 0));
        assert_eq!(
            actions,
            [
                Action::TakeSnapshot,
                Action::CreateStack,
                Action::Restore {
                    snapshot: "snap-1".into()
                },
                Action::RemoveOld,
            ]
        );
    }

    #[test]
    fn every_state_resumes_from_its_record_alone() {
        // A hearth killed in any state: the record alone gives the action to repeat.
        let base = Record {
            snapshot: Some("s".into()),
            since: Some(0),
            ..request("a", "b", 0)
        };
        for (state, want) in [
            (State::Requested, Action::TakeSnapshot),
            (State::SnapshotTaken, Action::CreateStack),
            (
                State::StackCreated,
                Action::Restore {
                    snapshot: "s".into(),
                },
            ),
            (State::Restored, Action::Wait),
            (State::Verified, Action::RemoveOld),
            (State::Done, Action::Nothing),
            (State::Failed, Action::Nothing),
        ] {
            let r = Record {
                state,
                ..base.clone()
            };
            assert_eq!(next(&r, &obs(10, false)).1, want, "{state}");
            // Repeating (killed before the record was written) asks for the same action.
            assert_eq!(next(&r, &obs(11, false)).1, want, "{state}");
        }
    }

    #[test]
    fn killed_during_the_restore_repeats_the_restore() {
        let r = Record {
            state: State::StackCreated,
            snapshot: Some("s".into()),
            ..request("a", "b", 0)
        };
        let (same, a) = next(&r, &obs(5, false));
        assert_eq!(same, r, "no write before the restore");
        assert!(matches!(a, Action::Restore { .. }));
        let after = done(&r, &a, None, 6);
        assert_eq!(after.state, State::Restored);
        assert_eq!(after.snapshot.as_deref(), Some("s"));
    }

    #[test]
    fn a_move_without_volumes_skips_the_restore() {
        let r = Record {
            state: State::StackCreated,
            ..request("a", "b", 0)
        };
        let (n, a) = next(&r, &obs(1, false));
        assert_eq!(a, Action::Wait);
        assert_eq!(n.state, State::Restored);
    }

    #[test]
    fn verification_waits_then_fails_after_the_deadline_keeping_the_old_stack() {
        let r = Record {
            state: State::Restored,
            since: Some(100),
            snapshot: Some("s".into()),
            ..request("a", "b", 0)
        };
        assert_eq!(next(&r, &obs(150, false)).1, Action::Wait);
        let (f, a) = next(&r, &obs(161, false));
        assert_eq!(a, Action::Nothing);
        assert_eq!(f.state, State::Failed);
        let msg = f.error.unwrap();
        assert!(msg.contains("stack a still serves"), "{msg}");
        let (v, a) = next(&r, &obs(161, true));
        assert_eq!((v.state, a), (State::Verified, Action::RemoveOld));
    }

    #[test]
    fn a_failed_step_records_what_failed() {
        let r = request("a", "b", 0);
        let f = failed(&r, &Action::TakeSnapshot, "disk full", 3);
        assert_eq!(f.state, State::Failed);
        assert_eq!(
            f.error.as_deref(),
            Some("snapshot of the old volumes failed: disk full")
        );
        assert!(!f.state.in_progress());
        assert!(State::Restored.in_progress());
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("Nope"), None);
    }
}

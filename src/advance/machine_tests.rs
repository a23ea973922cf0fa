//! Every transition of the advance machine, and resuming from each persisted state.

use super::*;

const OLD: &str = "3.5.3+1.24.2";
const NEW: &str = "3.6.0+1.24.2";
const MAJOR: &str = "4.0.0+1.25.0";

fn obs(declared: &str, live: Option<&str>, phase: &str) -> Observed {
    Observed {
        declared: declared.into(),
        live: live.map(String::from),
        verdict: Standing {
            phase: Phase::parse(phase).expect("a phase"),
            reason: if phase == "Wedged" { "CrashLoop" } else { "" }.into(),
            message: if phase == "Wedged" {
                "app: exit 2: FATAL: cannot write config /etc/gitea/app.ini"
            } else {
                ""
            }
            .into(),
        },
        plan_pending: false,
        busy: false,
        now: 1000,
        deadline: Duration::from_secs(60),
        policy: Policy::default(),
    }
}

fn ready(last_good: &str) -> Record {
    Record {
        last_good: Some(last_good.into()),
        ..Default::default()
    }
}

fn in_state(state: State) -> Record {
    Record {
        state,
        last_good: Some(OLD.into()),
        target: Some(NEW.into()),
        snapshot: Some("snap1".into()),
        started_at: Some(900),
        since: Some(990),
        failed: matches!(
            state,
            State::RollingBack | State::Restoring | State::AdvanceFailed
        )
        .then(|| Failure {
            version: NEW.into(),
            reason: "CrashLoop".into(),
            message: "FATAL: cannot write config".into(),
            at_last_good: true,
        }),
    }
}

fn observe(r: &Record, o: &Observed) -> Next {
    step(r, o, &Event::Observe)
}

// --- cold deploys and steady state ---

#[test]
fn cold_deploy_is_not_an_advance_and_records_last_good_when_ready() {
    let fresh = Record::default();
    // Nothing live yet: the ordinary reconcile deploys; nothing to record.
    let n = observe(&fresh, &obs(NEW, None, "Progressing"));
    assert_eq!(
        (n.action, n.record.clone()),
        (Action::Nothing, fresh.clone())
    );
    assert_eq!(converge(&fresh, NEW, None).version, NEW);
    assert!(converge(&fresh, NEW, None).normal_apply);
    // Live at the declared version but not Ready: nothing yet.
    let n = observe(&fresh, &obs(NEW, Some(NEW), "Progressing"));
    assert_eq!(n.action, Action::Nothing);
    // Ready: last-good recorded.
    let n = observe(&fresh, &obs(NEW, Some(NEW), "Ready"));
    assert_eq!(n.action, Action::Record);
    assert_eq!(n.record, ready(NEW));
    assert_eq!(n.outcome, None);
}

#[test]
fn steady_ready_does_nothing() {
    let r = ready(OLD);
    let n = observe(&r, &obs(OLD, Some(OLD), "Ready"));
    assert_eq!((n.action, n.record), (Action::Nothing, r.clone()));
    assert_eq!(status(&r, &obs(OLD, Some(OLD), "Ready")), None);
}

#[test]
fn redeploy_after_nothing_was_live_is_not_an_advance() {
    // Last good OLD, stack gone (parked, removed), declared NEW: deploy NEW cold.
    let r = ready(OLD);
    let n = observe(&r, &obs(NEW, None, "Progressing"));
    assert_eq!(n.action, Action::Nothing);
    assert_eq!(converge(&r, NEW, None).version, NEW);
    // Once NEW is live it is no advance either; its Ready records it.
    assert!(converge(&r, NEW, Some(NEW)).normal_apply);
    let n = observe(&r, &obs(NEW, Some(NEW), "Ready"));
    assert_eq!(n.record, ready(NEW));
}

// --- starting an advance ---

#[test]
fn new_version_takes_a_snapshot_first() {
    let r = ready(OLD);
    let o = obs(NEW, Some(OLD), "Ready");
    let n = observe(&r, &o);
    assert_eq!(n.action, Action::TakeSnapshot);
    assert_eq!(n.record, r);
    // Meanwhile the old version is what is judged, and nothing else is applied.
    let t = converge(&r, NEW, Some(OLD));
    assert_eq!((t.version.as_str(), t.normal_apply), (OLD, false));
    assert_eq!(
        status(&r, &o).map(|s| s.reason),
        Some("Snapshotting".into())
    );
}

#[test]
fn no_record_but_something_live_advances_from_the_live_version() {
    let n = observe(&Record::default(), &obs(NEW, Some(OLD), "Ready"));
    assert_eq!(n.action, Action::TakeSnapshot);
    assert_eq!(n.record, ready(OLD));
}

#[test]
fn busy_snapshot_waits() {
    let mut o = obs(NEW, Some(OLD), "Ready");
    o.busy = true;
    let n = observe(&ready(OLD), &o);
    assert_eq!(n.action, Action::Nothing);
}

#[test]
fn snapshot_done_records_snapshot_taken() {
    let o = obs(NEW, Some(OLD), "Ready");
    let n = step(&ready(OLD), &o, &Event::Snapshot(Ok(Some("snap1".into()))));
    assert_eq!(n.action, Action::Record);
    assert_eq!(n.record.state, State::SnapshotTaken);
    assert_eq!(n.record.snapshot.as_deref(), Some("snap1"));
    assert_eq!(n.record.target.as_deref(), Some(NEW));
    assert_eq!(n.record.started_at, Some(1000));
    assert_eq!(n.record.last_good.as_deref(), Some(OLD));
}

#[test]
fn nothing_to_back_up_still_advances() {
    let o = obs(NEW, Some(OLD), "Ready");
    let n = step(&ready(OLD), &o, &Event::Snapshot(Ok(None)));
    assert_eq!(n.record.state, State::SnapshotTaken);
    assert_eq!(n.record.snapshot, None);
}

#[test]
fn failed_snapshot_stops_the_advance() {
    let o = obs(NEW, Some(OLD), "Ready");
    let n = step(
        &ready(OLD),
        &o,
        &Event::Snapshot(Err("pre-hook exited 1".into())),
    );
    assert_eq!(n.record.state, State::AdvanceFailed);
    assert_eq!(n.outcome, Some(Outcome::Failed));
    let f = n.record.failed.clone().expect("failure");
    assert_eq!(f.reason, "SnapshotFailed");
    assert!(f.message.contains("pre-hook exited 1"));
    assert!(f.at_last_good);
    // Nothing was applied: the old version stays converged.
    assert_eq!(converge(&n.record, NEW, Some(OLD)).version, OLD);
}

#[test]
fn backup_false_updates_at_once() {
    let mut o = obs(NEW, Some(OLD), "Ready");
    o.policy.backup = false;
    let n = observe(&ready(OLD), &o);
    assert_eq!(n.action, Action::ApplyVersion(NEW.into()));
    assert_eq!(n.record.state, State::Updating);
    assert_eq!(n.record.snapshot, None);
}

// --- major bumps ---

#[test]
fn major_bump_is_held() {
    let o = obs(MAJOR, Some(OLD), "Ready");
    let n = observe(&ready(OLD), &o);
    assert_eq!(n.record.state, State::Held);
    assert_eq!(n.record.target.as_deref(), Some(MAJOR));
    assert_eq!(n.action, Action::Record);
    let st = status(&n.record, &o).expect("status");
    assert_eq!(
        (st.phase.as_str(), st.reason.as_str()),
        ("Held", "MajorVersionBump")
    );
    assert!(st.message.contains(APPROVE_ANNOTATION), "{}", st.message);
    // Held keeps the old version converged.
    let t = converge(&n.record, MAJOR, Some(OLD));
    assert_eq!((t.version.as_str(), t.normal_apply), (OLD, true));
    // Held again next pass: no new write.
    let again = observe(&n.record, &o);
    assert_eq!((again.action, again.record), (Action::Nothing, n.record));
}

#[test]
fn major_bump_allowed_or_approved_proceeds() {
    let held = observe(&ready(OLD), &obs(MAJOR, Some(OLD), "Ready")).record;
    let mut o = obs(MAJOR, Some(OLD), "Ready");
    o.policy.allow_major = true;
    let n = observe(&held, &o);
    assert_eq!(n.action, Action::TakeSnapshot);
    assert_eq!(n.record, ready(OLD));
    let mut o = obs(MAJOR, Some(OLD), "Ready");
    o.policy.approved = Some(MAJOR.into());
    assert_eq!(observe(&held, &o).action, Action::TakeSnapshot);
    // An approval of another version does not count.
    o.policy.approved = Some("4.0.1+1.25.0".into());
    assert_eq!(observe(&held, &o).record.state, State::Held);
}

#[test]
fn held_then_declared_back_to_last_good_is_ready() {
    let held = observe(&ready(OLD), &obs(MAJOR, Some(OLD), "Ready")).record;
    let n = observe(&held, &obs(OLD, Some(OLD), "Ready"));
    assert_eq!(n.record, ready(OLD));
    assert_eq!(n.action, Action::Record);
}

#[test]
fn held_then_declared_minor_advances() {
    let held = observe(&ready(OLD), &obs(MAJOR, Some(OLD), "Ready")).record;
    let n = observe(&held, &obs(NEW, Some(OLD), "Ready"));
    assert_eq!(n.action, Action::TakeSnapshot);
}

#[test]
fn unparsable_versions_are_not_held() {
    let n = observe(&ready("main"), &obs("next", Some("main"), "Ready"));
    assert_eq!(n.action, Action::TakeSnapshot);
}

// --- update and verify ---

#[test]
fn snapshot_taken_applies_the_target() {
    let r = in_state(State::SnapshotTaken);
    let n = observe(&r, &obs(NEW, Some(OLD), "Ready"));
    assert_eq!(n.action, Action::ApplyVersion(NEW.into()));
    assert_eq!(n.record.state, State::Updating);
    assert_eq!(n.record.since, Some(1000));
    assert_eq!(converge(&r, NEW, Some(OLD)).version, NEW);
}

#[test]
fn updating_waits_for_its_apply_then_verifies() {
    let r = in_state(State::Updating);
    let mut o = obs(NEW, Some(NEW), "Progressing");
    o.busy = true;
    assert_eq!(observe(&r, &o).action, Action::Nothing);
    let n = step(&r, &o, &Event::Applied(Ok(())));
    assert_eq!(n.record.state, State::Verifying);
    assert_eq!(n.record.since, Some(1000));
}

#[test]
fn updating_apply_error_rolls_back() {
    let r = in_state(State::Updating);
    let n = step(
        &r,
        &obs(NEW, Some(OLD), "Progressing"),
        &Event::Applied(Err("no such image".into())),
    );
    assert_eq!(n.record.state, State::RollingBack);
    assert_eq!(n.action, Action::ApplyVersion(OLD.into()));
    assert_eq!(n.record.failed.unwrap().reason, "ApplyFailed");
}

#[test]
fn resume_updating_reapplies_while_the_plan_has_changes() {
    let r = in_state(State::Updating);
    let mut o = obs(NEW, Some(OLD), "Progressing");
    o.plan_pending = true;
    let n = observe(&r, &o);
    assert_eq!(n.action, Action::ApplyVersion(NEW.into()));
    assert_eq!(n.record, r);
    // Plan empty (the apply had finished before the restart): verify.
    o.plan_pending = false;
    assert_eq!(observe(&r, &o).record.state, State::Verifying);
}

#[test]
fn verifying_ready_records_last_good() {
    let r = in_state(State::Verifying);
    let n = observe(&r, &obs(NEW, Some(NEW), "Ready"));
    assert_eq!(n.record, ready(NEW));
    assert_eq!(n.outcome, Some(Outcome::Succeeded));
    assert_eq!(n.action, Action::Record);
}

#[test]
fn verifying_waits_while_progressing_within_the_deadline() {
    let r = in_state(State::Verifying);
    let o = obs(NEW, Some(NEW), "Progressing");
    let n = observe(&r, &o);
    assert_eq!((n.action, n.record.clone()), (Action::Nothing, r.clone()));
    let st = status(&r, &o).expect("status");
    assert_eq!(st.reason, "Verifying");
    assert!(st.message.contains("50s"), "{}", st.message);
    // Degraded is not a verdict yet either.
    assert_eq!(
        observe(&r, &obs(NEW, Some(NEW), "Degraded")).action,
        Action::Nothing
    );
}

#[test]
fn verifying_wedged_rolls_back_with_the_reason() {
    let r = in_state(State::Verifying);
    let n = observe(&r, &obs(NEW, Some(NEW), "Wedged"));
    assert_eq!(n.record.state, State::RollingBack);
    assert_eq!(n.action, Action::ApplyVersion(OLD.into()));
    let f = n.record.failed.clone().unwrap();
    assert_eq!((f.version.as_str(), f.reason.as_str()), (NEW, "CrashLoop"));
    assert!(f.message.contains("FATAL: cannot write config"));
    assert_eq!(n.outcome, None);
    assert_eq!(converge(&n.record, NEW, Some(NEW)).version, OLD);
}

#[test]
fn verifying_past_the_deadline_rolls_back() {
    let r = in_state(State::Verifying);
    let mut o = obs(NEW, Some(NEW), "Progressing");
    o.now = 990 + 61;
    let n = observe(&r, &o);
    assert_eq!(n.record.state, State::RollingBack);
    assert_eq!(n.record.failed.unwrap().reason, "DeadlineExceeded");
}

#[test]
fn verifying_invalid_rolls_back() {
    let r = in_state(State::Verifying);
    let n = observe(&r, &obs(NEW, Some(NEW), "Invalid"));
    assert_eq!(n.record.state, State::RollingBack);
}

#[test]
fn rollback_false_stops_at_advance_failed() {
    let r = in_state(State::Verifying);
    let mut o = obs(NEW, Some(NEW), "Wedged");
    o.policy.rollback = false;
    let n = observe(&r, &o);
    assert_eq!(n.record.state, State::AdvanceFailed);
    assert_eq!(n.outcome, Some(Outcome::Failed));
    assert!(!n.record.failed.clone().unwrap().at_last_good);
    // The failed version is left as it is (not fought over).
    assert_eq!(converge(&n.record, NEW, Some(NEW)).version, NEW);
    let st = status(&n.record, &o).unwrap();
    assert!(st.message.contains("not rolled back"), "{}", st.message);
}

// --- rollback and restore ---

#[test]
fn rolling_back_applies_last_good_then_waits_until_settled() {
    let r = in_state(State::RollingBack);
    let mut o = obs(NEW, Some(NEW), "Wedged");
    o.plan_pending = true;
    assert_eq!(observe(&r, &o).action, Action::ApplyVersion(OLD.into()));
    o.busy = true;
    assert_eq!(observe(&r, &o).action, Action::Nothing);
    o.busy = false;
    assert_eq!(
        step(&r, &o, &Event::Applied(Ok(()))).action,
        Action::Nothing
    );
    // Applied, still starting: wait.
    let mut o = obs(NEW, Some(OLD), "Progressing");
    assert_eq!(observe(&r, &o).action, Action::Nothing);
    // Running again: restore.
    o.verdict.phase = Phase::Ready;
    let n = observe(&r, &o);
    assert_eq!(n.action, Action::Restore("snap1".into()));
    assert_eq!(n.record.state, State::Restoring);
}

#[test]
fn rolling_back_restores_anyway_after_the_deadline() {
    let r = in_state(State::RollingBack);
    let mut o = obs(NEW, Some(OLD), "Progressing");
    o.now = 990 + 61;
    assert_eq!(observe(&r, &o).action, Action::Restore("snap1".into()));
}

#[test]
fn rolling_back_without_snapshot_ends_failed() {
    let mut r = in_state(State::RollingBack);
    r.snapshot = None;
    let o = obs(NEW, Some(OLD), "Ready");
    let n = observe(&r, &o);
    assert_eq!(n.record.state, State::AdvanceFailed);
    assert_eq!(n.outcome, Some(Outcome::Failed));
    let st = status(&n.record, &o).unwrap();
    assert_eq!(
        (st.phase.as_str(), st.reason.as_str()),
        ("AdvanceFailed", "CrashLoop")
    );
    assert!(
        st.message.contains("FATAL: cannot write config"),
        "{}",
        st.message
    );
    assert!(
        st.message.contains(&format!("running {OLD}")),
        "{}",
        st.message
    );
}

#[test]
fn restoring_ends_failed_with_a_note() {
    let r = in_state(State::Restoring);
    let o = obs(NEW, Some(OLD), "Ready");
    let n = step(&r, &o, &Event::Restored(Ok(())));
    assert_eq!(n.record.state, State::AdvanceFailed);
    assert_eq!(n.outcome, Some(Outcome::Failed));
    assert!(
        n.record
            .failed
            .clone()
            .unwrap()
            .message
            .contains("snapshot snap1 restored")
    );
    let n = step(&r, &o, &Event::Restored(Err("helper exited 1".into())));
    assert!(
        n.record
            .failed
            .unwrap()
            .message
            .contains("restoring snapshot snap1 failed: helper exited 1")
    );
}

#[test]
fn resume_restoring_restores_again() {
    let r = in_state(State::Restoring);
    let mut o = obs(NEW, Some(OLD), "Ready");
    assert_eq!(observe(&r, &o).action, Action::Restore("snap1".into()));
    o.busy = true;
    assert_eq!(observe(&r, &o).action, Action::Nothing);
    assert_eq!(converge(&r, NEW, Some(OLD)).version, OLD);
    assert!(!converge(&r, NEW, Some(OLD)).normal_apply);
}

// --- after a failure ---

#[test]
fn advance_failed_stays_until_the_version_changes() {
    let r = in_state(State::AdvanceFailed);
    let n = observe(&r, &obs(NEW, Some(OLD), "Ready"));
    assert_eq!((n.action, n.record.clone()), (Action::Nothing, r.clone()));
    let t = converge(&r, NEW, Some(OLD));
    assert_eq!((t.version.as_str(), t.normal_apply), (OLD, true));
    // Another version: a new advance from the last good.
    let n = observe(&r, &obs("3.6.1+1.24.3", Some(OLD), "Ready"));
    assert_eq!(n.action, Action::TakeSnapshot);
    assert_eq!(n.record, ready(OLD));
    // Back to the last good version: just Ready.
    let n = observe(&r, &obs(OLD, Some(OLD), "Ready"));
    assert_eq!(n.record, ready(OLD));
    assert_eq!(n.action, Action::Record);
}

#[test]
fn retry_clears_the_failure() {
    let r = in_state(State::AdvanceFailed);
    let cleared = retry(&r).expect("retry");
    assert_eq!(cleared, ready(OLD));
    assert_eq!(
        observe(&cleared, &obs(NEW, Some(OLD), "Ready")).action,
        Action::TakeSnapshot
    );
    assert_eq!(retry(&ready(OLD)), None);
}

// --- resume from every persisted state ---

#[test]
fn every_state_resumes_from_its_record_alone() {
    // After a restart nothing is in flight; each state picks up exactly where it was.
    for s in State::ALL {
        let r = in_state(s);
        let live = match s {
            State::Verifying | State::Updating => Some(NEW),
            _ => Some(OLD),
        };
        let declared = if s == State::Held { MAJOR } else { NEW };
        let mut r = r;
        if s == State::Held {
            r = Record {
                state: State::Held,
                last_good: Some(OLD.into()),
                target: Some(MAJOR.into()),
                ..Default::default()
            };
        }
        let mut o = obs(declared, live, "Progressing");
        o.plan_pending = matches!(s, State::Updating | State::RollingBack);
        let n = observe(&r, &o);
        let want = match s {
            State::Ready => Action::TakeSnapshot,
            State::Held => Action::Nothing,
            State::SnapshotTaken => Action::ApplyVersion(NEW.into()),
            State::Updating => Action::ApplyVersion(NEW.into()),
            State::Verifying => Action::Nothing,
            State::RollingBack => Action::ApplyVersion(OLD.into()),
            State::Restoring => Action::Restore("snap1".into()),
            State::AdvanceFailed => Action::Nothing,
        };
        assert_eq!(n.action, want, "resume from {s}");
        assert_eq!(State::parse(s.as_str()), Some(s));
    }
}

#[test]
fn declared_changes_mid_advance_wait_for_the_end() {
    // A new version declared while verifying: the running advance finishes first.
    let r = in_state(State::Verifying);
    let n = observe(&r, &obs("3.7.0+1", Some(NEW), "Progressing"));
    assert_eq!(n.action, Action::Nothing);
    assert_eq!(converge(&r, "3.7.0+1", Some(NEW)).version, NEW);
}

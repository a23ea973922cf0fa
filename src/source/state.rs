//! Pure: the last-good rule for a git source. A fetched revision whose manifests have any error
//! changes nothing (the last good revision keeps being reconciled; the bad one is recorded with
//! its errors); a later good revision becomes applied and clears the bad one; an unreachable
//! remote records the error and keeps everything, retried after [`next_retry`]. A force-push to an
//! older commit is just another revision: when it is good it becomes the applied one.

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::Serialize;

use crate::diag::Diagnostic;

/// One commit of the manifest repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// Full commit id.
    pub commit: String,
    /// First line of the commit message.
    pub summary: String,
}

/// Length of the commit abbreviation in file labels and messages.
pub const SHORT_LEN: usize = 12;

impl Revision {
    /// The abbreviated commit id (`SHORT_LEN` characters).
    pub fn short(&self) -> &str {
        short(&self.commit)
    }
}

/// The first [`SHORT_LEN`] characters of a commit id.
pub fn short(commit: &str) -> &str {
    commit.get(..SHORT_LEN).unwrap_or(commit)
}

/// What the source knows: the revision being reconciled, a rejected newer one, and the last
/// sync's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceState {
    /// The last good revision: the manifests the controller reconciles.
    pub applied: Option<Revision>,
    /// The fetched revision that was rejected, with every error found, while it is the remote's.
    pub bad: Option<(Revision, Vec<Diagnostic>)>,
    /// When the remote last answered (a fetch succeeded).
    pub last_sync: Option<SystemTime>,
    /// Why the last fetch failed (redacted); cleared by the next success.
    pub last_error: Option<String>,
    /// Fetches failed in a row (for [`next_retry`]).
    pub failures: u32,
}

/// What a sync means for the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new good revision: reconcile its manifests from now on.
    Apply(Revision),
    /// The fetched revision is the applied one: nothing changes.
    Unchanged,
    /// The fetched revision has errors: keep the applied one (see `SourceState::bad`).
    Rejected,
    /// The remote could not be fetched: keep the applied one (see `SourceState::last_error`).
    Unreachable,
}

impl SourceState {
    /// A state resuming at `applied` (e.g. the revision pinned in the cache before a restart).
    pub fn resumed(applied: Revision) -> SourceState {
        SourceState {
            applied: Some(applied),
            ..SourceState::default()
        }
    }

    /// The errors to report (those of the rejected revision, if any).
    pub fn manifest_errors(&self) -> &[Diagnostic] {
        self.bad.as_ref().map_or(&[], |(_, e)| e.as_slice())
    }

    /// A fetch failed with `error` (already redacted): everything else is kept.
    pub fn fetch_failed(&mut self, error: String) -> Decision {
        self.last_error = Some(error);
        self.failures = self.failures.saturating_add(1);
        Decision::Unreachable
    }

    /// A fetch returned `commit`. When that commit was decided already (it is the applied or
    /// the rejected one) the decision is returned and no load is needed; else `None`: load it
    /// and call [`SourceState::loaded`].
    pub fn fetched(&mut self, commit: &str, now: SystemTime) -> Option<Decision> {
        if self.applied.as_ref().is_some_and(|a| a.commit == commit) {
            self.answered(now);
            // The remote is back at the applied revision (e.g. a bad commit was reverted by a
            // force-push): nothing is rejected any more.
            self.bad = None;
            return Some(Decision::Unchanged);
        }
        if self.bad.as_ref().is_some_and(|(b, _)| b.commit == commit) {
            self.answered(now);
            return Some(Decision::Rejected);
        }
        None
    }

    /// The fetched `revision` loaded with `errors` (empty: good).
    pub fn loaded(
        &mut self,
        revision: Revision,
        errors: Vec<Diagnostic>,
        now: SystemTime,
    ) -> Decision {
        self.answered(now);
        if !errors.is_empty() {
            self.bad = Some((revision, errors));
            return Decision::Rejected;
        }
        self.bad = None;
        if self.applied.as_ref() == Some(&revision) {
            return Decision::Unchanged;
        }
        self.applied = Some(revision.clone());
        Decision::Apply(revision)
    }

    fn answered(&mut self, now: SystemTime) {
        self.last_sync = Some(now);
        self.last_error = None;
        self.failures = 0;
    }
}

/// Delay before the next fetch after `failures` failed fetches in a row: 5s doubling per failure
/// up to 160s, plus a random jitter of up to the same again (so at most 320s).
pub fn next_retry(failures: u32) -> Duration {
    let n = failures.saturating_sub(1).min(32) as usize;
    policy().build().nth(n).unwrap_or(Duration::from_secs(160))
}

fn policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(5))
        .with_max_delay(Duration::from_secs(160))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Pos;

    fn rev(c: &str) -> Revision {
        Revision {
            commit: c.repeat(40),
            summary: format!("commit {c}"),
        }
    }

    fn err() -> Vec<Diagnostic> {
        vec![Diagnostic::new(
            "m/a.yml@x",
            Pos { line: 3, col: 1 },
            "spec",
            "bad",
        )]
    }

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn first_good_revision_is_applied() {
        let mut s = SourceState::default();
        assert_eq!(s.fetched(&rev("a").commit, t(1)), None);
        assert_eq!(s.loaded(rev("a"), vec![], t(1)), Decision::Apply(rev("a")));
        assert_eq!(s.applied, Some(rev("a")));
        assert_eq!(s.last_sync, Some(t(1)));
    }

    #[test]
    fn bad_revision_changes_nothing_and_is_recorded() {
        let mut s = SourceState::resumed(rev("a"));
        assert_eq!(s.loaded(rev("b"), err(), t(2)), Decision::Rejected);
        assert_eq!(s.applied, Some(rev("a")));
        assert_eq!(s.bad, Some((rev("b"), err())));
        assert_eq!(s.manifest_errors(), err().as_slice());
        // Fetching the same bad commit again needs no load and keeps it rejected.
        assert_eq!(s.fetched(&rev("b").commit, t(3)), Some(Decision::Rejected));
        assert_eq!(s.last_sync, Some(t(3)));
        assert!(s.bad.is_some());
    }

    #[test]
    fn a_fixing_revision_recovers() {
        let mut s = SourceState::resumed(rev("a"));
        s.loaded(rev("b"), err(), t(2));
        assert_eq!(s.loaded(rev("c"), vec![], t(3)), Decision::Apply(rev("c")));
        assert_eq!(s.applied, Some(rev("c")));
        assert_eq!(s.bad, None);
        assert!(s.manifest_errors().is_empty());
    }

    #[test]
    fn back_at_the_applied_revision_clears_the_bad_one() {
        let mut s = SourceState::resumed(rev("a"));
        s.loaded(rev("b"), err(), t(2));
        assert_eq!(s.fetched(&rev("a").commit, t(3)), Some(Decision::Unchanged));
        assert_eq!(s.bad, None);
        assert_eq!(s.applied, Some(rev("a")));
    }

    #[test]
    fn force_push_to_an_older_commit_is_applied() {
        let mut s = SourceState::default();
        s.loaded(rev("a"), vec![], t(1));
        s.loaded(rev("b"), vec![], t(2));
        assert_eq!(s.fetched(&rev("a").commit, t(3)), None);
        assert_eq!(s.loaded(rev("a"), vec![], t(3)), Decision::Apply(rev("a")));
        assert_eq!(s.applied, Some(rev("a")));
    }

    #[test]
    fn unreachable_keeps_everything_and_counts() {
        let mut s = SourceState::resumed(rev("a"));
        s.loaded(rev("b"), err(), t(2));
        let before = s.clone();
        assert_eq!(s.fetch_failed("no route".into()), Decision::Unreachable);
        assert_eq!(s.fetch_failed("no route".into()), Decision::Unreachable);
        assert_eq!(s.applied, before.applied);
        assert_eq!(s.bad, before.bad);
        assert_eq!(s.last_sync, Some(t(2)));
        assert_eq!(s.last_error.as_deref(), Some("no route"));
        assert_eq!(s.failures, 2);
        // The next answer clears the error.
        s.fetched(&rev("a").commit, t(9));
        assert_eq!((s.last_error.as_deref(), s.failures), (None, 0));
    }

    #[test]
    fn same_revision_loaded_again_is_unchanged() {
        let mut s = SourceState::resumed(rev("a"));
        assert_eq!(s.loaded(rev("a"), vec![], t(1)), Decision::Unchanged);
    }

    #[test]
    fn retry_grows_with_jitter_and_is_capped() {
        for f in 0..40 {
            let d = next_retry(f);
            let base = Duration::from_secs((5u64 << f.saturating_sub(1).min(5)).min(160));
            assert!(d >= base && d < base * 2, "failures {f}: {d:?} vs {base:?}");
        }
        // Jitter: not every draw is the same.
        let draws: std::collections::BTreeSet<_> = (0..20).map(|_| next_retry(3)).collect();
        assert!(draws.len() > 1);
    }
}

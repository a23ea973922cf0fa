//! The work queue: which deployments need a reconcile, when, and which are in flight.
//!
//! A deployment is never reconciled twice at once; marking it dirty while it is in flight makes it
//! run again once it finishes (bursts of events coalesce into one more pass). A failed reconcile is
//! retried after an exponential backoff with jitter (backon), reset by the next success. Pure over
//! `Instant`s passed in, so it is unit-tested without a clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

#[derive(Debug)]
struct Entry {
    /// When it may run next (backoff); `None` means not waiting.
    not_before: Option<Instant>,
    failures: u32,
    backoff: Option<backon::ExponentialBackoff>,
}

/// Dirty set, in-flight set and per-deployment backoff.
#[derive(Debug, Default)]
pub struct Queue {
    dirty: BTreeSet<String>,
    in_flight: BTreeSet<String>,
    /// Marked while in flight: run again when it finishes.
    again: BTreeSet<String>,
    entries: BTreeMap<String, Entry>,
}

fn policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(300))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
}

impl Queue {
    /// Asks for a reconcile of `name` as soon as possible (after its backoff, if any).
    pub fn mark(&mut self, name: &str) {
        if self.in_flight.contains(name) {
            self.again.insert(name.to_string());
        } else {
            self.dirty.insert(name.to_string());
        }
    }

    /// Forgets a deployment (gone from the manifests).
    pub fn forget(&mut self, name: &str) {
        self.dirty.remove(name);
        self.again.remove(name);
        self.entries.remove(name);
    }

    /// The dirty deployments that may run now, at most `limit` minus those in flight; they move
    /// to in flight.
    pub fn take(&mut self, now: Instant, limit: usize) -> Vec<String> {
        let room = limit.saturating_sub(self.in_flight.len());
        let ready: Vec<String> = self
            .dirty
            .iter()
            .filter(|n| {
                self.entries
                    .get(*n)
                    .and_then(|e| e.not_before)
                    .is_none_or(|t| t <= now)
            })
            .take(room)
            .cloned()
            .collect();
        for n in &ready {
            self.dirty.remove(n);
            self.in_flight.insert(n.clone());
        }
        ready
    }

    /// A reconcile finished; `ok == false` schedules a retry after the next backoff delay.
    /// Returns that delay on failure.
    pub fn done(&mut self, name: &str, ok: bool, now: Instant) -> Option<Duration> {
        self.in_flight.remove(name);
        let mut delay = None;
        if ok {
            self.entries.remove(name);
        } else {
            let e = self.entries.entry(name.to_string()).or_insert(Entry {
                not_before: None,
                failures: 0,
                backoff: None,
            });
            e.failures += 1;
            let d = e
                .backoff
                .get_or_insert_with(|| policy().build())
                .next()
                .unwrap_or(Duration::from_secs(300));
            e.not_before = Some(now + d);
            delay = Some(d);
            self.dirty.insert(name.to_string());
        }
        if self.again.remove(name) {
            self.dirty.insert(name.to_string());
        }
        delay
    }

    /// When the next backed-off deployment may run (for the loop's sleep).
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.dirty
            .iter()
            .filter_map(|n| self.entries.get(n).and_then(|e| e.not_before))
            .min()
    }

    /// Consecutive failures of `name`.
    pub fn failures(&self, name: &str) -> u32 {
        self.entries.get(name).map(|e| e.failures).unwrap_or(0)
    }

    pub fn is_idle(&self) -> bool {
        self.dirty.is_empty() && self.in_flight.is_empty()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_is_never_taken_twice_and_bursts_coalesce() {
        let mut q = Queue::default();
        let now = Instant::now();
        q.mark("a");
        q.mark("a");
        assert_eq!(q.take(now, 4), ["a"]);
        // Events while in flight: not taken again now, but once more after it finishes.
        q.mark("a");
        q.mark("a");
        assert!(q.take(now, 4).is_empty());
        q.done("a", true, now);
        assert_eq!(q.take(now, 4), ["a"]);
        q.done("a", true, now);
        assert!(q.take(now, 4).is_empty());
        assert!(q.is_idle());
    }

    #[test]
    fn concurrency_is_bounded() {
        let mut q = Queue::default();
        let now = Instant::now();
        for n in ["a", "b", "c"] {
            q.mark(n);
        }
        assert_eq!(q.take(now, 2), ["a", "b"]);
        assert!(q.take(now, 2).is_empty());
        q.done("a", true, now);
        assert_eq!(q.take(now, 2), ["c"]);
    }

    #[test]
    fn failures_back_off_exponentially_and_success_resets() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        q.mark("a");
        q.take(t0, 1);
        let d1 = q.done("a", false, t0).unwrap();
        assert!(
            d1 >= Duration::from_secs(1) && d1 <= Duration::from_secs(3),
            "{d1:?}"
        );
        assert!(q.take(t0, 1).is_empty(), "waits out its backoff");
        assert_eq!(q.next_wakeup(), Some(t0 + d1));
        let t1 = t0 + d1;
        assert_eq!(q.take(t1, 1), ["a"]);
        let d2 = q.done("a", false, t1).unwrap();
        assert!(d2 >= Duration::from_secs(2), "grows: {d1:?} then {d2:?}");
        assert_eq!(q.failures("a"), 2);
        let t2 = t1 + d2;
        assert_eq!(q.take(t2, 1), ["a"]);
        q.done("a", true, t2);
        assert_eq!(q.failures("a"), 0);
        q.mark("a");
        assert_eq!(q.take(t2, 1), ["a"], "no backoff after a success");
    }
}

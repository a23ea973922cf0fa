//! The leader lease, pure: the record kept in labels of a Swarm config hearth owns
//! (`hearth-lease-<pool>`), and the decision each instance takes on every look at it. Only the
//! executor ([`super::leader`]) talks to Docker; everything here is plain data and tested without it.
//!
//! # The object
//! A Swarm config named [`lease_name`] with the labels `hearth.managed-by=hearth`,
//! `hearth.kind=lease`, `hearth.pool=<pool>`, the pool's own labels, and the record:
//! `hearth.lease.holder` (an identity, empty when released), `hearth.lease.renewed` (the holder's
//! wall clock, unix ms) and `hearth.lease.duration` (ms). It carries no `hearth.deployment` label,
//! so planning never removes it. It is created when absent (two creators race on the name: the
//! loser gets a conflict and reads the winner's record) and changed only with
//! `Client::update_config` at the version index it was read at: a compare-and-swap on Swarm's raft
//! store, so of two writers of one version exactly one wins.
//!
//! # Timing, for a lease duration `D` (default 15s)
//! - The leader renews every `D/3` (retrying every [`Timing::retry`] on errors).
//! - **Fencing by time**: a leader whose last successful renew was *sent* `2D/3` ago stops
//!   reconciling (and cuts its running applies) on its own, whatever Docker answers. Nobody else
//!   can take over before `D` after that send, so `D/3` (5s at the default) separates the two.
//! - A standby looks at the record every [`Timing::poll`] (`D/15`, 1s at the default) and takes
//!   over when the record is released (empty holder), absent, or unchanged (same version index)
//!   for `D` on the standby's own monotonic clock since it first saw that version. That rule
//!   compares no clocks between machines: only the rates of two clocks matter, so it is immune to
//!   skew. The first sighting of a version is no earlier than its write, which is no earlier than
//!   the leader's send, hence the `D/3` margin above.
//! - One wall-clock shortcut: a record whose `renewed` time is more than `2D` in the past is
//!   expired at once (a restart after a crash need not wait `D`). A live leader's record is never
//!   older than about `D/3`, so only a skew of more than `5D/3` (25s at the default) between two
//!   hosts' clocks could make a standby take a live lease; Swarm managers need far better clocks
//!   than that anyway (raft and TLS certificates).
//! - Hand-off after the leader dies: between `D - D/3` and `D + poll` after its death (it died
//!   somewhere in its renew period). After a clean shutdown the lease is released and the standby
//!   takes over at its next look (within `poll`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::render::{LABEL_MANAGED_BY, LABEL_POOL};

/// `hearth.kind=lease` marks the lease object.
pub const LABEL_KIND: &str = "hearth.kind";
pub const LABEL_HOLDER: &str = "hearth.lease.holder";
pub const LABEL_RENEWED: &str = "hearth.lease.renewed";
pub const LABEL_DURATION: &str = "hearth.lease.duration";
/// The data of the lease config (Swarm configs need some; only the labels change).
pub const LEASE_DATA: &[u8] = b"hearth leader lease: the labels hold the record\n";

/// The name of a pool's lease object (Swarm names: at most 64 characters).
pub fn lease_name(pool: &str) -> String {
    let name = format!("hearth-lease-{pool}");
    if name.len() <= 64 {
        return name;
    }
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(pool.as_bytes()));
    format!("{}-{}", &name[..64 - 13], &hash[..12])
}

/// The lease as read from Swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The holder's identity; empty when released.
    pub holder: String,
    /// When the holder last renewed, by its own wall clock (unix ms).
    pub renewed_ms: u64,
    pub duration_ms: u64,
    /// Swarm's version index of the object (the compare-and-swap token).
    pub version: u64,
}

impl LeaseRecord {
    /// Reads the record from a lease object's labels; `None` when they are not a lease's.
    pub fn from_labels(labels: &HashMap<String, String>, version: u64) -> Option<LeaseRecord> {
        if labels.get(LABEL_KIND).map(String::as_str) != Some("lease") {
            return None;
        }
        let num = |k: &str| {
            labels
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Some(LeaseRecord {
            holder: labels.get(LABEL_HOLDER).cloned().unwrap_or_default(),
            renewed_ms: num(LABEL_RENEWED),
            duration_ms: num(LABEL_DURATION),
            version,
        })
    }
}

/// The labels of a lease object held by `holder` (empty: released).
pub fn lease_labels(
    pool: &str,
    pool_labels: &[(String, String)],
    holder: &str,
    renewed_ms: u64,
    duration: Duration,
) -> HashMap<String, String> {
    let mut l: HashMap<String, String> = pool_labels.iter().cloned().collect();
    l.insert(LABEL_MANAGED_BY.into(), "hearth".into());
    l.insert(LABEL_KIND.into(), "lease".into());
    l.insert(LABEL_POOL.into(), pool.into());
    l.insert(LABEL_HOLDER.into(), holder.into());
    l.insert(LABEL_RENEWED.into(), renewed_ms.to_string());
    l.insert(LABEL_DURATION.into(), duration.as_millis().to_string());
    l
}

/// The intervals derived from the lease duration (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub duration: Duration,
    /// The leader renews this often.
    pub renew_every: Duration,
    /// After a failed renew, the leader tries again this soon.
    pub retry: Duration,
    /// A standby looks at the record this often.
    pub poll: Duration,
    /// The leader stops acting this long after its last successful renew was sent.
    pub fence_after: Duration,
}

impl Timing {
    pub fn new(duration: Duration) -> Timing {
        let clamp = |d: Duration| d.clamp(Duration::from_millis(50), Duration::from_secs(2));
        Timing {
            duration,
            renew_every: duration / 3,
            retry: clamp(duration / 15),
            poll: clamp(duration / 15),
            fence_after: duration * 2 / 3,
        }
    }
}

/// When this instance first saw a version of the record (its own monotonic clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    pub version: u64,
    pub at: Instant,
}

/// What to do after a look at the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Take the lease: create it when absent, else write ourselves in at the version read.
    Acquire,
    /// Ours: write a fresh renew time at the version read.
    Renew,
    /// Someone else holds it until `until` (our monotonic clock) unless it renews.
    StandBy { leader: String, until: Instant },
    /// We believed we led, but the record names someone else: stop acting now.
    LostLeadership { leader: String },
}

/// The time now, on both clocks.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub wall_ms: u64,
    pub mono: Instant,
}

/// The decision for `me` given the record read (`None`: no lease object), whether we believe we
/// lead, and when we first saw the record's version (`seen`, the caller's memory of earlier looks;
/// a different version counts as first seen now).
pub fn decide(
    record: Option<&LeaseRecord>,
    me: &str,
    leading: bool,
    seen: Option<Sighting>,
    now: Now,
    timing: &Timing,
) -> Decision {
    let Some(r) = record else {
        // Gone while someone held it (deleted by hand?): a standby still waits out the lease it
        // last saw, the holder recreates it at once.
        return match seen {
            Some(s) if !leading && now.mono < s.at + timing.duration => Decision::StandBy {
                leader: String::new(),
                until: s.at + timing.duration,
            },
            _ => Decision::Acquire,
        };
    };
    if r.holder == me {
        return Decision::Renew;
    }
    if r.holder.is_empty() {
        return Decision::Acquire;
    }
    if leading {
        return Decision::LostLeadership {
            leader: r.holder.clone(),
        };
    }
    // The holder's own duration counts (another build may run with a longer lease), never less
    // than ours.
    let duration = Duration::from_millis(r.duration_ms).max(timing.duration);
    let first_seen = match seen {
        Some(s) if s.version == r.version && s.at <= now.mono => s.at,
        _ => now.mono,
    };
    let until = first_seen + duration;
    let stale_by_wall = now.wall_ms > r.renewed_ms.saturating_add(2 * duration.as_millis() as u64);
    if now.mono >= until || stale_by_wall {
        return Decision::Acquire;
    }
    Decision::StandBy {
        leader: r.holder.clone(),
        until,
    }
}

/// Whether a leader whose last successful renew was sent at `last_ok` must stop acting at `now`.
pub fn fenced(last_ok: Instant, now: Instant, timing: &Timing) -> bool {
    now >= last_ok + timing.fence_after
}

/// How long to wait before the next look.
pub fn next_look(decision: &Decision, now: Instant, timing: &Timing) -> Duration {
    match decision {
        Decision::Renew | Decision::Acquire => timing.renew_every,
        Decision::StandBy { until, .. } => timing
            .poll
            .min(until.saturating_duration_since(now))
            .max(Duration::from_millis(10)),
        Decision::LostLeadership { .. } => timing.poll,
    }
}

/// The default identity: `<hostname>:<pid>`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "hearth".to_string());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);
    const T0_MS: u64 = 1_700_000_000_000;

    fn rec(holder: &str, renewed_ms: u64, version: u64) -> LeaseRecord {
        LeaseRecord {
            holder: holder.into(),
            renewed_ms,
            duration_ms: D.as_millis() as u64,
            version,
        }
    }

    fn at(base: Instant, after: Duration) -> Now {
        Now {
            wall_ms: T0_MS + after.as_millis() as u64,
            mono: base + after,
        }
    }

    #[test]
    fn absent_or_released_is_acquired_and_our_own_is_renewed() {
        let t = Timing::new(D);
        let now = at(Instant::now(), Duration::ZERO);
        assert_eq!(decide(None, "a", false, None, now, &t), Decision::Acquire);
        let released = rec("", 0, 7);
        assert_eq!(
            decide(Some(&released), "a", false, None, now, &t),
            Decision::Acquire
        );
        let mine = rec("a", T0_MS, 7);
        assert_eq!(
            decide(Some(&mine), "a", true, None, now, &t),
            Decision::Renew
        );
        // Even when we did not know we held it (our write went through, the answer got lost).
        assert_eq!(
            decide(Some(&mine), "a", false, None, now, &t),
            Decision::Renew
        );
    }

    #[test]
    fn a_lease_deleted_under_a_live_holder_is_waited_out_by_standbys() {
        let t = Timing::new(D);
        let base = Instant::now();
        let seen = Some(Sighting {
            version: 7,
            at: base,
        });
        let now = at(base, Duration::from_secs(3));
        assert_eq!(
            decide(None, "a", false, seen, now, &t),
            Decision::StandBy {
                leader: String::new(),
                until: base + D
            }
        );
        assert_eq!(decide(None, "a", true, seen, now, &t), Decision::Acquire);
        assert_eq!(
            decide(None, "a", false, seen, at(base, D), &t),
            Decision::Acquire
        );
    }

    #[test]
    fn a_live_holder_keeps_it_and_a_leader_that_was_replaced_steps_down() {
        let t = Timing::new(D);
        let base = Instant::now();
        let r = rec("b", T0_MS, 7);
        let d = decide(Some(&r), "a", false, None, at(base, Duration::ZERO), &t);
        assert_eq!(
            d,
            Decision::StandBy {
                leader: "b".into(),
                until: base + D
            }
        );
        assert_eq!(
            decide(Some(&r), "a", true, None, at(base, Duration::ZERO), &t),
            Decision::LostLeadership { leader: "b".into() }
        );
    }

    #[test]
    fn a_standby_takes_over_after_the_duration_on_its_own_clock() {
        let t = Timing::new(D);
        let base = Instant::now();
        let r = rec("b", T0_MS, 7);
        let seen = Some(Sighting {
            version: 7,
            at: base,
        });
        let just_before = at(base, D - Duration::from_millis(1));
        assert!(matches!(
            decide(Some(&r), "a", false, seen, just_before, &t),
            Decision::StandBy { .. }
        ));
        assert_eq!(
            decide(Some(&r), "a", false, seen, at(base, D), &t),
            Decision::Acquire
        );
        // A renewal (new version) restarts the count, whatever the clocks say.
        let renewed = rec("b", T0_MS + 5_000, 8);
        assert!(matches!(
            decide(Some(&renewed), "a", false, seen, at(base, D), &t),
            Decision::StandBy { until, .. } if until == base + D + D
        ));
    }

    #[test]
    fn skewed_clocks_do_not_let_a_standby_take_a_live_lease() {
        let t = Timing::new(D);
        let base = Instant::now();
        // The standby's clock is 20s ahead of the leader's: the record looks 20s old, which is
        // past D but not past the stale limit (2D); the standby waits on its own clock.
        let r = rec("b", T0_MS, 7);
        let now = Now {
            wall_ms: T0_MS + 20_000,
            mono: base,
        };
        assert!(matches!(
            decide(Some(&r), "a", false, None, now, &t),
            Decision::StandBy { .. }
        ));
        // A record older than 2D by the wall clock is a dead leader's: no need to wait.
        let now = Now {
            wall_ms: T0_MS + 30_001,
            mono: base,
        };
        assert_eq!(
            decide(Some(&r), "a", false, None, now, &t),
            Decision::Acquire
        );
    }

    #[test]
    fn the_holders_longer_duration_counts() {
        let t = Timing::new(D);
        let base = Instant::now();
        let mut r = rec("b", T0_MS, 7);
        r.duration_ms = 60_000;
        let seen = Some(Sighting {
            version: 7,
            at: base,
        });
        assert!(matches!(
            decide(Some(&r), "a", false, seen, at(base, D), &t),
            Decision::StandBy { .. }
        ));
        assert_eq!(
            decide(
                Some(&r),
                "a",
                false,
                seen,
                at(base, Duration::from_secs(60)),
                &t
            ),
            Decision::Acquire
        );
    }

    #[test]
    fn the_leader_fences_itself_well_before_anyone_can_take_over() {
        let t = Timing::new(D);
        assert_eq!(t.renew_every, Duration::from_secs(5));
        assert_eq!(t.fence_after, Duration::from_secs(10));
        assert_eq!(t.poll, Duration::from_secs(1));
        let sent = Instant::now();
        assert!(!fenced(sent, sent + Duration::from_millis(9_999), &t));
        assert!(fenced(sent, sent + t.fence_after, &t));
        // The earliest takeover by a standby is D after the write it saw, which came after the
        // send: the margin is D/3, and the leader misses at least one renew before fencing.
        assert!(t.fence_after + t.duration / 3 <= t.duration);
        assert!(t.fence_after > t.renew_every);
    }

    #[test]
    fn a_standby_looks_again_at_expiry_at_the_latest() {
        let t = Timing::new(D);
        let now = Instant::now();
        let d = Decision::StandBy {
            leader: "b".into(),
            until: now + Duration::from_millis(300),
        };
        assert_eq!(next_look(&d, now, &t), Duration::from_millis(300));
        let d = Decision::StandBy {
            leader: "b".into(),
            until: now + D,
        };
        assert_eq!(next_look(&d, now, &t), t.poll);
        assert_eq!(next_look(&Decision::Renew, now, &t), t.renew_every);
    }

    #[test]
    fn labels_round_trip_and_names_fit_swarm() {
        let pool_labels = vec![("hearth.test".to_string(), "x".to_string())];
        let l = lease_labels("p", &pool_labels, "h:1", 42, D);
        assert_eq!(l.get("hearth.test").map(String::as_str), Some("x"));
        assert_eq!(l.get(LABEL_POOL).map(String::as_str), Some("p"));
        assert!(!l.contains_key(crate::render::LABEL_DEPLOYMENT));
        assert_eq!(
            LeaseRecord::from_labels(&l, 9),
            Some(LeaseRecord {
                holder: "h:1".into(),
                renewed_ms: 42,
                duration_ms: 15_000,
                version: 9
            })
        );
        let mut other = l.clone();
        other.remove(LABEL_KIND);
        assert_eq!(LeaseRecord::from_labels(&other, 9), None);
        assert_eq!(lease_name("ci"), "hearth-lease-ci");
        let long = lease_name(&"x".repeat(80));
        assert_eq!(long.len(), 64);
        assert_ne!(long, lease_name(&"x".repeat(81)));
    }

    #[test]
    fn identity_is_host_and_pid() {
        let id = default_identity();
        assert!(id.ends_with(&format!(":{}", std::process::id())), "{id}");
    }
}

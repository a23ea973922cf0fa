//! What the controller knows about each deployment, shared with the reporting side (metrics, API,
//! status page): phase, reason and message, conditions with the time they last changed, versions,
//! drift, probe results, and the last reconcile.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::assess::{Condition, Phase, ServiceProgress};
use crate::plan::DriftItem;

/// Seconds since the Unix epoch.
pub fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

use crate::assess::rfc3339::serialize as rfc3339;

/// A probe's latest result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeStatus {
    pub name: String,
    pub ok: bool,
    pub message: String,
}

/// Everything reported about one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct DeploymentStatus {
    pub name: String,
    pub recipe: String,
    pub role: String,
    pub stack: String,
    pub domain: String,
    pub desired_version: String,
    pub live_version: Option<String>,
    pub phase: Phase,
    pub reason: String,
    pub message: String,
    /// When the phase last changed.
    #[serde(serialize_with = "rfc3339")]
    pub since: Option<SystemTime>,
    /// Each with the time its status last changed.
    pub conditions: Vec<Condition>,
    pub drift: Vec<DriftItem>,
    pub probes: Vec<ProbeStatus>,
    pub services: Vec<ServiceProgress>,
    #[serde(serialize_with = "rfc3339")]
    pub last_reconcile: Option<SystemTime>,
    pub last_error: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub last_ready: Option<SystemTime>,
}

impl DeploymentStatus {
    /// Sets the phase, keeping `since` when it did not change.
    pub fn set_phase(&mut self, phase: Phase, reason: &str, message: &str, now: SystemTime) {
        if self.phase != phase || self.since.is_none() {
            self.since = Some(now);
        }
        self.phase = phase;
        self.reason = reason.to_string();
        self.message = message.to_string();
        if phase == Phase::Ready {
            self.last_ready = Some(now);
        }
    }

    /// Replaces the conditions, keeping each one's `since` while its status is unchanged.
    pub fn set_conditions(&mut self, mut new: Vec<Condition>, now: SystemTime) {
        for c in &mut new {
            // Several conditions may share a kind (one `Conflict` per conflict): the same
            // message is the same condition.
            let old = self
                .conditions
                .iter()
                .find(|o| o.kind == c.kind && o.message == c.message)
                .or_else(|| self.conditions.iter().find(|o| o.kind == c.kind));
            c.since = match old {
                Some(o) if o.status == c.status => o.since,
                _ => Some(now),
            };
        }
        self.conditions = new;
    }
}

/// Counters the reporting side reads.
#[derive(Debug, Default)]
pub struct Counters {
    pub reconcile_ok: RwLock<BTreeMap<String, u64>>,
    pub reconcile_err: RwLock<BTreeMap<String, u64>>,
    pub actions: RwLock<BTreeMap<String, u64>>,
    /// Durations of reconcile passes of one deployment (plan + decide + apply), in seconds, not
    /// yet taken by the metrics side (which moves them into its histogram).
    pub reconcile_seconds: RwLock<Vec<f64>>,
    /// Failed tasks seen, by (deployment, service): each failed task counted once.
    pub task_failures: RwLock<BTreeMap<(String, String), u64>>,
    /// Version advances that ended, by (deployment, result: `succeeded` | `failed`).
    pub advances: RwLock<BTreeMap<(String, String), u64>>,
    /// Passes so far and the cost of the last one (`hearth_pass_*`).
    pub passes: RwLock<(u64, super::cost::Cost)>,
    /// Wall times of passes, in seconds, not yet taken by the metrics side (its histogram).
    pub pass_seconds: RwLock<Vec<f64>>,
}

impl Counters {
    pub fn reconciled(&self, deployment: &str, ok: bool) {
        let map = if ok {
            &self.reconcile_ok
        } else {
            &self.reconcile_err
        };
        *map.write()
            .expect("counters")
            .entry(deployment.to_string())
            .or_default() += 1;
    }

    pub fn reconcile_took(&self, seconds: f64) {
        let mut v = self.reconcile_seconds.write().expect("counters");
        if v.len() < 100_000 {
            v.push(seconds);
        }
    }

    pub fn task_failed(&self, deployment: &str, service: &str) {
        *self
            .task_failures
            .write()
            .expect("counters")
            .entry((deployment.to_string(), service.to_string()))
            .or_default() += 1;
    }

    pub fn advanced(&self, deployment: &str, result: &str) {
        *self
            .advances
            .write()
            .expect("counters")
            .entry((deployment.to_string(), result.to_string()))
            .or_default() += 1;
    }

    pub fn pass_done(&self, cost: super::cost::Cost) {
        {
            let mut v = self.pass_seconds.write().expect("counters");
            if v.len() < 100_000 {
                v.push(cost.wall);
            }
        }
        let mut p = self.passes.write().expect("counters");
        p.0 += 1;
        p.1 = cost;
    }

    pub fn action(&self, kind: &str) {
        *self
            .actions
            .write()
            .expect("counters")
            .entry(kind.to_string())
            .or_default() += 1;
    }
}

/// Where the manifests come from and how the last sync went (a git source; files report
/// `revision: "local"`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceReport {
    /// The remote, credentials redacted; empty for files.
    pub url: String,
    pub branch: String,
    /// The commit being reconciled.
    pub revision: Option<String>,
    pub summary: Option<String>,
    /// A fetched commit whose manifests do not validate, with its problems.
    pub bad_revision: Option<String>,
    pub bad_errors: Vec<String>,
    pub last_error: Option<String>,
}

/// State shared between the controller and whoever reports on it.
#[derive(Debug, Default)]
pub struct Shared {
    pub statuses: RwLock<BTreeMap<String, DeploymentStatus>>,
    /// Whether the last Docker call succeeded.
    pub docker_up: AtomicBool,
    /// A full resync has completed since start.
    pub synced: AtomicBool,
    /// Problems in the manifests as last loaded.
    pub manifest_errors: RwLock<Vec<String>>,
    /// Unix seconds of the last successful manifest load.
    pub source_synced_at: AtomicU64,
    pub counters: Counters,
    pub source: RwLock<SourceReport>,
    /// Wakes the git poller now (`POST /api/v1/source/refresh`).
    pub refresh: tokio::sync::Notify,
    /// The bearer token `POST /api/v1/source/refresh` needs; the endpoint is off without one.
    pub refresh_token: RwLock<Option<String>>,
    /// The Docker client, once connected (its per-operation request counts feed the metrics).
    pub client: std::sync::OnceLock<crate::swarm::Client>,
    /// Whether this instance acts on the swarm (the lease, `controller::leader`).
    pub leadership: tokio::sync::watch::Sender<Leadership>,
    /// The pool the lease is for, with its labels (set by the controller when it loads manifests).
    pub lease_pool: RwLock<Option<LeasePool>>,
}

/// Who acts on the swarm, as this instance knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// This instance may reconcile. True without a lease (a lone instance always acts).
    pub leading: bool,
    /// This instance's identity in the lease (`None`: no lease in use).
    pub identity: Option<String>,
    /// The holder of the lease as last read (`None`: not known, or no lease in use).
    pub leader: Option<String>,
    /// When leading under a lease: the instant after which this instance must send no more writes
    /// unless it renewed (its fence; see `lease::fenced`).
    pub fence_at: Option<std::time::Instant>,
}

impl Default for Leadership {
    fn default() -> Self {
        Leadership {
            leading: true,
            identity: None,
            leader: None,
            fence_at: None,
        }
    }
}

/// The pool a lease is for: its name and the labels its objects carry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeasePool {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl Shared {
    pub fn status(&self, name: &str) -> Option<DeploymentStatus> {
        self.statuses.read().expect("statuses").get(name).cloned()
    }

    pub fn phase(&self, name: &str) -> Option<Phase> {
        self.statuses
            .read()
            .expect("statuses")
            .get(name)
            .map(|s| s.phase)
    }

    pub fn is_docker_up(&self) -> bool {
        self.docker_up.load(Ordering::SeqCst)
    }

    /// Whether this instance may act on the swarm now.
    pub fn is_leader(&self) -> bool {
        self.leadership.borrow().leading
    }

    /// Whether a write may be sent now: only by the leader, and not past its fence (checked at the
    /// moment of the write, so a leader that stalled cannot send one more after its lease ran out).
    pub fn may_write(&self) -> Result<(), String> {
        let l = self.leadership.borrow();
        if !l.leading {
            return Err(format!(
                "this instance is a standby (leader: {})",
                l.leader.as_deref().unwrap_or("unknown")
            ));
        }
        match l.fence_at {
            Some(t) if std::time::Instant::now() >= t => {
                Err("the leader lease was not renewed in time".to_string())
            }
            _ => Ok(()),
        }
    }

    pub fn leadership(&self) -> Leadership {
        self.leadership.borrow().clone()
    }

    /// Records the pool the lease is for (the controller calls it on every manifest load).
    pub fn set_lease_pool(&self, pool: Option<LeasePool>) {
        let mut p = self.lease_pool.write().expect("lease pool");
        if *p != pool {
            *p = pool;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn since_moves_only_on_change() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let t1 = t0 + Duration::from_secs(5);
        let mut s = DeploymentStatus::default();
        s.set_phase(Phase::Progressing, "Applying", "", t0);
        s.set_phase(Phase::Progressing, "Converging", "", t1);
        assert_eq!(s.since, Some(t0));
        s.set_phase(Phase::Ready, "", "", t1);
        assert_eq!((s.since, s.last_ready), (Some(t1), Some(t1)));

        let c = |status| Condition::new("Ready", status, "", "");
        s.set_conditions(vec![c(false)], t0);
        s.set_conditions(vec![c(false)], t1);
        assert_eq!(s.conditions[0].since, Some(t0));
        s.set_conditions(vec![c(true)], t1);
        assert_eq!(s.conditions[0].since, Some(t1));
    }

    #[test]
    fn writes_are_fenced_by_leadership_and_the_lease_deadline() {
        let shared = Shared::default();
        // No lease: a lone instance always writes.
        assert!(shared.may_write().is_ok());
        let now = std::time::Instant::now();
        shared.leadership.send_modify(|l| {
            l.leading = true;
            l.fence_at = Some(now + Duration::from_secs(60));
        });
        assert!(shared.may_write().is_ok());
        // Past the fence, still "leading" as far as the lease task knows: refused.
        shared
            .leadership
            .send_modify(|l| l.fence_at = Some(now - Duration::from_millis(1)));
        let e = shared.may_write().unwrap_err();
        assert!(e.contains("not renewed in time"), "{e}");
        shared.leadership.send_modify(|l| {
            l.leading = false;
            l.leader = Some("host-b:7".into());
        });
        let e = shared.may_write().unwrap_err();
        assert!(e.contains("standby (leader: host-b:7)"), "{e}");
    }
}

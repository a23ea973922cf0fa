//! The lease executor: a task that looks at the pool's lease object (see [`super::lease`] for the
//! rules and margins), acquires or renews it with Swarm's compare-and-swap, and publishes in
//! [`Shared::leadership`] whether this instance may act. It steps down on its own when it cannot
//! renew in time (fencing by time), and [`LeaseTask::release`] hands the lease over on a clean
//! shutdown. Also: the status a standby reports for its deployments.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bollard::models::ConfigSpec;
use tokio::task::JoinHandle;

use super::lease::{self, Decision, LeaseRecord, Now, Sighting, Timing};
use super::status::{LeasePool, Shared};
use crate::swarm::{Client, SwarmError};

/// `hearth run --lease-duration/--identity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    pub duration: Duration,
    pub identity: String,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            duration: Duration::from_secs(15),
            identity: lease::default_identity(),
        }
    }
}

/// The running lease task.
pub struct LeaseTask {
    handle: JoinHandle<()>,
    client: Client,
    cfg: LeaseConfig,
    shared: Arc<Shared>,
}

/// Starts the lease task. Until it has the lease this instance does not lead.
pub fn spawn(client: Client, cfg: LeaseConfig, shared: Arc<Shared>) -> LeaseTask {
    shared.leadership.send_modify(|l| {
        l.leading = false;
        l.identity = Some(cfg.identity.clone());
        l.leader = None;
    });
    let handle = tokio::spawn(run(client.clone(), cfg.clone(), shared.clone()));
    LeaseTask {
        handle,
        client,
        cfg,
        shared,
    }
}

impl LeaseTask {
    /// Stops renewing and, when we hold the lease, releases it (empty holder) so a standby takes
    /// over at its next look. Call it once nothing is applying any more.
    pub async fn release(self) {
        self.handle.abort();
        let _ = self.handle.await;
        let was_leading = self.shared.is_leader();
        set_leading(&self.shared, false, None);
        if !was_leading {
            return;
        }
        let Some(pool) = self.shared.lease_pool.read().expect("lease pool").clone() else {
            return;
        };
        let release = async {
            let name = lease::lease_name(&pool.name);
            let cfg = self.client.inspect_config(&name).await?;
            let record = read_record(&cfg);
            if record.as_ref().map(|r| r.holder.as_str()) != Some(self.cfg.identity.as_str()) {
                return Ok(());
            }
            let version = record.map(|r| r.version).unwrap_or_default();
            let spec = lease_spec(&pool, "", 0, self.cfg.duration);
            self.client
                .update_config(cfg.id.as_deref().unwrap_or(&name), version, spec)
                .await
        };
        match tokio::time::timeout(Duration::from_secs(5), release).await {
            Ok(Ok(())) => tracing::info!("released the leader lease"),
            Ok(Err(e)) => tracing::warn!("cannot release the leader lease: {e}"),
            Err(_) => tracing::warn!("cannot release the leader lease: Docker did not answer"),
        }
    }
}

fn set_leading(shared: &Shared, leading: bool, leader: Option<String>) {
    shared.leadership.send_if_modified(|l| {
        let changed = l.leading != leading || l.leader != leader;
        l.leading = leading;
        l.leader = leader;
        changed
    });
}

fn now() -> Now {
    Now {
        wall_ms: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        mono: Instant::now(),
    }
}

fn lease_spec(pool: &LeasePool, holder: &str, renewed_ms: u64, duration: Duration) -> ConfigSpec {
    let labels = lease::lease_labels(&pool.name, &pool.labels, holder, renewed_ms, duration);
    ConfigSpec {
        name: Some(lease::lease_name(&pool.name)),
        labels: Some(labels),
        data: Some(crate::render::base64(lease::LEASE_DATA)),
        ..Default::default()
    }
}

fn read_record(cfg: &bollard::models::Config) -> Option<LeaseRecord> {
    let labels = cfg
        .spec
        .as_ref()
        .and_then(|s| s.labels.clone())
        .unwrap_or_default();
    let version = cfg.version.as_ref().and_then(|v| v.index).unwrap_or(0);
    LeaseRecord::from_labels(&labels, version)
}

/// What one look at the lease came to.
enum Outcome {
    /// We hold it; the successful write was sent at `sent`.
    Leading { sent: Instant },
    /// Someone else holds it (or just won a race); look again after `next`.
    Standing { leader: String, next: Duration },
}

/// Reads the lease, decides, writes when the decision says so.
async fn look(
    client: &Client,
    pool: &LeasePool,
    cfg: &LeaseConfig,
    leading: bool,
    seen: &mut Option<Sighting>,
    timing: &Timing,
) -> Result<Outcome, SwarmError> {
    let name = lease::lease_name(&pool.name);
    let (id, record) = match client.inspect_config(&name).await {
        Ok(c) => {
            let Some(r) = read_record(&c) else {
                return Err(SwarmError::Server {
                    op: "config_inspect",
                    status: 0,
                    message: format!(
                        "{name} exists and is not a hearth lease: remove or rename it"
                    ),
                });
            };
            (c.id.clone().unwrap_or_else(|| name.clone()), Some(r))
        }
        Err(e) if e.is_not_found() => (name.clone(), None),
        Err(e) => return Err(e),
    };
    let t = now();
    if let Some(r) = &record
        && seen.map(|s| s.version) != Some(r.version)
    {
        *seen = Some(Sighting {
            version: r.version,
            at: t.mono,
        });
    }
    let decision = lease::decide(record.as_ref(), &cfg.identity, leading, *seen, t, timing);
    match decision {
        Decision::Acquire | Decision::Renew => {
            let sent = Instant::now();
            let spec = lease_spec(pool, &cfg.identity, now().wall_ms, cfg.duration);
            let written = match &record {
                None => client.create_config(spec).await.map(|_| ()),
                Some(r) => client.update_config(&id, r.version, spec).await,
            };
            match written {
                Ok(()) => Ok(Outcome::Leading { sent }),
                // Another writer got there first: read again at once.
                Err(e) if e.is_conflict() => Ok(Outcome::Standing {
                    leader: String::new(),
                    next: Duration::ZERO,
                }),
                Err(e) => Err(e),
            }
        }
        Decision::StandBy { ref leader, .. } | Decision::LostLeadership { ref leader } => {
            let next = lease::next_look(&decision, t.mono, timing);
            Ok(Outcome::Standing {
                leader: leader.clone(),
                next,
            })
        }
    }
}

async fn run(client: Client, cfg: LeaseConfig, shared: Arc<Shared>) {
    let timing = Timing::new(cfg.duration);
    let mut seen: Option<Sighting> = None;
    // When leading: when the last successful write was sent.
    let mut last_ok: Option<Instant> = None;
    let mut pool: Option<LeasePool> = None;
    loop {
        let current = shared.lease_pool.read().expect("lease pool").clone();
        if current != pool {
            if last_ok.take().is_some() {
                tracing::warn!("the pool changed: stepping down from the old pool's lease");
            }
            set_leading(&shared, false, None);
            pool = current;
            seen = None;
        }
        let Some(p) = pool.clone() else {
            // The manifests are not loaded yet.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if let Some(ok) = last_ok
            && lease::fenced(ok, Instant::now(), &timing)
        {
            tracing::error!(
                "could not renew the leader lease for {:?}: stopping all changes before it can expire for others",
                timing.fence_after
            );
            last_ok = None;
            set_leading(&shared, false, None);
        }
        // A leader never waits on Docker past its fence; a standby not past one lease time.
        let limit = match last_ok {
            Some(ok) => (ok + timing.fence_after).saturating_duration_since(Instant::now()),
            None => timing.duration,
        };
        let leading = last_ok.is_some();
        let outcome =
            tokio::time::timeout(limit, look(&client, &p, &cfg, leading, &mut seen, &timing)).await;
        let pause = match outcome {
            Ok(Ok(Outcome::Leading { sent })) => {
                if !leading {
                    tracing::info!(identity = %cfg.identity, "acquired the leader lease of pool {}", p.name);
                }
                last_ok = Some(sent);
                // The fence first: a write checked after this sees the new deadline.
                shared.leadership.send_if_modified(|l| {
                    l.fence_at = Some(sent + timing.fence_after);
                    false
                });
                set_leading(&shared, true, Some(cfg.identity.clone()));
                timing
                    .renew_every
                    .saturating_sub(sent.elapsed())
                    .max(Duration::from_millis(10))
            }
            Ok(Ok(Outcome::Standing { leader, next })) => {
                if leading {
                    tracing::warn!("lost the leader lease to {leader}: stopping all changes");
                }
                last_ok = None;
                let known = (!leader.is_empty()).then_some(leader);
                if known.is_some() || leading {
                    set_leading(&shared, false, known);
                }
                next
            }
            Ok(Err(e)) => {
                tracing::warn!("leader lease: {e}");
                timing.retry
            }
            Err(_) => {
                tracing::warn!("leader lease: Docker did not answer in time");
                Duration::ZERO
            }
        };
        // Wake up at the fence at the latest.
        let pause = match last_ok {
            Some(ok) => {
                pause.min((ok + timing.fence_after).saturating_duration_since(Instant::now()))
            }
            None => pause,
        };
        tokio::time::sleep(pause).await;
    }
}

/// The reason a standby reports (phase `Pending`).
pub const STANDBY: &str = "Standby";

/// What a standby reports for each deployment: it does not look at the swarm, the leader does.
pub fn publish_standby<'a>(shared: &Shared, deployments: impl Iterator<Item = &'a str>) {
    let l = shared.leadership();
    let message = match l.leader.as_deref() {
        Some(leader) if !leader.is_empty() => format!("standby; leader is {leader}"),
        _ => "standby; waiting for the leader lease".to_string(),
    };
    let now = SystemTime::now();
    let mut statuses = shared.statuses.write().expect("statuses");
    for name in deployments {
        let st = statuses.entry(name.to_string()).or_default();
        st.name = name.to_string();
        if st.reason != STANDBY || st.message != message {
            st.set_phase(crate::assess::Phase::Pending, STANDBY, &message, now);
        }
    }
    drop(statuses);
    shared
        .synced
        .store(true, std::sync::atomic::Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_reports_who_leads() {
        let shared = Shared::default();
        set_leading(&shared, false, Some("host-b:42".into()));
        publish_standby(&shared, ["kc", "web"].into_iter());
        let st = shared.status("kc").expect("status");
        assert_eq!(
            (st.phase.as_str(), st.reason.as_str(), st.message.as_str()),
            ("Pending", "Standby", "standby; leader is host-b:42")
        );
        assert!(shared.status("web").is_some());
        set_leading(&shared, false, None);
        publish_standby(&shared, ["kc"].into_iter());
        assert_eq!(
            shared.status("kc").expect("status").message,
            "standby; waiting for the leader lease"
        );
    }

    #[test]
    fn the_lease_spec_names_the_pool_and_holder() {
        let pool = LeasePool {
            name: "ci".into(),
            labels: vec![("hearth.test".into(), "t".into())],
        };
        let spec = lease_spec(&pool, "me:1", 5, Duration::from_secs(15));
        assert_eq!(spec.name.as_deref(), Some("hearth-lease-ci"));
        let cfg = bollard::models::Config {
            spec: Some(spec),
            version: Some(bollard::models::ObjectVersion { index: Some(3) }),
            ..Default::default()
        };
        let r = read_record(&cfg).expect("a lease");
        assert_eq!((r.holder.as_str(), r.renewed_ms, r.version), ("me:1", 5, 3));
    }
}

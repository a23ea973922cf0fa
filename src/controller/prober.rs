//! The prober: runs every deployment's readiness probes on their own intervals, in a task of its
//! own so a slow probe (a TCP port that must stay up for `stableFor`) never holds up reconciling.
//! It probes against the controller's latest snapshot, records each probe's outcome, and tells the
//! controller when a deployment's probes changed from passing to failing or back.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::assess::ProbeOutcome;
use crate::manifest::Probe;
use crate::observed::Snapshot;
use crate::probe::{
    ProbeRunner, Round, Subject,
    target::{Reach, ReachPolicy},
};
use crate::swarm::Client;

use super::events::Affects;

/// What to probe: per deployment, where it lives and its probes.
pub type ProbeSpecs = Vec<(String, Subject, Vec<Probe>)>;

/// Latest outcomes by deployment.
pub type Outcomes = Arc<RwLock<HashMap<String, Vec<ProbeOutcome>>>>;

struct Set {
    key: String,
    runners: Vec<ProbeRunner>,
}

pub async fn run(
    client: Client,
    mut specs: watch::Receiver<ProbeSpecs>,
    snapshot: watch::Receiver<Option<Arc<Snapshot>>>,
    outcomes: Outcomes,
    notify: mpsc::Sender<Affects>,
    policy: ReachPolicy,
) {
    let mut sets: HashMap<String, Set> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut first = true;
    loop {
        tick.tick().await;
        // A new receiver has seen the value current at subscription: take that one too.
        if std::mem::take(&mut first) || specs.has_changed().unwrap_or(false) {
            let wanted = specs.borrow_and_update().clone();
            sets.retain(|name, _| wanted.iter().any(|(n, _, _)| n == name));
            for (name, subject, probes) in wanted {
                let key = format!("{subject:?}{probes:?}");
                if sets.get(&name).is_none_or(|s| s.key != key) {
                    let runners = ProbeRunner::for_deployment(&subject, &probes);
                    sets.insert(name.clone(), Set { key, runners });
                    outcomes.write().expect("outcomes").remove(&name);
                }
            }
            let mut o = outcomes.write().expect("outcomes");
            o.retain(|name, _| sets.contains_key(name));
        }
        let now = Instant::now();
        if !sets.values().any(|s| s.runners.iter().any(|r| r.due(now))) {
            continue;
        }
        let Some(snap) = snapshot.borrow().clone() else {
            continue;
        };
        let reach = match Reach::observe(&client, policy.clone()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("probes: cannot see task addresses: {e}");
                continue;
            }
        };
        let round = Round {
            snapshot: &snap,
            reach: &reach,
        };
        let client = &client;
        let runs = sets.iter_mut().map(|(name, set)| async move {
            let due: Vec<&mut ProbeRunner> =
                set.runners.iter_mut().filter(|r| r.due(now)).collect();
            for r in due {
                r.run(client, Round { ..round }).await;
            }
            (
                name.clone(),
                set.runners.iter().map(|r| r.outcome()).collect::<Vec<_>>(),
            )
        });
        let results = futures::future::join_all(runs).await;
        let mut changed = Vec::new();
        {
            let mut o = outcomes.write().expect("outcomes");
            for (name, now_outcomes) in results {
                let flags = |v: &[ProbeOutcome]| v.iter().map(|p| p.ok).collect::<Vec<_>>();
                let before = o.get(&name).map(|v| flags(v));
                if before.as_deref() != Some(flags(&now_outcomes).as_slice()) {
                    changed.push(name.clone());
                }
                o.insert(name, now_outcomes);
            }
        }
        if !changed.is_empty() && notify.send(Affects::Deployments(changed)).await.is_err() {
            return;
        }
    }
}

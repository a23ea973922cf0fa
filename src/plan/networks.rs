//! Planning a deployment's networks: a missing one is created, an external one must exist, one
//! under a desired name that hearth may not touch is a problem (an adopted stack's networks are
//! used as they are). Part of [`super::plan_indexed`]; see `docs/architecture.md`.

use std::collections::HashMap;

use super::actions::{Action, Ownership, Plan, Planning, Step};
use super::adopt;
use crate::observed::Snapshot;
use crate::render::StackSpec;

/// The networks' steps and problems; `false` when one the services need is missing or blocked.
pub(super) fn plan_networks(cx: &Planning, desired: &StackSpec, plan: &mut Plan) -> bool {
    let (intent, snap, networks) = (cx.intent, cx.ix.snap, &cx.ix.networks);
    let mut ok = true;
    for n in &desired.networks {
        match (n.external, networks.get(n.name.as_str())) {
            (true, None) => {
                ok = false;
                plan.problems.push(format!(
                    "external network {} does not exist (create it, e.g. `docker network create \
                     --driver overlay --attachable {}`)",
                    n.name, n.name
                ));
            }
            (true, Some(_)) => {}
            (false, Some(live)) => {
                // An adopted stack's networks are used as they are (their labels are immutable).
                let adoptable = intent.adopt
                    && live.owner == Ownership::Foreign
                    && adopt::in_namespace(network_labels(snap, &n.name), &n.name, intent.stack);
                if let Some(p) = cx.blocked("network", &n.name, live)
                    && !adoptable
                {
                    ok = false;
                    plan.problems.push(p);
                }
            }
            (false, None) => {
                if let Some(spec) = &n.spec {
                    plan.steps.push(Step {
                        action: Action::CreateNetwork {
                            name: n.name.clone(),
                            spec: spec.clone(),
                        },
                        reason: "missing".into(),
                        diffs: vec![],
                        heals_drift: false,
                    });
                }
            }
        }
    }
    ok
}

/// Labels of the live network named `name`.
fn network_labels<'a>(snap: &'a Snapshot, name: &str) -> Option<&'a HashMap<String, String>> {
    snap.networks
        .iter()
        .find(|n| n.name.as_deref() == Some(name))
        .and_then(|n| n.labels.as_ref())
}

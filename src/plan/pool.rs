//! Planning a whole pool: one [`Plan`] per deployment of the manifests (parked ones remove their
//! services), plus the removal of deployments gone from the manifests when the pool prunes.

use std::collections::BTreeSet;

use super::actions::{SnapIndex, plan_indexed};
use super::{Intent, Plan, plan_prune};
use crate::desired::DesiredPool;
use crate::manifest::{DesiredState, Loaded};
use crate::observed::Snapshot;
use crate::render::{LABEL_MANAGED_BY, LABEL_NAMESPACE};

/// Plans every rendered deployment (or only `only`) against `snap`.
pub fn plan_pool(
    desired: &DesiredPool,
    loaded: &Loaded,
    snap: &Snapshot,
    only: Option<&str>,
) -> Vec<Plan> {
    plan_pool_with(desired, loaded, snap, only, false)
}

/// [`plan_pool`]; `restart` applies the deferred changes of adopted services (`apply --restart`).
pub fn plan_pool_with(
    desired: &DesiredPool,
    loaded: &Loaded,
    snap: &Snapshot,
    only: Option<&str>,
    restart: bool,
) -> Vec<Plan> {
    let foreign = foreign_stacks(snap);
    let pool_name = loaded
        .pool
        .as_ref()
        .map(|p| p.metadata.name.as_str())
        .unwrap_or_default();
    let mut plans = Vec::new();
    let ix = SnapIndex::new(snap);
    let owners = crate::migrate::Owners::new(snap);
    let stacks = snap.stacks();
    let eligible = super::eligible_nodes(&snap.nodes);
    for d in &loaded.deployments {
        if only.is_some_and(|o| o != d.name()) {
            continue;
        }
        let Some(rendered) = desired.get(d.name()) else {
            continue;
        };
        let parked = d.spec.state == DesiredState::Parked;
        // Stateful services stay on the node holding their data (see `pin.rs`).
        let pinned = d
            .spec
            .pin_volumes
            .then(|| {
                let view = stacks
                    .get(rendered.stack.as_str())
                    .cloned()
                    .unwrap_or_default();
                super::pin_volumes_in(
                    &rendered.stack_spec,
                    &view,
                    eligible,
                    ix.recorded_pins(pool_name, d.name()),
                )
                .map(|p| p.0)
            })
            .flatten();
        let mut plan = plan_indexed(
            &Intent {
                pool: pool_name,
                deployment: d.name(),
                stack: &rendered.stack,
                desired: (!parked).then_some(pinned.as_ref().unwrap_or(&rendered.stack_spec)),
                secrets: &d.spec.secrets,
                secret_files: &rendered.secret_files,
                secret_hints: &rendered.secret_hints,
                adopt: d.spec.adopt,
                restart,
            },
            &ix,
        );
        let subject =
            crate::migrate::subject_of(pool_name, d, &rendered.stack, &rendered.stack_spec);
        if let Some(hold) = crate::migrate::decide(&owners, &subject) {
            crate::migrate::hold_plan(&mut plan, &hold);
            plans.push(plan);
            continue;
        }
        if let Some(hold) = failed_advance(snap, pool_name, d.name(), rendered) {
            crate::migrate::hold_plan(&mut plan, &hold);
            plans.push(plan);
            continue;
        }
        if foreign.contains(rendered.stack.as_str()) && !d.spec.adopt {
            plan.problems.insert(
                0,
                format!(
                    "a stack named {} that hearth does not manage is already on the swarm; \
                     give this deployment another domain, or take it over with `adopt: true`",
                    rendered.stack
                ),
            );
        }
        plans.push(plan);
    }
    let pruning = loaded.pool.as_ref().filter(|p| p.spec.defaults.prune);
    if let Some(pool) = pruning
        && only.is_none()
    {
        let known: BTreeSet<&str> = loaded.deployments.iter().map(|d| d.name()).collect();
        for orphan in super::orphans(snap, &pool.metadata.name, &known) {
            plans.push(plan_prune(&pool.metadata.name, &orphan, snap));
        }
    }
    plans
}

/// The hold of a deployment whose declared version failed to advance: its advance record is
/// `AdvanceFailed` for exactly that version, and the stack stays at its last good one. Without it
/// `hearth apply` would put the version that crash-looped back, and `hearth plan` would never be
/// clean for a pool whose controller holds the line (found by scripts/chaos).
fn failed_advance(
    snap: &Snapshot,
    pool: &str,
    deployment: &str,
    rendered: &crate::desired::Desired,
) -> Option<crate::migrate::Hold> {
    let stored = crate::advance::labels::find(&snap.configs, pool, deployment, &rendered.stack)?;
    let r = &stored.record;
    let f = r.failed.as_ref()?;
    (r.state == crate::advance::machine::State::AdvanceFailed && f.version == rendered.version)
        .then(|| crate::migrate::Hold::AdvanceFailed {
            version: f.version.clone(),
            last_good: r.last_good.clone(),
            reason: f.reason.clone(),
            at_last_good: f.at_last_good,
        })
}

/// Stacks on the swarm with at least one service that hearth does not manage.
pub fn foreign_stacks(snap: &Snapshot) -> BTreeSet<&str> {
    snap.services
        .iter()
        .filter_map(|s| {
            let labels = s.spec.as_ref()?.labels.as_ref()?;
            if labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some("hearth") {
                None
            } else {
                labels.get(LABEL_NAMESPACE).map(String::as_str)
            }
        })
        .collect()
}

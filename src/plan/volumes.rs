//! Planning a deployment's named volumes: the ones the services it creates mount, created with
//! their owner labels before those services. Part of [`super::plan_indexed`]; see
//! `docs/architecture.md`.

use std::collections::BTreeSet;

use super::actions::{Action, Plan, SnapIndex, Step};
use crate::render::StackSpec;

/// The named volumes the services this plan creates mount, when the snapshot does not list them:
/// created with their owner labels just before the first service (a volume of a service that
/// already runs is Docker's to create on the node of its task; see `docs/migrate.md`).
pub(super) fn plan_volumes(plan: &mut Plan, desired: &StackSpec, ix: &SnapIndex) {
    let created: BTreeSet<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::CreateService { spec, .. } => Some(spec),
            _ => None,
        })
        .flat_map(|spec| {
            spec.task_template
                .as_ref()
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.mounts.as_ref())
                .into_iter()
                .flatten()
                .filter(|m| m.typ == Some(bollard::models::MountType::VOLUME))
                .filter_map(|m| m.source.as_deref())
        })
        .collect();
    let steps: Vec<Step> = desired
        .volumes
        .iter()
        .filter(|v| !v.external && created.contains(v.name.as_str()))
        .filter(|v| !ix.volumes.contains(v.name.as_str()))
        .filter_map(|v| {
            Some(Step {
                action: Action::CreateVolume {
                    name: v.name.clone(),
                    spec: v.spec.clone()?,
                },
                reason: "missing (created with its owner labels before the services)".into(),
                diffs: vec![],
                heals_drift: false,
            })
        })
        .collect();
    if steps.is_empty() {
        return;
    }
    let at = plan
        .steps
        .iter()
        .position(|s| matches!(s.action, Action::CreateService { .. }))
        .unwrap_or(plan.steps.len());
    plan.steps.splice(at..at, steps);
}

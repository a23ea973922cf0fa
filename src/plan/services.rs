//! Planning a deployment's services: created when missing, updated when the desired spec changed
//! or the live one drifted (the drift items), adopted (see `adopt.rs`), and removed when parked or
//! no longer in the recipe. Part of [`super::plan_indexed`]; see `docs/architecture.md`.

use std::collections::BTreeSet;

use super::actions::{
    Action, DriftItem, Intent, Live, Ownership, Plan, Planning, SnapIndex, Step, labels_of,
    service_name,
};
use super::adopt::{self, LABEL_ADOPTED};
use super::diff::diff_ignoring;
use crate::observed::Snapshot;
use crate::render::{LABEL_SPEC_HASH, StackSpec};

/// A parked deployment: its services go (volumes, secrets and networks stay).
pub(super) fn plan_parked(cx: &Planning, plan: &mut Plan) {
    let my_services = cx.my_services();
    for s in my_services {
        let name = service_name(s);
        plan.steps.push(Step {
            action: Action::RemoveService {
                name: name.clone(),
                id: s.id.clone().unwrap_or_default(),
            },
            reason: "deployment is parked (volumes, secrets and networks are kept)".into(),
            diffs: vec![],
            heals_drift: false,
        });
    }
}

/// The desired services' steps and drift items; with `ok` false (a network, secret or config
/// they need is missing or blocked) no step is planned, problems and drift still are.
pub(super) fn plan_services(cx: &Planning, desired: &StackSpec, ok: bool, plan: &mut Plan) {
    let (intent, ix, snap) = (cx.intent, cx.ix, cx.ix.snap);
    let live_by_name = &ix.services;
    for s in &desired.services {
        let Some(live) = live_by_name.get(s.name.as_str()) else {
            if ok {
                plan.steps.push(Step {
                    action: Action::CreateService {
                        name: s.name.clone(),
                        spec: s.spec(),
                    },
                    reason: "missing".into(),
                    diffs: vec![],
                    heals_drift: false,
                });
            }
            continue;
        };
        let live_labels = live.spec.as_ref().and_then(|sp| sp.labels.as_ref());
        let owner = Live {
            id: live.id.clone().unwrap_or_default(),
            owner: labels_of(live_labels),
        };
        if intent.adopt
            && owner.owner == Ownership::Foreign
            && adopt::in_namespace(live_labels, &s.name, intent.stack)
        {
            if ok {
                match adopt_service(intent, snap, ix, s, live, &mut plan.deferred) {
                    Ok(step) => plan.steps.extend(step),
                    Err(e) => plan.problems.push(e),
                }
            }
            continue;
        }
        if let Some(p) = cx.blocked("service", &s.name, &owner) {
            plan.problems.push(p);
            continue;
        }
        if live_labels.is_some_and(|l| l.contains_key(LABEL_ADOPTED)) {
            // Adopted without a restart: deferred changes wait for a version change or --restart.
            if ok {
                match adopt_service(intent, snap, ix, s, live, &mut plan.deferred) {
                    Ok(step) => plan.steps.extend(step),
                    Err(e) => plan.problems.push(e),
                }
            }
            continue;
        }
        let live_hash = live_labels
            .and_then(|l| l.get(LABEL_SPEC_HASH))
            .cloned()
            .unwrap_or_default();
        let have = snap.live_spec_named(live, &ix.network_names);
        // A digest `docker stack deploy` pinned the image to is kept (src/plan/digest.rs).
        let mut want = s.spec_value();
        let kept_pin = super::digest::keep_live_pin(&mut want, &have);
        // The force-update counter only grows (`docker service update --force`, or a revive
        // below): the live one is kept, never drift, never reset.
        let live_force = have["TaskTemplate"]["ForceUpdate"].as_u64().unwrap_or(0);
        if live_force > 0
            && let Some(t) = want.get_mut("TaskTemplate").and_then(|t| t.as_object_mut())
        {
            t.insert("ForceUpdate".into(), live_force.into());
        }
        let hash_label = format!("Labels.{LABEL_SPEC_HASH}");
        let diffs = diff_ignoring(&want, &have, &|f| f == hash_label);
        let mut heals_drift = live_hash == s.spec_hash;
        // The force-update counter to write: the live one, one more to revive the service.
        let mut force = live_force;
        let reason = if !heals_drift {
            format!(
                "desired spec changed (spec hash {} -> {})",
                short(&live_hash),
                short(&s.spec_hash)
            )
        } else if !diffs.is_empty() {
            for d in &diffs {
                plan.drift.push(DriftItem {
                    service: s.key.clone(),
                    field: d.field.clone(),
                    desired: d.desired.clone(),
                    live: d.live.clone(),
                });
            }
            format!(
                "changed out of band: {}",
                diffs
                    .iter()
                    .map(|d| d.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else if let Some(why) = super::revive::stopped_for_good(
            live,
            live.id
                .as_deref()
                .and_then(|id| ix.tasks.get(id))
                .map_or(&[][..], Vec::as_slice),
            snap.taken_at,
        ) {
            // A revive, not a drift heal (`selfHeal: false` does not stop it).
            force += 1;
            heals_drift = false;
            why
        } else {
            continue;
        };
        if ok {
            plan.steps.push(Step {
                action: Action::UpdateService {
                    name: s.name.clone(),
                    id: owner.id,
                    version: live.version.as_ref().and_then(|v| v.index).unwrap_or(0),
                    spec: update_spec(s, &want, kept_pin, force),
                },
                reason,
                diffs,
                heals_drift,
            });
        }
    }
}

/// Hearth's services of this deployment that the recipe at this version no longer has.
pub(super) fn remove_undesired_services(cx: &Planning, desired: &StackSpec, plan: &mut Plan) {
    let my_services = cx.my_services();
    let desired_names: BTreeSet<&str> = desired.services.iter().map(|s| s.name.as_str()).collect();
    for s in my_services {
        let name = service_name(s);
        if !desired_names.contains(name.as_str()) {
            plan.steps.push(Step {
                action: Action::RemoveService {
                    name,
                    id: s.id.clone().unwrap_or_default(),
                },
                reason: "no longer in the recipe at this version".into(),
                diffs: vec![],
                heals_drift: false,
            });
        }
    }
}

/// The step for a service being adopted (foreign, of this stack) or adopted earlier (it carries
/// `hearth.adopted=<version>`): at the same version and without `restart`, only what restarts no
/// task is applied and the rest goes to `deferred`; at another version, or with `restart`, the
/// full desired spec (tasks restart, the mark goes).
fn adopt_service(
    intent: &Intent,
    snap: &Snapshot,
    ix: &SnapIndex,
    s: &crate::render::ServicePlan,
    live: &crate::observed::live::Service,
    deferred: &mut Vec<DriftItem>,
) -> Result<Option<Step>, String> {
    let labels = live.spec.as_ref().and_then(|sp| sp.labels.as_ref());
    let have = snap.live_spec_named(live, &ix.network_names);
    let mut want = s.spec_value();
    let kept_pin = super::digest::keep_live_pin(&mut want, &have);
    let hash_label = format!("Labels.{LABEL_SPEC_HASH}");
    let mark_label = format!("Labels.{LABEL_ADOPTED}");
    let diffs = diff_ignoring(&want, &have, &|f| f == hash_label || f == mark_label);
    let want_version = adopt::version_of(&want, intent.stack).unwrap_or_default();
    let adopted_at = labels.and_then(|l| l.get(LABEL_ADOPTED)).cloned();
    let live_version = adopted_at
        .clone()
        .or_else(|| adopt::version_of(&have, intent.stack))
        .unwrap_or_default();
    let id = live.id.clone().unwrap_or_default();
    let version = live.version.as_ref().and_then(|v| v.index).unwrap_or(0);
    if intent.restart || live_version != want_version {
        if adopted_at.is_some() && diffs.is_empty() && !intent.restart {
            return Ok(None);
        }
        let reason = if intent.restart {
            "--restart: the full desired spec, deferred changes included (tasks restart)".into()
        } else {
            format!(
                "adopted at version {live_version:?}, desired {want_version:?}: the new version is applied in full (tasks restart)"
            )
        };
        return Ok(Some(Step {
            action: Action::UpdateService {
                name: s.name.clone(),
                id,
                version,
                spec: update_spec(s, &want, kept_pin, 0),
            },
            reason,
            diffs,
            heals_drift: false,
        }));
    }
    let (now, later) = adopt::split(diffs);
    deferred.extend(later.into_iter().map(|d| DriftItem {
        service: s.key.clone(),
        field: d.field,
        desired: d.desired,
        live: d.live,
    }));
    if now.is_empty() {
        return Ok(None);
    }
    let raw = live
        .id
        .as_deref()
        .and_then(|i| snap.raw_spec(i))
        .ok_or_else(|| format!("service {}: the snapshot has no live spec to adopt", s.name))?;
    let spec = adopt::typed(&adopt::adoption_spec(&raw, &want, &want_version))
        .map_err(|e| format!("service {}: cannot adopt: {e}", s.name))?;
    let reason = if adopted_at.is_some() {
        "adopted: applying the changes that restart no task".to_string()
    } else {
        "adopt: hearth's labels on the live spec, task template kept (nothing restarts)".to_string()
    };
    Ok(Some(Step {
        action: Action::UpdateService {
            name: s.name.clone(),
            id,
            version,
            spec,
        },
        reason,
        diffs: now,
        heals_drift: false,
    }))
}

fn short(hash: &str) -> &str {
    if hash.is_empty() {
        "none"
    } else {
        &hash[..hash.len().min(12)]
    }
}

/// The spec an update writes: the desired one, or `want` (the desired one with the live digest pin
/// kept, src/plan/digest.rs) when `kept_pin`; with the force-update counter `force` when not 0
/// (it only grows: `docker service update --force`, or `revive`).
fn update_spec(
    s: &crate::render::ServicePlan,
    want: &serde_json::Value,
    kept_pin: bool,
    force: u64,
) -> bollard::models::ServiceSpec {
    let mut spec = kept_pin
        .then(|| serde_json::from_value(want.clone()).ok())
        .flatten()
        .unwrap_or_else(|| s.spec());
    if force > 0 {
        spec.task_template
            .get_or_insert_with(Default::default)
            .force_update = Some(force);
    }
    spec
}

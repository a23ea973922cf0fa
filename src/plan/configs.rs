//! Planning a deployment's configs: a missing one is created, an external one must exist, one
//! whose content changed under a recipe-given name is a problem, an adopted stack's configs are
//! labelled, and old versions no service uses are removed. Part of [`super::plan_indexed`]; see
//! `docs/architecture.md`.

use std::collections::{BTreeMap, BTreeSet};

use super::actions::{Action, Ownership, Plan, Planning, Step, labels_of};
use super::adopt;
use crate::render::{LABEL_DEPLOYMENT, LABEL_MANAGED_BY, LABEL_POOL, StackSpec};

/// The desired configs' steps and problems; `false` when one the services need is missing,
/// blocked or changed.
pub(super) fn plan_configs(cx: &Planning, desired: &StackSpec, plan: &mut Plan) -> bool {
    let (intent, ix, snap, configs) = (cx.intent, cx.ix, cx.ix.snap, &cx.ix.configs);
    let mut ok = true;
    for c in &desired.configs {
        match (c.external, configs.get(c.name.as_str())) {
            (true, None) => {
                ok = false;
                plan.problems
                    .push(format!("external config {} does not exist", c.name));
            }
            (_, Some(live)) => {
                let found = snap
                    .configs
                    .iter()
                    .find(|x| x.spec.as_ref().and_then(|sp| sp.name.as_deref()) == Some(&c.name));
                let live_labels = found.and_then(|x| x.spec.as_ref()?.labels.as_ref());
                if !c.external
                    && intent.adopt
                    && live.owner == Ownership::Foreign
                    && adopt::in_namespace(live_labels, &c.name, intent.stack)
                {
                    let want = c
                        .spec
                        .as_ref()
                        .and_then(|sp| sp.labels.clone())
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                    plan.steps.push(Step {
                        action: Action::LabelConfig {
                            name: c.name.clone(),
                            id: live.id.clone(),
                            version: found.and_then(|x| x.version.as_ref()?.index).unwrap_or(0),
                            labels: adopt::merged_labels(live_labels, &want)
                                .into_iter()
                                .collect(),
                        },
                        reason: "adopt: the existing config is kept and labelled".into(),
                        diffs: vec![],
                        heals_drift: false,
                    });
                } else if !c.external
                    && let Some(p) = cx.blocked("config", &c.name, live)
                {
                    ok = false;
                    plan.problems.push(p);
                } else if let Some(p) = config_content_changed(c, ix.owned_configs.get(&cx.key)) {
                    ok = false;
                    plan.problems.push(p);
                }
            }
            (false, None) => {
                if let Some(spec) = &c.spec {
                    plan.steps.push(Step {
                        action: Action::CreateConfig {
                            name: c.name.clone(),
                            spec: spec.clone(),
                        },
                        reason: "missing (configs are named by content hash)".into(),
                        diffs: vec![],
                        heals_drift: false,
                    });
                }
            }
        }
    }
    ok
}

/// With `spec.adopt`, the adopted stack's other configs (older versions, or named differently than
/// hearth names them): labelled too, so once no service uses them they go like hearth's own old
/// configs.
pub(super) fn adopt_stack_configs(cx: &Planning, desired: &StackSpec, plan: &mut Plan) {
    let (intent, snap) = (cx.intent, cx.ix.snap);
    if !intent.adopt {
        return;
    }
    let desired_names: BTreeSet<&str> = desired.configs.iter().map(|c| c.name.as_str()).collect();
    for c in &snap.configs {
        let Some(spec) = &c.spec else { continue };
        let name = spec.name.as_deref().unwrap_or_default();
        let labels = spec.labels.as_ref();
        if desired_names.contains(name)
            || labels_of(labels) != Ownership::Foreign
            || labels.and_then(|l| l.get(crate::render::LABEL_NAMESPACE))
                != Some(&intent.stack.to_string())
        {
            continue;
        }
        let mut want = BTreeMap::new();
        want.insert(LABEL_MANAGED_BY.to_string(), "hearth".to_string());
        want.insert(LABEL_DEPLOYMENT.to_string(), intent.deployment.to_string());
        want.insert(LABEL_POOL.to_string(), intent.pool.to_string());
        plan.steps.push(Step {
            action: Action::LabelConfig {
                name: name.to_string(),
                id: c.id.clone().unwrap_or_default(),
                version: c.version.as_ref().and_then(|v| v.index).unwrap_or(0),
                labels: adopt::merged_labels(labels, &want).into_iter().collect(),
            },
            reason: "adopt: a config of the stack hearth does not render; removed once no \
                     service uses it"
                .into(),
            diffs: vec![],
            heals_drift: false,
        });
    }
}

/// Old config versions: hearth's configs of this deployment that no desired service and no
/// live service spec references any more (never a hearth record: the advance state, a
/// migration's state, a volume record, all labelled `hearth.kind`).
pub(super) fn remove_old_configs(cx: &Planning, desired: &StackSpec, plan: &mut Plan) {
    let ix = cx.ix;
    let desired_configs: BTreeSet<&str> = desired.configs.iter().map(|c| c.name.as_str()).collect();
    let my_configs = ix.owned_configs.get(&cx.key).map(Vec::as_slice);
    for c in my_configs.unwrap_or_default() {
        let Some(spec) = &c.spec else { continue };
        let name = spec.name.clone().unwrap_or_default();
        if !spec
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(crate::advance::LABEL_KIND))
            && !desired_configs.contains(name.as_str())
            && !ix.referenced_configs.contains(name.as_str())
        {
            plan.steps.push(Step {
                action: Action::RemoveConfig {
                    name,
                    id: c.id.clone().unwrap_or_default(),
                },
                reason: "old config version no service uses".into(),
                diffs: vec![],
                heals_drift: false,
            });
        }
    }
}

/// A config under a recipe-given name whose live content differs: Swarm configs are immutable
/// (docker stack deploy fails with "only updates to Labels are allowed"), and hearth does not
/// invent another name for it (docs/compose-support.md, "Object names").
fn config_content_changed(
    c: &crate::render::ConfigPlan,
    mine: Option<&Vec<&bollard::models::Config>>,
) -> Option<String> {
    let want = c.spec.as_ref()?;
    let live = mine?
        .iter()
        .filter_map(|l| l.spec.as_ref())
        .find(|l| l.name.as_deref() == Some(c.name.as_str()))?;
    if live.data == want.data && live.templating == want.templating {
        return None;
    }
    Some(format!(
        "config {} exists with other content, and Swarm configs cannot change (docker: \"only \
         updates to Labels are allowed\"); give the recipe's configs.{}.name a new value (e.g. \
         bump its version variable), or leave `name:` out so hearth names it by content",
        c.name, c.key
    ))
}

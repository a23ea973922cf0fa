//! Planning a deployment's secrets: a missing one is created from its source (`spec.secrets`, a
//! recipe `file:`, or the recipe's `.env.sample` hint), or waited for when it must be made by hand;
//! an adopted stack's secrets are labelled and kept. Part of [`super::plan_indexed`]; see
//! `docs/architecture.md`.

use super::actions::{Action, Intent, Ownership, Plan, Planning, SecretValue, Step};
use super::adopt;
use crate::manifest::SecretSource;
use crate::recipe::hints::SecretHint;
use crate::render::{SecretPlan, StackSpec};

/// The secrets' steps, problems and pending reasons; `false` when one the services need is
/// missing.
pub(super) fn plan_secrets(cx: &Planning, desired: &StackSpec, plan: &mut Plan) -> bool {
    let (intent, snap, secrets) = (cx.intent, cx.ix.snap, &cx.ix.secrets);
    let mut ok = true;
    for s in &desired.secrets {
        let listed = intent.secrets.get(&s.key);
        match secrets.get(s.name.as_str()) {
            Some(live) => {
                let found = snap
                    .secrets
                    .iter()
                    .find(|x| x.spec.as_ref().and_then(|sp| sp.name.as_deref()) == Some(&s.name));
                let live_labels = found.and_then(|x| x.spec.as_ref()?.labels.as_ref());
                if intent.adopt
                    && live.owner == Ownership::Foreign
                    && adopt::in_namespace(live_labels, &s.name, intent.stack)
                {
                    // Adopted: used as it is (never generated again), labelled as hearth's.
                    plan.steps.push(Step {
                        action: Action::LabelSecret {
                            name: s.name.clone(),
                            id: live.id.clone(),
                            version: found.and_then(|x| x.version.as_ref()?.index).unwrap_or(0),
                            labels: adopt::merged_labels(live_labels, &s.labels)
                                .into_iter()
                                .collect(),
                        },
                        reason: "adopt: the existing secret is kept and labelled".into(),
                        diffs: vec![],
                        heals_drift: false,
                    });
                } else if listed.is_some()
                    && let Some(p) = cx.blocked("secret", &s.name, live)
                {
                    // It exists, so services can use it; report that hearth did not make it.
                    plan.problems.push(p);
                }
            }
            None => {
                let Some(source) = missing_secret_source(intent, s, listed, plan) else {
                    ok = false;
                    continue;
                };
                plan.steps.push(Step {
                    action: Action::CreateSecret {
                        name: s.name.clone(),
                        key: s.key.clone(),
                        labels: s.labels.clone(),
                        source,
                    },
                    reason: "missing".into(),
                    diffs: vec![],
                    heals_drift: false,
                });
            }
        }
    }
    ok
}

/// Where the value of a missing secret comes from; `None` when hearth must not or cannot create
/// it (a pending reason or a problem is recorded).
fn missing_secret_source(
    intent: &Intent,
    s: &SecretPlan,
    listed: Option<&SecretSource>,
    plan: &mut Plan,
) -> Option<SecretValue> {
    let hint = intent.secret_hints.get(&s.key);
    let must_exist = |why: &str| {
        format!(
            "secret {} (compose key {}) does not exist and hearth must not create it ({why}); create it by hand, e.g. `printf '%s' VALUE | docker secret create {} -`",
            s.name, s.key, s.name
        )
    };
    let source = match listed {
        Some(SecretSource::Generate(g)) => SecretValue::Generate {
            length: g.length,
            alphabet: g.charset.alphabet().to_vec(),
        },
        Some(SecretSource::File(p)) => SecretValue::File(p.clone()),
        Some(SecretSource::Existing) => {
            plan.pending
                .push(must_exist("listed as `existing` under spec.secrets"));
            return None;
        }
        // A recipe `file:` secret: created from the file, as docker stack deploy does.
        None if intent.secret_files.contains_key(&s.key) => {
            SecretValue::Data(intent.secret_files[&s.key].clone())
        }
        // Unlisted: as `abra app secret generate --all`, from the recipe's hint.
        None if hint.is_some() => match hint.and_then(SecretHint::generate) {
            Some(g) => SecretValue::Generate {
                length: g.length,
                alphabet: g.charset.alphabet().to_vec(),
            },
            None => {
                let h = hint.map(|h| (h.var.as_str(), h.line)).unwrap_or_default();
                plan.pending.push(must_exist(&format!(
                    "`# generate=false` on {} in the recipe's .env.sample, line {}",
                    h.0, h.1
                )));
                return None;
            }
        },
        None => {
            plan.problems.push(format!(
                "secret {} (compose key {}) does not exist; list `{}` under \
                 spec.secrets to have hearth create it",
                s.name, s.key, s.key
            ));
            return None;
        }
    };
    Some(source)
}

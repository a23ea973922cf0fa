//! Who owns what on the live swarm, and the holds that follow (pure, over one [`Snapshot`]).
//!
//! A deployment's stack is recorded on its objects: the stack namespace label
//! (`com.docker.stack.namespace`) plus hearth's ownership labels (`hearth.pool`,
//! `hearth.deployment`) on its services, networks, secrets and configs; hearth's records
//! (`hearth.kind`) do not count. [`Owners`] indexes that once per pass; [`decide`] says, for one
//! deployment, whether it may be converged as rendered or is held:
//! - its objects live in another stack than the one its manifests now give: `StackMoveHeld`
//!   (nothing is removed; `hearth migrate` moves it), or `Migrating` while a move runs;
//! - another deployment still holds the stack name it wants: `Pending` (`StackNameHeld`);
//! - a volume it would mount belongs to another deployment, or was migrated away:
//!   `VolumeOwnedByOther`, and nothing starts on it.

use std::collections::{BTreeSet, HashMap};

use super::machine::{Record, State};
use super::record::{parse_record, parse_volume_record};
use crate::advance::LABEL_KIND;
use crate::assess::Phase;
use crate::observed::Snapshot;
use crate::render::{LABEL_DEPLOYMENT, LABEL_MANAGED_BY, LABEL_NAMESPACE, LABEL_POOL};

type Key<'a> = (&'a str, &'a str);

/// A volume as far as ownership goes.
#[derive(Debug, Clone, Default)]
struct VolumeInfo<'a> {
    owner: Option<Key<'a>>,
    stack: Option<&'a str>,
}

/// The snapshot's ownership facts, indexed once per pass.
#[derive(Debug, Default)]
pub struct Owners<'a> {
    /// Stack namespace -> the hearth deployments with objects in it.
    stacks: HashMap<&'a str, BTreeSet<Key<'a>>>,
    /// Deployment -> the stacks its objects are in.
    deployments: HashMap<Key<'a>, BTreeSet<&'a str>>,
    volumes: HashMap<&'a str, VolumeInfo<'a>>,
    /// Volume -> the stack its data was migrated to (and by whom).
    migrated: HashMap<&'a str, (&'a str, Key<'a>)>,
    moves: HashMap<Key<'a>, Record>,
    /// The swarm has more than one node: the volume list (the connected node's only) does not
    /// show every node's volumes, so a volume not listed may still be on another node.
    partial_volumes: bool,
}

fn owner(l: Option<&HashMap<String, String>>) -> Option<Key<'_>> {
    let l = l?;
    if l.get(LABEL_MANAGED_BY).map(String::as_str) != Some("hearth") {
        return None;
    }
    Some((
        l.get(LABEL_POOL)?.as_str(),
        l.get(LABEL_DEPLOYMENT)?.as_str(),
    ))
}

impl<'a> Owners<'a> {
    pub fn new(snap: &'a Snapshot) -> Owners<'a> {
        let mut o = Owners::default();
        let mut add = |labels: Option<&'a HashMap<String, String>>| {
            let Some(l) = labels else { return };
            if l.contains_key(LABEL_KIND) {
                return;
            }
            if let (Some(k), Some(stack)) = (owner(Some(l)), l.get(LABEL_NAMESPACE)) {
                o.stacks.entry(stack).or_default().insert(k);
                o.deployments.entry(k).or_default().insert(stack);
            }
        };
        for s in &snap.services {
            add(s.spec.as_ref().and_then(|s| s.labels.as_ref()));
        }
        for n in &snap.networks {
            add(n.labels.as_ref());
        }
        for s in &snap.secrets {
            add(s.spec.as_ref().and_then(|s| s.labels.as_ref()));
        }
        for c in &snap.configs {
            let l = c.spec.as_ref().and_then(|s| s.labels.as_ref());
            add(l);
            let Some(l) = l else { continue };
            if let Some(k) = owner(Some(l)) {
                if let Some(r) = parse_record(l) {
                    o.moves.insert(k, r);
                }
                if let Some((volume, to)) = parse_volume_record(l) {
                    o.migrated.insert(volume, (to, k));
                }
            }
        }
        // Any second node, whatever its state now: a node that is down comes back with its
        // volumes (scripts/chaos saw the count of ready nodes drop to one right after a heal).
        o.partial_volumes = snap.nodes.len() > 1;
        for v in &snap.volumes {
            o.volumes.insert(
                &v.name,
                VolumeInfo {
                    owner: owner(Some(&v.labels)),
                    stack: v.labels.get(LABEL_NAMESPACE).map(String::as_str),
                },
            );
        }
        o
    }

    /// The stacks `deployment`'s objects are in.
    pub fn stacks_of(&self, pool: &str, deployment: &str) -> BTreeSet<&'a str> {
        self.deployments
            .get(&(pool, deployment))
            .cloned()
            .unwrap_or_default()
    }

    /// The deployment's move record, if any.
    pub fn move_of(&self, pool: &str, deployment: &str) -> Option<&Record> {
        // Moves are few: a scan keeps the key's lifetime out of the signature.
        self.moves
            .iter()
            .find(|(k, _)| k.0 == pool && k.1 == deployment)
            .map(|(_, r)| r)
    }

    /// The deployment's volumes in `stack` (by their namespace label), sorted.
    pub fn volumes_in(&self, pool: &str, deployment: &str, stack: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .volumes
            .iter()
            .filter(|(_, i)| i.owner == Some((pool, deployment)) && i.stack == Some(stack))
            .map(|(n, _)| n.to_string())
            .collect();
        v.sort();
        v
    }
}

/// One deployment as [`decide`] sees it.
#[derive(Debug, Clone)]
pub struct Subject<'s> {
    pub pool: &'s str,
    pub deployment: &'s str,
    /// The stack its manifests give now.
    pub stack: &'s str,
    /// The named volumes (not external) its services would mount.
    pub volumes: Vec<&'s str>,
    /// `advance.allowMigration`: a move starts without `hearth migrate`.
    pub allow_migration: bool,
}

/// Why a deployment is not converged as rendered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "hold", rename_all = "snake_case")]
pub enum Hold {
    /// It lives in stack `from`; its manifests give `to`. Nothing is removed until it is moved;
    /// `auto`: `advance.allowMigration` starts the move.
    StackMove {
        from: String,
        to: String,
        volumes: Vec<String>,
        auto: bool,
        /// The last move's failure, if it failed.
        failed: Option<String>,
    },
    /// A move runs (its record's state).
    Migrating {
        from: String,
        to: String,
        state: String,
    },
    /// A volume it would mount belongs to another deployment, or its data moved away.
    VolumeOwnedByOther { volume: String, owner: String },
    /// Another deployment still holds the stack name it wants.
    StackNameHeld { stack: String, holder: String },
    /// Its declared version failed to advance (the advance record says so) and the live stack
    /// stays at `last_good`: `plan` and `apply` do not put the failed version back.
    AdvanceFailed {
        version: String,
        last_good: Option<String>,
        reason: String,
        /// Rolled back (`false`: `advance.rollback: false` left the failed version live).
        at_last_good: bool,
    },
}

impl Hold {
    pub fn phase(&self) -> Phase {
        match self {
            Hold::StackMove { auto: true, .. } | Hold::Migrating { .. } => Phase::Progressing,
            Hold::StackMove { .. } | Hold::VolumeOwnedByOther { .. } => Phase::Held,
            Hold::StackNameHeld { .. } => Phase::Pending,
            Hold::AdvanceFailed { .. } => Phase::AdvanceFailed,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Hold::StackMove { auto: true, .. } | Hold::Migrating { .. } => "Migrating",
            Hold::StackMove { .. } => "StackMoveHeld",
            Hold::VolumeOwnedByOther { .. } => "VolumeOwnedByOther",
            Hold::StackNameHeld { .. } => "StackNameHeld",
            Hold::AdvanceFailed { .. } => "AdvanceFailed",
        }
    }

    pub fn message(&self, deployment: &str) -> String {
        match self {
            Hold::StackMove {
                from,
                to,
                volumes,
                auto,
                failed,
            } => {
                let data = if volumes.is_empty() {
                    "no named volumes".to_string()
                } else {
                    format!("its data is in volume(s) {}", volumes.join(", "))
                };
                let how = if *auto {
                    "advance.allowMigration: the move starts now".to_string()
                } else {
                    format!(
                        "run `hearth migrate -f PATH {deployment}` (or set \
                         advance.allowMigration: true) to move it with its data"
                    )
                };
                let failed = failed
                    .as_ref()
                    .map(|f| format!("; the last move failed: {f}"))
                    .unwrap_or_default();
                format!(
                    "stack move held: the deployment lives in stack {from}, its manifests now \
                     give stack {to}; hearth removes nothing; {data}; {how}{failed}"
                )
            }
            Hold::Migrating { from, to, state } => {
                format!("moving from stack {from} to stack {to}: {state}")
            }
            Hold::VolumeOwnedByOther { volume, owner } => format!(
                "volume {volume} belongs to {owner}; nothing starts on it (remove the volume \
                 once its data is no longer needed, or give this deployment another domain)"
            ),
            Hold::StackNameHeld { stack, holder } => format!(
                "waiting for stack name {stack}: {holder} still holds it (it is released when \
                 that deployment is moved: `hearth migrate`)"
            ),
            Hold::AdvanceFailed {
                version,
                last_good,
                reason,
                at_last_good,
            } => {
                let live = if *at_last_good {
                    format!(
                        "the live stack stays at {}",
                        last_good.as_deref().unwrap_or("its last good version")
                    )
                } else {
                    format!("{version} stays live (advance.rollback: false)")
                };
                format!(
                    "the advance to {version} failed ({reason}); {live}; hearth changes nothing \
                     until another version is declared or `hearth retry {deployment}`"
                )
            }
        }
    }
}

/// A hold as reported (the plan's `hold`, the status's phase, reason and message).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Held {
    pub phase: Phase,
    pub reason: String,
    pub message: String,
    #[serde(flatten)]
    pub hold: Hold,
}

impl Hold {
    /// The hold as reported for `deployment`.
    pub fn held(&self, deployment: &str) -> Held {
        Held {
            phase: self.phase(),
            reason: self.reason().into(),
            message: self.message(deployment),
            hold: self.clone(),
        }
    }
}

/// The subject of a rendered deployment: its stack and the named volumes it would mount.
pub fn subject_of<'s>(
    pool: &'s str,
    d: &'s crate::manifest::Deployment,
    stack: &'s str,
    spec: &'s crate::render::StackSpec,
) -> Subject<'s> {
    Subject {
        pool,
        deployment: d.name(),
        stack,
        volumes: spec
            .volumes
            .iter()
            .filter(|v| !v.external)
            .map(|v| v.name.as_str())
            .collect(),
        allow_migration: d.spec.advance.allow_migration,
    }
}

/// Puts `hold` on `plan`: nothing is planned (no step, and the objects in the way are the hold's
/// to explain, not problems).
pub fn hold_plan(plan: &mut crate::plan::Plan, hold: &Hold) {
    plan.steps.clear();
    plan.problems.clear();
    plan.drift.clear();
    plan.hold = Some(hold.held(&plan.deployment));
}

fn describe((pool, deployment): Key) -> String {
    format!("deployment {deployment:?} of pool {pool:?}")
}

/// The hold on `s`, if any (precedence: a running move, a stack move, a held stack name, a
/// volume owned by another).
pub fn decide(owners: &Owners, s: &Subject) -> Option<Hold> {
    let me: Key = (s.pool, s.deployment);
    let record = owners.move_of(s.pool, s.deployment);
    if let Some(r) = record.filter(|r| r.state.in_progress() && r.to == s.stack) {
        return Some(Hold::Migrating {
            from: r.from.clone(),
            to: r.to.clone(),
            state: r.state.as_str().to_string(),
        });
    }
    let old: Vec<&str> = owners
        .stacks_of(s.pool, s.deployment)
        .into_iter()
        .filter(|st| *st != s.stack)
        .collect();
    if let Some(from) = old.first() {
        let failed = record
            .filter(|r| r.state == State::Failed && r.to == s.stack)
            .and_then(|r| r.error.clone());
        return Some(Hold::StackMove {
            from: from.to_string(),
            to: s.stack.to_string(),
            volumes: owners.volumes_in(s.pool, s.deployment, from),
            auto: s.allow_migration && failed.is_none(),
            failed,
        });
    }
    if let Some(holder) = owners
        .stacks
        .get(s.stack)
        .and_then(|o| o.iter().find(|k| **k != me))
    {
        return Some(Hold::StackNameHeld {
            stack: s.stack.to_string(),
            holder: describe(*holder),
        });
    }
    for v in &s.volumes {
        // A record outlives its volume (removed by the operator): only a present volume counts.
        // With several nodes a volume not listed here may be on another node (Docker lists the
        // connected node's volumes only), where Swarm would mount it: the record holds until the
        // operator removes it too (docs/migrate.md). Found by scripts/chaos.
        if let Some((to, by)) = owners
            .migrated
            .get(v)
            .filter(|_| owners.partial_volumes || owners.volumes.contains_key(v))
        {
            return Some(Hold::VolumeOwnedByOther {
                volume: v.to_string(),
                owner: format!("{} (its data was migrated to stack {to})", describe(*by)),
            });
        }
        if let Some(other) = owners
            .volumes
            .get(v)
            .and_then(|i| i.owner)
            .filter(|o| *o != me)
        {
            return Some(Hold::VolumeOwnedByOther {
                volume: v.to_string(),
                owner: describe(other),
            });
        }
    }
    None
}

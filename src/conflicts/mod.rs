//! Collisions with other stacks on the live swarm (issue 19): what a deployment claims (the names
//! its services resolve, the shared networks it joins, the hosts its Traefik routers claim, its
//! stack name) against what every other stack holds, read from the one snapshot of a pass.
//!
//! - [`SwarmIndex`] is built once per snapshot, with no Docker call: every service attached to a
//!   shared network (one its own stack does not own, e.g. `proxy`) with its bare aliases (its name
//!   inside its stack, i.e. without `<stack>_`, for services `docker stack deploy` made, plus the
//!   explicit aliases of the attachment that are not stack-scoped; hearth's own services resolve
//!   only by `<stack>_<service>` on shared networks, so only their explicit aliases count), every
//!   host every router claims ([`traefik`]), and who owns each stack namespace.
//! - [`Claims`] are computed once per rendered deployment (from its [`StackSpec`]).
//! - [`find`] compares the two: (a) `AliasShadowed`: a name the deployment's services resolve (a
//!   compose service key or an explicit alias) that another stack carries as a bare alias on a
//!   shared network the deployment joins; (b) `HostCollision`: a host its routers claim that
//!   another stack's router claims; (c) `StackHeld`: its stack namespace exists and holds objects
//!   hearth did not make for this deployment of this pool. Every [`Conflict`] names the other
//!   stack, the network or host, and the name.
//!
//! Stacks of the same deployment of the same pool (e.g. the old stack during a move) are never the
//! "other" stack. Conflicts do not change a deployment's phase: they are `Conflict` conditions
//! (see docs/runbooks/HearthDeploymentConflict.md), the `hearth_deployment_conflicts` metric, and
//! warnings (errors for a held stack) of `hearth validate` and `hearth plan`.

pub mod traefik;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::desired::Desired;
use crate::observed::Snapshot;
use crate::render::{LABEL_DEPLOYMENT, LABEL_MANAGED_BY, LABEL_NAMESPACE, LABEL_POOL, StackSpec};

/// The condition kind conflicts are reported as.
pub const CONDITION: &str = "Conflict";

/// What kind of collision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ConflictKind {
    /// Another stack carries a name this deployment resolves as a bare alias on a shared network.
    AliasShadowed,
    /// Another stack's router claims a host this deployment's routers claim.
    HostCollision,
    /// The deployment's stack namespace holds objects hearth did not make for it.
    StackHeld,
}

impl ConflictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::AliasShadowed => "AliasShadowed",
            ConflictKind::HostCollision => "HostCollision",
            ConflictKind::StackHeld => "StackHeld",
        }
    }
}

/// One collision of a deployment with another stack.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Conflict {
    pub kind: ConflictKind,
    /// The other stack's namespace (empty for a service in no stack; `message` names it).
    pub other_stack: String,
    /// The shared network (AliasShadowed), the host (HostCollision) or the stack (StackHeld).
    pub place: String,
    /// The alias, the host, or the stack name.
    pub name: String,
    /// A sentence naming all of the above and the other stack's service or router.
    pub message: String,
}

/// Who made an object: hearth for (pool, deployment), or something else.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Maker {
    Hearth { pool: String, deployment: String },
    Foreign,
}

fn maker(labels: Option<&HashMap<String, String>>) -> Maker {
    match labels {
        Some(l) if l.get(LABEL_MANAGED_BY).map(String::as_str) == Some("hearth") => Maker::Hearth {
            pool: l.get(LABEL_POOL).cloned().unwrap_or_default(),
            deployment: l.get(LABEL_DEPLOYMENT).cloned().unwrap_or_default(),
        },
        _ => Maker::Foreign,
    }
}

/// A service of the swarm that holds an alias or a router host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    /// Its stack namespace (empty: in no stack).
    stack: String,
    /// Its full Swarm name.
    service: String,
    maker: Maker,
}

impl Holder {
    /// `stack "s" (service s_db)` or `service "db" (in no stack)`.
    fn describe(&self) -> String {
        if self.stack.is_empty() {
            format!("service {:?} (in no stack)", self.service)
        } else {
            format!("stack {:?} (service {})", self.stack, self.service)
        }
    }
}

/// Who holds a stack namespace.
#[derive(Debug, Clone, Default)]
struct StackHolders {
    /// Hearth deployments with objects in it.
    hearth: BTreeSet<(String, String)>,
    /// Up to three objects of it hearth did not make (`service x`, `network y`, ...).
    foreign: Vec<String>,
    foreign_count: usize,
}

/// The swarm's shared-network aliases, router hosts and stack holders, from one snapshot.
#[derive(Debug, Default)]
pub struct SwarmIndex {
    holders: Vec<Holder>,
    /// Network name -> bare alias -> holders.
    aliases: HashMap<String, HashMap<String, Vec<usize>>>,
    /// Host -> (holder, router) claiming it.
    hosts: HashMap<String, Vec<(usize, String)>>,
    stacks: HashMap<String, StackHolders>,
}

impl SwarmIndex {
    /// Indexes `snap` (no Docker call).
    pub fn new(snap: &Snapshot) -> SwarmIndex {
        let mut ix = SwarmIndex::default();
        // Network ID -> (name, owning stack).
        let networks: HashMap<&str, (&str, Option<&str>)> = snap
            .networks
            .iter()
            .filter_map(|n| {
                let stack = n
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_NAMESPACE))
                    .map(String::as_str);
                Some((n.id.as_deref()?, (n.name.as_deref()?, stack)))
            })
            .collect();
        for s in &snap.services {
            let Some(spec) = &s.spec else { continue };
            let labels = spec.labels.as_ref();
            let name = spec.name.as_deref().unwrap_or_default();
            let stack = labels
                .and_then(|l| l.get(LABEL_NAMESPACE))
                .map(String::as_str)
                .unwrap_or_default();
            let made_by = maker(labels);
            if !stack.is_empty() {
                ix.note_stack(stack, &made_by, || format!("service {name}"));
            }
            let attachments = spec
                .task_template
                .as_ref()
                .and_then(|t| t.networks.as_deref())
                .unwrap_or_default();
            let hosts = labels
                .map(|l| traefik::router_hosts(l.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
                .unwrap_or_default();
            // Only networks the service's own stack does not own are shared.
            let mut shared = attachments
                .iter()
                .filter_map(|a| Some((networks.get(a.target.as_deref()?)?, a)))
                .filter(|((_, owner), _)| stack.is_empty() || *owner != Some(stack))
                .peekable();
            if shared.peek().is_none() && hosts.is_empty() {
                continue;
            }
            let holder = ix.holders.len();
            ix.holders.push(Holder {
                stack: stack.to_string(),
                service: name.to_string(),
                maker: made_by.clone(),
            });
            let scoped = format!("{stack}_");
            let bare_name = if stack.is_empty() {
                name
            } else {
                name.strip_prefix(&scoped).unwrap_or(name)
            };
            for ((net, _), a) in shared {
                let mut bare: Vec<&str> = Vec::new();
                if made_by == Maker::Foreign {
                    bare.push(bare_name);
                }
                for alias in a.aliases.iter().flatten() {
                    if alias != name && (stack.is_empty() || !alias.starts_with(&scoped)) {
                        bare.push(alias);
                    }
                }
                let by_alias = ix.aliases.entry(net.to_string()).or_default();
                for b in bare {
                    let holders = by_alias.entry(b.to_string()).or_default();
                    if !holders.contains(&holder) {
                        holders.push(holder);
                    }
                }
            }
            for h in hosts {
                ix.hosts.entry(h.host).or_default().push((holder, h.router));
            }
        }
        for n in &snap.networks {
            if let Some(stack) = n.labels.as_ref().and_then(|l| l.get(LABEL_NAMESPACE)) {
                let name = n.name.as_deref().unwrap_or_default();
                ix.note_stack(stack, &maker(n.labels.as_ref()), || {
                    format!("network {name}")
                });
            }
        }
        for c in &snap.configs {
            let spec = c.spec.as_ref();
            let labels = spec.and_then(|s| s.labels.as_ref());
            if let Some(stack) = labels.and_then(|l| l.get(LABEL_NAMESPACE)) {
                let name = spec.and_then(|s| s.name.as_deref()).unwrap_or_default();
                ix.note_stack(stack, &maker(labels), || format!("config {name}"));
            }
        }
        for c in &snap.secrets {
            let spec = c.spec.as_ref();
            let labels = spec.and_then(|s| s.labels.as_ref());
            if let Some(stack) = labels.and_then(|l| l.get(LABEL_NAMESPACE)) {
                let name = spec.and_then(|s| s.name.as_deref()).unwrap_or_default();
                ix.note_stack(stack, &maker(labels), || format!("secret {name}"));
            }
        }
        ix
    }

    fn note_stack(&mut self, stack: &str, made_by: &Maker, what: impl FnOnce() -> String) {
        let entry = match self.stacks.get_mut(stack) {
            Some(e) => e,
            None => self.stacks.entry(stack.to_string()).or_default(),
        };
        match made_by {
            Maker::Hearth { pool, deployment } => {
                if !entry
                    .hearth
                    .iter()
                    .any(|(p, d)| p == pool && d == deployment)
                {
                    entry.hearth.insert((pool.clone(), deployment.clone()));
                }
            }
            Maker::Foreign => {
                entry.foreign_count += 1;
                if entry.foreign.len() < 3 {
                    entry.foreign.push(what());
                }
            }
        }
    }

    /// Stack namespaces on the swarm holding objects that no deployment of `pool` made (what the
    /// manifests' uniqueness check takes as foreign stacks), sorted.
    pub fn foreign_stacks(&self, pool: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .stacks
            .iter()
            .filter(|(_, h)| h.foreign_count > 0 || h.hearth.iter().any(|(p, _)| p != pool))
            .map(|(s, _)| s.clone())
            .collect();
        out.sort();
        out
    }

    /// What the swarm holds, for naming the deployments of `pool`
    /// ([`crate::manifest::settle`]): where each of them has objects, who holds every stack
    /// namespace, and which stacks' routers claim each host.
    pub fn live_names(&self, pool: &str) -> crate::manifest::settle::LiveNames {
        use crate::manifest::settle::{LiveNames, OTHER};
        let mut out = LiveNames::default();
        for (stack, h) in &self.stacks {
            let holders = out.stacks.entry(stack.clone()).or_default();
            if h.foreign_count > 0 {
                holders.insert(OTHER.to_string());
            }
            for (p, d) in &h.hearth {
                if p == pool && !d.is_empty() {
                    holders.insert(d.clone());
                    out.placed
                        .entry(d.clone())
                        .or_default()
                        .insert(stack.clone());
                } else {
                    holders.insert(OTHER.to_string());
                }
            }
        }
        for (host, claims) in &self.hosts {
            let stacks = out.hosts.entry(host.to_ascii_lowercase()).or_default();
            for (i, _) in claims {
                stacks.insert(self.holders[*i].stack.clone());
            }
        }
        out
    }

    /// The stacks that have objects, whoever made them.
    pub fn stack_count(&self) -> usize {
        self.stacks.len()
    }
}

/// What one deployment claims: its stack, the names its services resolve, the shared networks they
/// join and the hosts their routers claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub stack: String,
    /// Compose service keys and explicit (not stack-scoped) aliases.
    pub names: BTreeSet<String>,
    /// External networks its services are attached to.
    pub networks: BTreeSet<String>,
    /// (host, router) its routers claim.
    pub hosts: BTreeSet<(String, String)>,
}

impl Claims {
    /// The claims of a rendered stack (parses each service's spec once).
    pub fn of(spec: &StackSpec) -> Claims {
        let stack = spec.stack.clone();
        let external: BTreeSet<&str> = spec
            .networks
            .iter()
            .filter(|n| n.external)
            .map(|n| n.name.as_str())
            .collect();
        let scoped = format!("{stack}_");
        let mut out = Claims {
            stack,
            ..Default::default()
        };
        for s in &spec.services {
            out.names.insert(s.key.clone());
            for n in s.networks() {
                let target = n.target.as_deref().unwrap_or_default();
                if external.contains(target) {
                    out.networks.insert(target.to_string());
                }
                for a in n.aliases.iter().flatten() {
                    if !a.starts_with(&scoped) {
                        out.names.insert(a.clone());
                    }
                }
            }
            let v = s.spec_value();
            if let Some(labels) = v.get("Labels").and_then(|l| l.as_object()) {
                let pairs = labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)));
                for h in traefik::router_hosts(pairs) {
                    out.hosts.insert((h.host, h.router));
                }
            }
        }
        out
    }
}

/// [`Claims`] of each deployment, computed again only when its rendered spec changed.
#[derive(Debug, Default)]
pub struct ClaimsCache {
    by_deployment: HashMap<String, (Arc<Desired>, Arc<Claims>)>,
}

impl ClaimsCache {
    /// The claims of `desired` (cached while the same rendered spec is passed).
    pub fn get(&mut self, desired: &Arc<Desired>) -> Arc<Claims> {
        if let Some((d, c)) = self.by_deployment.get(&desired.deployment)
            && Arc::ptr_eq(d, desired)
        {
            return c.clone();
        }
        let claims = Arc::new(Claims::of(&desired.stack_spec));
        self.by_deployment.insert(
            desired.deployment.clone(),
            (desired.clone(), claims.clone()),
        );
        claims
    }

    /// Forgets deployments not in `keep`.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.by_deployment.retain(|k, _| keep(k));
    }
}

/// Every conflict of deployment `deployment` of `pool` with `claims`, sorted.
pub fn find(claims: &Claims, pool: &str, deployment: &str, ix: &SwarmIndex) -> Vec<Conflict> {
    let mut out = BTreeSet::new();
    let is_self = |h: &Holder| {
        h.stack == claims.stack
            || matches!(&h.maker, Maker::Hearth { pool: p, deployment: d } if p == pool && d == deployment)
    };
    for net in &claims.networks {
        let Some(by_alias) = ix.aliases.get(net) else {
            continue;
        };
        for name in &claims.names {
            for &i in by_alias.get(name).into_iter().flatten() {
                let h = &ix.holders[i];
                if is_self(h) {
                    continue;
                }
                out.insert(Conflict {
                    kind: ConflictKind::AliasShadowed,
                    other_stack: h.stack.clone(),
                    place: net.clone(),
                    name: name.clone(),
                    message: format!(
                        "{} carries the bare alias {name:?} on the shared network {net}, which \
                         services of stack {:?} join and resolve {name:?} by: they may reach the \
                         other stack's service instead of their own",
                        h.describe(),
                        claims.stack
                    ),
                });
            }
        }
    }
    for (host, router) in &claims.hosts {
        for (i, other_router) in ix.hosts.get(host).into_iter().flatten() {
            let h = &ix.holders[*i];
            if is_self(h) {
                continue;
            }
            out.insert(Conflict {
                kind: ConflictKind::HostCollision,
                other_stack: h.stack.clone(),
                place: host.clone(),
                name: host.clone(),
                message: format!(
                    "{}, router {other_router}, claims host {host}, which router {router} of stack \
                     {:?} claims too: Traefik splits or steals its traffic",
                    h.describe(),
                    claims.stack
                ),
            });
        }
    }
    if let Some(held) = ix.stacks.get(&claims.stack) {
        let others: Vec<String> = held
            .hearth
            .iter()
            .filter(|(p, d)| p != pool || d != deployment)
            .map(|(p, d)| format!("hearth deployment {d:?} of pool {p:?}"))
            .collect();
        if held.foreign_count > 0 || !others.is_empty() {
            let mut what = held.foreign.clone();
            if held.foreign_count > held.foreign.len() {
                what.push(format!(
                    "{} more object(s)",
                    held.foreign_count - held.foreign.len()
                ));
            }
            let by = if others.is_empty() {
                "objects hearth did not make".to_string()
            } else {
                others.join(", ")
            };
            let listed = if what.is_empty() {
                String::new()
            } else {
                format!(": {}", what.join(", "))
            };
            out.insert(Conflict {
                kind: ConflictKind::StackHeld,
                other_stack: claims.stack.clone(),
                place: claims.stack.clone(),
                name: claims.stack.clone(),
                message: format!(
                    "stack {:?} already exists on the swarm and is held by {by}{listed}",
                    claims.stack
                ),
            });
        }
    }
    out.into_iter().collect()
}

/// Alias and host conflicts of every rendered deployment of `pool` with the live swarm, as
/// warnings on the deployment's `metadata.name` (what `hearth validate` and `hearth plan` print; a
/// held stack name is an error of the uniqueness check instead, see `desired::build_live`).
pub fn live_warnings(
    pool: &crate::desired::DesiredPool,
    loaded: &crate::manifest::Loaded,
    ix: &SwarmIndex,
) -> Vec<crate::diag::Diagnostic> {
    let pool_name = loaded
        .pool
        .as_ref()
        .map(|p| p.metadata.name.as_str())
        .unwrap_or_default();
    let mut out = Vec::new();
    for d in &pool.deployments {
        let Some(m) = loaded.deployment(&d.deployment) else {
            continue;
        };
        let claims = Claims::of(&d.stack_spec);
        for c in find(&claims, pool_name, &d.deployment, ix) {
            if c.kind == ConflictKind::StackHeld {
                continue;
            }
            out.push(crate::diag::Diagnostic::new(
                &m.origin.file,
                m.origin.pos_of("metadata.name"),
                "metadata.name",
                format!("warning: {}: {}", c.kind.as_str(), c.message),
            ));
        }
    }
    out
}

/// The `Conflict` conditions of `conflicts`: one per conflict (status true, reason its kind), or
/// one with status false when there is none.
pub fn conditions(conflicts: &[Conflict]) -> Vec<crate::assess::Condition> {
    if conflicts.is_empty() {
        return vec![crate::assess::Condition {
            kind: CONDITION.into(),
            status: false,
            reason: "NoConflict".into(),
            message: "no other stack shadows its aliases, claims its hosts or holds its stack"
                .into(),
            since: None,
        }];
    }
    conflicts
        .iter()
        .map(|c| crate::assess::Condition {
            kind: CONDITION.into(),
            status: true,
            reason: c.kind.as_str().into(),
            message: c.message.clone(),
            since: None,
        })
        .collect()
}

#[cfg(test)]
mod tests;

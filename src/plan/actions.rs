//! Planning one deployment: its rendered [`StackSpec`] against the live [`Snapshot`] -> ordered
//! [`Step`]s (networks -> secrets -> configs -> services -> removals), each with its reason.
//!
//! Ownership is decided here: an object that exists under a desired name without the
//! `hearth.managed-by` label, or that belongs to another deployment, is never changed; it becomes a
//! [`Plan::problems`] entry and the steps that need it are not planned.
//!
//! This file holds the plan's types, the snapshot index, ownership and the order of
//! [`plan_indexed`]; each object kind is planned in its sibling module (`networks`, `secrets`,
//! `configs`, `services`, `volumes`). Removing a whole deployment (prune, purge) is here too.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bollard::models::{ConfigSpec, NetworkCreateRequest, ServiceSpec, VolumeCreateRequest};
use indexmap::IndexMap;
use serde::Serialize;

use super::diff::FieldDiff;
use super::{configs, networks, secrets, services, volumes};
use crate::manifest::SecretSource;
use crate::observed::Snapshot;
use crate::recipe::hints::SecretHint;
use crate::render::{LABEL_DEPLOYMENT, LABEL_MANAGED_BY, LABEL_POOL, StackSpec};

/// What to do to the swarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    CreateNetwork {
        name: String,
        spec: NetworkCreateRequest,
    },
    CreateSecret {
        name: String,
        key: String,
        labels: BTreeMap<String, String>,
        /// Where the value comes from (generated values are made at apply time, never planned).
        #[serde(skip)]
        source: SecretValue,
    },
    CreateConfig {
        name: String,
        spec: ConfigSpec,
    },
    /// A named volume, created with its owner labels before the services that mount it (Docker
    /// would create it unlabelled-by-intent at task start otherwise; see `docs/migrate.md`).
    CreateVolume {
        name: String,
        spec: VolumeCreateRequest,
    },
    CreateService {
        name: String,
        spec: ServiceSpec,
    },
    UpdateService {
        name: String,
        id: String,
        /// The version index the service was read at (optimistic concurrency).
        version: u64,
        spec: ServiceSpec,
    },
    RemoveService {
        name: String,
        id: String,
    },
    RemoveConfig {
        name: String,
        id: String,
    },
    RemoveNetwork {
        name: String,
        id: String,
    },
    RemoveSecret {
        name: String,
        id: String,
    },
    /// Adopt a secret: put hearth's labels on it (Swarm allows only label changes); its value
    /// stays.
    LabelSecret {
        name: String,
        id: String,
        version: u64,
        labels: BTreeMap<String, String>,
    },
    /// Adopt a config: put hearth's labels on it.
    LabelConfig {
        name: String,
        id: String,
        version: u64,
        labels: BTreeMap<String, String>,
    },
}

impl Action {
    /// `create_service`, `update_service`, ... (the `hearth_actions_total{action}` label).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::CreateNetwork { .. } => "create_network",
            Action::CreateSecret { .. } => "create_secret",
            Action::CreateConfig { .. } => "create_config",
            Action::CreateVolume { .. } => "create_volume",
            Action::CreateService { .. } => "create_service",
            Action::UpdateService { .. } => "update_service",
            Action::RemoveService { .. } => "remove_service",
            Action::RemoveConfig { .. } => "remove_config",
            Action::RemoveNetwork { .. } => "remove_network",
            Action::RemoveSecret { .. } => "remove_secret",
            Action::LabelSecret { .. } => "label_secret",
            Action::LabelConfig { .. } => "label_config",
        }
    }

    /// The name of the object acted on.
    pub fn object(&self) -> &str {
        match self {
            Action::CreateNetwork { name, .. }
            | Action::CreateSecret { name, .. }
            | Action::CreateConfig { name, .. }
            | Action::CreateVolume { name, .. }
            | Action::CreateService { name, .. }
            | Action::UpdateService { name, .. }
            | Action::RemoveService { name, .. }
            | Action::RemoveConfig { name, .. }
            | Action::RemoveNetwork { name, .. }
            | Action::RemoveSecret { name, .. }
            | Action::LabelSecret { name, .. }
            | Action::LabelConfig { name, .. } => name,
        }
    }
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SecretValue {
    /// Generated from the OS random source at apply time.
    Generate { length: usize, alphabet: Vec<u8> },
    /// Read from a file at apply time.
    File(std::path::PathBuf),
    /// The content of a recipe file (`file:` in the compose file's `secrets:`).
    Data(Vec<u8>),
    /// Nothing to create it from (never planned; the default only).
    #[default]
    None,
}

/// One action and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    #[serde(flatten)]
    pub action: Action,
    pub reason: String,
    /// For updates: the fields that differ (desired vs live).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<FieldDiff>,
    /// The step only undoes out-of-band changes (the desired spec did not change); with
    /// `selfHeal: false` such steps are reported, not applied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub heals_drift: bool,
}

/// Everything to do for one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Plan {
    pub deployment: String,
    pub stack: String,
    pub steps: Vec<Step>,
    /// Reasons the deployment cannot be converged as desired (an unmanaged object in the way, a
    /// missing external network or secret); the steps that do not depend on them are still planned.
    pub problems: Vec<String>,
    /// Live fields changed out of band (hash unchanged but fields differ): the drift items.
    pub drift: Vec<DriftItem>,
    /// What the deployment waits for before it can be converged (a secret that must be made by
    /// hand); the controller reports these as `Pending`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    /// Differences of adopted services that would restart tasks: applied with the next version
    /// change or `hearth apply --restart` (see `adopt.rs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<DriftItem>,
    /// Why nothing is planned: a stack move held, a stack name or a volume held by another
    /// deployment (`migrate::hold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<crate::migrate::Held>,
}

/// A live field that differs from what hearth set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DriftItem {
    pub service: String,
    pub field: String,
    pub desired: String,
    pub live: String,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// What one deployment should be.
pub struct Intent<'a> {
    /// The pool's name (`hearth.pool`): objects of another pool are never this deployment's.
    pub pool: &'a str,
    pub deployment: &'a str,
    pub stack: &'a str,
    /// `None` when parked: services go, volumes, secrets, networks and configs stay.
    pub desired: Option<&'a StackSpec>,
    /// The manifest's `spec.secrets`, by compose key.
    pub secrets: &'a IndexMap<String, SecretSource>,
    /// Contents of the recipe's `file:` secrets, by compose key.
    pub secret_files: &'a BTreeMap<String, Vec<u8>>,
    /// The recipe's `.env.sample` hints, by compose key: how unlisted secrets are made.
    pub secret_hints: &'a BTreeMap<String, SecretHint>,
    /// `spec.adopt`: take over foreign objects of this stack's namespace (see `adopt.rs`).
    pub adopt: bool,
    /// Apply the deferred changes of adopted services now (restarts their tasks).
    pub restart: bool,
}

pub(super) fn labels_of(l: Option<&HashMap<String, String>>) -> Ownership {
    match l {
        Some(l) if l.get(LABEL_MANAGED_BY).map(String::as_str) == Some("hearth") => {
            let get = |k: &str| l.get(k).cloned().unwrap_or_default();
            Ownership::Hearth(Owner {
                pool: get(LABEL_POOL),
                deployment: get(LABEL_DEPLOYMENT),
            })
        }
        _ => Ownership::Foreign,
    }
}

/// Who an object belongs to: a deployment of a pool (deployment names are unique only within a
/// pool; two pools, or two tests, on one swarm may both have a `gitea`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Owner {
    pool: String,
    deployment: String,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "deployment {:?} of pool {:?}",
            self.deployment, self.pool
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ownership {
    Hearth(Owner),
    Foreign,
}

fn owned_by(pool: &str, deployment: &str) -> Ownership {
    Ownership::Hearth(Owner {
        pool: pool.to_string(),
        deployment: deployment.to_string(),
    })
}

/// A live object, reduced to what planning needs.
#[derive(Debug, Clone)]
pub(super) struct Live {
    pub(super) id: String,
    pub(super) owner: Ownership,
}

fn index<'a, T>(
    items: &'a [T],
    name: impl Fn(&'a T) -> Option<&'a str>,
    id: impl Fn(&'a T) -> Option<&'a str>,
    labels: impl Fn(&'a T) -> Option<&'a HashMap<String, String>>,
) -> HashMap<&'a str, Live> {
    items
        .iter()
        .filter_map(|t| {
            Some((
                name(t)?,
                Live {
                    id: id(t).unwrap_or_default().to_string(),
                    owner: labels_of(labels(t)),
                },
            ))
        })
        .collect()
}

/// The snapshot indexed once for planning many deployments: objects by name and by owner, so
/// planning one deployment costs what its own objects cost, not the size of the swarm.
pub struct SnapIndex<'a> {
    pub(super) snap: &'a Snapshot,
    pub(super) networks: HashMap<&'a str, Live>,
    pub(super) secrets: HashMap<&'a str, Live>,
    pub(super) configs: HashMap<&'a str, Live>,
    pub(super) services: HashMap<&'a str, &'a crate::observed::live::Service>,
    /// Services and configs hearth manages, by (pool, deployment), in snapshot order.
    pub(super) owned_services: HashMap<(&'a str, &'a str), Vec<&'a crate::observed::live::Service>>,
    pub(super) owned_configs: HashMap<(&'a str, &'a str), Vec<&'a bollard::models::Config>>,
    /// Config names some live service spec references.
    pub(super) referenced_configs: HashSet<&'a str>,
    /// Network ID -> name (live specs name networks by ID).
    pub(super) network_names: HashMap<&'a str, &'a str>,
    /// Names of the volumes the snapshot lists.
    pub(super) volumes: HashSet<&'a str>,
    /// Each service's tasks, by service ID (`revive` reads one service's).
    pub(super) tasks: HashMap<&'a str, Vec<&'a crate::observed::live::Task>>,
    /// Pruned deployments' pins records, by (pool, deployment) (`pin`).
    pins: HashMap<(String, String), BTreeMap<String, String>>,
}

/// `(pool, deployment)` of an object hearth manages.
fn owner_key(l: Option<&HashMap<String, String>>) -> Option<(&str, &str)> {
    let l = l?;
    if l.get(LABEL_MANAGED_BY).map(String::as_str) != Some("hearth") {
        return None;
    }
    let get = |k: &str| l.get(k).map(String::as_str).unwrap_or_default();
    Some((get(LABEL_POOL), get(LABEL_DEPLOYMENT)))
}

impl<'a> SnapIndex<'a> {
    /// The pins record of a pruned deployment (service name -> node ID), if any.
    pub fn recorded_pins(&self, pool: &str, deployment: &str) -> Option<&BTreeMap<String, String>> {
        self.pins.get(&(pool.to_string(), deployment.to_string()))
    }

    pub fn new(snap: &'a Snapshot) -> SnapIndex<'a> {
        let mut owned_services: HashMap<_, Vec<_>> = HashMap::new();
        let mut services = HashMap::with_capacity(snap.services.len());
        let mut referenced_configs = HashSet::new();
        for s in &snap.services {
            let spec = s.spec.as_ref();
            services.insert(
                spec.and_then(|sp| sp.name.as_deref()).unwrap_or_default(),
                s,
            );
            if let Some(k) = owner_key(spec.and_then(|sp| sp.labels.as_ref())) {
                owned_services.entry(k).or_default().push(s);
            }
            let configs = spec
                .and_then(|sp| sp.task_template.as_ref())
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.configs.as_ref());
            referenced_configs.extend(
                configs
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.config_name.as_deref()),
            );
        }
        let mut tasks: HashMap<&str, Vec<_>> = HashMap::new();
        for t in &snap.tasks {
            if let Some(id) = t.service_id.as_deref() {
                tasks.entry(id).or_default().push(t);
            }
        }
        let mut owned_configs: HashMap<_, Vec<_>> = HashMap::new();
        for c in &snap.configs {
            if let Some(k) = owner_key(c.spec.as_ref().and_then(|s| s.labels.as_ref())) {
                owned_configs.entry(k).or_default().push(c);
            }
        }
        SnapIndex {
            snap,
            networks: index(
                &snap.networks,
                |n| n.name.as_deref(),
                |n| n.id.as_deref(),
                |n| n.labels.as_ref(),
            ),
            secrets: index(
                &snap.secrets,
                |s| s.spec.as_ref()?.name.as_deref(),
                |s| s.id.as_deref(),
                |s| s.spec.as_ref()?.labels.as_ref(),
            ),
            configs: index(
                &snap.configs,
                |c| c.spec.as_ref()?.name.as_deref(),
                |c| c.id.as_deref(),
                |c| c.spec.as_ref()?.labels.as_ref(),
            ),
            services,
            tasks,
            pins: super::pin::recorded_pins(&snap.configs),
            owned_services,
            owned_configs,
            referenced_configs,
            network_names: snap.network_names(),
            volumes: snap.volumes.iter().map(|v| v.name.as_str()).collect(),
        }
    }

    /// The snapshot this indexes.
    pub fn snapshot(&self) -> &'a Snapshot {
        self.snap
    }
}

/// Plans one deployment against the snapshot (indexes it first: to plan many deployments on one
/// snapshot, build a [`SnapIndex`] once and call [`plan_indexed`]).
pub fn plan_deployment(intent: &Intent, snap: &Snapshot) -> Plan {
    plan_indexed(intent, &SnapIndex::new(snap))
}

/// One deployment being planned: what the planners of each object kind (`networks`, `secrets`,
/// `configs`, `services`, `volumes`) share.
pub(super) struct Planning<'p> {
    pub(super) intent: &'p Intent<'p>,
    pub(super) ix: &'p SnapIndex<'p>,
    /// `(pool, deployment)`: the key of the deployment's objects in [`SnapIndex`].
    pub(super) key: (&'p str, &'p str),
    mine: Ownership,
}

impl<'p> Planning<'p> {
    /// Why hearth may not touch `live`, an object under a desired name (it is foreign, or another
    /// deployment's); `None` when it is this deployment's.
    pub(super) fn blocked(&self, what: &str, name: &str, live: &Live) -> Option<String> {
        match &live.owner {
            Ownership::Foreign => Some(format!(
                "{what} {name} exists and is not managed by hearth (no {LABEL_MANAGED_BY} label); \
                 hearth will not change it"
            )),
            Ownership::Hearth(_) if live.owner == self.mine => None,
            Ownership::Hearth(other) => Some(format!(
                "{what} {name} belongs to {other}; hearth will not change it"
            )),
        }
    }

    /// Hearth's live services of this deployment, in snapshot order.
    pub(super) fn my_services(&self) -> &'p [&'p crate::observed::live::Service] {
        self.ix
            .owned_services
            .get(&self.key)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// Plans one deployment against an indexed snapshot, one object kind after the other, in the
/// order the steps apply: networks -> secrets -> configs -> services (volumes just before the
/// first created service) -> removals.
pub fn plan_indexed(intent: &Intent, ix: &SnapIndex) -> Plan {
    let mut plan = Plan {
        deployment: intent.deployment.to_string(),
        stack: intent.stack.to_string(),
        ..Default::default()
    };
    let cx = Planning {
        intent,
        ix,
        key: (intent.pool, intent.deployment),
        mine: owned_by(intent.pool, intent.deployment),
    };
    let Some(desired) = intent.desired else {
        services::plan_parked(&cx, &mut plan);
        return plan;
    };
    // A network, secret or config the services need that is missing or blocked holds back the
    // services' steps (problems and drift are still reported).
    let mut ok = networks::plan_networks(&cx, desired, &mut plan);
    ok &= secrets::plan_secrets(&cx, desired, &mut plan);
    ok &= configs::plan_configs(&cx, desired, &mut plan);
    configs::adopt_stack_configs(&cx, desired, &mut plan);
    services::plan_services(&cx, desired, ok, &mut plan);
    volumes::plan_volumes(&mut plan, desired, ix);
    services::remove_undesired_services(&cx, desired, &mut plan);
    configs::remove_old_configs(&cx, desired, &mut plan);
    plan
}
/// Removes a deployment that is gone from the manifests (only when the pool says `prune: true`):
/// its services, then its networks and configs. Its secrets stay, like its volumes: generated
/// values cannot be made again, and a deployment added back must find the passwords its data was
/// initialised with. Only [`plan_purge`] (`hearth purge NAME`) removes them.
pub fn plan_prune(pool: &str, deployment: &str, snap: &Snapshot) -> Plan {
    removal(pool, deployment, snap, false)
}

/// Removes everything hearth made for a deployment: [`plan_prune`] and its secrets. Volumes are
/// never removed.
pub fn plan_purge(pool: &str, deployment: &str, snap: &Snapshot) -> Plan {
    removal(pool, deployment, snap, true)
}

fn removal(pool: &str, deployment: &str, snap: &Snapshot, purge: bool) -> Plan {
    let mine = owned_by(pool, deployment);
    let mut plan = Plan {
        deployment: deployment.to_string(),
        ..Default::default()
    };
    // Objects of the pool that belong to no deployment (the leader lease) are never pruned.
    if deployment.is_empty() {
        return plan;
    }
    let reason = || {
        if purge {
            "deployment purged".to_string()
        } else {
            "deployment removed from the manifests and the pool prunes".to_string()
        }
    };
    let step = |action| Step {
        action,
        reason: reason(),
        diffs: vec![],
        heals_drift: false,
    };
    if !purge && let Some(step) = record_pins(pool, deployment, snap) {
        plan.steps.push(step);
    }
    for s in &snap.services {
        let labels = s.spec.as_ref().and_then(|sp| sp.labels.as_ref());
        if labels_of(labels) == mine {
            if plan.stack.is_empty() {
                plan.stack = labels
                    .and_then(|l| l.get(crate::render::LABEL_NAMESPACE))
                    .cloned()
                    .unwrap_or_default();
            }
            plan.steps.push(step(Action::RemoveService {
                name: service_name(s),
                id: s.id.clone().unwrap_or_default(),
            }));
        }
    }
    for n in &snap.networks {
        if labels_of(n.labels.as_ref()) == mine {
            plan.steps.push(step(Action::RemoveNetwork {
                name: n.name.clone().unwrap_or_default(),
                id: n.id.clone().unwrap_or_default(),
            }));
        }
    }
    for c in &snap.configs {
        let spec = c.spec.as_ref();
        if labels_of(spec.and_then(|s| s.labels.as_ref())) == mine {
            plan.steps.push(step(Action::RemoveConfig {
                name: spec.and_then(|s| s.name.clone()).unwrap_or_default(),
                id: c.id.clone().unwrap_or_default(),
            }));
        }
    }
    // Purge forgets where the volumes were, too (prune keeps the pins record).
    let record = super::pin::pins_record_name(pool, deployment);
    for c in snap.configs.iter().filter(|_| purge) {
        let spec = c.spec.as_ref();
        if spec.and_then(|s| s.name.as_deref()) == Some(record.as_str()) {
            plan.steps.push(step(Action::RemoveConfig {
                name: record.clone(),
                id: c.id.clone().unwrap_or_default(),
            }));
        }
    }
    for s in snap.secrets.iter().filter(|_| purge) {
        let spec = s.spec.as_ref();
        if labels_of(spec.and_then(|s| s.labels.as_ref())) == mine {
            plan.steps.push(step(Action::RemoveSecret {
                name: spec.and_then(|s| s.name.clone()).unwrap_or_default(),
                id: s.id.clone().unwrap_or_default(),
            }));
        }
    }
    plan
}

/// Before a prune removes a deployment's pinned services: their pins, kept in the deployment's
/// pins record (created, or its labels extended), so that added back it starts on the nodes that
/// hold its volumes (`pin`). `None` when nothing is pinned or all is recorded already.
fn record_pins(pool: &str, deployment: &str, snap: &Snapshot) -> Option<Step> {
    use super::pin::{KIND_PINS, LABEL_PIN_NODE, LABEL_PIN_PREFIX, LABEL_PINS_DEPLOYMENT};
    let mine = owned_by(pool, deployment);
    let mut pins = BTreeMap::new();
    for s in &snap.services {
        let labels = s.spec.as_ref().and_then(|sp| sp.labels.as_ref());
        if labels_of(labels) != mine {
            continue;
        }
        if let Some(node) = labels
            .and_then(|l| l.get(LABEL_PIN_NODE))
            .filter(|n| !n.is_empty())
        {
            pins.insert(
                format!("{LABEL_PIN_PREFIX}{}", service_name(s)),
                node.clone(),
            );
        }
    }
    if pins.is_empty() {
        return None;
    }
    let name = super::pin::pins_record_name(pool, deployment);
    let existing = snap
        .configs
        .iter()
        .find(|c| c.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name.as_str()));
    let reason = "the deployment's pins, kept so that added back it starts where its volumes are"
        .to_string();
    let action = match existing {
        Some(c) => {
            let mut labels: BTreeMap<String, String> = c
                .spec
                .as_ref()
                .and_then(|s| s.labels.clone())
                .unwrap_or_default()
                .into_iter()
                .collect();
            if pins.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                return None;
            }
            labels.extend(pins);
            Action::LabelConfig {
                name,
                id: c.id.clone().unwrap_or_default(),
                version: c.version.as_ref().and_then(|v| v.index).unwrap_or(0),
                labels,
            }
        }
        None => {
            let mut labels: HashMap<String, String> = pins.into_iter().collect();
            labels.insert(LABEL_MANAGED_BY.into(), "hearth".into());
            labels.insert(LABEL_POOL.into(), pool.into());
            labels.insert(crate::advance::LABEL_KIND.into(), KIND_PINS.into());
            labels.insert(LABEL_PINS_DEPLOYMENT.into(), deployment.into());
            Action::CreateConfig {
                name: name.clone(),
                spec: ConfigSpec {
                    name: Some(name),
                    labels: Some(labels),
                    data: Some(crate::render::base64(
                        b"hearth pins record: see the labels\n",
                    )),
                    ..Default::default()
                },
            }
        }
    };
    Some(Step {
        action,
        reason,
        diffs: vec![],
        heals_drift: false,
    })
}

/// Deployments hearth manages on the swarm that are not in `known`.
pub fn orphans(snap: &Snapshot, pool: &str, known: &BTreeSet<&str>) -> BTreeSet<String> {
    snap.services
        .iter()
        .filter_map(
            |s| match labels_of(s.spec.as_ref().and_then(|sp| sp.labels.as_ref())) {
                Ownership::Hearth(o)
                    if o.pool == pool && !known.contains(o.deployment.as_str()) =>
                {
                    Some(o.deployment)
                }
                _ => None,
            },
        )
        .collect()
}

pub(super) fn service_name(s: &crate::observed::live::Service) -> String {
    s.spec
        .as_ref()
        .and_then(|sp| sp.name.clone())
        .unwrap_or_default()
}

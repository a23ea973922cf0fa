//! Planning one deployment: its rendered [`StackSpec`] against the live [`Snapshot`] -> ordered
//! [`Step`]s (networks -> secrets -> configs -> services -> removals), each with its reason.
//!
//! Ownership is decided here: an object that exists under a desired name without the
//! `hearth.managed-by` label, or that belongs to another deployment, is never changed; it becomes a
//! [`Plan::problems`] entry and the steps that need it are not planned.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bollard::models::{ConfigSpec, NetworkCreateRequest, ServiceSpec, VolumeCreateRequest};
use indexmap::IndexMap;
use serde::Serialize;

use super::adopt::{self, LABEL_ADOPTED};
use super::diff::{FieldDiff, diff_ignoring};
use crate::manifest::SecretSource;
use crate::observed::Snapshot;
use crate::recipe::hints::SecretHint;
use crate::render::{LABEL_DEPLOYMENT, LABEL_MANAGED_BY, LABEL_POOL, LABEL_SPEC_HASH, StackSpec};

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

fn labels_of(l: Option<&HashMap<String, String>>) -> Ownership {
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
struct Owner {
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
enum Ownership {
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
struct Live {
    id: String,
    owner: Ownership,
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
    snap: &'a Snapshot,
    networks: HashMap<&'a str, Live>,
    secrets: HashMap<&'a str, Live>,
    configs: HashMap<&'a str, Live>,
    services: HashMap<&'a str, &'a crate::observed::live::Service>,
    /// Services and configs hearth manages, by (pool, deployment), in snapshot order.
    owned_services: HashMap<(&'a str, &'a str), Vec<&'a crate::observed::live::Service>>,
    owned_configs: HashMap<(&'a str, &'a str), Vec<&'a bollard::models::Config>>,
    /// Config names some live service spec references.
    referenced_configs: HashSet<&'a str>,
    /// Network ID -> name (live specs name networks by ID).
    network_names: HashMap<&'a str, &'a str>,
    /// Names of the volumes the snapshot lists.
    volumes: HashSet<&'a str>,
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

/// Plans one deployment against an indexed snapshot.
pub fn plan_indexed(intent: &Intent, ix: &SnapIndex) -> Plan {
    let mut plan = Plan {
        deployment: intent.deployment.to_string(),
        stack: intent.stack.to_string(),
        ..Default::default()
    };
    let snap = ix.snap;
    let (networks, secrets, configs) = (&ix.networks, &ix.secrets, &ix.configs);
    let mine = owned_by(intent.pool, intent.deployment);
    // An object under a desired name that hearth may not touch.
    let blocked = |what: &str, name: &str, live: &Live| match &live.owner {
        Ownership::Foreign => Some(format!(
            "{what} {name} exists and is not managed by hearth (no {LABEL_MANAGED_BY} label); \
             hearth will not change it"
        )),
        Ownership::Hearth(_) if live.owner == mine => None,
        Ownership::Hearth(other) => Some(format!(
            "{what} {name} belongs to {other}; hearth will not change it"
        )),
    };

    let key = (intent.pool, intent.deployment);
    let my_services: &[&crate::observed::live::Service] = ix
        .owned_services
        .get(&key)
        .map(Vec::as_slice)
        .unwrap_or_default();

    let Some(desired) = intent.desired else {
        // Parked: remove the services only.
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
        return plan;
    };

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
                if let Some(p) = blocked("network", &n.name, live)
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
                    && let Some(p) = blocked("secret", &s.name, live)
                {
                    // It exists, so services can use it; report that hearth did not make it.
                    plan.problems.push(p);
                }
            }
            None => {
                let hint = intent.secret_hints.get(&s.key);
                let must_exist = |why: &str| {
                    format!(
                        "secret {} (compose key {}) does not exist and hearth must not create it                          ({why}); create it by hand, e.g. `printf '%s' VALUE | docker secret                          create {} -`",
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
                        ok = false;
                        plan.pending
                            .push(must_exist("listed as `existing` under spec.secrets"));
                        continue;
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
                            ok = false;
                            let h = hint.map(|h| (h.var.as_str(), h.line)).unwrap_or_default();
                            plan.pending.push(must_exist(&format!(
                                "`# generate=false` on {} in the recipe's .env.sample, line {}",
                                h.0, h.1
                            )));
                            continue;
                        }
                    },
                    None => {
                        ok = false;
                        plan.problems.push(format!(
                            "secret {} (compose key {}) does not exist; list `{}` under \
                             spec.secrets to have hearth create it",
                            s.name, s.key, s.key
                        ));
                        continue;
                    }
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
                    && let Some(p) = blocked("config", &c.name, live)
                {
                    ok = false;
                    plan.problems.push(p);
                } else if let Some(p) = config_content_changed(c, ix.owned_configs.get(&key)) {
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

    // The adopted stack's other configs (older versions, or named differently than hearth names
    // them): labelled too, so once no service uses them they go like hearth's own old configs.
    if intent.adopt {
        let desired_names: BTreeSet<&str> =
            desired.configs.iter().map(|c| c.name.as_str()).collect();
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
    let live_by_name = &ix.services;
    let desired_names: BTreeSet<&str> = desired.services.iter().map(|s| s.name.as_str()).collect();
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
        if let Some(p) = blocked("service", &s.name, &owner) {
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
        let hash_label = format!("Labels.{LABEL_SPEC_HASH}");
        let diffs = diff_ignoring(&want, &have, &|f| f == hash_label);
        let heals_drift = live_hash == s.spec_hash;
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
        } else {
            continue;
        };
        if ok {
            plan.steps.push(Step {
                action: Action::UpdateService {
                    name: s.name.clone(),
                    id: owner.id,
                    version: live.version.as_ref().and_then(|v| v.index).unwrap_or(0),
                    spec: kept_pin
                        .then(|| serde_json::from_value(want.clone()).ok())
                        .flatten()
                        .unwrap_or_else(|| s.spec()),
                },
                reason,
                diffs,
                heals_drift,
            });
        }
    }
    plan_volumes(&mut plan, desired, ix);
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
    // Old config versions: hearth's configs of this deployment that no desired service and no
    // live service spec references any more (never a hearth record: the advance state, a
    // migration's state, a volume record, all labelled `hearth.kind`).
    let desired_configs: BTreeSet<&str> = desired.configs.iter().map(|c| c.name.as_str()).collect();
    let my_configs = ix.owned_configs.get(&key).map(Vec::as_slice);
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
    plan
}

/// The named volumes the services this plan creates mount, when the snapshot does not list them:
/// created with their owner labels just before the first service (a volume of a service that
/// already runs is Docker's to create on the node of its task; see `docs/migrate.md`).
fn plan_volumes(plan: &mut Plan, desired: &StackSpec, ix: &SnapIndex) {
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

/// Labels of the live network named `name`.
fn network_labels<'a>(snap: &'a Snapshot, name: &str) -> Option<&'a HashMap<String, String>> {
    snap.networks
        .iter()
        .find(|n| n.name.as_deref() == Some(name))
        .and_then(|n| n.labels.as_ref())
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
                spec: kept_pin
                    .then(|| serde_json::from_value(want.clone()).ok())
                    .flatten()
                    .unwrap_or_else(|| s.spec()),
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

fn service_name(s: &crate::observed::live::Service) -> String {
    s.spec
        .as_ref()
        .and_then(|sp| sp.name.clone())
        .unwrap_or_default()
}

fn short(hash: &str) -> &str {
    if hash.is_empty() {
        "none"
    } else {
        &hash[..hash.len().min(12)]
    }
}

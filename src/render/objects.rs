//! Stack-level objects: networks, named volumes, secrets and configs (docker/cli `convert.Networks`,
//! `convert.Secrets`, `convert.Configs`, and the loader's external-name rules), and the name
//! table services use to refer to them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard::models::{
    ConfigSpec, Driver, Ipam, IpamConfig, MountVolumeOptionsDriverConfig, NetworkCreateRequest,
    VolumeCreateRequest,
};
use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use super::parse::{base64, recipe_path};
use super::{ConfigPlan, Cx, NetworkPlan, SecretPlan, VolumePlan};
use crate::compose::model::{External, FileObject, Network};

/// docker's network driver when the compose file names none (`docker stack deploy` default).
pub const DEFAULT_NETWORK_DRIVER: &str = "overlay";
/// Swarm's limit on config and secret names.
const MAX_OBJECT_NAME: usize = 64;

/// The network keys a service attaches to: its `networks:`, or `default` when it lists none.
pub fn service_network_keys(
    networks: &IndexMap<String, Option<crate::compose::model::ServiceNetwork>>,
) -> Vec<String> {
    if networks.is_empty() {
        vec!["default".to_owned()]
    } else {
        networks.keys().cloned().collect()
    }
}

/// The final name of an external object: `external.name` (deprecated), `name:`, or the key.
fn external_name(
    cx: &mut Cx,
    field: &str,
    key: &str,
    name: Option<&String>,
    external: &External,
) -> String {
    match (&external.name, name) {
        (Some(_), Some(_)) => {
            cx.error(field, "external.name and name conflict; only use name");
            key.to_owned()
        }
        (Some(n), None) | (None, Some(n)) => n.clone(),
        (None, None) => key.to_owned(),
    }
}

fn opt_map(m: &IndexMap<String, String>) -> Option<HashMap<String, String>> {
    if m.is_empty() {
        None
    } else {
        Some(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

/// The networks the services use, as docker/cli creates them.
pub fn networks(cx: &mut Cx) -> Vec<NetworkPlan> {
    let compose = cx.input.compose;
    let used: BTreeSet<String> = compose
        .services
        .values()
        .flat_map(|s| service_network_keys(&s.networks))
        .collect();
    let mut plans: BTreeMap<String, NetworkPlan> = BTreeMap::new();
    for key in used {
        let implicit;
        let nw: &Network = match compose.networks.get(&key) {
            Some(nw) => nw,
            None if key == "default" => {
                implicit = Network::default();
                &implicit
            }
            None => continue, // reported on the service
        };
        let field = format!("networks.{key}");
        let plan = if nw.external.external {
            let name = external_name(cx, &field, &key, nw.name.as_ref(), &nw.external);
            NetworkPlan {
                name,
                key: key.clone(),
                external: true,
                spec: None,
            }
        } else {
            let name = non_empty(&nw.name).unwrap_or_else(|| cx.scope(&key));
            // Swarm-scoped (overlay) networks carry Swarm's service-name limit.
            if non_empty(&nw.driver).is_none_or(|d| d == DEFAULT_NETWORK_DRIVER) {
                let at = if non_empty(&nw.name).is_some() {
                    format!("{field}.name")
                } else {
                    field.clone()
                };
                check_label_name_length(cx, &at, &name);
            }
            let ipam = nw.ipam.as_ref().and_then(|ipam| {
                let driver = non_empty(&ipam.driver);
                if driver.is_none() && ipam.config.is_empty() {
                    return None;
                }
                let config: Vec<IpamConfig> = ipam
                    .config
                    .iter()
                    .map(|p| IpamConfig {
                        subnet: non_empty(&p.subnet),
                        ..Default::default()
                    })
                    .collect();
                Some(Ipam {
                    driver,
                    config: Some(config).filter(|c| !c.is_empty()),
                    options: None,
                })
            });
            let spec = NetworkCreateRequest {
                name: name.clone(),
                driver: Some(
                    non_empty(&nw.driver).unwrap_or_else(|| DEFAULT_NETWORK_DRIVER.to_owned()),
                ),
                internal: nw.internal.then_some(true),
                attachable: nw.attachable.then_some(true),
                ipam,
                options: opt_map(&nw.driver_opts),
                labels: Some(cx.object_labels(&nw.labels)),
                ..Default::default()
            };
            NetworkPlan {
                name,
                key: key.clone(),
                external: false,
                spec: Some(spec),
            }
        };
        plans.entry(plan.name.clone()).or_insert(plan);
    }
    plans.into_values().collect()
}

/// The named volumes the services mount.
pub fn volumes(cx: &mut Cx) -> Vec<VolumePlan> {
    let compose = cx.input.compose;
    let used: BTreeSet<&String> = compose
        .services
        .values()
        .flat_map(|s| s.volumes.iter())
        .filter(|v| v.kind == "volume")
        .filter_map(|v| v.source.as_ref().filter(|s| !s.is_empty()))
        .filter(|s| compose.volumes.contains_key(*s))
        .collect();
    let mut plans: BTreeMap<String, VolumePlan> = BTreeMap::new();
    for key in used {
        let vol = &compose.volumes[key];
        let field = format!("volumes.{key}");
        let plan = if vol.external.external {
            for (set, what) in [
                (vol.driver.is_some(), "driver"),
                (
                    vol.driver_opts.as_ref().is_some_and(|o| !o.is_empty()),
                    "driver_opts",
                ),
                (!vol.labels.is_empty(), "labels"),
            ] {
                if set {
                    cx.error(
                        &field,
                        format!("conflicting parameters \"external\" and \"{what}\" specified"),
                    );
                }
            }
            let name = external_name(cx, &field, key, vol.name.as_ref(), &vol.external);
            VolumePlan {
                name,
                key: key.clone(),
                external: true,
                spec: None,
            }
        } else {
            let name = non_empty(&vol.name).unwrap_or_else(|| cx.scope(key));
            VolumePlan {
                name: name.clone(),
                key: key.clone(),
                external: false,
                spec: Some(VolumeCreateRequest {
                    name: Some(name),
                    driver: non_empty(&vol.driver),
                    driver_opts: vol.driver_opts.as_ref().and_then(opt_map),
                    labels: Some(cx.object_labels(&vol.labels)),
                    cluster_volume_spec: None,
                }),
            }
        };
        plans.entry(plan.name.clone()).or_insert(plan);
    }
    plans.into_values().collect()
}

/// Checks a `file:` of a secret or config and returns its normalised path.
fn checked_file(cx: &mut Cx, field: &str, file: &str) -> Option<String> {
    match recipe_path(file) {
        Ok(p) => Some(p),
        Err(e) => {
            cx.error(format!("{field}.file"), e.to_string());
            None
        }
    }
}

fn read(cx: &mut Cx, field: &str, path: &str) -> Option<Vec<u8>> {
    match (cx.input.read_file)(path) {
        Ok(Some(data)) => Some(data),
        Ok(None) => {
            cx.error(
                format!("{field}.file"),
                format!("{path}: no such file in the recipe"),
            );
            None
        }
        Err(e) => {
            cx.error(format!("{field}.file"), format!("{path}: {e}"));
            None
        }
    }
}

fn check_name_length(cx: &mut Cx, field: &str, name: &str) {
    if name.len() > MAX_OBJECT_NAME {
        cx.error(
            format!("{field}.name"),
            format!("{name:?} is longer than Swarm's {MAX_OBJECT_NAME} characters"),
        );
    }
}

/// Swarm's limit on service and (overlay) network names: a DNS label.
pub const MAX_SERVICE_NAME: usize = 63;

/// Services and networks: Swarm refuses names over 63 characters (`name must be 63 characters or
/// fewer`); say so at render time, naming the field.
pub fn check_label_name_length(cx: &mut Cx, field: &str, name: &str) {
    if name.len() > MAX_SERVICE_NAME {
        cx.error(
            field.to_owned(),
            format!("{name:?} is longer than Swarm's {MAX_SERVICE_NAME} characters"),
        );
    }
}

/// Every top-level secret. Data is never part of the plan: values are made at apply time.
pub fn secrets(cx: &mut Cx) -> Vec<SecretPlan> {
    let mut plans: Vec<SecretPlan> = Vec::new();
    for (key, obj) in &cx.input.compose.secrets {
        let field = format!("secrets.{key}");
        let labels: BTreeMap<String, String> = cx.object_labels(&obj.labels).into_iter().collect();
        let template_driver = non_empty(&obj.template_driver);
        if obj.external.external {
            let name = external_name(cx, &field, key, obj.name.as_ref(), &obj.external);
            plans.push(SecretPlan {
                name,
                key: key.clone(),
                external: true,
                labels,
                file: None,
                driver: None,
                template_driver,
            });
            continue;
        }
        let name = non_empty(&obj.name).unwrap_or_else(|| cx.scope(key));
        check_name_length(cx, &field, &name);
        let (file, driver) = match (non_empty(&obj.driver), &obj.file) {
            (Some(_), Some(_)) => {
                cx.error(&field, "driver and file conflict; only use driver");
                (None, None)
            }
            (Some(d), None) => (
                None,
                Some(Driver {
                    name: d,
                    options: opt_map(&obj.driver_opts),
                }),
            ),
            (None, Some(f)) => {
                let path = checked_file(cx, &field, f);
                if let Some(p) = &path {
                    read(cx, &field, p);
                }
                (path, None)
            }
            (None, None) => {
                cx.error(
                    &field,
                    "a secret needs `external: true`, `file:` or `driver:`",
                );
                (None, None)
            }
        };
        plans.push(SecretPlan {
            name,
            key: key.clone(),
            external: false,
            labels,
            file,
            driver,
            template_driver,
        });
    }
    plans.sort_by(|a, b| a.name.cmp(&b.name).then(a.key.cmp(&b.key)));
    plans
}

/// The content-versioned name of a config without a recipe-given `name:`:
/// `<base>_<first 10 hex of sha256(data)>`, the base cut (never the hash) so the name stays within
/// Swarm's 64 characters.
pub fn versioned_config_name(base: &str, data: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(data));
    let hash = &digest[..10];
    let keep = MAX_OBJECT_NAME - hash.len() - 1;
    let mut base: &str = base;
    if base.len() > keep {
        let mut end = keep;
        while !base.is_char_boundary(end) {
            end -= 1;
        }
        // A name must end in [a-zA-Z0-9] before the `_`; `_` itself is allowed inside.
        base = base[..end].trim_end_matches(['-', '.']);
    }
    format!("{base}_{hash}")
}

/// Every top-level config, with its data, named by content hash.
pub fn configs(cx: &mut Cx) -> Vec<ConfigPlan> {
    let mut plans: Vec<ConfigPlan> = Vec::new();
    for (key, obj) in &cx.input.compose.configs {
        let field = format!("configs.{key}");
        let template_driver = non_empty(&obj.template_driver);
        if obj.external.external {
            let name = external_name(cx, &field, key, obj.name.as_ref(), &obj.external);
            plans.push(ConfigPlan {
                name,
                key: key.clone(),
                external: true,
                spec: None,
                template_driver,
            });
            continue;
        }
        if let Some(plan) = config_plan(cx, &field, key, obj, template_driver) {
            plans.push(plan);
        }
    }
    plans.sort_by(|a, b| a.name.cmp(&b.name).then(a.key.cmp(&b.key)));
    plans
}

fn config_plan(
    cx: &mut Cx,
    field: &str,
    key: &str,
    obj: &FileObject,
    template_driver: Option<String>,
) -> Option<ConfigPlan> {
    if obj.driver.is_some() {
        cx.error(
            format!("{field}.driver"),
            "configs have no driver; use file",
        );
        return None;
    }
    let Some(file) = &obj.file else {
        cx.error(field, "a config needs `file:` or `external: true`");
        return None;
    };
    let path = checked_file(cx, field, file)?;
    let data = read(cx, field, &path)?;
    // A recipe-given `name:` is used as written (as docker does; never made longer): its content
    // cannot change under that name (see the plan). Without one, the name is derived from content.
    let name = match non_empty(&obj.name) {
        Some(given) => given,
        None => versioned_config_name(&cx.scope(key), &data),
    };
    check_name_length(cx, field, &name);
    let spec = ConfigSpec {
        name: Some(name.clone()),
        labels: Some(cx.object_labels(&obj.labels)),
        data: Some(base64(&data)),
        templating: template_driver.clone().map(|name| Driver {
            name,
            options: None,
        }),
    };
    Some(ConfigPlan {
        name,
        key: key.to_owned(),
        external: false,
        spec: Some(spec),
        template_driver,
    })
}

/// What a named volume mount needs: the volume's Swarm name, whether it is external, and the
/// labels / driver the daemon creates it with.
pub struct VolumeRef {
    pub name: String,
    pub external: bool,
    pub labels: HashMap<String, String>,
    pub driver: Option<MountVolumeOptionsDriverConfig>,
}

/// Compose key -> Swarm name tables for service rendering.
pub struct Names {
    /// key -> (name, external); includes the implicit `default` network.
    pub networks: HashMap<String, (String, bool)>,
    pub volumes: HashMap<String, VolumeRef>,
    pub secrets: HashMap<String, String>,
    pub configs: HashMap<String, String>,
}

impl Names {
    pub fn new(
        cx: &Cx,
        networks: &[NetworkPlan],
        volumes: &[VolumePlan],
        secrets: &[SecretPlan],
        configs: &[ConfigPlan],
    ) -> Names {
        let compose = cx.input.compose;
        let mut net_map: HashMap<String, (String, bool)> = networks
            .iter()
            .map(|n| (n.key.clone(), (n.name.clone(), n.external)))
            .collect();
        // Keys mapped onto the same name share one plan; give every declared key its name.
        for (key, nw) in &compose.networks {
            if !net_map.contains_key(key) {
                let name = if nw.external.external {
                    nw.external
                        .name
                        .clone()
                        .or_else(|| nw.name.clone())
                        .unwrap_or_else(|| key.clone())
                } else {
                    non_empty(&nw.name).unwrap_or_else(|| cx.scope(key))
                };
                net_map.insert(key.clone(), (name, nw.external.external));
            }
        }
        net_map
            .entry("default".to_owned())
            .or_insert_with(|| (cx.scope("default"), false));
        let mut vol_map = HashMap::new();
        for (key, vol) in &compose.volumes {
            let plan = volumes.iter().find(|p| &p.key == key);
            let name = plan.map(|p| p.name.clone()).unwrap_or_else(|| {
                if vol.external.external {
                    vol.external
                        .name
                        .clone()
                        .or_else(|| vol.name.clone())
                        .unwrap_or_else(|| key.clone())
                } else {
                    non_empty(&vol.name).unwrap_or_else(|| cx.scope(key))
                }
            });
            let driver = (vol.driver.is_some() || vol.driver_opts.is_some()).then(|| {
                MountVolumeOptionsDriverConfig {
                    name: non_empty(&vol.driver),
                    options: vol.driver_opts.as_ref().and_then(opt_map),
                }
            });
            vol_map.insert(
                key.clone(),
                VolumeRef {
                    name,
                    external: vol.external.external,
                    labels: cx.object_labels(&vol.labels),
                    driver,
                },
            );
        }
        Names {
            networks: net_map,
            volumes: vol_map,
            secrets: secrets
                .iter()
                .map(|s| (s.key.clone(), s.name.clone()))
                .collect(),
            configs: configs
                .iter()
                .map(|c| (c.key.clone(), c.name.clone()))
                .collect(),
        }
    }
}

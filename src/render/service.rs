//! One compose service -> one Swarm `ServiceSpec` (docker/cli `convert.Service` and helpers), with
//! hearth's labels and spec hash.

use std::collections::HashMap;
use std::str::FromStr;

use bollard::models::{
    EndpointPortConfig, EndpointSpec, GenericResourcesInner,
    GenericResourcesInnerDiscreteResourceSpec, HealthConfig, Limit, Mount, MountBindOptions,
    MountTmpfsOptions, MountType, MountVolumeOptions, NetworkAttachmentConfig, ResourceObject,
    ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecModeReplicatedJob,
    ServiceSpecRollbackConfig, ServiceSpecUpdateConfig, TaskSpec, TaskSpecContainerSpecConfigs,
    TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets,
    TaskSpecLogDriver, TaskSpecPlacement, TaskSpecPlacementPreferences, TaskSpecPlacementSpread,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};

use super::container::{ContainerRefs, container_spec};
use super::objects::{Names, check_label_name_length, service_network_keys};
use super::parse::parse_cpus;
use super::{
    Cx, LABEL_DEPLOYMENT, LABEL_IMAGE, LABEL_MANAGED_BY, LABEL_NAMESPACE, ServicePlan,
    version_label,
};
use crate::compose::model::{
    DEPRECATED_SERVICE_KEYS, Deploy, FileRef, Healthcheck, Service, ServiceVolume, UpdateConfig,
};

/// Renders the service `key`; `None` when it has errors (recorded in `cx`).
pub fn render_service(cx: &mut Cx, names: &Names, key: &str) -> Option<ServicePlan> {
    let svc = &cx.input.compose.services[key];
    let errors_before = cx.diags.len();
    let f = format!("services.{key}");
    warn_ignored(cx, &f, svc);

    let image = image_and_unsupported(cx, &f, svc);
    let deploy = svc.deploy.clone().unwrap_or_default();

    let mode = deploy_mode(cx, &f, &deploy);
    let endpoint = endpoint_spec(cx, &f, svc, &deploy);
    let mounts = mounts(cx, &f, svc, names);
    let resources = resources(cx, &f, &deploy);
    let restart = restart_policy(cx, &f, svc, &deploy);
    let health = svc
        .healthcheck
        .as_ref()
        .and_then(|h| healthcheck(cx, &f, h));
    let networks = networks(cx, &f, key, svc, names);
    let secrets = secret_refs(cx, &f, svc, names);
    let configs = config_refs(cx, &f, svc, names);
    let update_config = deploy
        .update_config
        .as_ref()
        .and_then(|u| update_config(cx, &format!("{f}.deploy.update_config"), u));
    let rollback_config = deploy
        .rollback_config
        .as_ref()
        .and_then(|u| rollback_config(cx, &format!("{f}.deploy.rollback_config"), u));
    let isolation = svc
        .isolation
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| parse_enum(cx, &format!("{f}.isolation"), s));
    if cx.diags.len() > errors_before {
        return None;
    }

    let refs = ContainerRefs {
        mounts,
        health,
        secrets,
        configs,
        isolation,
    };
    let container = container_spec(cx, svc, &image, refs);
    let placement = placement(&deploy);
    let log_driver = log_driver(svc);
    let labels = service_labels(cx, &deploy, image);

    let name = cx.scope(key);
    check_label_name_length(cx, &f, &name);
    let spec = ServiceSpec {
        name: Some(name.clone()),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: Some(resources),
            restart_policy: restart,
            placement: Some(placement),
            networks: non_empty_vec(networks),
            log_driver,
            ..Default::default()
        }),
        mode: Some(mode),
        update_config,
        rollback_config,
        networks: None,
        endpoint_spec: Some(endpoint),
    };
    Some(ServicePlan::new(name, key.to_owned(), spec))
}

/// The service's image (an error when it has none), and errors for the keys hearth does not
/// support (`env_file`, `credential_spec`).
fn image_and_unsupported(cx: &mut Cx, f: &str, svc: &Service) -> String {
    let image = match svc.image.as_deref().filter(|i| !i.trim().is_empty()) {
        Some(i) => i.to_owned(),
        None => {
            cx.error(
                format!("{f}.image"),
                "no image specified (Swarm services need one)",
            );
            String::new()
        }
    };
    if !svc.env_file.is_empty() {
        cx.error(
            format!("{f}.env_file"),
            "env_file is not supported by hearth (docker reads it on the client); list the \
             variables under `environment:`",
        );
    }
    if svc.credential_spec.is_some() {
        cx.error(
            format!("{f}.credential_spec"),
            "credential_spec (Windows only) is not supported",
        );
    }
    image
}

/// The task template's placement: constraints, spread preferences, max replicas per node.
fn placement(deploy: &Deploy) -> TaskSpecPlacement {
    TaskSpecPlacement {
        constraints: non_empty_vec(deploy.placement.constraints.clone()),
        preferences: non_empty_vec(
            deploy
                .placement
                .preferences
                .iter()
                .map(|p| TaskSpecPlacementPreferences {
                    spread: Some(TaskSpecPlacementSpread {
                        spread_descriptor: p.spread.clone(),
                    }),
                })
                .collect(),
        ),
        max_replicas: deploy
            .placement
            .max_replicas_per_node
            .filter(|n| *n > 0)
            .map(|n| n as i64),
        platforms: None,
    }
}

/// The task template's log driver (`logging:`).
fn log_driver(svc: &Service) -> Option<TaskSpecLogDriver> {
    svc.logging.as_ref().map(|l| TaskSpecLogDriver {
        name: l.driver.clone(),
        options: (!l.options.is_empty()).then(|| {
            l.options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
    })
}

/// The service's labels: `deploy.labels`, the pool's extra labels, then hearth's (stack, image,
/// owner, deployment, version).
fn service_labels(cx: &Cx, deploy: &Deploy, image: String) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = deploy
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend(cx.input.extra_labels.clone());
    labels.insert(LABEL_NAMESPACE.into(), cx.stack().into());
    labels.insert(LABEL_IMAGE.into(), image);
    labels.insert(LABEL_MANAGED_BY.into(), "hearth".into());
    labels.insert(LABEL_DEPLOYMENT.into(), cx.input.deployment.into());
    labels.insert(version_label(cx.stack()), cx.input.version.into());
    labels
}

pub(super) fn non_empty(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

pub(super) fn non_empty_vec<T>(v: Vec<T>) -> Option<Vec<T>> {
    if v.is_empty() { None } else { Some(v) }
}

/// Parses a Docker API enum value; unknown values are errors (the daemon would refuse them).
fn parse_enum<T: FromStr>(cx: &mut Cx, field: &str, value: &str) -> Option<T> {
    match value.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            cx.error(field, format!("invalid value {value:?}"));
            None
        }
    }
}

fn opt_enum<T: FromStr>(cx: &mut Cx, field: &str, value: &Option<String>) -> Option<T> {
    value
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| parse_enum(cx, field, s))
}

fn warn_ignored(cx: &mut Cx, f: &str, svc: &Service) {
    for key in svc.extras.ignored.keys() {
        match DEPRECATED_SERVICE_KEYS.iter().find(|(k, _)| k == key) {
            Some((_, why)) => cx.warn(
                &format!("{f}.{key}"),
                format!("ignored (deprecated): {why}"),
            ),
            None => cx.warn(
                &format!("{f}.{key}"),
                "ignored: docker stack deploy does not support it",
            ),
        }
    }
    if !svc.depends_on.is_empty() {
        cx.warn(
            &format!("{f}.depends_on"),
            "Swarm ignores depends_on: services start in any order",
        );
    }
    if !svc.tmpfs.is_empty() {
        cx.warn(
            &format!("{f}.tmpfs"),
            "ignored by docker stack deploy; use a volume of `type: tmpfs`",
        );
    }
    if svc.restart.is_some()
        && svc
            .deploy
            .as_ref()
            .is_some_and(|d| d.restart_policy.is_some())
    {
        cx.warn(
            &format!("{f}.restart"),
            "ignored: deploy.restart_policy is set",
        );
    }
    for (net, opts) in &svc.networks {
        if let Some(o) = opts
            && (o.ipv4_address.is_some() || o.ipv6_address.is_some())
        {
            cx.warn(
                &format!("{f}.networks.{net}"),
                "ipv4_address/ipv6_address are ignored by docker stack deploy",
            );
        }
    }
}

fn deploy_mode(cx: &mut Cx, f: &str, d: &Deploy) -> ServiceSpecMode {
    let replicas = d.replicas.map(|n| n as i64);
    let field = format!("{f}.deploy.mode");
    match d.mode.as_deref().unwrap_or("") {
        "replicated" | "" => ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas }),
            ..Default::default()
        },
        "global" | "global-job" if replicas.is_some() => {
            cx.error(
                field,
                "replicas can only be used with replicated or replicated-job mode",
            );
            ServiceSpecMode::default()
        }
        "global" => ServiceSpecMode {
            global: Some(HashMap::new()),
            ..Default::default()
        },
        "global-job" => ServiceSpecMode {
            global_job: Some(HashMap::new()),
            ..Default::default()
        },
        "replicated-job" => ServiceSpecMode {
            replicated_job: Some(ServiceSpecModeReplicatedJob {
                max_concurrent: replicas,
                total_completions: replicas,
            }),
            ..Default::default()
        },
        other => {
            cx.error(field, format!("unknown mode: {other}"));
            ServiceSpecMode::default()
        }
    }
}

fn endpoint_spec(cx: &mut Cx, f: &str, svc: &Service, d: &Deploy) -> EndpointSpec {
    let mut ports = svc.ports.clone();
    // docker/cli's PortConfig.Compare: published, target, protocol, mode (zero values first).
    ports.sort_by(|a, b| {
        let key = |p: &crate::compose::model::ServicePort| {
            (
                p.published.unwrap_or(0),
                p.target.unwrap_or(0),
                p.protocol.clone().unwrap_or_default(),
                p.mode.clone().unwrap_or_default(),
            )
        };
        key(a).cmp(&key(b))
    });
    let ports: Vec<EndpointPortConfig> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let pf = format!("{f}.ports[{i}]");
            EndpointPortConfig {
                name: None,
                protocol: opt_enum(cx, &format!("{pf}.protocol"), &p.protocol),
                target_port: p.target.filter(|n| *n != 0).map(i64::from),
                published_port: p.published.filter(|n| *n != 0).map(i64::from),
                publish_mode: opt_enum(cx, &format!("{pf}.mode"), &p.mode),
            }
        })
        .collect();
    let mode = d.endpoint_mode.as_ref().map(|m| m.to_lowercase());
    EndpointSpec {
        mode: opt_enum(cx, &format!("{f}.deploy.endpoint_mode"), &mode),
        ports: non_empty_vec(ports),
    }
}

fn mounts(cx: &mut Cx, f: &str, svc: &Service, names: &Names) -> Vec<Mount> {
    let mut out = Vec::new();
    for (i, v) in svc.volumes.iter().enumerate() {
        let vf = format!("{f}.volumes[{i}]");
        if let Some(m) = mount(cx, &vf, v, names) {
            out.push(m);
        }
    }
    out
}

fn mount(cx: &mut Cx, vf: &str, v: &ServiceVolume, names: &Names) -> Option<Mount> {
    let Some(target) = v.target.clone().filter(|t| !t.is_empty()) else {
        cx.error(format!("{vf}.target"), "a mount needs a target");
        return None;
    };
    let source = v.source.clone().filter(|s| !s.is_empty());
    let mut m = Mount {
        target: Some(target),
        source: source.clone(),
        read_only: v.read_only.then_some(true),
        consistency: non_empty(&v.consistency),
        ..Default::default()
    };
    let conflict = |cx: &mut Cx, opt: &str, kind: &str| {
        cx.error(
            vf,
            format!("{opt} options are incompatible with type {kind}"),
        );
    };
    match v.kind.as_str() {
        "volume" => {
            m.typ = Some(MountType::VOLUME);
            if v.bind.is_some() {
                conflict(cx, "bind", "volume");
            }
            if v.tmpfs.is_some() {
                conflict(cx, "tmpfs", "volume");
            }
            let Some(src) = source else {
                return Some(m); // anonymous volume
            };
            let Some(vol) = names.volumes.get(&src) else {
                cx.error(format!("{vf}.source"), format!("undefined volume {src:?}"));
                return None;
            };
            m.source = Some(vol.name.clone());
            let mut opts = MountVolumeOptions {
                no_copy: v.volume.as_ref().filter(|o| o.nocopy).map(|_| true),
                subpath: v.volume.as_ref().and_then(|o| non_empty(&o.subpath)),
                ..Default::default()
            };
            if !vol.external {
                opts.labels = Some(vol.labels.clone());
                opts.driver_config = vol.driver.clone();
            }
            m.volume_options = Some(opts);
        }
        "bind" => {
            m.typ = Some(MountType::BIND);
            if v.volume.is_some() {
                conflict(cx, "volume", "bind");
            }
            if v.tmpfs.is_some() {
                conflict(cx, "tmpfs", "bind");
            }
            match source.as_deref() {
                None => cx.error(
                    format!("{vf}.source"),
                    "invalid bind source, source cannot be empty",
                ),
                Some(s) if !s.starts_with('/') => cx.error(
                    format!("{vf}.source"),
                    format!(
                        "bind source {s:?} is not an absolute path; hearth has no recipe \
                         checkout on the nodes"
                    ),
                ),
                Some(_) => {}
            }
            if let Some(b) = &v.bind {
                m.bind_options = Some(MountBindOptions {
                    propagation: opt_enum(cx, &format!("{vf}.bind.propagation"), &b.propagation),
                    ..Default::default()
                });
            }
        }
        "tmpfs" => {
            m.typ = Some(MountType::TMPFS);
            if source.is_some() {
                cx.error(
                    format!("{vf}.source"),
                    "invalid tmpfs source, source must be empty",
                );
            }
            if v.bind.is_some() {
                conflict(cx, "bind", "tmpfs");
            }
            if v.volume.is_some() {
                conflict(cx, "volume", "tmpfs");
            }
            if let Some(t) = &v.tmpfs {
                m.tmpfs_options = Some(MountTmpfsOptions {
                    size_bytes: t.size.map(|s| s.0).filter(|n| *n != 0),
                    ..Default::default()
                });
            }
        }
        "image" => {
            m.typ = Some(MountType::IMAGE);
            if source.is_none() {
                cx.error(
                    format!("{vf}.source"),
                    "invalid image source, source cannot be empty",
                );
            }
        }
        other => {
            cx.error(
                format!("{vf}.type"),
                format!(
                    "volume type {other:?} is not supported (use volume, bind, tmpfs or image)"
                ),
            );
            return None;
        }
    }
    Some(m)
}

fn resources(cx: &mut Cx, f: &str, d: &Deploy) -> TaskSpecResources {
    let mut cpus = |field: String, v: &Option<String>| -> Option<i64> {
        let v = v.as_deref().filter(|s| !s.is_empty())?;
        match parse_cpus(v) {
            Ok(n) => Some(n).filter(|n| *n != 0),
            Err(e) => {
                cx.error(field, e.to_string());
                None
            }
        }
    };
    let limits = d.resources.limits.as_ref().map(|l| Limit {
        nano_cpus: cpus(format!("{f}.deploy.resources.limits.cpus"), &l.cpus),
        memory_bytes: l.memory.map(|m| m.0).filter(|n| *n != 0),
        pids: l.pids.filter(|n| *n != 0),
    });
    let reservations = d.resources.reservations.as_ref().map(|r| ResourceObject {
        nano_cpus: cpus(format!("{f}.deploy.resources.reservations.cpus"), &r.cpus),
        memory_bytes: r.memory.map(|m| m.0).filter(|n| *n != 0),
        generic_resources: non_empty_vec(
            r.generic_resources
                .iter()
                .map(|g| GenericResourcesInner {
                    named_resource_spec: None,
                    discrete_resource_spec: g.discrete_resource_spec.as_ref().map(|d| {
                        GenericResourcesInnerDiscreteResourceSpec {
                            kind: Some(d.kind.clone()).filter(|k| !k.is_empty()),
                            value: Some(d.value).filter(|v| *v != 0),
                        }
                    }),
                })
                .collect(),
        ),
    });
    TaskSpecResources {
        limits,
        reservations,
        ..Default::default()
    }
}

fn restart_policy(
    cx: &mut Cx,
    f: &str,
    svc: &Service,
    d: &Deploy,
) -> Option<TaskSpecRestartPolicy> {
    if let Some(p) = &d.restart_policy {
        return Some(TaskSpecRestartPolicy {
            condition: opt_enum(
                cx,
                &format!("{f}.deploy.restart_policy.condition"),
                &p.condition,
            ),
            delay: p.delay.map(|d| d.nanos()),
            max_attempts: p.max_attempts.map(|n| n as i64),
            window: p.window.map(|d| d.nanos()),
        });
    }
    // docker/cli falls back to the legacy `restart:` (opts.ParseRestartPolicy).
    let restart = svc.restart.as_deref().filter(|s| !s.is_empty())?;
    let field = format!("{f}.restart");
    let (name, count) = match restart.split_once(':') {
        Some(("", _)) => {
            cx.error(
                field,
                "invalid restart policy format: no policy provided before colon",
            );
            return None;
        }
        Some((n, c)) => (n, c),
        None => (restart, ""),
    };
    let count = if count.is_empty() {
        0
    } else {
        match crate::compose::model::scalars::go_atoi(count) {
            Some(c) if c >= 0 => c,
            Some(_) => {
                cx.error(
                    field,
                    "invalid restart policy: maximum retry count cannot be negative",
                );
                return None;
            }
            None => {
                cx.error(
                    field,
                    "invalid restart policy format: maximum retry count must be an integer",
                );
                return None;
            }
        }
    };
    let max_attempts = (count > 0).then_some(count);
    let condition = match name {
        "no" | "" => return None,
        "always" | "unless-stopped" => TaskSpecRestartPolicyConditionEnum::ANY,
        "on-failure" => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
        other => {
            cx.error(
                field,
                format!(
                    "invalid restart policy: unknown policy '{other}' (must be one of 'no', \
                     'always', 'on-failure', or 'unless-stopped')"
                ),
            );
            return None;
        }
    };
    Some(TaskSpecRestartPolicy {
        condition: Some(condition),
        max_attempts,
        ..Default::default()
    })
}

fn healthcheck(cx: &mut Cx, f: &str, h: &Healthcheck) -> Option<HealthConfig> {
    let test = h.test.clone().unwrap_or_default();
    if h.disable {
        if !test.is_empty() {
            cx.error(
                format!("{f}.healthcheck"),
                "test and disable can't be set at the same time",
            );
            return None;
        }
        return Some(HealthConfig {
            test: Some(vec!["NONE".to_owned()]),
            ..Default::default()
        });
    }
    let nz = |d: Option<crate::compose::model::Duration>| d.map(|d| d.nanos()).filter(|n| *n != 0);
    Some(HealthConfig {
        test: non_empty_vec(test),
        interval: nz(h.interval),
        timeout: nz(h.timeout),
        retries: h.retries.filter(|n| *n != 0).map(|n| n as i64),
        start_period: nz(h.start_period),
        start_interval: nz(h.start_interval),
    })
}

/// Docker's "user-defined" network test: aliases only work on those.
fn is_user_defined(target: &str) -> bool {
    !matches!(target, "default" | "bridge" | "host" | "none") && !target.starts_with("container:")
}

fn networks(
    cx: &mut Cx,
    f: &str,
    key: &str,
    svc: &Service,
    names: &Names,
) -> Vec<NetworkAttachmentConfig> {
    let mut out = Vec::new();
    for net in service_network_keys(&svc.networks) {
        let Some((target, external)) = names.networks.get(&net).cloned() else {
            cx.error(
                format!("{f}.networks.{net}"),
                format!("undefined network {net:?}"),
            );
            continue;
        };
        let opts = svc
            .networks
            .get(&net)
            .cloned()
            .flatten()
            .unwrap_or_default();
        let mut aliases = opts.aliases.clone();
        if is_user_defined(&target) {
            // hearth: on external networks only the stack-scoped name, never the bare one.
            aliases.push(if external {
                cx.scope(key)
            } else {
                key.to_owned()
            });
        }
        out.push(NetworkAttachmentConfig {
            target: Some(target),
            aliases: non_empty_vec(aliases),
            driver_opts: (!opts.driver_opts.is_empty()).then(|| {
                opts.driver_opts
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
        });
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    out
}

/// Name, UID, GID and mode of a reference as docker/cli's `convertFileObject` fills them.
fn file_target(r: &FileRef) -> (String, String, String, u32) {
    (
        r.target
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| r.source.clone()),
        r.uid
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "0".into()),
        r.gid
            .clone()
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| "0".into()),
        r.mode.unwrap_or(0o444),
    )
}

/// Resolves the references of one kind; `None` entries had errors (already reported).
fn resolve_refs(
    cx: &mut Cx,
    field: &str,
    kind: &str,
    refs: &[FileRef],
    declared: &dyn Fn(&str) -> bool,
    names: &HashMap<String, String>,
) -> Vec<(String, (String, String, String, u32))> {
    let mut out: Vec<(String, (String, String, String, u32))> = Vec::new();
    for r in refs {
        if !declared(&r.source) {
            cx.error(field, format!("undefined {kind} {:?}", r.source));
            continue;
        }
        let Some(name) = names.get(&r.source) else {
            continue; // the top-level object had an error of its own
        };
        let file = file_target(r);
        if out.iter().any(|(_, f)| f.0 == file.0) {
            cx.error(
                field,
                format!("duplicate {kind} target for {name} not allowed"),
            );
            continue;
        }
        out.push((name.clone(), file));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn secret_refs(
    cx: &mut Cx,
    f: &str,
    svc: &Service,
    names: &Names,
) -> Vec<TaskSpecContainerSpecSecrets> {
    let compose = cx.input.compose;
    let declared = |k: &str| compose.secrets.contains_key(k);
    resolve_refs(
        cx,
        &format!("{f}.secrets"),
        "secret",
        &svc.secrets,
        &declared,
        &names.secrets,
    )
    .into_iter()
    .map(
        |(name, (file, uid, gid, mode))| TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(file),
                uid: Some(uid),
                gid: Some(gid),
                mode: Some(mode),
            }),
            secret_id: None,
            secret_name: Some(name),
        },
    )
    .collect()
}

fn config_refs(
    cx: &mut Cx,
    f: &str,
    svc: &Service,
    names: &Names,
) -> Vec<TaskSpecContainerSpecConfigs> {
    let compose = cx.input.compose;
    let declared = |k: &str| compose.configs.contains_key(k);
    resolve_refs(
        cx,
        &format!("{f}.configs"),
        "config",
        &svc.configs,
        &declared,
        &names.configs,
    )
    .into_iter()
    .map(
        |(name, (file, uid, gid, mode))| TaskSpecContainerSpecConfigs {
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(file),
                uid: Some(uid),
                gid: Some(gid),
                mode: Some(mode),
            }),
            runtime: None,
            config_id: None,
            config_name: Some(name),
        },
    )
    .collect()
}

fn update_config(cx: &mut Cx, field: &str, u: &UpdateConfig) -> Option<ServiceSpecUpdateConfig> {
    Some(ServiceSpecUpdateConfig {
        parallelism: Some(u.parallelism.unwrap_or(1) as i64),
        delay: u.delay.map(|d| d.nanos()).filter(|n| *n != 0),
        failure_action: opt_enum(cx, &format!("{field}.failure_action"), &u.failure_action),
        monitor: u.monitor.map(|d| d.nanos()).filter(|n| *n != 0),
        max_failure_ratio: Some(u.max_failure_ratio.unwrap_or(0.0)),
        order: opt_enum(cx, &format!("{field}.order"), &u.order),
    })
}

fn rollback_config(
    cx: &mut Cx,
    field: &str,
    u: &UpdateConfig,
) -> Option<ServiceSpecRollbackConfig> {
    Some(ServiceSpecRollbackConfig {
        parallelism: Some(u.parallelism.unwrap_or(1) as i64),
        delay: u.delay.map(|d| d.nanos()).filter(|n| *n != 0),
        failure_action: opt_enum(cx, &format!("{field}.failure_action"), &u.failure_action),
        monitor: u.monitor.map(|d| d.nanos()).filter(|n| *n != 0),
        max_failure_ratio: Some(u.max_failure_ratio.unwrap_or(0.0)),
        order: opt_enum(cx, &format!("{field}.order"), &u.order),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_defined_networks() {
        assert!(is_user_defined("s_default"));
        assert!(is_user_defined("proxy"));
        assert!(!is_user_defined("host"));
        assert!(!is_user_defined("bridge"));
    }
}

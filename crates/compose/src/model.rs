//! The typed compose model: what a merged, interpolated compose file means, as docker/cli's
//! loader (`cli/compose/types`, `cli/compose/loader`) reads it for `docker stack deploy`.
//!
//! The YAML loader hands over a `serde_json::Value`; this module deserializes it (use
//! `serde_path_to_error` to get field paths). Every short and long syntax docker/cli accepts is
//! accepted and normalised here (string-or-list commands, list-or-map labels, short port and volume
//! specs, `external: true | {name}`), numbers may arrive as numeric strings and booleans as
//! `"true"`/`"yes"` strings (docker/cli's post-interpolation casts). Unknown keys are errors, except
//! `x-*` extensions and the service keys `docker stack deploy` ignores with a warning, which are
//! kept in [`ServiceExtras::ignored`] so the renderer can report them.

pub mod scalars;
pub mod short_syntax;

use std::fmt;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

pub use scalars::{Duration, UnitBytes};
pub use short_syntax::{BindOptions, ServicePort, ServiceVolume, TmpfsOptions, VolumeOptions};

use scalars::{bool_, opt_bool, opt_float, opt_int, opt_scalar_string, opt_u32, opt_u64};

/// A whole (merged) compose file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ComposeFile {
    #[serde(default, deserialize_with = "opt_scalar_string")]
    pub version: Option<String>,
    #[serde(default, deserialize_with = "nullable_map")]
    pub services: IndexMap<String, Service>,
    #[serde(default, deserialize_with = "nullable_map")]
    pub networks: IndexMap<String, Network>,
    #[serde(default, deserialize_with = "nullable_map")]
    pub volumes: IndexMap<String, Volume>,
    #[serde(default, deserialize_with = "nullable_map")]
    pub secrets: IndexMap<String, FileObject>,
    #[serde(default, deserialize_with = "nullable_map")]
    pub configs: IndexMap<String, FileObject>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// One service.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Service {
    #[serde(default)]
    pub image: Option<String>,
    /// `command:`; a string is split shell-style. Becomes the container spec's `Args`.
    #[serde(default, deserialize_with = "shell_command")]
    pub command: Option<Vec<String>>,
    /// `entrypoint:`; a string is split shell-style. Becomes the container spec's `Command`.
    #[serde(default, deserialize_with = "shell_command")]
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` -> `Some(VALUE)`; a bare `KEY` (or `KEY: null`) -> `None`.
    #[serde(default, deserialize_with = "mapping_with_equals")]
    pub environment: IndexMap<String, Option<String>>,
    #[serde(default, deserialize_with = "string_list")]
    pub env_file: Vec<String>,
    #[serde(default, deserialize_with = "labels")]
    pub labels: IndexMap<String, String>,
    #[serde(default)]
    pub deploy: Option<Deploy>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, deserialize_with = "ports")]
    pub ports: Vec<ServicePort>,
    #[serde(default, deserialize_with = "service_volumes")]
    pub volumes: Vec<ServiceVolume>,
    #[serde(default, deserialize_with = "file_refs")]
    pub secrets: Vec<FileRef>,
    #[serde(default, deserialize_with = "file_refs")]
    pub configs: Vec<FileRef>,
    /// Network key -> attachment options (`None` for the list form or `key: null`).
    #[serde(default, deserialize_with = "service_networks")]
    pub networks: IndexMap<String, Option<ServiceNetwork>>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default, deserialize_with = "opt_scalar_string")]
    pub user: Option<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub stop_grace_period: Option<Duration>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default, deserialize_with = "labels")]
    pub sysctls: IndexMap<String, String>,
    #[serde(default)]
    pub ulimits: IndexMap<String, Ulimit>,
    #[serde(default)]
    pub logging: Option<Logging>,
    #[serde(default, deserialize_with = "string_list")]
    pub dns: Vec<String>,
    #[serde(default, deserialize_with = "string_list")]
    pub dns_search: Vec<String>,
    /// Normalised to `host:ip` entries (docker/cli's `HostsList`).
    #[serde(default, deserialize_with = "hosts_list")]
    pub extra_hosts: Vec<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub init: Option<bool>,
    #[serde(default, deserialize_with = "bool_")]
    pub tty: bool,
    #[serde(default, deserialize_with = "bool_")]
    pub stdin_open: bool,
    #[serde(default, deserialize_with = "bool_")]
    pub read_only: bool,
    /// Service-level `tmpfs:`; `docker stack deploy` ignores it (long-syntax tmpfs mounts work).
    #[serde(default, deserialize_with = "string_list")]
    pub tmpfs: Vec<String>,
    /// Accepted; Swarm does not honour it (the renderer warns).
    #[serde(default, deserialize_with = "depends_on")]
    pub depends_on: Vec<String>,
    /// Legacy restart policy, used by docker/cli when `deploy.restart_policy` is absent.
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub isolation: Option<String>,
    #[serde(default, deserialize_with = "opt_int")]
    pub oom_score_adj: Option<i64>,
    #[serde(default)]
    pub credential_spec: Option<CredentialSpec>,
    #[serde(flatten)]
    pub extras: ServiceExtras,
}

/// `deploy:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub replicas: Option<u64>,
    #[serde(default, deserialize_with = "labels")]
    pub labels: IndexMap<String, String>,
    #[serde(default)]
    pub update_config: Option<UpdateConfig>,
    #[serde(default)]
    pub rollback_config: Option<UpdateConfig>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default)]
    pub placement: Placement,
    #[serde(default)]
    pub endpoint_mode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    #[serde(default, deserialize_with = "opt_u64")]
    pub parallelism: Option<u64>,
    #[serde(default)]
    pub delay: Option<Duration>,
    #[serde(default)]
    pub failure_action: Option<String>,
    #[serde(default)]
    pub monitor: Option<Duration>,
    #[serde(default, deserialize_with = "opt_float")]
    pub max_failure_ratio: Option<f64>,
    #[serde(default)]
    pub order: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub limits: Option<Limits>,
    #[serde(default)]
    pub reservations: Option<Reservations>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Kept as text; parsed like docker/cli's `ParseCPUs` when rendering.
    #[serde(default, deserialize_with = "opt_scalar_string")]
    pub cpus: Option<String>,
    #[serde(default)]
    pub memory: Option<UnitBytes>,
    #[serde(default, deserialize_with = "opt_int")]
    pub pids: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reservations {
    #[serde(default, deserialize_with = "opt_scalar_string")]
    pub cpus: Option<String>,
    #[serde(default)]
    pub memory: Option<UnitBytes>,
    #[serde(default)]
    pub generic_resources: Vec<GenericResource>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericResource {
    #[serde(default)]
    pub discrete_resource_spec: Option<DiscreteResourceSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscreteResourceSpec {
    #[serde(default)]
    pub kind: String,
    #[serde(default, deserialize_with = "scalars::int")]
    pub value: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub delay: Option<Duration>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_attempts: Option<u64>,
    #[serde(default)]
    pub window: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    #[serde(default)]
    pub constraints: Vec<String>,
    #[serde(default)]
    pub preferences: Vec<PlacementPreference>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub max_replicas_per_node: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementPreference {
    #[serde(default)]
    pub spread: Option<String>,
}

/// `healthcheck:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    /// A string becomes `["CMD-SHELL", string]`; a list is kept as given.
    #[serde(default, deserialize_with = "healthcheck_test")]
    pub test: Option<Vec<String>>,
    #[serde(default)]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub retries: Option<u64>,
    #[serde(default)]
    pub start_period: Option<Duration>,
    #[serde(default)]
    pub start_interval: Option<Duration>,
    #[serde(default, deserialize_with = "bool_")]
    pub disable: bool,
}

/// A secret or config reference of a service (short form: the key alone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    pub source: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default, deserialize_with = "opt_scalar_string")]
    pub uid: Option<String>,
    #[serde(default, deserialize_with = "opt_scalar_string")]
    pub gid: Option<String>,
    #[serde(default, deserialize_with = "opt_u32")]
    pub mode: Option<u32>,
}

/// A service's attachment to one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceNetwork {
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default, deserialize_with = "labels")]
    pub driver_opts: IndexMap<String, String>,
    #[serde(default)]
    pub ipv4_address: Option<String>,
    #[serde(default)]
    pub ipv6_address: Option<String>,
}

/// A ulimit; the single-number form sets soft and hard alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

impl<'de> Deserialize<'de> for Ulimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            #[serde(deserialize_with = "scalars::int")]
            soft: i64,
            #[serde(deserialize_with = "scalars::int")]
            hard: i64,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ulimit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or {soft, hard}")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Ulimit, E> {
                Ok(Ulimit { soft: n, hard: n })
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Ulimit, E> {
                let n = i64::try_from(n).map_err(|_| E::custom("ulimit out of range"))?;
                self.visit_i64(n)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Ulimit, E> {
                let n = scalars::go_atoi(s)
                    .ok_or_else(|| E::custom(format!("expected an integer, got {s:?}")))?;
                self.visit_i64(n)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Ulimit, A::Error> {
                let l = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Ulimit {
                    soft: l.soft,
                    hard: l.hard,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default, deserialize_with = "labels")]
    pub options: IndexMap<String, String>,
}

/// Windows credential specs; accepted so the renderer can reject them with a clear message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    #[serde(default)]
    pub config: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub registry: Option<String>,
}

/// A top-level network.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Network {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default, deserialize_with = "labels")]
    pub driver_opts: IndexMap<String, String>,
    #[serde(default)]
    pub ipam: Option<Ipam>,
    #[serde(default)]
    pub external: External,
    #[serde(default, deserialize_with = "bool_")]
    pub internal: bool,
    #[serde(default, deserialize_with = "bool_")]
    pub attachable: bool,
    #[serde(default, deserialize_with = "labels")]
    pub labels: IndexMap<String, String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipam {
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub config: Vec<IpamPool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpamPool {
    #[serde(default)]
    pub subnet: Option<String>,
}

/// A top-level volume.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Volume {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub driver: Option<String>,
    /// `Some` (possibly empty) when `driver_opts:` is given at all, as docker/cli distinguishes.
    #[serde(default, deserialize_with = "opt_labels")]
    pub driver_opts: Option<IndexMap<String, String>>,
    #[serde(default)]
    pub external: External,
    #[serde(default, deserialize_with = "labels")]
    pub labels: IndexMap<String, String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A top-level secret or config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FileObject {
    #[serde(default)]
    pub name: Option<String>,
    /// Path relative to the recipe root.
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub external: External,
    #[serde(default, deserialize_with = "labels")]
    pub labels: IndexMap<String, String>,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default, deserialize_with = "labels")]
    pub driver_opts: IndexMap<String, String>,
    #[serde(default)]
    pub template_driver: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// `external: true | false | {name: x}` (the object form means external).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct External {
    pub external: bool,
    /// The deprecated `external.name`.
    pub name: Option<String>,
}

impl<'de> Deserialize<'de> for External {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Obj {
            #[serde(default)]
            name: Option<String>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = External;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean or {name: ...}")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<External, E> {
                Ok(External {
                    external: b,
                    name: None,
                })
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<External, E> {
                let b = scalars::yaml_bool(s)
                    .ok_or_else(|| E::custom(format!("invalid boolean: {s}")))?;
                self.visit_bool(b)
            }
            fn visit_unit<E: de::Error>(self) -> Result<External, E> {
                Ok(External::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<External, A::Error> {
                let o = Obj::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(External {
                    external: true,
                    name: o.name,
                })
            }
        }
        d.deserialize_any(V)
    }
}

// ---- extension and ignored keys --------------------------------------------------------------

/// `x-*` keys of an object (anything else unknown is an error).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extensions(pub IndexMap<String, Value>);

impl<'de> Deserialize<'de> for Extensions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (ext, _) = d.deserialize_map(ExtrasVisitor { service: false })?;
        Ok(Extensions(ext))
    }
}

/// Service keys that `docker stack deploy` ignores with a warning ("Ignoring unsupported options"):
/// docker/cli `types.UnsupportedProperties`, the one copy in hearth (the loader's warnings read it
/// too). `restart` is on docker/cli's list, yet its convert falls back to it when
/// `deploy.restart_policy` is absent, so the model keeps it as a field and the loader warns
/// differently for it.
pub const UNSUPPORTED_SERVICE_KEYS: &[&str] = &[
    "build",
    "cgroupns_mode",
    "cgroup_parent",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "restart",
    "security_opt",
    "shm_size",
    "userns_mode",
];

/// Service keys `docker stack deploy` ignores as deprecated, with its explanation (docker/cli
/// `types.DeprecatedProperties`).
pub const DEPRECATED_SERVICE_KEYS: &[(&str, &str)] = &[
    (
        "container_name",
        "Setting the container name is not supported.",
    ),
    (
        "expose",
        "Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
    ),
];

/// Service keys `docker stack deploy` refuses, with its explanation (docker/cli
/// `types.ForbiddenProperties`, service level).
pub const FORBIDDEN_SERVICE_KEYS: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    (
        "volume_driver",
        "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there.",
    ),
    (
        "volumes_from",
        "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.",
    ),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    (
        "memswap_limit",
        "Set resource limits using deploy.resources",
    ),
];

/// A service's `x-*` keys and the keys `docker stack deploy` ignores (unsupported or deprecated).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceExtras {
    pub extensions: IndexMap<String, Value>,
    pub ignored: IndexMap<String, Value>,
}

impl<'de> Deserialize<'de> for ServiceExtras {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (extensions, ignored) = d.deserialize_map(ExtrasVisitor { service: true })?;
        Ok(ServiceExtras {
            extensions,
            ignored,
        })
    }
}

type Extra = (IndexMap<String, Value>, IndexMap<String, Value>);

struct ExtrasVisitor {
    service: bool,
}

impl<'de> Visitor<'de> for ExtrasVisitor {
    type Value = Extra;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Extra, A::Error> {
        let mut ext = IndexMap::new();
        let mut ignored = IndexMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.starts_with("x-") {
                ext.insert(key, map.next_value()?);
                continue;
            }
            if self.service {
                if let Some((_, why)) = FORBIDDEN_SERVICE_KEYS.iter().find(|(k, _)| *k == key) {
                    return Err(de::Error::custom(format!(
                        "unsupported option `{key}` (docker stack deploy refuses it): {why}"
                    )));
                }
                let known = UNSUPPORTED_SERVICE_KEYS.contains(&key.as_str())
                    || DEPRECATED_SERVICE_KEYS.iter().any(|(k, _)| *k == key);
                if known {
                    ignored.insert(key, map.next_value()?);
                    continue;
                }
            }
            return Err(de::Error::custom(format!("unknown field `{key}`")));
        }
        Ok((ext, ignored))
    }
}

// ---- list-or-map and string-or-list helpers --------------------------------------------------

/// A map whose values may be `null` (YAML `key:` with nothing), read as the default value.
fn nullable_map<'de, D, T>(d: D) -> Result<IndexMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let m: Option<IndexMap<String, Option<T>>> = Option::deserialize(d)?;
    Ok(m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// A scalar map value: string/number/bool as Go's `fmt.Sprint` text, `null` as `None`.
struct MapValue(Option<String>);

impl<'de> Deserialize<'de> for MapValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_scalar_string(d).map(MapValue)
    }
}

enum ListOrMap {
    List(Vec<String>),
    Map(IndexMap<String, Option<String>>),
}

impl<'de> Deserialize<'de> for ListOrMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ListOrMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings or a mapping")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ListOrMap, A::Error> {
                #[derive(Deserialize)]
                struct Item(#[serde(deserialize_with = "scalars::scalar_string")] String);
                let mut out = Vec::new();
                while let Some(Item(s)) = seq.next_element()? {
                    out.push(s);
                }
                Ok(ListOrMap::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListOrMap, A::Error> {
                let mut out = IndexMap::new();
                while let Some((k, MapValue(v))) = map.next_entry::<String, MapValue>()? {
                    out.insert(k, v);
                }
                Ok(ListOrMap::Map(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ListOrMap, E> {
                Ok(ListOrMap::Map(IndexMap::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// docker/cli `MappingWithEquals` (environment): `K=V` -> `Some(V)`, bare `K` / `K: null` -> `None`.
fn mapping_with_equals<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Option<String>>, D::Error> {
    Ok(match ListOrMap::deserialize(d)? {
        ListOrMap::Map(m) => m,
        ListOrMap::List(l) => l
            .into_iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (e, None),
            })
            .collect(),
    })
}

/// docker/cli `Labels` / `Mapping`: `K=V` -> `V`, bare `K` and `null` -> `""`.
fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, String>, D::Error> {
    Ok(mapping_with_equals(d)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

fn opt_labels<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<IndexMap<String, String>>, D::Error> {
    labels(d).map(Some)
}

/// docker/cli `HostsList`: map `host: ip` or list `host:ip` / `host=ip`, normalised to `host:ip`
/// (brackets around IPv6 addresses removed; list entries without a separator dropped).
fn hosts_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let pairs: Vec<(String, String)> = match ListOrMap::deserialize(d)? {
        ListOrMap::Map(m) => {
            let mut v: Vec<String> = m
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| format!("{k}:{v}")))
                .collect();
            v.sort();
            v.into_iter()
                .filter_map(|e| e.split_once(':').map(|(h, i)| (h.to_owned(), i.to_owned())))
                .collect()
        }
        ListOrMap::List(l) => l
            .iter()
            .filter_map(|e| e.split_once('=').or_else(|| e.split_once(':')))
            .map(|(h, i)| (h.to_owned(), i.to_owned()))
            .collect(),
    };
    Ok(pairs
        .into_iter()
        .map(|(host, ip)| {
            let ip = if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
                ip[1..ip.len() - 1].to_owned()
            } else {
                ip
            };
            format!("{host}:{ip}")
        })
        .collect())
}

enum StrOrList {
    Str(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for StrOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StrOrList, E> {
                Ok(StrOrList::Str(s.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrOrList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(StrOrList::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// docker/cli `StringList`: a string is a one-element list.
fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Option::<StrOrList>::deserialize(d)? {
        None => Vec::new(),
        Some(StrOrList::Str(s)) => vec![s],
        Some(StrOrList::List(l)) => l,
    })
}

/// docker/cli `ShellCommand`: a string is split shell-style.
fn shell_command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Option::<StrOrList>::deserialize(d)? {
        None => Ok(None),
        Some(StrOrList::List(l)) => Ok(Some(l)),
        Some(StrOrList::Str(s)) => shell_words::split(&s)
            .map(Some)
            .map_err(|e| de::Error::custom(format!("cannot split {s:?} shell-style: {e}"))),
    }
}

/// docker/cli `HealthCheckTest`: a string means `["CMD-SHELL", string]`.
fn healthcheck_test<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(match Option::<StrOrList>::deserialize(d)? {
        None => None,
        Some(StrOrList::Str(s)) => Some(vec!["CMD-SHELL".to_owned(), s]),
        Some(StrOrList::List(l)) => Some(l),
    })
}

/// `depends_on`: a list, or (compose-spec) a map whose keys are the services.
fn depends_on<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of service names or a mapping")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some((k, _)) = map.next_entry::<String, de::IgnoredAny>()? {
                out.push(k);
            }
            Ok(out)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(V)
}

/// Service `networks:`: a list of keys, or a map of key -> options or `null`.
fn service_networks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, Option<ServiceNetwork>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = IndexMap<String, Option<ServiceNetwork>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of network names or a mapping")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = IndexMap::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.insert(s, None);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = IndexMap::new();
            while let Some((k, v)) = map.next_entry::<String, Option<ServiceNetwork>>()? {
                out.insert(k, v);
            }
            Ok(out)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(IndexMap::new())
        }
    }
    d.deserialize_any(V)
}

/// One `ports:` entry: a number, a short spec (possibly several ports) or the long form.
struct PortEntry(Vec<ServicePort>);

impl<'de> Deserialize<'de> for PortEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number, a port spec string or {target, published, ...}")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<PortEntry, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<PortEntry, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PortEntry, E> {
                short_syntax::parse_port_spec(s)
                    .map(PortEntry)
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PortEntry, A::Error> {
                ServicePort::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|p| PortEntry(vec![p]))
            }
        }
        d.deserialize_any(V)
    }
}

fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServicePort>, D::Error> {
    let entries: Option<Vec<PortEntry>> = Option::deserialize(d)?;
    Ok(entries.into_iter().flatten().flat_map(|e| e.0).collect())
}

/// One `volumes:` entry of a service: a short spec or the long form.
struct VolumeEntry(ServiceVolume);

impl<'de> Deserialize<'de> for VolumeEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VolumeEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a volume spec string or {type, source, target, ...}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<VolumeEntry, E> {
                short_syntax::parse_volume_spec(s)
                    .map(VolumeEntry)
                    .map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<VolumeEntry, A::Error> {
                ServiceVolume::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(VolumeEntry)
            }
        }
        d.deserialize_any(V)
    }
}

fn service_volumes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ServiceVolume>, D::Error> {
    let entries: Option<Vec<VolumeEntry>> = Option::deserialize(d)?;
    Ok(entries.into_iter().flatten().map(|e| e.0).collect())
}

/// One secret/config reference: the key alone or the long form.
struct FileRefEntry(FileRef);

impl<'de> Deserialize<'de> for FileRefEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FileRefEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name or {source, target, uid, gid, mode}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FileRefEntry, E> {
                Ok(FileRefEntry(FileRef {
                    source: s.to_owned(),
                    ..FileRef::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FileRefEntry, A::Error> {
                FileRef::deserialize(de::value::MapAccessDeserializer::new(map)).map(FileRefEntry)
            }
        }
        d.deserialize_any(V)
    }
}

fn file_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FileRef>, D::Error> {
    let entries: Option<Vec<FileRefEntry>> = Option::deserialize(d)?;
    Ok(entries.into_iter().flatten().map(|e| e.0).collect())
}

#[cfg(test)]
mod tests;

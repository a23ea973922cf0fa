//! Rendering: a typed compose file -> the desired [`StackSpec`] of Swarm objects, exactly as
//! `docker stack deploy` (docker/cli `cli/compose/convert`) would build them, plus hearth's labels.
//!
//! Pure: no Docker calls, no filesystem (recipe files come through [`RenderInput::read_file`]).
//! The output is deterministic: every list is sorted, and [`canonical_json`] gives the same bytes
//! for the same input (label maps included), which is what `hearth.spec-hash` is computed over.
//!
//! Deliberate differences from `docker stack deploy`, each on purpose:
//! - on external networks a service gets only the alias `<stack>_<service>`, never the bare
//!   service name (so `app` of one stack can never answer for another's);
//! - configs without a compose `name:` are named `<stack>_<key>_<first 10 hex of sha256(data)>`
//!   because Swarm configs are immutable (a `name:` is used as written, as docker does);
//! - `depends_on` is reported as a warning; a service without an image is an error;
//! - relative bind-mount sources are errors (there is no recipe checkout on the nodes);
//! - named volumes, networks, secrets and configs also carry `hearth.managed-by` and
//!   `hearth.deployment`; services also `hearth.spec-hash` and `coop-cloud.<stack>.version`.
//!
//! Secret and config references carry names only; the applier fills in `SecretID` / `ConfigID`.

mod container;
mod image;
mod keys;
pub use keys::docker_key_names;
mod objects;
mod parse;
pub use parse::base64;
mod service;
mod service_plan;
pub use service_plan::ServicePlan;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ConfigSpec, Driver, NetworkCreateRequest, ServiceSpec, VolumeCreateRequest};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::compose::model::ComposeFile;
use crate::diag::{Diagnostic, Diagnostics, Pos};

/// Label docker/cli puts on every stack object.
pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
/// Label docker/cli puts on services: the image as written in the compose file.
pub const LABEL_IMAGE: &str = "com.docker.stack.image";
/// `hearth.managed-by=hearth` on every object hearth creates.
pub const LABEL_MANAGED_BY: &str = "hearth.managed-by";
/// `hearth.deployment=<deployment name>` on every object hearth creates.
pub const LABEL_DEPLOYMENT: &str = "hearth.deployment";
/// `hearth.pool=<pool name>` on every object: pruning only ever considers its own pool's objects.
pub const LABEL_POOL: &str = "hearth.pool";
/// `hearth.spec-hash=<sha256 hex>` on services: hash of the canonical spec without this label.
pub const LABEL_SPEC_HASH: &str = "hearth.spec-hash";

/// abra's version label on services: `coop-cloud.<stack>.version`.
pub fn version_label(stack: &str) -> String {
    format!("coop-cloud.{stack}.version")
}

/// Reads a file of the recipe at the rendered version, by recipe-root-relative path
/// (`Ok(None)`: no such file).
pub type ReadFile<'a> = &'a dyn Fn(&str) -> Result<Option<Vec<u8>>, String>;

/// Everything rendering needs.
pub struct RenderInput<'a> {
    /// The hearth Deployment's name (`hearth.deployment` label).
    pub deployment: &'a str,
    /// The stack name (the `<stack>_` prefix and `com.docker.stack.namespace`).
    pub stack: &'a str,
    /// The recipe version being rendered (`coop-cloud.<stack>.version` label).
    pub version: &'a str,
    /// What diagnostics name as their file (e.g. `gitea@3.6.0:compose.yml`); the caller may map
    /// a diagnostic's field path back to a line.
    pub source: &'a str,
    pub compose: &'a ComposeFile,
    pub read_file: ReadFile<'a>,
    /// The pool's extra labels, put on every object (not on containers).
    pub extra_labels: &'a BTreeMap<String, String>,
}

/// The desired Swarm state of one stack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackSpec {
    pub stack: String,
    /// Networks the services use (only those, as docker/cli), sorted by name.
    pub networks: Vec<NetworkPlan>,
    /// Named volumes the services mount, sorted by name.
    pub volumes: Vec<VolumePlan>,
    /// Every top-level secret, sorted by name.
    pub secrets: Vec<SecretPlan>,
    /// Every top-level config, sorted by name.
    pub configs: Vec<ConfigPlan>,
    /// Sorted by name.
    pub services: Vec<ServicePlan>,
    /// Things `docker stack deploy` ignores or Swarm does not honour, one sentence each.
    pub warnings: Vec<String>,
}

/// The longest compose key that becomes `<stack>_<key>` under Swarm's 63-character limit
/// (services, and the overlay networks the services use, `default` included), or one less for
/// a secret (64): what the stack name must leave room for (manifest::names::stack_name).
pub fn longest_scoped_key(compose: &crate::compose::model::ComposeFile) -> usize {
    let services = compose.services.keys().map(String::len);
    let networks = compose
        .services
        .values()
        .flat_map(|s| objects::service_network_keys(&s.networks))
        .filter(|k| {
            compose.networks.get(k).is_none_or(|n| {
                !n.external.external
                    && n.name.as_deref().is_none_or(str::is_empty)
                    && n.driver
                        .as_deref()
                        .is_none_or(|d| d.is_empty() || d == "overlay")
            })
        })
        .map(|k| k.len());
    let secrets = compose
        .secrets
        .iter()
        .filter(|(_, s)| !s.external.external && s.name.as_deref().is_none_or(str::is_empty))
        .map(|(k, _)| k.len().saturating_sub(1));
    services.chain(networks).chain(secrets).max().unwrap_or(0)
}

impl StackSpec {
    /// [`longest_scoped_key`] read back from a rendering (for the pool-wide name checks).
    pub fn longest_scoped_key(&self) -> usize {
        let scoped = |name: &str, key: &str| {
            name.strip_prefix(self.stack.as_str())
                .and_then(|r| r.strip_prefix('_'))
                == Some(key)
        };
        let services = self.services.iter().map(|s| s.key.len());
        let networks = self
            .networks
            .iter()
            .filter(|n| {
                !n.external
                    && scoped(&n.name, &n.key)
                    && n.spec
                        .as_ref()
                        .and_then(|s| s.driver.as_deref())
                        .is_none_or(|d| d == objects::DEFAULT_NETWORK_DRIVER)
            })
            .map(|n| n.key.len());
        let secrets = self
            .secrets
            .iter()
            .filter(|s| !s.external && scoped(&s.name, &s.key))
            .map(|s| s.key.len().saturating_sub(1));
        services.chain(networks).chain(secrets).max().unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkPlan {
    /// The Swarm name (`<stack>_<key>`, or `name:`, or the external name).
    pub name: String,
    /// The compose key.
    pub key: String,
    /// External networks must exist; hearth neither creates nor prefixes them.
    pub external: bool,
    /// What to create (`None` when external).
    pub spec: Option<NetworkCreateRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumePlan {
    pub name: String,
    pub key: String,
    pub external: bool,
    /// What the daemon will create on first mount (`None` when external). Mounts carry the same
    /// labels and driver, so creating it up front is optional.
    pub spec: Option<VolumeCreateRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretPlan {
    /// The Swarm name: what `name:` interpolated to, else `<stack>_<key>` (external without
    /// `name:`: the key itself, as docker/cli).
    pub name: String,
    pub key: String,
    pub external: bool,
    /// Labels to create it with (namespace, hearth's, and the compose `labels:`).
    pub labels: BTreeMap<String, String>,
    /// `file:`, normalised and relative to the recipe root (the file exists at this version).
    pub file: Option<String>,
    /// `driver:` / `driver_opts:` (a driver-made secret, created with empty data).
    pub driver: Option<Driver>,
    pub template_driver: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigPlan {
    /// The Swarm name: the compose `name:` as written, else `<stack>_<key>_<first 10 hex of
    /// sha256(data)>` within 64 characters; external: as given.
    pub name: String,
    pub key: String,
    pub external: bool,
    /// The spec with its data (base64) and labels; `None` when external.
    pub spec: Option<ConfigSpec>,
    pub template_driver: Option<String>,
}

/// Renders a compose file into a stack. All problems are reported together.
pub fn render(input: &RenderInput) -> Result<StackSpec, Diagnostics> {
    let mut cx = Cx {
        input,
        diags: Vec::new(),
        warnings: Vec::new(),
    };
    let networks = objects::networks(&mut cx);
    let volumes = objects::volumes(&mut cx);
    let secrets = objects::secrets(&mut cx);
    let configs = objects::configs(&mut cx);
    let names = objects::Names::new(&cx, &networks, &volumes, &secrets, &configs);
    let mut keys: Vec<&String> = input.compose.services.keys().collect();
    keys.sort();
    let mut services = Vec::new();
    for key in keys {
        if let Some(plan) = service::render_service(&mut cx, &names, key) {
            services.push(plan);
        }
    }
    if !cx.diags.is_empty() {
        return Err(Diagnostics(cx.diags));
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    // The controller keeps every rendered stack for the whole run: no spare capacity.
    let mut stack = StackSpec {
        stack: input.stack.to_owned(),
        networks,
        volumes,
        secrets,
        configs,
        services,
        warnings: cx.warnings,
    };
    stack.networks.shrink_to_fit();
    stack.volumes.shrink_to_fit();
    stack.secrets.shrink_to_fit();
    stack.configs.shrink_to_fit();
    stack.services.shrink_to_fit();
    stack.warnings.shrink_to_fit();
    Ok(stack)
}

/// Rendering context: the input and the problems found so far.
struct Cx<'i, 'a> {
    input: &'i RenderInput<'a>,
    diags: Vec<Diagnostic>,
    warnings: Vec<String>,
}

impl Cx<'_, '_> {
    fn stack(&self) -> &str {
        self.input.stack
    }

    /// `<stack>_<name>` (docker/cli's `Namespace.Scope`).
    fn scope(&self, name: &str) -> String {
        format!("{}_{}", self.input.stack, name)
    }

    fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(
            self.input.source,
            Pos::default(),
            field,
            message,
        ));
    }

    fn warn(&mut self, field: &str, message: impl AsRef<str>) {
        self.warnings.push(format!(
            "{}: {field}: {}",
            self.input.source,
            message.as_ref()
        ));
    }

    /// `labels` plus the namespace label and hearth's object labels.
    fn object_labels<'l>(
        &self,
        labels: impl IntoIterator<Item = (&'l String, &'l String)>,
    ) -> HashMap<String, String> {
        let mut out: HashMap<String, String> = labels
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.extend(self.input.extra_labels.clone());
        out.insert(LABEL_NAMESPACE.into(), self.input.stack.into());
        out.insert(LABEL_MANAGED_BY.into(), "hearth".into());
        out.insert(LABEL_DEPLOYMENT.into(), self.input.deployment.into());
        out
    }
}

/// JSON with every object's keys sorted (recursively) and no whitespace: the same value always
/// gives the same bytes, whatever map types it was built from.
pub fn canonical_json<T: Serialize>(value: &T) -> String {
    match canonical_value(value) {
        Ok(v) => v.to_string(),
        // Only non-string map keys or failing Serialize impls end here; none exist in our types.
        Err(e) => format!("\"unserializable: {e}\""),
    }
}

/// `value` as JSON with every object's keys sorted (label maps are `HashMap`s), so printing it
/// gives the same bytes for the same input.
pub fn canonical_value<T: Serialize>(value: &T) -> Result<serde_json::Value, serde_json::Error> {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let sorted: BTreeMap<String, serde_json::Value> =
                    m.into_iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    serde_json::to_value(value).map(sort)
}

/// `hearth.spec-hash` of a service spec: sha256 hex of its canonical JSON without that label.
pub fn spec_hash(spec: &ServiceSpec) -> String {
    let mut spec = spec.clone();
    if let Some(labels) = spec.labels.as_mut() {
        labels.remove(LABEL_SPEC_HASH);
    }
    hex::encode(Sha256::digest(canonical_json(&spec).as_bytes()))
}

impl StackSpec {
    /// `(compose key, recipe path)` of every non-external secret made from a recipe file.
    pub fn recipe_file_secrets(&self) -> Vec<(String, String)> {
        self.secrets
            .iter()
            .filter(|s| !s.external)
            .filter_map(|s| Some((s.key.clone(), s.file.clone()?)))
            .collect()
    }

    /// The whole stack as canonical JSON (deterministic bytes).
    pub fn to_canonical_json(&self) -> String {
        canonical_json(self)
    }
}

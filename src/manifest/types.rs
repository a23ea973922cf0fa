//! Manifest types for `apiVersion: hearth/v1`: the `Pool` and `Deployment` kinds (DESIGN §2).
//!
//! The serde shapes mirror the YAML exactly (`metadata`, `spec`, camelCase keys, unknown fields
//! rejected). Defaults live here; loading and positions live in `load`, checks in `validate`.

use super::fields::{self, Payload};
use crate::diag::Pos;
use indexmap::IndexMap;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The only supported `apiVersion`.
pub const API_VERSION: &str = "hearth/v1";

/// Where a manifest document came from, and where each of its fields sits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    pub file: PathBuf,
    /// Position of the document's root node (its first key).
    pub pos: Pos,
    /// Position of every node of the document by dotted path (`spec.probes[1].tcp.port`).
    pub fields: BTreeMap<String, Pos>,
}

impl Origin {
    /// Position of the node at `path`, or the document's position when the path is not recorded.
    pub fn pos_of(&self, path: &str) -> Pos {
        self.fields.get(path).copied().unwrap_or(self.pos)
    }
}

/// `metadata` of either kind.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub annotations: IndexMap<String, String>,
}

/// `kind: Pool`: the one pool a manifest set describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub metadata: Metadata,
    pub spec: PoolSpec,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PoolSpec {
    /// Base domain for derived domains.
    pub domain: String,
    /// Directory of recipe git repos (abra's layout), `~` expanded.
    #[serde(default = "default_recipes", deserialize_with = "fields::tilde_path")]
    pub recipes: PathBuf,
    #[serde(default)]
    pub defaults: PoolDefaults,
    /// Extra labels on every object hearth creates for this pool (services, networks, volumes,
    /// secrets, configs), e.g. an owner or, in tests, `hearth.test=<test>`.
    #[serde(default)]
    pub labels: IndexMap<String, String>,
}

fn default_recipes() -> PathBuf {
    fields::expand_tilde("~/.abra/recipes", fields::home_dir().as_deref())
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PoolDefaults {
    #[serde(deserialize_with = "fields::duration")]
    pub progress_deadline: Duration,
    pub self_heal: bool,
    pub prune: bool,
    pub concurrency: u32,
}

impl Default for PoolDefaults {
    fn default() -> Self {
        PoolDefaults {
            progress_deadline: Duration::from_secs(600),
            self_heal: true,
            prune: false,
            concurrency: 4,
        }
    }
}

/// `kind: Deployment`: one app deployment (one Swarm stack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub metadata: Metadata,
    pub spec: DeploymentSpec,
    pub origin: Origin,
}

impl Deployment {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Provider,
    Canonical,
    #[default]
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    #[default]
    Running,
    /// Undeployed, volumes kept.
    Parked,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeploymentSpec {
    pub recipe: String,
    /// A tag of the recipe repo.
    pub version: String,
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub state: DesiredState,
    /// Explicit domain; derived when absent (see `names::derive_domain`).
    #[serde(default)]
    pub domain: Option<String>,
    /// Compose files; when absent, `COMPOSE_FILE` from env / `.env.sample` decides.
    #[serde(default)]
    pub compose_files: Option<Vec<String>>,
    /// Overrides on top of `.env.sample`. Scalars are taken as written: `PORT: 8080` and
    /// `DEBUG: true` give the text `8080` and `true` (not re-formatted numbers); null is an error.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    #[serde(default)]
    pub secrets: IndexMap<String, SecretSource>,
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// Overrides the pool's `defaults.progressDeadline`.
    #[serde(default, deserialize_with = "fields::opt_duration")]
    pub progress_deadline: Option<Duration>,
    #[serde(default)]
    pub advance: Advance,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub suspend: bool,
    /// Keep services with local volumes on the node holding their data.
    #[serde(default = "yes")]
    pub pin_volumes: bool,
    /// Git URL of the recipe when it is not in the pool's recipes directory.
    #[serde(default)]
    pub source: Option<String>,
}

fn yes() -> bool {
    true
}

/// How a secret the manifest lists is created.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum SecretSource {
    Generate(Generate),
    /// Content read from this file; a relative path is resolved against the manifest's directory
    /// at load time, `~` is expanded.
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Generate {
    pub length: usize,
    pub charset: Charset,
}

impl Default for Generate {
    fn default() -> Self {
        Generate {
            length: 32,
            charset: Charset::Alnum,
        }
    }
}

/// Alphabet of a generated secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Charset {
    /// `A-Za-z0-9`
    #[default]
    Alnum,
    /// `0-9a-f`
    Hex,
    /// `A-Za-z0-9` plus punctuation that needs no quoting in shells, URLs or env files: `-_.~`
    Safespecial,
}

impl Charset {
    pub fn alphabet(self) -> &'static [u8] {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        match self {
            Charset::Alnum => ALNUM,
            Charset::Hex => b"0123456789abcdef",
            Charset::Safespecial => {
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Advance {
    pub backup: bool,
    pub rollback: bool,
    pub allow_major: bool,
    /// A stack move (the deployment's stack name changed) runs without `hearth migrate`.
    pub allow_migration: bool,
}

impl Default for Advance {
    fn default() -> Self {
        Advance {
            backup: true,
            rollback: true,
            allow_major: false,
            allow_migration: false,
        }
    }
}

/// A readiness probe; exactly one kind per list entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Probe {
    Http(HttpProbe),
    Tcp(TcpProbe),
    Exec(ExecProbe),
    Docker(DockerProbe),
}

/// Timing shared by every probe kind; `None` means the prober's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeTiming {
    pub timeout: Option<Duration>,
    pub interval: Option<Duration>,
    pub failures: Option<u32>,
}

impl Probe {
    /// `http`, `tcp`, `exec` or `docker`.
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Tcp(_) => "tcp",
            Probe::Exec(_) => "exec",
            Probe::Docker(_) => "docker",
        }
    }

    /// The compose service the probe targets.
    pub fn service(&self) -> &str {
        match self {
            Probe::Http(p) => &p.service,
            Probe::Tcp(p) => &p.service,
            Probe::Exec(p) => &p.service,
            Probe::Docker(p) => &p.service,
        }
    }

    pub fn timing(&self) -> ProbeTiming {
        let (timeout, interval, failures) = match self {
            Probe::Http(p) => (p.timeout, p.interval, p.failures),
            Probe::Tcp(p) => (p.timeout, p.interval, p.failures),
            Probe::Exec(p) => (p.timeout, p.interval, p.failures),
            Probe::Docker(p) => (p.timeout, p.interval, p.failures),
        };
        ProbeTiming {
            timeout,
            interval,
            failures,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpProbe {
    pub service: String,
    pub port: u16,
    #[serde(default = "slash")]
    pub path: String,
    #[serde(default = "ok_status")]
    pub status: u16,
    /// `Host` header to send (e.g. the deployment's domain behind a proxy).
    #[serde(default)]
    pub host: Option<String>,
    /// Connect here instead of the service's tasks (`host:port` or URL base).
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "fields::opt_duration")]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub failures: Option<u32>,
}

fn slash() -> String {
    "/".into()
}

fn ok_status() -> u16 {
    200
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpProbe {
    pub service: String,
    pub port: u16,
    /// The connection must stay open this long to count as up.
    #[serde(default, deserialize_with = "fields::opt_duration")]
    pub stable_for: Option<Duration>,
    #[serde(default)]
    pub send: Option<Payload>,
    #[serde(default)]
    pub expect: Option<Payload>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default, deserialize_with = "fields::opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "fields::opt_duration")]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub failures: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecProbe {
    pub service: String,
    pub command: Vec<String>,
    #[serde(default, deserialize_with = "fields::opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "fields::opt_duration")]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub failures: Option<u32>,
}

/// Ready when Docker's own healthcheck of the service's tasks says healthy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DockerProbe {
    pub service: String,
    #[serde(default, deserialize_with = "fields::opt_duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "fields::opt_duration")]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub failures: Option<u32>,
}

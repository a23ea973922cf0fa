//! Manifest types for `apiVersion: hearth/v1`: the `Pool` and `Deployment` kinds (docs/manifest.md).
//!
//! The serde shapes mirror the YAML exactly (`metadata`, `spec`, camelCase keys, unknown fields
//! rejected). Defaults live here; loading and positions live in `load`, checks in `validate`.

use super::fields::{self, Payload};
use crate::diag::Pos;
use indexmap::IndexMap;
use schemars::JsonSchema;
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The object's name: for a Deployment, also the first part of its stack name and derived
    /// domain (lowercase letters, digits and `-`).
    #[schemars(extend("examples" = ["gitea"]))]
    pub name: String,
    /// Free-form notes; `hearth.approve-version: <version>` approves a held major bump.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::scalar_map")]
    #[schemars(extend("examples" = [{"hearth.approve-version": "4.0.0+1.25.0"}]))]
    pub annotations: IndexMap<String, String>,
}

/// `kind: Pool`: the one pool a manifest set describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub metadata: Metadata,
    pub spec: PoolSpec,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PoolSpec {
    /// Base domain for derived domains (`<name>.<domain>`, `warm-<recipe>.<domain>`, ...).
    #[schemars(extend("examples" = ["apps.example.org"]))]
    pub domain: String,
    /// Directory of recipe git repos (abra's layout), `~` expanded.
    #[serde(default = "default_recipes", deserialize_with = "fields::tilde_path")]
    #[schemars(extend("examples" = ["/srv/recipes"]))]
    pub recipes: PathBuf,
    /// Settings every deployment of the pool gets unless it sets its own.
    #[serde(default)]
    pub defaults: PoolDefaults,
    /// Extra labels on every object hearth creates for this pool (services, networks, volumes,
    /// secrets, configs), e.g. an owner or, in tests, `hearth.test=<test>`.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::scalar_map")]
    #[schemars(extend("examples" = [{"owner": "ops"}]))]
    pub labels: IndexMap<String, String>,
}

fn default_recipes() -> PathBuf {
    fields::expand_tilde("~/.abra/recipes", fields::home_dir().as_deref())
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PoolDefaults {
    /// How long a change may take to become ready before the deployment is `Wedged`.
    #[serde(deserialize_with = "fields::duration")]
    #[schemars(with = "super::schema::DurationText")]
    #[schemars(extend("examples" = ["5m"]))]
    pub progress_deadline: Duration,
    /// Undo changes made to the live services by hand (drift) by applying the manifests again.
    pub self_heal: bool,
    /// Remove stacks that carry this pool's labels but have no manifest any more.
    pub prune: bool,
    /// How many deployments are changed at the same time.
    #[schemars(extend("examples" = [2]))]
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
    /// The domain a canonical keeps because of what the live swarm held when it was first created
    /// (`names::settle`); never read from a manifest, `None` when the manifests alone decide.
    pub live_domain: Option<String>,
}

impl Deployment {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Serves the recipe's warm domain `warm-<recipe>.<domain>` (one per recipe).
    Provider,
    /// The recipe's reference deployment (one per recipe), on `warm-<recipe>.<domain>`, or on
    /// `warm-canon-<recipe>.<domain>` beside a provider of the recipe or a live stack that already
    /// holds the warm name when it is first created.
    Canonical,
    /// An ordinary deployment on `<name>.<domain>`.
    #[default]
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    /// Deployed and kept converged.
    #[default]
    Running,
    /// Undeployed, volumes kept.
    Parked,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeploymentSpec {
    /// The recipe: a directory (git repo) in the pool's `recipes`, or see `source`.
    #[schemars(extend("examples" = ["gitea"]))]
    pub recipe: String,
    /// A tag of the recipe repo.
    #[schemars(extend("examples" = ["3.6.0+1.24.2-rootless"]))]
    pub version: String,
    /// Which domain the deployment gets: see the getting-started guide, "Roles and domains".
    #[serde(default)]
    pub role: Role,
    /// `running`, or `parked`: undeployed with its volumes kept.
    #[serde(default)]
    pub state: DesiredState,
    /// Explicit domain; when absent derived from the role (`<name>.<domain>`, `warm-<recipe>.<domain>`
    /// or `warm-canon-<recipe>.<domain>`).
    #[serde(default)]
    #[schemars(extend("examples" = ["git.example.org"]))]
    pub domain: Option<String>,
    /// Compose files; when absent, `COMPOSE_FILE` from env / `.env.sample` decides.
    #[serde(default)]
    #[schemars(extend("examples" = [["compose.yml", "compose.smtp.yml"]]))]
    pub compose_files: Option<Vec<String>>,
    /// Overrides on top of `.env.sample`. Scalars are taken as written: `PORT: 8080` and
    /// `DEBUG: true` give the text `8080` and `true` (not re-formatted numbers); null is an error.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::scalar_map")]
    #[schemars(extend("examples" = [{"GITEA_DOMAIN": "git.example.org", "PORT": 8080}]))]
    pub env: IndexMap<String, String>,
    /// The recipe's secrets by name (as in its `.env.sample`), and how each is made.
    #[serde(default)]
    #[schemars(extend("examples" = [{"db_password": {"generate": {"length": 32}}}]))]
    pub secrets: IndexMap<String, SecretSource>,
    /// Readiness checks beyond "the tasks run"; all must pass for `Ready`.
    #[serde(default)]
    #[schemars(extend("examples" = [[{"http": {"service": "app", "port": 3000, "path": "/api/healthz"}}]]))]
    pub probes: Vec<Probe>,
    /// Overrides the pool's `defaults.progressDeadline`.
    #[serde(default, deserialize_with = "fields::opt_duration")]
    #[schemars(with = "Option<super::schema::DurationText>")]
    #[schemars(extend("examples" = ["15m"]))]
    pub progress_deadline: Option<Duration>,
    /// How a new `version` is rolled out (snapshot, verify, roll back); see docs/advance.md.
    #[serde(default)]
    pub advance: Advance,
    /// Deployments (by name) that must be `Ready` before this one is changed; until then it is
    /// `Pending`.
    #[serde(default)]
    #[schemars(extend("examples" = [["keycloak"]]))]
    pub depends_on: Vec<String>,
    /// Leave the deployment alone: no changes, still assessed and reported (`Held/Suspended`).
    #[serde(default)]
    pub suspend: bool,
    /// Keep services with local volumes on the node holding their data.
    #[serde(default = "yes")]
    pub pin_volumes: bool,
    /// Git URL of the recipe when it is not in the pool's recipes directory.
    #[serde(default)]
    #[schemars(extend("examples" = ["https://git.coopcloud.tech/coop-cloud/gitea.git"]))]
    pub source: Option<String>,
    /// Take over a stack of this name that exists without hearth's labels (one `abra app deploy`
    /// made): label its services, secrets and configs without restarting a task; differences
    /// that would restart tasks wait for the next version change (docs/abra.md). The stack is
    /// named as abra names it: the domain with `.` -> `_`, cut after 45 characters.
    #[serde(default)]
    pub adopt: bool,
}

fn yes() -> bool {
    true
}

/// How a secret the manifest lists is created.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum SecretSource {
    /// A random value made once, at the first deploy.
    Generate(Generate),
    /// Content read from this file; a relative path is resolved against the manifest's directory
    /// at load time, `~` is expanded.
    File(#[schemars(extend("examples" = ["secrets/smtp_password"]))] PathBuf),
    /// `existing`: the secret must already exist (made by hand, as abra's `# generate=false`
    /// hint asks); hearth never creates it, and a missing one keeps the deployment `Pending`.
    Existing,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Generate {
    /// Number of characters.
    #[schemars(extend("examples" = [64]))]
    pub length: usize,
    /// The characters to pick from.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Advance {
    /// Take a snapshot of the volumes (backupbot labels) before changing the version.
    pub backup: bool,
    /// Go back to the last good version (and restore the snapshot) when the new one fails.
    pub rollback: bool,
    /// Advance across a major version without an approval annotation (else `Held`).
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Probe {
    /// An HTTP GET that must answer `status`.
    Http(HttpProbe),
    /// A TCP connection that must open (and optionally answer `expect`).
    Tcp(TcpProbe),
    /// A command run in a task's container that must exit 0.
    Exec(ExecProbe),
    /// Docker's own healthcheck of the service's tasks.
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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpProbe {
    /// The compose service whose tasks are probed.
    #[schemars(extend("examples" = ["app"]))]
    pub service: String,
    /// The port in the task's container.
    #[schemars(extend("examples" = [3000]))]
    pub port: u16,
    /// The path to GET.
    #[serde(default = "slash")]
    #[schemars(extend("examples" = ["/api/healthz"]))]
    pub path: String,
    /// The HTTP status that counts as up.
    #[serde(default = "ok_status")]
    #[schemars(extend("examples" = [204]))]
    pub status: u16,
    /// `Host` header to send (e.g. the deployment's domain behind a proxy).
    #[serde(default)]
    #[schemars(extend("examples" = ["git.example.org"]))]
    pub host: Option<String>,
    /// Connect here instead of the service's tasks (`host:port` or URL base).
    #[serde(default)]
    #[schemars(extend("examples" = ["127.0.0.1:8080"]))]
    pub address: Option<String>,
    /// How long one attempt may take (default 3s).
    #[serde(default, deserialize_with = "fields::opt_duration")]
    #[schemars(with = "Option<super::schema::DurationText>")]
    #[schemars(extend("examples" = ["3s"]))]
    pub timeout: Option<Duration>,
    /// Time between attempts (default 5s).
    #[serde(default, deserialize_with = "fields::opt_duration")]
    #[schemars(with = "Option<super::schema::DurationText>")]
    #[schemars(extend("examples" = ["30s"]))]
    pub interval: Option<Duration>,
    /// Failed attempts in a row before the probe counts as down (default 3).
    #[serde(default)]
    #[schemars(extend("examples" = [5]))]
    pub failures: Option<u32>,
}

fn slash() -> String {
    "/".into()
}

fn ok_status() -> u16 {
    200
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpProbe {
    /// The compose service whose tasks are probed.
    #[schemars(extend("examples" = ["app"]))]
    pub service: String,
    /// The port in the task's container.
    #[schemars(extend("examples" = [3000]))]
    pub port: u16,
    /// The connection must stay open this long to count as up.
    #[serde(default, deserialize_with = "fields::opt_duration")]
    #[schemars(with = "Option<super::schema::DurationText>")]
    #[schemars(extend("examples" = ["2s"]))]
    pub stable_for: Option<Duration>,
    /// Bytes to send once connected: text, or `hex:` and hex digits.
    #[serde(default)]
    #[schemars(extend("examples" = ["PING"]))]
    pub send: Option<Payload>,
    /// Bytes the answer must start with: text, or `hex:` and hex digits.
    #[serde(default)]
    #[schemars(extend("examples" = ["+PONG"]))]
    pub expect: Option<Payload>,
    /// Connect here (`host:port`) instead of the service's tasks.
    #[serde(default)]
    #[schemars(extend("examples" = ["127.0.0.1:5432"]))]
    pub address: Option<String>,
    /// How long one attempt may take (default 3s).
    #[serde(default, deserialize_with = "fields::opt_duration")]
    #[schemars(with = "Option<super::schema::DurationText>")]
    #[schemars(extend("examples" = ["3s"]))]
    pub timeout: Option<Duration>,
    /// Time between attempts (default 5s).
    #[serde(default, deserialize_with = "fields::opt_duration")]
    #[schemars(with = "Option<super::schema::DurationText>")]
    #[schemars(extend("examples" = ["30s"]))]
    pub interval: Option<Duration>,
    /// Failed attempts in a row before the probe counts as down (default 3).
    #[serde(default)]
    #[schemars(extend("examples" = [5]))]
    pub failures: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecProbe {
    /// The compose service whose tasks are probed.
    #[schemars(extend("examples" = ["app"]))]
    pub service: String,
    /// The command and its arguments (no shell unless you run one).
    #[schemars(extend("examples" = [["pg_isready", "-U", "postgres"]]))]
    pub command: Vec<String>,
    /// How long one attempt may take (default 3s).
    #[serde(default, deserialize_with = "fields::opt_duration")]
    #[schemars(with = "Option<super::schema::DurationText>")]
    #[schemars(extend("examples" = ["3s"]))]
    pub timeout: Option<Duration>,
    /// Time between attempts (default 5s).
    #[serde(default, deserialize_with = "fields::opt_duration")]
    #[schemars(with = "Option<super::schema::DurationText>")]
    #[schemars(extend("examples" = ["30s"]))]
    pub interval: Option<Duration>,
    /// Failed attempts in a row before the probe counts as down (default 3).
    #[serde(default)]
    #[schemars(extend("examples" = [5]))]
    pub failures: Option<u32>,
}

/// Ready when Docker's own healthcheck of the service's tasks says healthy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DockerProbe {
    /// The compose service whose tasks are probed.
    #[schemars(extend("examples" = ["app"]))]
    pub service: String,
    /// How long one attempt may take (default 3s).
    #[serde(default, deserialize_with = "fields::opt_duration")]
    #[schemars(with = "Option<super::schema::DurationText>")]
    #[schemars(extend("examples" = ["3s"]))]
    pub timeout: Option<Duration>,
    /// Time between attempts (default 5s).
    #[serde(default, deserialize_with = "fields::opt_duration")]
    #[schemars(with = "Option<super::schema::DurationText>")]
    #[schemars(extend("examples" = ["30s"]))]
    pub interval: Option<Duration>,
    /// Failed attempts in a row before the probe counts as down (default 3).
    #[serde(default)]
    #[schemars(extend("examples" = [5]))]
    pub failures: Option<u32>,
}

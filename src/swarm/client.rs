//! The counted Docker client: every Docker call hearth makes goes through [`Client`], which negotiates
//! the API version once, counts requests per operation (`hearth_docker_requests_total{op}` reads from
//! [`Client::counts`]) and keeps the time spent per operation.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    Config, ConfigSpec, ContainerInspectResponse, Network, NetworkCreateRequest, NetworkInspect,
    Node, Secret, SecretSpec, Service, ServiceSpec, SystemInfo, SystemVersion, Task,
};
use bollard::query_parameters::{
    InspectServiceOptions, ListConfigsOptions, ListNetworksOptions, ListNodesOptions,
    ListSecretsOptions, ListServicesOptions, ListTasksOptions, UpdateServiceOptions,
};

use super::transport::{TlsEnv, Transport, transport};

/// Operations that change the swarm; [`Counts::writes`] sums them.
pub const WRITE_OPS: &[&str] = &[
    "service_create",
    "service_update",
    "service_remove",
    "network_create",
    "network_remove",
    "secret_create",
    "secret_remove",
    "config_create",
    "config_remove",
];

/// An error from Docker, with the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error("cannot connect to Docker at {host}: {source}")]
    Connect {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("docker {op}: {message} (HTTP {status})")]
    Server {
        op: &'static str,
        status: u16,
        message: String,
    },
    #[error("docker {op}: no answer within {after:?}")]
    Timeout { op: &'static str, after: Duration },
    /// The daemon answers but is no Swarm manager: hearth cannot use it.
    #[error("{host} is {what}: hearth needs a manager")]
    NotManager { host: String, what: String },
    /// Not sent: the write fence said no (see [`WriteFence`]).
    #[error("docker {op} not sent: {message}")]
    Fenced { op: &'static str, message: String },
    #[error("docker {op}: {source}")]
    Other {
        op: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
}

impl SwarmError {
    /// A bollard error of `op`: the daemon's answer when it answered.
    pub(super) fn from_bollard(op: &'static str, source: bollard::errors::Error) -> SwarmError {
        match source {
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            } => SwarmError::Server {
                op,
                status: status_code,
                message,
            },
            source => SwarmError::Other { op, source },
        }
    }

    /// The HTTP status Docker answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            SwarmError::Server { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The kind of the local I/O error behind this error, if it is one (e.g. a broken pipe while
    /// streaming an archive).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            SwarmError::Other {
                source: bollard::errors::Error::IOError { err },
                ..
            } => Some(err.kind()),
            _ => None,
        }
    }

    /// Docker said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Another writer changed the object since we read it (stale version index), or a name is taken.
    pub fn is_conflict(&self) -> bool {
        match self {
            SwarmError::Server {
                status, message, ..
            } => *status == 409 || message.contains("update out of sequence"),
            _ => false,
        }
    }
}

/// How long one request may take before it counts as unanswered (and, with several managers,
/// triggers a failover). A manager that lost quorum can leave a list call hanging.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Requests that stream data and may rightly take longer than [`REQUEST_TIMEOUT`] (a restore of a
/// large volume): not timed out.
const STREAMING_OPS: &[&str] = &["container_archive_put"];

/// Requests that change state without being swarm writes ([`WRITE_OPS`]): a config's labels (the
/// advance state), volume removal, and the data in volumes (helper containers, hooks run by exec).
const STATE_OPS: &[&str] = &[
    "config_update",
    "volume_create",
    "volume_remove",
    "container_create",
    "container_start",
    "container_archive_put",
    "exec_create",
];

/// Whether a [`WriteFence`] guards `op`: every request in [`WRITE_OPS`] or [`STATE_OPS`].
pub fn is_fenced(op: &str) -> bool {
    WRITE_OPS.contains(&op) || STATE_OPS.contains(&op)
}

/// Decides, just before each request [`is_fenced`] names, whether it may go out; `Err` says why not.
/// The controller installs one from the leader lease ([`Client::with_write_fence`]), so a leader
/// that stalled past its lease sends nothing more, whatever it was in the middle of.
pub type WriteFence = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What a command run with [`Client::exec`] left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code, `None` when Docker did not report one.
    pub exit_code: Option<i64>,
    /// stdout and stderr interleaved as they arrived, keeping only the last
    /// [`EXEC_OUTPUT_MAX`] bytes (lossy UTF-8).
    pub output: String,
}

/// How much of an exec's output [`Client::exec`] keeps (the tail).
pub const EXEC_OUTPUT_MAX: usize = 16 * 1024;

/// Requests made and time spent, per operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub requests: BTreeMap<&'static str, u64>,
    pub seconds: BTreeMap<&'static str, f64>,
}

impl Counts {
    /// Total write requests (creates, updates, removes).
    pub fn writes(&self) -> u64 {
        WRITE_OPS
            .iter()
            .map(|op| self.requests.get(op).copied().unwrap_or(0))
            .sum()
    }

    /// Total requests of every kind.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let mut out = Counts::default();
        for (op, n) in &self.requests {
            let d = n - earlier.requests.get(op).copied().unwrap_or(0);
            if d > 0 {
                out.requests.insert(op, d);
            }
        }
        for (op, s) in &self.seconds {
            let d = s - earlier.seconds.get(op).copied().unwrap_or(0.0);
            if d > 0.0 {
                out.seconds.insert(op, d);
            }
        }
        out
    }
}

/// A Docker client whose every call is counted. Cheap to clone; clones share the counts and the
/// endpoint in use. Given several managers it talks to one and fails over to another when that
/// one stops answering or loses quorum (see `failover.rs`).
#[derive(Clone)]
pub struct Client {
    endpoints: Arc<super::failover::Endpoints>,
    counts: Arc<Mutex<Counts>>,
    fence: Option<WriteFence>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host())
            .field("hosts", &self.endpoints.hosts)
            .finish()
    }
}

type Filters = HashMap<String, Vec<String>>;

/// `label=<k>=<v>`-style filters.
pub fn label_filter(labels: &[&str]) -> Filters {
    let mut f = Filters::new();
    f.insert(
        "label".into(),
        labels.iter().map(|s| s.to_string()).collect(),
    );
    f
}

impl Client {
    /// Connects to `host` (`unix:///path`, `tcp://host:port`; several separated by commas: Swarm
    /// managers tried in order, see [`Client::connect_many`]), or to `DOCKER_HOST` / the local
    /// socket when `None`, and negotiates the API version with the daemon. `DOCKER_TLS_VERIFY` and
    /// `DOCKER_CERT_PATH` select TLS as for the docker CLI (see [`transport`]).
    pub async fn connect(host: Option<&str>) -> Result<Client, SwarmError> {
        let hosts: Vec<String> = host
            .map(str::to_string)
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
            .split(',')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect();
        Client::connect_many(&hosts).await
    }

    /// Connects to the first of `hosts` that is a Swarm manager with a leader (else the first
    /// manager that answers), checking every host that answers: a worker, or a daemon outside any
    /// swarm, is refused ([`SwarmError::NotManager`], not worth retrying). Later calls fail over
    /// to another of `hosts` when the one in use stops answering or loses quorum.
    pub async fn connect_many(hosts: &[String]) -> Result<Client, SwarmError> {
        let endpoints = super::failover::Endpoints::open(hosts).await?;
        let client = Client {
            endpoints: Arc::new(endpoints),
            counts: Arc::default(),
            fence: None,
        };
        client.count("negotiate", Duration::ZERO);
        Ok(client)
    }

    /// Connects to one daemon without any Swarm check (used by the failover's probes).
    pub(super) async fn open_docker(host: &str) -> Result<Docker, SwarmError> {
        let err = |source| SwarmError::Connect {
            host: host.to_string(),
            source,
        };
        let version = bollard::API_DEFAULT_VERSION;
        let docker = match transport(host, &TlsEnv::from_process()) {
            Transport::Unix(path) => Docker::connect_with_unix(&path, 120, version),
            Transport::Http(addr) => Docker::connect_with_http(&addr, 120, version),
            Transport::Tls { addr, cert_dir } => Docker::connect_with_ssl(
                &addr,
                &cert_dir.join("key.pem"),
                &cert_dir.join("cert.pem"),
                &cert_dir.join("ca.pem"),
                120,
                version,
            ),
        }
        .map_err(err)?;
        docker.negotiate_version().await.map_err(err)
    }

    /// The address this client talks to now (it changes on a failover).
    pub fn host(&self) -> String {
        self.endpoints.active().host
    }

    /// Every address this client may talk to, in order of preference.
    pub fn hosts(&self) -> &[String] {
        &self.endpoints.hosts
    }

    /// This client with `fence` consulted before every request [`is_fenced`] names (clones made
    /// from the result share it; `self` and its other clones stay unfenced).
    pub fn with_write_fence(&self, fence: WriteFence) -> Client {
        Client {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// How many times this client switched to another manager.
    pub fn failovers(&self) -> u64 {
        self.endpoints.failovers()
    }

    /// The bollard handle of the manager in use, for this file and the sibling files that add
    /// methods to [`Client`].
    pub(super) fn docker(&self) -> Docker {
        self.endpoints.active().docker
    }

    /// A copy of the counts so far.
    pub fn counts(&self) -> Counts {
        self.counts.lock().expect("counts lock").clone()
    }

    /// Counts one request of `op` that took `took` (for calls not made through `call`).
    pub(super) fn count_op(&self, op: &'static str, took: Duration) {
        self.count(op, took)
    }

    fn count(&self, op: &'static str, took: Duration) {
        let mut c = self.counts.lock().expect("counts lock");
        *c.requests.entry(op).or_default() += 1;
        *c.seconds.entry(op).or_default() += took.as_secs_f64();
    }

    pub(super) async fn call<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, SwarmError> {
        if let Some(fence) = &self.fence
            && is_fenced(op)
            && let Err(message) = fence()
        {
            return Err(SwarmError::Fenced { op, message });
        }
        let generation = self.endpoints.generation();
        let start = Instant::now();
        let res = if STREAMING_OPS.contains(&op) {
            Ok(fut.await)
        } else {
            tokio::time::timeout(REQUEST_TIMEOUT, fut).await
        };
        self.count(op, start.elapsed());
        let res = match res {
            Ok(r) => r.map_err(|source| SwarmError::from_bollard(op, source)),
            Err(_) => Err(SwarmError::Timeout {
                op,
                after: REQUEST_TIMEOUT,
            }),
        };
        self.after_error(generation, res).await
    }

    /// Fails over to another manager when `res` says the one in use is gone or has no quorum.
    async fn after_error<T>(
        &self,
        generation: u64,
        res: Result<T, SwarmError>,
    ) -> Result<T, SwarmError> {
        if let Err(e) = &res
            && super::failover::is_endpoint_failure(e)
        {
            self.endpoints.fail_over(generation, e).await;
        }
        res
    }

    /// A raw GET (see `raw.rs`), parsed as JSON into `T`.
    async fn raw_get<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        path: &str,
    ) -> Result<T, SwarmError> {
        let body = self.raw_get_bytes(op, path).await?;
        serde_json::from_slice(&body).map_err(|e| SwarmError::Server {
            op,
            status: 0,
            message: format!("GET {path}: invalid JSON: {e}"),
        })
    }

    /// A raw GET (see `raw.rs`), unparsed; timed out, counted and failed over like the others.
    async fn raw_get_bytes(
        &self,
        op: &'static str,
        path: &str,
    ) -> Result<hyper::body::Bytes, SwarmError> {
        let generation = self.endpoints.generation();
        let active = self.endpoints.active();
        let version = active.docker.client_version().to_string();
        let start = Instant::now();
        let res = tokio::time::timeout(
            REQUEST_TIMEOUT,
            super::raw::get_bytes(
                &transport(&active.host, &TlsEnv::from_process()),
                &version,
                path,
            ),
        )
        .await;
        self.count(op, start.elapsed());
        let res = match res {
            Ok(r) => r.map_err(|message| SwarmError::Server {
                op,
                status: 0,
                message,
            }),
            Err(_) => Err(SwarmError::Timeout {
                op,
                after: REQUEST_TIMEOUT,
            }),
        };
        self.after_error(generation, res).await
    }

    pub async fn version(&self) -> Result<SystemVersion, SwarmError> {
        self.call("version", self.docker().version()).await
    }

    /// Every service as Docker sends it (raw JSON, see `raw.rs`) and typed, from one request.
    /// Every service, typed, with its `Spec` as the compact JSON text Docker sent (a parsed
    /// `Value` tree of every spec is many times larger; parse one when needed).
    pub async fn list_services_raw(
        &self,
    ) -> Result<
        Vec<(
            crate::observed::live::Service,
            Box<serde_json::value::RawValue>,
        )>,
        SwarmError,
    > {
        let bad = |message: String| SwarmError::Server {
            op: "service_list",
            status: 0,
            message,
        };
        let body = self
            .raw_get_bytes("service_list", "/services?status=true")
            .await?;
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("expected a list of services: {e}")))?;
        #[derive(serde::Deserialize)]
        struct SpecOnly<'a> {
            #[serde(rename = "Spec", borrow)]
            spec: Option<&'a serde_json::value::RawValue>,
        }
        items
            .into_iter()
            .map(|raw| {
                let service: crate::observed::live::Service = serde_json::from_str(raw.get())
                    .map_err(|e| bad(format!("unexpected service JSON: {e}")))?;
                let spec = serde_json::from_str::<SpecOnly>(raw.get())
                    .map_err(|e| bad(format!("unexpected service JSON: {e}")))?
                    .spec
                    .map(|s| s.to_owned())
                    .unwrap_or_else(|| {
                        serde_json::value::RawValue::from_string("null".into())
                            .expect("null is JSON")
                    });
                Ok((service, spec))
            })
            .collect()
    }

    pub async fn list_services(
        &self,
        filters: Option<Filters>,
    ) -> Result<Vec<Service>, SwarmError> {
        let opts = ListServicesOptions {
            filters,
            status: Some(true),
        };
        self.call("service_list", self.docker().list_services(Some(opts)))
            .await
    }

    pub async fn inspect_service(&self, name: &str) -> Result<Service, SwarmError> {
        self.call(
            "service_inspect",
            self.docker()
                .inspect_service(name, None::<InspectServiceOptions>),
        )
        .await
    }

    pub async fn create_service(&self, spec: ServiceSpec) -> Result<String, SwarmError> {
        let r = self
            .call("service_create", self.docker().create_service(spec, None))
            .await?;
        Ok(r.id.unwrap_or_default())
    }

    /// Updates a service at the version index it was read at (optimistic concurrency).
    pub async fn update_service(
        &self,
        id: &str,
        version: u64,
        spec: ServiceSpec,
    ) -> Result<Vec<String>, SwarmError> {
        let opts = UpdateServiceOptions {
            version: version as i32,
            ..Default::default()
        };
        let r = self
            .call(
                "service_update",
                self.docker().update_service(id, spec, opts, None),
            )
            .await?;
        Ok(r.warnings.unwrap_or_default())
    }

    pub async fn remove_service(&self, id: &str) -> Result<(), SwarmError> {
        self.call("service_remove", self.docker().delete_service(id))
            .await
    }

    /// Every task, as the slim [`crate::observed::live::Task`] (parsed one at a time from the response).
    pub async fn list_tasks_live(&self) -> Result<Vec<crate::observed::live::Task>, SwarmError> {
        self.raw_get("task_list", "/tasks").await
    }

    pub async fn list_tasks(&self, filters: Option<Filters>) -> Result<Vec<Task>, SwarmError> {
        self.call(
            "task_list",
            self.docker().list_tasks(Some(ListTasksOptions { filters })),
        )
        .await
    }

    pub async fn list_networks(
        &self,
        filters: Option<Filters>,
    ) -> Result<Vec<Network>, SwarmError> {
        self.call(
            "network_list",
            self.docker()
                .list_networks(Some(ListNetworksOptions { filters })),
        )
        .await
    }

    pub async fn inspect_network(&self, name: &str) -> Result<NetworkInspect, SwarmError> {
        self.call(
            "network_inspect",
            self.docker().inspect_network(
                name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            ),
        )
        .await
    }

    pub async fn create_network(&self, spec: NetworkCreateRequest) -> Result<String, SwarmError> {
        let r = self
            .call("network_create", self.docker().create_network(spec))
            .await?;
        Ok(r.id)
    }

    pub async fn remove_network(&self, id: &str) -> Result<(), SwarmError> {
        self.call("network_remove", self.docker().remove_network(id))
            .await
    }

    pub async fn list_secrets(&self, filters: Option<Filters>) -> Result<Vec<Secret>, SwarmError> {
        self.call(
            "secret_list",
            self.docker()
                .list_secrets(Some(ListSecretsOptions { filters })),
        )
        .await
    }

    pub async fn create_secret(&self, spec: SecretSpec) -> Result<String, SwarmError> {
        let r = self
            .call("secret_create", self.docker().create_secret(spec))
            .await?;
        Ok(r.id)
    }

    /// Replaces a secret's labels at `version` (Swarm allows no other change; the value stays).
    pub async fn update_secret_labels(
        &self,
        id: &str,
        version: u64,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), SwarmError> {
        let spec = SecretSpec {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        };
        let opts = bollard::query_parameters::UpdateSecretOptionsBuilder::default()
            .version(version as i64)
            .build();
        self.call("secret_update", self.docker().update_secret(id, spec, opts))
            .await
    }

    /// Replaces a config's labels at `version` (its data stays).
    pub async fn update_config_labels(
        &self,
        id: &str,
        version: u64,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), SwarmError> {
        let spec = ConfigSpec {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        };
        self.update_config(id, version, spec).await
    }

    pub async fn remove_secret(&self, id: &str) -> Result<(), SwarmError> {
        self.call("secret_remove", self.docker().delete_secret(id))
            .await
    }

    pub async fn list_configs(&self, filters: Option<Filters>) -> Result<Vec<Config>, SwarmError> {
        self.call(
            "config_list",
            self.docker()
                .list_configs(Some(ListConfigsOptions { filters })),
        )
        .await
    }

    pub async fn create_config(&self, spec: ConfigSpec) -> Result<String, SwarmError> {
        let r = self
            .call("config_create", self.docker().create_config(spec))
            .await?;
        Ok(r.id)
    }

    pub async fn inspect_config(&self, id: &str) -> Result<Config, SwarmError> {
        self.call("config_inspect", self.docker().inspect_config(id))
            .await
    }

    /// Replaces a config's spec (Swarm allows only its labels to change) at `version`: a
    /// compare-and-swap on Swarm's raft store. A stale version fails with a conflict
    /// ([`SwarmError::is_conflict`]), so two writers can never both win. Used for the lease and
    /// for state that must survive a restart.
    pub async fn update_config(
        &self,
        id: &str,
        version: u64,
        spec: ConfigSpec,
    ) -> Result<(), SwarmError> {
        let opts = bollard::query_parameters::UpdateConfigOptionsBuilder::default()
            .version(version as i64)
            .build();
        self.call("config_update", self.docker().update_config(id, spec, opts))
            .await
    }

    pub async fn remove_config(&self, id: &str) -> Result<(), SwarmError> {
        self.call("config_remove", self.docker().delete_config(id))
            .await
    }

    pub async fn list_volumes(
        &self,
        filters: Option<Filters>,
    ) -> Result<Vec<bollard::models::Volume>, SwarmError> {
        let opts = bollard::query_parameters::ListVolumesOptions { filters };
        let r = self
            .call("volume_list", self.docker().list_volumes(Some(opts)))
            .await?;
        Ok(r.volumes.unwrap_or_default())
    }

    /// Creates a named volume (with its owner labels) before the services that mount it.
    pub async fn create_volume(
        &self,
        spec: bollard::models::VolumeCreateRequest,
    ) -> Result<(), SwarmError> {
        self.call("volume_create", self.docker().create_volume(spec))
            .await
            .map(|_| ())
    }

    /// Removes a volume (never called by hearth's own logic: volumes are never removed; tests and
    /// operators use it).
    pub async fn remove_volume(&self, name: &str) -> Result<(), SwarmError> {
        self.call(
            "volume_remove",
            self.docker()
                .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>),
        )
        .await
    }

    /// Containers on the daemon this client talks to (all states).
    pub async fn list_containers(
        &self,
        filters: Option<Filters>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, SwarmError> {
        let opts = bollard::query_parameters::ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        };
        self.call("container_list", self.docker().list_containers(Some(opts)))
            .await
    }

    /// The daemon's event stream (one counted request for the whole subscription).
    pub fn events(
        &self,
        filters: Filters,
    ) -> impl futures::Stream<Item = Result<bollard::models::EventMessage, SwarmError>> + use<>
    {
        use futures::StreamExt;
        self.count("events", Duration::ZERO);
        let opts = bollard::query_parameters::EventsOptions {
            filters: Some(filters),
            ..Default::default()
        };
        self.docker().events(Some(opts)).map(|r| {
            r.map_err(|source| SwarmError::Other {
                op: "events",
                source,
            })
        })
    }

    /// The last `lines` lines of a container's output (stdout and stderr).
    pub async fn container_log_tail(
        &self,
        id: &str,
        lines: usize,
    ) -> Result<Vec<String>, SwarmError> {
        use futures::TryStreamExt;
        let opts = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let start = Instant::now();
        let chunks: Result<Vec<_>, _> = self.docker().logs(id, Some(opts)).try_collect().await;
        self.count("container_logs", start.elapsed());
        let chunks = chunks.map_err(|source| SwarmError::Other {
            op: "container_logs",
            source,
        })?;
        let text: String = chunks.iter().map(|c| c.to_string()).collect();
        Ok(text.lines().map(str::to_string).collect())
    }

    pub async fn list_nodes(&self) -> Result<Vec<Node>, SwarmError> {
        self.call(
            "node_list",
            self.docker().list_nodes(None::<ListNodesOptions>),
        )
        .await
    }

    pub async fn inspect_container(
        &self,
        id: &str,
    ) -> Result<ContainerInspectResponse, SwarmError> {
        self.call(
            "container_inspect",
            self.docker().inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            ),
        )
        .await
    }

    /// The daemon's system info (`docker info`): its swarm node ID among others.
    pub async fn info(&self) -> Result<SystemInfo, SwarmError> {
        self.call("info", self.docker().info()).await
    }

    /// Tasks as Docker sends them (raw JSON), for the fields bollard's `Task` model lacks
    /// (`NetworksAttachments`); `desired_state` filters (`running`) when given. Op `task_list`.
    pub async fn list_tasks_raw(
        &self,
        desired_state: Option<&str>,
    ) -> Result<Vec<serde_json::Value>, SwarmError> {
        let path = match desired_state {
            // `{"desired-state":["<state>"]}`, percent-encoded.
            Some(state) => format!(
                "/tasks?filters=%7B%22desired-state%22%3A%5B%22{}%22%5D%7D",
                state
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
            ),
            None => "/tasks".to_string(),
        };
        let bad = |message: String| SwarmError::Server {
            op: "task_list",
            status: 0,
            message,
        };
        match self
            .raw_get::<serde_json::Value>("task_list", &path)
            .await?
        {
            serde_json::Value::Array(items) => Ok(items),
            other => Err(bad(format!("expected a list of tasks, got {other}"))),
        }
    }

    /// Runs `cmd` in the running container `container` (on the daemon this client talks to) and
    /// waits for it to end: exec create, start (attached, output collected), inspect. The caller
    /// bounds the time (`tokio::time::timeout`); a command cut off that way keeps running in the
    /// container until it ends by itself.
    pub async fn exec(&self, container: &str, cmd: &[String]) -> Result<ExecOutput, SwarmError> {
        use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
        use futures::StreamExt;

        let create = CreateExecOptions {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let id = self
            .call("exec_create", self.docker().create_exec(container, create))
            .await?
            .id;
        let start = Instant::now();
        let started = self
            .docker()
            .start_exec(
                &id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: None,
                }),
            )
            .await;
        let mut buf: Vec<u8> = Vec::new();
        let mut failure = None;
        match started {
            Ok(StartExecResults::Attached { mut output, .. }) => {
                while let Some(item) = output.next().await {
                    match item {
                        Ok(chunk) => {
                            buf.extend_from_slice(&chunk.into_bytes());
                            if buf.len() > 2 * EXEC_OUTPUT_MAX {
                                buf.drain(..buf.len() - EXEC_OUTPUT_MAX);
                            }
                        }
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
            }
            Ok(StartExecResults::Detached) => {}
            Err(e) => failure = Some(e),
        }
        self.count("exec_start", start.elapsed());
        if let Some(source) = failure {
            return Err(match source {
                bollard::errors::Error::DockerResponseServerError {
                    status_code,
                    message,
                } => SwarmError::Server {
                    op: "exec_start",
                    status: status_code,
                    message,
                },
                source => SwarmError::Other {
                    op: "exec_start",
                    source,
                },
            });
        }
        let inspect = self
            .call("exec_inspect", self.docker().inspect_exec(&id))
            .await?;
        if buf.len() > EXEC_OUTPUT_MAX {
            buf.drain(..buf.len() - EXEC_OUTPUT_MAX);
        }
        Ok(ExecOutput {
            exit_code: inspect.exit_code,
            output: String::from_utf8_lossy(&buf).into_owned(),
        })
    }
}

#[cfg(test)]
mod fence_tests {
    use super::*;

    #[test]
    fn the_fence_guards_every_write_and_nothing_that_only_reads() {
        for op in WRITE_OPS {
            assert!(is_fenced(op), "{op}");
        }
        for op in ["config_update", "container_archive_put", "exec_create"] {
            assert!(is_fenced(op), "{op}");
        }
        for op in [
            "service_list",
            "task_list",
            "config_inspect",
            "container_archive_get",
        ] {
            assert!(!is_fenced(op), "{op}");
        }
    }
}

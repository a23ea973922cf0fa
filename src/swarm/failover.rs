//! Several Swarm managers behind one [`Client`](super::Client): which one is in use, the checks a
//! candidate must pass (a manager, with a leader), and the switch to another when the one in use
//! stops answering or loses quorum.
//!
//! What counts as "gone" was measured on dockerd 20.10 (three managers in network namespaces,
//! `scripts/swarm-multi`): a killed manager's socket refuses connections; a manager that lost
//! quorum answers swarm calls with HTTP 500 `rpc error: code = Unknown desc = The swarm does not
//! have a leader. It's possible that too few managers are online. …` (and `docker info` carries the
//! same text in `Swarm.Error`), and in the seconds while it notices, a list call may hang: hence
//! the request timeout ([`super::client::REQUEST_TIMEOUT`]). The call that failed still fails (the
//! controller retries it on its next pass, on the new manager); every later call goes to the new one.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{LocalNodeState, SystemInfo};

use super::SwarmError;
use super::client::Client;

/// How long probing one candidate (connect, negotiate, info) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one round of probes per this interval (a failing snapshot fails six calls at once).
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// The manager in use.
#[derive(Clone)]
pub(super) struct Active {
    pub index: usize,
    pub host: String,
    pub docker: Docker,
    /// Bumped on every switch: a failure seen on an older generation needs no new switch.
    pub generation: u64,
}

/// Every configured endpoint and the one in use.
pub struct Endpoints {
    pub hosts: Vec<String>,
    active: RwLock<Active>,
    switching: tokio::sync::Mutex<Option<Instant>>,
    failovers: Mutex<u64>,
}

/// Whether a candidate can serve hearth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// A manager whose swarm has a leader.
    Manager,
    /// A manager that answers but cannot reach a leader (the message says why).
    NoQuorum(String),
    /// A worker, or a daemon in no swarm: never usable ("a worker", "not part of a swarm").
    NotManager(&'static str),
}

/// Judges `docker info` of a candidate.
pub fn health(info: &SystemInfo) -> Health {
    let swarm = info.swarm.as_ref();
    let state = swarm.and_then(|s| s.local_node_state);
    if state != Some(LocalNodeState::ACTIVE) {
        return Health::NotManager("not part of an active swarm");
    }
    if swarm.and_then(|s| s.control_available) != Some(true) {
        return Health::NotManager("a worker");
    }
    match swarm
        .and_then(|s| s.error.clone())
        .filter(|e| !e.is_empty())
    {
        Some(e) => Health::NoQuorum(e),
        None => Health::Manager,
    }
}

/// Whether `e` says the endpoint in use is gone or has lost quorum (as opposed to a request
/// Docker refused: not found, conflict, bad spec).
pub fn is_endpoint_failure(e: &SwarmError) -> bool {
    const NO_LEADER: [&str; 4] = [
        "does not have a leader",
        "This node is not a swarm manager",
        "rpc error: code = Unavailable",
        "rpc error: code = DeadlineExceeded",
    ];
    match e {
        SwarmError::Connect { .. } | SwarmError::Timeout { .. } => true,
        SwarmError::NotManager { .. } | SwarmError::Fenced { .. } => false,
        SwarmError::Server {
            status, message, ..
        } => {
            NO_LEADER.iter().any(|m| message.contains(m))
                // raw GETs report connection failures as a message (status 0)
                || (*status == 0 && message.starts_with("connect "))
        }
        // Transport errors: refused, reset, broken pipe, no such socket.
        SwarmError::Other { source, .. } => !matches!(
            source,
            bollard::errors::Error::JsonDataError { .. }
                | bollard::errors::Error::JsonSerdeError { .. }
                | bollard::errors::Error::DockerResponseServerError { .. }
        ),
    }
}

/// Connects to `host` and judges it.
async fn probe(host: &str) -> Result<(Docker, Health), SwarmError> {
    let fut = async {
        let docker = Client::open_docker(host).await?;
        let info = docker.info().await.map_err(|source| SwarmError::Connect {
            host: host.to_string(),
            source,
        })?;
        Ok((docker, health(&info)))
    };
    tokio::time::timeout(PROBE_TIMEOUT, fut)
        .await
        .unwrap_or(Err(SwarmError::Timeout {
            op: "probe",
            after: PROBE_TIMEOUT,
        }))
}

impl Endpoints {
    /// Probes every host (in order): a worker or a daemon outside a swarm is an error; the first
    /// manager with a leader is used, else the first manager that answers.
    pub(super) async fn open(hosts: &[String]) -> Result<Endpoints, SwarmError> {
        let hosts: Vec<String> = if hosts.is_empty() {
            vec!["unix:///var/run/docker.sock".to_string()]
        } else {
            hosts.to_vec()
        };
        let mut fallback = None;
        let mut chosen = None;
        let mut last_err = None;
        for (i, host) in hosts.iter().enumerate() {
            match probe(host).await {
                Ok((_, Health::NotManager(what))) => {
                    return Err(SwarmError::NotManager {
                        host: host.clone(),
                        what: what.to_string(),
                    });
                }
                Ok((docker, Health::Manager)) => {
                    if chosen.is_none() {
                        chosen = Some((i, docker));
                    }
                }
                Ok((docker, Health::NoQuorum(why))) => {
                    tracing::warn!("docker {host}: a manager without quorum: {why}");
                    if fallback.is_none() {
                        fallback = Some((i, docker));
                    }
                }
                Err(e) => {
                    if hosts.len() > 1 {
                        tracing::warn!("docker {host}: {e}");
                    }
                    last_err = Some(e);
                }
            }
        }
        let Some((index, docker)) = chosen.or(fallback) else {
            return Err(last_err.unwrap_or(SwarmError::Timeout {
                op: "connect",
                after: PROBE_TIMEOUT,
            }));
        };
        if hosts.len() > 1 {
            tracing::info!("docker: using manager {}", hosts[index]);
        }
        Ok(Endpoints {
            active: RwLock::new(Active {
                index,
                host: hosts[index].clone(),
                docker,
                generation: 0,
            }),
            hosts,
            switching: tokio::sync::Mutex::new(None),
            failovers: Mutex::new(0),
        })
    }

    pub(super) fn active(&self) -> Active {
        self.active.read().expect("active endpoint").clone()
    }

    pub(super) fn generation(&self) -> u64 {
        self.active.read().expect("active endpoint").generation
    }

    pub(super) fn failovers(&self) -> u64 {
        *self.failovers.lock().expect("failovers")
    }

    /// After `failure` on generation `seen`: probes the other hosts (in order after the current
    /// one) and switches to the first manager with a leader. Does nothing with one host, when
    /// another caller already switched, or when a probe round ran less than [`PROBE_EVERY`] ago.
    pub(super) async fn fail_over(&self, seen: u64, failure: &SwarmError) {
        if self.hosts.len() < 2 {
            return;
        }
        let mut last = self.switching.lock().await;
        let current = self.active();
        if current.generation != seen || last.is_some_and(|t| t.elapsed() < PROBE_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            "docker {}: {failure}; looking for another manager",
            current.host
        );
        let n = self.hosts.len();
        for step in 1..n {
            let index = (current.index + step) % n;
            let host = &self.hosts[index];
            match probe(host).await {
                Ok((docker, Health::Manager)) => {
                    let mut a = self.active.write().expect("active endpoint");
                    *a = Active {
                        index,
                        host: host.clone(),
                        docker,
                        generation: current.generation + 1,
                    };
                    *self.failovers.lock().expect("failovers") += 1;
                    tracing::warn!("docker: failed over from {} to {host}", current.host);
                    return;
                }
                Ok((_, Health::NoQuorum(why))) => {
                    tracing::warn!("docker {host}: no quorum either: {why}")
                }
                Ok((_, Health::NotManager(what))) => {
                    tracing::error!("docker {host} is {what}: hearth needs a manager; skipped")
                }
                Err(e) => tracing::warn!("docker {host}: {e}"),
            }
        }
        tracing::warn!(
            "docker: no other manager can serve; staying on {}",
            current.host
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::SwarmInfo;

    fn info(state: LocalNodeState, control: bool, error: &str) -> SystemInfo {
        SystemInfo {
            swarm: Some(SwarmInfo {
                local_node_state: Some(state),
                control_available: Some(control),
                error: Some(error.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_manager_with_a_leader_is_healthy() {
        assert_eq!(
            health(&info(LocalNodeState::ACTIVE, true, "")),
            Health::Manager
        );
    }

    #[test]
    fn a_worker_and_a_lone_daemon_are_refused() {
        assert_eq!(
            health(&info(LocalNodeState::ACTIVE, false, "")),
            Health::NotManager("a worker")
        );
        assert_eq!(
            health(&info(LocalNodeState::INACTIVE, false, "")),
            Health::NotManager("not part of an active swarm")
        );
        assert_eq!(
            health(&SystemInfo::default()),
            Health::NotManager("not part of an active swarm")
        );
    }

    #[test]
    fn a_manager_without_quorum_says_why() {
        let why = "rpc error: code = Unknown desc = The swarm does not have a leader. It's \
                   possible that too few managers are online.";
        assert_eq!(
            health(&info(LocalNodeState::ACTIVE, true, why)),
            Health::NoQuorum(why.to_string())
        );
    }

    #[test]
    fn lost_quorum_and_transport_failures_trigger_a_failover() {
        let server = |status, message: &str| SwarmError::Server {
            op: "node_list",
            status,
            message: message.into(),
        };
        // the text a 20.10 manager without quorum answered with (HTTP 500)
        assert!(is_endpoint_failure(&server(
            500,
            "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible \
             that too few managers are online. Make sure more than half of the managers are online."
        )));
        assert!(is_endpoint_failure(&server(
            0,
            "connect unix:///run/hearth-node1/docker.sock: Connection refused (os error 111)"
        )));
        assert!(is_endpoint_failure(&SwarmError::Timeout {
            op: "task_list",
            after: Duration::from_secs(1)
        }));
        // refusals of the request itself are not the endpoint's fault
        assert!(!is_endpoint_failure(&server(404, "service x not found")));
        assert!(!is_endpoint_failure(&server(
            500,
            "rpc error: code = Unknown desc = update out of sequence"
        )));
        assert!(!is_endpoint_failure(&server(
            0,
            "GET /v1.41/tasks: HTTP 400: bad filter"
        )));
        assert!(!is_endpoint_failure(&SwarmError::NotManager {
            host: "h".into(),
            what: "a worker".into()
        }));
    }

    #[tokio::test]
    async fn nothing_answering_is_a_connect_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hosts = vec![
            format!("unix://{}/a.sock", dir.path().display()),
            format!("unix://{}/b.sock", dir.path().display()),
        ];
        let Err(e) = Endpoints::open(&hosts).await else {
            panic!("connected to nothing");
        };
        assert!(is_endpoint_failure(&e), "{e}");
    }
}

//! The assessment's plain data: its input ([`AssessInput`]) and output ([`Assessment`]: phase,
//! reason, conditions, per-service progress, wedge).

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use bollard::models::Node;
use serde::{Deserialize, Serialize};

use super::ServiceProgress;
use crate::observed::StackView;
use crate::plan::DriftItem;

/// Failed tasks of one service within [`DEFAULT_CRASH_WINDOW`] that make a crash loop certain.
pub const DEFAULT_CRASH_THRESHOLD: usize = 3;
/// The window [`DEFAULT_CRASH_THRESHOLD`] failures must fall in.
pub const DEFAULT_CRASH_WINDOW: Duration = Duration::from_secs(60);
/// The progress deadline when the manifest and pool give none.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);

/// Where a deployment stands (docs/architecture.md §6). `AdvanceFailed` and `Held` belong to the version-advance
/// machine; [`super::assess`] never produces them. Serialized as its name (`"Ready"`), the string
/// the API, the status page and the metrics show. `Pending` is the default: a deployment not
/// looked at yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
pub enum Phase {
    #[default]
    Pending,
    Progressing,
    Ready,
    Degraded,
    Wedged,
    AdvanceFailed,
    Held,
    Parked,
    Suspended,
    Invalid,
}

impl Phase {
    pub const ALL: [Phase; 10] = [
        Phase::Pending,
        Phase::Progressing,
        Phase::Ready,
        Phase::Degraded,
        Phase::Wedged,
        Phase::AdvanceFailed,
        Phase::Held,
        Phase::Parked,
        Phase::Suspended,
        Phase::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Progressing => "Progressing",
            Phase::Ready => "Ready",
            Phase::Degraded => "Degraded",
            Phase::Wedged => "Wedged",
            Phase::AdvanceFailed => "AdvanceFailed",
            Phase::Held => "Held",
            Phase::Parked => "Parked",
            Phase::Suspended => "Suspended",
            Phase::Invalid => "Invalid",
        }
    }

    /// The phase named `s` (as [`Phase::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Phases that want another look soon: not settled until they are Ready or stopped.
    pub fn unsettled(self) -> bool {
        matches!(
            self,
            Phase::Progressing | Phase::Pending | Phase::Degraded | Phase::Wedged
        )
    }
}

/// A phase compares equal to its name, so `status.phase == "Ready"` reads as before.
impl PartialEq<str> for Phase {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Phase {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a deployment will not converge without a change. The order of the variants is their
/// precedence when several services are wedged for different reasons (first wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum WedgeReason {
    /// Swarm paused while rolling a failed update back (`UpdateStatus.State = rollback_paused`).
    RollbackPaused,
    /// Swarm rolled a failed update back (`rollback_started` / `rollback_completed`) and the live
    /// spec is not the desired one: a failure, never success.
    RolledBack,
    /// Swarm paused a failed update (`--update-failure-action pause`).
    UpdatePaused,
    /// Tasks rejected with `No such image: <image>`.
    ImageMissing,
    /// Pinned to a node that is down, and the service has volumes there.
    VolumeNodeDown,
    /// Pinned (`node.hostname==` / `node.id==`) to a node that is down or not active.
    NodeDown,
    /// Tasks pending with `no suitable node (...)`.
    Unschedulable,
    /// Tasks killed by their Docker healthcheck, `crash_threshold` times within `crash_window`.
    HealthcheckFailing,
    /// `crash_threshold` tasks of one service failed within `crash_window`.
    CrashLoop,
    /// Services run but a readiness probe still fails at the deadline.
    ProbeFailing,
    /// Not Ready `progress_deadline` after the desired spec was applied.
    DeadlineExceeded,
}

impl WedgeReason {
    /// Every reason, in precedence order; the metrics' label list is made from it
    /// (`report::metrics::wedge_reason`), so the two cannot drift apart.
    pub const ALL: [WedgeReason; 11] = [
        WedgeReason::RollbackPaused,
        WedgeReason::RolledBack,
        WedgeReason::UpdatePaused,
        WedgeReason::ImageMissing,
        WedgeReason::VolumeNodeDown,
        WedgeReason::NodeDown,
        WedgeReason::Unschedulable,
        WedgeReason::HealthcheckFailing,
        WedgeReason::CrashLoop,
        WedgeReason::ProbeFailing,
        WedgeReason::DeadlineExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WedgeReason::RollbackPaused => "RollbackPaused",
            WedgeReason::RolledBack => "RolledBack",
            WedgeReason::UpdatePaused => "UpdatePaused",
            WedgeReason::ImageMissing => "ImageMissing",
            WedgeReason::VolumeNodeDown => "VolumeNodeDown",
            WedgeReason::NodeDown => "NodeDown",
            WedgeReason::Unschedulable => "Unschedulable",
            WedgeReason::HealthcheckFailing => "HealthcheckFailing",
            WedgeReason::CrashLoop => "CrashLoop",
            WedgeReason::ProbeFailing => "ProbeFailing",
            WedgeReason::DeadlineExceeded => "DeadlineExceeded",
        }
    }
}

impl std::fmt::Display for WedgeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What stops a deployment; `service` is the full Swarm service name (empty for deployment-wide
/// reasons such as a failing probe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wedge {
    pub reason: WedgeReason,
    pub service: String,
    pub message: String,
    pub exit_code: Option<i64>,
}

/// A phase, the CamelCase reason for it and a human sentence: what the judge, the advance
/// machine and the controller's decisions hand on (reported as a deployment's phase, reason and
/// message).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Standing {
    pub phase: Phase,
    pub reason: String,
    pub message: String,
}

impl Standing {
    pub fn new(phase: Phase, reason: &str, message: impl Into<String>) -> Standing {
        Standing {
            phase,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// One status line; `kind` is `Ready`, `Progressing`, `Wedged`, `Degraded`, `Drifted`,
/// `DependenciesReady` or `ProbesPassing` — or `Conflict`, one per collision with another stack,
/// which the controller adds from [`crate::conflicts`] (never part of the phase), or `Held`.
/// `since` is when its status last changed: set by the controller
/// (`controller::status::DeploymentStatus::set_conditions`), `None` from [`super::assess`].
/// The same type is the API's condition (`report::api`): JSON `{"type", "status", "reason",
/// "message", "since"}`, `since` RFC 3339 in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
    #[serde(with = "rfc3339", default)]
    pub since: Option<SystemTime>,
}

impl Condition {
    /// A condition whose `since` the controller has yet to set.
    pub fn new(kind: &str, status: bool, reason: &str, message: impl Into<String>) -> Condition {
        Condition {
            kind: kind.to_string(),
            status,
            reason: reason.to_string(),
            message: message.into(),
            since: None,
        }
    }
}

/// `Option<SystemTime>` as an RFC 3339 string in whole seconds, UTC (`null` when unknown; a
/// string that does not parse reads as unknown).
pub mod rfc3339 {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        let s: Option<String> = serde::Deserialize::deserialize(d)?;
        Ok(s.and_then(|s| humantime::parse_rfc3339_weak(&s).ok()))
    }
}

/// The result of one readiness probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeOutcome {
    pub name: String,
    pub ok: bool,
    pub message: String,
}

/// A service the desired spec has: its full name and the `hearth.spec-hash` it should carry
/// (`None` when unknown: then the live spec is taken as the desired one, except after a Swarm
/// rollback, which always counts as a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedService {
    pub name: String,
    pub spec_hash: Option<String>,
}

/// Everything one assessment looks at. Plain data; `now` is passed in.
#[derive(Debug, Clone)]
pub struct AssessInput<'a> {
    pub now: SystemTime,
    /// The deployment's live objects.
    pub view: &'a StackView<'a>,
    pub nodes: &'a [Node],
    /// The services the desired spec has (empty: not checked).
    pub expected: &'a [ExpectedService],
    /// `state: running` (false: `parked`).
    pub desired_running: bool,
    pub suspended: bool,
    /// Why the manifest or its render is invalid.
    pub invalid: Option<String>,
    /// What the deployment waits for that only an operator can provide (a secret that must be
    /// made by hand): `Pending`, reason `SecretMissing`.
    pub waiting: Option<String>,
    /// Out-of-band changes found by the plan.
    pub drift: &'a [DriftItem],
    pub probes: &'a [ProbeOutcome],
    /// Each `dependsOn` deployment and its phase (a missing one is passed as `Pending`).
    pub dependencies: &'a [(String, Phase)],
    /// When the current desired spec was first applied.
    pub progressing_since: Option<SystemTime>,
    pub progress_deadline: Duration,
    /// The current desired spec has been Ready since it was applied.
    pub was_ready: bool,
    /// Service ID -> its `Spec` exactly as Docker returned it ([`crate::observed::Snapshot`]'s
    /// `service_specs`). Needed for the healthcheck: bollard reads `HealthCheck` where Docker
    /// writes `Healthcheck`, so the typed spec never has it.
    pub raw_specs: &'a HashMap<String, serde_json::Value>,
    /// Container ID -> its last log lines (for the containers of `Assessment::logs_wanted`).
    pub logs: &'a HashMap<String, Vec<String>>,
    pub crash_window: Duration,
    pub crash_threshold: usize,
}

static NO_LOGS: LazyLock<HashMap<String, Vec<String>>> = LazyLock::new(HashMap::new);
static NO_SPECS: LazyLock<HashMap<String, serde_json::Value>> = LazyLock::new(HashMap::new);

impl<'a> AssessInput<'a> {
    /// An input with defaults: running, not suspended, valid, no drift, probes, dependencies, raw
    /// specs or logs, default deadline, crash window and threshold.
    pub fn new(now: SystemTime, view: &'a StackView<'a>) -> Self {
        AssessInput {
            now,
            view,
            nodes: &[],
            expected: &[],
            desired_running: true,
            suspended: false,
            invalid: None,
            waiting: None,
            drift: &[],
            probes: &[],
            dependencies: &[],
            progressing_since: None,
            progress_deadline: DEFAULT_PROGRESS_DEADLINE,
            was_ready: false,
            raw_specs: &NO_SPECS,
            logs: &NO_LOGS,
            crash_window: DEFAULT_CRASH_WINDOW,
            crash_threshold: DEFAULT_CRASH_THRESHOLD,
        }
    }
}

/// Where a deployment stands and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    pub phase: Phase,
    /// CamelCase reason (`AllReady` when Ready).
    pub reason: String,
    /// A human sentence naming the service and the cause.
    pub message: String,
    pub conditions: Vec<Condition>,
    pub services: Vec<ServiceProgress>,
    pub wedge: Option<Wedge>,
    pub drift: Vec<DriftItem>,
    /// Container IDs whose log tails would explain a failure (fetch them and pass them in
    /// `AssessInput::logs` next time).
    pub logs_wanted: Vec<String>,
}

impl Assessment {
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }
}

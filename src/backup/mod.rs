//! Snapshots of a deployment's volumes (take and restore), following Co-op Cloud's backupbot label
//! conventions on the live Swarm services: which services and volumes, which paths, which hooks
//! ([`labels`]); a local snapshot store with checksums and retention ([`store`]); tar rewriting
//! between Docker's archive API and the stored per-volume tars ([`archive`]); short-lived helper
//! containers that mount a volume ([`helper`]); hooks run in the service's container (`hooks`);
//! and the executor that ties them together ([`run`]). `docs/snapshots.md` describes the store and
//! the labels supported.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::swarm::SwarmError;

pub mod archive;
pub mod helper;
mod hooks;
pub mod labels;
pub mod run;
pub mod store;

pub use labels::{Hooks, LiveService, ServicePlan, VolumePlan, plan_service, plan_stack};
pub use run::{restore, take, take_with};
pub use store::{SnapshotMeta, Store, VolumeEntry, new_id, to_prune};

/// How snapshots are taken and restored.
#[derive(Clone, Debug)]
pub struct Options {
    /// The image of the helper container that mounts a volume; `None`: the service's own image
    /// (present on the node). A restore runs `sh -c` in it (to empty the volume), so it needs a shell.
    pub helper_image: Option<String>,
    /// Extra labels on every helper container (tests pass `hearth.test=<test>`), on top of
    /// `hearth.managed-by=hearth` and `hearth.role=backup-helper`.
    pub labels: BTreeMap<String, String>,
    /// How long one hook may run.
    pub hook_timeout: Duration,
    /// How long to wait for a service's running container when a hook must run in it.
    pub wait_running: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            helper_image: None,
            labels: BTreeMap::new(),
            hook_timeout: Duration::from_secs(600),
            wait_running: Duration::from_secs(60),
        }
    }
}

/// Why a snapshot could not be taken, listed, verified or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// No service of the stack carries `backupbot.backup=true` (the caller decides what that means).
    #[error("nothing to back up: no service of stack {stack} has backupbot.backup=true")]
    NothingToBackUp { stack: String },
    /// A hook failed (non-zero exit, no exit code, or timed out): the step it guards did not happen.
    #[error("{service}: {hook} `{command}` failed ({}): {output}",
        exit_code.map_or("no exit code".to_string(), |c| format!("exit {c}")))]
    Hook {
        service: String,
        /// The label, e.g. `backupbot.backup.pre-hook`.
        hook: String,
        command: String,
        exit_code: Option<i64>,
        output: String,
    },
    /// A label's value cannot be used (e.g. a path leaving its volume).
    #[error("{service}: label {label}: {message}")]
    Label {
        service: String,
        label: String,
        message: String,
    },
    /// A hook must run but the service has no running container on this node.
    #[error("{service}: no running container on this node to run {hook} in: {message}")]
    NotRunning {
        service: String,
        hook: String,
        message: String,
    },
    /// A helper container failed (e.g. emptying a volume before a restore).
    #[error("helper container for volume {volume}: {message}")]
    Helper { volume: String, message: String },
    #[error(transparent)]
    Docker(#[from] SwarmError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A stored snapshot does not match its metadata (missing file, size, checksum, empty).
    #[error("snapshot verification failed: {0}")]
    Verify(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A deployment name or snapshot id that cannot name a directory of the store.
    #[error("invalid name: {0}")]
    InvalidName(String),
}

impl BackupError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BackupError {
        let path = path.into();
        move |source| BackupError::Io { path, source }
    }
}

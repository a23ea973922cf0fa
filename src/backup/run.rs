//! The executor: takes a snapshot of a live stack's labelled volumes (hooks in the running container,
//! data copied through short-lived helper containers) and restores one.

use super::{BackupError, Options, SnapshotMeta, Store};
use crate::swarm::Client;

/// Takes a snapshot of `stack` (deployment `deployment` at `version`) into `store`: for each
/// service labelled `backupbot.backup=true`, its pre-hook, the copy of its volumes, its post-hook
/// (also when the copy failed). The snapshot is verified, then made visible, then retention runs.
pub async fn take(
    client: &Client,
    store: &Store,
    opts: &Options,
    deployment: &str,
    stack: &str,
    version: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SnapshotMeta, BackupError> {
    let _ = (client, store, opts, deployment, stack, version, progress);
    todo!("backup::take")
}

/// Restores `meta` into the live stack `meta.stack`: verifies the snapshot, runs each service's
/// restore pre-hook, replaces each volume's content (or only the snapshot's paths) with the
/// snapshot's, runs the restore post-hook.
pub async fn restore(
    client: &Client,
    store: &Store,
    opts: &Options,
    meta: &SnapshotMeta,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), BackupError> {
    let _ = (client, store, opts, meta, progress);
    todo!("backup::restore")
}

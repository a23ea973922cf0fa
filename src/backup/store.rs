//! The snapshot store: `<root>/<deployment>/<id>/` holding one tar per volume and `meta.json`.
//! A snapshot is written into `<root>/<deployment>/.tmp-<id>/`, verified, then renamed into place,
//! so a half-written snapshot is never listed; retention keeps the newest `keep` per deployment.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BackupError;

/// The metadata file of a snapshot.
pub const META_FILE: &str = "meta.json";
/// The prefix of a snapshot directory still being written.
pub const TMP_PREFIX: &str = ".tmp-";

/// One snapshot: what was taken, when, of which version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SnapshotMeta {
    pub id: String,
    pub deployment: String,
    pub stack: String,
    /// The deployment's version when the snapshot was taken.
    pub version: String,
    /// RFC 3339, UTC, milliseconds.
    pub created: String,
    pub volumes: Vec<VolumeEntry>,
    /// The sum of the volumes' tar sizes.
    pub bytes: u64,
}

/// One volume of a snapshot, stored as one tar whose entries are relative to the volume root.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VolumeEntry {
    /// The compose service name (without the `<stack>_` prefix).
    pub service: String,
    /// The compose volume name, e.g. `postgres`.
    pub volume: String,
    /// The Docker volume, e.g. `<stack>_postgres`.
    pub docker_volume: String,
    /// The paths taken (relative to the volume root); empty: the whole volume.
    pub paths: Vec<String>,
    /// The tar's file name inside the snapshot directory.
    pub file: String,
    pub bytes: u64,
    /// Hex SHA-256 of the tar.
    pub sha256: String,
}

/// A directory of snapshots, `keep` retained per deployment.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    keep: usize,
}

impl Store {
    /// A store at `root` keeping `keep` snapshots per deployment (at least one).
    pub fn new(root: impl Into<PathBuf>, keep: usize) -> Store {
        Store {
            root: root.into(),
            keep: keep.max(1),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn keep(&self) -> usize {
        self.keep
    }

    /// The directory of one deployment's snapshots.
    pub fn deployment_dir(&self, deployment: &str) -> Result<PathBuf, BackupError> {
        check_name(deployment)?;
        Ok(self.root.join(deployment))
    }

    /// The directory of one complete snapshot.
    pub fn snapshot_dir(&self, deployment: &str, id: &str) -> Result<PathBuf, BackupError> {
        check_name(id)?;
        Ok(self.deployment_dir(deployment)?.join(id))
    }

    /// The stored tar of one volume of `meta`.
    pub fn volume_file(
        &self,
        meta: &SnapshotMeta,
        v: &VolumeEntry,
    ) -> Result<PathBuf, BackupError> {
        check_name(&v.file)?;
        Ok(self.snapshot_dir(&meta.deployment, &meta.id)?.join(&v.file))
    }

    /// The deployment's complete snapshots, newest first. A directory without readable metadata
    /// is skipped (logged), never fatal.
    pub fn list(&self, deployment: &str) -> Result<Vec<SnapshotMeta>, BackupError> {
        let dir = self.deployment_dir(deployment)?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(BackupError::io(&dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(BackupError::io(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            match read_meta(&entry.path()) {
                Ok(m) if m.id == name && m.deployment == deployment => out.push(m),
                Ok(m) => tracing::warn!(
                    "snapshot store: {} holds metadata of {}/{}; skipped",
                    entry.path().display(),
                    m.deployment,
                    m.id
                ),
                Err(e) => tracing::warn!("snapshot store: {e}; skipped"),
            }
        }
        sort_newest_first(&mut out);
        Ok(out)
    }

    /// One snapshot's metadata.
    pub fn get(&self, deployment: &str, id: &str) -> Result<SnapshotMeta, BackupError> {
        let dir = self.snapshot_dir(deployment, id)?;
        if !dir.is_dir() {
            return Err(BackupError::NotFound(format!(
                "snapshot {id} of deployment {deployment}"
            )));
        }
        let meta = read_meta(&dir)?;
        if meta.id != id || meta.deployment != deployment {
            return Err(BackupError::Verify(format!(
                "{} holds metadata of {}/{}",
                dir.display(),
                meta.deployment,
                meta.id
            )));
        }
        Ok(meta)
    }

    /// Checks a complete snapshot against its metadata.
    pub fn verify(&self, meta: &SnapshotMeta) -> Result<(), BackupError> {
        verify_in(&self.snapshot_dir(&meta.deployment, &meta.id)?, meta)
    }

    /// Creates the temporary directory a new snapshot is written into.
    pub fn begin(&self, deployment: &str, id: &str) -> Result<PathBuf, BackupError> {
        check_name(id)?;
        let dir = self
            .deployment_dir(deployment)?
            .join(format!("{TMP_PREFIX}{id}"));
        std::fs::create_dir_all(&dir).map_err(BackupError::io(&dir))?;
        Ok(dir)
    }

    /// Writes `meta` into the temporary directory `tmp`, verifies it there, renames it into place
    /// and applies retention; returns the ids removed by retention.
    pub fn commit(&self, tmp: &Path, meta: &SnapshotMeta) -> Result<Vec<String>, BackupError> {
        let path = tmp.join(META_FILE);
        let text = serde_json::to_string_pretty(meta)
            .map_err(|e| BackupError::Verify(format!("metadata: {e}")))?;
        std::fs::write(&path, text).map_err(BackupError::io(&path))?;
        verify_in(tmp, meta)?;
        let dest = self.snapshot_dir(&meta.deployment, &meta.id)?;
        std::fs::rename(tmp, &dest).map_err(BackupError::io(&dest))?;
        self.prune(&meta.deployment)
    }

    /// Removes the deployment's snapshots beyond `keep` (oldest first); returns their ids.
    pub fn prune(&self, deployment: &str) -> Result<Vec<String>, BackupError> {
        let doomed = to_prune(&self.list(deployment)?, self.keep);
        for id in &doomed {
            let dir = self.snapshot_dir(deployment, id)?;
            std::fs::remove_dir_all(&dir).map_err(BackupError::io(&dir))?;
        }
        Ok(doomed)
    }

    /// Removes temporary directories of the deployment older than `age` (left by a killed take).
    pub fn sweep_tmp(&self, deployment: &str, age: std::time::Duration) {
        let Ok(dir) = self.deployment_dir(deployment) else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|a| a >= age);
            if old && e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Deployment names, ids and file names become path components: no separators, no dot-names.
fn check_name(name: &str) -> Result<(), BackupError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(BackupError::InvalidName(format!("{name:?}")))
    }
}

fn read_meta(dir: &Path) -> Result<SnapshotMeta, BackupError> {
    let path = dir.join(META_FILE);
    let text = std::fs::read_to_string(&path).map_err(BackupError::io(&path))?;
    serde_json::from_str(&text).map_err(|e| BackupError::Verify(format!("{}: {e}", path.display())))
}

/// Newest first: by creation time, then id (both sort as text).
pub fn sort_newest_first(metas: &mut [SnapshotMeta]) {
    metas.sort_by(|a, b| (&b.created, &b.id).cmp(&(&a.created, &a.id)));
}

/// The ids to remove so that only the newest `keep` (at least one) remain; `metas` newest first.
pub fn to_prune(metas: &[SnapshotMeta], keep: usize) -> Vec<String> {
    metas
        .iter()
        .skip(keep.max(1))
        .map(|m| m.id.clone())
        .collect()
}

/// A new snapshot id and its RFC 3339 creation time: `20261123T182254.123Z-3f9a` (sorts by time).
pub fn new_id(now: SystemTime) -> (String, String) {
    let created = humantime::format_rfc3339_millis(now).to_string();
    let mut rand = [0u8; 2];
    let _ = getrandom::fill(&mut rand);
    (id_from(&created, &rand), created)
}

fn id_from(created: &str, rand: &[u8]) -> String {
    let stamp: String = created.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{stamp}-{}", hex::encode(rand))
}

/// Hex SHA-256 and length of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64), BackupError> {
    let mut f = std::fs::File::open(path).map_err(BackupError::io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(BackupError::io(path))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// Every volume's tar exists in `dir`, has the recorded size and checksum and holds at least one
/// entry; the sizes add up to `meta.bytes`; at least one volume.
pub fn verify_in(dir: &Path, meta: &SnapshotMeta) -> Result<(), BackupError> {
    let fail = |m: String| Err(BackupError::Verify(format!("{}: {m}", meta.id)));
    if meta.volumes.is_empty() {
        return fail("no volumes".into());
    }
    let mut total = 0;
    for v in &meta.volumes {
        check_name(&v.file)?;
        let path = dir.join(&v.file);
        if !path.is_file() {
            return fail(format!("{} is missing", v.file));
        }
        let (sha, bytes) = sha256_file(&path)?;
        if bytes != v.bytes {
            return fail(format!(
                "{} has {bytes} bytes, expected {}",
                v.file, v.bytes
            ));
        }
        if sha != v.sha256 {
            return fail(format!(
                "{} has sha256 {sha}, expected {}",
                v.file, v.sha256
            ));
        }
        let entries = super::archive::count_entries(&path)?;
        if entries == 0 {
            return fail(format!("{} holds no files", v.file));
        }
        total += bytes;
    }
    if total != meta.bytes {
        return fail(format!(
            "volumes sum to {total} bytes, metadata says {}",
            meta.bytes
        ));
    }
    Ok(())
}

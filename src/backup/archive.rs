//! Tar rewriting between Docker's archive API and the stored per-volume tars (pure over readers and
//! writers). Docker names the entries of `GET /containers/{id}/archive?path=<mount>/<rel>` after the
//! last component of the path; the store keeps every entry relative to the volume root, so one tar
//! holds all the paths taken of a volume and extracts into the volume's mount point as it is.
//! Kept per entry: type, mode, owner, times, size, link target; dropped: the volume root's own
//! entry, PAX records other than names (extended attributes, ACLs).

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use super::BackupError;

/// The name an entry of Docker's archive of `<mount>/<rel>` gets in the stored tar: its first
/// component (the name Docker gave the root) is replaced by `rel`; `rel` empty (the whole volume):
/// dropped, and the root entry itself is skipped (`None`). Names leaving the root are refused.
pub fn rebase_name(name: &Path, rel: &str) -> Option<PathBuf> {
    let mut parts = name
        .components()
        .filter(|c| !matches!(c, Component::CurDir));
    match parts.next()? {
        Component::Normal(_) => {}
        _ => return None,
    }
    let mut out = PathBuf::from(rel);
    for c in parts {
        match c {
            Component::Normal(p) => out.push(p),
            _ => return None,
        }
    }
    if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Appends the entries of one Docker archive (of `<mount>/<rel>`) to `out`, renamed by
/// [`rebase_name`]; returns how many were appended.
pub fn append_rebased<R: Read, W: Write>(
    input: R,
    rel: &str,
    out: &mut tar::Builder<W>,
) -> io::Result<usize> {
    let mut archive = tar::Archive::new(input);
    let mut n = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let name = entry.path()?.into_owned();
        let Some(path) = rebase_name(&name, rel) else {
            continue;
        };
        let mut header = entry.header().clone();
        header.set_size(entry.size());
        if kind.is_hard_link() || kind.is_symlink() {
            let target = entry
                .link_name()?
                .map(|t| t.into_owned())
                .unwrap_or_default();
            // A hard link names another entry of the archive: rename it the same way.
            let target = if kind.is_hard_link() {
                rebase_name(&target, rel).unwrap_or(target)
            } else {
                target
            };
            header.set_size(0);
            out.append_link(&mut header, &path, &target)?;
        } else {
            out.append_data(&mut header, &path, &mut entry)?;
        }
        n += 1;
    }
    Ok(n)
}

/// Writes the stored tar `dest` of one volume from the Docker archives `parts` (file, rel path);
/// returns the number of entries.
pub fn build_volume_tar(parts: &[(PathBuf, String)], dest: &Path) -> Result<usize, BackupError> {
    let file = std::fs::File::create(dest).map_err(BackupError::io(dest))?;
    let mut out = tar::Builder::new(io::BufWriter::new(file));
    out.mode(tar::HeaderMode::Complete);
    let mut n = 0;
    for (part, rel) in parts {
        let f = std::fs::File::open(part).map_err(BackupError::io(part))?;
        n += append_rebased(io::BufReader::new(f), rel, &mut out).map_err(BackupError::io(part))?;
    }
    let w = out.into_inner().map_err(BackupError::io(dest))?;
    let f = w
        .into_inner()
        .map_err(|e| BackupError::io(dest)(e.into_error()))?;
    f.sync_all().map_err(BackupError::io(dest))?;
    Ok(n)
}

/// How many entries a stored tar holds.
pub fn count_entries(path: &Path) -> Result<usize, BackupError> {
    let f = std::fs::File::open(path).map_err(BackupError::io(path))?;
    let mut a = tar::Archive::new(io::BufReader::new(f));
    let mut n = 0;
    for e in a.entries().map_err(BackupError::io(path))? {
        e.map_err(BackupError::io(path))?;
        n += 1;
    }
    Ok(n)
}

/// The names in a stored tar, in order (for tests and diagnostics).
pub fn entry_names(path: &Path) -> Result<Vec<String>, BackupError> {
    let f = std::fs::File::open(path).map_err(BackupError::io(path))?;
    let mut a = tar::Archive::new(io::BufReader::new(f));
    let mut out = Vec::new();
    for e in a.entries().map_err(BackupError::io(path))? {
        let e = e.map_err(BackupError::io(path))?;
        let p = e.path().map_err(BackupError::io(path))?;
        out.push(p.to_string_lossy().into_owned());
    }
    Ok(out)
}

//! Tar rewriting between Docker's archive API and the stored per-volume tars (pure over readers and
//! writers). Docker names the entries of `GET /containers/{id}/archive?path=<mount>/<rel>` after the
//! last component of the path; the store keeps every entry relative to the volume root, so one tar
//! holds all the paths taken of a volume and extracts into the volume's mount point as it is.

use std::path::Path;

use super::BackupError;

/// How many entries a stored tar holds.
pub fn count_entries(path: &Path) -> Result<usize, BackupError> {
    let f = std::fs::File::open(path).map_err(BackupError::io(path))?;
    let mut a = tar::Archive::new(std::io::BufReader::new(f));
    let mut n = 0;
    for e in a.entries().map_err(BackupError::io(path))? {
        e.map_err(BackupError::io(path))?;
        n += 1;
    }
    Ok(n)
}

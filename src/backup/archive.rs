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

/// Writes the stored tar `dest` of one volume from the Docker archives `parts` (reader, rel path),
/// read one after the other (each to its end); returns the number of entries.
pub fn build_volume_tar<R: Read>(
    parts: impl IntoIterator<Item = (R, String)>,
    dest: &Path,
) -> Result<usize, BackupError> {
    let file = std::fs::File::create(dest).map_err(BackupError::io(dest))?;
    let mut out = tar::Builder::new(io::BufWriter::new(file));
    out.mode(tar::HeaderMode::Complete);
    let mut n = 0;
    for (part, rel) in parts {
        let mut part = io::BufReader::new(part);
        n += append_rebased(&mut part, &rel, &mut out).map_err(BackupError::io(dest))?;
        // Past the end-of-archive marker: drain, so the writer side never blocks.
        io::copy(&mut part, &mut io::sink()).map_err(BackupError::io(dest))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar as Docker sends it for a path whose last component is `root`.
    fn docker_tar(root: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, format!("{root}/"), &[][..]).unwrap();
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o640);
            h.set_uid(123);
            h.set_gid(45);
            h.set_mtime(1_700_000_000);
            b.append_data(&mut h, format!("{root}/{name}"), *data)
                .unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(
            &mut h,
            format!("{root}/hard"),
            format!("{root}/{}", files[0].0),
        )
        .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, format!("{root}/soft"), "/elsewhere")
            .unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn names_are_rebased_onto_the_volume_root() {
        let r =
            |n: &str, rel: &str| rebase_name(Path::new(n), rel).map(|p| p.display().to_string());
        assert_eq!(r("hearth-volume", ""), None);
        assert_eq!(r("hearth-volume/", ""), None);
        assert_eq!(r("hearth-volume/a/b", ""), Some("a/b".into()));
        assert_eq!(r("backup.sql", "backup.sql"), Some("backup.sql".into()));
        assert_eq!(r("b", "a/b"), Some("a/b".into()));
        assert_eq!(r("b/c", "a/b"), Some("a/b/c".into()));
        assert_eq!(r("./b/c", "a/b"), Some("a/b/c".into()));
        assert_eq!(r("b/../../x", "a"), None);
        assert_eq!(r("/abs", ""), None);
    }

    #[test]
    fn volume_tar_joins_parts_keeping_metadata_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole");
        std::fs::write(
            &whole,
            docker_tar("hearth-volume", &[("x", b"1"), ("d/y", b"22")]),
        )
        .unwrap();
        let part = dir.path().join("part");
        std::fs::write(&part, docker_tar("sub", &[("z", b"333")])).unwrap();
        let dest = dir.path().join("out.tar");
        let open = |p: &Path| std::fs::File::open(p).unwrap();
        let n = build_volume_tar(
            [
                (open(&whole), String::new()),
                (open(&part), "deep/sub".into()),
            ],
            &dest,
        )
        .unwrap();
        let names = entry_names(&dest).unwrap();
        assert_eq!(
            names,
            [
                "x",
                "d/y",
                "hard",
                "soft",
                "deep/sub",
                "deep/sub/z",
                "deep/sub/hard",
                "deep/sub/soft"
            ]
        );
        assert_eq!(n, names.len());
        assert_eq!(count_entries(&dest).unwrap(), n);

        let mut a = tar::Archive::new(std::fs::File::open(&dest).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let h = e.header().clone();
            match path.as_str() {
                "d/y" => {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut e, &mut s).unwrap();
                    assert_eq!(s, "22");
                    assert_eq!(
                        (h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                        (0o640, 123, 45)
                    );
                    assert_eq!(h.mtime().unwrap(), 1_700_000_000);
                }
                "hard" => assert_eq!(e.link_name().unwrap().unwrap().display().to_string(), "x"),
                "deep/sub/hard" => {
                    assert_eq!(
                        e.link_name().unwrap().unwrap().display().to_string(),
                        "deep/sub/z"
                    )
                }
                "soft" => {
                    assert_eq!(
                        e.link_name().unwrap().unwrap().display().to_string(),
                        "/elsewhere"
                    )
                }
                _ => {}
            }
        }
    }

    #[test]
    fn trailing_bytes_are_drained_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.tar");
        let mut padded = docker_tar("v", &[("f", b"x")]);
        padded.extend(std::iter::repeat_n(0u8, 10 * 512));
        let mut rest = &padded[..];
        let n = build_volume_tar([(&mut rest, String::new())], &dest).unwrap();
        assert_eq!(n, 3);
        assert!(rest.is_empty(), "the reader was read to its end");
        let garbage = vec![0x41u8; 2048];
        assert!(build_volume_tar([(&garbage[..], String::new())], &dest).is_err());
    }

    #[test]
    fn long_names_survive() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        b.append_data(&mut h, format!("root/{long}"), &b"x"[..])
            .unwrap();
        std::fs::write(&src, b.into_inner().unwrap()).unwrap();
        let dest = dir.path().join("out.tar");
        build_volume_tar([(std::fs::File::open(&src).unwrap(), String::new())], &dest).unwrap();
        assert_eq!(entry_names(&dest).unwrap(), [long]);
    }
}

//! Instant local edits: watches the manifest paths of `hearth run -f` and the local recipes
//! directory (inotify through the `notify` crate) and asks the controller to reload soon after a
//! saved change, instead of at the next resync (which stays as the safety net).
//!
//! What counts as a change ([`Roots::relevant`], pure): a `.yml`/`.yaml` file (not hidden) or a
//! directory under a watched manifest directory; a watched manifest file itself (its parent
//! directory is watched, so an editor's write-to-temporary-then-rename is seen); in the recipes
//! directory, a repo appearing or going and its tags changing (`refs/tags/…`, `packed-refs`).
//! Recipes are read at tags, so their working trees and object stores are not watched (that also
//! keeps the number of inotify watches small). Events are debounced: the reload follows
//! [`QUIET`] after the last relevant event, at most [`MAX_DELAY`] after the first.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use notify::event::{CreateKind, EventKind, RemoveKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Quiet time after the last relevant event before the reload.
pub const QUIET: Duration = Duration::from_millis(100);
/// Longest delay between the first relevant event and the reload, however busy the files are.
pub const MAX_DELAY: Duration = Duration::from_millis(500);

/// What is watched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roots {
    /// Manifest directories (watched recursively).
    pub manifest_dirs: Vec<PathBuf>,
    /// Manifest files (their parent directories are watched).
    pub manifest_files: Vec<PathBuf>,
    /// The recipes directory.
    pub recipes: Option<PathBuf>,
}

impl Roots {
    /// Sorts `-f` paths into directories and files (a missing path is taken as a file).
    pub fn new(paths: &[PathBuf], recipes: Option<PathBuf>) -> Self {
        let mut r = Roots {
            recipes,
            ..Roots::default()
        };
        for p in paths {
            if p.is_dir() {
                r.manifest_dirs.push(p.clone());
            } else {
                r.manifest_files.push(p.clone());
            }
        }
        r
    }

    /// Whether an event of `kind` on `path` should make the controller reload (pure but for
    /// nothing: it looks at names only; `is_dir` says whether the path is a directory now).
    pub fn relevant(&self, kind: &EventKind, path: &Path, is_dir: bool) -> bool {
        if matches!(kind, EventKind::Access(_)) {
            return false;
        }
        let folder = is_dir
            || matches!(
                kind,
                EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder)
            );
        if self.manifest_files.iter().any(|f| f == path) {
            return true;
        }
        for dir in &self.manifest_dirs {
            if let Ok(rel) = path.strip_prefix(dir) {
                if hidden(rel) {
                    return false;
                }
                return folder || is_yaml(path);
            }
        }
        if let Some(recipes) = &self.recipes
            && let Ok(rel) = path.strip_prefix(recipes)
        {
            let parts: Vec<&str> = rel
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => s.to_str(),
                    _ => None,
                })
                .collect();
            return match parts.as_slice() {
                [] => false,
                [repo] => !repo.starts_with('.'),
                rest => {
                    rest.last() == Some(&"packed-refs")
                        || rest.windows(2).any(|w| w == ["refs", "tags"])
                }
            };
        }
        false
    }

    /// The `(path, mode)` pairs to watch now (the recipes part depends on which repos exist).
    pub fn watches(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut out = Vec::new();
        for d in &self.manifest_dirs {
            out.push((d.clone(), RecursiveMode::Recursive));
        }
        for f in &self.manifest_files {
            let parent = match f.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            out.push((parent, RecursiveMode::NonRecursive));
        }
        if let Some(recipes) = &self.recipes {
            out.push((recipes.clone(), RecursiveMode::NonRecursive));
            let repos = std::fs::read_dir(recipes).into_iter().flatten().flatten();
            for repo in repos {
                let repo = repo.path();
                // A checkout (`repo/.git`) or a bare repository (`repo/refs`).
                for git in [repo.join(".git"), repo.clone()] {
                    if git.join("refs/tags").is_dir() {
                        out.push((git.clone(), RecursiveMode::NonRecursive));
                        out.push((git.join("refs/tags"), RecursiveMode::Recursive));
                        break;
                    }
                }
            }
        }
        out
    }
}

fn hidden(rel: &Path) -> bool {
    rel.components().any(|c| match c {
        Component::Normal(s) => s.to_str().is_some_and(|s| s.starts_with('.')),
        _ => false,
    })
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e == "yml" || e == "yaml")
}

/// The running watcher; dropping it stops watching.
pub struct FileWatch {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `roots`; each debounced batch of relevant changes sends one `()` on `tx`.
/// `None` (logged) when the platform's watcher cannot be created: the resync still reloads.
pub fn spawn(roots: Roots, tx: mpsc::Sender<()>) -> Option<FileWatch> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<notify::Event>();
    let watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(ev) => {
                let _ = raw_tx.send(ev);
            }
            Err(e) => tracing::debug!("file watch: {e}"),
        });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(
                "cannot watch the manifest files ({e}); local edits are seen at the resync"
            );
            return None;
        }
    };
    add_watches(&mut watcher, &roots);
    let task = tokio::spawn(async move {
        loop {
            // Wait for a relevant event ...
            let Some(ev) = raw_rx.recv().await else {
                return;
            };
            if !relevant(&roots, &ev) {
                continue;
            }
            // ... then for quiet (editors write in several steps).
            let first = tokio::time::Instant::now();
            loop {
                let left = MAX_DELAY.saturating_sub(first.elapsed());
                if left.is_zero() {
                    break;
                }
                match tokio::time::timeout(QUIET.min(left), raw_rx.recv()).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            // A new recipe repo (or a manifest directory created since) gets its watches.
            add_watches(&mut watcher, &roots);
            tracing::debug!("local files changed: reloading");
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    Some(FileWatch { task })
}

fn relevant(roots: &Roots, ev: &notify::Event) -> bool {
    ev.paths
        .iter()
        .any(|p| roots.relevant(&ev.kind, p, p.is_dir()))
}

fn add_watches(watcher: &mut notify::RecommendedWatcher, roots: &Roots) {
    for (path, mode) in roots.watches() {
        if let Err(e) = watcher.watch(&path, mode) {
            tracing::debug!("file watch {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{DataChange, ModifyKind, RenameMode};

    fn roots() -> Roots {
        Roots {
            manifest_dirs: vec![PathBuf::from("/m")],
            manifest_files: vec![PathBuf::from("/etc/hearth/pool.yml")],
            recipes: Some(PathBuf::from("/r")),
        }
    }

    #[test]
    fn what_counts_as_a_change() {
        let r = roots();
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let rename = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let yes = |k: &EventKind, p: &str| r.relevant(k, Path::new(p), false);
        assert!(yes(&write, "/m/pool.yml"));
        assert!(yes(&rename, "/m/apps/a.yaml"));
        assert!(!yes(&write, "/m/.pool.yml.swp"));
        assert!(!yes(&write, "/m/.git/index"));
        assert!(!yes(&write, "/m/notes.txt"));
        assert!(!yes(&write, "/m/4913"));
        assert!(r.relevant(&write, Path::new("/m/apps"), true));
        assert!(yes(&EventKind::Remove(RemoveKind::Folder), "/m/gone"));
        assert!(!yes(
            &EventKind::Access(notify::event::AccessKind::Any),
            "/m/pool.yml"
        ));
        // A watched file: only that file in its directory.
        assert!(yes(&rename, "/etc/hearth/pool.yml"));
        assert!(!yes(&rename, "/etc/hearth/other.yml"));
        // Recipes: repos and their tags.
        assert!(yes(&EventKind::Create(CreateKind::Folder), "/r/newapp"));
        assert!(yes(&rename, "/r/app/.git/refs/tags/1.2.0+1"));
        assert!(yes(&rename, "/r/bare/refs/tags/1.2.0+1"));
        assert!(yes(&rename, "/r/app/.git/packed-refs"));
        assert!(!yes(&write, "/r/app/.git/index"));
        assert!(!yes(&write, "/r/app/compose.yml"));
        assert!(!yes(&write, "/r/.cache"));
        assert!(!yes(&write, "/elsewhere/pool.yml"));
    }

    #[test]
    fn watches_parents_of_files_and_tag_dirs_of_repos() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recipes = dir.path().join("recipes");
        std::fs::create_dir_all(recipes.join("app/.git/refs/tags")).expect("mkdir");
        std::fs::create_dir_all(recipes.join("bare/refs/tags")).expect("mkdir");
        std::fs::create_dir_all(recipes.join("plain")).expect("mkdir");
        let m = dir.path().join("m");
        std::fs::create_dir_all(&m).expect("mkdir");
        let r = Roots::new(
            &[m.clone(), PathBuf::from("pool.yml")],
            Some(recipes.clone()),
        );
        assert_eq!(r.manifest_dirs, vec![m.clone()]);
        let mut got: Vec<(PathBuf, bool)> = r
            .watches()
            .into_iter()
            .map(|(p, mode)| (p, mode == RecursiveMode::Recursive))
            .collect();
        got.sort();
        let mut want = vec![
            (m, true),
            (PathBuf::from("."), false),
            (recipes.clone(), false),
            (recipes.join("app/.git"), false),
            (recipes.join("app/.git/refs/tags"), true),
            (recipes.join("bare"), false),
            (recipes.join("bare/refs/tags"), true),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    /// A real watcher: a rename over a watched file is reported once, within a second.
    #[tokio::test]
    async fn a_saved_edit_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pool.yml");
        std::fs::write(&file, "a: 1\n").expect("write");
        let (tx, mut rx) = mpsc::channel(4);
        let _w = spawn(Roots::new(&[dir.path().to_path_buf()], None), tx).expect("watcher");
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::fs::write(dir.path().join(".pool.yml.swp"), "x").expect("write");
        let tmp = dir.path().join("pool.yml.tmp~");
        std::fs::write(&tmp, "a: 2\n").expect("write");
        let t0 = std::time::Instant::now();
        std::fs::rename(&tmp, &file).expect("rename");
        tokio::time::timeout(Duration::from_secs(1), rx.recv())
            .await
            .expect("reported within 1 s")
            .expect("sent");
        assert!(t0.elapsed() < Duration::from_secs(1));
        // One batch for one save.
        assert!(
            tokio::time::timeout(Duration::from_millis(400), rx.recv())
                .await
                .is_err()
        );
    }
}

//! The recipe store: a directory of recipe git repos (abra's `~/.abra/recipes/<recipe>` layout),
//! their version tags (cached per recipe), and [`RecipeAt`], one recipe pinned at one tag's commit
//! whose files are read straight from git objects — no checkout, the repo is never changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use indexmap::IndexMap;

use super::abrash::parse_abra_sh;
use super::env::compose_env;
use super::envfile::parse_env_file;
use super::error::RecipeError;
use super::git::{self, Object};
use super::version::Version;

/// A directory of recipe git repositories.
#[derive(Debug)]
pub struct RecipeStore {
    dir: PathBuf,
    cache: Mutex<HashMap<String, CachedTags>>,
}

#[derive(Debug, Clone)]
struct CachedTags {
    stamp: Option<Stamp>,
    tags: Arc<Tags>,
}

/// The tags of one recipe: every commit tag, and the version tags in version order.
#[derive(Debug, Default)]
struct Tags {
    by_name: HashMap<String, String>,
    versions: Vec<Version>,
}

/// What changes when tags change: modification times and sizes of the ref stores (loose tag dir,
/// packed-refs, reftable) plus the number of loose tag entries (in case of coarse mtimes). `None`
/// when the git dir is not a plain directory: then nothing is cached.
type Stamp = (Vec<Option<(SystemTime, u64)>>, usize);

fn stamp(repo: &Path) -> Option<Stamp> {
    let gd = git::git_dir(repo)?;
    let meta = |p: PathBuf| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    let tags_dir = gd.join("refs").join("tags");
    let loose = std::fs::read_dir(&tags_dir).map_or(0, |d| d.count());
    Some((
        vec![
            meta(tags_dir),
            meta(gd.join("packed-refs")),
            meta(gd.join("reftable").join("tables.list")),
        ],
        loose,
    ))
}

impl RecipeStore {
    /// A store over `dir` (made absolute); nothing is read until asked.
    pub fn new(dir: impl Into<PathBuf>) -> RecipeStore {
        let dir = dir.into();
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        RecipeStore {
            dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The directory holding the recipe repos.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Names of the recipes: subdirectories that are git repos, sorted; hidden entries skipped.
    /// An unreadable or missing directory has none.
    pub fn recipes(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok() && git::is_repo(&self.dir.join(n)))
            .collect();
        names.sort();
        names
    }

    /// Whether `name` is a recipe repo in the store.
    pub fn has_recipe(&self, name: &str) -> bool {
        check_name(name).is_ok() && git::is_repo(&self.dir.join(name))
    }

    /// The repository path of a recipe (checked to exist).
    pub fn repo_path(&self, recipe: &str) -> Result<PathBuf, RecipeError> {
        check_name(recipe).map_err(|reason| RecipeError::InvalidName {
            name: recipe.to_string(),
            reason: reason.to_string(),
        })?;
        let path = self.dir.join(recipe);
        if !git::is_repo(&path) {
            return Err(RecipeError::NoSuchRecipe {
                recipe: recipe.to_string(),
                path,
            });
        }
        Ok(path)
    }

    /// Forget every cached tag list (they are also reloaded when the repo's refs change).
    pub fn refresh(&self) {
        self.lock().clear();
    }

    /// The recipe's version tags in ascending version order (tags that are not `x.y.z[+up]` are
    /// left out).
    pub fn versions(&self, recipe: &str) -> Result<Vec<Version>, RecipeError> {
        Ok(self.tags(recipe)?.versions.clone())
    }

    /// The highest version tag, if any.
    pub fn latest(&self, recipe: &str) -> Result<Option<Version>, RecipeError> {
        Ok(self.tags(recipe)?.versions.last().cloned())
    }

    /// The recipe at tag `version` (exact tag name). A missing tag is
    /// [`RecipeError::NoSuchVersion`] listing the nearest existing version tags and the latest.
    pub fn open(&self, recipe: &str, version: &str) -> Result<RecipeAt, RecipeError> {
        let repo = self.repo_path(recipe)?;
        let tags = self.tags(recipe)?;
        let Some(commit) = tags.by_name.get(version) else {
            let (nearest, latest) = nearest_versions(&tags.versions, version);
            return Err(RecipeError::NoSuchVersion {
                recipe: recipe.to_string(),
                version: version.to_string(),
                nearest,
                latest,
            });
        };
        Ok(RecipeAt {
            repo,
            recipe: recipe.to_string(),
            tag: version.to_string(),
            version: Version::parse(version).ok(),
            commit: commit.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedTags>> {
        // A panic while holding the lock cannot leave the map inconsistent: recover it.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tags(&self, recipe: &str) -> Result<Arc<Tags>, RecipeError> {
        let repo = self.repo_path(recipe)?;
        let stamp = stamp(&repo);
        if let Some(c) = self.lock().get(recipe)
            && c.stamp.is_some()
            && c.stamp == stamp
        {
            return Ok(c.tags.clone());
        }
        let refs = git::list_tags(&repo)?;
        let mut versions: Vec<Version> = refs
            .iter()
            .filter_map(|t| Version::parse(&t.name).ok())
            .collect();
        versions.sort();
        let tags = Arc::new(Tags {
            by_name: refs.into_iter().map(|t| (t.name, t.commit)).collect(),
            versions,
        });
        self.lock().insert(
            recipe.to_string(),
            CachedTags {
                stamp,
                tags: tags.clone(),
            },
        );
        Ok(tags)
    }
}

/// A recipe name must be one plain directory name.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("empty")
    } else if name.starts_with('.') {
        Err("starts with '.'")
    } else if name.contains(['/', '\\', '\0']) {
        Err("contains a path separator")
    } else {
        Ok(())
    }
}

/// Up to 3 version tags nearest `wanted` by version order (in version order), and the latest.
/// A `wanted` that is not a version counts as newer than all.
fn nearest_versions(sorted: &[Version], wanted: &str) -> (Vec<String>, Option<String>) {
    let idx = match Version::parse(wanted) {
        Ok(w) => sorted.partition_point(|v| *v < w),
        Err(_) => sorted.len(),
    };
    let (mut lo, mut hi) = (idx, idx);
    let mut picks = Vec::new();
    while picks.len() < 3 && (lo > 0 || hi < sorted.len()) {
        if lo > 0 {
            lo -= 1;
            picks.push(lo);
        }
        if picks.len() < 3 && hi < sorted.len() {
            picks.push(hi);
            hi += 1;
        }
    }
    picks.sort_unstable();
    (
        picks.iter().map(|&i| sorted[i].to_string()).collect(),
        sorted.last().map(Version::to_string),
    )
}

/// The recipe-relative path, normalised ([`crate::relpath::clean`]).
fn normalize(path: &str) -> Result<String, &'static str> {
    crate::relpath::clean(path).map_err(crate::relpath::PathProblem::reason)
}

/// One recipe at one version tag, pinned to the tag's commit when opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipeAt {
    repo: PathBuf,
    recipe: String,
    tag: String,
    version: Option<Version>,
    commit: String,
}

impl RecipeAt {
    pub fn recipe(&self) -> &str {
        &self.recipe
    }
    /// The tag this was opened at.
    pub fn tag(&self) -> &str {
        &self.tag
    }
    /// The tag parsed as a version (None for a non-version tag).
    pub fn version(&self) -> Option<&Version> {
        self.version.as_ref()
    }
    /// The commit id the tag pointed to when opened.
    pub fn commit(&self) -> &str {
        &self.commit
    }
    /// The recipe's repository directory.
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// How a file of this recipe is named in diagnostics: `recipe@tag:path`.
    pub fn label(&self, path: &str) -> String {
        format!("{}@{}:{}", self.recipe, self.tag, path)
    }

    fn bad_path(&self, path: &str, reason: &str) -> RecipeError {
        RecipeError::BadPath {
            recipe: self.recipe.clone(),
            version: self.tag.clone(),
            path: path.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The bytes of the file at `path` (relative to the repo root) at this version; None when there
    /// is no such path. A directory is [`RecipeError::NotAFile`]; a path escaping the repo is
    /// [`RecipeError::BadPath`]. A symlink reads as its target text.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, RecipeError> {
        let norm = normalize(path).map_err(|r| self.bad_path(path, r))?;
        if norm.is_empty() {
            return Err(self.bad_path(path, "names the repository root, not a file"));
        }
        match git::cat(&self.repo, &self.commit, &norm)? {
            Object::Missing => Ok(None),
            Object::Blob(bytes) => Ok(Some(bytes)),
            Object::Other(_) => Err(RecipeError::NotAFile {
                recipe: self.recipe.clone(),
                version: self.tag.clone(),
                path: path.to_string(),
            }),
        }
    }

    /// [`read`](Self::read) as UTF-8 text; invalid UTF-8 is a [`RecipeError::BadPath`].
    pub fn read_string(&self, path: &str) -> Result<Option<String>, RecipeError> {
        match self.read(path)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| self.bad_path(path, "file is not UTF-8 text")),
        }
    }

    /// Entry names in directory `dir` (`""` or `"."` for the root) at this version, relative to
    /// `dir`, directories with a trailing `/`, in git's byte order. A missing directory (or a
    /// file) has no entries.
    pub fn list(&self, dir: &str) -> Result<Vec<String>, RecipeError> {
        let norm = normalize(dir).map_err(|r| self.bad_path(dir, r))?;
        git::ls_tree(&self.repo, &self.commit, &norm)
    }

    /// The env the compose files are interpolated with: `abra.sh` exports, `.env.sample`, then
    /// `manifest_env`, then `STACK_NAME` and `DOMAIN` (see [`compose_env`]). Missing `abra.sh` or
    /// `.env.sample` count as empty; a bad `.env.sample` line is [`RecipeError::Env`].
    pub fn load_env<K, V>(
        &self,
        manifest_env: impl IntoIterator<Item = (K, V)>,
        stack_name: &str,
        domain: &str,
    ) -> Result<IndexMap<String, String>, RecipeError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let abra = self
            .read_string("abra.sh")?
            .map(|t| parse_abra_sh(&t))
            .unwrap_or_default();
        let sample = match self.read_string(".env.sample")? {
            Some(t) => parse_env_file(&t, &self.label(".env.sample"))?,
            None => Vec::new(),
        };
        Ok(compose_env(
            &abra,
            &sample,
            manifest_env,
            stack_name,
            domain,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs(v: &[&str]) -> Vec<Version> {
        let mut v: Vec<Version> = v.iter().map(|s| Version::parse(s).unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn normalize_rules() {
        assert_eq!(normalize("compose.yml").unwrap(), "compose.yml");
        assert_eq!(normalize("./a//b/./c.yml").unwrap(), "a/b/c.yml");
        assert_eq!(normalize("a/../b").unwrap(), "b");
        assert_eq!(normalize(".").unwrap(), "");
        assert_eq!(normalize("").unwrap(), "");
        assert!(normalize("../x").is_err());
        assert!(normalize("a/../../x").is_err());
        assert!(normalize("/etc/passwd").is_err());
        assert!(normalize("a\nb").is_err());
    }

    #[test]
    fn recipe_names_are_single_components() {
        assert!(check_name("gitea").is_ok());
        for bad in ["", ".", "..", ".hidden", "a/b", "../x", "a\\b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nearest_picks_neighbours_by_order() {
        let all = vs(&[
            "1.0.0+1", "1.1.0+1", "1.2.0+1", "2.0.0+1", "2.1.0+1", "3.0.0+1",
        ]);
        let (n, l) = nearest_versions(&all, "2.0.1+1");
        assert_eq!(n, vec!["1.2.0+1", "2.0.0+1", "2.1.0+1"]);
        assert_eq!(l.as_deref(), Some("3.0.0+1"));

        let (n, _) = nearest_versions(&all, "0.1.0");
        assert_eq!(n, vec!["1.0.0+1", "1.1.0+1", "1.2.0+1"]);

        let (n, _) = nearest_versions(&all, "9.0.0");
        assert_eq!(n, vec!["2.0.0+1", "2.1.0+1", "3.0.0+1"]);

        let (n, _) = nearest_versions(&all, "not-a-version");
        assert_eq!(n, vec!["2.0.0+1", "2.1.0+1", "3.0.0+1"]);

        let (n, l) = nearest_versions(&vs(&["1.0.0"]), "2.0.0");
        assert_eq!(
            (n, l.as_deref()),
            (vec!["1.0.0".to_string()], Some("1.0.0"))
        );

        let (n, l) = nearest_versions(&[], "1.0.0");
        assert!(n.is_empty() && l.is_none());
    }
}

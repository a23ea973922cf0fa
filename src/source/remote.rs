//! [`GitSource`]: manifests from a branch of a git remote. `fetch` updates a bare cache repo
//! under the cache directory (the branch goes to `refs/hearth/fetched`); `load` reads the manifests
//! at a commit straight from git objects (`ls-tree` + `cat-file --batch`, no checkout); `sync`
//! does both and applies the last-good rule of [`super::state`]; the applied commit is pinned as
//! `refs/hearth/applied` so it survives a force-push, garbage collection and a restart.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::diag::Diagnostic;
use crate::manifest::Loaded;

use super::git::{self, Git, GitOptions, SourceError, is_hex_id};
use super::load::{load_files, revision_errors};
use super::redact::{redact, strip_userinfo};
use super::state::{Decision, Revision, SourceState, short};
use super::tree::{self, manifest_files, normalize_path, parse_batch, parse_ls_tree};

/// Where the fetched branch head is kept in the cache repo.
const FETCHED_REF: &str = "refs/hearth/fetched";
/// The last good revision, pinned.
const APPLIED_REF: &str = "refs/hearth/applied";
/// Larger manifest files are reported, not read.
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// More manifest files than this are reported, not read.
pub const MAX_FILES: usize = 5000;

/// A branch of a git remote holding manifests.
#[derive(Debug, Clone)]
pub struct GitSource {
    url: String,
    branch: String,
    path: String,
    repo: PathBuf,
    opts: GitOptions,
}

/// The outcome of [`GitSource::sync`].
#[derive(Debug)]
pub struct Synced {
    pub decision: Decision,
    /// The manifests of the new applied revision (only with [`Decision::Apply`]).
    pub loaded: Option<Loaded>,
}

impl GitSource {
    /// A source following `branch` of `url`, reading manifests under `path_in_repo` (`""` or `.`:
    /// the whole repository; a file: that file), cached in a bare repo under `cache_dir` named
    /// after the URL (without its userinfo). Nothing runs until [`GitSource::fetch`].
    pub fn new(
        url: impl Into<String>,
        branch: impl Into<String>,
        path_in_repo: &str,
        cache_dir: impl Into<PathBuf>,
    ) -> Result<GitSource, SourceError> {
        let url = url.into();
        let branch = branch.into();
        super::recipes::check_url(&url).map_err(SourceError::invalid)?;
        check_branch(&branch).map_err(SourceError::invalid)?;
        let path = normalize_path(path_in_repo).map_err(|e| SourceError::invalid(e.to_string()))?;
        let digest = Sha256::digest(format!("{}\n{branch}", strip_userinfo(&url)).as_bytes());
        let cache_dir = cache_dir.into();
        let cache_dir = std::path::absolute(&cache_dir).unwrap_or(cache_dir);
        let repo = cache_dir.join(format!("manifests-{}.git", &hex::encode(digest)[..16]));
        Ok(GitSource {
            url,
            branch,
            path,
            repo,
            opts: GitOptions::default(),
        })
    }

    /// Uses `opts` for credentials and the command timeout.
    pub fn with_options(mut self, opts: GitOptions) -> GitSource {
        self.opts = opts;
        self
    }

    /// The URL with any userinfo replaced by `***` (for logs, the API, the status page).
    pub fn url_redacted(&self) -> String {
        redact(&self.url)
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The manifest path inside the repository (normalized; `""` is the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The bare cache repository.
    pub fn repo_dir(&self) -> &Path {
        &self.repo
    }

    /// Fetches the branch into the cache and returns its commit id. Blocking (run it on a
    /// blocking thread); errors are redacted.
    pub fn fetch(&self) -> Result<String, SourceError> {
        git::ensure_bare(&self.repo, &self.opts)?;
        let refspec = format!("+refs/heads/{}:{FETCHED_REF}", self.branch);
        let args = [
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--",
            &self.url,
            &refspec,
        ];
        Git::new(Some(&self.repo), &self.opts).run(&args)?;
        git::resolve_commit(&self.repo, &self.opts, FETCHED_REF)?.ok_or_else(|| {
            SourceError::output(&["rev-parse", FETCHED_REF], "no commit after fetch")
        })
    }

    /// Reads the manifests at `commit` (a full commit id) without a checkout. Problems in the
    /// manifests are diagnostics in the [`Loaded`], labelled `<path>@<short commit>`; an error is
    /// returned only when git itself fails (unknown commit, broken cache).
    pub fn load(&self, commit: &str) -> Result<(Loaded, Revision), SourceError> {
        if !is_hex_id(commit) {
            return Err(SourceError::invalid(format!(
                "{commit:?} is not a full commit id"
            )));
        }
        let git = Git::new(Some(&self.repo), &self.opts);
        let mut args = vec!["ls-tree", "-r", "-l", "-z", "--full-tree", commit];
        if !self.path.is_empty() {
            args.extend(["--", self.path.as_str()]);
        }
        let out = git.run(&args)?;
        let entries = parse_ls_tree(&out).map_err(|d| SourceError::output(&args, d.to_string()))?;
        let files = manifest_files(&entries, &self.path);
        let label = |path: &str| PathBuf::from(format!("{path}@{}", short(commit)));
        let mut diags = Vec::new();
        if files.len() > MAX_FILES {
            diags.push(Diagnostic::new(
                label(&self.path),
                Default::default(),
                "",
                format!(
                    "{} manifest files; at most {MAX_FILES} are read",
                    files.len()
                ),
            ));
        }
        let mut wanted = Vec::new();
        for f in files.iter().take(MAX_FILES) {
            match f.size {
                Some(n) if n > MAX_FILE_BYTES => diags.push(Diagnostic::new(
                    label(&f.path),
                    Default::default(),
                    "",
                    format!("{n} bytes; manifest files are at most {MAX_FILE_BYTES} bytes"),
                )),
                _ => wanted.push(f),
            }
        }
        let mut input = format!("{commit}\n");
        for f in &wanted {
            input.push_str(&f.oid);
            input.push('\n');
        }
        let batch = ["cat-file", "--batch"];
        let out = git.run_with_input(&batch, Some(input.into_bytes()))?;
        let objects = parse_batch(&out, wanted.len() + 1)
            .map_err(|d| SourceError::output(&batch, d.to_string()))?;
        let summary = match &objects[0] {
            Some((kind, body)) if kind == "commit" => tree::commit_summary(body),
            _ => return Err(SourceError::output(&batch, "commit object missing")),
        };
        let mut texts = Vec::new();
        for (f, obj) in wanted.iter().zip(&objects[1..]) {
            let text = obj
                .as_ref()
                .and_then(|(_, body)| String::from_utf8(body.clone()).ok());
            match text {
                Some(text) => texts.push((label(&f.path), text)),
                None => diags.push(Diagnostic::new(
                    label(&f.path),
                    Default::default(),
                    "",
                    "cannot read: not UTF-8 text",
                )),
            }
        }
        let mut loaded = load_files(&texts);
        diags.append(&mut loaded.diagnostics);
        loaded.diagnostics = diags;
        let revision = Revision {
            commit: commit.to_string(),
            summary,
        };
        Ok((loaded, revision))
    }

    /// The label of the manifest set at `commit` (`<path>@<short commit>`, `.` for the root).
    pub fn label(&self, commit: &str) -> PathBuf {
        let path = if self.path.is_empty() {
            "."
        } else {
            &self.path
        };
        PathBuf::from(format!("{path}@{}", short(commit)))
    }

    /// Every error that makes the manifests at `commit` a bad revision.
    pub fn errors(&self, loaded: &Loaded, commit: &str) -> Vec<Diagnostic> {
        revision_errors(loaded, &self.label(commit))
    }

    /// Fetch, load what is new, decide (see [`SourceState`]) and pin a newly applied revision.
    /// Blocking. The caller keeps its manifests unless the decision is [`Decision::Apply`];
    /// after [`Decision::Unreachable`] it waits [`super::next_retry`]`(state.failures)`.
    pub fn sync(&self, state: &mut SourceState, now: SystemTime) -> Synced {
        let commit = match self.fetch() {
            Ok(c) => c,
            Err(e) => return unloaded(state.fetch_failed(e.to_string())),
        };
        if let Some(decision) = state.fetched(&commit, now) {
            return unloaded(decision);
        }
        let (loaded, revision) = match self.load(&commit) {
            Ok(x) => x,
            // The cache is broken rather than the manifests: report it like a failed fetch.
            Err(e) => return unloaded(state.fetch_failed(e.to_string())),
        };
        let errors = self.errors(&loaded, &commit);
        let decision = state.loaded(revision, errors, now);
        if let Decision::Apply(rev) = &decision
            && let Err(e) = self.pin(&rev.commit)
        {
            tracing::warn!(
                "source {}: cannot pin {}: {e}",
                self.url_redacted(),
                rev.short()
            );
        }
        let loaded = matches!(decision, Decision::Apply(_)).then_some(loaded);
        Synced { decision, loaded }
    }

    /// Records `commit` as the applied revision in the cache (`refs/hearth/applied`).
    pub fn pin(&self, commit: &str) -> Result<(), SourceError> {
        if !is_hex_id(commit) {
            return Err(SourceError::invalid(format!(
                "{commit:?} is not a commit id"
            )));
        }
        Git::new(Some(&self.repo), &self.opts).run(&["update-ref", APPLIED_REF, commit])?;
        Ok(())
    }

    /// The pinned applied revision's manifests, when the cache has one that still loads without
    /// errors; `state` then resumes at it. For startup, before the first [`GitSource::sync`]:
    /// the pool keeps running on the last good revision even when the remote is down or its
    /// head is bad.
    pub fn restore(&self, state: &mut SourceState) -> Option<Loaded> {
        if !git::is_repo(&self.repo) {
            return None;
        }
        let commit = git::resolve_commit(&self.repo, &self.opts, APPLIED_REF).ok()??;
        let (loaded, revision) = self.load(&commit).ok()?;
        if !self.errors(&loaded, &commit).is_empty() {
            return None;
        }
        state.applied = Some(revision);
        Some(loaded)
    }
}

fn unloaded(decision: Decision) -> Synced {
    Synced {
        decision,
        loaded: None,
    }
}

/// A branch name git accepts and that cannot be taken for an option or a refspec.
fn check_branch(b: &str) -> Result<(), String> {
    let bad = b.is_empty()
        || b.starts_with(['-', '/', '.'])
        || b.ends_with(['/', '.'])
        || b.ends_with(".lock")
        || b.contains("..")
        || b.contains("//")
        || b.contains("@{")
        || b.chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        Err(format!("branch {b:?} is not a valid branch name"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names() {
        for ok in ["main", "release/2025", "pool-ci"] {
            assert!(check_branch(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a..b", "a b", "x:y", "a.lock", "+main", "a/"] {
            let plus_is_fine = bad == "+main";
            assert_eq!(check_branch(bad).is_ok(), plus_is_fine, "{bad}");
        }
    }

    #[test]
    fn cache_dir_is_named_without_credentials() {
        let a = GitSource::new("https://u:one@h/x.git", "main", "", "/c").expect("a");
        let b = GitSource::new("https://u:two@h/x.git", "main", "", "/c").expect("b");
        let c = GitSource::new("https://h/x.git", "other", "", "/c").expect("c");
        assert_eq!(a.repo_dir(), b.repo_dir());
        assert_ne!(a.repo_dir(), c.repo_dir());
        let dir = a.repo_dir().display().to_string();
        assert!(
            !dir.contains("one") && dir.starts_with("/c/manifests-"),
            "{dir}"
        );
        assert_eq!(a.url_redacted(), "https://***@h/x.git");
    }

    #[test]
    fn bad_inputs_are_refused_without_leaking() {
        let e = GitSource::new("https://u:pw@h/x.git", "a b", "", "/c").expect_err("branch");
        assert!(!e.to_string().contains("pw"));
        assert!(GitSource::new("ext::sh -c id", "main", "", "/c").is_err());
        assert!(GitSource::new("https://h/x", "main", "../etc", "/c").is_err());
        let s = GitSource::new("https://h/x", "main", "./pools/ci/", "/c").expect("ok");
        assert_eq!(s.path(), "pools/ci");
        assert_eq!(
            s.label(&"ab".repeat(20)),
            PathBuf::from("pools/ci@abababababab")
        );
    }
}

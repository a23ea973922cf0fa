//! The recipe store's git plumbing: read-only commands (`for-each-ref`, `cat-file --batch`,
//! `ls-tree`) against one repository, never a checkout, never a write.
//!
//! Commands run through the one git runner ([`crate::gitcmd`]: no prompts, no optional locks,
//! literal pathspecs, `LC_ALL=C`, a ceiling directory, scrubbed `GIT_DIR`-style variables, a
//! timeout), with its default options: no credentials, since nothing here fetches.

use std::path::{Path, PathBuf};

use super::error::RecipeError;
use crate::gitcmd::{Git, GitOptions, RunError};

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Run git, feeding `input` on stdin, and return stdout; a non-zero exit is an error with stderr.
fn run(repo: &Path, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, RecipeError> {
    let opts = GitOptions::default();
    Git::new(Some(repo), &opts)
        .run_with_input(args, input.map(<[u8]>::to_vec))
        .map_err(|e| match e {
            RunError::Spawn(source) => RecipeError::GitSpawn {
                args: owned(args),
                source,
            },
            RunError::Timeout(t) => RecipeError::Git {
                repo: repo.to_path_buf(),
                args: owned(args),
                stderr: format!("timed out after {}s", t.as_secs()),
            },
            RunError::Failed { stderr } => RecipeError::Git {
                repo: repo.to_path_buf(),
                args: owned(args),
                stderr,
            },
        })
}

fn bad_output(repo: &Path, args: &[&str], detail: impl Into<String>) -> RecipeError {
    RecipeError::GitOutput {
        repo: repo.to_path_buf(),
        args: owned(args),
        detail: detail.into(),
    }
}

/// A tag and the commit it points to (annotated tags peeled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagRef {
    pub name: String,
    pub commit: String,
}

/// All tags of the repository that point (directly or through one annotated tag) at a commit.
pub(crate) fn list_tags(repo: &Path) -> Result<Vec<TagRef>, RecipeError> {
    let args = [
        "for-each-ref",
        "--format=%(refname)%00%(objectname)%00%(objecttype)%00%(*objectname)%00%(*objecttype)",
        "refs/tags",
    ];
    let out = run(repo, &args, None)?;
    let text = String::from_utf8(out).map_err(|_| bad_output(repo, &args, "not UTF-8"))?;
    let mut tags = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\0').collect();
        let [refname, oid, kind, peeled_oid, peeled_kind] = f[..] else {
            return Err(bad_output(repo, &args, format!("bad line {line:?}")));
        };
        let Some(name) = refname.strip_prefix("refs/tags/") else {
            continue;
        };
        let commit = match (kind, peeled_kind) {
            ("commit", _) => oid,
            ("tag", "commit") => peeled_oid,
            _ => continue, // tags of trees/blobs, or nested tags: not recipe versions
        };
        tags.push(TagRef {
            name: name.to_string(),
            commit: commit.to_string(),
        });
    }
    Ok(tags)
}

/// What `<commit>:<path>` names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Object {
    Missing,
    Blob(Vec<u8>),
    /// A tree (directory) or submodule commit, with its type.
    Other(String),
}

/// Read `<commit>:<path>` with `git cat-file --batch` (one process, no error-text parsing).
/// `path` must already be normalized (relative, no `..`, no newline).
pub(crate) fn cat(repo: &Path, commit: &str, path: &str) -> Result<Object, RecipeError> {
    let args = ["cat-file", "--batch"];
    let spec = format!("{commit}:{path}");
    let out = run(repo, &args, Some(format!("{spec}\n").as_bytes()))?;
    let nl = out
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad_output(repo, &args, "no header line"))?;
    let header = String::from_utf8_lossy(&out[..nl]).to_string();
    if header == format!("{spec} missing") {
        return Ok(Object::Missing);
    }
    let mut parts = header.split(' ');
    let (Some(_oid), Some(kind), Some(size), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_output(repo, &args, format!("header {header:?}")));
    };
    let size: usize = size
        .parse()
        .map_err(|_| bad_output(repo, &args, format!("header {header:?}")))?;
    let body = out
        .get(nl + 1..nl + 1 + size)
        .ok_or_else(|| bad_output(repo, &args, "short object body"))?;
    Ok(match kind {
        "blob" => Object::Blob(body.to_vec()),
        other => Object::Other(other.to_string()),
    })
}

/// The entries of directory `dir` (normalized, `""` for the root) at `commit`: names relative to
/// `dir`, directories (and submodules) with a trailing `/`, in git's (byte) order. A missing
/// directory or a file gives no entries.
pub(crate) fn ls_tree(repo: &Path, commit: &str, dir: &str) -> Result<Vec<String>, RecipeError> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut args = vec!["ls-tree", "-z", commit];
    if !prefix.is_empty() {
        args.extend(["--", prefix.as_str()]);
    }
    let out = run(repo, &args, None)?;
    let mut names = Vec::new();
    for entry in out.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let Some((meta, path)) = entry.split_once('\t') else {
            return Err(bad_output(repo, &args, format!("entry {entry:?}")));
        };
        let kind = meta.split(' ').nth(1).unwrap_or("");
        let Some(name) = path.strip_prefix(&prefix) else {
            continue;
        };
        if kind == "blob" {
            names.push(name.to_string());
        } else {
            names.push(format!("{name}/"));
        }
    }
    Ok(names)
}

/// The git directory of `repo` (`repo/.git` or a bare `repo`), when it is a plain directory.
pub(crate) fn git_dir(repo: &Path) -> Option<PathBuf> {
    let dot = repo.join(".git");
    if dot.is_dir() {
        return Some(dot);
    }
    if repo.join("HEAD").is_file() && repo.join("objects").is_dir() {
        return Some(repo.to_path_buf());
    }
    None
}

/// Whether `repo` looks like a git repository (work tree with `.git` dir or file, or bare).
pub(crate) fn is_repo(repo: &Path) -> bool {
    repo.join(".git").exists() || git_dir(repo).is_some()
}

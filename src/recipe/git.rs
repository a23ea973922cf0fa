//! The only place that runs `git`: read-only plumbing commands (`for-each-ref`, `cat-file --batch`,
//! `ls-tree`) against one repository, never a checkout, never a write.
//!
//! Every command runs with `git -C <repo> --no-pager`, no terminal prompts, no optional locks,
//! literal pathspecs, `LC_ALL=C`, a ceiling directory so a non-repo never resolves to an enclosing
//! repository, and any inherited `GIT_DIR`-style variables removed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::RecipeError;

/// Variables that would redirect git away from the repository we name.
const SCRUBBED_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
];

fn command(repo: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(repo).arg("--no-pager").args(args);
    for v in SCRUBBED_ENV {
        cmd.env_remove(v);
    }
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PAGER", "cat")
        .env("PAGER", "cat")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_LITERAL_PATHSPECS", "1")
        .env("LC_ALL", "C");
    if let Some(parent) = repo.parent() {
        cmd.env("GIT_CEILING_DIRECTORIES", parent);
    }
    cmd
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Run git, feeding `input` on stdin, and return stdout; a non-zero exit is an error with stderr.
fn run(repo: &Path, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, RecipeError> {
    let mut cmd = command(repo, args);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let spawn_err = |source| RecipeError::GitSpawn {
        args: owned(args),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // The inputs are one short line, far below a pipe buffer, so writing before reading
        // cannot deadlock.
        stdin.write_all(input).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(RecipeError::Git {
            repo: repo.to_path_buf(),
            args: owned(args),
            stderr: if stderr.is_empty() {
                format!("exit status {}", out.status)
            } else {
                stderr
            },
        });
    }
    Ok(out.stdout)
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

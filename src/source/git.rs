//! Running `git` for the source module: fetches from remotes (the only network access) and
//! read-only plumbing (`rev-parse`, `ls-tree`, `cat-file --batch`) in hearth's own cache repos.
//!
//! The commands run through the one git runner ([`crate::gitcmd`]: hardened environment, allowed
//! transports, timeout); every error text here is passed through [`redact`], so a URL's userinfo
//! never leaves this module.

use std::path::Path;

use super::redact::redact;

use crate::gitcmd::RunError;
pub use crate::gitcmd::{ALLOWED_PROTOCOLS, GitOptions};

/// A failure of the source module. Every text in it is redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("cannot run git {args}: {message}")]
    Spawn { args: String, message: String },
    #[error("git {args} failed: {stderr}")]
    Git { args: String, stderr: String },
    #[error("git {args} timed out after {seconds}s")]
    Timeout { args: String, seconds: u64 },
    #[error("git {args}: unexpected output: {detail}")]
    Output { args: String, detail: String },
    /// A bad URL, branch, path, commit or name given to this module.
    #[error("{0}")]
    Invalid(String),
    /// The cache directory could not be prepared.
    #[error("cache {path}: {message}")]
    Cache { path: String, message: String },
}

impl SourceError {
    pub(crate) fn invalid(message: impl AsRef<str>) -> SourceError {
        SourceError::Invalid(redact(message.as_ref()))
    }

    pub(crate) fn cache(path: &Path, e: impl std::fmt::Display) -> SourceError {
        SourceError::Cache {
            path: path.display().to_string(),
            message: redact(&e.to_string()),
        }
    }

    pub(crate) fn output(args: &[&str], detail: impl AsRef<str>) -> SourceError {
        SourceError::Output {
            args: show_args(args),
            detail: redact(detail.as_ref()),
        }
    }
}

fn show_args(args: &[&str]) -> String {
    redact(&args.join(" "))
}

/// One git invocation in the source module: [`crate::gitcmd::Git`], its errors redacted.
pub(crate) struct Git<'a>(crate::gitcmd::Git<'a>);

impl<'a> Git<'a> {
    /// git run in `dir` (or the current directory when `None`, for `init`).
    pub fn new(dir: Option<&'a Path>, opts: &'a GitOptions) -> Git<'a> {
        Git(crate::gitcmd::Git::new(dir, opts))
    }

    /// Runs git and returns stdout; a non-zero exit is [`SourceError::Git`] with stderr.
    pub fn run(&self, args: &[&str]) -> Result<Vec<u8>, SourceError> {
        self.run_with_input(args, None)
    }

    /// [`Git::run`], feeding `input` on stdin.
    pub fn run_with_input(
        &self,
        args: &[&str],
        input: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, SourceError> {
        self.0.run_with_input(args, input).map_err(|e| match e {
            RunError::Spawn(e) => SourceError::Spawn {
                args: show_args(args),
                message: redact(&e.to_string()),
            },
            RunError::Timeout(t) => SourceError::Timeout {
                args: show_args(args),
                seconds: t.as_secs(),
            },
            RunError::Failed { stderr } => SourceError::Git {
                args: show_args(args),
                stderr: redact(&stderr),
            },
        })
    }
}

/// Creates a bare repository at `dir` atomically (initialised under a temporary name in the same
/// parent, then renamed), unless one is there already.
pub(crate) fn ensure_bare(dir: &Path, opts: &GitOptions) -> Result<(), SourceError> {
    if is_repo(dir) {
        return Ok(());
    }
    let parent = dir
        .parent()
        .ok_or_else(|| SourceError::cache(dir, "has no parent directory"))?;
    std::fs::create_dir_all(parent).map_err(|e| SourceError::cache(parent, e))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut nonce = [0u8; 6];
    getrandom::fill(&mut nonce).map_err(|e| SourceError::cache(dir, e))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", hex::encode(nonce)));
    let tmp_s = tmp.to_string_lossy().to_string();
    let made = Git::new(None, opts).run(&["init", "--bare", "--quiet", "--", &tmp_s]);
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Someone else made it meanwhile: fine.
        if !is_repo(dir) {
            return Err(SourceError::cache(dir, e));
        }
    }
    Ok(())
}

/// Whether `dir` is a git repository (bare, or a work tree with `.git`).
pub(crate) fn is_repo(dir: &Path) -> bool {
    dir.join(".git").exists() || (dir.join("HEAD").is_file() && dir.join("objects").is_dir())
}

/// The commit `rev` names in `dir`, or `None` when it names none.
pub(crate) fn resolve_commit(
    dir: &Path,
    opts: &GitOptions,
    rev: &str,
) -> Result<Option<String>, SourceError> {
    let spec = format!("{rev}^{{commit}}");
    let git = Git::new(Some(dir), opts);
    match git.run(&[
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        &spec,
    ]) {
        Ok(out) => {
            let id = String::from_utf8_lossy(&out).trim().to_string();
            if is_hex_id(&id) {
                Ok(Some(id))
            } else {
                Err(SourceError::output(&["rev-parse", &spec], id))
            }
        }
        // `--verify --quiet` exits 1 with no output for an unknown name.
        Err(SourceError::Git { stderr, .. }) if stderr.starts_with("exit status") => Ok(None),
        Err(e) => Err(e),
    }
}

/// A full object id (SHA-1 or SHA-256), lowercase hex.
pub fn is_hex_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids() {
        assert!(is_hex_id(&"a".repeat(40)));
        assert!(is_hex_id(&"0".repeat(64)));
        assert!(!is_hex_id("abc"));
        assert!(!is_hex_id(&"g".repeat(40)));
    }

    #[test]
    fn failing_command_reports_redacted_stderr() {
        let dir = tempfile::tempdir().expect("tmp");
        let opts = GitOptions::default();
        let err = Git::new(Some(dir.path()), &opts)
            .run(&[
                "fetch",
                "--",
                "https://user:s3cret@127.0.0.1:1/none.git",
                "x",
            ])
            .expect_err("not a repo");
        let text = err.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("https://***@127.0.0.1:1/none.git"), "{text}");
    }

    #[test]
    fn ext_transport_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let opts = GitOptions::default();
        let repo = dir.path().join("r.git");
        ensure_bare(&repo, &opts).expect("init");
        let marker = dir.path().join("ran");
        let url = format!("ext::touch {}", marker.display());
        let res = Git::new(Some(&repo), &opts).run(&["fetch", "--", &url, "x"]);
        assert!(res.is_err());
        assert!(!marker.exists(), "ext:: ran a command");
    }

    #[test]
    fn credentials_file_is_the_only_helper() {
        let dir = tempfile::tempdir().expect("tmp");
        let opts = GitOptions {
            credentials_file: Some(dir.path().join("my creds")),
            ..GitOptions::default()
        };
        let out = Git::new(Some(dir.path()), &opts)
            .run(&["config", "--get-all", "credential.helper"])
            .expect("config");
        let text = String::from_utf8_lossy(&out);
        let lines: Vec<&str> = text.lines().collect();
        // The reset (empty) comes last among inherited helpers, then the store.
        assert_eq!(
            lines.last().copied(),
            Some(format!("store --file='{}'", dir.path().join("my creds").display()).as_str()),
            "{text}"
        );
        assert!(lines.contains(&""), "{text}");
    }

    #[test]
    fn ssh_command_is_used_for_ssh_urls() {
        let dir = tempfile::tempdir().expect("tmp");
        let repo = dir.path().join("r.git");
        let marker = dir.path().join("ssh-ran");
        let opts = GitOptions {
            ssh_command: Some(format!("touch {}; false", marker.display())),
            ..GitOptions::default()
        };
        ensure_bare(&repo, &opts).expect("init");
        let res = Git::new(Some(&repo), &opts).run(&[
            "fetch",
            "--",
            "ssh://git@example.invalid/r.git",
            "x",
        ]);
        assert!(res.is_err());
        assert!(marker.exists(), "GIT_SSH_COMMAND was not used");
    }

    #[test]
    fn ensure_bare_is_idempotent() {
        let dir = tempfile::tempdir().expect("tmp");
        let repo = dir.path().join("a").join("r.git");
        let opts = GitOptions::default();
        ensure_bare(&repo, &opts).expect("init");
        assert!(is_repo(&repo));
        ensure_bare(&repo, &opts).expect("again");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("a"))
            .expect("ls")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary left: {left:?}");
        assert_eq!(resolve_commit(&repo, &opts, "HEAD").expect("rev"), None);
    }
}

//! Running `git` for the source module: fetches from remotes (the only network access) and
//! read-only plumbing (`rev-parse`, `ls-tree`, `cat-file --batch`) in hearth's own cache repos.
//!
//! Every command: no terminal prompts (`GIT_TERMINAL_PROMPT=0`), only the `https`, `http`, `ssh`,
//! `git` and `file` transports (`GIT_ALLOW_PROTOCOL`, so `ext::` can never run a command), `LC_ALL=C`,
//! literal pathspecs, inherited `GIT_DIR`-style variables removed, a hard timeout (the whole process
//! group is killed), and credentials only from [`GitOptions`] or the inherited environment. Every
//! error text is passed through [`redact`], so a URL's userinfo never leaves this module.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::redact::redact;

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

/// Transports git may use (`ext::` and `fd::` are never allowed).
pub const ALLOWED_PROTOCOLS: &str = "https:http:ssh:git:file";

/// How git authenticates and how long a command may take. Credentials come from here or from the
/// environment hearth was started with (`GIT_SSH_COMMAND`, `GIT_ASKPASS`, `SSH_AUTH_SOCK`, the
/// user's git config), never from manifests.
#[derive(Debug, Clone)]
pub struct GitOptions {
    /// `GIT_SSH_COMMAND`, e.g. `ssh -i /run/secrets/deploy_key -o IdentitiesOnly=yes`.
    pub ssh_command: Option<String>,
    /// `GIT_ASKPASS`: a program printing the username / password (token) git asks for.
    pub askpass: Option<PathBuf>,
    /// A git-credential-store file (`https://user:token@host` lines), used as the only
    /// credential helper.
    pub credentials_file: Option<PathBuf>,
    /// Longest time one git command may run (a fetch included).
    pub timeout: Duration,
}

impl Default for GitOptions {
    fn default() -> Self {
        GitOptions {
            ssh_command: None,
            askpass: None,
            credentials_file: None,
            timeout: Duration::from_secs(120),
        }
    }
}

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

/// One git invocation: `git [-C dir] <args>` with the options' credentials.
pub(crate) struct Git<'a> {
    dir: Option<&'a Path>,
    opts: &'a GitOptions,
}

impl<'a> Git<'a> {
    /// git run in `dir` (or the current directory when `None`, for `init`).
    pub fn new(dir: Option<&'a Path>, opts: &'a GitOptions) -> Git<'a> {
        Git { dir, opts }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        if let Some(dir) = self.dir {
            cmd.arg("-C").arg(dir);
            if let Some(parent) = dir.parent() {
                cmd.env("GIT_CEILING_DIRECTORIES", parent);
            }
        }
        cmd.arg("--no-pager");
        if let Some(file) = &self.opts.credentials_file {
            let helper = format!(
                "store --file={}",
                shell_words::quote(&file.to_string_lossy())
            );
            // The empty value resets the helpers from the user's config first.
            cmd.args(["-c", "credential.helper="])
                .arg("-c")
                .arg(format!("credential.helper={helper}"));
        }
        cmd.args(args);
        for v in SCRUBBED_ENV {
            cmd.env_remove(v);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ALLOW_PROTOCOL", ALLOWED_PROTOCOLS)
            .env("GIT_PAGER", "cat")
            .env("PAGER", "cat")
            .env("GIT_LITERAL_PATHSPECS", "1")
            .env("LC_ALL", "C");
        if let Some(ssh) = &self.opts.ssh_command {
            cmd.env("GIT_SSH_COMMAND", ssh);
        }
        if let Some(askpass) = &self.opts.askpass {
            cmd.env("GIT_ASKPASS", askpass);
        }
        // Its own process group, so a timeout kills git's helpers (ssh, remote-https) too.
        cmd.process_group(0);
        cmd
    }

    /// Runs git and returns stdout; a non-zero exit is [`SourceError::Git`] with stderr.
    pub fn run(&self, args: &[&str]) -> Result<Vec<u8>, SourceError> {
        self.run_with_input(args, None)
    }

    /// [`Git::run`], feeding `input` on stdin (from its own thread: no pipe deadlock).
    pub fn run_with_input(
        &self,
        args: &[&str],
        input: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, SourceError> {
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let spawn_err = |e: std::io::Error| SourceError::Spawn {
            args: show_args(args),
            message: redact(&e.to_string()),
        };
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let writer = match (input, child.stdin.take()) {
            (Some(input), Some(mut stdin)) => Some(std::thread::spawn(move || {
                // A write error means git exited early; its status tells why.
                let _ = stdin.write_all(&input);
            })),
            _ => None,
        };
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        let status = wait(&mut child, self.opts.timeout);
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        if let Some(w) = writer {
            let _ = w.join();
        }
        let status = match status {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(SourceError::Timeout {
                    args: show_args(args),
                    seconds: self.opts.timeout.as_secs(),
                });
            }
            Err(e) => return Err(spawn_err(e)),
        };
        if !status.success() {
            let text = String::from_utf8_lossy(&stderr).trim().to_string();
            return Err(SourceError::Git {
                args: show_args(args),
                stderr: if text.is_empty() {
                    format!("exit status {status}")
                } else {
                    redact(&text)
                },
            });
        }
        Ok(stdout)
    }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Waits for `child` at most `timeout`; on timeout kills its process group and returns `None`.
fn wait(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            // The child leads its own process group (see `command`).
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
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
    fn timeout_kills_the_command() {
        let dir = tempfile::tempdir().expect("tmp");
        let opts = GitOptions {
            timeout: Duration::from_millis(200),
            ..GitOptions::default()
        };
        // `cat-file --batch` waits for requests until its stdin closes; we keep it open.
        let repo = dir.path().join("r.git");
        ensure_bare(&repo, &GitOptions::default()).expect("init");
        let git = Git::new(Some(&repo), &opts);
        let mut cmd = git.command(&["cat-file", "--batch"]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn");
        let started = Instant::now();
        let status = wait(&mut child, opts.timeout).expect("wait");
        assert!(status.is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
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

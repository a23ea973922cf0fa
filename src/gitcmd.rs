//! The one place that runs the `git` CLI: a hardened command line and a bounded run. The recipe
//! store ([`crate::recipe`], read-only plumbing in the operator's recipe repos) and the git source
//! ([`crate::source`], fetches into hearth's own cache repos) both go through [`Git`], and map
//! [`RunError`] into their own error types (the source redacts URLs in them).
//!
//! Every command: `git [-C dir] --no-pager`, a ceiling directory so a non-repo never resolves to an
//! enclosing repository, no terminal prompts (`GIT_TERMINAL_PROMPT=0`), only the `https`, `http`,
//! `ssh`, `git` and `file` transports (`GIT_ALLOW_PROTOCOL`, so `ext::` can never run a command), no
//! optional locks, literal pathspecs, `LC_ALL=C`, inherited `GIT_DIR`-style variables removed,
//! credentials only from [`GitOptions`] or the inherited environment, its own process group, and a
//! hard timeout (the whole group is killed).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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

/// Why a git command gave no output.
#[derive(Debug)]
pub enum RunError {
    /// git could not be started, or its pipes failed.
    Spawn(std::io::Error),
    /// It ran past [`GitOptions::timeout`] and was killed.
    Timeout(Duration),
    /// It exited non-zero; `stderr` is its trimmed error output (or the exit status).
    Failed { stderr: String },
}

/// One git invocation: `git [-C dir] <args>` with the options' credentials.
pub struct Git<'a> {
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
            .env("GIT_OPTIONAL_LOCKS", "0")
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

    /// Runs git and returns stdout; a non-zero exit is [`RunError::Failed`] with stderr.
    pub fn run(&self, args: &[&str]) -> Result<Vec<u8>, RunError> {
        self.run_with_input(args, None)
    }

    /// [`Git::run`], feeding `input` on stdin (from its own thread: no pipe deadlock).
    pub fn run_with_input(
        &self,
        args: &[&str],
        input: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, RunError> {
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(RunError::Spawn)?;
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
            Ok(None) => return Err(RunError::Timeout(self.opts.timeout)),
            Err(e) => return Err(RunError::Spawn(e)),
        };
        if !status.success() {
            let text = String::from_utf8_lossy(&stderr).trim().to_string();
            return Err(RunError::Failed {
                stderr: if text.is_empty() {
                    format!("exit status {status}")
                } else {
                    text
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_kills_the_command() {
        let dir = tempfile::tempdir().expect("tmp");
        let opts = GitOptions {
            timeout: Duration::from_millis(200),
            ..GitOptions::default()
        };
        // `cat-file --batch` waits for requests until its stdin closes; we keep it open.
        let repo = dir.path().join("r.git");
        Git::new(None, &GitOptions::default())
            .run(&["init", "--bare", "--quiet", "--", &repo.to_string_lossy()])
            .expect("init");
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
}

//! The three-manager swarm from `scripts/swarm-multi` (its own prefix, so it never meets the
//! test suite's clusters): the script's commands, the Docker CLI against one node with a timeout
//! (a frozen node's socket never answers), and HTTP into a node's network namespace (traffic stays
//! on the namespaces' bridge).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The cluster's prefix (`HEARTH_MN_PREFIX`).
pub const PREFIX: &str = "hearthchaos";

#[derive(Debug, Clone)]
pub struct Cluster {
    pub script: PathBuf,
}

/// (success, stdout, stderr) of a finished command.
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    match cmd.output() {
        Ok(Output {
            status,
            stdout,
            stderr,
        }) => (
            status.success(),
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        ),
        Err(e) => (false, String::new(), format!("{cmd:?}: {e}")),
    }
}

pub fn sock(n: u32) -> String {
    format!("/run/{PREFIX}-node{n}/docker.sock")
}

pub fn ip(n: u32) -> String {
    format!("10.250.0.{}", 10 + n)
}

/// Where node `n` keeps its volumes (its `--data-root`), as seen from this machine.
pub fn volumes_dir(n: u32) -> PathBuf {
    PathBuf::from(format!("/var/lib/{PREFIX}-multinode/node{n}/data/volumes"))
}

/// `docker -H <node n> ARGS`, killed after `secs`.
pub fn docker(n: u32, secs: u32, args: &[&str]) -> (bool, String, String) {
    run(Command::new("timeout")
        .args([
            &format!("{secs}"),
            "docker",
            "-H",
            &format!("unix://{}", sock(n)),
        ])
        .args(args))
}

/// `curl` inside node `via`'s network namespace.
pub fn curl(via: u32, url: &str, token: Option<&str>) -> Option<String> {
    let mut c = Command::new("timeout");
    c.args([
        "5",
        "ip",
        "netns",
        "exec",
        &format!("{PREFIX}-n{via}"),
        "curl",
        "-sS",
        "-m",
        "3",
    ]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    c.arg(url);
    let (ok, out, _) = run(&mut c);
    ok.then_some(out)
}

impl Cluster {
    pub fn new(repo: &Path) -> Cluster {
        Cluster {
            script: repo.join("scripts/swarm-multi"),
        }
    }

    /// `scripts/swarm-multi ARGS` on the soak's cluster.
    pub fn sm(&self, args: &[&str]) -> (bool, String, String) {
        run(Command::new(&self.script)
            .env("HEARTH_MN_PREFIX", PREFIX)
            .args(args))
    }

    /// `scripts/swarm-multi ARGS`, failing with its stderr.
    pub fn must(&self, args: &[&str]) -> Result<String, String> {
        let (ok, out, err) = self.sm(args);
        if ok {
            Ok(out)
        } else {
            Err(format!("swarm-multi {}: {}", args.join(" "), err.trim()))
        }
    }
}

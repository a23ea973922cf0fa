//! docs/getting-started.md cannot rot: its ```sh runnable blocks are run in order, as one bash
//! script (`set -euo pipefail`), against the real swarm, with the built `hearth` first on PATH and
//! a unique `GUIDE` name, work directory and port. The ```sh runnable cleanup blocks run after
//! them, also when they failed, and before them for what a killed earlier run left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GUIDE: &str = "docs/getting-started.md";
/// Where every run keeps its work directory (a killed run's is cleaned by the next).
const WORK_ROOT: &str = "/tmp/hearth-getting-started";

/// The bodies of the fenced blocks whose info string is exactly `info`.
fn blocks(md: &str, info: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    let mut in_other = false;
    for line in md.lines() {
        let t = line.trim();
        if let Some(b) = &mut cur {
            if t == "```" {
                out.push(std::mem::take(b));
                cur = None;
            } else {
                b.push_str(line);
                b.push('\n');
            }
        } else if in_other {
            in_other = t != "```";
        } else if let Some(rest) = t.strip_prefix("```") {
            if rest.trim() == info {
                cur = Some(String::new());
            } else {
                in_other = true;
            }
        }
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `script` with bash in the repository root; returns (success, output).
fn bash(script: &str, env: &[(&str, String)], limit: Duration) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_hearth"));
    let path = format!(
        "{}:{}",
        bin.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = tempfile::NamedTempFile::new().expect("log file");
    // One file description for both streams, so their lines interleave instead of overwriting.
    let out = log.reopen().expect("log");
    let err = out.try_clone().expect("log");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(root)
        .env("PATH", path)
        .env_remove("HEARTH_RECIPES")
        .env_remove("HEARTH_URL")
        .env_remove("HEARTH_LISTEN")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("bash");
    let start = Instant::now();
    let ok = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.success();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = std::fs::read_to_string(log.path()).unwrap_or_default();
    (ok, out)
}

/// Stops the `hearth run` of runs killed before their cleanup, and removes their objects.
fn clean_leftovers(cleanup: &str) {
    let Ok(dirs) = std::fs::read_dir(WORK_ROOT) else {
        return;
    };
    for d in dirs.flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        let work = d.path();
        let env = [("GUIDE", name), ("WORK", work.display().to_string())];
        let (ok, out) = bash(cleanup, &env, Duration::from_secs(120));
        assert!(ok, "cleanup of a leftover run failed:\n{out}");
    }
}

#[test]
fn the_getting_started_guide_runs() {
    let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(GUIDE))
        .expect("read the guide");
    let steps = blocks(&md, "sh runnable");
    let cleanup = blocks(&md, "sh runnable cleanup").join("\n");
    assert!(steps.len() >= 4, "runnable blocks: {}", steps.len());
    assert!(!cleanup.is_empty(), "the guide has a cleanup block");
    clean_leftovers(&cleanup);

    let guide = format!("gs{}", std::process::id());
    let work = Path::new(WORK_ROOT).join(&guide);
    std::fs::create_dir_all(&work).expect("work dir");
    let env = [
        ("GUIDE", guide.clone()),
        ("WORK", work.display().to_string()),
        ("PORT", free_port().to_string()),
    ];
    let start = Instant::now();
    let (ok, out) = bash(&steps.join("\n"), &env, Duration::from_secs(360));
    let took = start.elapsed();
    let hearth_log = std::fs::read_to_string(work.join("hearth.log")).unwrap_or_default();
    let (cleaned, cleanup_out) = bash(&cleanup, &env, Duration::from_secs(120));
    eprintln!("guide ran in {:.1} s", took.as_secs_f64());
    assert!(
        ok,
        "a runnable block of {GUIDE} failed after {took:?}:\n{out}\n--- hearth run log ---\n{hearth_log}"
    );
    assert!(cleaned, "the cleanup block failed:\n{cleanup_out}");
    assert!(
        !work.exists(),
        "the cleanup block removes the work directory"
    );
    // What the blocks claim: the plan saw changes, the deployment advanced, metrics were served.
    assert!(out.contains("plan exit code: 2"), "{out}");
    assert!(out.contains("1.1.0+1.27.1"), "{out}");
    assert!(
        out.contains("hearth_deployment_phase{deployment=\"site\",phase=\"Ready\"} 1"),
        "{out}"
    );
    let left = Command::new("docker")
        .args(["service", "ls", "-q", "--filter"])
        .arg(format!("label=hearth.guide={guide}"))
        .output()
        .expect("docker");
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "services left behind"
    );
}

#[test]
fn blocks_are_found_by_their_info_string() {
    let md = "a\n```sh runnable\necho 1\n```\n```sh\nno\n```\n```sh runnable cleanup\nrm x\n```\n";
    assert_eq!(blocks(md, "sh runnable"), ["echo 1\n"]);
    assert_eq!(blocks(md, "sh runnable cleanup"), ["rm x\n"]);
}

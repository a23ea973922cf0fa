//! `hearth run -f DIR` as an operator runs it, on the real swarm: a saved manifest edit is
//! applied within seconds with the default 30 s resync (the file watch, not the resync), and the
//! logs: `--log-format json` writes one JSON object per line with deployment, phase, reason and
//! action fields and the pass/reconcile/apply spans; text logs to a pipe carry no ANSI escapes.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pool::TestPool;
use common::with_swarm;

/// A `hearth run` child process, stopped (SIGTERM, then kill) when dropped.
struct Run(Child);

impl Run {
    fn start(args: &[&str], log: &Path) -> Run {
        let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env_remove("HEARTH_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("start hearth run");
        Run(child)
    }

    fn stop(&mut self) {
        // SAFETY: kill(2) on the id of our own child process.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop();
    }
}

fn replicas(service: &str) -> String {
    Command::new("docker")
        .args([
            "service",
            "inspect",
            "-f",
            "{{.Spec.Mode.Replicated.Replicas}}",
            service,
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The log's lines parsed as JSON; panics on a line that is not.
fn json_lines(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

async fn until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> anyhow::Result<()> {
    let t0 = Instant::now();
    while !ok() {
        anyhow::ensure!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn spec(replicas: &str) -> String {
    format!("  recipe: bench-trio\n  version: 1.0.0+1\n  env: {{REPLICAS: \"{replicas}\"}}\n")
}

#[tokio::test]
async fn saved_edit_applies_at_once_and_logs_fit() {
    with_swarm("run-local", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("bt", &spec("0"));
        let dir = pool.path().to_str().unwrap().to_string();
        let logs = tempfile::tempdir()?;
        let service = format!("{}_web", pool.stack("bt"));

        // JSON logs, default resync (30 s).
        let json_log = logs.path().join("json.log");
        let port = common::http::free_port().to_string();
        let listen = format!("127.0.0.1:{port}");
        let mut run = Run::start(
            &[
                "--log-format",
                "json",
                "run",
                "-f",
                &dir,
                "--no-lease",
                "--listen",
                &listen,
            ],
            &json_log,
        );
        until("deployed with 0 replicas", Duration::from_secs(60), || {
            replicas(&service) == "0"
        })
        .await?;
        // An editor's save: a temporary file renamed over the manifest.
        let tmp = pool.path().join(".bt.yml.tmp");
        let bt = pool.path().join("bt.yml");
        std::fs::write(
            &tmp,
            std::fs::read_to_string(&bt)?.replace(&spec("0"), &spec("1")),
        )?;
        let t0 = Instant::now();
        std::fs::rename(&tmp, &bt)?;
        let applied = until("the edit applied", Duration::from_secs(5), || {
            replicas(&service) == "1"
        })
        .await;
        if applied.is_err() {
            run.stop();
            eprintln!("{}", std::fs::read_to_string(&json_log)?);
        }
        applied?;
        let took = t0.elapsed();
        eprintln!("edit to apply: {took:?}");
        run.stop();

        let lines = json_lines(&json_log);
        let has = |f: &dyn Fn(&serde_json::Value) -> bool| lines.iter().any(f);
        anyhow::ensure!(
            has(&|l| l["message"]
                .as_str()
                .is_some_and(|m| m.contains("local files changed"))),
            "the file watch, not the resync, reloaded: {lines:#?}"
        );
        anyhow::ensure!(
            has(&|l| l["deployment"] == "bt" && l["phase"].is_string() && l["reason"].is_string()),
            "a phase line: {lines:#?}"
        );
        anyhow::ensure!(
            has(&|l| l["deployment"] == "bt" && l["action"] == "update_service"),
            "an action line: {lines:#?}"
        );
        anyhow::ensure!(
            has(&|l| l["spans"].as_array().is_some_and(|s| s
                .iter()
                .any(|s| s["name"] == "reconcile" && s["deployment"] == "bt"))),
            "a reconcile span: {lines:#?}"
        );
        anyhow::ensure!(
            has(&|l| l["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["name"] == "pass"))),
            "a pass span: {lines:#?}"
        );

        // Text logs to a file (not a terminal): no escape codes.
        let text_log = logs.path().join("text.log");
        let mut run = Run::start(
            &["run", "-f", &dir, "--no-lease", "--listen", &listen],
            &text_log,
        );
        until("a phase line", Duration::from_secs(60), || {
            std::fs::read_to_string(&text_log).is_ok_and(|t| t.contains("phase="))
        })
        .await?;
        run.stop();
        let text = std::fs::read(&text_log)?;
        anyhow::ensure!(
            !text.contains(&0x1b),
            "escape codes in piped logs: {}",
            String::from_utf8_lossy(&text)
        );
        Ok(())
    })
    .await;
}

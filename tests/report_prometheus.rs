//! End to end with a real Prometheus: the built `hearth run` (with `--listen` on a free loopback
//! port) converges a pool holding a crash-looping gitea (3.6.0 writes to its read-only app.ini)
//! with `progressDeadline: 20s`; Debian's `prometheus` scrapes it every second with the alert
//! rules loaded — a test variant of `manifests/prometheus/hearth-rules.yaml` where every `for:` is
//! `0s`, so the test does not wait out the production durations — until
//! `HearthDeploymentWedged` fires for that deployment. Both processes are killed at the end,
//! also on failure; `with_swarm` removes the stacks.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::http::{free_port, get};
use common::pool::TestPool;
use common::swarm::wait_for;
use common::with_swarm;

/// A child process killed (and reaped) when dropped.
struct Killed(Child, &'static str);

impl Drop for Killed {
    fn drop(&mut self) {
        eprintln!("stopping {} (pid {})", self.1, self.0.id());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The rules with every `for:` set to `0s`.
fn rules_without_for(text: &str) -> String {
    text.lines()
        .map(|l| match l.split_once("for:") {
            Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: 0s"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn http(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let p = path.to_string();
    tokio::task::spawn_blocking(move || get(addr, &p))
        .await
        .map_err(|e| e.to_string())?
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_fires_the_wedge_alert() {
    with_swarm("report-prometheus", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment(
            "git",
            "  recipe: gitea\n  version: 3.6.0+1.24.2-rootless\n  progressDeadline: 20s\n",
        );
        let work = tempfile::tempdir()?;
        let hearth_log = work.path().join("hearth.log");
        let prom_log = work.path().join("prometheus.log");
        let hearth_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let prom_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();

        let start = Instant::now();
        let _hearth = Killed(
            Command::new(env!("CARGO_BIN_EXE_hearth"))
                .args(["run", "-f"])
                .arg(pool.path())
                .args(["--listen", &hearth_addr.to_string()])
                .args(["--poll", "1s", "--resync", "5s", "--grace", "2s"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&hearth_log)?)
                .spawn()?,
            "hearth",
        );

        let rules = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/prometheus/hearth-rules.yaml"),
        )?;
        let rules_path = work.path().join("rules.yaml");
        std::fs::write(&rules_path, rules_without_for(&rules))?;
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [{}]\n\
             scrape_configs:\n  - job_name: hearth\n    static_configs:\n      \
             - targets: ['{hearth_addr}']\n",
            rules_path.display()
        );
        let config_path = work.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let tsdb = work.path().join("tsdb");
        let _prometheus = Killed(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.tsdb.path={}", tsdb.display()))
                .arg(format!("--web.listen-address={prom_addr}"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&prom_log)?)
                .spawn()
                .map_err(|e| {
                    anyhow::anyhow!("prometheus: {e} (Debian's prometheus: run scripts/swarm-up)")
                })?,
            "prometheus",
        );

        let outcome = async {
            wait_for("hearth ready", Duration::from_secs(60), || async {
                match http(hearth_addr, "/readyz").await {
                    Ok((200, _)) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
            .await?;
            println!("hearth ready after {:?}", start.elapsed());
            let firing = wait_for(
                "HearthDeploymentWedged firing in Prometheus",
                Duration::from_secs(180),
                || async {
                    let (_, body) = http(prom_addr, "/api/v1/alerts").await?;
                    let v: serde_json::Value =
                        serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
                    let alerts = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
                    alerts
                        .iter()
                        .find(|a| {
                            a["labels"]["alertname"] == "HearthDeploymentWedged"
                                && a["labels"]["deployment"] == "git"
                                && a["state"] == "firing"
                        })
                        .cloned()
                        .ok_or_else(|| {
                            let (_, status) =
                                get(hearth_addr, "/api/v1/deployments/git").unwrap_or_default();
                            format!("alerts: {alerts:?}; hearth: {status}")
                        })
                },
            )
            .await?;
            println!(
                "HearthDeploymentWedged firing after {:?}: {}",
                start.elapsed(),
                firing["labels"]
            );
            let reason = firing["labels"]["reason"].as_str().unwrap_or_default();
            anyhow::ensure!(
                matches!(reason, "DeadlineExceeded" | "CrashLoop"),
                "wedge reason {reason:?}"
            );
            anyhow::ensure!(
                firing["annotations"]["runbook_url"]
                    == format!(
                        "{}/HearthDeploymentWedged.md",
                        hearth::report::rules::DEFAULT_RUNBOOK_BASE_URL
                    )
            );
            // The scrape itself is healthy, and the task failures were counted.
            let (_, body) = http(
                prom_addr,
                "/api/v1/query?query=sum(hearth_task_failures_total%7Bdeployment%3D%22git%22%7D)",
            )
            .await
            .map_err(anyhow::Error::msg)?;
            let v: serde_json::Value = serde_json::from_str(&body)?;
            let failures: f64 = v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            anyhow::ensure!(failures >= 1.0, "task failures: {body}");
            // hearth status shows the same.
            let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
                .args(["status", "--url", &format!("http://{hearth_addr}")])
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            println!("{text}");
            anyhow::ensure!(text.contains("Wedged"), "{text}");
            Ok::<(), anyhow::Error>(())
        }
        .await;
        if outcome.is_err() {
            eprintln!("--- hearth log (tail)\n{}", tail(&hearth_log));
            eprintln!("--- prometheus log (tail)\n{}", tail(&prom_log));
        }
        // `_hearth` and `_prometheus` are killed here, before the swarm is cleaned.
        outcome
    })
    .await;
}

#[test]
fn every_for_becomes_zero() {
    let text = "      - alert: A\n        expr: x == 1\n        for: 15m\n        labels: {}\n";
    assert_eq!(
        rules_without_for(text),
        "      - alert: A\n        expr: x == 1\n        for: 0s\n        labels: {}"
    );
}

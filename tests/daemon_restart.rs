//! The Docker daemon restarts under a running hearth: hearth reports Docker down, reconnects by
//! itself (API and events stream), finds its deployment Ready again, and keeps reconciling.
//!
//! This test stops and restarts the machine's dockerd (through scripts/swarm-up, exactly as CI
//! starts it), so it lives alone in its own test binary: cargo runs test binaries one at a time.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::controller::start;
use common::pool::TestPool;
use common::with_swarm;

fn docker_answers() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn hearth_recovers_from_a_daemon_restart_without_help() {
    with_swarm("ctl-daemon", |env| async move {
        let pool = TestPool::new(&env, false);
        let spec = "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  \
                    secrets: {admin_password: {generate: {}}}\n";
        pool.deployment("kc", spec);
        let hearth = start(&pool);
        hearth
            .phase("kc", "Ready", None, Duration::from_secs(90))
            .await?;

        // Stop dockerd.
        let pid = std::fs::read_to_string("/var/run/docker.pid")?;
        Command::new("kill").args(["-TERM", pid.trim()]).status()?;
        let start_down = Instant::now();
        while docker_answers() {
            anyhow::ensure!(
                start_down.elapsed() < Duration::from_secs(60),
                "dockerd did not stop"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let t = Instant::now();
        while hearth.shared.is_docker_up() {
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(30),
                "hearth did not notice Docker going"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("hearth saw Docker down after {:?}", t.elapsed());

        // Start it again the way CI does.
        let root = env!("CARGO_MANIFEST_DIR");
        let up = Command::new(format!("{root}/scripts/swarm-up")).output()?;
        anyhow::ensure!(
            up.status.success(),
            "swarm-up: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        let t = Instant::now();
        while !hearth.shared.is_docker_up() {
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(60),
                "hearth did not reconnect"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "hearth reconnected {:?} after the daemon answered",
            t.elapsed()
        );
        hearth
            .phase("kc", "Ready", None, Duration::from_secs(120))
            .await?;

        // The restarted daemon holds the same specs: no drift (docs/drift.md).
        let drift: Vec<_> = pool
            .plan(&env)
            .await
            .into_iter()
            .flat_map(|p| p.drift)
            .collect();
        anyhow::ensure!(
            drift.is_empty(),
            "drift after the daemon restart: {drift:?}"
        );

        // It still reconciles: a change made now is applied.
        pool.deployment("kc", &format!("{spec}  env: {{KC_ADMIN: after-restart}}\n"));
        let stack = pool.stack("kc");
        let t = Instant::now();
        loop {
            let out = Command::new("docker")
                .args([
                    "service",
                    "inspect",
                    &format!("{stack}_app"),
                    "--format",
                    "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
                ])
                .output()?;
            if String::from_utf8_lossy(&out.stdout).contains("KC_ADMIN=after-restart") {
                break;
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(30),
                "change after restart not applied"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        hearth.stop().await
    })
    .await;
}

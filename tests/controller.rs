//! The controller on the real swarm: it converges a pool on its own, heals (or only reports)
//! drift, gates on dependencies with the reason, and stops cleanly.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::controller::start;
use common::pool::TestPool;
use common::{docker, service_env, with_swarm};

const KC: &str = "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  role: provider\n  \
                  secrets: {admin_password: {generate: {}}}\n";

#[tokio::test]
async fn drift_is_healed_when_self_heal_is_on() {
    with_swarm("ctl-heal", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("kc", KC);
        let hearth = start(&pool);
        let st = hearth
            .phase("kc", "Ready", None, Duration::from_secs(90))
            .await?;
        let service = format!("{}_app", st.stack);
        let changed = Instant::now();
        docker(&[
            "service",
            "update",
            "--detach",
            "--env-add",
            "OOB=1",
            &service,
        ]);
        // Healed: the out-of-band env var is gone again and the deployment is Ready.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let env_now = service_env(&service);
            if !env_now.contains("OOB=1") {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "drift not healed: {env_now}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("out-of-band change healed in {:?}", changed.elapsed());
        hearth
            .phase("kc", "Ready", None, Duration::from_secs(60))
            .await?;
        hearth.stop().await
    })
    .await;
}

#[tokio::test]
async fn drift_is_only_reported_when_self_heal_is_off() {
    with_swarm("ctl-drift", |env| async move {
        let pool = TestPool::new(&env, false);
        // selfHeal off for the whole pool.
        let text = std::fs::read_to_string(pool.path().join("pool.yml"))?.replace(
            "defaults: {prune: false}",
            "defaults: {prune: false, selfHeal: false}",
        );
        std::fs::write(pool.path().join("pool.yml"), text)?;
        pool.deployment("kc", KC);
        let hearth = start(&pool);
        let st = hearth
            .phase("kc", "Ready", None, Duration::from_secs(90))
            .await?;
        let service = format!("{}_app", st.stack);
        let changed = Instant::now();
        docker(&[
            "service",
            "update",
            "--detach",
            "--env-add",
            "OOB=1",
            &service,
        ]);
        let st = hearth
            .wait("kc", "Drifted", Duration::from_secs(30), |s| {
                !s.drift.is_empty()
            })
            .await?;
        println!(
            "out-of-band change reported as drift in {:?}",
            changed.elapsed()
        );
        assert_eq!(st.drift[0].field, "TaskTemplate.ContainerSpec.Env");
        assert!(st.drift[0].live.contains("OOB=1"));
        let drifted = st.conditions.iter().find(|c| c.kind == "Drifted").unwrap();
        assert!(drifted.status);
        // Nothing changed it back.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let env_now = service_env(&service);
        assert!(env_now.contains("OOB=1"));
        hearth.stop().await
    })
    .await;
}

#[tokio::test]
async fn a_dependent_waits_for_its_provider_with_the_reason() {
    with_swarm("ctl-deps", |env| async move {
        let pool = TestPool::new(&env, false);
        // The provider is not Ready yet when the dependent is first looked at.
        pool.deployment("kc", KC);
        pool.deployment(
            "gitea",
            "  recipe: gitea\n  version: 3.5.3+1.24.2-rootless\n  dependsOn: [kc]\n",
        );
        let hearth = start(&pool);
        let st = hearth
            .phase(
                "gitea",
                "Pending",
                Some("WaitingForDependency"),
                Duration::from_secs(30),
            )
            .await?;
        assert!(st.message.contains("kc"), "{}", st.message);
        // Nothing of gitea was created while it waits.
        let stack = pool.stack("gitea");
        assert!(
            docker(&["service", "ls", "-q", "--filter", &format!("name={stack}_")])
                .trim()
                .is_empty()
        );
        // Once the provider is Ready, the dependent goes ahead.
        hearth
            .phase("kc", "Ready", None, Duration::from_secs(90))
            .await?;
        hearth
            .phase("gitea", "Ready", None, Duration::from_secs(90))
            .await?;
        hearth.stop().await
    })
    .await;
}

#[tokio::test]
async fn sigterm_stops_hearth_run_cleanly() {
    with_swarm("ctl-sigterm", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("kc", KC);
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["run", "-f", pool.path().to_str().unwrap(), "--resync", "2s"])
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        // Let it start working, then SIGTERM it mid-flight.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let start = Instant::now();
        let out = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(40),
                "hearth did not exit"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err)?;
        assert_eq!(out.code(), Some(0), "{err}");
        assert!(err.contains("SIGTERM"), "{err}");
        assert!(err.contains("stopped"), "{err}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn every_deployment_converges_when_there_are_more_than_apply_slots() {
    with_swarm("ctl-slots", |env| async move {
        let pool = TestPool::new(&env, false);
        let text = std::fs::read_to_string(pool.path().join("pool.yml"))?.replace(
            "defaults: {prune: false}",
            "defaults: {prune: false, concurrency: 1}",
        );
        std::fs::write(pool.path().join("pool.yml"), text)?;
        let names = ["site-a", "site-b", "site-c", "site-d"];
        for n in names {
            pool.deployment(n, "  recipe: static-site\n  version: 1.1.0+1.27.1\n");
        }
        let hearth = start(&pool);
        for n in names {
            hearth
                .phase(n, "Ready", None, Duration::from_secs(90))
                .await?;
        }
        hearth.stop().await
    })
    .await;
}

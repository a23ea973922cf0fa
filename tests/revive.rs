//! A service whose container is stopped cleanly from outside (SIGTERM, as a daemon restart or a
//! reboot stops it: exit code 0) under `restart_policy: condition: on-failure` gets no replacement
//! from Swarm. hearth revives it with a forced update, restarting nothing else.
//!
//! Regression for scripts/chaos (seed 1, step 6: a dockerd restart left the canonical gitea at
//! 0/1 for good). Here the stop is `docker kill -s TERM` of the task's container, which is what
//! the daemon's restart does to it.

mod common;

use std::time::{Duration, Instant};

use common::controller::start;
use common::pool::TestPool;
use common::with_swarm;

#[tokio::test]
async fn a_task_stopped_cleanly_from_outside_is_started_again() {
    with_swarm("ctl-revive", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment(
            "gitea",
            "  recipe: gitea\n  version: 3.5.3+1.24.2-rootless\n",
        );
        let hearth = start(&pool);
        let ready = hearth
            .phase("gitea", "Ready", None, Duration::from_secs(90))
            .await?;
        let service = format!("{}_app", ready.stack);
        let first =
            common::swarm::running_container(&env, &service, Duration::from_secs(30)).await?;
        // Only a task that ran a while counts as stopped from outside (plan::revive::RAN_AT_LEAST).
        tokio::time::sleep(hearth::plan::revive::RAN_AT_LEAST + Duration::from_secs(2)).await;
        common::docker(&["kill", "-s", "TERM", &first]);
        let stopped = Instant::now();
        // Swarm records it complete and starts nothing (that is the bug being healed) ...
        let (code, _) = common::abra::docker_try(&["wait", &first]);
        assert!(code, "docker wait {first}");
        let exit = common::docker(&["inspect", "-f", "{{.State.ExitCode}}", &first]);
        assert_eq!(exit.trim(), "0", "the fixture exits 0 on SIGTERM");
        // ... and hearth starts it again.
        // (Swarm's task list shows the stopped task as running for a moment.)
        let next = loop {
            let c =
                common::swarm::running_container(&env, &service, Duration::from_secs(60)).await?;
            if c != first {
                break c;
            }
            anyhow::ensure!(
                stopped.elapsed() < Duration::from_secs(60),
                "{service} not started again 60s after its container stopped"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        println!(
            "revived {service} ({next}) {:?} after the stop",
            stopped.elapsed()
        );
        let st = hearth
            .phase("gitea", "Ready", None, Duration::from_secs(60))
            .await?;
        assert_eq!(st.stack, ready.stack);
        let force = common::docker(&[
            "service",
            "inspect",
            "-f",
            "{{.Spec.TaskTemplate.ForceUpdate}}",
            &service,
        ]);
        assert_eq!(force.trim(), "1", "one forced update");
        hearth.stop().await
    })
    .await;
}

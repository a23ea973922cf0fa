//! Converge on the real swarm: fresh deploy, zero writes when converged, version and env changes
//! touch only what changed, a dropped service goes, park/unpark keeps volume data, out-of-band
//! changes are planned back, unmanaged stacks are never touched, a concurrent writer is handled,
//! and prune removes a stack but never its volumes.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::pool::{TestPool, steps};
use common::swarm::{gwbridge_addr, wait_for};
use common::{TestEnv, docker, service_env, with_swarm};
use hearth::assess::{Convergence, service_progress};
use hearth::plan::plan_pool;
use hearth::swarm::apply::{Ids, apply_plan};

const KEYCLOAK_V1: &str = "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  role: provider\n  \
                           secrets: {admin_password: {generate: {length: 24}}}\n";

/// Waits until every service of `stack` runs its desired tasks.
async fn converged(env: &TestEnv, stack: &str) -> anyhow::Result<()> {
    wait_for("the stack to converge", Duration::from_secs(90), || async {
        let snap = env.client.snapshot().await.map_err(|e| e.to_string())?;
        let view = snap.stack(stack);
        if view.services.is_empty() {
            return Err("no services".into());
        }
        let waiting: Vec<String> = view
            .services
            .iter()
            .map(|s| {
                let tasks: Vec<_> = view
                    .tasks
                    .iter()
                    .copied()
                    .filter(|t| t.service_id == s.id)
                    .collect();
                service_progress(s, &tasks)
            })
            .filter(|p| p.state != Convergence::Converged)
            .map(|p| format!("{}: {:?}", p.service, p.state))
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(waiting.join("; "))
        }
    })
    .await
}

/// The docker_gwbridge address of `service`'s running task (how the host reaches it).
async fn task_addr(env: &TestEnv, service: &str, port: u16) -> anyhow::Result<SocketAddr> {
    gwbridge_addr(env, service, port, Duration::from_secs(60)).await
}

#[tokio::test]
async fn fresh_deploy_then_second_apply_makes_zero_writes() {
    with_swarm("converge-fresh", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("kc", KEYCLOAK_V1);
        let (plans, counts) = pool.apply(&env).await?;
        let stack = pool.stack("kc");
        assert_eq!(
            steps(&plans),
            [
                ("create_network".into(), format!("{stack}_internal")),
                ("create_secret".into(), format!("{stack}_admin_password_v1")),
                ("create_service".into(), format!("{stack}_app")),
            ]
        );
        assert_eq!(counts.writes(), 3, "{counts:?}");
        converged(&env, &stack).await?;

        let (plans, counts) = pool.apply(&env).await?;
        assert!(steps(&plans).is_empty(), "{:#?}", plans);
        assert_eq!(
            counts.writes(),
            0,
            "a converged deployment costs no writes: {counts:?}"
        );
        // One snapshot: seven list calls, whatever the number of deployments.
        assert_eq!(counts.total(), 7, "{counts:?}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn version_and_env_changes_update_only_what_changed() {
    with_swarm("converge-change", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("kc", KEYCLOAK_V1);
        pool.apply(&env).await?;
        let stack = pool.stack("kc");

        pool.deployment("kc", &KEYCLOAK_V1.replace("1.0.0+25.0.6", "1.1.0+26.0.1"));
        let (plans, counts) = pool.apply(&env).await?;
        assert_eq!(
            steps(&plans),
            [("update_service".into(), format!("{stack}_app"))]
        );
        assert_eq!(counts.writes(), 1);
        let diffs: Vec<&str> = plans[0].steps[0]
            .diffs
            .iter()
            .map(|d| d.field.as_str())
            .collect();
        assert!(
            diffs.contains(&"TaskTemplate.ContainerSpec.Env"),
            "{diffs:?}"
        );
        let version = docker(&[
            "service",
            "inspect",
            &format!("{stack}_app"),
            "--format",
            &format!("{{{{index .Spec.Labels \"coop-cloud.{stack}.version\"}}}}"),
        ]);
        assert_eq!(version.trim(), "1.1.0+26.0.1");

        let with_env =
            KEYCLOAK_V1.replace("1.0.0+25.0.6", "1.1.0+26.0.1") + "  env: {KC_ADMIN: root}\n";
        pool.deployment("kc", &with_env);
        let (plans, _) = pool.apply(&env).await?;
        assert_eq!(
            steps(&plans),
            [("update_service".into(), format!("{stack}_app"))]
        );
        let env_now = service_env(&format!("{stack}_app"));
        assert!(env_now.contains("KC_ADMIN=root"), "{env_now}");
        assert!(pool.apply(&env).await?.1.writes() == 0);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_service_dropped_from_the_recipe_is_removed() {
    with_swarm("converge-drop", |env| async move {
        let pool = TestPool::new(&env, false);
        let spec = "  recipe: discourse\n  version: 1.0.0+3.2.1\n  \
                    composeFiles: [compose.yml, compose.sidekiq.yml]\n";
        pool.deployment("disc", spec);
        let (plans, _) = pool.apply(&env).await?;
        let stack = pool.stack("disc");
        assert!(steps(&plans).contains(&("create_service".into(), format!("{stack}_sidekiq"))));

        pool.deployment("disc", &spec.replace(", compose.sidekiq.yml", ""));
        let (plans, _) = pool.apply(&env).await?;
        assert_eq!(
            steps(&plans),
            [("remove_service".into(), format!("{stack}_sidekiq"))]
        );
        let left = docker(&[
            "service",
            "ls",
            "--filter",
            &format!("name={stack}_"),
            "--format",
            "{{.Name}}",
        ]);
        let mut left: Vec<&str> = left.lines().collect();
        left.sort();
        assert_eq!(left, [format!("{stack}_app"), format!("{stack}_db")]);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn park_and_unpark_keep_the_volume_data() {
    with_swarm("converge-park", |env| async move {
        let pool = TestPool::new(&env, false);
        let spec = "  recipe: bluesky-pds\n  version: 0.2.0+0.4.1\n";
        pool.deployment("pds", spec);
        pool.apply(&env).await?;
        let stack = pool.stack("pds");
        let service = format!("{stack}_app");
        converged(&env, &stack).await?;

        let token = env.unique("data");
        let addr = task_addr(&env, &service, 3000).await?;
        put_state(addr, &token)?;

        pool.deployment("pds", &format!("{spec}  state: parked\n"));
        let (plans, _) = pool.apply(&env).await?;
        assert_eq!(steps(&plans), [("remove_service".into(), service.clone())]);
        let volume = format!("{stack}_pds");
        docker(&["volume", "inspect", &volume]);

        pool.deployment("pds", spec);
        let (plans, _) = pool.apply(&env).await?;
        assert_eq!(steps(&plans), [("create_service".into(), service.clone())]);
        converged(&env, &stack).await?;
        let addr = task_addr(&env, &service, 3000).await?;
        let (status, body) = common::http::get(addr, "/state").map_err(anyhow::Error::msg)?;
        assert_eq!((status, body.as_str()), (200, token.as_str()));
        Ok(())
    })
    .await;
}

fn put_state(addr: SocketAddr, value: &str) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut last = String::new();
    for _ in 0..40 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                write!(
                    s,
                    "PUT /state HTTP/1.0\r\nContent-Length: {}\r\n\r\n{value}",
                    value.len()
                )?;
                let mut resp = String::new();
                s.read_to_string(&mut resp)?;
                anyhow::ensure!(
                    resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.0 200"),
                    "{resp}"
                );
                return Ok(());
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    anyhow::bail!("cannot reach {addr}: {last}")
}

#[tokio::test]
async fn out_of_band_change_is_planned_as_drift_and_undone() {
    with_swarm("converge-drift", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("kc", KEYCLOAK_V1);
        pool.apply(&env).await?;
        let service = format!("{}_app", pool.stack("kc"));
        docker(&[
            "service",
            "update",
            "--detach",
            "--env-add",
            "OOB=1",
            &service,
        ]);

        let plans = pool.plan(&env).await;
        assert_eq!(steps(&plans), [("update_service".into(), service.clone())]);
        assert_eq!(plans[0].drift.len(), 1, "{:?}", plans[0].drift);
        assert_eq!(plans[0].drift[0].field, "TaskTemplate.ContainerSpec.Env");
        assert!(plans[0].drift[0].live.contains("OOB=1"));

        pool.apply(&env).await?;
        let env_now = service_env(&service);
        assert!(!env_now.contains("OOB=1"), "{env_now}");
        assert!(pool.plan(&env).await.iter().all(|p| p.is_empty()));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_unmanaged_stack_with_the_same_names_is_never_touched() {
    with_swarm("converge-foreign", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("pds", "  recipe: bluesky-pds\n  version: 0.2.0+0.4.1\n");
        let stack = pool.stack("pds");
        // Someone deployed a stack of that name by hand.
        let dir = tempfile::tempdir()?;
        let compose = dir.path().join("compose.yml");
        std::fs::write(
            &compose,
            format!(
                "version: '3.8'\nservices:\n  app:\n    image: hearth-fixture:test\n    \
                 environment: [HAND=1]\n    deploy: {{labels: {{hearth.test: {}}}}}\n\
                 networks:\n  default:\n    labels: {{hearth.test: {}}}\n",
                env.test, env.test
            ),
        )?;
        docker(&[
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            compose.to_str().unwrap(),
            &stack,
        ]);
        let before = docker(&[
            "service",
            "inspect",
            &format!("{stack}_app"),
            "--format",
            "{{json .Spec}} {{.Version.Index}}",
        ]);

        let plans = pool.plan(&env).await;
        assert!(steps(&plans).is_empty(), "{:?}", steps(&plans));
        assert!(
            plans[0]
                .problems
                .iter()
                .any(|p| p.contains("not managed by hearth")),
            "{:?}",
            plans[0].problems
        );
        let (loaded, desired) = pool.render();
        let snap = env.client.snapshot().await?;
        let counts = env.client.counts();
        let mut ids = Ids::from_snapshot(&snap);
        for p in plan_pool(&desired, &loaded, &snap, None) {
            apply_plan(&env.client, &p, &mut ids, &|_| {}).await?;
        }
        assert_eq!(env.client.counts().since(&counts).writes(), 0);
        let after = docker(&[
            "service",
            "inspect",
            &format!("{stack}_app"),
            "--format",
            "{{json .Spec}} {{.Version.Index}}",
        ]);
        assert_eq!(before, after);
        docker(&["stack", "rm", &stack]);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_concurrent_writer_between_read_and_write_is_handled() {
    with_swarm("converge-race", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("kc", KEYCLOAK_V1);
        pool.apply(&env).await?;
        let service = format!("{}_app", pool.stack("kc"));
        pool.deployment(
            "kc",
            &(KEYCLOAK_V1.to_string() + "  env: {KC_ADMIN: root}\n"),
        );

        // hearth reads and plans...
        let (loaded, desired) = pool.render();
        let snap = env.client.snapshot().await?;
        let plans = plan_pool(&desired, &loaded, &snap, None);
        assert_eq!(steps(&plans), [("update_service".into(), service.clone())]);
        // ...someone else writes the service in between...
        docker(&[
            "service",
            "update",
            "--detach",
            "--label-add",
            "other.writer=1",
            &service,
        ]);
        // ...and hearth's write, carrying the stale version, is re-read and retried.
        let before = env.client.counts();
        let mut ids = Ids::from_snapshot(&snap);
        apply_plan(&env.client, &plans[0], &mut ids, &|_| {}).await?;
        let counts = env.client.counts().since(&before);
        assert_eq!(
            counts.requests.get("service_update"),
            Some(&2),
            "{counts:?}"
        );
        assert_eq!(
            counts.requests.get("service_inspect"),
            Some(&1),
            "{counts:?}"
        );
        let env_now = service_env(&service);
        assert!(env_now.contains("KC_ADMIN=root"), "{env_now}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn prune_removes_the_stack_but_keeps_volumes_and_data() {
    with_swarm("converge-prune", |env| async move {
        let pool = TestPool::new(&env, true);
        pool.deployment("pds", "  recipe: bluesky-pds\n  version: 0.2.0+0.4.1\n");
        pool.deployment("kc", KEYCLOAK_V1);
        pool.apply(&env).await?;
        let stack = pool.stack("pds");
        converged(&env, &stack).await?;
        let token = env.unique("data");
        put_state(
            task_addr(&env, &format!("{stack}_app"), 3000).await?,
            &token,
        )?;

        pool.remove_deployment("pds");
        let (plans, _) = pool.apply(&env).await?;
        assert_eq!(
            steps(&plans),
            [("remove_service".into(), format!("{stack}_app"))]
        );
        let volume = format!("{stack}_pds");
        docker(&["volume", "inspect", &volume]);
        // The data is still in the volume.
        let out = docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{volume}:/pds"),
            "hearth-fixture:test",
            "hearth-fixture",
            "state",
            "read",
            "/pds/state",
        ]);
        assert_eq!(out, token);
        // Without prune, a missing deployment is left alone.
        pool.write_pool(false);
        pool.remove_deployment("kc");
        let (plans, counts) = pool.apply(&env).await?;
        assert!(plans.is_empty() && counts.writes() == 0);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn old_config_versions_go_once_nothing_uses_them() {
    with_swarm("converge-configs", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment(
            "gitea",
            "  recipe: gitea\n  version: 3.6.0+1.24.2-rootless\n",
        );
        let (plans, _) = pool.apply(&env).await?;
        let config = steps(&plans)
            .into_iter()
            .find(|(k, _)| k == "create_config")
            .map(|(_, name)| name)
            .expect("a config is created");
        // Back to a version without the config: the service stops using it first...
        pool.deployment(
            "gitea",
            "  recipe: gitea\n  version: 3.5.3+1.24.2-rootless\n",
        );
        let (plans, _) = pool.apply(&env).await?;
        let stack = pool.stack("gitea");
        assert_eq!(
            steps(&plans),
            [("update_service".into(), format!("{stack}_app"))]
        );
        docker(&["config", "inspect", &config]);
        // ...and once nothing uses it, it goes.
        let (plans, _) = pool.apply(&env).await?;
        assert_eq!(steps(&plans), [("remove_config".into(), config.clone())]);
        let out = Command::new("docker")
            .args(["config", "inspect", &config])
            .output()?;
        assert!(!out.status.success());
        Ok(())
    })
    .await;
}

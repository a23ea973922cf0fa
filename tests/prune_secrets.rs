//! Prune keeps generated secrets, and a deployment removed and added back at once converges
//! (issue 18, items 3 and 5), on the real swarm:
//! - a deployment with a generated secret, an internal network and a volume runs; its secret's
//!   value is read inside the task (`/run/secrets/db_password`);
//! - it is removed from the manifests and the pool prunes (one apply), then added back (the next
//!   apply, right away: the network being removed may still be listed): the apply succeeds and the
//!   new task reads the same secret value;
//! - removed again and pruned, `hearth purge NAME` removes its secrets and lists its volume, which
//!   stays.

mod common;

use std::process::Command;
use std::time::Duration;

use common::pool::TestPool;
use common::recipes::git;
use common::swarm::{running_container, wait_for};
use common::{docker, with_swarm};

use common::{hearth, text};

/// A recipe `keepapp`: one service with a generated secret, an internal network and a volume.
fn add_recipe(pool: &TestPool) {
    let repo = pool.repos.path().join("keepapp");
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::write(
        repo.join("compose.yml"),
        "version: \"3.8\"\nservices:\n  app:\n    image: hearth-fixture:test\n    environment:\n      \
         - FIXTURE_HTTP_PORT=8080\n    secrets: [db_password]\n    networks: [internal]\n    \
         volumes: [\"data:/data\"]\nsecrets:\n  db_password:\n    external: true\n    \
         name: ${STACK_NAME}_db_password_v1\nnetworks:\n  internal:\nvolumes:\n  data:\n",
    )
    .expect("write compose");
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "keepapp"]);
    git(&repo, &["tag", "1.0.0+1"]);
}

const SPEC: &str = "  recipe: keepapp\n  version: 1.0.0+1\n  \
                    secrets: {db_password: {generate: {length: 32}}}\n";

/// The secret's value inside the running task of `service`.
async fn secret_value(env: &common::TestEnv, service: &str) -> anyhow::Result<String> {
    wait_for(
        "the secret inside the task",
        Duration::from_secs(90),
        || async {
            let c = running_container(env, service, Duration::from_secs(5))
                .await
                .map_err(|e| e.to_string())?;
            let out = Command::new("docker")
                .args(["exec", &c, "cat", "/run/secrets/db_password"])
                .output()
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_keeps_secrets_and_a_re_added_deployment_reads_the_same_value() {
    with_swarm("prune-secrets", |env| async move {
        let pool = TestPool::new(&env, true);
        add_recipe(&pool);
        pool.deployment("keep", SPEC);
        let dir = pool.path().to_str().unwrap().to_string();
        let stack = pool.stack("keep");
        let service = format!("{stack}_app");
        let secret = format!("{stack}_db_password_v1");

        let out = hearth(&["apply", "-f", &dir, "--wait", "--timeout", "90s"]);
        anyhow::ensure!(out.status.success(), "{}", text(&out));
        let first = secret_value(&env, &service).await?;
        anyhow::ensure!(first.len() == 32, "{first:?}");

        // Removed and pruned: services and network go, the secret stays.
        pool.remove_deployment("keep");
        let out = hearth(&["apply", "-f", &dir]);
        let t = text(&out);
        anyhow::ensure!(out.status.success(), "{t}");
        anyhow::ensure!(
            t.contains("remove_network") && !t.contains("remove_secret"),
            "{t}"
        );
        let ls = docker(&["secret", "ls", "--format", "{{.Name}}"]);
        anyhow::ensure!(ls.lines().any(|l| l == secret), "kept: {ls}");

        // Added back in the very next apply.
        pool.deployment("keep", SPEC);
        let start = std::time::Instant::now();
        let out = hearth(&["apply", "-f", &dir, "--wait", "--timeout", "90s"]);
        let t = text(&out);
        println!("re-add apply ({:?}):\n{t}", start.elapsed());
        anyhow::ensure!(out.status.success(), "{t}");
        anyhow::ensure!(!t.contains("create_secret"), "the secret is reused: {t}");
        let again = secret_value(&env, &service).await?;
        anyhow::ensure!(again == first, "same value after prune and re-add");

        // Purge: refused while declared; then removes the secret and lists the volume.
        let out = hearth(&["purge", "keep", "-f", &dir]);
        anyhow::ensure!(out.status.code() == Some(1), "{}", text(&out));
        pool.remove_deployment("keep");
        let out = hearth(&["apply", "-f", &dir]);
        anyhow::ensure!(out.status.success(), "{}", text(&out));
        let out = hearth(&["purge", "keep", "-f", &dir]);
        let t = text(&out);
        println!("purge:\n{t}");
        anyhow::ensure!(out.status.success(), "{t}");
        anyhow::ensure!(t.contains(&format!("remove_secret {secret}")), "{t}");
        anyhow::ensure!(
            t.contains(&format!("  {stack}_data")),
            "the volume is listed: {t}"
        );
        let ls = docker(&["secret", "ls", "--format", "{{.Name}}"]);
        anyhow::ensure!(!ls.lines().any(|l| l == secret), "purged: {ls}");
        let vols = docker(&["volume", "ls", "-q"]);
        anyhow::ensure!(vols.lines().any(|l| l == format!("{stack}_data")), "kept");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_never_says_all_converged_after_a_failed_step() {
    with_swarm("apply-failed-step", |env| async move {
        let pool = TestPool::new(&env, false);
        add_recipe(&pool);
        // Plans fine, fails at apply: the secret file is read only then.
        let missing = pool.path().join("no-such-secret-file");
        pool.deployment(
            "broken",
            &format!(
                "  recipe: keepapp\n  version: 1.0.0+1\n  secrets: {{db_password: {{file: {}}}}}\n",
                missing.display()
            ),
        );
        pool.deployment("site", "  recipe: static-site\n  version: 1.0.0+1.27.0\n");
        let dir = pool.path().to_str().unwrap().to_string();
        let out = hearth(&["apply", "-f", &dir, "--wait", "--timeout", "90s"]);
        let t = text(&out);
        println!("{t}");
        anyhow::ensure!(out.status.code() == Some(1), "{t}");
        anyhow::ensure!(t.contains("create_secret") && t.contains("failed"), "{t}");
        anyhow::ensure!(!t.contains("all services converged"), "{t}");
        anyhow::ensure!(t.contains("NOT everything (a step failed: broken)"), "{t}");
        Ok(())
    })
    .await;
}

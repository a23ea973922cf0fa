//! hearth deployed as a Swarm stack from `manifests/hearth/` with `docker stack deploy`, running the
//! offline-built image (`scripts/image`, tagged `hearth:test`): it converges a fixture pool (its
//! manifests from a Swarm config, its recipe repos bind-mounted read-only) and serves `/metrics` and
//! the API on a host-mode published port (the API and page only with the bearer token from the
//! stack's `api_token` secret, `/metrics` open); the image's HEALTHCHECK turns healthy and the
//! process runs as the non-root user. Everything (the hearth stack, its volumes, the pool's stacks) is removed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{free_port, get, get_with_token};
use common::pool::TestPool;
use common::with_swarm;
use hearth::report::api::DeploymentList;

const TEST: &str = "self-deploy";
/// Marks the hearth controller service of this test, so a killed run's controller is stopped before
/// the pool it keeps converging is cleaned up.
const ROLE_LABEL: &str = "hearth.self-deploy=controller";

const DEPLOYMENTS: &[(&str, &str)] = &[
    (
        "site",
        "  recipe: static-site\n  version: 1.0.0+1.27.0\n  role: plain\n",
    ),
    (
        "kc",
        "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  role: provider\n  \
         secrets: {admin_password: {generate: {}}}\n",
    ),
];

fn image() -> String {
    std::env::var("HEARTH_SELF_DEPLOY_IMAGE").unwrap_or_else(|_| "hearth:test".into())
}

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Runs a command; returns (success, stdout + stderr).
fn run(cmd: &mut Command) -> (bool, String) {
    match cmd.output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, format!("{cmd:?}: {e}")),
    }
}

fn docker(args: &[&str]) -> (bool, String) {
    run(Command::new("docker").args(args))
}

/// Removes a hearth stack and waits until its containers are gone (so it stops converging the
/// pool before the pool is cleaned up), then its volumes.
fn remove_stack(stack: &str) {
    let _ = docker(&["stack", "rm", stack]);
    let filter = format!("label=com.docker.stack.namespace={stack}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let (_, out) = docker(&["ps", "-aq", "--filter", &filter]);
        if out.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for v in ["snapshots", "cache"] {
        let _ = docker(&["volume", "rm", "-f", &format!("{stack}_{v}")]);
    }
}

/// Stops controllers a killed earlier run left behind (they would recreate the pool's services
/// while the cleanup removes them).
fn stop_leftover_controllers() {
    let (_, out) = docker(&[
        "service",
        "ls",
        "--filter",
        &format!("label={ROLE_LABEL}"),
        "--format",
        "{{.Label \"com.docker.stack.namespace\"}}",
    ]);
    for stack in out.lines().filter(|l| !l.trim().is_empty()) {
        remove_stack(stack.trim());
    }
}

/// Removes the stack when dropped, also when the test fails (before `with_swarm` cleans up).
struct StackGuard(String);

impl Drop for StackGuard {
    fn drop(&mut self) {
        remove_stack(&self.0);
    }
}

/// The overlay the test adds to the recipe: `hearth.test` labels on every object (and the role
/// label on the service), short controller intervals. Top-level entries are repeated whole.
fn test_overlay(stack: &str) -> String {
    format!(
        r#"version: "3.8"
services:
  app:
    command: ["run", "-f", "/etc/hearth/manifests", "--resync", "5s", "--poll", "1s", "--grace", "5s"]
    # The image's HEALTHCHECK command, checked more often than its 30s default.
    healthcheck:
      interval: 3s
    deploy:
      labels:
        - "hearth.test={TEST}"
        - "{ROLE_LABEL}"
configs:
  manifests:
    name: {stack}_manifests_${{MANIFESTS_VERSION}}
    file: ${{MANIFESTS_FILE}}
    labels: {{hearth.test: {TEST}}}
volumes:
  snapshots:
    labels: {{hearth.test: {TEST}}}
  cache:
    labels: {{hearth.test: {TEST}}}
networks:
  metrics:
    name: {stack}_metrics
    driver: overlay
    attachable: true
    labels: {{hearth.test: {TEST}}}
"#
    )
}

/// The pool's manifests as one multi-document file (it becomes one Swarm config).
fn manifests(pool: &TestPool) -> String {
    let mut text = format!(
        "apiVersion: hearth/v1\nkind: Pool\nmetadata: {{name: {}}}\nspec:\n  domain: {}\n  \
         recipes: /srv/recipes\n  labels: {{hearth.test: {TEST}}}\n  defaults: {{prune: false}}\n",
        pool.domain.replace('.', "-"),
        pool.domain,
    );
    for (name, spec) in DEPLOYMENTS {
        text.push_str(&format!(
            "---\napiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n{spec}"
        ));
    }
    text
}

fn socket_gid() -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/var/run/docker.sock")
        .map(|m| m.gid().to_string())
        .expect("stat /var/run/docker.sock")
}

/// What went on inside the controller, for a failure message.
fn diagnose(stack: &str) -> String {
    let service = format!("{stack}_app");
    let (_, ps) = docker(&["service", "ps", "--no-trunc", &service]);
    let (_, logs) = docker(&["service", "logs", "--raw", "--tail", "40", &service]);
    format!("docker service ps:\n{ps}\nlast log lines:\n{logs}")
}

/// The running task's container id.
fn container_of(stack: &str) -> Option<String> {
    let (_, out) = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={stack}_app"),
    ]);
    out.lines().next().map(|s| s.trim().to_string())
}

#[tokio::test]
async fn hearth_deploys_itself_as_a_stack_and_converges_a_pool() {
    let image = image();
    let (present, _) = docker(&["image", "inspect", &image]);
    assert!(
        present,
        "no image {image}: build it with scripts/image (scripts/test does) or set \
         HEARTH_SELF_DEPLOY_IMAGE"
    );
    stop_leftover_controllers();
    with_swarm(TEST, |env| async move {
        let pool = TestPool::new(&env, false);
        // The container user (uid 10001) reads the recipe repos: the temp dir is 0700.
        std::fs::set_permissions(
            pool.repos.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let work = tempfile::tempdir()?;
        let manifests_file = work.path().join("manifests.yml");
        std::fs::write(&manifests_file, manifests(&pool))?;
        let stack = env.unique("hearth").replace('-', "");
        let overlay = work.path().join("compose.test.yml");
        std::fs::write(&overlay, test_overlay(&stack))?;
        let port = free_port();
        // The API token, as the recipe expects it: an external secret (labelled for the cleanup).
        let token = env.unique("token");
        let token_file = work.path().join("api_token");
        std::fs::write(&token_file, &token)?;
        let (ok, out) = docker(&[
            "secret",
            "create",
            "--label",
            &format!("hearth.test={TEST}"),
            &format!("{stack}_api_token_v1"),
            token_file.to_str().unwrap_or_default(),
        ]);
        anyhow::ensure!(ok, "docker secret create: {out}");

        let recipe = repo_dir().join("manifests/hearth");
        let started = Instant::now();
        let guard = StackGuard(stack.clone());
        let (ok, out) = run(Command::new("docker")
            .current_dir(&recipe)
            .env("STACK_NAME", &stack)
            .env("IMAGE", &image)
            .env("DOCKER_GID", socket_gid())
            .env("MANIFESTS_FILE", &manifests_file)
            .env("MANIFESTS_VERSION", "v1")
            .env("HOST_PORT", port.to_string())
            .env("RECIPES_DIR", pool.repos.path())
            .env("RUST_LOG", "info")
            .args([
                "stack",
                "deploy",
                "--resolve-image",
                "never",
                "-c",
                "compose.yml",
                "-c",
                "compose.host-port.yml",
                "-c",
                "compose.recipes.yml",
                "-c",
            ])
            .arg(&overlay)
            .arg(&stack));
        anyhow::ensure!(ok, "docker stack deploy failed:\n{out}");

        // Every deployment of the pool Ready, as the containerised hearth reports it.
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(240);
        let list = loop {
            let last = match get_with_token(addr, "/api/v1/deployments", Some(&token)) {
                Ok((200, body)) => match serde_json::from_str::<DeploymentList>(&body) {
                    Ok(list)
                        if list.deployments.len() == DEPLOYMENTS.len()
                            && list.deployments.iter().all(|d| d.phase == "Ready") =>
                    {
                        break list;
                    }
                    Ok(list) => list
                        .deployments
                        .iter()
                        .map(|d| format!("{} {} {} {}", d.name, d.phase, d.reason, d.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                    Err(e) => format!("bad JSON: {e}: {body}"),
                },
                Ok((status, body)) => format!("HTTP {status}: {body}"),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                anyhow::bail!(
                    "pool not Ready after {:?}; last: {last}\n{}",
                    started.elapsed(),
                    diagnose(&stack)
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        println!(
            "pool Ready through the containerised hearth {:?} after docker stack deploy",
            started.elapsed()
        );
        // Its stacks are live on the swarm, labelled as the pool says.
        for d in &list.deployments {
            let (_, services) = docker(&[
                "service",
                "ls",
                "--filter",
                &format!("label=com.docker.stack.namespace={}", d.stack),
                "--filter",
                &format!("label=hearth.test={TEST}"),
                "-q",
            ]);
            anyhow::ensure!(
                !services.trim().is_empty(),
                "{}: no services of stack {} on the swarm",
                d.name,
                d.stack
            );
        }

        // The API and page need the token; /metrics on the same port is open.
        for path in ["/api/v1/deployments", "/"] {
            let (status, _) = get(addr, path).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(status == 401, "{path} without the token: HTTP {status}");
        }
        let (status, metrics) = get(addr, "/metrics").map_err(anyhow::Error::msg)?;
        anyhow::ensure!(status == 200, "/metrics: HTTP {status}");
        for (name, _) in DEPLOYMENTS {
            let line = format!("hearth_deployment_ready{{deployment=\"{name}\"}} 1");
            anyhow::ensure!(metrics.contains(&line), "no {line:?} in /metrics");
        }
        anyhow::ensure!(metrics.contains("hearth_build_info"), "no build info");

        // Non-root, with the socket's group; the image's HEALTHCHECK (`hearth healthcheck`)
        // reports healthy.
        let id = container_of(&stack).ok_or_else(|| anyhow::anyhow!("no hearth container"))?;
        let (_, ids) = docker(&["exec", &id, "id", "-u"]);
        anyhow::ensure!(ids.trim() == "10001", "runs as uid {ids:?}, not 10001");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (_, health) = docker(&["inspect", "--format", "{{.State.Health.Status}}", &id]);
            if health.trim() == "healthy" {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline && health.trim() != "unhealthy",
                "container health {health:?} after {:?}",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        println!("healthy {:?} after deploy", started.elapsed());
        drop(guard);
        Ok(())
    })
    .await;
}

#[test]
fn overlay_and_manifests_name_what_the_recipe_declares() {
    // The test overlay must repeat the recipe's top-level objects (compose merges them whole).
    let recipe =
        std::fs::read_to_string(repo_dir().join("manifests/hearth/compose.yml")).expect("read");
    let overlay = test_overlay("s");
    for key in ["manifests:", "snapshots:", "cache:", "metrics:"] {
        assert!(recipe.contains(key) && overlay.contains(key), "{key}");
    }
}

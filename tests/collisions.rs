//! Collisions with stacks hearth does not own, on the real swarm (issue 19): foreign stacks made
//! with `docker stack deploy` (compose files written here, `hearth-fixture:test`) beside hearth
//! deployments. A foreign `db` on `proxy` beside a deployment that resolves `db`, and a foreign
//! router for a deployment's host, are `Conflict` conditions naming the foreign stack (the phase
//! stays Ready; the metric counts them); `hearth validate` warns about them and makes a held stack
//! name an error (`--offline` does not look); removing the foreign stacks clears the conflicts on
//! the next pass that looks at the deployment.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::controller::start;
use common::fidelity::{StackGuard, stale_stacks};
use common::pool::TestPool;
use common::{docker, with_swarm};
use hearth::controller::DeploymentStatus;

/// Foreign stacks of this test are named `hcol<...>_test` (found again after a killed run).
const PREFIX: &str = "hcol";

fn conflicts(st: &DeploymentStatus) -> Vec<String> {
    st.conditions
        .iter()
        .filter(|c| c.kind == "Conflict" && c.status)
        .map(|c| format!("{}: {}", c.reason, c.message))
        .collect()
}

/// Removes the foreign stacks a killed earlier run left (`<prefix>…_test`).
fn remove_stale(prefix: &str) {
    let _ = StackGuard::new(
        &stale_stacks(prefix)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .remove();
}

/// A stack of one service `app` (and its default network), labelled for the test's cleanup.
fn one_app(test: &str) -> String {
    format!(
        "version: \"3.8\"\nservices:\n  app:\n    image: hearth-fixture:test\n    \
         deploy:\n      labels: {{hearth.test: {test}}}\n\
         networks:\n  default:\n    labels: {{hearth.test: {test}}}\n"
    )
}

/// `docker stack deploy`s `compose` as `stack`.
fn deploy(dir: &std::path::Path, stack: &str, compose: &str) -> anyhow::Result<()> {
    let file = dir.join(format!("{stack}.yml"));
    std::fs::write(&file, compose)?;
    let out = Command::new("docker")
        .args(["stack", "deploy", "--resolve-image", "never", "-c"])
        .arg(&file)
        .arg(stack)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker stack deploy {stack}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn hearth(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .expect("run hearth");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn foreign_aliases_and_routers_are_conflicts_until_the_foreign_stacks_go() {
    // Leftovers of a killed run.
    remove_stale(PREFIX);
    with_swarm("collisions", |env| async move {
        let pool = TestPool::new(&env, false);
        // discourse-like: `app` on proxy resolves its `db`; static-site: a router for its host.
        pool.deployment("forum", "  recipe: discourse\n  version: 1.0.0+3.2.1\n");
        pool.deployment("site", "  recipe: static-site\n  version: 1.0.0+1.27.0\n");
        let site_host = format!("site.{}", pool.domain);
        let tag = env.unique(PREFIX).replace('-', "");
        let (dbs, router) = (format!("{tag}db_test"), format!("{tag}rt_test"));
        let guard = StackGuard::new(&[&dbs, &router]);
        let work = tempfile::tempdir()?;
        // `docker stack deploy` gives `db` the bare alias `db` on proxy, as abra does.
        deploy(
            work.path(),
            &dbs,
            &format!(
                "version: \"3.8\"\nservices:\n  db:\n    image: hearth-fixture:test\n    \
                 environment: [FIXTURE_HTTP_PORT=5432]\n    networks: [proxy]\n    \
                 deploy:\n      labels: {{hearth.test: {}}}\n\
                 networks:\n  proxy:\n    external: true\n",
                env.test
            ),
        )?;
        deploy(
            work.path(),
            &router,
            &format!(
                "version: \"3.8\"\nservices:\n  web:\n    image: hearth-fixture:test\n    \
                 networks: [proxy]\n    deploy:\n      labels:\n        \
                 hearth.test: {}\n        traefik.enable: \"true\"\n        \
                 traefik.http.routers.steal.rule: \"Host(`{site_host}`) || Host(`other.example`)\"\n\
                 networks:\n  proxy:\n    external: true\n",
                env.test
            ),
        )?;

        // validate and plan, against the live swarm: warnings naming the foreign stacks.
        let file = pool.path().to_str().unwrap().to_string();
        let (code, stdout, stderr) = hearth(&["validate", "-f", &file]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let warned = |s: &str| {
            s.lines().any(|l| {
                l.contains("warning: AliasShadowed")
                    && l.contains(&format!("stack \"{dbs}\""))
                    && l.contains("\"db\"")
                    && l.contains("proxy")
            }) && s.lines().any(|l| {
                l.contains("warning: HostCollision")
                    && l.contains(&format!("stack \"{router}\""))
                    && l.contains(&site_host)
            })
        };
        assert!(warned(&stdout), "{stdout}");
        let (_, stdout, _) = hearth(&["validate", "--offline", "-f", &file]);
        assert!(!stdout.contains("AliasShadowed"), "{stdout}");
        let (code, _, stderr) = hearth(&["plan", "-f", &file]);
        assert_eq!(code, 0, "{stderr}");
        assert!(warned(&stderr), "{stderr}");

        let hearth_run = start(&pool);
        let t = Instant::now();
        let forum = hearth_run
            .wait("forum", "Ready with a conflict", Duration::from_secs(120), |s| {
                s.phase == "Ready" && !conflicts(s).is_empty()
            })
            .await?;
        println!("forum Ready with {:?} after {:?}", conflicts(&forum), t.elapsed());
        let c = conflicts(&forum);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].starts_with("AliasShadowed: "), "{c:?}");
        assert!(c[0].contains(&format!("stack \"{dbs}\" (service {dbs}_db)")), "{c:?}");
        assert!(c[0].contains("\"db\"") && c[0].contains("network proxy"), "{c:?}");
        let site = hearth_run
            .wait("site", "Ready with a conflict", Duration::from_secs(120), |s| {
                s.phase == "Ready" && !conflicts(s).is_empty()
            })
            .await?;
        let c = conflicts(&site);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].starts_with("HostCollision: "), "{c:?}");
        assert!(c[0].contains(&format!("stack \"{router}\"")), "{c:?}");
        assert!(c[0].contains("router steal") && c[0].contains(&site_host), "{c:?}");
        // The metric counts them.
        let text = hearth::report::metrics::Metrics::new(hearth_run.shared.clone()).render();
        assert!(
            text.contains("hearth_deployment_conflicts{deployment=\"forum\"} 1"),
            "{text}"
        );

        // The foreign stacks go: the next pass that looks clears the conflicts.
        guard.remove().map_err(anyhow::Error::msg)?;
        let removed = std::time::SystemTime::now();
        for name in ["forum", "site"] {
            let st = hearth_run
                .wait(name, "looked at after the removal", Duration::from_secs(60), |s| {
                    s.last_reconcile.is_some_and(|t| t > removed)
                })
                .await?;
            assert!(
                conflicts(&st).is_empty(),
                "{name} still reports {:?} on the first pass after the removal",
                conflicts(&st)
            );
            assert_eq!(st.phase, "Ready");
        }
        let text = hearth::report::metrics::Metrics::new(hearth_run.shared.clone()).render();
        assert!(
            text.contains("hearth_deployment_conflicts{deployment=\"forum\"} 0"),
            "{text}"
        );
        hearth_run.stop().await
    })
    .await;
}

#[tokio::test]
async fn a_stack_name_held_by_a_foreign_stack_is_an_error_of_validate_and_a_conflict() {
    remove_stale(PREFIX);
    with_swarm("collisions-held", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("site", "  recipe: static-site\n  version: 1.0.0+1.27.0\n");
        let stack = pool.stack("site");
        let file = pool.path().to_str().unwrap().to_string();
        let (code, stdout, stderr) = hearth(&["validate", "-f", &file]);
        assert_eq!(code, 0, "before: {stdout}{stderr}");
        // Someone deployed by hand under the name hearth would use.
        let work = tempfile::tempdir()?;
        let guard = StackGuard::new(&[&stack]);
        deploy(work.path(), &stack, &one_app(&env.test))?;
        let outcome = async {
            let (code, stdout, stderr) = hearth(&["validate", "-f", &file]);
            assert_eq!(code, 1, "{stdout}{stderr}");
            assert!(
                stdout.contains(&format!("stack {stack:?}"))
                    && stdout.contains("already exists on the swarm"),
                "{stdout}"
            );
            let (code, _, _) = hearth(&["validate", "--offline", "-f", &file]);
            assert_eq!(code, 0);
            // The controller reports it (and plans nothing over the foreign service).
            let hearth_run = start(&pool);
            let st = hearth_run
                .wait(
                    "site",
                    "a StackHeld conflict",
                    Duration::from_secs(60),
                    |s| conflicts(s).iter().any(|c| c.starts_with("StackHeld")),
                )
                .await?;
            let c = conflicts(&st);
            assert!(
                c.iter()
                    .any(|c| c.contains(&format!("service {stack}_app"))),
                "{c:?}"
            );
            assert!(
                docker(&["service", "ls", "--format", "{{.Name}}"])
                    .lines()
                    .any(|l| l == format!("{stack}_app"))
            );
            hearth_run.stop().await
        }
        .await;
        guard.remove().map_err(anyhow::Error::msg)?;
        outcome
    })
    .await;
}

/// The docker service `name`'s ID and version index.
fn service_version(name: &str) -> String {
    docker(&[
        "service",
        "inspect",
        "--format",
        "{{.ID}} {{.Version.Index}}",
        name,
    ])
    .trim()
    .to_string()
}

#[tokio::test]
async fn a_canonical_steps_aside_from_a_live_warm_stack_and_stays_there() {
    // Leftovers of a killed run: foreign stacks at the warm name of this test's recipe.
    remove_stale("warm-static-site_p");
    with_swarm("collisions-canon", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment(
            "site",
            "  recipe: static-site\n  version: 1.0.0+1.27.0\n  role: canonical\n",
        );
        let warm = format!("warm-static-site_{}", pool.domain.replace('.', "_"));
        assert_eq!(pool.stack("site"), warm, "offline, the warm name");
        let aside = format!("warm-canon-static-site_{}", pool.domain.replace('.', "_"));
        // Someone already serves the warm name (abra, or a provider hearth does not manage).
        let work = tempfile::tempdir()?;
        let guard = StackGuard::new(&[&warm]);
        deploy(work.path(), &warm, &one_app(&env.test))?;
        let foreign_service = format!("{warm}_app");
        let before = service_version(&foreign_service);
        let file = pool.path().to_str().unwrap().to_string();
        let outcome = async {
            // validate and plan name it from the swarm: no held-stack error, a note saying why.
            let (code, stdout, stderr) = hearth(&["validate", "-f", &file]);
            assert_eq!(code, 0, "{stdout}{stderr}");
            assert!(
                stderr.contains(&format!(
                    "note: site is at warm-canon-static-site.{}",
                    pool.domain
                )) && stderr.contains(&format!("stack {warm:?}")),
                "{stderr}"
            );
            let (_, stdout, stderr) = hearth(&["plan", "-f", &file]);
            assert!(stdout.contains(&aside), "{stdout}{stderr}");
            assert!(!stdout.contains(&format!("{warm}_")), "{stdout}");

            let hearth_run = start(&pool);
            let st = hearth_run
                .wait("site", "Ready", Duration::from_secs(120), |s| {
                    s.phase == "Ready"
                })
                .await?;
            assert_eq!(st.stack, aside);
            assert_eq!(st.domain, format!("warm-canon-static-site.{}", pool.domain));
            assert!(conflicts(&st).is_empty(), "{:?}", conflicts(&st));
            // The foreign stack is untouched: same service, same version.
            assert_eq!(service_version(&foreign_service), before);

            // The foreign stack goes: the canonical stays where it was created.
            guard.remove().map_err(anyhow::Error::msg)?;
            let removed = std::time::SystemTime::now();
            let st = hearth_run
                .wait(
                    "site",
                    "looked at after the removal",
                    Duration::from_secs(60),
                    |s| s.last_reconcile.is_some_and(|t| t > removed),
                )
                .await?;
            assert_eq!(st.stack, aside);
            assert_eq!(
                st.phase, "Ready",
                "{} {}: {}",
                st.phase, st.reason, st.message
            );
            hearth_run.stop().await?;
            let names = docker(&["service", "ls", "--format", "{{.Name}}"]);
            assert!(
                !names.lines().any(|l| l.starts_with(&format!("{warm}_"))),
                "{names}"
            );
            // A plan from the CLI agrees: nothing to move, nothing to do.
            let (code, stdout, stderr) = hearth(&["plan", "--detailed-exitcode", "-f", &file]);
            assert_eq!(code, 0, "{stdout}{stderr}");
            anyhow::Ok(())
        }
        .await;
        let removed = guard.remove().map_err(anyhow::Error::msg);
        outcome.and(removed)
    })
    .await;
}

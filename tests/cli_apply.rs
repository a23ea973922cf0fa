//! `hearth plan` and `hearth apply` as a user runs them: exit codes, `--wait` success, and a
//! `--wait` timeout that names the stuck service and why.

mod common;

use common::pool::TestPool;
use common::with_swarm;

use common::{hearth, text};

#[tokio::test]
async fn plan_exit_codes_and_apply_wait() {
    with_swarm("cli-apply", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment(
            "kc",
            "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  \
             secrets: {admin_password: {generate: {}}}\n",
        );
        let dir = pool.path().to_str().unwrap().to_string();
        let out = hearth(&["plan", "-f", &dir, "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("+ create_service"), "{}", text(&out));

        let out = hearth(&["plan", "-f", &dir, "-o", "json"]);
        let plans: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        assert_eq!(plans[0]["steps"].as_array().map(|s| s.len()), Some(3));

        let out = hearth(&["apply", "-f", &dir, "--wait", "--timeout", "90s"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("create_service"), "{}", text(&out));
        assert!(
            text(&out).contains("all services converged"),
            "{}",
            text(&out)
        );

        let out = hearth(&["plan", "-f", &dir, "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("no changes"));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn apply_wait_names_the_stuck_service() {
    with_swarm("cli-apply-stuck", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment(
            "gitea",
            "  recipe: gitea\n  version: 3.6.0+1.24.2-rootless\n",
        );
        let dir = pool.path().to_str().unwrap().to_string();
        let out = hearth(&["apply", "-f", &dir, "--wait", "--timeout", "20s"]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{t}");
        let service = format!("{}_app", pool.stack("gitea"));
        assert!(
            t.contains(&format!(
                "not converged after 20s:\n  {service}: 0/1 tasks running"
            )),
            "{t}"
        );
        assert!(
            t.contains("non-zero exit (2)"),
            "the crash's exit code is named: {t}"
        );
        Ok(())
    })
    .await;
}

/// A service with a local volume on this one-node swarm: `apply --wait` ends converged in
/// hearth's own terms (no pin: one node cannot make one matter), so the plan right after is clean.
#[tokio::test]
async fn apply_wait_then_plan_is_clean_for_a_volume_service() {
    with_swarm("cli-apply-volume", |env| async move {
        let nodes = common::docker(&["node", "ls", "-q"]);
        anyhow::ensure!(nodes.lines().count() == 1, "needs the one-node swarm: {nodes}");
        let pool = TestPool::new(&env, false);
        pool.deployment("bsky", "  recipe: bluesky-pds\n  version: 0.2.0+0.4.1\n");
        let dir = pool.path().to_str().unwrap().to_string();
        let out = hearth(&["apply", "-f", &dir, "--wait", "--timeout", "90s"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let out = hearth(&["plan", "-f", &dir, "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let service = format!("{}_app", pool.stack("bsky"));
        let mounts = common::docker(&[
            "service",
            "inspect",
            &service,
            "--format",
            "{{len .Spec.TaskTemplate.ContainerSpec.Mounts}} {{index .Spec.Labels \"hearth.pin-node\"}}",
        ]);
        let mut parts = mounts.split_whitespace();
        assert_ne!(parts.next(), Some("0"), "the service mounts a volume");
        assert_eq!(parts.next(), None, "not pinned on one node: {mounts}");
        // And a pass later (when the first pin would have come) still nothing.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let out = hearth(&["plan", "-f", &dir, "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        Ok(())
    })
    .await;
}

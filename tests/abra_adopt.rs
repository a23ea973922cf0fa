//! Taking over what abra runs, on the real swarm: a stack deployed exactly as `abra app deploy`
//! does (the recipe at its tag, the app env file, `STACK_NAME`, a secret made by hand beforehand),
//! then `hearth import` and `hearth apply`. Nothing restarts: the same service, task and container
//! IDs, the same secret ID, the volume's data kept; hearth's labels on the services and secrets; a
//! clean second plan. Without `adopt: true` the stack is still refused. `--restart` then applies
//! the deferred changes and the data survives that too; abra deploying the app again makes it
//! foreign again, and hearth adopts it again without a restart.

mod common;

use std::time::Duration;

use common::abra::{
    StackGuard, deploy_abra_app, docker_try, hearth, import_labelled, inspect, running_tasks, text,
};
use common::{docker, with_swarm};

const PATTERN: &str = "_adopt_abra_test";

#[tokio::test]
async fn abra_stack_is_adopted_without_restarting_anything() {
    with_swarm("abra-adopt", |env| async move {
        let _guard = StackGuard::new(PATTERN);
        let app = deploy_abra_app(&env.unique("aa"), "adopt.abra.test");
        let abra = &app.abra;
        let (domain, stack) = (app.domain.clone(), app.stack.clone());
        let (service, service_id, tasks) = (
            app.service.clone(),
            app.service_id.clone(),
            app.tasks.clone(),
        );
        let (container, db_secret) = (app.container.clone(), app.db_secret.clone());
        let app_env = app.app_env.clone();

        // Import: one Pool, one Deployment; idempotent; never overwrites without --force.
        let out_dir = tempfile::tempdir()?;
        let out = out_dir.path().to_str().unwrap().to_string();
        let abra_dir = abra.path().to_str().unwrap().to_string();
        let import = |extra: &[&str]| {
            let mut args = vec![
                "import",
                "--abra-dir",
                &abra_dir,
                "--server",
                "srv.example.org",
                "--output-dir",
                &out,
            ];
            args.extend_from_slice(extra);
            hearth(&args)
        };
        let o = import(&[]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let name = domain.replace('.', "-");
        let dep_file = out_dir.path().join(format!("{name}.yml"));
        let manifest = std::fs::read_to_string(&dep_file)?;
        assert!(
            manifest.contains(&format!(
                "version: \"1.0.0+1\"  # the live stack's coop-cloud.{stack}.version label"
            )),
            "{manifest}"
        );
        assert!(manifest.contains("adopt: true"), "{manifest}");
        assert!(
            manifest.contains("APP_GREETING: \"hi-from-abra\""),
            "{manifest}"
        );
        assert!(manifest.contains("smtp_password: existing"), "{manifest}");
        let o = import(&[]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(text(&o).contains("unchanged"), "{}", text(&o));
        // Label everything hearth touches for the test's cleanup (an edit of the written pool).
        let pool_file = out_dir.path().join("pool.yml");
        let mut pool = std::fs::read_to_string(&pool_file)?;
        pool.push_str(&format!("  labels: {{hearth.test: {}}}\n", env.test));
        std::fs::write(&pool_file, &pool)?;
        let o = import(&[]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("--force"), "{}", text(&o));
        assert_eq!(std::fs::read_to_string(&pool_file)?, pool);

        // Without adopt: true the foreign stack stays refused.
        let refused = tempfile::tempdir()?;
        std::fs::write(refused.path().join("pool.yml"), &pool)?;
        std::fs::write(
            refused.path().join("d.yml"),
            manifest.replace("adopt: true", "adopt: false"),
        )?;
        let o = hearth(&["plan", "-f", refused.path().to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("not managed by hearth"), "{}", text(&o));

        // Adopt.
        let o = hearth(&["plan", "-f", &out]);
        println!("first plan:\n{}", text(&o));
        assert!(text(&o).contains("label_secret"), "{}", text(&o));
        let o = hearth(&["apply", "-f", &out]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));

        // Nothing restarted.
        assert_eq!(inspect("service", &service, "{{.ID}}"), service_id);
        assert_eq!(common::abra::all_tasks(&service), tasks);
        assert_eq!(running_tasks(&service, Duration::from_secs(5)), tasks);
        assert_eq!(
            docker(&["exec", &container, "cat", "/data/marker"]).trim(),
            "kept"
        );
        // Same secret, now hearth's; hearth's labels on the service.
        let db = format!("{stack}_db_password_v1");
        assert_eq!(inspect("secret", &db, "{{.ID}}"), db_secret);
        let managed = "{{index .Spec.Labels \"hearth.managed-by\"}}";
        assert_eq!(inspect("secret", &db, managed), "hearth");
        assert_eq!(inspect("service", &service, managed), "hearth");
        assert_eq!(
            inspect(
                "service",
                &service,
                "{{index .Spec.Labels \"hearth.deployment\"}}"
            ),
            name
        );

        // A clean second plan (deferred changes do not count).
        let o = hearth(&["plan", "-f", &out, "--detailed-exitcode"]);
        let second = text(&o);
        println!("second plan:\n{second}");
        assert_eq!(o.status.code(), Some(0), "{second}");
        assert!(second.contains("no changes"), "{second}");

        // --restart applies what was deferred: tasks restart, the data stays.
        if second.contains("deferred") {
            let o = hearth(&["apply", "-f", &out, "--deployment", &name, "--restart"]);
            assert_eq!(o.status.code(), Some(0), "{}", text(&o));
            let after = common::swarm::until(
                "the restarted task runs",
                Duration::from_secs(90),
                Duration::from_millis(500),
                || {
                    let now = running_tasks(&service, Duration::from_secs(60));
                    (now != tasks).then_some(now)
                },
            )
            .await?;
            assert_ne!(after, tasks);
            assert_eq!(inspect("service", &service, "{{.ID}}"), service_id);
            let c = docker(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.task.id={}", after[0]),
            ]);
            assert_eq!(
                docker(&["exec", c.trim(), "cat", "/data/marker"]).trim(),
                "kept"
            );
            // abra's config carries the recipe's own `name:`, which is the name hearth renders too
            // (docs/compose-support.md): adopted, it is labelled and kept in use, never removed.
            let abra_conf = format!("{stack}_app_conf_v1");
            assert_eq!(inspect("config", &abra_conf, managed), "hearth");
            let o = hearth(&["apply", "-f", &out]);
            assert_eq!(o.status.code(), Some(0), "{}", text(&o));
            assert!(docker_try(&["config", "inspect", &abra_conf]).0);
            let o = hearth(&["plan", "-f", &out, "--detailed-exitcode"]);
            assert_eq!(o.status.code(), Some(0), "{}", text(&o));
            assert!(!text(&o).contains("deferred"), "{}", text(&o));
        }
        // abra deploys the adopted app again: its labels are gone, hearth adopts it again.
        abra.deploy("abra-app", "1.0.0+1", &domain, &app_env);
        running_tasks(&service, Duration::from_secs(90));
        let o = hearth(&["plan", "-f", &out, "--detailed-exitcode"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("adopt: hearth's labels"), "{}", text(&o));
        let tasks = common::abra::all_tasks(&service);
        let o = hearth(&["apply", "-f", &out]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(common::abra::all_tasks(&service), tasks);
        assert_eq!(inspect("service", &service, managed), "hearth");
        let o = hearth(&["plan", "-f", &out, "--detailed-exitcode"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let _ = docker_try(&["stack", "rm", &stack]);
        Ok(())
    })
    .await;
}

/// The same takeover through the controller (`hearth run`), as an operator would leave it running,
/// of an app whose domain is past abra's 45-character stack-name cut: the imported manifests are
/// reconciled, the deployment becomes Ready with hearth's labels on the
/// service and the secret, and nothing restarts (same service, tasks, secret; the data kept).
#[tokio::test]
async fn abra_stack_is_adopted_by_hearth_run_without_restarting_anything() {
    const PATTERN_RUN: &str = "_adoptrun_abra_test";
    with_swarm("abra-adopt-run", |env| async move {
        let _guard = StackGuard::new(PATTERN_RUN);
        // A domain past abra's 45-character cut: the stack abra runs is named by the cut, and an
        // adopted deployment is named the same way (manifest::names::deployment_stack).
        let app = deploy_abra_app(
            &env.unique("ar"),
            "adoptrun.abra.test.with-a-domain-past-abras-cut.example",
        );
        assert_eq!(app.stack.len(), 45, "{}", app.stack);
        let abra = &app.abra;
        let (domain, stack) = (app.domain.clone(), app.stack.clone());
        let (service, service_id, tasks) = (
            app.service.clone(),
            app.service_id.clone(),
            app.tasks.clone(),
        );
        let (container, db_secret) = (app.container.clone(), app.db_secret.clone());
        let out_dir = tempfile::tempdir()?;
        import_labelled(abra, out_dir.path(), &env.test);
        let name = hearth::import::manifest_name(&domain);
        let run = common::controller::start_on(out_dir.path(), |_| {});
        let outcome = async {
            let managed = "{{index .Spec.Labels \"hearth.managed-by\"}}";
            let st = run
                .wait(&name, "Ready and labelled", Duration::from_secs(120), |s| {
                    s.phase == "Ready" && inspect("service", &service, managed) == "hearth"
                })
                .await?;
            println!("{} {} {}", st.phase, st.reason, st.message);
            // A few more passes: still nothing restarted, nothing more changed.
            let seen = std::time::SystemTime::now();
            run.wait(&name, "looked at again", Duration::from_secs(30), |s| {
                s.last_reconcile.is_some_and(|t| t > seen)
            })
            .await?;
            let st = run
                .wait(&name, "Ready", Duration::from_secs(30), |s| {
                    s.phase == "Ready"
                })
                .await?;
            assert!(st.drift.is_empty(), "{:?}", st.drift);
            assert_eq!(inspect("service", &service, "{{.ID}}"), service_id);
            assert_eq!(common::abra::all_tasks(&service), tasks);
            assert_eq!(
                docker(&["exec", &container, "cat", "/data/marker"]).trim(),
                "kept"
            );
            let db = format!("{stack}_db_password_v1");
            assert_eq!(inspect("secret", &db, "{{.ID}}"), db_secret);
            assert_eq!(inspect("secret", &db, managed), "hearth");
            anyhow::Ok(())
        }
        .await;
        run.stop().await?;
        let _ = docker_try(&["stack", "rm", &stack]);
        outcome
    })
    .await;
}

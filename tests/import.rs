//! `hearth import` of abra app env files (`RECIPE=x:1.2.3`, `TYPE=x`, a recipe missing from the
//! recipes directory), and secrets without listing them, on the real swarm: the recipe's
//! `.env.sample` hints decide (`# length=N` is the generated length, `# generate=false` keeps the
//! deployment Pending, naming the secret, until it is made by hand).

mod common;

use std::time::Duration;

use common::abra::{AbraDir, hearth, running_tasks, secret_create, text};
use common::{docker, with_swarm};
use hearth::plan::{Action, SecretValue, plan_pool};
use hearth::{desired, manifest};

#[test]
fn import_recipe_and_type_lines_and_a_missing_recipe() {
    let abra = AbraDir::new("srv", &["abra-app"]);
    let pinned = abra.app(
        "pinned.example.org",
        "RECIPE=abra-app:1.0.0+1\nDOMAIN=pinned.example.org\nAPP_GREETING=hi\n",
    );
    abra.app("typed.example.org", "TYPE=abra-app\nAPP_GREETING=yo\n");
    let missing = abra.app(
        "missing.example.org",
        "DOMAIN=missing.example.org\nRECIPE=nope:1.0.0\n",
    );
    let out = tempfile::tempdir().unwrap();
    let base = [
        "import",
        "--abra-dir",
        abra.path().to_str().unwrap(),
        "--server",
        "srv",
        "--output-dir",
        out.path().to_str().unwrap(),
    ];
    // One bad app file: a clear error naming it and its line; nothing written.
    let o = hearth(&base);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = text(&o);
    assert!(
        err.contains(&format!(
            "{}:2:1: RECIPE: recipe \"nope\" is not in",
            missing.display()
        )),
        "{err}"
    );
    assert!(err.contains("nothing written"), "{err}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    // --dry-run prints and writes nothing.
    let mut args = base.to_vec();
    args.extend(["--app", "pinned.example.org", "--app", "typed.example.org"]);
    let mut dry = args.clone();
    dry.push("--dry-run");
    let o = hearth(&dry);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("kind: Deployment"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    let o = hearth(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // TYPE= without a version and no live stack: the newest tag, with a warning.
    assert!(text(&o).contains("newest tag 1.0.0+1"), "{}", text(&o));
    let p = std::fs::read_to_string(out.path().join("pinned-example-org.yml")).unwrap();
    assert!(p.contains("recipe: \"abra-app\"  # RECIPE= at "), "{p}");
    assert!(
        p.contains(&format!(
            "version: \"1.0.0+1\"  # RECIPE= at {}:1",
            pinned.display()
        )),
        "{p}"
    );
    assert!(p.contains("db_password: {generate: {length: 32}}"), "{p}");
    assert!(p.contains("api_key: {generate: {length: 12}}"), "{p}");
    assert!(p.contains("smtp_password: existing"), "{p}");
    let t = std::fs::read_to_string(out.path().join("typed-example-org.yml")).unwrap();
    assert!(t.contains("recipe: \"abra-app\"  # TYPE= at "), "{t}");
    assert!(t.contains("version: \"1.0.0+1\"  # NOT KNOWN"), "{t}");
    assert!(
        t.contains("domain: \"typed.example.org\"  # the name of "),
        "{t}"
    );
    // What was written validates.
    let o = hearth(&["validate", "-f", out.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Idempotent.
    let o = hearth(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(text(&o).matches("unchanged").count(), 3, "{}", text(&o));
    // A relative --abra-dir: the Pool still names the recipes absolutely.
    let rel = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .current_dir(abra.path())
        .args([
            "import",
            "--abra-dir",
            ".",
            "--server",
            "srv",
            "--app",
            "pinned.example.org",
        ])
        .arg("--output-dir")
        .arg(rel.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pool = std::fs::read_to_string(rel.path().join("pool.yml")).unwrap();
    let recipes = abra.path().join("recipes");
    assert!(
        pool.contains(&format!("recipes: \"{}\"", recipes.display())),
        "{pool}"
    );
}

#[tokio::test]
async fn unlisted_secrets_follow_the_recipe_hints() {
    with_swarm("import-hints", |env| async move {
        let abra = AbraDir::new("srv", &["abra-app"]);
        let dir = tempfile::tempdir()?;
        let domain = format!("{}.hints.abra.test", env.unique("ah"));
        let stack = domain.replace('.', "_");
        std::fs::write(
            dir.path().join("pool.yml"),
            format!(
                "apiVersion: hearth/v1\nkind: Pool\nmetadata: {{name: hints}}\nspec:\n  \
                 domain: hints.abra.test\n  recipes: {}\n  labels: {{hearth.test: {}}}\n",
                abra.path().join("recipes").display(),
                env.test
            ),
        )?;
        std::fs::write(
            dir.path().join("app.yml"),
            format!(
                "apiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: app}}\nspec:\n  \
                 recipe: abra-app\n  version: 1.0.0+1\n  domain: {domain}\n"
            ),
        )?;
        let paths = [dir.path().to_path_buf()];
        let plan = || {
            let loaded = manifest::load_paths(&paths);
            let store = desired::recipe_store(&loaded, None).expect("store");
            let pool = desired::build(&loaded, &store, None);
            assert!(pool.errors.is_empty(), "{:?}", pool.errors);
            async move {
                let snap = env.client.snapshot().await.expect("snapshot");
                plan_pool(&pool, &loaded, &snap, None).remove(0)
            }
        };
        let p = plan().await;
        // generate=false: Pending, naming the secret and the hint; no service is created.
        assert_eq!(p.pending.len(), 1, "{:?}", p.pending);
        let why = &p.pending[0];
        assert!(why.contains(&format!("{stack}_smtp_password_v1")), "{why}");
        assert!(why.contains("generate=false"), "{why}");
        assert!(why.contains("SECRET_SMTP_PASSWORD_VERSION"), "{why}");
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let lengths: Vec<(String, usize)> = p
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::CreateSecret {
                    key,
                    source: SecretValue::Generate { length, .. },
                    ..
                } => Some((key.clone(), *length)),
                _ => None,
            })
            .collect();
        assert_eq!(
            lengths,
            [("api_key".to_string(), 12), ("db_password".to_string(), 32)]
        );
        assert!(p.steps.iter().all(|s| s.action.kind() != "create_service"));
        let d = dir.path().to_str().unwrap();
        let o = hearth(&["plan", "-f", d]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("pending: secret"), "{}", text(&o));

        // Made by hand: now everything converges, the others generated at their hinted length.
        let label = format!("hearth.test={}", env.test);
        secret_create(&format!("{stack}_smtp_password_v1"), "by-hand", &[&label]);
        let o = hearth(&["apply", "-f", d]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let service = format!("{stack}_app");
        let tasks = running_tasks(&service, Duration::from_secs(90));
        let c = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.task.id={}", tasks[0]),
        ]);
        let len = |key: &str| {
            docker(&[
                "exec",
                c.trim(),
                "sh",
                "-c",
                &format!("cat /run/secrets/{key} | wc -c"),
            ])
            .trim()
            .to_string()
        };
        assert_eq!(len("api_key"), "12");
        assert_eq!(len("db_password"), "32");
        assert_eq!(len("smtp_password"), "7");
        // Once its volume exists the service is pinned to the node holding it (plan/pin.rs):
        // one more apply, then nothing is left to do.
        let o = hearth(&["apply", "-f", d]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let o = hearth(&["plan", "-f", d, "--detailed-exitcode"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        Ok(())
    })
    .await;
}

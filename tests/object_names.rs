//! Object names at Swarm's limits on the real swarm: a recipe-given config name of exactly 64
//! characters is used as written and deploys; 65 is refused at render time naming the field
//! (docs/compose-support.md, "Object names").

mod common;

use common::pool::TestPool;
use common::{docker, with_swarm};

/// mattermost names its config `${STACK_NAME}_pg_backup_${PG_BACKUP_VERSION}`.
fn manifest(version_var: &str) -> String {
    format!(
        "  recipe: mattermost\n  version: \"9.0.0+10.0.0\"\n  role: plain\n  env:\n    \
         PG_BACKUP_VERSION: {version_var}\n  secrets:\n    db_password: {{generate: {{length: 32}}}}\n"
    )
}

#[tokio::test]
async fn a_recipe_config_name_of_64_characters_deploys() {
    with_swarm("object-names", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("mm", &manifest("v1"));
        let stack = pool.stack("mm");
        let fixed = stack.len() + "_pg_backup_".len();
        anyhow::ensure!(fixed < 63, "stack {stack} leaves no room");

        // 65 characters: refused at render, naming the field.
        pool.deployment("mm", &manifest(&"v".repeat(65 - fixed)));
        let loaded = hearth::manifest::load_paths(&[pool.path().to_path_buf()]);
        let store = hearth::desired::recipe_store(&loaded, None).expect("recipe store");
        let rendered = hearth::desired::build(&loaded, &store, None);
        let errors: Vec<String> = rendered.errors.iter().map(|e| e.to_string()).collect();
        anyhow::ensure!(
            errors.len() == 1
                && errors[0].contains("configs.pg_backup.name")
                && errors[0].contains("longer than Swarm's 64"),
            "{errors:#?}"
        );

        // 64 characters: the recipe's own name, deployed as written.
        let name = format!("{stack}_pg_backup_{}", "v".repeat(64 - fixed));
        assert_eq!(name.len(), 64);
        pool.deployment("mm", &manifest(&"v".repeat(64 - fixed)));
        pool.apply(&env).await?;
        let live = docker(&["config", "inspect", &name, "--format", "{{.Spec.Name}}"]);
        anyhow::ensure!(live.trim() == name, "live config {live}");
        let refs = docker(&[
            "service",
            "inspect",
            &format!("{stack}_db"),
            "--format",
            "{{range .Spec.TaskTemplate.ContainerSpec.Configs}}{{.ConfigName}} {{end}}",
        ]);
        anyhow::ensure!(refs.split_whitespace().any(|r| r == name), "{refs}");
        // And a second pass plans nothing for it.
        let plans = pool.plan(&env).await;
        let steps = common::pool::steps(&plans);
        anyhow::ensure!(
            steps.is_empty() && plans.iter().all(|p| p.problems.is_empty()),
            "{steps:?}"
        );
        Ok(())
    })
    .await;
}

//! A test pool on disk: fixture recipe repos, a Pool manifest with a unique domain (so stack names
//! are unique per test run) labelling everything `hearth.test=<test>`, and deployments written as
//! YAML; plus one converge pass through the library with the counted client.

use std::path::{Path, PathBuf};

use hearth::desired::{self, DesiredPool};
use hearth::manifest::{self, Loaded};
use hearth::plan::{Plan, plan_pool};
use hearth::swarm::Counts;
use hearth::swarm::apply::{Ids, apply_plan};

use super::TestEnv;
use super::recipes::{RecipeRepos, recipe_repos};

pub struct TestPool {
    pub repos: RecipeRepos,
    pub dir: tempfile::TempDir,
    pub domain: String,
    pub test: String,
}

impl TestPool {
    /// A pool named after the test, with `prune` as given.
    pub fn new(env: &TestEnv, prune: bool) -> TestPool {
        let repos = recipe_repos(&[]);
        let dir = tempfile::tempdir().expect("temp dir");
        let domain = format!("{}.test", env.unique("p").replace('-', ""));
        let pool = TestPool {
            repos,
            dir,
            domain,
            test: env.test.clone(),
        };
        pool.write_pool(prune);
        pool
    }

    pub fn write_pool(&self, prune: bool) {
        let text = format!(
            "apiVersion: hearth/v1\nkind: Pool\nmetadata: {{name: {}}}\nspec:\n  domain: {}\n  \
             recipes: {}\n  labels: {{hearth.test: {}}}\n  defaults: {{prune: {prune}}}\n",
            self.domain.replace('.', "-"),
            self.domain,
            self.repos.path().display(),
            self.test
        );
        std::fs::write(self.dir.path().join("pool.yml"), text).expect("write pool");
    }

    /// Writes (or replaces) the manifest of one deployment; `spec` is the YAML under `spec:`,
    /// indented by two spaces.
    pub fn deployment(&self, name: &str, spec: &str) {
        let text = format!(
            "apiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n{spec}"
        );
        std::fs::write(self.path_of(name), text).expect("write deployment");
    }

    pub fn remove_deployment(&self, name: &str) {
        std::fs::remove_file(self.path_of(name)).expect("remove deployment");
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.yml"))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The manifests, loaded and rendered; panics on any error.
    pub fn render(&self) -> (Loaded, DesiredPool) {
        let loaded = manifest::load_paths(&[self.dir.path().to_path_buf()]);
        let store = desired::recipe_store(&loaded, None).expect("recipe store");
        let pool = desired::build(&loaded, &store, None);
        assert!(pool.errors.is_empty(), "render errors: {:#?}", pool.errors);
        (loaded, pool)
    }

    /// The stack name of a deployment.
    pub fn stack(&self, deployment: &str) -> String {
        let (_, pool) = self.render();
        pool.get(deployment).expect("rendered").stack.clone()
    }

    /// Plans against the live swarm.
    pub async fn plan(&self, env: &TestEnv) -> Vec<Plan> {
        let (loaded, pool) = self.render();
        let snap = env.client.snapshot().await.expect("snapshot");
        plan_pool(&pool, &loaded, &snap, None)
    }

    /// One converge pass; returns the plans applied and the Docker requests it made.
    pub async fn apply(&self, env: &TestEnv) -> anyhow::Result<(Vec<Plan>, Counts)> {
        let before = env.client.counts();
        let (loaded, pool) = self.render();
        let snap = env.client.snapshot().await?;
        let plans = plan_pool(&pool, &loaded, &snap, None);
        let mut ids = Ids::from_snapshot(&snap);
        for p in &plans {
            anyhow::ensure!(p.problems.is_empty(), "{}: {:?}", p.deployment, p.problems);
            apply_plan(&env.client, p, &mut ids, &|_| {}).await?;
        }
        Ok((plans, env.client.counts().since(&before)))
    }
}

/// The steps of all plans as `(action, object)`.
pub fn steps(plans: &[Plan]) -> Vec<(String, String)> {
    plans
        .iter()
        .flat_map(|p| {
            p.steps
                .iter()
                .map(|s| (s.action.kind().to_string(), s.action.object().to_string()))
        })
        .collect()
}

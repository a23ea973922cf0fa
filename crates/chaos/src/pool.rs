//! The soak's pool: its manifests (pure, from a [`PoolState`]), the recipe repos built from the
//! project's fixture recipes, and the git remote hearth follows (a bare repo on this machine,
//! bind-mounted into the hearth replicas; "unreachable" means renamed away).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::schedule::PoolState;

pub const POOL: &str = "chaos";
pub const GITEA_GOOD: &str = "3.5.3+1.24.2-rootless";
pub const GITEA_BAD: &str = "3.6.0+1.24.2-rootless";
/// Recipes the pool uses (directories of `tests/fixtures/recipes`).
pub const RECIPES: [&str; 7] = [
    "gitea",
    "mattermost",
    "keycloak",
    "bluesky-pds",
    "mumble",
    "static-site",
    "bench-trio",
];

/// Deployments whose volumes hold data: each gets a marker file the checker follows.
pub const STATEFUL: [&str; 4] = ["gitea", "forge", "mm", "pds"];

/// The phase each deployment must reach once the faults stop (absent ones are not listed).
pub fn expected(state: &PoolState) -> Vec<(String, &'static str)> {
    let mut e: Vec<(String, &'static str)> = [
        "gitea",
        "forge",
        "mm",
        "kc",
        "pds",
        "voice",
        "site-a",
        "site-b",
        "site-c",
        "trio-a",
        "trio-b",
        "gitea-warm",
    ]
    .iter()
    .filter(|n| match **n {
        "pds" => !state.removed,
        "gitea-warm" => state.provider,
        _ => true,
    })
    .map(|n| {
        let phase = if *n == "forge" && state.bad {
            "AdvanceFailed"
        } else if *n == "gitea-warm" {
            // The canonical moved out of `warm-gitea` and left its old volume there, recorded as
            // moved: the provider is held off it until an operator removes it (docs/migrate.md).
            "Held"
        } else {
            "Ready"
        };
        (n.to_string(), phase)
    })
    .collect();
    e.sort();
    e
}

/// The manifests for `state`.
pub fn manifests(state: &PoolState) -> String {
    let mut m = format!(
        "apiVersion: hearth/v1\nkind: Pool\nmetadata: {{name: {POOL}}}\nspec:\n  domain: chaos.test\n  \
         recipes: /srv/recipes\n  labels: {{hearth.test: chaos}}\n  defaults: {{prune: true}}\n"
    );
    let mut d = |name: &str, spec: &str| {
        m.push_str(&format!(
            "---\napiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n{spec}"
        ));
    };
    d(
        "gitea",
        &format!(
            "  recipe: gitea\n  version: {GITEA_GOOD}\n  role: canonical\n  \
             advance: {{allowMigration: true}}\n"
        ),
    );
    let forge = if state.bad { GITEA_BAD } else { GITEA_GOOD };
    d(
        "forge",
        &format!("  recipe: gitea\n  version: {forge}\n  progressDeadline: 60s\n"),
    );
    d(
        "mm",
        "  recipe: mattermost\n  version: 8.0.0+9.11.1\n  \
         secrets: {db_password: {generate: {length: 24}}}\n",
    );
    d(
        "kc",
        "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  role: provider\n  \
         secrets: {admin_password: {generate: {}}}\n",
    );
    if !state.removed {
        d("pds", "  recipe: bluesky-pds\n  version: 0.1.0+0.4.0\n");
    }
    d("voice", "  recipe: mumble\n  version: 1.0.0+1.5.517\n");
    for s in ["site-a", "site-b", "site-c"] {
        d(s, "  recipe: static-site\n  version: 1.0.0+1.27.0\n");
    }
    d(
        "trio-a",
        &format!(
            "  recipe: bench-trio\n  version: 1.0.0+1\n  env: {{REPLICAS: \"{}\"}}\n",
            state.replicas
        ),
    );
    d(
        "trio-b",
        "  recipe: bench-trio\n  version: 1.0.0+1\n  env: {REPLICAS: \"1\"}\n",
    );
    if state.provider {
        d(
            "gitea-warm",
            &format!("  recipe: gitea\n  version: {GITEA_GOOD}\n  role: provider\n"),
        );
    }
    m
}

/// Runs git in `dir` with a fixed identity; its stdout, or an error naming the command.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=hearth-chaos",
            "-c",
            "user.email=chaos@hearth.invalid",
        ])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("git {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {args:?} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn version_key(v: &str) -> (Vec<u64>, String) {
    let (core, rest) = v.split_once('+').unwrap_or((v, ""));
    (
        core.split('.').map(|p| p.parse().unwrap_or(0)).collect(),
        rest.to_string(),
    )
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let rd = std::fs::read_dir(from).map_err(|e| format!("read {}: {e}", from.display()))?;
    for e in rd.filter_map(|e| e.ok()) {
        let (s, d) = (e.path(), to.join(e.file_name()));
        if s.is_dir() {
            std::fs::create_dir_all(&d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
            copy_tree(&s, &d)?;
        } else {
            std::fs::copy(&s, &d).map_err(|e| format!("copy {}: {e}", s.display()))?;
        }
    }
    Ok(())
}

/// One git repo per recipe under `dir`, one commit and tag per version directory of
/// `fixtures/<recipe>/` (oldest first), like recipe repos under `~/.abra/recipes`.
pub fn recipe_repos(fixtures: &Path, dir: &Path) -> Result<(), String> {
    for r in RECIPES {
        let src = fixtures.join(r);
        let repo = dir.join(r);
        let mut versions: Vec<String> = std::fs::read_dir(&src)
            .map_err(|e| format!("read {}: {e}", src.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        versions.sort_by_key(|v| version_key(v));
        std::fs::create_dir_all(&repo).map_err(|e| format!("mkdir {}: {e}", repo.display()))?;
        git(&repo, &["init", "-q", "-b", "main"])?;
        for v in versions {
            for e in std::fs::read_dir(&repo)
                .map_err(|e| e.to_string())?
                .flatten()
            {
                if e.file_name() != ".git" {
                    let p = e.path();
                    if p.is_dir() {
                        std::fs::remove_dir_all(&p).map_err(|e| e.to_string())?;
                    } else {
                        std::fs::remove_file(&p).map_err(|e| e.to_string())?;
                    }
                }
            }
            copy_tree(&src.join(&v), &repo)?;
            git(&repo, &["add", "-A"])?;
            git(
                &repo,
                &[
                    "commit",
                    "-q",
                    "--allow-empty",
                    "-m",
                    &format!("release {v}"),
                ],
            )?;
            git(&repo, &["tag", &v])?;
        }
    }
    Ok(())
}

/// The manifests' remote (a bare repo) and the clone commits are made in.
pub struct Remote {
    /// The directory bind-mounted into the replicas (holds `manifests.git`).
    pub dir: PathBuf,
    pub clone: PathBuf,
}

impl Remote {
    pub fn bare(&self) -> PathBuf {
        self.dir.join("manifests.git")
    }

    fn parked(&self) -> PathBuf {
        self.dir.join("manifests.git.unreachable")
    }

    /// Creates the remote with a first commit of `state`'s manifests.
    pub fn create(dir: PathBuf, clone: PathBuf, state: &PoolState) -> Result<Remote, String> {
        let r = Remote { dir, clone };
        std::fs::create_dir_all(r.bare()).map_err(|e| e.to_string())?;
        git(&r.bare(), &["init", "-q", "--bare", "-b", "main"])?;
        std::fs::create_dir_all(&r.clone).map_err(|e| e.to_string())?;
        git(&r.clone, &["init", "-q", "-b", "main"])?;
        git(
            &r.clone,
            &["remote", "add", "origin", &r.bare().to_string_lossy()],
        )?;
        r.commit(state, "the pool")?;
        Ok(r)
    }

    /// Commits `state`'s manifests and pushes them; the new commit's id.
    pub fn commit(&self, state: &PoolState, message: &str) -> Result<String, String> {
        std::fs::write(self.clone.join("pool.yml"), manifests(state)).map_err(|e| e.to_string())?;
        git(&self.clone, &["add", "-A"])?;
        git(
            &self.clone,
            &["commit", "-q", "--allow-empty", "-m", message],
        )?;
        git(&self.clone, &["push", "-q", "origin", "main"])?;
        self.head()
    }

    pub fn head(&self) -> Result<String, String> {
        git(&self.clone, &["rev-parse", "HEAD"])
    }

    /// The remote gone (renamed away) or back.
    pub fn set_reachable(&self, up: bool) -> Result<(), String> {
        let (from, to) = if up {
            (self.parked(), self.bare())
        } else {
            (self.bare(), self.parked())
        };
        std::fs::rename(&from, &to).map_err(|e| format!("rename {}: {e}", from.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifests_follow_the_state() {
        let s = PoolState::default();
        let m = manifests(&s);
        assert!(m.contains(&format!("version: {GITEA_GOOD}\n  progressDeadline")));
        assert!(m.contains("name: pds"));
        assert!(!m.contains("gitea-warm"));
        assert_eq!(m.matches("kind: Deployment").count(), 11);
        let s2 = PoolState {
            bad: true,
            removed: true,
            provider: true,
            replicas: 2,
        };
        let m2 = manifests(&s2);
        assert!(m2.contains(&format!("version: {GITEA_BAD}")));
        assert!(!m2.contains("name: pds"));
        assert!(m2.contains("name: gitea-warm"));
        assert!(m2.contains("REPLICAS: \"2\""));
        let e = expected(&s2);
        assert!(e.contains(&("forge".to_string(), "AdvanceFailed")));
        assert!(!e.iter().any(|(n, _)| n == "pds"));
        assert!(e.contains(&("gitea-warm".to_string(), "Held")));
        assert_eq!(expected(&s).len(), 11);
    }
}

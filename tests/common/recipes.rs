//! Fixture recipes as real recipe repos: `tests/fixtures/recipes/<recipe>/<version>/` directories
//! become, in a temp dir, one git repo per recipe with one commit and one tag per version (oldest
//! first), exactly like Co-op Cloud recipe repos under `~/.abra/recipes`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the fixture recipe directories live.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recipes")
}

/// A temp dir holding one git repo per fixture recipe; removed on drop.
pub struct RecipeRepos {
    pub dir: tempfile::TempDir,
}

impl RecipeRepos {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Builds git repos for `recipes` (all fixture recipes when empty).
pub fn recipe_repos(recipes: &[&str]) -> RecipeRepos {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = fixtures_dir();
    let mut names: Vec<String> = if recipes.is_empty() {
        std::fs::read_dir(&src)
            .expect("read fixtures dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    } else {
        recipes.iter().map(|s| s.to_string()).collect()
    };
    names.sort();
    for name in names {
        build_repo(&src.join(&name), &dir.path().join(&name));
    }
    RecipeRepos { dir }
}

/// Builds git repos for `recipes` from the version directories under `src` (another fixture
/// tree than `tests/fixtures/recipes`, e.g. `tests/fixtures/abra-recipes`), into `dir`.
pub fn recipe_repos_in(src: &Path, dir: &Path, recipes: &[&str]) {
    for name in recipes {
        build_repo(&src.join(name), &dir.join(name));
    }
}

/// Orders versions like `1.2.10+x` after `1.2.9+y`: by the numeric `x.y.z` part, then the rest.
pub fn version_key(v: &str) -> (Vec<u64>, String) {
    let (core, rest) = v.split_once('+').unwrap_or((v, ""));
    let nums = core.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    (nums, rest.to_string())
}

fn build_repo(src: &Path, repo: &Path) {
    let mut versions: Vec<String> = std::fs::read_dir(src)
        .unwrap_or_else(|e| panic!("read {}: {e}", src.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort_by_key(|v| version_key(v));
    std::fs::create_dir_all(repo).expect("create repo dir");
    git(repo, &["init", "-q", "-b", "main"]);
    for v in versions {
        // Replace the work tree with this version's files.
        for e in std::fs::read_dir(repo)
            .expect("read repo")
            .filter_map(|e| e.ok())
        {
            if e.file_name() != ".git" {
                let p = e.path();
                if p.is_dir() {
                    std::fs::remove_dir_all(&p).expect("clear dir");
                } else {
                    std::fs::remove_file(&p).expect("clear file");
                }
            }
        }
        copy_tree(&src.join(&v), repo);
        git(repo, &["add", "-A"]);
        git(
            repo,
            &[
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &format!("release {v}"),
            ],
        );
        git(repo, &["tag", &v]);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from)
        .expect("read version dir")
        .filter_map(|e| e.ok())
    {
        let (s, d) = (e.path(), to.join(e.file_name()));
        if s.is_dir() {
            std::fs::create_dir_all(&d).expect("mkdir");
            copy_tree(&s, &d);
        } else {
            std::fs::copy(&s, &d).expect("copy file");
        }
    }
}

/// Runs git in `repo` with a fixed identity, panicking with its stderr on failure.
pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=hearth-test",
            "-c",
            "user.email=test@hearth.invalid",
        ])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        repo.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

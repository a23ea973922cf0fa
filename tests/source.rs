//! Manifests and recipes from git remotes (issue 8), against local remotes only: bare repos in
//! temp dirs reached through `file://` URLs (and one refused loopback HTTPS URL). No Docker.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use hearth::manifest::Loaded;
use hearth::recipe::RecipeStore;
use hearth::source::{Decision, Ensured, GitOptions, GitSource, RecipeRemote, SourceState};

/// Runs git in `dir` with a fixed identity and no user config; panics on failure.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=hearth-test",
            "-c",
            "user.email=test@hearth.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare "remote" and a work clone that pushes to it.
struct Remote {
    tmp: tempfile::TempDir,
}

impl Remote {
    fn new() -> Remote {
        let tmp = tempfile::tempdir().expect("tmp");
        let r = Remote { tmp };
        git(r.tmp.path(), &["init", "--quiet", "--bare", "remote.git"]);
        git(r.tmp.path(), &["init", "--quiet", "work"]);
        git(&r.work(), &["remote", "add", "origin", &r.url()]);
        r
    }

    fn bare(&self) -> PathBuf {
        self.tmp.path().join("remote.git")
    }

    fn work(&self) -> PathBuf {
        self.tmp.path().join("work")
    }

    fn url(&self) -> String {
        format!("file://{}", self.bare().display())
    }

    /// Writes (or with `None` deletes) files, commits, pushes `main`; returns the commit id.
    fn commit(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        for (path, text) in files {
            let p = self.work().join(path);
            match text {
                Some(t) => {
                    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&p, t).expect("write");
                }
                None => std::fs::remove_file(&p).expect("rm"),
            }
        }
        git(&self.work(), &["add", "-A"]);
        git(&self.work(), &["commit", "--quiet", "-m", message]);
        git(
            &self.work(),
            &["push", "--quiet", "origin", "HEAD:refs/heads/main"],
        );
        git(&self.work(), &["rev-parse", "HEAD"])
    }

    /// Rewrites the remote's `main` to `commit` (a force-push).
    fn force_push(&self, commit: &str) {
        git(&self.work(), &["reset", "--quiet", "--hard", commit]);
        let spec = format!("{commit}:refs/heads/main");
        git(
            &self.work(),
            &["push", "--quiet", "--force", "origin", &spec],
        );
    }
}

const POOL: &str = "apiVersion: hearth/v1
kind: Pool
metadata: {name: ci}
spec:
  domain: ci.example.org
  recipes: /srv/hearth/recipes
";

fn deployment(name: &str, version: &str) -> String {
    format!(
        "apiVersion: hearth/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  recipe: app
  version: {version}
"
    )
}

/// A source following `main` of `remote`, manifests under `pools/ci`.
fn source(remote: &Remote, cache: &Path) -> GitSource {
    GitSource::new(remote.url(), "main", "pools/ci", cache).expect("source")
}

fn version(loaded: &Loaded, name: &str) -> String {
    loaded
        .deployment(name)
        .map(|d| d.spec.version.clone())
        .unwrap_or_default()
}

/// The initial good commit: a pool, one deployment, and files that must not be read.
fn initial(remote: &Remote) -> String {
    remote.commit(
        &[
            ("pools/ci/pool.yml", Some(POOL)),
            ("pools/ci/apps/web.yaml", Some(&deployment("web", "1.0.0"))),
            ("pools/ci/.github/workflow.yml", Some("not: [a manifest")),
            ("pools/ci/README.md", Some("# the ci pool\n")),
            ("other/broken.yml", Some("::: not yaml")),
        ],
        "Initial pool",
    )
}

#[test]
fn a_version_bump_commit_becomes_applied_on_the_next_sync() {
    let remote = Remote::new();
    let cache = tempfile::tempdir().expect("cache");
    let src = source(&remote, cache.path());
    let c1 = initial(&remote);
    let mut state = SourceState::default();

    let t1 = SystemTime::now();
    let synced = src.sync(&mut state, t1);
    assert!(
        matches!(&synced.decision, Decision::Apply(r) if r.commit == c1 && r.summary == "Initial pool"),
        "{:?} / {state:?}",
        synced.decision
    );
    let loaded = synced.loaded.expect("loaded");
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(version(&loaded, "web"), "1.0.0");
    assert_eq!(
        loaded.deployments[0].origin.file,
        PathBuf::from(format!("pools/ci/apps/web.yaml@{}", &c1[..12]))
    );
    assert_eq!(state.last_sync, Some(t1));

    // Nothing new: unchanged, nothing to load.
    let again = src.sync(&mut state, SystemTime::now());
    assert_eq!(again.decision, Decision::Unchanged);
    assert!(again.loaded.is_none());

    let c2 = remote.commit(
        &[("pools/ci/apps/web.yaml", Some(&deployment("web", "1.1.0")))],
        "Bump web to 1.1.0",
    );
    let synced = src.sync(&mut state, SystemTime::now());
    assert!(matches!(&synced.decision, Decision::Apply(r) if r.commit == c2));
    assert_eq!(version(&synced.loaded.expect("loaded"), "web"), "1.1.0");
    assert_eq!(
        state.applied.as_ref().map(|r| r.commit.as_str()),
        Some(c2.as_str())
    );
}

#[test]
fn a_broken_commit_changes_nothing_is_reported_and_the_fix_recovers() {
    let remote = Remote::new();
    let cache = tempfile::tempdir().expect("cache");
    let src = source(&remote, cache.path());
    let c1 = initial(&remote);
    let mut state = SourceState::default();
    assert!(matches!(
        src.sync(&mut state, SystemTime::now()).decision,
        Decision::Apply(_)
    ));

    // Bad YAML in one file.
    let bad1 = remote.commit(
        &[(
            "pools/ci/apps/web.yaml",
            Some("apiVersion: hearth/v1\nkind: [Deployment\n"),
        )],
        "Oops",
    );
    let synced = src.sync(&mut state, SystemTime::now());
    assert_eq!(synced.decision, Decision::Rejected);
    assert!(synced.loaded.is_none());
    assert_eq!(
        state.applied.as_ref().map(|r| r.commit.as_str()),
        Some(c1.as_str())
    );
    let (bad, errors) = state.bad.clone().expect("bad recorded");
    assert_eq!(bad.commit, bad1);
    let label = format!("pools/ci/apps/web.yaml@{}", &bad1[..12]);
    assert!(
        errors
            .iter()
            .any(|e| e.file == Path::new(&label) && e.pos.line == 2),
        "{errors:?}"
    );
    assert_eq!(state.manifest_errors(), errors.as_slice());

    // An unknown field, on top: still rejected, errors now name the field with its position.
    let bad2 = remote.commit(
        &[(
            "pools/ci/apps/web.yaml",
            Some(&format!("{}  colour: blue\n", deployment("web", "2.0.0"))),
        )],
        "Add colour",
    );
    let synced = src.sync(&mut state, SystemTime::now());
    assert_eq!(synced.decision, Decision::Rejected);
    let (bad, errors) = state.bad.clone().expect("bad recorded");
    assert_eq!(bad.commit, bad2);
    let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].starts_with(&format!(
            "pools/ci/apps/web.yaml@{}:7:3: spec.colour: unknown field",
            &bad2[..12]
        )),
        "{shown:?}"
    );
    assert_eq!(
        state.applied.as_ref().map(|r| r.commit.as_str()),
        Some(c1.as_str())
    );

    // The fixing commit recovers by itself.
    let fix = remote.commit(
        &[("pools/ci/apps/web.yaml", Some(&deployment("web", "2.0.0")))],
        "Drop colour",
    );
    let synced = src.sync(&mut state, SystemTime::now());
    assert!(matches!(&synced.decision, Decision::Apply(r) if r.commit == fix));
    assert_eq!(version(&synced.loaded.expect("loaded"), "web"), "2.0.0");
    assert_eq!(state.bad, None);
    assert!(state.manifest_errors().is_empty());
}

#[test]
fn a_commit_removing_the_pool_is_rejected() {
    let remote = Remote::new();
    let cache = tempfile::tempdir().expect("cache");
    let src = source(&remote, cache.path());
    let c1 = initial(&remote);
    let mut state = SourceState::default();
    src.sync(&mut state, SystemTime::now());
    remote.commit(&[("pools/ci/pool.yml", None)], "Remove the pool");
    assert_eq!(
        src.sync(&mut state, SystemTime::now()).decision,
        Decision::Rejected
    );
    assert_eq!(
        state.applied.as_ref().map(|r| r.commit.as_str()),
        Some(c1.as_str())
    );
    assert!(state.manifest_errors()[0].message.contains("no Pool"));
}

#[test]
fn a_force_push_to_an_older_commit_converges_back() {
    let remote = Remote::new();
    let cache = tempfile::tempdir().expect("cache");
    let src = source(&remote, cache.path());
    let c1 = initial(&remote);
    let mut state = SourceState::default();
    src.sync(&mut state, SystemTime::now());
    remote.commit(
        &[("pools/ci/apps/web.yaml", Some(&deployment("web", "1.1.0")))],
        "Bump",
    );
    assert!(matches!(
        src.sync(&mut state, SystemTime::now()).decision,
        Decision::Apply(_)
    ));

    remote.force_push(&c1);
    let synced = src.sync(&mut state, SystemTime::now());
    assert!(
        matches!(&synced.decision, Decision::Apply(r) if r.commit == c1),
        "{synced:?}"
    );
    assert_eq!(version(&synced.loaded.expect("loaded"), "web"), "1.0.0");

    // After a restart, the pinned last good revision is what the pool resumes at.
    let mut resumed = SourceState::default();
    let loaded = source(&remote, cache.path())
        .restore(&mut resumed)
        .expect("restored");
    assert_eq!(
        resumed.applied.as_ref().map(|r| r.commit.as_str()),
        Some(c1.as_str())
    );
    assert_eq!(version(&loaded, "web"), "1.0.0");
}

#[test]
fn a_disappearing_remote_keeps_the_applied_revision_and_its_return_recovers() {
    let remote = Remote::new();
    let cache = tempfile::tempdir().expect("cache");
    let src = source(&remote, cache.path());
    let c1 = initial(&remote);
    let mut state = SourceState::default();
    let t1 = SystemTime::now();
    src.sync(&mut state, t1);

    let away = remote.tmp.path().join("away.git");
    std::fs::rename(remote.bare(), &away).expect("hide remote");
    for n in 1..=2 {
        let synced = src.sync(&mut state, SystemTime::now());
        assert_eq!(synced.decision, Decision::Unreachable);
        assert_eq!(state.failures, n);
    }
    assert!(state.last_error.is_some());
    assert_eq!(state.last_sync, Some(t1));
    assert_eq!(
        state.applied.as_ref().map(|r| r.commit.as_str()),
        Some(c1.as_str())
    );
    assert!(hearth::source::next_retry(state.failures) >= Duration::from_secs(10));

    std::fs::rename(&away, remote.bare()).expect("restore remote");
    let c2 = remote.commit(
        &[("pools/ci/apps/web.yaml", Some(&deployment("web", "1.2.0")))],
        "Bump while away",
    );
    let synced = src.sync(&mut state, SystemTime::now());
    assert!(matches!(&synced.decision, Decision::Apply(r) if r.commit == c2));
    assert_eq!((state.last_error.as_deref(), state.failures), (None, 0));
}

#[test]
fn credentials_in_the_url_never_appear_in_errors() {
    let cache = tempfile::tempdir().expect("cache");
    // Port 1 on loopback: refused at once, nothing leaves the machine.
    let src = GitSource::new(
        "https://deploy:glpat-s3cr3t@127.0.0.1:1/ops/pool.git",
        "main",
        "",
        cache.path(),
    )
    .expect("source")
    .with_options(GitOptions {
        timeout: Duration::from_secs(20),
        ..GitOptions::default()
    });
    let mut state = SourceState::default();
    assert_eq!(
        src.sync(&mut state, SystemTime::now()).decision,
        Decision::Unreachable
    );
    let err = state.last_error.expect("error");
    assert!(!err.contains("s3cr3t") && !err.contains("deploy:"), "{err}");
    assert!(
        err.contains("https://***@127.0.0.1:1/ops/pool.git"),
        "{err}"
    );
    // Nor in the cache's config or directory names.
    let config = std::fs::read_to_string(src.repo_dir().join("config")).expect("config");
    assert!(!config.contains("s3cr3t"), "{config}");
}

/// A recipe repo with `compose.yml` tagged `tag`.
fn recipe_commit(work: &Path, tag: &str) {
    std::fs::write(
        work.join("compose.yml"),
        format!("services:\n  app:\n    image: fixture/app:{tag}\n"),
    )
    .expect("write");
    git(work, &["add", "-A"]);
    git(
        work,
        &["commit", "--quiet", "-m", &format!("Release {tag}")],
    );
    git(work, &["tag", "-a", "-m", tag, tag]);
}

#[test]
fn a_recipe_version_pushed_later_is_fetched_by_ensure() {
    let up = tempfile::tempdir().expect("upstream");
    let work = up.path().join("app");
    git(up.path(), &["init", "--quiet", "app"]);
    recipe_commit(&work, "1.0.0+1.0");
    let url = format!("file://{}", work.display());
    let recipes = tempfile::tempdir().expect("recipes");
    let remote = RecipeRemote::new(GitOptions::default()).with_min_refetch(Duration::ZERO);
    let store = RecipeStore::new(recipes.path());

    // The manifest names 1.1.0+1.1, not released yet: the repo is made, the tag is missing.
    let got = remote
        .ensure("app", &url, "1.1.0+1.1", recipes.path())
        .expect("ensure");
    assert_eq!(got, Ensured::Missing);
    assert_eq!(store.recipes(), ["app"]);
    let versions: Vec<String> = store
        .versions("app")
        .expect("versions")
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(versions, ["1.0.0+1.0"]);
    assert!(store.open("app", "1.1.0+1.1").is_err());

    // Upstream releases it: the next ensure fetches it and the store reads it.
    recipe_commit(&work, "1.1.0+1.1");
    let got = remote
        .ensure("app", &url, "1.1.0+1.1", recipes.path())
        .expect("ensure");
    assert_eq!(got, Ensured::Fetched);
    store.refresh();
    let at = store.open("app", "1.1.0+1.1").expect("open");
    assert_eq!(
        at.commit(),
        git(&work, &["rev-parse", "1.1.0+1.1^{commit}"])
    );
    let compose = at
        .read_string("compose.yml")
        .expect("read")
        .expect("exists");
    assert!(compose.contains("fixture/app:1.1.0+1.1"), "{compose}");
    // Known now: no fetch at all.
    let got = remote
        .ensure("app", &url, "1.1.0+1.1", recipes.path())
        .expect("ensure");
    assert_eq!(got, Ensured::Present);
    // A recipe not there yet, at an existing version: cloned.
    let fresh = tempfile::tempdir().expect("fresh");
    let got = remote
        .ensure("app", &url, "1.0.0+1.0", fresh.path())
        .expect("ensure");
    assert_eq!(got, Ensured::Cloned);
    assert!(
        RecipeStore::new(fresh.path())
            .open("app", "1.0.0+1.0")
            .is_ok()
    );
}

#[test]
fn a_missing_recipe_tag_is_not_refetched_too_soon() {
    let up = tempfile::tempdir().expect("upstream");
    let work = up.path().join("app");
    git(up.path(), &["init", "--quiet", "app"]);
    recipe_commit(&work, "1.0.0");
    let url = format!("file://{}", work.display());
    let recipes = tempfile::tempdir().expect("recipes");
    let remote = RecipeRemote::new(GitOptions::default());
    assert_eq!(
        remote
            .ensure("app", &url, "9.9.9", recipes.path())
            .expect("ensure"),
        Ensured::Missing
    );
    recipe_commit(&work, "9.9.9");
    // Within a minute of the last fetch, the remote is not asked again.
    assert_eq!(
        remote
            .ensure("app", &url, "9.9.9", recipes.path())
            .expect("ensure"),
        Ensured::Missing
    );
}

#[test]
fn an_unreachable_recipe_remote_leaves_no_half_repo() {
    let recipes = tempfile::tempdir().expect("recipes");
    let remote = RecipeRemote::new(GitOptions::default());
    let missing = recipes.path().join("nowhere");
    let url = format!("file://{}", missing.display());
    assert!(remote.ensure("app", &url, "1.0.0", recipes.path()).is_err());
    assert!(!recipes.path().join("app").exists());
    assert_eq!(std::fs::read_dir(recipes.path()).expect("ls").count(), 0);
}

//! Tests of [`RecipeStore`] / [`RecipeAt`] against real git repositories made with the `git` CLI in
//! a temporary directory.

use std::path::Path;
use std::process::Command;

use indexmap::IndexMap;

use super::{RecipeError, RecipeStore, compose_files};

/// Run git in `dir` isolated from the user's config; panics on failure (test setup only).
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Hearth Test",
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
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn commit_all(repo: &Path, msg: &str) {
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", msg]);
}

/// A store with recipe `gitea`: `1.0.0+1.20` (lightweight tag), `1.1.0+1.21` (annotated tag),
/// then an untagged commit on HEAD and an uncommitted change in the working tree.
fn fixture() -> (tempfile::TempDir, RecipeStore) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("gitea");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);

    write(&repo, "compose.yml", "version: '3.8'\n# v1\n");
    write(
        &repo,
        ".env.sample",
        "TYPE=gitea\nDOMAIN=gitea.example.com\nCOMPOSE_FILE=compose.yml\n#COMPOSE_FILE=\"$COMPOSE_FILE:compose.mariadb.yml\"\n",
    );
    write(&repo, "abra.sh", "export APP_INI_VERSION=v1\n");
    commit_all(&repo, "v1");
    git(&repo, &["tag", "1.0.0+1.20"]);

    write(&repo, "compose.yml", "version: '3.8'\n# v2\n");
    write(&repo, "compose.mariadb.yml", "services: {db: {}}\n");
    write(&repo, "files/app.ini.tmpl", "[server]\n");
    write(
        &repo,
        ".env.sample",
        "TYPE=gitea\nDOMAIN=gitea.example.com\nLETS_ENCRYPT_ENV=production # or staging\nCOMPOSE_FILE=compose.yml\nCOMPOSE_FILE=\"$COMPOSE_FILE:compose.mariadb.yml\"\n",
    );
    write(
        &repo,
        "abra.sh",
        "export APP_INI_VERSION=v2\nbackup() {\n  export X=1\n}\n",
    );
    commit_all(&repo, "v2");
    git(&repo, &["tag", "-a", "-m", "release", "1.1.0+1.21"]);
    git(&repo, &["tag", "not-a-version"]);

    write(&repo, "compose.yml", "# head, untagged\n");
    commit_all(&repo, "head");
    write(&repo, "compose.yml", "# dirty working tree\n");

    // Not recipes: a plain directory and a hidden repo.
    std::fs::create_dir_all(tmp.path().join("notes")).unwrap();
    std::fs::create_dir_all(tmp.path().join(".hidden")).unwrap();
    git(&tmp.path().join(".hidden"), &["init", "-q"]);

    let store = RecipeStore::new(tmp.path());
    (tmp, store)
}

fn text(bytes: Option<Vec<u8>>) -> String {
    String::from_utf8(bytes.expect("file exists")).unwrap()
}

#[test]
fn lists_recipes_and_versions() {
    let (_tmp, store) = fixture();
    assert_eq!(store.recipes(), vec!["gitea"]);
    assert!(store.has_recipe("gitea"));
    assert!(!store.has_recipe("notes"));
    assert!(!store.has_recipe("../gitea"));
    let versions: Vec<String> = store
        .versions("gitea")
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(versions, vec!["1.0.0+1.20", "1.1.0+1.21"]);
    assert_eq!(
        store.latest("gitea").unwrap().unwrap().to_string(),
        "1.1.0+1.21"
    );
}

#[test]
fn reads_each_tag_without_touching_the_repo() {
    let (tmp, store) = fixture();
    let repo = tmp.path().join("gitea");
    let head_before = git(&repo, &["rev-parse", "HEAD"]);
    let status_before = git(&repo, &["status", "--porcelain"]);

    let v1 = store.open("gitea", "1.0.0+1.20").unwrap();
    let v2 = store.open("gitea", "1.1.0+1.21").unwrap();
    assert_eq!(
        text(v1.read("compose.yml").unwrap()),
        "version: '3.8'\n# v1\n"
    );
    assert_eq!(
        text(v2.read("compose.yml").unwrap()),
        "version: '3.8'\n# v2\n"
    );
    assert_eq!(v1.read("compose.mariadb.yml").unwrap(), None);
    assert_eq!(
        v2.read_string("./files/../compose.mariadb.yml")
            .unwrap()
            .as_deref(),
        Some("services: {db: {}}\n")
    );

    // Commits: lightweight tag and peeled annotated tag both give commit ids.
    let c1 = git(&repo, &["rev-parse", "1.0.0+1.20^{commit}"]);
    let c2 = git(&repo, &["rev-parse", "1.1.0+1.21^{commit}"]);
    assert_eq!(v1.commit(), c1.trim());
    assert_eq!(v2.commit(), c2.trim());
    assert_eq!(v2.tag(), "1.1.0+1.21");
    assert_eq!(v2.version().unwrap().major(), 1);

    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), head_before);
    assert_eq!(git(&repo, &["status", "--porcelain"]), status_before);
    assert_eq!(
        std::fs::read_to_string(repo.join("compose.yml")).unwrap(),
        "# dirty working tree\n"
    );
}

#[test]
fn lists_directories() {
    let (_tmp, store) = fixture();
    let v1 = store.open("gitea", "1.0.0+1.20").unwrap();
    let v2 = store.open("gitea", "1.1.0+1.21").unwrap();
    assert_eq!(
        v1.list("").unwrap(),
        vec![".env.sample", "abra.sh", "compose.yml"]
    );
    assert_eq!(
        v2.list(".").unwrap(),
        vec![
            ".env.sample",
            "abra.sh",
            "compose.mariadb.yml",
            "compose.yml",
            "files/"
        ]
    );
    assert_eq!(v2.list("files").unwrap(), vec!["app.ini.tmpl"]);
    assert_eq!(v2.list("./files/").unwrap(), vec!["app.ini.tmpl"]);
    assert!(v2.list("nope").unwrap().is_empty());
    assert!(v1.list("files").unwrap().is_empty());
    assert!(
        v2.list("compose.yml").unwrap().is_empty(),
        "a file has no entries"
    );
    assert!(matches!(
        v2.read("files"),
        Err(RecipeError::NotAFile { .. })
    ));
}

#[test]
fn missing_version_lists_nearest_and_latest() {
    let (_tmp, store) = fixture();
    let err = store.open("gitea", "1.0.5+1.20").unwrap_err();
    match &err {
        RecipeError::NoSuchVersion {
            nearest, latest, ..
        } => {
            assert_eq!(nearest, &vec!["1.0.0+1.20", "1.1.0+1.21"]);
            assert_eq!(latest.as_deref(), Some("1.1.0+1.21"));
        }
        other => panic!("wrong error {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("1.0.5+1.20"), "{msg}");
    assert!(msg.contains("nearest: 1.0.0+1.20, 1.1.0+1.21"), "{msg}");
    assert!(msg.contains("latest: 1.1.0+1.21"), "{msg}");

    // A non-version tag can still be opened by its exact name.
    assert!(store.open("gitea", "not-a-version").is_ok());
    assert!(matches!(
        store.open("nope", "1.0.0"),
        Err(RecipeError::NoSuchRecipe { .. })
    ));
    assert!(matches!(
        store.open("../gitea", "1.0.0"),
        Err(RecipeError::InvalidName { .. })
    ));
}

#[test]
fn path_escape_is_rejected() {
    let (tmp, store) = fixture();
    std::fs::write(tmp.path().join("secret"), "outside").unwrap();
    let v1 = store.open("gitea", "1.0.0+1.20").unwrap();
    for bad in ["../secret", "files/../../secret", "/etc/passwd"] {
        assert!(
            matches!(v1.read(bad), Err(RecipeError::BadPath { .. })),
            "{bad}"
        );
    }
    assert!(matches!(v1.list(".."), Err(RecipeError::BadPath { .. })));
    assert!(matches!(v1.read("."), Err(RecipeError::BadPath { .. })));
}

#[test]
fn tag_cache_sees_new_tags_and_refresh() {
    let (tmp, store) = fixture();
    let repo = tmp.path().join("gitea");
    assert_eq!(store.versions("gitea").unwrap().len(), 2);
    git(&repo, &["tag", "2.0.0+2.0"]);
    assert_eq!(store.versions("gitea").unwrap().len(), 3, "refs changed");
    git(&repo, &["pack-refs", "--all"]);
    git(&repo, &["tag", "-d", "2.0.0+2.0"]);
    store.refresh();
    assert_eq!(store.versions("gitea").unwrap().len(), 2);
    assert!(store.open("gitea", "2.0.0+2.0").is_err());
}

#[test]
fn load_env_ties_the_sources_together() {
    let (_tmp, store) = fixture();
    let mut manifest = IndexMap::new();
    manifest.insert("LETS_ENCRYPT_ENV", "staging");
    let v2 = store.open("gitea", "1.1.0+1.21").unwrap();
    let env = v2
        .load_env(&manifest, "git_example_org", "git.example.org")
        .unwrap();
    assert_eq!(env["APP_INI_VERSION"], "v2");
    assert!(!env.contains_key("X"), "function-body export ignored");
    assert_eq!(env["LETS_ENCRYPT_ENV"], "staging");
    assert_eq!(env["DOMAIN"], "git.example.org");
    assert_eq!(env["STACK_NAME"], "git_example_org");
    assert_eq!(
        compose_files(&env),
        vec!["compose.yml", "compose.mariadb.yml"]
    );

    let v1 = store.open("gitea", "1.0.0+1.20").unwrap();
    let env = v1
        .load_env(Vec::<(String, String)>::new(), "s", "d")
        .unwrap();
    assert_eq!(env["APP_INI_VERSION"], "v1");
    assert_eq!(compose_files(&env), vec!["compose.yml"]);
}

#[test]
fn bad_env_sample_is_a_located_diagnostic() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("broken");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    write(&repo, ".env.sample", "A=1\nnot an assignment\n");
    commit_all(&repo, "broken");
    git(&repo, &["tag", "0.1.0+x"]);
    let store = RecipeStore::new(tmp.path());
    let at = store.open("broken", "0.1.0+x").unwrap();
    let err = at
        .load_env(Vec::<(String, String)>::new(), "s", "d")
        .unwrap_err();
    let RecipeError::Env(d) = err else {
        panic!("wrong error {err:?}")
    };
    assert_eq!(
        d.to_string().split(": ").next(),
        Some("broken@0.1.0+x:.env.sample:2:1")
    );
}

#[test]
fn git_failures_are_clear_errors_and_never_climb_to_an_enclosing_repo() {
    let tmp = tempfile::tempdir().unwrap();
    // The store lives inside another repository that has a version tag of its own.
    git(tmp.path(), &["init", "-q"]);
    write(tmp.path(), "compose.yml", "# enclosing repo\n");
    commit_all(tmp.path(), "outer");
    git(tmp.path(), &["tag", "1.0.0"]);
    // Looks like a repo (has .git) but is not one: git must fail rather than find the outer repo.
    std::fs::create_dir_all(tmp.path().join("recipes/fake/.git")).unwrap();
    let store = RecipeStore::new(tmp.path().join("recipes"));
    let err = store.versions("fake").unwrap_err();
    assert!(matches!(err, RecipeError::Git { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("for-each-ref") && msg.contains("fake"),
        "{msg}"
    );
}

#[test]
fn store_and_recipe_at_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RecipeStore>();
    assert_send_sync::<super::RecipeAt>();
}

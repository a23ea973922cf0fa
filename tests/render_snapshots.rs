//! Render snapshots: every fixture recipe at every version, rendered through the whole desired-state
//! pipeline (manifest -> recipe at its tag -> env -> compose load/merge/interpolate -> model ->
//! render), compared with the committed `tests/snapshots/<recipe>@<version>.json` (canonical pretty
//! JSON, the tag's commit id left out). `UPDATE_SNAPSHOTS=1 cargo test --test render_snapshots`
//! rewrites them; review the diff before committing. Also checks that rendering is deterministic.

mod common;

use std::path::{Path, PathBuf};

use common::recipes::{fixtures_dir, recipe_repos, version_key};
use hearth::{desired, manifest};
use serde_json::Value;

/// The pool domain every snapshot deployment lives under.
const POOL_DOMAIN: &str = "snap.example.org";

fn snapshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// Every `(recipe, version)` of the fixture recipes, sorted.
fn fixture_versions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut recipes: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("read fixtures")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    recipes.sort();
    for r in recipes {
        let mut versions: Vec<String> = std::fs::read_dir(fixtures_dir().join(&r))
            .expect("read recipe dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        versions.sort_by_key(|v| version_key(v));
        out.extend(versions.into_iter().map(|v| (r.clone(), v)));
    }
    out
}

/// A one-deployment pool for `recipe` at `version` (deployment named after the recipe, role plain,
/// so the stack is `<recipe>_snap_example_org`).
fn pool_manifest(repos: &Path, recipe: &str, version: &str) -> String {
    format!(
        "apiVersion: hearth/v1\nkind: Pool\nmetadata: {{name: snapshots}}\nspec:\n  domain: \
         {POOL_DOMAIN}\n  recipes: {}\n---\napiVersion: hearth/v1\nkind: Deployment\nmetadata: \
         {{name: {recipe}}}\nspec:\n  recipe: {recipe}\n  version: \"{version}\"\n  role: plain\n",
        repos.display()
    )
}

/// Renders one fixture version and returns its snapshot text: canonical pretty JSON of the
/// rendered deployment (without `commit`) plus the pool's warnings, ending in a newline.
fn render_snapshot(repos: &Path, work: &Path, recipe: &str, version: &str) -> String {
    let file = work.join(format!("{recipe}@{version}.yml"));
    std::fs::write(&file, pool_manifest(repos, recipe, version)).expect("write manifest");
    let loaded = manifest::load_paths(std::slice::from_ref(&file));
    let store = desired::recipe_store(&loaded, None).expect("the pool names its recipes");
    let pool = desired::build(&loaded, &store, None);
    let lines = |ds: &[hearth::diag::Diagnostic]| -> Value {
        Value::Array(ds.iter().map(|d| Value::String(d.to_string())).collect())
    };
    let v = match pool.get(recipe) {
        Some(d) => {
            assert!(
                pool.errors.is_empty(),
                "{recipe}@{version} rendered with errors: {:?}",
                pool.errors
            );
            // Printed as `hearth render` prints it: Docker's key names.
            let mut v = hearth::render::docker_key_names(
                hearth::render::canonical_value(d).expect("serialize"),
            );
            let Value::Object(m) = &mut v else {
                panic!("a deployment serializes to an object")
            };
            // The commit id changes with every repo creation (timestamps); nothing else may.
            assert!(
                m.remove("commit").is_some(),
                "the rendering names its commit"
            );
            m.insert("pool_warnings".into(), lines(&pool.warnings));
            v
        }
        // A fixture version that is invalid on purpose: its snapshot is the diagnostics.
        None => {
            assert!(
                !pool.errors.is_empty(),
                "{recipe}@{version}: neither rendered nor an error"
            );
            serde_json::json!({
                "errors": lines(&pool.errors),
                "pool_warnings": lines(&pool.warnings),
            })
        }
    };
    let sorted = hearth::render::canonical_value(&v).expect("re-sort");
    let mut text = serde_json::to_string_pretty(&sorted).expect("print");
    text.push('\n');
    text
}

/// The first differing line of two texts, with two lines of context, for a failure message.
fn first_difference(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let Some(i) = (0..e.len().max(a.len())).find(|&i| e.get(i) != a.get(i)) else {
        return "the texts differ only in line endings".into();
    };
    let mut out = format!("first difference at line {}:\n", i + 1);
    for l in &e[i.saturating_sub(2).min(e.len())..i.min(e.len())] {
        out.push_str(&format!("    {l}\n"));
    }
    for l in e.iter().skip(i).take(3) {
        out.push_str(&format!("  - {l}\n"));
    }
    for l in a.iter().skip(i).take(3) {
        out.push_str(&format!("  + {l}\n"));
    }
    out
}

fn render_all(repos: &Path) -> Vec<((String, String), String)> {
    let work = tempfile::tempdir().expect("temp dir");
    fixture_versions()
        .into_iter()
        .map(|(r, v)| {
            let text = render_snapshot(repos, work.path(), &r, &v);
            ((r, v), text)
        })
        .collect()
}

#[test]
fn every_fixture_version_matches_its_snapshot() {
    let repos = recipe_repos(&[]);
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let dir = snapshots_dir();
    let mut failures = Vec::new();
    let rendered = render_all(repos.path());
    assert!(rendered.len() >= 14, "fixture versions: {}", rendered.len());
    for ((recipe, version), actual) in &rendered {
        let path = dir.join(format!("{recipe}@{version}.json"));
        if update {
            std::fs::create_dir_all(&dir).expect("create snapshots dir");
            std::fs::write(&path, actual).expect("write snapshot");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == *actual => {}
            Ok(expected) => failures.push(format!(
                "{}: rendering changed; {}",
                path.display(),
                first_difference(&expected, actual)
            )),
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    // A snapshot without a fixture version is stale.
    if !update {
        for e in std::fs::read_dir(&dir)
            .expect("read snapshots dir")
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let known = rendered
                .iter()
                .any(|((r, v), _)| name == format!("{r}@{v}.json"));
            if !known {
                failures.push(format!(
                    "{name}: no fixture version renders to this snapshot"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended: UPDATE_SNAPSHOTS=1 cargo test --test render_snapshots, \
         then review `git diff tests/snapshots`.",
        failures.join("\n\n")
    );
}

#[test]
fn rendering_is_deterministic_across_repo_builds() {
    // Two independent repo builds (different commit ids), rendered separately: identical bytes.
    let first = render_all(recipe_repos(&[]).path());
    let second = render_all(recipe_repos(&[]).path());
    assert_eq!(first.len(), second.len());
    for ((key, a), (_, b)) in first.iter().zip(&second) {
        assert!(
            a == b,
            "{}@{}: two renderings differ: {}",
            key.0,
            key.1,
            first_difference(a, b)
        );
    }
}

#[test]
fn snapshot_diffs_point_at_the_first_changed_line() {
    let d = first_difference("a\nb\nc\nd\n", "a\nb\nX\nd\n");
    assert!(d.starts_with("first difference at line 3:"), "{d}");
    assert!(d.contains("  - c\n") && d.contains("  + X\n"), "{d}");
    assert!(d.contains("    b\n"), "{d}");
    let longer = first_difference("a\n", "a\nb\n");
    assert!(
        longer.contains("line 2") && longer.contains("  + b"),
        "{longer}"
    );
}

#[test]
fn kitchen_sink_covers_the_supported_keys() {
    // The kitchen-sink fixture is the one meant to exercise every key; guard against it shrinking.
    let text = std::fs::read_to_string(snapshots_dir().join("kitchen-sink@1.0.0+1.json"))
        .expect("kitchen-sink snapshot");
    for needle in [
        "\"Args\"",
        "\"Command\"",
        "\"CapabilityAdd\"",
        "\"CapabilityDrop\"",
        "\"DNSConfig\"",
        "\"Hosts\"",
        "\"Init\": true",
        "\"OpenStdin\": true",
        "\"TTY\": true",
        "\"ReadOnly\": true",
        "\"Sysctls\"",
        "\"Ulimits\"",
        "\"LogDriver\"",
        "\"StopGracePeriod\"",
        "\"StopSignal\"",
        "\"Hostname\"",
        "\"User\"",
        "\"Dir\"",
        "\"Global\"",
        "\"Mode\": \"dnsrr\"",
        "\"PublishMode\": \"host\"",
        "\"MaxReplicas\"",
        "\"Preferences\"",
        "\"RollbackConfig\"",
        "\"Templating\"",
        "\"TmpfsOptions\"",
        "\"NoCopy\": true",
        "\"Mode\": 288",
        "\"CMD-SHELL\"",
        "\"NONE\"",
        "KS_NOT_SET\"",
        "KS_EMPTY=\"",
        "depends_on",
        "services.worker.tmpfs",
    ] {
        assert!(
            text.contains(needle),
            "kitchen-sink snapshot lacks {needle}"
        );
    }
}

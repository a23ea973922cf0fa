//! The `hearth` binary end to end on manifests written to a temp dir and the fixture recipe repos:
//! `validate` exit codes and its `file:line:col: field: message` lines (one invalid document never
//! hides the others), `render` output in JSON (deterministic bytes) and YAML, unknown deployments.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::recipes::recipe_repos;
use serde_json::Value;

fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .env_remove("HEARTH_RECIPES")
        .output()
        .expect("run hearth")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write manifest");
    p
}

fn pool_doc(recipes: &Path) -> String {
    format!(
        "apiVersion: hearth/v1\nkind: Pool\nmetadata: {{name: ci}}\nspec:\n  domain: ci.example.org\n  \
         recipes: {}\n",
        recipes.display()
    )
}

const VALID: &str = "---
apiVersion: hearth/v1
kind: Deployment
metadata: {name: sink}
spec:
  recipe: kitchen-sink
  version: 1.1.0+2
  role: plain
  secrets:
    db_password: {generate: {length: 32}}
---
apiVersion: hearth/v1
kind: Deployment
metadata: {name: gitea}
spec:
  recipe: gitea
  version: 3.6.0+1.24.2-rootless
  role: canonical
";

#[test]
fn a_valid_pool_exits_zero() {
    let repos = recipe_repos(&[]);
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "pool.yml",
        &format!("{}{VALID}", pool_doc(repos.path())),
    );
    let out = hearth(&["validate", "-f", f.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("2 deployment(s) valid, 2 rendered"));
    // Warnings are printed but do not fail validation.
    assert!(
        text(&out.stdout).contains("services.worker.depends_on: warning: Swarm ignores depends_on"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn the_example_pool_is_valid() {
    let repos = recipe_repos(&[]);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/examples/pool.yml");
    let out = hearth(&[
        "validate",
        "-f",
        example.to_str().unwrap(),
        "--recipes",
        repos.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Five documents with one problem each, a YAML syntax error in the middle, and a valid one last.
const INVALID: &str = "---
apiVersion: hearth/v1
kind: Deployment
metadata: {name: gitea}
spec:
  recipe: gitea
  version: 3.5.3+1.24.2-rootless
  role: canonical
  colour: blue
---
apiVersion: hearth/v1
kind: Deployment
metadata: {name: keycloak}
spec:
  recipe: keycloak
  version: 1.0.0+25.0.6
  role: plain
  progressDeadline: soon
---
apiVersion: hearth/v1
kind: Deployment
metadata: {name: mumble}
spec:
  recipe: mumble
  version: 1.2.0+1.5.634
  role: canonical
---
apiVersion: hearth/v1
kind: Deployment
metadata: {name: pds}
spec:
  recipe: bluesky-pds
  version: 0.2.0+0.4.1
  role: plain
  domain: same.example.org
---
apiVersion: hearth/v1
kind: Deployment
metadata: {name: pds-old}
spec:
  recipe: bluesky-pds
  version: 0.1.0+0.4.0
  role: plain
  domain: same.example.org
---
apiVersion: hearth/v1
kind: Deployment
metadata: {name: discourse}
spec:
  recipe: discourse
  version: 1.1.0+3.3.0
  role: canonical
---
apiVersion: hearth/v1
kind: Deployment
metadata: {name: broken
spec: [
---
apiVersion: hearth/v1
kind: Deployment
metadata: {name: mattermost}
spec:
  recipe: mattermost
  version: 8.0.0+9.11.1
  role: canonical
";

#[test]
fn an_invalid_pool_reports_every_problem_with_its_position() {
    let repos = recipe_repos(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_doc(repos.path());
    // The Pool document is 6 lines; the deployments start at line 7.
    assert_eq!(pool.lines().count(), 6);
    let f = write(dir.path(), "bad.yml", &format!("{pool}{INVALID}"));
    let file = f.to_str().unwrap();
    let out = hearth(&["validate", "-f", file]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}");
    let expected = [
        format!("{file}:15:3: spec.colour: unknown field `colour`, expected one of "),
        format!(
            "{file}:24:21: spec.progressDeadline: invalid duration \"soon\" (expected number at \
             0); write e.g. 30s, 10m, 1h30m or 200ms"
        ),
        format!(
            "{file}:31:12: spec.version: recipe mumble has no version tag \"1.2.0+1.5.634\"; \
             nearest: 1.0.0+1.5.517, 1.1.0+1.5.634; latest: 1.1.0+1.5.634"
        ),
        format!(
            "{file}:50:11: spec.domain: domain \"same.example.org\" of deployment \"pds-old\" is \
             also the domain of \"pds\" ({file}:41:11)"
        ),
        // The overlay that defines the service, and the line of the service in it.
        "discourse@1.1.0+3.3.0:compose.sidekiq.yml:5:5: services.sidekiq.image: no image \
         specified (Swarm services need one)"
            .to_string(),
        format!("{file}:63:5: metadata: while parsing a flow mapping"),
    ];
    for e in &expected {
        assert!(
            stdout.lines().any(|l| l.starts_with(e.as_str())),
            "missing line starting with\n  {e}\nin\n{stdout}"
        );
    }
    assert_eq!(
        stdout.lines().filter(|l| !l.contains("warning")).count(),
        expected.len(),
        "exactly the expected problems:\n{stdout}"
    );
    // The document after the syntax error still loads and renders.
    let r = hearth(&["render", "-f", file, "--deployment", "mattermost"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let v: Value = serde_json::from_slice(&r.stdout).expect("render prints JSON");
    assert_eq!(v["deployment"], "mattermost");
}

#[test]
fn render_prints_deterministic_json_and_yaml() {
    let repos = recipe_repos(&[]);
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "pool.yml",
        &format!("{}{VALID}", pool_doc(repos.path())),
    );
    let file = f.to_str().unwrap();
    let run = |fmt: &str| {
        let out = hearth(&["render", "-f", file, "--deployment", "sink", "-o", fmt]);
        assert!(out.status.success(), "{fmt}: {}", text(&out.stderr));
        out.stdout
    };
    let (a, b) = (run("json"), run("json"));
    assert!(!a.is_empty());
    assert_eq!(a, b, "two renders of the same input print the same bytes");
    let json: Value = serde_json::from_slice(&a).expect("JSON");
    assert_eq!(json["stack"], "sink_ci_example_org");
    assert_eq!(json["version"], "1.1.0+2");
    let services = json["stack_spec"]["services"].as_array().expect("services");
    let names: Vec<&str> = services.iter().filter_map(|s| s["key"].as_str()).collect();
    assert_eq!(names, ["app", "edge", "sidecar", "worker"]);

    let yaml = text(&run("yaml"));
    assert_eq!(yaml, text(&run("yaml")), "YAML is deterministic too");
    let from_yaml: Value = serde_saphyr::from_str(&yaml).expect("YAML parses");
    assert_eq!(from_yaml["stack"], json["stack"]);
    assert_eq!(
        from_yaml["stack_spec"]["services"][0]["spec_hash"],
        services[0]["spec_hash"]
    );
    assert_eq!(
        from_yaml["stack_spec"]["configs"],
        json["stack_spec"]["configs"]
    );
}

#[test]
fn render_of_an_unknown_deployment_fails_clearly() {
    let repos = recipe_repos(&[]);
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "pool.yml",
        &format!("{}{VALID}", pool_doc(repos.path())),
    );
    let out = hearth(&["render", "-f", f.to_str().unwrap(), "--deployment", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("no deployment named \"nope\" in the manifests"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn render_of_an_invalid_deployment_prints_its_errors() {
    let repos = recipe_repos(&[]);
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "pool.yml",
        &format!(
            "{}---\napiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec:\n  \
             recipe: discourse\n  version: 1.1.0+3.3.0\n  role: plain\n",
            pool_doc(repos.path())
        ),
    );
    let out = hearth(&["render", "-f", f.to_str().unwrap(), "--deployment", "d"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("compose.sidekiq.yml:5:5: services.sidekiq.image"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_64_not_2() {
    // 2 is `plan --detailed-exitcode`'s "changes present"; a usage error must not look like it.
    for args in [
        &["plan", "--no-such-flag"][..],
        &["render", "-f", "x.yml"],
        &["render", "a", "--deployment", "b", "-f", "x.yml"],
        &["completions", "tcsh"],
        &["validate", "-o", "yaml", "-f", "x.yml"],
        &["no-such-command"],
        &[],
    ] {
        let out = hearth(args);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?}: clap says why");
    }
    for args in [&["--help"][..], &["--version"], &["plan", "--help"]] {
        let out = hearth(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
    let help = text(&hearth(&["plan", "--help"]).stdout);
    assert!(help.contains("usage error"), "{help}");
}

#[test]
fn completions_for_each_shell() {
    for (shell, needle) in [
        ("bash", "complete"),
        ("zsh", "#compdef hearth"),
        ("fish", "complete -c hearth"),
    ] {
        let out = hearth(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains(needle), "{shell}: {script:.200}");
        assert!(
            script.contains("validate") && script.contains("detailed-exitcode"),
            "{shell}"
        );
    }
}

#[test]
fn render_and_apply_take_the_name_either_way() {
    let repos = recipe_repos(&[]);
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "pool.yml",
        &format!("{}{VALID}", pool_doc(repos.path())),
    );
    let file = f.to_str().unwrap();
    let a = hearth(&["render", "sink", "-f", file]);
    let b = hearth(&["render", "-f", file, "--deployment", "sink"]);
    assert!(a.status.success(), "{}", text(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let out = hearth(&["render", "nope", "-f", file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no deployment named \"nope\""));
    // apply parses both forms (it fails later, on the unknown name, before talking to Docker).
    for args in [
        &["apply", "nope", "-f", file][..],
        &["apply", "-f", file, "--deployment", "nope"],
    ] {
        let out = hearth(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("no deployment named \"nope\""),
            "{args:?}"
        );
    }
}

#[test]
fn validate_prints_json_problems() {
    let repos = recipe_repos(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_doc(repos.path());
    let f = write(dir.path(), "bad.yml", &format!("{pool}{INVALID}"));
    let file = f.to_str().unwrap();
    let out = hearth(&["validate", "-f", file, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("validate -o json prints JSON");
    let problems = v.as_array().expect("a list of problems");
    let errors: Vec<&Value> = problems
        .iter()
        .filter(|p| p["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 6, "{v:#}");
    let colour = errors
        .iter()
        .find(|p| p["field"] == "spec.colour")
        .expect("the unknown field");
    assert_eq!(colour["file"], file);
    assert_eq!(
        (colour["line"].as_u64(), colour["column"].as_u64()),
        (Some(15), Some(3))
    );
    assert!(
        colour["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown field `colour`")
    );
    // A recipe file's problem names the overlay; warnings are marked as such.
    assert!(
        errors
            .iter()
            .any(|p| p["file"] == "discourse@1.1.0+3.3.0:compose.sidekiq.yml")
    );
    for p in problems {
        for k in ["file", "line", "column", "field", "message", "severity"] {
            assert!(p.get(k).is_some(), "{k} in {p}");
        }
    }
    // A valid pool: an empty list of errors, its warnings marked.
    let f = write(dir.path(), "good.yml", &format!("{pool}{VALID}"));
    let out = hearth(&["validate", "-f", f.to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let list = v.as_array().expect("list");
    assert!(list.iter().all(|p| p["severity"] == "warning"), "{v:#}");
    assert!(
        list.iter()
            .any(|p| p["message"].as_str().unwrap().contains("depends_on"))
    );
}

#[test]
fn schema_prints_the_committed_schema() {
    let out = hearth(&["schema"]);
    assert!(out.status.success());
    let committed =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/manifest.schema.json"))
            .unwrap();
    assert_eq!(
        out.stdout, committed,
        "regenerate: cargo run -q -- schema > docs/manifest.schema.json"
    );
    let md = hearth(&["schema", "--markdown"]);
    assert!(text(&md.stdout).starts_with("<!-- Generated by `hearth schema --markdown"));
}

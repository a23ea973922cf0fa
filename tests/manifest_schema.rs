//! The manifest JSON Schema and reference (docs/manifest.schema.json, docs/manifest.md) are what
//! the types generate today, every example manifest in the repository validates against the
//! schema, and the schema rejects what hearth's loader rejects on a few typical mistakes.

use std::path::{Path, PathBuf};

use hearth::manifest::schema;
use serde_json::Value;

const REGENERATE: &str = "regenerate with: cargo run -q -- schema > docs/manifest.schema.json && \
                          cargo run -q -- schema --markdown > docs/manifest.md";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

#[test]
fn committed_schema_and_reference_are_fresh() {
    assert!(
        read("docs/manifest.schema.json") == schema::json_schema_text(),
        "docs/manifest.schema.json is stale; {REGENERATE}"
    );
    assert!(
        read("docs/manifest.md") == schema::markdown(),
        "docs/manifest.md is stale; {REGENERATE}"
    );
}

fn validator() -> jsonschema::Validator {
    let s: Value = serde_json::from_str(&read("docs/manifest.schema.json")).expect("JSON");
    jsonschema::validator_for(&s).expect("a valid JSON Schema")
}

/// The YAML documents of a multi-document text, as JSON values (comment-only parts skipped).
fn documents(text: &str) -> Vec<Value> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else {
            let last = docs.last_mut().expect("one");
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|d| serde_saphyr::from_str::<Value>(d).unwrap_or_else(|e| panic!("YAML: {e}\n{d}")))
        .collect()
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Every example manifest: files under manifests/examples/ and the ```yaml blocks of docs/*.md
/// that are hearth manifests.
fn examples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("manifests/examples"))
        .expect("manifests/examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        out.push((f.display().to_string(), text));
    }
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    for d in docs {
        let text = std::fs::read_to_string(&d).expect("read");
        for (i, block) in yaml_blocks(&text).into_iter().enumerate() {
            if block.contains("apiVersion: hearth/v1") {
                out.push((format!("{} yaml block {}", d.display(), i + 1), block));
            }
        }
    }
    out
}

/// The bodies of the ```yaml fenced blocks of a Markdown text.
fn yaml_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in md.lines() {
        let t = line.trim_start();
        match &mut cur {
            None if t.starts_with("```yaml") || t.starts_with("```yml") => {
                cur = Some(String::new())
            }
            Some(_) if t.starts_with("```") => out.extend(cur.take()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn every_example_manifest_validates_against_the_schema() {
    let v = validator();
    let examples = examples();
    assert!(
        examples.iter().any(|(n, _)| n.contains("pool.yml")),
        "{examples:?}"
    );
    assert!(
        examples
            .iter()
            .any(|(n, _)| n.contains("getting-started.md")),
        "the guide's manifests are checked too"
    );
    let mut n = 0;
    for (name, text) in &examples {
        for doc in documents(text) {
            let errs = errors(&v, &doc);
            assert!(errs.is_empty(), "{name}: {}\n{doc}", errs.join("\n"));
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} documents checked");
}

#[test]
fn the_schema_rejects_what_the_loader_rejects() {
    let v = validator();
    let pool =
        "apiVersion: hearth/v1\nkind: Pool\nmetadata: {name: ci}\nspec: {domain: ci.example.org}\n";
    let good = "apiVersion: hearth/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  recipe: r\n  \
                version: 1.0.0\n  env: {PORT: 8080, DEBUG: true}\n  probes:\n    - tcp: {service: \
                app, port: 80, stableFor: 2s}\n";
    for doc in documents(&format!("{pool}---\n{good}")) {
        assert_eq!(errors(&v, &doc), Vec::<String>::new(), "{doc}");
    }
    let loaded = hearth::manifest::load_str(&format!("{pool}---\n{good}"), Path::new("m.yml"));
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let bad = [
        (
            "spec:\n  recipe: r\n  version: 1.0.0\n  colour: blue\n",
            "unknown field",
        ),
        (
            "spec:\n  recipe: r\n  version: 1.0.0\n  role: leader\n",
            "unknown role",
        ),
        (
            "spec:\n  recipe: r\n  version: 1.0.0\n  progressDeadline: soon\n",
            "bad duration",
        ),
        ("spec:\n  recipe: r\n", "missing version"),
        (
            "spec:\n  recipe: r\n  version: 1.0.0\n  probes:\n    - {http: {service: a, port: 1}, \
             tcp: {service: a, port: 1}}\n",
            "two probe kinds in one entry",
        ),
    ];
    for (spec, what) in bad {
        let text = format!(
            "{pool}---\napiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: a}}\n{spec}"
        );
        let docs = documents(&text);
        assert!(!errors(&v, &docs[1]).is_empty(), "schema accepts {what}");
        let loaded = hearth::manifest::load_str(&text, Path::new("m.yml"));
        assert!(!loaded.diagnostics.is_empty(), "loader accepts {what}");
    }
    let wrong_kind =
        documents("apiVersion: hearth/v1\nkind: Service\nmetadata: {name: a}\nspec: {}\n");
    assert!(!errors(&v, &wrong_kind[0]).is_empty());
}

//! Loading manifests: files and directories of multi-document YAML into [`Loaded`].
//!
//! Every document is parsed on its own (see `split`), so one bad document never hides another's
//! errors nor stops the valid ones from loading. Problems become [`Diagnostic`]s with file,
//! line, column and dotted field path. Rules across documents: exactly one `Pool` when there are
//! deployments, deployment names unique (the first document with a name wins, the later one is
//! reported and dropped).

use super::fields;
use super::positions::{positions, to_pos};
use super::split::{Chunk, split_documents};
use super::types::{
    API_VERSION, Deployment, DeploymentSpec, Metadata, Origin, Pool, PoolSpec, SecretSource,
};
use crate::diag::{Diagnostic, Pos};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_saphyr::{MessageFormatter, Spanned, UserMessageFormatter};
use std::path::{Path, PathBuf};

/// What a set of manifests yielded: the valid objects and every problem found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub pool: Option<Pool>,
    pub deployments: Vec<Deployment>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn deployment(&self, name: &str) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.name() == name)
    }
}

/// Loads manifest files and directories. A directory is searched recursively for `*.yml` and
/// `*.yaml` files (names starting with `.` are skipped, so a `.git` or `.github` inside a
/// manifest repo is ignored), loaded in path order; a file named directly is loaded whatever its
/// extension. Unreadable paths are diagnostics too.
pub fn load_paths(paths: &[PathBuf]) -> Loaded {
    let mut acc = Acc::default();
    for path in paths {
        let mut files = Vec::new();
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => collect_yaml(path, 0, &mut files, &mut acc.loaded.diagnostics),
            Ok(_) => files.push(path.clone()),
            Err(e) => acc.diag(path, Pos::default(), "", format!("cannot read: {e}")),
        }
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => acc.load_text(&text, &file),
                Err(e) => acc.diag(&file, Pos::default(), "", format!("cannot read: {e}")),
            }
        }
    }
    acc.finish()
}

/// Loads a manifest set given as texts, each under its label (a path, or `<path>@<commit>` for
/// files read from git), in order, by the same set rules as [`load_paths`]: exactly one `Pool`
/// (the first wins), deployment names unique (the first wins), "no Pool" reported once for the
/// set. The one implementation of those rules, for directories and git revisions alike.
pub fn load_texts(files: &[(PathBuf, String)]) -> Loaded {
    let mut acc = Acc::default();
    for (label, text) in files {
        acc.load_text(text, label);
    }
    acc.finish()
}

/// A digest of the manifest files [`load_paths`] would read (names and contents): the controller
/// compares it on every poll to reload changed manifests at once, not at the next resync.
pub fn fingerprint(paths: &[PathBuf]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut ignored = Vec::new();
    for path in paths {
        let mut files = Vec::new();
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => collect_yaml(path, 0, &mut files, &mut ignored),
            Ok(_) => files.push(path.clone()),
            Err(_) => {}
        }
        for file in files {
            h.update(file.to_string_lossy().as_bytes());
            h.update([0]);
            if let Ok(data) = std::fs::read(&file) {
                h.update((data.len() as u64).to_le_bytes());
                h.update(&data);
            }
        }
    }
    h.finalize().into()
}

/// Loads the manifests in `text` as if read from `file`. Never panics.
pub fn load_str(text: &str, file: &Path) -> Loaded {
    let mut acc = Acc::default();
    acc.load_text(text, file);
    acc.finish()
}

const MAX_DIR_DEPTH: usize = 32;

fn collect_yaml(dir: &Path, depth: usize, files: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    if depth > MAX_DIR_DEPTH {
        diags.push(Diagnostic::new(
            dir,
            Pos::default(),
            "",
            "directories nested too deep (a symlink loop?)",
        ));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            diags.push(Diagnostic::new(
                dir,
                Pos::default(),
                "",
                format!("cannot read: {e}"),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            collect_yaml(&p, depth + 1, files, diags);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yml") | Some("yaml")
        ) {
            files.push(p);
        }
    }
}

/// The part of every document read before its kind is known.
#[derive(Deserialize)]
struct Header {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<Spanned<String>>,
    #[serde(default)]
    kind: Option<Spanned<String>>,
}

/// A whole document of one kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Doc<S> {
    #[allow(dead_code)]
    api_version: IgnoredAny,
    #[allow(dead_code)]
    kind: IgnoredAny,
    metadata: Metadata,
    spec: S,
}

/// A parse failure: the dotted path where it happened, its position and message.
struct Failure {
    path: String,
    pos: Pos,
    message: String,
}

/// Deserializes one document starting `line_offset` lines into its file, tracking the field path
/// of a failure.
fn parse<T: DeserializeOwned>(text: &str, line_offset: usize) -> Result<T, Failure> {
    let mut path = String::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = dotted(e.path());
            e.into_inner()
        })
    });
    result.map_err(|e| Failure {
        path,
        pos: e
            .location()
            .map(|l| to_pos(&l, line_offset))
            .unwrap_or_default(),
        message: sanitize(&UserMessageFormatter.format_message(&e)),
    })
}

/// Escapes control characters in messages (the input is untrusted).
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut s = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => s.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    s
}

/// Makes serde's messages speak about manifests; for a missing field, extends the path to it and
/// says so (the last element).
fn explain(f: Failure) -> (String, Pos, String, bool) {
    let Failure {
        mut path,
        pos,
        mut message,
    } = f;
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(name) = rest.strip_suffix('`')
    {
        path = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        message = "required field is missing".into();
        return (path, pos, message, true);
    } else if message.contains("end of mapping after enum variant") {
        let what = if path.contains("probes[") {
            "a probe has exactly one of http, tcp, exec, docker"
        } else if path.contains("secrets.") {
            "a secret has exactly one of generate, file"
        } else {
            "exactly one key expected here"
        };
        message = what.into();
        // The path ends in the first variant's name; the problem is the entry holding it.
        if let Some(i) = path.rfind('.') {
            path.truncate(i);
        }
    } else if message.contains("null is not allowed") && path.starts_with("spec.env.") {
        message = "null value; write '' for an empty value".into();
    }
    (path, pos, message, false)
}

#[derive(Default)]
struct Acc {
    loaded: Loaded,
    pools: Vec<Pool>,
    /// A `kind: Pool` document was seen, valid or not (an invalid one is reported already).
    saw_pool: bool,
}

impl Acc {
    fn diag(&mut self, file: &Path, pos: Pos, field: &str, message: impl Into<String>) {
        self.loaded
            .diagnostics
            .push(Diagnostic::new(file, pos, field, message));
    }

    /// Reports a parse failure of the document `text`.
    fn fail(&mut self, file: &Path, chunk: &Chunk<'_>, f: Failure) {
        let parent = f.path.clone();
        let (path, mut pos, message, missing) = explain(f);
        if missing {
            // A missing field: serde-saphyr points at the end of the mapping, which may be far
            // below (or past the end of the document); point at the mapping itself instead.
            if let Some(p) = positions(chunk.text, chunk.first_line).get(&parent) {
                pos = *p;
            }
        }
        self.diag(file, pos, &path, message);
    }

    fn load_text(&mut self, text: &str, file: &Path) {
        for chunk in split_documents(text) {
            if !chunk.is_blank() {
                self.load_document(&chunk, file);
            }
        }
    }

    fn load_document(&mut self, chunk: &Chunk<'_>, file: &Path) {
        let (text, offset) = (chunk.text, chunk.first_line);
        let header: Spanned<Header> = match parse(text, offset) {
            Ok(h) => h,
            Err(mut f) => {
                // `Spanned` adds `value` segments; `Header` has no field of that name.
                let parts: Vec<&str> = f.path.split('.').filter(|s| *s != "value").collect();
                f.path = parts.join(".");
                return self.fail(file, chunk, f);
            }
        };
        let doc_pos = to_pos(&header.referenced, offset);
        let Header { api_version, kind } = header.value;
        let mut ok = true;
        match api_version {
            None => {
                self.diag(
                    file,
                    doc_pos,
                    "apiVersion",
                    format!("required field is missing (use {API_VERSION})"),
                );
                ok = false;
            }
            Some(v) if v.value != API_VERSION => {
                let msg = format!(
                    "unsupported apiVersion {:?}; expected {API_VERSION}",
                    v.value
                );
                self.diag(file, to_pos(&v.referenced, offset), "apiVersion", msg);
                ok = false;
            }
            Some(_) => {}
        }
        let kind = match kind {
            None => {
                self.diag(
                    file,
                    doc_pos,
                    "kind",
                    "required field is missing (Pool or Deployment)",
                );
                return;
            }
            Some(k) => k,
        };
        if !ok {
            return;
        }
        let origin = || Origin {
            file: file.to_path_buf(),
            pos: doc_pos,
            fields: positions(text, offset),
        };
        let base = file.parent().unwrap_or(Path::new(""));
        match kind.value.as_str() {
            "Pool" => {
                match parse::<Doc<PoolSpec>>(text, offset).inspect_err(|_| self.saw_pool = true) {
                    Ok(d) => {
                        let mut spec = d.spec;
                        if !spec.recipes.starts_with("~") {
                            spec.recipes = base.join(&spec.recipes);
                        }
                        self.pools.push(Pool {
                            metadata: d.metadata,
                            spec,
                            origin: origin(),
                        })
                    }
                    Err(f) => self.fail(file, chunk, f),
                }
            }
            "Deployment" => match parse::<Doc<DeploymentSpec>>(text, offset) {
                Ok(d) => {
                    let mut spec = d.spec;
                    resolve_secret_files(&mut spec, base);
                    self.add_deployment(Deployment {
                        metadata: d.metadata,
                        spec,
                        origin: origin(),
                        live_domain: None,
                    });
                }
                Err(f) => self.fail(file, chunk, f),
            },
            other => {
                let msg = format!("unknown kind {other:?}; expected Pool or Deployment");
                self.diag(file, to_pos(&kind.referenced, offset), "kind", msg);
            }
        }
    }

    fn add_deployment(&mut self, d: Deployment) {
        if let Some(first) = self.loaded.deployment(d.name()) {
            let msg = format!(
                "duplicate deployment name {:?}; also defined at {}:{}:{} (the first one is kept)",
                d.name(),
                first.origin.file.display(),
                first.origin.pos.line,
                first.origin.pos.col
            );
            let pos = d.origin.pos_of("metadata.name");
            let file = d.origin.file.clone();
            self.diag(&file, pos, "metadata.name", msg);
        } else {
            self.loaded.deployments.push(d);
        }
    }

    fn finish(mut self) -> Loaded {
        let mut pools = std::mem::take(&mut self.pools).into_iter();
        if let Some(first) = pools.next() {
            for extra in pools {
                let msg = format!(
                    "more than one Pool: {:?} here and {:?} at {}:{}:{}; a manifest set has exactly one",
                    extra.metadata.name,
                    first.metadata.name,
                    first.origin.file.display(),
                    first.origin.pos.line,
                    first.origin.pos.col
                );
                self.diag(&extra.origin.file, extra.origin.pos, "kind", msg);
            }
            self.loaded.pool = Some(first);
        } else if let Some(d) = self.loaded.deployments.first().filter(|_| !self.saw_pool) {
            let msg = format!(
                "no Pool: {} deployment(s) found but no document of kind Pool",
                self.loaded.deployments.len()
            );
            let (file, pos) = (d.origin.file.clone(), d.origin.pos);
            self.diag(&file, pos, "kind", msg);
        }
        self.loaded
    }
}

/// `file:` secrets: `~` expanded, relative paths resolved against the manifest's directory.
fn resolve_secret_files(spec: &mut DeploymentSpec, base: &Path) {
    let home = fields::home_dir();
    for source in spec.secrets.values_mut() {
        if let SecretSource::File(p) = source {
            let expanded = match p.to_str() {
                Some(s) => fields::expand_tilde(s, home.as_deref()),
                None => p.clone(),
            };
            if !expanded.starts_with("~") {
                *p = base.join(expanded);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::types::{Charset, DesiredState, Generate, Probe, Role};
    use crate::manifest::{Payload, parse_duration};
    use std::time::Duration;

    /// A full example using most fields (the project's first design example), verbatim.
    const EXAMPLE: &str = r#"apiVersion: hearth/v1
kind: Pool
metadata: {name: ci}
spec:
  domain: ci.example.org          # base domain for derived domains
  recipes: ~/.abra/recipes         # dir of recipe git repos (abra's layout); per-deployment `source:` may name a git URL
  defaults: {progressDeadline: 10m, selfHeal: true, prune: false, concurrency: 4}
---
apiVersion: hearth/v1
kind: Deployment
metadata: {name: gitea}
spec:
  recipe: gitea
  version: 3.6.0+1.24.2-rootless   # a tag of the recipe repo
  role: canonical                  # provider | canonical | plain
  state: running                   # running | parked (undeployed, volumes kept)
  domain: git.example.org          # optional; derived when absent (section 3)
  composeFiles: [compose.yml, compose.mariadb.yml]   # optional; else COMPOSE_FILE from env/.env.sample
  env: {LETS_ENCRYPT_ENV: staging}  # overrides on top of .env.sample
  secrets: {db_password: {generate: {length: 32}}}
  probes:
    - http: {service: app, port: 3000, path: /api/healthz, status: 200}
    - tcp:  {service: app, port: 64738, stableFor: 5s, send: "hex:0001", expect: "hex:0002"}
    - exec: {service: db, command: [pg_isready]}
  progressDeadline: 5m
  advance: {backup: true, rollback: true, allowMajor: false}
  dependsOn: [keycloak]
  suspend: false
  pinVolumes: true                 # keep services with local volumes on the node holding their data
"#;

    const POOL: &str =
        "apiVersion: hearth/v1\nkind: Pool\nmetadata: {name: ci}\nspec: {domain: ci.example.org}\n";

    fn load(text: &str) -> Loaded {
        load_str(text, Path::new("m/a.yml"))
    }

    fn diags(l: &Loaded) -> Vec<String> {
        l.diagnostics.iter().map(ToString::to_string).collect()
    }

    fn deployment(name: &str, spec: &str) -> String {
        format!(
            "---\napiVersion: hearth/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  recipe: r\n  version: v1\n{spec}"
        )
    }

    #[test]
    fn design_example_loads_cleanly() {
        let l = load(EXAMPLE);
        assert_eq!(diags(&l), Vec::<String>::new());
        let pool = l.pool.as_ref().expect("pool");
        assert_eq!(pool.metadata.name, "ci");
        assert_eq!(pool.spec.domain, "ci.example.org");
        let home = fields::home_dir().expect("HOME is set in tests");
        assert_eq!(pool.spec.recipes, home.join(".abra/recipes"));
        assert_eq!(
            pool.spec.defaults.progress_deadline,
            Duration::from_secs(600)
        );
        assert_eq!(pool.origin.pos, Pos { line: 1, col: 1 });

        let d = &l.deployments[0];
        assert_eq!(d.name(), "gitea");
        assert_eq!(d.origin.pos, Pos { line: 9, col: 1 });
        assert_eq!(d.origin.file, Path::new("m/a.yml"));
        let s = &d.spec;
        assert_eq!(s.version, "3.6.0+1.24.2-rootless");
        assert_eq!((s.role, s.state), (Role::Canonical, DesiredState::Running));
        assert_eq!(s.domain.as_deref(), Some("git.example.org"));
        assert_eq!(
            s.compose_files,
            Some(vec!["compose.yml".into(), "compose.mariadb.yml".into()])
        );
        assert_eq!(s.env["LETS_ENCRYPT_ENV"], "staging");
        assert_eq!(
            s.secrets["db_password"],
            SecretSource::Generate(Generate {
                length: 32,
                charset: Charset::Alnum
            })
        );
        assert_eq!(s.probes.len(), 3);
        let Probe::Http(h) = &s.probes[0] else {
            panic!("http")
        };
        assert_eq!(
            (h.port, h.path.as_str(), h.status),
            (3000, "/api/healthz", 200)
        );
        let Probe::Tcp(t) = &s.probes[1] else {
            panic!("tcp")
        };
        assert_eq!(t.stable_for, Some(Duration::from_secs(5)));
        assert_eq!(t.send, Some(Payload(vec![0, 1])));
        assert_eq!(t.expect, Some(Payload(vec![0, 2])));
        let Probe::Exec(e) = &s.probes[2] else {
            panic!("exec")
        };
        assert_eq!(e.command, vec!["pg_isready"]);
        assert_eq!(s.progress_deadline, Some(Duration::from_secs(300)));
        assert!(s.advance.backup && s.advance.rollback && !s.advance.allow_major);
        assert_eq!(s.depends_on, vec!["keycloak"]);
        assert!(!s.suspend && s.pin_volumes);
        assert_eq!(
            d.origin.pos_of("spec.dependsOn[0]"),
            Pos { line: 27, col: 15 }
        );
    }

    #[test]
    fn defaults_when_fields_are_absent() {
        let l = load(&format!("{POOL}{}", deployment("a", "")));
        assert_eq!(diags(&l), Vec::<String>::new());
        let p = l.pool.as_ref().expect("pool");
        assert_eq!(p.spec.defaults.concurrency, 4);
        assert!(p.spec.defaults.self_heal && !p.spec.defaults.prune);
        let s = &l.deployments[0].spec;
        assert_eq!((s.role, s.state), (Role::Plain, DesiredState::Running));
        assert!(s.pin_volumes && !s.suspend && s.advance.backup && !s.advance.allow_major);
        assert!(s.domain.is_none() && s.compose_files.is_none() && s.source.is_none());
        assert!(s.env.is_empty() && s.probes.is_empty() && s.depends_on.is_empty());
        assert_eq!(s.progress_deadline, None);
    }

    #[test]
    fn unknown_field_deep_in_nested_map() {
        let spec = "  probes:\n    - http: {service: app, port: 80}\n    - tcp:\n        service: app\n        port: 1\n        stableFr: 5s\n";
        let l = load(&format!("{POOL}{}", deployment("a", spec)));
        assert_eq!(
            diags(&l),
            vec![
                "m/a.yml:18:9: spec.probes[1].tcp.stableFr: unknown field `stableFr`, expected one of service, port, stableFor, send, expect, address, timeout, interval, failures"
            ]
        );
        assert!(l.deployments.is_empty());
        assert!(l.pool.is_some());
    }

    #[test]
    fn wrong_type_points_at_value() {
        let spec = "  probes:\n    - http:\n        service: app\n        port: eighty\n";
        let l = load(&format!("{POOL}{}", deployment("a", spec)));
        assert_eq!(l.diagnostics.len(), 1, "{:?}", diags(&l));
        let d = &l.diagnostics[0];
        assert_eq!((d.pos.line, d.pos.col), (16, 15));
        assert_eq!(d.field, "spec.probes[0].http.port");
    }

    #[test]
    fn bad_duration_names_the_field() {
        let spec = "  probes:\n    - tcp: {service: app, port: 1, stableFor: 5x}\n";
        let l = load(&format!("{POOL}{}", deployment("a", spec)));
        assert_eq!(l.diagnostics.len(), 1, "{:?}", diags(&l));
        let d = &l.diagnostics[0];
        assert_eq!(d.field, "spec.probes[0].tcp.stableFor");
        assert_eq!((d.pos.line, d.pos.col), (14, 47));
        assert!(
            d.message.contains("invalid duration \"5x\""),
            "{}",
            d.message
        );
        let l = load(&format!(
            "{POOL}{}",
            deployment("a", "  progressDeadline: 10\n")
        ));
        assert_eq!(l.diagnostics[0].field, "spec.progressDeadline");
        assert_eq!(l.diagnostics[0].pos, Pos { line: 13, col: 21 });
    }

    #[test]
    fn error_in_second_document_of_a_file_keeps_the_others() {
        let text = format!(
            "{POOL}{}{}{}",
            deployment("a", ""),
            deployment("b", "  suspend: maybe\n"),
            deployment("c", "")
        );
        let l = load(&text);
        let names: Vec<&str> = l.deployments.iter().map(Deployment::name).collect();
        assert_eq!(names, vec!["a", "c"]);
        assert_eq!(l.diagnostics.len(), 1, "{:?}", diags(&l));
        let d = &l.diagnostics[0];
        assert_eq!(
            (d.pos.line, d.pos.col, d.field.as_str()),
            (21, 12, "spec.suspend")
        );
        assert_eq!(l.deployments[1].origin.pos, Pos { line: 23, col: 1 });
    }

    #[test]
    fn every_bad_document_is_reported() {
        let text = format!(
            "{POOL}{}{}{}{}",
            deployment("a", "  bogus: 1\n"),
            "---\nfoo: [unclosed\n",
            deployment("c", "  role: boss\n"),
            deployment("d", "")
        );
        let l = load(&text);
        let fields: Vec<(usize, &str)> = l
            .diagnostics
            .iter()
            .map(|d| (d.pos.line, d.field.as_str()))
            .collect();
        assert_eq!(fields.len(), 3, "{:?}", diags(&l));
        assert_eq!(fields[0], (13, "spec.bogus"));
        assert_eq!(fields[2], (24, "spec.role"));
        assert!(l.diagnostics[2].message.contains("unknown variant `boss`"));
        assert_eq!(l.deployments.len(), 1);
    }

    #[test]
    fn missing_required_field_extends_the_path() {
        let text = format!(
            "{POOL}---\napiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: a}}\nspec:\n  recipe: r\n"
        );
        let l = load(&text);
        assert_eq!(
            diags(&l),
            vec!["m/a.yml:10:3: spec.version: required field is missing"]
        );
    }

    #[test]
    fn annotations_and_missing_sections() {
        let text = format!(
            "{POOL}---\napiVersion: hearth/v1\nkind: Deployment\nmetadata:\n  name: a\n  annotations: {{owner: ops, ticket: 42}}\n"
        );
        let l = load(&text);
        assert_eq!(
            diags(&l),
            vec!["m/a.yml:6:1: spec: required field is missing"]
        );
        let text = text + "spec: {recipe: r, version: v1}\n";
        let l = load_str(&text, Path::new("rel/m.yml"));
        assert_eq!(diags(&l), Vec::<String>::new());
        let a = &l.deployments[0].metadata.annotations;
        assert_eq!((a["owner"].as_str(), a["ticket"].as_str()), ("ops", "42"));
        let pool = "apiVersion: hearth/v1\nkind: Pool\nmetadata: {name: ci}\nspec: {domain: d, recipes: recipes}\n";
        let l = load_str(pool, Path::new("rel/m.yml"));
        assert_eq!(
            l.pool.map(|p| p.spec.recipes),
            Some(PathBuf::from("rel/recipes"))
        );
    }

    #[test]
    fn many_documents_load_in_linear_time() {
        let mut text = String::from(POOL);
        for i in 0..3000 {
            text.push_str(&deployment(&format!("d{i}"), ""));
        }
        let start = std::time::Instant::now();
        let l = load(&text);
        assert_eq!(l.deployments.len(), 3000);
        assert!(l.diagnostics.is_empty());
        assert_eq!(l.deployments[2999].origin.pos.line, 4 + 2999 * 8 + 2);
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn header_errors() {
        let text = "apiVersion: hearth/v2\nkind: Pool\n---\nkind: Deployment\n---\napiVersion: hearth/v1\nkind: Service\n---\n- a list\n---\nplain scalar\n";
        assert_eq!(
            diags(&load(text)),
            vec![
                "m/a.yml:1:13: apiVersion: unsupported apiVersion \"hearth/v2\"; expected hearth/v1",
                "m/a.yml:4:1: apiVersion: required field is missing (use hearth/v1)",
                "m/a.yml:7:7: kind: unknown kind \"Service\"; expected Pool or Deployment",
                "m/a.yml:9:1: expected mapping start",
                "m/a.yml:11:1: expected mapping start",
            ]
        );
    }

    #[test]
    fn duplicate_names_name_both_places() {
        let text = format!("{POOL}{}{}", deployment("a", ""), deployment("a", ""));
        let l = load(&text);
        assert_eq!(
            diags(&l),
            vec![
                "m/a.yml:17:9: metadata.name: duplicate deployment name \"a\"; also defined at m/a.yml:6:1 (the first one is kept)"
            ]
        );
        assert_eq!(l.deployments.len(), 1);
        assert_eq!(l.deployments[0].origin.pos.line, 6);
    }

    #[test]
    fn pool_count() {
        let two = format!("{POOL}---\n{}", POOL.replace("name: ci", "name: other"));
        let l = load(&two);
        assert_eq!(
            diags(&l),
            vec![
                "m/a.yml:6:1: kind: more than one Pool: \"other\" here and \"ci\" at m/a.yml:1:1; a manifest set has exactly one"
            ]
        );
        assert_eq!(
            l.pool.as_ref().map(|p| p.metadata.name.as_str()),
            Some("ci")
        );
        let none = load(&deployment("a", ""));
        assert_eq!(
            diags(&none),
            vec!["m/a.yml:2:1: kind: no Pool: 1 deployment(s) found but no document of kind Pool"]
        );
        assert_eq!(none.deployments.len(), 1);
        // An invalid Pool is reported for what is wrong with it, not as a missing Pool.
        let bad_pool = POOL.replace("domain:", "domian:") + &deployment("a", "");
        let l = load(&bad_pool);
        assert_eq!(l.diagnostics.len(), 1, "{:?}", diags(&l));
        assert_eq!(l.diagnostics[0].field, "spec.domian");
        assert_eq!(load("# nothing\n"), Loaded::default());
    }

    #[test]
    fn env_scalars_are_text_and_null_is_an_error() {
        let spec = "  env:\n    PORT: 8080\n    DEBUG: true\n    RATIO: 1.10\n    MODE: 0440\n";
        let l = load(&format!("{POOL}{}", deployment("a", spec)));
        assert_eq!(diags(&l), Vec::<String>::new());
        let env: Vec<(&str, &str)> = l.deployments[0]
            .spec
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            env,
            vec![
                ("PORT", "8080"),
                ("DEBUG", "true"),
                ("RATIO", "1.10"),
                ("MODE", "0440")
            ]
        );
        let l = load(&format!("{POOL}{}", deployment("a", "  env: {EMPTY: }\n")));
        assert_eq!(
            diags(&l),
            vec!["m/a.yml:13:14: spec.env.EMPTY: null value; write '' for an empty value"]
        );
    }

    #[test]
    fn probe_with_two_kinds() {
        let spec =
            "  probes:\n    - tcp: {service: a, port: 1}\n      http: {service: a, port: 1}\n";
        let l = load(&format!("{POOL}{}", deployment("a", spec)));
        assert_eq!(l.diagnostics.len(), 1);
        let d = &l.diagnostics[0];
        assert_eq!(d.field, "spec.probes[0]");
        assert_eq!(
            d.message,
            "a probe has exactly one of http, tcp, exec, docker"
        );
        assert_eq!(d.pos.line, 15);
    }

    #[test]
    fn secrets_and_payloads() {
        let spec = "  secrets:\n    a: {generate: {}}\n    b: {generate: {length: 8, charset: hex}}\n    c: {file: keys/c.txt}\n    d: {file: /abs/d}\n  probes:\n    - tcp: {service: s, port: 1, send: \"PING\\n\", expect: PONG}\n    - docker: {service: s, interval: 2s, failures: 3}\n";
        let l = load_str(
            &format!("{POOL}{}", deployment("a", spec)),
            Path::new("/srv/m/p.yml"),
        );
        assert_eq!(diags(&l), Vec::<String>::new());
        let s = &l.deployments[0].spec;
        assert_eq!(s.secrets["a"], SecretSource::Generate(Generate::default()));
        assert_eq!(
            s.secrets["b"],
            SecretSource::Generate(Generate {
                length: 8,
                charset: Charset::Hex
            })
        );
        assert_eq!(
            s.secrets["c"],
            SecretSource::File("/srv/m/keys/c.txt".into())
        );
        assert_eq!(s.secrets["d"], SecretSource::File("/abs/d".into()));
        let Probe::Tcp(t) = &s.probes[0] else {
            panic!("tcp")
        };
        assert_eq!(t.send, Some(Payload(b"PING\n".to_vec())));
        assert_eq!(t.expect, Some(Payload(b"PONG".to_vec())));
        assert_eq!(s.probes[1].timing().interval, parse_duration("2s").ok());
        assert_eq!(s.probes[1].timing().failures, Some(3));
        let bad = "  secrets: {x: {generate: {}, file: y}}\n  probes: [{tcp: {service: s, port: 1, send: \"hex:zz\"}}]\n";
        let l = load(&format!("{POOL}{}", deployment("a", bad)));
        assert_eq!(l.diagnostics.len(), 1);
        assert_eq!(
            l.diagnostics[0].message,
            "a secret has exactly one of generate, file"
        );
    }

    #[test]
    fn anchors_and_merge_keys() {
        let text = format!(
            "{POOL}{}{}",
            deployment("a", "  env: &common {A: one, B: two}\n"),
            deployment("b", "  env:\n    <<: {A: one, B: two}\n    B: three\n")
        );
        let l = load(&text);
        assert_eq!(diags(&l), Vec::<String>::new());
        let b = &l.deployments[1].spec.env;
        assert_eq!((b["A"].as_str(), b["B"].as_str()), ("one", "three"));
    }

    #[test]
    fn crlf_and_document_end_markers() {
        let text = format!("{POOL}...\n{}", deployment("a", "")).replace('\n', "\r\n");
        let l = load(&text);
        assert_eq!(diags(&l), Vec::<String>::new());
        assert_eq!(l.deployments[0].origin.pos.line, 7);
    }

    #[test]
    fn load_paths_walks_directories_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let w = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        w("00-pool.yaml", POOL);
        w("b/20.yml", &deployment("b", ""));
        w("a/10.yml", &deployment("a", "  bogus: 1\n"));
        w("a/11.yml", &deployment("a2", ""));
        w("notes.txt", "not yaml");
        w(".github/workflows/ci.yml", "on: push\n");
        let l = load_paths(&[root.to_path_buf(), root.join("missing.yml")]);
        let names: Vec<&str> = l.deployments.iter().map(Deployment::name).collect();
        assert_eq!(names, vec!["a2", "b"]);
        assert!(l.pool.is_some());
        assert_eq!(l.diagnostics.len(), 2, "{:?}", diags(&l));
        assert_eq!(l.diagnostics[0].file, root.join("a/10.yml"));
        assert_eq!(l.diagnostics[0].pos.line, 9);
        assert_eq!(l.diagnostics[1].file, root.join("missing.yml"));
        assert!(l.diagnostics[1].message.starts_with("cannot read"));
        assert_eq!(l.deployments[1].origin.file, root.join("b/20.yml"));
    }

    proptest::proptest! {
        #[test]
        fn load_str_never_panics(text in "(apiVersion: hearth/v1\n|kind: (Pool|Deployment)\n|---\n|\\.\\.\\.\n|spec:\n|  |- |[a-z{}\\[\\]:,&*<>!|#\"' \n%-]){0,40}") {
            let _ = load_str(&text, Path::new("f.yml"));
        }

        #[test]
        fn load_str_never_panics_on_mutated_example(
            edits in proptest::collection::vec((0usize..2000, 0usize..4, "[ -~\n\t]{0,3}"), 1..8)
        ) {
            let mut text: Vec<char> = EXAMPLE.chars().collect();
            for (at, len, insert) in edits {
                let at = at % (text.len() + 1);
                let end = (at + len).min(text.len());
                text.splice(at..end, insert.chars());
            }
            let text: String = text.into_iter().collect();
            let _ = load_str(&text, Path::new("f.yml"));
        }

        #[test]
        fn load_str_never_panics_on_any_text(text in "\\PC{0,200}") {
            let _ = load_str(&text, Path::new("f.yml"));
        }
    }
}

//! Loading manifests: files and directories of multi-document YAML into [`Loaded`].
//!
//! Every document is parsed on its own (see `split`), so one bad document never hides another's
//! errors nor stops the valid ones from loading. Problems become [`Diagnostic`]s with file,
//! line, column and dotted field path. Rules across documents: exactly one `Pool` when there are
//! deployments, deployment names unique (the first document with a name wins, the later one is
//! reported and dropped).

use super::fields;
use super::positions::positions;
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

fn to_pos(l: serde_saphyr::Location) -> Pos {
    Pos {
        line: usize::try_from(l.line()).unwrap_or(0),
        col: usize::try_from(l.column()).unwrap_or(0),
    }
}

/// Deserializes one document, tracking the field path of a failure.
fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    let mut path = String::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = dotted(e.path());
            e.into_inner()
        })
    });
    result.map_err(|e| Failure {
        path,
        pos: e.location().map(to_pos).unwrap_or_default(),
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

/// Makes serde's messages speak about manifests; may extend the path to the missing field.
fn explain(f: Failure) -> (String, Pos, String) {
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
    } else if message.contains("end of mapping after enum variant") {
        let what = if path.contains("probes[") {
            "a probe has exactly one of http, tcp, exec, docker"
        } else if path.contains("secrets.") {
            "a secret has exactly one of generate, file"
        } else {
            "exactly one key expected here"
        };
        message = what.into();
        if let Some(i) = path.rfind('.').filter(|_| path.contains("probes[")) {
            path.truncate(i);
        }
    } else if message.contains("null is not allowed") && path.starts_with("spec.env.") {
        message = "null value; write '' for an empty value".into();
    }
    (path, pos, message)
}

#[derive(Default)]
struct Acc {
    loaded: Loaded,
    pools: Vec<Pool>,
}

impl Acc {
    fn diag(&mut self, file: &Path, pos: Pos, field: &str, message: impl Into<String>) {
        self.loaded
            .diagnostics
            .push(Diagnostic::new(file, pos, field, message));
    }

    fn fail(&mut self, file: &Path, f: Failure) {
        let (path, pos, message) = explain(f);
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
        let text = chunk.padded();
        let header: Spanned<Header> = match parse(&text) {
            Ok(h) => h,
            Err(f) => return self.fail(file, f),
        };
        let doc_pos = to_pos(header.referenced);
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
                self.diag(file, to_pos(v.referenced), "apiVersion", msg);
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
            fields: positions(&text),
        };
        let base = file.parent().unwrap_or(Path::new(""));
        match kind.value.as_str() {
            "Pool" => match parse::<Doc<PoolSpec>>(&text) {
                Ok(d) => {
                    let mut spec = d.spec;
                    spec.recipes = base.join(spec.recipes);
                    self.pools.push(Pool {
                        metadata: d.metadata,
                        spec,
                        origin: origin(),
                    })
                }
                Err(f) => self.fail(file, f),
            },
            "Deployment" => match parse::<Doc<DeploymentSpec>>(&text) {
                Ok(d) => {
                    let mut spec = d.spec;
                    resolve_secret_files(&mut spec, base);
                    self.add_deployment(Deployment {
                        metadata: d.metadata,
                        spec,
                        origin: origin(),
                    });
                }
                Err(f) => self.fail(file, f),
            },
            other => {
                let msg = format!("unknown kind {other:?}; expected Pool or Deployment");
                self.diag(file, to_pos(kind.referenced), "kind", msg);
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
        } else if let Some(d) = self.loaded.deployments.first() {
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
            *p = base.join(expanded);
        }
    }
}

//! Pure parsing of git plumbing output for reading manifests at a commit: `ls-tree -r -l -z`
//! entries, which of them are manifest files (the same rule as [`crate::manifest::load_paths`]
//! on a directory), and the objects `cat-file --batch` returns.

use std::path::PathBuf;

/// Plumbing output hearth cannot read, or a manifest path it refuses. The source module wraps it
/// in a [`super::SourceError`] (redacted) before it leaves the module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("entry {entry:?} has no tab")]
    NoTab { entry: String },
    #[error("entry {entry:?}")]
    BadEntry { entry: String },
    #[error("path {path:?} must not contain '..'")]
    DotDot { path: String },
    #[error("path {path:?} has a control character")]
    ControlChar { path: String },
    #[error("no header line")]
    NoHeader,
    #[error("header {header:?}")]
    BadHeader { header: String },
    #[error("short object body")]
    ShortBody,
}

/// One `ls-tree -r -l -z` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub mode: String,
    /// `blob`, `tree` or `commit` (a submodule).
    pub kind: String,
    pub oid: String,
    /// Size of a blob; `None` for other kinds.
    pub size: Option<u64>,
    /// Path from the repository root, `/`-separated.
    pub path: String,
}

/// Parses `git ls-tree -r -l -z` output (`<mode> <type> <oid> <size>\t<path>\0`...).
pub fn parse_ls_tree(out: &[u8]) -> Result<Vec<Entry>, TreeError> {
    let mut entries = Vec::new();
    for raw in out.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        let text = String::from_utf8_lossy(raw);
        let (meta, path) = text.split_once('\t').ok_or_else(|| TreeError::NoTab {
            entry: text.to_string(),
        })?;
        let mut f = meta.split_whitespace();
        let (Some(mode), Some(kind), Some(oid), Some(size), None) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(TreeError::BadEntry {
                entry: text.to_string(),
            });
        };
        entries.push(Entry {
            mode: mode.to_string(),
            kind: kind.to_string(),
            oid: oid.to_string(),
            size: size.parse().ok(),
            path: path.to_string(),
        });
    }
    Ok(entries)
}

/// Normalizes the manifest path inside the repository: `/`-separated, no leading `./` or `/`,
/// no trailing `/`; `""` is the root. `..` and empty components are refused.
pub fn normalize_path(path: &str) -> Result<String, TreeError> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(TreeError::DotDot { path: path.into() }),
            p if p.chars().any(char::is_control) => {
                return Err(TreeError::ControlChar { path: path.into() });
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The manifest files among `entries` for the manifest path `root` (normalized): `root` itself
/// when it is a file (whatever its extension); else every `*.yml` / `*.yaml` blob below it whose
/// path below `root` has no component starting with `.`. Symlinks and submodules are skipped.
/// Sorted component by component, as `load_paths` walks a directory.
pub fn manifest_files(entries: &[Entry], root: &str) -> Vec<Entry> {
    let mut files: Vec<Entry> = entries
        .iter()
        .filter(|e| e.kind == "blob" && e.mode != "120000")
        .filter(|e| {
            if e.path == root {
                return true;
            }
            let below = if root.is_empty() {
                Some(e.path.as_str())
            } else {
                e.path
                    .strip_prefix(root)
                    .and_then(|rest| rest.strip_prefix('/'))
            };
            below.is_some_and(|rel| {
                !rel.split('/').any(|c| c.starts_with('.'))
                    && (rel.ends_with(".yml") || rel.ends_with(".yaml"))
            })
        })
        .cloned()
        .collect();
    files.sort_by(|a, b| PathBuf::from(&a.path).cmp(&PathBuf::from(&b.path)));
    files
}

/// One object from `cat-file --batch`: its type and content, or `None` when missing.
pub type Object = Option<(String, Vec<u8>)>;

/// Parses `git cat-file --batch` output for `count` requests, in order.
pub fn parse_batch(out: &[u8], count: usize) -> Result<Vec<Object>, TreeError> {
    let mut objects = Vec::with_capacity(count);
    let mut rest = out;
    for _ in 0..count {
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(TreeError::NoHeader)?;
        let header = String::from_utf8_lossy(&rest[..nl]).to_string();
        rest = &rest[nl + 1..];
        if header.ends_with(" missing") || header.ends_with(" ambiguous") {
            objects.push(None);
            continue;
        }
        let f: Vec<&str> = header.split(' ').collect();
        let [_, kind, size] = f[..] else {
            return Err(TreeError::BadHeader { header });
        };
        let size: usize = size.parse().map_err(|_| TreeError::BadHeader {
            header: header.clone(),
        })?;
        let body = rest.get(..size).ok_or(TreeError::ShortBody)?;
        objects.push(Some((kind.to_string(), body.to_vec())));
        // The body is followed by a newline.
        rest = rest.get(size + 1..).unwrap_or_default();
    }
    Ok(objects)
}

/// The first line of a commit object's message (control characters escaped).
pub fn commit_summary(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let message = text.split_once("\n\n").map_or("", |(_, m)| m);
    let line = message.lines().next().unwrap_or("").trim();
    line.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(path: &str) -> Entry {
        Entry {
            mode: "100644".into(),
            kind: "blob".into(),
            oid: format!("oid-{path}"),
            size: Some(10),
            path: path.into(),
        }
    }

    fn paths(v: &[Entry]) -> Vec<&str> {
        v.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn ls_tree_lines_parse() {
        let out = b"100644 blob 0123abcd     120\tm/a b.yml\x00160000 commit 99ff       -\tsub\x00";
        let e = parse_ls_tree(out).expect("parse");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].path, "m/a b.yml");
        assert_eq!(e[0].size, Some(120));
        assert_eq!(e[1].kind, "commit");
        assert_eq!(e[1].size, None);
        assert_eq!(
            parse_ls_tree(b"garbage\0").unwrap_err().to_string(),
            "entry \"garbage\" has no tab"
        );
    }

    #[test]
    fn paths_normalize() {
        assert_eq!(normalize_path("").as_deref(), Ok(""));
        assert_eq!(normalize_path("./").as_deref(), Ok(""));
        assert_eq!(normalize_path("/pools/ci/").as_deref(), Ok("pools/ci"));
        assert_eq!(normalize_path("a//b").as_deref(), Ok("a/b"));
        assert_eq!(
            normalize_path("a/../b").unwrap_err().to_string(),
            "path \"a/../b\" must not contain '..'"
        );
    }

    #[test]
    fn manifest_files_follow_load_paths_rules() {
        let mut link = blob("m/link.yml");
        link.mode = "120000".into();
        let entries = vec![
            blob("README.md"),
            blob("m/z.yaml"),
            blob("m/a.yml"),
            blob("m/notes.txt"),
            blob("m/.hidden.yml"),
            blob("m/.github/ci.yml"),
            blob("m/sub/b.yml"),
            blob("m/a-b.yml"),
            blob("mx/other.yml"),
            link,
        ];
        // Component order: "a-b.yml" < "a.yml" bytewise, "sub" dir between "a.yml" and "z.yaml".
        assert_eq!(
            paths(&manifest_files(&entries, "m")),
            ["m/a-b.yml", "m/a.yml", "m/sub/b.yml", "m/z.yaml"]
        );
        let root = manifest_files(&entries, "");
        assert!(paths(&root).contains(&"mx/other.yml"));
        assert!(!paths(&root).contains(&"README.md"));
        // A file named directly counts whatever its extension.
        assert_eq!(
            paths(&manifest_files(&entries, "m/notes.txt")),
            ["m/notes.txt"]
        );
    }

    #[test]
    fn component_order_differs_from_byte_order() {
        // Bytewise "a.yml" < "a/b.yml" ('.' < '/'), but a directory walk visits the directory
        // "a" before the file "a.yml".
        let entries = vec![blob("a.yml"), blob("a/b.yml")];
        assert_eq!(paths(&manifest_files(&entries, "")), ["a/b.yml", "a.yml"]);
    }

    #[test]
    fn batch_output_parses_in_order() {
        let out = b"c1 commit 5\nhello\nmissing1 missing\nb2 blob 3\nx\ny\n";
        let objs = parse_batch(out, 3).expect("parse");
        assert_eq!(objs[0], Some(("commit".into(), b"hello".to_vec())));
        assert_eq!(objs[1], None);
        assert_eq!(objs[2], Some(("blob".into(), b"x\ny".to_vec())));
        assert_eq!(
            parse_batch(b"b blob 10\nshort\n", 1).unwrap_err(),
            TreeError::ShortBody
        );
        assert_eq!(
            parse_batch(b"b blob x\n", 1).unwrap_err().to_string(),
            "header \"b blob x\""
        );
        assert_eq!(
            parse_batch(b"", 1).unwrap_err().to_string(),
            "no header line"
        );
        assert_eq!(
            parse_ls_tree(b"100644 blob abc\tp\0")
                .unwrap_err()
                .to_string(),
            format!("entry {:?}", "100644 blob abc\tp")
        );
        assert_eq!(
            normalize_path("a\nb").unwrap_err().to_string(),
            format!("path {:?} has a control character", "a\nb")
        );
    }

    #[test]
    fn summary_is_the_first_message_line() {
        let body = b"tree abc\nauthor A <a@b> 1 +0000\n\nBump gitea to 3.6.0\n\nDetails\n";
        assert_eq!(commit_summary(body), "Bump gitea to 3.6.0");
        assert_eq!(commit_summary(b"tree x\n\nbad\x1b[31m"), "bad\\u{1b}[31m");
        assert_eq!(commit_summary(b"tree x\n"), "");
    }
}

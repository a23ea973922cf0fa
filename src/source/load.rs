//! Pure: manifests read from git -> [`Loaded`], and which problems make a revision bad.
//!
//! The files are loaded with [`manifest::load_texts`] under their labels (`<path>@<short commit>`),
//! by the same set rules as a directory: exactly one `Pool` (the first wins), deployment names
//! unique (the first wins). [`revision_errors`] adds the
//! checks that need no recipes: [`manifest::validate`] with every recipe taken as known, unique
//! domains and stack names, a Pool present, no relative paths (there is no checkout they could be
//! relative to), and recipe `source:` URLs hearth is willing to fetch.

use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::manifest::{self, Loaded, SecretSource, names};

use super::recipes::check_url;

/// Loads `files` (label, text) in order as one manifest set: [`manifest::load_texts`], the same
/// set rules a directory is loaded with.
pub fn load_files(files: &[(PathBuf, String)]) -> Loaded {
    manifest::load_texts(files)
}

/// Every problem that makes the revision bad: load diagnostics plus the checks that need no
/// recipes. `root` labels problems of the set as a whole (`<path>@<short commit>`).
pub fn revision_errors(loaded: &Loaded, root: &Path) -> Vec<Diagnostic> {
    let mut out = loaded.diagnostics.clone();
    out.extend(manifest::validate(loaded, &|_| true, &[]));
    let Some(pool) = &loaded.pool else {
        // With deployments but no Pool document the loader has said so already, located.
        if out
            .iter()
            .any(|d| d.field == "kind" && d.message.starts_with("no Pool"))
        {
            return out;
        }
        let msg = match loaded.deployments.len() {
            0 => "no manifests: no valid document of kind Pool found".to_string(),
            n => format!("no Pool: {n} deployment(s) found but no valid document of kind Pool"),
        };
        out.push(Diagnostic::new(root, Default::default(), "kind", msg));
        return out;
    };
    let named = names::name_all(pool, &loaded.deployments, &|_| 0);
    out.extend(names::check_unique(&named, &[]));
    let o = &pool.origin;
    if is_relative(&pool.spec.recipes) {
        out.push(Diagnostic::new(
            &o.file,
            o.pos_of("spec.recipes"),
            "spec.recipes",
            RELATIVE,
        ));
    }
    for d in &loaded.deployments {
        let o = &d.origin;
        for (key, source) in &d.spec.secrets {
            if let SecretSource::File(p) = source
                && is_relative(p)
            {
                let f = format!("spec.secrets.{key}.file");
                out.push(Diagnostic::new(&o.file, o.pos_of(&f), f, RELATIVE));
            }
        }
        if let Some(url) = &d.spec.source
            && let Err(m) = check_url(url)
        {
            out.push(Diagnostic::new(
                &o.file,
                o.pos_of("spec.source"),
                "spec.source",
                m,
            ));
        }
    }
    out
}

const RELATIVE: &str = "a relative path cannot be used in manifests read from git \
                        (there is no checkout); use an absolute path or ~/...";

/// Relative and not `~`-based (`~` stays when `$HOME` is unset; that is the loader's business).
fn is_relative(p: &Path) -> bool {
    p.is_relative() && !p.starts_with("~")
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = "apiVersion: hearth/v1\nkind: Pool\nmetadata: {name: ci}\n\
                        spec: {domain: ci.example.org, recipes: /srv/recipes}\n";

    fn dep(name: &str, extra: &str) -> String {
        format!(
            "apiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: {name}}}\n\
             spec:\n  recipe: app\n  version: 1.0.0\n{extra}"
        )
    }

    fn files(v: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
        v.iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect()
    }

    fn messages(v: &[Diagnostic]) -> Vec<String> {
        v.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn pool_in_another_file_is_found() {
        let l = load_files(&files(&[
            ("m/a.yml@c", &dep("a", "")),
            ("m/pool.yml@c", POOL),
        ]));
        assert!(l.diagnostics.is_empty(), "{:?}", messages(&l.diagnostics));
        assert!(l.pool.is_some());
        assert_eq!(l.deployments.len(), 1);
        assert!(revision_errors(&l, Path::new("m@c")).is_empty());
    }

    #[test]
    fn without_pool_the_revision_is_bad() {
        let l = load_files(&files(&[("a.yml@c", &dep("a", ""))]));
        let e = revision_errors(&l, Path::new("m@c"));
        assert_eq!(e.len(), 1, "{:?}", messages(&e));
        // Located at the deployment, as for a directory.
        assert!(
            e[0].to_string()
                .starts_with("a.yml@c:1:1: kind: no Pool: 1 deployment"),
            "{:?}",
            messages(&e)
        );
        let e = revision_errors(&Loaded::default(), Path::new("m@c"));
        assert!(e[0].message.contains("no manifests"), "{e:?}");
    }

    #[test]
    fn duplicates_across_files_keep_the_first() {
        let l = load_files(&files(&[
            (
                "a.yml@c",
                &format!("{POOL}---\n{}", dep("x", "  role: plain\n")),
            ),
            ("b.yml@c", &dep("x", "  role: provider\n")),
            ("c.yml@c", POOL),
        ]));
        assert_eq!(l.deployments.len(), 1);
        assert_eq!(l.deployments[0].origin.file, PathBuf::from("a.yml@c"));
        let m = messages(&l.diagnostics);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].starts_with("b.yml@c:3:18: metadata.name: duplicate deployment name \"x\"; also defined at a.yml@c:6:1"), "{m:?}");
        assert!(
            m[1].starts_with("c.yml@c:1:1: kind: more than one Pool"),
            "{m:?}"
        );
    }

    #[test]
    fn validation_without_recipes_counts() {
        let l = load_files(&files(&[
            ("p.yml@c", POOL),
            ("a.yml@c", &dep("Bad_Name", "")),
        ]));
        let e = revision_errors(&l, Path::new("@c"));
        assert!(
            e.iter().any(|d| d.field == "metadata.name"),
            "{:?}",
            messages(&e)
        );
        // An unknown recipe is not decided here (recipes are not consulted).
        let l = load_files(&files(&[("p.yml@c", POOL), ("a.yml@c", &dep("a", ""))]));
        assert!(revision_errors(&l, Path::new("@c")).is_empty());
    }

    #[test]
    fn duplicate_domains_count() {
        let l = load_files(&files(&[
            ("p.yml@c", POOL),
            ("a.yml@c", &dep("a", "  domain: x.example.org\n")),
            ("b.yml@c", &dep("b", "  domain: x.example.org\n")),
        ]));
        let e = revision_errors(&l, Path::new("@c"));
        assert_eq!(e.len(), 1, "{:?}", messages(&e));
        assert!(e[0].message.contains("also the domain"), "{e:?}");
    }

    #[test]
    fn relative_paths_are_errors() {
        let pool = POOL.replace("/srv/recipes", "recipes");
        let l = load_files(&files(&[
            ("m/p.yml@c", &pool),
            (
                "m/a.yml@c",
                &dep(
                    "a",
                    "  secrets:\n    k: {file: keys/k.txt}\n    j: {file: /etc/j}\n",
                ),
            ),
        ]));
        let e = messages(&revision_errors(&l, Path::new("m@c")));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("m/p.yml@c:4:"), "{e:?}");
        assert!(e[0].contains("spec.recipes: a relative path"), "{e:?}");
        assert!(
            e[1].contains("spec.secrets.k.file: a relative path"),
            "{e:?}"
        );
    }

    #[test]
    fn recipe_source_urls_are_checked() {
        let l = load_files(&files(&[
            ("p.yml@c", POOL),
            ("a.yml@c", &dep("a", "  source: \"ext::sh -c id\"\n")),
            (
                "b.yml@c",
                &dep("b", "  source: https://git.example.org/r.git\n"),
            ),
        ]));
        let e = revision_errors(&l, Path::new("@c"));
        assert_eq!(e.len(), 1, "{:?}", messages(&e));
        assert_eq!(e[0].field, "spec.source");
        assert_eq!(e[0].file, PathBuf::from("a.yml@c"));
    }

    #[test]
    fn load_errors_are_kept_with_their_labels() {
        let l = load_files(&files(&[
            ("m/p.yml@abc", POOL),
            ("m/a.yml@abc", &dep("a", "  colour: blue\n")),
            ("m/b.yml@abc", "key: [unclosed\n"),
        ]));
        let e = messages(&revision_errors(&l, Path::new("m@abc")));
        assert!(
            e.iter().any(|m| m.starts_with("m/a.yml@abc:7:3: ")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.starts_with("m/b.yml@abc")), "{e:?}");
    }
}

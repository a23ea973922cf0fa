//! Checks that need only the manifests (and the list of known recipes): name and domain syntax,
//! unknown recipes, `dependsOn` naming unknown deployments or forming cycles, and probe, secret
//! and env entries that are obviously wrong. Pure: [`Loaded`] in, diagnostics out.

use super::load::Loaded;
use super::types::{Deployment, Origin, Probe, SecretSource};
use crate::diag::Diagnostic;
use std::collections::{BTreeSet, HashMap};

/// Validates `loaded`. `known_recipe` says whether a recipe exists (deployments with a `source:`
/// git URL are not checked against it); `recipe_names` are suggested when a recipe is unknown.
pub fn validate(
    loaded: &Loaded,
    known_recipe: &dyn Fn(&str) -> bool,
    recipe_names: &[String],
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(pool) = &loaded.pool {
        let o = &pool.origin;
        if let Err(e) = check_label(&pool.metadata.name) {
            out.push(at(o, "metadata.name", e.to_string()));
        }
        if let Err(e) = check_domain(&pool.spec.domain) {
            out.push(at(o, "spec.domain", e.to_string()));
        }
        if pool.spec.defaults.concurrency == 0 {
            out.push(at(o, "spec.defaults.concurrency", "must be at least 1"));
        }
    }
    for d in &loaded.deployments {
        check_deployment(d, known_recipe, recipe_names, &mut out);
    }
    check_dependencies(&loaded.deployments, &mut out);
    out
}

fn at(origin: &Origin, field: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(&origin.file, origin.pos_of(field), field, message)
}

/// A name or domain that is not DNS syntax. The texts follow the field in a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("{name:?} is longer than 63 characters")]
    LabelTooLong { name: String },
    #[error("{name:?} has {c:?}; use lowercase letters, digits and '-'")]
    BadChar { name: String, c: char },
    #[error("{name:?} must not start or end with '-'")]
    EdgeDash { name: String },
    #[error("{domain:?} is longer than 253 characters")]
    DomainTooLong { domain: String },
    #[error("domain {domain:?}: label {label}")]
    DomainLabel {
        domain: String,
        label: Box<NameError>,
    },
}

/// A DNS label: `[a-z0-9-]`, 1 to 63 characters, no leading or trailing `-`.
pub fn check_label(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 63 {
        return Err(NameError::LabelTooLong { name: name.into() });
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::BadChar {
            name: name.into(),
            c,
        });
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(NameError::EdgeDash { name: name.into() });
    }
    Ok(())
}

/// A domain: dot-separated DNS labels, at most 253 characters.
fn check_domain(domain: &str) -> Result<(), NameError> {
    if domain.len() > 253 {
        return Err(NameError::DomainTooLong {
            domain: domain.into(),
        });
    }
    for label in domain.split('.') {
        check_label(label).map_err(|e| NameError::DomainLabel {
            domain: domain.into(),
            label: Box::new(e),
        })?;
    }
    Ok(())
}

fn env_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_deployment(
    d: &Deployment,
    known_recipe: &dyn Fn(&str) -> bool,
    recipe_names: &[String],
    out: &mut Vec<Diagnostic>,
) {
    let o = &d.origin;
    let s = &d.spec;
    if let Err(e) = check_label(d.name()) {
        out.push(at(o, "metadata.name", e.to_string()));
    }
    if s.recipe.is_empty() {
        out.push(at(o, "spec.recipe", "must not be empty"));
    } else if s.source.is_none() && !known_recipe(&s.recipe) {
        out.push(at(
            o,
            "spec.recipe",
            unknown_recipe(&s.recipe, recipe_names),
        ));
    }
    if s.version.trim().is_empty() {
        out.push(at(o, "spec.version", "must not be empty"));
    }
    if let Some(domain) = &s.domain
        && let Err(e) = check_domain(domain)
    {
        out.push(at(o, "spec.domain", e.to_string()));
    }
    if s.compose_files.as_ref().is_some_and(Vec::is_empty) {
        out.push(at(
            o,
            "spec.composeFiles",
            "must name at least one file when given",
        ));
    }
    for key in s.env.keys() {
        if !env_name_ok(key) {
            let f = format!("spec.env.{key}");
            out.push(at(o, &f, format!("{key:?} is not a valid variable name")));
        }
    }
    for (name, source) in &s.secrets {
        if let SecretSource::Generate(g) = source
            && g.length == 0
        {
            let f = format!("spec.secrets.{name}.generate.length");
            out.push(at(o, &f, "must be at least 1"));
        }
    }
    for (i, p) in s.probes.iter().enumerate() {
        check_probe(o, i, p, out);
    }
}

fn check_probe(o: &Origin, i: usize, p: &Probe, out: &mut Vec<Diagnostic>) {
    let base = format!("spec.probes[{i}].{}", p.kind());
    let mut bad = |field: &str, msg: &str| {
        let f = format!("{base}.{field}");
        out.push(at(o, &f, msg));
    };
    if p.service().is_empty() {
        bad("service", "must not be empty");
    }
    if p.timing().failures == Some(0) {
        bad("failures", "must be at least 1");
    }
    match p {
        Probe::Http(h) => {
            if h.port == 0 {
                bad("port", "port 0 is not a port");
            }
            if !(100..=599).contains(&h.status) {
                bad("status", "not an HTTP status (100-599)");
            }
            if !h.path.starts_with('/') {
                bad("path", "must start with '/'");
            }
        }
        Probe::Tcp(t) => {
            if t.port == 0 {
                bad("port", "port 0 is not a port");
            }
        }
        Probe::Exec(e) => {
            if e.command.is_empty() {
                bad("command", "must not be empty");
            }
        }
        Probe::Docker(_) => {}
    }
}

/// Levenshtein distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn unknown_recipe(recipe: &str, names: &[String]) -> String {
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort_by_key(|n| (distance(recipe, n), n.as_str()));
    let few: Vec<&str> = sorted.iter().take(5).map(|s| s.as_str()).collect();
    if few.is_empty() {
        format!("unknown recipe {recipe:?} (no recipes are known)")
    } else {
        format!(
            "unknown recipe {recipe:?}; known recipes include: {}",
            few.join(", ")
        )
    }
}

fn check_dependencies(ds: &[Deployment], out: &mut Vec<Diagnostic>) {
    let index: HashMap<&str, usize> = ds.iter().enumerate().map(|(i, d)| (d.name(), i)).collect();
    for d in ds {
        for (j, dep) in d.spec.depends_on.iter().enumerate() {
            let f = format!("spec.dependsOn[{j}]");
            if dep == d.name() {
                out.push(at(&d.origin, &f, "a deployment cannot depend on itself"));
            } else if !index.contains_key(dep.as_str()) {
                out.push(at(&d.origin, &f, format!("unknown deployment {dep:?}")));
            }
        }
    }
    for cycle in cycles(ds, &index) {
        let first = &ds[cycle[0]];
        let next = ds[cycle[1 % cycle.len()]].name();
        let j = first
            .spec
            .depends_on
            .iter()
            .position(|n| n == next)
            .unwrap_or(0);
        let names: Vec<&str> = cycle
            .iter()
            .chain(cycle.first())
            .map(|&i| ds[i].name())
            .collect();
        let f = format!("spec.dependsOn[{j}]");
        out.push(at(
            &first.origin,
            &f,
            format!("dependency cycle: {}", names.join(" -> ")),
        ));
    }
}

/// Every elementary cycle found by depth-first search (of length >= 2; self-dependencies are
/// reported separately), each rotated to start at its smallest index, without repeats.
fn cycles(ds: &[Deployment], index: &HashMap<&str, usize>) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let edges: Vec<Vec<usize>> = ds
        .iter()
        .enumerate()
        .map(|(i, d)| {
            d.spec
                .depends_on
                .iter()
                .filter_map(|n| index.get(n.as_str()).copied())
                .filter(|&j| j != i)
                .collect()
        })
        .collect();
    let mut mark = vec![Mark::New; ds.len()];
    let mut found = BTreeSet::new();
    for root in 0..ds.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next edge index); `stack` is the open path.
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Open;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&to) = edges[node].get(*next) {
                *next += 1;
                match mark[to] {
                    Mark::New => {
                        mark[to] = Mark::Open;
                        stack.push((to, 0));
                    }
                    Mark::Open => {
                        let start = stack.iter().position(|&(n, _)| n == to).unwrap_or(0);
                        let mut cycle: Vec<usize> =
                            stack[start..].iter().map(|&(n, _)| n).collect();
                        let min = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|&(_, n)| *n)
                            .map_or(0, |(k, _)| k);
                        cycle.rotate_left(min);
                        found.insert(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::super::load::load_str;
    use super::*;
    use std::path::Path;

    const POOL: &str =
        "apiVersion: hearth/v1\nkind: Pool\nmetadata: {name: ci}\nspec: {domain: ci.example.org}\n";

    fn dep(name: &str, extra: &str) -> String {
        format!(
            "---\napiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  recipe: gitea\n  version: 1.0.0\n{extra}"
        )
    }

    fn run(text: &str) -> Vec<String> {
        let loaded = load_str(text, Path::new("m.yml"));
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        let names = vec![
            "gitea".to_string(),
            "keycloak".to_string(),
            "gotosocial".to_string(),
        ];
        let known = |r: &str| names.iter().any(|n| n == r);
        validate(&loaded, &known, &names)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn clean_set_has_no_findings() {
        let t = format!("{POOL}{}{}", dep("a", "  dependsOn: [b]\n"), dep("b", ""));
        assert_eq!(run(&t), Vec::<String>::new());
    }

    #[test]
    fn unknown_recipe_lists_closest_names() {
        let t = format!(
            "{POOL}{}",
            dep("a", "").replace("recipe: gitea", "recipe: gittea")
        );
        assert_eq!(
            run(&t),
            vec![
                "m.yml:10:11: spec.recipe: unknown recipe \"gittea\"; known recipes include: gitea, gotosocial, keycloak"
            ]
        );
        // A deployment with its own source is not checked against the catalogue.
        let t = format!(
            "{POOL}{}",
            dep("a", "  source: https://git.example.org/r.git\n")
                .replace("recipe: gitea", "recipe: other")
        );
        assert_eq!(run(&t), Vec::<String>::new());
    }

    #[test]
    fn name_syntax() {
        assert!(check_label("gitea-2").is_ok());
        assert!(check_label("Gitea").is_err());
        assert!(check_label("a_b").is_err());
        assert!(check_label("-a").is_err());
        assert!(check_label("").is_err());
        assert!(check_label(&"a".repeat(63)).is_ok());
        assert!(check_label(&"a".repeat(64)).is_err());
        assert!(check_domain("ci.example.org").is_ok());
        assert_eq!(
            check_domain("ci..org").unwrap_err().to_string(),
            "domain \"ci..org\": label must not be empty"
        );
        assert_eq!(
            check_label("a_b").unwrap_err().to_string(),
            "\"a_b\" has '_'; use lowercase letters, digits and '-'"
        );
        assert_eq!(
            check_label(&"a".repeat(64)).unwrap_err().to_string(),
            format!("{:?} is longer than 63 characters", "a".repeat(64))
        );
        assert_eq!(
            check_label("-a").unwrap_err().to_string(),
            "\"-a\" must not start or end with '-'"
        );
        let long = "a.".repeat(127);
        assert_eq!(
            check_domain(&long).unwrap_err().to_string(),
            format!("{long:?} is longer than 253 characters")
        );
        let t = format!("{POOL}{}", dep("Bad_Name", ""));
        let out = run(&t);
        assert_eq!(out.len(), 1);
        assert!(
            out[0].starts_with("m.yml:8:18: metadata.name: \"Bad_Name\" has 'B'"),
            "{out:?}"
        );
    }

    #[test]
    fn unknown_and_self_dependencies() {
        let t = format!("{POOL}{}", dep("a", "  dependsOn: [a, nope]\n"));
        assert_eq!(
            run(&t),
            vec![
                "m.yml:12:15: spec.dependsOn[0]: a deployment cannot depend on itself",
                "m.yml:12:18: spec.dependsOn[1]: unknown deployment \"nope\"",
            ]
        );
    }

    #[test]
    fn cycles_reported_once() {
        let t = format!(
            "{POOL}{}{}{}{}",
            dep("a", "  dependsOn: [b]\n"),
            dep("b", "  dependsOn: [c]\n"),
            dep("c", "  dependsOn: [a]\n"),
            dep("d", "  dependsOn: [a]\n"),
        );
        let out = run(&t);
        assert_eq!(
            out,
            vec!["m.yml:12:15: spec.dependsOn[0]: dependency cycle: a -> b -> c -> a"]
        );
    }

    #[test]
    fn probes_env_secrets() {
        let extra = "  env: {\"1BAD\": x}\n  secrets: {s: {generate: {length: 0}}}\n  probes:\n    - tcp: {service: app, port: 0}\n    - http: {service: app, port: 80, status: 99, path: x}\n    - exec: {service: db, command: []}\n";
        let t = format!("{POOL}{}", dep("a", extra));
        assert_eq!(
            run(&t),
            vec![
                "m.yml:12:17: spec.env.1BAD: \"1BAD\" is not a valid variable name",
                "m.yml:13:36: spec.secrets.s.generate.length: must be at least 1",
                "m.yml:15:33: spec.probes[0].tcp.port: port 0 is not a port",
                "m.yml:16:46: spec.probes[1].http.status: not an HTTP status (100-599)",
                "m.yml:16:56: spec.probes[1].http.path: must start with '/'",
                "m.yml:17:36: spec.probes[2].exec.command: must not be empty",
            ]
        );
    }
}

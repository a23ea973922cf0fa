//! Names derived from manifests (docs/architecture.md §4): a deployment's domain, its Swarm stack name, and the
//! rule that both are unique in the pool and never collide with live stacks hearth does not own.
//! Pure functions over manifest data.

use super::types::{Deployment, Pool, Role};
use crate::diag::{Diagnostic, Pos};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;

/// Docker's limit on object names (`<stack>_<service>` for services).
pub const DOCKER_NAME_MAX: usize = 63;

/// The domain a deployment is served on: `spec.domain` when given, else derived from its role:
/// provider -> `warm-<recipe>.<pool domain>`; canonical -> `warm-<recipe>.<pool domain>`, or
/// `warm-canon-<recipe>.<pool domain>` when `all` holds a provider of the same recipe;
/// plain -> `<name>.<pool domain>`. A canonical's live choice ([`super::settle`]) wins over the
/// derivation.
pub fn derive_domain(d: &Deployment, pool: &Pool, all: &[Deployment]) -> String {
    if let Some(domain) = d.spec.domain.as_ref().or(d.live_domain.as_ref()) {
        return domain.clone();
    }
    let base = &pool.spec.domain;
    let recipe = &d.spec.recipe;
    match d.spec.role {
        Role::Provider => format!("warm-{recipe}.{base}"),
        Role::Canonical => {
            let provider_exists = all
                .iter()
                .any(|o| o.spec.role == Role::Provider && o.spec.recipe == *recipe);
            if provider_exists {
                format!("warm-canon-{recipe}.{base}")
            } else {
                format!("warm-{recipe}.{base}")
            }
        }
        Role::Plain => format!("{}.{base}", d.name()),
    }
}

/// The stack name for `domain`: `.` -> `_` (abra's rule). When `<stack>_<service>` would pass
/// Docker's 63 characters for the longest service name, the name is cut and ends in `_` plus
/// the first 8 hex digits of the SHA-256 of the full name, so it stays unique and stable.
pub fn stack_name(domain: &str, longest_service_name_len: usize) -> String {
    let full = domain.replace('.', "_");
    let budget = DOCKER_NAME_MAX.saturating_sub(longest_service_name_len + 1);
    if full.len() <= budget {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash = hex::encode(&digest[..4]);
    // Keep as much of the readable name as fits before `_<hash>`; at least the hash itself.
    let keep = budget.saturating_sub(hash.len() + 1);
    let prefix: String = full.chars().take(keep).collect();
    let prefix = prefix.trim_end_matches(['_', '-']);
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}_{hash}")
    }
}

/// abra's limit on stack names: it cuts `<domain with . -> _>` after this many characters.
pub const ABRA_STACK_MAX: usize = 45;

/// The stack name abra gives an app on `domain` (when its env file sets no `STACK_NAME`): `.` ->
/// `_`, cut after [`ABRA_STACK_MAX`] characters.
pub fn abra_stack_name(domain: &str) -> String {
    domain
        .replace('.', "_")
        .chars()
        .take(ABRA_STACK_MAX)
        .collect()
}

/// A deployment's stack: an `adopt: true` deployment takes over what abra runs, so it is named
/// as abra names it ([`abra_stack_name`], then Docker's limit as [`stack_name`] keeps it);
/// every other one by [`stack_name`].
pub fn deployment_stack(d: &Deployment, domain: &str, longest_service_name_len: usize) -> String {
    if d.spec.adopt {
        let abra = abra_stack_name(domain);
        // Within Docker's limit abra's name is used as is; past it, docker would refuse abra's
        // stack too, and hearth's own cut applies.
        if abra.len() + 1 + longest_service_name_len <= DOCKER_NAME_MAX {
            return abra;
        }
    }
    stack_name(domain, longest_service_name_len)
}

/// A deployment's derived names and where to report problems with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub deployment: String,
    pub domain: String,
    pub stack: String,
    pub file: PathBuf,
    pub pos: Pos,
    /// `spec.domain` when the domain was given, else `metadata.name`.
    pub field: String,
}

/// Derives domain and stack name for every deployment. `longest_service_name_len` gives the
/// length of the longest compose service name of a deployment (0 when unknown).
pub fn name_all(
    pool: &Pool,
    deployments: &[Deployment],
    longest_service_name_len: &dyn Fn(&Deployment) -> usize,
) -> Vec<Named> {
    deployments
        .iter()
        .map(|d| {
            let domain = derive_domain(d, pool, deployments);
            let field = if d.spec.domain.is_some() {
                "spec.domain"
            } else {
                "metadata.name"
            };
            Named {
                deployment: d.name().to_string(),
                stack: deployment_stack(d, &domain, longest_service_name_len(d)),
                domain,
                file: d.origin.file.clone(),
                pos: d.origin.pos_of(field),
                field: field.to_string(),
            }
        })
        .collect()
}

/// Duplicate domains and stack names among `named`, and stack names already taken by live
/// stacks hearth does not own (`foreign_stacks`). Domains compare case-insensitively.
pub fn check_unique(named: &[Named], foreign_stacks: &[String]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut domains: HashMap<String, &Named> = HashMap::new();
    let mut stacks: HashMap<&str, &Named> = HashMap::new();
    let diag = |n: &Named, msg: String| Diagnostic::new(&n.file, n.pos, &n.field, msg);
    let place = |n: &Named| format!("{}:{}:{}", n.file.display(), n.pos.line, n.pos.col);
    for n in named {
        let key = n.domain.to_ascii_lowercase();
        if let Some(first) = domains.get(&key) {
            out.push(diag(
                n,
                format!(
                    "domain {:?} of deployment {:?} is also the domain of {:?} ({})",
                    n.domain,
                    n.deployment,
                    first.deployment,
                    place(first)
                ),
            ));
        } else {
            domains.insert(key, n);
            if let Some(first) = stacks.get(n.stack.as_str()) {
                out.push(diag(
                    n,
                    format!(
                        "stack name {:?} of deployment {:?} is also the stack of {:?} ({})",
                        n.stack,
                        n.deployment,
                        first.deployment,
                        place(first)
                    ),
                ));
            } else {
                stacks.insert(&n.stack, n);
            }
        }
        if foreign_stacks.contains(&n.stack) {
            out.push(diag(
                n,
                format!(
                    "stack {:?} (domain {:?}) already exists on the swarm and is not managed by hearth",
                    n.stack, n.domain
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::load::load_str;
    use super::*;
    use std::path::Path;

    fn pool_and(deps: &[(&str, &str, &str)]) -> (Pool, Vec<Deployment>) {
        let mut t = String::from(
            "apiVersion: hearth/v1\nkind: Pool\nmetadata: {name: ci}\nspec: {domain: ci.example.org}\n",
        );
        for (name, recipe, extra) in deps {
            t.push_str(&format!(
                "---\napiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec: {{recipe: {recipe}, version: v1{extra}}}\n"
            ));
        }
        let l = load_str(&t, Path::new("p.yml"));
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        (l.pool.expect("pool"), l.deployments)
    }

    fn domains(deps: &[(&str, &str, &str)]) -> Vec<String> {
        let (pool, ds) = pool_and(deps);
        ds.iter().map(|d| derive_domain(d, &pool, &ds)).collect()
    }

    #[test]
    fn adopted_deployments_are_named_as_abra_names_them() {
        let (pool, ds) = pool_and(&[("a", "ghost", ", adopt: true"), ("p", "ghost", "")]);
        let long = "blog-of-a-very-long-name-indeed-yes.example.org".to_string();
        assert!(long.len() > ABRA_STACK_MAX);
        let cut = deployment_stack(&ds[0], &long, 3);
        assert_eq!(cut.len(), ABRA_STACK_MAX);
        assert_eq!(cut, long.replace('.', "_")[..ABRA_STACK_MAX]);
        // Not adopted: hearth's own rule (the whole name fits Docker's limit here).
        assert_eq!(deployment_stack(&ds[1], &long, 3), long.replace('.', "_"));
        // Short names are the same either way.
        assert_eq!(deployment_stack(&ds[0], "a.b", 3), "a_b");
        // Past Docker's limit even after abra's cut: hearth's hashed cut.
        assert_eq!(deployment_stack(&ds[0], &long, 30), stack_name(&long, 30));
        let _ = pool;
    }

    #[test]
    fn derived_domains_by_role() {
        assert_eq!(
            domains(&[
                ("kc", "keycloak", ", role: provider"),
                ("gitea", "gitea", ", role: canonical"),
                ("blog", "ghost", ""),
                ("own", "ghost", ", domain: blog.example.net"),
            ]),
            vec![
                "warm-keycloak.ci.example.org",
                "warm-gitea.ci.example.org",
                "blog.ci.example.org",
                "blog.example.net",
            ]
        );
    }

    #[test]
    fn canonical_steps_aside_for_provider() {
        assert_eq!(
            domains(&[
                ("kc-canon", "keycloak", ", role: canonical"),
                ("kc", "keycloak", ", role: provider"),
            ]),
            vec![
                "warm-canon-keycloak.ci.example.org",
                "warm-keycloak.ci.example.org"
            ]
        );
    }

    #[test]
    fn stack_names() {
        assert_eq!(stack_name("git.example.org", 3), "git_example_org");
        // Exactly at the limit: 59 + 1 + 3 = 63.
        let d59 = format!("{}.org", "a".repeat(55));
        assert_eq!(stack_name(&d59, 3).len(), 59);
        assert_eq!(stack_name(&d59, 3), d59.replace('.', "_"));
        // One over: shortened, hashed, and within the limit.
        let d60 = format!("{}.org", "a".repeat(56));
        let s = stack_name(&d60, 3);
        assert_eq!(s.len() + 1 + 3, 63, "{s}");
        assert!(s.starts_with("aaaa"));
        let full = d60.replace('.', "_");
        let expect_hash = hex::encode(&Sha256::digest(full.as_bytes())[..4]);
        assert!(s.ends_with(&format!("_{expect_hash}")), "{s}");
        // Stable, and different domains sharing the kept prefix stay apart.
        assert_eq!(stack_name(&d60, 3), s);
        assert_ne!(stack_name(&format!("{}.net", "a".repeat(56)), 3), s);
        // A service name too long for any prefix leaves just the hash.
        assert_eq!(stack_name(&d60, 60).len(), 8);
    }

    #[test]
    fn keycloak_canonical_collides_with_foreign_warm_keycloak() {
        let (pool, ds) = pool_and(&[("keycloak", "keycloak", ", role: canonical")]);
        let named = name_all(&pool, &ds, &|_| 3);
        assert_eq!(named[0].stack, "warm-keycloak_ci_example_org");
        let foreign = vec!["warm-keycloak_ci_example_org".to_string()];
        let out: Vec<String> = check_unique(&named, &foreign)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            out,
            vec![
                "p.yml:8:18: metadata.name: stack \"warm-keycloak_ci_example_org\" (domain \"warm-keycloak.ci.example.org\") already exists on the swarm and is not managed by hearth"
            ]
        );
        // With a provider in the pool the canonical steps aside, and the provider collides.
        let (pool, ds) = pool_and(&[
            ("keycloak", "keycloak", ", role: canonical"),
            ("kc", "keycloak", ", role: provider"),
        ]);
        let named = name_all(&pool, &ds, &|_| 3);
        let out = check_unique(&named, &foreign);
        assert_eq!(out.len(), 1);
        assert_eq!(named[0].stack, "warm-canon-keycloak_ci_example_org");
        assert!(out[0].message.contains("already exists"), "{}", out[0]);
        assert_eq!(out[0].pos.line, 13);
    }

    #[test]
    fn duplicate_domains_and_stacks() {
        let (pool, ds) = pool_and(&[
            ("kc", "keycloak", ", role: provider"),
            ("warm-keycloak", "keycloak", ""),
            ("a", "x", ", domain: a.example.org"),
            ("b", "x", ", domain: A.Example.org"),
            ("c", "x", ", domain: c-d.example.org"),
            ("e", "x", ", domain: c-d.example_org"),
        ]);
        let named = name_all(&pool, &ds, &|_| 0);
        let out: Vec<String> = check_unique(&named, &[])
            .iter()
            .map(|d| format!("{}:{}: {}", d.pos.line, d.field, d.message))
            .collect();
        assert_eq!(
            out,
            vec![
                "13:metadata.name: domain \"warm-keycloak.ci.example.org\" of deployment \"warm-keycloak\" is also the domain of \"kc\" (p.yml:8:18)",
                "24:spec.domain: domain \"A.Example.org\" of deployment \"b\" is also the domain of \"a\" (p.yml:19:40)",
                "34:spec.domain: stack name \"c-d_example_org\" of deployment \"e\" is also the stack of \"c\" (p.yml:29:40)",
            ]
        );
    }
}

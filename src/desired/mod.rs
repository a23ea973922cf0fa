//! Desired state of a pool: manifests + recipes at their versions -> one rendered [`StackSpec`] per
//! deployment, with names (domain, stack) derived, and the checks that need the whole pool (unique
//! domains and stacks, alias collisions on shared external networks). Pure but for reading recipe
//! repos; never touches the swarm.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;

use crate::compose::{self, ComposeSource, model::ComposeFile};
use crate::diag::{Diagnostic, Pos};
use crate::manifest::{self, Deployment, Loaded, Pool, names};
use crate::recipe::{RecipeAt, RecipeStore, compose_files};
use crate::render::{self, RenderInput, StackSpec};

/// One deployment, rendered.
#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    pub deployment: String,
    pub recipe: String,
    pub version: String,
    /// The tag's commit id.
    pub commit: String,
    pub domain: String,
    pub stack: String,
    pub compose_files: Vec<String>,
    pub stack_spec: StackSpec,
    /// Contents of the recipe's `file:` secrets by compose key; never printed.
    #[serde(skip)]
    pub secret_files: BTreeMap<String, Vec<u8>>,
    /// abra's `.env.sample` hint for each compose secret that has one (`SECRET_<KEY>_VERSION`
    /// with `# length=` / `# generate=false`), by compose key: how an unlisted secret is made.
    #[serde(skip)]
    pub secret_hints: BTreeMap<String, crate::recipe::hints::SecretHint>,
}

/// The rendered pool: what rendered, and every problem found (errors and warnings).
#[derive(Debug, Default)]
pub struct DesiredPool {
    /// Shared with the [`RenderCache`] (one copy of each rendered spec).
    pub deployments: Vec<Arc<Desired>>,
    /// Problems that stop a deployment from rendering, or make the pool invalid.
    pub errors: Vec<Diagnostic>,
    /// Things that render but a user should know (Swarm ignores `depends_on`, ...).
    pub warnings: Vec<Diagnostic>,
    /// Deployments that loaded but must not be applied, with their problems.
    pub invalid: BTreeMap<String, Vec<Diagnostic>>,
    /// Deployment name -> index in `deployments`.
    by_name: HashMap<String, usize>,
}

impl DesiredPool {
    pub fn get(&self, name: &str) -> Option<&Desired> {
        self.shared(name).map(|d| &**d)
    }

    /// [`DesiredPool::get`], as the shared copy (cheap to keep).
    pub fn shared(&self, name: &str) -> Option<&Arc<Desired>> {
        // The index is built by `build`; anything pushed later is found by the scan.
        self.by_name
            .get(name)
            .and_then(|&i| self.deployments.get(i))
            .filter(|d| d.deployment == name)
            .or_else(|| self.deployments.iter().find(|d| d.deployment == name))
    }
}

/// Where recipes are read from: the pool's `recipes:` directory unless overridden.
pub fn recipe_store(loaded: &Loaded, override_dir: Option<PathBuf>) -> Option<RecipeStore> {
    override_dir
        .or_else(|| loaded.pool.as_ref().map(|p| p.spec.recipes.clone()))
        .map(RecipeStore::new)
}

/// Rendered deployments kept between passes, by deployment name, with the key they were rendered
/// for (a SHA-256 of pool spec, deployment spec, derived domain, recipe tag commit): an unchanged
/// deployment is not rendered again.
pub type RenderCache = HashMap<String, (RenderKey, Rendered)>;
type Rendered = Result<(Arc<Desired>, Vec<Diagnostic>), Vec<Diagnostic>>;

/// What a deployment was rendered from, hashed.
pub type RenderKey = [u8; 32];

/// Feeds `Debug` output into a hasher without building the string.
struct HashWriter(sha2::Sha256);

impl std::fmt::Write for HashWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        sha2::Digest::update(&mut self.0, s.as_bytes());
        Ok(())
    }
}

/// The render-cache key: pool spec (already hashed once per build), deployment spec, domain and
/// the tag's commit.
fn render_key(
    pool: &RenderKey,
    spec: &impl std::fmt::Debug,
    domain: &str,
    commit: &str,
) -> RenderKey {
    use sha2::Digest;
    let mut w = HashWriter(sha2::Sha256::new());
    w.0.update(pool);
    // Writing into a hasher cannot fail.
    let _ = std::fmt::Write::write_fmt(&mut w, format_args!("{spec:?}"));
    for part in [domain, commit] {
        w.0.update((part.len() as u64).to_le_bytes());
        w.0.update(part.as_bytes());
    }
    w.0.finalize().into()
}

/// Validates the manifests and renders every valid deployment. `only` limits rendering to one
/// deployment (the pool-wide checks still see every deployment's names).
pub fn build(loaded: &Loaded, store: &RecipeStore, only: Option<&str>) -> DesiredPool {
    build_cached(loaded, store, only, &mut RenderCache::new())
}

/// [`build`], reusing `cache` for deployments whose inputs did not change.
pub fn build_cached(
    loaded: &Loaded,
    store: &RecipeStore,
    only: Option<&str>,
    cache: &mut RenderCache,
) -> DesiredPool {
    build_inner(loaded, store, only, cache, &[])
}

/// [`build`], with the stack namespaces live on the swarm that this pool's deployments did not
/// make (`crate::conflicts::SwarmIndex::foreign_stacks`): a deployment whose stack name is one of
/// them is an error (what `hearth validate` and `hearth plan` check when a daemon answers).
pub fn build_live(
    loaded: &Loaded,
    store: &RecipeStore,
    only: Option<&str>,
    foreign_stacks: &[String],
) -> DesiredPool {
    build_inner(loaded, store, only, &mut RenderCache::new(), foreign_stacks)
}

fn build_inner(
    loaded: &Loaded,
    store: &RecipeStore,
    only: Option<&str>,
    cache: &mut RenderCache,
    foreign_stacks: &[String],
) -> DesiredPool {
    let mut out = DesiredPool {
        errors: loaded.diagnostics.clone(),
        ..Default::default()
    };
    let recipes = store.recipes();
    out.errors.extend(manifest::validate(
        loaded,
        &|r| store.has_recipe(r),
        &recipes,
    ));
    let Some(pool) = &loaded.pool else {
        return out;
    };
    let mut longest: BTreeMap<String, usize> = BTreeMap::new();
    let broken: BTreeSet<String> = owners(&out.errors, loaded).into_keys().collect();
    let pool_key = render_key(&[0; 32], &pool.spec, "", "");
    for d in &loaded.deployments {
        if broken.contains(d.name()) || only.is_some_and(|o| o != d.name()) {
            continue;
        }
        let key = store.open(&d.spec.recipe, &d.spec.version).ok().map(|at| {
            render_key(
                &pool_key,
                &d.spec,
                &names::derive_domain(d, pool, &loaded.deployments),
                at.commit(),
            )
        });
        let rendered = match (&key, cache.get(d.name())) {
            (Some(k), Some((cached, r))) if k == cached => r.clone(),
            _ => {
                let r = render_one(d, pool, &loaded.deployments, store)
                    .map(|(desired, w)| (Arc::new(desired), w));
                if let Some(k) = key {
                    cache.insert(d.name().to_string(), (k, r.clone()));
                }
                r
            }
        };
        match rendered {
            Ok((desired, warnings)) => {
                longest.insert(
                    d.name().to_string(),
                    desired.stack_spec.longest_scoped_key(),
                );
                out.warnings.extend(warnings);
                out.deployments.push(desired);
            }
            Err(errs) => {
                out.invalid
                    .entry(d.name().to_string())
                    .or_default()
                    .extend(errs.iter().cloned());
                out.errors.extend(errs);
            }
        }
    }
    cache.retain(|name, _| loaded.deployment(name).is_some());
    let named = names::name_all(pool, &loaded.deployments, &|d| {
        longest.get(d.name()).copied().unwrap_or(0)
    });
    // A deployment with `adopt: true` takes its foreign stack over (docs/abra.md): that stack
    // existing is what adoption is for, never a collision.
    let adopted: BTreeSet<&str> = named
        .iter()
        .filter(|n| {
            loaded
                .deployment(&n.deployment)
                .is_some_and(|d| d.spec.adopt)
        })
        .map(|n| n.stack.as_str())
        .collect();
    let foreign: Vec<String> = foreign_stacks
        .iter()
        .filter(|s| !adopted.contains(s.as_str()))
        .cloned()
        .collect();
    let mut pool_errors = names::check_unique(&named, &foreign);
    pool_errors.extend(alias_collisions(&out.deployments, loaded));
    out.errors.extend(pool_errors);
    // Every problem located in a deployment's own document makes it invalid: it is not applied.
    for (name, errs) in owners(&out.errors, loaded) {
        let entry = out.invalid.entry(name).or_default();
        for e in errs {
            if !entry.contains(&e) {
                entry.push(e);
            }
        }
    }
    let invalid = &out.invalid;
    out.deployments
        .retain(|d| !invalid.contains_key(&d.deployment));
    out.by_name = out
        .deployments
        .iter()
        .enumerate()
        .map(|(i, d)| (d.deployment.clone(), i))
        .collect();
    out
}

/// Problems grouped by the deployment whose manifest document they point into.
fn owners(errors: &[Diagnostic], loaded: &Loaded) -> BTreeMap<String, Vec<Diagnostic>> {
    let mut out: BTreeMap<String, Vec<Diagnostic>> = BTreeMap::new();
    for e in errors {
        if let Some(d) = loaded
            .deployments
            .iter()
            .find(|d| d.origin.file == e.file && is_in_document(d, e.pos))
        {
            out.entry(d.name().to_string()).or_default().push(e.clone());
        }
    }
    out
}

/// Errors located in a deployment's own document (its origin line or after, before the next one).
fn is_in_document(d: &Deployment, pos: Pos) -> bool {
    let start = d.origin.pos.line;
    let end = d
        .origin
        .fields
        .values()
        .map(|p| p.line)
        .max()
        .unwrap_or(start);
    pos.line >= start && pos.line <= end
}

/// Renders one deployment: recipe at its version, env, compose files, compose model, stack spec.
pub fn render_one(
    d: &Deployment,
    pool: &Pool,
    all: &[Deployment],
    store: &RecipeStore,
) -> Result<(Desired, Vec<Diagnostic>), Vec<Diagnostic>> {
    let at_version = |msg: String| {
        vec![Diagnostic::new(
            &d.origin.file,
            d.origin.pos_of("spec.version"),
            "spec.version",
            msg,
        )]
    };
    let recipe = store
        .open(&d.spec.recipe, &d.spec.version)
        .map_err(|e| at_version(e.to_string()))?;
    let domain = names::derive_domain(d, pool, all);
    // The stack name depends on the longest service, network or secret key (Docker's 63 and 64
    // character limits on `<stack>_<key>`), which is
    // known only after loading; load once with the plain name and again if it had to be shortened.
    let stack = names::deployment_stack(d, &domain, 0);
    let (compose, files, mut warnings) = load_compose(d, &recipe, &stack, &domain)?;
    let longest = render::longest_scoped_key(&compose.model);
    let stack_final = names::deployment_stack(d, &domain, longest);
    let (compose, files, w) = if stack_final == stack {
        (compose, files, Vec::new())
    } else {
        load_compose(d, &recipe, &stack_final, &domain)?
    };
    warnings.extend(w);
    let stack = stack_final;
    let read_file = |path: &str| recipe.read(path).map_err(|e| e.to_string());
    let label = recipe.label(files.first().map(String::as_str).unwrap_or("compose.yml"));
    let spec = render::render(&RenderInput {
        deployment: d.name(),
        stack: &stack,
        version: &d.spec.version,
        source: &label,
        compose: &compose.model,
        read_file: &read_file,
        extra_labels: &pool_labels(pool),
    })
    .map_err(|diags| {
        diags
            .0
            .into_iter()
            .map(|diag| locate(diag, &compose.loaded))
            .collect::<Vec<_>>()
    })?;
    warnings.extend(spec.warnings.iter().map(|w| {
        let (field, message) = split_render_warning(w, &label);
        let diag = Diagnostic::new(&label, Pos::default(), field, format!("warning: {message}"));
        locate(diag, &compose.loaded)
    }));
    let mut secret_files = BTreeMap::new();
    for s in spec.recipe_file_secrets() {
        match recipe.read(&s.1) {
            Ok(Some(data)) => {
                secret_files.insert(s.0, data);
            }
            _ => {
                return Err(vec![Diagnostic::new(
                    &label,
                    Pos::default(),
                    format!("secrets.{}.file", s.0),
                    format!("cannot read {} in the recipe", s.1),
                )]);
            }
        }
    }
    let hints = match recipe.read_string(".env.sample") {
        Ok(Some(text)) => crate::recipe::hints::secret_hints(&text),
        _ => Vec::new(),
    };
    let secret_hints = spec
        .secrets
        .iter()
        .filter_map(|s| {
            crate::recipe::hints::hint_for(&hints, &s.key).map(|h| (s.key.clone(), h.clone()))
        })
        .collect();
    Ok((
        Desired {
            deployment: d.name().to_string(),
            recipe: d.spec.recipe.clone(),
            version: d.spec.version.clone(),
            commit: recipe.commit().to_string(),
            domain,
            stack,
            compose_files: files,
            stack_spec: spec,
            secret_files,
            secret_hints,
        },
        warnings,
    ))
}

/// The labels every object of the pool carries: the pool's own `labels:` and `hearth.pool`.
pub fn pool_labels(pool: &Pool) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = pool.spec.labels.clone().into_iter().collect();
    labels.insert(
        crate::render::LABEL_POOL.to_string(),
        pool.metadata.name.clone(),
    );
    labels
}

struct Compose {
    model: ComposeFile,
    loaded: compose::Loaded,
}

fn load_compose(
    d: &Deployment,
    recipe: &RecipeAt,
    stack: &str,
    domain: &str,
) -> Result<(Compose, Vec<String>, Vec<Diagnostic>), Vec<Diagnostic>> {
    let manifest_diag = |field: &str, msg: String| {
        vec![Diagnostic::new(
            &d.origin.file,
            d.origin.pos_of(field),
            field,
            msg,
        )]
    };
    let env: IndexMap<String, String> = recipe
        .load_env(&d.spec.env, stack, domain)
        .map_err(|e| manifest_diag("spec.version", e.to_string()))?;
    let files = match &d.spec.compose_files {
        Some(f) => f.clone(),
        None => compose_files(&env),
    };
    let mut sources = Vec::new();
    for f in &files {
        match recipe.read_string(f) {
            Ok(Some(text)) => sources.push(ComposeSource {
                path: f.clone(),
                label: recipe.label(f),
                text,
            }),
            Ok(None) => {
                return Err(manifest_diag(
                    if d.spec.compose_files.is_some() {
                        "spec.composeFiles"
                    } else {
                        "spec.env"
                    },
                    format!(
                        "compose file {f} does not exist in recipe {} at {}",
                        recipe.recipe(),
                        recipe.tag()
                    ),
                ));
            }
            Err(e) => return Err(manifest_diag("spec.version", e.to_string())),
        }
    }
    let loaded = compose::load_tree(&sources, &env)?;
    let model: ComposeFile = compose::deserialize(&loaded).map_err(|e| vec![e])?;
    let warnings = loaded.warnings.clone();
    Ok((Compose { model, loaded }, files, warnings))
}

/// Splits a render warning (`<source>: <field>: <message>`) into field and message, so it prints
/// once as `file:line:col: field: message` rather than repeating the source.
fn split_render_warning<'w>(warning: &'w str, source: &str) -> (&'w str, &'w str) {
    let Some(rest) = warning
        .strip_prefix(source)
        .and_then(|r| r.strip_prefix(": "))
    else {
        return ("", warning);
    };
    match rest.split_once(": ") {
        Some((field, message)) if !field.contains(' ') => (field, message),
        _ => ("", rest),
    }
}

/// Points a render diagnostic at the compose file and line that defined the field, when known
/// (a service with no image is reported in the overlay file that defined the service).
fn locate(mut diag: Diagnostic, loaded: &compose::Loaded) -> Diagnostic {
    let path: Vec<&str> = diag.field.split('.').collect();
    let mut probe = path.as_slice();
    while !probe.is_empty() {
        if let Some((file, pos)) = compose::origin_of(loaded, probe) {
            diag.file = file.into();
            diag.pos = pos;
            break;
        }
        probe = &probe[..probe.len() - 1];
    }
    diag
}

/// Explicit aliases two stacks both claim on the same external network.
fn alias_collisions(desired: &[Arc<Desired>], loaded: &Loaded) -> Vec<Diagnostic> {
    let mut owners: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    for d in desired {
        let external: Vec<&str> = d
            .stack_spec
            .networks
            .iter()
            .filter(|n| n.external)
            .map(|n| n.name.as_str())
            .collect();
        for s in &d.stack_spec.services {
            for n in &s.networks() {
                let target = n.target.as_deref().unwrap_or_default();
                if !external.contains(&target) {
                    continue;
                }
                // The stack-scoped alias hearth adds is unique when stack names are (checked
                // above); only aliases the compose file asks for can collide.
                let implicit = format!("{}_{}", d.stack, s.key);
                for alias in n.aliases.iter().flatten().filter(|a| **a != implicit) {
                    owners
                        .entry((target.to_string(), alias.clone()))
                        .or_default()
                        .push((d.deployment.clone(), s.key.clone()));
                }
            }
        }
    }
    let mut out = Vec::new();
    for ((network, alias), users) in owners {
        let stacks: std::collections::BTreeSet<&str> =
            users.iter().map(|(d, _)| d.as_str()).collect();
        if stacks.len() < 2 {
            continue;
        }
        for (dep, service) in &users {
            let Some(d) = loaded.deployment(dep) else {
                continue;
            };
            let others: Vec<String> = users
                .iter()
                .filter(|(o, _)| o != dep)
                .map(|(o, s)| format!("{o}/{s}"))
                .collect();
            out.push(Diagnostic::new(
                &d.origin.file,
                d.origin.pos_of("metadata.name"),
                "metadata.name",
                format!(
                    "service {service} claims alias {alias:?} on the shared external network \
                     {network}, which {} also claims: one would answer for the other",
                    others.join(", ")
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_warnings_lose_their_repeated_source() {
        let src = "ks@1.0.0:compose.yml";
        assert_eq!(
            split_render_warning(
                "ks@1.0.0:compose.yml: services.w.depends_on: Swarm ignores depends_on: x",
                src
            ),
            ("services.w.depends_on", "Swarm ignores depends_on: x")
        );
        // Without the expected shape the whole text is the message.
        assert_eq!(
            split_render_warning("something odd happened", src),
            ("", "something odd happened")
        );
        assert_eq!(
            split_render_warning("ks@1.0.0:compose.yml: no field here", src),
            ("", "no field here")
        );
        assert_eq!(
            split_render_warning("other.yml: a b: c", src),
            ("", "other.yml: a b: c")
        );
    }
}

//! A canonical's domain from the live swarm (docs/architecture.md §4, issue 19 item 3): when the
//! recipe's warm domain `warm-<recipe>.<pool domain>` is already served by a live stack that is not
//! the canonical's own (a hearth provider of any pool, or a foreign stack whose name or Traefik
//! router host is that domain), a canonical that does not exist yet is created at
//! `warm-canon-<recipe>.<pool domain>`. Once it has objects on the swarm its place is sticky: the
//! live holder going away never moves it (a move goes through `hearth migrate`).
//!
//! Pure: [`LiveNames`] is what one snapshot says (built by `conflicts::SwarmIndex::live_names`),
//! [`settle`] writes the choice into [`Deployment::live_domain`], which `names::derive_domain`
//! honours. Offline ([`LiveNames::default`]) nothing changes.

use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};

use super::names::derive_domain;
use super::types::{Deployment, Pool, Role};

/// Who holds what on the live swarm, as far as naming is concerned.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LiveNames {
    /// Stacks the pool's deployments have objects in, by deployment name.
    pub placed: HashMap<String, BTreeSet<String>>,
    /// Every stack namespace with objects -> who holds it: this pool's deployment names, and
    /// [`OTHER`] for anything else (another pool's deployment, a stack hearth did not make).
    pub stacks: HashMap<String, BTreeSet<String>>,
    /// Traefik router hosts (lowercase) -> the stacks whose services claim them (`""` for a
    /// service in no stack).
    pub hosts: HashMap<String, BTreeSet<String>>,
}

/// The holder key of anything that is not a deployment of this pool.
pub const OTHER: &str = "";

impl LiveNames {
    /// Whether deployment `name` has objects in the stack that `domain` names.
    fn placed_at(&self, name: &str, domain: &str) -> bool {
        let Some(stacks) = self.placed.get(name) else {
            return false;
        };
        let of = StacksOf::new(domain);
        stacks.iter().any(|s| of.matches(s))
    }

    /// Whether something other than deployment `name` holds `domain`: a stack of that name with
    /// another holder, or a router host claimed from a stack that is not `name`'s.
    fn held_by_other(&self, name: &str, domain: &str) -> Option<String> {
        let of = StacksOf::new(domain);
        for (stack, holders) in &self.stacks {
            if of.matches(stack) && holders.iter().any(|h| h != name) {
                return Some(format!("stack {stack:?}"));
            }
        }
        let own = self.placed.get(name);
        let claimers = self.hosts.get(&domain.to_ascii_lowercase())?;
        claimers
            .iter()
            .find(|s| !own.is_some_and(|o| o.contains(*s)))
            .map(|s| {
                if s.is_empty() {
                    format!("a router for {domain} (a service in no stack)")
                } else {
                    format!("a router for {domain} in stack {s:?}")
                }
            })
    }
}

/// The stack names `names::stack_name` can give one domain: the full name, or a cut form ending in
/// the full name's hash (which form depends on the longest service name).
struct StacksOf {
    full: String,
    hash: String,
}

impl StacksOf {
    fn new(domain: &str) -> StacksOf {
        let full = domain.replace('.', "_");
        let hash = hex::encode(&Sha256::digest(full.as_bytes())[..4]);
        StacksOf { full, hash }
    }

    fn matches(&self, stack: &str) -> bool {
        stack == self.full
            || stack == self.hash
            || stack
                .strip_suffix(self.hash.as_str())
                .and_then(|p| p.strip_suffix('_'))
                .is_some_and(|p| self.full.starts_with(p))
    }
}

#[cfg(test)]
fn is_stack_of(domain: &str, stack: &str) -> bool {
    StacksOf::new(domain).matches(stack)
}

/// Why a canonical was placed where it is, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub deployment: String,
    pub domain: String,
    pub why: String,
}

/// Decides the live domain of every canonical without `spec.domain` and writes it into
/// [`Deployment::live_domain`]. Returns the deployments whose choice changed, with the reason.
///
/// The order: a provider of the recipe in the manifests decides (`warm-canon-`, moves held as
/// before); `adopt: true` keeps the warm domain (the stack there is the one it takes over); a
/// canonical already placed at either domain stays there; a new one steps aside to `warm-canon-`
/// when the warm domain is held by another.
pub fn settle(pool: &Pool, deployments: &mut [Deployment], live: &LiveNames) -> Vec<Settled> {
    let mut changed = Vec::new();
    for i in 0..deployments.len() {
        let d = &deployments[i];
        let (choice, why) = choose(d, pool, deployments, live);
        if deployments[i].live_domain != choice {
            changed.push(Settled {
                deployment: deployments[i].name().to_string(),
                domain: choice.clone().unwrap_or_else(|| {
                    let mut plain = deployments[i].clone();
                    plain.live_domain = None;
                    derive_domain(&plain, pool, deployments)
                }),
                why,
            });
            deployments[i].live_domain = choice;
        }
    }
    changed
}

/// One canonical's live domain (`None`: the manifests alone decide) and why.
fn choose(
    d: &Deployment,
    pool: &Pool,
    all: &[Deployment],
    live: &LiveNames,
) -> (Option<String>, String) {
    let plain = || (None, "the manifests decide".to_string());
    if d.spec.role != Role::Canonical || d.spec.domain.is_some() || d.spec.adopt {
        return plain();
    }
    let provider_in_manifests = all
        .iter()
        .any(|o| o.spec.role == Role::Provider && o.spec.recipe == d.spec.recipe);
    if provider_in_manifests {
        return plain();
    }
    let base = &pool.spec.domain;
    let warm = format!("warm-{}.{base}", d.spec.recipe);
    let aside = format!("warm-canon-{}.{base}", d.spec.recipe);
    if live.placed_at(d.name(), &aside) {
        return (
            Some(aside),
            "it was created there; it stays (hearth migrate moves it)".into(),
        );
    }
    if live.placed_at(d.name(), &warm) {
        return plain();
    }
    match live.held_by_other(d.name(), &warm) {
        Some(holder) => (
            Some(aside),
            format!("{warm} is held by {holder}, which is not this canonical's"),
        ),
        None => plain(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::load_str;
    use super::*;
    use std::path::Path;

    fn pool_and(extra: &str) -> (Pool, Vec<Deployment>) {
        let t = format!(
            "apiVersion: hearth/v1\nkind: Pool\nmetadata: {{name: ci}}\nspec: {{domain: ci.example.org}}\n\
             ---\napiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: kc-canon}}\n\
             spec: {{recipe: keycloak, version: v1, role: canonical{extra}}}\n"
        );
        let l = load_str(&t, Path::new("p.yml"));
        assert!(l.diagnostics.is_empty(), "{:?}", l.diagnostics);
        (l.pool.expect("pool"), l.deployments)
    }

    fn live(stacks: &[(&str, &str)], hosts: &[(&str, &str)]) -> LiveNames {
        let mut l = LiveNames::default();
        for (stack, holder) in stacks {
            l.stacks
                .entry(stack.to_string())
                .or_default()
                .insert(holder.to_string());
            if *holder != OTHER {
                l.placed
                    .entry(holder.to_string())
                    .or_default()
                    .insert(stack.to_string());
            }
        }
        for (host, stack) in hosts {
            l.hosts
                .entry(host.to_string())
                .or_default()
                .insert(stack.to_string());
        }
        l
    }

    fn domain_with(extra: &str, l: &LiveNames) -> (String, Vec<Settled>) {
        let (pool, mut ds) = pool_and(extra);
        let changed = settle(&pool, &mut ds, l);
        (derive_domain(&ds[0], &pool, &ds), changed)
    }

    const WARM: &str = "warm-keycloak_ci_example_org";
    const ASIDE: &str = "warm-canon-keycloak_ci_example_org";

    #[test]
    fn offline_the_manifests_decide() {
        let (d, changed) = domain_with("", &LiveNames::default());
        assert_eq!(d, "warm-keycloak.ci.example.org");
        assert!(changed.is_empty());
    }

    #[test]
    fn a_new_canonical_steps_aside_for_a_foreign_stack_or_router() {
        let (d, changed) = domain_with("", &live(&[(WARM, OTHER)], &[]));
        assert_eq!(d, "warm-canon-keycloak.ci.example.org");
        assert_eq!(changed.len(), 1);
        assert!(changed[0].why.contains(WARM), "{:?}", changed[0]);
        // A router host, from a stack of any name.
        let by_router = live(
            &[("kc_by_hand", OTHER)],
            &[("warm-keycloak.ci.example.org", "kc_by_hand")],
        );
        let (d, changed) = domain_with("", &by_router);
        assert_eq!(d, "warm-canon-keycloak.ci.example.org");
        assert!(changed[0].why.contains("kc_by_hand"), "{:?}", changed[0]);
        // A hearth deployment of another pool (or a provider not in these manifests).
        let (d, _) = domain_with("", &live(&[(WARM, "warm-keycloak")], &[]));
        assert_eq!(d, "warm-canon-keycloak.ci.example.org");
    }

    #[test]
    fn the_choice_is_sticky_once_created() {
        // Created aside; the foreign stack gone: it stays aside.
        let (d, changed) = domain_with("", &live(&[(ASIDE, "kc-canon")], &[]));
        assert_eq!(d, "warm-canon-keycloak.ci.example.org");
        assert_eq!(changed.len(), 1);
        // Created at the warm domain; a foreign stack arrives there too: it stays (a conflict).
        let (d, changed) = domain_with("", &live(&[(WARM, "kc-canon"), (WARM, OTHER)], &[]));
        assert_eq!(d, "warm-keycloak.ci.example.org");
        assert!(changed.is_empty());
        // Its own router on the warm domain is not someone else's.
        let own = live(
            &[(WARM, "kc-canon")],
            &[("warm-keycloak.ci.example.org", WARM)],
        );
        assert_eq!(domain_with("", &own).0, "warm-keycloak.ci.example.org");
    }

    #[test]
    fn given_domains_adoption_and_providers_in_the_manifests_are_not_moved() {
        let held = live(&[(WARM, OTHER)], &[]);
        assert_eq!(
            domain_with(", domain: kc.example.net", &held).0,
            "kc.example.net"
        );
        assert_eq!(
            domain_with(", adopt: true", &held).0,
            "warm-keycloak.ci.example.org"
        );
    }

    #[test]
    fn cut_stack_names_are_recognised() {
        let long = format!("warm-keycloak.{}.example.org", "d".repeat(50));
        let cut = super::super::names::stack_name(&long, 20);
        assert_ne!(cut, long.replace('.', "_"));
        assert!(is_stack_of(&long, &cut));
        assert!(is_stack_of(&long, &long.replace('.', "_")));
        assert!(!is_stack_of(&long, "warm-keycloak_x"));
        assert!(!is_stack_of("a.b", "a_b_c"));
    }
}

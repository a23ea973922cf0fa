//! Fidelity: for every fixture recipe (at its latest valid version; kitchen-sink exercises every
//! supported compose key), deploy once with `docker stack deploy` and once from hearth's rendered
//! specs through the library, then compare the live objects field by field after normalizing
//! names. Every remaining difference must be on [`ALLOWED`], and each entry there is one of the
//! deliberate differences documented in docs/compose-support.md. Also the two stacks must hold the
//! same services, networks, secrets and configs.
//!
//! Each recipe is its own test so they run in parallel (`--test-threads 7`); a test waits only
//! until the services exist. Run with `--nocapture` to see the per-recipe summary of the allowed
//! differences found.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::fidelity::{
    Difference, Objects, Side, StackGuard, checkout, diff, docker, stale_stacks,
};
use common::pool::TestPool;
use common::swarm::wait_for;
use common::with_swarm;
use hearth::recipe::{RecipeStore, compose_files};
use indexmap::IndexMap;
use serde_json::Value;

/// One fixture recipe to compare.
struct Case {
    recipe: &'static str,
    version: &'static str,
    /// Deployment name (role plain: the domain is `<name>.<pool domain>`). It must sort before
    /// `proxy` like its `d`-prefixed docker twin, so both stacks' networks sort alike.
    name: &'static str,
    /// Port variables and their offsets (keeping docker's port order): each side gets its own
    /// ports so the two stacks can publish at the same time.
    ports: &'static [(&'static str, u16)],
    /// Further manifest env, the same on both sides.
    env: &'static [(&'static str, &'static str)],
    /// Secrets the manifest generates (docker side: created with `docker secret create`).
    secrets: &'static [&'static str],
    /// Distinct port range per test inside this process.
    slot: u16,
}

/// Where a difference was found, for the allow-list rules.
struct Found<'a> {
    kind: &'a str,
    /// Normalized object name (`<STACK>_app`).
    object: &'a str,
    diff: &'a Difference,
    /// The whole normalized hearth object.
    hearth: &'a Value,
    external_networks: &'a BTreeSet<String>,
    version: &'a str,
}

impl Found<'_> {
    /// The service key (`app` of `<STACK>_app`).
    fn key(&self) -> &str {
        self.object.strip_prefix("<STACK>_").unwrap_or(self.object)
    }
}

/// A deliberate difference: what it is, where docs/compose-support.md documents it, and which
/// found differences it covers.
struct Allowed {
    id: &'static str,
    doc: &'static str,
    applies: fn(&Found) -> bool,
}

/// The label key of a path ending in `Labels["<key>"]`.
fn label_key(path: &str) -> Option<&str> {
    path.rsplit_once("Labels[\"")
        .and_then(|(_, rest)| rest.strip_suffix("\"]"))
}

/// The allow-list. Every entry names the deliberate difference of docs/compose-support.md
/// ("Deliberate differences from `docker stack deploy`") it stands for.
const ALLOWED: &[Allowed] = &[
    // hearth.managed-by, hearth.deployment, hearth.spec-hash and the pool's labels (the tests'
    // hearth.test): only hearth sets them, on every object it creates.
    Allowed {
        id: "hearth-labels",
        doc: "3. hearth's labels",
        applies: |f| {
            f.diff.docker.is_none()
                && f.diff.hearth.is_some()
                && label_key(&f.diff.path).is_some_and(|k| k.starts_with("hearth."))
        },
    },
    // abra's version label on services whose recipe does not set it itself.
    Allowed {
        id: "abra-version-label",
        doc: "3. hearth's labels (coop-cloud.<stack>.version)",
        applies: |f| {
            f.kind == "service"
                && f.diff.path == "Labels[\"coop-cloud.<STACK>.version\"]"
                && f.diff.docker.is_none()
                && f.diff.hearth.as_ref().and_then(Value::as_str) == Some(f.version)
        },
    },
    // On an external network the service answers to `<stack>_<service>`, not to `<service>`.
    Allowed {
        id: "external-network-alias",
        doc: "1. External networks get only the stack-scoped alias",
        applies: |f| {
            if f.kind != "service" || f.diff.pattern() != "TaskTemplate.Networks[*].Aliases[*]" {
                return false;
            }
            let index = f
                .diff
                .path
                .strip_prefix("TaskTemplate.Networks[")
                .and_then(|r| r.split_once(']'))
                .and_then(|(i, _)| i.parse::<usize>().ok());
            let target = index.and_then(|i| {
                f.hearth
                    .pointer(&format!("/TaskTemplate/Networks/{i}/Target"))
                    .and_then(Value::as_str)
            });
            let scoped = format!("<STACK>_{}", f.key());
            target.is_some_and(|t| f.external_networks.contains(t))
                && f.diff
                    .docker
                    .as_ref()
                    .is_none_or(|v| v.as_str() == Some(f.key()))
                && f.diff
                    .hearth
                    .as_ref()
                    .is_none_or(|v| v.as_str() == Some(scoped.as_str()))
        },
    },
];

/// The ports of one side: variable -> port, and port -> placeholder.
fn ports(case: &Case, docker_side: bool) -> (Vec<(String, String)>, BTreeMap<i64, String>) {
    let base = 40000 + (std::process::id() % 100) as u16 * 200 + case.slot * 40;
    let base = if docker_side { base + 20 } else { base };
    let mut env = Vec::new();
    let mut map = BTreeMap::new();
    for (var, offset) in case.ports {
        let port = base + offset;
        env.push((var.to_string(), port.to_string()));
        map.insert(i64::from(port), format!("<{var}>"));
    }
    (env, map)
}

fn manifest_env(case: &Case, docker_side: bool) -> Vec<(String, String)> {
    let mut env = ports(case, docker_side).0;
    env.extend(case.env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// The deployment's manifest (the YAML under `spec:`).
fn deployment_yaml(case: &Case) -> String {
    let mut out = format!(
        "  recipe: {}\n  version: \"{}\"\n  role: plain\n",
        case.recipe, case.version
    );
    let env = manifest_env(case, false);
    if !env.is_empty() {
        out.push_str("  env:\n");
        for (k, v) in env {
            out.push_str(&format!("    {k}: {v:?}\n"));
        }
    }
    if !case.secrets.is_empty() {
        out.push_str("  secrets:\n");
        for s in case.secrets {
            out.push_str(&format!("    {s}: {{generate: {{length: 32}}}}\n"));
        }
    }
    out
}

/// What one comparison found.
#[derive(Default)]
struct Outcome {
    /// (rule id, doc, object, difference)
    allowed: Vec<(&'static str, &'static str, String, Difference)>,
    unexpected: Vec<String>,
}

/// Compares two maps of normalized objects: the same names, and field by field.
fn compare_kind(
    kind: &str,
    docker: &BTreeMap<String, Value>,
    hearth: &BTreeMap<String, Value>,
    names_only: &BTreeSet<String>,
    external_networks: &BTreeSet<String>,
    version: &str,
    out: &mut Outcome,
) {
    let d: BTreeSet<&String> = docker.keys().collect();
    let h: BTreeSet<&String> = hearth.keys().collect();
    if d != h {
        out.unexpected
            .push(format!("{kind}s differ: docker {d:?} / hearth {h:?}"));
    }
    for (name, dv) in docker {
        let Some(hv) = hearth.get(name) else {
            continue;
        };
        if names_only.contains(name) {
            continue;
        }
        for difference in diff(dv, hv) {
            let found = Found {
                kind,
                object: name,
                diff: &difference,
                hearth: hv,
                external_networks,
                version,
            };
            match ALLOWED.iter().find(|a| (a.applies)(&found)) {
                Some(a) => out
                    .allowed
                    .push((a.id, a.doc, format!("{kind} {name}"), difference)),
                None => out.unexpected.push(format!("{kind} {name}: {difference}")),
            }
        }
    }
}

/// Compares the two stacks' objects.
fn compare(
    docker: &Objects,
    hearth: &Objects,
    external_networks: &BTreeSet<String>,
    version: &str,
) -> Outcome {
    let mut out = Outcome::default();
    let none = BTreeSet::new();
    compare_kind(
        "service",
        &docker.services,
        &hearth.services,
        &none,
        external_networks,
        version,
        &mut out,
    );
    compare_kind(
        "network",
        &docker.networks,
        &hearth.networks,
        &none,
        external_networks,
        version,
        &mut out,
    );
    for (kind, d, h) in [
        ("secret", &docker.secrets, &hearth.secrets),
        ("config", &docker.configs, &hearth.configs),
    ] {
        // External objects (created beside the stack: by this test for docker, by hearth from the
        // manifest's `secrets:`) are compared by name only; what the deploy itself creates, in full.
        let external: BTreeSet<String> = d
            .iter()
            .filter(|(_, o)| !o.owned)
            .map(|(n, _)| n.clone())
            .collect();
        let specs = |m: &BTreeMap<String, common::fidelity::Object>| -> BTreeMap<String, Value> {
            m.iter().map(|(n, o)| (n.clone(), o.spec.clone())).collect()
        };
        compare_kind(
            kind,
            &specs(d),
            &specs(h),
            &external,
            external_networks,
            version,
            &mut out,
        );
    }
    out
}

/// The per-recipe summary of the allowed differences.
fn summary(case: &Case, docker: &Objects, hearth: &Objects, out: &Outcome) -> String {
    let mut s = format!(
        "fidelity {}@{}: {} services, {} networks, {} secrets, {} configs; \
         {} allowed differences",
        case.recipe,
        case.version,
        docker.services.len(),
        docker.networks.len(),
        docker.secrets.len(),
        docker.configs.len(),
        out.allowed.len()
    );
    if hearth.config_hashes_stripped > 0 {
        s.push_str(&format!(
            "\n  normalized: {} config names lose hearth's content hash suffix \
             (docs/compose-support.md difference 2)",
            hearth.config_hashes_stripped
        ));
    }
    let mut by_rule: BTreeMap<(&str, &str), BTreeMap<String, Vec<&str>>> = BTreeMap::new();
    for (id, doc, object, d) in &out.allowed {
        let line = format!(
            "{}: {} -> {}",
            d.pattern(),
            shown(&d.docker),
            shown(&d.hearth)
        );
        by_rule
            .entry((id, doc))
            .or_default()
            .entry(line)
            .or_default()
            .push(object);
    }
    for ((id, doc), lines) in by_rule {
        let n: usize = lines.values().map(Vec::len).sum();
        s.push_str(&format!(
            "\n  [{id}] {n}x (docs/compose-support.md difference {doc})"
        ));
        for (line, objects) in lines {
            let mut objects = objects.clone();
            objects.sort();
            objects.dedup();
            s.push_str(&format!("\n    {line}  ({})", objects.join(", ")));
        }
    }
    s
}

/// A value for the summary; spec hashes (which differ per service) are shown as `<sha256>`.
fn shown(v: &Option<Value>) -> String {
    match v {
        None => "<absent>".into(),
        Some(Value::String(s)) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            "<sha256>".into()
        }
        Some(v) => v.to_string(),
    }
}

/// Random bytes for a secret value (never compared).
fn random_value() -> Vec<u8> {
    let mut buf = [0u8; 24];
    getrandom::fill(&mut buf).expect("os random");
    hex::encode(buf).into_bytes()
}

async fn fidelity(case: Case) {
    let test = format!("fidelity-{}", case.recipe);
    let started = std::time::Instant::now();
    with_swarm(&test.clone(), |env| async move {
        // A killed earlier run left its docker stack (hearth's went with the swarm cleanup).
        let stale = stale_stacks(&format!("d{}_p", case.name));
        StackGuard::new(&stale.iter().map(String::as_str).collect::<Vec<_>>())
            .remove()
            .map_err(anyhow::Error::msg)?;
        let pool = TestPool::new(&env, false);
        pool.deployment(case.name, &deployment_yaml(&case));
        let (_, desired) = pool.render();
        let d = desired
            .get(case.name)
            .ok_or_else(|| anyhow::anyhow!("{} did not render", case.name))?;
        let hearth_side = Side {
            stack: d.stack.clone(),
            domain: d.domain.clone(),
            ports: ports(&case, false).1,
            hashed_configs: true,
        };
        let docker_side = Side {
            stack: format!("d{}", d.stack),
            domain: format!("d{}", d.domain),
            ports: ports(&case, true).1,
            hashed_configs: false,
        };

        // Both stacks go when the test ends, whatever happens: services, containers, networks,
        // secrets, configs, then volumes (the swarm cleanup after the test finds no race left).
        let _guard = StackGuard::new(&[&hearth_side.stack, &docker_side.stack]);

        // docker side: the recipe at the tag, the env hearth computes for the docker stack.
        let work = tempfile::tempdir()?;
        checkout(
            &pool.repos.path().join(case.recipe),
            case.version,
            work.path(),
        )?;
        let store = RecipeStore::new(pool.repos.path());
        let recipe = store.open(case.recipe, case.version)?;
        let denv: IndexMap<String, String> = recipe.load_env(
            manifest_env(&case, true),
            &docker_side.stack,
            &docker_side.domain,
        )?;
        let mut files = Vec::new();
        for f in compose_files(&denv) {
            files.extend(["-c".to_string(), f]);
        }
        let file_args: Vec<&str> = files.iter().map(String::as_str).collect();
        let config_yaml = docker(
            &[&["stack", "config"], file_args.as_slice()].concat(),
            Some(work.path()),
            &denv,
            None,
        )?;
        let config: Value = serde_saphyr::from_str(&config_yaml)
            .map_err(|e| anyhow::anyhow!("docker stack config output: {e}"))?;
        let external = |kind: &str| -> BTreeSet<String> {
            config[kind]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| v["external"] == Value::Bool(true))
                .map(|(k, v)| v["name"].as_str().unwrap_or(k).to_string())
                .collect()
        };
        let label = format!("hearth.test={test}");
        for name in external("secrets") {
            docker(
                &["secret", "create", "--label", &label, &name, "-"],
                None,
                &IndexMap::new(),
                Some(&random_value()),
            )?;
        }
        let deploy = [
            &[
                "stack",
                "deploy",
                "--resolve-image",
                "never",
                "--detach=true",
            ],
            file_args.as_slice(),
            &[docker_side.stack.as_str()],
        ]
        .concat();
        docker(&deploy, Some(work.path()), &denv, None)?;

        // hearth side, through the library.
        pool.apply(&env).await?;

        // A network Swarm has not allocated yet lists with an empty driver: wait for that (only).
        let stacks = [hearth_side.stack.clone(), docker_side.stack.clone()];
        let snap = wait_for(
            "both stacks' networks allocated",
            Duration::from_secs(30),
            || {
                let client = env.client.clone();
                let stacks = stacks.clone();
                async move {
                    let snap = client.snapshot().await.map_err(|e| e.to_string())?;
                    let pending: Vec<String> = stacks
                        .iter()
                        .flat_map(|s| snap.stack(s).networks)
                        .filter(|n| n.driver.as_deref().unwrap_or_default().is_empty())
                        .filter_map(|n| n.name.clone())
                        .collect();
                    if pending.is_empty() {
                        Ok(snap)
                    } else {
                        Err(format!("not allocated yet: {pending:?}"))
                    }
                }
            },
        )
        .await?;
        let docker_objects = docker_side.objects(&snap);
        let hearth_objects = hearth_side.objects(&snap);
        anyhow::ensure!(
            !docker_objects.services.is_empty(),
            "docker stack {} has no services",
            docker_side.stack
        );
        let outcome = compare(
            &docker_objects,
            &hearth_objects,
            &external("networks"),
            case.version,
        );
        let text = summary(&case, &docker_objects, &hearth_objects, &outcome);
        println!(
            "{text}\n  (compared {:.1}s after the test started)",
            started.elapsed().as_secs_f64()
        );
        anyhow::ensure!(
            outcome.unexpected.is_empty(),
            "{} unexpected differences between docker stack deploy and hearth \
             (path: docker value / hearth value):\n  {}\n{text}",
            outcome.unexpected.len(),
            outcome.unexpected.join("\n  ")
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn kitchen_sink_matches_docker_stack_deploy() {
    fidelity(Case {
        recipe: "kitchen-sink",
        version: "1.1.0+2",
        name: "ks",
        // Offsets keep the default ports' order (24080, 24081, 24082, 24083, 24090).
        ports: &[
            ("KS_HTTP_PORT", 0),
            ("KS_LOCAL_PORT", 1),
            ("KS_EDGE_PORT", 2),
            ("KS_EXTRA_PORT", 3),
            ("KS_TCP_PORT", 10),
        ],
        env: &[],
        // ks_token is a recipe `file:` secret: created from the recipe's file on both sides.
        secrets: &["db_password"],
        slot: 0,
    })
    .await;
}

#[tokio::test]
async fn keycloak_matches_docker_stack_deploy() {
    fidelity(Case {
        recipe: "keycloak",
        version: "1.1.0+26.0.1",
        name: "kc",
        ports: &[],
        env: &[],
        secrets: &["admin_password"],
        slot: 1,
    })
    .await;
}

#[tokio::test]
async fn bluesky_pds_matches_docker_stack_deploy() {
    fidelity(Case {
        recipe: "bluesky-pds",
        version: "0.2.0+0.4.1",
        name: "bsky",
        ports: &[],
        env: &[],
        secrets: &[],
        slot: 2,
    })
    .await;
}

#[tokio::test]
async fn gitea_matches_docker_stack_deploy() {
    fidelity(Case {
        recipe: "gitea",
        // 3.6.0 does not run (its app.ini mount is read-only); 3.5.3 is the version that does.
        version: "3.5.3+1.24.2-rootless",
        name: "gitea",
        ports: &[],
        env: &[],
        secrets: &[],
        slot: 3,
    })
    .await;
}

#[tokio::test]
async fn mumble_matches_docker_stack_deploy() {
    fidelity(Case {
        recipe: "mumble",
        version: "1.1.0+1.5.634",
        name: "mumble",
        ports: &[("MUMBLE_PORT", 0)],
        env: &[],
        secrets: &[],
        slot: 4,
    })
    .await;
}

#[tokio::test]
async fn mattermost_matches_docker_stack_deploy() {
    fidelity(Case {
        recipe: "mattermost",
        version: "9.0.0+10.0.0",
        name: "mm",
        ports: &[],
        env: &[],
        secrets: &["db_password"],
        slot: 5,
    })
    .await;
}

#[tokio::test]
async fn discourse_with_sidekiq_matches_docker_stack_deploy() {
    fidelity(Case {
        recipe: "discourse",
        version: "1.0.0+3.2.1",
        name: "disc",
        ports: &[],
        env: &[("COMPOSE_FILE", "compose.yml:compose.sidekiq.yml")],
        secrets: &[],
        slot: 6,
    })
    .await;
}

/// Local tags this test makes of the fixture image, removed when it ends (also on failure).
struct TagGuard(Vec<String>);

impl TagGuard {
    fn new(tags: &[&str]) -> anyhow::Result<TagGuard> {
        let guard = TagGuard(tags.iter().map(|t| t.to_string()).collect());
        for t in tags {
            docker(
                &["tag", "hearth-fixture:test", t],
                None,
                &IndexMap::new(),
                None,
            )?;
        }
        Ok(guard)
    }
}

impl Drop for TagGuard {
    fn drop(&mut self) {
        for t in &self.0 {
            // Untags only: hearth-fixture:test keeps the image.
            let _ = docker(&["rmi", t], None, &IndexMap::new(), None);
        }
    }
}

/// Image references as `docker stack deploy` sends them (docs/compose-support.md, `image`):
/// untagged (`:latest` added), with the default registry spelled out (`docker.io/library/` goes),
/// registry-with-port untagged, and by digest (untouched). static-site takes its image from `IMAGE`;
/// the tags are local (no registry here), the services need only exist to be compared.
#[tokio::test]
async fn image_references_match_docker_stack_deploy() {
    let _tags = TagGuard::new(&["hearthparity-untagged", "localhost:5000/hearthparity"])
        .expect("tag the fixture image");
    let id = docker(
        &[
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            "hearth-fixture:test",
        ],
        None,
        &IndexMap::new(),
        None,
    )
    .expect("fixture image id");
    let digest: &'static str =
        Box::leak(format!("hearthparity-untagged@{}", id.trim()).into_boxed_str());
    for (name, image) in [
        ("img", "hearthparity-untagged"),
        ("imgdocker", "docker.io/library/hearthparity-untagged"),
        ("imgport", "localhost:5000/hearthparity"),
        ("imgdigest", digest),
    ] {
        let env: &'static [(&'static str, &'static str)] =
            Box::leak(vec![("IMAGE", image)].into_boxed_slice());
        fidelity(Case {
            recipe: "static-site",
            version: "1.1.0+1.27.1",
            name,
            ports: &[],
            env,
            secrets: &[],
            slot: 7,
        })
        .await;
    }
}

#[test]
fn diff_gives_dotted_paths_and_quotes_dotted_keys() {
    let d = diff(
        &serde_json::json!({"A": {"B": [1, 2]}, "Labels": {"x.y": "1"}, "N": null}),
        &serde_json::json!({"A": {"B": [1, 3, 4]}, "Labels": {}}),
    );
    let paths: Vec<_> = d.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["A.B[1]", "A.B[2]", "Labels[\"x.y\"]"]);
    assert_eq!(d[1].docker, None);
    assert_eq!(d[1].pattern(), "A.B[*]");
    assert_eq!(label_key(&d[2].path), Some("x.y"));
}

#[test]
fn hash_suffix_is_stripped_only_when_it_is_one() {
    use common::fidelity::strip_hash;
    assert_eq!(strip_hash("s_conf_v1_0123456789"), "s_conf_v1");
    assert_eq!(strip_hash("s_conf_v1_abcdef012"), "s_conf_v1_abcdef012");
    assert_eq!(strip_hash("s_conf_v1"), "s_conf_v1");
}

#[test]
fn allow_list_rules_cover_only_their_difference() {
    let hearth = serde_json::json!({"TaskTemplate": {"Networks": [
        {"Target": "<STACK>_internal", "Aliases": ["app"]},
        {"Target": "proxy", "Aliases": ["<STACK>_app"]}
    ]}});
    let external = BTreeSet::from(["proxy".to_string()]);
    let rule = |path: &str, docker: Option<&str>, hearth_v: Option<&str>| {
        let d = Difference {
            path: path.into(),
            docker: docker.map(Value::from),
            hearth: hearth_v.map(Value::from),
        };
        let f = Found {
            kind: "service",
            object: "<STACK>_app",
            diff: &d,
            hearth: &hearth,
            external_networks: &external,
            version: "1.0.0",
        };
        ALLOWED.iter().find(|a| (a.applies)(&f)).map(|a| a.id)
    };
    let alias = "TaskTemplate.Networks[1].Aliases[0]";
    assert_eq!(
        rule(alias, Some("app"), Some("<STACK>_app")),
        Some("external-network-alias")
    );
    // Not on the stack's own network, and not another alias.
    assert_eq!(
        rule(
            "TaskTemplate.Networks[0].Aliases[0]",
            Some("app"),
            Some("<STACK>_app")
        ),
        None
    );
    assert_eq!(rule(alias, Some("other"), Some("<STACK>_app")), None);
    assert_eq!(
        rule("Labels[\"hearth.deployment\"]", None, Some("ks")),
        Some("hearth-labels")
    );
    assert_eq!(
        rule("Labels[\"hearth.deployment\"]", Some("x"), Some("ks")),
        None
    );
    assert_eq!(rule("Labels[\"other\"]", None, Some("ks")), None);
    let version = "Labels[\"coop-cloud.<STACK>.version\"]";
    assert_eq!(
        rule(version, None, Some("1.0.0")),
        Some("abra-version-label")
    );
    assert_eq!(rule(version, None, Some("2.0.0")), None);
}

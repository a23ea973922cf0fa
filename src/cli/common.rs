//! What several subcommands share: loading and rendering the pool, connecting to Docker, and
//! printing diagnostics.

use std::process::ExitCode;

use crate::conflicts::SwarmIndex;
use crate::desired::{self, DesiredPool};
use crate::manifest::{self, Loaded};
use crate::swarm::Client;

use super::Source;

/// The manifests and what they render to, with canonicals named from the live swarm when a daemon
/// answers at `host` ([`crate::manifest::settle`]: where a canonical already lives, and whether
/// its warm domain is held by another). Prints every problem; `None` when nothing can be done.
pub fn load_and_render(
    source: &Source,
    only: Option<&str>,
    host: Option<&str>,
) -> Option<(Loaded, DesiredPool)> {
    let live = runtime().block_on(live_index(host));
    load_render(source, only, live.as_ref(), false)
}

/// The manifests rendered with canonicals named from `live` when given; `check`: also check them
/// against it: a stack name held by a stack this pool did not make is an error, alias and host
/// collisions are warnings ([`crate::conflicts`]).
pub fn load_render(
    source: &Source,
    only: Option<&str>,
    live: Option<&SwarmIndex>,
    check: bool,
) -> Option<(Loaded, DesiredPool)> {
    if source.paths.is_empty() {
        eprintln!("no manifests given: -f PATH...");
        return None;
    }
    let mut loaded = manifest::load_paths(&source.paths);
    let Some(store) = desired::recipe_store(&loaded, source.recipes.clone()) else {
        for d in &loaded.diagnostics {
            eprintln!("{d}");
        }
        eprintln!("no Pool manifest and no --recipes: cannot find recipes");
        return None;
    };
    if let Some(name) = only
        && loaded.deployment(name).is_none()
    {
        eprintln!("no deployment named {name:?} in the manifests");
        return None;
    }
    if let Some(ix) = live {
        settle_live(&mut loaded, ix);
    }
    let pool = if check {
        build_checked(&loaded, &store, only, live)
    } else {
        desired::build(&loaded, &store, only)
    };
    crate::redact::remember_pool(&loaded, &pool);
    for e in &pool.errors {
        eprintln!("{e}");
    }
    for w in &pool.warnings {
        eprintln!("{w}");
    }
    Some((loaded, pool))
}

/// Names the canonicals of `loaded` from the live swarm (see [`crate::manifest::settle`]); says on
/// stderr which ones are not where the manifests alone would put them, and why.
pub fn settle_live(loaded: &mut Loaded, ix: &SwarmIndex) {
    let Some(pool) = &loaded.pool else { return };
    let live = ix.live_names(&pool.metadata.name);
    for s in manifest::settle::settle(pool, &mut loaded.deployments, &live) {
        eprintln!("note: {} is at {}: {}", s.deployment, s.domain, s.why);
    }
}

/// Renders the pool; with `live`, also checks it against the swarm (see [`load_render`]).
/// The caller names the canonicals first ([`settle_live`]).
pub fn build_checked(
    loaded: &Loaded,
    store: &crate::recipe::RecipeStore,
    only: Option<&str>,
    live: Option<&SwarmIndex>,
) -> DesiredPool {
    let Some(ix) = live else {
        return desired::build(loaded, store, only);
    };
    let pool_name = loaded
        .pool
        .as_ref()
        .map(|p| p.metadata.name.as_str())
        .unwrap_or_default();
    let mut pool = desired::build_live(loaded, store, only, &ix.foreign_stacks(pool_name));
    let warnings = crate::conflicts::live_warnings(&pool, loaded, ix);
    pool.warnings.extend(warnings);
    pool
}

/// How long `hearth validate` waits for a daemon before going on without the live swarm.
const LIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The live swarm's conflict index when a daemon answers (one snapshot); `None`, with a note on
/// stderr, when none does.
pub async fn live_index(host: Option<&str>) -> Option<SwarmIndex> {
    let skip = |why: String| {
        eprintln!("note: the live swarm was not consulted ({why}); --offline skips it quietly");
        None
    };
    let client = match tokio::time::timeout(LIVE_TIMEOUT, Client::connect(host)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return skip(e.to_string()),
        Err(_) => return skip(format!("no Docker daemon answered within {LIVE_TIMEOUT:?}")),
    };
    match tokio::time::timeout(LIVE_TIMEOUT * 6, client.snapshot()).await {
        Ok(Ok(snap)) => Some(SwarmIndex::new(&snap)),
        Ok(Err(e)) => skip(e.to_string()),
        Err(_) => skip("reading the swarm took too long".to_string()),
    }
}

/// A tokio runtime for the async subcommands.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Connects to Docker, or prints why not.
pub async fn connect(host: Option<&str>) -> Result<Client, ExitCode> {
    Client::connect(host).await.map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(1)
    })
}

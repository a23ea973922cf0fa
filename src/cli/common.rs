//! What several subcommands share: loading and rendering the pool, connecting to Docker, and
//! printing diagnostics.

use std::process::ExitCode;

use crate::desired::{self, DesiredPool};
use crate::manifest::{self, Loaded};
use crate::swarm::Client;

use super::Source;

/// The manifests and what they render to. Prints every problem; `None` when nothing can be done.
pub fn load_and_render(source: &Source, only: Option<&str>) -> Option<(Loaded, DesiredPool)> {
    if source.paths.is_empty() {
        eprintln!("no manifests given: -f PATH...");
        return None;
    }
    let loaded = manifest::load_paths(&source.paths);
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
    let pool = desired::build(&loaded, &store, only);
    crate::redact::remember_pool(&loaded, &pool);
    for e in &pool.errors {
        eprintln!("{e}");
    }
    for w in &pool.warnings {
        eprintln!("{w}");
    }
    Some((loaded, pool))
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

//! `hearth validate`: every problem in the manifests and the recipes they name, one per line.

use std::process::ExitCode;

use crate::desired;
use crate::manifest;

use super::Source;

/// `host`: the daemon to consult (`None`: the default); `offline`: do not consult the swarm.
pub fn run(source: &Source, host: Option<&str>, offline: bool) -> ExitCode {
    let loaded = manifest::load_paths(&source.paths);
    let Some(store) = desired::recipe_store(&loaded, source.recipes.clone()) else {
        for d in &loaded.diagnostics {
            println!("{d}");
        }
        println!("no Pool manifest and no --recipes: cannot find recipes");
        return ExitCode::from(1);
    };
    // When a daemon answers: a stack name held by a stack this pool did not make is an error,
    // alias and host collisions with other stacks are warnings (src/conflicts/).
    let live = if offline || loaded.pool.is_none() {
        None
    } else {
        super::common::runtime().block_on(super::common::live_index(host))
    };
    let pool = super::common::build_checked(&loaded, &store, None, live.as_ref());
    for d in &pool.errors {
        println!("{d}");
    }
    for w in &pool.warnings {
        println!("{w}");
    }
    let n = loaded.deployments.len();
    if pool.errors.is_empty() {
        eprintln!(
            "{n} deployment(s) valid, {} rendered",
            pool.deployments.len()
        );
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} problem(s); {} of {n} deployment(s) rendered",
            pool.errors.len(),
            pool.deployments.len()
        );
        ExitCode::from(1)
    }
}

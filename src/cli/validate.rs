//! `hearth validate`: every problem in the manifests and the recipes they name, one per line.

use std::process::ExitCode;

use crate::desired;
use crate::manifest;

use super::Source;

pub fn run(source: &Source) -> ExitCode {
    let loaded = manifest::load_paths(&source.paths);
    let Some(store) = desired::recipe_store(&loaded, source.recipes.clone()) else {
        for d in &loaded.diagnostics {
            println!("{d}");
        }
        println!("no Pool manifest and no --recipes: cannot find recipes");
        return ExitCode::from(1);
    };
    let pool = desired::build(&loaded, &store, None);
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

//! `hearth render`: the exact objects one deployment would send to Docker (secret values excluded:
//! they are made at apply time and never printed). Credentials in env values are redacted
//! ([`crate::redact`]) unless `--show-secrets`.

use std::process::ExitCode;

use crate::desired;
use crate::manifest;

use super::{Output, Source};

pub fn run(source: &Source, deployment: &str, output: Output, show_secrets: bool) -> ExitCode {
    let loaded = manifest::load_paths(&source.paths);
    let Some(store) = desired::recipe_store(&loaded, source.recipes.clone()) else {
        eprintln!("no Pool manifest and no --recipes: cannot find recipes");
        return ExitCode::from(1);
    };
    if loaded.deployment(deployment).is_none() {
        eprintln!("no deployment named {deployment:?} in the manifests");
        return ExitCode::from(1);
    }
    let pool = desired::build(&loaded, &store, Some(deployment));
    let Some(d) = pool.get(deployment) else {
        for e in &pool.errors {
            eprintln!("{e}");
        }
        return ExitCode::from(1);
    };
    for w in &pool.warnings {
        eprintln!("{w}");
    }
    if !show_secrets {
        crate::redact::remember_pool(&loaded, &pool);
    }
    // Sorted keys: the same input prints the same bytes (label maps are hash maps).
    // Docker's key names (`Healthcheck`), as `docker service inspect` writes them.
    let text = crate::render::canonical_value(d)
        .map(crate::render::docker_key_names)
        .map_err(|e| e.to_string())
        .map(|mut v| {
            if !show_secrets {
                crate::redact::with(|r| r.json(&mut v));
            }
            v
        })
        .and_then(|v| match output {
            Output::Json | Output::Text => {
                serde_json::to_string_pretty(&v).map_err(|e| e.to_string())
            }
            Output::Yaml => serde_saphyr::to_string(&v).map_err(|e| e.to_string()),
        });
    match text {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot print: {e}");
            ExitCode::from(1)
        }
    }
}

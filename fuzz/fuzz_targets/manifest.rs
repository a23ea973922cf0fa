//! Fuzz target: manifest loading (`manifest::load_str`, which must never panic) on arbitrary
//! UTF-8, followed by the pure checks that run on every loaded manifest (validation, naming).
#![no_main]

use std::path::Path;

use hearth::manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let loaded = manifest::load_str(text, Path::new("fuzz.yml"));
    let recipes = vec!["gitea".to_string(), "keycloak".to_string()];
    let _ = manifest::validate(&loaded, &|r| recipes.iter().any(|k| k == r), &recipes);
    if let Some(pool) = &loaded.pool {
        // Vary the longest service name so stack names get cut too.
        let longest = text.len() % 70;
        let named = manifest::names::name_all(pool, &loaded.deployments, &|_| longest);
        let _ = manifest::names::check_unique(&named, &[]);
    }
});

//! Fuzz target: the whole compose pipeline on one or two files: `compose::load_tree` (parse,
//! version checks, interpolation against a small fixed env, merge), `compose::deserialize` into
//! the typed `ComposeFile`, then `render::render` with a recipe that has no files.
//!
//! Input: the first file, optionally followed by a line holding exactly `#---overlay---` and the
//! second file (an overlay merged on top of the first).
//!
//! Inputs whose files `compose::limits` accepts but whose short-syntax port ranges expand to
//! more than [`HARNESS_MAX_PORTS`] ports in total are skipped: every stage is linear in that
//! count, `compose::limits` bounds it (65,536 ports per file, about 0.5 s in a release build),
//! and under ASan such inputs would only measure volume against the 1 s budget. Files past the
//! limit are still fed (load must refuse them quickly).
#![no_main]

use hearth::compose::yaml::NodeValue;
use hearth::compose::{self, ComposeSource, limits, model::ComposeFile};
use hearth::render::{self, RenderInput};
use indexmap::IndexMap;
use libfuzzer_sys::fuzz_target;

const SEPARATOR: &str = "\n#---overlay---\n";
const HARNESS_MAX_PORTS: u64 = 4096;

/// The ports the file's short-syntax specs expand to (before interpolation), roughly.
fn port_width(text: &str) -> u64 {
    let Ok(tree) = compose::yaml::parse_yaml(text, "width") else {
        return 0;
    };
    let Some(services) = tree.get("services").and_then(|s| s.as_map()) else {
        return 0;
    };
    services
        .values()
        .filter_map(|(_, svc)| match &svc.get("ports")?.value {
            NodeValue::Seq(items) => Some(items),
            _ => None,
        })
        .flatten()
        .map(|p| p.scalar_string().map_or(1, |s| limits::port_spec_width(&s)))
        .sum()
}

fn source(path: &str, text: &str) -> ComposeSource {
    ComposeSource {
        path: path.to_string(),
        label: format!("fuzz@1.0.0:{path}"),
        text: text.to_string(),
    }
}

fuzz_target!(|text: &str| {
    let sources = match text.split_once(SEPARATOR) {
        Some((base, overlay)) => vec![
            source("compose.yml", base),
            source("compose.overlay.yml", overlay),
        ],
        None => vec![source("compose.yml", text)],
    };
    let accepted_ports: u64 = sources
        .iter()
        .map(|s| port_width(&s.text))
        .filter(|w| *w <= limits::MAX_PORTS_PER_FILE)
        .sum();
    if accepted_ports > HARNESS_MAX_PORTS {
        return;
    }
    let env: IndexMap<String, String> = [
        ("STACK_NAME", "fuzz_example_org"),
        ("DOMAIN", "fuzz.example.org"),
        ("TYPE", "fuzz"),
        ("LETS_ENCRYPT_ENV", "staging"),
        ("SECRET_DB_PASSWORD_VERSION", "v1"),
        ("EMPTY", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let Ok(loaded) = compose::load_tree(&sources, &env) else {
        return;
    };
    let Ok(model) = compose::deserialize::<ComposeFile>(&loaded) else {
        return;
    };
    let _ = compose::origin_of(&loaded, &["services"]);
    let read_file = |_: &str| -> Result<Option<Vec<u8>>, String> { Ok(None) };
    if let Ok(spec) = render::render(&RenderInput {
        deployment: "fuzz",
        stack: "fuzz_example_org",
        version: "1.0.0",
        source: "fuzz@1.0.0:compose.yml",
        compose: &model,
        read_file: &read_file,
    }) {
        let _ = spec.to_canonical_json();
    }
});

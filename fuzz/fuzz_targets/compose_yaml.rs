//! Fuzz target: the compose YAML reader (`compose::yaml::parse_yaml`) on arbitrary UTF-8.
#![no_main]

use hearth::compose::yaml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(node) = yaml::parse_yaml(text, "fuzz:compose.yml") {
        let _ = node.size();
        let _ = node.scalar_string();
    }
});

//! Fuzz target: the recipe's `.env.sample` parser (`recipe::parse_env_file`) and `abra.sh`
//! export reader (`recipe::parse_abra_sh`) on arbitrary UTF-8.
#![no_main]

use hearth::recipe;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = recipe::parse_env_file(text, "fuzz@0.0.0:.env.sample");
    let _ = recipe::parse_abra_sh(text);
});

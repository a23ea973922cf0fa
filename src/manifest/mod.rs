//! Manifests (`apiVersion: hearth/v1`, kinds `Pool` and `Deployment`; docs/architecture.md §4, docs/manifest.md): their types,
//! loading from multi-document YAML with located diagnostics, validation, and derived names.
//!
//! - [`load_paths`] / [`load_str`]: YAML -> [`Loaded`] (valid objects + every problem found).
//! - [`validate`]: checks that need only the manifests (names, recipes, dependencies, probes).
//! - [`names`]: derived domains, stack names and their uniqueness.
//! - [`settle`]: a canonical's domain from what the live swarm holds (sticky once created).
//! - [`schema`]: the JSON Schema and the field reference (docs/manifest.md), from the types.

mod fields;
mod load;
pub mod names;
mod positions;
pub mod schema;
pub mod settle;
mod split;
mod types;
mod validate;

pub use fields::{FieldError, Payload, parse_duration};
pub use load::{Loaded, fingerprint, load_paths, load_str, load_texts};
pub use types::*;
pub use validate::{NameError, check_label, validate};

//! Manifests (`apiVersion: hearth/v1`, kinds `Pool` and `Deployment`; DESIGN §2-3): their types,
//! loading from multi-document YAML with located diagnostics, validation, and derived names.
//!
//! - [`load_paths`] / [`load_str`]: YAML -> [`Loaded`] (valid objects + every problem found).
//! - [`validate`]: checks that need only the manifests (names, recipes, dependencies, probes).
//! - [`names`]: derived domains, stack names and their uniqueness.

mod fields;
mod load;
pub mod names;
mod positions;
mod split;
mod types;
mod validate;

pub use fields::{Payload, parse_duration};
pub use load::{Loaded, fingerprint, load_paths, load_str};
pub use types::*;
pub use validate::{check_domain, check_label, validate};

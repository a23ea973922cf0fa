//! Compose files, loaded exactly as `docker stack deploy` loads them (docker/cli
//! `cli/compose/loader`): YAML read as yaml.v3 reads it ([`yaml`]), `${VAR}` interpolation per
//! file ([`interpolate`]), hearth's size limits ([`limits`]), overlays merged per docker/cli's
//! merge rules ([`merge`]), and the result handed to the typed [`model`] with file:line:col
//! errors ([`load`]).

pub mod interpolate;
pub mod limits;
pub mod load;
pub mod merge;
pub mod model;
pub mod yaml;

pub use load::{ComposeSource, Loaded, deserialize, load_tree, origin_of};

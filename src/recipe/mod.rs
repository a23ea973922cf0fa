//! Recipes: reading a Co-op Cloud recipe (a git repo whose tags are versions like `3.6.0+1.24.2`)
//! at a version without a checkout, and the env its compose files are interpolated with.
//!
//! - [`store`]: [`RecipeStore`] over a directory of recipe repos, [`RecipeAt`] one recipe at one tag;
//! - [`version`]: [`Version`] parsing, ordering and [`is_major_bump`];
//! - [`envfile`]: the `.env.sample` parser; [`abrash`]: `export` lines of `abra.sh`;
//! - [`hints`]: abra's `SECRET_*_VERSION` lines and their `# length=` / `# generate=` hints;
//! - [`env`]: layering the env sources and the `COMPOSE_FILE` list;
//! - `git`: the only code that runs the `git` CLI (read-only plumbing).

pub mod abrash;
pub mod env;
pub mod envfile;
pub mod error;
mod git;
pub mod hints;
pub mod store;
pub mod version;

#[cfg(test)]
mod store_tests;

pub use abrash::parse_abra_sh;
pub use env::{DEFAULT_COMPOSE_FILE, compose_env, compose_files};
pub use envfile::parse_env_file;
pub use error::RecipeError;
pub use store::{RecipeAt, RecipeStore};
pub use version::{Version, VersionError, is_major_bump};

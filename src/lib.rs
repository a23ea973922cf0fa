//! hearth: keeps a pool of Co-op Cloud app deployments converged on Docker Swarm.
//!
//! The pipeline (see docs/architecture.md): manifests -> recipes -> compose -> render ->
//! (observe, assess, plan, apply) -> report. Only [`swarm`] talks to Docker.

/// The compose loader, its own crate (`crates/compose`): it knows docker/cli, not hearth.
pub use hearth_compose as compose;
/// Located diagnostics, their own crate (`crates/diag`), shared by every loader.
pub use hearth_diag as diag;

pub mod advance;
pub mod assess;
pub mod backup;
pub mod cli;
pub mod conflicts;
pub mod controller;
pub mod desired;
pub mod gitcmd;
pub mod http_client;
pub mod import;
pub mod manifest;
pub mod migrate;
pub mod observed;
pub mod plan;
pub mod probe;
pub mod recipe;
pub mod redact;
pub mod relpath;
pub mod render;
pub mod report;
pub mod source;
pub mod swarm;

//! hearth: keeps a pool of Co-op Cloud app deployments converged on Docker Swarm.
//!
//! The pipeline (see `../shared/DESIGN.md`): manifests -> recipes -> compose -> render ->
//! (observe, assess, plan, apply) -> report. Only [`swarm`] talks to Docker.

pub mod advance;
pub mod assess;
pub mod backup;
pub mod cli;
pub mod compose;
pub mod controller;
pub mod desired;
pub mod diag;
pub mod http_client;
pub mod manifest;
pub mod plan;
pub mod probe;
pub mod recipe;
pub mod render;
pub mod report;
pub mod source;
pub mod swarm;

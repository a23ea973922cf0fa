//! hearth: keeps a pool of Co-op Cloud app deployments converged on Docker Swarm.
//!
//! The pipeline (see `docs/architecture.md` and `../shared/DESIGN.md`): manifests -> recipes ->
//! compose -> render -> (observe, assess, plan, apply) -> report. Only [`swarm`] talks to Docker.

pub mod diag;
pub mod swarm;

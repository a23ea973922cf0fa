//! Pure planning: desired state vs a snapshot of the live swarm -> ordered actions, each with its
//! reason (which fields differ, desired vs live).

pub mod diff;

pub use diff::{FieldDiff, diff};

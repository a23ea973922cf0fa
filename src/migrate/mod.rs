//! Moving a deployment from one stack to another with its data (issue 18, `docs/migrate.md`):
//! who owns which stack and volume, and the holds that follow ([`hold`]); the move's pure state
//! machine ([`machine`]); its record and the migrated-volume records, kept as hearth configs
//! ([`record`]). The executor that runs a move lives in `swarm::migrate`.

pub mod hold;
pub mod machine;
pub mod record;

#[cfg(test)]
mod hold_tests;

pub use hold::{Held, Hold, Owners, Subject, decide, hold_plan, subject_of};
pub use machine::{Action, Observed, Record, State};

//! Safe advance of a deployment from one recipe version to the next (issue 7): the pure state
//! machine ([`machine`]), how its record is kept in Swarm labels ([`labels`]) and read and written
//! with a compare-and-swap ([`persist`]). The executor that drives it lives in the controller
//! (`controller::advancer`); the snapshot engine in `backup`.
//!
//! Flow: `Ready` (last-good recorded) -> [`Held`](State::Held) when the declared version is a major
//! bump that is not allowed -> snapshot -> `SnapshotTaken` -> `Updating` -> `Verifying` -> `Ready`; on
//! failure `RollingBack` -> `Restoring` -> `AdvanceFailed` (no retry until the declared version
//! changes again or `hearth retry NAME`). See `docs/advance.md`.

pub mod labels;
pub mod machine;
pub mod persist;

pub use labels::{KIND_ADVANCE_STATE, LABEL_KIND, Stored, config_name};
pub use machine::{
    APPROVE_ANNOTATION, Action, Event, Failure, Next, Observed, Outcome, Policy, Record, State,
    Status, Target, converge, retry, status, step,
};

//! Safe advance of a deployment from one recipe version to the next (docs/advance.md): the pure
//! state machine ([`machine`]) and how its record is kept in Swarm labels ([`labels`]). Nothing
//! here talks to Docker: the record is read and written with a compare-and-swap by
//! `controller::advance_store`, the executor that drives the machine is `controller::advancer`,
//! and the snapshot engine is `backup`.
//!
//! Flow: `Ready` (last-good recorded) -> [`Held`](State::Held) when the declared version is a major
//! bump that is not allowed -> snapshot -> `SnapshotTaken` -> `Updating` -> `Verifying` -> `Ready`; on
//! failure `RollingBack` -> `Restoring` -> `AdvanceFailed` (no retry until the declared version
//! changes again or `hearth retry NAME`). See `docs/advance.md`.

pub mod labels;
pub mod machine;

pub use labels::{KIND_ADVANCE_STATE, LABEL_KIND, Stored, config_name};
pub use machine::{
    APPROVE_ANNOTATION, Action, Event, Failure, Next, Observed, Outcome, Policy, Record, State,
    Target, converge, retry, status, step,
};

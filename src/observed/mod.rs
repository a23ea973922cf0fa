//! The live swarm as plain data (docs/architecture.md, "Pipeline"): the slim services and tasks
//! ([`live`]) and one [`Snapshot`] of the whole swarm with its per-stack [`StackView`]s. Filled by
//! `swarm::Client::snapshot`; read by `plan`, `assess`, `probe` target selection and `backup`, which
//! never need the Docker adapter for it. No I/O here.

pub mod live;
pub mod snapshot;

pub use live::{Service, Task};
pub use snapshot::{LiveVolume, MANAGED_LABEL, STACK_LABEL, Snapshot, StackView};

//! The only module that talks to Docker: a counted client ([`Client`]) over bollard, and (as the
//! converge work lands) the snapshot of live state, the events stream and the apply of actions.

pub mod apply;
mod client;
mod containers;
pub mod failover;
pub mod live;
pub mod migrate;
mod raw;
pub mod snapshot;

pub use client::{
    Client, Counts, EXEC_OUTPUT_MAX, ExecOutput, REQUEST_TIMEOUT, SwarmError, WRITE_OPS,
    label_filter,
};
pub use snapshot::{LiveVolume, Snapshot, StackView};

//! The only module that talks to Docker: a counted client ([`Client`]) over bollard with failover
//! between managers, raw JSON reads, `Client::snapshot` (which fills the plain data of
//! [`crate::observed`]), the apply of a plan, and short-lived helper containers. See
//! docs/architecture.md.

pub mod apply;
mod client;
mod containers;
pub mod failover;
pub mod migrate;
mod observe;
pub mod quiesce;
mod raw;
mod transport;

pub use client::{
    Client, Counts, EXEC_OUTPUT_MAX, ExecOutput, REQUEST_TIMEOUT, SwarmError, WRITE_OPS,
    label_filter,
};

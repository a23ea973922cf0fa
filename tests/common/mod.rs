//! Shared helpers for hearth's integration tests: a real-swarm test environment that labels and
//! removes everything a test creates (also when the test fails), fixture recipe git repos, and a tiny
//! HTTP client for reaching task containers.
#![allow(dead_code, unused_imports)]

pub mod controller;
pub mod fidelity;
pub mod http;
pub mod pool;
pub mod recipes;
pub mod swarm;

pub use swarm::{TestEnv, with_swarm};

//! Shared helpers for hearth's integration tests: a real-swarm test environment that labels and
//! removes everything a test creates (also when the test fails), fixture recipe git repos, and a tiny
//! HTTP client for reaching task containers.
#![allow(dead_code, unused_imports)]

pub mod abra;
pub mod controller;
pub mod fidelity;
pub mod http;
pub mod pool;
pub mod recipes;
pub mod swarm;

pub use swarm::{TestEnv, with_swarm};

/// Runs the docker CLI, panicking with its stderr when it fails; returns its stdout.
pub fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A service's environment as Docker has it (JSON list text).
pub fn service_env(service: &str) -> String {
    docker(&[
        "service",
        "inspect",
        service,
        "--format",
        "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
    ])
}

/// Runs the hearth binary built for these tests.
pub fn hearth(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .expect("run hearth")
}

/// stdout and stderr of a command, together.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

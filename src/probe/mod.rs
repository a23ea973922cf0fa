//! Readiness probes (the manifest's `probes:`): `http`, `tcp` (stable port, then an optional
//! handshake), `exec` (a command in the running task's container) and `docker` (the container's own
//! healthcheck), each bounded by its timeout and judged against its failure budget by a
//! [`ProbeRunner`].
//!
//! A probe goes to every running task of its compose service (see [`target`] for which address
//! hearth uses and why), except an `http`/`tcp` probe with `address:`, which goes there once.
//! A probe passes when it passes on every running task.

pub mod docker;
pub mod exec;
pub mod http;
mod runner;
pub mod target;
pub mod tcp;

pub use runner::{ProbeOutcome, ProbeResult, ProbeRunner, Settings};
pub use target::{Reach, ReachPolicy, TaskTarget};

use std::future::Future;

use crate::manifest::Probe;
use crate::observed::Snapshot;
use crate::swarm::Client;

/// What one check found: `Ok(message)` passes, `Err(message)` fails.
pub type Check = Result<String, String>;

/// Why a probe has nowhere to go (before any check runs). A check reports it as its failure
/// message ([`Check`]), with the same text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The probed compose service is not on the swarm.
    #[error("service {service} not found")]
    ServiceNotFound { service: String },
    /// The service has no task to probe; `states` counts the states of those it has.
    #[error("no running task of {service} ({states})")]
    NoRunningTask { service: String, states: String },
    /// A task with no address hearth can reach (see [`target`]).
    #[error(
        "task {task} has no address hearth can reach (container not on docker_gwbridge and no \
         overlay address)"
    )]
    NoTaskAddress { task: String },
    /// A probe's `address:` that does not parse.
    #[error("address {address:?}: {why}")]
    BadAddress { address: String, why: &'static str },
    /// An `http` probe with `address:` but no `Host` to send.
    #[error("no host: set `host:` or give the deployment a domain")]
    NoHost,
}

/// What every probe of one round shares: the snapshot and the reachability data (read once).
#[derive(Debug, Clone, Copy)]
pub struct Round<'a> {
    pub snapshot: &'a Snapshot,
    pub reach: &'a Reach,
}

/// Where a probe belongs: the deployment's stack and domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub stack: String,
    /// The deployment's domain: the default `Host` of an `http` probe with `address:`.
    pub domain: String,
}

/// Runs one check of `probe` (no failure budget; see [`ProbeRunner`] for that). Each kind bounds
/// itself by `settings.timeout` (plus `stableFor` for `tcp`).
pub async fn check(
    client: &Client,
    round: Round<'_>,
    subject: &Subject,
    probe: &Probe,
    settings: &Settings,
) -> Check {
    let timeout = settings.timeout;
    match probe {
        Probe::Http(p) => http::check(round, subject, p, timeout).await,
        Probe::Tcp(p) => tcp::check(round, subject, p, timeout).await,
        Probe::Exec(p) => exec::check(client, round, subject, p, timeout).await,
        Probe::Docker(p) => docker::check(client, round, subject, p, timeout).await,
    }
}

/// Longest command text in a probe name.
pub const NAME_COMMAND_MAX: usize = 32;

/// The probe's name: `<kind>:<service>:<port or command>` (`docker:<service>:health`); stable
/// across runs and bounded (the command is cut at [`NAME_COMMAND_MAX`] characters), as it becomes
/// a Prometheus label value.
pub fn probe_name(probe: &Probe) -> String {
    let what = match probe {
        Probe::Http(p) => p.port.to_string(),
        Probe::Tcp(p) => p.port.to_string(),
        Probe::Exec(p) => {
            let cmd = p.command.join(" ");
            if cmd.chars().count() > NAME_COMMAND_MAX {
                let cut: String = cmd.chars().take(NAME_COMMAND_MAX - 1).collect();
                format!("{cut}…")
            } else {
                cmd
            }
        }
        Probe::Docker(_) => "health".to_string(),
    };
    format!("{}:{}:{what}", probe.kind(), probe.service())
}

/// The names of a deployment's probes, in order; a repeated name gets `#2`, `#3`, ... so each
/// probe of a deployment has its own label.
pub fn probe_names(probes: &[Probe]) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    probes
        .iter()
        .map(|p| {
            let name = probe_name(p);
            let n = seen.entry(name.clone()).or_default();
            *n += 1;
            if *n == 1 { name } else { format!("{name}#{n}") }
        })
        .collect()
}

/// Runs `check` on every task concurrently and joins the verdicts: pass when every task passes
/// (the message of the first, with the count when several), else the failing tasks' messages.
async fn on_every_task<'t, F, Fut>(tasks: &'t [TaskTarget], check: F) -> Check
where
    F: Fn(&'t TaskTarget) -> Fut,
    Fut: Future<Output = Check>,
{
    let results = futures::future::join_all(tasks.iter().map(&check)).await;
    join_verdicts(
        tasks
            .iter()
            .map(|t| t.label.as_str())
            .zip(results)
            .collect(),
    )
}

/// See [`on_every_task`]; pure.
fn join_verdicts(results: Vec<(&str, Check)>) -> Check {
    let n = results.len();
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(label, r)| r.as_ref().err().map(|m| format!("{label}: {m}")))
        .collect();
    if !failed.is_empty() {
        const SHOWN: usize = 3;
        let mut msg = failed
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if failed.len() > SHOWN {
            msg.push_str(&format!(" (and {} more)", failed.len() - SHOWN));
        }
        return Err(msg);
    }
    match results.into_iter().next() {
        None => Err("no task to probe".into()),
        Some((_, first)) if n == 1 => first,
        Some((_, first)) => first.map(|m| format!("{n} tasks: {m}")),
    }
}

/// The tasks whose container runs on the daemon hearth talks to (exec and inspect reach only
/// those), with a note on the others for the message; an error when there is none.
fn local_tasks(tasks: Vec<TaskTarget>) -> Result<(Vec<TaskTarget>, String), String> {
    let (local, remote): (Vec<_>, Vec<_>) = tasks.into_iter().partition(|t| t.local);
    let remote: Vec<&str> = remote.iter().map(|t| t.label.as_str()).collect();
    if local.is_empty() {
        return Err(format!(
            "no running task on the node hearth talks to ({} elsewhere: {})",
            remote.len(),
            remote.join(", ")
        ));
    }
    let note = if remote.is_empty() {
        String::new()
    } else {
        format!(" ({} task(s) on other nodes not checked)", remote.len())
    };
    Ok((local, note))
}

/// The last non-empty line of `text`, trimmed and cut at 200 characters (for messages).
pub fn last_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default();
    cut(line, 200)
}

/// `text` cut at `max` characters, with `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Vec<Probe> {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn names_are_kind_service_and_port_or_command() {
        let probes = parse(
            "- http: {service: app, port: 3000}\n\
             - tcp: {service: app, port: 64738}\n\
             - exec: {service: db, command: [pg_isready, -U, postgres]}\n\
             - docker: {service: db}\n\
             - http: {service: app, port: 3000, path: /other}\n\
             - exec: {service: db, command: [sh, -c, 'a very long shell command that goes on and on']}\n",
        );
        let names = probe_names(&probes);
        assert_eq!(
            names[..5],
            [
                "http:app:3000",
                "tcp:app:64738",
                "exec:db:pg_isready -U postgres",
                "docker:db:health",
                "http:app:3000#2",
            ]
        );
        assert_eq!(
            names[5].chars().count(),
            "exec:db:".len() + NAME_COMMAND_MAX
        );
        assert!(names[5].ends_with('…'), "{}", names[5]);
        assert_eq!(probe_names(&probes), names, "stable");
    }

    #[test]
    fn verdicts_join_over_tasks() {
        assert_eq!(
            join_verdicts(vec![("a.1", Ok("200".into()))]),
            Ok("200".into())
        );
        assert_eq!(
            join_verdicts(vec![("a.1", Ok("200".into())), ("a.2", Ok("200".into()))]),
            Ok("2 tasks: 200".into())
        );
        assert_eq!(
            join_verdicts(vec![("a.1", Ok("200".into())), ("a.2", Err("404".into()))]),
            Err("a.2: 404".into())
        );
        let many = (0..5).map(|_| ("t", Err("x".to_string()))).collect();
        assert_eq!(
            join_verdicts(many),
            Err("t: x; t: x; t: x (and 2 more)".into())
        );
        assert!(join_verdicts(vec![]).is_err());
    }

    #[test]
    fn last_line_and_cut() {
        assert_eq!(last_line("one\ntwo  \n\n"), "two");
        assert_eq!(last_line(""), "");
        assert_eq!(cut("abcdef", 3), "abc…");
        assert_eq!(cut("abc", 3), "abc");
    }
}

//! `hearth migrate [-f PATH] NAME`: moves a deployment held with `StackMoveHeld` to the stack its
//! manifests now give, with its data (`swarm::migrate`, `docs/migrate.md`). Resumes a move a
//! killed hearth left half done.

use std::process::ExitCode;
use std::time::Duration;

use crate::migrate::State;
use crate::swarm::migrate::{Job, run};

use super::Source;
use super::advance_cmd::SnapshotArgs;
use super::common::{connect, load_and_render, runtime};

pub struct MigrateArgs<'a> {
    pub source: &'a Source,
    pub host: Option<&'a str>,
    pub snapshots: &'a SnapshotArgs,
    pub name: &'a str,
    pub timeout: Duration,
}

pub fn run_cmd(args: &MigrateArgs) -> ExitCode {
    let Some((loaded, pool)) = load_and_render(args.source, Some(args.name), args.host) else {
        return ExitCode::from(1);
    };
    let (Some(d), Some(desired)) = (loaded.deployment(args.name), pool.shared(args.name)) else {
        eprintln!(
            "no rendered deployment named {:?} in the manifests",
            args.name
        );
        return ExitCode::from(1);
    };
    let Some(p) = loaded.pool.as_ref() else {
        eprintln!("no Pool manifest");
        return ExitCode::from(1);
    };
    let extra = crate::desired::pool_labels(p);
    let job = Job {
        pool: p.metadata.name.clone(),
        deployment: args.name.to_string(),
        extra: extra.clone(),
        desired: desired.clone(),
        secrets: d.spec.secrets.clone(),
        probes: d.spec.probes.clone(),
        reach: Default::default(),
        store: args.snapshots.store(),
        backup: crate::backup::Options {
            helper_image: args.snapshots.backup_image.clone(),
            labels: extra,
            ..Default::default()
        },
        deadline: args.timeout,
        author: format!("cli:{}", crate::controller::lease::default_identity()),
    };
    runtime().block_on(async {
        let client = match connect(args.host).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let progress = |line: &str| eprintln!("{line}");
        match run(&client, &job, true, &progress).await {
            Ok(Some(r)) if r.state == State::Done => {
                println!(
                    "{}: moved from stack {} to stack {} (snapshot {}); the old volumes are kept",
                    args.name,
                    r.from,
                    r.to,
                    r.snapshot.as_deref().unwrap_or("none: no named volumes")
                );
                ExitCode::SUCCESS
            }
            Ok(Some(r)) => {
                eprintln!(
                    "{}: move {} -> {} {}: {}",
                    args.name,
                    r.from,
                    r.to,
                    r.state,
                    r.error.unwrap_or_default()
                );
                ExitCode::from(1)
            }
            Ok(None) => {
                println!("{}: nothing to move", args.name);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", args.name);
                ExitCode::from(1)
            }
        }
    })
}

//! `hearth apply`: converge once and exit. Progress bars on a terminal, one line per step
//! otherwise; `--wait` then waits until every applied service runs its desired tasks.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::assess::{Convergence, service_progress};
use crate::desired::DesiredPool;
use crate::manifest::{DesiredState, Loaded};
use crate::observed::Snapshot;
use crate::plan::{Plan, plan_pool, plan_pool_with};
use crate::swarm::Client;
use crate::swarm::apply::{ApplyError, Ids, StepEvent, apply_plan, apply_replanning};

use super::Source;
use super::common::{connect, load_and_render, runtime};

pub struct ApplyArgs<'a> {
    pub source: &'a Source,
    pub host: Option<&'a str>,
    pub deployment: Option<&'a str>,
    pub wait: bool,
    pub timeout: Duration,
    /// Apply the deferred changes of adopted services (their tasks restart).
    pub restart: bool,
}

pub fn run(args: &ApplyArgs) -> ExitCode {
    let Some((loaded, pool)) = load_and_render(args.source, args.deployment, args.host) else {
        return ExitCode::from(1);
    };
    let tty = std::io::stderr().is_terminal();
    runtime().block_on(async {
        let client = match connect(args.host).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let snap = match client.snapshot().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        };
        let plans = plan_pool_with(&pool, &loaded, &snap, args.deployment, args.restart);
        let cx = Session {
            client: &client,
            loaded: &loaded,
            pool: &pool,
            tty,
        };
        let mut applied = Applied {
            failed: !pool.errors.is_empty(),
            ..Default::default()
        };
        apply_plans(&cx, &plans, &snap, &mut applied).await;
        if args.wait
            && !applied.to_wait.is_empty()
            && let Err(code) = wait_phase(&cx, args, &mut applied).await
        {
            return code;
        }
        if applied.failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// What the phases of one apply share.
struct Session<'a> {
    client: &'a Client,
    loaded: &'a Loaded,
    pool: &'a DesiredPool,
    /// stderr is a terminal: progress bars instead of one line per step.
    tty: bool,
}

/// What applying the plans left behind.
#[derive(Default)]
struct Applied {
    /// A pool error, a plan problem or pending item, or a failed step.
    failed: bool,
    /// The deployments applied that should run: `--wait` waits for them.
    to_wait: Vec<String>,
    /// The deployments a step of which failed.
    failed_deployments: Vec<String>,
}

/// Applies each plan in turn (held and suspended deployments are only reported), printing its
/// problems, pending items and deferred changes.
async fn apply_plans(cx: &Session<'_>, plans: &[Plan], snap: &Snapshot, applied: &mut Applied) {
    let mut ids = Ids::from_snapshot(snap);
    for plan in plans {
        if let Some(h) = &plan.hold {
            eprintln!(
                "{}: {} ({}): {}",
                plan.deployment, h.phase, h.reason, h.message
            );
            continue;
        }
        for p in &plan.problems {
            eprintln!("{}: {}", plan.deployment, crate::redact::text(p));
            applied.failed = true;
        }
        for p in &plan.pending {
            eprintln!("{}: pending: {p}", plan.deployment);
            applied.failed = true;
        }
        if !plan.deferred.is_empty() {
            eprintln!(
                "{}: {} deferred change(s) of adopted services wait for the next version \
                 or `hearth apply --deployment {} --restart`",
                plan.deployment,
                plan.deferred.len(),
                plan.deployment
            );
        }
        let suspended = cx
            .loaded
            .deployment(&plan.deployment)
            .is_some_and(|d| d.spec.suspend);
        if suspended {
            if !plan.is_empty() {
                eprintln!(
                    "{}: suspended; {} change(s) not applied",
                    plan.deployment,
                    plan.steps.len()
                );
            }
            continue;
        }
        let result = apply_one(cx, plan, &mut ids).await;
        match result {
            Ok(n) => {
                if n == 0 && !cx.tty {
                    eprintln!("{}: no changes", plan.deployment);
                }
                let running = cx
                    .loaded
                    .deployment(&plan.deployment)
                    .is_some_and(|d| d.spec.state == DesiredState::Running);
                if running {
                    applied.to_wait.push(plan.deployment.clone());
                }
            }
            Err(_) => {
                applied.failed = true;
                applied.failed_deployments.push(plan.deployment.clone());
            }
        }
    }
}

/// Applies one plan with a progress bar (or one line per step), planning it again and retrying
/// when an object it counted on vanished.
async fn apply_one(cx: &Session<'_>, plan: &Plan, ids: &mut Ids) -> Result<usize, ApplyError> {
    let bar = cx.tty.then(|| {
        let b = ProgressBar::new(plan.steps.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{prefix:>20} [{bar:30}] {pos}/{len} {msg}")
                .expect("progress template")
                .progress_chars("=> "),
        );
        b.set_prefix(plan.deployment.clone());
        b
    });
    let progress = |e: StepEvent<'_>| match (&bar, e) {
        (Some(b), StepEvent::Started(s)) => {
            b.set_message(format!("{} {}", s.action.kind(), s.action.object()))
        }
        (Some(b), StepEvent::Done(_)) => b.inc(1),
        (Some(b), StepEvent::Failed(s, m)) => b.println(format!(
            "{}: {} {} failed: {}",
            plan.deployment,
            s.action.kind(),
            s.action.object(),
            crate::redact::text(&m)
        )),
        (None, StepEvent::Started(_)) => {}
        (None, StepEvent::Done(s)) => eprintln!(
            "{}: {} {} ({})",
            plan.deployment,
            s.action.kind(),
            s.action.object(),
            s.reason
        ),
        (None, StepEvent::Failed(s, m)) => eprintln!(
            "{}: {} {} failed: {}",
            plan.deployment,
            s.action.kind(),
            s.action.object(),
            crate::redact::text(&m)
        ),
    };
    // An object the plan counted on may vanish under it (a network still being removed
    // by the previous apply's prune): plan this deployment again and retry, bounded.
    let replan = |snap: &Snapshot| {
        plan_pool(cx.pool, cx.loaded, snap, Some(&plan.deployment))
            .into_iter()
            .find(|p| p.deployment == plan.deployment)
    };
    let retrying = |e: &ApplyError, delay: Duration| {
        let line = format!(
            "{}: {} {} failed: {}; planning again in {delay:.1?}",
            plan.deployment,
            e.action,
            e.object,
            crate::redact::text(&e.message)
        );
        match &bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    };
    let result = apply_replanning(cx.client, plan, ids, &progress, &replan, &retrying).await;
    if let Some(b) = &bar {
        b.finish_with_message(if result.is_ok() { "done" } else { "failed" });
    }
    result
}

/// `--wait`: waits until the applied deployments' services converged, then applies what only
/// running tasks reveal (at most twice) and waits again. `Err` when they did not converge.
async fn wait_phase(
    cx: &Session<'_>,
    args: &ApplyArgs<'_>,
    applied: &mut Applied,
) -> Result<(), ExitCode> {
    let stacks: BTreeSet<String> = cx
        .pool
        .deployments
        .iter()
        .filter(|d| applied.to_wait.contains(&d.deployment))
        .map(|d| d.stack.clone())
        .collect();
    // After a failed step, "all services converged" would be a lie: only the others are
    // waited for, and said so.
    let scope = if applied.failed {
        let which = if applied.failed_deployments.is_empty() {
            "see the problems above".to_string()
        } else {
            format!("a step failed: {}", applied.failed_deployments.join(", "))
        };
        format!("the applied deployments' services converged; NOT everything ({which})")
    } else {
        "all services converged".to_string()
    };
    if let Err(stuck) = wait(cx.client, &stacks, args.timeout, cx.tty, &scope).await {
        eprintln!("{}", crate::redact::text(&stuck));
        return Err(ExitCode::from(1));
    }
    // Converged in hearth's own terms: what only running tasks reveal (pins of services
    // with local volumes, plan/pin.rs) is applied too, so a plan right after is clean.
    for _ in 0..2 {
        let Ok(snap) = cx.client.snapshot().await else {
            break;
        };
        let follow: Vec<_> = plan_pool(cx.pool, cx.loaded, &snap, args.deployment)
            .into_iter()
            .filter(|p| applied.to_wait.contains(&p.deployment))
            .filter(|p| !p.is_empty() && p.problems.is_empty())
            .collect();
        if follow.is_empty() {
            break;
        }
        let mut ids = Ids::from_snapshot(&snap);
        for plan in &follow {
            let progress = |e: StepEvent<'_>| {
                if let StepEvent::Done(s) = e {
                    eprintln!(
                        "{}: {} {} ({})",
                        plan.deployment,
                        s.action.kind(),
                        s.action.object(),
                        s.reason
                    );
                }
            };
            if apply_plan(cx.client, plan, &mut ids, &progress)
                .await
                .is_err()
            {
                applied.failed = true;
            }
        }
        if let Err(stuck) = wait(cx.client, &stacks, args.timeout, cx.tty, &scope).await {
            eprintln!("{}", crate::redact::text(&stuck));
            return Err(ExitCode::from(1));
        }
    }
    Ok(())
}

/// Waits until every service of `stacks` has converged; on timeout (or a Swarm rollback) names
/// the stuck services and why.
async fn wait(
    client: &Client,
    stacks: &BTreeSet<String>,
    timeout: Duration,
    tty: bool,
    converged: &str,
) -> Result<(), String> {
    let start = Instant::now();
    let spinner = tty.then(ProgressBar::new_spinner);
    let mut last_line = String::new();
    loop {
        let snap = client.snapshot().await.map_err(|e| e.to_string())?;
        let stuck = unconverged(&snap, stacks);
        let failed: Vec<&(String, Convergence)> = stuck
            .iter()
            .filter(|(_, c)| matches!(c, Convergence::Failed(_)))
            .collect();
        let line = if stuck.is_empty() {
            converged.to_string()
        } else {
            format!(
                "waiting for {} service(s): {}",
                stuck.len(),
                stuck
                    .iter()
                    .map(|(s, _)| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        match &spinner {
            Some(s) => {
                s.set_message(line.clone());
                s.tick();
            }
            None if line != last_line => eprintln!("{line}"),
            None => {}
        }
        last_line = line;
        if stuck.is_empty() {
            if let Some(s) = spinner {
                s.finish_with_message(format!("{converged} ({:.1?})", start.elapsed()));
            }
            return Ok(());
        }
        if !failed.is_empty() || start.elapsed() > timeout {
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
            let why = if failed.is_empty() {
                format!("not converged after {timeout:?}")
            } else {
                "Swarm gave up".to_string()
            };
            let details: Vec<String> = stuck
                .iter()
                .map(|(s, c)| match c {
                    Convergence::Progressing(m) | Convergence::Failed(m) => format!("  {s}: {m}"),
                    Convergence::Converged => format!("  {s}"),
                })
                .collect();
            return Err(format!("{why}:\n{}", details.join("\n")));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Services of `stacks` that have not converged, with why.
pub fn unconverged(snap: &Snapshot, stacks: &BTreeSet<String>) -> Vec<(String, Convergence)> {
    let mut out = Vec::new();
    for (stack, view) in snap.stacks() {
        if !stacks.contains(stack) {
            continue;
        }
        for s in &view.services {
            let tasks: Vec<&crate::observed::live::Task> = view
                .tasks
                .iter()
                .copied()
                .filter(|t| t.service_id == s.id)
                .collect();
            let p = service_progress(s, &tasks);
            if p.state != Convergence::Converged {
                out.push((p.service, p.state));
            }
        }
    }
    out
}

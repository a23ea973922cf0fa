//! `hearth plan`: what `apply` would do, per deployment, with reasons and field differences
//! (credentials redacted: [`crate::redact`]).

use std::process::ExitCode;

use crate::plan::{Action, Plan, plan_pool};

use super::common::{connect, load_render, runtime};
use super::{Output, Source};

/// `offline`: do not check the manifests against the live swarm's other stacks (the plan itself
/// always reads the swarm).
pub fn run(
    source: &Source,
    host: Option<&str>,
    output: Output,
    detailed: bool,
    offline: bool,
) -> ExitCode {
    if source.paths.is_empty() {
        eprintln!("no manifests given: -f PATH...");
        return ExitCode::from(1);
    }
    let rt = runtime();
    let snap = match rt.block_on(async {
        let client = connect(host).await?;
        client.snapshot().await.map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(1)
        })
    }) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // Canonicals are always named from the swarm; `--offline` skips only the collision checks.
    let live = crate::conflicts::SwarmIndex::new(&snap);
    let Some((loaded, pool)) = load_render(source, None, Some(&live), !offline) else {
        return ExitCode::from(1);
    };
    let mut plans = plan_pool(&pool, &loaded, &snap, None);
    crate::redact::with(|r| plans.iter_mut().for_each(|p| r.plan(p)));
    match output {
        Output::Json | Output::Yaml => {
            let mut v = crate::render::canonical_value(&plans)
                .map(crate::render::docker_key_names)
                .unwrap_or_default();
            // The specs of create and update steps carry env values too.
            crate::redact::with(|r| r.json(&mut v));
            let text = if output == Output::Json {
                serde_json::to_string_pretty(&v).unwrap_or_default()
            } else {
                serde_saphyr::to_string(&v).unwrap_or_default()
            };
            println!("{text}");
        }
        Output::Text => print!("{}", describe(&plans)),
    }
    let errors = !pool.errors.is_empty()
        || plans
            .iter()
            .any(|p| !p.problems.is_empty() || !p.pending.is_empty());
    let changes = plans.iter().any(|p| !p.is_empty());
    match (errors, detailed, changes) {
        (true, _, _) => ExitCode::from(1),
        (false, true, true) => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    }
}

/// Plans as text: one block per deployment, one line per step, field differences indented.
pub fn describe(plans: &[Plan]) -> String {
    let mut out = String::new();
    for p in plans {
        let changes = if p.is_empty() {
            "no changes".to_string()
        } else {
            format!("{} change(s)", p.steps.len())
        };
        out.push_str(&format!("{} ({}): {changes}\n", p.deployment, p.stack));
        if let Some(h) = &p.hold {
            out.push_str(&format!("  = {} ({}): {}\n", h.phase, h.reason, h.message));
        }
        for problem in &p.problems {
            out.push_str(&format!("  ! {problem}\n"));
        }
        for pending in &p.pending {
            out.push_str(&format!("  ? pending: {pending}\n"));
        }
        if !p.deferred.is_empty() {
            out.push_str(&format!(
                "  deferred (would restart tasks; applied with the next version or `hearth apply \
                 --deployment {} --restart`):\n",
                p.deployment
            ));
            for d in &p.deferred {
                out.push_str(&format!(
                    "      {}: {}: {} -> {}\n",
                    d.service,
                    d.field,
                    clip(&d.live),
                    clip(&d.desired)
                ));
            }
        }
        for s in &p.steps {
            let sign = match s.action {
                Action::UpdateService { .. }
                | Action::LabelSecret { .. }
                | Action::LabelConfig { .. } => '~',
                Action::RemoveService { .. }
                | Action::RemoveConfig { .. }
                | Action::RemoveNetwork { .. }
                | Action::RemoveSecret { .. } => '-',
                _ => '+',
            };
            out.push_str(&format!(
                "  {sign} {} {}: {}\n",
                s.action.kind(),
                s.action.object(),
                s.reason
            ));
            for d in &s.diffs {
                out.push_str(&format!(
                    "      {}: {} -> {}\n",
                    d.field,
                    clip(&d.live),
                    clip(&d.desired)
                ));
            }
        }
    }
    out
}

fn clip(s: &str) -> String {
    if s.chars().count() > 160 {
        format!("{}...", s.chars().take(160).collect::<String>())
    } else {
        s.to_string()
    }
}

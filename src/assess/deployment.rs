//! Assessing one deployment: the per-service verdicts, probes, dependencies, deadline and the
//! manifest's switches combined into one phase, reason and message by the precedence in the
//! module doc of `assess`, plus the conditions.

use super::model::{AssessInput, Assessment, Condition, Phase, Wedge, WedgeReason};
use super::service::{self, Verdict};
use super::{Convergence, ServiceProgress};

/// The phase, reason and message of a deployment, and its wedge; see the module doc for the
/// precedence.
pub fn assess(input: &AssessInput) -> Assessment {
    let view = input.view;
    let mut services: Vec<_> = view.services.clone();
    services.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    let verdicts: Vec<Verdict> = services
        .iter()
        .map(|s| {
            let tasks: Vec<_> = view
                .tasks
                .iter()
                .copied()
                .filter(|t| t.service_id.is_some() && t.service_id == s.id)
                .collect();
            let name = name_of(s);
            let cx = service::Context {
                now: input.now,
                nodes: input.nodes,
                expected_hash: input
                    .expected
                    .iter()
                    .find(|e| e.name == name)
                    .and_then(|e| e.spec_hash.as_deref()),
                logs: input.logs,
                healthcheck: s
                    .id
                    .as_ref()
                    .and_then(|id| input.raw_specs.get(id))
                    .and_then(|raw| raw.pointer("/TaskTemplate/ContainerSpec/Healthcheck/Test"))
                    .and_then(|t| serde_json::from_value(t.clone()).ok()),
                crash_window: input.crash_window,
                crash_threshold: input.crash_threshold,
            };
            service::judge(s, &tasks, &cx)
        })
        .collect();
    let missing: Vec<&str> = input
        .expected
        .iter()
        .map(|e| e.name.as_str())
        .filter(|n| !services.iter().any(|s| name_of(s) == *n))
        .collect();
    let failing_probes: Vec<String> = input
        .probes
        .iter()
        .filter(|p| !p.ok)
        .map(|p| format!("probe {} failing: {}", p.name, p.message))
        .collect();
    let deps_waiting: Vec<String> = input
        .dependencies
        .iter()
        .filter(|(_, phase)| *phase != Phase::Ready)
        .map(|(name, phase)| format!("{name} ({phase})"))
        .collect();
    // A node that is down or drained is Swarm's to heal, not a wedge: reported as Degraded.
    let (node_verdicts, other_verdicts): (Vec<&Verdict>, Vec<&Verdict>) =
        verdicts.iter().partition(|v| {
            v.wedge.as_ref().is_some_and(|w| {
                matches!(
                    w.reason,
                    WedgeReason::NodeDown | WedgeReason::VolumeNodeDown
                )
            })
        });
    let service_wedge = first_wedge(&other_verdicts);
    let node_issue = first_wedge(&node_verdicts);

    let decision = decide(
        input,
        &verdicts,
        &missing,
        &failing_probes,
        &deps_waiting,
        service_wedge.clone(),
        node_issue,
    );

    let mut logs_wanted: Vec<String> = Vec::new();
    for v in &verdicts {
        for c in &v.logs_wanted {
            if !logs_wanted.contains(c) {
                logs_wanted.push(c.clone());
            }
        }
    }
    let conditions = conditions(
        input,
        &decision,
        service_wedge.as_ref(),
        &failing_probes,
        &deps_waiting,
    );
    Assessment {
        phase: decision.phase,
        reason: decision.reason,
        message: decision.message,
        conditions,
        services: verdicts.into_iter().map(|v| v.progress).collect(),
        wedge: decision.wedge,
        drift: input.drift.to_vec(),
        logs_wanted,
    }
}

struct Decision {
    phase: Phase,
    reason: String,
    message: String,
    wedge: Option<Wedge>,
}

fn decision(phase: Phase, reason: &str, message: String) -> Decision {
    Decision {
        phase,
        reason: reason.into(),
        message,
        wedge: None,
    }
}

fn wedged(w: Wedge) -> Decision {
    Decision {
        phase: Phase::Wedged,
        reason: w.reason.to_string(),
        message: w.message.clone(),
        wedge: Some(w),
    }
}

fn decide(
    input: &AssessInput,
    verdicts: &[Verdict],
    missing: &[&str],
    failing_probes: &[String],
    deps_waiting: &[String],
    service_wedge: Option<Wedge>,
    node_issue: Option<Wedge>,
) -> Decision {
    let deps_note = if deps_waiting.is_empty() {
        String::new()
    } else {
        format!("; dependencies not Ready: {}", deps_waiting.join(", "))
    };
    if let Some(d) = manifest_word(input, verdicts) {
        return d;
    }
    // 4. Nothing deployed yet: waiting for a dependency, or for the first apply.
    if verdicts.is_empty() && !deps_waiting.is_empty() {
        return decision(
            Phase::Pending,
            "WaitingForDependency",
            format!("waiting for dependency {}", deps_waiting.join(", ")),
        );
    }
    // 5. A wedged service (the first by wedge precedence, then service name).
    if let Some(mut w) = service_wedge {
        w.message.push_str(&deps_note);
        return wedged(w);
    }
    let unconverged: Vec<&ServiceProgress> = verdicts
        .iter()
        .map(|v| &v.progress)
        .filter(|p| p.state != Convergence::Converged)
        .collect();
    // 6. Ready: every service at its desired tasks of the desired spec, every probe passing.
    let nothing_deployed = verdicts.is_empty();
    if unconverged.is_empty()
        && missing.is_empty()
        && failing_probes.is_empty()
        && !nothing_deployed
    {
        let mut msg = format!("{} service(s) running their desired tasks", verdicts.len());
        if !input.probes.is_empty() {
            msg.push_str(&format!(", {} probe(s) passing", input.probes.len()));
        }
        return decision(Phase::Ready, "AllReady", msg);
    }
    let why = why_not_ready(
        &unconverged,
        missing,
        nothing_deployed,
        failing_probes,
        &deps_note,
    );
    // 6b. Short because a node is down or drained: Swarm reschedules (or, for a service pinned to
    // its volumes, waits for the node); hearth writes nothing.
    if let Some(w) = node_issue {
        return decision(
            Phase::Degraded,
            w.reason.as_str(),
            format!("degraded: {}", w.message),
        );
    }
    not_ready(input, &unconverged, missing, nothing_deployed, why)
}

/// The manifest's word, which comes before the live state: Invalid (1), Suspended (2), Parked or
/// parking (3), and a secret only an operator can make.
fn manifest_word(input: &AssessInput, verdicts: &[Verdict]) -> Option<Decision> {
    if let Some(why) = &input.invalid {
        return Some(decision(
            Phase::Invalid,
            "Invalid",
            format!("invalid: {why}"),
        ));
    }
    if input.suspended {
        return Some(decision(
            Phase::Suspended,
            "Suspended",
            "suspended (spec.suspend: true): hearth changes nothing".into(),
        ));
    }
    if !input.desired_running {
        return Some(if verdicts.is_empty() {
            decision(
                Phase::Parked,
                "Parked",
                "parked: no services run, volumes are kept".into(),
            )
        } else {
            let names: Vec<&str> = verdicts
                .iter()
                .map(|v| v.progress.service.as_str())
                .collect();
            decision(
                Phase::Progressing,
                "Parking",
                format!("parking: services still to remove: {}", names.join(", ")),
            )
        });
    }
    // A secret only an operator can make is missing: nothing can be converged until it exists.
    if let Some(why) = &input.waiting {
        return Some(decision(Phase::Pending, "SecretMissing", why.clone()));
    }
    None
}

/// Why the deployment is not Ready: the unconverged services, the missing ones, the failing
/// probes, and the dependencies not Ready.
fn why_not_ready(
    unconverged: &[&ServiceProgress],
    missing: &[&str],
    nothing_deployed: bool,
    failing_probes: &[String],
    deps_note: &str,
) -> String {
    let mut why: Vec<String> = unconverged
        .iter()
        .map(|p| match &p.state {
            Convergence::Progressing(m) | Convergence::Failed(m) => format!("{}: {m}", p.service),
            Convergence::Converged => p.service.clone(),
        })
        .collect();
    if !missing.is_empty() {
        why.push(format!("services not created yet: {}", missing.join(", ")));
    }
    if nothing_deployed && missing.is_empty() {
        why.push("no services".into());
    }
    why.extend(failing_probes.iter().cloned());
    format!("{}{deps_note}", why.join("; "))
}

/// The phase of a deployment that is not Ready for `why` (no wedged service, no node issue):
/// Degraded (7), Wedged past the progress deadline (8), Pending or Progressing (9).
fn not_ready(
    input: &AssessInput,
    unconverged: &[&ServiceProgress],
    missing: &[&str],
    nothing_deployed: bool,
    why: String,
) -> Decision {
    let only_probes = unconverged.is_empty() && missing.is_empty() && !nothing_deployed;
    let reason = if only_probes {
        "ProbeFailing"
    } else if !missing.is_empty() && unconverged.is_empty() {
        "ServicesMissing"
    } else {
        "ServicesProgressing"
    };
    // 7. Degraded: it was Ready with this spec and has lost something since.
    if input.was_ready {
        let reason = if only_probes {
            "ProbeFailing"
        } else if missing.is_empty() {
            "ReplicasLost"
        } else {
            "ServiceMissing"
        };
        return decision(Phase::Degraded, reason, format!("degraded: {why}"));
    }
    // 8. The progress deadline.
    if let Some(since) = input.progressing_since {
        let elapsed = input.now.duration_since(since).unwrap_or_default();
        if elapsed >= input.progress_deadline {
            let reason = if only_probes {
                WedgeReason::ProbeFailing
            } else {
                WedgeReason::DeadlineExceeded
            };
            let service = unconverged
                .first()
                .map(|p| p.service.clone())
                .or_else(|| missing.first().map(|m| m.to_string()))
                .unwrap_or_default();
            return wedged(Wedge {
                reason,
                service,
                message: format!(
                    "not Ready {} after the desired spec was applied (progressDeadline {}): {why}",
                    humantime::format_duration(round_secs(elapsed)),
                    humantime::format_duration(input.progress_deadline)
                ),
                exit_code: None,
            });
        }
    }
    // 9. Pending (nothing deployed) or Progressing.
    if nothing_deployed {
        return decision(
            Phase::Pending,
            "NotDeployed",
            format!("not deployed yet: {why}"),
        );
    }
    decision(Phase::Progressing, reason, format!("progressing: {why}"))
}

fn round_secs(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs(d.as_secs())
}

/// The wedge that explains the deployment: lowest [`WedgeReason`], then service name; the others
/// are named at the end of its message.
fn first_wedge(verdicts: &[&Verdict]) -> Option<Wedge> {
    let mut wedges: Vec<&Wedge> = verdicts.iter().filter_map(|v| v.wedge.as_ref()).collect();
    wedges.sort_by(|a, b| (a.reason, &a.service).cmp(&(b.reason, &b.service)));
    let (first, rest) = wedges.split_first()?;
    let mut w = (*first).clone();
    if !rest.is_empty() {
        let others: Vec<String> = rest
            .iter()
            .map(|o| format!("{} ({})", o.service, o.reason))
            .collect();
        w.message
            .push_str(&format!("; also wedged: {}", others.join(", ")));
    }
    Some(w)
}

fn name_of(s: &crate::observed::live::Service) -> &str {
    s.spec
        .as_ref()
        .and_then(|s| s.name.as_deref())
        .unwrap_or_default()
}

fn cond(kind: &str, status: bool, reason: &str, message: String) -> Condition {
    Condition {
        kind: kind.into(),
        status,
        reason: reason.into(),
        message,
        since: None,
    }
}

fn conditions(
    input: &AssessInput,
    d: &Decision,
    service_wedge: Option<&Wedge>,
    failing_probes: &[String],
    deps_waiting: &[String],
) -> Vec<Condition> {
    let ready = d.phase == Phase::Ready;
    let wedge = d
        .wedge
        .as_ref()
        .or(service_wedge.filter(|_| input.desired_running));
    let mut out = vec![
        cond("Ready", ready, &d.reason, d.message.clone()),
        if d.phase == Phase::Progressing {
            cond("Progressing", true, &d.reason, d.message.clone())
        } else {
            cond("Progressing", false, d.phase.as_str(), String::new())
        },
        match wedge {
            Some(w) => cond("Wedged", true, w.reason.as_str(), w.message.clone()),
            None => cond("Wedged", false, "NotWedged", String::new()),
        },
        if d.phase == Phase::Degraded {
            cond("Degraded", true, &d.reason, d.message.clone())
        } else {
            cond("Degraded", false, "NotDegraded", String::new())
        },
    ];
    out.push(if input.drift.is_empty() {
        cond("Drifted", false, "NoDrift", String::new())
    } else {
        let items: Vec<String> = input
            .drift
            .iter()
            .map(|i| {
                format!(
                    "{} {}: desired {}, live {}",
                    i.service,
                    i.field,
                    clip(&i.desired),
                    clip(&i.live)
                )
            })
            .collect();
        cond(
            "Drifted",
            true,
            "LiveSpecChanged",
            format!(
                "{} field(s) changed out of band: {}",
                items.len(),
                items.join("; ")
            ),
        )
    });
    let drained = drained_nodes(input);
    if !drained.is_empty() {
        out.push(cond(
            "NodeDrained",
            true,
            "NodeDrained",
            format!(
                "tasks on drained node(s) {}: Swarm moves them; hearth leaves the drain alone",
                drained.join(", ")
            ),
        ));
    }
    if !input.dependencies.is_empty() {
        out.push(if deps_waiting.is_empty() {
            cond("DependenciesReady", true, "AllReady", String::new())
        } else {
            cond(
                "DependenciesReady",
                false,
                "WaitingForDependency",
                format!("not Ready: {}", deps_waiting.join(", ")),
            )
        });
    }
    if !input.probes.is_empty() {
        out.push(if failing_probes.is_empty() {
            cond("ProbesPassing", true, "AllPassing", String::new())
        } else {
            cond(
                "ProbesPassing",
                false,
                "ProbeFailing",
                failing_probes.join("; "),
            )
        });
    }
    out
}

fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// Hostnames of drained nodes that still hold (or are meant to hold) tasks of this deployment.
fn drained_nodes(input: &AssessInput) -> Vec<String> {
    use bollard::models::TaskState;
    let mut out: Vec<String> = Vec::new();
    for t in &input.view.tasks {
        let live = t.desired_state == Some(TaskState::RUNNING)
            || super::tasks::state(t) == Some(TaskState::RUNNING);
        let Some(n) = t
            .node_id
            .as_deref()
            .filter(|_| live)
            .and_then(|id| super::nodes::by_id(input.nodes, id))
            .filter(|n| super::nodes::is_drained(n))
        else {
            continue;
        };
        let name = super::nodes::name(n);
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

//! `/metrics`: the Prometheus text exposition of hearth, computed from [`Shared`] at scrape time.
//!
//! Every metric is described once in [`DEFS`] (name, type, help, labels); a custom collector
//! registered in a `prometheus::Registry` builds the families from the shared state on each
//! scrape, so a deployment gone from the manifests disappears from the next scrape. Label values
//! are bounded: deployment, probe and service names come from the manifests, phases and wedge
//! reasons from fixed lists (an unknown wedge reason is reported as `Other`), Docker operations
//! and action kinds from hearth's code. No task ID, error text or secret is ever a label value.
//!
//! The only state kept across scrapes is the reconcile-duration histogram: each scrape moves the
//! durations the controller queued (`Counters::reconcile_seconds`) into it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use prometheus::{Encoder, Histogram, HistogramOpts, Registry, TextEncoder};

use crate::assess::{Phase, WedgeReason};
use crate::controller::Shared;
use crate::controller::status::{DeploymentStatus, unix};

/// Every phase, in order (docs/architecture.md, "Phases and reasons"): `hearth_deployment_phase` is
/// one-hot over these. Made from [`Phase::ALL`], so a new phase is exported the day it exists.
pub static PHASES: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| Phase::ALL.iter().map(|p| p.as_str()).collect());

/// The wedge reasons `hearth_deployment_wedged` reports: exactly [`WedgeReason::ALL`]; any other
/// reason (there is none while phase and reason come from the assessment) is `Other`.
pub static WEDGE_REASONS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| WedgeReason::ALL.iter().map(|r| r.as_str()).collect());

/// The type of one metric as exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
    /// `_sum` and `_count` only (no quantiles).
    Summary,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

const fn def(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> Def {
    Def {
        name,
        kind,
        help,
        labels,
    }
}

const D: &str = "deployment";

/// The name of the reconcile-duration histogram (the one metric kept across scrapes).
pub const RECONCILE_DURATION: &str = "hearth_reconcile_duration_seconds";
/// The pass duration histogram (the gauge `hearth_pass_duration_seconds` keeps the last one).
pub const PASS_SECONDS: &str = "hearth_pass_seconds";

/// Every metric hearth exports.
pub const DEFS: &[Def] = &[
    def(
        "hearth_deployment_info",
        Kind::Gauge,
        &[
            D,
            "recipe",
            "role",
            "stack",
            "domain",
            "desired_version",
            "live_version",
        ],
        "Always 1; the labels describe the deployment (live_version is empty when nothing is deployed).",
    ),
    def(
        "hearth_deployment_phase",
        Kind::Gauge,
        &[D, "phase"],
        "1 for the deployment's current phase, 0 for every other phase.",
    ),
    def(
        "hearth_deployment_ready",
        Kind::Gauge,
        &[D],
        "1 when the deployment is Ready.",
    ),
    def(
        "hearth_deployment_drifted",
        Kind::Gauge,
        &[D],
        "1 when the live spec differs from the desired one on fields hearth sets.",
    ),
    def(
        "hearth_deployment_wedged",
        Kind::Gauge,
        &[D, "reason"],
        "1 with the wedge reason when the deployment is Wedged; 0 with an empty reason otherwise.",
    ),
    def(
        "hearth_deployment_drift_items",
        Kind::Gauge,
        &[D],
        "Number of drifted fields.",
    ),
    def(
        "hearth_deployment_conflicts",
        Kind::Gauge,
        &[D],
        "Number of collisions with other stacks on the swarm (shadowed aliases, claimed hosts, a held stack name): its Conflict conditions.",
    ),
    def(
        "hearth_deployment_last_ready_timestamp_seconds",
        Kind::Gauge,
        &[D],
        "Unix time the deployment was last seen Ready (absent when never).",
    ),
    def(
        "hearth_reconcile_total",
        Kind::Counter,
        &[D, "result"],
        "Reconciles of a deployment by result (ok, error).",
    ),
    def(
        RECONCILE_DURATION,
        Kind::Histogram,
        &[],
        "Duration of one deployment's reconcile (plan, decide, start the apply), in seconds.",
    ),
    def(
        "hearth_passes_total",
        Kind::Counter,
        &[],
        "Controller passes (one swarm snapshot each, then plan and assess every due deployment).",
    ),
    def(
        "hearth_pass_duration_seconds",
        Kind::Gauge,
        &[],
        "Wall time of the last controller pass, in seconds.",
    ),
    def(
        PASS_SECONDS,
        Kind::Histogram,
        &[],
        "Wall time of controller passes, in seconds.",
    ),
    def(
        "hearth_pass_cpu_seconds",
        Kind::Gauge,
        &[],
        "CPU time (user + system) the process used during the last controller pass, in seconds.",
    ),
    def(
        "hearth_pass_docker_requests",
        Kind::Gauge,
        &[],
        "Docker API requests made during the last controller pass.",
    ),
    def(
        "hearth_actions_total",
        Kind::Counter,
        &["action"],
        "Changes made on the swarm, by action kind.",
    ),
    def(
        "hearth_advance_total",
        Kind::Counter,
        &[D, "result"],
        "Version advances by result (succeeded, failed).",
    ),
    def(
        "hearth_probe_success",
        Kind::Gauge,
        &[D, "probe"],
        "1 when the probe's last run succeeded.",
    ),
    def(
        "hearth_task_failures_total",
        Kind::Counter,
        &[D, "service"],
        "Failed Swarm tasks seen, each counted once.",
    ),
    def(
        "hearth_docker_up",
        Kind::Gauge,
        &[],
        "1 when the last Docker call succeeded.",
    ),
    def(
        "hearth_docker_requests_total",
        Kind::Counter,
        &["op"],
        "Docker API requests by operation.",
    ),
    def(
        "hearth_docker_request_duration_seconds",
        Kind::Summary,
        &["op"],
        "Time spent in Docker API requests by operation, in seconds (a summary without quantiles).",
    ),
    def(
        "hearth_source_revision_info",
        Kind::Gauge,
        &["revision"],
        "Always 1; the revision of the manifests (\"local\" for files).",
    ),
    def(
        "hearth_source_last_sync_timestamp_seconds",
        Kind::Gauge,
        &[],
        "Unix time the manifests were last loaded (0 before the first load).",
    ),
    def(
        "hearth_manifest_errors",
        Kind::Gauge,
        &[],
        "Problems in the manifests as last loaded.",
    ),
    def(
        "hearth_leader",
        Kind::Gauge,
        &[],
        "1 when this instance acts on the swarm (it holds the pool's leader lease, or runs with --no-lease); 0 for a standby.",
    ),
    def(
        "hearth_lease_info",
        Kind::Gauge,
        &["pool", "identity", "leader"],
        "Always 1 while hearth takes part in a leader lease (absent with --no-lease): the pool, this instance's identity and the lease holder as it last read it (empty while unknown).",
    ),
    def(
        "hearth_build_info",
        Kind::Gauge,
        &["version"],
        "Always 1; the labels describe the hearth build.",
    ),
];

/// The names of every metric hearth exports (as declared, before `_sum`/`_count`/`_bucket`).
pub fn metric_names() -> Vec<&'static str> {
    DEFS.iter().map(|d| d.name).collect()
}

/// The wedge reason as reported: one of [`WEDGE_REASONS`] or `Other`.
pub fn wedge_reason(reason: &str) -> &'static str {
    WEDGE_REASONS
        .iter()
        .find(|r| **r == reason)
        .copied()
        .unwrap_or("Other")
}

/// One sample: label values (in the order of the def's labels) and value.
type Sample = (Vec<String>, f64);

fn b(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

/// The samples of one deployment-level metric.
fn deployment_samples(name: &str, s: &DeploymentStatus) -> Vec<Sample> {
    let d = || s.name.clone();
    match name {
        "hearth_deployment_info" => vec![(
            vec![
                d(),
                s.recipe.clone(),
                s.role.clone(),
                s.stack.clone(),
                s.domain.clone(),
                s.desired_version.clone(),
                s.live_version.clone().unwrap_or_default(),
            ],
            1.0,
        )],
        "hearth_deployment_phase" => Phase::ALL
            .iter()
            .map(|p| (vec![d(), p.to_string()], b(s.phase == *p)))
            .collect(),
        "hearth_deployment_ready" => vec![(vec![d()], b(s.phase == Phase::Ready))],
        "hearth_deployment_drifted" => vec![(vec![d()], b(!s.drift.is_empty()))],
        "hearth_deployment_wedged" => {
            let reason = if s.phase == Phase::Wedged {
                wedge_reason(&s.reason)
            } else {
                ""
            };
            vec![(vec![d(), reason.to_string()], b(s.phase == Phase::Wedged))]
        }
        "hearth_deployment_drift_items" => vec![(vec![d()], s.drift.len() as f64)],
        "hearth_deployment_conflicts" => vec![(
            vec![d()],
            s.conditions
                .iter()
                .filter(|c| c.kind == crate::conflicts::CONDITION && c.status)
                .count() as f64,
        )],
        "hearth_deployment_last_ready_timestamp_seconds" => s
            .last_ready
            .map(|t| vec![(vec![d()], unix(t))])
            .unwrap_or_default(),
        "hearth_probe_success" => s
            .probes
            .iter()
            .map(|p| (vec![d(), p.name.clone()], b(p.ok)))
            .collect(),
        _ => Vec::new(),
    }
}

fn counter_map<K: Clone>(
    map: &std::sync::RwLock<std::collections::BTreeMap<K, u64>>,
) -> Vec<(K, u64)> {
    map.read()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default()
}

fn pass(c: &crate::controller::status::Counters) -> (u64, crate::controller::cost::Cost) {
    c.passes.read().map(|p| *p).unwrap_or_default()
}

/// The samples of every metric except the histogram, from the shared state.
pub fn samples(shared: &Shared, def: &Def) -> Vec<Sample> {
    let c = &shared.counters;
    match def.name {
        "hearth_reconcile_total" => {
            let mut out: Vec<Sample> = Vec::new();
            for (d, n) in counter_map(&c.reconcile_ok) {
                out.push((vec![d, "ok".into()], n as f64));
            }
            for (d, n) in counter_map(&c.reconcile_err) {
                out.push((vec![d, "error".into()], n as f64));
            }
            out
        }
        "hearth_actions_total" => counter_map(&c.actions)
            .into_iter()
            .map(|(k, n)| (vec![k], n as f64))
            .collect(),
        "hearth_advance_total" => {
            // Both results of every known deployment (0 until one happens), plus any counted.
            let counted: std::collections::BTreeMap<(String, String), u64> =
                counter_map(&c.advances).into_iter().collect();
            let mut keys: std::collections::BTreeSet<(String, String)> =
                counted.keys().cloned().collect();
            if let Ok(st) = shared.statuses.read() {
                for d in st.keys() {
                    for r in ["succeeded", "failed"] {
                        keys.insert((d.clone(), r.to_string()));
                    }
                }
            }
            keys.into_iter()
                .map(|k| {
                    let n = counted.get(&k).copied().unwrap_or(0);
                    (vec![k.0, k.1], n as f64)
                })
                .collect()
        }
        "hearth_task_failures_total" => counter_map(&c.task_failures)
            .into_iter()
            .map(|((d, s), n)| (vec![d, s], n as f64))
            .collect(),
        "hearth_passes_total" => vec![(vec![], pass(c).0 as f64)],
        "hearth_pass_duration_seconds" => vec![(vec![], pass(c).1.wall)],
        "hearth_pass_cpu_seconds" => vec![(vec![], pass(c).1.cpu)],
        "hearth_pass_docker_requests" => vec![(vec![], pass(c).1.docker_requests as f64)],
        "hearth_docker_up" => vec![(vec![], b(shared.is_docker_up()))],
        "hearth_docker_requests_total" => shared
            .client
            .get()
            .map(|cl| cl.counts())
            .map(|counts| {
                counts
                    .requests
                    .iter()
                    .map(|(op, n)| (vec![op.to_string()], *n as f64))
                    .collect()
            })
            .unwrap_or_default(),
        "hearth_source_revision_info" => {
            let rev = shared.source.read().expect("source").revision.clone();
            vec![(vec![rev.unwrap_or_else(|| "local".into())], 1.0)]
        }
        "hearth_source_last_sync_timestamp_seconds" => {
            vec![(
                vec![],
                shared.source_synced_at.load(Ordering::SeqCst) as f64,
            )]
        }
        "hearth_manifest_errors" => vec![(
            vec![],
            shared
                .manifest_errors
                .read()
                .map(|e| e.len())
                .unwrap_or_default() as f64,
        )],
        "hearth_leader" => vec![(vec![], if shared.is_leader() { 1.0 } else { 0.0 })],
        "hearth_lease_info" => {
            let l = shared.leadership();
            match l.identity {
                Some(id) => {
                    let pool = shared
                        .lease_pool
                        .read()
                        .map(|p| p.as_ref().map(|p| p.name.clone()).unwrap_or_default())
                        .unwrap_or_default();
                    vec![(vec![pool, id, l.leader.unwrap_or_default()], 1.0)]
                }
                None => vec![],
            }
        }
        "hearth_build_info" => vec![(vec![env!("CARGO_PKG_VERSION").into()], 1.0)],
        name => shared
            .statuses
            .read()
            .map(|st| {
                st.values()
                    .flat_map(|s| deployment_samples(name, s))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn labels(def: &Def, values: Vec<String>) -> Vec<LabelPair> {
    def.labels
        .iter()
        .zip(values)
        .map(|(n, v)| {
            let mut l = LabelPair::default();
            l.set_name(n.to_string());
            l.set_value(v);
            l
        })
        .collect()
}

fn family(def: &Def, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(def.name.to_string());
    mf.set_help(def.help.to_string());
    mf.set_field_type(match def.kind {
        Kind::Gauge => MetricType::GAUGE,
        Kind::Counter => MetricType::COUNTER,
        Kind::Histogram => MetricType::HISTOGRAM,
        Kind::Summary => MetricType::SUMMARY,
    });
    mf.set_metric(metrics);
    mf
}

/// The family of a gauge or counter def.
fn simple_family(def: &Def, samples: Vec<Sample>) -> MetricFamily {
    let metrics = samples
        .into_iter()
        .map(|(values, v)| {
            let mut m = proto::Metric::from_label(labels(def, values));
            if def.kind == Kind::Counter {
                let mut c = proto::Counter::default();
                c.set_value(v);
                m.set_counter(c);
            } else {
                let mut g = proto::Gauge::default();
                g.set_value(v);
                m.set_gauge(g);
            }
            m
        })
        .collect();
    family(def, metrics)
}

/// `hearth_docker_request_duration_seconds`: a summary (sum and count) per operation.
fn docker_duration_family(shared: &Shared, def: &Def) -> MetricFamily {
    let metrics = shared
        .client
        .get()
        .map(|cl| cl.counts())
        .map(|counts| {
            counts
                .seconds
                .iter()
                .map(|(op, secs)| {
                    let mut m = proto::Metric::from_label(labels(def, vec![op.to_string()]));
                    let mut s = proto::Summary::default();
                    s.set_sample_sum(*secs);
                    s.set_sample_count(counts.requests.get(op).copied().unwrap_or(0));
                    m.set_summary(s);
                    m
                })
                .collect()
        })
        .unwrap_or_default();
    family(def, metrics)
}

/// The collector registered in the registry: reads [`Shared`] on every scrape.
struct SharedCollector {
    shared: Arc<Shared>,
    descs: Vec<Desc>,
    histogram: Histogram,
    passes: Histogram,
}

impl Collector for SharedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs
            .iter()
            .chain(self.histogram.desc())
            .chain(self.passes.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let queued: Vec<f64> = self
            .shared
            .counters
            .reconcile_seconds
            .write()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for s in queued {
            self.histogram.observe(s);
        }
        let passes: Vec<f64> = self
            .shared
            .counters
            .pass_seconds
            .write()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for s in passes {
            self.passes.observe(s);
        }
        let mut out: Vec<MetricFamily> = DEFS
            .iter()
            .filter_map(|d| match d.kind {
                Kind::Histogram => None,
                Kind::Summary => Some(docker_duration_family(&self.shared, d)),
                _ => Some(simple_family(d, samples(&self.shared, d))),
            })
            .collect();
        out.extend(self.histogram.collect());
        out.extend(self.passes.collect());
        out
    }
}

/// hearth's metrics registry, tied to one [`Shared`].
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(shared: Arc<Shared>) -> Metrics {
        let descs = DEFS
            .iter()
            .filter(|d| d.kind != Kind::Histogram)
            .map(|d| {
                Desc::new(
                    d.name.into(),
                    d.help.into(),
                    d.labels.iter().map(|l| l.to_string()).collect(),
                    HashMap::new(),
                )
                .expect("metric definitions are valid")
            })
            .collect();
        let hdef = DEFS
            .iter()
            .find(|d| d.name == RECONCILE_DURATION)
            .expect("histogram def");
        let histogram =
            Histogram::with_opts(HistogramOpts::new(hdef.name, hdef.help).buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]))
            .expect("histogram opts are valid");
        let pdef = DEFS
            .iter()
            .find(|d| d.name == PASS_SECONDS)
            .expect("histogram def");
        let passes = Histogram::with_opts(HistogramOpts::new(pdef.name, pdef.help).buckets(vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ]))
        .expect("histogram opts are valid");
        let registry = Registry::new();
        registry
            .register(Box::new(SharedCollector {
                shared,
                descs,
                histogram,
                passes,
            }))
            .expect("one collector, unique names");
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
        if let Err(e) = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::warn!("process metrics: {e}");
        }
        Metrics { registry }
    }

    /// The text exposition of every metric, now.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!("encoding metrics: {e}");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every wedge reason the assessment can give is exported as itself, never as `Other`.
    #[test]
    fn every_wedge_reason_is_exported_by_name() {
        for r in WedgeReason::ALL {
            assert_eq!(wedge_reason(r.as_str()), r.as_str());
        }
        assert_eq!(wedge_reason("RolledBack"), "RolledBack");
        assert_eq!(wedge_reason("WaitingForDependency"), "Other");
        assert_eq!(PHASES.len(), Phase::ALL.len());
    }

    #[test]
    fn process_metrics_and_the_pass_histogram() {
        let shared = Arc::new(Shared::default());
        let m = Metrics::new(shared.clone());
        shared.counters.pass_done(crate::controller::cost::Cost {
            wall: 0.2,
            ..Default::default()
        });
        let text = m.render();
        for want in [
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "process_open_fds ",
            "hearth_pass_seconds_bucket{le=\"0.25\"} 1",
            "hearth_pass_seconds_count 1",
            "hearth_pass_duration_seconds 0.2",
        ] {
            assert!(text.contains(want), "{want:?} missing");
        }
    }
    use crate::controller::status::ProbeStatus;
    use crate::plan::DriftItem;
    use std::time::{Duration, SystemTime};

    fn status(name: &str, phase: &str, reason: &str) -> DeploymentStatus {
        DeploymentStatus {
            name: name.into(),
            recipe: "keycloak".into(),
            role: "provider".into(),
            stack: format!("{name}_example_org"),
            domain: format!("{name}.example.org"),
            desired_version: "1.0.0+25.0.6".into(),
            phase: Phase::parse(phase).expect("a phase"),
            reason: reason.into(),
            ..Default::default()
        }
    }

    fn shared_with(statuses: Vec<DeploymentStatus>) -> Arc<Shared> {
        let shared = Arc::new(Shared::default());
        let mut m = shared.statuses.write().expect("statuses");
        for s in statuses {
            m.insert(s.name.clone(), s);
        }
        drop(m);
        shared
    }

    fn line_value(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn phase_is_one_hot_over_all_phases() {
        let shared = shared_with(vec![status("kc", "Wedged", "CrashLoop")]);
        let text = Metrics::new(shared).render();
        let phase_lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("hearth_deployment_phase{"))
            .collect();
        assert_eq!(phase_lines.len(), PHASES.len(), "{text}");
        let ones: Vec<&&str> = phase_lines.iter().filter(|l| l.ends_with(" 1")).collect();
        assert_eq!(ones.len(), 1);
        assert!(ones[0].contains("phase=\"Wedged\""), "{ones:?}");
        assert_eq!(
            line_value(
                &text,
                "hearth_deployment_wedged{deployment=\"kc\",reason=\"CrashLoop\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            line_value(&text, "hearth_deployment_ready{deployment=\"kc\"}"),
            Some(0.0)
        );
    }

    #[test]
    fn unknown_wedge_reasons_are_bounded() {
        assert_eq!(wedge_reason("CrashLoop"), "CrashLoop");
        assert_eq!(wedge_reason("exit code 2: something broke"), "Other");
        let shared = shared_with(vec![
            status("a", "Wedged", "task abc123 failed"),
            status("b", "Ready", "AllServicesRunning"),
        ]);
        let text = Metrics::new(shared).render();
        assert!(
            text.contains("hearth_deployment_wedged{deployment=\"a\",reason=\"Other\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hearth_deployment_wedged{deployment=\"b\",reason=\"\"} 0"),
            "{text}"
        );
        assert!(!text.contains("abc123"));
    }

    #[test]
    fn deleted_deployments_disappear() {
        let shared = shared_with(vec![status("a", "Ready", ""), status("b", "Ready", "")]);
        let metrics = Metrics::new(shared.clone());
        assert!(metrics.render().contains("deployment=\"b\""));
        shared.statuses.write().expect("statuses").remove("b");
        let text = metrics.render();
        assert!(text.contains("deployment=\"a\""));
        assert!(!text.contains("deployment=\"b\""), "{text}");
    }

    #[test]
    fn values_and_types_come_from_shared() {
        let mut s = status("kc", "Ready", "AllServicesRunning");
        s.live_version = Some("1.0.0+25.0.6".into());
        s.last_ready = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        s.drift = vec![DriftItem {
            service: "app".into(),
            field: "env".into(),
            desired: "A=1".into(),
            live: "A=2".into(),
        }];
        s.probes = vec![ProbeStatus {
            name: "http-8080".into(),
            ok: false,
            message: "refused".into(),
        }];
        let conflict = |status: bool| {
            crate::assess::Condition::new(crate::conflicts::CONDITION, status, "AliasShadowed", "")
        };
        s.conditions = vec![conflict(true), conflict(true)];
        let shared = shared_with(vec![s]);
        shared.counters.reconciled("kc", true);
        shared.counters.reconciled("kc", true);
        shared.counters.reconciled("kc", false);
        shared.counters.action("create_service");
        shared.counters.task_failed("kc", "app");
        shared.counters.advanced("kc", "succeeded");
        shared.counters.reconcile_took(0.02);
        shared.counters.reconcile_took(3.0);
        shared.manifest_errors.write().expect("e").push("x".into());
        shared.source_synced_at.store(1234, Ordering::SeqCst);
        let metrics = Metrics::new(shared.clone());
        let text = metrics.render();
        for (prefix, want) in [
            (
                "hearth_reconcile_total{deployment=\"kc\",result=\"ok\"}",
                2.0,
            ),
            (
                "hearth_reconcile_total{deployment=\"kc\",result=\"error\"}",
                1.0,
            ),
            ("hearth_actions_total{action=\"create_service\"}", 1.0),
            (
                "hearth_task_failures_total{deployment=\"kc\",service=\"app\"}",
                1.0,
            ),
            ("hearth_deployment_drifted{deployment=\"kc\"}", 1.0),
            ("hearth_deployment_drift_items{deployment=\"kc\"}", 1.0),
            ("hearth_deployment_conflicts{deployment=\"kc\"}", 2.0),
            (
                "hearth_deployment_last_ready_timestamp_seconds{deployment=\"kc\"}",
                1.7e9,
            ),
            (
                "hearth_probe_success{deployment=\"kc\",probe=\"http-8080\"}",
                0.0,
            ),
            ("hearth_manifest_errors ", 1.0),
            ("hearth_source_last_sync_timestamp_seconds ", 1234.0),
            ("hearth_docker_up ", 0.0),
            ("hearth_leader ", 1.0),
            ("hearth_reconcile_duration_seconds_count ", 2.0),
            (
                "hearth_reconcile_duration_seconds_bucket{le=\"0.025\"}",
                1.0,
            ),
            (
                "hearth_advance_total{deployment=\"kc\",result=\"failed\"}",
                0.0,
            ),
            (
                "hearth_advance_total{deployment=\"kc\",result=\"succeeded\"}",
                1.0,
            ),
        ] {
            assert_eq!(line_value(&text, prefix), Some(want), "{prefix}\n{text}");
        }
        assert!(text.contains("# TYPE hearth_reconcile_total counter"));
        assert!(text.contains("# TYPE hearth_reconcile_duration_seconds histogram"));
        assert!(text.contains("# TYPE hearth_deployment_phase gauge"));
        assert!(text.contains("live_version=\"1.0.0+25.0.6\""));
        // The histogram keeps its observations; the queue is drained.
        shared.counters.reconcile_took(0.5);
        let text = metrics.render();
        assert_eq!(
            line_value(&text, "hearth_reconcile_duration_seconds_count "),
            Some(3.0)
        );
        assert!(
            shared
                .counters
                .reconcile_seconds
                .read()
                .expect("q")
                .is_empty()
        );
    }

    #[test]
    fn leader_is_one_for_the_leader_and_zero_for_a_standby() {
        let shared = shared_with(vec![]);
        let metrics = Metrics::new(shared.clone());
        assert_eq!(line_value(&metrics.render(), "hearth_leader "), Some(1.0));
        assert!(!metrics.render().contains("hearth_lease_info"));
        shared.leadership.send_modify(|l| {
            l.leading = false;
            l.identity = Some("b:2".into());
            l.leader = Some("a:1".into());
        });
        shared.set_lease_pool(Some(crate::controller::status::LeasePool {
            name: "ci".into(),
            labels: vec![],
        }));
        let text = metrics.render();
        assert_eq!(line_value(&text, "hearth_leader "), Some(0.0));
        assert_eq!(
            line_value(
                &text,
                "hearth_lease_info{pool=\"ci\",identity=\"b:2\",leader=\"a:1\"}"
            ),
            Some(1.0)
        );
    }

    #[test]
    fn every_def_has_a_valid_unique_name_and_prefix() {
        let names = metric_names();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for d in DEFS {
            assert!(d.name.starts_with("hearth_"), "{}", d.name);
            let counterish = matches!(d.kind, Kind::Counter);
            assert_eq!(counterish, d.name.ends_with("_total"), "{}", d.name);
        }
        // Registering validates names and labels.
        let _ = Metrics::new(Arc::new(Shared::default()));
    }
}

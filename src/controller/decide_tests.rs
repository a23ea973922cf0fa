//! Every exit of a reconcile, decided over hand-built facts (no Docker).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bollard::models::{Config, ConfigSpec, Service, ServiceSpec};

use super::*;
use crate::conflicts::{Claims, SwarmIndex};
use crate::migrate::Owners;
use crate::plan::{Action, Step};
use crate::render::StackSpec;

const POOL: &str =
    "apiVersion: hearth/v1\nkind: Pool\nmetadata: {name: p}\nspec: {domain: example.org}\n";

fn deployment(name: &str, extra: &str) -> Deployment {
    let text = format!(
        "{POOL}---\napiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  recipe: gitea\n  version: 1.0.0\n{extra}"
    );
    let loaded = crate::manifest::load_str(&text, Path::new("m.yml"));
    loaded
        .deployment(name)
        .cloned()
        .expect("the deployment loads")
}

fn render(name: &str, stack: &str) -> Arc<Desired> {
    Arc::new(Desired {
        deployment: name.into(),
        recipe: "gitea".into(),
        version: "1.0.0".into(),
        commit: String::new(),
        domain: format!("{name}.example.org"),
        stack: stack.into(),
        compose_files: Vec::new(),
        stack_spec: StackSpec {
            stack: stack.into(),
            networks: Vec::new(),
            volumes: Vec::new(),
            secrets: Vec::new(),
            configs: Vec::new(),
            services: Vec::new(),
            warnings: Vec::new(),
        },
        secret_files: BTreeMap::new(),
        secret_hints: BTreeMap::new(),
    })
}

fn pool(prune: bool) -> PoolFacts {
    PoolFacts {
        name: "p".into(),
        prune,
        self_heal: true,
        progress_deadline: Duration::from_secs(600),
    }
}

/// Runs `check` with the pass's indexes of `snap`.
fn on(snap: &Snapshot, check: impl FnOnce(&Pass)) {
    let ids = Ids::from_snapshot(snap);
    let ix = SnapIndex::new(snap);
    let owners = Owners::new(snap);
    let held = SwarmIndex::new(snap);
    check(&Pass {
        snap,
        ids: &ids,
        ix: &ix,
        owners: &owners,
        held: &held,
    });
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// The facts of `app` (stack `app_example_org`), rendered, nothing live.
fn facts<'a>(pass: &'a Pass<'a>) -> Facts<'a> {
    let declared = render("app", "app_example_org");
    Facts {
        name: "app",
        now: now(),
        pass,
        view: StackView::default(),
        previous: DeploymentStatus::default(),
        deployment: Some(deployment("app", "")),
        pool: Some(pool(false)),
        orphan: false,
        invalid: None,
        claims: Some(Arc::new(Claims::of(&declared.stack_spec))),
        declared: Some(declared),
        dependencies: Vec::new(),
        probe_outcomes: Vec::new(),
        progressing_since: None,
        applies_running: 0,
        concurrency: 4,
    }
}

fn verdict(phase: &str, reason: &str) -> Verdict {
    Verdict {
        standing: Standing::new(
            Phase::parse(phase).expect("a phase"),
            reason,
            format!("{phase} because {reason}"),
        ),
        services: Vec::new(),
        conditions: Vec::new(),
        logs_wanted: Vec::new(),
    }
}

fn step(heals_drift: bool) -> Step {
    Step {
        action: Action::RemoveService {
            name: "app_example_org_old".into(),
            id: "x".into(),
        },
        reason: "gone from the recipe".into(),
        diffs: Vec::new(),
        heals_drift,
    }
}

/// An assessment of `app` with `steps` planned and the judge's `v`.
fn assessed(steps: Vec<Step>, v: Verdict, may_apply: bool) -> Assessed {
    Assessed {
        st: DeploymentStatus {
            name: "app".into(),
            ..Default::default()
        },
        desired: render("app", "app_example_org"),
        pool: "p".into(),
        plan: Plan {
            deployment: "app".into(),
            stack: "app_example_org".into(),
            steps,
            ..Default::default()
        },
        verdict: v,
        deadline: Duration::from_secs(600),
        may_apply,
        probes: Vec::new(),
        progressing_since: None,
        was_ready: false,
    }
}

fn advanced(
    normal_apply: bool,
    status: Option<(&str, &str)>,
    applied: bool,
    again: bool,
) -> Advanced {
    Advanced {
        normal_apply,
        driven: Driven {
            status: status.map(|(phase, reason)| {
                Standing::new(
                    Phase::parse(phase).expect("a phase"),
                    reason,
                    format!("advance: {reason}"),
                )
            }),
            applied,
            again,
        },
    }
}

fn phase(o: &Outcome) -> (&str, &str) {
    let st = o.status.as_ref().expect("a status is published");
    (st.phase.as_str(), st.reason.as_str())
}

fn applies(o: &Outcome) -> usize {
    match &o.work {
        Work::Apply(plan) => plan.steps.len(),
        other => panic!("no apply: {other:?}"),
    }
}

/// The whole reconcile without I/O: triage, assess, decide.
fn reconcile(f: &Facts, advance: Option<Advanced>) -> Outcome {
    match triage(f) {
        Ok(t) => decide(f, assess(f, t, None, &HashMap::new()), advance),
        Err(exit) => *exit,
    }
}

fn hearth_service(dep: &str, stack: &str) -> Service {
    let labels = HashMap::from([
        ("hearth.managed-by".to_string(), "hearth".to_string()),
        ("hearth.pool".to_string(), "p".to_string()),
        ("hearth.deployment".to_string(), dep.to_string()),
        ("com.docker.stack.namespace".to_string(), stack.to_string()),
    ]);
    Service {
        id: Some(format!("{stack}-app")),
        spec: Some(ServiceSpec {
            name: Some(format!("{stack}_app")),
            labels: Some(labels),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn an_orphan_is_pruned_only_when_the_pool_prunes() {
    let mut snap = Snapshot::default();
    snap.push_service(hearth_service("gone", "gone_example_org"));
    on(&snap, |pass| {
        let mut f = facts(pass);
        f.name = "gone";
        f.deployment = None;
        f.declared = None;
        f.orphan = true;
        f.pool = Some(pool(true));
        let o = reconcile(&f, None);
        assert!(o.status.is_none());
        assert_eq!(applies(&o), 1, "{o:?}");
        assert_eq!(o.requeue, Requeue::Running);

        f.pool = Some(pool(false));
        let o = reconcile(&f, None);
        assert!(o.status.is_none() && matches!(o.work, Work::Nothing));
        assert_eq!(o.requeue, Requeue::Done);

        // Not this pool's: nothing either.
        f.pool = Some(pool(true));
        f.orphan = false;
        let o = reconcile(&f, None);
        assert!(matches!(o.work, Work::Nothing));
        assert_eq!(o.requeue, Requeue::Done);
    });
}

#[test]
fn an_invalid_manifest_is_reported_with_its_problems() {
    on(&Snapshot::default(), |pass| {
        let mut f = facts(pass);
        f.previous.phase = Phase::Ready;
        f.invalid = Some("m.yml:3:1: spec.version: bad".into());
        let o = reconcile(&f, None);
        assert_eq!(phase(&o), ("Invalid", "InvalidManifest"));
        let st = o.status.as_ref().unwrap();
        assert_eq!(st.message, "m.yml:3:1: spec.version: bad");
        assert_eq!((st.recipe.as_str(), st.role.as_str()), ("gitea", "plain"));
        assert_eq!(st.last_reconcile, Some(now()));
        assert_eq!(st.since, Some(now()));
        assert!(matches!(o.work, Work::Nothing));
        assert_eq!(
            (o.requeue, o.clock, o.verdict),
            (Requeue::Done, Clock::Keep, false)
        );

        f.invalid = None;
        f.declared = None;
        let o = reconcile(&f, None);
        assert_eq!(phase(&o), ("Invalid", "NotRendered"));
        assert_eq!(o.requeue, Requeue::Done);
    });
}

#[test]
fn a_stack_name_another_deployment_holds_is_pending_and_held() {
    let mut snap = Snapshot::default();
    snap.push_service(hearth_service("other", "app_example_org"));
    on(&snap, |pass| {
        let o = reconcile(&facts(pass), None);
        assert_eq!(phase(&o), ("Pending", "StackNameHeld"));
        let st = o.status.as_ref().unwrap();
        let conds: Vec<_> = st
            .conditions
            .iter()
            .map(|c| (c.kind.as_str(), c.status))
            .collect();
        assert_eq!(conds, [("Ready", false), ("Held", true)]);
        assert!(st.drift.is_empty());
        assert!(matches!(o.work, Work::Nothing));
        assert_eq!(o.requeue, Requeue::Done);
    });
}

#[test]
fn a_stack_move_is_held_unless_allowed_then_it_runs() {
    // `app` lives in `warm-app`; its manifests now give `app_example_org`.
    let mut snap = Snapshot::default();
    snap.push_service(hearth_service("app", "warm-app"));
    on(&snap, |pass| {
        let o = reconcile(&facts(pass), None);
        assert_eq!(phase(&o), ("Held", "StackMoveHeld"));
        assert_eq!(o.requeue, Requeue::Done);

        let mut f = facts(pass);
        f.deployment = Some(deployment("app", "  advance: {allowMigration: true}\n"));
        let o = reconcile(&f, None);
        assert_eq!(phase(&o), ("Progressing", "Migrating"));
        assert!(matches!(o.work, Work::Migrate { start: true, .. }), "{o:?}");
        assert_eq!(o.requeue, Requeue::Running);

        // Without a pool there is nothing to run it with.
        f.pool = None;
        let o = reconcile(&f, None);
        assert!(matches!(o.work, Work::Nothing));
        assert_eq!(o.requeue, Requeue::Done);
    });
}

#[test]
fn a_recorded_move_is_resumed() {
    use crate::migrate::machine::{Record, State, request};
    let mut snap = Snapshot::default();
    snap.push_service(hearth_service("app", "warm-app"));
    let r = Record {
        state: State::StackCreated,
        ..request("warm-app", "app_example_org", 0)
    };
    let spec: ConfigSpec = crate::migrate::record::record_spec("p", "app", &BTreeMap::new(), &r);
    snap.configs.push(Config {
        id: Some("c".into()),
        spec: Some(spec),
        ..Default::default()
    });
    on(&snap, |pass| {
        let o = reconcile(&facts(pass), None);
        assert_eq!(phase(&o).0, "Progressing");
        assert!(
            matches!(o.work, Work::Migrate { start: false, .. }),
            "{o:?}"
        );
        assert_eq!(o.requeue, Requeue::Running);
    });
}

#[test]
fn suspended_changes_nothing() {
    on(&Snapshot::default(), |pass| {
        let mut f = facts(pass);
        f.deployment = Some(deployment("app", "  suspend: true\n"));
        let t = triage(&f).unwrap();
        let a = assess(&f, t, None, &HashMap::new());
        assert!(!a.may_apply);
        let o = decide(&f, a, None);
        assert_eq!(phase(&o), ("Suspended", "Suspended"));
        assert!(matches!(o.work, Work::Nothing));
        assert_eq!((o.requeue, o.verdict), (Requeue::Done, true));
    });
}

#[test]
fn nothing_to_do_reports_the_verdict_and_a_ready_one_stops_the_clock() {
    on(&Snapshot::default(), |pass| {
        let mut f = facts(pass);
        f.progressing_since = Some(now() - Duration::from_secs(5));
        let o = decide(
            &f,
            assessed(Vec::new(), verdict("Ready", "AllRunning"), true),
            None,
        );
        assert_eq!(phase(&o), ("Ready", "AllRunning"));
        assert_eq!(o.status.as_ref().unwrap().last_ready, Some(now()));
        assert_eq!(
            (o.requeue, o.clock, o.verdict),
            (Requeue::Done, Clock::Stop, true)
        );

        // Any other verdict keeps the clock.
        let o = decide(
            &f,
            assessed(Vec::new(), verdict("Wedged", "CrashLoop"), true),
            None,
        );
        assert_eq!(phase(&o), ("Wedged", "CrashLoop"));
        assert_eq!(
            (o.requeue, o.clock, o.verdict),
            (Requeue::Done, Clock::Keep, true)
        );

        // The whole way, with nothing live and nothing to plan.
        let o = reconcile(&f, None);
        assert!(o.verdict && matches!(o.work, Work::Nothing));
    });
}

#[test]
fn a_plan_is_applied_and_restarts_the_clock_unless_it_only_heals_drift() {
    on(&Snapshot::default(), |pass| {
        let f = facts(pass);
        let o = decide(
            &f,
            assessed(vec![step(false)], verdict("Ready", "AllRunning"), true),
            None,
        );
        assert_eq!(phase(&o), ("Progressing", "Applying"));
        assert_eq!(o.status.as_ref().unwrap().message, "applying 1 change(s)");
        assert_eq!(applies(&o), 1);
        assert_eq!(
            (o.requeue, o.clock, o.verdict),
            (Requeue::Running, Clock::Restart(now()), false)
        );

        let o = decide(
            &f,
            assessed(vec![step(true)], verdict("Ready", "AllRunning"), true),
            None,
        );
        assert_eq!(phase(&o), ("Progressing", "Applying"));
        assert_eq!(o.clock, Clock::Keep);
    });
}

#[test]
fn a_plan_that_may_not_be_applied_reports_the_verdict() {
    on(&Snapshot::default(), |pass| {
        let f = facts(pass);
        let o = decide(
            &f,
            assessed(
                vec![step(false)],
                verdict("Pending", "WaitingForDependency"),
                false,
            ),
            None,
        );
        assert_eq!(phase(&o), ("Pending", "WaitingForDependency"));
        assert!(matches!(o.work, Work::Nothing) && o.verdict);

        // A dependency not Ready holds the first deploy back.
        let mut f = facts(pass);
        f.dependencies = vec![("db".into(), Phase::Progressing)];
        let t = triage(&f).unwrap();
        assert!(!assess(&f, t, None, &HashMap::new()).may_apply);
        f.dependencies = vec![("db".into(), Phase::Ready)];
        let t = triage(&f).unwrap();
        assert!(assess(&f, t, None, &HashMap::new()).may_apply);
    });
}

#[test]
fn busy_apply_slots_make_it_wait_and_look_again() {
    on(&Snapshot::default(), |pass| {
        let mut f = facts(pass);
        f.applies_running = 2;
        f.concurrency = 2;
        let o = decide(
            &f,
            assessed(
                vec![step(false), step(false)],
                verdict("Ready", "AllRunning"),
                true,
            ),
            None,
        );
        assert_eq!(phase(&o), ("Progressing", "WaitingForApplySlot"));
        assert_eq!(
            o.status.as_ref().unwrap().message,
            "2 change(s) queued behind 2 running apply(s)"
        );
        assert!(matches!(o.work, Work::Nothing));
        assert_eq!((o.requeue, o.clock), (Requeue::DoneAndMark, Clock::Keep));
    });
}

#[test]
fn the_advance_machine_speaks_first() {
    on(&Snapshot::default(), |pass| {
        let f = facts(pass);
        let plan = || assessed(vec![step(false)], verdict("Ready", "AllRunning"), true);
        // Its status, with the usual apply of the declared version.
        let o = decide(
            &f,
            plan(),
            Some(advanced(
                true,
                Some(("Progressing", "Advancing")),
                false,
                false,
            )),
        );
        assert_eq!(phase(&o), ("Progressing", "Advancing"));
        assert_eq!(applies(&o), 1);
        assert_eq!((o.requeue, o.clock), (Requeue::Running, Clock::Keep));

        // It started its own apply: the clock restarts, and it is looked at again.
        let o = decide(
            &f,
            plan(),
            Some(advanced(
                false,
                Some(("Progressing", "Advancing")),
                true,
                true,
            )),
        );
        assert!(matches!(o.work, Work::Nothing));
        assert_eq!(
            (o.requeue, o.clock),
            (Requeue::DoneAndMark, Clock::Restart(now()))
        );

        let o = decide(
            &f,
            plan(),
            Some(advanced(
                false,
                Some(("AdvanceFailed", "RolledBack")),
                false,
                false,
            )),
        );
        assert_eq!(phase(&o), ("AdvanceFailed", "RolledBack"));
        assert_eq!(o.requeue, Requeue::Done);

        // No word of its own and not the usual apply: the plan is dropped, the verdict stands.
        let o = decide(&f, plan(), Some(advanced(false, None, false, false)));
        assert_eq!(phase(&o), ("Ready", "AllRunning"));
        assert!(matches!(o.work, Work::Nothing) && o.verdict);

        // No word of its own, the usual apply: the plan is applied.
        let o = decide(&f, plan(), Some(advanced(true, None, false, false)));
        assert_eq!(phase(&o), ("Progressing", "Applying"));
    });
}

#[test]
fn conflicts_with_other_stacks_are_conditions_not_phases() {
    // A stack of the same name that hearth did not make.
    let mut snap = Snapshot::default();
    snap.push_service(Service {
        id: Some("f".into()),
        spec: Some(ServiceSpec {
            name: Some("app_example_org_web".into()),
            labels: Some(HashMap::from([(
                "com.docker.stack.namespace".to_string(),
                "app_example_org".to_string(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    });
    on(&snap, |pass| {
        let f = facts(pass);
        let o = decide(
            &f,
            assessed(Vec::new(), verdict("Ready", "AllRunning"), true),
            None,
        );
        assert_eq!(phase(&o), ("Ready", "AllRunning"));
        let conflict: Vec<_> = o
            .status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .filter(|c| c.kind == crate::conflicts::CONDITION)
            .map(|c| (c.status, c.reason.as_str()))
            .collect();
        assert_eq!(conflict, [(true, "StackHeld")]);
    });
    on(&Snapshot::default(), |pass| {
        let o = decide(
            &facts(pass),
            assessed(Vec::new(), verdict("Ready", "AllRunning"), true),
            None,
        );
        let st = o.status.unwrap();
        let c = st
            .conditions
            .iter()
            .find(|c| c.kind == crate::conflicts::CONDITION)
            .unwrap();
        assert!(!c.status);
        assert_eq!(c.since, Some(now()));
    });
}

#[test]
fn probes_without_a_result_are_not_passing() {
    on(&Snapshot::default(), |pass| {
        let mut f = facts(pass);
        f.deployment = Some(deployment(
            "app",
            "  probes:\n    - http: {service: app, port: 80, path: /health}\n",
        ));
        let t = triage(&f).unwrap();
        let a = assess(&f, t, None, &HashMap::new());
        assert_eq!(a.st.probes.len(), 1, "{:?}", a.st.probes);
        assert!(!a.st.probes[0].ok);
        assert_eq!(a.st.probes[0].message, "not probed yet");
    });
}

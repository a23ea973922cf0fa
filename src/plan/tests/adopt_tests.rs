//! Adoption planning: a foreign stack of the deployment's namespace is labelled without touching
//! a task template; what would restart tasks is deferred until a version change or `restart`.

use std::collections::HashMap;

use super::*;
use crate::plan::adopt::LABEL_ADOPTED;
use crate::render::{LABEL_NAMESPACE, version_label};

const STACK: &str = "web_example_org";

fn ns() -> HashMap<String, String> {
    HashMap::from([(LABEL_NAMESPACE.to_string(), STACK.to_string())])
}

/// `spec` as `docker stack deploy` left it: no hearth labels, and app's env differs.
fn deployed_by_abra(spec: &StackSpec) -> Snapshot {
    let mut snap = applied(spec);
    for n in snap
        .networks
        .iter_mut()
        .filter(|n| n.name.as_deref() != Some("proxy"))
    {
        n.labels = Some(ns());
    }
    for s in &mut snap.secrets {
        s.spec.as_mut().unwrap().labels = None;
        s.version = Some(ObjectVersion { index: Some(7) });
    }
    for c in &mut snap.configs {
        c.spec.as_mut().unwrap().labels = Some(ns());
    }
    for id in ["web_example_org_app-id", "web_example_org_db-id"] {
        edit_service(&mut snap, id, |s| {
            let sp = s.spec.as_mut().unwrap();
            let mut l = ns();
            l.insert(version_label(STACK), "1.0.0".into());
            sp.labels = Some(l);
            if id.contains("app") {
                let t = sp.task_template.as_mut().unwrap();
                t.container_spec.as_mut().unwrap().env = Some(vec!["A=0".into()]);
            }
        });
    }
    snap
}

fn with<'a>(i: Intent<'a>, adopt: bool, restart: bool) -> Intent<'a> {
    Intent {
        adopt,
        restart,
        ..i
    }
}

#[test]
fn a_foreign_stack_is_refused_without_adopt_and_labelled_with_it() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let snap = deployed_by_abra(&spec);
    let refused = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert!(!refused.problems.is_empty());
    assert!(refused.steps.is_empty(), "{:?}", kinds(&refused));

    let plan = plan_deployment(&with(intent(Some(&spec), &secrets), true, false), &snap);
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    let config = spec.configs[0].name.clone();
    assert_eq!(
        kinds(&plan),
        [
            ("label_secret", "web_example_org_db_password_v1"),
            ("label_config", config.as_str()),
            ("update_service", "web_example_org_app"),
            ("update_service", "web_example_org_db"),
        ]
    );
    match &plan.steps[0].action {
        Action::LabelSecret {
            version, labels, ..
        } => {
            assert_eq!(*version, 7);
            assert_eq!(labels["hearth.managed-by"], "hearth");
        }
        other => panic!("{other:?}"),
    }
    // The app keeps its live template (env A=0); the env difference is deferred.
    match &plan.steps[2].action {
        Action::UpdateService { spec, .. } => {
            let env = spec
                .task_template
                .as_ref()
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.env.clone());
            assert_eq!(env, Some(vec!["A=0".to_string()]));
            let labels = spec.labels.as_ref().unwrap();
            assert_eq!(labels[LABEL_ADOPTED], "1.0.0");
            assert_eq!(labels["hearth.managed-by"], "hearth");
            assert_eq!(labels[LABEL_NAMESPACE], STACK);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        plan.steps
            .iter()
            .all(|s| s.diffs.iter().all(|d| !d.field.starts_with("Task")))
    );
    let deferred: Vec<_> = plan
        .deferred
        .iter()
        .map(|d| (d.service.as_str(), d.field.as_str()))
        .collect();
    assert_eq!(deferred, [("app", "TaskTemplate.ContainerSpec.Env")]);
    assert!(plan.drift.is_empty());
}

/// The swarm after the adoption: hearth's labels and the mark, the template still abra's.
fn adopted(spec: &StackSpec) -> Snapshot {
    let mut snap = applied(spec);
    edit_service(&mut snap, "web_example_org_app-id", |s| {
        let sp = s.spec.as_mut().unwrap();
        sp.labels
            .as_mut()
            .unwrap()
            .insert(LABEL_ADOPTED.into(), "1.0.0".into());
        let t = sp.task_template.as_mut().unwrap();
        t.container_spec.as_mut().unwrap().env = Some(vec!["A=0".into()]);
    });
    snap
}

#[test]
fn deferred_changes_wait_for_a_version_change_or_restart() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let snap = adopted(&spec);
    for adopt in [true, false] {
        let plan = plan_deployment(&with(intent(Some(&spec), &secrets), adopt, false), &snap);
        assert!(plan.is_empty(), "{:?}", kinds(&plan));
        assert!(plan.problems.is_empty() && plan.drift.is_empty());
        assert_eq!(plan.deferred.len(), 1);
    }
    let plan = plan_deployment(&with(intent(Some(&spec), &secrets), true, true), &snap);
    assert_eq!(kinds(&plan), [("update_service", "web_example_org_app")]);
    match &plan.steps[0].action {
        Action::UpdateService { spec: sent, .. } => {
            assert!(!sent.labels.as_ref().unwrap().contains_key(LABEL_ADOPTED));
        }
        other => panic!("{other:?}"),
    }
    assert!(!plan.steps[0].heals_drift);
    let newer = stack(compose(), "1.1.0");
    let plan = plan_deployment(&with(intent(Some(&newer), &secrets), true, false), &snap);
    assert!(kinds(&plan).contains(&("update_service", "web_example_org_app")));
    assert!(plan.deferred.is_empty());
}

#[test]
fn other_configs_of_the_adopted_stack_are_labelled_for_removal() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let mut snap = deployed_by_abra(&spec);
    snap.configs.push(Config {
        id: Some("abra-conf-id".into()),
        spec: Some(bollard::models::ConfigSpec {
            name: Some("web_example_org_app_ini_v1".into()),
            labels: Some(ns()),
            ..Default::default()
        }),
        ..Default::default()
    });
    let plan = plan_deployment(&with(intent(Some(&spec), &secrets), true, false), &snap);
    assert!(kinds(&plan).contains(&("label_config", "web_example_org_app_ini_v1")));
    let refused = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert!(!kinds(&refused).contains(&("label_config", "web_example_org_app_ini_v1")));
}

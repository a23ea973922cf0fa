//! Planning tests on rendered stacks and hand-made snapshots: fresh deploy order, zero steps when
//! converged, drift vs desired change, ownership, removals, parking, pruning, old configs.

use bollard::models::{Config, Network, ObjectVersion, Secret, SecretSpec, Service};
use indexmap::IndexMap;
use serde_json::{Value, json};

use super::*;
use crate::compose::model::ComposeFile;
use crate::manifest::{Charset, Generate, SecretSource};
use crate::observed::Snapshot;
use crate::render::{RenderInput, StackSpec, render};

mod adopt_tests;

fn stack(compose: Value, version: &str) -> StackSpec {
    stack_in_pool(compose, version, "p")
}

fn stack_in_pool(compose: Value, version: &str, pool: &str) -> StackSpec {
    let compose: ComposeFile = serde_json::from_value(compose).expect("compose model");
    let read = |p: &str| -> Result<Option<Vec<u8>>, String> {
        Ok((p == "app.ini").then(|| b"[server]\n".to_vec()))
    };
    render(&RenderInput {
        deployment: "web",
        stack: "web_example_org",
        version,
        source: "web@1:compose.yml",
        compose: &compose,
        read_file: &read,
        extra_labels: &[("hearth.pool".to_string(), pool.to_string())].into(),
    })
    .expect("renders")
}

fn compose() -> Value {
    json!({
        "services": {
            "app": {"image": "hearth-fixture:test", "environment": ["A=1"],
                    "networks": ["proxy", "internal"], "secrets": ["db_password"],
                    "configs": [{"source": "app_ini", "target": "/etc/app.ini"}]},
            "db": {"image": "hearth-fixture:test", "networks": ["internal"]}
        },
        "networks": {"proxy": {"external": true}, "internal": {}},
        "secrets": {"db_password": {"external": true, "name": "web_example_org_db_password_v1"}},
        "configs": {"app_ini": {"file": "app.ini"}}
    })
}

fn manifest_secrets() -> IndexMap<String, SecretSource> {
    IndexMap::from([(
        "db_password".to_string(),
        SecretSource::Generate(Generate {
            length: 16,
            charset: Charset::Alnum,
        }),
    )])
}

fn proxy() -> Network {
    Network {
        name: Some("proxy".into()),
        id: Some("proxy-id".into()),
        ..Default::default()
    }
}

/// The swarm as it is after applying `spec` (what Docker returns, plus a default it adds).
fn applied(spec: &StackSpec) -> Snapshot {
    let mut snap = Snapshot {
        networks: vec![proxy()],
        ..Default::default()
    };
    for n in spec.networks.iter().filter(|n| !n.external) {
        let s = n.spec.clone().unwrap();
        snap.networks.push(Network {
            id: Some(format!("{}-id", n.name)),
            name: Some(n.name.clone()),
            labels: s.labels.clone(),
            ..Default::default()
        });
    }
    for s in &spec.secrets {
        snap.secrets.push(Secret {
            id: Some(format!("{}-id", s.name)),
            spec: Some(SecretSpec {
                name: Some(s.name.clone()),
                labels: Some(s.labels.clone().into_iter().collect()),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    for c in &spec.configs {
        snap.configs.push(Config {
            id: Some(format!("{}-id", c.name)),
            spec: c.spec.clone(),
            ..Default::default()
        });
    }
    for s in &spec.services {
        let mut live = serde_json::to_value(s.spec()).unwrap();
        // Swarm adds defaults and IDs the desired spec does not set.
        live["TaskTemplate"]["ForceUpdate"] = json!(0);
        live["TaskTemplate"]["Runtime"] = json!("container");
        live["EndpointSpec"]["Mode"] = json!("vip");
        if let Some(secrets) = live["TaskTemplate"]["ContainerSpec"]["Secrets"].as_array_mut() {
            for r in secrets {
                r["SecretID"] = json!("sid");
            }
        }
        snap.push_service(Service {
            id: Some(format!("{}-id", s.name)),
            version: Some(ObjectVersion { index: Some(42) }),
            spec: Some(serde_json::from_value(live).unwrap()),
            ..Default::default()
        });
    }
    snap
}

/// Changes service `id` of `snap` as someone outside hearth would (its slim view and its spec).
fn edit_service(snap: &mut Snapshot, id: &str, f: impl FnOnce(&mut Service)) {
    let i = snap
        .services
        .iter()
        .position(|s| s.id.as_deref() == Some(id))
        .expect("the service");
    let slim = snap.services.remove(i);
    let raw = snap.service_specs.remove(id).expect("its spec");
    let mut full = Service {
        id: slim.id,
        version: slim.version,
        spec: Some(serde_json::from_str(raw.get()).unwrap()),
        ..Default::default()
    };
    f(&mut full);
    snap.push_service(full);
    let edited = snap.services.pop().unwrap();
    snap.services.insert(i, edited);
}

fn kinds(plan: &Plan) -> Vec<(&'static str, &str)> {
    plan.steps
        .iter()
        .map(|s| (s.action.kind(), s.action.object()))
        .collect()
}

fn intent<'a>(
    spec: Option<&'a StackSpec>,
    secrets: &'a IndexMap<String, SecretSource>,
) -> Intent<'a> {
    Intent {
        pool: "p",
        deployment: "web",
        stack: "web_example_org",
        desired: spec,
        secrets,
        secret_files: &NO_FILES,
        secret_hints: &NO_HINTS,
        adopt: false,
        restart: false,
    }
}

static NO_FILES: std::collections::BTreeMap<String, Vec<u8>> = std::collections::BTreeMap::new();
static NO_HINTS: std::collections::BTreeMap<String, crate::recipe::hints::SecretHint> =
    std::collections::BTreeMap::new();

#[test]
fn fresh_deploy_creates_in_dependency_order() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let snap = Snapshot {
        networks: vec![proxy()],
        ..Default::default()
    };
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    let config = spec.configs[0].name.clone();
    assert_eq!(
        kinds(&plan),
        [
            ("create_network", "web_example_org_internal"),
            ("create_secret", "web_example_org_db_password_v1"),
            ("create_config", config.as_str()),
            ("create_service", "web_example_org_app"),
            ("create_service", "web_example_org_db"),
        ]
    );
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
}

#[test]
fn converged_stack_plans_nothing() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &applied(&spec));
    assert!(plan.is_empty(), "{:#?}", plan.steps);
    assert!(plan.drift.is_empty());
}

#[test]
fn out_of_band_env_change_is_drift_and_planned_back() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let mut snap = applied(&spec);
    edit_service(&mut snap, "web_example_org_app-id", |app| {
        let c = app.spec.as_mut().unwrap().task_template.as_mut().unwrap();
        c.container_spec.as_mut().unwrap().env = Some(vec!["A=1".into(), "OOB=1".into()]);
    });
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert_eq!(kinds(&plan), [("update_service", "web_example_org_app")]);
    assert_eq!(plan.drift.len(), 1);
    assert_eq!(plan.drift[0].service, "app");
    assert_eq!(plan.drift[0].field, "TaskTemplate.ContainerSpec.Env");
    assert_eq!(plan.drift[0].live, r#"["A=1","OOB=1"]"#);
    match &plan.steps[0].action {
        Action::UpdateService { version, .. } => assert_eq!(*version, 42),
        other => panic!("{other:?}"),
    }
    assert!(plan.steps[0].reason.contains("out of band"));
    assert!(plan.steps[0].heals_drift);
}

#[test]
fn desired_change_updates_only_what_changed_and_is_not_drift() {
    let old = stack(compose(), "1.0.0");
    let mut c = compose();
    c["services"]["db"]["environment"] = json!(["NEW=1"]);
    let new = stack(c, "1.0.0");
    let secrets = manifest_secrets();
    let plan = plan_deployment(&intent(Some(&new), &secrets), &applied(&old));
    assert_eq!(kinds(&plan), [("update_service", "web_example_org_db")]);
    assert!(plan.drift.is_empty());
    assert!(plan.steps[0].reason.contains("spec hash"));
    assert!(!plan.steps[0].heals_drift);
    assert_eq!(
        plan.steps[0].diffs[0].field,
        "TaskTemplate.ContainerSpec.Env"
    );
}

#[test]
fn version_change_touches_every_service_label_and_dropped_services_go() {
    let old = stack(compose(), "1.0.0");
    let mut c = compose();
    c["services"].as_object_mut().unwrap().remove("db");
    let new = stack(c, "1.1.0");
    let secrets = manifest_secrets();
    let plan = plan_deployment(&intent(Some(&new), &secrets), &applied(&old));
    assert_eq!(
        kinds(&plan),
        [
            ("update_service", "web_example_org_app"),
            ("remove_service", "web_example_org_db"),
        ]
    );
}

#[test]
fn unmanaged_objects_are_never_touched() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let mut snap = applied(&spec);
    let ids: Vec<String> = snap.services.iter().filter_map(|s| s.id.clone()).collect();
    for id in ids {
        // Same names, deployed by someone else (docker stack deploy): no hearth labels.
        edit_service(&mut snap, &id, |s| {
            let spec = s.spec.as_mut().unwrap();
            spec.labels
                .as_mut()
                .unwrap()
                .retain(|k, _| !k.starts_with("hearth."));
            let tt = spec.task_template.as_mut().unwrap();
            tt.container_spec.as_mut().unwrap().env = Some(vec!["OTHER=1".into()]);
        });
    }
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert!(plan.is_empty(), "{:#?}", plan.steps);
    assert_eq!(plan.problems.len(), 2);
    assert!(plan.problems[0].contains("not managed by hearth"));
    // Nor are they removed when hearth parks or prunes its own deployment of that name.
    assert!(plan_deployment(&intent(None, &secrets), &snap).is_empty());
    assert!(
        plan_prune("p", "web", &snap)
            .steps
            .iter()
            .all(|s| s.action.kind() != "remove_service")
    );
}

#[test]
fn another_deployments_objects_are_not_changed() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let mut snap = applied(&spec);
    for s in &mut snap.services {
        s.spec
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert("hearth.deployment".into(), "other".into());
        s.spec
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert("hearth.spec-hash".into(), "stale".into());
    }
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert!(plan.is_empty());
    assert!(
        plan.problems
            .iter()
            .all(|p| p.contains("belongs to deployment \"other\""))
    );
}

#[test]
fn missing_external_network_or_unlisted_secret_blocks_service_creation() {
    let spec = stack(compose(), "1.0.0");
    let none = IndexMap::new();
    let plan = plan_deployment(&intent(Some(&spec), &none), &Snapshot::default());
    assert!(kinds(&plan).iter().all(|(k, _)| *k != "create_service"));
    assert!(
        plan.problems
            .iter()
            .any(|p| p.contains("external network proxy"))
    );
    assert!(
        plan.problems
            .iter()
            .any(|p| p.contains("list `db_password` under spec.secrets"))
    );
}

#[test]
fn parked_removes_services_only() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let plan = plan_deployment(&intent(None, &secrets), &applied(&spec));
    let k = kinds(&plan);
    assert_eq!(k.len(), 2);
    assert!(k.iter().all(|(a, _)| *a == "remove_service"));
}

#[test]
fn prune_removes_the_stack_objects_but_has_no_volume_action() {
    let spec = stack(compose(), "1.0.0");
    let plan = plan_prune("p", "web", &applied(&spec));
    let k: Vec<&str> = plan.steps.iter().map(|s| s.action.kind()).collect();
    assert_eq!(
        k,
        [
            "remove_service",
            "remove_service",
            "remove_network",
            "remove_config",
        ]
    );
    assert_eq!(plan.stack, "web_example_org");
    assert!(plan_prune("p", "nope", &applied(&spec)).is_empty());
    // Secrets stay with a prune (like volumes); only a purge removes them.
    let purge = plan_purge("p", "web", &applied(&spec));
    let k: Vec<&str> = purge.steps.iter().map(|s| s.action.kind()).collect();
    assert_eq!(
        &k[..4],
        &plan
            .steps
            .iter()
            .map(|s| s.action.kind())
            .collect::<Vec<_>>()[..]
    );
    assert_eq!(k[4..], ["remove_secret"]);
    assert!(purge.steps.iter().all(|s| s.reason == "deployment purged"));
}

/// Regression (scripts/chaos, seed 2026, step 20): a pruned stateful deployment added back started
/// on another node, on an empty volume. Its pins are recorded before its services go, and read
/// back by the index.
#[test]
fn a_prune_records_the_pins_first_and_the_index_reads_them_back() {
    let spec = stack(compose(), "1.0.0");
    let mut snap = applied(&spec);
    let app = snap.services[0]
        .spec
        .as_ref()
        .unwrap()
        .name
        .clone()
        .unwrap();
    snap.services[0]
        .spec
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert(LABEL_PIN_NODE.into(), "node-7".into());
    let plan = plan_prune("p", "web", &snap);
    let Action::CreateConfig { name, spec: record } = &plan.steps[0].action else {
        panic!("the record first: {:?}", kinds(&plan));
    };
    assert_eq!(name, "hearth-pins_p_web");
    let labels = record.labels.clone().unwrap();
    assert_eq!(
        labels.get(&format!("hearth.pin.{app}")),
        Some(&"node-7".to_string())
    );
    assert_eq!(labels.get("hearth.kind"), Some(&"pins".to_string()));
    assert!(
        !labels.contains_key("hearth.deployment"),
        "not an object of the deployment"
    );
    // The record on the swarm, the services gone: the index has the pins, a prune adds nothing,
    // and a purge removes the record.
    let mut after = Snapshot::default();
    after.configs.push(Config {
        id: Some("rec".into()),
        spec: Some(record.clone()),
        ..Default::default()
    });
    let ix = SnapIndex::new(&after);
    assert_eq!(
        ix.recorded_pins("p", "web").and_then(|p| p.get(&app)),
        Some(&"node-7".to_string())
    );
    assert!(ix.recorded_pins("p", "other").is_none());
    assert!(plan_prune("p", "web", &after).is_empty());
    let purge = plan_purge("p", "web", &after);
    assert_eq!(kinds(&purge), vec![("remove_config", "hearth-pins_p_web")]);
    // Pruned again with the record there and nothing new: no second record.
    after.services = snap.services.clone();
    assert!(
        plan_prune("p", "web", &after)
            .steps
            .iter()
            .all(|s| !matches!(
                s.action,
                Action::CreateConfig { .. } | Action::LabelConfig { .. }
            ))
    );
}

#[test]
fn old_configs_go_once_no_service_uses_them() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let mut snap = applied(&spec);
    let mut old = snap.configs[0].clone();
    old.id = Some("old-id".into());
    old.spec.as_mut().unwrap().name = Some("web_example_org_app_ini_0000000000".into());
    snap.configs.push(old);
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert_eq!(
        kinds(&plan),
        [("remove_config", "web_example_org_app_ini_0000000000")]
    );

    // Still referenced by a live service: kept.
    let app = snap
        .services
        .iter_mut()
        .find(|s| s.id.as_deref() == Some("web_example_org_app-id"));
    let cs = app
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .task_template
        .as_mut()
        .unwrap()
        .container_spec
        .as_mut()
        .unwrap();
    cs.configs.as_mut().unwrap()[0].config_name = Some("web_example_org_app_ini_0000000000".into());
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert!(kinds(&plan).iter().all(|(k, _)| *k != "remove_config"));
}

#[test]
fn orphans_are_hearth_deployments_missing_from_the_manifests() {
    let snap = applied(&stack(compose(), "1.0.0"));
    assert!(orphans(&snap, "p", &["web"].into()).is_empty());
    assert_eq!(
        orphans(&snap, "p", &Default::default()),
        ["web".to_string()].into()
    );
    // Another pool's deployments are never this pool's orphans.
    assert!(orphans(&snap, "other", &Default::default()).is_empty());
}

#[test]
fn a_same_named_deployment_of_another_pool_is_not_touched() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    // Pool "q" has a "web" too (another hearth, another test) with other stack names.
    let mut snap = applied(&stack_in_pool(compose(), "1.0.0", "q"));
    for s in &mut snap.services {
        let spec = s.spec.as_mut().unwrap();
        spec.name = Some(
            spec.name
                .clone()
                .unwrap()
                .replace("web_example_org", "other"),
        );
    }
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert!(
        kinds(&plan).iter().all(|(k, _)| *k != "remove_service"),
        "{:?}",
        kinds(&plan)
    );
    assert!(plan_prune("p", "web", &snap).is_empty());
}

#[test]
fn recipe_file_secrets_are_created_from_the_file() {
    let compose = json!({
        "services": {"app": {"image": "x", "secrets": ["token"]}},
        "secrets": {"token": {"file": "app.ini"}}
    });
    let spec = stack(compose, "1.0.0");
    assert_eq!(
        spec.recipe_file_secrets(),
        [("token".to_string(), "app.ini".to_string())]
    );
    let files = std::collections::BTreeMap::from([("token".to_string(), b"t0k".to_vec())]);
    let none = IndexMap::new();
    let mut i = intent(Some(&spec), &none);
    i.secret_files = &files;
    let plan = plan_deployment(&i, &Snapshot::default());
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    match &plan.steps[1].action {
        Action::CreateSecret { name, source, .. } => {
            assert_eq!(name, "web_example_org_token");
            assert_eq!(source, &SecretValue::Data(b"t0k".to_vec()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_leader_lease_is_never_planned_away() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let mut snap = applied(&spec);
    let labels = crate::controller::lease::lease_labels(
        "p",
        &[],
        "host:1",
        1,
        std::time::Duration::from_secs(15),
    );
    snap.configs.push(Config {
        id: Some("lease-id".into()),
        spec: Some(bollard::models::ConfigSpec {
            name: Some(crate::controller::lease::lease_name("p")),
            labels: Some(labels),
            ..Default::default()
        }),
        ..Default::default()
    });
    let touches_lease = |plan: &Plan| kinds(plan).iter().any(|(_, o)| o.contains("lease"));
    // Converged, parked, pruned: the lease stays.
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert!(plan.is_empty(), "{:?}", kinds(&plan));
    assert!(!touches_lease(&plan_deployment(
        &intent(None, &secrets),
        &snap
    )));
    let pruned = plan_prune("p", "web", &snap);
    assert!(!pruned.is_empty());
    assert!(!touches_lease(&pruned), "{:?}", kinds(&pruned));
    assert!(plan_prune("p", "", &snap).is_empty());
    assert!(orphans(&snap, "p", &["web"].into()).is_empty());
}

/// The deployment's advance-state config (`hearth.kind=advance-state`), as the executor makes it.
fn advance_state_config() -> Config {
    let extra = std::collections::BTreeMap::new();
    let owner = crate::advance::labels::Owner {
        pool: "p",
        deployment: "web",
        stack: "web_example_org",
        extra: &extra,
    };
    Config {
        id: Some("advance-id".into()),
        version: Some(ObjectVersion { index: Some(7) }),
        spec: Some(crate::advance::labels::new_spec(
            &owner,
            &crate::advance::Record::default(),
        )),
        ..Default::default()
    }
}

#[test]
fn the_advance_state_config_is_never_an_old_config_but_goes_with_a_prune() {
    let spec = stack(compose(), "1.0.0");
    let secrets = manifest_secrets();
    let mut snap = applied(&spec);
    snap.configs.push(advance_state_config());
    // Owned by the deployment, used by no service, not desired: still kept.
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert!(plan.is_empty(), "{:?}", kinds(&plan));
    // Without its kind label it would be removed (the test can fail).
    let mut unlabelled = snap.clone();
    let last = unlabelled.configs.last_mut().unwrap();
    last.spec
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .remove("hearth.kind");
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &unlabelled);
    assert_eq!(
        kinds(&plan),
        [("remove_config", "web_example_org_hearth-advance")]
    );
    // Pruning the deployment removes it with the rest.
    let plan = plan_prune("p", "web", &snap);
    assert!(
        kinds(&plan).contains(&("remove_config", "web_example_org_hearth-advance")),
        "{:?}",
        kinds(&plan)
    );
}

#[test]
fn a_recipe_named_config_with_new_content_is_a_problem_not_a_new_name() {
    let mut c = compose();
    c["configs"]["app_ini"]["name"] = json!("web_example_org_app_ini_v1");
    let spec = stack(c, "1.0.0");
    assert_eq!(spec.configs[0].name, "web_example_org_app_ini_v1");
    let secrets = manifest_secrets();
    let mut snap = applied(&spec);
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert!(plan.is_empty() && plan.problems.is_empty(), "{plan:#?}");
    // The same name, other content (the recipe changed the file but not the name).
    snap.configs[0].spec.as_mut().unwrap().data = Some(crate::render::base64(b"old"));
    let plan = plan_deployment(&intent(Some(&spec), &secrets), &snap);
    assert_eq!(plan.problems.len(), 1, "{plan:#?}");
    let p = &plan.problems[0];
    assert!(
        p.contains("web_example_org_app_ini_v1") && p.contains("only updates to Labels"),
        "{p}"
    );
    assert!(kinds(&plan).iter().all(|(k, _)| *k != "create_config"));
}

//! The list of Docker's own defaults (`hearth::plan::defaults`, docs/drift.md) proved against the
//! real swarm: services are created without the fields docker/cli's compose conversion can set
//! (hearth's render of a compose file that sets none of them, and specs with each enclosing object
//! present but empty), and every field Docker added on reading them back must be a listed default
//! with the listed value; every listed daemon default must show up. The CLI-written defaults are
//! proved the same way through `docker service update`, whose result must not be drift.

mod common;

use std::collections::BTreeSet;

use bollard::models::ServiceSpec;
use common::pool::TestPool;
use common::recipes::git;
use common::swarm::FIXTURE_IMAGE;
use common::{TestEnv, docker, with_swarm};
use hearth::plan::defaults::{DEFAULTS, Source, at};
use hearth::plan::diff;
use serde_json::{Value, json};

/// A recipe that sets none of the optional service fields (`app`), and a service that only
/// references a secret and a config (`refs`: the IDs hearth resolves at apply).
const RECIPE: &str = "version: \"3.8\"\nservices:\n  app:\n    image: hearth-fixture:test\n  \
                      refs:\n    image: hearth-fixture:test\n    secrets: [tok]\n    \
                      configs: [conf]\nsecrets:\n  tok:\n    file: ./tok.txt\nconfigs:\n  \
                      conf:\n    file: ./conf.txt\n";

fn add_recipe(pool: &TestPool) {
    let repo = pool.repos.path().join("defaults");
    std::fs::create_dir_all(&repo).expect("recipe dir");
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("compose.yml"), RECIPE).expect("write compose");
    std::fs::write(repo.join("tok.txt"), "t0ken").expect("write secret");
    std::fs::write(repo.join("conf.txt"), "conf").expect("write config");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "1.0.0+1"]);
    git(&repo, &["tag", "1.0.0+1"]);
}

/// Leaves of `live` that `sent` does not have, as (dotted path with `[]` for array elements,
/// value). `null` leaves and empty objects or arrays add nothing.
fn added(path: &str, sent: Option<&Value>, live: &Value, out: &mut Vec<(String, Value)>) {
    let child = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match live {
        Value::Null => {}
        Value::Object(l) => {
            for (k, v) in l {
                let s = sent.and_then(Value::as_object).and_then(|s| {
                    s.get(k).or_else(|| {
                        s.iter()
                            .find(|(x, _)| x.eq_ignore_ascii_case(k))
                            .map(|e| e.1)
                    })
                });
                added(&child(k), s, v, out);
            }
        }
        Value::Array(l) => {
            for (i, v) in l.iter().enumerate() {
                let s = sent.and_then(|s| s.get(i));
                added(&format!("{path}[]"), s, v, out);
            }
        }
        _ if sent.is_none() => out.push((path.to_string(), live.clone())),
        _ => {}
    }
}

/// Checks every added field against the list; returns the paths seen.
fn check(what: &str, sent: &Value, live: &Value, allowed: &[Source]) -> BTreeSet<&'static str> {
    let mut out = Vec::new();
    added("", Some(sent), live, &mut out);
    let mut seen = BTreeSet::new();
    for (path, value) in out {
        let Some(d) = at(&path) else {
            panic!("{what}: Docker added {path} = {value}, which plan::defaults does not list");
        };
        assert!(
            allowed.contains(&d.source),
            "{what}: {path} = {value} comes from {:?}, expected one of {allowed:?}",
            d.source
        );
        assert!(
            d.value.matches(&value),
            "{what}: Docker added {path} = {value}, plan::defaults says {}",
            d.value.to_json()
        );
        seen.insert(d.path);
    }
    seen
}

/// Service specs sent straight to Docker: each object docker/cli's conversion can fill, present
/// but without the fields Docker defaults.
fn direct_specs(env: &TestEnv) -> Vec<Value> {
    let base = |extra: Value| {
        let mut v = json!({
            "Name": env.unique("dd"),
            "Labels": {"hearth.test": env.test},
            "TaskTemplate": {"ContainerSpec": {"Image": FIXTURE_IMAGE}},
        });
        merge(&mut v, &extra);
        v
    };
    vec![
        // Nothing but the image: no Mode, no EndpointSpec.
        base(json!({})),
        // Empty restart policy, update and rollback configs with the parallelism docker/cli and
        // hearth always send, a port with only its target.
        base(json!({
            "TaskTemplate": {"RestartPolicy": {}},
            "UpdateConfig": {"Parallelism": 1},
            "RollbackConfig": {"Parallelism": 1},
            "EndpointSpec": {"Ports": [{"TargetPort": 8080}]},
        })),
        // A replicated job without its counts. Its task never gets a node (dockerd 20.10 leaves a
        // job's containers behind when the service is removed).
        base(json!({"Mode": {"ReplicatedJob": {}},
                    "TaskTemplate": {"Placement": {"Constraints": ["node.labels.hearth-never==1"]}}})),
        // Global mode and the empty container objects the conversion can write.
        base(json!({
            "Mode": {"Global": {}},
            "TaskTemplate": {
                "ContainerSpec": {"HealthCheck": {}, "DNSConfig": {}, "Privileges": {},
                                  "Mounts": [{"Type": "tmpfs", "Target": "/x"}]},
                "Placement": {"Constraints": [], "Preferences": []},
                "Resources": {"Limits": {}, "Reservations": {}},
                "LogDriver": {"Name": "json-file"},
            },
            "EndpointSpec": {},
        })),
    ]
}

fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

#[tokio::test]
async fn docker_adds_exactly_the_listed_defaults() {
    with_swarm("drift-defaults", |env| async move {
        let mut seen = BTreeSet::new();

        // hearth's render of a compose file that sets none of the optional fields.
        let pool = TestPool::new(&env, false);
        add_recipe(&pool);
        pool.deployment("d", "  recipe: defaults\n  version: 1.0.0+1\n");
        pool.apply(&env).await?;
        let (_, desired) = pool.render();
        let stack = &desired.get("d").expect("rendered").stack_spec;
        let snap = env.client.snapshot().await?;
        for s in &stack.services {
            let live = snap
                .services
                .iter()
                .find(|l| l.spec.as_ref().and_then(|sp| sp.name.as_ref()) == Some(&s.name))
                .expect("created");
            let live = snap.live_spec(live);
            let sent = s.spec_value();
            seen.extend(check(
                &s.name,
                &sent,
                &live,
                &[Source::Daemon, Source::Resolved],
            ));
            let d = diff(&sent, &live);
            assert!(d.is_empty(), "{}: {d:#?}", s.name);
        }

        // Specs sent straight to Docker.
        for sent in direct_specs(&env) {
            let spec: ServiceSpec = serde_json::from_value(sent.clone())?;
            let id = env.client.create_service(spec).await?;
            let snap = env.client.snapshot().await?;
            let live = snap.raw_spec(&id).expect("created service in the snapshot");
            seen.extend(check(
                &sent["Name"].to_string(),
                &sent,
                &live,
                &[Source::Daemon],
            ));
            let d = diff(&sent, &live);
            assert!(d.is_empty(), "{}: {d:#?}", sent["Name"]);
        }
        for d in DEFAULTS.iter().filter(|d| d.source != Source::Cli) {
            assert!(
                seen.contains(d.path),
                "plan::defaults lists {} = {} ({:?}), but Docker never added it",
                d.path,
                d.value.to_json(),
                d.source
            );
        }

        // What the docker CLI writes when it creates the restart policy, update and rollback
        // configs: flags set only to Swarm's defaults, so the result is no drift.
        let app = stack.services.iter().find(|s| s.key == "app").expect("app");
        docker(&[
            "service",
            "update",
            "--detach",
            "--quiet",
            "--restart-condition",
            "any",
            "--update-order",
            "stop-first",
            "--rollback-order",
            "stop-first",
            &app.name,
        ]);
        let snap = env.client.snapshot().await?;
        let live = snap
            .services
            .iter()
            .find(|l| l.spec.as_ref().and_then(|sp| sp.name.as_ref()) == Some(&app.name))
            .expect("app");
        let live = snap.live_spec(live);
        let sent = app.spec_value();
        let cli = check(
            "docker service update",
            &sent,
            &live,
            &[Source::Daemon, Source::Cli],
        );
        for d in DEFAULTS.iter().filter(|d| d.source == Source::Cli) {
            assert!(
                cli.contains(d.path),
                "plan::defaults lists {} = {} as written by the CLI, but it did not write it",
                d.path,
                d.value.to_json()
            );
        }
        let d = diff(&sent, &live);
        assert!(d.is_empty(), "CLI-written defaults are drift: {d:#?}");
        let plans = pool.plan(&env).await;
        assert!(
            plans.iter().all(|p| p.drift.is_empty() && p.is_empty()),
            "{plans:#?}"
        );
        Ok(())
    })
    .await;
}

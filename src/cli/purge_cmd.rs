//! `hearth purge NAME`: removes everything hearth made for a deployment that is no longer in the
//! manifests, its secrets included (prune and park keep them), and prints the volumes left for the
//! operator (hearth never removes a volume).

use std::collections::HashMap;
use std::process::ExitCode;

use crate::manifest;
use crate::plan::plan_purge;
use crate::render::{LABEL_DEPLOYMENT, LABEL_NAMESPACE, LABEL_POOL};
use crate::swarm::apply::{Ids, StepEvent, apply_plan};

use super::Source;
use super::common::{connect, runtime};

pub fn run(source: &Source, host: Option<&str>, name: &str) -> ExitCode {
    if source.paths.is_empty() {
        eprintln!("no manifests given: -f PATH... (they name the pool)");
        return ExitCode::from(1);
    }
    let loaded = manifest::load_paths(&source.paths);
    let Some(pool) = loaded.pool.as_ref() else {
        for d in &loaded.diagnostics {
            eprintln!("{d}");
        }
        eprintln!("no Pool manifest: cannot tell which pool's {name:?} to purge");
        return ExitCode::from(1);
    };
    if loaded.deployment(name).is_some() {
        eprintln!(
            "{name} is still in the manifests: remove its Deployment first (hearth purges only \
             what no manifest declares)"
        );
        return ExitCode::from(1);
    }
    let pool_name = pool.metadata.name.clone();
    runtime().block_on(async {
        let client = match connect(host).await {
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
        // The stack, from any object of the deployment (its services may be gone already).
        let mine = |l: Option<&HashMap<String, String>>| {
            l.filter(|l| {
                l.get(LABEL_POOL) == Some(&pool_name)
                    && l.get(LABEL_DEPLOYMENT).map(String::as_str) == Some(name)
            })
            .and_then(|l| l.get(LABEL_NAMESPACE).cloned())
        };
        let stack = snap
            .secrets
            .iter()
            .find_map(|s| mine(s.spec.as_ref().and_then(|s| s.labels.as_ref())))
            .or_else(|| snap.networks.iter().find_map(|n| mine(n.labels.as_ref())))
            .or_else(|| {
                snap.configs
                    .iter()
                    .find_map(|c| mine(c.spec.as_ref().and_then(|s| s.labels.as_ref())))
            });
        let mut plan = plan_purge(&pool_name, name, &snap);
        if plan.stack.is_empty() {
            plan.stack = stack.clone().unwrap_or_default();
        }
        let stack = (!plan.stack.is_empty()).then(|| plan.stack.clone());
        let mut failed = false;
        if plan.is_empty() {
            println!("{name}: nothing of it left on the swarm");
        } else {
            let progress = |e: StepEvent<'_>| match e {
                StepEvent::Started(_) => {}
                StepEvent::Done(s) => println!("{name}: {} {}", s.action.kind(), s.action.object()),
                StepEvent::Failed(s, m) => eprintln!(
                    "{name}: {} {} failed: {}",
                    s.action.kind(),
                    s.action.object(),
                    crate::redact::text(&m)
                ),
            };
            let mut ids = Ids::from_snapshot(&snap);
            failed = apply_plan(&client, &plan, &mut ids, &progress)
                .await
                .is_err();
        }
        if let Some(stack) = stack {
            let filter = HashMap::from([(
                "label".to_string(),
                vec![format!("{LABEL_NAMESPACE}={stack}")],
            )]);
            match client.list_volumes(Some(filter)).await {
                Ok(v) if v.is_empty() => println!("{name}: no volumes of {stack} on this node"),
                Ok(v) => {
                    let mut names: Vec<String> = v.into_iter().map(|v| v.name).collect();
                    names.sort();
                    println!(
                        "{name}: volumes left on this node (hearth never removes data; \
                         `docker volume rm` them once you no longer need it):"
                    );
                    for n in names {
                        println!("  {n}");
                    }
                }
                Err(e) => {
                    eprintln!("cannot list volumes: {e}");
                    failed = true;
                }
            }
        }
        if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    })
}

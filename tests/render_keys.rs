//! `hearth render -o json` writes Docker's own key names: for every service of kitchen-sink (every
//! compose key hearth supports) deployed by hearth, each key path of the rendered spec appears,
//! spelled the same, in `docker service inspect` of the live service (docs/compose-support.md).

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::pool::TestPool;
use common::{docker, with_swarm};
use serde_json::Value;

/// Key paths of `v` (`TaskTemplate.ContainerSpec.Healthcheck.Test`), arrays as `[*]`; the keys of
/// user maps (labels, options, sysctls) are data, not field names, and are not descended into.
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(path.clone());
                let user_map = matches!(
                    k.as_str(),
                    "Labels" | "Options" | "DriverOpts" | "Sysctls" | "Annotations"
                );
                if !user_map {
                    key_paths(v, &path, out);
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                key_paths(v, &format!("{prefix}[*]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn rendered_json_uses_dockers_key_names() {
    with_swarm("render-keys", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment(
            "ks",
            "  recipe: kitchen-sink\n  version: \"1.1.0+2\"\n  role: plain\n  \
             secrets: {db_password: {generate: {length: 32}}}\n",
        );
        pool.apply(&env).await?;
        let dir = pool.path().to_str().unwrap().to_string();
        for output in ["json", "yaml"] {
            let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
                .args(["render", "-f", &dir, "--deployment", "ks", "-o", output])
                .output()?;
            anyhow::ensure!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let rendered: Value = if output == "json" {
                serde_json::from_slice(&out.stdout)?
            } else {
                serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout))
                    .map_err(|e| anyhow::anyhow!("yaml: {e}"))?
            };
            let services = rendered["stack_spec"]["services"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            anyhow::ensure!(services.len() >= 3, "{rendered}");
            let mut missing = Vec::new();
            for s in &services {
                let name = s["name"].as_str().unwrap_or_default();
                let spec: Value = match &s["spec"] {
                    Value::String(text) => serde_json::from_str(text)?,
                    v => v.clone(),
                };
                let live: Value = serde_json::from_str(&docker(&["service", "inspect", name]))?;
                let (mut want, mut have) = (BTreeSet::new(), BTreeSet::new());
                key_paths(&spec, "", &mut want);
                key_paths(&live[0]["Spec"], "", &mut have);
                missing.extend(
                    want.difference(&have)
                        .map(|p| format!("{output} {name}: {p}")),
                );
            }
            anyhow::ensure!(
                missing.is_empty(),
                "rendered keys docker service inspect does not have (or spells otherwise):\n  {}",
                missing.join("\n  ")
            );
        }
        Ok(())
    })
    .await;
}

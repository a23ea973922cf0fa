//! Applying a [`Plan`] to the swarm, step by step in plan order, through the counted client.
//!
//! Secret and config references in service specs are filled in with the IDs Swarm knows (from the
//! snapshot, or from objects created earlier in the same plan). Service updates carry the version
//! index they were read at; when another writer got there first, the service is re-read and the
//! update retried (bounded, with backoff). Secret values are generated here from the OS random
//! source and never logged.

use std::collections::HashMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use bollard::models::{SecretSpec, ServiceSpec};

use super::{Client, SwarmError};
use crate::observed::Snapshot;
use crate::plan::{Action, Plan, SecretValue, Step};

/// What happened to one step.
#[derive(Debug, Clone, PartialEq)]
pub enum StepEvent<'a> {
    Started(&'a Step),
    Done(&'a Step),
    Failed(&'a Step, String),
}

/// A step that failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("{deployment}: {action} {object}: {message}")]
pub struct ApplyError {
    pub deployment: String,
    pub action: &'static str,
    pub object: String,
    pub message: String,
    /// The step failed because an object it needs is gone or going (a network or secret being
    /// removed while it was planned as present): planning again on a fresh snapshot may fix it.
    pub vanished: bool,
}

/// Name -> ID of the secrets and configs Swarm has.
#[derive(Debug, Default, Clone)]
pub struct Ids {
    secrets: HashMap<String, String>,
    configs: HashMap<String, String>,
}

impl Ids {
    pub fn from_snapshot(snap: &Snapshot) -> Ids {
        let mut ids = Ids::default();
        for s in &snap.secrets {
            if let (Some(id), Some(name)) = (&s.id, s.spec.as_ref().and_then(|s| s.name.clone())) {
                ids.secrets.insert(name, id.clone());
            }
        }
        for c in &snap.configs {
            if let (Some(id), Some(name)) = (&c.id, c.spec.as_ref().and_then(|s| s.name.clone())) {
                ids.configs.insert(name, id.clone());
            }
        }
        ids
    }
}

/// Applies `plan`'s steps in order; stops at the first failure. Returns the number of steps done.
pub async fn apply_plan(
    client: &Client,
    plan: &Plan,
    ids: &mut Ids,
    progress: &(dyn Fn(StepEvent<'_>) + Sync),
) -> Result<usize, ApplyError> {
    for step in &plan.steps {
        progress(StepEvent::Started(step));
        match apply_step(client, step, ids).await {
            Ok(()) => progress(StepEvent::Done(step)),
            Err(message) => {
                progress(StepEvent::Failed(step, message.clone()));
                return Err(ApplyError {
                    deployment: plan.deployment.clone(),
                    action: step.action.kind(),
                    object: step.action.object().to_string(),
                    vanished: vanished(&step.action, &message),
                    message,
                });
            }
        }
    }
    Ok(plan.steps.len())
}

/// Whether a failed step's error says an object it refers to does not exist (Docker answers a
/// service create naming a network that is being removed with `network X not found`, HTTP 500).
pub fn vanished(action: &Action, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    matches!(
        action,
        Action::CreateService { .. } | Action::UpdateService { .. }
    ) && (m.contains("not found") || m.contains("does not exist"))
}

/// How often and how long [`apply_replanning`] plans again: 8 tries over up to about 25 s, the
/// time Swarm takes to finish removing a network once the tasks on it stopped.
fn replan_policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(8)
        .with_jitter()
}

/// [`apply_plan`], and when a step fails because an object it needs vanished under it
/// ([`ApplyError::vanished`]), reads the swarm again, plans again with `replan` and applies that
/// plan; bounded by [`replan_policy`]. `replan` returns `None` when there is nothing left to do.
/// `retrying` is told each failure that leads to another try. Returns the steps done by the last
/// try (at least 1 after a failed try: something was done).
pub async fn apply_replanning(
    client: &Client,
    plan: &Plan,
    ids: &mut Ids,
    progress: &(dyn Fn(StepEvent<'_>) + Sync),
    replan: &(dyn Fn(&Snapshot) -> Option<Plan> + Sync),
    retrying: &(dyn Fn(&ApplyError, Duration) + Sync),
) -> Result<usize, ApplyError> {
    let mut retried = 0;
    let mut current = plan.clone();
    let mut delays = replan_policy().build();
    loop {
        match apply_plan(client, &current, ids, progress).await {
            Ok(n) => return Ok(n.max(retried)),
            Err(e) if e.vanished => {
                let Some(delay) = delays.next() else {
                    return Err(e);
                };
                retried = 1;
                retrying(&e, delay);
                tokio::time::sleep(delay).await;
                let snap = client.snapshot().await.map_err(|err| ApplyError {
                    message: format!("{}; reading the swarm again: {err}", e.message),
                    ..e
                })?;
                *ids = Ids::from_snapshot(&snap);
                match replan(&snap) {
                    Some(p) if !p.is_empty() => current = p,
                    _ => return Ok(1),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn retry_policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .with_max_times(4)
        .with_jitter()
}

async fn apply_step(client: &Client, step: &Step, ids: &mut Ids) -> Result<(), String> {
    // Already gone, or going: Docker answers the removal of a network it is still removing
    // with `network X not found` and HTTP 500.
    let gone_ok = |r: Result<(), SwarmError>| match r {
        Err(e) if !e.is_not_found() && !e.to_string().contains(" not found") => Err(e.to_string()),
        _ => Ok(()),
    };
    match &step.action {
        Action::CreateNetwork { spec, .. } => match client.create_network(spec.clone()).await {
            Err(e) if e.is_conflict() => Ok(()),
            r => r.map(|_| ()).map_err(|e| e.to_string()),
        },
        Action::CreateSecret {
            name,
            labels,
            source,
            ..
        } => {
            let value = secret_value(source)?;
            crate::redact::remember(&value);
            let spec = SecretSpec {
                name: Some(name.clone()),
                labels: Some(labels.clone().into_iter().collect()),
                data: Some(crate::render::base64(&value)),
                ..Default::default()
            };
            let id = client
                .create_secret(spec)
                .await
                .map_err(|e| e.to_string())?;
            ids.secrets.insert(name.clone(), id);
            Ok(())
        }
        Action::CreateConfig { name, spec } => {
            let id = client
                .create_config(spec.clone())
                .await
                .map_err(|e| e.to_string())?;
            ids.configs.insert(name.clone(), id);
            Ok(())
        }
        Action::CreateVolume { spec, .. } => match client.create_volume(spec.clone()).await {
            Err(e) if e.is_conflict() => Ok(()),
            r => r.map_err(|e| e.to_string()),
        },
        Action::CreateService { spec, .. } => {
            let spec = with_ids(spec, ids)?;
            client
                .create_service(spec)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Action::UpdateService {
            id, version, spec, ..
        } => {
            let spec = with_ids(spec, ids)?;
            let first = std::sync::atomic::AtomicBool::new(true);
            let attempt = || async {
                let v = if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    *version
                } else {
                    // Someone else wrote since we read: re-read the version index.
                    let live = client.inspect_service(id).await?;
                    live.version.and_then(|v| v.index).unwrap_or(0)
                };
                client.update_service(id, v, spec.clone()).await
            };
            attempt
                .retry(retry_policy())
                .when(|e: &SwarmError| e.is_conflict())
                .notify(|e, d| tracing::info!("service update conflict ({e}); retrying in {d:?}"))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Action::RemoveService { id, .. } => gone_ok(client.remove_service(id).await),
        Action::RemoveConfig { id, .. } => gone_ok(client.remove_config(id).await),
        Action::RemoveNetwork { id, .. } => gone_ok(client.remove_network(id).await),
        Action::RemoveSecret { id, .. } => gone_ok(client.remove_secret(id).await),
        Action::LabelSecret {
            name,
            id,
            version,
            labels,
        } => client
            .update_secret_labels(id, *version, name, labels.clone().into_iter().collect())
            .await
            .map_err(|e| e.to_string()),
        Action::LabelConfig {
            name,
            id,
            version,
            labels,
        } => client
            .update_config_labels(id, *version, name, labels.clone().into_iter().collect())
            .await
            .map_err(|e| e.to_string()),
    }
}

/// The service spec with `SecretID`/`ConfigID` filled in by name.
fn with_ids(spec: &ServiceSpec, ids: &Ids) -> Result<ServiceSpec, String> {
    let mut spec = spec.clone();
    let cs = spec
        .task_template
        .as_mut()
        .and_then(|t| t.container_spec.as_mut());
    if let Some(cs) = cs {
        for r in cs.secrets.iter_mut().flatten() {
            let name = r.secret_name.clone().unwrap_or_default();
            r.secret_id = Some(
                ids.secrets
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| format!("secret {name} does not exist"))?,
            );
        }
        for r in cs.configs.iter_mut().flatten() {
            let name = r.config_name.clone().unwrap_or_default();
            r.config_id = Some(
                ids.configs
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| format!("config {name} does not exist"))?,
            );
        }
    }
    Ok(spec)
}

/// A secret's bytes: generated uniformly over the alphabet from the OS random source, or read.
fn secret_value(source: &SecretValue) -> Result<Vec<u8>, String> {
    match source {
        SecretValue::Generate { length, alphabet } => generate(*length, alphabet),
        SecretValue::File(path) => std::fs::read(path)
            .map_err(|e| format!("cannot read secret file {}: {e}", path.display())),
        SecretValue::Data(data) => Ok(data.clone()),
        SecretValue::None => Err("no source for this secret".into()),
    }
}

/// `length` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
fn generate(length: usize, alphabet: &[u8]) -> Result<Vec<u8>, String> {
    if alphabet.is_empty() || alphabet.len() > 256 {
        return Err("secret alphabet must have 1 to 256 characters".into());
    }
    let limit = 256 - (256 % alphabet.len());
    let mut out = Vec::with_capacity(length);
    let mut buf = [0u8; 64];
    while out.len() < length {
        getrandom::fill(&mut buf).map_err(|e| format!("OS random source: {e}"))?;
        for &b in &buf {
            if (b as usize) < limit && out.len() < length {
                out.push(alphabet[b as usize % alphabet.len()]);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_the_length_and_alphabet_and_differ() {
        let a = generate(32, b"abc").unwrap();
        let b = generate(32, b"abc").unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.iter().all(|c| b"abc".contains(c)));
        assert_ne!(
            a, b,
            "two 32-char secrets from 3 letters collide with p=3^-32"
        );
        assert!(generate(4, b"").is_err());
    }

    #[test]
    fn only_a_missing_object_under_a_service_write_is_worth_planning_again() {
        let create = Action::CreateService {
            name: "s".into(),
            spec: ServiceSpec::default(),
        };
        let secret = Action::CreateSecret {
            name: "x".into(),
            key: "x".into(),
            labels: Default::default(),
            source: SecretValue::None,
        };
        let m = "docker service_create: network s_internal not found (HTTP 500)";
        assert!(vanished(&create, m));
        assert!(vanished(&create, "secret s_pw does not exist"));
        assert!(!vanished(&create, "no such image (HTTP 400)... rejected"));
        assert!(!vanished(&secret, "cannot read secret file /x: not found"));
    }

    #[test]
    fn every_alphabet_character_can_appear() {
        let s = generate(4000, b"0123456789abcdef").unwrap();
        for c in b"0123456789abcdef" {
            assert!(s.contains(c));
        }
    }

    #[test]
    fn refs_get_ids_by_name_and_a_missing_one_is_an_error() {
        use bollard::models::{TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecSecrets};
        let spec = ServiceSpec {
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    secrets: Some(vec![TaskSpecContainerSpecSecrets {
                        secret_name: Some("s1".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut ids = Ids::default();
        assert!(with_ids(&spec, &ids).unwrap_err().contains("secret s1"));
        ids.secrets.insert("s1".into(), "id1".into());
        let got = with_ids(&spec, &ids).unwrap();
        let r = &got
            .task_template
            .unwrap()
            .container_spec
            .unwrap()
            .secrets
            .unwrap()[0];
        assert_eq!(r.secret_id.as_deref(), Some("id1"));
    }
}

//! Pure: the backupbot labels of a live stack's services -> what a snapshot takes. Supported
//! (Swarm service labels, i.e. compose `deploy.labels`): `backupbot.backup=true` marks a service;
//! `backupbot.backup.pre-hook` / `post-hook` and `backupbot.restore.pre-hook` / `post-hook` are
//! `sh -c` commands run in the service's running container; `backupbot.backup.volumes.<vol>=false`
//! skips a volume; `backupbot.backup.volumes.<vol>.path=<rel>[,<rel>]` takes only those paths.
//! Volumes are the service's mounts of type `volume`; `<vol>` is the compose name (the Docker
//! volume without its `<stack>_` prefix).

use std::collections::BTreeMap;

use bollard::models::{MountType, Service};

use super::BackupError;

pub const LABEL_BACKUP: &str = "backupbot.backup";
pub const LABEL_BACKUP_PRE: &str = "backupbot.backup.pre-hook";
pub const LABEL_BACKUP_POST: &str = "backupbot.backup.post-hook";
pub const LABEL_RESTORE_PRE: &str = "backupbot.restore.pre-hook";
pub const LABEL_RESTORE_POST: &str = "backupbot.restore.post-hook";
const VOLUMES_PREFIX: &str = "backupbot.backup.volumes.";

/// The parts of a live Swarm service a snapshot plan needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveService {
    /// The Swarm service id.
    pub id: String,
    /// The Swarm service name, `<stack>_<service>`.
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// `(source, target)` of each mount of type `volume`.
    pub volumes: Vec<(String, String)>,
}

impl LiveService {
    /// From a service as Docker lists it.
    pub fn from_service(s: &Service) -> LiveService {
        let spec = s.spec.as_ref();
        let cs = spec
            .and_then(|s| s.task_template.as_ref())
            .and_then(|t| t.container_spec.as_ref());
        let volumes = cs
            .and_then(|c| c.mounts.as_ref())
            .into_iter()
            .flatten()
            .filter(|m| m.typ == Some(MountType::VOLUME))
            .filter_map(|m| Some((m.source.clone()?, m.target.clone()?)))
            .filter(|(s, _)| !s.is_empty())
            .collect();
        LiveService {
            id: s.id.clone().unwrap_or_default(),
            name: spec.and_then(|s| s.name.clone()).unwrap_or_default(),
            image: cs.and_then(|c| c.image.clone()).unwrap_or_default(),
            labels: spec
                .and_then(|s| s.labels.clone())
                .unwrap_or_default()
                .into_iter()
                .collect(),
            volumes,
        }
    }
}

/// The hooks of a service (`sh -c` commands); `None` when absent or empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hooks {
    pub backup_pre: Option<String>,
    pub backup_post: Option<String>,
    pub restore_pre: Option<String>,
    pub restore_post: Option<String>,
}

/// One volume to take.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumePlan {
    /// The compose name, e.g. `postgres`.
    pub volume: String,
    /// The Docker volume, e.g. `<stack>_postgres`.
    pub docker_volume: String,
    /// Where the service mounts it.
    pub target: String,
    /// Relative paths to take; empty: the whole volume.
    pub paths: Vec<String>,
}

/// What a snapshot does for one labelled service.
#[derive(Clone, Debug, PartialEq)]
pub struct ServicePlan {
    /// The compose name (without `<stack>_`).
    pub service: String,
    /// The Swarm service id and name.
    pub swarm_id: String,
    pub swarm_name: String,
    pub image: String,
    pub hooks: Hooks,
    pub volumes: Vec<VolumePlan>,
}

/// A service's plan, `None` when it is not labelled `backupbot.backup=true`.
pub fn plan_service(stack: &str, s: &LiveService) -> Result<Option<ServicePlan>, BackupError> {
    if !s.labels.get(LABEL_BACKUP).is_some_and(|v| is_true(v)) {
        return Ok(None);
    }
    let service = s
        .name
        .strip_prefix(&format!("{stack}_"))
        .unwrap_or(&s.name)
        .to_string();
    let hook = |k: &str| {
        s.labels
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let hooks = Hooks {
        backup_pre: hook(LABEL_BACKUP_PRE),
        backup_post: hook(LABEL_BACKUP_POST),
        restore_pre: hook(LABEL_RESTORE_PRE),
        restore_post: hook(LABEL_RESTORE_POST),
    };
    let mut volumes: Vec<VolumePlan> = Vec::new();
    for (source, target) in &s.volumes {
        let volume = source
            .strip_prefix(&format!("{stack}_"))
            .unwrap_or(source)
            .to_string();
        let key = format!("{VOLUMES_PREFIX}{volume}");
        if s.labels.get(&key).is_some_and(|v| is_false(v)) {
            continue;
        }
        if volumes.iter().any(|v| v.docker_volume == *source) {
            continue;
        }
        let path_key = format!("{key}.path");
        let paths = match s.labels.get(&path_key) {
            Some(v) => parse_paths(v).map_err(|message| BackupError::Label {
                service: service.clone(),
                label: path_key.clone(),
                message,
            })?,
            None => Vec::new(),
        };
        volumes.push(VolumePlan {
            volume,
            docker_volume: source.clone(),
            target: target.clone(),
            paths,
        });
    }
    volumes.sort_by(|a, b| a.volume.cmp(&b.volume));
    Ok(Some(ServicePlan {
        service,
        swarm_id: s.id.clone(),
        swarm_name: s.name.clone(),
        image: s.image.clone(),
        hooks,
        volumes,
    }))
}

/// The plans of every labelled service of `stack`, by service name; `NothingToBackUp` when no
/// service is labelled or the labelled ones have no volume left to take.
pub fn plan_stack(stack: &str, services: &[LiveService]) -> Result<Vec<ServicePlan>, BackupError> {
    let mut plans = Vec::new();
    for s in services {
        if let Some(p) = plan_service(stack, s)? {
            plans.push(p);
        }
    }
    plans.sort_by(|a, b| a.service.cmp(&b.service));
    if plans.iter().all(|p| p.volumes.is_empty()) {
        return Err(BackupError::NothingToBackUp {
            stack: stack.to_string(),
        });
    }
    Ok(plans)
}

/// backupbot compares with `true`; Go's `ParseBool` spellings are accepted too.
fn is_true(v: &str) -> bool {
    matches!(v.trim(), "true" | "True" | "TRUE" | "1" | "t" | "T")
}

fn is_false(v: &str) -> bool {
    matches!(v.trim(), "false" | "False" | "FALSE" | "0" | "f" | "F")
}

/// `a,b/c` -> `["a", "b/c"]`: relative, normalised (`./` and `//` dropped), never leaving the
/// volume (`..`), no duplicates, at least one.
pub fn parse_paths(value: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for raw in value.split(',') {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        if raw.starts_with('/') {
            return Err(format!("path {raw:?} must be relative to the volume"));
        }
        let parts: Vec<&str> = raw
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.contains(&"..") {
            return Err(format!("path {raw:?} must not contain `..`"));
        }
        if parts.is_empty() {
            return Err(format!(
                "path {raw:?} names the volume root; drop the label instead"
            ));
        }
        let p = parts.join("/");
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err("no path given".into());
    }
    Ok(out)
}

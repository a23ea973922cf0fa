//! Pure: the backupbot labels of a live stack's services -> what a snapshot takes. Supported
//! (Swarm service labels, i.e. compose `deploy.labels`): `backupbot.backup=true` marks a service;
//! `backupbot.backup.pre-hook` / `post-hook` and `backupbot.restore.pre-hook` / `post-hook` are
//! `sh -c` commands run in the service's running container; `backupbot.backup.volumes.<vol>=false`
//! skips a volume; `backupbot.backup.volumes.<vol>.path=<rel>[,<rel>]` takes only those paths.
//! Volumes are the service's mounts of type `volume`; `<vol>` is the compose name (the Docker
//! volume without its `<stack>_` prefix).

use std::collections::BTreeMap;

use crate::observed::live::Service;
use bollard::models::MountType;

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

/// The plans of every labelled service of `stack`, by service name; a volume several of them mount
/// is taken with the first. `NothingToBackUp` when no service is labelled or the labelled ones
/// have no volume left to take.
pub fn plan_stack(stack: &str, services: &[LiveService]) -> Result<Vec<ServicePlan>, BackupError> {
    let mut plans = Vec::new();
    for s in services {
        if let Some(p) = plan_service(stack, s)? {
            plans.push(p);
        }
    }
    plans.sort_by(|a, b| a.service.cmp(&b.service));
    // A volume mounted by several labelled services is taken once, with the first one.
    let mut seen = std::collections::BTreeSet::new();
    for p in &mut plans {
        p.volumes.retain(|v| seen.insert(v.docker_volume.clone()));
    }
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
pub(crate) fn parse_paths(value: &str) -> Result<Vec<String>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(labels: &[(&str, &str)], volumes: &[(&str, &str)]) -> LiveService {
        LiveService {
            id: "id1".into(),
            name: "st_db".into(),
            image: "img:1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            volumes: volumes
                .iter()
                .map(|(s, t)| (s.to_string(), t.to_string()))
                .collect(),
        }
    }

    #[test]
    fn unlabelled_or_false_services_are_not_taken() {
        assert_eq!(
            plan_service("st", &svc(&[], &[("st_a", "/a")])).unwrap(),
            None
        );
        let off = svc(&[("backupbot.backup", "false")], &[("st_a", "/a")]);
        assert_eq!(plan_service("st", &off).unwrap(), None);
    }

    #[test]
    fn labels_give_hooks_volumes_skips_and_paths() {
        let s = svc(
            &[
                ("backupbot.backup", "true"),
                ("backupbot.backup.pre-hook", " /pg_backup.sh backup "),
                ("backupbot.backup.post-hook", ""),
                ("backupbot.restore.post-hook", "/pg_backup.sh restore"),
                ("backupbot.backup.volumes.cache", "false"),
                (
                    "backupbot.backup.volumes.postgres.path",
                    "backup.sql, ./dumps//x ,backup.sql",
                ),
            ],
            &[
                ("st_postgres", "/var/lib/postgresql/data"),
                ("st_cache", "/cache"),
                ("shared_external", "/ext"),
            ],
        );
        let p = plan_service("st", &s).unwrap().unwrap();
        assert_eq!(p.service, "db");
        assert_eq!(
            (p.swarm_id.as_str(), p.swarm_name.as_str()),
            ("id1", "st_db")
        );
        assert_eq!(
            p.hooks,
            Hooks {
                backup_pre: Some("/pg_backup.sh backup".into()),
                backup_post: None,
                restore_pre: None,
                restore_post: Some("/pg_backup.sh restore".into()),
            }
        );
        assert_eq!(
            p.volumes,
            vec![
                VolumePlan {
                    volume: "postgres".into(),
                    docker_volume: "st_postgres".into(),
                    target: "/var/lib/postgresql/data".into(),
                    paths: vec!["backup.sql".into(), "dumps/x".into()],
                },
                VolumePlan {
                    volume: "shared_external".into(),
                    docker_volume: "shared_external".into(),
                    target: "/ext".into(),
                    paths: vec![],
                },
            ]
        );
    }

    #[test]
    fn a_path_leaving_the_volume_is_an_error_naming_the_label() {
        let s = svc(
            &[
                ("backupbot.backup", "true"),
                ("backupbot.backup.volumes.a.path", "../etc/passwd"),
            ],
            &[("st_a", "/a")],
        );
        match plan_service("st", &s) {
            Err(BackupError::Label {
                service,
                label,
                message,
            }) => {
                assert_eq!(service, "db");
                assert_eq!(label, "backupbot.backup.volumes.a.path");
                assert!(message.contains(".."), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn path_rules() {
        assert_eq!(parse_paths("a,b/c").unwrap(), ["a", "b/c"]);
        assert_eq!(parse_paths(" ./a/ ").unwrap(), ["a"]);
        assert!(parse_paths("/abs").is_err());
        assert!(parse_paths("a/../b").is_err());
        assert!(parse_paths(".").is_err());
        assert!(parse_paths(" , ").is_err());
    }

    #[test]
    fn truth_values_follow_go_parse_bool() {
        for t in ["true", "True", "1", "t"] {
            assert!(is_true(t), "{t}");
            assert!(!is_false(t), "{t}");
        }
        for f in ["false", "FALSE", "0", "f"] {
            assert!(is_false(f), "{f}");
            assert!(!is_true(f), "{f}");
        }
        assert!(!is_true("yes") && !is_false("no"));
    }

    #[test]
    fn a_stack_without_labelled_volumes_has_nothing_to_back_up() {
        let plain = svc(&[], &[("st_a", "/a")]);
        let hooks_only = svc(
            &[
                ("backupbot.backup", "true"),
                ("backupbot.backup.volumes.a", "false"),
            ],
            &[("st_a", "/a")],
        );
        for services in [vec![], vec![plain.clone()], vec![plain.clone(), hooks_only]] {
            assert!(matches!(
                plan_stack("st", &services),
                Err(BackupError::NothingToBackUp { stack }) if stack == "st"
            ));
        }
        let mut app = svc(&[("backupbot.backup", "true")], &[("st_b", "/b")]);
        app.name = "st_app".into();
        let plans = plan_stack(
            "st",
            &[
                svc(&[("backupbot.backup", "1")], &[("st_a", "/a")]),
                plain,
                app,
            ],
        )
        .unwrap();
        let names: Vec<&str> = plans.iter().map(|p| p.service.as_str()).collect();
        assert_eq!(names, ["app", "db"]);
    }

    #[test]
    fn a_shared_volume_is_taken_once() {
        let mut a = svc(&[("backupbot.backup", "true")], &[("st_shared", "/s")]);
        a.name = "st_a".into();
        let b = svc(
            &[("backupbot.backup", "true")],
            &[("st_shared", "/x"), ("st_own", "/o")],
        );
        let plans = plan_stack("st", &[b, a]).unwrap();
        let vols: Vec<(&str, Vec<&str>)> = plans
            .iter()
            .map(|p| {
                (
                    p.service.as_str(),
                    p.volumes.iter().map(|v| v.volume.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(vols, [("a", vec!["shared"]), ("db", vec!["own"])]);
    }

    #[test]
    fn live_service_reads_volume_mounts_only() {
        let s: Service = serde_json::from_value(serde_json::json!({
            "ID": "x1",
            "Spec": {
                "Name": "st_db",
                "Labels": {"backupbot.backup": "true"},
                "TaskTemplate": {"ContainerSpec": {
                    "Image": "img:2",
                    "Mounts": [
                        {"Type": "volume", "Source": "st_data", "Target": "/data"},
                        {"Type": "bind", "Source": "/etc", "Target": "/host"},
                        {"Type": "volume", "Target": "/anon"},
                        {"Type": "tmpfs", "Target": "/tmp"}
                    ]
                }}
            }
        }))
        .unwrap();
        let l = LiveService::from_service(&s);
        assert_eq!(l.id, "x1");
        assert_eq!(l.name, "st_db");
        assert_eq!(l.image, "img:2");
        assert_eq!(l.volumes, [("st_data".to_string(), "/data".to_string())]);
        assert_eq!(
            l.labels.get("backupbot.backup").map(String::as_str),
            Some("true")
        );
    }
}

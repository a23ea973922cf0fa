//! The read-only JSON API (`/api/v1/...`): its stable shapes (camelCase, times as RFC 3339) and
//! their construction from the controller's [`DeploymentStatus`]. `hearth status` reads the same
//! types back.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::assess::Convergence;
use crate::controller::Shared;
use crate::controller::status::DeploymentStatus;

/// `GET /api/v1/deployments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentList {
    pub deployments: Vec<Deployment>,
    pub docker_up: bool,
    pub synced: bool,
    pub manifest_errors: Vec<String>,
    /// The manifests' revision: a git commit, or `None` for files.
    #[serde(default)]
    pub revision: Option<String>,
}

/// One deployment (`GET /api/v1/deployments/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub name: String,
    pub recipe: String,
    pub role: String,
    pub stack: String,
    pub domain: String,
    pub desired_version: String,
    pub live_version: Option<String>,
    pub phase: String,
    pub reason: String,
    pub message: String,
    /// When the phase last changed.
    pub since: Option<String>,
    pub conditions: Vec<Condition>,
    pub services: Vec<Service>,
    pub drift: Vec<Drift>,
    pub probes: Vec<Probe>,
    pub last_reconcile: Option<String>,
    pub last_error: Option<String>,
    pub last_ready: Option<String>,
}

/// A condition: the one condition type, `since` in whole seconds as the wire carries it.
pub use crate::assess::Condition;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub name: String,
    pub desired: u64,
    pub running: u64,
    /// `Converged`, `Progressing` or `Failed`.
    pub state: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub service: String,
    pub field: String,
    pub desired: String,
    pub live: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub name: String,
    pub ok: bool,
    pub message: String,
}

/// The error body of every non-2xx API answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    pub message: String,
}

/// RFC 3339, seconds precision, UTC.
pub fn time(t: Option<SystemTime>) -> Option<String> {
    t.map(|t| humantime::format_rfc3339_seconds(t).to_string())
}

/// `t` without its fraction of a second: what the wire keeps of it.
pub fn seconds(t: SystemTime) -> SystemTime {
    let whole = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(whole)
}

/// The age of an RFC 3339 time relative to `now`, e.g. `3m12s` (empty when unknown or invalid).
pub fn age(rfc3339: Option<&str>, now: SystemTime) -> String {
    let Some(t) = rfc3339.and_then(|s| humantime::parse_rfc3339(s).ok()) else {
        return String::new();
    };
    let secs = now.duration_since(t).unwrap_or_default().as_secs();
    humantime::format_duration(std::time::Duration::from_secs(secs))
        .to_string()
        .replace(' ', "")
}

impl From<&DeploymentStatus> for Deployment {
    fn from(s: &DeploymentStatus) -> Deployment {
        let mut d = Deployment {
            name: s.name.clone(),
            recipe: s.recipe.clone(),
            role: s.role.clone(),
            stack: s.stack.clone(),
            domain: s.domain.clone(),
            desired_version: s.desired_version.clone(),
            live_version: s.live_version.clone(),
            phase: s.phase.to_string(),
            reason: s.reason.clone(),
            message: s.message.clone(),
            since: time(s.since),
            conditions: s
                .conditions
                .iter()
                .map(|c| Condition {
                    since: c.since.map(seconds),
                    ..c.clone()
                })
                .collect(),
            services: s
                .services
                .iter()
                .map(|p| {
                    let (state, message) = match &p.state {
                        Convergence::Converged => ("Converged", String::new()),
                        Convergence::Progressing(m) => ("Progressing", m.clone()),
                        Convergence::Failed(m) => ("Failed", m.clone()),
                    };
                    Service {
                        name: p.service.clone(),
                        desired: p.desired,
                        running: p.running,
                        state: state.into(),
                        message,
                    }
                })
                .collect(),
            drift: s
                .drift
                .iter()
                .map(|d| Drift {
                    service: d.service.clone(),
                    field: d.field.clone(),
                    desired: d.desired.clone(),
                    live: d.live.clone(),
                })
                .collect(),
            probes: s
                .probes
                .iter()
                .map(|p| Probe {
                    name: p.name.clone(),
                    ok: p.ok,
                    message: p.message.clone(),
                })
                .collect(),
            last_reconcile: time(s.last_reconcile),
            last_error: s.last_error.clone(),
            last_ready: time(s.last_ready),
        };
        redact(&mut d);
        d
    }
}

/// Hides credentials in everything a deployment's report shows (drift values, messages, the last
/// error): see [`crate::redact`].
pub fn redact(d: &mut Deployment) {
    crate::redact::with(|r| {
        let t = |s: &mut String| *s = r.text(s);
        t(&mut d.message);
        d.conditions.iter_mut().for_each(|c| t(&mut c.message));
        d.services.iter_mut().for_each(|x| t(&mut x.message));
        d.probes.iter_mut().for_each(|x| t(&mut x.message));
        if let Some(e) = d.last_error.as_mut() {
            t(e);
        }
        for x in &mut d.drift {
            x.desired = r.json_text(&x.desired);
            x.live = r.json_text(&x.live);
        }
    });
}

/// Every deployment, by name, and the controller's own state.
pub fn list(shared: &Shared) -> DeploymentList {
    let deployments = shared
        .statuses
        .read()
        .map(|m| m.values().map(Deployment::from).collect())
        .unwrap_or_default();
    DeploymentList {
        deployments,
        docker_up: shared.is_docker_up(),
        synced: shared.synced.load(std::sync::atomic::Ordering::SeqCst),
        revision: shared.source.read().ok().and_then(|s| s.revision.clone()),
        manifest_errors: shared
            .manifest_errors
            .read()
            .map(|e| e.iter().map(|x| crate::redact::text(x)).collect())
            .unwrap_or_default(),
    }
}

/// One deployment, when known.
pub fn get(shared: &Shared, name: &str) -> Option<Deployment> {
    shared.status(name).as_ref().map(Deployment::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::{Phase, ServiceProgress};
    use std::time::Duration;

    #[test]
    fn shape_is_camel_case_with_rfc3339_times() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let s = DeploymentStatus {
            name: "kc".into(),
            phase: Phase::Wedged,
            reason: "CrashLoop".into(),
            desired_version: "1.1.0".into(),
            since: Some(t),
            conditions: vec![Condition {
                since: Some(t + Duration::from_millis(250)),
                ..Condition::new("Ready", false, "CrashLoop", "exit 2")
            }],
            services: vec![ServiceProgress {
                service: "app".into(),
                desired: 1,
                running: 0,
                state: Convergence::Progressing("starting".into()),
            }],
            last_error: Some("boom".into()),
            ..Default::default()
        };
        let shared = Shared::default();
        shared
            .statuses
            .write()
            .expect("statuses")
            .insert("kc".into(), s);
        let v = serde_json::to_value(get(&shared, "kc").expect("known")).expect("json");
        assert_eq!(v["desiredVersion"], "1.1.0");
        assert_eq!(v["since"], "2023-11-14T22:13:20Z");
        assert_eq!(v["phase"], "Wedged");
        assert_eq!(
            v["conditions"][0],
            serde_json::json!({"type": "Ready", "status": false, "reason": "CrashLoop",
                "message": "exit 2", "since": "2023-11-14T22:13:20Z"})
        );
        assert_eq!(v["services"][0]["state"], "Progressing");
        assert_eq!(v["services"][0]["message"], "starting");
        assert_eq!(v["lastError"], "boom");
        assert_eq!(v["liveVersion"], serde_json::Value::Null);
        assert!(get(&shared, "nope").is_none());
        // A phase is written as its name, as the string API always carried.
        for p in Phase::ALL {
            assert_eq!(serde_json::to_value(p).expect("json"), p.as_str());
            assert_eq!(Phase::parse(p.as_str()), Some(p));
        }
        let l = list(&shared);
        assert_eq!(l.deployments.len(), 1);
        // Round trip: hearth status reads what the server writes.
        let back: DeploymentList =
            serde_json::from_str(&serde_json::to_string(&l).expect("ser")).expect("de");
        assert_eq!(back, l);
    }
}

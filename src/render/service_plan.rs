//! [`ServicePlan`]: one rendered service, kept compact.
//!
//! The controller keeps every deployment's rendered stack for the whole run, so a service's spec
//! is stored as its compact JSON text (a few hundred bytes to a few KB), not as a bollard
//! `ServiceSpec` (about 2.5 KB inline before any of its strings, maps and lists). The typed spec
//! is parsed back only where one is really needed (creating or updating a service, pinning); the
//! per-pass readers use [`ServicePlan::spec_value`] (the plan's field diff) and the small fields
//! computed once at construction.

use bollard::models::{MountType, NetworkAttachmentConfig, ServiceSpec};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{LABEL_SPEC_HASH, spec_hash};

/// One rendered service. Serializes as `{name, key, spec, spec_hash}`, `spec` being the spec's
/// JSON exactly as `serde_json` writes a `ServiceSpec`.
#[derive(Debug, Clone, Serialize)]
pub struct ServicePlan {
    /// `<stack>_<key>`.
    pub name: String,
    /// The compose service key.
    pub key: String,
    /// `serde_json::to_string` of the spec (which carries `hearth.spec-hash`).
    spec: Box<RawValue>,
    /// sha256 hex of the canonical JSON of the spec without the `hearth.spec-hash` label (which
    /// the spec carries with this value).
    pub spec_hash: String,
    /// Mounts a local named volume and is not global: what `pinVolumes` pins (plan/pin.rs).
    #[serde(skip)]
    pinnable: bool,
}

impl ServicePlan {
    /// A plan for `spec`: computes [`spec_hash`] and, when the spec has labels (rendered specs
    /// always do), sets its `hearth.spec-hash` label to it.
    pub fn new(name: String, key: String, spec: ServiceSpec) -> ServicePlan {
        let mut plan = ServicePlan {
            name,
            key,
            spec: raw(&ServiceSpec::default()),
            spec_hash: String::new(),
            pinnable: false,
        };
        plan.set_spec(spec);
        plan
    }

    /// Replaces the spec: re-hashes it and sets its `hearth.spec-hash` label (if it has labels).
    pub fn set_spec(&mut self, mut spec: ServiceSpec) {
        let hash = spec_hash(&spec);
        if let Some(l) = spec.labels.as_mut() {
            l.insert(LABEL_SPEC_HASH.into(), hash.clone());
        }
        self.pinnable = mounts_local_volume(&spec) && !is_global(&spec);
        self.spec = raw(&spec);
        self.spec_hash = hash;
    }

    /// The typed spec (parsed: use where a `ServiceSpec` is really needed).
    pub fn spec(&self) -> ServiceSpec {
        // The text was written from a `ServiceSpec`, so it parses back.
        serde_json::from_str(self.spec.get()).unwrap_or_default()
    }

    /// The spec as a JSON value: equal to `serde_json::to_value(&self.spec())`.
    pub fn spec_value(&self) -> serde_json::Value {
        serde_json::from_str(self.spec.get()).unwrap_or_default()
    }

    /// The spec's compact JSON text.
    pub fn spec_json(&self) -> &str {
        self.spec.get()
    }

    /// Whether the service mounts a named volume of the local driver and is not global.
    pub fn pinnable(&self) -> bool {
        self.pinnable
    }

    /// The task template's network attachments (parsing only that part of the spec).
    pub fn networks(&self) -> Vec<NetworkAttachmentConfig> {
        #[derive(Deserialize)]
        struct Spec {
            #[serde(rename = "TaskTemplate")]
            task_template: Option<Template>,
        }
        #[derive(Deserialize)]
        struct Template {
            #[serde(rename = "Networks")]
            networks: Option<Vec<NetworkAttachmentConfig>>,
        }
        serde_json::from_str::<Spec>(self.spec.get())
            .ok()
            .and_then(|s| s.task_template?.networks)
            .unwrap_or_default()
    }
}

/// Equal when the names, hashes and specs are (the specs as JSON values: label maps unordered).
impl PartialEq for ServicePlan {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.key == other.key
            && self.spec_hash == other.spec_hash
            && (self.spec.get() == other.spec.get() || self.spec_value() == other.spec_value())
    }
}

fn raw(spec: &ServiceSpec) -> Box<RawValue> {
    // Serializing a `ServiceSpec` cannot fail (string-keyed maps only); `{}` is never reached.
    serde_json::value::to_raw_value(spec)
        .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("`{}` is valid JSON"))
}

/// Mounts a named volume of the local driver (other drivers may be shared storage).
fn mounts_local_volume(spec: &ServiceSpec) -> bool {
    let mounts = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.mounts.as_ref());
    mounts.is_some_and(|ms| {
        ms.iter().any(|m| {
            let driver = m
                .volume_options
                .as_ref()
                .and_then(|o| o.driver_config.as_ref())
                .and_then(|d| d.name.as_deref());
            m.typ == Some(MountType::VOLUME)
                && m.source.as_deref().is_some_and(|s| !s.is_empty())
                && matches!(driver, None | Some("") | Some("local"))
        })
    })
}

fn is_global(spec: &ServiceSpec) -> bool {
    spec.mode
        .as_ref()
        .is_some_and(|m| m.global.is_some() || m.global_job.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        Mount, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecUpdateConfig, TaskSpec,
        TaskSpecContainerSpec,
    };
    use std::collections::HashMap;

    fn spec(volume: bool) -> ServiceSpec {
        ServiceSpec {
            name: Some("s_app".into()),
            labels: Some(HashMap::from([
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "2".to_string()),
                ("c".to_string(), "3".to_string()),
            ])),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some("img:1".into()),
                    env: Some(vec!["A=1".into(), "B=ü".into()]),
                    mounts: volume.then(|| {
                        vec![Mount {
                            typ: Some(MountType::VOLUME),
                            source: Some("s_data".into()),
                            target: Some("/data".into()),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                }),
                networks: Some(vec![NetworkAttachmentConfig {
                    target: Some("s_default".into()),
                    aliases: Some(vec!["app".into()]),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(2) }),
                ..Default::default()
            }),
            update_config: Some(ServiceSpecUpdateConfig {
                max_failure_ratio: Some(0.3),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `spec` as rendering leaves it: with its hash label.
    fn hashed(mut s: ServiceSpec) -> ServiceSpec {
        let h = spec_hash(&s);
        s.labels
            .get_or_insert_with(Default::default)
            .insert(LABEL_SPEC_HASH.into(), h);
        s
    }

    #[test]
    fn the_spec_round_trips() {
        let p = ServicePlan::new("s_app".into(), "app".into(), spec(true));
        let want = hashed(spec(true));
        assert_eq!(p.spec(), want);
        assert_eq!(p.spec_value(), serde_json::to_value(&want).unwrap());
        assert_eq!(p.spec_hash, spec_hash(&want));
        assert_eq!(p.spec().labels.unwrap()[LABEL_SPEC_HASH], p.spec_hash);
        // the text is what serde_json writes for the spec (label maps in any order)
        let text: serde_json::Value = serde_json::from_str(p.spec_json()).unwrap();
        assert_eq!(text, serde_json::to_value(&want).unwrap());
    }

    #[test]
    fn the_hash_label_is_set_only_on_a_spec_with_labels() {
        let mut s = spec(false);
        s.labels = None;
        let p = ServicePlan::new("s_app".into(), "app".into(), s.clone());
        assert_eq!(p.spec(), s);
        assert_eq!(p.spec_hash, spec_hash(&s));
    }

    #[test]
    fn set_spec_rehashes() {
        let mut p = ServicePlan::new("s_app".into(), "app".into(), spec(true));
        let before = p.spec_hash.clone();
        let mut s = p.spec();
        s.labels.as_mut().unwrap().insert("x".into(), "y".into());
        p.set_spec(s.clone());
        assert_ne!(p.spec_hash, before);
        assert_eq!(p.spec_hash, spec_hash(&s));
        assert_eq!(p.spec().labels.unwrap()[LABEL_SPEC_HASH], p.spec_hash);
        // setting the same spec again keeps the hash
        p.set_spec(p.spec());
        assert_eq!(p.spec_hash, spec_hash(&s));
    }

    #[test]
    fn serializes_as_the_typed_plan_did() {
        let p = ServicePlan::new("s_app".into(), "app".into(), spec(true));
        let got = serde_json::to_value(&p).unwrap();
        let want = serde_json::json!({
            "name": "s_app",
            "key": "app",
            "spec": serde_json::to_value(p.spec()).unwrap(),
            "spec_hash": p.spec_hash,
        });
        assert_eq!(got, want);
        let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["name", "key", "spec", "spec_hash"]);
    }

    #[test]
    fn small_fields_are_computed() {
        let p = ServicePlan::new("s_app".into(), "app".into(), spec(true));
        assert!(p.pinnable());
        assert!(!ServicePlan::new("s".into(), "s".into(), spec(false)).pinnable());
        let mut global = spec(true);
        global.mode = Some(ServiceSpecMode {
            global: Some(Default::default()),
            ..Default::default()
        });
        assert!(!ServicePlan::new("s".into(), "s".into(), global).pinnable());
        let nets = p.networks();
        assert_eq!(nets.len(), 1);
        assert_eq!(nets[0].target.as_deref(), Some("s_default"));
        assert_eq!(nets[0].aliases.as_deref(), Some(&["app".to_string()][..]));
        let mut bare = spec(false);
        bare.task_template = None;
        assert!(
            ServicePlan::new("s".into(), "s".into(), bare)
                .networks()
                .is_empty()
        );
    }

    #[test]
    fn equality_ignores_label_order() {
        let a = ServicePlan::new("s_app".into(), "app".into(), spec(true));
        let b = ServicePlan::new("s_app".into(), "app".into(), spec(true));
        assert_eq!(a, b);
        let c = ServicePlan::new("s_app".into(), "app".into(), spec(false));
        assert_ne!(a, c);
    }

    #[test]
    fn the_plan_is_small() {
        assert!(std::mem::size_of::<ServicePlan>() <= 96);
    }
}

//! The live Swarm services and tasks a [`Snapshot`](super::Snapshot) keeps, slimmed to
//! the fields planning, assessment, pinning, probing and backups read.
//!
//! bollard's `Service` and `Task` store every nested `Option<Struct>` inline: about 3 KB per
//! service and 2.5 KB per task even when Docker sent a handful of fields. A pool of 1000
//! deployments (3000 services, each with up to five tasks of history) would keep tens of MiB of
//! mostly empty structs for the whole pass. These types keep the same field names and shapes for
//! what is read, so readers are unchanged, and drop the rest (parts most services lack or that are
//! large are boxed, so an absent one costs a pointer):
//! - the full `TaskTemplate` is replaced by [`TaskSpec::digest`], a hash of its canonical JSON
//!   without `Runtime` and `Placement` (what [`crate::assess`] compares to tell a task of the
//!   current spec from an older one); a task keeps the same digest of its own `Spec`;
//! - the service's `Spec` as Docker sent it stays available as compact JSON text in the snapshot
//!   (`Snapshot::service_specs`) for field-level drift diffs.
//!
//! Both types deserialize through bollard's full types (one element at a time, so only one full
//! struct exists at once) and convert with `From`, which is also how tests build them.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use bollard::models::{
    HealthConfig, Mount, NetworkAttachmentConfig, ObjectVersion, ServiceServiceStatus,
    ServiceSpecMode, ServiceUpdateStatus, TaskSpecContainerSpecConfigs, TaskSpecPlacement,
    TaskSpecResources, TaskState, TaskStatus,
};
use serde::Deserialize;

/// A live service: what hearth reads of Docker's `Service`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "bollard::models::Service")]
pub struct Service {
    pub id: Option<String>,
    pub version: Option<ObjectVersion>,
    pub updated_at: Option<String>,
    pub spec: Option<ServiceSpec>,
    pub update_status: Option<Box<ServiceUpdateStatus>>,
    pub service_status: Option<Box<ServiceServiceStatus>>,
}

/// What hearth reads of a live `ServiceSpec`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceSpec {
    pub name: Option<String>,
    pub labels: Option<HashMap<String, String>>,
    pub mode: Option<Box<ServiceSpecMode>>,
    pub task_template: Option<TaskSpec>,
}

/// What hearth reads of a live `TaskSpec`, plus the digest of the whole of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskSpec {
    pub container_spec: Option<ContainerSpec>,
    pub placement: Option<Box<TaskSpecPlacement>>,
    pub resources: Option<Box<TaskSpecResources>>,
    /// The network attachments (target network ID and aliases): what the shared-network alias
    /// index (`crate::conflicts`) reads.
    pub networks: Option<Vec<NetworkAttachmentConfig>>,
    /// [`template_digest`] of the full task spec.
    pub digest: u64,
}

/// What hearth reads of a live `ContainerSpec`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSpec {
    pub image: Option<String>,
    pub mounts: Option<Vec<Mount>>,
    pub health_check: Option<Box<HealthConfig>>,
    pub configs: Option<Vec<TaskSpecContainerSpecConfigs>>,
}

/// A live task: what hearth reads of Docker's `Task`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "bollard::models::Task")]
pub struct Task {
    pub id: Option<String>,
    pub created_at: Option<String>,
    pub service_id: Option<String>,
    pub slot: Option<i64>,
    pub node_id: Option<String>,
    pub status: Option<TaskStatus>,
    pub desired_state: Option<TaskState>,
    /// [`template_digest`] of the task's own spec (the service's task template when the task was
    /// made); `None` when Docker sent no spec.
    pub spec_digest: Option<u64>,
}

/// A hash of `spec`'s canonical JSON without `Runtime` (Swarm does not copy it into tasks) and
/// `Placement` (a task whose node still meets changed constraints stays current, as in Swarm).
pub fn template_digest(spec: &bollard::models::TaskSpec) -> u64 {
    let mut spec = spec.clone();
    spec.runtime = None;
    spec.placement = None;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    crate::render::canonical_json(&spec).hash(&mut h);
    h.finish()
}

impl From<bollard::models::Service> for Service {
    fn from(s: bollard::models::Service) -> Self {
        Service {
            id: s.id,
            version: s.version,
            updated_at: s.updated_at,
            spec: s.spec.map(ServiceSpec::from),
            update_status: s.update_status.map(Box::new),
            service_status: s.service_status.map(Box::new),
        }
    }
}

impl From<bollard::models::ServiceSpec> for ServiceSpec {
    fn from(s: bollard::models::ServiceSpec) -> Self {
        ServiceSpec {
            name: s.name,
            labels: s.labels,
            mode: s.mode.map(Box::new),
            task_template: s.task_template.map(TaskSpec::from),
        }
    }
}

impl From<bollard::models::TaskSpec> for TaskSpec {
    fn from(t: bollard::models::TaskSpec) -> Self {
        let digest = template_digest(&t);
        TaskSpec {
            container_spec: t.container_spec.map(|c| ContainerSpec {
                image: c.image,
                mounts: c.mounts,
                health_check: c.health_check.map(Box::new),
                configs: c.configs,
            }),
            placement: t.placement.map(Box::new),
            resources: t.resources.map(Box::new),
            networks: t.networks.filter(|n| !n.is_empty()),
            digest,
        }
    }
}

impl From<bollard::models::Task> for Task {
    fn from(t: bollard::models::Task) -> Self {
        Task {
            spec_digest: t.spec.as_ref().map(template_digest),
            id: t.id,
            created_at: t.created_at,
            service_id: t.service_id,
            slot: t.slot,
            node_id: t.node_id,
            status: t.status,
            desired_state: t.desired_state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{TaskSpecContainerSpec, TaskSpecPlacement};

    fn template(image: &str, constraint: Option<&str>) -> bollard::models::TaskSpec {
        bollard::models::TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.into()),
                labels: Some(HashMap::from([
                    ("a".to_string(), "1".to_string()),
                    ("b".to_string(), "2".to_string()),
                ])),
                ..Default::default()
            }),
            placement: constraint.map(|c| TaskSpecPlacement {
                constraints: Some(vec![c.into()]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_digest_ignores_placement_and_runtime_but_nothing_else() {
        let a = template("app:1", None);
        assert_eq!(template_digest(&a), template_digest(&a.clone()));
        assert_eq!(
            template_digest(&a),
            template_digest(&template("app:1", Some("node.id==n1")))
        );
        let mut with_runtime = a.clone();
        with_runtime.runtime = Some("container".into());
        assert_eq!(template_digest(&a), template_digest(&with_runtime));
        assert_ne!(
            template_digest(&a),
            template_digest(&template("app:2", None))
        );
        let mut other_label = a.clone();
        other_label
            .container_spec
            .as_mut()
            .and_then(|c| c.labels.as_mut())
            .unwrap()
            .insert("c".into(), "3".into());
        assert_ne!(template_digest(&a), template_digest(&other_label));
    }

    #[test]
    fn a_service_and_its_task_of_the_same_spec_share_the_digest() {
        let svc = Service::from(bollard::models::Service {
            id: Some("s1".into()),
            spec: Some(bollard::models::ServiceSpec {
                name: Some("st_app".into()),
                task_template: Some(template("app:1", Some("node.id==n1"))),
                ..Default::default()
            }),
            ..Default::default()
        });
        let task = Task::from(bollard::models::Task {
            service_id: Some("s1".into()),
            spec: Some(template("app:1", None)),
            ..Default::default()
        });
        let tt = svc.spec.as_ref().and_then(|s| s.task_template.as_ref());
        assert_eq!(tt.map(|t| t.digest), task.spec_digest);
        assert_eq!(
            tt.and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.image.as_deref()),
            Some("app:1")
        );
        assert_eq!(
            Task::from(bollard::models::Task::default()).spec_digest,
            None
        );
    }

    #[test]
    fn the_slim_types_are_much_smaller_than_bollards() {
        let slim = std::mem::size_of::<Service>() + std::mem::size_of::<Task>();
        let full = std::mem::size_of::<bollard::models::Service>()
            + std::mem::size_of::<bollard::models::Task>();
        assert!(slim * 3 < full, "slim {slim} B vs bollard {full} B");
    }

    #[test]
    fn docker_json_deserializes_through_the_full_types() {
        let json = r#"{"ID":"s1","Version":{"Index":7},"Spec":{"Name":"st_app","Labels":{"x":"y"},
            "TaskTemplate":{"ContainerSpec":{"Image":"app:1","Mounts":[{"Type":"volume","Source":"v","Target":"/d"}]}},
            "Mode":{"Replicated":{"Replicas":2}}},"UpdateStatus":{"State":"paused","Message":"m"}}"#;
        let s: Service = serde_json::from_str(json).unwrap();
        assert_eq!(s.id.as_deref(), Some("s1"));
        assert_eq!(s.version.and_then(|v| v.index), Some(7));
        let spec = s.spec.unwrap();
        assert_eq!(spec.labels.unwrap()["x"], "y");
        assert_eq!(spec.mode.unwrap().replicated.unwrap().replicas, Some(2));
        let c = spec.task_template.unwrap().container_spec.unwrap();
        assert_eq!(c.mounts.unwrap()[0].source.as_deref(), Some("v"));
        assert_eq!(s.update_status.unwrap().message.as_deref(), Some("m"));
        let t: Task = serde_json::from_str(
            r#"{"ID":"t1","ServiceID":"s1","Slot":1,"DesiredState":"running","Status":{"State":"failed"},"Spec":{}}"#,
        )
        .unwrap();
        assert_eq!(t.desired_state, Some(TaskState::RUNNING));
        assert_eq!(t.status.unwrap().state, Some(TaskState::FAILED));
        assert!(t.spec_digest.is_some());
    }
}

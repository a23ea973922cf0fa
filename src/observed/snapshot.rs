//! One snapshot of the live swarm as plain data: services, tasks, networks, secrets, configs, nodes
//! and the volumes of the node hearth talks to, indexed by stack so planning and assessment never
//! go back to Docker. It is filled by `Client::snapshot` in `swarm` (a constant number of list
//! calls, seven, whatever the number of deployments); nothing here talks to Docker.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use bollard::models::{Config, Network, Node, Secret};

pub use super::live::{Service, Task};
use serde_json::value::RawValue;

/// The label docker stack deploy (and hearth) puts on every object of a stack.
pub const STACK_LABEL: &str = "com.docker.stack.namespace";
/// The label on every object hearth created; hearth changes nothing without it.
pub const MANAGED_LABEL: &str = "hearth.managed-by";

/// Live state of the whole swarm at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub taken_at: Option<SystemTime>,
    pub services: Vec<Service>,
    /// Each service's `Spec` exactly as Docker returned it (compact JSON text), by service ID, for
    /// field diffs; [`Snapshot::raw_spec`] parses one.
    pub service_specs: HashMap<String, Box<RawValue>>,
    pub tasks: Vec<Task>,
    pub networks: Vec<Network>,
    pub secrets: Vec<Secret>,
    pub configs: Vec<Config>,
    pub nodes: Vec<Node>,
    /// The named volumes of the daemon hearth talks to (name and labels only): who owns a volume
    /// a deployment would mount (`migrate::owners`).
    pub volumes: Vec<LiveVolume>,
}

/// A volume as the snapshot keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveVolume {
    pub name: String,
    pub labels: HashMap<String, String>,
}

/// The objects of one stack inside a [`Snapshot`].
#[derive(Debug, Clone, Default)]
pub struct StackView<'a> {
    pub services: Vec<&'a Service>,
    pub tasks: Vec<&'a Task>,
    pub networks: Vec<&'a Network>,
    pub secrets: Vec<&'a Secret>,
    pub configs: Vec<&'a Config>,
}

fn stack_of(labels: Option<&std::collections::HashMap<String, String>>) -> Option<&str> {
    labels.and_then(|l| l.get(STACK_LABEL)).map(String::as_str)
}

impl Snapshot {
    /// Every stack with at least one object, with its objects.
    pub fn stacks(&self) -> BTreeMap<&str, StackView<'_>> {
        let mut out: BTreeMap<&str, StackView<'_>> = BTreeMap::new();
        let mut service_stack = std::collections::HashMap::new();
        for s in &self.services {
            let labels = s.spec.as_ref().and_then(|sp| sp.labels.as_ref());
            if let Some(stack) = stack_of(labels) {
                out.entry(stack).or_default().services.push(s);
                if let Some(id) = &s.id {
                    service_stack.insert(id.as_str(), stack);
                }
            }
        }
        for t in &self.tasks {
            if let Some(stack) = t.service_id.as_deref().and_then(|id| service_stack.get(id)) {
                out.entry(stack).or_default().tasks.push(t);
            }
        }
        for n in &self.networks {
            if let Some(stack) = stack_of(n.labels.as_ref()) {
                out.entry(stack).or_default().networks.push(n);
            }
        }
        for s in &self.secrets {
            let labels = s.spec.as_ref().and_then(|sp| sp.labels.as_ref());
            if let Some(stack) = stack_of(labels) {
                out.entry(stack).or_default().secrets.push(s);
            }
        }
        for c in &self.configs {
            let labels = c.spec.as_ref().and_then(|sp| sp.labels.as_ref());
            if let Some(stack) = stack_of(labels) {
                out.entry(stack).or_default().configs.push(c);
            }
        }
        out
    }

    /// A service's live spec as Docker returned it (`null` when the snapshot has none), with network
    /// IDs in `TaskTemplate.Networks[].Target` turned back into names, as hearth sends them.
    pub fn live_spec(&self, service: &Service) -> serde_json::Value {
        self.live_spec_named(service, &self.network_names())
    }

    /// Network ID -> name, for [`Snapshot::live_spec_named`] (build it once per snapshot).
    pub fn network_names(&self) -> HashMap<&str, &str> {
        self.networks
            .iter()
            .filter_map(|n| Some((n.id.as_deref()?, n.name.as_deref()?)))
            .collect()
    }

    /// [`Snapshot::live_spec`] with the network-name map built once by the caller.
    pub fn live_spec_named(
        &self,
        service: &Service,
        names: &HashMap<&str, &str>,
    ) -> serde_json::Value {
        let mut spec = service
            .id
            .as_ref()
            .and_then(|id| self.raw_spec(id))
            .unwrap_or_default();
        if let Some(nets) = spec
            .pointer_mut("/TaskTemplate/Networks")
            .and_then(|n| n.as_array_mut())
        {
            for n in nets {
                if let Some(name) = n["Target"].as_str().and_then(|id| names.get(id)) {
                    n["Target"] = serde_json::Value::String(name.to_string());
                }
            }
        }
        spec
    }

    /// The `Spec` of service `id` exactly as Docker returned it, parsed.
    pub fn raw_spec(&self, id: &str) -> Option<serde_json::Value> {
        serde_json::from_str(self.service_specs.get(id)?.get()).ok()
    }

    /// Service ID -> parsed raw `Spec` for `services` (what assessment reads the healthcheck from).
    pub fn raw_specs_of(&self, services: &[&Service]) -> HashMap<String, serde_json::Value> {
        services
            .iter()
            .filter_map(|s| {
                let id = s.id.as_ref()?;
                Some((id.clone(), self.raw_spec(id)?))
            })
            .collect()
    }

    /// Adds a service as Docker lists it: the slim view, and its `Spec` as JSON text for diffs
    /// (how tests and tools build a snapshot by hand).
    pub fn push_service(&mut self, s: bollard::models::Service) {
        if let (Some(id), Some(spec)) = (&s.id, &s.spec)
            && let Ok(raw) = serde_json::value::to_raw_value(spec)
        {
            self.service_specs.insert(id.clone(), raw);
        }
        self.services.push(s.into());
    }

    /// The objects of `stack` (empty when it has none).
    pub fn stack(&self, stack: &str) -> StackView<'_> {
        self.stacks().remove(stack).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ServiceSpec, TaskSpec};
    use std::collections::HashMap;

    fn service(id: &str, stack: Option<&str>) -> Service {
        bollard::models::Service {
            id: Some(id.into()),
            spec: Some(ServiceSpec {
                name: Some(id.into()),
                labels: stack.map(|s| HashMap::from([(STACK_LABEL.to_string(), s.to_string())])),
                task_template: Some(TaskSpec::default()),
                ..Default::default()
            }),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn objects_are_grouped_by_stack_and_tasks_follow_their_service() {
        let snap = Snapshot {
            services: vec![
                service("a1", Some("a")),
                service("b1", Some("b")),
                service("x", None),
            ],
            tasks: vec![
                Task {
                    service_id: Some("a1".into()),
                    ..Default::default()
                },
                Task {
                    service_id: Some("x".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let stacks = snap.stacks();
        assert_eq!(stacks.keys().copied().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(stacks["a"].services.len(), 1);
        assert_eq!(stacks["a"].tasks.len(), 1);
        assert!(stacks["b"].tasks.is_empty());
        assert!(snap.stack("nope").services.is_empty());
    }
}

//! `Client::snapshot`: reads the whole swarm into an [`observed::Snapshot`](crate::observed::Snapshot)
//! with seven list calls (the seventh: the volumes of the node hearth talks to), made concurrently, whatever the number of deployments.

use std::collections::HashMap;
use std::time::SystemTime;

use super::{Client, SwarmError};
use crate::observed::{LiveVolume, Snapshot};

impl Client {
    /// Reads the whole swarm with seven list calls (the seventh: the volumes of the node hearth talks to).
    pub async fn snapshot(&self) -> Result<Snapshot, SwarmError> {
        let (services, tasks, networks, secrets, configs, nodes, volumes) = tokio::try_join!(
            self.list_services_raw(),
            self.list_tasks_live(),
            self.list_networks(None),
            self.list_secrets(None),
            self.list_configs(None),
            self.list_nodes(),
            self.list_volumes(None),
        )?;
        let volumes = volumes
            .into_iter()
            .map(|v| LiveVolume {
                name: v.name,
                labels: v.labels,
            })
            .collect();
        let mut service_specs = HashMap::new();
        let services = services
            .into_iter()
            .map(|(service, raw)| {
                if let Some(id) = &service.id {
                    service_specs.insert(id.clone(), raw);
                }
                service
            })
            .collect();
        Ok(Snapshot {
            taken_at: Some(SystemTime::now()),
            services,
            service_specs,
            tasks,
            networks,
            secrets,
            configs,
            nodes,
            volumes,
        })
    }
}

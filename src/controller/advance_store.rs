//! Reading and writing a deployment's advance record on the swarm: create the
//! `<stack>_hearth-advance` config, or replace its labels with a compare-and-swap on Swarm's
//! version index (a stale writer fails with a conflict and must read again).

use crate::advance::labels::{self, Owner, Stored};
use crate::advance::machine::Record;
use crate::swarm::{Client, SwarmError};

/// The deployment's record as it is on the swarm now (`None`: never written).
pub async fn load(
    client: &Client,
    pool: &str,
    deployment: &str,
    stack: &str,
) -> Result<Option<Stored>, SwarmError> {
    let name = labels::config_name(stack);
    let filters = std::collections::HashMap::from([("name".to_string(), vec![name])]);
    let configs = client.list_configs(Some(filters)).await?;
    Ok(labels::find(&configs, pool, deployment, stack))
}

/// Writes `record`: creates the config when `stored` is `None`, else replaces its labels at the
/// version it was read at. A conflict ([`SwarmError::is_conflict`]) means someone else wrote
/// first: read again. `author` (the writer's lease identity) is written with it.
pub async fn save(
    client: &Client,
    owner: &Owner<'_>,
    stored: Option<&Stored>,
    record: &Record,
    author: &str,
) -> Result<(), SwarmError> {
    match stored {
        None => client
            .create_config(labels::authored(labels::new_spec(owner, record), author))
            .await
            .map(|_| ()),
        Some(s) => {
            let spec = labels::updated_spec(&labels::config_name(owner.stack), s, record);
            client
                .update_config(&s.id, s.version, labels::authored(spec, author))
                .await
        }
    }
}

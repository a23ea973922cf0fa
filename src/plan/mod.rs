//! Pure planning: desired state vs a snapshot of the live swarm -> ordered actions, each with its
//! reason (which fields differ, desired vs live). Nothing here talks to Docker.

pub mod actions;
pub mod adopt;
mod configs;
pub mod defaults;
pub mod diff;
pub mod digest;
mod networks;
pub mod pin;
pub mod pool;
pub mod revive;
mod secrets;
mod services;
mod volumes;

pub use actions::{
    Action, DriftItem, Intent, Plan, SecretValue, SnapIndex, Step, orphans, plan_deployment,
    plan_indexed, plan_prune, plan_purge,
};
pub use diff::{FieldDiff, diff};
pub use pin::{LABEL_PIN_NODE, eligible_nodes, pin_to_node, pin_volumes, pin_volumes_in};
pub use pool::{foreign_stacks, plan_pool, plan_pool_with};

#[cfg(test)]
mod tests;

//! Which deployments a Docker event concerns (pure), and the subscription filters.
//!
//! Container events carry their labels (`com.docker.stack.namespace`); service, network, secret
//! and config events carry the object's name, which starts with `<stack>_`. Node events may change
//! any deployment's placement, so they concern all.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{EventMessage, EventMessageTypeEnum};

/// What an event means for the work queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Affects {
    Nothing,
    All,
    /// New manifests (a git revision was applied): reload them, then look at everything.
    Reload,
    Deployments(Vec<String>),
    /// An event still to be mapped (by whoever knows the stacks).
    Raw(Box<EventMessage>),
}

/// Maps `event` to the deployments whose stacks it touches (`stacks`: stack name -> deployment).
pub fn affected(event: &EventMessage, stacks: &BTreeMap<String, String>) -> Affects {
    let empty = HashMap::new();
    let attrs = event
        .actor
        .as_ref()
        .and_then(|a| a.attributes.as_ref())
        .unwrap_or(&empty);
    match event.typ {
        Some(EventMessageTypeEnum::NODE) => Affects::All,
        Some(EventMessageTypeEnum::CONTAINER) => {
            let stack = attrs.get("com.docker.stack.namespace");
            match stack.and_then(|s| stacks.get(s)) {
                Some(d) => Affects::Deployments(vec![d.clone()]),
                None => Affects::Nothing,
            }
        }
        Some(EventMessageTypeEnum::SERVICE)
        | Some(EventMessageTypeEnum::NETWORK)
        | Some(EventMessageTypeEnum::SECRET)
        | Some(EventMessageTypeEnum::CONFIG) => match attrs.get("name") {
            Some(name) => by_name(name, stacks),
            None => Affects::Nothing,
        },
        _ => Affects::Nothing,
    }
}

/// The deployment whose stack prefixes `name` (`<stack>_...`); the longest stack wins.
fn by_name(name: &str, stacks: &BTreeMap<String, String>) -> Affects {
    let hit = stacks
        .iter()
        .filter(|(stack, _)| {
            name.len() > stack.len()
                && name.starts_with(stack.as_str())
                && name.as_bytes()[stack.len()] == b'_'
        })
        .max_by_key(|(stack, _)| stack.len());
    match hit {
        Some((_, d)) => Affects::Deployments(vec![d.clone()]),
        None => Affects::Nothing,
    }
}

/// The event types hearth listens to.
pub fn filters() -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "type".to_string(),
        [
            "service",
            "container",
            "network",
            "secret",
            "config",
            "node",
        ]
        .map(String::from)
        .to_vec(),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;

    fn event(typ: EventMessageTypeEnum, attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some("update".into()),
            actor: Some(EventActor {
                id: Some("x".into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        }
    }

    fn stacks() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("git_ci".to_string(), "gitea".to_string()),
            ("git_ci_extra".to_string(), "other".to_string()),
        ])
    }

    #[test]
    fn services_map_by_stack_prefix_longest_first() {
        let e = event(EventMessageTypeEnum::SERVICE, &[("name", "git_ci_app")]);
        assert_eq!(
            affected(&e, &stacks()),
            Affects::Deployments(vec!["gitea".into()])
        );
        let e = event(
            EventMessageTypeEnum::SERVICE,
            &[("name", "git_ci_extra_app")],
        );
        assert_eq!(
            affected(&e, &stacks()),
            Affects::Deployments(vec!["other".into()])
        );
        let e = event(EventMessageTypeEnum::SERVICE, &[("name", "git_cia_app")]);
        assert_eq!(affected(&e, &stacks()), Affects::Nothing);
    }

    #[test]
    fn containers_map_by_their_stack_label_and_nodes_affect_all() {
        let e = event(
            EventMessageTypeEnum::CONTAINER,
            &[
                ("com.docker.stack.namespace", "git_ci"),
                ("name", "whatever"),
            ],
        );
        assert_eq!(
            affected(&e, &stacks()),
            Affects::Deployments(vec!["gitea".into()])
        );
        let e = event(EventMessageTypeEnum::CONTAINER, &[("name", "unrelated")]);
        assert_eq!(affected(&e, &stacks()), Affects::Nothing);
        assert_eq!(
            affected(&event(EventMessageTypeEnum::NODE, &[]), &stacks()),
            Affects::All
        );
        let e = event(
            EventMessageTypeEnum::CONFIG,
            &[("name", "git_ci_app_ini_abc")],
        );
        assert_eq!(
            affected(&e, &stacks()),
            Affects::Deployments(vec!["gitea".into()])
        );
    }
}

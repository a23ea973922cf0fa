//! Unit tests of the index and the conflict rules on hand-built snapshots.

use std::collections::HashMap;

use bollard::models::{
    Network, NetworkAttachmentConfig, ServiceSpec, TaskSpec, TaskSpecContainerSpec,
};

use super::*;
use crate::render::{NetworkPlan, ServicePlan, StackSpec};

fn network(id: &str, name: &str, stack: Option<&str>) -> Network {
    Network {
        id: Some(id.into()),
        name: Some(name.into()),
        labels: stack.map(|s| HashMap::from([(LABEL_NAMESPACE.to_string(), s.to_string())])),
        ..Default::default()
    }
}

fn attach(target: &str, aliases: &[&str]) -> NetworkAttachmentConfig {
    NetworkAttachmentConfig {
        target: Some(target.into()),
        aliases: Some(aliases.iter().map(|a| a.to_string()).collect()),
        ..Default::default()
    }
}

fn spec(name: &str, labels: &[(&str, &str)], nets: Vec<NetworkAttachmentConfig>) -> ServiceSpec {
    ServiceSpec {
        name: Some(name.into()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some("img".into()),
                ..Default::default()
            }),
            networks: Some(nets),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn push(snap: &mut Snapshot, id: &str, s: ServiceSpec) {
    snap.push_service(bollard::models::Service {
        id: Some(id.into()),
        spec: Some(s),
        ..Default::default()
    });
}

const NS: &str = LABEL_NAMESPACE;

/// A swarm with `proxy`, a foreign stack `foreign` (db and web on proxy, web routed at
/// blog.example.org), a hearth stack `mine_example_org` of deployment `mine` of pool `p`, and a
/// hand-made service `loose` on proxy.
fn swarm() -> Snapshot {
    let mut snap = Snapshot {
        networks: vec![
            network("np", "proxy", None),
            network("nf", "foreign_default", Some("foreign")),
            network("nm", "mine_example_org_internal", Some("mine_example_org")),
        ],
        ..Default::default()
    };
    // hearth made the internal network of `mine`.
    snap.networks[2].labels.get_or_insert_default().extend([
        (LABEL_MANAGED_BY.to_string(), "hearth".to_string()),
        (LABEL_POOL.to_string(), "p".to_string()),
        (LABEL_DEPLOYMENT.to_string(), "mine".to_string()),
    ]);
    push(
        &mut snap,
        "f1",
        spec(
            "foreign_db",
            &[(NS, "foreign")],
            vec![attach("np", &["db"]), attach("nf", &["db"])],
        ),
    );
    push(
        &mut snap,
        "f2",
        spec(
            "foreign_web",
            &[
                (NS, "foreign"),
                ("traefik.enable", "true"),
                (
                    "traefik.http.routers.web.rule",
                    "Host(`blog.example.org`) || Host(`www.example.org`)",
                ),
            ],
            // Only on its own network: its bare name shadows nothing on proxy.
            vec![attach("nf", &["web"])],
        ),
    );
    push(
        &mut snap,
        "m1",
        spec(
            "mine_example_org_app",
            &[
                (NS, "mine_example_org"),
                (LABEL_MANAGED_BY, "hearth"),
                (LABEL_POOL, "p"),
                (LABEL_DEPLOYMENT, "mine"),
                ("traefik.http.routers.mine.rule", "Host(`mine.example.org`)"),
            ],
            vec![
                attach("np", &["mine_example_org_app"]),
                attach("nm", &["app"]),
            ],
        ),
    );
    push(&mut snap, "l1", spec("cache", &[], vec![attach("np", &[])]));
    snap
}

fn claims(stack: &str, names: &[&str], hosts: &[&str]) -> Claims {
    Claims {
        stack: stack.into(),
        names: names.iter().map(|n| n.to_string()).collect(),
        networks: ["proxy".to_string()].into(),
        hosts: hosts
            .iter()
            .map(|h| (h.to_string(), "app".to_string()))
            .collect(),
    }
}

fn kinds(c: &[Conflict]) -> Vec<(ConflictKind, &str, &str, &str)> {
    c.iter()
        .map(|c| {
            (
                c.kind,
                c.other_stack.as_str(),
                c.place.as_str(),
                c.name.as_str(),
            )
        })
        .collect()
}

#[test]
fn a_foreign_bare_alias_on_a_shared_network_shadows_a_name_the_deployment_resolves() {
    let ix = SwarmIndex::new(&swarm());
    let c = find(
        &claims("mine_example_org", &["app", "db", "web"], &[]),
        "p",
        "mine",
        &ix,
    );
    assert_eq!(
        kinds(&c),
        [(ConflictKind::AliasShadowed, "foreign", "proxy", "db")]
    );
    assert!(
        c[0].message
            .contains("stack \"foreign\" (service foreign_db)"),
        "{}",
        c[0].message
    );
    assert!(
        c[0].message.contains("shared network proxy"),
        "{}",
        c[0].message
    );
    // A service in no stack is held by its own name.
    let c = find(
        &claims("mine_example_org", &["cache"], &[]),
        "p",
        "mine",
        &ix,
    );
    assert_eq!(
        kinds(&c),
        [(ConflictKind::AliasShadowed, "", "proxy", "cache")]
    );
    assert!(c[0].message.contains("service \"cache\" (in no stack)"));
}

#[test]
fn hearth_services_hold_only_their_explicit_aliases_and_never_conflict_with_themselves() {
    let ix = SwarmIndex::new(&swarm());
    // Another deployment resolving `app`: hearth's `app` is only `mine_example_org_app` on proxy.
    let c = find(&claims("other", &["app"], &[]), "p", "other", &ix);
    assert!(c.is_empty(), "{c:?}");
    // The deployment's own host and stack are its own.
    let c = find(
        &claims("mine_example_org", &["app"], &["mine.example.org"]),
        "p",
        "mine",
        &ix,
    );
    assert!(c.is_empty(), "{c:?}");
    // Its old stack (same deployment, same pool, another namespace) is not "another stack".
    let c = find(
        &claims("mine_example_net", &["app"], &["mine.example.org"]),
        "p",
        "mine",
        &ix,
    );
    assert!(c.is_empty(), "{c:?}");
    // Another pool's deployment of the same name claiming the host collides.
    let c = find(
        &claims("mine_example_net", &[], &["mine.example.org"]),
        "q",
        "mine",
        &ix,
    );
    assert_eq!(
        kinds(&c),
        [(
            ConflictKind::HostCollision,
            "mine_example_org",
            "mine.example.org",
            "mine.example.org"
        )]
    );
}

#[test]
fn a_host_claimed_by_another_stack_collides() {
    let ix = SwarmIndex::new(&swarm());
    let c = find(
        &claims(
            "blog_example_org",
            &[],
            &["www.example.org", "free.example.org"],
        ),
        "p",
        "blog",
        &ix,
    );
    assert_eq!(
        kinds(&c),
        [(
            ConflictKind::HostCollision,
            "foreign",
            "www.example.org",
            "www.example.org"
        )]
    );
    assert!(c[0].message.contains("router web"), "{}", c[0].message);
    assert!(
        c[0].message.contains("stack \"foreign\""),
        "{}",
        c[0].message
    );
}

#[test]
fn a_stack_name_held_by_objects_hearth_did_not_make() {
    let snap = swarm();
    let ix = SwarmIndex::new(&snap);
    let c = find(&claims("foreign", &[], &[]), "p", "foreign", &ix);
    assert_eq!(
        kinds(&c),
        [(ConflictKind::StackHeld, "foreign", "foreign", "foreign")]
    );
    assert!(
        c[0].message.contains("service foreign_db"),
        "{}",
        c[0].message
    );
    // Held by another hearth deployment.
    let c = find(&claims("mine_example_org", &[], &[]), "p", "other", &ix);
    assert_eq!(kinds(&c)[0].0, ConflictKind::StackHeld);
    assert!(
        c[0].message
            .contains("hearth deployment \"mine\" of pool \"p\"")
    );
    assert_eq!(ix.foreign_stacks("p"), ["foreign"]);
    assert_eq!(ix.foreign_stacks("q"), ["foreign", "mine_example_org"]);
}

#[test]
fn conditions_say_each_conflict_or_that_there_is_none() {
    let none = conditions(&[]);
    assert_eq!(none.len(), 1);
    assert_eq!((none[0].kind.as_str(), none[0].status), ("Conflict", false));
    let ix = SwarmIndex::new(&swarm());
    let c = find(&claims("x", &["db"], &["blog.example.org"]), "p", "x", &ix);
    let conds = conditions(&c);
    assert_eq!(
        conds
            .iter()
            .map(|c| (c.kind.as_str(), c.status, c.reason.as_str()))
            .collect::<Vec<_>>(),
        [
            ("Conflict", true, "AliasShadowed"),
            ("Conflict", true, "HostCollision")
        ]
    );
}

#[test]
fn claims_of_a_rendered_stack() {
    let svc = |key: &str, labels: &[(&str, &str)], nets| {
        ServicePlan::new(
            format!("s_{key}"),
            key.to_string(),
            spec(&format!("s_{key}"), labels, nets),
        )
    };
    let stack = StackSpec {
        stack: "s".into(),
        networks: vec![
            NetworkPlan {
                name: "proxy".into(),
                key: "proxy".into(),
                external: true,
                spec: None,
            },
            NetworkPlan {
                name: "s_internal".into(),
                key: "internal".into(),
                external: false,
                spec: None,
            },
        ],
        volumes: vec![],
        secrets: vec![],
        configs: vec![],
        services: vec![
            svc(
                "app",
                &[("traefik.http.routers.s.rule", "Host(`S.example.org`)")],
                vec![attach("proxy", &["s_app"]), attach("s_internal", &["app"])],
            ),
            svc("db", &[], vec![attach("s_internal", &["db", "database"])]),
        ],
        warnings: vec![],
    };
    let c = Claims::of(&stack);
    assert_eq!(c.stack, "s");
    assert_eq!(
        c.names.iter().map(String::as_str).collect::<Vec<_>>(),
        ["app", "database", "db"]
    );
    assert_eq!(
        c.networks.iter().map(String::as_str).collect::<Vec<_>>(),
        ["proxy"]
    );
    assert_eq!(
        c.hosts.iter().cloned().collect::<Vec<_>>(),
        [("s.example.org".to_string(), "s".to_string())]
    );
}

#[test]
fn live_names_say_where_the_pool_is_placed_and_who_holds_stacks_and_hosts() {
    use crate::manifest::settle::OTHER;
    let ix = SwarmIndex::new(&swarm());
    let l = ix.live_names("p");
    assert_eq!(
        l.placed
            .get("mine")
            .map(|s| s.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["mine_example_org".to_string()])
    );
    assert_eq!(l.stacks["foreign"], [OTHER.to_string()].into());
    assert_eq!(l.stacks["mine_example_org"], ["mine".to_string()].into());
    assert_eq!(l.hosts["blog.example.org"], ["foreign".to_string()].into());
    assert_eq!(
        l.hosts["mine.example.org"],
        ["mine_example_org".to_string()].into()
    );
    // Seen from another pool, `mine` is someone else's.
    let q = ix.live_names("q");
    assert!(q.placed.is_empty());
    assert_eq!(q.stacks["mine_example_org"], [OTHER.to_string()].into());
}

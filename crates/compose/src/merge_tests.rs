//! Tests of overlay merging: every docker/cli merge rule, per field and per kind of value.
use super::*;
use crate::yaml::parse_yaml_file;

fn merged(base: &str, overlay: &str) -> Node {
    let b = parse_yaml_file(base, "base.yml", 0).unwrap_or_else(|e| panic!("{e}"));
    let o = parse_yaml_file(overlay, "overlay.yml", 1).unwrap_or_else(|e| panic!("{e}"));
    merge_files(b, o)
}

fn svc(base: &str, overlay: &str) -> Node {
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let b = format!("services:\n  app:\n{}", indent(base));
    let o = format!("services:\n  app:\n{}", indent(overlay));
    merged(&b, &o)
        .get("services")
        .and_then(|s| s.get("app"))
        .cloned()
        .unwrap_or_else(|| panic!("no app"))
}

fn strs(n: Option<&Node>) -> Vec<String> {
    match n.map(|n| &n.value) {
        Some(NodeValue::Seq(v)) => v.iter().filter_map(Node::scalar_string).collect(),
        Some(NodeValue::Map(m)) => m
            .iter()
            .map(|(k, (_, v))| format!("{k}={}", v.scalar_string().unwrap_or("~".into())))
            .collect(),
        _ => vec![],
    }
}

#[test]
fn scalars_override_unless_zero() {
    let s = svc(
        "image: a\nread_only: true\nuser: x",
        "image: b\nread_only: false\nuser: ''",
    );
    assert_eq!(s.get("image").and_then(Node::as_str), Some("b"));
    assert_eq!(
        s.get("read_only").map(|n| &n.value),
        Some(&NodeValue::Bool(true))
    );
    assert_eq!(s.get("user").and_then(Node::as_str), Some("x"));
    assert_eq!(s.get("image").map(|n| n.file), Some(1));
    assert_eq!(s.file, 0);
}

#[test]
fn lists_append_but_commands_replace() {
    let s = svc(
        "cap_add: [A]\ndns: 1.1.1.1\ncommand: [a, b]\nentrypoint: x",
        "cap_add: [B]\ndns: [8.8.8.8]\ncommand: c\nentrypoint: ''",
    );
    assert_eq!(strs(s.get("cap_add")), vec!["A", "B"]);
    assert_eq!(strs(s.get("dns")), vec!["1.1.1.1", "8.8.8.8"]);
    assert_eq!(s.get("command").and_then(Node::as_str), Some("c"));
    assert_eq!(s.get("entrypoint").and_then(Node::as_str), Some("x"));
}

#[test]
fn extra_hosts_normalised_and_appended() {
    let s = svc("extra_hosts: ['a=1.2.3.4']", "extra_hosts: {b: '::1'}");
    assert_eq!(strs(s.get("extra_hosts")), vec!["a:1.2.3.4", "b:::1"]);
}

#[test]
fn environment_list_and_map_merge_by_key() {
    let s = svc(
        "environment:\n  - A=1\n  - B=2\n  - C=3\n  - E=",
        "environment:\n  B: two\n  C: ''\n  D: 4\n  E: five",
    );
    assert_eq!(
        strs(s.get("environment")),
        vec!["A=1", "B=two", "C=3", "E=five", "D=4"]
    );
    let s = svc("environment: {A: '1'}", "environment: [A]");
    assert_eq!(strs(s.get("environment")), vec!["A=1"]);
}

#[test]
fn labels_and_deploy_labels_merge_by_key() {
    let s = svc(
        "labels: [a=1, b=2]\ndeploy:\n  labels:\n    - traefik.enable=true\n    - x=1",
        "labels: {b: ''}\ndeploy:\n  labels:\n    x: '2'\n    y: '3'",
    );
    assert_eq!(strs(s.get("labels")), vec!["a=1", "b="]);
    let d = s.get("deploy").and_then(|d| d.get("labels"));
    assert_eq!(strs(d), vec!["traefik.enable=true", "x=2", "y=3"]);
}

#[test]
fn ports_keyed_by_published_and_sorted() {
    let s = svc(
        "ports: ['9090:90', '8080:80', '53:53/udp', '53:53/tcp']",
        "ports:\n  - {target: 81, published: 8080}",
    );
    let ports = match s.get("ports").map(|n| &n.value) {
        Some(NodeValue::Seq(v)) => v.clone(),
        _ => vec![],
    };
    assert_eq!(ports.len(), 3);
    assert_eq!(ports[0].as_str(), Some("53:53/tcp"));
    assert_eq!(
        ports[1].get("target").map(|n| &n.value),
        Some(&NodeValue::Int(81))
    );
    assert_eq!(ports[2].as_str(), Some("9090:90"));
}

#[test]
fn port_ranges_expand() {
    let p = parse_port_spec("127.0.0.1:8000-8001:80-81/udp").unwrap_or_default();
    assert_eq!(p.len(), 2);
    assert_eq!(
        (p[1].published, p[1].target, p[1].protocol.as_str()),
        (8001, 81, "udp")
    );
    assert_eq!(parse_port_spec("80").map(|p| p[0].published), Some(0));
    assert!(parse_port_spec("x:80").is_none());
}

#[test]
fn volumes_keyed_by_target() {
    let s = svc(
        "volumes: ['data:/data', '/etc/x:/x:ro']",
        "volumes:\n  - other:/data\n  - {type: bind, source: /y, target: /a}",
    );
    assert_eq!(strs(s.get("volumes")).len(), 2);
    let v = match s.get("volumes").map(|n| &n.value) {
        Some(NodeValue::Seq(v)) => v.clone(),
        _ => vec![],
    };
    assert_eq!(v[0].get("target").and_then(Node::as_str), Some("/a"));
    assert_eq!(v[1].as_str(), Some("other:/data"));
    assert_eq!(v[2].as_str(), Some("/etc/x:/x:ro"));
}

#[test]
fn secrets_and_configs_keyed_by_source() {
    let s = svc(
        "secrets: [b, a]\nconfigs:\n  - source: c\n    target: /old",
        "secrets:\n  - source: a\n    mode: 0400\nconfigs:\n  - source: c\n    target: /new",
    );
    let secrets = match s.get("secrets").map(|n| &n.value) {
        Some(NodeValue::Seq(v)) => v.clone(),
        _ => vec![],
    };
    assert_eq!(secrets.len(), 2);
    assert_eq!(
        secrets[0].get("mode").map(|n| &n.value),
        Some(&NodeValue::Int(256))
    );
    assert_eq!(secrets[1].as_str(), Some("b"));
    let c = s.get("configs").map(|c| strs(Some(c)));
    assert_eq!(c.map(|c| c.len()), Some(0)); // maps, not scalars
}

#[test]
fn keyed_lists_collapse_even_without_overlay_list() {
    let s = svc("ports: ['80', '81']\nsecrets: [b, a]", "image: x");
    assert_eq!(strs(s.get("ports")), vec!["81"]);
    assert_eq!(strs(s.get("secrets")), vec!["a", "b"]);
}

#[test]
fn deploy_fields_merge_individually() {
    let s = svc(
        "deploy:\n  replicas: 2\n  update_config:\n    parallelism: 2\n    delay: 10s\n    order: start-first\n  \
         restart_policy:\n    condition: on-failure\n    max_attempts: 3\n  resources:\n    limits:\n      memory: 1G\n      cpus: '0.5'\n  \
         placement:\n    constraints: [a]",
        "deploy:\n  replicas: 0\n  update_config:\n    delay: 0s\n    failure_action: rollback\n  \
         restart_policy:\n    max_attempts: 0\n  resources:\n    limits:\n      memory: 2G\n  \
         placement:\n    constraints: [b]",
    );
    let d = s.get("deploy").unwrap_or_else(|| panic!());
    assert_eq!(
        d.get("replicas").map(|n| &n.value),
        Some(&NodeValue::Int(0))
    );
    let u = d.get("update_config").unwrap_or_else(|| panic!());
    assert_eq!(
        u.get("parallelism").map(|n| &n.value),
        Some(&NodeValue::Int(2))
    );
    assert_eq!(u.get("delay").and_then(Node::as_str), Some("10s"));
    assert_eq!(u.get("order").and_then(Node::as_str), Some("start-first"));
    assert_eq!(
        u.get("failure_action").and_then(Node::as_str),
        Some("rollback")
    );
    let r = d.get("restart_policy").unwrap_or_else(|| panic!());
    assert_eq!(
        r.get("condition").and_then(Node::as_str),
        Some("on-failure")
    );
    assert_eq!(
        r.get("max_attempts").map(|n| &n.value),
        Some(&NodeValue::Int(0))
    );
    let l = d
        .get("resources")
        .and_then(|r| r.get("limits"))
        .unwrap_or_else(|| panic!());
    assert_eq!(l.get("memory").and_then(Node::as_str), Some("2G"));
    assert_eq!(l.get("cpus").and_then(Node::as_str), Some("0.5"));
    let c = d.get("placement").and_then(|p| p.get("constraints"));
    assert_eq!(strs(c), vec!["a", "b"]);
}

#[test]
fn service_networks_and_ulimits() {
    let s = svc(
        "networks:\n  internal:\n    aliases: [db]\n  proxy:\nulimits:\n  nofile: {soft: 1, hard: 2}\n  nproc: 10",
        "networks: [backend, internal]\nulimits:\n  nofile: 5",
    );
    let n = s.get("networks").unwrap_or_else(|| panic!());
    let keys: Vec<_> = n
        .as_map()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(keys, vec!["internal", "proxy", "backend"]);
    // overlay's null entry keeps the base's aliases
    assert_eq!(
        strs(n.get("internal").and_then(|i| i.get("aliases"))),
        vec!["db"]
    );
    let s2 = svc(
        "networks:\n  internal:\n    aliases: [db]\n    ipv4_address: 10.0.0.2",
        "networks:\n  internal:\n    ipv6_address: ::1",
    );
    let i = s2
        .get("networks")
        .and_then(|n| n.get("internal"))
        .unwrap_or_else(|| panic!());
    assert!(i.get("aliases").is_none());
    assert_eq!(
        i.get("ipv4_address").and_then(Node::as_str),
        Some("10.0.0.2")
    );
    assert_eq!(i.get("ipv6_address").and_then(Node::as_str), Some("::1"));
    let u = s.get("ulimits").unwrap_or_else(|| panic!());
    assert_eq!(u.get("nofile").map(|n| &n.value), Some(&NodeValue::Int(5)));
    assert_eq!(u.get("nproc").map(|n| &n.value), Some(&NodeValue::Int(10)));
}

#[test]
fn logging_and_healthcheck() {
    let s = svc(
        "logging:\n  driver: json-file\n  options: {max-size: 1m}\nhealthcheck:\n  test: curl x\n  retries: 3\n  interval: 10s",
        "logging:\n  options: {max-file: '3'}\nhealthcheck:\n  test: [CMD, true]\n  interval: 5s",
    );
    let l = s.get("logging").unwrap_or_else(|| panic!());
    assert_eq!(l.get("driver").and_then(Node::as_str), Some("json-file"));
    assert_eq!(strs(l.get("options")), vec!["max-size=1m", "max-file=3"]);
    let h = s.get("healthcheck").unwrap_or_else(|| panic!());
    assert_eq!(
        strs(h.get("test")),
        vec!["CMD-SHELL", "curl x", "CMD", "true"]
    );
    assert_eq!(h.get("interval").and_then(Node::as_str), Some("5s"));
    let s = svc(
        "logging: {driver: a, options: {x: '1'}}",
        "logging: {driver: b}",
    );
    assert!(s.get("logging").and_then(|l| l.get("options")).is_none());
}

#[test]
fn top_level_sections_replace_by_name_and_services_sort() {
    let m = merged(
        "version: '3.8'\nx-a: 1\nservices:\n  web: {image: a}\n  db: {image: d}\nnetworks:\n  proxy: {external: true}\n  internal: {driver: overlay}\n",
        "version: '3.8'\nx-b: 2\nservices:\n  app: {image: c}\nnetworks:\n  internal: {attachable: true}\nsecrets:\n  s: {external: true}\n",
    );
    let svcs: Vec<_> = m
        .get("services")
        .and_then(Node::as_map)
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(svcs, vec!["app", "db", "web"]);
    let app = m
        .get("services")
        .and_then(|s| s.get("app"))
        .unwrap_or_else(|| panic!());
    assert_eq!(app.file, 1);
    let internal = m
        .get("networks")
        .and_then(|n| n.get("internal"))
        .unwrap_or_else(|| panic!());
    assert!(internal.get("driver").is_none());
    assert!(m.get("secrets").is_some());
    assert!(m.get("x-a").is_some());
    assert!(m.get("x-b").is_none());
}

#[test]
fn extras_deep_merge() {
    let s = svc("x-a: {b: [1], c: 1}", "x-a: {b: [2], c: 2, d: 3}");
    let x = s.get("x-a").unwrap_or_else(|| panic!());
    assert_eq!(strs(x.get("b")), vec!["1", "2"]);
    assert_eq!(x.get("c").map(|n| &n.value), Some(&NodeValue::Int(2)));
}

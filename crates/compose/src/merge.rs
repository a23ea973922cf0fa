//! Overlay merging (`COMPOSE_FILE=a.yml:b.yml`), reproducing docker/cli `loader/merge.go`.
//!
//! docker/cli loads each file into typed structs and merges them with `mergo` (`WithOverride`,
//! `WithAppendSlice`, plus special transformers). On the untyped tree that means, per service:
//! - scalars: the overlay wins unless its value is Go's zero value (`""`, `0`, `false`, null):
//!   an overlay can never turn `read_only: true` back to `false` or blank out `image`;
//! - pointer fields (`deploy.replicas`, `*.parallelism`, `max_attempts`, `healthcheck.retries`):
//!   the overlay wins whenever it is set, even to 0;
//! - durations (`stop_grace_period`, `update_config.delay`, ...): the overlay wins unless zero;
//! - lists are APPENDED (`cap_add`, `dns`, `extra_hosts`, `placement.constraints`,
//!   `healthcheck.test`, ...), except `command`/`entrypoint` (replaced when the overlay's is
//!   non-empty) and the keyed lists: `ports` by published port, `volumes` by target,
//!   `secrets`/`configs` by source; keyed lists are collapsed to one entry per key and sorted by
//!   key whenever the base service has the list (docker/cli's transformer does that);
//! - `environment`/`build.args`: per key; the overlay wins unless its value is empty or absent
//!   while the base has a non-empty value (mergo's pointer rule); list form `K=V` -> map;
//! - `labels`, `deploy.labels`, `sysctls`: per key, overlay always wins; list form -> map;
//! - `networks`: per network; both set -> base kept with `aliases` replaced by the overlay's and
//!   `ipv4_address`/`ipv6_address` replaced when the overlay sets them;
//! - `ulimits`: per name, replaced whole; `logging`: options merged when the drivers agree (or
//!   one is unset), replaced whole otherwise;
//! - `deploy`, `update_config`, `rollback_config`, `restart_policy`, `resources`, `placement`,
//!   `healthcheck`, `build`, `credential_spec`: field by field with the rules above;
//! - `x-*` keys: maps deep-merged, lists appended, scalars replaced.
//!
//! Top level: services merged by name (then sorted by name, as docker/cli does); `networks`,
//! `volumes`, `secrets`, `configs` merged by name with the overlay's definition replacing the
//! base's whole; `version` and other top-level keys come from the base file only.
//! Every node keeps the file it came from.

use indexmap::IndexMap;

use crate::yaml::{Node, NodeValue};
use hearth_diag::Pos;

type Map = IndexMap<String, (Pos, Node)>;

/// Merge `overlay` (a later compose file) onto `base`; both are whole-file trees.
pub fn merge_files(base: Node, overlay: Node) -> Node {
    let (NodeValue::Map(mut b), NodeValue::Map(o)) = (base.value.clone(), overlay.value) else {
        return base;
    };
    for (key, (kpos, onode)) in o {
        match key.as_str() {
            "services" => {
                let merged = match b.shift_remove_full(&key) {
                    Some((idx, _, (bpos, bnode))) => {
                        let m = merge_services(bnode, onode);
                        b.shift_insert(idx, key.clone(), (bpos, m));
                        continue;
                    }
                    None => sort_services(onode),
                };
                b.insert(key, (kpos, merged));
            }
            "networks" | "volumes" | "secrets" | "configs" => {
                let merged = match b.get(&key) {
                    Some((_, bnode)) => replace_by_name(bnode.clone(), onode),
                    None => onode,
                };
                upsert(&mut b, key, kpos, merged);
            }
            _ => {}
        }
    }
    Node::new(NodeValue::Map(b), base.file, base.pos)
}

fn upsert(map: &mut Map, key: String, kpos: Pos, node: Node) {
    match map.get_mut(&key) {
        Some(slot) => slot.1 = node,
        None => {
            map.insert(key, (kpos, node));
        }
    }
}

fn sort_services(node: Node) -> Node {
    match node.value {
        NodeValue::Map(mut m) => {
            m.sort_keys();
            Node::new(NodeValue::Map(m), node.file, node.pos)
        }
        other => Node::new(other, node.file, node.pos),
    }
}

fn replace_by_name(base: Node, overlay: Node) -> Node {
    match (base.value, overlay.value) {
        (NodeValue::Map(mut b), NodeValue::Map(o)) => {
            for (k, (kpos, v)) in o {
                upsert(&mut b, k, kpos, v);
            }
            Node::new(NodeValue::Map(b), base.file, base.pos)
        }
        (bv, NodeValue::Null) => Node::new(bv, base.file, base.pos),
        (_, ov) => Node::new(ov, overlay.file, overlay.pos),
    }
}

fn merge_services(base: Node, overlay: Node) -> Node {
    let (file, pos) = (base.file, base.pos);
    let mut b = match base.value {
        NodeValue::Map(m) => m,
        _ => Map::new(),
    };
    if let NodeValue::Map(o) = overlay.value {
        for (name, (kpos, osvc)) in o {
            match b.get_mut(&name) {
                Some(slot) => {
                    let bsvc = std::mem::replace(&mut slot.1, null_at(&osvc));
                    slot.1 = merge_struct(bsvc, osvc, service_rule);
                }
                None => {
                    b.insert(name, (kpos, osvc));
                }
            }
        }
    }
    b.sort_keys();
    Node::new(NodeValue::Map(b), file, pos)
}

fn null_at(n: &Node) -> Node {
    Node::new(NodeValue::Null, n.file, n.pos)
}

// ---------------------------------------------------------------------------------------------
// Rules

#[derive(Clone, Copy)]
enum Rule {
    /// Go scalar: overlay wins unless zero.
    Scalar,
    /// A Go string field that may be written as a number (`cpus: 0`): only "" and null are zero.
    StringScalar,
    /// `*uint64` with docker/cli's transformer: overlay wins when set.
    PtrUint,
    /// `*bool`: set if unset, otherwise only `true` overrides.
    PtrBool,
    /// `Duration`/`*Duration`: overlay wins unless it is a zero duration.
    Duration,
    /// `UnitBytes`: overlay wins unless zero.
    Memory,
    /// Slices: appended.
    Append,
    /// `StringList` (string or list): appended.
    AppendStringList,
    /// `extra_hosts`: normalised to `host:ip` then appended.
    AppendHosts,
    /// `healthcheck.test`: a string is `["CMD-SHELL", s]`; appended.
    AppendHealthTest,
    /// `ShellCommand`: replaced when the overlay is non-empty.
    ShellCommand,
    Environment,
    StringMap,
    Ports,
    Volumes,
    Sources,
    ServiceNetworks,
    Ulimits,
    Logging,
    Build,
    Struct(fn(&str) -> Rule),
    Extra,
}

fn service_rule(key: &str) -> Rule {
    match key {
        "command" | "entrypoint" => Rule::ShellCommand,
        "environment" => Rule::Environment,
        "labels" | "sysctls" => Rule::StringMap,
        "ports" => Rule::Ports,
        "volumes" => Rule::Volumes,
        "secrets" | "configs" => Rule::Sources,
        "networks" => Rule::ServiceNetworks,
        "ulimits" => Rule::Ulimits,
        "logging" => Rule::Logging,
        "build" => Rule::Build,
        "deploy" => Rule::Struct(deploy_rule),
        "healthcheck" => Rule::Struct(healthcheck_rule),
        "credential_spec" => Rule::Struct(|_| Rule::Scalar),
        "extra_hosts" => Rule::AppendHosts,
        "dns" | "dns_search" | "env_file" | "tmpfs" => Rule::AppendStringList,
        "cap_add" | "cap_drop" | "depends_on" | "devices" | "expose" | "external_links"
        | "links" | "security_opt" => Rule::Append,
        "init" => Rule::PtrBool,
        "stop_grace_period" => Rule::Duration,
        k if k.starts_with("x-") => Rule::Extra,
        _ => Rule::Scalar,
    }
}

fn deploy_rule(key: &str) -> Rule {
    match key {
        "replicas" => Rule::PtrUint,
        "labels" => Rule::StringMap,
        "update_config" | "rollback_config" => Rule::Struct(update_rule),
        "resources" => Rule::Struct(|k| match k {
            "limits" | "reservations" => Rule::Struct(resource_rule),
            _ => Rule::Scalar,
        }),
        "restart_policy" => Rule::Struct(|k| match k {
            "delay" | "window" => Rule::Duration,
            "max_attempts" => Rule::PtrUint,
            _ => Rule::Scalar,
        }),
        "placement" => Rule::Struct(|k| match k {
            "constraints" | "preferences" => Rule::Append,
            _ => Rule::Scalar,
        }),
        _ => Rule::Scalar,
    }
}

fn update_rule(key: &str) -> Rule {
    match key {
        "parallelism" => Rule::PtrUint,
        "delay" | "monitor" => Rule::Duration,
        _ => Rule::Scalar,
    }
}

fn resource_rule(key: &str) -> Rule {
    match key {
        "cpus" => Rule::StringScalar,
        "memory" => Rule::Memory,
        "generic_resources" => Rule::Append,
        _ => Rule::Scalar,
    }
}

fn healthcheck_rule(key: &str) -> Rule {
    match key {
        "test" => Rule::AppendHealthTest,
        "timeout" | "interval" | "start_period" | "start_interval" => Rule::Duration,
        "retries" => Rule::PtrUint,
        _ => Rule::Scalar,
    }
}

fn build_rule(key: &str) -> Rule {
    match key {
        "args" => Rule::Environment,
        "labels" => Rule::StringMap,
        "cache_from" => Rule::AppendStringList,
        "extra_hosts" => Rule::AppendHosts,
        _ => Rule::Scalar,
    }
}

/// Go zero value of a scalar as the typed field would hold it.
fn is_zero(n: &Node) -> bool {
    match &n.value {
        NodeValue::Null => true,
        NodeValue::Bool(b) => !b,
        NodeValue::Int(i) => *i == 0,
        NodeValue::Float(f) => *f == 0.0,
        NodeValue::Str(s) => s.is_empty(),
        NodeValue::Seq(v) => v.is_empty(),
        NodeValue::Map(m) => m.is_empty(),
    }
}

/// A duration or byte size that parses to zero (`0`, `0s`, `0m0s`, `0b`).
fn is_zero_quantity(n: &Node) -> bool {
    match &n.value {
        NodeValue::Str(s) => {
            s.is_empty()
                || (s.chars().any(|c| c.is_ascii_digit())
                    && s.chars().filter(char::is_ascii_digit).all(|c| c == '0'))
        }
        _ => is_zero(n),
    }
}

/// Field-by-field merge of two maps (a Go struct), `rule` giving each field's rule.
fn merge_struct(base: Node, overlay: Node, rule: fn(&str) -> Rule) -> Node {
    let (file, pos) = (base.file, base.pos);
    let (mut b, o) = match (base.value, overlay.value) {
        (NodeValue::Map(b), NodeValue::Map(o)) => (b, o),
        (NodeValue::Map(b), _) => (b, Map::new()),
        (_, ov) => return Node::new(ov, overlay.file, overlay.pos),
    };
    // Keyed lists are collapsed and sorted even when only the base has them.
    for (key, (_, bnode)) in b.iter_mut() {
        if !o.contains_key(key) && matches!(rule(key), Rule::Ports | Rule::Volumes | Rule::Sources)
        {
            let taken = std::mem::replace(bnode, null_at(bnode));
            *bnode = merge_value(rule(key), taken, None);
        }
    }
    for (key, (kpos, onode)) in o {
        let r = rule(&key);
        match b.get_mut(&key) {
            Some(slot) => {
                let taken = std::mem::replace(&mut slot.1, null_at(&onode));
                slot.1 = merge_value(r, taken, Some(onode));
            }
            None => {
                b.insert(key, (kpos, onode));
            }
        }
    }
    Node::new(NodeValue::Map(b), file, pos)
}

fn merge_value(rule: Rule, base: Node, overlay: Option<Node>) -> Node {
    let Some(overlay) = overlay else {
        return match rule {
            Rule::Ports => keyed(base, None, port_keys),
            Rule::Volumes => keyed(base, None, volume_keys),
            Rule::Sources => keyed(base, None, source_keys),
            _ => base,
        };
    };
    match rule {
        Rule::Scalar => pick(base, overlay, |o| !is_zero(o)),
        Rule::StringScalar => pick(base, overlay, |o| match &o.value {
            NodeValue::Null => false,
            NodeValue::Str(s) => !s.is_empty(),
            _ => true,
        }),
        Rule::PtrUint => pick(base, overlay, |o| !o.is_null()),
        Rule::PtrBool => {
            if base.is_null() {
                overlay
            } else {
                pick(base, overlay, |o| matches!(o.value, NodeValue::Bool(true)))
            }
        }
        Rule::Duration | Rule::Memory => {
            if base.is_null() {
                overlay
            } else {
                pick(base, overlay, |o| !is_zero_quantity(o))
            }
        }
        Rule::Append => append(base, overlay, |n| n),
        Rule::AppendStringList => append(base, overlay, string_list),
        Rule::AppendHosts => append(base, overlay, hosts_list),
        Rule::AppendHealthTest => append(base, overlay, health_test),
        Rule::ShellCommand => pick(base, overlay, |o| match &o.value {
            NodeValue::Str(s) => !s.trim().is_empty(),
            NodeValue::Seq(v) => !v.is_empty(),
            _ => false,
        }),
        Rule::Environment => merge_env(base, overlay),
        Rule::StringMap => merge_string_map(base, overlay),
        Rule::Ports => keyed(base, Some(overlay), port_keys),
        Rule::Volumes => keyed(base, Some(overlay), volume_keys),
        Rule::Sources => keyed(base, Some(overlay), source_keys),
        Rule::ServiceNetworks => merge_service_networks(base, overlay),
        Rule::Ulimits => merge_per_key(base, overlay, |_, o| o),
        Rule::Logging => merge_logging(base, overlay),
        Rule::Build => merge_struct(build_form(base), build_form(overlay), build_rule),
        Rule::Struct(r) => {
            if overlay.is_null() {
                base
            } else {
                merge_struct(base, overlay, r)
            }
        }
        Rule::Extra => merge_any(base, overlay),
    }
}

fn pick(base: Node, overlay: Node, overlay_wins: impl Fn(&Node) -> bool) -> Node {
    if overlay_wins(&overlay) {
        overlay
    } else {
        base
    }
}

fn seq_items(n: Node) -> Option<Vec<Node>> {
    match n.value {
        NodeValue::Seq(v) => Some(v),
        NodeValue::Null => None,
        other => Some(vec![Node::new(other, n.file, n.pos)]),
    }
}

/// mergo `WithAppendSlice`: base items then overlay items (after normalising both).
fn append(base: Node, overlay: Node, normalise: fn(Node) -> Node) -> Node {
    if overlay.is_null() {
        return base;
    }
    let overlay = normalise(overlay);
    if base.is_null() {
        return overlay;
    }
    let base = normalise(base);
    let (file, pos) = (base.file, base.pos);
    let mut items = seq_items(base).unwrap_or_default();
    items.extend(seq_items(overlay).unwrap_or_default());
    Node::new(NodeValue::Seq(items), file, pos)
}

fn string_list(n: Node) -> Node {
    match n.value {
        NodeValue::Str(_) => {
            let (file, pos) = (n.file, n.pos);
            Node::new(NodeValue::Seq(vec![n]), file, pos)
        }
        _ => n,
    }
}

fn health_test(n: Node) -> Node {
    match &n.value {
        NodeValue::Str(_) => {
            let shell = Node::new(NodeValue::Str("CMD-SHELL".into()), n.file, n.pos);
            let (file, pos) = (n.file, n.pos);
            Node::new(NodeValue::Seq(vec![shell, n]), file, pos)
        }
        _ => n,
    }
}

/// docker/cli `transformHostsList`: map or `host=ip`/`host:ip` list -> `host:ip` strings.
fn hosts_list(n: Node) -> Node {
    let (file, pos) = (n.file, n.pos);
    let entry = |host: &str, ip: &str, at: &Node| {
        let ip = if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
            &ip[1..ip.len() - 1]
        } else {
            ip
        };
        Node::new(NodeValue::Str(format!("{host}:{ip}")), at.file, at.pos)
    };
    let items = match &n.value {
        NodeValue::Map(m) => {
            let mut v: Vec<Node> = m
                .iter()
                .filter(|(_, (_, val))| !val.is_null())
                .map(|(k, (_, val))| entry(k, &val.scalar_string().unwrap_or_default(), val))
                .collect();
            v.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            v
        }
        NodeValue::Seq(items) => items
            .iter()
            .filter_map(|it| {
                let s = it.scalar_string()?;
                let (h, ip) = s.split_once('=').or_else(|| s.split_once(':'))?;
                Some(entry(h, ip, it))
            })
            .collect(),
        NodeValue::Str(_) => return string_list(n),
        _ => return n,
    };
    Node::new(NodeValue::Seq(items), file, pos)
}

/// `K=V` / `K` list or map -> map. `bare` is what a `K` without `=` becomes.
fn to_map(n: Node, bare: fn(&Node) -> NodeValue) -> (Map, u32, Pos) {
    let (file, pos) = (n.file, n.pos);
    let map = match n.value {
        NodeValue::Map(m) => m,
        NodeValue::Seq(items) => {
            let mut m = Map::new();
            for it in items {
                let s = it.scalar_string().unwrap_or_default();
                let value = match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), NodeValue::Str(v.to_string())),
                    None => (s.clone(), bare(&it)),
                };
                m.insert(value.0, (it.pos, Node::new(value.1, it.file, it.pos)));
            }
            m
        }
        _ => Map::new(),
    };
    (map, file, pos)
}

fn merge_per_key(base: Node, overlay: Node, pick: fn(Option<Node>, Node) -> Node) -> Node {
    if overlay.is_null() {
        return base;
    }
    let (mut b, file, pos) = to_map(base, |_| NodeValue::Null);
    let (o, _, _) = to_map(overlay, |_| NodeValue::Null);
    for (k, (kpos, ov)) in o {
        match b.get_mut(&k) {
            Some(slot) => {
                let bv = std::mem::replace(&mut slot.1, null_at(&ov));
                slot.1 = if ov.is_null() { bv } else { pick(Some(bv), ov) };
            }
            None => {
                b.insert(k, (kpos, ov));
            }
        }
    }
    Node::new(NodeValue::Map(b), file, pos)
}

/// `MappingWithEquals` (`map[string]*string`) under mergo: see the module doc.
fn merge_env(base: Node, overlay: Node) -> Node {
    if overlay.is_null() {
        return base;
    }
    let empty = |n: &Node| n.is_null() || n.scalar_string().is_some_and(|s| s.is_empty());
    let (mut b, file, pos) = to_map(base, |_| NodeValue::Null);
    let (o, _, _) = to_map(overlay, |_| NodeValue::Null);
    for (k, (kpos, ov)) in o {
        match b.get_mut(&k) {
            Some(slot) => {
                if empty(&slot.1) || !empty(&ov) {
                    slot.1 = ov;
                }
            }
            None => {
                b.insert(k, (kpos, ov));
            }
        }
    }
    Node::new(NodeValue::Map(b), file, pos)
}

/// `map[string]string` (labels): overlay keys always win; bare `K` is `K=""`.
fn merge_string_map(base: Node, overlay: Node) -> Node {
    if overlay.is_null() {
        return base;
    }
    let bare = |_: &Node| NodeValue::Str(String::new());
    let (mut b, file, pos) = to_map(base, bare);
    let (o, _, _) = to_map(overlay, bare);
    for (k, (kpos, ov)) in o {
        upsert(&mut b, k, kpos, ov);
    }
    Node::new(NodeValue::Map(b), file, pos)
}

fn merge_service_networks(base: Node, overlay: Node) -> Node {
    merge_per_key(base, overlay, |b, o| {
        let Some(b) = b else { return o };
        let (NodeValue::Map(mut bm), NodeValue::Map(om)) = (b.value.clone(), &o.value) else {
            return o;
        };
        match om.get("aliases") {
            Some(a) => upsert(&mut bm, "aliases".into(), a.0, a.1.clone()),
            None => {
                bm.shift_remove("aliases");
            }
        }
        for addr in ["ipv4_address", "ipv6_address"] {
            if let Some((kpos, v)) = om.get(addr)
                && !is_zero(v)
            {
                upsert(&mut bm, addr.into(), *kpos, v.clone());
            }
        }
        Node::new(NodeValue::Map(bm), b.file, b.pos)
    })
}

fn merge_logging(base: Node, overlay: Node) -> Node {
    if overlay.is_null() {
        return base;
    }
    let driver = |n: &Node| {
        n.get("driver")
            .and_then(Node::scalar_string)
            .unwrap_or_default()
    };
    let (bd, od) = (driver(&base), driver(&overlay));
    let NodeValue::Map(mut bm) = base.value.clone() else {
        return overlay;
    };
    if !(bd == od || bd.is_empty() || od.is_empty()) {
        return overlay;
    }
    if bd.is_empty()
        && let Some((kpos, d)) = overlay.as_map().and_then(|m| m.get("driver"))
    {
        upsert(&mut bm, "driver".into(), *kpos, d.clone());
    }
    // docker/cli merges into a copy of a nil options map, so the overlay's options are lost
    // unless the base already has some.
    if let (Some((kpos, bo)), Some(oo)) = (bm.get("options").cloned(), overlay.get("options"))
        && !bo.is_null()
    {
        let merged = merge_string_map(bo, oo.clone());
        upsert(&mut bm, "options".into(), kpos, merged);
    }
    Node::new(NodeValue::Map(bm), base.file, base.pos)
}

fn build_form(n: Node) -> Node {
    match n.value {
        NodeValue::Str(_) => {
            let (file, pos) = (n.file, n.pos);
            let mut m = Map::new();
            m.insert("context".into(), (pos, n));
            Node::new(NodeValue::Map(m), file, pos)
        }
        _ => n,
    }
}

/// `map[string]any` under mergo: maps deep-merged, lists appended, everything else replaced.
fn merge_any(base: Node, overlay: Node) -> Node {
    match (base.value, overlay.value) {
        (NodeValue::Map(mut b), NodeValue::Map(o)) if !b.is_empty() => {
            for (k, (kpos, ov)) in o {
                match b.get_mut(&k) {
                    Some(slot) => {
                        let bv = std::mem::replace(&mut slot.1, null_at(&ov));
                        slot.1 = merge_any(bv, ov);
                    }
                    None => {
                        b.insert(k, (kpos, ov));
                    }
                }
            }
            Node::new(NodeValue::Map(b), base.file, base.pos)
        }
        (NodeValue::Seq(mut b), NodeValue::Seq(o)) if !b.is_empty() => {
            b.extend(o);
            Node::new(NodeValue::Seq(b), base.file, base.pos)
        }
        (_, ov) => Node::new(ov, overlay.file, overlay.pos),
    }
}

// ---------------------------------------------------------------------------------------------
// Keyed lists

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum SortKey {
    Num(u64),
    Text(String),
}

/// docker/cli `mergeSlice`: entries keyed, later wins, sorted by key.
fn keyed(base: Node, overlay: Option<Node>, keys: fn(Node) -> Vec<(SortKey, Node)>) -> Node {
    let overlay = overlay.filter(|o| !o.is_null());
    let (file, pos) = (base.file, base.pos);
    if base.is_null() {
        return overlay.unwrap_or(base);
    }
    let mut entries: IndexMap<SortKey, Node> = IndexMap::new();
    for (k, n) in keys(base) {
        entries.insert(k, n);
    }
    if let Some(o) = overlay {
        for (k, n) in keys(o) {
            entries.insert(k, n);
        }
    }
    entries.sort_keys();
    Node::new(NodeValue::Seq(entries.into_values().collect()), file, pos)
}

fn source_keys(n: Node) -> Vec<(SortKey, Node)> {
    seq_items(n)
        .unwrap_or_default()
        .into_iter()
        .map(|it| {
            let key = match &it.value {
                NodeValue::Map(_) => it.get("source").and_then(Node::scalar_string),
                _ => it.scalar_string(),
            };
            (SortKey::Text(key.unwrap_or_default()), it)
        })
        .collect()
}

fn volume_keys(n: Node) -> Vec<(SortKey, Node)> {
    seq_items(n)
        .unwrap_or_default()
        .into_iter()
        .map(|it| {
            let key = match &it.value {
                NodeValue::Map(_) => it.get("target").and_then(Node::scalar_string),
                _ => it.scalar_string().map(|s| volume_target(&s)),
            };
            (SortKey::Text(key.unwrap_or_default()), it)
        })
        .collect()
}

/// The target of a short-syntax volume (`src:target[:mode]` or an anonymous `target`).
pub fn volume_target(spec: &str) -> String {
    let mut parts = spec.split(':');
    let first = parts.next().unwrap_or_default();
    parts.next().unwrap_or(first).to_string()
}

fn port_keys(n: Node) -> Vec<(SortKey, Node)> {
    let mut out = Vec::new();
    for it in seq_items(n).unwrap_or_default() {
        match &it.value {
            NodeValue::Map(_) => {
                let published = it
                    .get("published")
                    .and_then(Node::scalar_string)
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                out.push((SortKey::Num(published), it));
            }
            _ => {
                let spec = it.scalar_string().unwrap_or_default();
                match parse_port_spec(&spec) {
                    Some(ports) if ports.len() == 1 => {
                        out.push((SortKey::Num(u64::from(ports[0].published)), it));
                    }
                    Some(ports) => {
                        for p in ports {
                            out.push((SortKey::Num(u64::from(p.published)), p.to_node(&it)));
                        }
                    }
                    None => out.push((SortKey::Text(spec), it)),
                }
            }
        }
    }
    out
}

/// One port of a short-syntax spec, as docker/cli's `toServicePortConfigs` produces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub target: u32,
    pub published: u32,
    pub protocol: String,
}

impl PortSpec {
    fn to_node(&self, at: &Node) -> Node {
        let mk = |v: NodeValue| Node::new(v, at.file, at.pos);
        let mut m = Map::new();
        m.insert(
            "mode".into(),
            (at.pos, mk(NodeValue::Str("ingress".into()))),
        );
        m.insert(
            "target".into(),
            (at.pos, mk(NodeValue::Int(i64::from(self.target)))),
        );
        if self.published != 0 {
            let p = NodeValue::Int(i64::from(self.published));
            m.insert("published".into(), (at.pos, mk(p)));
        }
        let proto = NodeValue::Str(self.protocol.clone());
        m.insert("protocol".into(), (at.pos, mk(proto)));
        mk(NodeValue::Map(m))
    }
}

fn port_range(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b && b <= 65535).then_some((a, b))
}

/// Parse `[ip:][published[-range]:]target[-range][/proto]` (go-connections `ParsePortSpecs`).
pub fn parse_port_spec(spec: &str) -> Option<Vec<PortSpec>> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) if !p.is_empty() => (r, p.to_lowercase()),
        Some(_) => return None,
        None => (spec, "tcp".to_string()),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let target = parts.last()?;
    let host = if parts.len() >= 2 {
        parts[parts.len() - 2]
    } else {
        ""
    };
    let (ts, te) = port_range(target)?;
    if host.is_empty() {
        return Some(
            (ts..=te)
                .map(|t| PortSpec {
                    target: t,
                    published: 0,
                    protocol: proto.clone(),
                })
                .collect(),
        );
    }
    let (hs, he) = port_range(host)?;
    if te - ts != he - hs {
        if te != ts {
            return None;
        }
        return Some(vec![PortSpec {
            target: ts,
            published: hs,
            protocol: proto,
        }]);
    }
    Some(
        (0..=(te - ts))
            .map(|i| PortSpec {
                target: ts + i,
                published: hs + i,
                protocol: proto.clone(),
            })
            .collect(),
    )
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;

//! The task template's container spec of one service (docker/cli `convert.Service`'s container
//! part and its helpers: environment, extra hosts, DNS, capabilities, ulimits). Called by
//! `service.rs`; see docs/architecture.md.

use std::collections::HashMap;

use bollard::models::{
    HealthConfig, Mount, ResourcesUlimits, TaskSpecContainerSpec, TaskSpecContainerSpecConfigs,
    TaskSpecContainerSpecDnsConfig, TaskSpecContainerSpecIsolationEnum,
    TaskSpecContainerSpecPrivileges, TaskSpecContainerSpecSecrets,
};

use super::image::normalize_image;
use super::service::{non_empty, non_empty_vec};
use super::{Cx, LABEL_NAMESPACE};
use crate::compose::model::Service;

/// What the container spec takes from the other renderers of the service.
pub(super) struct ContainerRefs {
    pub(super) mounts: Vec<Mount>,
    pub(super) health: Option<HealthConfig>,
    pub(super) secrets: Vec<TaskSpecContainerSpecSecrets>,
    pub(super) configs: Vec<TaskSpecContainerSpecConfigs>,
    pub(super) isolation: Option<TaskSpecContainerSpecIsolationEnum>,
}

/// The task template's container spec: image, command, environment, user, mounts, secrets and
/// configs, capabilities, ulimits, ... and the stack's label on the container.
pub(super) fn container_spec(
    cx: &Cx,
    svc: &Service,
    image: &str,
    refs: ContainerRefs,
) -> TaskSpecContainerSpec {
    let ContainerRefs {
        mounts,
        health,
        secrets,
        configs,
        isolation,
    } = refs;
    let (cap_add, cap_drop) = effective_caps(&svc.cap_add, &svc.cap_drop);
    let mut container_labels: HashMap<String, String> = svc
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    container_labels.insert(LABEL_NAMESPACE.into(), cx.stack().into());

    TaskSpecContainerSpec {
        // docker/cli's client sends the image with `:latest` added (see `image.rs`); the stack
        // label keeps the compose file's text, as `convert.Service` does.
        image: Some(normalize_image(image)),
        labels: Some(container_labels),
        command: non_empty_vec(svc.entrypoint.clone().unwrap_or_default()),
        args: non_empty_vec(svc.command.clone().unwrap_or_default()),
        hostname: non_empty(&svc.hostname),
        env: non_empty_vec(environment(&svc.environment)),
        dir: non_empty(&svc.working_dir),
        user: non_empty(&svc.user),
        privileges: Some(TaskSpecContainerSpecPrivileges::default()),
        tty: svc.tty.then_some(true),
        open_stdin: svc.stdin_open.then_some(true),
        read_only: svc.read_only.then_some(true),
        mounts: non_empty_vec(mounts),
        stop_signal: non_empty(&svc.stop_signal),
        stop_grace_period: svc.stop_grace_period.map(|d| d.nanos()),
        health_check: health,
        hosts: non_empty_vec(extra_hosts(&svc.extra_hosts)),
        dns_config: dns_config(&svc.dns, &svc.dns_search),
        secrets: non_empty_vec(secrets),
        configs: non_empty_vec(configs),
        isolation,
        init: svc.init,
        sysctls: (!svc.sysctls.is_empty()).then(|| {
            svc.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        capability_add: non_empty_vec(cap_add),
        capability_drop: non_empty_vec(cap_drop),
        ulimits: non_empty_vec(ulimits(svc)),
        oom_score_adj: svc.oom_score_adj.filter(|n| *n != 0),
        ..Default::default()
    }
}

/// docker/cli `convertEnvironment`: `K=V` or bare `K`, sorted.
fn environment(env: &indexmap::IndexMap<String, Option<String>>) -> Vec<String> {
    let mut out: Vec<String> = env
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    out.sort();
    out
}

/// docker/cli `convertExtraHosts`: `host:ip` -> `ip host`, order kept.
fn extra_hosts(hosts: &[String]) -> Vec<String> {
    hosts
        .iter()
        .filter_map(|h| h.split_once(':').map(|(host, ip)| format!("{ip} {host}")))
        .collect()
}

/// docker/cli `convertDNSConfig`; nameservers that are not IP addresses are dropped as it does.
fn dns_config(dns: &[String], search: &[String]) -> Option<TaskSpecContainerSpecDnsConfig> {
    if dns.is_empty() && search.is_empty() {
        return None;
    }
    let ns: Vec<String> = dns
        .iter()
        .filter_map(|ip| ip.parse::<std::net::IpAddr>().ok().map(|a| a.to_string()))
        .collect();
    Some(TaskSpecContainerSpecDnsConfig {
        nameservers: non_empty_vec(ns),
        search: non_empty_vec(search.to_vec()),
        options: None,
    })
}

fn normalize_cap(c: &str) -> String {
    let c = c.trim().to_uppercase();
    if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

/// docker/cli `opts.EffectiveCapAddCapDrop`.
fn effective_caps(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    use std::collections::BTreeSet;
    let mut adds: BTreeSet<String> = add.iter().map(|c| normalize_cap(c)).collect();
    let mut drops: BTreeSet<String> = drop.iter().map(|c| normalize_cap(c)).collect();
    if adds.contains("ALL") {
        adds = BTreeSet::from(["ALL".to_owned()]);
    }
    if drops.contains("ALL") {
        drops = BTreeSet::from(["ALL".to_owned()]);
    }
    let cap_drop = drops
        .iter()
        .filter(|c| !adds.contains(*c) && *c != "RESET")
        .cloned()
        .collect();
    let cap_add = adds.into_iter().filter(|c| c != "RESET").collect();
    (cap_add, cap_drop)
}

fn ulimits(svc: &Service) -> Vec<ResourcesUlimits> {
    let mut out: Vec<ResourcesUlimits> = svc
        .ulimits
        .iter()
        .map(|(name, u)| ResourcesUlimits {
            name: Some(name.clone()),
            soft: Some(u.soft),
            hard: Some(u.hard),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_like_docker() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            effective_caps(
                &s(&["net_admin", "CAP_SYS_TIME"]),
                &s(&["net_admin", "chown"])
            ),
            (s(&["CAP_NET_ADMIN", "CAP_SYS_TIME"]), s(&["CAP_CHOWN"]))
        );
        assert_eq!(
            effective_caps(&s(&["all", "chown"]), &s(&["ALL"])),
            (s(&["ALL"]), s(&[]))
        );
    }

    #[test]
    fn hosts_and_env() {
        let h = vec!["a:10.0.0.1".to_string(), "b:::1".to_string()];
        assert_eq!(extra_hosts(&h), vec!["10.0.0.1 a", "::1 b"]);
        let env: indexmap::IndexMap<String, Option<String>> = [
            ("Z".to_string(), Some("1".to_string())),
            ("A".to_string(), None),
            ("M".to_string(), Some(String::new())),
        ]
        .into_iter()
        .collect();
        assert_eq!(environment(&env), vec!["A", "M=", "Z=1"]);
    }

    #[test]
    fn dns_drops_non_ips() {
        let d = dns_config(&["8.8.8.8".into(), "bogus".into()], &[]).unwrap();
        assert_eq!(d.nameservers.unwrap(), vec!["8.8.8.8"]);
        assert!(dns_config(&[], &[]).is_none());
    }
}

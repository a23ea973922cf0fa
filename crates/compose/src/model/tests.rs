//! Tests of the compose model: every short and long syntax, lenient scalars, unknown keys.

use super::*;
use serde_json::json;

fn parse(v: serde_json::Value) -> Result<ComposeFile, String> {
    serde_path_to_error::deserialize(v).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

fn service(v: serde_json::Value) -> Service {
    let f = parse(json!({"services": {"app": v}})).unwrap();
    f.services["app"].clone()
}

#[test]
fn minimal_file_keeps_order() {
    let f = parse(json!({
        "version": 3.8,
        "services": {"b": {"image": "x"}, "a": {"image": "y"}},
        "volumes": {"data": null},
        "networks": {"proxy": {"external": true}},
        "x-env": {"A": 1}
    }))
    .unwrap();
    assert_eq!(f.version.as_deref(), Some("3.8"));
    assert_eq!(f.services.keys().collect::<Vec<_>>(), vec!["b", "a"]);
    assert_eq!(f.volumes["data"], Volume::default());
    assert!(f.networks["proxy"].external.external);
    assert_eq!(f.extensions.0["x-env"], json!({"A": 1}));
}

#[test]
fn commands_string_or_list() {
    let s = service(json!({"command": "sh -c 'echo hi'", "entrypoint": ["/bin/x", "a b"]}));
    assert_eq!(s.command.unwrap(), vec!["sh", "-c", "echo hi"]);
    assert_eq!(s.entrypoint.unwrap(), vec!["/bin/x", "a b"]);
    assert!(parse(json!({"services": {"a": {"command": "echo 'unterminated"}}})).is_err());
}

#[test]
fn environment_list_and_map() {
    let s = service(json!({"environment": ["A=1", "B", "C=", "D=x=y"]}));
    let want: IndexMap<String, Option<String>> = [
        ("A", Some("1")),
        ("B", None),
        ("C", Some("")),
        ("D", Some("x=y")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)))
    .collect();
    assert_eq!(s.environment, want);
    let s = service(json!({"environment": {"A": 1, "B": null, "C": true, "D": 1.5}}));
    assert_eq!(s.environment["A"].as_deref(), Some("1"));
    assert_eq!(s.environment["B"], None);
    assert_eq!(s.environment["C"].as_deref(), Some("true"));
    assert_eq!(s.environment["D"].as_deref(), Some("1.5"));
}

#[test]
fn labels_list_or_map() {
    let s = service(json!({"labels": ["a=1", "b"], "deploy": {"labels": {"c": null, "d": 2}}}));
    assert_eq!(s.labels["a"], "1");
    assert_eq!(s.labels["b"], "");
    let d = s.deploy.unwrap();
    assert_eq!(d.labels["c"], "");
    assert_eq!(d.labels["d"], "2");
}

#[test]
fn ports_short_and_long() {
    let s = service(json!({"ports": [
        "80:8080",
        8443,
        {"target": 53, "published": "5353", "protocol": "udp", "mode": "host"}
    ]}));
    assert_eq!(s.ports.len(), 3);
    assert_eq!(s.ports[0].published, Some(80));
    assert_eq!(s.ports[0].mode.as_deref(), Some("ingress"));
    assert_eq!(s.ports[1].target, Some(8443));
    assert_eq!(s.ports[1].published, Some(0));
    assert_eq!(s.ports[2].published, Some(5353));
    assert_eq!(s.ports[2].mode.as_deref(), Some("host"));
    let e = parse(json!({"services": {"a": {"ports": ["80:80/xyz"]}}})).unwrap_err();
    assert!(e.starts_with("services.a.ports[0]"), "{e}");
    let e = parse(json!({"services": {"a": {"ports": [{"target": 1, "bogus": 2}]}}})).unwrap_err();
    assert!(e.contains("bogus"), "{e}");
}

#[test]
fn volumes_short_and_long() {
    let s = service(json!({"volumes": [
        "data:/data:ro",
        {"type": "bind", "source": "/etc/x", "target": "/x", "read_only": "true",
         "bind": {"propagation": "rslave"}},
        {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": "64m"}},
        {"type": "volume", "source": "d", "target": "/d", "volume": {"nocopy": true}}
    ]}));
    assert_eq!(s.volumes.len(), 4);
    assert!(s.volumes[0].read_only);
    assert_eq!(s.volumes[1].kind, "bind");
    assert!(s.volumes[1].read_only);
    assert_eq!(
        s.volumes[2].tmpfs.as_ref().unwrap().size,
        Some(UnitBytes(64 << 20))
    );
    assert!(s.volumes[3].volume.as_ref().unwrap().nocopy);
}

#[test]
fn secret_and_config_refs() {
    let s = service(json!({
        "secrets": ["db", {"source": "k", "target": "/k", "uid": 1000, "gid": "1000", "mode": 288}],
        "configs": [{"source": "c", "mode": "292"}]
    }));
    assert_eq!(s.secrets[0].source, "db");
    assert_eq!(s.secrets[0].target, None);
    assert_eq!(s.secrets[1].uid.as_deref(), Some("1000"));
    assert_eq!(s.secrets[1].mode, Some(0o440));
    assert_eq!(s.configs[0].mode, Some(292));
}

#[test]
fn networks_list_or_map() {
    let s = service(json!({"networks": ["a", "b"]}));
    assert_eq!(s.networks.keys().collect::<Vec<_>>(), vec!["a", "b"]);
    let s = service(
        json!({"networks": {"a": null, "b": {"aliases": ["x"], "ipv4_address": "10.0.0.2"}}}),
    );
    assert_eq!(s.networks["a"], None);
    assert_eq!(s.networks["b"].as_ref().unwrap().aliases, vec!["x"]);
}

#[test]
fn deploy_block_lenient_scalars() {
    let s = service(json!({"deploy": {
        "mode": "replicated", "replicas": "2",
        "update_config": {"parallelism": 2, "delay": "10s", "order": "start-first",
                          "failure_action": "rollback", "monitor": "1m", "max_failure_ratio": "0.5"},
        "rollback_config": {"parallelism": 0},
        "resources": {"limits": {"cpus": 0.5, "memory": "512M", "pids": 100},
                      "reservations": {"cpus": "0.25", "memory": 1024,
                                       "generic_resources": [{"discrete_resource_spec": {"kind": "gpu", "value": 2}}]}},
        "restart_policy": {"condition": "on-failure", "delay": "5s", "max_attempts": 3, "window": "2m"},
        "placement": {"constraints": ["node.role==manager"], "preferences": [{"spread": "node.id"}],
                      "max_replicas_per_node": 1},
        "endpoint_mode": "dnsrr"
    }}));
    let d = s.deploy.unwrap();
    assert_eq!(d.replicas, Some(2));
    let u = d.update_config.unwrap();
    assert_eq!(u.delay, Some(Duration(10_000_000_000)));
    assert_eq!(u.max_failure_ratio, Some(0.5));
    let l = d.resources.limits.unwrap();
    assert_eq!(l.cpus.as_deref(), Some("0.5"));
    assert_eq!(l.memory, Some(UnitBytes(512 << 20)));
    assert_eq!(
        d.resources.reservations.unwrap().memory,
        Some(UnitBytes(1024))
    );
    assert_eq!(d.restart_policy.unwrap().max_attempts, Some(3));
    assert_eq!(d.placement.max_replicas_per_node, Some(1));
    assert!(parse(json!({"services": {"a": {"deploy": {"replicas": "two"}}}})).is_err());
    assert!(parse(json!({"services": {"a": {"deploy": {"bogus": 1}}}})).is_err());
    assert!(
        parse(json!({"services": {"a": {"deploy": {"update_config": {"delay": "10"}}}}})).is_err()
    );
}

#[test]
fn healthcheck_forms() {
    let s = service(
        json!({"healthcheck": {"test": "curl -f http://x", "interval": "30s",
                                           "retries": "3", "start_period": "1m", "disable": "false"}}),
    );
    let h = s.healthcheck.unwrap();
    assert_eq!(h.test.unwrap(), vec!["CMD-SHELL", "curl -f http://x"]);
    assert_eq!(h.retries, Some(3));
    assert!(!h.disable);
    let s = service(json!({"healthcheck": {"test": ["CMD", "true"]}}));
    assert_eq!(s.healthcheck.unwrap().test.unwrap(), vec!["CMD", "true"]);
}

#[test]
fn misc_service_fields() {
    let s = service(json!({
        "sysctls": ["net.core.somaxconn=1024"],
        "ulimits": {"nofile": {"soft": 1024, "hard": "2048"}, "nproc": 65535},
        "logging": {"driver": "json-file", "options": {"max-size": "10m", "max-file": 3}},
        "dns": "8.8.8.8", "dns_search": ["example.org"],
        "extra_hosts": ["a:10.0.0.1", "b=::1", "c:[::2]", "nosep"],
        "init": true, "tty": "yes", "stdin_open": false, "read_only": "on",
        "tmpfs": "/run", "depends_on": ["db"], "stop_grace_period": "1m30s",
        "user": 1000, "cap_add": ["net_admin"]
    }));
    assert_eq!(s.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(
        s.ulimits["nofile"],
        Ulimit {
            soft: 1024,
            hard: 2048
        }
    );
    assert_eq!(
        s.ulimits["nproc"],
        Ulimit {
            soft: 65535,
            hard: 65535
        }
    );
    assert_eq!(s.logging.unwrap().options["max-file"], "3");
    assert_eq!(s.dns, vec!["8.8.8.8"]);
    assert_eq!(s.extra_hosts, vec!["a:10.0.0.1", "b:::1", "c:::2"]);
    assert!(s.tty && s.read_only && !s.stdin_open);
    assert_eq!(s.init, Some(true));
    assert_eq!(s.tmpfs, vec!["/run"]);
    assert_eq!(s.depends_on, vec!["db"]);
    assert_eq!(s.stop_grace_period, Some(Duration(90_000_000_000)));
    assert_eq!(s.user.as_deref(), Some("1000"));
    let s = service(json!({"extra_hosts": {"b": "10.0.0.2", "a": "10.0.0.1"}}));
    assert_eq!(s.extra_hosts, vec!["a:10.0.0.1", "b:10.0.0.2"]);
    let s = service(json!({"depends_on": {"db": {"condition": "service_healthy"}}}));
    assert_eq!(s.depends_on, vec!["db"]);
}

#[test]
fn unknown_ignored_and_forbidden_keys() {
    let s = service(
        json!({"image": "x", "build": ".", "container_name": "c", "restart": "always",
                           "x-custom": 1}),
    );
    assert_eq!(
        s.extras.ignored.keys().collect::<Vec<_>>(),
        vec!["build", "container_name"]
    );
    assert_eq!(s.extras.extensions["x-custom"], json!(1));
    assert_eq!(s.restart.as_deref(), Some("always"));
    let e = parse(json!({"services": {"a": {"imgae": "x"}}})).unwrap_err();
    assert!(e.contains("unknown field `imgae`"), "{e}");
    let e = parse(json!({"services": {"a": {"volumes_from": ["b"]}}})).unwrap_err();
    assert!(e.contains("volumes_from"), "{e}");
    let e = parse(json!({"services": {}, "bogus": 1})).unwrap_err();
    assert!(e.contains("bogus"), "{e}");
    let e = parse(json!({"networks": {"n": {"drivr": "overlay"}}})).unwrap_err();
    assert!(e.contains("drivr"), "{e}");
    assert!(parse(json!({"networks": {"n": {"x-foo": 1}}})).is_ok());
}

#[test]
fn top_level_objects() {
    let f = parse(json!({
        "networks": {
            "internal": {"driver": "overlay", "driver_opts": {"encrypted": ""}, "attachable": "true",
                         "internal": true, "labels": ["a=b"],
                         "ipam": {"driver": "default", "config": [{"subnet": "10.1.0.0/24"}]}},
            "proxy": {"external": {"name": "proxy-net"}}
        },
        "volumes": {"data": {"driver": "local", "driver_opts": {"type": "nfs"}}, "ext": {"external": "true", "name": "x"}},
        "secrets": {"db": {"external": true, "name": "s_db_v1"}},
        "configs": {"nginx": {"file": "nginx.conf.tmpl", "template_driver": "golang", "name": "n"}}
    }))
    .unwrap();
    let n = &f.networks["internal"];
    assert!(n.attachable && n.internal);
    assert_eq!(
        n.ipam.as_ref().unwrap().config[0].subnet.as_deref(),
        Some("10.1.0.0/24")
    );
    assert_eq!(
        f.networks["proxy"].external,
        External {
            external: true,
            name: Some("proxy-net".into())
        }
    );
    assert_eq!(
        f.volumes["data"].driver_opts.as_ref().unwrap()["type"],
        "nfs"
    );
    assert!(f.volumes["ext"].external.external);
    assert_eq!(f.secrets["db"].name.as_deref(), Some("s_db_v1"));
    assert_eq!(
        f.configs["nginx"].template_driver.as_deref(),
        Some("golang")
    );
}

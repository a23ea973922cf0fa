//! Rendering tests: one per rule, a full snapshot of a small stack (expected JSON written out
//! from docker/cli's convert code), determinism and spec-hash sensitivity.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::compose::model::ComposeFile;

const NGINX_CONF: &[u8] = b"server { listen 80; }\n";

fn files() -> HashMap<String, Vec<u8>> {
    HashMap::from([
        ("nginx.conf".to_owned(), NGINX_CONF.to_vec()),
        ("conf/app.tmpl".to_owned(), b"{{ env \"X\" }}".to_vec()),
    ])
}

fn render_with(
    compose: Value,
    files: &HashMap<String, Vec<u8>>,
    version: &str,
) -> Result<StackSpec, Diagnostics> {
    let compose: ComposeFile = serde_json::from_value(compose).expect("valid compose model");
    let read = |p: &str| -> Result<Option<Vec<u8>>, String> { Ok(files.get(p).cloned()) };
    render(&RenderInput {
        deployment: "web",
        stack: "s",
        version,
        source: "recipe@1.0.0:compose.yml",
        compose: &compose,
        read_file: &read,
        extra_labels: &Default::default(),
    })
}

fn ok(compose: Value) -> StackSpec {
    match render_with(compose, &files(), "1.0.0+1.27") {
        Ok(s) => s,
        Err(e) => panic!("render failed:\n{e}"),
    }
}

fn err(compose: Value) -> Vec<(String, String)> {
    match render_with(compose, &files(), "1.0.0+1.27") {
        Ok(_) => panic!("render should fail"),
        Err(d) => d.0.into_iter().map(|d| (d.field, d.message)).collect(),
    }
}

/// The service spec of `app` as canonical JSON value.
fn app(stack: &StackSpec) -> Value {
    let plan = stack
        .services
        .iter()
        .find(|s| s.key == "app")
        .expect("app rendered");
    serde_json::from_str(&canonical_json(&plan.spec())).unwrap()
}

fn svc(v: Value) -> Value {
    app(&ok(json!({"services": {"app": v}})))
}

#[test]
fn snapshot_small_stack() {
    let stack = ok(json!({
        "version": "3.8",
        "services": {"app": {
            "image": "nginx:1.27",
            "entrypoint": "/docker-entrypoint.sh",
            "command": "nginx -g 'daemon off;'",
            "environment": ["B=2", "A=1", "BARE"],
            "labels": {"c": "1"},
            "deploy": {"labels": ["traefik.enable=true"], "replicas": 2,
                       "update_config": {"order": "start-first"},
                       "restart_policy": {"condition": "on-failure", "max_attempts": 3}},
            "ports": ["8080:80"],
            "volumes": ["data:/data", "/etc/localtime:/etc/localtime:ro"],
            "secrets": ["db_password"],
            "configs": [{"source": "nginx_conf", "target": "/etc/nginx/conf.d/default.conf"}],
            "networks": ["proxy", "internal"],
            "healthcheck": {"test": "curl -f http://localhost", "interval": "30s", "retries": 3}
        }},
        "networks": {"proxy": {"external": true}, "internal": null},
        "volumes": {"data": null},
        "secrets": {"db_password": {"external": true, "name": "s_db_password_v1"}},
        "configs": {"nginx_conf": {"file": "nginx.conf", "name": "s_nginx_conf"}}
    }));
    let hearth = json!({"com.docker.stack.namespace": "s", "hearth.managed-by": "hearth",
                        "hearth.deployment": "web"});
    let plan = &stack.services[0];
    assert_eq!(plan.name, "s_app");
    assert_eq!(plan.spec_hash.len(), 64);
    let mut got = app(&stack);
    assert_eq!(got["Labels"]["hearth.spec-hash"], json!(plan.spec_hash));
    got["Labels"]["hearth.spec-hash"] = json!("<hash>");
    let want = json!({
        "Name": "s_app",
        "Labels": {"traefik.enable": "true", "com.docker.stack.namespace": "s",
                   "com.docker.stack.image": "nginx:1.27", "hearth.managed-by": "hearth",
                   "hearth.deployment": "web", "coop-cloud.s.version": "1.0.0+1.27",
                   "hearth.spec-hash": "<hash>"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "nginx:1.27",
                "Labels": {"c": "1", "com.docker.stack.namespace": "s"},
                "Command": ["/docker-entrypoint.sh"],
                "Args": ["nginx", "-g", "daemon off;"],
                "Env": ["A=1", "B=2", "BARE"],
                "Privileges": {},
                "Mounts": [
                    {"Type": "volume", "Source": "s_data", "Target": "/data",
                     "VolumeOptions": {"Labels": hearth}},
                    {"Type": "bind", "Source": "/etc/localtime", "Target": "/etc/localtime",
                     "ReadOnly": true}
                ],
                "HealthCheck": {"Test": ["CMD-SHELL", "curl -f http://localhost"],
                                "Interval": 30_000_000_000i64, "Retries": 3},
                "Secrets": [{"File": {"Name": "db_password", "UID": "0", "GID": "0", "Mode": 292},
                             "SecretName": "s_db_password_v1"}],
                "Configs": [{"File": {"Name": "/etc/nginx/conf.d/default.conf", "UID": "0",
                                      "GID": "0", "Mode": 292},
                             "ConfigName": "s_nginx_conf"}]
            },
            "Resources": {},
            "RestartPolicy": {"Condition": "on-failure", "MaxAttempts": 3},
            "Placement": {},
            "Networks": [
                {"Target": "proxy", "Aliases": ["s_app"]},
                {"Target": "s_internal", "Aliases": ["app"]}
            ]
        },
        "Mode": {"Replicated": {"Replicas": 2}},
        "UpdateConfig": {"Parallelism": 1, "MaxFailureRatio": 0.0, "Order": "start-first"},
        "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080,
                                    "PublishMode": "ingress"}]}
    });
    assert_eq!(got, want, "\n got: {got:#}\nwant: {want:#}");

    let rest: Value = serde_json::from_str(&canonical_json(&json!({
        "networks": stack.networks, "volumes": stack.volumes,
        "secrets": stack.secrets, "configs": stack.configs, "warnings": stack.warnings,
    })))
    .unwrap();
    let want_rest = json!({
        "networks": [
            {"name": "proxy", "key": "proxy", "external": true, "spec": null},
            {"name": "s_internal", "key": "internal", "external": false,
             "spec": {"Name": "s_internal", "Driver": "overlay", "Labels": hearth}}
        ],
        "volumes": [
            {"name": "s_data", "key": "data", "external": false,
             "spec": {"Name": "s_data", "Labels": hearth}}
        ],
        "secrets": [
            {"name": "s_db_password_v1", "key": "db_password", "external": true,
             "labels": hearth, "file": null, "driver": null, "template_driver": null}
        ],
        "configs": [
            {"name": "s_nginx_conf", "key": "nginx_conf", "external": false,
             "spec": {"Name": "s_nginx_conf", "Labels": hearth,
                      "Data": "c2VydmVyIHsgbGlzdGVuIDgwOyB9Cg=="},
             "template_driver": null}
        ],
        "warnings": []
    });
    assert_eq!(rest, want_rest, "\n got: {rest:#}\nwant: {want_rest:#}");
}

#[test]
fn deterministic_bytes_and_hashes() {
    let compose = json!({
        "services": {
            "b": {"image": "x", "labels": {"l1": "1", "l2": "2", "l3": "3"},
                  "deploy": {"labels": {"d1": "1", "d2": "2", "d3": "3", "d4": "4"}},
                  "environment": {"Z": "1", "A": "2", "M": null},
                  "sysctls": {"a": "1", "b": "2"}, "networks": ["n1", "n2"]},
            "a": {"image": "y", "volumes": ["vol:/v"]}
        },
        "networks": {"n1": {"labels": {"x": "1", "y": "2"}}, "n2": null},
        "volumes": {"vol": {"labels": {"p": "1", "q": "2"}}}
    });
    let one = ok(compose.clone());
    let two = ok(compose);
    assert_eq!(one.to_canonical_json(), two.to_canonical_json());
    for (a, b) in one.services.iter().zip(&two.services) {
        assert_eq!(a.spec_hash, b.spec_hash);
        assert_eq!(spec_hash(&a.spec()), a.spec_hash);
    }
    let names: Vec<&str> = one.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["s_a", "s_b"]);
}

#[test]
fn hash_changes_with_any_field() {
    let base = json!({"image": "x:1", "environment": ["A=1"], "deploy": {"replicas": 1},
                      "labels": {"a": "1"}});
    let hash = |svc: Value, version: &str| {
        let stack = render_with(json!({"services": {"app": svc}}), &files(), version).unwrap();
        stack.services[0].spec_hash.clone()
    };
    let h0 = hash(base.clone(), "1");
    assert_eq!(h0, hash(base.clone(), "1"));
    let variants = [
        json!({"image": "x:2"}),
        json!({"environment": ["A=2"]}),
        json!({"deploy": {"replicas": 2}}),
        json!({"labels": {"a": "2"}}),
        json!({"stop_grace_period": "5s"}),
        json!({"ports": ["80:80"]}),
    ];
    for v in variants {
        let mut svc = base.clone();
        for (k, val) in v.as_object().unwrap() {
            svc[k] = val.clone();
        }
        assert_ne!(hash(svc, "1"), h0, "changing {v} must change the hash");
    }
    assert_ne!(hash(base, "2"), h0, "the version label is part of the hash");
}

#[test]
fn config_name_follows_content() {
    let compose = json!({"services": {"app": {"image": "x", "configs": ["c"]}},
                         "configs": {"c": {"file": "nginx.conf"}}});
    let a = render_with(compose.clone(), &files(), "1").unwrap();
    let mut changed = files();
    changed.insert("nginx.conf".into(), b"other".to_vec());
    let b = render_with(compose, &changed, "1").unwrap();
    // No recipe-given `name:`: hearth names the config by content.
    assert!(a.configs[0].name.starts_with("s_c_"));
    assert_eq!(a.configs[0].name.len(), "s_c_".len() + 10);
    assert_ne!(a.configs[0].name, b.configs[0].name);
    assert_ne!(a.services[0].spec_hash, b.services[0].spec_hash);
    let refs = &app(&b)["TaskTemplate"]["ContainerSpec"]["Configs"];
    assert_eq!(refs[0]["ConfigName"], json!(b.configs[0].name));
    assert_eq!(refs[0]["File"]["Name"], json!("c"));
}

#[test]
fn template_driver_passes_raw_template() {
    let stack = ok(
        json!({"services": {"app": {"image": "x", "configs": ["t"]}},
                          "configs": {"t": {"file": "./conf/app.tmpl", "template_driver": "golang"}}}),
    );
    let c = &stack.configs[0];
    assert_eq!(c.template_driver.as_deref(), Some("golang"));
    let spec = c.spec.as_ref().unwrap();
    assert_eq!(spec.templating.as_ref().unwrap().name, "golang");
    assert_eq!(
        spec.data.as_deref(),
        Some(parse::base64(b"{{ env \"X\" }}").as_str())
    );
}

#[test]
fn config_files_stay_inside_the_recipe() {
    let e = err(json!({"services": {"app": {"image": "x"}},
                       "configs": {"c": {"file": "../secret"}, "d": {"file": "/etc/passwd"},
                                   "m": {"file": "missing.conf"}}}));
    let fields: Vec<&str> = e.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        vec!["configs.c.file", "configs.d.file", "configs.m.file"]
    );
    assert!(e[2].1.contains("no such file"));
}

#[test]
fn default_network_and_prefixes() {
    let stack = ok(json!({"services": {"app": {"image": "x"}}}));
    assert_eq!(stack.networks.len(), 1);
    assert_eq!(stack.networks[0].name, "s_default");
    assert!(!stack.networks[0].external);
    let nets = &app(&stack)["TaskTemplate"]["Networks"];
    assert_eq!(nets, &json!([{"Target": "s_default", "Aliases": ["app"]}]));
}

#[test]
fn named_and_external_networks() {
    let stack = ok(json!({
        "services": {"app": {"image": "x", "networks": {
            "a": {"aliases": ["web"]}, "b": null, "c": null, "h": null}}},
        "networks": {"a": {"name": "custom"}, "b": {"external": {"name": "shared"}},
                     "c": {"external": true}, "h": {"external": true, "name": "host"}}
    }));
    let names: Vec<(&str, bool)> = stack
        .networks
        .iter()
        .map(|n| (n.name.as_str(), n.external))
        .collect();
    assert_eq!(
        names,
        vec![
            ("c", true),
            ("custom", false),
            ("host", true),
            ("shared", true)
        ]
    );
    let nets = &app(&stack)["TaskTemplate"]["Networks"];
    assert_eq!(
        nets,
        &json!([
            {"Target": "c", "Aliases": ["s_app"]},
            {"Target": "custom", "Aliases": ["web", "app"]},
            {"Target": "host"},
            {"Target": "shared", "Aliases": ["s_app"]}
        ])
    );
}

#[test]
fn unused_networks_are_not_planned() {
    let stack = ok(
        json!({"services": {"app": {"image": "x", "networks": ["a"]}},
                          "networks": {"a": null, "unused": null}}),
    );
    assert_eq!(
        stack
            .networks
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        vec!["s_a"]
    );
}

#[test]
fn network_options() {
    let stack = ok(
        json!({"services": {"app": {"image": "x", "networks": ["n"]}},
                          "networks": {"n": {"driver": "overlay", "attachable": true, "internal": true,
                                             "driver_opts": {"encrypted": ""},
                                             "ipam": {"config": [{"subnet": "10.9.0.0/24"}]}}}}),
    );
    let spec: Value = serde_json::to_value(stack.networks[0].spec.as_ref().unwrap()).unwrap();
    assert_eq!(spec["Attachable"], json!(true));
    assert_eq!(spec["Internal"], json!(true));
    assert_eq!(spec["Options"], json!({"encrypted": ""}));
    assert_eq!(spec["IPAM"], json!({"Config": [{"Subnet": "10.9.0.0/24"}]}));
}

#[test]
fn missing_image_and_unknown_references_are_errors() {
    let e = err(
        json!({"services": {"app": {"networks": ["nope"], "volumes": ["ghost:/g"],
                                            "secrets": ["s1"], "configs": ["c1"]}}}),
    );
    let fields: Vec<&str> = e.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "services.app.image",
            "services.app.volumes[0].source",
            "services.app.networks.nope",
            "services.app.secrets",
            "services.app.configs",
        ]
    );
    assert!(e[1].1.contains("undefined volume \"ghost\""));
    assert!(e[3].1.contains("undefined secret \"s1\""));
}

#[test]
fn diagnostics_name_the_source() {
    let d = render_with(json!({"services": {"app": {}}}), &files(), "1").unwrap_err();
    assert_eq!(
        d.0[0].to_string(),
        "recipe@1.0.0:compose.yml: services.app.image: no image specified (Swarm services need one)"
    );
}

#[test]
fn warnings_for_ignored_things() {
    let stack = ok(
        json!({"services": {"app": {"image": "x", "depends_on": ["db"], "build": ".",
                                               "container_name": "c", "tmpfs": ["/run"]},
                                       "db": {"image": "y"}}}),
    );
    let w = stack.warnings.join("\n");
    assert!(
        w.contains("services.app.depends_on: Swarm ignores depends_on"),
        "{w}"
    );
    assert!(w.contains("services.app.build: ignored"), "{w}");
    assert!(
        w.contains("services.app.container_name: ignored (deprecated)"),
        "{w}"
    );
    assert!(
        w.contains("services.app.tmpfs: ignored by docker stack deploy"),
        "{w}"
    );
    // Service-level tmpfs does not reach the spec.
    assert!(
        app(&stack)["TaskTemplate"]["ContainerSpec"]
            .get("Mounts")
            .is_none()
    );
}

#[test]
fn secret_names_and_refs() {
    let stack = ok(json!({
        "services": {"app": {"image": "x", "secrets": [
            "a", {"source": "b", "target": "/run/b", "uid": "1000", "gid": "1001", "mode": 0o400},
            "c"]}},
        "secrets": {"a": {"external": true, "name": "s_a_v2"}, "b": {"external": true},
                    "c": {"file": "nginx.conf"}, "unused": {"external": true, "name": "x_v1"}}
    }));
    let names: Vec<&str> = stack.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["b", "s_a_v2", "s_c", "x_v1"]);
    let c = stack.secrets.iter().find(|s| s.key == "c").unwrap();
    assert_eq!(c.file.as_deref(), Some("nginx.conf"));
    assert!(!c.external);
    let refs = &app(&stack)["TaskTemplate"]["ContainerSpec"]["Secrets"];
    assert_eq!(
        refs,
        &json!([
            {"SecretName": "b", "File": {"Name": "/run/b", "UID": "1000", "GID": "1001", "Mode": 256}},
            {"SecretName": "s_a_v2", "File": {"Name": "a", "UID": "0", "GID": "0", "Mode": 292}},
            {"SecretName": "s_c", "File": {"Name": "c", "UID": "0", "GID": "0", "Mode": 292}}
        ])
    );
}

#[test]
fn duplicate_secret_targets_are_errors() {
    let e = err(json!({"services": {"app": {"image": "x", "secrets": [
                           {"source": "a", "target": "t"}, {"source": "b", "target": "t"}]}},
                       "secrets": {"a": {"external": true}, "b": {"external": true}}}));
    assert!(e[0].1.contains("duplicate secret target"), "{e:?}");
}

#[test]
fn update_and_rollback_config() {
    let s = svc(json!({"image": "x", "deploy": {
        "update_config": {"delay": "10s", "failure_action": "rollback", "monitor": "1m",
                          "max_failure_ratio": 0.25},
        "rollback_config": {"parallelism": 0, "order": "stop-first"}}}));
    assert_eq!(
        s["UpdateConfig"],
        json!({"Parallelism": 1, "Delay": 10_000_000_000i64,
        "FailureAction": "rollback", "Monitor": 60_000_000_000i64, "MaxFailureRatio": 0.25})
    );
    assert_eq!(
        s["RollbackConfig"],
        json!({"Parallelism": 0, "MaxFailureRatio": 0.0,
        "Order": "stop-first"})
    );
    assert!(svc(json!({"image": "x"})).get("UpdateConfig").is_none());
}

#[test]
fn healthcheck_forms() {
    let h = |hc: Value| {
        svc(json!({"image": "x", "healthcheck": hc}))["TaskTemplate"]["ContainerSpec"]["HealthCheck"].clone()
    };
    assert_eq!(h(json!({"disable": true})), json!({"Test": ["NONE"]}));
    assert_eq!(
        h(
            json!({"test": ["CMD", "pg_isready"], "timeout": "5s", "start_period": "1m",
                 "start_interval": "2s"})
        ),
        json!({"Test": ["CMD", "pg_isready"], "Timeout": 5_000_000_000i64,
               "StartPeriod": 60_000_000_000i64, "StartInterval": 2_000_000_000i64})
    );
    assert_eq!(h(json!({"test": ["NONE"]})), json!({"Test": ["NONE"]}));
    let e = err(json!({"services": {"app": {"image": "x",
                                            "healthcheck": {"disable": true, "test": "x"}}}}));
    assert_eq!(e[0].0, "services.app.healthcheck");
}

#[test]
fn ports_sorted_and_long_form() {
    let s = svc(json!({"image": "x", "ports": [
        "9000:90", {"target": 53, "published": 53, "protocol": "udp", "mode": "host"}, "81"],
        "deploy": {"endpoint_mode": "DNSRR"}}));
    assert_eq!(
        s["EndpointSpec"],
        json!({"Mode": "dnsrr", "Ports": [
            {"Protocol": "tcp", "TargetPort": 81, "PublishMode": "ingress"},
            {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "host"},
            {"Protocol": "tcp", "TargetPort": 90, "PublishedPort": 9000, "PublishMode": "ingress"}
        ]})
    );
    let s = svc(json!({"image": "x", "ports": [{"target": 80}]}));
    assert_eq!(s["EndpointSpec"], json!({"Ports": [{"TargetPort": 80}]}));
}

#[test]
fn resources_restart_placement() {
    let s = svc(json!({"image": "x", "deploy": {
        "resources": {"limits": {"cpus": "0.5", "memory": "512M", "pids": 100},
                      "reservations": {"cpus": 0.25, "memory": "1g",
                                       "generic_resources": [{"discrete_resource_spec": {"kind": "gpu", "value": 1}}]}},
        "restart_policy": {"condition": "any", "delay": "5s", "window": "1m", "max_attempts": 0},
        "placement": {"constraints": ["node.role == manager"], "preferences": [{"spread": "node.labels.dc"}],
                      "max_replicas_per_node": 2}}}));
    let t = &s["TaskTemplate"];
    assert_eq!(
        t["Resources"],
        json!({
        "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 536_870_912, "Pids": 100},
        "Reservations": {"NanoCPUs": 250_000_000, "MemoryBytes": 1_073_741_824i64,
                         "GenericResources": [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}}]}})
    );
    assert_eq!(
        t["RestartPolicy"],
        json!({"Condition": "any", "Delay": 5_000_000_000i64,
                                          "Window": 60_000_000_000i64, "MaxAttempts": 0})
    );
    assert_eq!(
        t["Placement"],
        json!({"Constraints": ["node.role == manager"],
        "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.dc"}}], "MaxReplicas": 2})
    );
    let e = err(json!({"services": {"app": {"image": "x",
                                            "deploy": {"resources": {"limits": {"cpus": "lots"}}}}}}));
    assert_eq!(e[0].0, "services.app.deploy.resources.limits.cpus");
}

#[test]
fn legacy_restart_fallback() {
    let rp = |r: &str| {
        svc(json!({"image": "x", "restart": r}))["TaskTemplate"]
            .get("RestartPolicy")
            .cloned()
    };
    assert_eq!(rp("always"), Some(json!({"Condition": "any"})));
    assert_eq!(rp("unless-stopped"), Some(json!({"Condition": "any"})));
    assert_eq!(
        rp("on-failure:3"),
        Some(json!({"Condition": "on-failure", "MaxAttempts": 3}))
    );
    assert_eq!(rp("no"), None);
    assert!(!err(json!({"services": {"app": {"image": "x", "restart": "sometimes"}}})).is_empty());
}

#[test]
fn modes() {
    assert_eq!(
        svc(json!({"image": "x"}))["Mode"],
        json!({"Replicated": {}})
    );
    assert_eq!(
        svc(json!({"image": "x", "deploy": {"mode": "global"}}))["Mode"],
        json!({"Global": {}})
    );
    assert_eq!(
        svc(json!({"image": "x", "deploy": {"mode": "replicated-job", "replicas": 3}}))["Mode"],
        json!({"ReplicatedJob": {"MaxConcurrent": 3, "TotalCompletions": 3}})
    );
    let e = err(
        json!({"services": {"app": {"image": "x", "deploy": {"mode": "global", "replicas": 2}}}}),
    );
    assert_eq!(e[0].0, "services.app.deploy.mode");
    let e = err(json!({"services": {"app": {"image": "x", "deploy": {"mode": "sometimes"}}}}));
    assert!(e[0].1.contains("unknown mode"));
}

#[test]
fn mounts() {
    let stack = ok(json!({
        "services": {"app": {"image": "x", "volumes": [
            "/anon",
            "ext:/ext:nocopy",
            {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1024}},
            {"type": "bind", "source": "/srv", "target": "/srv", "bind": {"propagation": "rshared"}},
            {"type": "volume", "source": "drv", "target": "/drv", "volume": {"subpath": "sub"}}
        ]}},
        "volumes": {"ext": {"external": true, "name": "legacy_data"},
                    "drv": {"driver": "local", "driver_opts": {"type": "nfs"}, "labels": {"k": "v"}}}
    }));
    let m = &app(&stack)["TaskTemplate"]["ContainerSpec"]["Mounts"];
    assert_eq!(
        m,
        &json!([
            {"Type": "volume", "Target": "/anon"},
            {"Type": "volume", "Source": "legacy_data", "Target": "/ext", "VolumeOptions": {"NoCopy": true}},
            {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 1024}},
            {"Type": "bind", "Source": "/srv", "Target": "/srv", "BindOptions": {"Propagation": "rshared"}},
            {"Type": "volume", "Source": "s_drv", "Target": "/drv", "VolumeOptions": {
                "Subpath": "sub",
                "Labels": {"k": "v", "com.docker.stack.namespace": "s", "hearth.managed-by": "hearth",
                           "hearth.deployment": "web"},
                "DriverConfig": {"Name": "local", "Options": {"type": "nfs"}}}}
        ])
    );
    let vols: Vec<(&str, bool)> = stack
        .volumes
        .iter()
        .map(|v| (v.name.as_str(), v.external))
        .collect();
    assert_eq!(vols, vec![("legacy_data", true), ("s_drv", false)]);
}

#[test]
fn mount_errors() {
    let e = err(json!({"services": {"app": {"image": "x", "volumes": [
        "./data:/data", {"type": "tmpfs", "source": "x", "target": "/t"}, {"type": "npipe", "source": "x", "target": "/p"}]}}}));
    let fields: Vec<&str> = e.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "services.app.volumes[0].source",
            "services.app.volumes[1].source",
            "services.app.volumes[2].type"
        ]
    );
    let e = err(
        json!({"services": {"app": {"image": "x", "volumes": ["vol:/v"]}},
                       "volumes": {"vol": {"external": true, "driver": "local"}}}),
    );
    assert!(e[0].1.contains("conflicting parameters"), "{e:?}");
}

#[test]
fn container_fields() {
    let c = svc(json!({
        "image": "x", "hostname": "h", "user": "1000:1000", "working_dir": "/w",
        "stop_grace_period": "1m", "stop_signal": "SIGINT", "cap_add": ["net_admin"],
        "cap_drop": ["all"], "sysctls": {"net.ipv4.ip_forward": 1},
        "ulimits": {"nproc": 10, "nofile": {"soft": 1, "hard": 2}},
        "logging": {"driver": "json-file", "options": {"max-size": "10m"}},
        "dns": ["1.1.1.1"], "dns_search": "example.org", "extra_hosts": ["db:10.0.0.5"],
        "init": true, "tty": true, "stdin_open": true, "read_only": true
    }));
    let cs = &c["TaskTemplate"]["ContainerSpec"];
    assert_eq!(cs["Hostname"], json!("h"));
    assert_eq!(cs["User"], json!("1000:1000"));
    assert_eq!(cs["Dir"], json!("/w"));
    assert_eq!(cs["StopGracePeriod"], json!(60_000_000_000i64));
    assert_eq!(cs["StopSignal"], json!("SIGINT"));
    assert_eq!(cs["CapabilityAdd"], json!(["CAP_NET_ADMIN"]));
    assert_eq!(cs["CapabilityDrop"], json!(["ALL"]));
    assert_eq!(cs["Sysctls"], json!({"net.ipv4.ip_forward": "1"}));
    assert_eq!(
        cs["Ulimits"],
        json!([{"Name": "nofile", "Soft": 1, "Hard": 2},
                                     {"Name": "nproc", "Soft": 10, "Hard": 10}])
    );
    assert_eq!(
        cs["DNSConfig"],
        json!({"Nameservers": ["1.1.1.1"], "Search": ["example.org"]})
    );
    assert_eq!(cs["Hosts"], json!(["10.0.0.5 db"]));
    assert_eq!(
        (
            cs["Init"].clone(),
            cs["TTY"].clone(),
            cs["OpenStdin"].clone(),
            cs["ReadOnly"].clone()
        ),
        (json!(true), json!(true), json!(true), json!(true))
    );
    assert_eq!(
        c["TaskTemplate"]["LogDriver"],
        json!({"Name": "json-file", "Options": {"max-size": "10m"}})
    );
}

#[test]
fn env_file_and_bad_enums_are_errors() {
    let e = err(
        json!({"services": {"app": {"image": "x", "env_file": ".env",
                                            "deploy": {"update_config": {"order": "sideways"}}}}}),
    );
    let fields: Vec<&str> = e.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "services.app.env_file",
            "services.app.deploy.update_config.order"
        ]
    );
}

#[test]
fn errors_from_several_services_are_all_reported() {
    let e = err(json!({"services": {"a": {}, "b": {}, "c": {"image": "x"}}}));
    assert_eq!(e.len(), 2);
}

#[test]
fn untagged_image_gets_latest_and_the_label_keeps_the_compose_text() {
    let s = svc(json!({"image": "docker.io/library/nginx"}));
    assert_eq!(s["TaskTemplate"]["ContainerSpec"]["Image"], "nginx:latest");
    assert_eq!(
        s["Labels"]["com.docker.stack.image"],
        "docker.io/library/nginx"
    );
    let s = svc(json!({"image": "localhost:5000/app"}));
    assert_eq!(
        s["TaskTemplate"]["ContainerSpec"]["Image"],
        "localhost:5000/app:latest"
    );
}

/// Renders `compose` under `stack`.
fn render_stack(stack: &str, compose: Value) -> Result<StackSpec, Diagnostics> {
    let compose: ComposeFile = serde_json::from_value(compose).expect("valid compose model");
    let files = files();
    let read = |p: &str| -> Result<Option<Vec<u8>>, String> { Ok(files.get(p).cloned()) };
    render(&RenderInput {
        deployment: "web",
        stack,
        version: "1",
        source: "recipe@1.0.0:compose.yml",
        compose: &compose,
        read_file: &read,
        extra_labels: &Default::default(),
    })
}

fn fields(r: Result<StackSpec, Diagnostics>) -> Vec<(String, String)> {
    match r {
        Ok(_) => vec![],
        Err(d) => d.0.into_iter().map(|d| (d.field, d.message)).collect(),
    }
}

#[test]
fn object_names_at_swarms_limits_with_the_longest_stack_names() {
    // The longest stack name hearth derives: a one-letter service on an external network only,
    // with a two-letter secret key, leaves 63 - 2 = 61 characters (`warm-canon-<recipe>.<pool
    // domain>` cut and hashed by manifest::names::stack_name).
    let domain = format!("warm-canon-postgres-with-a-long-name.{}", "d".repeat(40));
    let base = json!({"services": {"a": {"image": "x", "configs": ["c"], "secrets": ["sa"],
                                         "networks": ["proxy"]}},
                      "networks": {"proxy": {"external": true}},
                      "configs": {"c": {"file": "nginx.conf"}},
                      "secrets": {"sa": {"file": "nginx.conf"}}});
    let model: ComposeFile = serde_json::from_value(base.clone()).unwrap();
    assert_eq!(longest_scoped_key(&model), 1);
    let stack = crate::manifest::names::stack_name(&domain, longest_scoped_key(&model));
    assert_eq!(stack.len(), 61, "{stack}");
    let service = |extra: Value| {
        let mut c = base.clone();
        merge(&mut c, extra);
        c
    };
    // Derived config name: `<stack>_c_<hash>` would be 74; the base is cut, the hash kept.
    let ok = render_stack(&stack, service(json!({}))).expect("renders");
    let c = &ok.configs[0].name;
    assert_eq!(c.len(), 64, "{c}");
    assert!(c.starts_with(&stack[..53]), "{c}");
    assert_eq!(&c[53..54], "_");
    assert_eq!(ok.services[0].name.len(), 63);
    assert_eq!(ok.secrets[0].name.len(), 64);
    // A `default` network (a service without `networks:`) is room the stack name must leave.
    let mut with_default = base.clone();
    with_default["services"]["a"]
        .as_object_mut()
        .unwrap()
        .remove("networks");
    let model: ComposeFile = serde_json::from_value(with_default.clone()).unwrap();
    assert_eq!(longest_scoped_key(&model), "default".len());
    let short = crate::manifest::names::stack_name(&domain, longest_scoped_key(&model));
    let r = render_stack(&short, with_default).expect("renders");
    assert_eq!(r.networks[0].name.len(), 63);
    assert_eq!(r.longest_scoped_key(), "default".len());
    assert_eq!(ok.longest_scoped_key(), 1);
    // A recipe-given config name is used as written: 64 characters deploy, 65 are refused.
    for (len, refused) in [(64, false), (65, true)] {
        let name = format!("{stack}_{}", "e".repeat(len - stack.len() - 1));
        let r = render_stack(
            &stack,
            service(json!({"configs": {"c": {"file": "nginx.conf", "name": name.clone()}}})),
        );
        if refused {
            let f = fields(r);
            assert_eq!(f.len(), 1, "{f:?}");
            assert_eq!(f[0].0, "configs.c.name");
            assert!(f[0].1.contains("longer than Swarm's 64"), "{f:?}");
        } else {
            let r = r.expect("64 characters render");
            assert_eq!(r.configs[0].name, name, "never made longer");
        }
        // Secrets alike.
        let r = render_stack(
            &stack,
            service(json!({"secrets": {"sa": {"file": "nginx.conf", "name": name.clone()}}})),
        );
        if refused {
            assert_eq!(fields(r)[0].0, "secrets.sa.name");
        } else {
            assert_eq!(r.expect("renders").secrets[0].name, name);
        }
    }
    // Services and overlay networks: 63 characters.
    let f = fields(render_stack(
        &stack,
        json!({"services": {"abc": {"image": "x", "networks": ["n"]}},
               "networks": {"n": {"name": "n".repeat(64)}}}),
    ));
    let at: Vec<&str> = f.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(at, ["networks.n.name", "services.abc"], "{f:?}");
    assert!(f.iter().all(|(_, m)| m.contains("longer than Swarm's 63")));
    let f = fields(render_stack(
        &stack,
        json!({"services": {"a": {"image": "x", "networks": ["n"]}},
               "networks": {"n": {"name": "n".repeat(63)}}}),
    ));
    assert!(f.is_empty(), "{f:?}");
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

#[test]
fn recipe_config_names_are_not_versioned_by_hearth() {
    let s = ok(
        json!({"services": {"app": {"image": "x", "configs": ["c"]}},
                      "configs": {"c": {"file": "nginx.conf", "name": "s_c_v1"}}}),
    );
    assert_eq!(s.configs[0].name, "s_c_v1");
}

//! Readiness probes against the real swarm: fixture services on an overlay network, probed from the
//! test process on their containers' `docker_gwbridge` addresses (VIPs do not route here), through
//! [`ProbeRunner`] exactly as the controller will run them.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, HealthConfig, NetworkAttachmentConfig, NetworkCreateRequest, ServiceSpec,
    TaskSpec, TaskSpecContainerSpec, TaskState,
};
use common::http::free_port;
use common::swarm::{FIXTURE_IMAGE, TestEnv, wait_for};
use common::with_swarm;
use hearth::manifest::Probe;
use hearth::probe::target::{self, Via};
use hearth::probe::{ProbeResult, ProbeRunner, Reach, ReachPolicy, Round, Subject};

/// What a fixture service needs.
#[derive(Default)]
struct Opts<'a> {
    env: &'a [&'a str],
    healthcheck: bool,
    publish: Option<u16>,
}

/// Creates the overlay network `<stack>_default`.
async fn network(env: &TestEnv, stack: &str) -> anyhow::Result<()> {
    env.client
        .create_network(NetworkCreateRequest {
            name: format!("{stack}_default"),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(env.labels()),
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// Creates `<stack>_<key>` from the fixture image on `<stack>_default` and waits until its task
/// runs.
async fn start(env: &TestEnv, stack: &str, key: &str, opts: Opts<'_>) -> anyhow::Result<()> {
    let c = &env.client;
    let net = format!("{stack}_default");
    let name = target::service_name(stack, key);
    let health_check = opts.healthcheck.then(|| HealthConfig {
        test: Some(
            [
                "CMD",
                "hearth-fixture",
                "get",
                "http://127.0.0.1:8080/health",
            ]
            .map(String::from)
            .to_vec(),
        ),
        interval: Some(500_000_000),
        timeout: Some(2_000_000_000),
        retries: Some(1),
        ..Default::default()
    });
    let spec = ServiceSpec {
        name: Some(name.clone()),
        labels: Some(env.labels()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(FIXTURE_IMAGE.into()),
                env: Some(opts.env.iter().map(|s| s.to_string()).collect()),
                labels: Some(env.labels()),
                health_check,
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(net),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        endpoint_spec: opts.publish.map(|port| EndpointSpec {
            ports: Some(vec![EndpointPortConfig {
                target_port: Some(8080),
                published_port: Some(port as i64),
                protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.create_service(spec).await?;
    let filter = HashMap::from([("service".to_string(), vec![name.clone()])]);
    wait_for(
        &format!("{name} to run"),
        Duration::from_secs(60),
        || async {
            let tasks = c
                .list_tasks(Some(filter.clone()))
                .await
                .map_err(|e| e.to_string())?;
            // A task with a healthcheck stays `starting` until healthy.
            let up = if opts.healthcheck {
                [TaskState::STARTING, TaskState::RUNNING].as_slice()
            } else {
                [TaskState::RUNNING].as_slice()
            };
            if tasks.iter().any(|t| {
                t.status
                    .as_ref()
                    .and_then(|s| s.state)
                    .is_some_and(|s| up.contains(&s))
            }) {
                Ok(())
            } else {
                Err(format!(
                    "{:?}",
                    tasks
                        .iter()
                        .map(|t| t.status.as_ref().map(|s| (s.state, s.err.clone())))
                        .collect::<Vec<_>>()
                ))
            }
        },
    )
    .await
}

fn subject(stack: &str) -> Subject {
    Subject {
        stack: stack.to_string(),
        domain: format!("{stack}.test.invalid"),
    }
}

fn runner(stack: &str, yaml: &str) -> ProbeRunner {
    let probe: Probe = serde_saphyr::from_str(yaml).expect("probe YAML");
    ProbeRunner::for_deployment(&subject(stack), &[probe]).remove(0)
}

/// One probe round: a fresh snapshot and reachability data, then one check.
async fn run(env: &TestEnv, r: &mut ProbeRunner) -> anyhow::Result<ProbeResult> {
    let snapshot = env.client.snapshot().await?;
    let reach = Reach::observe(&env.client, ReachPolicy::GwbridgeFirst)
        .await
        .map_err(anyhow::Error::msg)?;
    let round = Round {
        snapshot: &snapshot,
        reach: &reach,
    };
    Ok(r.run(&env.client, round).await.clone())
}

/// Runs `yaml` once.
async fn once(env: &TestEnv, stack: &str, yaml: &str) -> anyhow::Result<ProbeResult> {
    run(env, &mut runner(stack, yaml)).await
}

/// Runs `yaml` until it passes (the service may still be starting its servers).
async fn until_pass(env: &TestEnv, stack: &str, yaml: &str) -> anyhow::Result<ProbeResult> {
    wait_for(
        &format!("probe {yaml} to pass"),
        Duration::from_secs(20),
        || async {
            let r = once(env, stack, yaml).await.map_err(|e| e.to_string())?;
            if r.ok { Ok(r) } else { Err(r.message) }
        },
    )
    .await
}

fn ensure_fails(r: &ProbeResult, contains: &str) -> anyhow::Result<()> {
    anyhow::ensure!(!r.ok, "expected a failure, got a pass: {r:?}");
    anyhow::ensure!(
        r.message.contains(contains),
        "message {:?} should contain {contains:?}",
        r.message
    );
    Ok(())
}

#[tokio::test]
async fn http_probe_passes_and_fails_clearly() {
    with_swarm("probe-http", |env| async move {
        let stack = env.unique("prh");
        network(&env, &stack).await?;
        let port = free_port();
        start(
            &env,
            &stack,
            "app",
            Opts {
                env: &["FIXTURE_HTTP_PORT=8080"],
                publish: Some(port),
                ..Default::default()
            },
        )
        .await?;

        // The task is reached on its docker_gwbridge address.
        let snapshot = env.client.snapshot().await?;
        let before = env.client.counts();
        let reach = Reach::observe(&env.client, ReachPolicy::GwbridgeFirst)
            .await
            .map_err(anyhow::Error::msg)?;
        let calls = env.client.counts().since(&before).total();
        anyhow::ensure!(calls == 3, "one round reads reachability with 3 calls, made {calls}");
        let tasks = target::resolve(&snapshot, &stack, "app", &reach).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(tasks.len() == 1 && tasks[0].local, "{tasks:?}");
        anyhow::ensure!(tasks[0].addresses[0].via == Via::Gwbridge, "{tasks:?}");
        anyhow::ensure!(
            matches!(tasks[0].addresses.get(1), Some(a) if a.via == Via::Overlay(format!("{stack}_default"))),
            "overlay address second: {tasks:?}"
        );

        let ok = until_pass(&env, &stack, "http: {service: app, port: 8080, path: /health}").await?;
        anyhow::ensure!(ok.message.ends_with("/health: 200"), "{ok:?}");
        eprintln!("http pass: {} in {:?}", ok.message, ok.duration);

        let r = once(&env, &stack, "http: {service: app, port: 8080, path: /nope}").await?;
        ensure_fails(&r, "/nope: status 404, want 200")?;
        let r = once(&env, &stack, "http: {service: app, port: 8080, path: /health, status: 204}").await?;
        ensure_fails(&r, "status 200, want 204")?;
        let r = once(&env, &stack, "http: {service: app, port: 9, path: /health, timeout: 1s}").await?;
        ensure_fails(&r, "connect")?;
        let r = once(&env, &stack, "http: {service: nope, port: 8080}").await?;
        ensure_fails(&r, &format!("service {stack}_nope not found"))?;

        // curl --resolve style: the deployment's domain sent to an address (a host-mode port here).
        let yaml = format!("http: {{service: app, port: 80, path: /health, address: '127.0.0.1:{port}'}}");
        let r = until_pass(&env, &stack, &yaml).await?;
        anyhow::ensure!(
            r.message == format!("GET http://{stack}.test.invalid/health via 127.0.0.1:{port}: 200"),
            "{r:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn tcp_handshake_probe_passes_and_fails_on_wrong_bytes() {
    with_swarm("probe-tcp", |env| async move {
        let stack = env.unique("prt");
        network(&env, &stack).await?;
        start(
            &env,
            &stack,
            "app",
            Opts {
                env: &["FIXTURE_TCP_PORT=7000", "FIXTURE_HTTP_PORT=off"],
                ..Default::default()
            },
        )
        .await?;
        let ok = until_pass(
            &env,
            &stack,
            "tcp: {service: app, port: 7000, send: 'hex:0001', expect: 'hex:0002'}",
        )
        .await?;
        anyhow::ensure!(ok.message.contains("handshake ok (hex:0002)"), "{ok:?}");
        let r = once(
            &env,
            &stack,
            "tcp: {service: app, port: 7000, send: 'hex:0001', expect: 'hex:0003'}",
        )
        .await?;
        ensure_fails(&r, "expected hex:0003, got hex:0002")?;
        let r = once(
            &env,
            &stack,
            "tcp: {service: app, port: 7000, send: 'hex:0009', expect: 'hex:0002'}",
        )
        .await?;
        ensure_fails(&r, "closed after 0 of 2 expected bytes")?;
        let r = once(&env, &stack, "tcp: {service: app, port: 7001, timeout: 1s}").await?;
        ensure_fails(&r, "not accepting connections")?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn tcp_flapping_port_is_never_stable() {
    with_swarm("probe-tcp-flap", |env| async move {
        let stack = env.unique("prf");
        network(&env, &stack).await?;
        start(
            &env,
            &stack,
            "app",
            Opts {
                env: &[
                    "FIXTURE_TCP_PORT=7000",
                    "FIXTURE_TCP_FLAP=1:1",
                    "FIXTURE_HTTP_PORT=off",
                ],
                ..Default::default()
            },
        )
        .await?;
        // stableFor 3s: never passes (each check takes at most 3s + 1s timeout).
        let stable = async {
            let mut r = runner(
                &stack,
                "tcp: {service: app, port: 7000, stableFor: 3s, timeout: 1s}",
            );
            let mut results = Vec::new();
            for _ in 0..2 {
                results.push(run(&env, &mut r).await?);
            }
            anyhow::Ok((results, r.outcome()))
        };
        // stableFor 0 with a short timeout: passes when sampled while up, fails while down.
        let instant = async {
            let mut r = runner(&stack, "tcp: {service: app, port: 7000, timeout: 200ms}");
            let mut results = Vec::new();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(8) {
                results.push(run(&env, &mut r).await?);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            anyhow::Ok(results)
        };
        let (stable, instant) = tokio::join!(stable, instant);
        let (stable, outcome) = stable?;
        for r in &stable {
            ensure_fails(r, "not stable for 3s")?;
            anyhow::ensure!(r.duration < Duration::from_secs(5), "bounded: {r:?}");
        }
        anyhow::ensure!(!outcome.ok, "{outcome:?}");
        let instant = instant?;
        let passed = instant.iter().filter(|r| r.ok).count();
        let failed = instant.len() - passed;
        eprintln!(
            "stableFor 3s: {:?}; stableFor 0: {passed} passed, {failed} failed",
            stable.iter().map(|r| &r.message).collect::<Vec<_>>()
        );
        anyhow::ensure!(
            passed > 0 && failed > 0,
            "stableFor 0: {passed} passed, {failed} failed"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn tcp_delayed_port_fails_before_and_passes_after() {
    with_swarm("probe-tcp-delay", |env| async move {
        let stack = env.unique("prd");
        network(&env, &stack).await?;
        start(
            &env,
            &stack,
            "app",
            Opts {
                env: &[
                    "FIXTURE_TCP_PORT=7000",
                    "FIXTURE_TCP_DELAY=3",
                    "FIXTURE_HTTP_PORT=off",
                ],
                ..Default::default()
            },
        )
        .await?;
        let yaml =
            "tcp: {service: app, port: 7000, send: 'hex:0001', expect: 'hex:0002', timeout: 300ms}";
        let early = once(&env, &stack, yaml).await?;
        ensure_fails(&early, "not accepting connections")?;
        let late = until_pass(&env, &stack, yaml).await?;
        anyhow::ensure!(late.message.contains("handshake ok"), "{late:?}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn exec_probe_runs_in_the_task_container() {
    with_swarm("probe-exec", |env| async move {
        let stack = env.unique("pre");
        network(&env, &stack).await?;
        start(&env, &stack, "db", Opts::default()).await?;
        let before = env.client.counts();
        let r = once(&env, &stack, "exec: {service: db, command: ['true']}").await?;
        anyhow::ensure!(r.ok && r.message == "exit 0", "{r:?}");
        eprintln!("exec pass in {:?}", r.duration);
        let counts = env.client.counts().since(&before);
        for op in ["exec_create", "exec_start", "exec_inspect"] {
            anyhow::ensure!(
                counts.requests.get(op) == Some(&1),
                "{op} counted once: {counts:?}"
            );
        }
        let r = once(
            &env,
            &stack,
            "exec: {service: db, command: [sh, -c, 'echo first; echo ready to serve']}",
        )
        .await?;
        anyhow::ensure!(r.ok && r.message == "ready to serve", "{r:?}");
        let r = once(
            &env,
            &stack,
            "exec: {service: db, command: [hearth-fixture, state, read, /nope]}",
        )
        .await?;
        ensure_fails(&r, "_db.1: exit 1: state read /nope: No such file")?;
        eprintln!("exec failure message: {}", r.message);
        let r = once(
            &env,
            &stack,
            "exec: {service: db, command: [sleep, '5'], timeout: 500ms}",
        )
        .await?;
        ensure_fails(&r, "no exit within 500ms")?;
        anyhow::ensure!(r.duration < Duration::from_secs(2), "bounded: {r:?}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn docker_health_probe_follows_the_healthcheck() {
    with_swarm("probe-docker", |env| async move {
        let stack = env.unique("prk");
        network(&env, &stack).await?;
        let healthy = Opts {
            healthcheck: true,
            ..Default::default()
        };
        let sick = Opts {
            env: &["FIXTURE_UNHEALTHY=1"],
            healthcheck: true,
            ..Default::default()
        };
        let (a, b, c) = tokio::join!(
            start(&env, &stack, "good", healthy),
            start(&env, &stack, "bad", sick),
            start(&env, &stack, "plain", Opts::default()),
        );
        a?;
        b?;
        c?;
        let r = until_pass(&env, &stack, "docker: {service: good}").await?;
        anyhow::ensure!(r.message == "healthy", "{r:?}");
        let r = once(&env, &stack, "docker: {service: plain}").await?;
        anyhow::ensure!(r.ok && r.message == "no healthcheck", "{r:?}");
        // Swarm holds the task in `starting` while checks fail, and replaces it once the
        // container turns unhealthy: the probe fails with the failing check's output either way.
        let r = wait_for(
            "a failed check to show",
            Duration::from_secs(20),
            || async {
                let r = once(&env, &stack, "docker: {service: bad}")
                    .await
                    .map_err(|e| e.to_string())?;
                if r.message.contains("last check exit 1") {
                    Ok(r)
                } else {
                    Err(r.message)
                }
            },
        )
        .await?;
        anyhow::ensure!(!r.ok, "{r:?}");
        eprintln!("sick service: {}", r.message);
        // Never passes while it is sick.
        let mut seen = Vec::new();
        for _ in 0..6 {
            let r = once(&env, &stack, "docker: {service: bad}").await?;
            anyhow::ensure!(!r.ok, "{r:?}");
            seen.push(r.message);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        eprintln!("sick service, later: {seen:#?}");
        Ok(())
    })
    .await;
}

//! The test bed is real: a service from the fixture image on an overlay network runs on the swarm, is
//! reachable from the test process on a host-mode published port (127.0.0.1) and on its container's
//! `docker_gwbridge` address, turns healthy through the fixture app's own healthcheck client, and is
//! removed afterwards (also when the test fails).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, HealthConfig, NetworkAttachmentConfig, NetworkCreateRequest, ServiceSpec,
    TaskSpec, TaskSpecContainerSpec, TaskState,
};
use common::http::{free_port, get};
use common::swarm::{FIXTURE_IMAGE, wait_for};
use common::with_swarm;

#[tokio::test]
async fn fixture_service_runs_and_answers_on_the_real_swarm() {
    with_swarm("smoke", |env| async move {
        let c = &env.client;
        let net = env.unique("smoke-net");
        c.create_network(NetworkCreateRequest {
            name: net.clone(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(env.labels()),
            ..Default::default()
        })
        .await?;

        let name = env.unique("smoke");
        let token = env.unique("version");
        let port = free_port();
        let spec = ServiceSpec {
            name: Some(name.clone()),
            labels: Some(env.labels()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(FIXTURE_IMAGE.into()),
                    env: Some(vec![
                        format!("FIXTURE_VERSION={token}"),
                        "FIXTURE_HTTP_PORT=8080".into(),
                    ]),
                    labels: Some(env.labels()),
                    health_check: Some(HealthConfig {
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
                        retries: Some(3),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                networks: Some(vec![NetworkAttachmentConfig {
                    target: Some(net.clone()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            endpoint_spec: Some(EndpointSpec {
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

        // The task runs.
        let filter = HashMap::from([("service".to_string(), vec![name.clone()])]);
        let container = wait_for("the task to run", Duration::from_secs(90), || async {
            let tasks = c
                .list_tasks(Some(filter.clone()))
                .await
                .map_err(|e| e.to_string())?;
            let running = tasks
                .iter()
                .find(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING));
            match running {
                Some(t) => Ok(t
                    .status
                    .as_ref()
                    .and_then(|s| s.container_status.as_ref())
                    .and_then(|cs| cs.container_id.clone())
                    .unwrap_or_default()),
                None => Err(format!(
                    "{:?}",
                    tasks
                        .iter()
                        .map(|t| t.status.as_ref().map(|s| (s.state, s.err.clone())))
                        .collect::<Vec<_>>()
                )),
            }
        })
        .await?;

        // Reachable on the host-mode published port on loopback.
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let (status, body) = wait_for("HTTP on 127.0.0.1", Duration::from_secs(30), || async {
            get(addr, "/version")
        })
        .await?;
        anyhow::ensure!(status == 200, "status {status}");
        anyhow::ensure!(body.trim() == token, "version {body:?}, want {token:?}");

        // Reachable on the container's docker_gwbridge address.
        let gw = c.inspect_network("docker_gwbridge").await?;
        let ip = gw
            .containers
            .unwrap_or_default()
            .get(&container)
            .and_then(|e| e.ipv4_address.clone())
            .ok_or_else(|| anyhow::anyhow!("container {container} not on docker_gwbridge"))?;
        let ip = ip
            .split('/')
            .next()
            .unwrap_or_default()
            .parse::<std::net::IpAddr>()?;
        let (status, body) = get((ip, 8080).into(), "/health").map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            status == 200 && body.trim() == "ok",
            "gwbridge health: {status} {body:?}"
        );

        // The fixture app's own client works as a Docker healthcheck.
        wait_for(
            "the container to be healthy",
            Duration::from_secs(30),
            || async {
                let info = c
                    .inspect_container(&container)
                    .await
                    .map_err(|e| e.to_string())?;
                let health = info
                    .state
                    .and_then(|s| s.health)
                    .and_then(|h| h.status)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                if health == "healthy" {
                    Ok(())
                } else {
                    Err(health)
                }
            },
        )
        .await?;
        Ok(())
    })
    .await;
}

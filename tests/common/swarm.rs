//! [`TestEnv`]: a connection to the real swarm for one test, unique names, and a cleanup that removes
//! every service, network, secret and config labelled `hearth.test=<test>`, run before the test (left-
//! overs of an earlier, killed run) and after it, whether it passed or failed.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use hearth::swarm::{Client, label_filter};

/// The fixture image built by `scripts/fixture-images`.
pub const FIXTURE_IMAGE: &str = "hearth-fixture:test";

pub struct TestEnv {
    pub client: Client,
    pub test: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestEnv {
    pub async fn new(test: &str) -> TestEnv {
        let client = Client::connect(None).await.unwrap_or_else(|e| {
            panic!("{e}\nThe integration tests need the real swarm: run scripts/swarm-up first")
        });
        let env = TestEnv {
            client,
            test: test.to_string(),
        };
        env.cleanup().await;
        env
    }

    /// The label every object of this test carries.
    pub fn label(&self) -> (String, String) {
        ("hearth.test".to_string(), self.test.clone())
    }

    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([self.label()])
    }

    /// A name unique to this process and call, safe to reuse the test on the same machine.
    pub fn unique(&self, prefix: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{prefix}-{:x}{:x}-{n}", std::process::id(), nanos & 0xffff)
    }

    /// Removes everything labelled `hearth.test=<test>`: services first, then (once their tasks
    /// are gone) networks, secrets and configs. Panics if something cannot be removed in time.
    pub async fn cleanup(&self) {
        let filter = label_filter(&[&format!("hearth.test={}", self.test)]);
        let services = self.client.list_services(Some(filter.clone())).await;
        let mut removed = Vec::new();
        for s in services.unwrap_or_default() {
            if let Some(id) = s.id {
                let _ = self.client.remove_service(&id).await;
                removed.push(id);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        // A task that was starting when its service went may still create its container (and
        // volumes): wait until the removed services' containers are gone.
        for id in &removed {
            let by_label = HashMap::from([(
                "label".to_string(),
                vec![format!("com.docker.swarm.service.id={id}")],
            )]);
            let by_service = HashMap::from([("service".to_string(), vec![id.clone()])]);
            while Instant::now() < deadline {
                let containers = self.client.list_containers(Some(by_label.clone())).await;
                let tasks = self.client.list_tasks(Some(by_service.clone())).await;
                if containers.map(|c| c.is_empty()).unwrap_or(true)
                    && tasks.map(|t| t.is_empty()).unwrap_or(true)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // Sweep until two passes a second apart find nothing: a task that was starting when its
        // service went can still create a container and its volume a moment later.
        let mut quiet = 0;
        loop {
            let mut left = Vec::new();
            let mut seen = 0;
            for n in self
                .client
                .list_networks(Some(filter.clone()))
                .await
                .unwrap_or_default()
            {
                seen += 1;
                let id = n.id.unwrap_or_default();
                if let Err(e) = self.client.remove_network(&id).await
                    && !e.is_not_found()
                {
                    left.push(format!("network {}: {e}", n.name.unwrap_or_default()));
                }
            }
            for s in self
                .client
                .list_secrets(Some(filter.clone()))
                .await
                .unwrap_or_default()
            {
                seen += 1;
                if let Err(e) = self.client.remove_secret(&s.id.unwrap_or_default()).await
                    && !e.is_not_found()
                {
                    left.push(format!("secret: {e}"));
                }
            }
            for c in self
                .client
                .list_configs(Some(filter.clone()))
                .await
                .unwrap_or_default()
            {
                seen += 1;
                if let Err(e) = self.client.remove_config(&c.id.unwrap_or_default()).await
                    && !e.is_not_found()
                {
                    left.push(format!("config: {e}"));
                }
            }
            for v in self
                .client
                .list_volumes(Some(filter.clone()))
                .await
                .unwrap_or_default()
            {
                seen += 1;
                if let Err(e) = self.client.remove_volume(&v.name).await
                    && !e.is_not_found()
                {
                    left.push(format!("volume {}: {e}", v.name));
                }
            }
            if left.is_empty() && seen == 0 {
                quiet += 1;
                if quiet >= 2 {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            quiet = 0;
            if Instant::now() > deadline {
                panic!("cleanup of hearth.test={} left: {left:?}", self.test);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Runs `body` against the real swarm and cleans up after it, also when it fails or panics.
pub async fn with_swarm<F, Fut>(test: &str, body: F)
where
    F: FnOnce(TestEnv) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let env = TestEnv::new(test).await;
    let cleaner = TestEnv {
        client: env.client.clone(),
        test: env.test.clone(),
    };
    let outcome = AssertUnwindSafe(body(env)).catch_unwind().await;
    cleaner.cleanup().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{test} failed: {e:#}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Waits until `check` returns `Some`, polling every 250 ms; on timeout fails with the last state
/// `describe` gives.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(state) if Instant::now() > deadline => {
                anyhow::bail!("timed out after {timeout:?} waiting for {what}; last state: {state}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// The container of a running task of `service` (waiting up to `timeout` for one).
pub async fn running_container(
    env: &TestEnv,
    service: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let filter = HashMap::from([
        ("service".to_string(), vec![service.to_string()]),
        ("desired-state".to_string(), vec!["running".to_string()]),
    ]);
    wait_for("a running task", timeout, || async {
        let tasks = env
            .client
            .list_tasks(Some(filter.clone()))
            .await
            .map_err(|e| e.to_string())?;
        tasks
            .iter()
            .find_map(|t| {
                let s = t.status.as_ref()?;
                (s.state == Some(bollard::models::TaskState::RUNNING))
                    .then(|| s.container_status.as_ref()?.container_id.clone())
                    .flatten()
            })
            .ok_or_else(|| format!("{} tasks, none running", tasks.len()))
    })
    .await
}

/// The docker_gwbridge address of a running task of `service` (how the host reaches it), waiting
/// up to `timeout` for one.
pub async fn gwbridge_addr(
    env: &TestEnv,
    service: &str,
    port: u16,
    timeout: Duration,
) -> anyhow::Result<std::net::SocketAddr> {
    let container = running_container(env, service, timeout).await?;
    let gw = env.client.inspect_network("docker_gwbridge").await?;
    let ip = gw
        .containers
        .unwrap_or_default()
        .get(&container)
        .and_then(|e| e.ipv4_address.clone())
        .ok_or_else(|| anyhow::anyhow!("{container} not on docker_gwbridge"))?;
    let ip: std::net::IpAddr = ip.split('/').next().unwrap_or_default().parse()?;
    Ok((ip, port).into())
}

/// Polls the synchronous `f` every `every` until it returns `Some`; fails after `timeout`.
pub async fn until<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        anyhow::ensure!(
            start.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(every).await;
    }
}

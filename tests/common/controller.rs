//! Running the controller in-process against a [`TestPool`], and waiting on its reported status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth::controller::{self, Config, DeploymentStatus, Shared};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::pool::TestPool;

pub struct Running {
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts `hearth run` on the pool's manifests, with short intervals for tests.
pub fn start(pool: &TestPool) -> Running {
    start_with(pool, |_| {})
}

/// [`start`], with the config adjusted by `tune` (e.g. a snapshot directory).
pub fn start_with(pool: &TestPool, tune: impl FnOnce(&mut Config)) -> Running {
    start_on(pool.path(), tune)
}

/// [`start_with`] on any manifest directory (e.g. one `hearth import` wrote).
pub fn start_on(path: &std::path::Path, tune: impl FnOnce(&mut Config)) -> Running {
    let mut cfg = Config {
        paths: vec![path.to_path_buf()],
        resync: Duration::from_secs(3),
        poll: Duration::from_millis(500),
        grace: Duration::from_secs(10),
        ..Default::default()
    };
    tune(&mut cfg);
    let shared = Arc::new(Shared::default());
    let (stop, rx) = watch::channel(false);
    let handle = tokio::spawn(controller::run(cfg, shared.clone(), rx));
    Running {
        shared,
        stop,
        handle: Some(handle),
    }
}

impl Running {
    /// Waits until `check` accepts the deployment's status; fails with the last status seen.
    pub async fn wait(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&DeploymentStatus) -> bool,
    ) -> anyhow::Result<DeploymentStatus> {
        let start = Instant::now();
        loop {
            let st = self.shared.status(name);
            if let Some(st) = &st
                && check(st)
            {
                return Ok(st.clone());
            }
            if start.elapsed() > timeout {
                anyhow::bail!(
                    "{name}: not {what} after {timeout:?}; last status: {}",
                    st.map(|s| format!("{} {} {}", s.phase, s.reason, s.message))
                        .unwrap_or_else(|| "none".into())
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for a phase (and reason, when given).
    pub async fn phase(
        &self,
        name: &str,
        phase: &str,
        reason: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<DeploymentStatus> {
        let what = format!("{phase}/{}", reason.unwrap_or("*"));
        self.wait(name, &what, timeout, |s| {
            s.phase == phase && reason.is_none_or(|r| s.reason == r)
        })
        .await
    }

    /// Stops the controller as SIGTERM would and waits for it to return.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        match self.handle.take() {
            Some(h) => h.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

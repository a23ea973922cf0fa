//! High availability on the real swarm: two `hearth run` processes (the built binary) for one pool
//! -> exactly one changes the swarm; SIGKILL of the leader while its applies run -> the standby
//! takes over within the lease time and finishes the job without applying anything twice; SIGTERM
//! releases the lease so a standby takes over at once. Prints the measured hand-off times.
//!
//! The pool: ten `bench-trio` deployments with `REPLICAS=0` (a network and three services each,
//! no task runs) applied one at a time (`concurrency: 1`), so the leader is still applying when
//! it is killed. Docker writes are counted on each process's `/metrics`
//! (`hearth_docker_requests_total`).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pool::TestPool;
use common::swarm::until;
use common::{docker, with_swarm};

const N: usize = 10;
/// The default lease duration (`hearth run` without `--lease-duration`).
const LEASE: Duration = Duration::from_secs(15);

struct Hearth {
    name: String,
    identity: String,
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Hearth {
    fn start(pool: &Path, dir: &Path, name: &str) -> anyhow::Result<Hearth> {
        let addr: SocketAddr = format!("127.0.0.1:{}", common::http::free_port()).parse()?;
        let identity = format!("{name}-{}", std::process::id());
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["run", "-f", pool.to_str().unwrap_or_default()])
            .args(["--listen", &addr.to_string(), "--identity", &identity])
            .args(["--resync", "3s", "--poll", "500ms", "--grace", "10s"])
            .stderr(std::fs::File::create(&log)?)
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Hearth {
            name: name.to_string(),
            identity,
            child,
            addr,
            log,
        })
    }

    /// This process's `/metrics` (`None` when another process answers on the port).
    fn metrics(&self) -> Option<String> {
        let (_, m) = common::http::get(self.addr, "/metrics").ok()?;
        let me = format!("identity=\"{}\"", self.identity);
        m.lines()
            .any(|l| l.starts_with("hearth_lease_info{") && l.contains(&me))
            .then_some(m)
    }

    /// `hearth_leader`, when the process answers.
    fn leader(&self) -> Option<bool> {
        let m = self.metrics()?;
        m.lines()
            .find_map(|l| l.strip_prefix("hearth_leader "))
            .map(|v| v.trim() == "1")
    }

    /// Docker requests by operation.
    fn requests(&self) -> Option<Vec<(String, u64)>> {
        let m = self.metrics()?;
        Some(
            m.lines()
                .filter_map(|l| l.strip_prefix("hearth_docker_requests_total{op=\""))
                .filter_map(|l| {
                    let (op, rest) = l.split_once("\"}")?;
                    Some((op.to_string(), rest.trim().parse().ok()?))
                })
                .collect(),
        )
    }

    /// Writes to the swarm other than the lease itself (the lease is one config).
    fn writes(&self) -> Option<u64> {
        Some(
            self.requests()?
                .iter()
                .filter(|(op, _)| {
                    hearth::swarm::WRITE_OPS.contains(&op.as_str()) && op != "config_create"
                })
                .map(|(_, n)| n)
                .sum(),
        )
    }

    fn op(&self, op: &str) -> u64 {
        self.requests()
            .unwrap_or_default()
            .iter()
            .find(|(o, _)| o == op)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok(s);
            }
            anyhow::ensure!(start.elapsed() < timeout, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Hearth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lease object's labels (`None` when absent).
fn lease_labels(name: &str) -> Option<serde_json::Value> {
    let out = Command::new("docker")
        .args([
            "config",
            "inspect",
            name,
            "--format",
            "{{json .Spec.Labels}}",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_acts_and_a_standby_takes_over() {
    with_swarm("lease", |env| async move {
        let pool = TestPool::new(&env, false);
        let text = std::fs::read_to_string(pool.path().join("pool.yml"))?.replace(
            "defaults: {prune: false}",
            "defaults: {prune: false, concurrency: 1}",
        );
        std::fs::write(pool.path().join("pool.yml"), text)?;
        let names: Vec<String> = (0..N).map(|i| format!("trio-{i}")).collect();
        for n in &names {
            pool.deployment(
                n,
                "  recipe: bench-trio\n  version: 1.0.0+1\n  env: {REPLICAS: \"0\"}\n",
            );
        }
        let pool_name = pool.domain.replace('.', "-");
        let lease_name = hearth::controller::lease::lease_name(&pool_name);
        let logs = tempfile::tempdir()?;
        let services = || {
            docker(&[
                "service",
                "ls",
                "-q",
                "--filter",
                &format!("label=hearth.test={}", env.test),
            ])
            .lines()
            .count()
        };

        // Two instances at once: exactly one leads.
        let started = Instant::now();
        let mut a = Hearth::start(pool.path(), logs.path(), "a")?;
        let mut b = Hearth::start(pool.path(), logs.path(), "b")?;
        let (leader_first, first_lead) = until("a leader", Duration::from_secs(20), Duration::from_millis(20), || {
            match (a.leader(), b.leader()) {
                (Some(true), _) => Some(("a", started.elapsed())),
                (_, Some(true)) => Some(("b", started.elapsed())),
                _ => None,
            }
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\na:\n{}\nb:\n{}", a.log_text(), b.log_text()))?;
        println!("first leader {leader_first} after {first_lead:?} (process start included)");
        let (leader, standby) = if leader_first == "a" {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        // Kill the leader while its applies run: some, not all, deployments written.
        until("the leader's first write", Duration::from_secs(60), Duration::from_millis(20), || {
            leader.writes().filter(|w| *w >= 1)
        })
        .await?;
        assert_eq!(standby.leader(), Some(false), "both lead");
        assert_eq!(
            standby.writes(),
            Some(0),
            "the standby wrote while the other led"
        );
        // Best: between two writes of one deployment (a network and three services each), killed
        // right after the look that saw it.
        let inside = until("a leader mid-apply", Duration::from_secs(5), Duration::from_millis(20), || {
            leader.writes().filter(|w| *w % 4 != 0)
        })
        .await;
        leader.signal("-KILL");
        let killed = Instant::now();
        leader.wait_exit(Duration::from_secs(10))?;
        // Let a request the leader sent just before it died land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let live_at_kill = services();
        println!(
            "killed {} {}, {live_at_kill} of {} services live",
            leader.name,
            match inside {
                Ok(w) => format!("inside a deployment's apply ({w} writes at the last look)"),
                Err(_) => "between applies".to_string(),
            },
            3 * N
        );
        assert!(
            live_at_kill < 3 * N,
            "the leader finished before it was killed: the test did not kill it mid-apply"
        );
        anyhow::ensure!(
            standby.writes() == Some(0),
            "the standby wrote before the leader's lease ran out"
        );

        // The standby takes over within the lease time and finishes.
        let became_leader = until("the standby leads", LEASE + Duration::from_secs(5), Duration::from_millis(20), || {
            standby.leader().filter(|l| *l).map(|_| killed.elapsed())
        })
        .await?;
        let first_standby_write = until("the standby writes", Duration::from_secs(30), Duration::from_millis(20), || {
            standby
                .writes()
                .filter(|w| *w > 0)
                .map(|_| killed.elapsed())
        })
        .await?;
        println!(
            "hand-off: kill -> standby leads {became_leader:?}, -> its first write {first_standby_write:?}"
        );
        assert!(
            became_leader <= LEASE + Duration::from_secs(2),
            "hand-off took {became_leader:?}"
        );
        until("every service created", Duration::from_secs(300), Duration::from_millis(20), || {
            (services() == 3 * N).then_some(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\nthe new leader's log:\n{}", standby.log_text()))?;
        // Nothing applied twice: the new leader created exactly the services that were missing,
        // and updated or removed nothing (a second apply would update, or fail to create).
        assert_eq!(
            standby.op("service_create"),
            (3 * N - live_at_kill) as u64,
            "service creates by the new leader"
        );
        for op in ["service_update", "service_remove", "network_remove"] {
            assert_eq!(standby.op(op), 0, "{op} by the new leader");
        }
        assert!(
            !standby.log_text().contains("failed"),
            "{}",
            standby.log_text()
        );
        let holder = lease_labels(&lease_name).expect("the lease object");
        assert_eq!(holder["hearth.lease.holder"], standby.identity.as_str());
        assert_eq!(holder["hearth.test"], env.test.as_str());

        // A third instance stands by and says so; SIGTERM of the leader hands over at once.
        let mut c = Hearth::start(pool.path(), logs.path(), "c")?;
        until("c stands by", Duration::from_secs(60), Duration::from_millis(20), || {
            (c.leader() == Some(false)).then_some(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\nc's log:\n{}", c.log_text()))?;
        let (_, body) = until("c's API", Duration::from_secs(20), Duration::from_millis(20), || {
            common::http::get(c.addr, "/api/v1/deployments/trio-0")
                .ok()
                .filter(|(code, b)| *code == 200 && b.contains("standby; leader is"))
        })
        .await?;
        assert!(
            body.contains(&format!("standby; leader is {}", standby.identity)),
            "{body}"
        );
        assert_eq!(c.writes(), Some(0));
        standby.signal("-TERM");
        let termed = Instant::now();
        let c_leads = until("c leads after SIGTERM", LEASE, Duration::from_millis(20), || {
            (c.leader() == Some(true)).then(|| termed.elapsed())
        })
        .await?;
        println!("SIGTERM hand-off: c leads {c_leads:?} after the leader's SIGTERM");
        assert!(c_leads < Duration::from_secs(5), "{c_leads:?}");
        let status = standby.wait_exit(Duration::from_secs(30))?;
        let log = standby.log_text();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        println!("the old leader's last log lines:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        assert!(status.success(), "{}", standby.log_text());
        assert!(standby.log_text().contains("released the leader lease"));

        // c releases on its way out too; the test removes the lease object (labelled like
        // everything of the test) and checks it is gone.
        c.signal("-TERM");
        c.wait_exit(Duration::from_secs(30))?;
        let after = lease_labels(&lease_name).expect("the lease object");
        assert_eq!(after["hearth.lease.holder"], "");
        env.cleanup().await;
        assert!(lease_labels(&lease_name).is_none(), "lease left behind");
        Ok(())
    })
    .await;
}

//! hearth on a real three-node Swarm built by `scripts/swarm-multi` (extra dockerds in network
//! namespaces; `--heartbeat 1s` so a lost node is `Down` in seconds): placement honoured and an
//! impossible constraint reported with its text, a worker killed while it runs tasks (`NodeDown`
//! then `Ready`, no write from hearth), a stateful service pinned to its volume's node
//! (`VolumeNodeDown` while that node is gone, its file still there when it is back), a partitioned
//! worker healed, a worker's socket refused, and a manager killed during a reconcile (hearth goes
//! on through another manager).
//!
//! `#[ignore]`d for a bare `cargo test` (root, two clusters, about 80 s): `scripts/test` runs them
//! (`scripts/test --multinode`: only the multi-node tests), or `cargo test --test multinode --
//! --ignored`. Everything runs on the extra daemons (labelled
//! `hearth.test`), and the cluster is torn down at the end of each test, also when it fails.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hearth::controller::{self, Config, DeploymentStatus, Shared};
use hearth::swarm::{Client, SwarmError};
use tokio::sync::watch;

/// One cluster on the machine at a time (the tests share `scripts/swarm-multi`'s state).
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn script() -> String {
    format!("{}/scripts/swarm-multi", env!("CARGO_MANIFEST_DIR"))
}

fn swarm_multi(args: &[&str]) -> String {
    let out = Command::new(script())
        .args(args)
        .output()
        .expect("run swarm-multi");
    assert!(
        out.status.success(),
        "swarm-multi {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sock(n: u32) -> String {
    format!("unix:///run/hearth-node{n}/docker.sock")
}

/// The cluster for one test; `down` on drop (also on panic).
struct Cluster;

impl Cluster {
    fn up(managers: u32) -> Cluster {
        swarm_multi(&[
            "up",
            "3",
            "--managers",
            &managers.to_string(),
            "--heartbeat",
            "1s",
        ]);
        Cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("down").output();
    }
}

/// Two recipes as git repos: `mn-web` (replicated, a placement constraint from the env) and
/// `mn-db` (one replica with a local named volume).
fn recipes(dir: &Path) {
    let web = r#"version: "3.8"
services:
  app:
    image: hearth-fixture:test
    environment:
      - FIXTURE_VERSION=${APP_VERSION:-1}
    deploy:
      replicas: ${REPLICAS:-2}
      endpoint_mode: dnsrr
      # Swarm's default delay: replacements start 5 s after a node is Down
      restart_policy: {condition: any, delay: 5s}
      placement:
        constraints: ["${CONSTRAINT:-node.role==worker}"]
"#;
    let db = r#"version: "3.8"
services:
  db:
    image: hearth-fixture:test
    environment:
      - FIXTURE_STATE_FILE=/data/state
      - FIXTURE_STATE_INIT=fresh
    volumes:
      - data:/data
    deploy:
      endpoint_mode: dnsrr
      restart_policy: {condition: any, delay: 1s}
      placement:
        constraints: ["node.role==worker"]
volumes:
  data:
"#;
    for (name, compose) in [("mn-web", web), ("mn-db", db)] {
        let repo = dir.join(name);
        std::fs::create_dir_all(&repo).expect("mkdir");
        common::recipes::git(&repo, &["init", "-q"]);
        std::fs::write(repo.join("compose.yml"), compose).expect("compose");
        std::fs::write(repo.join(".env.sample"), format!("TYPE={name}\n")).expect("env");
        common::recipes::git(&repo, &["add", "-A"]);
        common::recipes::git(&repo, &["commit", "-qm", "v1"]);
        common::recipes::git(&repo, &["tag", "1.0.0+1"]);
    }
}

struct Pool {
    dir: tempfile::TempDir,
}

impl Pool {
    fn new(test: &str) -> Pool {
        let dir = tempfile::tempdir().expect("tempdir");
        let recipes_dir = dir.path().join("recipes");
        recipes(&recipes_dir);
        let manifests = dir.path().join("m");
        std::fs::create_dir_all(&manifests).expect("mkdir");
        std::fs::write(
            manifests.join("pool.yml"),
            format!(
                "apiVersion: hearth/v1\nkind: Pool\nmetadata: {{name: mn}}\nspec:\n  domain: mn.test\n  \
                 recipes: {}\n  labels: {{hearth.test: {test}}}\n",
                recipes_dir.display()
            ),
        )
        .expect("pool");
        Pool { dir }
    }

    fn deployment(&self, name: &str, recipe: &str, env: &str) {
        std::fs::write(
            self.dir.path().join("m").join(format!("{name}.yml")),
            format!(
                "apiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  \
                 recipe: {recipe}\n  version: 1.0.0+1\n  env: {{{env}}}\n"
            ),
        )
        .expect("deployment");
    }
}

struct Hearth {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Hearth {
    fn start(pool: &Pool, hosts: &[String]) -> Hearth {
        let cfg = Config {
            paths: vec![pool.dir.path().join("m")],
            docker_host: Some(hosts.join(",")),
            resync: Duration::from_secs(3),
            poll: Duration::from_millis(300),
            grace: Duration::from_secs(5),
            ..Default::default()
        };
        let shared = Arc::new(Shared::default());
        let (stop, rx) = watch::channel(false);
        let handle = tokio::spawn(controller::run(cfg, shared.clone(), rx));
        Hearth {
            shared,
            stop,
            handle,
        }
    }

    fn writes(&self) -> u64 {
        self.shared
            .client
            .get()
            .map(|c| c.counts().writes())
            .unwrap_or(0)
    }

    async fn wait(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&DeploymentStatus) -> bool,
    ) -> DeploymentStatus {
        let start = Instant::now();
        loop {
            let st = self.shared.status(name);
            if let Some(st) = &st
                && check(st)
            {
                return st.clone();
            }
            assert!(
                start.elapsed() < timeout,
                "{name}: not {what} after {timeout:?}; last: {}",
                st.map(|s| format!("{} {} {}", s.phase, s.reason, s.message))
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn phase(
        &self,
        name: &str,
        phase: &str,
        reason: Option<&str>,
        secs: u64,
    ) -> DeploymentStatus {
        self.wait(
            name,
            &format!("{phase}/{reason:?}"),
            Duration::from_secs(secs),
            |s| s.phase == phase && reason.is_none_or(|r| s.reason == r),
        )
        .await
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(20), self.handle).await;
    }
}

/// `docker` CLI against node `n`.
fn dk(n: u32, args: &[&str]) -> String {
    let n = n.to_string();
    let mut all = vec!["docker", n.as_str()];
    all.extend_from_slice(args);
    swarm_multi(&all)
}

/// Node number (1..3) of a node ID.
fn node_number(id: &str) -> u32 {
    let label = dk(
        1,
        &[
            "node",
            "inspect",
            id,
            "-f",
            "{{index .Spec.Labels \"hearth.node\"}}",
        ],
    );
    label.trim().parse().expect("hearth.node label")
}

/// (task ID, node number) of the service's running tasks.
fn running_tasks(service: &str) -> Vec<(String, u32)> {
    let out = dk(
        1,
        &[
            "service",
            "ps",
            service,
            "-q",
            "--filter",
            "desired-state=running",
            "--no-trunc",
        ],
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .filter_map(|id| {
            let f = dk(1, &["inspect", id, "-f", "{{.Status.State}} {{.NodeID}}"]);
            let mut p = f.split_whitespace();
            let (state, node) = (p.next()?, p.next()?);
            (state == "running").then(|| (id.to_string(), node_number(node)))
        })
        .collect()
}

async fn node_state(client: &Client, number: u32) -> Option<String> {
    let nodes = client.list_nodes().await.ok()?;
    nodes.iter().find_map(|n| {
        let label = n.spec.as_ref()?.labels.as_ref()?.get("hearth.node")?;
        (label == &number.to_string())
            .then(|| n.status.as_ref()?.state.map(|s| s.to_string()))
            .flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "multi-node swarm: run by scripts/test"]
async fn one_manager_two_workers() {
    let _lock = CLUSTER.lock().await;
    let _cluster = Cluster::up(1);
    let pool = Pool::new("multinode-workers");
    let hosts = vec![sock(1)];

    // A worker's socket is refused with a clear error.
    let err = Client::connect(Some(&sock(3))).await.expect_err("a worker");
    assert!(matches!(err, SwarmError::NotManager { .. }));
    assert_eq!(
        err.to_string(),
        format!("{} is a worker: hearth needs a manager", sock(3))
    );

    pool.deployment("web", "mn-web", "REPLICAS: '2'");
    pool.deployment(
        "nowhere",
        "mn-web",
        "REPLICAS: '1', CONSTRAINT: 'node.labels.nope==1'",
    );
    pool.deployment("db", "mn-db", "");
    let h = Hearth::start(&pool, &hosts);

    // Placement honoured: both replicas on workers (nodes 2 and 3).
    h.phase("web", "Ready", None, 90).await;
    let tasks = running_tasks("web_mn_test_app");
    assert_eq!(tasks.len(), 2);
    assert!(tasks.iter().all(|(_, n)| *n >= 2), "{tasks:?}");
    // An impossible constraint is reported with its text.
    let st = h
        .phase("nowhere", "Wedged", Some("Unschedulable"), 60)
        .await;
    assert!(
        st.message
            .contains("no ready node satisfies node.labels.nope==1"),
        "{}",
        st.message
    );

    // The stateful service runs on a worker and is pinned there without a restart.
    h.phase("db", "Ready", None, 90).await;
    let db = "db_mn_test_db";
    let wait_pin = Instant::now();
    let pinned = loop {
        let label = dk(
            1,
            &[
                "service",
                "inspect",
                db,
                "-f",
                "{{index .Spec.Labels \"hearth.pin-node\"}}",
            ],
        );
        if !label.trim().is_empty() {
            break label.trim().to_string();
        }
        assert!(
            wait_pin.elapsed() < Duration::from_secs(30),
            "db never pinned"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let constraints = dk(
        1,
        &[
            "service",
            "inspect",
            db,
            "-f",
            "{{json .Spec.TaskTemplate.Placement.Constraints}}",
        ],
    );
    assert!(
        constraints.contains(&format!("node.id=={pinned}")),
        "{constraints}"
    );
    h.phase("db", "Ready", None, 60).await;
    let db_tasks = running_tasks(db);
    assert_eq!(db_tasks.len(), 1);
    let all_db_tasks = dk(1, &["service", "ps", db, "-q"]);
    assert_eq!(
        all_db_tasks.lines().count(),
        1,
        "pinning restarted the task: {all_db_tasks}"
    );
    let db_node = node_number(&pinned);
    assert_eq!(db_tasks[0].1, db_node);
    // A file in its volume, on that node.
    let container = dk(
        db_node,
        &[
            "ps",
            "-q",
            "--filter",
            "label=com.docker.swarm.service.name=db_mn_test_db",
        ],
    );
    dk(
        db_node,
        &[
            "exec",
            container.trim(),
            "sh",
            "-c",
            "echo precious > /data/file",
        ],
    );

    // A worker killed while it runs web tasks: NodeDown naming it, then Ready, no write by hearth.
    // Kill the worker that does not hold the db (the db is tested below).
    let victim = if db_node == 2 { 3 } else { 2 };
    h.phase("web", "Ready", None, 60).await;
    let watcher = Client::connect(Some(&sock(1))).await.expect("watcher");
    let writes = h.writes();
    let t0 = Instant::now();
    swarm_multi(&["kill", &victim.to_string(), "--all"]);
    let mut swarm_down = None;
    let mut hearth_down = None;
    while (swarm_down.is_none() || hearth_down.is_none()) && t0.elapsed() < Duration::from_secs(60)
    {
        if swarm_down.is_none() && node_state(&watcher, victim).await.as_deref() == Some("down") {
            swarm_down = Some(t0.elapsed());
        }
        if hearth_down.is_none()
            && let Some(st) = h.shared.status("web")
            && st.reason == "NodeDown"
        {
            assert!(
                st.message.contains(&format!("hearth-node{victim}")),
                "{}",
                st.message
            );
            hearth_down = Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (swarm_down, hearth_down) = (
        swarm_down.expect("swarm marks it down"),
        hearth_down.expect("hearth says NodeDown"),
    );
    h.phase("web", "Ready", None, 60).await;
    let ready = t0.elapsed();
    eprintln!(
        "MEASURE worker kill: swarm Down {:.1}s, hearth NodeDown {:.1}s, Ready again {:.1}s",
        swarm_down.as_secs_f64(),
        hearth_down.as_secs_f64(),
        ready.as_secs_f64()
    );
    assert!(
        hearth_down <= swarm_down + Duration::from_secs(2),
        "hearth {hearth_down:?} vs swarm {swarm_down:?}"
    );
    assert_eq!(
        h.writes(),
        writes,
        "hearth wrote while Swarm healed the node loss"
    );
    swarm_multi(&["start", &victim.to_string()]);

    // The db's node is lost: VolumeNodeDown, the db does not start elsewhere on an empty volume.
    let t0 = Instant::now();
    swarm_multi(&["kill", &db_node.to_string(), "--all"]);
    let st = h.phase("db", "Degraded", Some("VolumeNodeDown"), 60).await;
    eprintln!(
        "MEASURE db node kill: VolumeNodeDown after {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        st.message.contains(&format!("hearth-node{db_node}")),
        "{}",
        st.message
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(running_tasks(db).is_empty(), "db started elsewhere");
    swarm_multi(&["start", &db_node.to_string()]);
    h.phase("db", "Ready", None, 90).await;
    let container = dk(
        db_node,
        &[
            "ps",
            "-q",
            "--filter",
            "label=com.docker.swarm.service.name=db_mn_test_db",
        ],
    );
    let file = dk(db_node, &["exec", container.trim(), "cat", "/data/file"]);
    assert_eq!(file.trim(), "precious");

    // A partitioned worker, then healed: back to Ready.
    h.phase("web", "Ready", None, 60).await;
    let t0 = Instant::now();
    let part = running_tasks("web_mn_test_app")[0].1;
    swarm_multi(&["partition", &part.to_string()]);
    let st = h
        .wait("web", "NodeDown", Duration::from_secs(60), |s| {
            s.reason == "NodeDown"
        })
        .await;
    assert!(
        st.message.contains(&format!("hearth-node{part}")),
        "{}",
        st.message
    );
    eprintln!(
        "MEASURE partition: hearth NodeDown after {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    swarm_multi(&["heal", &part.to_string()]);
    h.phase("web", "Ready", None, 60).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "multi-node swarm: run by scripts/test"]
async fn three_managers_failover() {
    let _lock = CLUSTER.lock().await;
    let _cluster = Cluster::up(3);
    let pool = Pool::new("multinode-managers");
    let leader: u32 = swarm_multi(&["leader"]).trim().parse().expect("leader");
    // hearth starts on the leader, the others after it
    let mut hosts = vec![sock(leader)];
    hosts.extend((1..=3).filter(|n| *n != leader).map(sock));
    pool.deployment(
        "web",
        "mn-web",
        "REPLICAS: '1', CONSTRAINT: 'node.role==manager'",
    );
    let h = Hearth::start(&pool, &hosts);
    h.phase("web", "Ready", None, 90).await;
    let client = h.shared.client.get().expect("client").clone();
    assert_eq!(client.host(), sock(leader));

    // Watch hearth_docker_up for the gap.
    let shared = h.shared.clone();
    let gap = Arc::new(Mutex::new((None::<Instant>, None::<Instant>)));
    let g = gap.clone();
    let watch = tokio::spawn(async move {
        loop {
            let up = shared.is_docker_up();
            {
                let mut g = g.lock().expect("gap");
                if !up && g.0.is_none() {
                    g.0 = Some(Instant::now());
                }
                if up && g.0.is_some() && g.1.is_none() {
                    g.1 = Some(Instant::now());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    // A change to reconcile, and the manager hearth talks to killed right away.
    pool.deployment(
        "web",
        "mn-web",
        "REPLICAS: '1', CONSTRAINT: 'node.role==manager', APP_VERSION: '2'",
    );
    let t0 = Instant::now();
    swarm_multi(&["kill", &leader.to_string()]);
    let other = if leader == 1 { 2 } else { 1 };
    let spec_env = || {
        Command::new(script())
            .args([
                "docker",
                &other.to_string(),
                "service",
                "inspect",
                "web_mn_test_app",
                "-f",
            ])
            .arg("{{json .Spec.TaskTemplate.ContainerSpec.Env}}")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    while !spec_env().contains("FIXTURE_VERSION=2") {
        assert!(t0.elapsed() < Duration::from_secs(120), "v2 never applied");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let applied = t0.elapsed();
    h.phase("web", "Ready", None, 90).await;
    let ready = t0.elapsed();
    watch.abort();
    let (down, up) = *gap.lock().expect("gap");
    assert!(client.failovers() >= 1, "no failover");
    assert_ne!(client.host(), sock(leader));
    let down = down.expect("hearth_docker_up went 0");
    eprintln!(
        "MEASURE manager kill: docker_up 0 after {:.1}s for {:.1}s, now on {}, v2 applied after \
         {:.1}s, Ready after {:.1}s",
        down.duration_since(t0).as_secs_f64(),
        up.map(|u| u.duration_since(down).as_secs_f64())
            .unwrap_or(f64::NAN),
        client.host(),
        applied.as_secs_f64(),
        ready.as_secs_f64()
    );
    h.stop().await;
}

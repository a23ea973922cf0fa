//! hearth itself, highly available, on a real three-manager Swarm (`scripts/swarm-multi up 3
//! --managers 3 --heartbeat 1s`): the self-deploy stack `manifests/hearth/` with the overlay
//! `compose.ha.yml` (two replicas, at most one per manager, each on its own node's Docker socket),
//! deployed with `docker stack deploy` from the offline-built image `hearth:test` (loaded on every
//! node by `swarm-multi load-hearth`). The two replicas share the pool's leader lease. The node of
//! the active replica is killed (`swarm-multi kill N --all`: dockerd, containerd, shims and the
//! hearth container, like a machine losing power) while the leader is applying the pool: the other
//! replica leads within the lease time plus one resync, finishes the pool, and nothing is applied
//! twice (Docker writes counted on both replicas' `/metrics`, `hearth_docker_requests_total`,
//! reached on their host-mode port inside the nodes' network namespaces).
//!
//! The replicas are placed on the two managers that are not the raft leader (a node label the test
//! adds): killing the raft leader adds a raft election (13-30 s on dockerd 20.10, measured by
//! `tests/multinode.rs`) before any manager accepts a write, which is Swarm's time, not hearth's.
//!
//! Runs on its own cluster (prefix `hearthha`, so it never meets `tests/multinode.rs`'s cluster);
//! everything is labelled `hearth.test`, removed, and the cluster is torn down also on failure.
//! `#[ignore]`d: run by `scripts/test` (needs root, `hearth:test` from `scripts/image`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::swarm::until;

const PREFIX: &str = "hearthha";
const TEST: &str = "multinode-ha";
/// Deployments of the pool (`bench-trio`, `REPLICAS=0`: a network and three services each).
const N: usize = 16;
/// `hearth run`'s default lease duration (the test does not change it).
const LEASE: Duration = Duration::from_secs(15);
/// The replicas' `--resync`.
const RESYNC: Duration = Duration::from_secs(5);
/// The port each replica publishes in host mode on its node.
const PORT: u16 = 9480;

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn script() -> PathBuf {
    repo_dir().join("scripts/swarm-multi")
}

fn image() -> String {
    std::env::var("HEARTH_SELF_DEPLOY_IMAGE").unwrap_or_else(|_| "hearth:test".into())
}

/// `scripts/swarm-multi ARGS` on this test's cluster: (success, stdout, stderr).
fn sm(args: &[&str]) -> (bool, String, String) {
    match Command::new(script())
        .env("HEARTH_MN_PREFIX", PREFIX)
        .args(args)
        .output()
    {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (false, String::new(), format!("swarm-multi: {e}")),
    }
}

/// `scripts/swarm-multi ARGS`, panicking when it fails.
fn swarm_multi(args: &[&str]) -> String {
    let (ok, out, err) = sm(args);
    assert!(ok, "swarm-multi {args:?}: {err}");
    out
}

/// `docker` CLI against node `n`.
fn dk(n: u32, args: &[&str]) -> String {
    let n = n.to_string();
    let mut all = vec!["docker", n.as_str()];
    all.extend_from_slice(args);
    swarm_multi(&all)
}

fn sock(n: u32) -> String {
    format!("/run/{PREFIX}-node{n}/docker.sock")
}

fn ip(n: u32) -> String {
    format!("10.250.0.{}", 10 + n)
}

/// The cluster; torn down on drop (also on panic).
struct Cluster;

impl Drop for Cluster {
    fn drop(&mut self) {
        let (_, _, err) = sm(&["down"]);
        eprintln!("{}", err.trim());
    }
}

/// One replica's `/metrics`, fetched from inside node `via`'s network namespace (traffic stays on
/// the namespaces' bridge); `None` when it does not answer.
fn metrics(via: u32, node: u32) -> Option<String> {
    let url = format!("http://{}:{PORT}/metrics", ip(node));
    let (ok, out, _) = sm(&["exec", &via.to_string(), "curl", "-sS", "-m", "2", &url]);
    (ok && out.contains("hearth_build_info")).then_some(out)
}

/// What the test reads from a replica's `/metrics`.
#[derive(Debug, Clone, Default)]
struct Replica {
    leader: bool,
    identity: String,
    requests: BTreeMap<String, u64>,
    reconciles: u64,
}

impl Replica {
    fn parse(m: &str) -> Replica {
        let mut r = Replica::default();
        for line in m.lines() {
            if let Some(v) = line.strip_prefix("hearth_leader ") {
                r.leader = v.trim() == "1";
            } else if let Some(rest) = line.strip_prefix("hearth_lease_info{") {
                if let Some(i) = rest.split("identity=\"").nth(1) {
                    r.identity = i.split('"').next().unwrap_or_default().to_string();
                }
            } else if let Some(rest) = line.strip_prefix("hearth_docker_requests_total{op=\"") {
                if let Some((op, n)) = rest.split_once("\"}") {
                    r.requests
                        .insert(op.to_string(), n.trim().parse().unwrap_or_default());
                }
            } else if let Some(rest) = line.strip_prefix("hearth_reconcile_total{")
                && let Some((_, n)) = rest.rsplit_once(' ')
            {
                r.reconciles += n.trim().parse::<f64>().unwrap_or_default() as u64;
            }
        }
        r
    }

    fn op(&self, op: &str) -> u64 {
        self.requests.get(op).copied().unwrap_or(0)
    }

    /// Writes to the swarm other than the lease (one config, `config_create` once).
    fn writes(&self) -> u64 {
        self.requests
            .iter()
            .filter(|(op, _)| {
                hearth::swarm::WRITE_OPS.contains(&op.as_str()) && op.as_str() != "config_create"
            })
            .map(|(_, n)| n)
            .sum()
    }
}

fn replica(via: u32, node: u32) -> Option<Replica> {
    metrics(via, node).map(|m| Replica::parse(&m))
}

/// The overlay the test adds: `hearth.test` labels everywhere, short controller intervals, the
/// replicas kept off the raft leader (node label `hearth.ha`).
fn test_overlay(stack: &str) -> String {
    let resync = format!("{}s", RESYNC.as_secs());
    format!(
        r#"version: "3.8"
services:
  app:
    command: ["run", "-f", "/etc/hearth/manifests", "--resync", "{resync}", "--poll", "1s", "--grace", "5s"]
    deploy:
      labels:
        - "hearth.test={TEST}"
      placement:
        constraints:
          - node.role == manager
          - node.labels.hearth.ha == 1
configs:
  manifests:
    name: {stack}_manifests_${{MANIFESTS_VERSION}}
    file: ${{MANIFESTS_FILE}}
    labels: {{hearth.test: {TEST}}}
volumes:
  snapshots:
    labels: {{hearth.test: {TEST}}}
  cache:
    labels: {{hearth.test: {TEST}}}
networks:
  metrics:
    name: {stack}_metrics
    driver: overlay
    attachable: true
    labels: {{hearth.test: {TEST}}}
"#
    )
}

/// The pool: `N` bench-trio deployments with no task, applied one at a time, so the leader is
/// still applying when its node is killed.
fn manifests() -> String {
    let mut text = format!(
        "apiVersion: hearth/v1\nkind: Pool\nmetadata: {{name: ha}}\nspec:\n  domain: ha.test\n  \
         recipes: /srv/recipes\n  labels: {{hearth.test: {TEST}}}\n  \
         defaults: {{prune: false, concurrency: 1}}\n"
    );
    for i in 0..N {
        text.push_str(&format!(
            "---\napiVersion: hearth/v1\nkind: Deployment\nmetadata: {{name: trio-{i}}}\nspec:\n  \
             recipe: bench-trio\n  version: 1.0.0+1\n  env: {{REPLICAS: \"0\"}}\n"
        ));
    }
    text
}

fn gid(path: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.gid().to_string())
        .unwrap_or_else(|e| panic!("stat {path}: {e}"))
}

/// Objects (`service`, `network`) of the pool's deployments, through node `n`.
fn pool_objects(n: u32, kind: &str) -> usize {
    dk(
        n,
        &[
            kind,
            "ls",
            "-q",
            "--filter",
            &format!("label=hearth.test={TEST}"),
            "--filter",
            "label=hearth.deployment",
        ],
    )
    .lines()
    .filter(|l| !l.trim().is_empty())
    .count()
}

/// Logs and tasks of the hearth service, for a failure message.
fn diagnose(n: u32, stack: &str) -> String {
    let service = format!("{stack}_app");
    let ps = sm(&[
        "docker",
        &n.to_string(),
        "service",
        "ps",
        "--no-trunc",
        &service,
    ]);
    let logs = sm(&[
        "docker",
        &n.to_string(),
        "service",
        "logs",
        "--raw",
        "--tail",
        "30",
        &service,
    ]);
    format!("service ps:\n{}{}\nlogs:\n{}{}", ps.1, ps.2, logs.1, logs.2)
}

/// Removes every object labelled by this test through node `n` (the hearth stack first, so no
/// controller recreates what is removed), and says what is left.
fn cleanup(n: u32, stack: &str) -> String {
    let _ = sm(&["docker", &n.to_string(), "stack", "rm", stack]);
    let label = format!("label=hearth.test={TEST}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let (_, out, _) = sm(&[
            "docker",
            &n.to_string(),
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.stack.namespace={stack}"),
        ]);
        if out.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut left = String::new();
    for kind in ["service", "network", "config", "secret"] {
        let (_, ids, _) = sm(&[
            "docker",
            &n.to_string(),
            kind,
            "ls",
            "-q",
            "--filter",
            &label,
        ]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["docker", "", kind, "rm"];
            let node = n.to_string();
            args[1] = &node;
            args.extend(ids.iter().copied());
            let _ = sm(&args);
        }
        // Networks go once their services are gone; try again briefly.
        for _ in 0..20 {
            let (_, rest, _) = sm(&[
                "docker",
                &n.to_string(),
                kind,
                "ls",
                "-q",
                "--filter",
                &label,
            ]);
            if rest.trim().is_empty() {
                break;
            }
            let mut args = vec![
                "docker".to_string(),
                n.to_string(),
                kind.into(),
                "rm".into(),
            ];
            args.extend(rest.split_whitespace().map(String::from));
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = sm(&refs);
            std::thread::sleep(Duration::from_millis(500));
        }
        let (_, rest, _) = sm(&[
            "docker",
            &n.to_string(),
            kind,
            "ls",
            "-q",
            "--filter",
            &label,
        ]);
        if !rest.trim().is_empty() {
            left.push_str(&format!(
                "{kind}: {}\n",
                rest.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "multi-node swarm with hearth's image: scripts/test"]
async fn leader_node_killed_standby_replica_takes_over() -> anyhow::Result<()> {
    let image = image();
    let present = Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    anyhow::ensure!(
        present,
        "no image {image}: build it with scripts/image (scripts/test does)"
    );
    // An image of a hearth without the lease would have both replicas act.
    let help = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--entrypoint",
            "hearth",
            &image,
            "run",
            "--help",
        ])
        .output()?;
    anyhow::ensure!(
        String::from_utf8_lossy(&help.stdout).contains("--lease-duration"),
        "{image} is a hearth without the leader lease: rebuild it with scripts/image"
    );
    let t_up = Instant::now();
    let _cluster = Cluster;
    swarm_multi(&["up", "3", "--managers", "3", "--heartbeat", "1s"]);
    swarm_multi(&["load-hearth", &image]);
    println!(
        "cluster up, hearth image on every node: {:?}",
        t_up.elapsed()
    );

    // The replicas go to the two managers that are not the raft leader.
    let raft: u32 = swarm_multi(&["leader"]).trim().parse()?;
    let ha: Vec<u32> = (1..=3).filter(|n| *n != raft).collect();
    for n in &ha {
        let id = std::fs::read_to_string(format!("/var/lib/{PREFIX}-multinode/node{n}/node.id"))?;
        dk(
            raft,
            &["node", "update", "--label-add", "hearth.ha=1", id.trim()],
        );
    }

    let recipes = common::recipes::recipe_repos(&["bench-trio"]);
    // The container user (uid 10001) reads the recipe repos: the temp dir is 0700.
    std::fs::set_permissions(
        recipes.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let work = tempfile::tempdir()?;
    let manifests_file = work.path().join("manifests.yml");
    std::fs::write(&manifests_file, manifests())?;
    let stack = "hearthha";
    let overlay = work.path().join("compose.test.yml");
    std::fs::write(&overlay, test_overlay(stack))?;

    // The stack's API token (an external secret); a killed earlier run's one is replaced.
    let token_file = work.path().join("api_token");
    std::fs::write(&token_file, "ha-test-token")?;
    let secret = format!("{stack}_api_token_v1");
    let host = format!("unix://{}", sock(raft));
    let _ = Command::new("docker")
        .args(["-H", &host, "secret", "rm", &secret])
        .output();
    let out = Command::new("docker")
        .args(["-H", &host, "secret", "create", "--label"])
        .arg(format!("hearth.test={TEST}"))
        .arg(&secret)
        .arg(&token_file)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker secret create: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let recipe = repo_dir().join("manifests/hearth");
    let deployed = Instant::now();
    let out = Command::new("docker")
        .current_dir(&recipe)
        .env("DOCKER_HOST", format!("unix://{}", sock(raft)))
        .env("STACK_NAME", stack)
        .env("IMAGE", &image)
        .env("DOCKER_GID", gid(&sock(raft)))
        // Swarm expands the template per task: each replica gets its own node's socket.
        .env("DOCKER_SOCKET", "/run/{{.Node.Hostname}}/docker.sock")
        .env("MANIFESTS_FILE", &manifests_file)
        .env("MANIFESTS_VERSION", "v1")
        .env("HOST_PORT", PORT.to_string())
        .env("RECIPES_DIR", recipes.path())
        .env("RUST_LOG", "info")
        .args(["stack", "deploy", "--resolve-image", "never"])
        .args(["-c", "compose.yml", "-c", "compose.host-port.yml"])
        .args(["-c", "compose.recipes.yml", "-c", "compose.ha.yml", "-c"])
        .arg(&overlay)
        .arg(stack)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker stack deploy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let result = async {
        // Both replicas answer, one on each ha node; exactly one leads.
        let (lead, standby) = until(
            "one leader and one standby",
            Duration::from_secs(120),
            Duration::from_millis(50),
            || {
                let a = replica(raft, ha[0])?;
                let b = replica(raft, ha[1])?;
                match (a.leader, b.leader) {
                    (true, false) => Some((ha[0], ha[1])),
                    (false, true) => Some((ha[1], ha[0])),
                    _ => None,
                }
            },
        )
        .await?;
        println!(
            "leader on node {lead}, standby on node {standby}, {:?} after stack deploy",
            deployed.elapsed()
        );
        let s = replica(raft, standby).unwrap_or_default();
        anyhow::ensure!(
            s.identity.starts_with(&format!("{PREFIX}-node{standby}/")),
            "identity {:?} does not name its node",
            s.identity
        );
        // Kill the leader's node while it applies: some, not all, deployments written.
        let mut last = Replica::default();
        until(
            "the leader's first writes",
            Duration::from_secs(120),
            Duration::from_millis(50),
            || {
                let r = replica(raft, lead)?;
                let w = r.writes();
                last = r;
                (w >= 1).then_some(())
            },
        )
        .await?;
        let standby_before = replica(raft, standby).unwrap_or_default();
        anyhow::ensure!(!standby_before.leader, "both lead");
        anyhow::ensure!(
            standby_before.writes() == 0,
            "the standby wrote while the other led: {:?}",
            standby_before.requests
        );
        if let Some(r) = replica(raft, lead) {
            last = r;
        }
        swarm_multi(&["kill", &lead.to_string(), "--all"]);
        let killed = Instant::now();
        // A request the leader sent just before it died may still land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let live_at_kill = pool_objects(raft, "service");
        let nets_at_kill = pool_objects(raft, "network");
        println!(
            "killed node {lead} (dockerd, containerd, the leading hearth): {} writes seen on it, \
             {live_at_kill} of {} services live",
            last.writes(),
            3 * N
        );
        anyhow::ensure!(
            live_at_kill < 3 * N,
            "the leader finished before its node was killed"
        );

        // The standby leads within the lease time plus one resync, and reconciles.
        let base = replica(raft, standby).unwrap_or_default();
        let leads = until(
            "the standby leads",
            LEASE + RESYNC + Duration::from_secs(10),
            Duration::from_millis(50),
            || {
                replica(raft, standby)
                    .filter(|r| r.leader)
                    .map(|_| killed.elapsed())
            },
        )
        .await?;
        let first_reconcile = until(
            "its first reconcile",
            Duration::from_secs(30),
            Duration::from_millis(50),
            || {
                replica(raft, standby)
                    .filter(|r| r.reconciles > base.reconciles)
                    .map(|_| killed.elapsed())
            },
        )
        .await?;
        let first_write = until(
            "its first write",
            Duration::from_secs(30),
            Duration::from_millis(50),
            || {
                replica(raft, standby)
                    .filter(|r| r.writes() > 0)
                    .map(|_| killed.elapsed())
            },
        )
        .await?;
        eprintln!(
            "MEASURE ha hand-off: node kill -> standby leads {:.1}s, first reconcile {:.1}s, \
             first write {:.1}s",
            leads.as_secs_f64(),
            first_reconcile.as_secs_f64(),
            first_write.as_secs_f64()
        );
        anyhow::ensure!(
            first_reconcile <= LEASE + RESYNC,
            "hand-off took {first_reconcile:?} (lease {LEASE:?} + resync {RESYNC:?})"
        );
        until(
            "every service created",
            Duration::from_secs(180),
            Duration::from_millis(50),
            || (pool_objects(raft, "service") == 3 * N).then_some(()),
        )
        .await?;
        // Settle: a resync more, then nothing applied twice.
        tokio::time::sleep(RESYNC + Duration::from_secs(2)).await;
        let now = replica(raft, standby)
            .ok_or_else(|| anyhow::anyhow!("the new leader stopped answering"))?;
        eprintln!(
            "MEASURE ha writes: old leader {} seen before the kill {:?}; new leader {} {:?}",
            last.writes(),
            last.requests
                .iter()
                .filter(|(op, _)| hearth::swarm::WRITE_OPS.contains(&op.as_str()))
                .collect::<BTreeMap<_, _>>(),
            now.writes(),
            now.requests
                .iter()
                .filter(|(op, _)| hearth::swarm::WRITE_OPS.contains(&op.as_str()))
                .collect::<BTreeMap<_, _>>()
        );
        anyhow::ensure!(
            now.op("service_create") == (3 * N - live_at_kill) as u64,
            "the new leader created {} services, {} were missing",
            now.op("service_create"),
            3 * N - live_at_kill
        );
        for op in ["service_update", "service_remove", "network_remove"] {
            anyhow::ensure!(now.op(op) == 0, "{op} by the new leader: {}", now.op(op));
        }
        anyhow::ensure!(
            now.op("network_create") == (N - nets_at_kill) as u64,
            "the new leader created {} networks, {} were missing",
            now.op("network_create"),
            N - nets_at_kill
        );
        anyhow::ensure!(
            last.op("service_create") <= live_at_kill as u64,
            "the old leader's creates {} > {live_at_kill} live",
            last.op("service_create")
        );
        anyhow::ensure!(
            pool_objects(raft, "network") == N,
            "{} networks for {N} deployments",
            pool_objects(raft, "network")
        );
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let diag = if result.is_err() {
        diagnose(raft, stack)
    } else {
        String::new()
    };
    let left = cleanup(raft, stack);
    result.map_err(|e| anyhow::anyhow!("{e}\n{diag}"))?;
    anyhow::ensure!(left.is_empty(), "left behind:\n{left}");
    Ok(())
}

#[test]
fn the_test_overlay_repeats_what_the_recipe_declares() {
    let recipe =
        std::fs::read_to_string(repo_dir().join("manifests/hearth/compose.yml")).expect("read");
    let overlay = test_overlay("s");
    for key in ["manifests:", "snapshots:", "cache:", "metrics:"] {
        assert!(recipe.contains(key) && overlay.contains(key), "{key}");
    }
    let ha =
        std::fs::read_to_string(repo_dir().join("manifests/hearth/compose.ha.yml")).expect("read");
    for key in [
        "replicas: 2",
        "max_replicas_per_node: 1",
        "node.role == manager",
    ] {
        assert!(ha.contains(key), "compose.ha.yml: {key}");
    }
}

#[test]
fn metrics_are_read_per_replica() {
    let m = "hearth_leader 1\n\
             hearth_lease_info{pool=\"ha\",identity=\"n2/app.1\",leader=\"n2/app.1\"} 1\n\
             hearth_docker_requests_total{op=\"service_create\"} 4\n\
             hearth_docker_requests_total{op=\"config_create\"} 1\n\
             hearth_docker_requests_total{op=\"service_list\"} 9\n\
             hearth_reconcile_total{deployment=\"a\",result=\"ok\"} 2\n\
             hearth_reconcile_total{deployment=\"b\",result=\"error\"} 1\n";
    let r = Replica::parse(m);
    assert!(r.leader);
    assert_eq!(r.identity, "n2/app.1");
    assert_eq!(r.writes(), 4);
    assert_eq!(r.op("service_list"), 9);
    assert_eq!(r.reconciles, 3);
    assert!(!Replica::parse("hearth_leader 0\n").leader);
}

//! The soak's driver (`hearth-chaos run`): sets up the cluster, the hearth stack (two replicas,
//! `compose.ha.yml`) following the pool's manifests from a local git remote, waits for the pool,
//! writes the data markers, starts the checker as a separate process, then plays the seeded
//! schedule: each fault, held for its time, undone, then the time until the pool is converged
//! again is measured. At the end: the final convergence (within 120 s), `hearth plan` clean, the
//! checker's tally, and the report.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::check::{MARKER, Markers, Summary};
use crate::cluster::{Cluster, PREFIX, curl, docker, ip, sock, volumes_dir};
use crate::pool::{self, Remote};
use crate::report::{Record, Report};
use crate::rng::Rng;
use crate::schedule::{self, Fault, NODES, PoolState, Step};

/// The hearth stack's name on the soak's cluster.
pub const STACK: &str = "hearthchaos";
const PORT: u16 = 9480;
/// After the last fault, the pool must be converged within this.
pub const FINAL_LIMIT: Duration = Duration::from_secs(120);
/// A step's convergence is waited for at most this long.
const STEP_LIMIT: Duration = Duration::from_secs(120);

pub struct Opts {
    pub minutes: f64,
    pub seed: u64,
    pub out: PathBuf,
    pub repo: PathBuf,
    pub hearth: PathBuf,
    pub image: String,
    pub work: PathBuf,
    pub keep: bool,
}

struct Soak {
    o: Opts,
    cluster: Cluster,
    remote: Remote,
    state: PoolState,
    token: String,
    run: PathBuf,
    start: Instant,
    violations_seen: usize,
}

fn log(msg: &str) {
    eprintln!("[chaos {}] {msg}", clock());
}

fn clock() -> String {
    let (ok, out, _) = crate::cluster::run(Command::new("date").arg("+%T"));
    if ok {
        out.trim().to_string()
    } else {
        "?".into()
    }
}

/// Tears the cluster down when the soak ends, also on error.
struct Down<'a>(&'a Cluster, bool);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if self.1 {
            log(
                "--keep: the cluster stays up (scripts/swarm-multi down with HEARTH_MN_PREFIX=hearthchaos)",
            );
            return;
        }
        let (_, _, err) = self.0.sm(&["down"]);
        log(&format!(
            "cluster down: {}",
            err.trim().lines().last().unwrap_or("")
        ));
    }
}

/// Runs the soak; `Ok(true)` when every invariant held and the pool converged.
pub fn main(o: Opts) -> Result<bool, String> {
    let (ok, _, err) =
        crate::cluster::run(Command::new("docker").args(["image", "inspect", &o.image]));
    if !ok {
        return Err(format!(
            "no image {} on the default daemon (scripts/image makes it): {}",
            o.image,
            err.trim()
        ));
    }
    if !o.hearth.exists() {
        return Err(format!(
            "no hearth binary at {} (cargo build)",
            o.hearth.display()
        ));
    }
    let _ = std::fs::remove_dir_all(&o.work);
    let run = o.work.join("run");
    for d in [&run, &o.work.join("recipes")] {
        std::fs::create_dir_all(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    }
    log(&format!(
        "seed {}, {} minutes of faults; work dir {}",
        o.seed,
        o.minutes,
        o.work.display()
    ));
    pool::recipe_repos(
        &o.repo.join("tests/fixtures/recipes"),
        &o.work.join("recipes"),
    )?;
    let state = PoolState::default();
    let remote = Remote::create(o.work.join("remote"), o.work.join("clone"), &state)?;
    let cluster = Cluster::new(&o.repo);
    let mut soak = Soak {
        token: format!("chaos-{}", Rng::new(o.seed ^ 0x5eed).next_u64()),
        o,
        cluster: cluster.clone(),
        remote,
        state,
        run,
        start: Instant::now(),
        violations_seen: 0,
    };
    let _down = Down(&cluster, soak.o.keep);
    soak.setup()?;
    soak.play()
}

impl Soak {
    fn setup(&mut self) -> Result<(), String> {
        let t = Instant::now();
        self.cluster
            .must(&["up", "3", "--managers", "3", "--heartbeat", "1s"])?;
        self.cluster.must(&["load-hearth", &self.o.image])?;
        log(&format!(
            "cluster of 3 managers up, hearth image loaded: {:.0}s",
            t.elapsed().as_secs_f64()
        ));
        let (ok, _, err) = docker(
            1,
            30,
            &[
                "network",
                "create",
                "--driver",
                "overlay",
                "--attachable",
                "proxy",
            ],
        );
        if !ok && !err.contains("already exists") {
            return Err(format!("network create proxy: {}", err.trim()));
        }
        let token_file = self.run.join("api_token");
        std::fs::write(&token_file, &self.token).map_err(|e| e.to_string())?;
        let secret = format!("{STACK}_api_token_v1");
        let (ok, _, err) = docker(
            1,
            30,
            &["secret", "create", &secret, &token_file.to_string_lossy()],
        );
        if !ok && !err.contains("already exists") {
            return Err(format!("secret create: {}", err.trim()));
        }
        self.deploy_hearth()?;
        let t = Instant::now();
        let limit = Duration::from_secs(600);
        match self.wait_converged("the pool's first deployment", limit) {
            Some(s) => log(&format!("pool converged: {s:.0}s")),
            None => {
                return Err(format!(
                    "the pool did not converge within {}s after deploy: {}",
                    limit.as_secs(),
                    self.converged().err().unwrap_or_default()
                ));
            }
        }
        let _ = t;
        self.write_markers()
    }

    fn deploy_hearth(&self) -> Result<(), String> {
        let overlay = self.run.join("compose.chaos.yml");
        let remote = self.remote.dir.to_string_lossy().into_owned();
        std::fs::write(
            &overlay,
            format!(
                r#"version: "3.8"
services:
  app:
    command: ["run", "--git", "file:///srv/remote/manifests.git", "--branch", "main", "--interval", "2s", "--resync", "10s", "--poll", "1s", "--grace", "5s"]
    volumes:
      - type: bind
        source: {remote}
        target: /srv/remote
        read_only: true
"#
            ),
        )
        .map_err(|e| e.to_string())?;
        let manifests = self.run.join("unused-manifests.yml");
        std::fs::write(&manifests, "# the replicas follow the git remote\n")
            .map_err(|e| e.to_string())?;
        use std::os::unix::fs::MetadataExt;
        let gid = std::fs::metadata(sock(1)).map_err(|e| e.to_string())?.gid();
        let recipe = self.o.repo.join("manifests/hearth");
        let mut c = Command::new("timeout");
        c.current_dir(&recipe)
            .env("DOCKER_HOST", format!("unix://{}", sock(1)))
            .env("STACK_NAME", STACK)
            .env("IMAGE", &self.o.image)
            .env("DOCKER_GID", gid.to_string())
            .env("DOCKER_SOCKET", "/run/{{.Node.Hostname}}/docker.sock")
            .env("MANIFESTS_FILE", &manifests)
            .env("MANIFESTS_VERSION", "v1")
            .env("HOST_PORT", PORT.to_string())
            .env("RECIPES_DIR", self.o.work.join("recipes"))
            .env("RUST_LOG", "info")
            .args([
                "120",
                "docker",
                "stack",
                "deploy",
                "--resolve-image",
                "never",
            ])
            .args(["-c", "compose.yml", "-c", "compose.host-port.yml"])
            .args(["-c", "compose.recipes.yml", "-c", "compose.ha.yml", "-c"])
            .arg(&overlay)
            .arg(STACK);
        let (ok, out, err) = crate::cluster::run(&mut c);
        if !ok {
            return Err(format!("docker stack deploy: {out}{err}"));
        }
        log("hearth stack deployed (two replicas, git source)");
        Ok(())
    }

    /// The node whose replica leads, by its `/metrics`.
    fn leader(&self) -> Option<u32> {
        (1..=NODES).find(|n| {
            let url = format!("http://{}:{PORT}/metrics", ip(*n));
            (1..=NODES).any(|via| {
                curl(via, &url, None).is_some_and(|m| m.lines().any(|l| l == "hearth_leader 1"))
            })
        })
    }

    /// The leader's deployment list.
    fn status(&self) -> Result<Value, String> {
        let n = self.leader().ok_or("no replica leads")?;
        let url = format!("http://{}:{PORT}/api/v1/deployments", ip(n));
        for via in 1..=NODES {
            if let Some(body) = curl(via, &url, Some(&self.token)) {
                return serde_json::from_str(&body)
                    .map_err(|e| format!("the API's answer: {e}: {body}"));
            }
        }
        Err(format!("the leader on node {n} does not answer"))
    }

    /// `Ok` when the leader has applied the remote's head and every deployment is at its
    /// expected phase, and nothing of a removed deployment is left; else what is not there yet.
    fn converged(&self) -> Result<(), String> {
        let head = self.remote.head()?;
        let s = self.status()?;
        let rev = s["revision"].as_str().unwrap_or("");
        if rev.is_empty() || !head.starts_with(rev) && !rev.starts_with(&head) {
            return Err(format!(
                "the leader is at revision {rev:?}, the remote at {head}"
            ));
        }
        let mut have: Vec<(String, String, String)> = s["deployments"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap_or("").to_string(),
                    d["phase"].as_str().unwrap_or("").to_string(),
                    format!(
                        "{}: {}",
                        d["reason"].as_str().unwrap_or(""),
                        d["message"].as_str().unwrap_or("")
                    ),
                )
            })
            .collect();
        have.sort();
        let want = pool::expected(&self.state);
        let names: Vec<&str> = have.iter().map(|(n, _, _)| n.as_str()).collect();
        let wanted: Vec<&str> = want.iter().map(|(n, _)| n.as_str()).collect();
        if names != wanted {
            return Err(format!("deployments {names:?}, expected {wanted:?}"));
        }
        for ((name, phase, why), (_, expected)) in have.iter().zip(&want) {
            if phase != expected {
                return Err(format!("{name} is {phase} ({why}), expected {expected}"));
            }
        }
        if self.state.removed {
            let filter = "label=hearth.deployment=pds";
            let (ok, out, _) = (1..=NODES)
                .map(|n| docker(n, 8, &["service", "ls", "-q", "--filter", filter]))
                .find(|r| r.0)
                .unwrap_or((false, String::new(), String::new()));
            if !ok || !out.trim().is_empty() {
                return Err("services of the removed pds are still there".into());
            }
        }
        Ok(())
    }

    /// Waits until converged; the seconds it took, or `None` after `limit`.
    fn wait_converged(&mut self, what: &str, limit: Duration) -> Option<f64> {
        let t = Instant::now();
        let mut said = Instant::now();
        loop {
            match self.converged() {
                Ok(()) => return Some(t.elapsed().as_secs_f64()),
                Err(e) => {
                    if t.elapsed() >= limit {
                        log(&format!(
                            "{what}: not converged after {}s: {e}",
                            limit.as_secs()
                        ));
                        return None;
                    }
                    if said.elapsed() >= Duration::from_secs(15) {
                        log(&format!(
                            "{what}: waiting {:.0}s: {e}",
                            t.elapsed().as_secs_f64()
                        ));
                        said = Instant::now();
                    }
                }
            }
            self.report_violations();
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// A marker file in every volume of each stateful deployment, on every node that has one.
    fn write_markers(&self) -> Result<(), String> {
        let mut m = Markers::default();
        let mut rng = Rng::new(self.o.seed ^ 0x3a7c);
        for d in pool::STATEFUL {
            let value = format!("{d}:{}:{:016x}", self.o.seed, rng.next_u64());
            let mut written = 0;
            for n in 1..=NODES {
                let filter = format!("label=hearth.deployment={d}");
                let (ok, out, err) = docker(n, 15, &["volume", "ls", "-q", "--filter", &filter]);
                if !ok {
                    return Err(format!("volume ls on node {n}: {}", err.trim()));
                }
                for v in out.split_whitespace() {
                    let dir = volumes_dir(n).join(v).join("_data");
                    std::fs::write(dir.join(MARKER), &value)
                        .map_err(|e| format!("marker in {}: {e}", dir.display()))?;
                    written += 1;
                }
            }
            if written == 0 {
                return Err(format!("no volume of {d} on any node"));
            }
            m.values.insert(d.to_string(), value);
        }
        let text = serde_json::to_string_pretty(&m).map_err(|e| e.to_string())?;
        std::fs::write(self.run.join("markers.json"), text).map_err(|e| e.to_string())?;
        log(&format!("markers written for {:?}", pool::STATEFUL));
        Ok(())
    }

    fn start_checker(&self) -> Result<Child, String> {
        let logf =
            std::fs::File::create(self.run.join("checker.log")).map_err(|e| e.to_string())?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        Command::new(exe)
            .args(["check", "--dir"])
            .arg(&self.run)
            .args([
                "--seed",
                &self.o.seed.to_string(),
                "--pool",
                pool::POOL,
                "--hearth-stack",
                STACK,
            ])
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .map_err(|e| format!("start the checker: {e}"))
    }

    fn summary(&self) -> Summary {
        std::fs::read_to_string(self.run.join("checker.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Prints the checker's new violations (it also logs them in `checker.log`).
    fn report_violations(&mut self) {
        let s = self.summary();
        for v in s.violations.iter().skip(self.violations_seen) {
            log(&format!(
                "VIOLATION {} at {:.0}s (seed {}, {}): {}",
                v.invariant, v.at_s, self.o.seed, v.step, v.detail
            ));
        }
        self.violations_seen = self.violations_seen.max(s.violations.len());
    }

    fn set_step(&self, text: &str) {
        let _ = std::fs::write(self.run.join("step"), text);
    }

    /// The node and container of the replica that leads (`lead`) or stands by.
    fn replica(&self, lead: bool) -> Option<(u32, String)> {
        let leader = self.leader()?;
        let filter = format!("label=com.docker.swarm.service.name={STACK}_app");
        (1..=NODES)
            .filter(|n| (*n == leader) == lead)
            .find_map(|n| {
                let (ok, out, _) = docker(n, 8, &["ps", "-q", "--filter", &filter]);
                let id = out.split_whitespace().next()?.to_string();
                ok.then_some((n, id))
            })
    }

    fn kill_replica(&self, lead: bool) -> String {
        match self.replica(lead) {
            Some((n, id)) => {
                let (ok, _, err) = docker(n, 15, &["kill", "-s", "KILL", &id]);
                if ok {
                    format!("killed {} on node {n}", &id[..12.min(id.len())])
                } else {
                    format!("kill failed: {}", err.trim())
                }
            }
            None => "skipped: no such replica running now".into(),
        }
    }

    /// Starts `f`; a note of what was done.
    fn inject(&mut self, f: &Fault) -> Result<String, String> {
        let n = |node: &u32| node.to_string();
        Ok(match f {
            Fault::KillLeader => self.kill_replica(true),
            Fault::KillStandby => self.kill_replica(false),
            Fault::DockerdRestart { node } => {
                self.cluster.must(&["kill", &n(node)])?;
                self.cluster.must(&["start", &n(node)])?;
                String::new()
            }
            Fault::NodeKill { node, .. } => {
                self.cluster.must(&["kill", &n(node), "--all"])?;
                String::new()
            }
            Fault::Partition { node, .. } => {
                self.cluster.must(&["partition", &n(node)])?;
                String::new()
            }
            Fault::Freeze { node, .. } => {
                self.cluster.must(&["freeze", &n(node)])?;
                String::new()
            }
            Fault::RemoteDown { .. } => {
                self.remote.set_reachable(false)?;
                String::new()
            }
            commit => {
                self.state = self.state.after(commit);
                let id = self.remote.commit(&self.state, &commit.describe())?;
                format!("commit {}", &id[..8])
            }
        })
    }

    /// Undoes a held fault.
    fn undo(&mut self, f: &Fault) -> Result<(), String> {
        match f {
            Fault::NodeKill { node, .. } => {
                self.cluster.must(&["start", &node.to_string()]).map(|_| ())
            }
            Fault::Partition { node, .. } => {
                self.cluster.must(&["heal", &node.to_string()]).map(|_| ())
            }
            Fault::Freeze { node, .. } => {
                self.cluster.must(&["thaw", &node.to_string()]).map(|_| ())
            }
            Fault::RemoteDown { .. } => self.remote.set_reachable(true),
            _ => Ok(()),
        }
    }

    fn step(&mut self, st: &Step) -> Result<Record, String> {
        let at = self.start.elapsed().as_secs_f64();
        let name = format!("step {} ({})", st.index, st.fault.describe());
        self.set_step(&name);
        log(&name);
        let mut note = self.inject(&st.fault)?;
        let mut during = None;
        let hold = st.fault.hold_s();
        if hold > 0 {
            let mut left = hold;
            if let Some((after, second)) = &st.during {
                std::thread::sleep(Duration::from_secs(*after));
                left -= after;
                let n2 = self.inject(second)?;
                log(&format!("  during it: {} {n2}", second.describe()));
                during = Some(format!("{} after {after}s {n2}", second.describe()));
            }
            std::thread::sleep(Duration::from_secs(left));
            self.undo(&st.fault)?;
        }
        let converge = self.wait_converged(&name, STEP_LIMIT);
        match converge {
            Some(s) => log(&format!("  converged {s:.1}s after the fault ended")),
            None => note = format!("{note} not converged within {}s", STEP_LIMIT.as_secs()),
        }
        Ok(Record {
            index: st.index,
            at_s: at,
            class: st.fault.class().to_string(),
            fault: st.fault.describe(),
            during,
            note,
            converge_s: converge,
        })
    }

    fn play(&mut self) -> Result<bool, String> {
        let mut checker = self.start_checker()?;
        self.start = Instant::now();
        let steps = schedule::schedule(self.o.seed, 500);
        let mut records = Vec::new();
        let limit = Duration::from_secs_f64(self.o.minutes * 60.0);
        let mut outcome: Result<(), String> = Ok(());
        for st in &steps {
            if self.start.elapsed() >= limit {
                break;
            }
            match self.step(st) {
                Ok(r) => records.push(r),
                Err(e) => {
                    outcome = Err(format!("step {}: {e}", st.index));
                    break;
                }
            }
            std::thread::sleep(Duration::from_secs(st.gap_s));
        }
        self.set_step("final");
        // The last step's wait is the final convergence (at most 120 s after its fault ended).
        let final_ok = outcome.is_ok()
            && records
                .last()
                .is_none_or(|r: &Record| r.converge_s.is_some())
            && self.converged().is_ok();
        let plan = self.plan();
        log(&format!(
            "hearth plan: {}",
            plan.1.lines().last().unwrap_or("")
        ));
        let _ = std::fs::write(self.run.join("stop"), "");
        let _ = checker.wait();
        self.report_violations();
        let summary = self.summary();
        let report = Report {
            seed: self.o.seed,
            minutes: self.o.minutes,
            records,
            summary,
            final_converged: final_ok,
            plan_clean: plan.0,
            plan_output: plan.1,
            error: outcome.err(),
            state: self.state.clone(),
            lease_limit_s: FINAL_LIMIT.as_secs(),
            repo: self.o.repo.clone(),
        };
        let text = report.markdown();
        if let Some(dir) = self.o.out.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(&self.o.out, &text)
            .map_err(|e| format!("write {}: {e}", self.o.out.display()))?;
        if !report.passed() {
            // The checker's own log next to the report, to see what it saw.
            let _ = std::fs::copy(
                self.run.join("checker.log"),
                self.o.out.with_extension("checker.log"),
            );
        }
        log(&format!("report: {}", self.o.out.display()));
        println!("{}", report.verdict());
        Ok(report.passed())
    }

    /// `hearth plan --detailed-exitcode` against the cluster: (clean, output).
    fn plan(&self) -> (bool, String) {
        for n in 1..=NODES {
            let mut c = Command::new("timeout");
            c.args(["60"])
                .arg(&self.o.hearth)
                .args(["plan", "-f"])
                .arg(&self.remote.clone)
                .arg("--recipes")
                .arg(self.o.work.join("recipes"))
                .args([
                    "--docker-host",
                    &format!("unix://{}", sock(n)),
                    "--detailed-exitcode",
                ]);
            let out = c.output();
            if let Ok(o) = out {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                match o.status.code() {
                    Some(0) => return (true, text),
                    Some(2) => return (false, text),
                    _ => continue,
                }
            }
        }
        (false, "hearth plan failed on every manager".into())
    }
}

/// Default work directory.
pub fn default_work() -> PathBuf {
    PathBuf::from(format!("/var/lib/{PREFIX}-work"))
}

pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .unwrap_or(here)
        .to_path_buf()
}

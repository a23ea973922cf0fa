//! The independent checker: a separate process (`hearth-chaos check`) that watches the cluster for
//! the whole soak and judges it from Docker and the volumes alone, never from hearth's code or
//! status. Every round it reads the swarm through the first manager that answers, each node's
//! volumes and containers through that node, the marker files straight from the nodes' data
//! directories, and hearth's processes from /proc. It writes its tally to `checker.json` after
//! every round; a violation is printed at once with the seed and the step, so that the run can be
//! replayed. It stops when the driver creates the file `stop`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::{docker, volumes_dir};
use crate::schedule::NODES;

pub const MARKER: &str = ".chaos-marker";
/// hearth's resident memory limit.
pub const RSS_LIMIT_KIB: u64 = 80 * 1024;

/// The invariants, in report order, with what each one means.
pub const INVARIANTS: [(&str, &str); 8] = [
    (
        "marker-kept",
        "a volume that held its marker still holds it, unchanged",
    ),
    (
        "data-under-task",
        "a running task of a stateful service has its deployment's data on its node",
    ),
    (
        "secret-unchanged",
        "a secret's value seen in a task never changes",
    ),
    (
        "one-service-per-name",
        "one deployment's service runs as one Swarm service (a copy scaled to zero aside)",
    ),
    (
        "labels-on-pool-objects",
        "every object of the pool's stacks carries hearth's ownership labels",
    ),
    (
        "one-writer",
        "each advance-record write is by the lease holder of that moment",
    ),
    (
        "rss-under-80MiB",
        "every hearth process stays under 80 MiB resident",
    ),
    ("no-panic", "no hearth log shows a panic"),
];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    pub checks: u64,
    pub violations: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Violation {
    /// Seconds since the checker started.
    pub at_s: f64,
    pub step: String,
    pub invariant: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub rounds: u64,
    pub invariants: BTreeMap<String, Tally>,
    pub violations: Vec<Violation>,
    pub rss_max_kib: u64,
    /// Advance-record writes seen, and those that could not be judged (no lease seen before).
    pub writes_seen: u64,
    pub writes_unjudged: u64,
    /// Lease holder changes seen: (seconds since start, holder).
    pub holders: Vec<(f64, String)>,
}

/// What the driver tells the checker: the marker each stateful deployment's data carries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Markers {
    pub values: BTreeMap<String, String>,
}

pub struct Args {
    pub dir: PathBuf,
    pub seed: u64,
    pub pool: String,
    /// The hearth stack (its own objects are not the pool's).
    pub hearth_stack: String,
}

struct Checker {
    args: Args,
    start: Instant,
    /// The wall clock at start, in nanoseconds (Docker's times are wall-clock).
    start_wall: i128,
    sum: Summary,
    /// Marked volumes: (node, volume) -> (deployment, value).
    marked: BTreeMap<(u32, String), (String, String)>,
    /// (deployment, secret file) -> value hash.
    secrets: BTreeMap<(String, String), String>,
    /// Advance records: config id -> last version seen.
    record_versions: HashMap<String, u64>,
    /// Writes not judged yet: (time ns, author, record name).
    pending: Vec<(i128, String, String)>,
    /// Panics counted per hearth container.
    panics: HashMap<String, usize>,
    leases: Arc<Mutex<BTreeMap<u64, (i128, String)>>>,
}

/// Runs the checker until `dir/stop` exists.
pub fn main(args: Args) -> Result<(), String> {
    let leases = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = args.dir.join("stop");
    {
        // The lease is polled apart and often, so that no holder change is missed between rounds.
        let (leases, stop, name) = (
            leases.clone(),
            stop.clone(),
            format!("hearth-lease-{}", args.pool),
        );
        std::thread::spawn(move || {
            while !stop.exists() {
                if let Some(v) =
                    cluster_inspect("config", &[&name]).and_then(|v| v.into_iter().next())
                {
                    let version = v["Version"]["Index"].as_u64().unwrap_or(0);
                    let t = parse_time(v["UpdatedAt"].as_str().unwrap_or("")).unwrap_or(0);
                    let holder = label(&v, "hearth.lease.holder");
                    leases.lock().expect("leases").insert(version, (t, holder));
                }
                std::thread::sleep(Duration::from_millis(400));
            }
        });
    }
    let mut c = Checker {
        args,
        start: Instant::now(),
        start_wall: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0),
        sum: Summary::default(),
        marked: BTreeMap::new(),
        secrets: BTreeMap::new(),
        record_versions: HashMap::new(),
        pending: Vec::new(),
        panics: HashMap::new(),
        leases,
    };
    for (k, _) in INVARIANTS {
        c.sum.invariants.insert(k.to_string(), Tally::default());
    }
    loop {
        let done = stop.exists();
        let t0 = Instant::now();
        c.round(done);
        c.save()?;
        if done {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(2500).saturating_sub(t0.elapsed()));
    }
}

fn label(v: &Value, key: &str) -> String {
    v["Spec"]["Labels"][key]
        .as_str()
        .or_else(|| v["Labels"][key].as_str())
        .or_else(|| v["Config"]["Labels"][key].as_str())
        .unwrap_or("")
        .to_string()
}

/// `docker KIND inspect` of everything `docker KIND ls -q` lists, through the first manager that
/// answers; `None` when none does.
fn cluster_list(kind: &str) -> Option<Vec<Value>> {
    for n in 1..=NODES {
        let (ok, ids, _) = docker(n, 8, &[kind, "ls", "-q"]);
        if !ok {
            continue;
        }
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return Some(Vec::new());
        }
        if let Some(v) = inspect_on(n, kind, &ids) {
            return Some(v);
        }
    }
    None
}

fn cluster_inspect(kind: &str, ids: &[&str]) -> Option<Vec<Value>> {
    (1..=NODES).find_map(|n| inspect_on(n, kind, ids))
}

fn inspect_on(n: u32, kind: &str, ids: &[&str]) -> Option<Vec<Value>> {
    let mut args = vec![kind, "inspect"];
    args.extend_from_slice(ids);
    let (_, out, _) = docker(n, 8, &args);
    // Objects removed between ls and inspect make inspect fail but still print the rest.
    serde_json::from_str::<Vec<Value>>(&out).ok()
}

/// Node `n`'s own objects (`volume`, `container`): `None` when the node does not answer.
fn node_list(n: u32, kind: &str, ls: &[&str]) -> Option<Vec<Value>> {
    let mut args = vec![kind, "ls", "-q"];
    args.extend_from_slice(ls);
    let (ok, ids, _) = docker(n, 8, &args);
    if !ok {
        return None;
    }
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Some(Vec::new());
    }
    inspect_on(n, kind, &ids)
}

/// RFC 3339 (`2026-12-03T16:40:01.123456789Z`) to nanoseconds since the epoch.
pub fn parse_time(s: &str) -> Option<i128> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: i64 = frac.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(secs as i128 * 1_000_000_000 + nanos as i128)
}

/// The lease holder at time `t`: the holder of the latest lease version written at or before `t`.
pub fn holder_at(leases: &BTreeMap<u64, (i128, String)>, t: i128) -> Option<&str> {
    leases
        .values()
        .filter(|(lt, _)| *lt <= t)
        .max_by_key(|(lt, _)| *lt)
        .map(|(_, h)| h.as_str())
}

impl Checker {
    fn step(&self) -> String {
        std::fs::read_to_string(self.args.dir.join("step"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "setup".into())
    }

    fn check(&mut self, invariant: &str, ok: bool, detail: impl FnOnce() -> String) {
        let t = self
            .sum
            .invariants
            .entry(invariant.to_string())
            .or_default();
        t.checks += 1;
        if ok {
            return;
        }
        t.violations += 1;
        let v = Violation {
            at_s: self.start.elapsed().as_secs_f64(),
            step: self.step(),
            invariant: invariant.to_string(),
            detail: detail(),
        };
        eprintln!(
            "VIOLATION {} (seed {}, {}): {}",
            v.invariant, self.args.seed, v.step, v.detail
        );
        if self.sum.violations.len() < 500 {
            self.sum.violations.push(v);
        }
    }

    fn save(&self) -> Result<(), String> {
        let tmp = self.args.dir.join("checker.json.tmp");
        let text = serde_json::to_string_pretty(&self.sum).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, self.args.dir.join("checker.json")).map_err(|e| e.to_string())
    }

    fn markers(&self) -> Markers {
        std::fs::read_to_string(self.args.dir.join("markers.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn round(&mut self, last: bool) {
        self.sum.rounds += 1;
        let markers = self.markers();
        let services = cluster_list("service");
        // stack -> deployment, from the pool's services.
        let mut stacks: HashMap<String, String> = HashMap::new();
        if let Some(services) = &services {
            for s in services {
                let (stack, dep) = (
                    label(s, "com.docker.stack.namespace"),
                    label(s, "hearth.deployment"),
                );
                if !stack.is_empty() && !dep.is_empty() {
                    stacks.insert(stack, dep);
                }
            }
            self.services(services);
        }
        self.objects();
        for n in 1..=NODES {
            self.node(n, &markers, &stacks, self.sum.rounds % 4 == 1 || last);
        }
        self.rss();
        self.writers(last);
        if self.sum.rounds % 8 == 1 || last {
            self.panics();
        }
    }

    /// One deployment's service exists once.
    fn services(&mut self, services: &[Value]) {
        let mut count: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for s in services {
            let dep = label(s, "hearth.deployment");
            let stack = label(s, "com.docker.stack.namespace");
            if dep.is_empty() || label(s, "hearth.pool") != self.args.pool {
                continue;
            }
            // A copy scaled to zero (a stack move stops the old one first) does not run.
            if s["Spec"]["Mode"]["Replicated"]["Replicas"].as_u64() == Some(0) {
                continue;
            }
            let name = s["Spec"]["Name"].as_str().unwrap_or("").to_string();
            let short = name
                .strip_prefix(&format!("{stack}_"))
                .unwrap_or(&name)
                .to_string();
            count.entry((dep, short)).or_default().push(name);
        }
        for ((dep, short), names) in count {
            self.check("one-service-per-name", names.len() == 1, || {
                format!(
                    "deployment {dep} has {} services for {short}: {names:?}",
                    names.len()
                )
            });
        }
    }

    /// Every object of the pool's stacks carries hearth's ownership labels.
    fn objects(&mut self) {
        for kind in ["service", "network", "secret", "config"] {
            let Some(list) = cluster_list(kind) else {
                continue;
            };
            for o in list {
                self.owned(kind, &o);
            }
        }
    }

    fn owned(&mut self, kind: &str, o: &Value) {
        let stack = label(o, "com.docker.stack.namespace");
        if stack.is_empty() || stack == self.args.hearth_stack {
            return;
        }
        let name = o["Spec"]["Name"]
            .as_str()
            .or_else(|| o["Name"].as_str())
            .unwrap_or("?")
            .to_string();
        let ok = label(o, "hearth.managed-by") == "hearth"
            && label(o, "hearth.pool") == self.args.pool
            && !label(o, "hearth.deployment").is_empty();
        self.check("labels-on-pool-objects", ok, || {
            format!("{kind} {name} of stack {stack} lacks hearth.managed-by/pool/deployment")
        });
    }

    fn node(&mut self, n: u32, markers: &Markers, stacks: &HashMap<String, String>, secrets: bool) {
        // Marker files are read from the node's data directory, even when its daemon is down.
        let vols = volumes_dir(n);
        let marked: Vec<((u32, String), (String, String))> = self
            .marked
            .iter()
            .filter(|((node, _), _)| *node == n)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((_, name), (dep, value)) in marked {
            let dir = vols.join(&name).join("_data");
            let now = std::fs::read_to_string(dir.join(MARKER)).ok();
            self.check(
                "marker-kept",
                now.as_deref() == Some(value.as_str()),
                || match &now {
                    None if !dir.exists() => {
                        format!("volume {name} of {dep} on node {n} was removed")
                    }
                    None => format!("volume {name} of {dep} on node {n} lost its marker"),
                    Some(v) => {
                        format!("volume {name} of {dep} on node {n}: marker {v:?}, was {value:?}")
                    }
                },
            );
        }
        let Some(volumes) = node_list(n, "volume", &[]) else {
            return;
        };
        let mut owner: HashMap<String, String> = HashMap::new();
        for v in &volumes {
            let name = v["Name"].as_str().unwrap_or("").to_string();
            let dep = label(v, "hearth.deployment");
            let stack = label(v, "com.docker.stack.namespace");
            if !stack.is_empty() && stack != self.args.hearth_stack {
                self.owned("volume", v);
            }
            if dep.is_empty() {
                continue;
            }
            owner.insert(name.clone(), dep.clone());
            // A marker written by the driver makes the volume followed from now on.
            if let Some(value) = markers.values.get(&dep)
                && !self.marked.contains_key(&(n, name.clone()))
                && std::fs::read_to_string(vols.join(&name).join("_data").join(MARKER))
                    .ok()
                    .as_deref()
                    == Some(value.as_str())
            {
                self.marked.insert((n, name), (dep, value.clone()));
            }
        }
        let Some(containers) = node_list(n, "container", &[]) else {
            return;
        };
        for c in containers {
            if c["State"]["Running"].as_bool() != Some(true) || !label(&c, "hearth.role").is_empty()
            {
                continue;
            }
            let stack = label(&c, "com.docker.stack.namespace");
            let Some(dep) = stacks.get(&stack).cloned() else {
                continue;
            };
            let cname = c["Name"]
                .as_str()
                .unwrap_or("?")
                .trim_start_matches('/')
                .to_string();
            for m in c["Mounts"].as_array().cloned().unwrap_or_default() {
                if m["Type"].as_str() != Some("volume") {
                    continue;
                }
                let vname = m["Name"].as_str().unwrap_or("").to_string();
                let Some(vdep) = owner.get(&vname).cloned() else {
                    continue;
                };
                if vdep != dep {
                    self.check("data-under-task", false, || {
                        format!("{cname} of {dep} on node {n} runs on {vdep}'s volume {vname}")
                    });
                    continue;
                }
                let Some(value) = markers.values.get(&dep) else {
                    continue;
                };
                let now =
                    std::fs::read_to_string(vols.join(&vname).join("_data").join(MARKER)).ok();
                self.check("data-under-task", now.as_deref() == Some(value.as_str()), || {
                    format!("{cname} of {dep} runs on node {n} on volume {vname} without its data (marker {now:?})")
                });
            }
            if secrets {
                self.secrets(n, &c, &dep, &cname);
            }
        }
    }

    /// The secret files a running task sees, hashed; a value must never change.
    fn secrets(&mut self, n: u32, c: &Value, dep: &str, cname: &str) {
        let has = c["Mounts"].as_array().is_some_and(|m| {
            m.iter().any(|m| {
                m["Destination"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("/run/secrets"))
            })
        }) || c["HostConfig"]["Mounts"].is_array();
        if !has {
            return;
        }
        let id = c["Id"].as_str().unwrap_or("");
        let script = "cd /run/secrets 2>/dev/null || exit 0; for f in *; do [ -f \"$f\" ] && echo \"$f $(sha256sum < \"$f\" | cut -c1-64)\"; done";
        let (ok, out, _) = docker(n, 8, &["exec", id, "sh", "-c", script]);
        if !ok {
            return;
        }
        for line in out.lines() {
            let Some((file, hash)) = line.split_once(' ') else {
                continue;
            };
            let key = (dep.to_string(), file.to_string());
            let before = self.secrets.get(&key).cloned();
            let same = before.as_deref().is_none_or(|b| b == hash);
            self.check("secret-unchanged", same, || {
                format!("secret {file} of {dep} changed (seen in {cname} on node {n})")
            });
            if before.is_none() {
                self.secrets.insert(key, hash.to_string());
            }
        }
    }

    /// hearth's processes (in the soak's nodes' cgroups), resident memory.
    fn rss(&mut self) {
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in rd.flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let p = Path::new("/proc").join(&pid);
            if !std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == "hearth") {
                continue;
            }
            let cg = std::fs::read_to_string(p.join("cgroup")).unwrap_or_default();
            if !cg.contains(&format!("{}-node", crate::cluster::PREFIX)) {
                continue;
            }
            let status = std::fs::read_to_string(p.join("status")).unwrap_or_default();
            let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            else {
                continue;
            };
            self.sum.rss_max_kib = self.sum.rss_max_kib.max(kib);
            self.check("rss-under-80MiB", kib < RSS_LIMIT_KIB, || {
                format!("hearth pid {pid} resident {:.1} MiB", kib as f64 / 1024.0)
            });
        }
    }

    /// Advance-record writes against the lease holder of the moment they were made.
    fn writers(&mut self, last: bool) {
        if let Some(configs) = cluster_list("config") {
            for c in configs {
                if label(&c, "hearth.kind") != "advance-state"
                    || label(&c, "hearth.pool") != self.args.pool
                {
                    continue;
                }
                let id = c["ID"].as_str().unwrap_or("").to_string();
                let version = c["Version"]["Index"].as_u64().unwrap_or(0);
                if self.record_versions.get(&id) == Some(&version) {
                    continue;
                }
                let baseline = self.sum.rounds == 1;
                self.record_versions.insert(id, version);
                // What the first round finds was written before the checker started.
                if baseline {
                    continue;
                }
                self.sum.writes_seen += 1;
                let t = parse_time(c["UpdatedAt"].as_str().unwrap_or("")).unwrap_or(0);
                let name = c["Spec"]["Name"].as_str().unwrap_or("?").to_string();
                self.pending
                    .push((t, label(&c, "hearth.advance.author"), name));
            }
        }
        let leases = self.leases.lock().expect("leases").clone();
        // Holder changes, for the report, in seconds since the checker started.
        let mut ordered: Vec<&(i128, String)> = leases.values().collect();
        ordered.sort();
        self.sum.holders.clear();
        for (t, h) in ordered {
            if self.sum.holders.last().map(|(_, x)| x) != Some(h) {
                let at = (*t - self.start_wall) as f64 / 1e9;
                self.sum.holders.push((at, h.clone()));
            }
        }
        // A write is judged once a lease version after it was seen (or at the end).
        let newest = leases.values().map(|(t, _)| *t).max().unwrap_or(0);
        let pending = std::mem::take(&mut self.pending);
        for (t, author, name) in pending {
            if t > newest && !last {
                self.pending.push((t, author, name));
                continue;
            }
            if author.starts_with("cli:") {
                continue;
            }
            match holder_at(&leases, t) {
                None => self.sum.writes_unjudged += 1,
                Some(holder) => {
                    let holder = holder.to_string();
                    self.check("one-writer", author == holder, || {
                        format!(
                            "{name} written by {author:?} while the lease was held by {holder:?}"
                        )
                    });
                }
            }
        }
    }

    /// hearth's logs on every node: a panic is a violation.
    fn panics(&mut self) {
        let service = format!("{}_app", self.args.hearth_stack);
        for n in 1..=NODES {
            let filter = format!("label=com.docker.swarm.service.name={service}");
            let (ok, ids, _) = docker(n, 8, &["ps", "-aq", "--filter", &filter]);
            if !ok {
                continue;
            }
            for id in ids.split_whitespace() {
                let (ok, out, err) = docker(n, 15, &["logs", id]);
                if !ok {
                    continue;
                }
                let count = out.matches("panicked at").count() + err.matches("panicked at").count();
                let before = self.panics.insert(id.to_string(), count).unwrap_or(0);
                let line = out
                    .lines()
                    .chain(err.lines())
                    .find(|l| l.contains("panicked at"))
                    .unwrap_or("")
                    .to_string();
                self.check("no-panic", count <= before, || {
                    format!("hearth container {id} on node {n}: {line}")
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_with_any_fraction() {
        let a = parse_time("2026-12-03T16:40:01.5Z").unwrap();
        let b = parse_time("2026-12-03T16:40:01.500000001Z").unwrap();
        assert_eq!(b - a, 1);
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("2000-03-01T00:00:00Z"),
            Some(951_868_800 * 1_000_000_000)
        );
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn the_holder_is_the_latest_lease_write_before() {
        let mut l = BTreeMap::new();
        l.insert(10, (100, "a".to_string()));
        l.insert(12, (200, "a".to_string()));
        l.insert(20, (300, "b".to_string()));
        assert_eq!(holder_at(&l, 50), None);
        assert_eq!(holder_at(&l, 250), Some("a"));
        assert_eq!(holder_at(&l, 300), Some("b"));
        assert_eq!(holder_at(&l, 999), Some("b"));
    }
}

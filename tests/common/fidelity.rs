//! Fidelity comparison of hearth against `docker stack deploy`: the docker CLI side (recipe
//! checkout, `docker stack config`/`deploy` with an exact env, and a guard that removes the docker
//! stack with retries), reading both stacks' live objects from one snapshot, normalizing what must
//! differ between two deployments (stack names, domains, the published ports each side was given,
//! object IDs, hearth's config hash suffix), and a recursive JSON diff into dotted paths.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hearth::observed::Snapshot;
use indexmap::IndexMap;
use serde_json::Value;

const STACK_LABEL: &str = "com.docker.stack.namespace";

/// What tells one side's objects apart from the other's; replaced by placeholders before comparing.
pub struct Side {
    pub stack: String,
    pub domain: String,
    /// Published port -> placeholder (`<KS_HTTP_PORT>`): each side publishes its own ports.
    pub ports: BTreeMap<i64, String>,
    /// hearth names configs without a recipe `name:` `<stack>_<key>_<first 10 hex of sha256>` (documented difference 2).
    pub hashed_configs: bool,
}

/// A secret or config as compared: normalized spec, and whether the stack created it.
#[derive(Debug, Clone)]
pub struct Object {
    pub spec: Value,
    /// Labelled with the stack's namespace (created by the deploy, not external).
    pub owned: bool,
}

/// One stack's live objects, normalized, by normalized name.
#[derive(Debug, Default)]
pub struct Objects {
    pub services: BTreeMap<String, Value>,
    pub networks: BTreeMap<String, Value>,
    /// Secrets and configs the stack owns or its services reference.
    pub secrets: BTreeMap<String, Object>,
    pub configs: BTreeMap<String, Object>,
    /// How many config names lost hearth's hash suffix.
    pub config_hashes_stripped: usize,
}

/// `<name>` without a trailing `_<10 lowercase hex>`.
pub fn strip_hash(name: &str) -> &str {
    match name.rsplit_once('_') {
        Some((base, h))
            if h.len() == 10
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            base
        }
        _ => name,
    }
}

impl Side {
    fn text(&self, s: &str) -> String {
        s.replace(&self.stack, "<STACK>")
            .replace(&self.domain, "<DOMAIN>")
    }

    /// Replaces names everywhere (values and keys), renamed strings first (IDs, hashed names),
    /// and published ports by their placeholders.
    pub fn normalize(&self, v: &Value, rename: &HashMap<String, String>) -> Value {
        match v {
            Value::String(s) => {
                Value::String(self.text(rename.get(s).map(String::as_str).unwrap_or(s)))
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.normalize(x, rename)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| {
                        let x = match (k.as_str(), x.as_i64()) {
                            ("PublishedPort", Some(p)) if self.ports.contains_key(&p) => {
                                Value::String(self.ports[&p].clone())
                            }
                            _ => self.normalize(x, rename),
                        };
                        (self.text(k), x)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The stack's objects from `snap`, normalized.
    pub fn objects(&self, snap: &Snapshot) -> Objects {
        let view = snap.stack(&self.stack);
        // IDs -> names for everything a service spec can point at by ID.
        let mut rename: HashMap<String, String> = HashMap::new();
        for n in &snap.networks {
            if let (Some(id), Some(name)) = (&n.id, &n.name) {
                rename.insert(id.clone(), name.clone());
            }
        }
        let secret_names: HashMap<&str, &str> = snap
            .secrets
            .iter()
            .filter_map(|s| Some((s.id.as_deref()?, s.spec.as_ref()?.name.as_deref()?)))
            .collect();
        let config_names: HashMap<&str, &str> = snap
            .configs
            .iter()
            .filter_map(|c| Some((c.id.as_deref()?, c.spec.as_ref()?.name.as_deref()?)))
            .collect();
        let mut out = Objects::default();
        let mut secrets: BTreeSet<String> = BTreeSet::new();
        let mut configs: BTreeSet<String> = BTreeSet::new();
        for s in &view.services {
            let Some(raw) = s.id.as_ref().and_then(|id| snap.raw_spec(id)) else {
                continue;
            };
            let cs = raw.pointer("/TaskTemplate/ContainerSpec");
            for (list, id_key, name_key, names, set) in [
                (
                    "Secrets",
                    "SecretID",
                    "SecretName",
                    &secret_names,
                    &mut secrets,
                ),
                (
                    "Configs",
                    "ConfigID",
                    "ConfigName",
                    &config_names,
                    &mut configs,
                ),
            ] {
                for r in cs.and_then(|c| c[list].as_array()).into_iter().flatten() {
                    if let Some(id) = r[id_key].as_str() {
                        let name = names
                            .get(id)
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| format!("<unknown {id}>"));
                        rename.insert(id.to_string(), name.clone());
                        set.insert(name);
                    }
                    if let Some(n) = r[name_key].as_str() {
                        set.insert(n.to_string());
                    }
                }
            }
        }
        for c in &view.configs {
            if let Some(n) = c.spec.as_ref().and_then(|s| s.name.clone()) {
                configs.insert(n);
            }
        }
        for s in &view.secrets {
            if let Some(n) = s.spec.as_ref().and_then(|s| s.name.clone()) {
                secrets.insert(n);
            }
        }
        if self.hashed_configs {
            for c in &configs {
                let base = strip_hash(c);
                if base != c {
                    out.config_hashes_stripped += 1;
                    // Config IDs were renamed to the hashed name above: point them on too.
                    for v in rename.values_mut() {
                        if v == c {
                            *v = base.to_string();
                        }
                    }
                    rename.insert(c.clone(), base.to_string());
                }
            }
        }
        for s in &view.services {
            let Some(raw) = s.id.as_ref().and_then(|id| snap.raw_spec(id)) else {
                continue;
            };
            let spec = self.normalize(&raw, &rename);
            let name = spec["Name"].as_str().unwrap_or("?").to_string();
            out.services.insert(name, spec);
        }
        for n in &view.networks {
            let mut v = serde_json::to_value(n).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                // Per-object facts, not part of what a deploy asks for.
                for k in ["Id", "Created", "Containers", "Peers"] {
                    o.remove(k);
                }
            }
            // Swarm picks the subnet and VXLAN ID of a network without `ipam:` itself.
            if let Some(ipam) = v.get_mut("IPAM").and_then(Value::as_object_mut) {
                ipam.remove("Config");
            }
            if let Some(opts) = v.get_mut("Options").and_then(Value::as_object_mut) {
                opts.remove("com.docker.network.driver.overlay.vxlanid_list");
            }
            let v = self.normalize(&v, &rename);
            out.networks
                .insert(v["Name"].as_str().unwrap_or("?").to_string(), v);
        }
        for name in secrets {
            let found = snap
                .secrets
                .iter()
                .find(|s| s.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(&name));
            let (spec, owned) = match found {
                Some(s) => {
                    let mut spec = serde_json::to_value(&s.spec).unwrap_or_default();
                    if let Some(o) = spec.as_object_mut() {
                        o.remove("Data");
                    }
                    let owned = has_stack_label(&spec, &self.stack);
                    (spec, owned)
                }
                None => (Value::Null, false),
            };
            out.secrets.insert(
                self.text(&name),
                Object {
                    spec: self.normalize(&spec, &rename),
                    owned,
                },
            );
        }
        for name in configs {
            let found = snap
                .configs
                .iter()
                .find(|c| c.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(&name));
            let (spec, owned) = match found {
                Some(c) => {
                    let spec = serde_json::to_value(&c.spec).unwrap_or_default();
                    let owned = has_stack_label(&spec, &self.stack);
                    (spec, owned)
                }
                None => (Value::Null, false),
            };
            let key = rename.get(&name).cloned().unwrap_or(name);
            out.configs.insert(
                self.text(&key),
                Object {
                    spec: self.normalize(&spec, &rename),
                    owned,
                },
            );
        }
        out
    }
}

fn has_stack_label(spec: &Value, stack: &str) -> bool {
    spec["Labels"][STACK_LABEL].as_str() == Some(stack)
}

/// One field that differs: its path, the docker value and the hearth value (None: absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub path: String,
    pub docker: Option<Value>,
    pub hearth: Option<Value>,
}

impl Difference {
    /// The path with array indices replaced by `*` (`Networks[*].Aliases[*]`).
    pub fn pattern(&self) -> String {
        let mut out = String::new();
        let mut in_index = false;
        for ch in self.path.chars() {
            match ch {
                '[' => {
                    in_index = true;
                    out.push(ch);
                }
                ']' if in_index => {
                    in_index = false;
                    out.push(ch);
                }
                c if in_index && c.is_ascii_digit() => {
                    if !out.ends_with('*') {
                        out.push('*');
                    }
                }
                c => {
                    in_index = false;
                    out.push(c);
                }
            }
        }
        out
    }
}

fn show(v: &Option<Value>) -> String {
    v.as_ref().map_or("<absent>".to_string(), Value::to_string)
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: docker {} / hearth {}",
            self.path,
            show(&self.docker),
            show(&self.hearth)
        )
    }
}

/// Appends `key` to a dotted path; keys holding dots or brackets are quoted (`Labels["a.b"]`).
pub fn join(path: &str, key: &str) -> String {
    if key.contains(['.', '[', ']', '"', ' ']) || key.is_empty() {
        format!("{path}[{key:?}]")
    } else if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Every leaf where `docker` and `hearth` differ. Objects are compared key by key, arrays index
/// by index (a longer array gives absent values on the other side); null equals absent.
pub fn diff(docker: &Value, hearth: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(String::new(), Some(docker), Some(hearth), &mut out);
    out
}

fn walk(path: String, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Difference>) {
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                walk(join(&path, k), x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                walk(format!("{path}[{i}]"), x.get(i), y.get(i), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Difference {
            path,
            docker: a.cloned(),
            hearth: b.cloned(),
        }),
    }
}

/// Runs the docker CLI in `dir` with exactly `env` (plus what the CLI needs to reach the daemon:
/// PATH, HOME and DOCKER_*), feeding `stdin`; returns stdout or an error with stderr.
pub fn docker(
    args: &[&str],
    dir: Option<&Path>,
    env: &IndexMap<String, String>,
    stdin: Option<&[u8]>,
) -> anyhow::Result<String> {
    use std::io::Write;
    let mut cmd = Command::new("docker");
    cmd.args(args).env_clear();
    for (k, v) in std::env::vars() {
        if k == "PATH" || k == "HOME" || k.starts_with("DOCKER_") || k == "XDG_RUNTIME_DIR" {
            cmd.env(k, v);
        }
    }
    cmd.envs(env);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data)?;
    }
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Extracts `tag` of the git repo `repo` into `dest` (`git archive | tar -x`).
pub fn checkout(repo: &Path, tag: &str, dest: &Path) -> anyhow::Result<()> {
    let archive = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["archive", "--format=tar", tag])
        .output()?;
    anyhow::ensure!(
        archive.status.success(),
        "git archive {tag}: {}",
        String::from_utf8_lossy(&archive.stderr)
    );
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .stdin(Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        let mut pipe = tar
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("tar stdin"))?;
        pipe.write_all(&archive.stdout)?;
    }
    anyhow::ensure!(tar.wait()?.success(), "tar -x failed");
    Ok(())
}

/// Stacks on the swarm, removed when dropped: `docker stack rm` (which works by the namespace
/// label, so also for hearth's stacks), retried until their services, containers, networks,
/// secrets and configs are gone (removal races the tasks' exit), then their volumes.
pub struct StackGuard {
    pub names: Vec<String>,
}

/// Task states before the agent has prepared the task (created its volumes).
const UNPREPARED: &[&str] = &[
    "New",
    "Allocated",
    "Pending",
    "Assigned",
    "Accepted",
    "Preparing",
];

/// How long a removed stack must stay empty before it counts as gone.
const QUIET: Duration = Duration::from_secs(2);

impl StackGuard {
    pub fn new(names: &[&str]) -> StackGuard {
        StackGuard {
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// Waits (bounded) until no task of the stacks is still being prepared: a task whose service
    /// is removed while the agent prepares it can create its volumes after every container has
    /// gone, and leave them behind.
    fn settle(&self) {
        let none = IndexMap::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let busy = self.names.iter().any(|n| {
                docker(
                    &[
                        "stack",
                        "ps",
                        n,
                        "--filter",
                        "desired-state=running",
                        "--format",
                        "{{.CurrentState}}",
                    ],
                    None,
                    &none,
                    None,
                )
                .map(|out| {
                    out.lines()
                        .any(|l| UNPREPARED.iter().any(|s| l.starts_with(s)))
                })
                .unwrap_or(false)
            });
            if !busy {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Removes the stacks; Err names what is still there after the deadline.
    pub fn remove(&self) -> Result<(), String> {
        if self.names.is_empty() {
            return Ok(());
        }
        self.settle();
        let none = IndexMap::new();
        let list = |kind: &str, stack: &str| -> Vec<String> {
            let filter = format!("label={STACK_LABEL}={stack}");
            let mut args = vec![kind, "ls", "-q", "--filter", &filter];
            if kind == "container" {
                args.push("--all");
            }
            docker(&args, None, &none, None)
                .map(|s| s.lines().map(str::to_string).collect())
                .unwrap_or_else(|e| vec![format!("(cannot list: {e})")])
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut clean_since: Option<Instant> = None;
        loop {
            let mut left = Vec::new();
            for stack in &self.names {
                let _ = docker(&["stack", "rm", stack], None, &none, None);
                for kind in ["service", "container", "network", "secret", "config"] {
                    left.extend(
                        list(kind, stack)
                            .into_iter()
                            .map(|id| format!("{kind} {id}")),
                    );
                }
            }
            if left.is_empty() {
                // Volumes outlive their stack; they go once no container uses them.
                for stack in &self.names {
                    for v in list("volume", stack) {
                        if let Err(e) = docker(&["volume", "rm", &v], None, &none, None) {
                            left.push(format!("volume {v}: {e}"));
                        }
                    }
                }
            }
            if !left.is_empty() {
                clean_since = None;
            } else if clean_since.is_some_and(|t| t.elapsed() > QUIET) {
                return Ok(());
            } else {
                clean_since.get_or_insert_with(Instant::now);
            }
            if Instant::now() > deadline {
                return Err(format!("stacks {:?} left: {left:?}", self.names));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Stacks left by an earlier, killed run: docker stacks named `<prefix>…_test` (docker stack deploy
/// cannot label them `hearth.test`, so they are found by name).
pub fn stale_stacks(prefix: &str) -> Vec<String> {
    docker(
        &["stack", "ls", "--format", "{{.Name}}"],
        None,
        &IndexMap::new(),
        None,
    )
    .unwrap_or_default()
    .lines()
    .filter(|n| n.starts_with(prefix) && n.ends_with("_test"))
    .map(str::to_string)
    .collect()
}

impl Drop for StackGuard {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            if std::thread::panicking() {
                eprintln!("{e}");
            } else {
                panic!("{e}");
            }
        }
    }
}

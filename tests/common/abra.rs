//! abra on the real swarm, as tests need it: an abra directory (`recipes/` with the fixture recipe
//! repos of `tests/fixtures/abra-recipes`, `servers/<server>/<domain>.env`), a stack deployed the
//! way `abra app deploy` does (`docker stack deploy` of the recipe at its tag with the app env
//! file and `STACK_NAME`), secrets made by hand, and a guard that removes all of it (stacks,
//! secrets, volumes, networks) also when the test fails. Each test's domains end in its own
//! suffix (`.adopt.abra.test`), so a killed earlier run's stacks are found and removed too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::recipes::{git, recipe_repos_in};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/abra-recipes")
}

pub use super::{hearth, text};

/// Runs docker, returning (success, stdout+stderr).
pub fn docker_try(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    (out.status.success(), text(&out))
}

/// An abra directory in a temp dir: `recipes/` with the given fixture recipes as git repos, and
/// `servers/<server>/`.
pub struct AbraDir {
    pub dir: tempfile::TempDir,
    pub server: String,
}

impl AbraDir {
    pub fn new(server: &str, recipes: &[&str]) -> AbraDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("recipes")).expect("mkdir recipes");
        std::fs::create_dir_all(dir.path().join("servers").join(server)).expect("mkdir server");
        recipe_repos_in(&fixtures(), &dir.path().join("recipes"), recipes);
        AbraDir {
            dir,
            server: server.to_string(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `servers/<server>/<domain>.env`.
    pub fn app(&self, domain: &str, text: &str) -> PathBuf {
        let p = self
            .path()
            .join("servers")
            .join(&self.server)
            .join(format!("{domain}.env"));
        std::fs::write(&p, text).expect("write app env");
        p
    }

    /// `docker stack deploy` of `recipe` at `tag`, with the app env file's assignments and
    /// `STACK_NAME` in the environment, as abra deploys.
    pub fn deploy(&self, recipe: &str, tag: &str, domain: &str, env_file: &str) -> String {
        self.deploy_with(recipe, tag, domain, env_file, "never")
    }

    /// [`AbraDir::deploy`] with `--resolve-image always`, as abra deploys on a server that reaches
    /// its registry: every image in the service specs is pinned to its digest.
    pub fn deploy_resolved(&self, recipe: &str, tag: &str, domain: &str, env_file: &str) -> String {
        self.deploy_with(recipe, tag, domain, env_file, "always")
    }

    fn deploy_with(
        &self,
        recipe: &str,
        tag: &str,
        domain: &str,
        env_file: &str,
        resolve: &str,
    ) -> String {
        // abra's STACK_NAME: `.` -> `_`, cut after 45 characters.
        let stack = hearth::manifest::names::abra_stack_name(domain);
        let repo = self.path().join("recipes").join(recipe);
        // The recipe at its tag, checked out as abra has it (relative `file:`s resolve there).
        let checkout = self.path().join(format!("{stack}.checkout"));
        std::fs::create_dir_all(&checkout).expect("mkdir checkout");
        let tar = self.path().join(format!("{stack}.tar"));
        git(&repo, &["archive", "-o", tar.to_str().unwrap(), tag]);
        let out = Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&checkout)
            .output()
            .expect("tar");
        assert!(out.status.success(), "tar: {}", text(&out));
        let file = checkout.join("compose.yml");
        let mut cmd = Command::new("docker");
        cmd.args(["stack", "deploy", "--resolve-image", resolve, "-c"])
            .arg(&file)
            .arg(&stack);
        for line in env_file.lines() {
            if let Some((k, v)) = line.split_once('=')
                && !line.trim_start().starts_with('#')
            {
                let v = v.split(" #").next().unwrap_or_default().trim();
                cmd.env(k.trim(), v);
            }
        }
        cmd.env("STACK_NAME", &stack);
        let out = cmd.output().expect("docker stack deploy");
        assert!(out.status.success(), "stack deploy: {}", text(&out));
        stack
    }
}

/// `docker secret create NAME -` with `value` on stdin (labels as given); returns its ID.
pub fn secret_create(name: &str, value: &str, labels: &[&str]) -> String {
    let mut args = vec!["secret", "create"];
    for l in labels {
        args.extend(["--label", l]);
    }
    args.extend([name, "-"]);
    let mut child = Command::new("docker")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker secret create");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(value.as_bytes())
        .expect("write secret");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "secret create: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until every task of service `name` that should run is running; returns its task IDs.
pub fn running_tasks(name: &str, timeout: Duration) -> Vec<String> {
    let start = Instant::now();
    loop {
        let (ok, out) = docker_try(&[
            "service",
            "ps",
            name,
            "--filter",
            "desired-state=running",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.CurrentState}}",
        ]);
        let lines: Vec<&str> = out.lines().collect();
        if ok && !lines.is_empty() && lines.iter().all(|l| l.contains(" Running")) {
            let mut ids: Vec<String> = lines
                .iter()
                .filter_map(|l| l.split(' ').next())
                .map(str::to_string)
                .collect();
            ids.sort();
            return ids;
        }
        assert!(
            start.elapsed() < timeout,
            "service {name} not running after {timeout:?}: {out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every task ID of service `name`, whatever its state (a restart adds tasks).
pub fn all_tasks(name: &str) -> Vec<String> {
    let (_, out) = docker_try(&["service", "ps", "-q", "--no-trunc", name]);
    let mut ids: Vec<String> = out.lines().map(str::to_string).collect();
    ids.sort();
    ids
}

/// Removes every stack whose name contains `pattern` (a test's own domain suffix, e.g.
/// `_adopt_abra_test`: this run's stacks and a killed earlier run's), then the secrets, configs,
/// volumes and networks named like them.
pub fn remove_stacks(pattern: &str) {
    let matches = |name: &str| name.contains(pattern);
    let (_, out) = docker_try(&["stack", "ls", "--format", "{{.Name}}"]);
    let stacks: Vec<String> = out
        .lines()
        .filter(|n| matches(n))
        .map(str::to_string)
        .collect();
    for s in &stacks {
        docker_try(&["stack", "rm", s]);
    }
    // Services with hearth's labels keep the namespace label: `stack rm` removes them too. Wait
    // for their containers to go before removing volumes.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, out) = docker_try(&["ps", "-a", "--format", "{{.ID}} {{.Names}}"]);
        let left: Vec<&str> = out
            .lines()
            .filter(|l| matches(l.split(' ').nth(1).unwrap_or_default()))
            .filter_map(|l| l.split(' ').next())
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for (kind, fmt) in [
        ("secret", "{{.Name}}"),
        ("config", "{{.Name}}"),
        ("volume", "{{.Name}}"),
        ("network", "{{.Name}}"),
    ] {
        let (_, out) = docker_try(&[kind, "ls", "--format", fmt]);
        for name in out.lines().filter(|n| matches(n)) {
            let mut tries = 0;
            while !docker_try(&[kind, "rm", name]).0 && tries < 20 {
                tries += 1;
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// Removes a test's abra stacks (and what a killed earlier run left) when made and when dropped,
/// also on panic: every object whose name contains the pattern.
pub struct StackGuard(pub String);

impl StackGuard {
    pub fn new(pattern: &str) -> StackGuard {
        remove_stacks(pattern);
        StackGuard(pattern.to_string())
    }
}

impl Drop for StackGuard {
    fn drop(&mut self) {
        remove_stacks(&self.0);
    }
}

/// The fixture `abra-app` as abra leaves it running: its secrets made by hand (as `abra app secret
/// generate` / `insert` would), deployed at 1.0.0+1, a marker written into its volume. What the
/// takeover tests start from, and what must be unchanged after.
pub struct AbraApp {
    pub abra: AbraDir,
    pub domain: String,
    pub stack: String,
    pub app_env: String,
    pub service: String,
    pub service_id: String,
    pub tasks: Vec<String>,
    pub container: String,
    pub db_secret: String,
}

/// Deploys [`AbraApp`] on `<unique>.<suffix>` (the suffix is the test's own, see [`StackGuard`]).
pub fn deploy_abra_app(unique: &str, suffix: &str) -> AbraApp {
    let abra = AbraDir::new("srv.example.org", &["abra-app"]);
    let domain = format!("{unique}.{suffix}");
    let stack = hearth::manifest::names::abra_stack_name(&domain);
    // abra copies .env.sample into the app env file; TYPE without a version: the version comes
    // from the live stack's label.
    let app_env = format!(
        "TYPE=abra-app\nDOMAIN={domain}\nAPP_GREETING=hi-from-abra\nAPP_CONF_VERSION=v1\n\
         SECRET_DB_PASSWORD_VERSION=v1 # length=32\nSECRET_API_KEY_VERSION=v1 # length=12\n\
         SECRET_SMTP_PASSWORD_VERSION=v1 # generate=false\n"
    );
    abra.app(&domain, &app_env);
    let db_secret = secret_create(&format!("{stack}_db_password_v1"), "by-hand-1", &[]);
    secret_create(&format!("{stack}_api_key_v1"), "by-hand-2", &[]);
    secret_create(&format!("{stack}_smtp_password_v1"), "by-hand-3", &[]);
    abra.deploy("abra-app", "1.0.0+1", &domain, &app_env);
    let service = format!("{stack}_app");
    let tasks = running_tasks(&service, Duration::from_secs(90));
    let service_id = inspect("service", &service, "{{.ID}}");
    let container = super::docker(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
    ])
    .trim()
    .to_string();
    super::docker(&["exec", &container, "sh", "-c", "echo kept > /data/marker"]);
    AbraApp {
        abra,
        domain,
        stack,
        app_env,
        service,
        service_id,
        tasks,
        container,
        db_secret,
    }
}

/// `docker <kind> inspect NAME --format FORMAT`, trimmed.
pub fn inspect(kind: &str, name: &str, format: &str) -> String {
    super::docker(&[kind, "inspect", name, "--format", format])
        .trim()
        .to_string()
}

/// `hearth import` of `abra`'s server `srv.example.org` into `out`, then the written Pool labelled
/// `hearth.test: <test>` for the cleanup (an edit an operator could make too).
pub fn import_labelled(abra: &AbraDir, out: &Path, test: &str) {
    let o = hearth(&[
        "import",
        "--abra-dir",
        abra.path().to_str().unwrap(),
        "--server",
        "srv.example.org",
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pool_file = out.join("pool.yml");
    let mut pool = std::fs::read_to_string(&pool_file).expect("read pool.yml");
    pool.push_str(&format!("  labels: {{hearth.test: {test}}}\n"));
    std::fs::write(&pool_file, &pool).expect("write pool.yml");
}

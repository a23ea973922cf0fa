//! No credential value in anything hearth prints (issue 18, redaction): a recipe sets
//! `DB_PASSWORD` from the deployment's env (a planted value), the value is changed out of band
//! (`docker service update --env-add`), and then every output is searched for both values:
//! `hearth plan` (text and JSON), `hearth render`, `hearth apply`, and a `hearth run` process's API,
//! status pages and log. Neither value appears anywhere, while the key and the redacted hashes of
//! both values show the drift. `hearth render --show-secrets` proves the value is really there.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::http::{free_port, get};
use common::pool::TestPool;
use common::recipes::git;
use common::swarm::wait_for;
use common::{docker, with_swarm};

fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .env_remove("HEARTH_REDACT_KEYS")
        .output()
        .expect("run hearth")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A `hearth run` killed when dropped (also when the test fails).
struct Run(Child);

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A recipe `credapp` whose service takes `DB_PASSWORD` from the deployment's env.
fn add_recipe(pool: &TestPool) {
    let repo = pool.repos.path().join("credapp");
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::write(
        repo.join("compose.yml"),
        "version: \"3.8\"\nservices:\n  app:\n    image: hearth-fixture:test\n    environment:\n      \
         - FIXTURE_HTTP_PORT=8080\n      - DB_PASSWORD=${DB_PASSWORD}\n      - DB_USER=app\n",
    )
    .expect("write compose");
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "credapp"]);
    git(&repo, &["tag", "1.0.0+1"]);
}

fn sha8(v: &str) -> String {
    hearth::redact::marker(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_value_in_plan_render_api_page_or_logs() {
    with_swarm("redaction", |env| async move {
        let pool = TestPool::new(&env, false);
        add_recipe(&pool);
        // Drift is reported, not healed, so the API and the page keep showing it.
        let pool_yml = pool.path().join("pool.yml");
        let text0 = std::fs::read_to_string(&pool_yml)?;
        std::fs::write(
            &pool_yml,
            text0.replace(
                "defaults: {prune: false}",
                "defaults: {prune: false, selfHeal: false}",
            ),
        )?;
        let planted = format!("Planted-{}-pw", env.unique("c"));
        let oob = format!("OutOfBand-{}-pw", env.unique("o"));
        pool.deployment(
            "cred",
            &format!("  recipe: credapp\n  version: 1.0.0+1\n  env: {{DB_PASSWORD: {planted}}}\n"),
        );
        let dir = pool.path().to_str().unwrap().to_string();
        let stack = pool.stack("cred");
        let service = format!("{stack}_app");
        let mut outputs: Vec<(String, String)> = Vec::new();

        let out = hearth(&["render", "-f", &dir, "--deployment", "cred"]);
        anyhow::ensure!(out.status.success(), "{}", text(&out));
        let t = text(&out);
        anyhow::ensure!(
            t.contains(&format!("DB_PASSWORD={}", sha8(&planted))),
            "{t}"
        );
        outputs.push(("render".into(), t));
        let shown = text(&hearth(&[
            "render",
            "-f",
            &dir,
            "--deployment",
            "cred",
            "--show-secrets",
        ]));
        anyhow::ensure!(
            shown.contains(&planted),
            "--show-secrets shows the value: {shown}"
        );

        let out = hearth(&["plan", "-f", &dir, "-o", "json"]);
        outputs.push(("plan -o json (create)".into(), text(&out)));
        let out = hearth(&["apply", "-f", &dir, "--wait", "--timeout", "90s"]);
        anyhow::ensure!(out.status.success(), "{}", text(&out));
        outputs.push(("apply".into(), text(&out)));
        anyhow::ensure!(
            common::service_env(&service).contains(&planted),
            "deployed as set"
        );

        // Out of band.
        docker(&[
            "service",
            "update",
            "--detach",
            "--env-add",
            &format!("DB_PASSWORD={oob}"),
            &service,
        ]);
        let out = hearth(&["plan", "-f", &dir]);
        let plan_text = text(&out);
        anyhow::ensure!(
            plan_text.contains("TaskTemplate.ContainerSpec.Env")
                && plan_text.contains(&format!("DB_PASSWORD={}", sha8(&oob)))
                && plan_text.contains(&format!("DB_PASSWORD={}", sha8(&planted))),
            "the plan shows the drift by hash:\n{plan_text}"
        );
        outputs.push(("plan".into(), plan_text));
        let out = hearth(&["plan", "-f", &dir, "-o", "json"]);
        let json = text(&out);
        anyhow::ensure!(json.contains(&sha8(&oob)), "{json}");
        outputs.push(("plan -o json (drift)".into(), json));

        // The controller, as a user runs it.
        let port = free_port();
        let log_path = pool.path().join("run.log");
        let log = std::fs::File::create(&log_path)?;
        let _run = Run(Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args([
                "run",
                "-f",
                &dir,
                "--no-lease",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--resync", "3s", "--poll", "1s"])
            .env_remove("HEARTH_REDACT_KEYS")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?);
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let api = wait_for("the drift in the API", Duration::from_secs(60), || async {
            match get(addr, "/api/v1/deployments/cred") {
                Ok((200, body)) if body.contains(&sha8(&oob)) => Ok(body),
                other => Err(format!("{other:?}")),
            }
        })
        .await?;
        outputs.push(("api".into(), api));
        for path in ["/api/v1/deployments", "/", "/deployments/cred", "/metrics"] {
            let (code, body) = get(addr, path).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(code == 200, "{path}: {code}");
            outputs.push((path.into(), body));
        }
        let page = &outputs
            .iter()
            .find(|(p, _)| p == "/deployments/cred")
            .unwrap()
            .1;
        // HTML-escaped there: `&lt;redacted:sha256:1a2b3c4d&gt;`.
        let hash = sha8(&oob)
            .trim_start_matches("<redacted:")
            .trim_end_matches('>')
            .to_string();
        anyhow::ensure!(
            page.contains("DB_PASSWORD") && page.contains(&hash),
            "{page}"
        );
        drop(_run);
        let log = std::fs::read_to_string(&log_path)?;
        anyhow::ensure!(log.contains("cred"), "the log is hearth's:\n{log}");
        outputs.push(("hearth run log".into(), log));

        for (what, out) in &outputs {
            for v in [&planted, &oob] {
                anyhow::ensure!(!out.contains(v.as_str()), "{what} shows {v}:\n{out}");
            }
        }
        println!(
            "searched {} outputs ({} bytes): no value, drift shown as DB_PASSWORD={} -> {}",
            outputs.len(),
            outputs.iter().map(|(_, o)| o.len()).sum::<usize>(),
            sha8(&oob),
            sha8(&planted)
        );
        Ok(())
    })
    .await;
}

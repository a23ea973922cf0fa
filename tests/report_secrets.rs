//! No secret value ever appears in hearth's reporting: on the real swarm, one deployment with a
//! generated secret is deployed through the library (`TestPool::apply`) and a second one by the
//! controller itself; with the controller and the reporting server running in-process and every
//! log line captured, each secret's value is read from inside its task container
//! (`docker exec ... cat /run/secrets/...`) and searched for, as is and base64-encoded, in
//! `/metrics`, the JSON API, the status pages and the captured log (hearth's log setup at debug
//! level for every target: bollard's request bodies are kept out of it whatever the level).

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::get;
use common::pool::TestPool;
use common::swarm::wait_for;
use common::with_swarm;
use hearth::controller::{self, Config, Shared};

const KEYCLOAK: &str = "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  role: provider\n  \
                        secrets: {admin_password: {generate: {length: 24}}}\n";

/// Every log line hearth writes, whatever its level.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("capture")).into_owned()
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The content of `/run/secrets/<secret>` in the running task of `<stack>_app`.
fn secret_in_container(stack: &str, secret: &str) -> Result<String, String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={stack}_app"),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    let ids = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = ids.lines().next().ok_or("no running container")?;
    let out = Command::new("docker")
        .args(["exec", id, "cat", &format!("/run/secrets/{secret}")])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn fetch(addr: SocketAddr, path: &str) -> String {
    let p = path.to_string();
    let (code, body) = tokio::task::spawn_blocking(move || get(addr, &p))
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert!(code == 200, "GET {path}: {code}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_in_metrics_api_page_or_logs() {
    let capture = Capture::default();
    // hearth's own log setup, at debug for every target (more than `hearth run` logs by default).
    hearth::cli::init_logging_with(capture.clone(), "debug", false);
    with_swarm("report-secrets", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("kc", KEYCLOAK);
        // One deployed through the library, before hearth runs.
        pool.apply(&env).await?;
        // One the controller deploys itself.
        pool.deployment("kc2", &KEYCLOAK.replace("provider", "plain"));

        let shared = Arc::new(Shared::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let cfg = Config {
            paths: vec![pool.path().to_path_buf()],
            resync: Duration::from_secs(5),
            poll: Duration::from_secs(1),
            grace: Duration::from_secs(10),
            ..Config::default()
        };
        let ctl = tokio::spawn(controller::run(cfg, shared.clone(), stop_rx.clone()));
        let listener = hearth::report::bind("127.0.0.1:0".parse()?).await?;
        let addr = listener.local_addr()?;
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(hearth::report::serve(
            listener,
            shared.clone(),
            async move {
                let _ = server_stop.wait_for(|s| *s).await;
            },
        ));

        let start = Instant::now();
        let body = async {
            wait_for(
                "both deployments Ready",
                Duration::from_secs(150),
                || async {
                    let st = (shared.status("kc"), shared.status("kc2"));
                    match &st {
                        (Some(a), Some(b)) if a.phase == "Ready" && b.phase == "Ready" => Ok(()),
                        _ => Err([st.0, st.1]
                            .iter()
                            .flatten()
                            .map(|s| format!("{}: {} {}: {}", s.name, s.phase, s.reason, s.message))
                            .collect::<Vec<_>>()
                            .join("; ")),
                    }
                },
            )
            .await?;
            println!("both Ready after {:?}", start.elapsed());
            let mut values = Vec::new();
            for d in ["kc", "kc2"] {
                let stack = pool.stack(d);
                let v = wait_for(
                    "the secret inside the container",
                    Duration::from_secs(60),
                    || {
                        let stack = stack.clone();
                        async move { secret_in_container(&stack, "admin_password") }
                    },
                )
                .await?;
                let v = v.trim().to_string();
                anyhow::ensure!(v.len() == 24, "{d}: secret of {} chars: {v:?}", v.len());
                values.push(v);
            }
            let mut seen = Vec::new();
            for path in [
                "/metrics",
                "/api/v1/deployments",
                "/api/v1/deployments/kc",
                "/api/v1/deployments/kc2",
                "/",
                "/deployments/kc",
                "/deployments/kc2",
            ] {
                seen.push((path.to_string(), fetch(addr, path).await));
            }
            // The reports are about these deployments (so the search below means something).
            anyhow::ensure!(seen[0].1.contains("deployment=\"kc2\""), "{}", seen[0].1);
            anyhow::ensure!(seen[2].1.contains("\"phase\":\"Ready\""), "{}", seen[2].1);
            let log = capture.text();
            anyhow::ensure!(
                log.contains("create_secret") && log.contains("kc2"),
                "the log capture misses the controller's lines:\n{log}"
            );
            seen.push(("hearth's log".to_string(), log));
            for v in &values {
                for needle in [v.clone(), base64(v.as_bytes())] {
                    for (place, text) in &seen {
                        let lines: Vec<String> = text
                            .lines()
                            .filter(|l| l.contains(&needle))
                            .map(|l| l.replace(&needle, "<SECRET>").chars().take(300).collect())
                            .collect();
                        anyhow::ensure!(
                            lines.is_empty(),
                            "a secret value appears in {place}:\n{}",
                            lines.join("\n")
                        );
                    }
                }
            }
            println!(
                "searched {} bytes of reports and {} log lines for 2 secret values",
                seen.iter().map(|(_, t)| t.len()).sum::<usize>(),
                seen.last().map(|(_, t)| t.lines().count()).unwrap_or(0)
            );
            Ok(())
        }
        .await;
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(20), ctl).await;
        server.abort();
        body
    })
    .await;
}

#[test]
fn base64_matches_the_standard_alphabet() {
    assert_eq!(base64(b"hearth"), "aGVhcnRo");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"a"), "YQ==");
}

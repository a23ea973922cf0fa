//! Endpoints off loopback need a token (issue 18, item 6), with `hearth run` as a user starts it:
//! - `--listen` on the host's docker_gwbridge address without a token: refused at start (exit 1);
//! - with `--api-token-file`: the API and the status page answer 401 without or with a wrong
//!   bearer token and 200 with the right one; `/metrics`, `/healthz`, `/readyz` stay open;
//!   `hearth status --token-file` reads the API, without it fails with the 401;
//! - `--metrics-token-file` closes `/metrics` too; `--insecure-listen` serves open on purpose.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::http::{free_port, get_with_token};
use common::pool::TestPool;
use common::{docker, with_swarm};

/// A `hearth run` killed when dropped.
struct Run(Child);

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hearth(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.args(args)
        .env_remove("HEARTH_API_TOKEN_FILE")
        .env_remove("HEARTH_METRICS_TOKEN_FILE")
        .env_remove("HEARTH_INSECURE_LISTEN")
        .env_remove("HEARTH_LISTEN");
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The host's address on docker_gwbridge: a real address off loopback, local to this machine.
fn gwbridge_gateway() -> IpAddr {
    docker(&[
        "network",
        "inspect",
        "docker_gwbridge",
        "--format",
        "{{(index .IPAM.Config 0).Gateway}}",
    ])
    .trim()
    .parse()
    .expect("gateway address")
}

/// Starts `hearth run` on the pool with `extra` flags, and waits until `/healthz` answers at
/// `reach`.
fn start(dir: &str, listen: SocketAddr, reach: SocketAddr, extra: &[&str]) -> anyhow::Result<Run> {
    let run = Run(hearth(&[
        "run",
        "-f",
        dir,
        "--no-lease",
        "--listen",
        &listen.to_string(),
    ])
    .args(extra)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()?);
    let start = Instant::now();
    while get_with_token(reach, "/healthz", None).map(|r| r.0) != Ok(200) {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(30),
            "no /healthz on {reach}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(run)
}

fn code(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    get_with_token(addr, path, token)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .0
}

#[tokio::test]
async fn endpoints_off_loopback_need_a_token() {
    with_swarm("endpoint-auth", |env| async move {
        let pool = TestPool::new(&env, false);
        let dir = pool.path().to_str().unwrap().to_string();
        let token_file = pool.path().join("api-token");
        let token = format!("tok-{}", env.unique("t"));
        std::fs::write(&token_file, format!("{token}\n"))?;
        let token_path = token_file.to_str().unwrap().to_string();
        let gw = gwbridge_gateway();
        anyhow::ensure!(!gw.is_loopback());

        // Off loopback without a token: refused.
        let listen = SocketAddr::new(gw, free_port());
        let out = hearth(&[
            "run",
            "-f",
            &dir,
            "--no-lease",
            "--listen",
            &listen.to_string(),
        ])
        .output()?;
        let t = text(&out);
        println!("without a token: exit {:?}: {t}", out.status.code());
        anyhow::ensure!(out.status.code() == Some(1), "{t}");
        anyhow::ensure!(
            t.contains("--api-token-file") && t.contains("--insecure-listen"),
            "{t}"
        );

        // With a token, on the gwbridge address.
        {
            let _run = start(&dir, listen, listen, &["--api-token-file", &token_path])?;
            for path in [
                "/api/v1/deployments",
                "/api/v1/source",
                "/",
                "/deployments/x",
            ] {
                anyhow::ensure!(code(listen, path, None) == 401, "{path} without a token");
                anyhow::ensure!(
                    code(listen, path, Some("wrong")) == 401,
                    "{path} wrong token"
                );
            }
            for path in ["/api/v1/deployments", "/api/v1/source", "/"] {
                anyhow::ensure!(
                    code(listen, path, Some(&token)) == 200,
                    "{path} with the token"
                );
            }
            anyhow::ensure!(code(listen, "/metrics", None) == 200);
            anyhow::ensure!(code(listen, "/healthz", None) == 200);
            anyhow::ensure!(code(listen, "/readyz", None) != 401);
            let url = format!("http://{listen}");
            let out = hearth(&["status", "--url", &url, "--token-file", &token_path]).output()?;
            anyhow::ensure!(out.status.success(), "{}", text(&out));
            let out = hearth(&["status", "--url", &url]).output()?;
            let t = text(&out);
            anyhow::ensure!(!out.status.success() && t.contains("HTTP 401"), "{t}");
            println!("hearth status without a token: {t}");
        }

        // All addresses (reached here through 127.0.0.1), metrics closed too.
        let port = free_port();
        let any: SocketAddr = ([0, 0, 0, 0], port).into();
        let local: SocketAddr = ([127, 0, 0, 1], port).into();
        {
            let _run = start(
                &dir,
                any,
                local,
                &[
                    "--api-token-file",
                    &token_path,
                    "--metrics-token-file",
                    &token_path,
                ],
            )?;
            anyhow::ensure!(code(local, "/metrics", None) == 401);
            anyhow::ensure!(code(local, "/metrics", Some(&token)) == 200);
            anyhow::ensure!(code(local, "/api/v1/deployments", None) == 401);
            anyhow::ensure!(code(local, "/healthz", None) == 200);
        }

        // --insecure-listen: open on purpose.
        let listen = SocketAddr::new(gw, free_port());
        let _run = start(&dir, listen, listen, &["--insecure-listen"])?;
        anyhow::ensure!(code(listen, "/api/v1/deployments", None) == 200);
        Ok(())
    })
    .await;
}

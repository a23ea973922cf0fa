//! Safe advance on the real swarm (issue 7): a gitea-like advance that crash-loops is rolled back
//! with its data and reported AdvanceFailed with the crash's log line, while a provider next to it
//! answers every probe; a mattermost-like major bump is Held until allowed, then fails, is rolled
//! back and its snapshot restored; a good advance records the last-good version and abra's label;
//! hearth SIGKILLed during Verifying and during Restoring finishes the right path after restarts.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::controller::start_with;
use common::http::{Prober, free_port, get};
use common::pool::TestPool;
use common::swarm::{gwbridge_addr, running_container, wait_for};
use common::{TestEnv, docker, with_swarm};
use hearth::advance::{self, State};
use hearth::controller::Shared;

const GITEA_OLD: &str = "3.5.3+1.24.2-rootless";
const GITEA_NEW: &str = "3.6.0+1.24.2-rootless";
const MM_OLD: &str = "8.0.0+9.11.1";
const MM_NEW: &str = "9.0.0+10.0.0";
const MM_DATA: &str = "/var/lib/postgresql/data/state";

fn gitea(version: &str) -> String {
    format!("  recipe: gitea\n  version: {version}\n  progressDeadline: 90s\n")
}

fn mattermost(version: &str, allow_major: bool) -> String {
    format!(
        "  recipe: mattermost\n  version: {version}\n  progressDeadline: 30s\n  \
         secrets: {{db_password: {{generate: {{length: 24}}}}}}\n  \
         advance: {{allowMajor: {allow_major}}}\n"
    )
}

fn pool_name(pool: &TestPool) -> String {
    pool.domain.replace('.', "-")
}

/// The container of the running task of `service`.
async fn running(env: &TestEnv, service: &str) -> anyhow::Result<String> {
    running_container(env, service, Duration::from_secs(90)).await
}

/// Runs `hearth-fixture state ...` in the running container of `service`; its output.
async fn state(env: &TestEnv, service: &str, args: &[&str]) -> anyhow::Result<String> {
    let c = running(env, service).await?;
    let mut argv = vec!["hearth-fixture".to_string(), "state".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let out = env.client.exec(&c, &argv).await?;
    anyhow::ensure!(out.exit_code == Some(0), "{argv:?}: {out:?}");
    Ok(out.output.trim().to_string())
}

/// Waits until `service`'s running container reads `want` from `file`.
async fn state_is(env: &TestEnv, service: &str, file: &str, want: &str) -> anyhow::Result<()> {
    wait_for("the state", Duration::from_secs(60), || async {
        match state(env, service, &["read", file]).await {
            Ok(v) if v == want => Ok(()),
            Ok(v) => Err(format!("state {v:?}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// abra's version label on a service.
fn version_label(stack: &str, service: &str) -> String {
    docker(&[
        "service",
        "inspect",
        &format!("{stack}_{service}"),
        "--format",
        &format!("{{{{index .Spec.Labels \"coop-cloud.{stack}.version\"}}}}"),
    ])
    .trim()
    .to_string()
}

async fn record(env: &TestEnv, pool: &TestPool, name: &str) -> anyhow::Result<advance::Record> {
    let stored = hearth::controller::advance_store::load(
        &env.client,
        &pool_name(pool),
        name,
        &pool.stack(name),
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("{name}: no advance record"))?;
    Ok(stored.record)
}

fn advances(shared: &Shared, name: &str, result: &str) -> u64 {
    shared
        .counters
        .advances
        .read()
        .unwrap()
        .get(&(name.to_string(), result.to_string()))
        .copied()
        .unwrap_or(0)
}

/// Records every (phase, reason) a deployment reports, in order, without repeats.
struct Sampler {
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Sampler {
    fn start(shared: Arc<Shared>, name: &str) -> Sampler {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, name) = (seen.clone(), stop.clone(), name.to_string());
        tokio::spawn(async move {
            while !st.load(Ordering::SeqCst) {
                if let Some(x) = shared.status(&name) {
                    let key = format!("{}/{}", x.phase, x.reason);
                    let mut v = s.lock().unwrap();
                    if v.last() != Some(&key) {
                        v.push(key);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Sampler { seen, stop }
    }

    fn seen(&self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.seen.lock().unwrap().clone()
    }
}

/// The docker_gwbridge address of `service`'s running task (how the host reaches it).
async fn task_addr(env: &TestEnv, service: &str, port: u16) -> anyhow::Result<SocketAddr> {
    gwbridge_addr(env, service, port, Duration::from_secs(90)).await
}

#[tokio::test]
async fn gitea_failed_advance_rolls_back_with_its_data_and_the_provider_never_blinks() {
    with_swarm("adv-gitea", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment(
            "kc",
            "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  role: provider\n  \
             secrets: {admin_password: {generate: {}}}\n",
        );
        pool.deployment("gitea", &gitea(GITEA_OLD));
        let snaps = tempfile::tempdir()?;
        let dir = snaps.path().to_path_buf();
        let hearth = start_with(&pool, |c| c.advance.snapshot_dir = dir);
        let t = Instant::now();
        hearth
            .phase("kc", "Ready", None, Duration::from_secs(120))
            .await?;
        hearth
            .phase("gitea", "Ready", None, Duration::from_secs(120))
            .await?;
        println!("cold deploy of kc and gitea Ready in {:?}", t.elapsed());
        let stack = pool.stack("gitea");
        let app = format!("{stack}_app");
        let token = env.unique("data");
        state(&env, &app, &["write", "/var/lib/gitea/state", &token]).await?;
        // The cold deploy recorded its last-good version; it was no advance.
        let r = record(&env, &pool, "gitea").await?;
        assert_eq!(
            (r.state, r.last_good.as_deref()),
            (State::Ready, Some(GITEA_OLD))
        );
        assert_eq!(advances(&hearth.shared, "gitea", "succeeded"), 0);

        let kc = task_addr(&env, &format!("{}_app", pool.stack("kc")), 8080).await?;
        let prober = Prober::start(kc);
        let sampler = Sampler::start(hearth.shared.clone(), "gitea");
        let t = Instant::now();
        pool.deployment("gitea", &gitea(GITEA_NEW));
        let st = hearth
            .phase("gitea", "AdvanceFailed", None, Duration::from_secs(240))
            .await?;
        println!("failed advance rolled back in {:?}", t.elapsed());
        let seen = sampler.seen();
        println!("gitea went through {seen:?}");
        // A crash during a Swarm update shows as the paused update, with the crash in the message.
        let crash = ["CrashLoop", "UpdatePaused"];
        assert!(
            crash.contains(&st.reason.as_str()),
            "{}: {}",
            st.reason,
            st.message
        );
        assert!(
            st.message.contains("exit (2)") || st.message.contains("exit code 2"),
            "{}",
            st.message
        );
        assert!(
            st.message
                .contains("cannot write config /etc/gitea/app.ini"),
            "the crash's log line: {}",
            st.message
        );
        for want in [
            "Progressing/Updating",
            "Progressing/Verifying",
            "Progressing/RollingBack",
        ] {
            assert!(seen.iter().any(|s| s == want), "{want} in {seen:?}");
        }
        // The old version runs again, with its data.
        assert_eq!(version_label(&stack, "app"), GITEA_OLD);
        hearth
            .wait(
                "gitea",
                "old version running",
                Duration::from_secs(60),
                |s| {
                    s.live_version.as_deref() == Some(GITEA_OLD)
                        && s.services.iter().all(|x| x.running == x.desired)
                },
            )
            .await?;
        state_is(&env, &app, "/var/lib/gitea/state", &token).await?;
        let r = record(&env, &pool, "gitea").await?;
        assert_eq!(r.state, State::AdvanceFailed);
        assert_eq!(r.last_good.as_deref(), Some(GITEA_OLD));
        let f = r.failed.expect("failure recorded");
        assert_eq!(f.version, GITEA_NEW);
        assert!(crash.contains(&f.reason.as_str()), "{}", f.reason);
        assert_eq!(advances(&hearth.shared, "gitea", "failed"), 1);

        // No retry on its own.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            hearth.shared.phase("gitea").map(|p| p.as_str()),
            Some("AdvanceFailed")
        );
        assert_eq!(version_label(&stack, "app"), GITEA_OLD);
        // The CLI holds the line too: `plan` is clean and says why, and `apply` would not put
        // the version that crash-looped back (regression: scripts/chaos, seed 2).
        let plan = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args([
                "plan",
                "--detailed-exitcode",
                "-f",
                pool.path().to_str().unwrap(),
            ])
            .output()?;
        let text = String::from_utf8_lossy(&plan.stdout);
        assert_eq!(
            plan.status.code(),
            Some(0),
            "{text}{}",
            String::from_utf8_lossy(&plan.stderr)
        );
        assert!(
            text.contains("AdvanceFailed") && text.contains(GITEA_NEW),
            "{text}"
        );

        // `hearth retry` clears it through the label; the running controller tries again.
        let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["retry", "gitea", "-f", pool.path().to_str().unwrap()])
            .output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t = Instant::now();
        hearth
            .wait(
                "gitea",
                "a second failure",
                Duration::from_secs(240),
                |_| advances(&hearth.shared, "gitea", "failed") == 2,
            )
            .await?;
        println!("retried advance failed again after {:?}", t.elapsed());
        hearth
            .phase("gitea", "AdvanceFailed", None, Duration::from_secs(30))
            .await?;

        let (answers, failures) = prober.finish();
        println!("provider answered {answers} probes during the neighbour's advances");
        assert!(failures.is_empty(), "the provider missed: {failures:?}");
        assert!(answers > 100, "{answers} probes");
        assert_eq!(hearth.shared.phase("kc").map(|p| p.as_str()), Some("Ready"));
        hearth.stop().await
    })
    .await;
}

#[tokio::test]
async fn mattermost_major_bump_is_held_then_fails_and_its_data_is_restored() {
    with_swarm("adv-mm", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("mm", &mattermost(MM_OLD, false));
        let snaps = tempfile::tempdir()?;
        let dir = snaps.path().to_path_buf();
        let hearth = start_with(&pool, |c| c.advance.snapshot_dir = dir);
        hearth
            .phase("mm", "Ready", None, Duration::from_secs(120))
            .await?;
        let stack = pool.stack("mm");
        let db = format!("{stack}_db");
        let token = env.unique("rows");
        state(&env, &db, &["write", MM_DATA, &token]).await?;

        // A major bump waits.
        pool.deployment("mm", &mattermost(MM_NEW, false));
        let st = hearth
            .phase(
                "mm",
                "Held",
                Some("MajorVersionBump"),
                Duration::from_secs(90),
            )
            .await;
        let st = match st {
            Ok(st) => st,
            Err(e) => anyhow::bail!("{e}; record {:?}", record(&env, &pool, "mm").await),
        };
        assert!(
            st.message.contains(advance::APPROVE_ANNOTATION),
            "{}",
            st.message
        );
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(hearth.shared.phase("mm").map(|p| p.as_str()), Some("Held"));
        assert_eq!(version_label(&stack, "db"), MM_OLD);
        assert_eq!(record(&env, &pool, "mm").await?.state, State::Held);

        // Allowed: snapshot, update, the new version damages the data and never turns healthy,
        // rolled back and restored.
        let sampler = Sampler::start(hearth.shared.clone(), "mm");
        let t = Instant::now();
        pool.deployment("mm", &mattermost(MM_NEW, true));
        let st = hearth
            .phase("mm", "AdvanceFailed", None, Duration::from_secs(240))
            .await?;
        println!(
            "allowed major advance failed, rolled back and restored in {:?}",
            t.elapsed()
        );
        let seen = sampler.seen();
        println!("mm went through {seen:?}");
        for want in [
            "Progressing/SnapshotTaken",
            "Progressing/Verifying",
            "Progressing/RollingBack",
            "Progressing/Restoring",
        ] {
            assert!(seen.iter().any(|s| s == want), "{want} in {seen:?}");
        }
        assert!(st.message.contains("restored"), "{}", st.message);
        assert_eq!(version_label(&stack, "db"), MM_OLD);
        state_is(&env, &db, MM_DATA, &token).await?;

        // The snapshot is listed, by the store and by `hearth snapshots`.
        let store = hearth::backup::Store::new(snaps.path(), 5);
        let metas = store.list("mm")?;
        assert_eq!(metas.len(), 1);
        assert_eq!(metas[0].version, MM_OLD);
        let r = record(&env, &pool, "mm").await?;
        assert_eq!(r.snapshot.as_deref(), Some(metas[0].id.as_str()));
        let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["snapshots", "mm", "-f", pool.path().to_str().unwrap()])
            .arg("--snapshot-dir")
            .arg(snaps.path())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(&metas[0].id),
            "{text}"
        );

        // `hearth restore` on demand (the latest snapshot) after more damage.
        state(&env, &db, &["write", MM_DATA, "CORRUPTED"]).await?;
        let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["restore", "mm", "-f", pool.path().to_str().unwrap()])
            .arg("--snapshot-dir")
            .arg(snaps.path())
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("restore.post-hook"), "progress shown: {err}");
        state_is(&env, &db, MM_DATA, &token).await?;
        hearth.stop().await
    })
    .await;
}

#[tokio::test]
async fn a_good_advance_records_last_good_and_abras_label() {
    with_swarm("adv-good", |env| async move {
        let pool = TestPool::new(&env, false);
        let site = |v: &str| format!("  recipe: static-site\n  version: {v}\n");
        pool.deployment("site", &site("1.0.0+1.27.0"));
        let snaps = tempfile::tempdir()?;
        let dir = snaps.path().to_path_buf();
        let hearth = start_with(&pool, |c| c.advance.snapshot_dir = dir);
        hearth
            .phase("site", "Ready", None, Duration::from_secs(90))
            .await?;
        let sampler = Sampler::start(hearth.shared.clone(), "site");
        let t = Instant::now();
        pool.deployment("site", &site("1.1.0+1.27.1"));
        hearth
            .wait("site", "advanced", Duration::from_secs(120), |_| {
                advances(&hearth.shared, "site", "succeeded") == 1
            })
            .await?;
        println!("good advance verified in {:?}", t.elapsed());
        let st = hearth
            .phase("site", "Ready", None, Duration::from_secs(30))
            .await?;
        let seen = sampler.seen();
        println!("site went through {seen:?}");
        assert!(
            seen.iter().any(|s| s == "Progressing/Verifying"),
            "{seen:?}"
        );
        assert_eq!(st.live_version.as_deref(), Some("1.1.0+1.27.1"));
        let stack = pool.stack("site");
        assert_eq!(version_label(&stack, "app"), "1.1.0+1.27.1");
        let r = record(&env, &pool, "site").await?;
        assert_eq!(
            (r.state, r.last_good.as_deref()),
            (State::Ready, Some("1.1.0+1.27.1"))
        );
        assert_eq!(r.failed, None);
        assert_eq!(advances(&hearth.shared, "site", "failed"), 0);
        // The advance-state config stays (no "old config" removal) while nothing else changes.
        hearth
            .phase("site", "Ready", None, Duration::from_secs(10))
            .await?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(
            record(&env, &pool, "site").await?.last_good.as_deref(),
            Some("1.1.0+1.27.1")
        );
        hearth.stop().await
    })
    .await;
}

/// `hearth run` as a child process, SIGKILLed on drop.
struct Hearth {
    child: Child,
    addr: SocketAddr,
}

impl Hearth {
    fn spawn(
        pool: &TestPool,
        snaps: &std::path::Path,
        log: &std::path::Path,
    ) -> anyhow::Result<Hearth> {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["run", "-f", pool.path().to_str().unwrap()])
            .args([
                "--resync",
                "2s",
                "--poll",
                "300ms",
                "--listen",
                &addr.to_string(),
            ])
            .arg("--snapshot-dir")
            .arg(snaps)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()?;
        Ok(Hearth { child, addr })
    }

    /// (phase, reason, message) from the API, if it answers.
    fn status(&self, name: &str) -> Option<(String, String, String)> {
        let (code, body) = get(self.addr, &format!("/api/v1/deployments/{name}")).ok()?;
        if code != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Some((s("phase"), s("reason"), s("message")))
    }

    /// Polls every 50 ms until `check` accepts the status.
    async fn until(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&str, &str) -> bool,
    ) -> anyhow::Result<(String, String, String)> {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < timeout {
            if let Some(st) = self.status(name) {
                if check(&st.0, &st.1) {
                    return Ok(st);
                }
                last = Some(st);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{name}: not {what} after {timeout:?}; last {last:?}")
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Hearth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sigkill_during_verifying_and_during_restoring_loses_nothing() {
    with_swarm("adv-kill", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("mm", &mattermost(MM_OLD, true));
        let snaps = tempfile::tempdir()?;
        let log = snaps.path().join("hearth.log");
        let dump_log = || std::fs::read_to_string(&log).unwrap_or_default();
        let h = Hearth::spawn(&pool, snaps.path(), &log)?;
        h.until("mm", "Ready", Duration::from_secs(120), |p, _| p == "Ready")
            .await?;
        let stack = pool.stack("mm");
        let db = format!("{stack}_db");
        let token = env.unique("rows");
        state(&env, &db, &["write", MM_DATA, &token]).await?;

        pool.deployment("mm", &mattermost(MM_NEW, true));
        h.until("mm", "Verifying", Duration::from_secs(120), |_, r| {
            r == "Verifying"
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", dump_log()))?;
        h.kill();
        let r = record(&env, &pool, "mm").await?;
        assert_eq!(r.state, State::Verifying, "persisted at the kill: {r:?}");
        println!("killed during Verifying (snapshot {:?})", r.snapshot);

        let h = Hearth::spawn(&pool, snaps.path(), &log)?;
        let t = Instant::now();
        let st = h
            .until("mm", "Restoring", Duration::from_secs(180), |p, r| {
                r == "Restoring" || p == "AdvanceFailed"
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}\n{}", dump_log()))?;
        assert_eq!(st.1, "Restoring", "caught before the restore ended: {st:?}");
        h.kill();
        println!(
            "restarted: rolled back and restoring after {:?}; killed",
            t.elapsed()
        );
        let r = record(&env, &pool, "mm").await?;
        assert_eq!(r.state, State::Restoring, "persisted at the kill: {r:?}");

        let h = Hearth::spawn(&pool, snaps.path(), &log)?;
        let t = Instant::now();
        let st = h
            .until("mm", "AdvanceFailed", Duration::from_secs(180), |p, _| {
                p == "AdvanceFailed"
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}\n{}", dump_log()))?;
        println!(
            "restarted: restore finished, AdvanceFailed after {:?}",
            t.elapsed()
        );
        assert!(st.2.contains("restored"), "{st:?}");
        assert_eq!(version_label(&stack, "db"), MM_OLD);
        state_is(&env, &db, MM_DATA, &token).await?;
        // One snapshot only: the restarts did not take another.
        assert_eq!(
            hearth::backup::Store::new(snaps.path(), 5)
                .list("mm")?
                .len(),
            1
        );
        h.kill();
        // A helper container of the restore the kill interrupted may be left behind.
        let left = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=hearth.test={}", env.test),
            "--filter",
            "label=hearth.role=backup-helper",
        ]);
        let left: Vec<&str> = left.split_whitespace().collect();
        println!(
            "backup helper containers left by the killed hearth: {}",
            left.len()
        );
        for id in left {
            docker(&["rm", "-f", id]);
        }
        Ok(())
    })
    .await;
}

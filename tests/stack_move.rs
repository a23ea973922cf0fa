//! Stack moves on the real swarm (issue 18 items 1 and 2): a canonical gitea with data in its
//! volume, then a provider of its recipe added. The canonical is held (StackMoveHeld) and the
//! provider Pending (StackNameHeld) with nothing removed; `hearth migrate` moves the canonical
//! with its data (once straight through, once with hearth SIGKILLed before the restore and run
//! again); the old volume is kept and recorded as migrated, so the provider is held
//! (VolumeOwnedByOther) and never starts on it; once the operator removes it, the provider starts
//! on a fresh volume of its own.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pool::TestPool;
use common::swarm::{running_container, wait_for};
use common::{TestEnv, with_swarm};
use hearth::migrate::State;
use hearth::plan::Plan;

const GITEA: &str = "3.5.3+1.24.2-rootless";
const STATE: &str = "/var/lib/gitea/state";

fn canonical() -> String {
    format!("  recipe: gitea\n  version: {GITEA}\n  role: canonical\n")
}

fn provider() -> String {
    format!("  recipe: gitea\n  version: {GITEA}\n  role: provider\n")
}

/// `hearth-fixture state ARGS` in `service`'s running container.
async fn state(env: &TestEnv, service: &str, args: &[&str]) -> anyhow::Result<String> {
    let c = running_container(env, service, Duration::from_secs(90)).await?;
    let mut argv = vec!["hearth-fixture".to_string(), "state".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let out = env.client.exec(&c, &argv).await?;
    anyhow::ensure!(out.exit_code == Some(0), "{argv:?}: {out:?}");
    Ok(out.output.trim().to_string())
}

fn hold_of<'a>(plans: &'a [Plan], name: &str) -> Option<&'a hearth::migrate::Held> {
    plans
        .iter()
        .find(|p| p.deployment == name)
        .and_then(|p| p.hold.as_ref())
}

async fn volume_labels(
    env: &TestEnv,
    name: &str,
) -> anyhow::Result<Option<std::collections::HashMap<String, String>>> {
    let vols = env.client.list_volumes(None).await?;
    Ok(vols.into_iter().find(|v| v.name == name).map(|v| v.labels))
}

fn migrate_cmd(pool: &TestPool, snaps: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.args(["migrate", "-f"])
        .arg(pool.path())
        .arg("--snapshot-dir")
        .arg(snaps)
        .args(["--timeout", "90s", "gc"]);
    c
}

/// Everything up to the held state: returns (old stack, new stack, the marker written).
async fn held_canonical(
    env: &TestEnv,
    pool: &TestPool,
) -> anyhow::Result<(String, String, String)> {
    pool.deployment("gc", &canonical());
    let (plans, _) = pool.apply(env).await?;
    let old = pool.stack("gc");
    // The volume is created by hearth, before the service, with its owner labels.
    assert!(
        plans[0]
            .steps
            .iter()
            .any(|s| s.action.kind() == "create_volume"
                && s.action.object() == format!("{old}_data")),
        "{:#?}",
        plans[0].steps
    );
    let labels = volume_labels(env, &format!("{old}_data"))
        .await?
        .expect("volume");
    assert_eq!(
        labels.get("hearth.deployment").map(String::as_str),
        Some("gc")
    );
    assert_eq!(
        labels.get("com.docker.stack.namespace").map(String::as_str),
        Some(old.as_str())
    );
    let token = env.unique("data");
    state(env, &format!("{old}_app"), &["write", STATE, &token]).await?;

    // A provider of the same recipe: the canonical's derived stack changes.
    pool.deployment("gp", &provider());
    let new = pool.stack("gc");
    assert_ne!(old, new);
    assert_eq!(pool.stack("gp"), old);
    let before = env.client.snapshot().await?;
    let app_id = |snap: &hearth::observed::Snapshot| {
        snap.services
            .iter()
            .find(|s| s.spec.as_ref().and_then(|s| s.name.clone()) == Some(format!("{old}_app")))
            .and_then(|s| s.id.clone())
    };
    let plans = pool.plan(env).await;
    let held = hold_of(&plans, "gc").expect("canonical held");
    assert_eq!(
        (held.phase.as_str(), held.reason.as_str()),
        ("Held", "StackMoveHeld")
    );
    for want in [&old, &new, &format!("{old}_data")] {
        assert!(
            held.message.contains(want.as_str()),
            "{want}: {}",
            held.message
        );
    }
    let pending = hold_of(&plans, "gp").expect("provider pending");
    assert_eq!(
        (pending.phase.as_str(), pending.reason.as_str()),
        ("Pending", "StackNameHeld")
    );
    assert!(pending.message.contains("\"gc\""), "{}", pending.message);
    println!("canonical: {}\nprovider: {}", held.message, pending.message);
    // Nothing is removed or created while held.
    let (plans, counts) = pool.apply(env).await?;
    assert!(plans.iter().all(|p| p.steps.is_empty()), "{plans:#?}");
    assert_eq!(counts.writes(), 0);
    let after = env.client.snapshot().await?;
    assert_eq!(app_id(&before), app_id(&after));
    assert_eq!(
        state(env, &format!("{old}_app"), &["read", STATE]).await?,
        token
    );
    Ok((old, new, token))
}

/// After the move: data in the new stack, the old volume kept and recorded, the provider held
/// off it, then started on a fresh volume once the operator removed it.
async fn moved(
    env: &TestEnv,
    pool: &TestPool,
    old: &str,
    new: &str,
    token: &str,
) -> anyhow::Result<()> {
    assert_eq!(
        state(env, &format!("{new}_app"), &["read", STATE]).await?,
        token
    );
    let snap = env.client.snapshot().await?;
    assert!(
        !snap.services.iter().any(|s| s
            .spec
            .as_ref()
            .and_then(|s| s.name.as_deref())
            .is_some_and(|n| n.starts_with(&format!("{old}_")))),
        "old services left"
    );
    assert!(
        volume_labels(env, &format!("{old}_data")).await?.is_some(),
        "old volume kept"
    );
    let record = hearth::migrate::record::find_record(&snap.configs, &pool_name(pool), "gc")
        .map(|(_, r)| r)
        .expect("move record");
    assert_eq!(record.state, State::Done);
    assert!(snap.configs.iter().any(|c| {
        c.spec
            .as_ref()
            .and_then(|s| s.labels.as_ref())
            .and_then(|l| hearth::migrate::record::parse_volume_record(l))
            == Some((&format!("{old}_data"), new))
    }));

    // The provider may have the name now, but not the canonical's old volume.
    let plans = pool.plan(env).await;
    assert_eq!(hold_of(&plans, "gc"), None);
    let h = hold_of(&plans, "gp").expect("provider held");
    assert_eq!(
        (h.phase.as_str(), h.reason.as_str()),
        ("Held", "VolumeOwnedByOther")
    );
    assert!(h.message.contains(&format!("{old}_data")), "{}", h.message);
    assert!(h.message.contains(new), "{}", h.message);
    println!("provider: {}", h.message);
    pool.apply(env).await?;
    let snap = env.client.snapshot().await?;
    assert!(
        !snap
            .services
            .iter()
            .any(|s| s.spec.as_ref().and_then(|s| s.name.clone()) == Some(format!("{old}_app"))),
        "the provider started on the canonical's old volume"
    );

    // The operator removes the old volume: the provider starts on a fresh one of its own.
    // (Once the old task's container has stopped: Docker refuses to remove a volume in use.)
    wait_for(
        "the old volume removed",
        Duration::from_secs(60),
        || async {
            env.client
                .remove_volume(&format!("{old}_data"))
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await?;
    let (plans, _) = pool.apply(env).await?;
    assert!(hold_of(&plans, "gp").is_none(), "{plans:#?}");
    let labels = volume_labels(env, &format!("{old}_data"))
        .await?
        .expect("fresh volume");
    assert_eq!(
        labels.get("hearth.deployment").map(String::as_str),
        Some("gp")
    );
    let read = state(env, &format!("{old}_app"), &["read", STATE]).await;
    assert!(
        read.as_ref().map_or(true, |v| v != token),
        "the provider sees the canonical's data: {read:?}"
    );
    Ok(())
}

fn pool_name(pool: &TestPool) -> String {
    pool.domain.replace('.', "-")
}

#[tokio::test]
async fn a_stack_move_is_held_then_migrated_with_its_data() {
    with_swarm("stack-move", |env| async move {
        let pool = TestPool::new(&env, false);
        let (old, new, token) = held_canonical(&env, &pool).await?;
        let snaps = tempfile::tempdir()?;
        let t = Instant::now();
        let out = migrate_cmd(&pool, snaps.path()).output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{stderr}{}", String::from_utf8_lossy(&out.stdout));
        anyhow::ensure!(out.status.success(), "hearth migrate failed");
        println!("hearth migrate took {:?}", t.elapsed());
        moved(&env, &pool, &old, &new, &token).await
    })
    .await;
}

#[tokio::test]
async fn a_move_killed_before_the_restore_resumes_and_completes() {
    with_swarm("stack-move-kill", |env| async move {
        let pool = TestPool::new(&env, false);
        let (old, new, token) = held_canonical(&env, &pool).await?;
        let snaps = tempfile::tempdir()?;
        let mut child = migrate_cmd(&pool, snaps.path())
            .env("HEARTH_TEST_PAUSE_BEFORE_RESTORE", "60")
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        loop {
            let Some(line) = lines.next() else {
                anyhow::bail!("hearth migrate ended before the restore: {seen:#?}");
            };
            let line = line?;
            let pausing = line.contains("pausing");
            seen.push(line);
            if pausing {
                break;
            }
        }
        child.kill()?; // SIGKILL
        child.wait()?;
        println!("killed during the restore step after:\n{}", seen.join("\n"));
        let snap = env.client.snapshot().await?;
        let record = hearth::migrate::record::find_record(&snap.configs, &pool_name(&pool), "gc")
            .map(|(_, r)| r)
            .expect("move record");
        assert_eq!(record.state, State::StackCreated);
        // Regression (scripts/chaos, seed 1): the new stack's stateful service waits for its data.
        // It exists, at no replica, and no task of it ever ran on the still empty volume.
        let svc = format!("{new}_app");
        let replicas = common::docker(&[
            "service",
            "inspect",
            "-f",
            "{{.Spec.Mode.Replicated.Replicas}}",
            &svc,
        ]);
        assert_eq!(replicas.trim(), "0", "{svc} before the restore");
        let tasks = common::docker(&["service", "ps", "-q", &svc]);
        assert!(
            tasks.trim().is_empty(),
            "{svc} ran before the restore: {tasks}"
        );
        // And the old copy was stopped before its snapshot (no write after it is lost), its
        // replicas recorded so that a failed move starts it again.
        let old_svc = format!("{old}_app");
        let old_state = common::docker(&[
            "service",
            "inspect",
            "-f",
            "{{.Spec.Mode.Replicated.Replicas}} {{index .Spec.Labels \"hearth.migrate.stopped-replicas\"}}",
            &old_svc,
        ]);
        assert_eq!(old_state.trim(), "0 1", "{old_svc} during the move");
        // While the move is half done, the plan reports it, and changes nothing.
        let plans = pool.plan(&env).await;
        let h = hold_of(&plans, "gc").expect("migrating");
        assert_eq!(h.reason, "Migrating");
        assert!(h.message.contains("StackCreated"), "{}", h.message);

        let t = Instant::now();
        let out = migrate_cmd(&pool, snaps.path()).output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{stderr}{}", String::from_utf8_lossy(&out.stdout));
        anyhow::ensure!(out.status.success(), "resumed hearth migrate failed");
        assert!(
            !stderr.contains("taking a snapshot"),
            "resumed from the record, not from scratch"
        );
        println!("resumed move took {:?}", t.elapsed());
        wait_for("the new app", Duration::from_secs(60), || async {
            state(&env, &format!("{new}_app"), &["read", STATE])
                .await
                .map_err(|e| e.to_string())
        })
        .await?;
        moved(&env, &pool, &old, &new, &token).await
    })
    .await;
}

/// The move started by the controller itself (`advance.allowMigration: true`), as a pool left
/// running would do it: `hearth run` moves the canonical with its data, with nobody typing
/// `hearth migrate`, and the result is the same.
#[tokio::test]
async fn hearth_run_moves_a_canonical_when_its_manifest_allows_it() {
    with_swarm("stack-move-run", |env| async move {
        let pool = TestPool::new(&env, false);
        let (old, new, token) = held_canonical(&env, &pool).await?;
        pool.deployment(
            "gc",
            &format!("{}  advance:\n    allowMigration: true\n", canonical()),
        );
        let snaps = tempfile::tempdir()?;
        let dir = snaps.path().to_path_buf();
        let t = Instant::now();
        let run = common::controller::start_with(&pool, |c| c.advance.snapshot_dir = dir);
        let outcome = async {
            let st = run
                .wait(
                    "gc",
                    "Ready in its new stack",
                    Duration::from_secs(180),
                    |s| s.phase == "Ready" && s.stack == new,
                )
                .await?;
            println!("moved by hearth run in {:?}: {}", t.elapsed(), st.message);
            wait_for("the new app", Duration::from_secs(60), || async {
                state(&env, &format!("{new}_app"), &["read", STATE])
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
            anyhow::Ok(())
        }
        .await;
        run.stop().await?;
        outcome?;
        moved(&env, &pool, &old, &new, &token).await
    })
    .await;
}

/// A deployment without named volumes moves too: no snapshot, so no restore to wait for, and its
/// new stack starts at once (regression: a move that created the new stack at zero replicas
/// waited for a restore that never comes). The generated secret keeps its value.
#[tokio::test]
async fn a_stack_without_volumes_moves_and_runs() {
    with_swarm("stack-move-stateless", |env| async move {
        let pool = TestPool::new(&env, false);
        let kc = "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  role: canonical\n  \
                  secrets: {admin_password: {generate: {}}}\n";
        pool.deployment("kcc", kc);
        pool.apply(&env).await?;
        let old = pool.stack("kcc");
        let secret_of = |stack: &str| {
            common::docker(&[
                "secret",
                "ls",
                "-q",
                "--filter",
                &format!("label=com.docker.stack.namespace={stack}"),
            ])
        };
        anyhow::ensure!(!secret_of(&old).trim().is_empty(), "the generated secret");
        let before = state(
            &env,
            &format!("{old}_app"),
            &["read", "/run/secrets/admin_password"],
        )
        .await
        .ok();
        pool.deployment(
            "kcp",
            "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  role: provider\n  \
                                  secrets: {admin_password: {generate: {}}}\n",
        );
        let new = pool.stack("kcc");
        assert_ne!(old, new);
        let snaps = tempfile::tempdir()?;
        let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["migrate", "-f"])
            .arg(pool.path())
            .arg("--snapshot-dir")
            .arg(snaps.path())
            .args(["--timeout", "90s", "kcc"])
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{stderr}");
        anyhow::ensure!(out.status.success(), "hearth migrate failed");
        let running = common::abra::running_tasks(&format!("{new}_app"), Duration::from_secs(60));
        assert_eq!(running.len(), 1, "the new stack runs: {running:?}");
        let gone = common::docker(&[
            "service",
            "ls",
            "-q",
            "--filter",
            &format!("name={old}_app"),
        ]);
        assert!(gone.trim().is_empty(), "the old stack is removed");
        if let Some(before) = before {
            let after = state(
                &env,
                &format!("{new}_app"),
                &["read", "/run/secrets/admin_password"],
            )
            .await?;
            assert_eq!(after, before, "the generated secret kept its value");
        }
        anyhow::Ok(())
    })
    .await;
}

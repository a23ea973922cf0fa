//! Snapshots on the real swarm: take and restore the mattermost-like recipe's database (pre-hook
//! dump, `.path` label, restore post-hook), a whole volume with a skipped one restored to exactly
//! the snapshot's content, a failing pre-hook stopping the snapshot with the hook's output,
//! retention, nothing to back up; helper containers never left behind.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::pool::TestPool;
use common::swarm::{FIXTURE_IMAGE, running_container};
use common::{TestEnv, docker, with_swarm};
use hearth::backup::{self, BackupError, Options, Store, archive, store::sha256_file};
use hearth::swarm::label_filter;

const MATTERMOST: &str = "  recipe: mattermost\n  version: 8.0.0+9.11.1\n  \
                          secrets: {db_password: {generate: {length: 24}}}\n";
const DATA: &str = "/var/lib/postgresql/data";

fn options(env: &TestEnv) -> Options {
    Options {
        labels: BTreeMap::from([env.label()]),
        wait_running: Duration::from_secs(90),
        ..Default::default()
    }
}

/// Progress lines, collected.
struct Lines(Mutex<Vec<String>>);

impl Lines {
    fn new() -> Lines {
        Lines(Mutex::new(Vec::new()))
    }
    fn push(&self, l: &str) {
        self.0.lock().unwrap().push(l.to_string());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// The container of the running task of `service`.
async fn running(env: &TestEnv, service: &str) -> anyhow::Result<String> {
    running_container(env, service, Duration::from_secs(90)).await
}

/// Runs `sh -c cmd` in the container; fails unless it exits 0; returns its output.
async fn sh(env: &TestEnv, container: &str, cmd: &str) -> anyhow::Result<String> {
    let argv = ["sh".to_string(), "-c".to_string(), cmd.to_string()];
    let out = env.client.exec(container, &argv).await?;
    anyhow::ensure!(out.exit_code == Some(0), "`{cmd}`: {out:?}");
    Ok(out.output)
}

/// Helper containers of this test still present.
async fn helpers(env: &TestEnv) -> anyhow::Result<usize> {
    let filter = label_filter(&[
        &format!("hearth.test={}", env.test),
        "hearth.role=backup-helper",
    ]);
    Ok(env.client.list_containers(Some(filter)).await?.len())
}

#[tokio::test]
async fn mattermost_state_is_restored_after_damage() {
    with_swarm("backup-mattermost", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("mm", MATTERMOST);
        pool.apply(&env).await?;
        let stack = pool.stack("mm");
        let db = running(&env, &format!("{stack}_db")).await?;
        let token = env.unique("state");
        sh(
            &env,
            &db,
            &format!("hearth-fixture state write {DATA}/state {token}"),
        )
        .await?;

        let root = tempfile::tempdir()?;
        let store = Store::new(root.path(), 3);
        let opts = options(&env);
        let lines = Lines::new();
        let progress = |l: &str| lines.push(l);
        let t = Instant::now();
        let meta = backup::take(
            &env.client,
            &store,
            &opts,
            "mm",
            &stack,
            "8.0.0+9.11.1",
            &progress,
        )
        .await?;
        eprintln!("take (pre-hook + 1 path): {:?}", t.elapsed());
        let took = lines.take();
        assert!(
            took.iter().any(|l| l.contains("backupbot.backup.pre-hook")),
            "{took:#?}"
        );

        // The store: listed, verified, one volume of the db service with only the labelled path.
        assert_eq!(store.list("mm")?, vec![meta.clone()]);
        assert_eq!(store.get("mm", &meta.id)?, meta);
        store.verify(&meta)?;
        assert_eq!(meta.volumes.len(), 1);
        let v = &meta.volumes[0];
        assert_eq!((v.service.as_str(), v.volume.as_str()), ("db", "postgres"));
        assert_eq!(v.docker_volume, format!("{stack}_postgres"));
        assert_eq!(v.paths, ["backup.sql"]);
        let file = store.volume_file(&meta, v)?;
        assert_eq!(sha256_file(&file)?, (v.sha256.clone(), v.bytes));
        assert_eq!(archive::entry_names(&file)?, ["backup.sql"]);
        assert_eq!(helpers(&env).await?, 0, "helper containers left after take");

        // Damage the data (as mattermost 9.0.0 does) and the dump; restore; read back.
        sh(
            &env,
            &db,
            &format!("hearth-fixture state write {DATA}/state CORRUPTED && rm {DATA}/backup.sql"),
        )
        .await?;
        let t = Instant::now();
        backup::restore(&env.client, &store, &opts, &meta, &progress).await?;
        eprintln!("restore (1 path + post-hook): {:?}", t.elapsed());
        let out = sh(
            &env,
            &db,
            &format!("hearth-fixture state read {DATA}/state"),
        )
        .await?;
        assert_eq!(out.trim(), token);
        let restored = lines.take();
        assert!(
            restored
                .iter()
                .any(|l| l.contains("backupbot.restore.post-hook")),
            "{restored:#?}"
        );
        assert_eq!(
            helpers(&env).await?,
            0,
            "helper containers left after restore"
        );

        // A tampered snapshot is refused before anything is touched.
        std::fs::write(&file, b"not the snapshot")?;
        assert!(matches!(store.verify(&meta), Err(BackupError::Verify(_))));
        let err = backup::restore(&env.client, &store, &opts, &meta, &progress)
            .await
            .unwrap_err();
        assert!(matches!(err, BackupError::Verify(_)), "{err}");
        Ok(())
    })
    .await;
}

/// A service made with the docker CLI: volumes `data` (taken whole) and `cache` (skipped).
fn create_plain_service(env: &TestEnv, stack: &str, labels: &[&str]) -> String {
    let name = format!("{stack}_app");
    let test = format!("hearth.test={}", env.test);
    let mut args: Vec<String> = [
        "service",
        "create",
        "--detach",
        "--name",
        &name,
        "--label",
        &format!("com.docker.stack.namespace={stack}"),
        "--label",
        &test,
        "--container-label",
        &test,
        "--env",
        "FIXTURE_HTTP_PORT=off",
        "--mount",
        &format!("type=volume,source={stack}_data,target=/data,volume-label={test}"),
        "--mount",
        &format!("type=volume,source={stack}_cache,target=/cache,volume-label={test}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for l in labels {
        args.push("--label".into());
        args.push(l.to_string());
    }
    args.push(FIXTURE_IMAGE.into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args);
    name
}

const LISTING: &str =
    "cd /data && find . | sort && cat a sub/b .hidden && stat -c '%n %a %u:%g' a sub/b";

#[tokio::test]
async fn whole_volume_restore_equals_the_snapshot_and_hooks_guard_it() {
    with_swarm("backup-volume", |env| async move {
        let stack = env.unique("bk").replace('-', "");
        let service = create_plain_service(
            &env,
            &stack,
            &["backupbot.backup=true", "backupbot.backup.volumes.cache=false",
              "backupbot.backup.post-hook=echo post >> /cache/posts"],
        );
        let app = running(&env, &service).await?;
        sh(&env, &app, "mkdir -p /data/sub && echo one > /data/a && echo two > /data/sub/b \
                         && echo three > /data/.hidden && chmod 640 /data/a && chown 123:45 /data/sub/b \
                         && echo cached > /cache/c").await?;
        let before = sh(&env, &app, LISTING).await?;

        let root = tempfile::tempdir()?;
        let store = Store::new(root.path(), 2);
        let opts = Options {
            helper_image: Some(FIXTURE_IMAGE.into()),
            ..options(&env)
        };
        let progress = |_: &str| {};
        let t = Instant::now();
        let meta = backup::take(&env.client, &store, &opts, "plain", &stack, "1", &progress).await?;
        eprintln!("take (whole volume): {:?}", t.elapsed());
        assert_eq!(meta.volumes.len(), 1, "cache is skipped: {meta:#?}");
        let v = &meta.volumes[0];
        assert_eq!((v.volume.as_str(), v.paths.len()), ("data", 0));
        let mut names = archive::entry_names(&store.volume_file(&meta, v)?)?;
        names.sort();
        assert_eq!(names, [".hidden", "a", "sub", "sub/b"]);
        // The post-hook ran once.
        assert_eq!(sh(&env, &app, "cat /cache/posts").await?.trim(), "post");

        // Change everything: remove, add, modify, re-own; restore; the listing is as before.
        sh(&env, &app, "rm /data/a && echo new > /data/x && echo changed > /data/sub/b \
                         && mkdir /data/d && chown 0:0 /data/sub/b && echo gone > /data/.hidden2").await?;
        let t = Instant::now();
        backup::restore(&env.client, &store, &opts, &meta, &progress).await?;
        eprintln!("restore (whole volume): {:?}", t.elapsed());
        assert_eq!(sh(&env, &app, LISTING).await?, before);
        assert_eq!(sh(&env, &app, "cat /cache/c").await?.trim(), "cached", "a skipped volume is untouched");

        // Retention keeps 2.
        let second = backup::take(&env.client, &store, &opts, "plain", &stack, "1", &progress).await?;
        let third = backup::take(&env.client, &store, &opts, "plain", &stack, "1", &progress).await?;
        let ids: Vec<String> = store.list("plain")?.into_iter().map(|m| m.id).collect();
        assert_eq!(ids, [third.id.clone(), second.id.clone()]);
        assert!(matches!(store.get("plain", &meta.id), Err(BackupError::NotFound(_))));

        // A failing pre-hook stops the snapshot: its output in the error, nothing stored, the
        // post-hook not run (the copy never started).
        docker(&["service", "update", "--detach", "--no-resolve-image", "--label-add",
                 "backupbot.backup.pre-hook=echo dump failed: disk full >&2; exit 3", &service]);
        let err = backup::take(&env.client, &store, &opts, "plain", &stack, "1", &progress)
            .await
            .unwrap_err();
        match &err {
            BackupError::Hook { service, hook, exit_code, output, .. } => {
                assert_eq!((service.as_str(), hook.as_str(), *exit_code), ("app", "backupbot.backup.pre-hook", Some(3)));
                assert_eq!(output, "dump failed: disk full");
            }
            other => panic!("expected a hook error, got {other}"),
        }
        assert!(err.to_string().contains("dump failed: disk full"), "{err}");
        let ids_after: Vec<String> = store.list("plain")?.into_iter().map(|m| m.id).collect();
        assert_eq!(ids_after, ids);
        let left: Vec<_> = std::fs::read_dir(root.path().join("plain"))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        assert_eq!(left.len(), 2, "no temporary directory left: {left:?}");
        let app = running(&env, &service).await?;
        assert_eq!(sh(&env, &app, "cat /cache/posts").await?.trim().lines().count(), 3);

        // A copy that fails (a labelled path missing from the volume) still runs the post-hook.
        docker(&[
            "service", "update", "--detach", "--no-resolve-image",
            "--label-rm", "backupbot.backup.pre-hook",
            "--label-add", "backupbot.backup.volumes.data.path=a,missing",
            &service,
        ]);
        let err = backup::take(&env.client, &store, &opts, "plain", &stack, "1", &progress)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, BackupError::NotFound(m) if m.contains("path missing in volume")),
            "{err}"
        );
        let app = running(&env, &service).await?;
        assert_eq!(sh(&env, &app, "cat /cache/posts").await?.trim().lines().count(), 4);
        assert_eq!(store.list("plain")?.len(), 2);
        assert_eq!(helpers(&env).await?, 0);

        // A nested path: taken alone, restored even after its parent directory went.
        docker(&[
            "service", "update", "--detach", "--no-resolve-image",
            "--label-add", "backupbot.backup.volumes.data.path=sub/b",
            &service,
        ]);
        let nested = backup::take(&env.client, &store, &opts, "plain", &stack, "1", &progress).await?;
        let file = store.volume_file(&nested, &nested.volumes[0])?;
        assert_eq!(archive::entry_names(&file)?, ["sub/b"]);
        let app = running(&env, &service).await?;
        sh(&env, &app, "rm -rf /data/sub && echo other > /data/a").await?;
        backup::restore(&env.client, &store, &opts, &nested, &progress).await?;
        assert_eq!(sh(&env, &app, "cat /data/sub/b /data/a").await?, "two\nother\n");

        // A stack with no labelled service.
        let none = env.unique("nobk").replace('-', "");
        let err = backup::take(&env.client, &store, &opts, "none", &none, "1", &progress)
            .await
            .unwrap_err();
        assert!(matches!(err, BackupError::NothingToBackUp { .. }), "{err}");
        Ok(())
    })
    .await;
}

/// Throughput indication (not run by default): `cargo test --test backup -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn large_volume_throughput() {
    with_swarm("backup-large", |env| async move {
        let stack = env.unique("bkl").replace('-', "");
        let service = create_plain_service(&env, &stack, &["backupbot.backup=true"]);
        let app = running(&env, &service).await?;
        let mib = 256;
        sh(&env, &app, &format!("dd if=/dev/urandom of=/data/big bs=1M count={mib} 2>/dev/null && md5sum /data/big > /cache/sum")).await?;
        let root = tempfile::tempdir()?;
        let store = Store::new(root.path(), 1);
        let opts = Options {
            helper_image: Some(FIXTURE_IMAGE.into()),
            ..options(&env)
        };
        let lines = Lines::new();
        let progress = |l: &str| lines.push(l);
        let t = Instant::now();
        let meta = backup::take(&env.client, &store, &opts, "large", &stack, "1", &progress).await?;
        let took = t.elapsed();
        let t = Instant::now();
        store.verify(&meta)?;
        let verified = t.elapsed();
        sh(&env, &app, "rm /data/big").await?;
        let t = Instant::now();
        backup::restore(&env.client, &store, &opts, &meta, &progress).await?;
        let restored = t.elapsed();
        sh(&env, &app, "md5sum -c /cache/sum").await?;
        eprintln!("{mib} MiB: take {took:?}, verify {verified:?}, restore {restored:?}");
        let lines = lines.take();
        assert!(lines.iter().any(|l| l.ends_with("MiB copied")), "{lines:#?}");
        assert!(lines.iter().any(|l| l.ends_with("MiB restored")), "{lines:#?}");
        Ok(())
    })
    .await;
}

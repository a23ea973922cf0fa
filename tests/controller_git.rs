//! Desired versions from git, on the real swarm: a version bump commit is advanced within one
//! interval; a broken commit changes nothing and is reported; the fixing commit recovers; a
//! force-push to an older commit converges back; the remote disappearing and returning.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pool::TestPool;
use common::recipes::git;
use common::with_swarm;

use hearth::controller::{self, Config, GitConfig, Shared};
use tokio::sync::watch;

const KC: &str = "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  \
                  secrets: {admin_password: {generate: {}}}\n";

fn commit(dir: &std::path::Path, msg: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", msg]);
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

/// Polls every 100 ms ([`common::swarm::until`]).
async fn until<T>(
    what: &str,
    timeout: Duration,
    f: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    common::swarm::until(what, timeout, Duration::from_millis(100), f).await
}

#[tokio::test]
async fn manifests_follow_git_and_bad_commits_are_contained() {
    with_swarm("ctl-git", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("kc", KC);
        let repo = pool.path();
        git(repo, &["init", "-q", "-b", "main"]);
        let c1 = commit(repo, "kc at 1.0.0");
        let cache = tempfile::tempdir()?;
        let interval = Duration::from_secs(1);
        let cfg = Config {
            git: Some(GitConfig {
                url: format!("file://{}", repo.display()),
                branch: "main".into(),
                path: String::new(),
                interval,
                cache_dir: cache.path().to_path_buf(),
                options: Default::default(),
            }),
            resync: Duration::from_secs(3),
            poll: Duration::from_millis(500),
            ..Default::default()
        };
        let shared = Arc::new(Shared::default());
        let (stop, rx) = watch::channel(false);
        let handle = tokio::spawn(controller::run(cfg, shared.clone(), rx));
        let status = |s: &Shared| s.status("kc");
        let revision = |s: &Shared| s.source.read().unwrap().revision.clone();

        until("kc Ready at c1", Duration::from_secs(90), || {
            status(&shared).filter(|s| s.phase == "Ready").map(|_| ())
        })
        .await?;
        assert_eq!(revision(&shared).as_deref(), Some(c1.as_str()));

        // A version bump commit is advanced within one interval (plus the update itself).
        pool.deployment("kc", &KC.replace("1.0.0+25.0.6", "1.1.0+26.0.1"));
        let c2 = commit(repo, "kc to 1.1.0");
        let t = Instant::now();
        until("c2 applied", interval * 3, || {
            (revision(&shared).as_deref() == Some(c2.as_str())).then_some(())
        })
        .await?;
        until("live 1.1.0", Duration::from_secs(30), || {
            status(&shared).filter(|s| s.live_version.as_deref() == Some("1.1.0+26.0.1"))
        })
        .await?;
        println!("version bump commit to live version: {:?}", t.elapsed());
        until("Ready at 1.1.0", Duration::from_secs(60), || {
            status(&shared).filter(|s| s.phase == "Ready")
        })
        .await?;

        // A broken commit changes nothing and is reported.
        let writes_before = shared.client.get().unwrap().counts().writes();
        std::fs::write(repo.join("kc.yml"), "apiVersion: hearth/v1\nkind: Deployment\nmetadata: {name: kc}\nspec:\n  recipe: keycloak\n  colour: blue\n")?;
        let c3 = commit(repo, "broken");
        let bad = until("c3 rejected", Duration::from_secs(10), || {
            let src = shared.source.read().unwrap().clone();
            (src.bad_revision.as_deref() == Some(c3.as_str())).then_some(src)
        })
        .await?;
        assert_eq!(bad.revision.as_deref(), Some(c2.as_str()), "still on the last good revision");
        assert!(bad.bad_errors.iter().any(|e| e.contains("colour")), "{:?}", bad.bad_errors);
        until("errors reported", Duration::from_secs(10), || {
            (!shared.manifest_errors.read().unwrap().is_empty()).then_some(())
        })
        .await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(shared.client.get().unwrap().counts().writes(), writes_before);
        assert_eq!(status(&shared).unwrap().phase, "Ready");

        // The fixing commit recovers.
        pool.deployment("kc", &KC.replace("1.0.0+25.0.6", "1.1.0+26.0.1"));
        let c4 = commit(repo, "fixed");
        until("c4 applied", Duration::from_secs(10), || {
            let src = shared.source.read().unwrap().clone();
            (src.revision.as_deref() == Some(c4.as_str()) && src.bad_revision.is_none()).then_some(())
        })
        .await?;

        // A force-push back to the first commit converges back to 1.0.0.
        git(repo, &["reset", "-q", "--hard", &c1]);
        until("back at c1", Duration::from_secs(10), || {
            (revision(&shared).as_deref() == Some(c1.as_str())).then_some(())
        })
        .await?;
        until("live 1.0.0", Duration::from_secs(60), || {
            status(&shared).filter(|s| s.live_version.as_deref() == Some("1.0.0+25.0.6"))
        })
        .await?;

        // The remote disappears: reported, the pool keeps running on the last good revision...
        let moved = repo.with_extension("away");
        std::fs::rename(repo, &moved)?;
        let src = until("unreachable", Duration::from_secs(15), || {
            let src = shared.source.read().unwrap().clone();
            src.last_error.is_some().then_some(src)
        })
        .await?;
        assert_eq!(src.revision.as_deref(), Some(c1.as_str()));
        // ...and it recovers when the remote returns.
        std::fs::rename(&moved, repo)?;
        until("reachable again", Duration::from_secs(30), || {
            shared.source.read().unwrap().last_error.is_none().then_some(())
        })
        .await?;
        let _ = stop.send(true);
        handle.await??;
        Ok(())
    })
    .await;
}

/// With the DEFAULT resync (30 s), the first revision is deployed as soon as it is loaded and a
/// new revision is acted on at once: both well before a resync could come round.
#[tokio::test]
async fn first_and_new_revisions_are_applied_at_once_with_the_default_resync() {
    with_swarm("ctl-git-at-once", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("kc", KC);
        let repo = pool.path();
        git(repo, &["init", "-q", "-b", "main"]);
        commit(repo, "kc at 1.0.0");
        let cache = tempfile::tempdir()?;
        let defaults = Config::default();
        assert_eq!(
            defaults.resync,
            Duration::from_secs(30),
            "the default resync"
        );
        let cfg = Config {
            git: Some(GitConfig {
                url: format!("file://{}", repo.display()),
                branch: "main".into(),
                path: String::new(),
                interval: Duration::from_secs(1),
                cache_dir: cache.path().to_path_buf(),
                options: Default::default(),
            }),
            ..defaults
        };
        let shared = Arc::new(Shared::default());
        let (stop, rx) = watch::channel(false);
        let started = Instant::now();
        let handle = tokio::spawn(controller::run(cfg, shared.clone(), rx));
        let live = |v: &'static str| {
            let shared = shared.clone();
            move || {
                shared
                    .status("kc")
                    .filter(|s| s.live_version.as_deref() == Some(v))
                    .map(|_| ())
            }
        };
        until(
            "kc created at 1.0.0",
            Duration::from_secs(12),
            live("1.0.0+25.0.6"),
        )
        .await?;
        let first = started.elapsed();
        pool.deployment("kc", &KC.replace("1.0.0+25.0.6", "1.1.0+26.0.1"));
        commit(repo, "kc to 1.1.0");
        let t = Instant::now();
        until(
            "kc updated to 1.1.0",
            Duration::from_secs(12),
            live("1.1.0+26.0.1"),
        )
        .await?;
        let second = t.elapsed();
        println!(
            "default resync: first revision live after {first:?}, new revision after {second:?}"
        );
        stop.send(true)?;
        let _ = handle.await;
        Ok(())
    })
    .await;
}

/// The same from files: with the default resync, the first pass runs at once, and a changed
/// manifest file is acted on at the next poll (2 s), not at the next resync (30 s).
#[tokio::test]
async fn changed_manifest_files_are_applied_at_once_with_the_default_resync() {
    with_swarm("ctl-files-at-once", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment("kc", KC);
        let cfg = Config {
            paths: vec![pool.path().to_path_buf()],
            ..Config::default()
        };
        assert_eq!(cfg.resync, Duration::from_secs(30), "the default resync");
        let shared = Arc::new(Shared::default());
        let (stop, rx) = watch::channel(false);
        let started = Instant::now();
        let handle = tokio::spawn(controller::run(cfg, shared.clone(), rx));
        let live = |v: &'static str| {
            let shared = shared.clone();
            move || {
                shared
                    .status("kc")
                    .filter(|s| s.live_version.as_deref() == Some(v))
                    .map(|_| ())
            }
        };
        until(
            "kc created at 1.0.0",
            Duration::from_secs(12),
            live("1.0.0+25.0.6"),
        )
        .await?;
        let first = started.elapsed();
        pool.deployment("kc", &KC.replace("1.0.0+25.0.6", "1.1.0+26.0.1"));
        let t = Instant::now();
        until(
            "kc updated to 1.1.0",
            Duration::from_secs(12),
            live("1.1.0+26.0.1"),
        )
        .await?;
        let second = t.elapsed();
        println!("default resync, files: first pass live after {first:?}, change after {second:?}");
        stop.send(true)?;
        let _ = handle.await;
        Ok(())
    })
    .await;
}

//! The provider is never disturbed (issue 19): while a canonical of the same recipe advances to a
//! crash-looping version and is rolled back, the provider's services and tasks are not touched
//! (same version index, same task IDs) and its `/health` answers every probe, sent every 200 ms
//! throughout. Neither deployment reports a conflict with the other.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::controller::start;
use common::http::Prober;
use common::pool::TestPool;
use common::recipes::git;
use common::swarm::gwbridge_addr;
use common::{docker, with_swarm};

const OLD: &str = "1.0.0+25.0.6";
/// A keycloak release made by this test that crashes at start (exit 3).
const CRASHING: &str = "1.2.0+26.1.0";

/// Adds the crashing release to the test's keycloak repo: 1.1.0's files with `FIXTURE_CRASH=3`.
fn add_crashing_release(pool: &TestPool) {
    let repo = pool.repos.path().join("keycloak");
    let compose = repo.join("compose.yml");
    let text = std::fs::read_to_string(&compose).expect("keycloak compose.yml");
    assert!(text.contains("1.1.0+26.0.1"), "the newest fixture release");
    let text = text
        .replace(
            "      - FIXTURE_HTTP_PORT=8080\n",
            "      - FIXTURE_HTTP_PORT=8080\n      - FIXTURE_CRASH=3\n",
        )
        .replace("1.1.0+26.0.1", CRASHING);
    assert!(text.contains("FIXTURE_CRASH=3"));
    std::fs::write(&compose, text).expect("write compose.yml");
    git(&repo, &["commit", "-qam", &format!("release {CRASHING}")]);
    git(&repo, &["tag", CRASHING]);
}

fn keycloak(version: &str, role: &str) -> String {
    format!(
        "  recipe: keycloak\n  version: {version}\n  role: {role}\n  progressDeadline: 60s\n  \
         secrets: {{admin_password: {{generate: {{}}}}}}\n"
    )
}

/// Each service of `stack` with its version index and the IDs of all its tasks (history too).
fn untouched_facts(stack: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let mut out = BTreeMap::new();
    let services = docker(&[
        "service",
        "ls",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
        "--format",
        "{{.Name}}",
    ]);
    for s in services.lines().filter(|l| !l.is_empty()) {
        let version = docker(&["service", "inspect", s, "--format", "{{.Version.Index}}"]);
        let mut tasks: Vec<String> = docker(&["service", "ps", "-q", "--no-trunc", s])
            .lines()
            .map(str::to_string)
            .collect();
        tasks.sort();
        out.insert(s.to_string(), (version.trim().to_string(), tasks));
    }
    out
}

#[tokio::test]
async fn the_provider_is_untouched_while_its_canonical_fails_an_advance_and_rolls_back() {
    with_swarm("provider-undisturbed", |env| async move {
        let pool = TestPool::new(&env, false);
        add_crashing_release(&pool);
        pool.deployment("kc", &keycloak(OLD, "provider"));
        pool.deployment("kc-canon", &keycloak(OLD, "canonical"));
        let hearth = start(&pool);
        for name in ["kc", "kc-canon"] {
            hearth
                .phase(name, "Ready", None, Duration::from_secs(120))
                .await?;
        }
        let provider = pool.stack("kc");
        let canonical = pool.stack("kc-canon");
        assert_ne!(provider, canonical);
        assert!(canonical.starts_with("warm-canon-keycloak"), "{canonical}");
        let before = untouched_facts(&provider);
        assert!(!before.is_empty());
        let addr = gwbridge_addr(
            &env,
            &format!("{provider}_app"),
            8080,
            Duration::from_secs(60),
        )
        .await?;
        let prober = Prober::start(addr);

        let t = Instant::now();
        pool.deployment("kc-canon", &keycloak(CRASHING, "canonical"));
        let st = hearth
            .phase("kc-canon", "AdvanceFailed", None, Duration::from_secs(240))
            .await?;
        println!(
            "canonical advance failed after {:?}: {} {}",
            t.elapsed(),
            st.reason,
            st.message
        );
        assert!(st.message.contains("exit"), "{}", st.message);
        hearth
            .wait(
                "kc-canon",
                "the old version running again",
                Duration::from_secs(120),
                |s| {
                    s.live_version.as_deref() == Some(OLD)
                        && !s.services.is_empty()
                        && s.services.iter().all(|x| x.running == x.desired)
                },
            )
            .await?;
        println!("canonical back on {OLD} after {:?}", t.elapsed());

        // Keep probing a while after the rollback: the canonical's tasks of the failed release
        // are still being cleaned up.
        tokio::time::sleep(Duration::from_secs(8)).await;
        let (answers, failures) = prober.finish();
        println!(
            "provider answered {answers} probes (every 200 ms) in {:?}, from before the \
             canonical's advance to after its rollback",
            t.elapsed()
        );
        assert!(failures.is_empty(), "the provider missed: {failures:?}");
        // One probe per 200 ms plus its round trip, over at least 10 s.
        assert!(answers >= 30, "{answers} probes");
        let after = untouched_facts(&provider);
        assert_eq!(before, after, "the provider's services or tasks changed");
        let kc = hearth.shared.status("kc").expect("kc status");
        assert_eq!(kc.phase, "Ready");
        for st in [kc, hearth.shared.status("kc-canon").expect("status")] {
            let conflicts: Vec<_> = st
                .conditions
                .iter()
                .filter(|c| c.kind == "Conflict" && c.status)
                .collect();
            assert!(conflicts.is_empty(), "{}: {conflicts:?}", st.name);
        }
        hearth.stop().await
    })
    .await;
}

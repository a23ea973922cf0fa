//! The controller's verdicts on the real swarm: a crash loop is reported with its exit code (and
//! log line) long before the deadline, a missing image is named, and probes gate readiness (a TCP
//! port that flaps is never Ready; an HTTP probe on a wrong path keeps it from Ready).

mod common;

use std::time::{Duration, Instant};

use common::controller::start;
use common::http::free_port;
use common::pool::TestPool;
use common::with_swarm;

#[tokio::test]
async fn a_crash_loop_is_wedged_with_its_exit_code_before_the_deadline() {
    with_swarm("ctl-crash", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment(
            "gitea",
            "  recipe: gitea\n  version: 3.6.0+1.24.2-rootless\n  progressDeadline: 10m\n",
        );
        let hearth = start(&pool);
        let applied = hearth
            .wait("gitea", "applied", Duration::from_secs(30), |s| {
                !s.stack.is_empty()
            })
            .await?;
        let started = Instant::now();
        let st = hearth
            .phase(
                "gitea",
                "Wedged",
                Some("CrashLoop"),
                Duration::from_secs(90),
            )
            .await?;
        let took = started.elapsed();
        println!(
            "crash loop of {} reported in {took:?} after the apply",
            applied.stack
        );
        assert!(
            took < Duration::from_secs(60),
            "well before the 10m deadline: {took:?}"
        );
        assert!(st.message.contains("exit code 2"), "{}", st.message);
        assert!(
            st.message
                .contains("cannot write config /etc/gitea/app.ini"),
            "the log line: {}",
            st.message
        );
        hearth.stop().await
    })
    .await;
}

#[tokio::test]
async fn a_missing_image_is_wedged_naming_the_image() {
    with_swarm("ctl-image", |env| async move {
        let pool = TestPool::new(&env, false);
        pool.deployment(
            "site",
            "  recipe: static-site\n  version: 1.1.0+1.27.1\n  env: {IMAGE: \"hearth-fixture:nope\"}\n",
        );
        let hearth = start(&pool);
        let st = hearth
            .phase("site", "Wedged", Some("ImageMissing"), Duration::from_secs(60))
            .await?;
        assert!(st.message.contains("hearth-fixture:nope"), "{}", st.message);
        hearth.stop().await
    })
    .await;
}

#[tokio::test]
async fn a_flapping_tcp_port_is_not_ready_until_stable() {
    with_swarm("ctl-tcp", |env| async move {
        let pool = TestPool::new(&env, false);
        let port = free_port();
        let spec = |flap: &str| {
            format!(
                "  recipe: mumble\n  version: 1.0.0+1.5.517\n  \
                 env: {{MUMBLE_PORT: \"{port}\", FIXTURE_TCP_FLAP: \"{flap}\"}}\n  \
                 probes:\n    - tcp: {{service: app, port: 64738, stableFor: 3s, \
                 send: \"hex:0001\", expect: \"hex:0002\", interval: 1s, failures: 1}}\n"
            )
        };
        pool.deployment("mumble", &spec("1:1"));
        let hearth = start(&pool);
        // Services run, but the port flaps: never Ready.
        let st = hearth
            .wait("mumble", "probed", Duration::from_secs(60), |s| {
                !s.probes.is_empty()
                    && s.probes.iter().all(|p| !p.message.contains("not probed"))
                    && s.services
                        .iter()
                        .all(|p| p.running == p.desired && p.desired > 0)
            })
            .await?;
        println!("flapping: {} {} {}", st.phase, st.reason, st.message);
        let until = Instant::now() + Duration::from_secs(12);
        while Instant::now() < until {
            let st = hearth.shared.status("mumble").unwrap();
            assert_ne!(
                st.phase, "Ready",
                "a flapping port must not be Ready: {:?}",
                st.probes
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Stable port: Ready.
        pool.deployment("mumble", &spec(""));
        let st = hearth
            .phase("mumble", "Ready", None, Duration::from_secs(60))
            .await?;
        assert!(st.probes.iter().all(|p| p.ok), "{:?}", st.probes);
        hearth.stop().await
    })
    .await;
}

#[tokio::test]
async fn an_http_probe_gates_readiness() {
    with_swarm("ctl-http", |env| async move {
        let pool = TestPool::new(&env, false);
        let spec = |path: &str| {
            format!(
                "  recipe: keycloak\n  version: 1.0.0+25.0.6\n  \
                 secrets: {{admin_password: {{generate: {{}}}}}}\n  \
                 probes:\n    - http: {{service: app, port: 8080, path: {path}, interval: 1s, failures: 1}}\n"
            )
        };
        pool.deployment("kc", &spec("/nope"));
        let hearth = start(&pool);
        let st = hearth
            .wait("kc", "probe failing", Duration::from_secs(90), |s| {
                s.probes.iter().any(|p| !p.ok && p.message.contains("404"))
            })
            .await?;
        assert_ne!(st.phase, "Ready");
        pool.deployment("kc", &spec("/health"));
        let st = hearth.phase("kc", "Ready", None, Duration::from_secs(60)).await?;
        assert!(st.probes[0].ok, "{:?}", st.probes);
        hearth.stop().await
    })
    .await;
}

//! What `docker stack deploy` makes when it can reach the registry, on the real swarm: it pins every
//! image to its digest (`name:tag@sha256:…`), as abra does on a real server. The registry is the
//! loopback one of scripts/local-registry (swarm-up starts it), holding the fixture image.
//!
//! hearth renders `name:tag` (it never contacts a registry). The pinned live image must still be
//! the same image to it: taking the stack over restarts nothing and leaves a clean plan, and an
//! update for another reason (`apply --restart`, then an out-of-band env change healed) keeps
//! the live digest instead of writing the bare tag (src/plan/digest.rs). Another tag is drift.

mod common;

use std::time::Duration;

use common::abra::{AbraDir, StackGuard, docker_try, hearth, import_labelled, running_tasks, text};
use common::{docker, with_swarm};

const PATTERN: &str = "_pinned_abra_test";
const IMAGE: &str = "127.0.0.1:5000/hearth-fixture:test";

fn image_of(service: &str) -> String {
    docker(&[
        "service",
        "inspect",
        service,
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
    ])
    .trim()
    .to_string()
}

#[tokio::test]
async fn a_digest_pinned_stack_is_the_same_image_and_keeps_its_pin() {
    let (registry, why) = docker_try(&["image", "inspect", IMAGE, "--format", "{{.RepoDigests}}"]);
    assert!(
        registry && why.contains("@sha256:"),
        "{IMAGE} is not in the loopback registry: run scripts/swarm-up (scripts/local-registry): {why}"
    );
    with_swarm("digest-pinned", |env| async move {
        let _guard = StackGuard::new(PATTERN);
        let abra = AbraDir::new("srv.example.org", &["abra-pinned"]);
        let domain = format!("{}.pinned.abra.test", env.unique("dp"));
        let stack = hearth::manifest::names::abra_stack_name(&domain);
        let app_env = format!("TYPE=abra-pinned\nDOMAIN={domain}\nAPP_GREETING=hi\n");
        abra.app(&domain, &app_env);
        abra.deploy_resolved("abra-pinned", "1.0.0+1", &domain, &app_env);
        let service = format!("{stack}_app");
        let tasks = running_tasks(&service, Duration::from_secs(90));
        let pinned = image_of(&service);
        assert!(
            pinned.starts_with(&format!("{IMAGE}@sha256:")),
            "docker stack deploy did not pin the digest: {pinned}"
        );

        // Import and adopt: nothing restarts, and the plan after is clean.
        let out_dir = tempfile::tempdir()?;
        let out = out_dir.path().to_str().unwrap().to_string();
        import_labelled(&abra, out_dir.path(), &env.test);
        let o = hearth(&["plan", "-f", &out]);
        let first = text(&o);
        assert!(
            !first.contains("ContainerSpec.Image"),
            "the pinned image looks changed: {first}"
        );
        let o = hearth(&["apply", "-f", &out]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(common::abra::all_tasks(&service), tasks);
        assert_eq!(image_of(&service), pinned);
        let o = hearth(&["plan", "-f", &out, "--detailed-exitcode"]);
        let second = text(&o);
        assert_eq!(o.status.code(), Some(0), "{second}");
        assert!(!second.contains("deferred"), "{second}");

        // A full update (--restart): the tasks restart, the pin stays.
        let name = domain.replace('.', "-");
        let o = hearth(&["apply", "-f", &out, "--deployment", &name, "--restart"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(image_of(&service), pinned);

        // An out-of-band env change is drift; healing it keeps the pin too.
        docker(&[
            "service",
            "update",
            "--detach",
            "--env-add",
            "OOB=1",
            &service,
        ]);
        let o = hearth(&["plan", "-f", &out, "--detailed-exitcode"]);
        let drifted = text(&o);
        assert_eq!(o.status.code(), Some(2), "{drifted}");
        assert!(drifted.contains("ContainerSpec.Env"), "{drifted}");
        assert!(!drifted.contains("ContainerSpec.Image"), "{drifted}");
        let o = hearth(&["apply", "-f", &out]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(image_of(&service), pinned);
        let o = hearth(&["plan", "-f", &out, "--detailed-exitcode"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));

        // Another tag pinned out of band is drift, whatever its digest.
        let digest = pinned.split_once('@').map(|(_, d)| d).unwrap_or_default();
        docker(&[
            "service",
            "update",
            "--detach",
            "--no-resolve-image",
            "--image",
            &format!("127.0.0.1:5000/hearth-fixture:other@{digest}"),
            &service,
        ]);
        let o = hearth(&["plan", "-f", &out, "--detailed-exitcode"]);
        let drifted = text(&o);
        assert_eq!(o.status.code(), Some(2), "{drifted}");
        assert!(drifted.contains("ContainerSpec.Image"), "{drifted}");
        anyhow::Ok(())
    })
    .await;
}

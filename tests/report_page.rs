//! The reporting server on an ephemeral loopback port with a hand-filled `Shared` (no swarm):
//! health and readiness, `/metrics`, the JSON API (and its 404), `hearth status` against it, and
//! the status page rendered by headless Chromium (screenshot under the target directory, DOM
//! dump checked for the table content and for escaping).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use common::http::get;
use hearth::assess::{Condition, Convergence, Phase, ServiceProgress};
use hearth::controller::Shared;
use hearth::controller::status::{DeploymentStatus, ProbeStatus};
use hearth::plan::DriftItem;

fn status(name: &str, phase: &str, reason: &str, message: &str) -> DeploymentStatus {
    let since = SystemTime::now() - Duration::from_secs(190);
    DeploymentStatus {
        name: name.into(),
        recipe: "gitea".into(),
        role: "canonical".into(),
        stack: format!("{name}_pool_example_org"),
        domain: format!("{name}.pool.example.org"),
        desired_version: "3.6.0+1.24.2-rootless".into(),
        live_version: Some("3.5.3+1.24.2-rootless".into()),
        phase: Phase::parse(phase).expect("a phase"),
        reason: reason.into(),
        message: message.into(),
        since: Some(since),
        last_reconcile: Some(SystemTime::now()),
        ..Default::default()
    }
}

fn shared() -> Arc<Shared> {
    let shared = Arc::new(Shared::default());
    let mut wedged = status(
        "gitea",
        "Wedged",
        "CrashLoop",
        "app: exit code 2 <b>bold</b>",
    );
    wedged.conditions = vec![Condition {
        since: Some(SystemTime::now() - Duration::from_secs(60)),
        ..Condition::new("Ready", false, "CrashLoop", "app: exit code 2")
    }];
    wedged.services = vec![ServiceProgress {
        service: "app".into(),
        desired: 1,
        running: 0,
        state: Convergence::Progressing("task failed: exit 2".into()),
    }];
    wedged.drift = vec![DriftItem {
        service: "app".into(),
        field: "env".into(),
        desired: "A=1".into(),
        live: "A=<script>alert(1)</script>".into(),
    }];
    wedged.probes = vec![ProbeStatus {
        name: "http-3000".into(),
        ok: false,
        message: "connection refused".into(),
    }];
    wedged.last_error = Some("update service: rpc error".into());
    let mut ready = status(
        "keycloak",
        "Ready",
        "AllServicesRunning",
        "1 service(s) running",
    );
    ready.recipe = "keycloak".into();
    ready.desired_version = "1.0.0+25.0.6".into();
    ready.live_version = Some("1.0.0+25.0.6".into());
    ready.last_ready = Some(SystemTime::now());
    let mut m = shared.statuses.write().expect("statuses");
    for s in [
        wedged,
        ready,
        status("pds", "Progressing", "Converging", "app: starting"),
    ] {
        m.insert(s.name.clone(), s);
    }
    drop(m);
    shared.counters.reconciled("gitea", false);
    shared.counters.reconciled("keycloak", true);
    shared.counters.reconcile_took(0.03);
    shared.counters.action("update_service");
    shared.counters.task_failed("gitea", "app");
    shared
}

async fn start(shared: Arc<Shared>) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = hearth::report::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hearth::report::serve(listener, shared, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

/// GET on a blocking thread (the server runs on the test's runtime).
async fn fetch(addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || get(addr, &path))
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("GET: {e}"))
}

fn target_dir() -> PathBuf {
    // .../target/debug/hearth -> .../target
    Path::new(env!("CARGO_BIN_EXE_hearth"))
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

async fn chromium(args: Vec<String>) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = tokio::process::Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(&args)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium took over 90s")
        .unwrap_or_else(|e| {
            panic!("chromium: {e}; install it with scripts/swarm-up (Debian's chromium)")
        });
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_api() {
    let shared = shared();
    let (addr, _stop) = start(shared.clone()).await;

    assert_eq!(fetch(addr, "/healthz").await.0, 200);
    let (code, body) = fetch(addr, "/readyz").await;
    assert_eq!((code, body.trim()), (503, "not connected to Docker"));
    shared.docker_up.store(true, Ordering::SeqCst);
    assert_eq!(fetch(addr, "/readyz").await.0, 503, "not synced yet");
    shared.synced.store(true, Ordering::SeqCst);
    assert_eq!(fetch(addr, "/readyz").await.0, 200);

    let (code, metrics) = fetch(addr, "/metrics").await;
    assert_eq!(code, 200);
    for line in [
        "hearth_deployment_phase{deployment=\"gitea\",phase=\"Wedged\"} 1",
        "hearth_deployment_wedged{deployment=\"gitea\",reason=\"CrashLoop\"} 1",
        "hearth_deployment_ready{deployment=\"keycloak\"} 1",
        "hearth_reconcile_total{deployment=\"gitea\",result=\"error\"} 1",
        "hearth_task_failures_total{deployment=\"gitea\",service=\"app\"} 1",
        "hearth_docker_up 1",
        "hearth_leader 1",
        "hearth_source_revision_info{revision=\"local\"} 1",
        "hearth_reconcile_duration_seconds_count 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing:\n{metrics}"
        );
    }

    let (code, body) = fetch(addr, "/api/v1/deployments").await;
    assert_eq!(code, 200);
    let list: serde_json::Value = serde_json::from_str(&body).expect("json");
    let names: Vec<&str> = list["deployments"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["gitea", "keycloak", "pds"]);
    assert_eq!(list["dockerUp"], true);

    let (code, body) = fetch(addr, "/api/v1/deployments/gitea").await;
    assert_eq!(code, 200);
    let d: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(d["phase"], "Wedged");
    assert_eq!(d["conditions"][0]["reason"], "CrashLoop");
    assert!(d["conditions"][0]["since"].as_str().is_some());
    assert_eq!(d["drift"][0]["field"], "env");
    assert_eq!(d["probes"][0]["ok"], false);
    assert_eq!(d["lastError"], "update service: rpc error");
    assert!(d["lastReconcile"].as_str().is_some());

    let (code, body) = fetch(addr, "/api/v1/deployments/nope").await;
    assert_eq!(code, 404);
    let e: serde_json::Value = serde_json::from_str(&body).expect("json error");
    assert_eq!(e["error"], "NotFound");
    assert_eq!(fetch(addr, "/deployments/nope").await.0, 404);

    // hearth status against the same server.
    let url = format!("http://{addr}");
    let bin = env!("CARGO_BIN_EXE_hearth");
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || Command::new(bin).args(args).output().expect("run"))
    };
    let out = run(vec!["status".into(), "--url".into(), url.clone()])
        .await
        .expect("join");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("hearth status:\n{text}");
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAME", "PHASE", "REASON", "DESIRED", "LIVE", "DOMAIN", "SINCE"
        ]
    );
    assert_eq!(&lines[1][..3], ["gitea", "Wedged", "CrashLoop"]);
    assert_eq!(lines[1][5], "gitea.pool.example.org");
    assert!(lines[1][6].starts_with("3m"), "{:?}", lines[1]);
    assert_eq!(&lines[2][..3], ["keycloak", "Ready", "AllServicesRunning"]);

    let out = run(vec![
        "status".into(),
        "--url".into(),
        url.clone(),
        "-o".into(),
        "json".into(),
        "gitea".into(),
    ])
    .await
    .expect("join");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["reason"], "CrashLoop");

    let out = run(vec!["status".into(), "--url".into(), url, "nope".into()])
        .await
        .expect("join");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no deployment named"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_in_headless_chromium() {
    let (addr, _stop) = start(shared()).await;
    let url = format!("http://{addr}/");
    let shot = target_dir().join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(vec![
        format!("--screenshot={}", shot.display()),
        "--window-size=1200,800".into(),
        url.clone(),
    ])
    .await;
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "screenshot {} is {size} bytes",
        shot.display()
    );
    println!("status page screenshot: {}", shot.display());

    let dom = chromium(vec!["--dump-dom".into(), url]).await;
    // The table, one row per deployment, in name order, with phase colours.
    let rows: Vec<&str> = dom
        .split("<tr>")
        .skip(2) // before the table, the header row
        .collect();
    assert_eq!(rows.len(), 3, "{dom}");
    for (row, (name, phase, class)) in rows.iter().zip([
        ("gitea", "Wedged", "bad"),
        ("keycloak", "Ready", "ok"),
        ("pds", "Progressing", "busy"),
    ]) {
        assert!(row.contains(&format!(">{name}</a>")), "{row}");
        assert!(
            row.contains(&format!("<span class=\"phase {class}\">{phase}</span>")),
            "{row}"
        );
        assert!(row.contains(&format!("{name}.pool.example.org")), "{row}");
    }
    assert!(rows[0].contains("CrashLoop") && rows[0].contains("3.6.0+1.24.2-rootless"));
    assert!(rows[0].contains("3m"), "since: {}", rows[0]);
    // Escaped: the message's markup is text, not an element.
    assert!(!dom.contains("<b>bold</b>"), "{dom}");

    // The drill-down page.
    let dom = chromium(vec![
        "--dump-dom".into(),
        format!("http://{addr}/deployments/gitea"),
    ])
    .await;
    assert!(dom.contains("id=\"conditions\""));
    assert!(dom.contains("connection refused"));
    assert!(dom.contains("update service: rpc error"));
    assert!(
        dom.contains("A=&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<script>"), "{dom}");
    assert!(dom.contains("0/1"));
}

/// POST with an optional bearer token; returns the status code.
fn post(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn source_refresh_needs_a_configured_token() {
    let shared = shared();
    let (addr, _stop) = start(shared.clone()).await;
    let call = |token: Option<&'static str>| {
        tokio::task::spawn_blocking(move || post(addr, "/api/v1/source/refresh", token))
    };
    // Off without a token configured.
    assert_eq!(call(Some("anything")).await.unwrap(), 404);
    *shared.refresh_token.write().unwrap() = Some("s3cret".into());
    assert_eq!(call(None).await.unwrap(), 401);
    assert_eq!(call(Some("wrong")).await.unwrap(), 401);
    let woken = {
        let shared = shared.clone();
        tokio::spawn(async move { shared.refresh.notified().await })
    };
    assert_eq!(call(Some("s3cret")).await.unwrap(), 202);
    tokio::time::timeout(std::time::Duration::from_secs(2), woken)
        .await
        .expect("the poller is woken")
        .unwrap();
    // The source is reported by the API.
    shared.source.write().unwrap().revision = Some("0123456789abcdef".into());
    let (status, body) = fetch(addr, "/api/v1/source").await;
    assert_eq!(status, 200);
    assert!(body.contains("0123456789abcdef"), "{body}");
    let (_, page) = fetch(addr, "/").await;
    assert!(page.contains("revision 0123456789ab"), "{page}");
}

/// At a phone's width (390 CSS pixels) neither page scrolls sideways: wide tables scroll inside
/// themselves. Measured by a wrapper page, served from the same origin next to hearth's routes,
/// holding the status page in a 390-pixel iframe and writing the frame's layout into its DOM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_fits_a_390_pixel_viewport() {
    let wrapper = |path: &str| {
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0\">\
             <iframe id=\"f\" src=\"{path}\" style=\"width:390px;height:844px;border:0\">\
             </iframe><script>\
             document.getElementById('f').onload = function() {{\
               var r = document.createElement('pre'); r.id = 'result';\
               try {{\
                 var d = this.contentDocument.documentElement;\
                 r.textContent = 'scroll=' + d.scrollWidth + ' width=' + \
                   this.contentWindow.innerWidth + ' rows=' + \
                   this.contentDocument.querySelectorAll('tr').length;\
               }} catch (e) {{ r.textContent = 'error=' + e; }}\
               document.body.appendChild(r);\
             }};</script></body></html>"
        )
    };
    let (pool, one) = (wrapper("/"), wrapper("/deployments/gitea"));
    let app = hearth::report::router(shared())
        .route(
            "/test-wrapper/pool",
            axum::routing::get(move || async move { axum::response::Html(pool) }),
        )
        .route(
            "/test-wrapper/one",
            axum::routing::get(move || async move { axum::response::Html(one) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    for page in ["pool", "one"] {
        let dom = chromium(vec![
            "--virtual-time-budget=10000".into(),
            "--dump-dom".into(),
            format!("http://{addr}/test-wrapper/{page}"),
        ])
        .await;
        let result = dom
            .split("id=\"result\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .unwrap_or_else(|| panic!("{page}: no measurement in {dom}"));
        let num = |k: &str| -> u32 {
            result
                .split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{page}: {k} in {result:?}"))
        };
        println!("{page} at 390 px: {result}");
        assert_eq!(num("width"), 390, "{result}");
        assert!(num("rows") > 1, "{page}: the page did not load: {result}");
        assert!(
            num("scroll") <= 390,
            "{page} scrolls sideways at 390 px: {result}"
        );
    }
    server.abort();
}

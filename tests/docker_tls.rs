//! hearth reaches a Docker daemon over TLS the way the Helm chart configures it: `DOCKER_HOST=tcp://…`,
//! `DOCKER_TLS_VERIFY=1`, `DOCKER_CERT_PATH` holding `ca.pem`, `cert.pem`, `key.pem`. The daemon
//! here only listens on its Unix socket, so the test puts a TLS front in front of it (rustls, client
//! certificates required, signed by a CA made with the openssl CLI) and runs `hearth plan` through
//! it; without TLS, or with a client certificate from another CA, the connection must fail.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, UnixStream};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>-ca.pem`), and certificates it signs: `server.pem` (for 127.0.0.1) and a client
/// certificate, written into `dir` as `<name>-…` files.
fn pki(dir: &Path, name: &str) {
    let ca_key = format!("{name}-ca-key.pem");
    let ca = format!("{name}-ca.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            &ca_key,
            "-out",
            &ca,
        ],
    );
    for (who, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        let key = format!("{name}-{who}-key.pem");
        let csr = format!("{name}-{who}.csr");
        let ext_file = format!("{name}-{who}.ext");
        std::fs::write(dir.join(&ext_file), ext).expect("write ext");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={who}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext_file,
                "-out",
                &format!("{name}-{who}.pem"),
            ],
        );
    }
}

/// Serves TLS on 127.0.0.1 (client certificates signed by `ca` required) and forwards each
/// connection to the Docker socket. Returns the port and a count of forwarded connections.
async fn tls_front(dir: &Path, name: &str) -> (u16, Arc<AtomicUsize>) {
    let certs = CertificateDer::pem_file_iter(dir.join(format!("{name}-server.pem")))
        .expect("server cert")
        .collect::<Result<Vec<_>, _>>()
        .expect("server cert pem");
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}-server-key.pem")))
        .expect("server key");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join(format!("{name}-ca.pem"))).expect("ca") {
        roots.add(c.expect("ca pem")).expect("add ca");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .expect("client verifier");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let forwarded = Arc::new(AtomicUsize::new(0));
    let count = forwarded.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut docker) = UnixStream::connect("/var/run/docker.sock").await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut docker).await;
            });
        }
    });
    (port, forwarded)
}

/// `hearth plan` on an empty pool against `host`, with the TLS environment given; (success, output).
fn plan(dir: &Path, host: &str, env: &[(&str, &Path)], verify: bool) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.args(["plan", "-f"])
        .arg(dir.join("manifests"))
        .args(["--docker-host", host])
        .env_remove("DOCKER_HOST")
        .env_remove("HEARTH_DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    if verify {
        cmd.env("DOCKER_TLS_VERIFY", "1");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run hearth");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A cert dir as the docker CLI wants it: ca.pem, cert.pem, key.pem.
fn cert_dir(dir: &Path, sub: &str, ca_of: &str, client_of: &str) -> std::path::PathBuf {
    let d = dir.join(sub);
    std::fs::create_dir_all(&d).expect("cert dir");
    for (from, to) in [
        (format!("{ca_of}-ca.pem"), "ca.pem"),
        (format!("{client_of}-client.pem"), "cert.pem"),
        (format!("{client_of}-client-key.pem"), "key.pem"),
    ] {
        std::fs::copy(dir.join(from), d.join(to)).expect("copy cert");
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hearth_talks_to_docker_over_tls_with_a_client_certificate() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    pki(dir, "good");
    pki(dir, "other");
    std::fs::create_dir_all(dir.join("manifests")).expect("manifests dir");
    std::fs::create_dir_all(dir.join("recipes")).expect("recipes dir");
    std::fs::write(
        dir.join("manifests/pool.yml"),
        format!(
            "apiVersion: hearth/v1\nkind: Pool\nmetadata: {{name: tls}}\nspec:\n  domain: tls.test\n  \
             recipes: {}\n",
            dir.join("recipes").display()
        ),
    )
    .expect("pool");
    let (port, forwarded) = tls_front(dir, "good").await;
    let host = format!("tcp://127.0.0.1:{port}");
    let good = cert_dir(dir, "good-certs", "good", "good");

    let d = dir.to_path_buf();
    let h = host.clone();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        plan(&d, &h, &[("DOCKER_CERT_PATH", good.as_path())], true)
    })
    .await
    .expect("join");
    assert!(ok, "hearth plan over TLS failed:\n{out}");
    let through = forwarded.load(Ordering::SeqCst);
    assert!(through > 0, "no connection went through the TLS front");

    // Plain HTTP to the TLS port (no DOCKER_TLS_VERIFY): fails.
    let d = dir.to_path_buf();
    let h = host.clone();
    let (ok, out) = tokio::task::spawn_blocking(move || plan(&d, &h, &[], false))
        .await
        .expect("join");
    assert!(!ok, "plain HTTP to a TLS daemon succeeded:\n{out}");

    // A client certificate from another CA: the daemon side refuses it.
    let wrong = cert_dir(dir, "wrong-certs", "good", "other");
    let d = dir.to_path_buf();
    let (ok, out) = tokio::task::spawn_blocking(move || {
        plan(&d, &host, &[("DOCKER_CERT_PATH", wrong.as_path())], true)
    })
    .await
    .expect("join");
    assert!(
        !ok,
        "a client certificate from another CA was accepted:\n{out}"
    );
    assert_eq!(
        forwarded.load(Ordering::SeqCst),
        through,
        "refused handshakes were forwarded"
    );
}

//! HTTPS through hearth's HTTP client, against a local TLS endpoint on 127.0.0.1 whose
//! certificate is issued by a CA generated here: `hearth status --url https://...` with and
//! without `--cacert`, and the `http` probe's request over TLS to an address with a Host name
//! (as `address: https://...` does), checked against that name.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

struct Tls {
    addr: SocketAddr,
    ca_pem: String,
}

/// A TLS server for `names` answering every request `200` with a JSON body echoing the request
/// line and the Host header.
async fn tls_server(names: &[&str]) -> Tls {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hearth test CA");
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&req).to_string();
                let line = req.lines().next().unwrap_or_default().to_string();
                let host = req
                    .lines()
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
                            .map(|(_, v)| v.trim().to_string())
                    })
                    .unwrap_or_default();
                let body = serde_json::json!({"line": line, "host": host}).to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Tls {
        addr,
        ca_pem: ca.pem(),
    }
}

#[tokio::test]
async fn status_over_https_with_a_ca_file() {
    let tls = tls_server(&["localhost", "127.0.0.1"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).expect("write ca");
    let url = format!("https://localhost:{}/hearth/", tls.addr.port());
    // Run on a blocking thread: the TLS server shares this test's runtime.
    let hearth = |extra: &[&str]| {
        let mut args: Vec<String> = ["status", "--url", &url, "-o", "json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_hearth"))
                .args(&args)
                .env_remove("HEARTH_CACERT")
                .env_remove("SSL_CERT_FILE")
                .output()
        })
    };
    let ok = hearth(&["--cacert", ca.to_str().unwrap()])
        .await
        .expect("join")
        .expect("run hearth");
    let out = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["line"], "GET /hearth/api/v1/deployments HTTP/1.1");

    // The system roots do not know the test CA.
    let bad = hearth(&[]).await.expect("join").expect("run hearth");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn http_probe_request_over_tls_checks_the_host_name() {
    let tls = tls_server(&["app.example"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).expect("write ca");
    let t = Duration::from_secs(5);
    let (status, body) =
        hearth::probe::http::get(tls.addr, true, "app.example", "/health", t, Some(&ca))
            .await
            .expect("GET over TLS");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["line"], "GET /health HTTP/1.1");
    assert_eq!(v["host"], "app.example");

    // Another name: the certificate does not match.
    let err = hearth::probe::http::get(tls.addr, true, "other.example", "/", t, Some(&ca))
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    // Without the CA: unknown issuer.
    let err = hearth::probe::http::get(tls.addr, true, "app.example", "/", t, None)
        .await
        .unwrap_err();
    assert!(err.contains("certificate"), "{err}");
}

//! Raw JSON GETs against the Docker API, for the objects hearth compares field by field.
//!
//! bollard's models name a few fields differently from what Docker returns (the container spec's
//! `Healthcheck` is `HealthCheck` there), so a live spec read through them silently loses those
//! fields. Reading the JSON as Docker sends it keeps every field; the typed view is parsed from
//! the same bytes, so this costs no extra request. The request goes the way the bollard client's
//! do (Unix socket, TCP, or TLS with the docker CLI's client certificate files).

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsConnector;

use super::transport::Transport;

/// `GET /v<version><path>` on the daemon `transport` names (the same one the bollard client talks
/// to: Unix socket, plain TCP, or TLS with the client certificate), the body unparsed (the caller
/// parses it into something smaller than a `serde_json::Value` tree when it can).
pub(super) async fn get_bytes(
    transport: &Transport,
    version: &str,
    path: &str,
) -> Result<Bytes, String> {
    let uri = format!("/v{version}{path}");
    let req = Request::get(&uri)
        .header("Host", "docker")
        .header("Accept", "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let body = match transport {
        Transport::Unix(p) => {
            let stream = tokio::net::UnixStream::connect(p)
                .await
                .map_err(|e| format!("connect unix://{p}: {e}"))?;
            send(stream, req).await?
        }
        Transport::Http(host) => {
            let addr = tcp_addr(host);
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {host}: {e}"))?;
            send(stream, req).await?
        }
        Transport::Tls {
            addr: host,
            cert_dir,
        } => {
            let addr = tcp_addr(host);
            let connector = tls_connector(cert_dir)?;
            let name = server_name(addr)?;
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {host}: {e}"))?;
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}: {e}"))?;
            send(stream, req).await?
        }
    };
    Ok(body)
}

/// `host:port` of a `tcp://`, `http://` or `https://` address.
fn tcp_addr(host: &str) -> &str {
    let rest = ["tcp://", "http://", "https://"]
        .iter()
        .find_map(|p| host.strip_prefix(p))
        .unwrap_or(host);
    rest.trim_end_matches('/')
}

/// The name the daemon's certificate must carry: the host part of `host:port` (an IP or a DNS name).
fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = match addr.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| format!("TLS server name {host:?}: {e}"))
}

/// A TLS client as the docker CLI's `--tlsverify`: trusts `ca.pem` only, presents `cert.pem` with
/// `key.pem`.
fn tls_connector(cert_dir: &Path) -> Result<TlsConnector, String> {
    let file = |n: &str| cert_dir.join(n);
    let pem_err = |n: &str, e: &dyn std::fmt::Display| format!("{}: {e}", file(n).display());
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(file("ca.pem")).map_err(|e| pem_err("ca.pem", &e))? {
        let c = c.map_err(|e| pem_err("ca.pem", &e))?;
        roots.add(c).map_err(|e| pem_err("ca.pem", &e))?;
    }
    let certs = CertificateDer::pem_file_iter(file("cert.pem"))
        .map_err(|e| pem_err("cert.pem", &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err("cert.pem", &e))?;
    let key = PrivateKeyDer::from_pem_file(file("key.pem")).map_err(|e| pem_err("key.pem", &e))?;
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("client certificate in {}: {e}", cert_dir.display()))?;
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn send<S>(stream: S, req: Request<Empty<Bytes>>) -> Result<Bytes, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let uri = req.uri().to_string();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("GET {uri}: {e}"))?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("GET {uri}: {e}"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("GET {uri}: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "GET {uri}: HTTP {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&body).trim()
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_server_names() {
        assert_eq!(tcp_addr("tcp://10.0.0.1:2376"), "10.0.0.1:2376");
        assert_eq!(
            tcp_addr("https://m.example.org:2376/"),
            "m.example.org:2376"
        );
        assert_eq!(
            server_name("m.example.org:2376").expect("dns"),
            ServerName::try_from("m.example.org").expect("name")
        );
        assert!(matches!(
            server_name("10.0.0.1:2376"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("[::1]:2376"),
            Ok(ServerName::IpAddress(_))
        ));
    }

    #[test]
    fn missing_certificates_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = tls_connector(dir.path()).err().expect("no certs");
        assert!(err.contains("ca.pem"), "{err}");
    }
}

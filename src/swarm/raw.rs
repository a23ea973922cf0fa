//! Raw JSON GETs against the Docker API, for the objects hearth compares field by field.
//!
//! bollard's models name a few fields differently from what Docker returns (the container spec's
//! `Healthcheck` is `HealthCheck` there), so a live spec read through them silently loses those
//! fields. Reading the JSON as Docker sends it keeps every field; the typed view is parsed from
//! the same bytes, so this costs no extra request.

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// `GET /v<version><path>` on `host` (`unix:///path` or `tcp://host:port`), parsed as JSON.
pub async fn get_json(host: &str, version: &str, path: &str) -> Result<Value, String> {
    let body = get_bytes(host, version, path).await?;
    serde_json::from_slice(&body).map_err(|e| format!("GET /v{version}{path}: invalid JSON: {e}"))
}

/// [`get_json`], the body unparsed (to parse it into something smaller than a [`Value`] tree).
pub async fn get_bytes(host: &str, version: &str, path: &str) -> Result<Bytes, String> {
    let uri = format!("/v{version}{path}");
    let req = Request::get(&uri)
        .header("Host", "docker")
        .header("Accept", "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let body = if let Some(p) = host.strip_prefix("unix://") {
        let stream = tokio::net::UnixStream::connect(p)
            .await
            .map_err(|e| format!("connect {host}: {e}"))?;
        send(stream, req).await?
    } else {
        let addr = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .unwrap_or(host);
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {host}: {e}"))?;
        send(stream, req).await?
    };
    Ok(body)
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

//! The `http` probe: `GET <path>`, pass on the expected status.
//!
//! Two ways to aim it (decided by [`aim`], pure):
//! - no `address:` — to `port` on every running task's reachable address (see `target`);
//!   `Host:` is `host:` when set, else `<task ip>:<port>`;
//! - `address:` set — like `curl --resolve`: the URL `http://<host or deployment domain><path>` is
//!   sent to `address` (`host:port`, `host`, or a URL base `http://host:port`; the port defaults to
//!   the probe's `port`) with that `Host:` header; one target, whatever the tasks.
//!
//! Plain HTTP/1.1 over hyper's client connection, one request per connection. The whole check is
//! bounded by the timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use super::{Check, Round, Subject, cut, on_every_task, target};
use crate::manifest::HttpProbe;

/// Most body bytes read for a failure message.
const BODY_SNIPPET: usize = 512;

/// Where an `http` probe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aim {
    /// Every running task, on `port`, with this `Host:` (None: `<ip>:<port>`).
    Tasks { port: u16, host: Option<String> },
    /// One address (`connect` is `host:port`), `Host:` header and URL host `host`.
    Resolve {
        connect_host: String,
        connect_port: u16,
        host: String,
    },
}

/// Decides where the probe goes; see the module doc.
pub fn aim(p: &HttpProbe, domain: &str) -> Result<Aim, String> {
    match &p.address {
        None => Ok(Aim::Tasks {
            port: p.port,
            host: p.host.clone(),
        }),
        Some(address) => {
            let (connect_host, connect_port) = parse_address(address, p.port)?;
            let host = p.host.clone().unwrap_or_else(|| domain.to_string());
            if host.is_empty() {
                return Err("no host: set `host:` or give the deployment a domain".into());
            }
            Ok(Aim::Resolve {
                connect_host,
                connect_port,
                host,
            })
        }
    }
}

/// `host:port`, `host`, `[v6]:port`, `v6` or `http://host:port[/...]` -> (host, port), the port
/// defaulting to `default_port`.
pub fn parse_address(address: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("address {address:?}: {why}");
    let rest = address.trim();
    let rest = rest.strip_prefix("http://").unwrap_or(rest);
    if rest.starts_with("https://") {
        return Err(bad("https is not supported"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if let Ok(ip) = authority.parse::<IpAddr>() {
        return Ok((ip.to_string(), default_port));
    }
    if let Some(v6) = authority.strip_prefix('[') {
        let (ip, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None if after.is_empty() => default_port,
            None => return Err(bad("junk after ']'")),
        };
        return Ok((ip.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => {
            let port = p.parse().map_err(|_| bad("bad port"))?;
            Ok((h.to_string(), port))
        }
        Some(_) => Err(bad("no host")),
        None => Ok((authority.to_string(), default_port)),
    }
}

/// `Host:` value for `host` on `port` (the port is left out for 80, as curl does).
fn host_header(host: &str, port: u16) -> String {
    match (host.parse::<IpAddr>(), port) {
        (_, 80) => host.to_string(),
        (Ok(IpAddr::V6(ip)), p) => format!("[{ip}]:{p}"),
        (_, p) => format!("{host}:{p}"),
    }
}

/// The verdict on an answer.
pub fn judge(url: &str, want: u16, status: u16, body: &str) -> Check {
    if status == want {
        Ok(format!("GET {url}: {status}"))
    } else {
        let body = cut(body.trim(), 120);
        let tail = if body.is_empty() {
            String::new()
        } else {
            format!(": {body}")
        };
        Err(format!("GET {url}: status {status}, want {want}{tail}"))
    }
}

/// One probe check.
pub async fn check(round: Round<'_>, subject: &Subject, p: &HttpProbe, timeout: Duration) -> Check {
    match aim(p, &subject.domain)? {
        Aim::Tasks { port, host } => {
            let tasks = target::resolve(round.snapshot, &subject.stack, &p.service, round.reach)?;
            on_every_task(&tasks, |t| {
                let host = host.clone();
                async move {
                    let ip = t.address()?;
                    let addr = SocketAddr::new(ip, port);
                    let host = host.unwrap_or_else(|| host_header(&ip.to_string(), port));
                    let url = format!("http://{}{}", host_header(&ip.to_string(), port), p.path);
                    let (status, body) = get(addr, &host, &p.path, timeout)
                        .await
                        .map_err(|e| format!("GET {url}: {e}"))?;
                    judge(&url, p.status, status, &body)
                }
            })
            .await
        }
        Aim::Resolve {
            connect_host,
            connect_port,
            host,
        } => {
            let url = format!("http://{host}{} via {connect_host}:{connect_port}", p.path);
            let run = async {
                let addr = tokio::net::lookup_host((connect_host.as_str(), connect_port))
                    .await
                    .map_err(|e| format!("resolve {connect_host}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("resolve {connect_host}: no address"))?;
                get(addr, &host, &p.path, timeout).await
            };
            let (status, body) = tokio::time::timeout(timeout, run)
                .await
                .map_err(|_| format!("GET {url}: no answer within {timeout:?}"))?
                .map_err(|e| format!("GET {url}: {e}"))?;
            judge(&url, p.status, status, &body)
        }
    }
}

/// `GET path` on `addr` with `Host: host`, bounded by `timeout`: (status, start of the body).
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), String> {
    tokio::time::timeout(timeout, get_unbounded(addr, host, path))
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

async fn get_unbounded(addr: SocketAddr, host: &str, path: &str) -> Result<(u16, String), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let req = Request::get(path)
        .header("Host", host)
        .header("User-Agent", "hearth-probe")
        .header("Connection", "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad request: {e}"))?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string());
    let out = match resp {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while buf.len() < BODY_SNIPPET {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            buf.extend_from_slice(data);
                        }
                    }
                    _ => break,
                }
            }
            buf.truncate(BODY_SNIPPET);
            Ok((status, String::from_utf8_lossy(&buf).into_owned()))
        }
        Err(e) => Err(e),
    };
    driver.abort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(yaml: &str) -> HttpProbe {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn aim_tasks_or_resolve() {
        assert_eq!(
            aim(&probe("{service: app, port: 8080}"), "d.example"),
            Ok(Aim::Tasks {
                port: 8080,
                host: None
            })
        );
        assert_eq!(
            aim(
                &probe("{service: app, port: 8080, host: x.org}"),
                "d.example"
            ),
            Ok(Aim::Tasks {
                port: 8080,
                host: Some("x.org".into())
            })
        );
        assert_eq!(
            aim(
                &probe("{service: app, port: 80, address: '127.0.0.1:8443'}"),
                "d.example"
            ),
            Ok(Aim::Resolve {
                connect_host: "127.0.0.1".into(),
                connect_port: 8443,
                host: "d.example".into()
            }),
            "the deployment's domain by default"
        );
        assert_eq!(
            aim(
                &probe("{service: app, port: 80, address: proxy, host: x.org}"),
                "d.example"
            ),
            Ok(Aim::Resolve {
                connect_host: "proxy".into(),
                connect_port: 80,
                host: "x.org".into()
            })
        );
        assert!(aim(&probe("{service: app, port: 80, address: 'a:b'}"), "d").is_err());
        assert!(aim(&probe("{service: app, port: 80, address: a}"), "").is_err());
    }

    #[test]
    fn addresses_parse() {
        let ok = |s: &str| parse_address(s, 80).unwrap();
        assert_eq!(ok("127.0.0.1"), ("127.0.0.1".into(), 80));
        assert_eq!(ok("127.0.0.1:8080"), ("127.0.0.1".into(), 8080));
        assert_eq!(ok("http://proxy:81/x/y"), ("proxy".into(), 81));
        assert_eq!(ok("[::1]:81"), ("::1".into(), 81));
        assert_eq!(ok("[::1]"), ("::1".into(), 80));
        assert_eq!(ok("::1"), ("::1".into(), 80));
        for bad in ["", ":80", "https://x", "h:99999", "[::1", "[::1]x"] {
            assert!(parse_address(bad, 80).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_headers_and_verdicts() {
        assert_eq!(host_header("10.0.0.1", 80), "10.0.0.1");
        assert_eq!(host_header("10.0.0.1", 8080), "10.0.0.1:8080");
        assert_eq!(host_header("fd00::1", 8080), "[fd00::1]:8080");
        assert_eq!(judge("u", 200, 200, "ok"), Ok("GET u: 200".into()));
        assert_eq!(
            judge("u", 200, 404, "not found\n"),
            Err("GET u: status 404, want 200: not found".into())
        );
        assert_eq!(
            judge("u", 204, 200, ""),
            Err("GET u: status 200, want 204".into())
        );
    }

    #[tokio::test]
    async fn get_against_a_local_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown")
                .await
                .unwrap();
            req
        });
        let (status, body) = get(addr, "app.example", "/health", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!((status, body.as_str()), (503, "down"));
        let req = server.await.unwrap();
        assert!(req.starts_with("GET /health HTTP/1.1\r\n"), "{req}");
        assert!(
            req.to_lowercase().contains("host: app.example\r\n"),
            "{req}"
        );

        // Nobody answering: bounded by the timeout.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let start = std::time::Instant::now();
        let err = get(
            silent.local_addr().unwrap(),
            "x",
            "/",
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(err.contains("no answer within"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}

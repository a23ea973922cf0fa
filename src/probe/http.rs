//! The `http` probe: `GET <path>`, pass on the expected status.
//!
//! Two ways to aim it (decided by [`aim`], pure):
//! - no `address:` — to `port` on every running task's reachable address (see `target`);
//!   `Host:` is `host:` when set, else `<task ip>:<port>`;
//! - `address:` set — like `curl --resolve`: the URL `http://<host or deployment domain><path>` is
//!   sent to `address` (`host:port`, `host`, or a URL base `http://host:port`; the port defaults to
//!   the probe's `port`) with that `Host:` header; one target, whatever the tasks. With a URL base
//!   `https://host[:port]` (port 443 by default) the request goes over TLS, the certificate checked
//!   for the Host name (also the SNI) against the system roots (`SSL_CERT_FILE` replaces them), so
//!   an app behind Traefik is probed as its users reach it.
//!
//! Requests go through [`crate::http_client`] (reqwest), one per connection, redirects not
//! followed. The whole check is bounded by the timeout.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use std::path::Path;

use super::{Check, ProbeError, Round, Subject, cut, on_every_task, target};
use crate::manifest::HttpProbe;

/// Most body bytes read for a failure message.
const BODY_SNIPPET: usize = 512;

/// Where an `http` probe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aim {
    /// Every running task, on `port`, with this `Host:` (None: `<ip>:<port>`).
    Tasks { port: u16, host: Option<String> },
    /// One address (`connect` is `host:port`), `Host:` header and URL host `host`; over TLS when
    /// `https`.
    Resolve {
        connect_host: String,
        connect_port: u16,
        host: String,
        https: bool,
    },
}

/// Decides where the probe goes; see the module doc.
fn aim(p: &HttpProbe, domain: &str) -> Result<Aim, ProbeError> {
    match &p.address {
        None => Ok(Aim::Tasks {
            port: p.port,
            host: p.host.clone(),
        }),
        Some(address) => {
            let https = address.trim().starts_with("https://");
            let (connect_host, connect_port) = if https {
                let plain = address.trim().replacen("https://", "http://", 1);
                parse_address(&plain, 443)?
            } else {
                parse_address(address, p.port)?
            };
            let host = p.host.clone().unwrap_or_else(|| domain.to_string());
            if host.is_empty() {
                return Err(ProbeError::NoHost);
            }
            Ok(Aim::Resolve {
                connect_host,
                connect_port,
                host,
                https,
            })
        }
    }
}

/// `host:port`, `host`, `[v6]:port`, `v6` or `http://host:port[/...]` -> (host, port), the port
/// defaulting to `default_port`.
pub(crate) fn parse_address(address: &str, default_port: u16) -> Result<(String, u16), ProbeError> {
    let bad = |why: &'static str| ProbeError::BadAddress {
        address: address.to_string(),
        why,
    };
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
    match aim(p, &subject.domain).map_err(|e| e.to_string())? {
        Aim::Tasks { port, host } => {
            let tasks = target::resolve(round.snapshot, &subject.stack, &p.service, round.reach)
                .map_err(|e| e.to_string())?;
            on_every_task(&tasks, |t| {
                let host = host.clone();
                async move {
                    let ip = t.address().map_err(|e| e.to_string())?;
                    let addr = SocketAddr::new(ip, port);
                    let host = host.unwrap_or_else(|| host_header(&ip.to_string(), port));
                    let url = format!("http://{}{}", host_header(&ip.to_string(), port), p.path);
                    let (status, body) = get(addr, false, &host, &p.path, timeout, None)
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
            https,
        } => {
            let scheme = if https { "https" } else { "http" };
            let url = format!(
                "{scheme}://{host}{} via {connect_host}:{connect_port}",
                p.path
            );
            let run = async {
                let addr = tokio::net::lookup_host((connect_host.as_str(), connect_port))
                    .await
                    .map_err(|e| format!("resolve {connect_host}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("resolve {connect_host}: no address"))?;
                get(addr, https, &host, &p.path, timeout, None).await
            };
            let (status, body) = tokio::time::timeout(timeout, run)
                .await
                .map_err(|_| format!("GET {url}: no answer within {timeout:?}"))?
                .map_err(|e| format!("GET {url}: {e}"))?;
            judge(&url, p.status, status, &body)
        }
    }
}

/// `GET path` on `addr` with `Host: host` (over TLS when `https`, the certificate checked for
/// `host`'s name against the system roots plus `ca_file`), bounded by `timeout`: (status, start of
/// the body).
pub async fn get(
    addr: SocketAddr,
    https: bool,
    host: &str,
    path: &str,
    timeout: Duration,
    ca_file: Option<&Path>,
) -> Result<(u16, String), String> {
    let name = host_name(host);
    let req = if https {
        // Connect to `addr` whatever `name` resolves to (curl --resolve); the URL keeps the name
        // for SNI and certificate checks.
        let url = match name.parse::<IpAddr>() {
            Ok(_) => format!("https://{}{path}", SocketAddr::new(addr.ip(), addr.port())),
            Err(_) => format!("https://{name}:{}{path}", addr.port()),
        };
        let client = crate::http_client::builder(ca_file)
            .map_err(|e| e.to_string())?
            .resolve(name, addr)
            .build()
            .map_err(|e| crate::http_client::chain(&e))?;
        client.get(url)
    } else {
        let client = crate::http_client::shared().map_err(|e| e.to_string())?;
        client.get(format!("http://{addr}{path}"))
    };
    let req = req
        .header("Host", host)
        .header("User-Agent", "hearth-probe");
    let a = crate::http_client::get(req, timeout, BODY_SNIPPET)
        .await
        .map_err(|e| e.to_string())?;
    Ok((a.status, String::from_utf8_lossy(&a.body).into_owned()))
}

/// The name part of a `Host:` value (`x.org:8443` -> `x.org`, `[fd00::1]:80` -> `fd00::1`).
fn host_name(host: &str) -> &str {
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
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
                host: "d.example".into(),
                https: false,
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
                host: "x.org".into(),
                https: false,
            })
        );
        assert_eq!(
            aim(
                &probe("{service: app, port: 80, address: 'https://traefik'}"),
                "d.example"
            ),
            Ok(Aim::Resolve {
                connect_host: "traefik".into(),
                connect_port: 443,
                host: "d.example".into(),
                https: true,
            })
        );
        assert_eq!(
            aim(
                &probe("{service: app, port: 80, address: 'https://10.0.0.9:8443/'}"),
                "d.example"
            ),
            Ok(Aim::Resolve {
                connect_host: "10.0.0.9".into(),
                connect_port: 8443,
                host: "d.example".into(),
                https: true,
            })
        );
        assert_eq!(
            aim(&probe("{service: app, port: 80, address: 'a:b'}"), "d")
                .unwrap_err()
                .to_string(),
            "address \"a:b\": bad port"
        );
        assert_eq!(
            aim(&probe("{service: app, port: 80, address: a}"), "")
                .unwrap_err()
                .to_string(),
            "no host: set `host:` or give the deployment a domain"
        );
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
        assert_eq!(host_name("x.org:8443"), "x.org");
        assert_eq!(host_name("x.org"), "x.org");
        assert_eq!(host_name("[fd00::1]:8080"), "fd00::1");
        assert_eq!(host_name("10.0.0.1:80"), "10.0.0.1");
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
        let (status, body) = get(
            addr,
            false,
            "app.example",
            "/health",
            Duration::from_secs(2),
            None,
        )
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
            false,
            "x",
            "/",
            Duration::from_millis(300),
            None,
        )
        .await
        .unwrap_err();
        assert!(err.contains("no answer within"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}

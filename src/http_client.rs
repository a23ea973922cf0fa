//! hearth's outgoing HTTP(S) client: `hearth status`, `hearth healthcheck` and `http` probes use
//! reqwest with rustls on ring (the one crypto provider of the build). Server certificates are
//! checked against the system's roots (which `SSL_CERT_FILE` / `SSL_CERT_DIR` can replace) plus,
//! where a command offers it, an extra CA file (`--cacert`). Redirects are not followed: a probe's
//! expected status is compared with the first answer. (The Docker API client in `swarm` is
//! separate: it talks to a unix socket or Docker's TLS port.)

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use url::Url;

/// What went wrong building a client, reading a URL or exchanging with a server. The texts are
/// the messages `hearth status`, `hearth healthcheck` and probe results show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The CA file (`--cacert`, a probe's `caFile`) could not be read.
    #[error("{}: cannot read: {reason}", .path.display())]
    CaUnreadable { path: PathBuf, reason: String },
    /// The CA file is not PEM.
    #[error("{}: not PEM certificates: {reason}", .path.display())]
    CaNotPem { path: PathBuf, reason: String },
    /// The CA file holds no certificate.
    #[error("{}: no certificate in the file", .path.display())]
    CaEmpty { path: PathBuf },
    /// reqwest could not build the client.
    #[error("HTTP client: {0}")]
    Client(String),
    /// `url` (given as `what`) is not a URL.
    #[error("{what} {url:?}: {reason}")]
    BadUrl {
        what: String,
        url: String,
        reason: String,
    },
    /// `url` has no host.
    #[error("{what} {url:?}: no host")]
    NoHost { what: String, url: String },
    /// `url` is neither `http://` nor `https://`.
    #[error("{what} {url:?}: only http:// and https:// URLs are supported, not {scheme}://")]
    Scheme {
        what: String,
        url: String,
        scheme: String,
    },
    /// The request failed (connect, TLS, reading the body): the error chain.
    #[error("{0}")]
    Exchange(String),
    /// No complete answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A client builder with hearth's defaults and, when given, the CA certificates (PEM) in
/// `ca_file` trusted besides the system's roots.
pub fn builder(ca_file: Option<&Path>) -> Result<reqwest::ClientBuilder, HttpError> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0);
    if let Some(p) = ca_file {
        let pem = std::fs::read(p).map_err(|e| HttpError::CaUnreadable {
            path: p.to_path_buf(),
            reason: e.to_string(),
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| HttpError::CaNotPem {
                path: p.to_path_buf(),
                reason: chain(&e),
            })?;
        if certs.is_empty() {
            return Err(HttpError::CaEmpty {
                path: p.to_path_buf(),
            });
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    Ok(b)
}

/// A client trusting `ca_file` besides the system roots.
pub fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, HttpError> {
    builder(ca_file)?
        .build()
        .map_err(|e| HttpError::Client(chain(&e)))
}

/// The process-wide client with the system roots (built once: loading the roots takes a while).
pub fn shared() -> Result<&'static reqwest::Client, HttpError> {
    static CLIENT: OnceLock<Result<reqwest::Client, HttpError>> = OnceLock::new();
    CLIENT
        .get_or_init(|| client(None))
        .as_ref()
        .map_err(Clone::clone)
}

/// An `http://` or `https://` URL; anything else is refused with a message naming `what`.
pub fn parse_url(what: &str, s: &str) -> Result<Url, HttpError> {
    let url = Url::parse(s).map_err(|e| HttpError::BadUrl {
        what: what.to_string(),
        url: s.to_string(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(url),
        "http" | "https" => Err(HttpError::NoHost {
            what: what.to_string(),
            url: s.to_string(),
        }),
        other => Err(HttpError::Scheme {
            what: what.to_string(),
            url: s.to_string(),
            scheme: other.to_string(),
        }),
    }
}

/// `base` with `path` (absolute, may carry a query) appended under its path prefix:
/// `https://h/hearth/` + `/api/v1/x` -> `https://h/hearth/api/v1/x`.
pub fn under(base: &Url, path: &str) -> Url {
    let mut u = base.clone();
    let prefix = base.path().trim_end_matches('/');
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    u.set_path(&format!("{prefix}{p}"));
    u.set_query((!q.is_empty()).then_some(q));
    u
}

/// An answer: status and the start of the body (at most `max` bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// GETs `req` with `timeout` for the whole exchange, reading at most `max` body bytes.
pub async fn get(
    req: reqwest::RequestBuilder,
    timeout: Duration,
    max: usize,
) -> Result<Answer, HttpError> {
    let exchange = |e: reqwest::Error| HttpError::Exchange(chain(&e));
    let run = async {
        let mut resp = req.send().await.map_err(exchange)?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while body.len() < max {
            match resp.chunk().await.map_err(exchange)? {
                Some(c) => body.extend_from_slice(&c),
                None => break,
            }
        }
        body.truncate(max);
        Ok(Answer { status, body })
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| HttpError::Timeout(timeout))?
}

/// An error with its causes (`a: b: c`), without repeating the URL reqwest puts in front.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        let s = match err.downcast_ref::<reqwest::Error>() {
            Some(r) if r.url().is_some() => s
                .split_once(" for url (")
                .map(|(a, _)| a.to_string())
                .unwrap_or(s),
            _ => s,
        };
        if parts.last() != Some(&s) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("--url", "https://h.example/hearth/").expect("ok");
        assert_eq!(
            under(&u, "/api/v1/deployments").as_str(),
            "https://h.example/hearth/api/v1/deployments"
        );
        let u = parse_url("--url", "http://127.0.0.1:9480").expect("ok");
        assert_eq!(
            under(&u, "/healthz").as_str(),
            "http://127.0.0.1:9480/healthz"
        );
        assert_eq!(under(&u, "/x?a=1").as_str(), "http://127.0.0.1:9480/x?a=1");
        assert!(
            parse_url("--url", "ftp://h")
                .unwrap_err()
                .to_string()
                .contains("only http:// and https://")
        );
        assert!(parse_url("--url", "127.0.0.1:9480").is_err());
        assert!(parse_url("--url", "http://").is_err());
    }

    #[test]
    fn messages_name_what_and_the_url() {
        let e = |s| parse_url("--url", s).unwrap_err().to_string();
        assert_eq!(
            e("ftp://h"),
            "--url \"ftp://h\": only http:// and https:// URLs are supported, not ftp://"
        );
        assert_eq!(e("http://"), "--url \"http://\": empty host");
        assert_eq!(
            HttpError::Timeout(Duration::from_secs(2)).to_string(),
            "no answer within 2s"
        );
        let path = PathBuf::from("/etc/ca.pem");
        for (e, want) in [
            (
                HttpError::CaUnreadable {
                    path: path.clone(),
                    reason: "denied".into(),
                },
                "/etc/ca.pem: cannot read: denied",
            ),
            (
                HttpError::CaNotPem {
                    path: path.clone(),
                    reason: "bad".into(),
                },
                "/etc/ca.pem: not PEM certificates: bad",
            ),
            (
                HttpError::CaEmpty { path },
                "/etc/ca.pem: no certificate in the file",
            ),
            (HttpError::Client("x".into()), "HTTP client: x"),
            (HttpError::Exchange("a: b".into()), "a: b"),
        ] {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, "not a certificate\n").expect("write");
        assert!(
            builder(Some(&f))
                .unwrap_err()
                .to_string()
                .contains("no certificate")
        );
        assert!(
            builder(Some(&dir.path().join("missing.pem")))
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
    }
}

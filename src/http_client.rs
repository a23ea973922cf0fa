//! hearth's outgoing HTTP(S) client: `hearth status`, `hearth healthcheck` and `http` probes use
//! reqwest with rustls on ring (the one crypto provider of the build). Server certificates are
//! checked against the system's roots (which `SSL_CERT_FILE` / `SSL_CERT_DIR` can replace) plus,
//! where a command offers it, an extra CA file (`--cacert`). Redirects are not followed: a probe's
//! expected status is compared with the first answer. (The Docker API client in `swarm` is
//! separate: it talks to a unix socket or Docker's TLS port.)

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use url::Url;

/// A client builder with hearth's defaults and, when given, the CA certificates (PEM) in
/// `ca_file` trusted besides the system's roots.
pub fn builder(ca_file: Option<&Path>) -> Result<reqwest::ClientBuilder, String> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0);
    if let Some(p) = ca_file {
        let pem = std::fs::read(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{}: not PEM certificates: {}", p.display(), chain(&e)))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate in the file", p.display()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    Ok(b)
}

/// A client trusting `ca_file` besides the system roots.
pub fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    builder(ca_file)?
        .build()
        .map_err(|e| format!("HTTP client: {}", chain(&e)))
}

/// The process-wide client with the system roots (built once: loading the roots takes a while).
pub fn shared() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| client(None))
        .as_ref()
        .map_err(Clone::clone)
}

/// An `http://` or `https://` URL; anything else is refused with a message naming `what`.
pub fn parse_url(what: &str, s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("{what} {s:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(url),
        "http" | "https" => Err(format!("{what} {s:?}: no host")),
        other => Err(format!(
            "{what} {s:?}: only http:// and https:// URLs are supported, not {other}://"
        )),
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
) -> Result<Answer, String> {
    let run = async {
        let mut resp = req.send().await.map_err(|e| chain(&e))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while body.len() < max {
            match resp.chunk().await.map_err(|e| chain(&e))? {
                Some(c) => body.extend_from_slice(&c),
                None => break,
            }
        }
        body.truncate(max);
        Ok(Answer { status, body })
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
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
                .contains("only http:// and https://")
        );
        assert!(parse_url("--url", "127.0.0.1:9480").is_err());
        assert!(parse_url("--url", "http://").is_err());
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, "not a certificate\n").expect("write");
        assert!(builder(Some(&f)).unwrap_err().contains("no certificate"));
        assert!(
            builder(Some(&dir.path().join("missing.pem")))
                .unwrap_err()
                .contains("cannot read")
        );
    }
}

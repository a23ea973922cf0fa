//! How hearth reaches a Docker daemon: a Unix socket, plain HTTP, or TLS with a client
//! certificate, decided from the host and the environment the way the docker CLI decides it (used
//! by the client and the raw reads; see docs/architecture.md).

/// How [`Client::connect`] reaches the daemon, decided from the host and the environment the way
/// the docker CLI decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A Unix socket path.
    Unix(String),
    /// Plain HTTP to `tcp://host:port`.
    Http(String),
    /// HTTPS with a client certificate: `key.pem`, `cert.pem`, `ca.pem` in `cert_dir`; the server
    /// certificate is verified against `ca.pem`.
    Tls {
        addr: String,
        cert_dir: std::path::PathBuf,
    },
}

/// The environment [`transport`] reads: `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`, `HOME`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsEnv {
    pub tls_verify: Option<String>,
    pub cert_path: Option<String>,
    pub home: Option<String>,
}

impl TlsEnv {
    /// The process environment.
    pub fn from_process() -> TlsEnv {
        TlsEnv {
            tls_verify: std::env::var("DOCKER_TLS_VERIFY").ok(),
            cert_path: std::env::var("DOCKER_CERT_PATH").ok(),
            home: std::env::var("HOME").ok(),
        }
    }
}

/// Pure: how to reach `host`. As the docker CLI: a non-empty `DOCKER_TLS_VERIFY` (or an `https://`
/// host) means TLS with the client certificate in `DOCKER_CERT_PATH` (default `~/.docker`).
pub fn transport(host: &str, env: &TlsEnv) -> Transport {
    let tls = env.tls_verify.as_deref().is_some_and(|v| !v.is_empty());
    let cert_dir = || match env.cert_path.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::Path::new(env.home.as_deref().unwrap_or("/root")).join(".docker"),
    };
    if let Some(path) = host.strip_prefix("unix://") {
        Transport::Unix(path.to_string())
    } else if host.starts_with("https://") || (tls && host.starts_with("tcp://")) {
        Transport::Tls {
            addr: host.to_string(),
            cert_dir: cert_dir(),
        }
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Transport::Http(host.to_string())
    } else {
        Transport::Unix(host.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(verify: Option<&str>, cert: Option<&str>) -> TlsEnv {
        TlsEnv {
            tls_verify: verify.map(str::to_string),
            cert_path: cert.map(str::to_string),
            home: Some("/home/h".into()),
        }
    }

    #[test]
    fn unix_and_plain_tcp_without_tls_verify() {
        let e = env(None, Some("/certs"));
        assert_eq!(
            transport("unix:///var/run/docker.sock", &e),
            Transport::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            transport("tcp://m:2375", &e),
            Transport::Http("tcp://m:2375".into())
        );
        assert_eq!(
            transport("/run/d.sock", &e),
            Transport::Unix("/run/d.sock".into())
        );
        // Empty DOCKER_TLS_VERIFY is off, as for the docker CLI.
        assert_eq!(
            transport("tcp://m:2375", &env(Some(""), None)),
            Transport::Http("tcp://m:2375".into())
        );
    }

    #[test]
    fn tls_verify_uses_the_cert_path_or_home() {
        assert_eq!(
            transport("tcp://m:2376", &env(Some("1"), Some("/certs"))),
            Transport::Tls {
                addr: "tcp://m:2376".into(),
                cert_dir: "/certs".into()
            }
        );
        assert_eq!(
            transport("tcp://m:2376", &env(Some("1"), None)),
            Transport::Tls {
                addr: "tcp://m:2376".into(),
                cert_dir: "/home/h/.docker".into()
            }
        );
        assert!(matches!(
            transport("https://m:2376", &env(None, None)),
            Transport::Tls { .. }
        ));
        // A unix socket never uses TLS.
        assert!(matches!(
            transport("unix:///s", &env(Some("1"), None)),
            Transport::Unix(_)
        ));
    }
}

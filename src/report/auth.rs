//! Who may read the reporting endpoints: bearer tokens for the API and status page (and, when
//! configured, `/metrics`), and the rule that refuses an address off loopback without one. See
//! `docs/endpoints.md`.
//!
//! - `/healthz` and `/readyz` are always open (liveness and readiness checks carry no token);
//! - `/metrics` needs `Authorization: Bearer <metrics token>` when `--metrics-token-file` is given;
//! - everything else (the API, the status page) needs `Authorization: Bearer <api token>` when
//!   `--api-token-file` is given; `POST /api/v1/source/refresh` keeps its own token.
//!
//! Tokens are compared in constant time.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The tokens the server checks (none: open).
#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub api: Option<String>,
    pub metrics: Option<String>,
}

/// Whether `given` equals `token`, in time that depends only on their lengths.
pub(crate) fn same_token(given: &str, token: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Why a token could not be read or an address may not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The token file holds only whitespace.
    #[error("{}: the {what} file is empty", .path.display())]
    EmptyToken {
        path: std::path::PathBuf,
        what: &'static str,
    },
    /// The token file could not be read.
    #[error("{}: cannot read the {what}: {reason}", .path.display())]
    UnreadableToken {
        path: std::path::PathBuf,
        what: &'static str,
        reason: String,
    },
    /// `--listen` is off loopback, without a token and without `--insecure-listen`.
    #[error(
        "--listen {addr} is not a loopback address: the API and status page would be readable \
         from the network without a token. Give --api-token-file FILE (or \
         HEARTH_API_TOKEN_FILE), or --insecure-listen to serve them open on purpose"
    )]
    OpenListen { addr: std::net::SocketAddr },
}

/// Whether hearth may listen on `addr`: off loopback the API and page need a token, unless the
/// operator said `--insecure-listen`.
pub fn check_listen(
    addr: std::net::SocketAddr,
    api_token: bool,
    insecure: bool,
) -> Result<(), AuthError> {
    if addr.ip().is_loopback() || api_token || insecure {
        Ok(())
    } else {
        Err(AuthError::OpenListen { addr })
    }
}

/// Reads a token file (`what` names it in messages): its content without surrounding
/// whitespace, never empty.
pub fn read_token(path: &std::path::Path, what: &'static str) -> Result<String, AuthError> {
    match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => Err(AuthError::EmptyToken {
            path: path.to_path_buf(),
            what,
        }),
        Err(e) => Err(AuthError::UnreadableToken {
            path: path.to_path_buf(),
            what,
            reason: e.to_string(),
        }),
    }
}

/// The token `path` needs, if any.
fn needed<'a>(auth: &'a Auth, path: &str) -> Option<&'a str> {
    match path {
        "/healthz" | "/readyz" | "/api/v1/source/refresh" => None,
        "/metrics" => auth.metrics.as_deref(),
        _ => auth.api.as_deref(),
    }
}

/// The middleware: 401 with `WWW-Authenticate: Bearer` when a needed token is missing or wrong.
pub(crate) async fn require(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    let Some(token) = needed(&auth, req.uri().path()) else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if same_token(given.trim(), token) {
        return next.run(req).await;
    }
    let body = if req.uri().path().starts_with("/api/") {
        serde_json::json!({"error": "Unauthorized", "message": "wrong or missing bearer token"})
            .to_string()
    } else {
        "wrong or missing bearer token (Authorization: Bearer <token>)\n".to_string()
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_messages_name_the_file_and_what_it_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("token");
        std::fs::write(&f, " \n").expect("write");
        assert_eq!(
            read_token(&f, "API token").unwrap_err().to_string(),
            format!("{}: the API token file is empty", f.display())
        );
        let missing = dir.path().join("missing");
        let e = read_token(&missing, "metrics token")
            .unwrap_err()
            .to_string();
        let prefix = format!("{}: cannot read the metrics token: ", missing.display());
        assert!(e.starts_with(&prefix), "{e}");
    }

    #[test]
    fn loopback_is_open_elsewhere_a_token_or_insecure_is_needed() {
        let a = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert!(check_listen(a("127.0.0.1:9480"), false, false).is_ok());
        assert!(check_listen(a("127.0.0.2:9480"), false, false).is_ok());
        assert!(check_listen(a("[::1]:9480"), false, false).is_ok());
        let e = check_listen(a("0.0.0.0:9480"), false, false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--listen 0.0.0.0:9480 is not a loopback address: the API and status page would be \
             readable from the network without a token. Give --api-token-file FILE (or \
             HEARTH_API_TOKEN_FILE), or --insecure-listen to serve them open on purpose"
        );
        assert!(check_listen(a("0.0.0.0:9480"), true, false).is_ok());
        assert!(check_listen(a("10.0.0.1:9480"), false, true).is_ok());
    }

    #[test]
    fn which_paths_need_which_token() {
        let auth = Auth {
            api: Some("a".into()),
            metrics: None,
        };
        for p in ["/healthz", "/readyz", "/metrics", "/api/v1/source/refresh"] {
            assert_eq!(needed(&auth, p), None, "{p}");
        }
        for p in [
            "/",
            "/deployments/x",
            "/api/v1/deployments",
            "/api/v1/source",
            "/nope",
        ] {
            assert_eq!(needed(&auth, p), Some("a"), "{p}");
        }
        let m = Auth {
            api: None,
            metrics: Some("m".into()),
        };
        assert_eq!(needed(&m, "/metrics"), Some("m"));
        assert_eq!(needed(&m, "/api/v1/deployments"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("", "abc"));
    }
}

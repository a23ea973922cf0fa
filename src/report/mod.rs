//! Reporting: the HTTP server `hearth run --listen` starts next to the controller, reading the
//! same [`Shared`] state. Routes:
//!
//! - `/metrics`: Prometheus text format ([`metrics`]), computed at scrape time;
//! - `/healthz`: 200 while the process serves; `/readyz`: 503 until Docker is connected AND a
//!   full resync completed, then 200;
//! - `/api/v1/deployments`, `/api/v1/deployments/{name}`: read-only JSON ([`api`]), a JSON
//!   error with 404 for an unknown name;
//! - `/` and `/deployments/{name}`: the server-rendered status page ([`html`]).
//!
//! Off loopback, the API and page need a bearer token ([`auth`]).
//!
//! Nothing here writes to the controller's state, except that a scrape moves queued reconcile
//! durations into the histogram. Secrets never reach this module: [`Shared`] holds names,
//! phases, messages and drift of non-secret fields only.

pub mod api;
pub mod auth;
pub mod html;
pub mod metrics;
pub mod rules;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::controller::Shared;

/// The default `--listen` address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9480";

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    metrics: Arc<metrics::Metrics>,
}

/// The routes, bound to `shared`, open to every caller.
pub fn router(shared: Arc<Shared>) -> Router {
    router_with(shared, auth::Auth::default())
}

/// The routes, bound to `shared`, checking the tokens of `auth`.
pub fn router_with(shared: Arc<Shared>, auth: auth::Auth) -> Router {
    let state = AppState {
        metrics: Arc::new(metrics::Metrics::new(shared.clone())),
        shared,
    };
    Router::new()
        .route("/", get(pool_page))
        .route("/deployments/{name}", get(deployment_page))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/deployments", get(api_list))
        .route("/api/v1/deployments/{name}", get(api_get))
        .route("/api/v1/source", get(api_source))
        .route("/api/v1/source/refresh", axum::routing::post(api_refresh))
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(auth, auth::require))
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves the routes on `listener`, open to every caller, until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, shared, auth::Auth::default(), shutdown).await
}

/// Serves the routes on `listener`, checking the tokens of `auth`, until `shutdown` resolves.
/// Warns when the API is open on an address off loopback (`--insecure-listen`).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    auth: auth::Auth,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            "status page, API and metrics on http://{addr}/ (API and page: {}; metrics: {})",
            if auth.api.is_some() {
                "bearer token"
            } else {
                "open"
            },
            if auth.metrics.is_some() {
                "bearer token"
            } else {
                "open"
            }
        );
        if !addr.ip().is_loopback() && auth.api.is_none() {
            tracing::warn!(
                "listening on {addr}, not a loopback address, without --api-token-file: the \
                 status page and API are readable from the network"
            );
        }
    }
    axum::serve(listener, router_with(shared, auth))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    // Encoding reads locks the controller also takes: keep it off the async workers.
    let m = s.metrics.clone();
    let text = tokio::task::spawn_blocking(move || m.render())
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    let docker = s.shared.is_docker_up();
    let synced = s.shared.synced.load(Ordering::SeqCst);
    if docker && synced {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let why = match (docker, synced) {
            (false, _) => "not connected to Docker\n",
            _ => "first resync not complete\n",
        };
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    }
}

async fn api_list(State(s): State<AppState>) -> Json<api::DeploymentList> {
    Json(api::list(&s.shared))
}

fn api_error(status: StatusCode, error: &str, message: String) -> Response {
    (
        status,
        Json(api::ApiError {
            error: error.into(),
            message,
        }),
    )
        .into_response()
}

async fn api_get(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match api::get(&s.shared, &name) {
        Some(d) => Json(d).into_response(),
        None => api_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no deployment named {name:?}"),
        ),
    }
}

async fn pool_page(State(s): State<AppState>) -> Html<String> {
    Html(html::pool_page(&api::list(&s.shared), SystemTime::now()))
}

async fn deployment_page(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match api::get(&s.shared, &name) {
        Some(d) => Html(html::deployment_page(&d, SystemTime::now())).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Html(html::not_found_page(&format!(
                "no deployment named {name:?}"
            ))),
        )
            .into_response(),
    }
}

/// Where the manifests come from: remote (redacted), applied and rejected revisions, last error.
async fn api_source(State(state): State<AppState>) -> Response {
    let report = state.shared.source.read().expect("source").clone();
    Json(report).into_response()
}

/// Triggers a fetch of the git source now. Off (404) unless a token is configured; the request
/// must carry `Authorization: Bearer <token>`.
async fn api_refresh(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let token = state.shared.refresh_token.read().expect("token").clone();
    let Some(token) = token else {
        return api_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "source refresh is off: start hearth with --refresh-token-file".into(),
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Constant-time comparison: the token must not leak through timing.
    let same = auth::same_token(given, &token);
    if !same {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "wrong or missing token".into(),
        );
    }
    state.shared.refresh.notify_one();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"refresh": "requested"})),
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        api_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no such endpoint: {}", uri.path()),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            Html(html::not_found_page(&format!("no page at {}", uri.path()))),
        )
            .into_response()
    }
}

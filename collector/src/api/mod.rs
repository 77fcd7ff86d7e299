//! The collector's HTTP API (axum): ingest for agents, the ops API, customer SLA, health,
//! Prometheus metrics and the OpenAPI document. Every endpoint but `/healthz` and `/readyz`
//! needs a bearer token; errors are JSON `{"error": {"code", "message"}}` with the right status.
//!
//! Handlers validate and translate; storage is `store`, SLA arithmetic is `sla`.

pub mod ingest;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod sla_limit;

use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::auth::{Role, hash_token};
use crate::config::CollectorConfig;
use crate::store::Store;

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<CollectorConfig>,
    pub metrics: Arc<metrics::Metrics>,
}

/// A refusal or failure, rendered as `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// The role of the request's bearer token.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Role, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized("missing bearer token"));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or_else(|| unauthorized("malformed Authorization header (expected: Bearer TOKEN)"))?;
    let hash = hash_token(token);
    let row = state.store.token_by_hash(&hash).await.map_err(|e| {
        state.metrics.store_error();
        ApiError::internal(format!("token lookup failed: {e}"))
    })?;
    // The store finds the row by the token's SHA-256 (an index lookup reveals at most the
    // hash's prefix, never the token); nothing compares secrets byte by byte in memory.
    match row {
        Some(t) if !t.revoked => {
            Role::parse(&t.role).map_err(|_| ApiError::internal("stored token has an invalid role"))
        }
        Some(_) => Err(unauthorized("token revoked")),
        None => Err(unauthorized("unknown token")),
    }
}

/// Refuses unless `role` is one of `allowed` (ops is always allowed).
pub fn require(role: &Role, allowed: &[Role]) -> Result<(), ApiError> {
    if *role == Role::Ops || allowed.contains(role) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("role {} may not use this endpoint", role.as_string()),
        ))
    }
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn metrics_handler(
    State(state): State<AppState>,
    ConnectInfo(crate::serve::PeerAddr(peer)): ConnectInfo<crate::serve::PeerAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let open = state.config.server.metrics_open_on_loopback && peer.ip().is_loopback();
    if !open {
        let role = authenticate(&state, &headers).await?;
        require(&role, &[])?;
    }
    let body = state.metrics.render(&state).await;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let server = &state.config.server;
    let sla_limiter = sla_limit::SlaLimiter::new(
        server.sla_max_concurrent,
        server.sla_max_concurrent_per_token,
    );
    router_with_sla_limiter(state, sla_limiter)
}

/// The whole API, counting SLA evaluations in `sla_limiter` (which a test may hold permits of).
pub fn router_with_sla_limiter(state: AppState, sla_limiter: Arc<sla_limit::SlaLimiter>) -> Router {
    let max_body = state.config.server.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .route(
            "/api/v1/ingest",
            post(ingest::ingest).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/agents", get(ops::agents))
        .route("/api/v1/streams", get(ops::streams))
        .route("/api/v1/calls/{call_id}", get(ops::call))
        .route(
            "/api/v1/customers/{id}/sla",
            get(ops::sla).layer(axum::Extension(sla_limiter)),
        )
        .route("/api/v1/openapi.json", get(openapi::document))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Serves plain HTTP until `shutdown` resolves (`serve::Server` with this state and no TLS).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = crate::serve::Server::start_with_state(state, None, listener, shutdown)
        .await
        .map_err(std::io::Error::other)?;
    handle.wait().await
}

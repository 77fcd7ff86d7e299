//! The collector's HTTP API (axum): ingest for agents, the ops API, customer SLA, health,
//! Prometheus metrics and the OpenAPI document. Every endpoint but `/healthz` and `/readyz`
//! needs a bearer token; errors are JSON `{"error": {"code", "message"}}` with the right status.
//!
//! Handlers validate and translate; storage is `store`, SLA arithmetic is `sla`.

pub mod access_log;
pub mod alerts;
pub mod calls;
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

use crate::auth::{AgentBinding, Principal, Role, bearer_token, hash_token};
use crate::config::LiveConfig;
use crate::store::Store;

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// Replaced whole on SIGHUP (customers); take one `current()` per request.
    pub config: LiveConfig,
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

/// Successful authentications of one token are written to the store at most this often.
pub const LAST_USED_INTERVAL_NS: i64 = 60_000_000_000;

/// The role of the request's bearer token.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Role, ApiError> {
    authenticate_principal(state, headers)
        .await
        .map(|principal| principal.role)
}

/// Who the request's bearer token is: its id, role and agent binding. Tells the access log
/// the token id, or why it was refused; records the token's last use (at most once a minute).
pub async fn authenticate_principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let refused = |m: &str| {
        access_log::note_refusal(m);
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
    };
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(refused(if headers.contains_key(header::AUTHORIZATION) {
            "more than one Authorization header"
        } else {
            "missing bearer token"
        }));
    };
    let token = value
        .to_str()
        .map_err(|_| "malformed Authorization header (expected: Bearer TOKEN)")
        .and_then(bearer_token)
        .map_err(refused)?;
    let hash = hash_token(token);
    let row = state.store.token_by_hash(&hash).await.map_err(|e| {
        state.metrics.store_error();
        ApiError::internal(format!("token lookup failed: {e}"))
    })?;
    // The store finds the row by the token's SHA-256 (an index lookup reveals at most the
    // hash's prefix, never the token); nothing compares secrets byte by byte in memory.
    let row = match row {
        Some(t) if !t.revoked => t,
        Some(t) => {
            access_log::note_token(&t.id);
            return Err(refused("token revoked"));
        }
        None => return Err(refused("unknown token")),
    };
    access_log::note_token(&row.id);
    let role = Role::parse(&row.role)
        .map_err(|_| ApiError::internal("stored token has an invalid role"))?;
    let agents = row
        .agents
        .as_deref()
        .map(AgentBinding::parse)
        .transpose()
        .map_err(|_| ApiError::internal("stored token has an invalid agent binding"))?;
    let now = crate::now_ns();
    if row
        .last_used_ns
        .is_none_or(|used| now.saturating_sub(used) >= LAST_USED_INTERVAL_NS)
    {
        // Once a minute per token at most, and conditional in the store, so concurrent
        // requests write once; a failure here costs the record, not the request.
        if let Err(e) = state
            .store
            .token_touch(&row.id, now, now - LAST_USED_INTERVAL_NS)
            .await
        {
            state.metrics.store_error();
            tracing::warn!(
                token = %row.id,
                "recording the last use of token {}: {e}",
                row.id
            );
        }
    }
    Ok(Principal {
        token_id: row.id,
        role,
        agents,
    })
}

/// Refuses unless `role` is one of `allowed` (ops is always allowed).
pub fn require(role: &Role, allowed: &[Role]) -> Result<(), ApiError> {
    if *role == Role::Ops || allowed.contains(role) {
        Ok(())
    } else {
        let message = format!("role {} may not use this endpoint", role.as_string());
        access_log::note_refusal(&message);
        Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message))
    }
}

/// Refuses an agent token that may not write as `agent_id` (403). With `agent_id` `None`,
/// checks only that the token is bound at all (before reading a body). Tokens of other roles
/// pass: `require` decides which roles may use an endpoint, and ops may do everything.
pub fn require_agent(
    principal: &Principal,
    agent_id: Option<&str>,
    allow_unbound: bool,
) -> Result<(), ApiError> {
    if principal.role != Role::Agent {
        return Ok(());
    }
    let id = &principal.token_id;
    let refuse = |code: &'static str, message: String| {
        access_log::note_refusal(&message);
        Err(ApiError::new(StatusCode::FORBIDDEN, code, message))
    };
    match (&principal.agents, agent_id) {
        (None, _) if !allow_unbound => refuse(
            "unbound_agent_token",
            format!(
                "agent token {id} is not bound to agent ids, and this collector refuses unbound \
                 agent tokens: create a bound one with `voqa-collector token create --role agent \
                 --agent ID[,ID...]` (globs like fra-media-* allowed), give it to the agent, then \
                 `voqa-collector token revoke {id}`"
            ),
        ),
        (Some(binding), Some(agent)) if !binding.covers(agent) => refuse(
            "agent_not_bound",
            format!(
                "token {id} may not write as agent_id '{}': it is bound to {binding}",
                access_log_safe(agent)
            ),
        ),
        _ => Ok(()),
    }
}

/// A client-chosen id, bounded and escaped for a message.
fn access_log_safe(text: &str) -> String {
    let mut out: String = text.chars().take(128).collect::<String>();
    if out.len() < text.len() {
        out.push('…');
    }
    out.escape_debug().to_string()
}

#[utoipa::path(
    get,
    path = "/healthz",
    responses((status = 200, description = "The process is alive.", body = openapi::StatusBody))
)]
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

#[utoipa::path(
    get,
    path = "/readyz",
    responses(
        (status = 200, description = "The store answers.", body = openapi::StatusBody),
        (status = 503, description = "The store does not answer.", body = openapi::ErrorBody),
    )
)]
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

#[utoipa::path(
    get,
    path = "/metrics",
    responses(
        (status = 200, description = "Prometheus text exposition.", content_type = "text/plain", body = String),
        (status = 401, description = "No, an unknown or a revoked token.", body = openapi::ErrorBody),
        (status = 403, description = "Not an ops token.", body = openapi::ErrorBody),
        (status = 500, description = "The token store failed.", body = openapi::ErrorBody),
    ),
    security((), ("bearer" = []))
)]
async fn metrics_handler(
    State(state): State<AppState>,
    ConnectInfo(crate::serve::PeerAddr(peer)): ConnectInfo<crate::serve::PeerAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let open = state.config.current().server.metrics_open_on_loopback && peer.ip().is_loopback();
    if !open {
        let role = authenticate(&state, &headers).await?;
        require(&role, &[])?;
    }
    let body = state.metrics.render(&state).await;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let config = state.config.current();
    let server = &config.server;
    let sla_limiter = sla_limit::SlaLimiter::new(
        server.sla_max_concurrent,
        server.sla_max_concurrent_per_token,
    );
    router_with_sla_limiter(state, sla_limiter)
}

/// The whole API, counting SLA evaluations in `sla_limiter` (which a test may hold permits of).
pub fn router_with_sla_limiter(state: AppState, sla_limiter: Arc<sla_limit::SlaLimiter>) -> Router {
    let config = state.config.current();
    let max_body = config.server.max_body_bytes;
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .route(
            "/api/v1/ingest",
            post(ingest::ingest).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/agents", get(ops::agents))
        .route("/api/v1/streams", get(ops::streams))
        .route("/api/v1/calls", get(calls::calls))
        .route("/api/v1/calls/{call_id}", get(ops::call))
        .route("/api/v1/customers/{id}/kpis", get(calls::kpis))
        .route(
            "/api/v1/customers/{id}/sla",
            get(ops::sla).layer(axum::Extension(sla_limiter.clone())),
        )
        .route(
            "/api/v1/customers/{id}/report",
            get(ops::report).layer(axum::Extension(sla_limiter)),
        )
        .route(
            "/api/v1/customers/{id}/report/sends",
            get(ops::report_sends),
        )
        .route("/api/v1/alerts", get(alerts::active))
        .route("/api/v1/alerts/history", get(alerts::history))
        .route("/api/v1/openapi.json", get(openapi::document))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body));
    // Outermost, so it sees every request, refusals and 404s included.
    let router = match access_log::AccessLog::start(&config.server) {
        Some(log) => router.layer(axum::middleware::from_fn_with_state(log, access_log::layer)),
        None => router,
    };
    router.with_state(state)
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

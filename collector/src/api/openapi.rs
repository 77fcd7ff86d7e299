//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of this API, generated from the same
//! route table the tests check against the real router, so the document cannot drift.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{ApiError, AppState, authenticate};

/// Every route: (method, path, summary, roles allowed or "none").
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("get", "/healthz", "Liveness; no token.", "none"),
    (
        "get",
        "/readyz",
        "Readiness (store reachable); no token.",
        "none",
    ),
    (
        "get",
        "/metrics",
        "Prometheus metrics.",
        "ops (or open on loopback when configured)",
    ),
    (
        "post",
        "/api/v1/ingest",
        "Agent batch (voqa-wire Batch, JSON or gzip JSON).",
        "agent",
    ),
    (
        "get",
        "/api/v1/agents",
        "Agents: last heartbeat, capture drops, up/down.",
        "ops",
    ),
    (
        "get",
        "/api/v1/streams",
        "Stream reports with filters customer, agent, from, to, max_mos, final, limit, cursor.",
        "ops",
    ),
    (
        "get",
        "/api/v1/calls/{call_id}",
        "Every report of a call's streams.",
        "ops",
    ),
    (
        "get",
        "/api/v1/customers/{id}/sla",
        "Each commitment of a customer: target, measured, met, evidence (from, to).",
        "ops, customer:<id>",
    ),
    (
        "get",
        "/api/v1/openapi.json",
        "This document.",
        "any valid token",
    ),
];

pub fn document_value() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, roles) in ROUTES {
        let mut op = json!({
            "summary": summary,
            "x-roles": roles,
            "responses": {
                "200": {"description": "OK"},
                "4XX": {"description": "JSON error {error: {code, message}}"}
            }
        });
        if *roles != "none" {
            op["security"] = json!([{"bearer": []}]);
        }
        let params: Vec<Value> = ["call_id", "id"]
            .iter()
            .filter(|p| path.contains(&format!("{{{p}}}")))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        let entry = paths.entry((*path).to_owned()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "voqa collector API", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    })
}

pub async fn document(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&state, &headers).await?;
    Ok(axum::Json(document_value()).into_response())
}

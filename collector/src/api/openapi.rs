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
        "Agent batch (voqa-wire Batch, JSON or gzip JSON). Idempotent per record: a report \
         (agent, stream, window start, final) or heartbeat (agent, time) already stored is \
         acknowledged as a duplicate, whatever batch it came in, and counted nowhere again.",
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
        "Stream reports (each with its record_id) with filters customer, agent, from, to, \
         max_mos, final, limit, cursor. Times: RFC 3339 UTC or a date; offsets are refused.",
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
        "Each commitment of a customer: target, measured, verdict (met, breached or \
         no_data with a reason), coverage, evidence; the overall verdict, evaluated_until \
         (never past now) and the measurement's gaps (from, to).",
        "ops, customer:<id>",
    ),
    (
        "get",
        "/api/v1/openapi.json",
        "This document.",
        "any valid token",
    ),
];

/// The body of a 200 where the document describes it.
fn ok_schema(path: &str) -> Option<Value> {
    let count = json!({"type": "integer", "minimum": 0});
    match path {
        "/api/v1/ingest" => Some(json!({
            "type": "object",
            "required": ["status", "batch_id", "reports", "heartbeats",
                         "duplicate_reports", "duplicate_heartbeats"],
            "properties": {
                "status": {
                    "enum": ["stored", "duplicate"],
                    "description": "duplicate: every record of the batch was already stored; \
                                    stored: otherwise. Either way the batch is durable."
                },
                "batch_id": {"type": "string"},
                "reports": {"description": "Reports new to the store.", "allOf": [count]},
                "heartbeats": {"description": "Heartbeats new to the store.", "allOf": [count]},
                "duplicate_reports": {
                    "description": "Reports already stored (or repeated in this batch).",
                    "allOf": [count]
                },
                "duplicate_heartbeats": {
                    "description": "Heartbeats already stored (or repeated in this batch).",
                    "allOf": [count]
                }
            }
        })),
        "/api/v1/streams" => Some(json!({
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "description": "A voqa-wire StreamReport plus its record_id.",
                        "properties": {
                            "record_id": {
                                "type": "string",
                                "description": "AGENT/STREAM/WINDOW_START_NS/i|f: the key it is stored once under."
                            }
                        }
                    }
                },
                "next_cursor": {"type": ["string", "null"]}
            }
        })),
        _ => None,
    }
}

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
        if let Some(schema) = ok_schema(path) {
            op["responses"]["200"]["content"] = json!({"application/json": {"schema": schema}});
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_response_is_described() {
        let doc = document_value();
        let schema = &doc["paths"]["/api/v1/ingest"]["post"]["responses"]["200"]["content"]["application/json"]
            ["schema"];
        let required = schema["required"].as_array().map(Vec::len);
        assert_eq!(required, Some(6), "{schema}");
        assert_eq!(
            schema["properties"]["status"]["enum"],
            json!(["stored", "duplicate"])
        );
        assert!(
            doc["paths"]["/api/v1/streams"]["get"]["responses"]["200"]["content"]
                .to_string()
                .contains("record_id")
        );
    }
}

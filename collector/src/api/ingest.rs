//! `POST /api/v1/ingest` (role `agent`): a voqa-wire `Batch`, plain or gzip JSON. The body is
//! size-limited before and after decompression (413), the encoding checked (415), the JSON
//! parsed with the failing field named (400), the schema version and value ranges validated
//! (400/422), and a 2xx sent only once the batch is committed. Idempotent per record, not
//! per batch: a report or heartbeat that the store already holds is acknowledged and counted
//! as a duplicate, whatever batch it came in; the rest of the batch is stored.

use std::io::Read;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use voqa_wire::{Batch, SCHEMA_VERSION, StreamReport};

use super::{ApiError, AppState, authenticate_principal, require, require_agent};
use crate::auth::Role;
use crate::store::IngestOutcome;

/// Agent batch (voqa-wire Batch, JSON or gzip JSON). Idempotent per record: a report
/// (agent, stream, window start, final) or heartbeat (agent, time) already stored is
/// acknowledged as a duplicate, whatever batch it came in, and counted nowhere again.
#[utoipa::path(
    post,
    path = "/api/v1/ingest",
    request_body(
        content = Batch,
        description = "A voqa-wire Batch; `Content-Encoding: gzip` for a gzip body.",
        content_type = "application/json"
    ),
    params(
        ("Content-Encoding" = Option<String>, Header, description = "`gzip` (or `x-gzip`), `identity` or absent; others are refused with 415.")
    ),
    responses(
        (status = 200, description = "The batch is durable.", body = IngestAck),
        (status = 400, description = "Malformed JSON or gzip, a wrong field type, an unsupported schema version.", body = super::openapi::ErrorBody),
        (status = 401, description = "No, an unknown or a revoked token.", body = super::openapi::ErrorBody),
        (status = 403, description = "The token's role may not ingest, or the agent token is not bound to the batch's agent_id (agent_not_bound) or not bound at all (unbound_agent_token).", body = super::openapi::ErrorBody),
        (status = 413, description = "The body (its Content-Length up front, or after decompression) or the batch's record count is over the limit.", body = super::openapi::ErrorBody),
        (status = 408, description = "The body did not arrive in full within body_timeout_s.", body = super::openapi::ErrorBody),
        (status = 415, description = "An unsupported Content-Encoding.", body = super::openapi::ErrorBody),
        (status = 422, description = "A value out of range, naming the field.", body = super::openapi::ErrorBody),
        (status = 429, description = "Too many concurrent ingests; retry later.", body = super::openapi::ErrorBody),
        (status = 503, description = "The store failed, or max_concurrent_ingests are in progress (with Retry-After): nothing of the batch was stored; retry.", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let principal = authenticate_principal(&state, &headers).await?;
    require(&principal.role, &[Role::Agent])?;
    // An agent token writes only as the agents it is bound to (checked again on the batch).
    let allow_unbound = state.config.server.allow_unbound_agent_tokens;
    require_agent(&principal, None, allow_unbound)?;
    let limit = state.config.server.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body over {limit} bytes"),
        )
    };
    // 413 over the limit, 408 past the body timeout (see serve::limits).
    let raw = crate::serve::read_body(body, limit).await?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json_bytes = match encoding.as_str() {
        "" | "identity" => raw.to_vec(),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            let mut decoder = flate2::read::GzDecoder::new(&raw[..]).take(limit as u64 + 1);
            decoder.read_to_end(&mut out).map_err(|e| {
                ApiError::bad_request("bad_gzip", format!("body is not valid gzip: {e}"))
            })?;
            if out.len() > limit {
                return Err(too_large());
            }
            out
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!("Content-Encoding '{other}' is not supported (use gzip or none)"),
            ));
        }
    };
    let batch = parse_batch(&json_bytes)?;
    require_agent(&principal, Some(&batch.agent_id), allow_unbound)?;
    validate(&batch)?;
    let received_ns = crate::now_ns();
    let scopes = crate::sla::report_scopes(&state.config.customers, &batch.reports);
    let outcome = state
        .store
        .ingest_scoped(&batch, received_ns, &scopes)
        .await
        .map_err(|e| {
            state.metrics.store_error();
            match e {
                crate::store::StoreError::Invalid(m) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", m)
                }
                other => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_error",
                    format!("batch not stored: {other}"),
                ),
            }
        })?;
    state.metrics.ingested(&outcome, started.elapsed());
    Ok((
        StatusCode::OK,
        axum::Json(response_body(&batch.batch_id, &outcome)),
    )
        .into_response())
}

/// The acknowledgement: `status` is `duplicate` when every record of the batch was already
/// stored (from an earlier batch, or earlier in this one), otherwise `stored`; the counts say
/// how many records were new and how many were already there. Either way the whole batch is
/// durable, and the agent may drop it from its spool.
pub fn response_body(batch_id: &str, outcome: &IngestOutcome) -> IngestAck {
    IngestAck {
        status: if outcome.is_duplicate() {
            AckStatus::Duplicate
        } else {
            AckStatus::Stored
        },
        batch_id: batch_id.to_owned(),
        reports: outcome.reports,
        heartbeats: outcome.heartbeats,
        duplicate_reports: outcome.duplicate_reports,
        duplicate_heartbeats: outcome.duplicate_heartbeats,
    }
}

/// The 200 body of `POST /api/v1/ingest`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IngestAck {
    pub status: AckStatus,
    pub batch_id: String,
    /// Reports new to the store.
    pub reports: u64,
    /// Heartbeats new to the store.
    pub heartbeats: u64,
    /// Reports already stored (or repeated in this batch).
    pub duplicate_reports: u64,
    /// Heartbeats already stored (or repeated in this batch).
    pub duplicate_heartbeats: u64,
}

/// `duplicate`: every record of the batch was already stored; `stored`: otherwise. Either way
/// the batch is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    Stored,
    Duplicate,
}

/// Parses the batch, naming the field that failed (`reports[3].packets: invalid type ...`).
pub fn parse_batch(bytes: &[u8]) -> Result<Batch, ApiError> {
    // The plain parser is the fast path; only a refused body is parsed again with path
    // tracking, to name the field.
    if let Ok(batch) = serde_json::from_slice::<Batch>(bytes) {
        return Ok(batch);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize::<_, Batch>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request("malformed_json", format!("body is not valid JSON: {inner}"))
        } else {
            ApiError::bad_request("invalid_field", format!("{path}: {inner}"))
        }
    })
}

fn out_of_range(field: String, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "out_of_range",
        format!("{field}: {why}"),
    )
}

/// Schema and value checks the types cannot express.
pub fn validate(batch: &Batch) -> Result<(), ApiError> {
    if batch.schema != SCHEMA_VERSION {
        return Err(ApiError::bad_request(
            "unsupported_schema",
            format!(
                "schema: version {} is not supported (this collector speaks {SCHEMA_VERSION})",
                batch.schema
            ),
        ));
    }
    let id = &batch.batch_id;
    let uuid_like = id.len() == 36
        && id.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if !uuid_like {
        return Err(ApiError::bad_request(
            "invalid_field",
            "batch_id: must be a UUID (8-4-4-4-12 hex digits)",
        ));
    }
    if batch.agent_id.is_empty() || batch.agent_id.len() > 128 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "agent_id: must be 1 to 128 characters",
        ));
    }
    if batch.reports.len() + batch.heartbeats.len() > 100_000 {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            "a batch holds at most 100,000 records",
        ));
    }
    for (i, r) in batch.reports.iter().enumerate() {
        validate_report(i, r)?;
    }
    for (i, h) in batch.heartbeats.iter().enumerate() {
        if !(0.0..=100.0 * 1024.0).contains(&h.cpu_pct) || !h.cpu_pct.is_finite() {
            return Err(out_of_range(
                format!("heartbeats[{i}].cpu_pct"),
                "must be a percentage",
            ));
        }
        if h.mem_used_bytes > h.mem_total_bytes {
            return Err(out_of_range(
                format!("heartbeats[{i}].mem_used_bytes"),
                "exceeds mem_total_bytes",
            ));
        }
    }
    Ok(())
}

fn validate_report(i: usize, r: &StreamReport) -> Result<(), ApiError> {
    let f = |name: &str| format!("reports[{i}].{name}");
    let finite_nonneg = |v: f64| v.is_finite() && v >= 0.0;
    if let Some(m) = r.mos
        && !(1.0..=4.5).contains(&m)
    {
        return Err(out_of_range(f("mos"), "must be within 1..=4.5"));
    }
    // G.107's R has no lower bound (Ie,eff grows past 95 with bursty loss: a window whose
    // jitter buffer discarded a long burst reaches R < -100 and MOS 1); only values above what
    // the model can give (Ro + A ≈ 115) are impossible. A lower bound here dead-lettered real
    // reports.
    if let Some(rf) = r.r_factor
        && rf > 150.0
    {
        return Err(out_of_range(f("r_factor"), "must be at most 150"));
    }
    if !(0.0..=100.0).contains(&r.effective_loss_pct) {
        return Err(out_of_range(
            f("effective_loss_pct"),
            "must be a percentage",
        ));
    }
    for (name, v) in [
        ("jitter_ms", r.jitter_ms),
        ("max_jitter_ms", r.max_jitter_ms),
        ("mean_jitter_ms", r.mean_jitter_ms),
        ("rtt_ms", r.rtt_ms),
    ] {
        if let Some(v) = v
            && (!finite_nonneg(v) || v > 3_600_000.0)
        {
            return Err(out_of_range(
                f(name),
                "must be a non-negative number of milliseconds",
            ));
        }
    }
    if !finite_nonneg(r.max_delta_ms)
        || !finite_nonneg(r.jitter_sum_ms)
        || !finite_nonneg(r.burst_ratio)
    {
        return Err(out_of_range(
            f("max_delta_ms/jitter_sum_ms/burst_ratio"),
            "must be non-negative",
        ));
    }
    if r.lost > r.expected {
        return Err(out_of_range(f("lost"), "exceeds expected"));
    }
    // The times were parsed (strictly, UTC only) by the wire type while deserialising; a bad
    // one was already refused there with its field and reason.
    if r.window_end < r.window_start {
        return Err(out_of_range(f("window_end"), "is before window_start"));
    }
    if r.is_final && r.totals.is_none() {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("{}: a final report carries totals", f("totals")),
        ));
    }
    Ok(())
}

//! The ops API (role `ops`): agents, streams with filters and cursor pagination, calls by
//! Call-ID; and the SLA of a customer (role `ops` or that customer's own `customer:<id>`).
//! Query ranges are bounded (at most 366 days, at most 1,000 items a page); SLA evaluations
//! running at once are bounded in total and per token (`sla_limit`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::sla_limit::{SlaLimiter, token_key};
use super::{ApiError, AppState, authenticate, require};
use crate::auth::Role;
use crate::sla;
use crate::store::StreamQuery;
use voqa_wire::Timestamp;

const MAX_RANGE_NS: i64 = 366 * 86_400 * 1_000_000_000;
const DAY_NS: i64 = 86_400 * 1_000_000_000;

fn time_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    match q.get(name) {
        None => Ok(None),
        // Same grammar as the wire (UTC only: an offset is refused, not converted), plus a
        // bare date for midnight UTC; the reason is passed on so the caller can fix the query.
        Some(v) => Timestamp::parse_date_or_time(v)
            .map(|t| Some(t.as_ns()))
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("{name}: '{v}' is not an RFC 3339 UTC time or a date: {e}"),
                )
            }),
    }
}

/// `from`/`to` with defaults (`to` = now, `from` = `to` − `default_span`), bounded.
fn range(q: &HashMap<String, String>, default_span: i64) -> Result<(i64, i64), ApiError> {
    let to = time_param(q, "to")?.unwrap_or_else(crate::now_ns);
    let from = time_param(q, "from")?.unwrap_or(to - default_span);
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "from must be before to",
        ));
    }
    if to - from > MAX_RANGE_NS {
        return Err(ApiError::bad_request(
            "range_too_large",
            "a query covers at most 366 days",
        ));
    }
    Ok((from, to))
}

pub async fn agents(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let role = authenticate(&state, &headers).await?;
    require(&role, &[])?;
    let now = crate::now_ns();
    let rows = state
        .store
        .agents()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|a| {
            // Up: a heartbeat within two default heartbeat periods (30 s) and no watched
            // process down in it.
            let up = a
                .last_heartbeat_ns
                .is_some_and(|t| now - t <= 30_000_000_000)
                && !a.any_process_down;
            json!({
                "agent_id": a.agent_id,
                "last_heartbeat": a.last_heartbeat_ns.map(Timestamp::from_ns),
                "last_batch": Timestamp::from_ns(a.last_batch_ns),
                "up": up,
                "kernel_drops": a.kernel_drops_total,
                "capture_drops_in_reports": a.capture_drops_total,
                "heartbeat": a.last_heartbeat,
            })
        })
        .collect();
    Ok(axum::Json(json!({"items": items})).into_response())
}

pub async fn streams(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let role = authenticate(&state, &headers).await?;
    require(&role, &[])?;
    let (from, to) = range(&q, DAY_NS)?;
    let limit: u32 = match q.get("limit") {
        None => 100,
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad_request("invalid_parameter", "limit: 1..=1000"))?,
    };
    let max_mos = match q.get("max_mos") {
        None => None,
        Some(v) => Some(
            v.parse::<f64>()
                .ok()
                .filter(|m| (1.0..=5.0).contains(m))
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_parameter", "max_mos: a number within 1..=5")
                })?,
        ),
    };
    let after = match q.get("cursor") {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::bad_request("invalid_parameter", "cursor: not a cursor from this API")
        })?),
    };
    let customer = match q.get("customer") {
        None => None,
        Some(id) => Some(state.config.customer(id).cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_customer",
                format!("no customer '{id}'"),
            )
        })?),
    };
    let query = StreamQuery {
        agents: customer.as_ref().map(|c| c.agents.clone()),
        agent: q.get("agent").cloned(),
        from_ns: from,
        to_ns: to,
        max_mos,
        final_only: q.get("final").is_some_and(|v| v == "true"),
        after,
        limit,
    };
    let rows = state
        .store
        .streams(&query)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| encode_cursor(r.window_end_ns, r.id)))
        .flatten();
    let items: Vec<StreamItem<'_>> = rows
        .iter()
        .filter(|r| {
            customer
                .as_ref()
                .is_none_or(|c| sla::in_subnets(c, &r.report))
        })
        .map(|r| StreamItem {
            record_id: r.record_id(),
            report: &r.report,
        })
        .collect();
    Ok(axum::Json(json!({"items": items, "next_cursor": next_cursor})).into_response())
}

/// One `/api/v1/streams` item: the stored report as the agent sent it, plus the identity the
/// store keeps it under (`AGENT/STREAM/WINDOW_START_NS/i|f`, as `StreamReport::record_id`).
#[derive(serde::Serialize)]
struct StreamItem<'a> {
    record_id: String,
    #[serde(flatten)]
    report: &'a voqa_wire::StreamReport,
}

fn encode_cursor(end_ns: i64, id: i64) -> String {
    format!("{end_ns:x}.{id:x}")
}

fn decode_cursor(c: &str) -> Option<(i64, i64)> {
    let (a, b) = c.split_once('.')?;
    Some((
        i64::from_str_radix(a, 16).ok()?,
        i64::from_str_radix(b, 16).ok()?,
    ))
}

pub async fn call(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(call_id): Path<String>,
) -> Result<Response, ApiError> {
    let role = authenticate(&state, &headers).await?;
    require(&role, &[])?;
    if call_id.is_empty() || call_id.len() > 512 {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "call_id: 1 to 512 characters",
        ));
    }
    let rows = state
        .store
        .call(&call_id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if rows.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_call",
            format!("no streams for call '{call_id}'"),
        ));
    }
    let reports: Vec<&voqa_wire::StreamReport> = rows.iter().map(|r| &r.report).collect();
    let streams = stream_jitter(&reports);
    Ok(
        axum::Json(json!({"call_id": call_id, "streams": streams, "reports": reports}))
            .into_response(),
    )
}

/// Per stream of a call: its windows' per-packet jitter histograms merged, as percentiles.
fn stream_jitter(reports: &[&voqa_wire::StreamReport]) -> Vec<serde_json::Value> {
    use voqa_wire::histogram::{decode_jitter_histogram, new_jitter_histogram, quantile_ms};
    let mut streams: std::collections::BTreeMap<(&str, &str), (u64, u64, _)> =
        std::collections::BTreeMap::new();
    for report in reports {
        let entry = streams
            .entry((report.agent_id.as_str(), report.stream_id.as_str()))
            .or_insert_with(|| (0, 0, new_jitter_histogram()));
        entry.0 += 1;
        // Stored histograms were validated at ingest; one that does not decode is counted.
        match report
            .jitter_histogram
            .as_deref()
            .map(decode_jitter_histogram)
        {
            Some(Ok(h)) if entry.2.add(&h).is_ok() => {}
            _ if report.jitter_samples > 0 => entry.1 += 1,
            _ => {}
        }
    }
    streams
        .into_iter()
        .map(|((agent, stream_id), (windows, without, histogram))| {
            json!({
                "agent_id": agent,
                "stream_id": stream_id,
                "windows": windows,
                "windows_without_histogram": without,
                "jitter": {
                    "samples": histogram.len(),
                    "p50_ms": quantile_ms(&histogram, 0.50),
                    "p95_ms": quantile_ms(&histogram, 0.95),
                    "p99_ms": quantile_ms(&histogram, 0.99),
                    "max_ms": quantile_ms(&histogram, 1.0),
                },
            })
        })
        .collect()
}

pub async fn sla(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<SlaLimiter>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let role = authenticate(&state, &headers).await?;
    require(&role, &[Role::Customer(id.clone())])?;
    let customer = state.config.customer(&id).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_customer",
            format!("no customer '{id}'"),
        )
    })?;
    let (from, to) = range(&q, 30 * DAY_NS)?;
    // Counted from here: refusals above cost no evaluation. Held until the answer is built.
    let _permit = match limiter.try_acquire(&token_key(&headers)) {
        Ok(permit) => permit,
        Err(refusal) => return Ok(refusal.into_response()),
    };
    let evaluation = crate::facts::evaluate(&state.store, &customer, from, to)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    state.metrics.sla_state(&evaluation);
    Ok(axum::Json(evaluation).into_response())
}

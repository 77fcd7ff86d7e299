//! The ops API (role `ops`): agents, streams with filters and cursor pagination, calls by
//! Call-ID; and the SLA of a customer (role `ops` or that customer's own `customer:<id>`).
//! Query ranges are bounded (at most 366 days, at most 1,000 items a page); SLA evaluations
//! running at once are bounded in total and per token (`sla_limit`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::sla_limit::{SlaLimiter, token_key};
use super::{ApiError, AppState, authenticate, require};
use crate::auth::Role;
use crate::sla;
use crate::store::StreamQuery;
use voqa_wire::{Heartbeat, StreamReport, Timestamp};

use super::openapi::ErrorBody;

const MAX_RANGE_NS: i64 = 366 * 86_400 * 1_000_000_000;
pub(super) const DAY_NS: i64 = 86_400 * 1_000_000_000;

pub(super) fn time_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
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
pub(super) fn range(
    q: &HashMap<String, String>,
    default_span: i64,
) -> Result<(i64, i64), ApiError> {
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

/// The 200 body of `GET /api/v1/agents`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentsPage {
    pub items: Vec<AgentItem>,
}

/// One agent that has sent a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentItem {
    pub agent_id: String,
    /// Time of the newest heartbeat (the agent's clock); null before the first.
    pub last_heartbeat: Option<Timestamp>,
    /// Collector receive time of the agent's latest batch.
    pub last_batch: Timestamp,
    /// A heartbeat within the last 30 s and no watched process down in it.
    pub up: bool,
    /// Sum of the workers' cumulative kernel drops in the newest heartbeat.
    pub kernel_drops: u64,
    /// Sum of `capture_drops` over every report received from the agent.
    pub capture_drops_in_reports: u64,
    /// The newest heartbeat as the agent sent it; null before the first.
    pub heartbeat: Option<Heartbeat>,
}

#[utoipa::path(
    get,
    path = "/api/v1/agents",
    responses(
        (status = 200, description = "Every agent that has sent a batch.", body = AgentsPage),
        (status = 401, description = "No, an unknown or a revoked token.", body = ErrorBody),
        (status = 403, description = "Not an ops token.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
    let items: Vec<AgentItem> = rows
        .iter()
        .map(|a| {
            // Up: a heartbeat within two default heartbeat periods (30 s) and no watched
            // process down in it.
            let up = a
                .last_heartbeat_ns
                .is_some_and(|t| now - t <= 30_000_000_000)
                && !a.any_process_down;
            AgentItem {
                agent_id: a.agent_id.clone(),
                last_heartbeat: a.last_heartbeat_ns.map(Timestamp::from_ns),
                last_batch: Timestamp::from_ns(a.last_batch_ns),
                up,
                kernel_drops: a.kernel_drops_total,
                capture_drops_in_reports: a.capture_drops_total,
                heartbeat: a.last_heartbeat.clone(),
            }
        })
        .collect();
    Ok(axum::Json(AgentsPage { items }).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/streams",
    params(
        ("from" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00))?$", description = "Start (inclusive) of the window-end range: RFC 3339 UTC time or a date (midnight UTC); offsets are refused. Default: `to` − 1 day; the range covers at most 366 days.", example = "2026-11-01"),
        ("to" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00))?$", description = "End (exclusive): RFC 3339 UTC time or a date. Default: now.", example = "2026-12-01"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, 1..=1000 (default 100)."),
        ("cursor" = Option<String>, Query, pattern = r"^[0-9a-f]{1,16}\.[0-9a-f]{1,16}$", description = "`next_cursor` of the previous page."),
        ("max_mos" = Option<f64>, Query, minimum = 1, maximum = 5, description = "Only reports with a MOS at or below this (1..=5)."),
        ("final" = Option<String>, Query, description = "`true`: only final reports; any other value, or none: all reports.", example = "true"),
        ("customer" = Option<String>, Query, description = "Only the reports of this configured customer (its agents and subnets); 404 when not configured."),
        ("agent" = Option<String>, Query, description = "Only the reports of this agent."),
    ),
    responses(
        (status = 200, description = "A page of stream reports, oldest window end first.", body = StreamsPage),
        (status = 400, description = "A parameter is invalid (named in the message).", body = ErrorBody),
        (status = 401, description = "No, an unknown or a revoked token.", body = ErrorBody),
        (status = 403, description = "Not an ops token.", body = ErrorBody),
        (status = 404, description = "`customer` is not configured.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn streams(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let role = authenticate(&state, &headers).await?;
    require(&role, &[])?;
    let (from, to) = range(&q, DAY_NS)?;
    let limit = page_limit(&q)?;
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
    let after = cursor_param(&q)?;
    let customer = match q.get("customer") {
        None => None,
        Some(id) => Some(configured_customer(&state, id)?),
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
    Ok(axum::Json(StreamsPage { items, next_cursor }).into_response())
}

/// The 200 body of `GET /api/v1/streams`.
#[derive(Serialize, ToSchema)]
pub struct StreamsPage<'a> {
    pub items: Vec<StreamItem<'a>>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One `/api/v1/streams` item: the stored report as the agent sent it, plus the identity the
/// store keeps it under (`AGENT/STREAM/WINDOW_START_NS/i|f`, as `StreamReport::record_id`).
#[derive(Serialize, ToSchema)]
pub struct StreamItem<'a> {
    /// `AGENT/STREAM/WINDOW_START_NS/i|f`: the key the report is stored once under.
    pub record_id: String,
    #[serde(flatten)]
    pub report: &'a StreamReport,
}

/// A path segment axum could not take (not UTF-8 once percent-decoded) is refused like every
/// other bad parameter, with the JSON error body the document promises, not axum's plain text;
/// and only after the token is checked, as everything else.
fn path_param(param: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    param
        .map(|Path(value)| value)
        .map_err(|e| ApiError::bad_request("invalid_parameter", e.body_text()))
}

/// `limit`: 1..=1000, default 100.
pub(super) fn page_limit(q: &HashMap<String, String>) -> Result<u32, ApiError> {
    match q.get("limit") {
        None => Ok(100),
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad_request("invalid_parameter", "limit: 1..=1000")),
    }
}

/// `cursor`: a `next_cursor` this API printed, as `(time_ns, id)`.
pub(super) fn cursor_param(q: &HashMap<String, String>) -> Result<Option<(i64, i64)>, ApiError> {
    q.get("cursor")
        .map(|c| {
            decode_cursor(c).ok_or_else(|| {
                ApiError::bad_request("invalid_parameter", "cursor: not a cursor from this API")
            })
        })
        .transpose()
}

/// The configured customer `id`, or 404 `unknown_customer`.
pub(super) fn configured_customer(state: &AppState, id: &str) -> Result<sla::Customer, ApiError> {
    state.config.current().customer(id).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_customer",
            format!("no customer '{id}'"),
        )
    })
}

pub(super) fn encode_cursor(end_ns: i64, id: i64) -> String {
    format!("{end_ns:x}.{id:x}")
}

fn decode_cursor(c: &str) -> Option<(i64, i64)> {
    let (a, b) = c.split_once('.')?;
    Some((
        i64::from_str_radix(a, 16).ok()?,
        i64::from_str_radix(b, 16).ok()?,
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/calls/{call_id}",
    params(
        ("call_id" = String, Path, min_length = 1, max_length = 512, description = "The SIP Call-ID (1 to 512 characters).", example = "call-1"),
    ),
    responses(
        (status = 200, description = "Every report of the call's streams, and each stream's jitter percentiles.", body = CallPage),
        (status = 400, description = "`call_id` is empty, too long or not UTF-8.", body = ErrorBody),
        (status = 401, description = "No, an unknown or a revoked token.", body = ErrorBody),
        (status = 403, description = "Not an ops token.", body = ErrorBody),
        (status = 404, description = "No stream of that call is stored.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn call(
    State(state): State<AppState>,
    headers: HeaderMap,
    call_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let role = authenticate(&state, &headers).await?;
    require(&role, &[])?;
    let call_id = path_param(call_id)?;
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
    let reports: Vec<&StreamReport> = rows.iter().map(|r| &r.report).collect();
    let streams = stream_jitter(&reports);
    Ok(axum::Json(CallPage {
        call_id,
        streams,
        reports,
    })
    .into_response())
}

/// The 200 body of `GET /api/v1/calls/{call_id}`.
#[derive(Serialize, ToSchema)]
pub struct CallPage<'a> {
    pub call_id: String,
    /// One entry per stream (agent, stream id) of the call.
    pub streams: Vec<CallStream<'a>>,
    /// Every stored report of the call's streams.
    pub reports: Vec<&'a StreamReport>,
}

/// One stream of a call: its windows' per-packet jitter histograms merged.
#[derive(Serialize, ToSchema)]
pub struct CallStream<'a> {
    pub agent_id: &'a str,
    pub stream_id: &'a str,
    /// Reports of the stream.
    pub windows: u64,
    /// Windows with jitter samples but no (decodable) histogram: not in the percentiles.
    pub windows_without_histogram: u64,
    pub jitter: JitterPercentiles,
}

/// Percentiles of the merged per-packet jitter; null without samples.
#[derive(Serialize, ToSchema)]
pub struct JitterPercentiles {
    pub samples: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// Per stream of a call: its windows' per-packet jitter histograms merged, as percentiles.
fn stream_jitter<'a>(reports: &[&'a StreamReport]) -> Vec<CallStream<'a>> {
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
        .map(
            |((agent, stream_id), (windows, without, histogram))| CallStream {
                agent_id: agent,
                stream_id,
                windows,
                windows_without_histogram: without,
                jitter: JitterPercentiles {
                    samples: histogram.len(),
                    p50_ms: quantile_ms(&histogram, 0.50),
                    p95_ms: quantile_ms(&histogram, 0.95),
                    p99_ms: quantile_ms(&histogram, 0.99),
                    max_ms: quantile_ms(&histogram, 1.0),
                },
            },
        )
        .collect()
}

/// The customer a per-customer route names, for a token allowed to read it: 401 without a
/// valid token, 403 for neither ops nor this customer's own, then 404 for an unknown customer
/// (so a customer token learns nothing of other customers' existence).
pub(super) async fn authorized_customer(
    state: &AppState,
    headers: &HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<sla::Customer, ApiError> {
    authorized_customer_role(state, headers, id)
        .await
        .map(|(customer, _)| customer)
}

/// [`authorized_customer`], and the token's role (for answers that show ops more).
async fn authorized_customer_role(
    state: &AppState,
    headers: &HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<(sla::Customer, Role), ApiError> {
    let role = authenticate(state, headers).await?;
    let id = path_param(id)?;
    require(&role, &[Role::Customer(id.clone())])?;
    state
        .config
        .current()
        .customer(&id)
        .cloned()
        .map(|customer| (customer, role))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_customer",
                format!("no customer '{id}'"),
            )
        })
}

#[utoipa::path(
    get,
    path = "/api/v1/customers/{id}/sla",
    params(
        ("id" = String, Path, description = "A configured customer's id.", example = "acme"),
        ("from" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00))?$", description = "Start (inclusive) of the period: RFC 3339 UTC time or a date (midnight UTC); offsets are refused. Default: `to` − 30 days; the period covers at most 366 days.", example = "2026-11-01"),
        ("to" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00))?$", description = "End (exclusive): RFC 3339 UTC time or a date. Default: now.", example = "2026-12-01"),
    ),
    responses(
        (status = 200, description = "Each commitment: target, measured, verdict and its evidence.", body = sla::Evaluation),
        (status = 400, description = "A parameter is invalid (named in the message).", body = ErrorBody),
        (status = 401, description = "No, an unknown or a revoked token.", body = ErrorBody),
        (status = 403, description = "Neither an ops token nor this customer's own.", body = ErrorBody),
        (status = 404, description = "No such customer.", body = ErrorBody),
        (status = 429, description = "Too many SLA evaluations at once; retry later.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
        (status = 503, description = "The store is unavailable.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn sla(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<SlaLimiter>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let customer = authorized_customer(&state, &headers, id).await?;
    let (from, to) = range(&q, 30 * DAY_NS)?;
    // Counted from here: refusals above cost no evaluation. Held until the answer is built.
    let _permit = match limiter.try_acquire(&token_key(&headers)) {
        Ok(permit) => permit,
        Err(refusal) => return Ok(refusal.into_response()),
    };
    // The period is judged up to now at most: the future is neither up nor down.
    let evaluation = crate::facts::evaluate(&state.store, &customer, from, to, crate::now_ns())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    state.metrics.sla_state(&evaluation);
    Ok(axum::Json(evaluation).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/customers/{id}/report",
    params(
        ("id" = String, Path, description = "A configured customer's id.", example = "acme"),
        ("period" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}$", description = "A calendar month of the customer's time zone (`YYYY-MM`). Give either `period` or both `from` and `to`.", example = "2026-11"),
        ("from" = Option<String>, Query, description = "Start: a date (midnight in the customer's time zone) or an RFC 3339 UTC time; with `to`, instead of `period`. At most 366 days.", example = "2026-11-01"),
        ("to" = Option<String>, Query, description = "End (exclusive), as `from`.", example = "2026-12-01"),
        ("format" = Option<String>, Query, description = "`json` (default), `html` (self-contained page, served with a strict Content-Security-Policy), `csv` (one row per call, RFC 4180, header row) or `pdf` (needs Chromium on the collector host).", example = "json"),
    ),
    responses(
        (status = 200, description = "The report. JSON: the document (the SLA evaluation plus the series behind every chart; `provenance.json_sha256` is null here and is the SHA-256 of exactly these bytes in the other forms). A period without data is an honest no-data report, not an error.", content(
            (crate::report::ReportDocument = "application/json"),
            (String = "text/html"),
            (String = "text/csv"),
            (Vec<u8> = "application/pdf"),
        )),
        (status = 400, description = "A parameter is invalid (named in the message).", body = ErrorBody),
        (status = 401, description = "No, an unknown or a revoked token.", body = ErrorBody),
        (status = 403, description = "Neither an ops token nor this customer's own.", body = ErrorBody),
        (status = 404, description = "No such customer.", body = ErrorBody),
        (status = 429, description = "Too many SLA evaluations or reports at once; retry later.", body = ErrorBody),
        (status = 500, description = "The store failed, or the PDF could not be printed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn report(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<SlaLimiter>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    use crate::report::build::{ReportError, ReportPeriodSpec};
    use crate::report::format::{HTML_CSP, ReportFormat, produce};
    let customer = authorized_customer(&state, &headers, id).await?;
    let bad = |e: ReportError| ApiError::bad_request("invalid_parameter", e.to_string());
    let format =
        ReportFormat::parse(q.get("format").map_or("json", String::as_str)).map_err(bad)?;
    let spec = ReportPeriodSpec::parse(
        q.get("period").map(String::as_str),
        q.get("from").map(String::as_str),
        q.get("to").map(String::as_str),
    )
    .map_err(bad)?;
    // Resolved here so that a bad period is a 400, before any evaluation is counted.
    let zone = crate::report::build::customer_zone(&customer)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    spec.resolve(&zone).map_err(bad)?;
    // A report is an SLA evaluation and more: the same limiter bounds them together.
    let permit = match limiter.try_acquire(&token_key(&headers)) {
        Ok(permit) => permit,
        Err(refusal) => return Ok(refusal.into_response()),
    };
    if format == ReportFormat::Csv {
        return csv_report(state, customer, spec, permit).await;
    }
    let _permit = permit;
    let body = produce(
        &state.store,
        &customer,
        &spec,
        format,
        crate::now_ns(),
        env!("CARGO_PKG_VERSION"),
    )
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut response = (
        [(axum::http::header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    if format == ReportFormat::Html {
        headers.insert(
            axum::http::header::CONTENT_SECURITY_POLICY,
            axum::http::HeaderValue::from_static(HTML_CSP),
        );
    }
    Ok(response)
}

/// The 200 body of `GET /api/v1/customers/{id}/report/sends`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportSendsPage {
    /// Newest month first, then by channel (at most 240).
    pub items: Vec<ReportSendItem>,
}

/// One month's report on one channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportSendItem {
    /// `YYYY-MM`, a month of the customer's time zone.
    pub period: String,
    /// `email` (to `report_recipients`) or `webhook` (to `report_webhook`): each channel's
    /// send of a month is recorded and retried on its own.
    #[schema(example = "webhook")]
    pub channel: String,
    /// `pending` (not tried yet), `sending` (a collector is sending it now), `sent`, or
    /// `failed` (retried at `next_attempt`).
    pub state: String,
    pub attempts: i64,
    /// When the next attempt is due (`pending` and `failed`).
    pub next_attempt: Option<Timestamp>,
    /// When the SMTP server or the webhook accepted it (`sent`).
    pub sent_at: Option<Timestamp>,
    /// Where the last attempt went: the recipients, or the webhook's URL without its query.
    pub recipients: Option<String>,
    /// File name of the attached report (e-mail only).
    pub attachment: Option<String>,
    /// `provenance.json_sha256` of the report sent.
    pub report_sha256: Option<String>,
    /// Why the last attempt failed: the SMTP server's, the webhook's or the report's error
    /// for ops tokens; a customer's own token sees only that it failed (the relay and the
    /// collector's network are the operator's).
    pub last_error: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/customers/{id}/report/sends",
    params(
        ("id" = String, Path, description = "A configured customer's id.", example = "acme"),
    ),
    responses(
        (status = 200, description = "The customer's monthly report sends, newest month first, one item per month and channel.", body = ReportSendsPage),
        (status = 401, description = "No, an unknown or a revoked token.", body = ErrorBody),
        (status = 403, description = "Neither an ops token nor this customer's own.", body = ErrorBody),
        (status = 404, description = "No such customer.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn report_sends(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let (customer, role) = authorized_customer_role(&state, &headers, id).await?;
    let rows = state.store.report_sends(&customer.id).await.map_err(|e| {
        state.metrics.store_error();
        ApiError::internal(e.to_string())
    })?;
    let items = rows
        .into_iter()
        .map(|row| {
            let last_error = match (&role, row.last_error) {
                (Role::Ops, error) => error,
                (_, Some(_)) => {
                    Some("the last attempt failed; the operator has the details".into())
                }
                (_, None) => None,
            };
            ReportSendItem {
                next_attempt: (row.state != "sent")
                    .then(|| Timestamp::from_ns(row.next_attempt_ns)),
                sent_at: row.sent_ns.map(Timestamp::from_ns),
                period: row.period,
                channel: row.channel,
                state: row.state,
                attempts: row.attempts,
                recipients: row.recipients,
                attachment: row.attachment,
                report_sha256: row.report_sha256,
                last_error,
            }
        })
        .collect();
    Ok(axum::Json(ReportSendsPage { items }).into_response())
}

/// The CSV report streamed: a task reads the calls a page at a time into a bounded channel
/// (two pages of rows in flight at most, however large the month) that the response body
/// drains, holding the limiter's permit until the last row is sent. The first chunk (the
/// header and the first page) is awaited before answering, so a failure to start is a 500;
/// a failure later can only cut the body short (hyper then aborts the response, which the
/// client sees as an incomplete chunked body, never as a complete CSV).
async fn csv_report(
    state: AppState,
    customer: sla::Customer,
    spec: crate::report::build::ReportPeriodSpec,
    permit: super::sla_limit::SlaPermit,
) -> Result<Response, ApiError> {
    use crate::report::format::ReportFormat;
    let (mut tx, mut rx) = tokio::sync::mpsc::channel(2);
    let now = crate::now_ns();
    tokio::spawn(async move {
        let _permit = permit;
        let written =
            crate::report::csv::write_chunks(&state.store, &customer, &spec, now, &mut tx).await;
        if let Err(error) = written {
            let _ = tx.send(Err(std::io::Error::other(error.to_string()))).await;
        }
    });
    let first = match rx.recv().await {
        Some(Ok(chunk)) => chunk,
        Some(Err(error)) => return Err(ApiError::internal(error.to_string())),
        None => return Err(ApiError::internal("the CSV report ended before its header")),
    };
    let body = axum::body::Body::new(ChannelBody {
        first: Some(first),
        rx,
    });
    let mut response = (
        [(
            axum::http::header::CONTENT_TYPE,
            ReportFormat::Csv.content_type(),
        )],
        body,
    )
        .into_response();
    response.headers_mut().insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// A response body fed by a bounded channel of chunks (see `csv_report`).
struct ChannelBody {
    first: Option<Vec<u8>>,
    rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
}

impl http_body::Body for ChannelBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return std::task::Poll::Ready(Some(Ok(http_body::Frame::data(first.into()))));
        }
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|chunk| chunk.map(|c| http_body::Frame::data(c.into()))))
    }
}

//! `POST /api/v1/ingest` (role `agent`): a voqa-wire `Batch`, plain or gzip JSON. The body is
//! size-limited before and after decompression (413), the encoding checked (415; gzip is one
//! member and nothing after it), the JSON parsed with the failing field named and nothing
//! after the batch (400), the schema version, value ranges and plausibility validated
//! (400/422: no record dated more than `max_future_s` after its receipt, counters within what
//! the window's length allows, ids and text short and free of control and bidi characters),
//! and a 2xx sent only once the batch is committed. Nothing here trusts the agent: every bound
//! is checked before the store sees the batch. Idempotent per record, not
//! per batch: a report or heartbeat that the store already holds is acknowledged and counted
//! as a duplicate, whatever batch it came in; the rest of the batch is stored.
//!
//! Call records (`calls`, issue 12) are validated like reports and stored in the same
//! transaction, once per `AGENT/call/CALL_KEY`, attributed to subnet customers by
//! `sla::call_scopes`. `skipped_calls` stays in the acknowledgement for agents that read it,
//! and is 0: this collector stores every call record it acknowledges.

use std::io::Read;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use voqa_wire::time::NS_PER_S;
use voqa_wire::{Batch, Heartbeat, SCHEMA_VERSION, StreamReport, StreamSummary, Timestamp};

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
    // One snapshot for the whole request: a reload meanwhile applies to the next one.
    let config = state.config.current();
    let allow_unbound = config.server.allow_unbound_agent_tokens;
    require_agent(&principal, None, allow_unbound)?;
    let limit = config.server.max_body_bytes;
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
            // The buffered decoder reads the slice itself (no read-ahead buffer of its own),
            // so what it leaves of the slice is exactly what followed the first member.
            let mut decoder = flate2::bufread::GzDecoder::new(&raw[..]);
            (&mut decoder)
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::bad_request("bad_gzip", format!("body is not valid gzip: {e}"))
                })?;
            if out.len() > limit {
                return Err(too_large());
            }
            // A second member or trailing bytes would be data that nothing checked (a
            // multi-member decoder would silently concatenate): the body is one member.
            let rest = decoder.into_inner();
            if !rest.is_empty() {
                return Err(ApiError::bad_request(
                    "bad_gzip",
                    format!(
                        "body is not valid gzip: {} bytes follow the gzip member (a second \
                         member or trailing data)",
                        rest.len()
                    ),
                ));
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
    let mut batch = parse_batch(&json_bytes)?;
    require_agent(&principal, Some(&batch.agent_id), allow_unbound)?;
    let received_ns = crate::now_ns();
    validate(&batch, received_ns, config.server.max_future_s)?;
    // A UUID's hex digits are case-insensitive: the batch log keys batches by their
    // canonical lower-case id, so an upper-case copy is the same batch.
    batch.batch_id.make_ascii_lowercase();
    let scopes = crate::sla::report_scopes(&config.customers, &batch.reports);
    let call_scopes = crate::sla::call_scopes(&config.customers, &batch);
    let outcome = state
        .store
        .ingest_attributed(&batch, received_ns, &scopes, &call_scopes)
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
    state
        .metrics
        .ingested_calls(&config.customers, &batch.agent_id, &outcome.new_call_counts);
    let ack = response_body(&batch.batch_id, &outcome);
    Ok((StatusCode::OK, axum::Json(ack)).into_response())
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
        calls: outcome.calls,
        duplicate_calls: outcome.duplicate_calls,
        skipped_calls: 0,
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
    /// Call records new to the store.
    pub calls: u64,
    /// Call records already stored (or repeated in this batch).
    pub duplicate_calls: u64,
    /// Call records acknowledged but not stored: always 0 here (kept for agents that read it;
    /// collectors before call storage counted every call record here).
    pub skipped_calls: u64,
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
    let batch = serde_path_to_error::deserialize::<_, Batch>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request("malformed_json", format!("body is not valid JSON: {inner}"))
        } else {
            ApiError::bad_request("invalid_field", format!("{path}: {inner}"))
        }
    })?;
    // `deserialize` stops after the batch's closing brace; `from_slice` above also checked
    // that nothing but whitespace follows, and this path must too, or a valid batch followed
    // by anything (refused by the fast path) would be stored by this one.
    de.end().map_err(|e| {
        ApiError::bad_request("malformed_json", format!("body is not valid JSON: {e}"))
    })?;
    Ok(batch)
}

fn out_of_range(field: String, why: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "out_of_range",
        format!("{field}: {why}"),
    )
}

/// Longest id or other text field of a report or heartbeat, in bytes. Every text the agent
/// writes is far shorter: ids are 16 hex digits, addresses at most an IPv6 `[..]:port`, SIP
/// Call-IDs in practice under 100 bytes.
pub const MAX_TEXT_BYTES: usize = 256;

/// Most packets (and sequence positions, duplicates, reorderings, discards, jitter samples,
/// Markov transitions) one stream may count per second of its report window: 10,000 packets/s
/// is a 100 Mbit/s video stream of 1,200-byte packets, fifty times a voice stream. Windows
/// shorter than a second are allowed a second's worth, since `expected` counts positions as
/// they leave the reorder window and so lags the packets a little.
pub const MAX_PACKETS_PER_S: u64 = 10_000;

/// Most kernel drops a worker may report per second of window: the capturing host's whole
/// traffic, up to 100 GbE line rate at minimum-size frames (148.8 Mpps).
pub const MAX_CAPTURE_DROPS_PER_S: u64 = 150_000_000;

/// Longest a timestamp in a report or heartbeat may lie after the time its batch was received
/// when the configuration does not say (`max_future_s`).
pub const DEFAULT_MAX_FUTURE_S: u64 = 300;

/// Characters refused in ids and other text: C0/C1 controls and DEL, and the invisible
/// formatting characters that make one id display as another (bidirectional embeddings,
/// overrides, isolates and marks, zero-width spaces and joiners, line and paragraph
/// separators, the byte-order mark, interlinear annotation).
fn forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Refuses an id or text field that is too long or holds a control or formatting character.
fn check_text(field: impl FnOnce() -> String, text: &str) -> Result<(), ApiError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(out_of_range(
            field(),
            &format!("is {} bytes long, more than {MAX_TEXT_BYTES}", text.len()),
        ));
    }
    // Fast path: printable ASCII, what every agent writes.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    match text.chars().find(|&c| forbidden_char(c)) {
        Some(c) => Err(out_of_range(
            field(),
            &format!(
                "contains U+{:04X}, a control or invisible formatting character",
                c as u32
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses a time more than `max_future_ns` after the receive time.
fn check_not_future(
    field: impl FnOnce() -> String,
    time: Timestamp,
    received_ns: i64,
    max_future_s: u64,
) -> Result<(), ApiError> {
    let max_future_ns = i64::try_from(max_future_s)
        .unwrap_or(i64::MAX)
        .saturating_mul(NS_PER_S);
    if time.as_ns() > received_ns.saturating_add(max_future_ns) {
        return Err(out_of_range(
            field(),
            &format!(
                "{time} is more than {max_future_s} s after the time it was received ({})",
                Timestamp::from_ns(received_ns)
            ),
        ));
    }
    Ok(())
}

/// Schema and value checks the types cannot express. `received_ns` is when the batch arrived:
/// no record may be dated more than `max_future_s` after it.
pub fn validate(batch: &Batch, received_ns: i64, max_future_s: u64) -> Result<(), ApiError> {
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
    check_text(|| "agent_id".into(), &batch.agent_id)?;
    if batch.reports.len() + batch.heartbeats.len() + batch.calls.len() > 100_000 {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            "a batch holds at most 100,000 records",
        ));
    }
    for (i, r) in batch.reports.iter().enumerate() {
        validate_report(i, r, received_ns, max_future_s)?;
    }
    for (i, h) in batch.heartbeats.iter().enumerate() {
        validate_heartbeat(i, h, received_ns, max_future_s)?;
    }
    for (i, c) in batch.calls.iter().enumerate() {
        validate_call(i, c, received_ns, max_future_s)?;
    }
    Ok(())
}

/// Most media streams, problems and events one call record may list.
const MAX_CALL_ITEMS: usize = 256;

fn validate_call(
    i: usize,
    c: &voqa_wire::CallRecord,
    received_ns: i64,
    max_future_s: u64,
) -> Result<(), ApiError> {
    let f = |name: &str| format!("calls[{i}].{name}");
    let call = &c.call;
    if c.call_key.is_empty() || c.call_key.len() > 64 {
        return Err(out_of_range(f("call_key"), "must be 1 to 64 characters"));
    }
    for (name, text) in [
        ("agent_id", c.agent_id.as_str()),
        ("call_key", &c.call_key),
        ("call_id", &call.call_id),
        ("from", call.from.as_deref().unwrap_or_default()),
        ("to", call.to.as_deref().unwrap_or_default()),
        ("end_cause", call.end_cause.as_deref().unwrap_or_default()),
        ("ended_by", call.ended_by.as_deref().unwrap_or_default()),
        ("direction", call.direction.as_deref().unwrap_or_default()),
        ("peer", call.peer.as_deref().unwrap_or_default()),
    ] {
        check_text(|| f(name), text)?;
    }
    for (name, len) in [
        ("streams", call.streams.len()),
        ("media", call.media.len()),
        ("problems", call.problems.len()),
        ("events", call.events.len()),
    ] {
        if len > MAX_CALL_ITEMS {
            return Err(out_of_range(
                f(name),
                &format!("lists {len} items, more than {MAX_CALL_ITEMS}"),
            ));
        }
    }
    for (k, m) in call.media.iter().enumerate() {
        for (name, text) in [
            ("stream_id", m.stream_id.as_str()),
            ("direction", &m.direction),
            ("codec", &m.codec),
        ] {
            check_text(|| f(&format!("media[{k}].{name}")), text)?;
        }
        if let Some(mos) = m.mos
            && !(1.0..=4.5).contains(&mos)
        {
            return Err(out_of_range(
                f(&format!("media[{k}].mos")),
                "must be within 1..=4.5",
            ));
        }
    }
    for (k, p) in call.problems.iter().enumerate() {
        check_text(|| f(&format!("problems[{k}].kind")), &p.kind)?;
        check_text(|| f(&format!("problems[{k}].direction")), &p.direction)?;
    }
    for (k, e) in call.events.iter().enumerate() {
        check_text(|| f(&format!("events[{k}].kind")), &e.kind)?;
        check_text(
            || f(&format!("events[{k}].by")),
            e.by.as_deref().unwrap_or_default(),
        )?;
    }
    if let Some(status) = call.status
        && !(100..=699).contains(&status)
    {
        return Err(out_of_range(
            f("status"),
            "must be a SIP status within 100..=699",
        ));
    }
    if let Some(mos) = call.mos
        && !(1.0..=4.5).contains(&mos)
    {
        return Err(out_of_range(f("mos"), "must be within 1..=4.5"));
    }
    for (name, time) in [
        ("setup", call.setup),
        ("first_provisional", call.first_provisional),
        ("first_ringing", call.first_ringing),
        ("answer", call.answer),
        ("end", call.end),
        ("bye_response", call.bye_response),
    ] {
        if let Some(time) = time {
            check_not_future(|| f(name), time, received_ns, max_future_s)?;
        }
    }
    Ok(())
}

fn validate_heartbeat(
    i: usize,
    h: &Heartbeat,
    received_ns: i64,
    max_future_s: u64,
) -> Result<(), ApiError> {
    let f = |name: &str| format!("heartbeats[{i}].{name}");
    check_text(|| f("agent_id"), &h.agent_id)?;
    check_text(|| f("agent_version"), &h.agent_version)?;
    for (k, p) in h.processes.iter().enumerate() {
        check_text(|| f(&format!("processes[{k}].name")), &p.name)?;
    }
    check_not_future(|| f("time"), h.time, received_ns, max_future_s)?;
    // Percentages of all cores (host) and of one core (agent): a host has at most 1,024.
    for (name, v) in [("cpu_pct", h.cpu_pct), ("agent_cpu_pct", h.agent_cpu_pct)] {
        if !(0.0..=100.0 * 1024.0).contains(&v) {
            return Err(out_of_range(f(name), "must be a percentage"));
        }
    }
    if h.mem_used_bytes > h.mem_total_bytes {
        return Err(out_of_range(f("mem_used_bytes"), "exceeds mem_total_bytes"));
    }
    if h.load_avg.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(out_of_range(f("load_avg"), "must be non-negative"));
    }
    Ok(())
}

/// `burst_ratio` is `max(1, 1/(p+q))` over the window's Markov transitions (metrics-spec
/// §8.2), and `1/(p+q)` is at most the number of transitions counted; allow for the agent's
/// rounding to 6 decimals.
fn burst_ratio_in_range(burst_ratio: f64, transitions: u64) -> bool {
    let most = (transitions.max(1) as f64) * (1.0 + 1e-9) + 1e-6;
    (1.0..=most).contains(&burst_ratio)
}

fn validate_report(
    i: usize,
    r: &StreamReport,
    received_ns: i64,
    max_future_s: u64,
) -> Result<(), ApiError> {
    let f = |name: &str| format!("reports[{i}].{name}");
    for (name, text) in [
        ("agent_id", r.agent_id.as_str()),
        ("stream_id", &r.stream_id),
        ("src", &r.src),
        ("dst", &r.dst),
        ("ssrc", &r.ssrc),
        ("codec", &r.codec),
        ("call_id", r.call_id.as_deref().unwrap_or_default()),
        ("end_reason", r.end_reason.as_deref().unwrap_or_default()),
    ] {
        check_text(|| f(name), text)?;
    }
    check_not_future(
        || f("window_start"),
        r.window_start,
        received_ns,
        max_future_s,
    )?;
    check_not_future(|| f("window_end"), r.window_end, received_ns, max_future_s)?;
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
        ("delay_ms", r.delay_ms),
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
    if !finite_nonneg(r.max_delta_ms) || !finite_nonneg(r.jitter_sum_ms) {
        return Err(out_of_range(
            f("max_delta_ms/jitter_sum_ms"),
            "must be non-negative",
        ));
    }
    if r.lost > r.expected {
        return Err(out_of_range(f("lost"), "exceeds expected"));
    }
    // The times were parsed (strictly, UTC only) by the wire type while deserialising; a bad
    // one was already refused there with its field and reason.
    let window_ns = r.window_end.as_ns().saturating_sub(r.window_start.as_ns());
    if window_ns < 0 {
        return Err(out_of_range(f("window_end"), "is before window_start"));
    }
    // Counters a window of this length can hold (whole seconds, at least one).
    let seconds = u64::try_from(window_ns)
        .unwrap_or(0)
        .div_ceil(NS_PER_S as u64)
        .max(1);
    let most_packets = MAX_PACKETS_PER_S.saturating_mul(seconds);
    let t = &r.transitions;
    let transitions = t
        .n00
        .saturating_add(t.n01)
        .saturating_add(t.n10)
        .saturating_add(t.n11);
    for (name, v) in [
        ("packets", r.packets),
        ("expected", r.expected),
        ("duplicates", r.duplicates),
        ("reordered", r.reordered),
        ("jb_discarded", r.jb_discarded),
        ("jitter_samples", r.jitter_samples),
        ("transitions", transitions),
    ] {
        if v > most_packets {
            return Err(out_of_range(
                f(name),
                &format!(
                    "{v} is more than {MAX_PACKETS_PER_S} per second of a {seconds} s window \
                     allows ({most_packets})"
                ),
            ));
        }
    }
    let most_drops = MAX_CAPTURE_DROPS_PER_S.saturating_mul(seconds);
    if r.capture_drops > most_drops {
        return Err(out_of_range(
            f("capture_drops"),
            &format!(
                "{} is more than {MAX_CAPTURE_DROPS_PER_S} per second of a {seconds} s window \
                 allows ({most_drops})",
                r.capture_drops
            ),
        ));
    }
    if !burst_ratio_in_range(r.burst_ratio, transitions) {
        return Err(out_of_range(
            f("burst_ratio"),
            &format!(
                "must be within 1..={} (1/(p+q) over the window's {transitions} transitions)",
                transitions.max(1)
            ),
        ));
    }
    match &r.totals {
        Some(totals) => validate_totals(i, totals, received_ns, max_future_s)?,
        None if r.is_final => {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("{}: a final report carries totals", f("totals")),
            ));
        }
        None => {}
    }
    Ok(())
}

/// The whole-stream figures of a final report: the same text rules, and the ranges of the
/// figures the SLA reads from them (a call is judged on these).
fn validate_totals(
    i: usize,
    t: &StreamSummary,
    received_ns: i64,
    max_future_s: u64,
) -> Result<(), ApiError> {
    let f = |name: &str| format!("reports[{i}].totals.{name}");
    for (name, text) in [
        ("src", t.src.as_str()),
        ("dst", &t.dst),
        ("ssrc", &t.ssrc),
        ("codec", &t.codec),
        ("call_id", t.call_id.as_deref().unwrap_or_default()),
        ("delay_source", &t.delay_source),
        ("clock_source", &t.clock_source),
        ("detection", &t.detection),
        ("jitter_buffer", &t.jitter_buffer),
        ("media", &t.media),
    ] {
        check_text(|| f(name), text)?;
    }
    for (k, flag) in t.flags.iter().enumerate() {
        check_text(|| f(&format!("flags[{k}]")), flag)?;
    }
    if let Some(ci) = &t.clock_inference {
        check_text(|| f("clock_inference.method"), &ci.method)?;
        check_text(
            || f("clock_inference.confidence"),
            ci.confidence.as_deref().unwrap_or_default(),
        )?;
    }
    check_not_future(|| f("first_seen"), t.first_seen, received_ns, max_future_s)?;
    check_not_future(|| f("last_seen"), t.last_seen, received_ns, max_future_s)?;
    if let Some(m) = t.mos
        && !(1.0..=4.5).contains(&m)
    {
        return Err(out_of_range(f("mos"), "must be within 1..=4.5"));
    }
    if let Some(rf) = t.r_factor
        && rf > 150.0
    {
        return Err(out_of_range(f("r_factor"), "must be at most 150"));
    }
    if !(0.0..=100.0).contains(&t.effective_loss_pct) {
        return Err(out_of_range(
            f("effective_loss_pct"),
            "must be a percentage",
        ));
    }
    for (name, v) in [
        ("jitter_ms", t.jitter_ms),
        ("max_jitter_ms", t.max_jitter_ms),
        ("mean_jitter_ms", t.mean_jitter_ms),
        ("rtt_ms", t.rtt_ms),
        ("delay_ms", t.delay_ms),
    ] {
        if let Some(v) = v
            && (!(v.is_finite() && v >= 0.0) || v > 3_600_000.0)
        {
            return Err(out_of_range(
                f(name),
                "must be a non-negative number of milliseconds",
            ));
        }
    }
    // The whole stream's transitions are not shipped; there are fewer than its positions.
    if !burst_ratio_in_range(t.burst_ratio, t.expected.saturating_add(t.packets)) {
        return Err(out_of_range(
            f("burst_ratio"),
            "must be at least 1 and at most the stream's sequence positions",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// 2026-11-20T10:00:00Z, and a receive time an hour later.
    const START_NS: i64 = 1_795_428_000 * NS_PER_S;
    const RECEIVED_NS: i64 = START_NS + 3600 * NS_PER_S;

    fn report_json() -> Value {
        json!({
            "agent_id": "fra-media-1", "stream_id": "0123456789abcdef",
            "src": "203.0.113.5:40000", "dst": "198.51.100.20:50000", "ssrc": "0x00000001",
            "payload_type": 0, "codec": "PCMU", "clock_rate": 8000, "call_id": "call-1",
            "window_start": "2026-11-20T10:00:00Z", "window_end": "2026-11-20T10:00:10Z",
            "final": false, "packets": 500, "expected": 500, "lost": 0, "duplicates": 0,
            "reordered": 0, "jitter_ms": 1.0, "max_jitter_ms": 2.0, "mean_jitter_ms": 1.0,
            "jitter_sum_ms": 500.0, "jitter_samples": 500, "max_delta_ms": 21.0,
            "transitions": {"n00": 499, "n01": 0, "n10": 0, "n11": 0}, "burst_ratio": 1.0,
            "jb_discarded": 0, "effective_loss_pct": 0.0, "rtt_ms": null, "delay_ms": 100.0,
            "r_factor": 90.0, "mos": 4.3, "capture_drops": 0
        })
    }

    fn heartbeat_json() -> Value {
        json!({
            "agent_id": "fra-media-1", "agent_version": "0.1.0", "time": "2026-11-20T10:00:05Z",
            "host_uptime_s": 1000, "cpu_pct": 3.0, "agent_cpu_pct": 1.0,
            "mem_total_bytes": 1000, "mem_used_bytes": 500, "agent_rss_bytes": 100,
            "load_avg": [0.1, 0.1, 0.1], "workers": [], "streams_tracked": 1,
            "streams_evicted": 0, "processes": [{"name": "asterisk", "up": true, "count": 1}]
        })
    }

    fn batch_json(reports: Vec<Value>, heartbeats: Vec<Value>) -> Value {
        json!({
            "schema": SCHEMA_VERSION, "batch_id": "00000000-0000-4000-8000-00000000000a",
            "agent_id": "fra-media-1", "sent_at": "2026-11-20T10:00:10Z",
            "reports": reports, "heartbeats": heartbeats
        })
    }

    /// The batch with one report changed by `edit`, validated at RECEIVED_NS.
    fn check_report(edit: impl FnOnce(&mut Value)) -> Result<(), ApiError> {
        let mut report = report_json();
        edit(&mut report);
        let batch = parse_batch(batch_json(vec![report], vec![]).to_string().as_bytes())?;
        validate(&batch, RECEIVED_NS, DEFAULT_MAX_FUTURE_S)
    }

    fn check_heartbeat(edit: impl FnOnce(&mut Value)) -> Result<(), ApiError> {
        let mut heartbeat = heartbeat_json();
        edit(&mut heartbeat);
        let batch = parse_batch(batch_json(vec![], vec![heartbeat]).to_string().as_bytes())?;
        validate(&batch, RECEIVED_NS, DEFAULT_MAX_FUTURE_S)
    }

    /// A 422 whose message starts with the field and contains `why`.
    fn assert_refused(result: Result<(), ApiError>, field: &str, why: &str) {
        let e = result.expect_err(field);
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.message);
        assert!(
            e.message.starts_with(&format!("{field}: ")) && e.message.contains(why),
            "{field} / {why}: {}",
            e.message
        );
    }

    #[test]
    fn the_test_batch_is_valid() {
        check_report(|_| {}).expect("report");
        check_heartbeat(|_| {}).expect("heartbeat");
    }

    #[test]
    fn trailing_bytes_after_the_batch_are_refused() {
        let good = batch_json(vec![report_json()], vec![]).to_string();
        parse_batch(format!("{good} \n\t").as_bytes()).expect("trailing whitespace is JSON");
        for tail in ["x", "garbage", "{}", "]", "\u{0}", " 1"] {
            let e = parse_batch(format!("{good}{tail}").as_bytes()).expect_err(tail);
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "malformed_json")
            );
            assert!(e.message.contains("trailing"), "{tail:?}: {}", e.message);
        }
    }

    #[test]
    fn times_more_than_max_future_after_receipt_are_refused() {
        // Five minutes ahead is allowed (clock skew), a second more is not.
        let at = |ns: i64| json!(Timestamp::from_ns(ns).to_string());
        let limit_ns = RECEIVED_NS + 300 * NS_PER_S;
        check_heartbeat(|h| h["time"] = at(limit_ns)).expect("at the limit");
        assert_refused(
            check_heartbeat(|h| h["time"] = at(limit_ns + NS_PER_S)),
            "heartbeats[0].time",
            "is more than 300 s after the time it was received",
        );
        assert_refused(
            check_heartbeat(|h| h["time"] = json!("2099-01-01T00:00:00Z")),
            "heartbeats[0].time",
            "2099-01-01T00:00:00",
        );
        check_report(|r| r["window_end"] = at(limit_ns)).expect("at the limit");
        assert_refused(
            check_report(|r| r["window_end"] = json!("2099-01-01T00:00:00Z")),
            "reports[0].window_end",
            "after the time it was received",
        );
        assert_refused(
            check_report(|r| {
                r["window_start"] = json!("2099-01-01T00:00:00Z");
                r["window_end"] = json!("2099-01-01T00:00:10Z");
            }),
            "reports[0].window_start",
            "after the time it was received",
        );
        // The limit is the configured one.
        let mut hb = heartbeat_json();
        hb["time"] = at(RECEIVED_NS + 20 * NS_PER_S);
        let batch =
            parse_batch(batch_json(vec![], vec![hb]).to_string().as_bytes()).expect("parse");
        validate(&batch, RECEIVED_NS, 30).expect("within 30 s");
        let e = validate(&batch, RECEIVED_NS, 10).expect_err("beyond 10 s");
        assert!(e.message.contains("more than 10 s"), "{}", e.message);
    }

    #[test]
    fn counters_beyond_the_window_length_are_refused() {
        // 10 s window: 100,000 of anything is possible, 100,001 is not.
        check_report(|r| {
            r["packets"] = json!(100_000);
            r["expected"] = json!(100_000);
            r["jitter_samples"] = json!(100_000);
        })
        .expect("10,000 per second");
        for field in [
            "packets",
            "expected",
            "duplicates",
            "reordered",
            "jb_discarded",
            "jitter_samples",
        ] {
            assert_refused(
                check_report(|r| r[field] = json!(100_001)),
                &format!("reports[0].{field}"),
                "100001 is more than 10000 per second of a 10 s window allows (100000)",
            );
        }
        assert_refused(
            check_report(|r| r["transitions"]["n11"] = json!(99_502)),
            "reports[0].transitions",
            "more than 10000 per second",
        );
        // A window shorter than a second (or empty) is allowed a second's worth; a partial
        // second counts whole.
        let empty = |r: &mut Value| r["window_end"] = r["window_start"].clone();
        check_report(|r| {
            empty(r);
            r["packets"] = json!(10_000);
        })
        .expect("a second's worth");
        assert_refused(
            check_report(|r| {
                empty(r);
                r["packets"] = json!(10_001);
            }),
            "reports[0].packets",
            "of a 1 s window",
        );
        check_report(|r| {
            r["window_end"] = json!("2026-11-20T10:00:10.000001Z");
            r["packets"] = json!(110_000);
        })
        .expect("10.000001 s count as 11");
        // Expected may exceed packets (it lags by the reorder window); lost may not exceed it.
        check_report(|r| r["expected"] = json!(600)).expect("expected > packets");
        assert_refused(
            check_report(|r| r["capture_drops"] = json!(1_500_000_001u64)),
            "reports[0].capture_drops",
            "per second",
        );
        check_report(|r| r["capture_drops"] = json!(1_500_000_000u64)).expect("line rate");
    }

    #[test]
    fn burst_ratio_stays_within_its_range() {
        assert_refused(
            check_report(|r| r["burst_ratio"] = json!(0.99)),
            "reports[0].burst_ratio",
            "within 1..=499",
        );
        // 1/(p+q) is at most the number of transitions: 10 found then 10 lost gives
        // p = 1/10, q = 0, BurstR = 10 (rounded to 6 decimals by the agent).
        let runs = |r: &mut Value, burst_ratio: f64| {
            r["transitions"] = json!({"n00": 9, "n01": 1, "n10": 0, "n11": 9});
            r["burst_ratio"] = json!(burst_ratio);
        };
        check_report(|r| runs(r, 10.0)).expect("10 found, 10 lost");
        assert_refused(
            check_report(|r| runs(r, 19.01)),
            "reports[0].burst_ratio",
            "19 transitions",
        );
        check_report(|r| {
            r["transitions"] = json!({"n00": 0, "n01": 0, "n10": 0, "n11": 0});
            r["burst_ratio"] = json!(1.0);
        })
        .expect("no transitions: 1");
    }

    #[test]
    fn ids_too_long_or_with_control_or_bidi_characters_are_refused() {
        for field in ["stream_id", "call_id", "src", "codec", "end_reason"] {
            check_report(|r| r[field] = json!("a".repeat(256))).expect("256 bytes");
            assert_refused(
                check_report(|r| r[field] = json!("a".repeat(257))),
                &format!("reports[0].{field}"),
                "is 257 bytes long, more than 256",
            );
        }
        // 129 two-byte characters: 258 bytes.
        assert_refused(
            check_report(|r| r["call_id"] = json!("é".repeat(129))),
            "reports[0].call_id",
            "258 bytes",
        );
        check_report(|r| r["call_id"] = json!("appel-é-中-🙂")).expect("plain Unicode");
        for bad in [
            '\u{0}', '\n', '\u{1b}', '\u{7f}', '\u{85}', '\u{200e}', '\u{200f}', '\u{202a}',
            '\u{202e}', '\u{2066}', '\u{2069}', '\u{200b}', '\u{feff}', '\u{2028}', '\u{061c}',
        ] {
            let id = format!("call{bad}1");
            assert_refused(
                check_report(|r| r["call_id"] = json!(id)),
                "reports[0].call_id",
                &format!("contains U+{:04X}", bad as u32),
            );
        }
        assert_refused(
            check_report(|r| r["stream_id"] = json!("0123\u{202e}456789abcdef")),
            "reports[0].stream_id",
            "U+202E",
        );
        assert_refused(
            check_heartbeat(|h| h["processes"][0]["name"] = json!("aster\u{2067}isk")),
            "heartbeats[0].processes[0].name",
            "U+2067",
        );
        assert_refused(
            check_heartbeat(|h| h["agent_version"] = json!("v".repeat(300))),
            "heartbeats[0].agent_version",
            "300 bytes",
        );
        let mut batch = batch_json(vec![], vec![]);
        batch["agent_id"] = json!("fra\u{202e}1");
        let batch = parse_batch(batch.to_string().as_bytes()).expect("parse");
        assert_refused(
            validate(&batch, RECEIVED_NS, DEFAULT_MAX_FUTURE_S),
            "agent_id",
            "U+202E",
        );
    }

    #[test]
    fn final_totals_are_checked_too() {
        let totals = |r: &mut Value| {
            r["final"] = json!(true);
            let mut t = r.clone();
            let t = t.as_object_mut().expect("object");
            for key in [
                "agent_id",
                "stream_id",
                "window_start",
                "window_end",
                "final",
                "jitter_sum_ms",
                "jitter_samples",
                "transitions",
                "capture_drops",
            ] {
                t.remove(key);
            }
            t.insert("first_seen".into(), json!("2026-11-20T10:00:00Z"));
            t.insert("last_seen".into(), json!("2026-11-20T10:00:10Z"));
            for (key, value) in [
                ("loss_bursts", json!(0)),
                ("max_loss_burst", json!(0)),
                ("lost_rfc3550", json!(0)),
                ("delay_source", json!("assumed")),
                ("clock_source", json!("static")),
                ("detection", json!("sdp")),
                ("jitter_buffer", json!("fixed:60")),
                ("ie", json!(0.0)),
                ("bpl", json!(25.1)),
                ("flags", json!([])),
            ] {
                t.insert(key.into(), value);
            }
            r["totals"] = Value::Object(t.clone());
        };
        check_report(totals).expect("a valid final report");
        assert_refused(
            check_report(|r| {
                totals(r);
                r["totals"]["flags"] = json!(["ok", "bad\u{202d}"]);
            }),
            "reports[0].totals.flags[1]",
            "U+202D",
        );
        assert_refused(
            check_report(|r| {
                totals(r);
                r["totals"]["mos"] = json!(4.6);
            }),
            "reports[0].totals.mos",
            "1..=4.5",
        );
        assert_refused(
            check_report(|r| {
                totals(r);
                r["totals"]["burst_ratio"] = json!(0.5);
            }),
            "reports[0].totals.burst_ratio",
            "at least 1",
        );
        assert_refused(
            check_report(|r| {
                totals(r);
                r["totals"]["last_seen"] = json!("2099-01-01T00:00:00Z");
            }),
            "reports[0].totals.last_seen",
            "after the time it was received",
        );
    }
}

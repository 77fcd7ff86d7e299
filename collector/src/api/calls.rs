//! Call records and call KPIs over HTTP (issue 12): `GET /api/v1/calls` (a filtered, keyset-
//! paged list of stored call records; ops, or a customer token for its own customer's calls)
//! and `GET /api/v1/customers/{id}/kpis` (RFC 6076 / E.411 / E.425 KPIs from the hourly call
//! counts, in total and grouped by hour, day of the customer's time zone, peer or direction).
//!
//! Parameters are parsed and bounded here; the counts come from the store and the KPI
//! arithmetic from `sla::kpis`. Must not compute a KPI itself or read call records to answer
//! the KPI route (a month of calls is answered from the hourly counts).

use std::collections::{BTreeMap, HashMap};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use voqa_wire::{CallRecord, Timestamp};

use super::openapi::ErrorBody;
use super::ops::{
    DAY_NS, authorized_customer, configured_customer, cursor_param, encode_cursor, page_limit,
    range,
};
use super::{ApiError, AppState, authenticate, require};
use crate::auth::Role;
use crate::sla::kpis::{CallCounts, Kpis, PROBLEM_KINDS};
use crate::store::calls::{OUTCOME_NAMES, peer_key};
use crate::store::{CallGroup, CallQuery, StatusFilter};

/// The 200 body of `GET /api/v1/calls`.
#[derive(Serialize, ToSchema)]
pub struct CallsPage<'a> {
    pub items: Vec<CallItem<'a>>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One stored call record as the agent sent it, with its identity (`AGENT/call/CALL_KEY`).
#[derive(Serialize, ToSchema)]
pub struct CallItem<'a> {
    /// `AGENT/call/CALL_KEY`: the key the record is stored once under.
    pub record_id: String,
    /// The call's outcome as the KPIs count it (`answered`, `redirected`, `user_busy`,
    /// `no_answer`, `abandoned`, `terminal_reject` or `failed`).
    pub outcome: &'static str,
    #[serde(flatten)]
    pub record: &'a CallRecord,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_parameter", message)
}

#[utoipa::path(
    get,
    path = "/api/v1/calls",
    params(
        ("customer" = Option<String>, Query, description = "Only this configured customer's calls (its agents; with subnets, the calls attributed to them at ingest). A customer token may give only its own id and defaults to it; 404 when not configured."),
        ("peer" = Option<String>, Query, description = "Only calls with this peer address (an IP address; a port is ignored).", example = "192.0.2.10"),
        ("from" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00))?$", description = "Start (inclusive) of the range of first-INVITE times: RFC 3339 UTC time or a date (midnight UTC). Default: `to` − 1 day; at most 366 days.", example = "2026-11-01"),
        ("to" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00))?$", description = "End (exclusive): RFC 3339 UTC time or a date. Default: now.", example = "2026-12-01"),
        ("status" = Option<String>, Query, pattern = r"^([1-6][0-9][0-9]|answered|redirected|user_busy|no_answer|abandoned|terminal_reject|failed)$", description = "A final SIP status (`486`) or an outcome (`answered`, `redirected`, `user_busy`, `no_answer`, `abandoned`, `terminal_reject`, `failed`).", example = "486"),
        ("problem" = Option<String>, Query, pattern = r"^(any|no_rtp|one_way_audio|rtp_stopped|media_address_mismatch)$", description = "Only calls with this media problem, or with `any`.", example = "one_way_audio"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, 1..=1000 (default 100)."),
        ("cursor" = Option<String>, Query, pattern = r"^[0-9a-f]{1,16}\.[0-9a-f]{1,16}$", description = "`next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "A page of call records, oldest first INVITE first.", body = CallsPage),
        (status = 400, description = "A parameter is invalid (named in the message).", body = ErrorBody),
        (status = 401, description = "No, an unknown or a revoked token.", body = ErrorBody),
        (status = 403, description = "Neither an ops token nor the named customer's own.", body = ErrorBody),
        (status = 404, description = "`customer` is not configured.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn calls(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let role = authenticate(&state, &headers).await?;
    // A customer token reads only its own customer's calls, and names it by default.
    let customer_id = match (&role, q.get("customer")) {
        (Role::Customer(own), None) => Some(own.clone()),
        (_, named) => named.cloned(),
    };
    match &customer_id {
        Some(id) => require(&role, &[Role::Customer(id.clone())])?,
        None => require(&role, &[])?,
    }
    let (from, to) = range(&q, DAY_NS)?;
    let limit = page_limit(&q)?;
    let after = cursor_param(&q)?;
    let peer = match q.get("peer") {
        None => None,
        Some(p) => {
            let key = peer_key(Some(p));
            if key.is_empty() {
                return Err(bad(format!("peer: '{p}' is not an IP address")));
            }
            Some(key)
        }
    };
    let status = match q.get("status").map(String::as_str) {
        None => None,
        Some(s) if OUTCOME_NAMES.contains(&s) => Some(StatusFilter::Outcome(s.to_owned())),
        Some(s) => Some(StatusFilter::Code(
            s.parse::<i64>()
                .ok()
                .filter(|code| (100..=699).contains(code) && s.len() == 3)
                .ok_or_else(|| {
                    bad(format!(
                        "status: a SIP status 100..=699 or one of {}",
                        OUTCOME_NAMES.join(", ")
                    ))
                })?,
        )),
    };
    let problem = match q.get("problem").map(String::as_str) {
        None => None,
        Some(p) if p == "any" || PROBLEM_KINDS.contains(&p) => Some(p.to_owned()),
        Some(_) => {
            return Err(bad(format!(
                "problem: any or one of {}",
                PROBLEM_KINDS.join(", ")
            )));
        }
    };
    let customer = match &customer_id {
        None => None,
        Some(id) => Some(configured_customer(&state, id)?),
    };
    let query = CallQuery {
        agents: customer.as_ref().map(|c| c.agents.clone()),
        scope: customer
            .as_ref()
            .filter(|c| !c.subnets.is_empty())
            .map(|c| c.id.clone()),
        from_ns: from,
        to_ns: to,
        peer,
        status,
        problem,
        after,
        limit,
    };
    let rows = state
        .store
        .call_records(&query)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| encode_cursor(r.start_ns, r.id)))
        .flatten();
    let items: Vec<CallItem<'_>> = rows
        .iter()
        .map(|r| CallItem {
            record_id: r.record.record_id(),
            outcome: crate::store::calls::outcome_name(crate::sla::kpis::outcome(&r.record.call)),
            record: &r.record,
        })
        .collect();
    Ok(axum::Json(CallsPage { items, next_cursor }).into_response())
}

/// The 200 body of `GET /api/v1/customers/{id}/kpis`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiAnswer {
    pub customer: String,
    /// The range asked for; the hours counted are those (UTC) starting in it.
    pub from: Timestamp,
    pub to: Timestamp,
    /// `hour`, `day`, `peer` or `direction`; null without grouping.
    pub group_by: Option<String>,
    /// For a customer narrowed to subnets: since when its calls are attributed to it at
    /// ingest (calls stored before are not in its counts); null otherwise.
    pub attributed_since: Option<Timestamp>,
    /// The KPIs of the whole range.
    pub total: Kpis,
    /// One entry per group, in key order (empty without `group_by`).
    pub groups: Vec<KpiGroup>,
}

/// The KPIs of one group.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiGroup {
    /// The hour's start (RFC 3339 UTC), the day (`YYYY-MM-DD` in the customer's time zone),
    /// the peer's address (`other` for the peers beyond the hourly cap, `""` when unknown)
    /// or the direction.
    pub key: String,
    pub kpis: Kpis,
}

#[utoipa::path(
    get,
    path = "/api/v1/customers/{id}/kpis",
    params(
        ("id" = String, Path, description = "A configured customer's id.", example = "acme"),
        ("from" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00))?$", description = "Start (inclusive): RFC 3339 UTC time or a date (midnight UTC). Calls count by the UTC hour of their first INVITE; the hours starting in [from, to) are summed. Default: `to` − 30 days; at most 366 days.", example = "2026-11-01"),
        ("to" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00))?$", description = "End (exclusive): RFC 3339 UTC time or a date. Default: now.", example = "2026-12-01"),
        ("group_by" = Option<String>, Query, pattern = r"^(hour|day|peer|direction)$", description = "`hour`, `day` (of the customer's time zone, by each hour's start), `peer` or `direction`; absent: the total only.", example = "day"),
    ),
    responses(
        (status = 200, description = "The call KPIs of the range, and per group.", body = KpiAnswer),
        (status = 400, description = "A parameter is invalid (named in the message).", body = ErrorBody),
        (status = 401, description = "No, an unknown or a revoked token.", body = ErrorBody),
        (status = 403, description = "Neither an ops token nor this customer's own.", body = ErrorBody),
        (status = 404, description = "No such customer.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn kpis(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let customer = authorized_customer(&state, &headers, id).await?;
    let (from, to) = range(&q, 30 * DAY_NS)?;
    let group_by = q.get("group_by").map(String::as_str);
    let group = match group_by {
        None => CallGroup::Total,
        Some("hour" | "day") => CallGroup::Hour,
        Some("peer") => CallGroup::Peer,
        Some("direction") => CallGroup::Direction,
        Some(other) => {
            return Err(bad(format!(
                "group_by: '{other}' is not hour, day, peer or direction"
            )));
        }
    };
    let zone = crate::report::build::customer_zone(&customer)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let internal = |e: crate::store::StoreError| ApiError::internal(e.to_string());
    let (scope, attributed_since) = if customer.subnets.is_empty() {
        (String::new(), None)
    } else {
        let since = state
            .store
            .scope_since(&customer.id, &crate::sla::scope_signature(&customer))
            .await
            .map_err(internal)?;
        (customer.id.clone(), since.map(Timestamp::from_ns))
    };
    let rows = state
        .store
        .call_counts(&scope, &customer.agents, from, to, group)
        .await
        .map_err(internal)?;
    let mut total = CallCounts::default();
    let mut groups = BTreeMap::<String, CallCounts>::new();
    for row in &rows {
        total.add(&row.counts);
        let key = match group_by {
            None => continue,
            Some("hour") => Timestamp::from_ns(row.hour_ns).to_string(),
            Some("day") => jiff::Timestamp::from_nanosecond(i128::from(row.hour_ns))
                .map(|t| t.to_zoned(zone.clone()).date().to_string())
                .map_err(|e| ApiError::internal(e.to_string()))?,
            Some(_) => row.label.clone(),
        };
        groups.entry(key).or_default().add(&row.counts);
    }
    Ok(axum::Json(KpiAnswer {
        customer: customer.id.clone(),
        from: Timestamp::from_ns(from),
        to: Timestamp::from_ns(to),
        group_by: group_by.map(str::to_owned),
        attributed_since,
        total: Kpis::from_counts(&total),
        groups: groups
            .into_iter()
            .map(|(key, counts)| KpiGroup {
                key,
                kpis: Kpis::from_counts(&counts),
            })
            .collect(),
    })
    .into_response())
}

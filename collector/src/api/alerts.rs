//! `GET /api/v1/alerts` (pending and firing alerts) and `GET /api/v1/alerts/history`
//! (transitions to firing and resolved) for ops tokens, and for `customer:<id>` tokens
//! their own customer's only (403 when asking for another's).
//!
//! Handlers read what the alert engine stored; they evaluate nothing.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use voqa_wire::Timestamp;

use super::ops::range;
use super::{ApiError, AppState, access_log, authenticate};
use crate::auth::Role;
use crate::store::alerts::{AlertEventRow, AlertStateRow, MAX_HISTORY};

use super::openapi::ErrorBody;

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// The 200 body of `GET /api/v1/alerts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsPage {
    pub items: Vec<AlertItem>,
}

/// One pending or firing alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertItem {
    pub rule: String,
    pub customer: String,
    /// `pending` (its rule's `for:` not reached yet) or `firing`.
    pub state: String,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub threshold: f64,
    /// Since when the condition holds.
    pub since: Timestamp,
    /// Since when it fires; null while pending.
    pub firing_since: Option<Timestamp>,
    /// The evaluation that last confirmed it.
    pub updated: Timestamp,
}

/// The 200 body of `GET /api/v1/alerts/history`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertHistoryPage {
    pub items: Vec<AlertEventItem>,
    /// True when the page holds the most items a page may: narrow the range for the rest.
    pub truncated: bool,
}

/// One transition.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertEventItem {
    pub rule: String,
    pub customer: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub threshold: f64,
    pub since: Timestamp,
    /// When the transition happened.
    pub at: Timestamp,
}

fn labels(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

impl From<AlertStateRow> for AlertItem {
    fn from(s: AlertStateRow) -> Self {
        AlertItem {
            labels: labels(&s.labels),
            rule: s.rule,
            customer: s.customer,
            state: s.state,
            severity: s.severity,
            value: s.value,
            threshold: s.threshold,
            since: Timestamp::from_ns(s.since_ns),
            firing_since: s.fired_ns.map(Timestamp::from_ns),
            updated: Timestamp::from_ns(s.updated_ns),
        }
    }
}

impl From<AlertEventRow> for AlertEventItem {
    fn from(e: AlertEventRow) -> Self {
        AlertEventItem {
            labels: labels(&e.labels),
            rule: e.rule,
            customer: e.customer,
            state: e.state,
            severity: e.severity,
            value: e.value,
            threshold: e.threshold,
            since: Timestamp::from_ns(e.since_ns),
            at: Timestamp::from_ns(e.at_ns),
        }
    }
}

/// The customer a token may see alerts of: `None` for ops (all), the token's own customer,
/// 403 for any other role or for a `customer` asked that is not the token's.
fn visible_customer(role: &Role, asked: Option<&str>) -> Result<Option<String>, ApiError> {
    let refuse = |message: String| {
        access_log::note_refusal(&message);
        Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message))
    };
    match role {
        Role::Ops => Ok(asked.map(str::to_owned)),
        Role::Customer(own) => match asked {
            Some(asked) if asked != own => refuse(format!(
                "a customer:{own} token may not read customer '{asked}'"
            )),
            _ => Ok(Some(own.clone())),
        },
        other => refuse(format!(
            "role {} may not use this endpoint",
            other.as_string()
        )),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    params(
        ("customer" = Option<String>, Query, description = "Only this customer's alerts. A customer token sees its own only (403 for another)."),
    ),
    responses(
        (status = 200, description = "Pending and firing alerts, by rule and labels.", body = AlertsPage),
        (status = 401, description = "No, an unknown or a revoked token.", body = ErrorBody),
        (status = 403, description = "Neither an ops token nor this customer's own.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn active(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let role = authenticate(&state, &headers).await?;
    let customer = visible_customer(&role, q.get("customer").map(String::as_str))?;
    let rows = state.store.alert_states().await.map_err(|e| {
        state.metrics.store_error();
        ApiError::internal(e.to_string())
    })?;
    let items = rows
        .into_iter()
        .filter(|s| customer.as_ref().is_none_or(|c| *c == s.customer))
        .map(AlertItem::from)
        .collect();
    Ok(axum::Json(AlertsPage { items }).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/alerts/history",
    params(
        ("from" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00))?$", description = "Start (inclusive): RFC 3339 UTC time or a date. Default: `to` − 7 days; the range covers at most 366 days.", example = "2026-11-01"),
        ("to" = Option<String>, Query, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|\+00:00))?$", description = "End (exclusive): RFC 3339 UTC time or a date. Default: now.", example = "2026-12-01"),
        ("customer" = Option<String>, Query, description = "Only this customer's transitions. A customer token reads its own only (403 for another)."),
    ),
    responses(
        (status = 200, description = "Transitions to firing and resolved, oldest first (at most 1,000).", body = AlertHistoryPage),
        (status = 400, description = "A parameter is invalid (named in the message).", body = ErrorBody),
        (status = 401, description = "No, an unknown or a revoked token.", body = ErrorBody),
        (status = 403, description = "Neither an ops token nor this customer's own.", body = ErrorBody),
        (status = 500, description = "The store failed.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let role = authenticate(&state, &headers).await?;
    let customer = visible_customer(&role, q.get("customer").map(String::as_str))?;
    let (from, to) = range(&q, 7 * DAY_NS)?;
    let rows = state
        .store
        .alert_history(from, to, customer.as_deref(), MAX_HISTORY)
        .await
        .map_err(|e| {
            state.metrics.store_error();
            ApiError::internal(e.to_string())
        })?;
    let truncated = rows.len() >= MAX_HISTORY as usize;
    let items = rows.into_iter().map(AlertEventItem::from).collect();
    Ok(axum::Json(AlertHistoryPage { items, truncated }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_see_their_own_alerts_only() {
        assert_eq!(visible_customer(&Role::Ops, None).expect("ops"), None);
        assert_eq!(
            visible_customer(&Role::Ops, Some("x")).expect("ops"),
            Some("x".to_owned())
        );
        let acme = Role::Customer("acme".into());
        assert_eq!(
            visible_customer(&acme, None).expect("own"),
            Some("acme".to_owned())
        );
        assert_eq!(
            visible_customer(&acme, Some("acme")).expect("own"),
            Some("acme".to_owned())
        );
        let err = visible_customer(&acme, Some("globex")).expect_err("other");
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        let err = visible_customer(&Role::Agent, None).expect_err("agent");
        assert_eq!(err.status, StatusCode::FORBIDDEN);
    }
}

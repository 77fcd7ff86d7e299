//! Call records in the store (issue 12): one row per `voqa_wire::CallRecord`, stored once by
//! its identity (agent, `call_key`) in the batch's transaction, the customers whose subnets
//! it matched (`call_record_scopes`), and the per-scope, per-hour aggregate counts
//! (`call_hourly`, keyed scope, agent, hour, direction, peer) that the call KPIs are computed
//! from without reading the records.
//!
//! The peer dimension is bounded: at most [`MAX_PEERS_PER_HOUR`] peers per scope, agent and
//! hour get their own row; the calls of any further peer fold into the peer `other`. Each
//! scope, agent, hour and direction also has a rollup row (peer [`ALL_PEERS`]) that the
//! queries without a peer dimension read. What a
//! call counts as is `sla::kpis` (pure); this module only stores and sums those counts. It
//! must not classify calls itself, and knows nothing of HTTP or customers' configuration.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use sqlx::{Postgres, QueryBuilder, Row, Sqlite};
use voqa_wire::{Batch, CallRecord};

use super::{HOUR_NS, MAX_PAGE, StoreError, saturating_i64, stored_u64};
use crate::sla::kpis::{self, CallCounts, Outcome, PROBLEM_KINDS};

/// Distinct peers per scope, agent and hour with their own aggregate row; the rest are `other`.
pub const MAX_PEERS_PER_HOUR: usize = 50;

/// The peer the calls beyond [`MAX_PEERS_PER_HOUR`] are counted under.
pub const OTHER_PEER: &str = "other";

/// The peer of the rollup rows: every call of a scope, agent, hour and direction, whatever
/// its peer. Totals and the hour, day and direction groups read only these (two rows an hour
/// instead of up to a hundred); the peer group reads every other row.
pub const ALL_PEERS: &str = "*";

/// A call record validated and converted to column values.
#[derive(Debug)]
pub(crate) struct PreparedCall {
    pub(crate) call_key: String,
    /// The first INVITE (else the first time the record has, else its receipt): the call's
    /// place in time.
    pub(crate) start_ns: i64,
    pub(crate) call_id: String,
    /// `inbound`, `outbound`, `internal`, `external`, or `unknown` without local networks.
    pub(crate) direction: String,
    /// The peer's IP address (no port), `""` when the record names none.
    pub(crate) peer: String,
    pub(crate) status: Option<i64>,
    pub(crate) outcome: &'static str,
    /// `,kind,kind,` of the known media problem kinds present, `""` for none.
    pub(crate) problems: String,
    pub(crate) json: String,
    pub(crate) counts: CallCounts,
    /// Customers whose subnets the call matched (besides scope `""`).
    pub(crate) scopes: Vec<String>,
}

/// The text an outcome is stored and filtered as.
pub fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Answered => "answered",
        Outcome::Redirected => "redirected",
        Outcome::UserBusy => "user_busy",
        Outcome::NoAnswer => "no_answer",
        Outcome::Abandoned => "abandoned",
        Outcome::TerminalReject => "terminal_reject",
        Outcome::Failed => "failed",
    }
}

/// The outcome names `status=` accepts.
pub const OUTCOME_NAMES: [&str; 7] = [
    "answered",
    "redirected",
    "user_busy",
    "no_answer",
    "abandoned",
    "terminal_reject",
    "failed",
];

/// The peer column's value for a record's `peer` (`IP:port` or an address): the address only,
/// so that a peer's ephemeral ports do not multiply its rows.
pub fn peer_key(peer: Option<&str>) -> String {
    peer.and_then(crate::sla::commitments::endpoint_ip)
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}

/// Converts the batch's call records (scopes: `scopes[i]` for `batch.calls[i]`), unique by
/// `call_key` in key order; returns them and how many later copies were dropped.
pub(crate) fn prepare_calls(
    batch: &Batch,
    received_ns: i64,
    scopes: &[Vec<String>],
) -> Result<(Vec<PreparedCall>, u64), StoreError> {
    let mut calls = Vec::with_capacity(batch.calls.len());
    for (index, record) in batch.calls.iter().enumerate() {
        calls.push(prepare_call(
            index,
            batch,
            record,
            received_ns,
            scopes.get(index),
        )?);
    }
    calls.sort_by(|a, b| a.call_key.cmp(&b.call_key));
    let before = calls.len();
    calls.dedup_by(|later, first| later.call_key == first.call_key);
    let duplicates = (before - calls.len()) as u64;
    Ok((calls, duplicates))
}

fn prepare_call(
    index: usize,
    batch: &Batch,
    record: &CallRecord,
    received_ns: i64,
    scopes: Option<&Vec<String>>,
) -> Result<PreparedCall, StoreError> {
    let invalid = |what: &str| StoreError::Invalid(format!("calls[{index}].{what}"));
    if record.agent_id != batch.agent_id {
        return Err(invalid("agent_id differs from the batch agent_id"));
    }
    if record.call_key.is_empty() || record.call_key.len() > 64 {
        return Err(invalid("call_key must be 1 to 64 characters"));
    }
    let call = &record.call;
    let start_ns = [call.setup, call.first_provisional, call.answer, call.end]
        .into_iter()
        .flatten()
        .map(|t| t.as_ns())
        .next()
        // A record without any time (the agent always has its INVITE's) is placed at its
        // receipt rather than refused: refusing would dead-letter the agent's batch.
        .unwrap_or(received_ns);
    let json = serde_json::to_string(record)
        .map_err(|e| invalid(&format!("cannot be serialised: {e}")))?;
    let kinds: Vec<&str> = PROBLEM_KINDS
        .iter()
        .copied()
        .filter(|kind| call.problems.iter().any(|p| p.kind == *kind))
        .collect();
    let problems = if kinds.is_empty() {
        String::new()
    } else {
        format!(",{},", kinds.join(","))
    };
    Ok(PreparedCall {
        call_key: record.call_key.clone(),
        start_ns,
        call_id: call.call_id.clone(),
        direction: call
            .direction
            .clone()
            .unwrap_or_else(|| "unknown".to_owned()),
        peer: peer_key(call.peer.as_deref()),
        status: call.status.map(i64::from),
        outcome: outcome_name(kpis::outcome(call)),
        problems,
        json,
        counts: CallCounts::of(call),
        scopes: scopes.cloned().unwrap_or_default(),
    })
}

/// The hour (UTC, ns) a call's counts go to.
pub(crate) fn hour_of(start_ns: i64) -> i64 {
    start_ns.div_euclid(HOUR_NS) * HOUR_NS
}

/// What the new calls of a batch add to one `call_hourly` row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallHourDelta {
    pub(crate) scope: String,
    pub(crate) hour_ns: i64,
    pub(crate) direction: String,
    pub(crate) peer: String,
    pub(crate) counts: CallCounts,
}

/// Every (scope, hour) the new calls count in: the stored peers of these are read first.
pub(crate) fn scope_hours<'a>(new: impl Iterator<Item = &'a PreparedCall>) -> Vec<(String, i64)> {
    let mut keys = std::collections::BTreeSet::new();
    for call in new {
        let hour = hour_of(call.start_ns);
        keys.insert((String::new(), hour));
        for scope in &call.scopes {
            keys.insert((scope.clone(), hour));
        }
    }
    keys.into_iter().collect()
}

/// Sums the new calls into row deltas in key order. `stored` holds, per (scope, hour), the
/// peers that already have a row: a peer keeps its row; a new peer gets one while the hour
/// has fewer than [`MAX_PEERS_PER_HOUR`], otherwise its calls count under `other`.
pub(crate) fn call_hour_deltas<'a>(
    new: impl Iterator<Item = &'a PreparedCall>,
    mut stored: HashMap<(String, i64), HashSet<String>>,
) -> Vec<CallHourDelta> {
    let mut rows = BTreeMap::<(String, i64, String, String), CallCounts>::new();
    for call in new {
        let hour = hour_of(call.start_ns);
        let scopes = std::iter::once("").chain(call.scopes.iter().map(String::as_str));
        for scope in scopes {
            let peers = stored.entry((scope.to_owned(), hour)).or_default();
            let named = peers
                .iter()
                .filter(|p| p.as_str() != OTHER_PEER && p.as_str() != ALL_PEERS)
                .count();
            let peer = if peers.contains(&call.peer) || named < MAX_PEERS_PER_HOUR {
                peers.insert(call.peer.clone());
                call.peer.clone()
            } else {
                peers.insert(OTHER_PEER.to_owned());
                OTHER_PEER.to_owned()
            };
            rows.entry((scope.to_owned(), hour, call.direction.clone(), peer))
                .or_default()
                .add(&call.counts);
            rows.entry((
                scope.to_owned(),
                hour,
                call.direction.clone(),
                ALL_PEERS.to_owned(),
            ))
            .or_default()
            .add(&call.counts);
        }
    }
    rows.into_iter()
        .map(
            |((scope, hour_ns, direction, peer), counts)| CallHourDelta {
                scope,
                hour_ns,
                direction,
                peer,
                counts,
            },
        )
        .collect()
}

/// `INSERT INTO call_hourly … ON CONFLICT DO UPDATE` adding the counts (`max_fn`: the
/// backend's two-argument maximum, `MAX` or `GREATEST`), for one row of placeholders
/// written by `placeholder(n)` (1-based).
fn hourly_upsert(max_fn: &str, placeholder: impl Fn(usize) -> String) -> String {
    let columns = kpis::columns();
    let keys = ["scope", "agent_id", "hour_ns", "direction", "peer"];
    let all: Vec<&str> = keys
        .iter()
        .copied()
        .chain(columns.iter().map(String::as_str))
        .collect();
    let values: Vec<String> = (1..=all.len()).map(placeholder).collect();
    let updates: Vec<String> = columns
        .iter()
        .map(|c| {
            if kpis::merges_by_max(c) {
                format!("{c} = {max_fn}(call_hourly.{c}, excluded.{c})")
            } else {
                format!("{c} = call_hourly.{c} + excluded.{c}")
            }
        })
        .collect();
    format!(
        "INSERT INTO call_hourly ({}) VALUES ({}) ON CONFLICT (scope, agent_id, hour_ns, \
         direction, peer) DO UPDATE SET {}",
        all.join(", "),
        values.join(", "),
        updates.join(", ")
    )
}

static SQLITE_HOURLY_UPSERT: LazyLock<String> =
    LazyLock::new(|| hourly_upsert("MAX", |_| "?".to_owned()));
static PG_HOURLY_UPSERT: LazyLock<String> =
    LazyLock::new(|| hourly_upsert("GREATEST", |n| format!("${n}")));

/// `SUM(c) … , MAX(srd_max_ms), MAX(sdd_max_ms)` over the count columns, as BIGINT on both backends.
static SUMS: LazyLock<String> = LazyLock::new(|| {
    kpis::columns()
        .iter()
        .map(|c| {
            if kpis::merges_by_max(c) {
                format!("CAST(COALESCE(MAX({c}), 0) AS BIGINT) AS {c}")
            } else {
                format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT) AS {c}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
});

/// The columns of a `call_records` row in the order `call_row` reads them.
const RECORD_COLUMNS: &str = "id, agent_id, call_key, start_ns, record";

/// What the calls new to the store added: how many, and their counts per scope (`""` first,
/// then customers in id order) for the live per-customer metrics.
#[derive(Debug, Default)]
pub(crate) struct NewCalls {
    pub(crate) count: usize,
    pub(crate) by_scope: Vec<(String, CallCounts)>,
}

impl NewCalls {
    fn of<'a>(fresh: impl Iterator<Item = &'a PreparedCall>) -> Self {
        let mut count = 0;
        let mut by_scope = BTreeMap::<String, CallCounts>::new();
        for call in fresh {
            count += 1;
            by_scope.entry(String::new()).or_default().add(&call.counts);
            for scope in &call.scopes {
                by_scope.entry(scope.clone()).or_default().add(&call.counts);
            }
        }
        NewCalls {
            count,
            by_scope: by_scope.into_iter().collect(),
        }
    }
}

/// Writes the batch's calls that the store does not hold yet, their scopes and their hourly
/// counts, inside the batch's SQLite transaction; returns what the new ones added.
pub(crate) async fn write_sqlite(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    agent_id: &str,
    calls: &[PreparedCall],
) -> Result<NewCalls, StoreError> {
    let database = |source| StoreError::Database {
        backend: super::sqlite::BACKEND,
        source,
    };
    let mut new = vec![false; calls.len()];
    for (call, flag) in calls.iter().zip(&mut new) {
        let inserted = sqlx::query(
            "INSERT INTO call_records (agent_id, call_key, start_ns, call_id, direction, peer, \
             status, outcome, problems, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (agent_id, call_key) DO NOTHING",
        )
        .bind(agent_id)
        .bind(call.call_key.as_str())
        .bind(call.start_ns)
        .bind(call.call_id.as_str())
        .bind(call.direction.as_str())
        .bind(call.peer.as_str())
        .bind(call.status)
        .bind(call.outcome)
        .bind(call.problems.as_str())
        .bind(call.json.as_str())
        .execute(&mut **tx)
        .await
        .map_err(database)?;
        *flag = inserted.rows_affected() == 1;
        if *flag {
            for scope in &call.scopes {
                sqlx::query(
                    "INSERT INTO call_record_scopes (customer_id, agent_id, call_key, start_ns) \
                     VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(scope.as_str())
                .bind(agent_id)
                .bind(call.call_key.as_str())
                .bind(call.start_ns)
                .execute(&mut **tx)
                .await
                .map_err(database)?;
            }
        }
    }
    let fresh = || calls.iter().zip(&new).filter(|(_, n)| **n).map(|(c, _)| c);
    let mut stored = HashMap::new();
    for (scope, hour) in scope_hours(fresh()) {
        let peers: Vec<String> = sqlx::query_scalar(
            "SELECT peer FROM call_hourly WHERE scope = ? AND agent_id = ? AND hour_ns = ?",
        )
        .bind(scope.as_str())
        .bind(agent_id)
        .bind(hour)
        .fetch_all(&mut **tx)
        .await
        .map_err(database)?;
        stored.insert((scope, hour), peers.into_iter().collect());
    }
    for delta in call_hour_deltas(fresh(), stored) {
        let mut query = sqlx::query(SQLITE_HOURLY_UPSERT.as_str())
            .bind(delta.scope.as_str())
            .bind(agent_id)
            .bind(delta.hour_ns)
            .bind(delta.direction.as_str())
            .bind(delta.peer.as_str());
        for value in delta.counts.values() {
            query = query.bind(saturating_i64(value));
        }
        query.execute(&mut **tx).await.map_err(database)?;
    }
    Ok(NewCalls::of(fresh()))
}

/// [`write_sqlite`] on PostgreSQL: the records in one statement (UNNEST, key order, so that
/// replicas lock overlapping keys in one order), the inserted keys returned.
pub(crate) async fn write_postgres(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    agent_id: &str,
    calls: &[PreparedCall],
) -> Result<NewCalls, StoreError> {
    let database = |source| StoreError::Database {
        backend: super::postgres::BACKEND,
        source,
    };
    if calls.is_empty() {
        return Ok(NewCalls::default());
    }
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO call_records (agent_id, call_key, start_ns, call_id, direction, peer, \
         status, outcome, problems, record) \
         SELECT $1, * FROM UNNEST($2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], \
         $7::int8[], $8::text[], $9::text[], $10::text[]) \
         ON CONFLICT (agent_id, call_key) DO NOTHING RETURNING call_key",
    )
    .bind(agent_id)
    .bind(
        calls
            .iter()
            .map(|c| c.call_key.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(calls.iter().map(|c| c.start_ns).collect::<Vec<_>>())
    .bind(calls.iter().map(|c| c.call_id.as_str()).collect::<Vec<_>>())
    .bind(
        calls
            .iter()
            .map(|c| c.direction.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(calls.iter().map(|c| c.peer.as_str()).collect::<Vec<_>>())
    .bind(calls.iter().map(|c| c.status).collect::<Vec<_>>())
    .bind(calls.iter().map(|c| c.outcome).collect::<Vec<_>>())
    .bind(
        calls
            .iter()
            .map(|c| c.problems.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(calls.iter().map(|c| c.json.as_str()).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await
    .map_err(database)?;
    let inserted: HashSet<String> = inserted.into_iter().collect();
    let fresh = || calls.iter().filter(|c| inserted.contains(&c.call_key));
    for call in fresh() {
        for scope in &call.scopes {
            sqlx::query(
                "INSERT INTO call_record_scopes (customer_id, agent_id, call_key, start_ns) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(scope.as_str())
            .bind(agent_id)
            .bind(call.call_key.as_str())
            .bind(call.start_ns)
            .execute(&mut **tx)
            .await
            .map_err(database)?;
        }
    }
    let mut stored = HashMap::new();
    for (scope, hour) in scope_hours(fresh()) {
        // Locks the hour's rows so that two replicas do not both hand out the last peer slots.
        let peers: Vec<String> = sqlx::query_scalar(
            "SELECT peer FROM call_hourly WHERE scope = $1 AND agent_id = $2 AND hour_ns = $3 \
             FOR UPDATE",
        )
        .bind(scope.as_str())
        .bind(agent_id)
        .bind(hour)
        .fetch_all(&mut **tx)
        .await
        .map_err(database)?;
        stored.insert((scope, hour), peers.into_iter().collect());
    }
    for delta in call_hour_deltas(fresh(), stored) {
        let mut query = sqlx::query(PG_HOURLY_UPSERT.as_str())
            .bind(delta.scope.as_str())
            .bind(agent_id)
            .bind(delta.hour_ns)
            .bind(delta.direction.as_str())
            .bind(delta.peer.as_str());
        for value in delta.counts.values() {
            query = query.bind(saturating_i64(value));
        }
        query.execute(&mut **tx).await.map_err(database)?;
    }
    Ok(NewCalls::of(fresh()))
}

/// How `Store::call_counts` groups the hours it sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallGroup {
    Total,
    Hour,
    Direction,
    Peer,
}

/// One group of summed counts: `hour_ns` for `Hour` (else 0), `label` the direction or peer
/// for `Direction`/`Peer` (else `""`).
#[derive(Debug, Clone, PartialEq)]
pub struct CallGroupRow {
    pub hour_ns: i64,
    pub label: String,
    pub counts: CallCounts,
}

/// Builds the `call_counts` query on either backend.
pub(crate) fn build_counts_query<DB>(
    select: &mut QueryBuilder<DB>,
    scope: &str,
    agents: &[String],
    from_ns: i64,
    to_ns: i64,
    group: CallGroup,
) where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let (hour, label, rows) = match group {
        CallGroup::Total => ("CAST(0 AS BIGINT)", "CAST('' AS TEXT)", "="),
        CallGroup::Hour => ("hour_ns", "CAST('' AS TEXT)", "="),
        CallGroup::Direction => ("CAST(0 AS BIGINT)", "direction", "="),
        CallGroup::Peer => ("CAST(0 AS BIGINT)", "peer", "<>"),
    };
    select.push(format_args!(
        "SELECT {hour} AS g_hour, {label} AS g_label, {} FROM call_hourly WHERE scope = ",
        SUMS.as_str()
    ));
    select
        .push_bind(scope.to_owned())
        .push(format_args!(" AND peer {rows} '{ALL_PEERS}'"))
        .push(" AND hour_ns >= ")
        .push_bind(from_ns)
        .push(" AND hour_ns < ")
        .push_bind(to_ns)
        .push(" AND agent_id IN (");
    let mut list = select.separated(", ");
    for agent in agents {
        list.push_bind(agent.clone());
    }
    select.push(") GROUP BY 1, 2 ORDER BY 1, 2");
}

/// Reads a `call_counts` row on either backend.
pub(crate) fn counts_row<R>(row: &R, backend: &'static str) -> Result<CallGroupRow, StoreError>
where
    R: Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let database = |source| StoreError::Database { backend, source };
    let mut values = Vec::new();
    for column in kpis::columns() {
        values.push(stored_u64(row.try_get(column.as_str()).map_err(database)?));
    }
    let counts = CallCounts::from_values(&values).ok_or_else(|| StoreError::Corrupt {
        backend,
        table: "call_hourly",
        key: String::new(),
        message: "wrong number of count columns".to_owned(),
    })?;
    Ok(CallGroupRow {
        hour_ns: row.try_get("g_hour").map_err(database)?,
        label: row.try_get("g_label").map_err(database)?,
        counts,
    })
}

/// Filters of `Store::call_records`; every given one applies.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallQuery {
    /// Only these agents' calls (`Some(vec![])` matches nothing).
    pub agents: Option<Vec<String>>,
    /// Only calls attributed to this customer's subnets at ingest.
    pub scope: Option<String>,
    /// Calls whose first INVITE lies in `[from_ns, to_ns)`.
    pub from_ns: i64,
    pub to_ns: i64,
    /// The peer's address (as `peer_key` writes it).
    pub peer: Option<String>,
    pub status: Option<StatusFilter>,
    /// A problem kind of `PROBLEM_KINDS`, or `any`.
    pub problem: Option<String>,
    /// Cursor: only calls strictly after this `(start_ns, id)`.
    pub after: Option<(i64, i64)>,
    /// Page size, clamped to [`MAX_PAGE`].
    pub limit: u32,
}

/// `status=`: a final status code, or an outcome name (`OUTCOME_NAMES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusFilter {
    Code(i64),
    Outcome(String),
}

/// One stored call record.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRow {
    pub id: i64,
    pub start_ns: i64,
    pub record: CallRecord,
}

/// Builds the `call_records` page query on either backend.
pub(crate) fn build_records_query<DB>(select: &mut QueryBuilder<DB>, query: &CallQuery)
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    select.push(format_args!(
        "SELECT {RECORD_COLUMNS} FROM call_records WHERE start_ns >= "
    ));
    select
        .push_bind(query.from_ns)
        .push(" AND start_ns < ")
        .push_bind(query.to_ns);
    if let Some(agents) = &query.agents {
        select.push(" AND agent_id IN (");
        let mut list = select.separated(", ");
        for agent in agents {
            list.push_bind(agent.clone());
        }
        select.push(")");
    }
    if let Some(scope) = &query.scope {
        select
            .push(
                " AND EXISTS (SELECT 1 FROM call_record_scopes s WHERE s.agent_id = \
                 call_records.agent_id AND s.call_key = call_records.call_key AND \
                 s.customer_id = ",
            )
            .push_bind(scope.clone())
            .push(")");
    }
    if let Some(peer) = &query.peer {
        select.push(" AND peer = ").push_bind(peer.clone());
    }
    match &query.status {
        None => {}
        Some(StatusFilter::Code(code)) => {
            select.push(" AND status = ").push_bind(*code);
        }
        Some(StatusFilter::Outcome(name)) => {
            select.push(" AND outcome = ").push_bind(name.clone());
        }
    }
    match query.problem.as_deref() {
        None => {}
        Some("any") => {
            select.push(" AND problems <> ''");
        }
        Some(kind) => {
            // Kinds are letters and underscores, and `_` matching any one character can only
            // match the kind itself among the stored `,kind,` lists.
            select
                .push(" AND problems LIKE ")
                .push_bind(format!("%,{kind},%"));
        }
    }
    if let Some((start_ns, id)) = query.after {
        select
            .push(" AND start_ns >= ")
            .push_bind(start_ns)
            .push(" AND (start_ns > ")
            .push_bind(start_ns)
            .push(" OR id > ")
            .push_bind(id)
            .push(")");
    }
    select
        .push(" ORDER BY start_ns, id LIMIT ")
        .push_bind(i64::from(query.limit.clamp(1, MAX_PAGE)));
}

/// Reads a `call_records` row on either backend.
pub(crate) fn record_row<R>(row: &R, backend: &'static str) -> Result<CallRow, StoreError>
where
    R: Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let database = |source| StoreError::Database { backend, source };
    let id: i64 = row.try_get("id").map_err(database)?;
    let json: String = row.try_get("record").map_err(database)?;
    let record: CallRecord = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
        backend,
        table: "call_records",
        key: id.to_string(),
        message: e.to_string(),
    })?;
    Ok(CallRow {
        id,
        start_ns: row.try_get("start_ns").map_err(database)?,
        record,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::{IngestOutcome, Store};
    use voqa_wire::{CallSummary, MediaProblem, Timestamp};

    const T0: i64 = 1_795_428_000_000_000_000; // 2026-11-24T06:40:00Z
    const MS: i64 = 1_000_000;

    fn record(key: &str, summary: CallSummary) -> CallRecord {
        CallRecord {
            agent_id: "a1".into(),
            call_key: key.into(),
            call: summary,
        }
    }

    fn at(ms: i64) -> Option<Timestamp> {
        Some(Timestamp::from_ns(T0 + ms * MS))
    }

    fn calls_batch(id: &str, calls: Vec<CallRecord>) -> Batch {
        Batch {
            schema: voqa_wire::SCHEMA_VERSION,
            batch_id: id.into(),
            agent_id: "a1".into(),
            sent_at: Timestamp::from_ns(T0),
            reports: Vec::new(),
            heartbeats: Vec::new(),
            calls,
        }
    }

    /// Call records on either backend: stored once, counted once per hour, listed and
    /// filtered, deleted by retention while the hourly counts stay.
    pub(crate) async fn suite(store: &Store) {
        let answered = record(
            "00000000000000a1",
            CallSummary {
                call_id: "anon:1".into(),
                setup: at(0),
                first_provisional: at(200),
                first_ringing: at(200),
                answer: at(3_000),
                end: at(63_000),
                status: Some(200),
                end_cause: Some("bye".into()),
                direction: Some("inbound".into()),
                peer: Some("192.0.2.1:5060".into()),
                duration_ms: Some(60_000),
                problems: vec![MediaProblem {
                    kind: "one_way_audio".into(),
                    direction: "callee_to_caller".into(),
                    start: Timestamp::from_ns(T0 + 3_000 * MS),
                }],
                ..CallSummary::default()
            },
        );
        let busy = record(
            "00000000000000a2",
            CallSummary {
                call_id: "anon:2".into(),
                setup: at(1_000),
                end: at(1_100),
                status: Some(486),
                end_cause: Some("failure".into()),
                direction: Some("outbound".into()),
                peer: Some("198.51.100.2:5060".into()),
                ..CallSummary::default()
            },
        );
        let cancelled = record(
            "00000000000000a3",
            CallSummary {
                call_id: "anon:3".into(),
                setup: at(2_000),
                end: at(2_500),
                end_cause: Some("cancel".into()),
                direction: Some("inbound".into()),
                peer: Some("192.0.2.1:5062".into()),
                ..CallSummary::default()
            },
        );
        let batch = calls_batch(
            "00000000-0000-0000-0000-0000000000c1",
            vec![answered.clone(), busy, cancelled, answered],
        );
        let scopes = vec![vec!["acme".to_owned()]];
        let first = store
            .ingest_attributed(&batch, T0, &[], &scopes)
            .await
            .expect("ingest calls");
        assert_eq!(
            first,
            IngestOutcome {
                calls: 3,
                duplicate_calls: 1,
                new_call_counts: first.new_call_counts.clone(),
                ..IngestOutcome::default()
            }
        );
        // Per scope: all three in "", the attributed one in acme.
        let per_scope: Vec<(&str, u64)> = first
            .new_call_counts
            .iter()
            .map(|(scope, c)| (scope.as_str(), c.attempts))
            .collect();
        assert_eq!(per_scope, vec![("", 3), ("acme", 1)]);
        let again = store
            .ingest_attributed(&batch, T0, &[], &scopes)
            .await
            .expect("re-ingest calls");
        assert_eq!((again.calls, again.duplicate_calls), (0, 4));
        assert!(again.new_call_counts.is_empty());
        assert!(again.is_duplicate());

        let agents = vec!["a1".to_owned()];
        let (from, to) = (hour_of(T0), hour_of(T0) + HOUR_NS);
        let total = store
            .call_counts("", &agents, from, to, CallGroup::Total)
            .await
            .expect("totals");
        assert_eq!(total.len(), 1);
        let c = total[0].counts;
        // Counted once despite the copy and the re-sent batch.
        assert_eq!(
            (c.attempts, c.answered, c.user_busy, c.abandoned),
            (3, 1, 1, 1)
        );
        assert_eq!(
            (c.problem_calls, c.problems[1], c.duration_sum_ms),
            (1, 1, 60_000)
        );
        // SRDs: 200 (ringing) and 100 (the 486); the cancel has none.
        assert_eq!((c.srd_count, c.srd_sum_ms, c.srd_max_ms), (2, 300, 200));
        let peers = store
            .call_counts("", &agents, from, to, CallGroup::Peer)
            .await
            .expect("by peer");
        let by_peer: Vec<(&str, u64)> = peers
            .iter()
            .map(|r| (r.label.as_str(), r.counts.attempts))
            .collect();
        assert_eq!(by_peer, vec![("192.0.2.1", 2), ("198.51.100.2", 1)]);
        let directions = store
            .call_counts("", &agents, from, to, CallGroup::Direction)
            .await
            .expect("by direction");
        let by_direction: Vec<(&str, u64)> = directions
            .iter()
            .map(|r| (r.label.as_str(), r.counts.attempts))
            .collect();
        assert_eq!(by_direction, vec![("inbound", 2), ("outbound", 1)]);
        let hours = store
            .call_counts("", &agents, from, to, CallGroup::Hour)
            .await
            .expect("by hour");
        assert_eq!(hours.len(), 1);
        assert_eq!(hours[0].hour_ns, from);
        let acme = store
            .call_counts("acme", &agents, from, to, CallGroup::Total)
            .await
            .expect("acme");
        assert_eq!(acme[0].counts.attempts, 1);
        // Hours outside the range are not summed.
        assert!(
            store
                .call_counts("", &agents, to, to + HOUR_NS, CallGroup::Total)
                .await
                .expect("later")
                .is_empty()
        );

        let all = CallQuery {
            agents: Some(agents.clone()),
            from_ns: T0,
            to_ns: T0 + HOUR_NS,
            limit: 2,
            ..CallQuery::default()
        };
        let page1 = store.call_records(&all).await.expect("page 1");
        assert_eq!(page1.len(), 2);
        let last = page1.last().map(|r| (r.start_ns, r.id));
        let page2 = store
            .call_records(&CallQuery {
                after: last,
                ..all.clone()
            })
            .await
            .expect("page 2");
        let keys: Vec<String> = page1
            .iter()
            .chain(&page2)
            .map(|r| r.record.call_key.clone())
            .collect();
        assert_eq!(
            keys,
            vec!["00000000000000a1", "00000000000000a2", "00000000000000a3"]
        );
        let count = |query: CallQuery| async move {
            store.call_records(&query).await.expect("filtered").len()
        };
        let limit = 100;
        let filtered = |f: fn(&mut CallQuery)| {
            let mut q = CallQuery {
                limit,
                ..all.clone()
            };
            f(&mut q);
            q
        };
        assert_eq!(
            count(filtered(|q| q.status = Some(StatusFilter::Code(486)))).await,
            1
        );
        assert_eq!(
            count(filtered(|q| {
                q.status = Some(StatusFilter::Outcome("abandoned".into()))
            }))
            .await,
            1
        );
        assert_eq!(count(filtered(|q| q.problem = Some("any".into()))).await, 1);
        assert_eq!(
            count(filtered(|q| q.problem = Some("one_way_audio".into()))).await,
            1
        );
        assert_eq!(
            count(filtered(|q| q.problem = Some("no_rtp".into()))).await,
            0
        );
        assert_eq!(count(filtered(|q| q.scope = Some("acme".into()))).await, 1);
        assert_eq!(count(filtered(|q| q.scope = Some("other".into()))).await, 0);
        assert_eq!(
            count(filtered(|q| q.peer = Some("192.0.2.1".into()))).await,
            2
        );
        assert_eq!(
            count(filtered(|q| q.agents = Some(vec!["zz".into()]))).await,
            0
        );

        // Retention deletes the records (and their scopes), the hourly counts stay.
        store
            .delete_reports_before(T0 + HOUR_NS)
            .await
            .expect("retention");
        assert_eq!(count(filtered(|_| {})).await, 0);
        assert_eq!(
            store
                .call_counts("", &agents, from, to, CallGroup::Total)
                .await
                .expect("kept")[0]
                .counts
                .attempts,
            3
        );
    }

    fn prepared(peer: &str, start_ns: i64, scopes: &[&str]) -> PreparedCall {
        PreparedCall {
            call_key: format!("{peer}-{start_ns}"),
            start_ns,
            call_id: "c".into(),
            direction: "inbound".into(),
            peer: peer.into(),
            status: Some(200),
            outcome: "answered",
            problems: String::new(),
            json: String::new(),
            counts: CallCounts {
                attempts: 1,
                ..CallCounts::default()
            },
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn peers_beyond_the_cap_fold_into_other() {
        // 52 peers in one hour, the first already stored: 50 named rows, then `other` with 2.
        let calls: Vec<PreparedCall> = (0..52)
            .map(|i| prepared(&format!("192.0.2.{i}"), HOUR_NS * 10 + i, &[]))
            .collect();
        let mut stored = HashMap::new();
        stored.insert(
            (String::new(), HOUR_NS * 10),
            HashSet::from(["192.0.2.0".to_owned()]),
        );
        let deltas = call_hour_deltas(calls.iter(), stored);
        let other: Vec<_> = deltas.iter().filter(|d| d.peer == OTHER_PEER).collect();
        // 50 named peers, `other`, and the rollup row with all 52.
        assert_eq!(deltas.len(), 52);
        let all: Vec<_> = deltas.iter().filter(|d| d.peer == ALL_PEERS).collect();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].counts.attempts, 52);
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].counts.attempts, 2);
        let total: u64 = deltas
            .iter()
            .filter(|d| d.peer != ALL_PEERS)
            .map(|d| d.counts.attempts)
            .sum();
        assert_eq!(total, 52);
    }

    #[test]
    fn calls_count_in_every_scope_and_their_hour() {
        let calls = [
            prepared("192.0.2.1", HOUR_NS * 3 + 5, &["acme"]),
            prepared("192.0.2.1", HOUR_NS * 3 + 7, &[]),
            prepared("192.0.2.1", HOUR_NS * 4, &["acme"]),
        ];
        let deltas = call_hour_deltas(calls.iter(), HashMap::new());
        let get = |scope: &str, hour: i64| {
            deltas
                .iter()
                .find(|d| d.scope == scope && d.hour_ns == hour * HOUR_NS && d.peer == ALL_PEERS)
                .map(|d| d.counts.attempts)
        };
        assert_eq!(get("", 3), Some(2));
        assert_eq!(get("", 4), Some(1));
        assert_eq!(get("acme", 3), Some(1));
        assert_eq!(get("acme", 4), Some(1));
        assert_eq!(
            scope_hours(calls.iter()),
            vec![
                (String::new(), HOUR_NS * 3),
                (String::new(), HOUR_NS * 4),
                ("acme".to_owned(), HOUR_NS * 3),
                ("acme".to_owned(), HOUR_NS * 4),
            ]
        );
    }

    #[test]
    fn peer_key_drops_the_port() {
        assert_eq!(peer_key(Some("192.0.2.7:5060")), "192.0.2.7");
        assert_eq!(peer_key(Some("[2001:db8::1]:5061")), "2001:db8::1");
        assert_eq!(peer_key(Some("junk")), "");
        assert_eq!(peer_key(None), "");
    }

    #[test]
    fn the_migrations_hold_every_count_column() {
        for sql in [
            concat!(
                include_str!("../../migrations/sqlite/0006_call_records.sql"),
                include_str!("../../migrations/sqlite/0012_call_sdd.sql"),
            ),
            concat!(
                include_str!("../../migrations/postgres/0006_call_records.sql"),
                include_str!("../../migrations/postgres/0012_call_sdd.sql"),
            ),
        ] {
            for column in kpis::columns() {
                let created = sql.contains(&format!("    {column} "));
                let added = sql.contains(&format!("ADD COLUMN {column} "));
                assert!(created || added, "{column} missing");
            }
        }
    }
}

//! The alert engine's rows (migration 0007): pending and firing alert instances, the history
//! of their transitions, the notification outbox, and the evaluator's lease. One SQL text per
//! operation serves both backends (`$N` parameters, which sqlx's SQLite driver binds by
//! number too), so the two cannot drift.
//!
//! Must not: decide anything about alerts (the state machine is `alerts::state`, pure), read a
//! clock (times are passed in), or deliver anything.

use sqlx::Row;

use super::{Store, StoreError};

/// The lease every replica competes for.
pub const ENGINE_LEASE: &str = "alert-engine";

/// Largest history page, whatever the caller asks for.
pub const MAX_HISTORY: u32 = 1000;

/// One pending or firing alert instance.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertStateRow {
    /// Rule name and labels (`alerts::state::instance_key`): the de-duplication key.
    pub key: String,
    pub rule: String,
    /// The customer the instance is about; `""` for none.
    pub customer: String,
    /// The labels as a JSON object (string values).
    pub labels: String,
    pub severity: String,
    /// `pending` or `firing`.
    pub state: String,
    /// When the condition started to hold (pending start).
    pub since_ns: i64,
    /// When it started firing.
    pub fired_ns: Option<i64>,
    pub value: Option<f64>,
    pub threshold: f64,
    pub updated_ns: i64,
}

/// One transition to `firing` or `resolved`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEventRow {
    pub id: i64,
    pub key: String,
    pub rule: String,
    pub customer: String,
    pub labels: String,
    pub severity: String,
    pub state: String,
    pub value: Option<f64>,
    pub threshold: f64,
    pub since_ns: i64,
    pub at_ns: i64,
}

/// A transition to record, with the channels to notify and the payload they get.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlertEvent {
    pub event: AlertEventRow,
    /// `(channel name, payload JSON)`, one outbox row each.
    pub notify: Vec<(String, String)>,
}

/// Everything one evaluation cycle changes, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertCycle {
    pub upsert: Vec<AlertStateRow>,
    /// Keys of instances no longer pending or firing.
    pub delete: Vec<String>,
    pub events: Vec<NewAlertEvent>,
}

/// A notification waiting for its channel.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: i64,
    pub channel: String,
    pub payload: String,
    pub attempts: i64,
    /// Not before this.
    pub next_attempt_ns: i64,
}

/// One outbox row as the API and tests read it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxStatus {
    pub id: i64,
    pub event_id: i64,
    pub channel: String,
    pub attempts: i64,
    pub next_attempt_ns: Option<i64>,
    pub delivered_ns: Option<i64>,
    pub last_error: Option<String>,
}

/// Runs `$body` with `$pool` bound to the backend's pool for writes or reads.
macro_rules! on_pool {
    ($store:expr, write, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite(s) => {
                let $pool = &s.writer;
                $body.map_err(|source| StoreError::Database {
                    backend: super::sqlite::BACKEND,
                    source,
                })
            }
            Store::Postgres(s) => {
                let $pool = &s.pool;
                $body.map_err(|source| StoreError::Database {
                    backend: super::postgres::BACKEND,
                    source,
                })
            }
        }
    };
    ($store:expr, read, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite(s) => {
                let $pool = &s.reader;
                $body.map_err(|source| StoreError::Database {
                    backend: super::sqlite::BACKEND,
                    source,
                })
            }
            Store::Postgres(s) => {
                let $pool = &s.pool;
                $body.map_err(|source| StoreError::Database {
                    backend: super::postgres::BACKEND,
                    source,
                })
            }
        }
    };
}
/// Also for the engine's summary reads (`alert_reads.rs`).
pub(super) use on_pool;

const STATE_COLUMNS: &str = "key, rule, customer, labels, severity, state, since_ns, fired_ns, \
                             value, threshold, updated_ns";
const EVENT_COLUMNS: &str =
    "id, key, rule, customer, labels, severity, state, value, threshold, since_ns, at_ns";

const TAKE_LEASE: &str = "INSERT INTO alert_lease (name, holder, expires_ns) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ns = excluded.expires_ns \
     WHERE alert_lease.holder = excluded.holder OR alert_lease.expires_ns <= $4";

/// Rows of one multi-row statement of `alert_commit`. Not more: sqlx's SQLite driver looks up
/// each `$N` parameter's name by number, and SQLite finds a name by a walk of its list, so a
/// statement's binding costs the square of its parameters (at 500 rows, 5,500 parameters, the
/// binding of a 3,000-row cycle took longer than the statements a row each had).
const ROWS_PER_STATEMENT: usize = 32;

const UPSERT_STATE_HEAD: &str = "INSERT INTO alert_state (key, rule, customer, labels, severity, \
     state, since_ns, fired_ns, value, threshold, updated_ns) VALUES";

const UPSERT_STATE_TAIL: &str = " ON CONFLICT (key) DO UPDATE SET rule = excluded.rule, customer = excluded.customer, \
     labels = excluded.labels, severity = excluded.severity, state = excluded.state, \
     since_ns = excluded.since_ns, fired_ns = excluded.fired_ns, value = excluded.value, \
     threshold = excluded.threshold, updated_ns = excluded.updated_ns";

const INSERT_EVENT_HEAD: &str = "INSERT INTO alert_events (key, rule, customer, labels, severity, \
     state, value, threshold, since_ns, at_ns) VALUES";

/// Whether no key comes twice.
fn unique<'a>(mut keys: impl Iterator<Item = &'a String>) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    keys.all(|k| seen.insert(k))
}

/// `($1, …, $columns), ($columns+1, …), …` for `rows` rows.
fn values(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! state_row {
    ($row:expr) => {
        AlertStateRow {
            key: $row.try_get("key")?,
            rule: $row.try_get("rule")?,
            customer: $row.try_get("customer")?,
            labels: $row.try_get("labels")?,
            severity: $row.try_get("severity")?,
            state: $row.try_get("state")?,
            since_ns: $row.try_get("since_ns")?,
            fired_ns: $row.try_get("fired_ns")?,
            value: $row.try_get("value")?,
            threshold: $row.try_get("threshold")?,
            updated_ns: $row.try_get("updated_ns")?,
        }
    };
}

macro_rules! event_row {
    ($row:expr) => {
        AlertEventRow {
            id: $row.try_get("id")?,
            key: $row.try_get("key")?,
            rule: $row.try_get("rule")?,
            customer: $row.try_get("customer")?,
            labels: $row.try_get("labels")?,
            severity: $row.try_get("severity")?,
            state: $row.try_get("state")?,
            value: $row.try_get("value")?,
            threshold: $row.try_get("threshold")?,
            since_ns: $row.try_get("since_ns")?,
            at_ns: $row.try_get("at_ns")?,
        }
    };
}

impl Store {
    /// Takes or renews the lease `name` for `holder` until `now_ns + ttl_ns`: true when
    /// `holder` holds it now (it held it, or the previous holder's lease had expired).
    pub async fn alert_lease(
        &self,
        name: &str,
        holder: &str,
        now_ns: i64,
        ttl_ns: i64,
    ) -> Result<bool, StoreError> {
        let expires = now_ns.saturating_add(ttl_ns);
        let done = on_pool!(self, write, pool => sqlx::query(TAKE_LEASE)
            .bind(name)
            .bind(holder)
            .bind(expires)
            .bind(now_ns)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(done > 0)
    }

    /// Gives the lease up (a clean shutdown), so another replica need not wait for it to expire.
    pub async fn alert_lease_release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        on_pool!(self, write, pool => sqlx::query(
            "DELETE FROM alert_lease WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Who holds the lease `name` and until when, if anyone ever took it.
    pub async fn alert_lease_holder(
        &self,
        name: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        on_pool!(self, read, pool => async {
            let row = sqlx::query("SELECT holder, expires_ns FROM alert_lease WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?;
            row.map(|row| Ok((row.try_get("holder")?, row.try_get("expires_ns")?)))
                .transpose()
        }.await)
    }

    /// Every pending or firing instance, ordered by key.
    pub async fn alert_states(&self) -> Result<Vec<AlertStateRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {STATE_COLUMNS} FROM alert_state ORDER BY key"
        ));
        on_pool!(self, read, pool => async {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter().map(|row| Ok(state_row!(row))).collect::<Result<Vec<_>, sqlx::Error>>()
        }.await)
    }

    /// Writes one cycle's changes in one transaction, if `holder` still holds the lease
    /// `lease` at `now_ns`; false (and nothing written) otherwise, so a replica that lost its
    /// lease mid-cycle records and sends nothing.
    pub async fn alert_commit(
        &self,
        lease: &str,
        holder: &str,
        now_ns: i64,
        cycle: &AlertCycle,
    ) -> Result<bool, StoreError> {
        // PostgreSQL: the lease row is locked for the transaction (FOR UPDATE), so a replica
        // taking it over waits for this commit and then sees its expiry. SQLite has one
        // writer connection: the check and the writes cannot interleave with anything.
        let lock = match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => " FOR UPDATE",
        };
        let check = sqlx::AssertSqlSafe(format!(
            "SELECT holder, expires_ns FROM alert_lease WHERE name = $1{lock}"
        ));
        on_pool!(self, write, pool => async {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(check).bind(lease).fetch_optional(&mut *tx).await?;
            let held = match row {
                Some(row) => {
                    let who: String = row.try_get("holder")?;
                    let until: i64 = row.try_get("expires_ns")?;
                    who == holder && until > now_ns
                }
                None => false,
            };
            if !held {
                tx.rollback().await?;
                return Ok(false);
            }
            // Multi-row statements: a transition-heavy cycle writes thousands of rows, and
            // one statement per row cost a round trip each (0.25–0.6 s for 3,000 states and
            // 2,000 events on PostgreSQL).
            // PostgreSQL refuses one statement updating a row twice: a chunk with a key twice
            // (`plan` makes none) goes a row at a time, the later row winning as before.
            let upserts: Vec<&[AlertStateRow]> = cycle
                .upsert
                .chunks(ROWS_PER_STATEMENT)
                .flat_map(|chunk| {
                    if unique(chunk.iter().map(|s| &s.key)) {
                        vec![chunk]
                    } else {
                        chunk.chunks(1).collect()
                    }
                })
                .collect();
            for chunk in upserts {
                let sql = sqlx::AssertSqlSafe(format!(
                    "{UPSERT_STATE_HEAD} {}{UPSERT_STATE_TAIL}",
                    values(chunk.len(), 11)
                ));
                let mut query = sqlx::query(sql);
                for s in chunk {
                    query = query
                        .bind(&s.key).bind(&s.rule).bind(&s.customer).bind(&s.labels)
                        .bind(&s.severity).bind(&s.state).bind(s.since_ns).bind(s.fired_ns)
                        .bind(s.value).bind(s.threshold).bind(s.updated_ns);
                }
                query.execute(&mut *tx).await?;
            }
            for chunk in cycle.delete.chunks(ROWS_PER_STATEMENT) {
                let sql = sqlx::AssertSqlSafe(format!(
                    "DELETE FROM alert_state WHERE key IN ({})",
                    (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
                ));
                let mut query = sqlx::query(sql);
                for key in chunk {
                    query = query.bind(key);
                }
                query.execute(&mut *tx).await?;
            }
            // Events in cycle order (their ids order the history within one instant); each
            // outbox row needs its event's id, matched by key: a cycle has one event per key
            // (`alerts::state::plan`); a chunk that had two falls back to a row at a time.
            let mut outbox: Vec<(i64, &str, &str, i64)> = Vec::new();
            for chunk in cycle.events.chunks(ROWS_PER_STATEMENT) {
                if !unique(chunk.iter().map(|n| &n.event.key)) {
                    for new in chunk {
                        let e = &new.event;
                        let id: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "{INSERT_EVENT_HEAD} {} RETURNING id", values(1, 10))))
                            .bind(&e.key).bind(&e.rule).bind(&e.customer).bind(&e.labels)
                            .bind(&e.severity).bind(&e.state).bind(e.value).bind(e.threshold)
                            .bind(e.since_ns).bind(e.at_ns)
                            .fetch_one(&mut *tx).await?
                            .try_get("id")?;
                        for (channel, payload) in &new.notify {
                            outbox.push((id, channel, payload, e.at_ns));
                        }
                    }
                    continue;
                }
                let sql = sqlx::AssertSqlSafe(format!(
                    "{INSERT_EVENT_HEAD} {} RETURNING id, key",
                    values(chunk.len(), 10)
                ));
                let mut query = sqlx::query(sql);
                for new in chunk {
                    let e = &new.event;
                    query = query
                        .bind(&e.key).bind(&e.rule).bind(&e.customer).bind(&e.labels)
                        .bind(&e.severity).bind(&e.state).bind(e.value).bind(e.threshold)
                        .bind(e.since_ns).bind(e.at_ns);
                }
                let ids: std::collections::BTreeMap<String, i64> = query
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|row| Ok((row.try_get("key")?, row.try_get("id")?)))
                    .collect::<Result<_, sqlx::Error>>()?;
                for new in chunk {
                    let Some(&id) = ids.get(&new.event.key) else {
                        return Err(sqlx::Error::RowNotFound);
                    };
                    for (channel, payload) in &new.notify {
                        outbox.push((id, channel, payload, new.event.at_ns));
                    }
                }
            }
            for chunk in outbox.chunks(ROWS_PER_STATEMENT) {
                let rows: Vec<String> = (0..chunk.len())
                    .map(|r| {
                        let b = r * 4;
                        format!("(${}, ${}, ${}, ${}, 0, ${})", b + 1, b + 2, b + 3, b + 4, b + 4)
                    })
                    .collect();
                let sql = sqlx::AssertSqlSafe(format!(
                    "INSERT INTO alert_outbox (event_id, channel, payload, created_ns, attempts, \
                     next_attempt_ns) VALUES {}",
                    rows.join(", ")
                ));
                let mut query = sqlx::query(sql);
                for (id, channel, payload, at) in chunk {
                    query = query.bind(*id).bind(*channel).bind(*payload).bind(*at);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(true)
        }.await)
    }

    /// Notifications not yet delivered nor given up, oldest first (the order each channel
    /// must deliver them in), at most `limit`, each with when it may be tried next.
    pub async fn alert_outbox_pending(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        on_pool!(self, read, pool => async {
            let rows = sqlx::query(
                "SELECT id, event_id, channel, payload, attempts, next_attempt_ns FROM alert_outbox \
                 WHERE delivered_ns IS NULL AND next_attempt_ns IS NOT NULL ORDER BY id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(OutboxRow {
                        id: row.try_get("id")?,
                        event_id: row.try_get("event_id")?,
                        channel: row.try_get("channel")?,
                        payload: row.try_get("payload")?,
                        attempts: row.try_get("attempts")?,
                        next_attempt_ns: row.try_get("next_attempt_ns")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        }.await)
    }

    /// Records the outcome of one delivery attempt: delivered at `now_ns` (`error` `None`), or
    /// failed with `error` and retried at `next_attempt_ns` (`None`: given up).
    pub async fn alert_outbox_attempt(
        &self,
        id: i64,
        now_ns: i64,
        error: Option<&str>,
        next_attempt_ns: Option<i64>,
    ) -> Result<(), StoreError> {
        let delivered = error.is_none().then_some(now_ns);
        on_pool!(self, write, pool => sqlx::query(
            "UPDATE alert_outbox SET attempts = attempts + 1, delivered_ns = $2, \
             last_error = $3, next_attempt_ns = $4 WHERE id = $1 AND delivered_ns IS NULL")
            .bind(id)
            .bind(delivered)
            .bind(error)
            .bind(if delivered.is_some() { None } else { next_attempt_ns })
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The outbox rows of events at or after `from_ns` (for the API and tests), by id.
    pub async fn alert_outbox_status(&self, from_ns: i64) -> Result<Vec<OutboxStatus>, StoreError> {
        on_pool!(self, read, pool => async {
            let rows = sqlx::query(
                "SELECT id, event_id, channel, attempts, next_attempt_ns, delivered_ns, last_error \
                 FROM alert_outbox WHERE created_ns >= $1 ORDER BY id LIMIT 10000",
            )
            .bind(from_ns)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(OutboxStatus {
                        id: row.try_get("id")?,
                        event_id: row.try_get("event_id")?,
                        channel: row.try_get("channel")?,
                        attempts: row.try_get("attempts")?,
                        next_attempt_ns: row.try_get("next_attempt_ns")?,
                        delivered_ns: row.try_get("delivered_ns")?,
                        last_error: row.try_get("last_error")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        }.await)
    }

    /// Transitions with `at` in `[from_ns, to_ns)`, of one customer or all, oldest first, at
    /// most `limit` (clamped to [`MAX_HISTORY`]).
    pub async fn alert_history(
        &self,
        from_ns: i64,
        to_ns: i64,
        customer: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AlertEventRow>, StoreError> {
        let limit = i64::from(limit.min(MAX_HISTORY));
        let filter = if customer.is_some() {
            " AND customer = $4"
        } else {
            ""
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM alert_events WHERE at_ns >= $1 AND at_ns < $2{filter} \
             ORDER BY at_ns, id LIMIT $3"
        ));
        on_pool!(self, read, pool => async {
            let mut query = sqlx::query(sql).bind(from_ns).bind(to_ns).bind(limit);
            if let Some(customer) = customer {
                query = query.bind(customer);
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter().map(|row| Ok(event_row!(row))).collect::<Result<Vec<_>, sqlx::Error>>()
        }.await)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const S: i64 = 1_000_000_000;

    fn state(key: &str, state: &str, since: i64) -> AlertStateRow {
        AlertStateRow {
            key: key.into(),
            rule: "r".into(),
            customer: "acme".into(),
            labels: r#"{"customer":"acme"}"#.into(),
            severity: "page".into(),
            state: state.into(),
            since_ns: since,
            fired_ns: (state == "firing").then_some(since),
            value: Some(40.0),
            threshold: 20.0,
            updated_ns: since,
        }
    }

    fn event(key: &str, state: &str, at: i64) -> AlertEventRow {
        AlertEventRow {
            id: 0,
            key: key.into(),
            rule: "r".into(),
            customer: "acme".into(),
            labels: "{}".into(),
            severity: "page".into(),
            state: state.into(),
            value: None,
            threshold: 20.0,
            since_ns: at,
            at_ns: at,
        }
    }

    /// The whole contract, run against each backend.
    async fn suite(store: &Store) {
        // The lease: first come; renewals by the holder; another only after expiry.
        assert!(
            store
                .alert_lease(ENGINE_LEASE, "a", 100 * S, 3 * S)
                .await
                .expect("take")
        );
        assert!(
            !store
                .alert_lease(ENGINE_LEASE, "b", 101 * S, 3 * S)
                .await
                .expect("held")
        );
        assert!(
            store
                .alert_lease(ENGINE_LEASE, "a", 102 * S, 3 * S)
                .await
                .expect("renew")
        );
        // a's lease runs to 105 s: b may not take it at 104.9 s, may at 105 s.
        assert!(
            !store
                .alert_lease(ENGINE_LEASE, "b", 105 * S - 1, 3 * S)
                .await
                .expect("held")
        );
        assert!(
            store
                .alert_lease(ENGINE_LEASE, "b", 105 * S, 3 * S)
                .await
                .expect("taken over")
        );
        assert_eq!(
            store
                .alert_lease_holder(ENGINE_LEASE)
                .await
                .expect("holder"),
            Some(("b".to_owned(), 108 * S))
        );

        // A former holder's commit writes nothing.
        let cycle = AlertCycle {
            upsert: vec![state("r|acme", "firing", 105 * S)],
            delete: vec![],
            events: vec![NewAlertEvent {
                event: event("r|acme", "firing", 105 * S),
                notify: vec![
                    ("hook".into(), "{\"a\":1}".into()),
                    ("mail".into(), "{}".into()),
                ],
            }],
        };
        assert!(
            !store
                .alert_commit(ENGINE_LEASE, "a", 106 * S, &cycle)
                .await
                .expect("refused")
        );
        assert!(store.alert_states().await.expect("states").is_empty());
        // Nor does the holder's after its lease ran out.
        assert!(
            !store
                .alert_commit(ENGINE_LEASE, "b", 108 * S, &cycle)
                .await
                .expect("expired")
        );
        assert!(
            store
                .alert_commit(ENGINE_LEASE, "b", 106 * S, &cycle)
                .await
                .expect("commit")
        );
        assert_eq!(store.alert_states().await.expect("states"), cycle.upsert);
        let history = store
            .alert_history(0, 200 * S, None, 10)
            .await
            .expect("history");
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].state, "firing");
        let event_id = history[0].id;

        // Two notifications due at the event's time.
        let due = store.alert_outbox_pending(10).await.expect("due");
        assert_eq!(due.len(), 2);
        assert_eq!(
            (due[0].channel.as_str(), due[0].payload.as_str()),
            ("hook", "{\"a\":1}")
        );
        assert!(
            due.iter()
                .all(|d| d.event_id == event_id && d.attempts == 0 && d.next_attempt_ns == 105 * S)
        );
        // The hook fails once (retry at 110 s), then succeeds; the mail is given up.
        store
            .alert_outbox_attempt(due[0].id, 106 * S, Some("HTTP 500"), Some(110 * S))
            .await
            .expect("fail");
        store
            .alert_outbox_attempt(due[1].id, 106 * S, Some("no smtp"), None)
            .await
            .expect("give up");
        let due = store.alert_outbox_pending(10).await.expect("due");
        assert_eq!(
            (due.len(), due[0].attempts, due[0].next_attempt_ns),
            (1, 1, 110 * S)
        );
        store
            .alert_outbox_attempt(due[0].id, 111 * S, None, None)
            .await
            .expect("delivered");
        assert!(
            store
                .alert_outbox_pending(10)
                .await
                .expect("due")
                .is_empty()
        );
        let status = store.alert_outbox_status(0).await.expect("status");
        assert_eq!(status[0].delivered_ns, Some(111 * S));
        assert_eq!(status[0].attempts, 2);
        assert_eq!(status[0].last_error, None);
        assert_eq!(
            (status[1].delivered_ns, status[1].next_attempt_ns),
            (None, None)
        );
        assert_eq!(status[1].last_error.as_deref(), Some("no smtp"));
        // A second delivery record of a delivered row changes nothing.
        store
            .alert_outbox_attempt(due[0].id, 120 * S, Some("late"), Some(130 * S))
            .await
            .expect("noop");
        assert_eq!(
            store.alert_outbox_status(0).await.expect("status")[0].delivered_ns,
            Some(111 * S)
        );

        // Resolving: the state goes, the history grows; filters by customer and time.
        let resolve = AlertCycle {
            upsert: vec![],
            delete: vec!["r|acme".into()],
            events: vec![NewAlertEvent {
                event: AlertEventRow {
                    customer: "other".into(),
                    ..event("r|acme", "resolved", 107 * S)
                },
                notify: vec![],
            }],
        };
        assert!(
            store
                .alert_commit(ENGINE_LEASE, "b", 107 * S, &resolve)
                .await
                .expect("commit")
        );
        assert!(store.alert_states().await.expect("states").is_empty());
        let all = store
            .alert_history(0, 200 * S, None, 10)
            .await
            .expect("history");
        assert_eq!(
            all.iter().map(|e| e.state.as_str()).collect::<Vec<_>>(),
            ["firing", "resolved"]
        );
        let acme = store
            .alert_history(0, 200 * S, Some("acme"), 10)
            .await
            .expect("history");
        assert_eq!(acme.len(), 1);
        assert!(
            store
                .alert_history(0, 106 * S, Some("other"), 10)
                .await
                .expect("h")
                .is_empty()
        );
        assert_eq!(
            store
                .alert_history(0, 200 * S, None, 1)
                .await
                .expect("h")
                .len(),
            1
        );

        store
            .alert_lease_release(ENGINE_LEASE, "b")
            .await
            .expect("release");
        assert!(
            store
                .alert_lease(ENGINE_LEASE, "a", 107 * S, 3 * S)
                .await
                .expect("free again")
        );
    }

    #[tokio::test]
    async fn sqlite_keeps_alert_state_outbox_and_lease() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite:{}", dir.path().join("a.db").display()))
            .await
            .expect("open");
        suite(&store).await;
        store.close().await;
    }

    const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
    static SCHEMA: AtomicU32 = AtomicU32::new(0);

    /// Needs the test PostgreSQL; ignored unless `$VOQA_REQUIRE_POSTGRES` was set at build
    /// time (see `build.rs`) or run with `--ignored`. A schema of its own, dropped after.
    #[cfg_attr(
        not(voqa_require_postgres),
        ignore = "needs PostgreSQL at 127.0.0.1:5432: set VOQA_REQUIRE_POSTGRES=1 or run with --ignored"
    )]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_keeps_alert_state_outbox_and_lease() {
        use sqlx::Connection;
        let options = sqlx::postgres::PgConnectOptions::from_str(POSTGRES_URL).expect("url");
        let mut admin = sqlx::PgConnection::connect_with(&options)
            .await
            .unwrap_or_else(|e| panic!("postgres not reachable at {POSTGRES_URL}: {e}"));
        let schema = format!(
            "voqa_alerts_{}_{}",
            std::process::id(),
            SCHEMA.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .expect("schema");
        let store = super::super::PgStore::open_with(options.options([("search_path", &schema)]))
            .await
            .map(Store::Postgres)
            .expect("open");
        let outcome = tokio::spawn({
            let store = store.clone();
            async move { suite(&store).await }
        })
        .await;
        store.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut admin)
            .await
            .expect("drop schema");
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic.into_panic());
        }
    }
}

//! PostgreSQL backend of the store, for several collector replicas sharing one database.
//!
//! Same schema and behaviour as the SQLite backend. A batch's reports go in with one
//! `INSERT ... SELECT FROM UNNEST(arrays)` statement, whatever their number. Idempotency per
//! record holds across replicas: two concurrent ingests of one report serialise on its unique
//! key, the second skips it once the first commits, and `RETURNING` tells each transaction
//! which rows it inserted, so only those reach the aggregates. A commit returns after
//! the server has flushed its WAL (with the server's default `synchronous_commit = on`);
//! this module does not override the server's durability settings.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};

use super::{
    AgentRow, Aggregates, CALL_COLUMNS, CALL_UPSERT_CONFLICT, CallAggregate, CallBin, CallBinning,
    CallStats, CallValue, HOUR_NS, HeartbeatRow, IngestOutcome, JitterHour, PreparedBatch,
    PreparedReport, REPORT_RECORD_CONFLICT, RETENTION_CHUNK, StoreError, StreamQuery, StreamRow,
    TokenRow, WindowHistogram, Worst, build_call_bins_query, build_call_positions_query,
    build_calls_page_query, build_calls_query, build_jitter_hours_query,
    build_window_histograms_query, call_aggregate, call_bin_row, call_stats_row, jitter_hour_row,
    mark_new, merge_hour, parse_json, saturating_i64, stored_u64, window_histogram_row,
};

pub(crate) const BACKEND: &str = "postgres";

const REPORT_COLUMNS: &str = "id, agent_id, stream_id, window_start_ns, window_end_ns, \
                              is_final, call_id, mos, report";

/// PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
}

fn database(source: sqlx::Error) -> StoreError {
    StoreError::Database {
        backend: BACKEND,
        source,
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db?...`) and applies migrations.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|error| StoreError::Url(format!("postgres: {error}")))?;
        PgStore::open_with(options).await
    }

    /// Connects with explicit options (e.g. a `search_path` set through
    /// `PgConnectOptions::options`) and applies migrations.
    pub async fn open_with(options: PgConnectOptions) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(database)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: BACKEND,
                source,
            })?;
        Ok(PgStore { pool })
    }

    /// Stores each record of the batch that no one stored before, and the aggregates of
    /// exactly those, in one transaction. Replicas racing on the same record serialise on its
    /// unique key: the loser's insert skips it (after the winner commits) and does not
    /// return it, so it counts it nowhere; should the winner roll back, the loser inserts it.
    pub(crate) async fn ingest(&self, batch: &PreparedBatch) -> Result<IngestOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(database)?;
        // The batch log: which uploads arrived (the first copy's counts); not a dedupe key.
        sqlx::query(
            "INSERT INTO batches (batch_id, agent_id, sent_at_ns, received_ns, reports, heartbeats) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (batch_id) DO NOTHING",
        )
        .bind(batch.batch.batch_id.as_str())
        .bind(batch.batch.agent_id.as_str())
        .bind(batch.sent_at_ns)
        .bind(batch.received_ns)
        .bind(batch.report_count())
        .bind(batch.heartbeat_count())
        .execute(&mut *tx)
        .await
        .map_err(database)?;

        let mut new_reports = vec![false; batch.reports.len()];
        if !batch.reports.is_empty() {
            let reports = &batch.reports;
            // Rows go in in key order (UNNEST keeps the arrays' order), so two replicas
            // inserting overlapping batches wait on each other's keys in one order.
            let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO stream_reports (agent_id, stream_id, call_id, src, dst, \
                 window_start_ns, window_end_ns, is_final, mos, effective_loss_pct, \
                 max_jitter_ms, capture_drops, report, jitter_histogram) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                 $6::int8[], $7::int8[], $8::bool[], $9::float8[], $10::float8[], $11::float8[], \
                 $12::int8[], $13::text[], $14::bytea[]){REPORT_RECORD_CONFLICT}"
            )))
            .bind(column(reports, |r| r.report.agent_id.as_str()))
            .bind(column(reports, |r| r.report.stream_id.as_str()))
            .bind(
                reports
                    .iter()
                    .map(|r| r.report.call_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(column(reports, |r| r.report.src.as_str()))
            .bind(column(reports, |r| r.report.dst.as_str()))
            .bind(
                reports
                    .iter()
                    .map(|r| r.window_start_ns)
                    .collect::<Vec<_>>(),
            )
            .bind(reports.iter().map(|r| r.window_end_ns).collect::<Vec<_>>())
            .bind(
                reports
                    .iter()
                    .map(|r| r.report.is_final)
                    .collect::<Vec<_>>(),
            )
            .bind(reports.iter().map(|r| r.report.mos).collect::<Vec<_>>())
            .bind(
                reports
                    .iter()
                    .map(|r| r.report.effective_loss_pct)
                    .collect::<Vec<_>>(),
            )
            .bind(
                reports
                    .iter()
                    .map(|r| r.report.max_jitter_ms)
                    .collect::<Vec<_>>(),
            )
            .bind(reports.iter().map(|r| r.capture_drops).collect::<Vec<_>>())
            .bind(column(reports, |r| r.json.as_str()))
            .bind(
                reports
                    .iter()
                    .map(|r| {
                        r.jitter_histogram
                            .as_ref()
                            .map(|(bytes, _)| bytes.as_slice())
                    })
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(database)?;
            mark_new(&inserted, &batch.report_index(), &mut new_reports)?;
        }

        let mut new_heartbeats = vec![false; batch.heartbeats.len()];
        if !batch.heartbeats.is_empty() {
            let beats = &batch.heartbeats;
            let inserted: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO heartbeats (agent_id, time_ns, any_process_down, \
                 kernel_drops_total, heartbeat) \
                 SELECT $1, * FROM UNNEST($2::int8[], $3::bool[], $4::int8[], $5::text[]) \
                 ON CONFLICT (agent_id, time_ns) DO NOTHING RETURNING time_ns",
            )
            .bind(batch.batch.agent_id.as_str())
            .bind(beats.iter().map(|h| h.time_ns).collect::<Vec<_>>())
            .bind(beats.iter().map(|h| h.any_process_down).collect::<Vec<_>>())
            .bind(
                beats
                    .iter()
                    .map(|h| h.kernel_drops_total)
                    .collect::<Vec<_>>(),
            )
            .bind(beats.iter().map(|h| h.json.as_str()).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await
            .map_err(database)?;
            // Heartbeats are unique by time within the batch and sorted by it.
            for time_ns in inserted {
                if let Ok(index) = beats.binary_search_by_key(&time_ns, |h| h.time_ns)
                    && let Some(flag) = new_heartbeats.get_mut(index)
                {
                    *flag = true;
                }
            }
        }

        let aggregates = batch.aggregates(&new_reports, &new_heartbeats)?;
        if !aggregates.calls.is_empty() {
            let calls = &aggregates.calls;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO calls ({CALL_COLUMNS}) SELECT * FROM UNNEST($11::text[], $1::text[], \
                 $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], \
                 $8::float8[], $9::float8[], $10::float8[], $12::text[], $13::text[]){CALL_UPSERT_CONFLICT}"
            )))
            .bind(
                calls
                    .iter()
                    .map(|c| c.agent_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                calls
                    .iter()
                    .map(|c| c.call_key.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                calls
                    .iter()
                    .map(|c| c.call_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                calls
                    .iter()
                    .map(|c| saturating_i64(c.streams))
                    .collect::<Vec<_>>(),
            )
            .bind(calls.iter().map(|c| c.first_start_ns).collect::<Vec<_>>())
            .bind(calls.iter().map(|c| c.last_end_ns).collect::<Vec<_>>())
            .bind(calls.iter().map(|c| c.last_start_ns).collect::<Vec<_>>())
            .bind(calls.iter().map(|c| c.min_mos).collect::<Vec<_>>())
            .bind(calls.iter().map(|c| c.max_loss_pct).collect::<Vec<_>>())
            .bind(calls.iter().map(|c| c.max_jitter_ms).collect::<Vec<_>>())
            .bind(calls.iter().map(|c| c.scope.as_str()).collect::<Vec<_>>())
            .bind(
                calls
                    .iter()
                    .map(|c| c.mos_stream_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                calls
                    .iter()
                    .map(|c| c.mos_codec.as_deref())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await
            .map_err(database)?;
        }

        Self::merge_jitter_hours(&mut tx, &batch.batch.agent_id, &aggregates).await?;

        // The agent's contact time moves with every batch (a repeat is contact too); the
        // heartbeat and the drop total only with records new to the store.
        let newest = aggregates
            .newest_heartbeat
            .and_then(|index| batch.heartbeats.get(index));
        sqlx::query(
            "INSERT INTO agents (agent_id, last_batch_ns, last_heartbeat_ns, last_heartbeat, \
             capture_drops_total) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (agent_id) DO UPDATE SET \
             last_batch_ns = GREATEST(agents.last_batch_ns, excluded.last_batch_ns), \
             last_heartbeat = CASE WHEN excluded.last_heartbeat_ns IS NOT NULL AND \
               (agents.last_heartbeat_ns IS NULL OR excluded.last_heartbeat_ns >= agents.last_heartbeat_ns) \
               THEN excluded.last_heartbeat ELSE agents.last_heartbeat END, \
             last_heartbeat_ns = CASE WHEN excluded.last_heartbeat_ns IS NOT NULL AND \
               (agents.last_heartbeat_ns IS NULL OR excluded.last_heartbeat_ns >= agents.last_heartbeat_ns) \
               THEN excluded.last_heartbeat_ns ELSE agents.last_heartbeat_ns END, \
             capture_drops_total = CASE WHEN agents.capture_drops_total > \
               9223372036854775807 - excluded.capture_drops_total THEN 9223372036854775807 \
               ELSE agents.capture_drops_total + excluded.capture_drops_total END",
        )
        .bind(batch.batch.agent_id.as_str())
        .bind(batch.received_ns)
        .bind(newest.map(|heartbeat| heartbeat.time_ns))
        .bind(newest.map(|heartbeat| heartbeat.json.as_str()))
        .bind(aggregates.capture_drops)
        .execute(&mut *tx)
        .await
        .map_err(database)?;

        let new_calls =
            super::calls::write_postgres(&mut tx, &batch.batch.agent_id, &batch.calls).await?;

        tx.commit().await.map_err(database)?;
        let new_report_count = new_reports.iter().filter(|&&new| new).count();
        let new_heartbeat_count = new_heartbeats.iter().filter(|&&new| new).count();
        Ok(batch.outcome(new_report_count, new_heartbeat_count, new_calls))
    }

    pub(crate) async fn token_insert(
        &self,
        id: &str,
        hash: &str,
        role: &str,
        agents: Option<&str>,
        created_ns: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (id, hash, role, agents, created_ns, revoked) \
             VALUES ($1, $2, $3, $4, $5, FALSE)",
        )
        .bind(id)
        .bind(hash)
        .bind(role)
        .bind(agents)
        .bind(created_ns)
        .execute(&self.pool)
        .await
        .map_err(database)?;
        Ok(())
    }

    pub(crate) async fn token_touch(
        &self,
        id: &str,
        now_ns: i64,
        unless_since_ns: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE tokens SET last_used_ns = $1 WHERE id = $2 \
             AND (last_used_ns IS NULL OR last_used_ns < $3)",
        )
        .bind(now_ns)
        .bind(id)
        .bind(unless_since_ns)
        .execute(&self.pool)
        .await
        .map_err(database)?;
        Ok(result.rows_affected() > 0)
    }

    pub(crate) async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query("SELECT id, role, agents, created_ns, last_used_ns, revoked FROM tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(database)?;
        row.map(|row| token_row(&row)).transpose()
    }

    pub(crate) async fn token_list(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, role, agents, created_ns, last_used_ns, revoked FROM tokens \
                 ORDER BY created_ns, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(database)?;
        rows.iter().map(token_row).collect()
    }

    pub(crate) async fn token_revoke(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE tokens SET revoked = TRUE WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(database)?;
        Ok(result.rows_affected() > 0)
    }

    pub(crate) async fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, last_batch_ns, last_heartbeat_ns, last_heartbeat, \
             capture_drops_total FROM agents ORDER BY agent_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(database)?;
        rows.iter().map(agent_row).collect()
    }

    pub(crate) async fn streams(&self, query: &StreamQuery) -> Result<Vec<StreamRow>, StoreError> {
        let mut select = QueryBuilder::<Postgres>::new("");
        super::build_streams_query(&mut select, REPORT_COLUMNS, query);
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(database)?;
        rows.iter().map(stream_row).collect()
    }

    pub(crate) async fn call_counts(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        group: super::CallGroup,
    ) -> Result<Vec<super::CallGroupRow>, StoreError> {
        let mut select = QueryBuilder::<Postgres>::new("");
        super::calls::build_counts_query(&mut select, scope, agents, from_ns, to_ns, group);
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(database)?;
        rows.iter()
            .map(|row| super::calls::counts_row(row, BACKEND))
            .collect()
    }

    pub(crate) async fn call_records(
        &self,
        query: &super::CallQuery,
    ) -> Result<Vec<super::CallRow>, StoreError> {
        let mut select = QueryBuilder::<Postgres>::new("");
        super::calls::build_records_query(&mut select, query);
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(database)?;
        rows.iter()
            .map(|row| super::calls::record_row(row, BACKEND))
            .collect()
    }

    pub(crate) async fn call(&self, call_id: &str) -> Result<Vec<StreamRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, agent_id, stream_id, window_start_ns, window_end_ns, is_final, call_id, \
             mos, report FROM stream_reports WHERE (agent_id, stream_id) IN \
             (SELECT agent_id, stream_id FROM stream_reports WHERE call_id = $1) \
             ORDER BY window_end_ns, id",
        )
        .bind(call_id)
        .fetch_all(&self.pool)
        .await
        .map_err(database)?;
        rows.iter().map(stream_row).collect()
    }

    pub(crate) async fn first_heartbeats(
        &self,
        agents: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        // One indexed lookup per agent (the unique (agent_id, time_ns) index) in one query: a
        // MIN with GROUP BY would walk every heartbeat of the agents.
        let rows = sqlx::query(
            "SELECT a.agent_id, (SELECT time_ns FROM heartbeats h WHERE h.agent_id = a.agent_id \
             ORDER BY time_ns LIMIT 1) AS first_ns FROM UNNEST($1::text[]) AS a(agent_id) \
             ORDER BY a.agent_id",
        )
        .bind(agents)
        .fetch_all(&self.pool)
        .await
        .map_err(database)?;
        let mut first = Vec::with_capacity(rows.len());
        for row in &rows {
            let time_ns: Option<i64> = row.try_get("first_ns").map_err(database)?;
            if let Some(time_ns) = time_ns {
                first.push((row.try_get("agent_id").map_err(database)?, time_ns));
            }
        }
        Ok(first)
    }

    pub(crate) async fn heartbeats(
        &self,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<HeartbeatRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, time_ns, any_process_down, kernel_drops_total FROM heartbeats \
             WHERE agent_id = ANY($1) AND time_ns >= $2 AND time_ns < $3 \
             ORDER BY agent_id, time_ns, id",
        )
        .bind(agents)
        .bind(from_ns)
        .bind(to_ns)
        .fetch_all(&self.pool)
        .await
        .map_err(database)?;
        rows.iter()
            .map(|row| {
                Ok(HeartbeatRow {
                    agent_id: row.try_get("agent_id").map_err(database)?,
                    time_ns: row.try_get("time_ns").map_err(database)?,
                    any_process_down: row.try_get("any_process_down").map_err(database)?,
                    kernel_drops_total: stored_u64(
                        row.try_get("kernel_drops_total").map_err(database)?,
                    ),
                })
            })
            .collect()
    }

    pub(crate) async fn final_reports(
        &self,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<StreamRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, agent_id, stream_id, window_start_ns, window_end_ns, is_final, call_id, \
             mos, report FROM stream_reports WHERE is_final AND agent_id = ANY($1) \
             AND window_end_ns >= $2 AND window_end_ns < $3 ORDER BY agent_id, window_end_ns, id",
        )
        .bind(agents)
        .bind(from_ns)
        .bind(to_ns)
        .fetch_all(&self.pool)
        .await
        .map_err(database)?;
        rows.iter().map(stream_row).collect()
    }

    pub(crate) async fn call_stats(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        mos_min: f64,
        loss_max_pct: f64,
    ) -> Result<CallStats, StoreError> {
        let mut select = QueryBuilder::<Postgres>::new("");
        build_calls_query(
            &mut select,
            scope,
            agents,
            from_ns,
            to_ns,
            Some((mos_min, loss_max_pct)),
            None,
        );
        let row = select
            .build()
            .fetch_one(&self.pool)
            .await
            .map_err(database)?;
        call_stats_row(&row, BACKEND)
    }

    pub(crate) async fn calls_page(
        &self,
        scope: &str,
        agent: &str,
        from_ns: i64,
        to_ns: i64,
        after: Option<&(i64, String)>,
        limit: i64,
    ) -> Result<Vec<CallAggregate>, StoreError> {
        let mut select = QueryBuilder::<Postgres>::new("");
        build_calls_page_query(&mut select, scope, agent, from_ns, to_ns, after, limit);
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(database)?;
        rows.iter()
            .map(|row| call_aggregate(row, BACKEND))
            .collect()
    }

    pub(crate) async fn call_bins(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        binning: &CallBinning<'_>,
    ) -> Result<Vec<CallBin>, StoreError> {
        let mut select = QueryBuilder::<Postgres>::new("");
        build_call_bins_query(&mut select, scope, agents, from_ns, to_ns, binning);
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(database)?;
        rows.iter().map(|row| call_bin_row(row, BACKEND)).collect()
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn call_value_positions(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        value: CallValue,
        ranges: &[(f64, f64)],
        positions: &[i64],
    ) -> Result<Vec<f64>, StoreError> {
        let mut select = QueryBuilder::<Postgres>::new("");
        build_call_positions_query(
            &mut select,
            scope,
            agents,
            from_ns,
            to_ns,
            value,
            ranges,
            positions,
        );
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(database)?;
        rows.iter()
            .map(|row| row.try_get::<f64, _>("value").map_err(database))
            .collect()
    }

    pub(crate) async fn calls_worst(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        worst: Worst,
        limit: i64,
    ) -> Result<Vec<CallAggregate>, StoreError> {
        let mut select = QueryBuilder::<Postgres>::new("");
        build_calls_query(
            &mut select,
            scope,
            agents,
            from_ns,
            to_ns,
            None,
            Some((worst, limit)),
        );
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(database)?;
        rows.iter()
            .map(|row| call_aggregate(row, BACKEND))
            .collect()
    }

    pub(crate) async fn call_finals(
        &self,
        agent_id: &str,
        call_key: &str,
    ) -> Result<Vec<StreamRow>, StoreError> {
        let select = match call_key.strip_prefix("stream:") {
            Some(stream_id) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {REPORT_COLUMNS} FROM stream_reports WHERE is_final AND agent_id = $1 \
                 AND stream_id = $2 AND call_id IS NULL ORDER BY window_end_ns, id"
            )))
            .bind(agent_id)
            .bind(stream_id),
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {REPORT_COLUMNS} FROM stream_reports WHERE is_final AND agent_id = $1 \
                 AND call_id = $2 ORDER BY window_end_ns, id"
            )))
            .bind(agent_id)
            .bind(call_key),
        };
        let rows = select.fetch_all(&self.pool).await.map_err(database)?;
        rows.iter().map(stream_row).collect()
    }

    pub(crate) async fn jitter_hours(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<JitterHour>, StoreError> {
        let mut select = QueryBuilder::<Postgres>::new("");
        build_jitter_hours_query(&mut select, scope, agents, from_ns, to_ns);
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(database)?;
        rows.iter()
            .map(|row| jitter_hour_row(row, BACKEND))
            .collect()
    }

    pub(crate) async fn window_histograms(
        &self,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<WindowHistogram>, StoreError> {
        let mut select = QueryBuilder::<Postgres>::new("");
        build_window_histograms_query(&mut select, agents, from_ns, to_ns);
        let rows = select
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(database)?;
        rows.iter()
            .map(|row| window_histogram_row(row, BACKEND))
            .collect()
    }

    /// Merges the new windows' hourly histograms into `jitter_hourly`, inside the ingest
    /// transaction (hours in ascending order, so concurrent ingests lock rows in one order).
    async fn merge_jitter_hours(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        agent_id: &str,
        aggregates: &Aggregates,
    ) -> Result<(), StoreError> {
        for hour in &aggregates.jitter_hours {
            sqlx::query(
                "INSERT INTO jitter_hourly (scope, agent_id, hour_ns, samples, windows, \
                 windows_without_histogram, windows_with_drops, histogram) \
                 VALUES ($4, $1, $2, 0, 0, 0, 0, $3) ON CONFLICT (scope, agent_id, hour_ns) DO NOTHING",
            )
            .bind(agent_id)
            .bind(hour.hour_ns)
            .bind(Vec::<u8>::new())
            .bind(hour.scope.as_str())
            .execute(&mut **tx)
            .await
            .map_err(database)?;
            let stored: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT histogram FROM jitter_hourly WHERE agent_id = $1 AND hour_ns = $2 AND scope = $3 FOR UPDATE",
            )
            .bind(agent_id)
            .bind(hour.hour_ns)
            .bind(hour.scope.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(database)?;
            let key = format!("{}/{agent_id}@{}", hour.scope, hour.hour_ns / HOUR_NS);
            let stored = stored.filter(|bytes| !bytes.is_empty());
            let (samples, bytes) = merge_hour(BACKEND, &key, stored.as_deref(), &hour.histogram)?;
            sqlx::query(
                "INSERT INTO jitter_hourly (agent_id, hour_ns, samples, histogram, windows, \
                 windows_without_histogram, windows_with_drops, scope) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (scope, agent_id, hour_ns) DO UPDATE SET \
                 samples = excluded.samples, histogram = excluded.histogram, \
                 windows = jitter_hourly.windows + excluded.windows, \
                 windows_without_histogram = jitter_hourly.windows_without_histogram \
                   + excluded.windows_without_histogram, \
                 windows_with_drops = jitter_hourly.windows_with_drops + excluded.windows_with_drops",
            )
            .bind(agent_id)
            .bind(hour.hour_ns)
            .bind(saturating_i64(samples))
            .bind(bytes)
            .bind(saturating_i64(hour.windows))
            .bind(saturating_i64(hour.windows_without_histogram))
            .bind(saturating_i64(hour.windows_with_drops))
            .bind(hour.scope.as_str())
            .execute(&mut **tx)
            .await
            .map_err(database)?;
        }
        Ok(())
    }

    pub(crate) async fn delete_reports_before(&self, before_ns: i64) -> Result<u64, StoreError> {
        let mut deleted = 0u64;
        loop {
            let result = sqlx::query(
                "DELETE FROM stream_reports WHERE id IN \
                 (SELECT id FROM stream_reports WHERE window_end_ns < $1 LIMIT $2)",
            )
            .bind(before_ns)
            .bind(RETENTION_CHUNK)
            .execute(&self.pool)
            .await
            .map_err(database)?;
            deleted = deleted.saturating_add(result.rows_affected());
            if result.rows_affected() == 0 {
                break;
            }
        }
        for (table, key) in [
            ("call_records", "id"),
            ("call_record_scopes", "customer_id, agent_id, call_key"),
        ] {
            loop {
                let result = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE ({key}) IN \
                     (SELECT {key} FROM {table} WHERE start_ns < $1 LIMIT $2)"
                )))
                .bind(before_ns)
                .bind(RETENTION_CHUNK)
                .execute(&self.pool)
                .await
                .map_err(database)?;
                if result.rows_affected() == 0 {
                    break;
                }
            }
        }
        loop {
            let result = sqlx::query(
                "DELETE FROM batches WHERE batch_id IN \
                 (SELECT batch_id FROM batches WHERE received_ns < $1 LIMIT $2)",
            )
            .bind(before_ns)
            .bind(RETENTION_CHUNK)
            .execute(&self.pool)
            .await
            .map_err(database)?;
            if result.rows_affected() == 0 {
                break;
            }
        }
        Ok(deleted)
    }

    pub(crate) async fn register_scope(
        &self,
        customer_id: &str,
        signature: &str,
        now_ns: i64,
    ) -> Result<i64, StoreError> {
        sqlx::query(
            "INSERT INTO scopes (customer_id, signature, since_ns) VALUES ($1, $2, $3) \
             ON CONFLICT (customer_id) DO UPDATE SET signature = excluded.signature, \
             since_ns = excluded.since_ns WHERE scopes.signature <> excluded.signature",
        )
        .bind(customer_id)
        .bind(signature)
        .bind(now_ns)
        .execute(&self.pool)
        .await
        .map_err(database)?;
        let since: i64 = sqlx::query_scalar("SELECT since_ns FROM scopes WHERE customer_id = $1")
            .bind(customer_id)
            .fetch_one(&self.pool)
            .await
            .map_err(database)?;
        Ok(since)
    }

    pub(crate) async fn retain_scopes(&self, keep: &[String]) -> Result<(), StoreError> {
        let mut delete = QueryBuilder::<Postgres>::new("DELETE FROM scopes");
        if !keep.is_empty() {
            delete.push(" WHERE customer_id NOT IN (");
            let mut list = delete.separated(", ");
            for id in keep {
                list.push_bind(id.clone());
            }
            delete.push(")");
        }
        delete.build().execute(&self.pool).await.map_err(database)?;
        Ok(())
    }

    pub(crate) async fn scope_since(
        &self,
        customer_id: &str,
        signature: &str,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar("SELECT since_ns FROM scopes WHERE customer_id = $1 AND signature = $2")
            .bind(customer_id)
            .bind(signature)
            .fetch_optional(&self.pool)
            .await
            .map_err(database)
    }

    pub(crate) async fn refresh_statistics(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE stream_reports, calls, jitter_hourly, heartbeats")
            .execute(&self.pool)
            .await
            .map_err(database)?;
        Ok(())
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(database)?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// One text column of the reports, as an array for UNNEST.
fn column<'b>(
    reports: &'b [PreparedReport],
    get: impl Fn(&'b PreparedReport) -> &'b str,
) -> Vec<&'b str> {
    reports.iter().map(get).collect()
}

fn token_row(row: &PgRow) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        id: row.try_get("id").map_err(database)?,
        role: row.try_get("role").map_err(database)?,
        agents: row.try_get("agents").map_err(database)?,
        created_ns: row.try_get("created_ns").map_err(database)?,
        last_used_ns: row.try_get("last_used_ns").map_err(database)?,
        revoked: row.try_get("revoked").map_err(database)?,
    })
}

fn agent_row(row: &PgRow) -> Result<AgentRow, StoreError> {
    let agent_id: String = row.try_get("agent_id").map_err(database)?;
    let json: Option<&str> = row.try_get("last_heartbeat").map_err(database)?;
    let last_heartbeat = json
        .map(|json| parse_json(BACKEND, "agents", &agent_id, json))
        .transpose()?;
    Ok(AgentRow::from_stored(
        agent_id,
        row.try_get("last_batch_ns").map_err(database)?,
        row.try_get("last_heartbeat_ns").map_err(database)?,
        last_heartbeat,
        row.try_get("capture_drops_total").map_err(database)?,
    ))
}

fn stream_row(row: &PgRow) -> Result<StreamRow, StoreError> {
    let id: i64 = row.try_get("id").map_err(database)?;
    let json: &str = row.try_get("report").map_err(database)?;
    Ok(StreamRow {
        id,
        agent_id: row.try_get("agent_id").map_err(database)?,
        stream_id: row.try_get("stream_id").map_err(database)?,
        window_start_ns: row.try_get("window_start_ns").map_err(database)?,
        window_end_ns: row.try_get("window_end_ns").map_err(database)?,
        is_final: row.try_get("is_final").map_err(database)?,
        call_id: row.try_get("call_id").map_err(database)?,
        mos: row.try_get("mos").map_err(database)?,
        report: parse_json(BACKEND, "stream_reports", &id.to_string(), json)?,
    })
}

//! SQLite backend of the store: one embedded database file in WAL mode.
//!
//! Writes go through one writer task owning a pool of exactly one connection, so concurrent
//! ingests queue instead of failing with `SQLITE_BUSY`; reads use a separate pool and, thanks
//! to WAL, never wait for writers. Durability choice: `synchronous = FULL`, so every commit is
//! fsynced to the WAL before `ingest` returns. `NORMAL` would already survive `kill -9` of
//! the collector, but not a power loss or kernel crash, and an acknowledged batch has been
//! deleted from the agent's spool. The fsync is about half the cost of writing a 500-report
//! batch, so the writer commits the batches that queued up meanwhile together (group commit):
//! each in its own savepoint, so a failing batch is rolled back alone, and every one is
//! answered only after the shared commit. This module must not be used by several collector
//! processes on one file.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{
    AgentRow, Aggregates, CALL_COLUMNS, CALL_UPSERT_CONFLICT, CallAggregate, CallBin, CallBinning,
    CallStats, CallValue, HOUR_NS, HeartbeatRow, IngestOutcome, JitterHour, PreparedBatch,
    REPORT_RECORD_CONFLICT, RETENTION_CHUNK, StoreError, StreamQuery, StreamRow, TokenRow,
    WindowHistogram, Worst, build_call_bins_query, build_call_positions_query,
    build_calls_page_query, build_calls_query, build_jitter_hours_query,
    build_window_histograms_query, call_aggregate, call_bin_row, call_stats_row, jitter_hour_row,
    mark_new, merge_hour, parse_json, saturating_i64, stored_u64, window_histogram_row,
};

pub(crate) const BACKEND: &str = "sqlite";

/// The SQLite schema's migrations, embedded in the binary: `open` applies them, and
/// `backup`'s restore compares a backup's applied migrations with them.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Report rows per multi-row INSERT: 13 parameters each, well under SQLite's limit of
/// 32766 bound parameters, and few distinct statements for the statement cache.
const REPORT_CHUNK: usize = 250;

const REPORT_COLUMNS: &str = "id, agent_id, stream_id, window_start_ns, window_end_ns, \
                              is_final, call_id, mos, report";

/// Most batches committed together by the writer.
const MAX_GROUP: usize = 16;

/// A batch waiting for the writer, and where to send its outcome.
struct WriteJob {
    batch: PreparedBatch,
    reply: tokio::sync::oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

/// Embedded SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) writer: SqlitePool,
    pub(super) reader: SqlitePool,
    jobs: tokio::sync::mpsc::Sender<WriteJob>,
}

/// Creates the database file, if it does not exist yet, readable and writable by its owner
/// only (0600, whatever the umask): it holds token hashes, IP addresses and call data. SQLite
/// creates the WAL and shared-memory files with the mode of the database file, so they are
/// 0600 too. An existing file keeps the mode an operator gave it; a warning says when others
/// may read it.
#[cfg(unix)]
fn create_private(path: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    "{path} may be read by other users (mode {:04o}); \
                     it holds token hashes and call data: chmod 600 it and its -wal and -shm files",
                    meta.permissions().mode() & 0o7777
                );
            }
            Ok(())
        }
        Err(e) => Err(StoreError::Unavailable {
            backend: BACKEND,
            message: format!("cannot create {path}: {e}"),
        }),
    }
}

fn database(source: sqlx::Error) -> StoreError {
    StoreError::Database {
        backend: BACKEND,
        source,
    }
}

impl SqliteStore {
    /// Opens the database file at `path` (created if missing) and applies migrations.
    pub async fn open(path: &str) -> Result<SqliteStore, StoreError> {
        if path.is_empty() || path.starts_with(":memory:") {
            return Err(StoreError::Url(
                "sqlite needs a file path (an in-memory database would not be shared)".to_string(),
            ));
        }
        #[cfg(unix)]
        create_private(path)?;
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(database)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // 64 MiB of page cache per connection (the default is 2 MiB): index pages of
            // a large store stay cached between batches.
            .pragma("cache_size", "-65536")
            // Savepoints (one per batch of a group commit) journal in memory, not a temp file.
            .pragma("temp_store", "memory")
            // Checkpoints run in a background task (below), off the writer's commit path;
            // this is only the fallback should that task fall behind (64 MiB of WAL).
            .pragma("wal_autocheckpoint", "16384");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.clone())
            .await
            .map_err(database)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: BACKEND,
                source,
            })?;
        // Readers keep 16 MiB of page cache each (the writer 64): four of them filled by
        // reading a month of stream reports held 256 MiB; the OS page cache holds the file.
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.pragma("cache_size", "-16384"))
            .await
            .map_err(database)?;
        let (jobs, queue) = tokio::sync::mpsc::channel(64);
        tokio::spawn(write_loop(writer.clone(), queue));
        tokio::spawn(checkpoint_loop(reader.clone()));
        Ok(SqliteStore {
            writer,
            reader,
            jobs,
        })
    }

    /// Hands the batch to the writer task and waits for its commit.
    pub(crate) async fn ingest(&self, batch: PreparedBatch) -> Result<IngestOutcome, StoreError> {
        let stopped = || StoreError::Unavailable {
            backend: BACKEND,
            message: "the writer has stopped".to_string(),
        };
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.jobs
            .send(WriteJob { batch, reply })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }

    /// Writes one batch inside the writer's open transaction: each record that the store
    /// does not hold yet, and the aggregates of exactly those.
    async fn write_batch(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        batch: &PreparedBatch,
    ) -> Result<IngestOutcome, StoreError> {
        // The batch log: which uploads arrived (the first copy's counts); not a dedupe key.
        sqlx::query(
            "INSERT INTO batches (batch_id, agent_id, sent_at_ns, received_ns, reports, heartbeats) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (batch_id) DO NOTHING",
        )
        .bind(batch.batch.batch_id.as_str())
        .bind(batch.batch.agent_id.as_str())
        .bind(batch.sent_at_ns)
        .bind(batch.received_ns)
        .bind(batch.report_count())
        .bind(batch.heartbeat_count())
        .execute(&mut **tx)
        .await
        .map_err(database)?;

        let mut new_reports = vec![false; batch.reports.len()];
        let index = batch.report_index();
        for chunk in batch.reports.chunks(REPORT_CHUNK) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO stream_reports (agent_id, stream_id, call_id, src, dst, \
                 window_start_ns, window_end_ns, is_final, mos, effective_loss_pct, \
                 max_jitter_ms, capture_drops, report, jitter_histogram) ",
            );
            insert.push_values(chunk, |mut row, prepared| {
                let report = &prepared.report;
                row.push_bind(report.agent_id.as_str())
                    .push_bind(report.stream_id.as_str())
                    .push_bind(report.call_id.as_deref())
                    .push_bind(report.src.as_str())
                    .push_bind(report.dst.as_str())
                    .push_bind(prepared.window_start_ns)
                    .push_bind(prepared.window_end_ns)
                    .push_bind(report.is_final)
                    .push_bind(report.mos)
                    .push_bind(report.effective_loss_pct)
                    .push_bind(report.max_jitter_ms)
                    .push_bind(prepared.capture_drops)
                    .push_bind(prepared.json.as_str())
                    .push_bind(
                        prepared
                            .jitter_histogram
                            .as_ref()
                            .map(|(bytes, _)| bytes.as_slice()),
                    );
            });
            insert.push(REPORT_RECORD_CONFLICT);
            let inserted = insert
                .build()
                .fetch_all(&mut **tx)
                .await
                .map_err(database)?;
            mark_new(&inserted, &index, &mut new_reports)?;
        }

        let mut new_heartbeats = vec![false; batch.heartbeats.len()];
        for (heartbeat, new) in batch.heartbeats.iter().zip(&mut new_heartbeats) {
            let inserted = sqlx::query(
                "INSERT INTO heartbeats (agent_id, time_ns, any_process_down, \
                 kernel_drops_total, heartbeat) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (agent_id, time_ns) DO NOTHING",
            )
            .bind(batch.batch.agent_id.as_str())
            .bind(heartbeat.time_ns)
            .bind(heartbeat.any_process_down)
            .bind(heartbeat.kernel_drops_total)
            .bind(heartbeat.json.as_str())
            .execute(&mut **tx)
            .await
            .map_err(database)?;
            *new = inserted.rows_affected() == 1;
        }

        let aggregates = batch.aggregates(&new_reports, &new_heartbeats)?;
        for chunk in aggregates.calls.chunks(REPORT_CHUNK) {
            let mut upsert =
                QueryBuilder::<Sqlite>::new(format!("INSERT INTO calls ({CALL_COLUMNS}) "));
            upsert.push_values(chunk, |mut row, call| {
                row.push_bind(call.scope.as_str())
                    .push_bind(call.agent_id.as_str())
                    .push_bind(call.call_key.as_str())
                    .push_bind(call.call_id.as_deref())
                    .push_bind(saturating_i64(call.streams))
                    .push_bind(call.first_start_ns)
                    .push_bind(call.last_end_ns)
                    .push_bind(call.last_start_ns)
                    .push_bind(call.min_mos)
                    .push_bind(call.max_loss_pct)
                    .push_bind(call.max_jitter_ms)
                    .push_bind(call.mos_stream_id.as_deref())
                    .push_bind(call.mos_codec.as_deref());
            });
            upsert.push(CALL_UPSERT_CONFLICT);
            upsert.build().execute(&mut **tx).await.map_err(database)?;
        }

        Self::merge_jitter_hours(tx, &batch.batch.agent_id, &aggregates).await?;

        // The agent's contact time moves with every batch (a repeat is contact too); the
        // heartbeat and the drop total only with records new to the store.
        let newest = aggregates
            .newest_heartbeat
            .and_then(|index| batch.heartbeats.get(index));
        sqlx::query(
            "INSERT INTO agents (agent_id, last_batch_ns, last_heartbeat_ns, last_heartbeat, \
             capture_drops_total) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (agent_id) DO UPDATE SET \
             last_batch_ns = MAX(agents.last_batch_ns, excluded.last_batch_ns), \
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
        .execute(&mut **tx)
        .await
        .map_err(database)?;

        let new_calls = super::calls::write_sqlite(tx, &batch.batch.agent_id, &batch.calls).await?;

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
             VALUES (?, ?, ?, ?, ?, FALSE)",
        )
        .bind(id)
        .bind(hash)
        .bind(role)
        .bind(agents)
        .bind(created_ns)
        .execute(&self.writer)
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
            "UPDATE tokens SET last_used_ns = ? WHERE id = ? \
             AND (last_used_ns IS NULL OR last_used_ns < ?)",
        )
        .bind(now_ns)
        .bind(id)
        .bind(unless_since_ns)
        .execute(&self.writer)
        .await
        .map_err(database)?;
        Ok(result.rows_affected() > 0)
    }

    pub(crate) async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, role, agents, created_ns, last_used_ns, revoked FROM tokens WHERE hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.reader)
        .await
        .map_err(database)?;
        row.map(|row| token_row(&row)).transpose()
    }

    pub(crate) async fn token_list(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, role, agents, created_ns, last_used_ns, revoked FROM tokens \
                 ORDER BY created_ns, id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(database)?;
        rows.iter().map(token_row).collect()
    }

    pub(crate) async fn token_revoke(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE tokens SET revoked = TRUE WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(database)?;
        Ok(result.rows_affected() > 0)
    }

    pub(crate) async fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, last_batch_ns, last_heartbeat_ns, last_heartbeat, \
             capture_drops_total FROM agents ORDER BY agent_id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(database)?;
        rows.iter().map(agent_row).collect()
    }

    pub(crate) async fn streams(&self, query: &StreamQuery) -> Result<Vec<StreamRow>, StoreError> {
        let mut select = QueryBuilder::<Sqlite>::new("");
        super::build_streams_query(&mut select, REPORT_COLUMNS, query);
        let rows = select
            .build()
            .fetch_all(&self.reader)
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
        let mut select = QueryBuilder::<Sqlite>::new("");
        super::calls::build_counts_query(&mut select, scope, agents, from_ns, to_ns, group);
        let rows = select
            .build()
            .fetch_all(&self.reader)
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
        let mut select = QueryBuilder::<Sqlite>::new("");
        super::calls::build_records_query(&mut select, query);
        let rows = select
            .build()
            .fetch_all(&self.reader)
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
             (SELECT agent_id, stream_id FROM stream_reports WHERE call_id = ?) \
             ORDER BY window_end_ns, id",
        )
        .bind(call_id)
        .fetch_all(&self.reader)
        .await
        .map_err(database)?;
        rows.iter().map(stream_row).collect()
    }

    pub(crate) async fn first_heartbeats(
        &self,
        agents: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        // One indexed lookup per agent (the unique (agent_id, time_ns) index): a MIN with
        // GROUP BY would walk every heartbeat of the agents.
        let mut first = Vec::with_capacity(agents.len());
        for agent in agents {
            let time_ns: Option<i64> = sqlx::query_scalar(
                "SELECT time_ns FROM heartbeats WHERE agent_id = ? ORDER BY time_ns LIMIT 1",
            )
            .bind(agent.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(database)?;
            first.extend(time_ns.map(|t| (agent.clone(), t)));
        }
        Ok(first)
    }

    pub(crate) async fn heartbeats(
        &self,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<HeartbeatRow>, StoreError> {
        let mut select = QueryBuilder::<Sqlite>::new(
            "SELECT agent_id, time_ns, any_process_down, kernel_drops_total FROM heartbeats \
             WHERE agent_id IN (",
        );
        let mut list = select.separated(", ");
        for agent in agents {
            list.push_bind(agent.as_str());
        }
        select
            .push(") AND time_ns >= ")
            .push_bind(from_ns)
            .push(" AND time_ns < ")
            .push_bind(to_ns)
            .push(" ORDER BY agent_id, time_ns, id");
        let rows = select
            .build()
            .fetch_all(&self.reader)
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

    fn final_query(
        columns: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> QueryBuilder<Sqlite> {
        let mut select = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {columns} FROM stream_reports WHERE is_final AND agent_id IN ("
        ));
        let mut list = select.separated(", ");
        for agent in agents {
            list.push_bind(agent.clone());
        }
        select
            .push(") AND window_end_ns >= ")
            .push_bind(from_ns)
            .push(" AND window_end_ns < ")
            .push_bind(to_ns)
            .push(" ORDER BY agent_id, window_end_ns, id");
        select
    }

    pub(crate) async fn final_reports(
        &self,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<StreamRow>, StoreError> {
        let mut select = Self::final_query(REPORT_COLUMNS, agents, from_ns, to_ns);
        let rows = select
            .build()
            .fetch_all(&self.reader)
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
        let mut select = QueryBuilder::<Sqlite>::new("");
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
            .fetch_one(&self.reader)
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
        let mut select = QueryBuilder::<Sqlite>::new("");
        build_calls_page_query(&mut select, scope, agent, from_ns, to_ns, after, limit);
        let rows = select
            .build()
            .fetch_all(&self.reader)
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
        let mut select = QueryBuilder::<Sqlite>::new("");
        build_call_bins_query(&mut select, scope, agents, from_ns, to_ns, binning);
        let rows = select
            .build()
            .fetch_all(&self.reader)
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
        let mut select = QueryBuilder::<Sqlite>::new("");
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
            .fetch_all(&self.reader)
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
        let mut select = QueryBuilder::<Sqlite>::new("");
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
            .fetch_all(&self.reader)
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
        // `+agent_id` keeps SQLite's planner (which has no statistics) off the per-agent
        // indexes, which would scan all of the agent's rows, and on the call/stream index.
        let select = match call_key.strip_prefix("stream:") {
            Some(stream_id) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {REPORT_COLUMNS} FROM stream_reports WHERE is_final AND +agent_id = ? \
                 AND stream_id = ? AND call_id IS NULL ORDER BY window_end_ns, id"
            )))
            .bind(agent_id)
            .bind(stream_id),
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {REPORT_COLUMNS} FROM stream_reports WHERE is_final AND +agent_id = ? \
                 AND call_id = ? ORDER BY window_end_ns, id"
            )))
            .bind(agent_id)
            .bind(call_key),
        };
        let rows = select.fetch_all(&self.reader).await.map_err(database)?;
        rows.iter().map(stream_row).collect()
    }

    pub(crate) async fn jitter_hours(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<JitterHour>, StoreError> {
        let mut select = QueryBuilder::<Sqlite>::new("");
        build_jitter_hours_query(&mut select, scope, agents, from_ns, to_ns);
        let rows = select
            .build()
            .fetch_all(&self.reader)
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
        let mut select = QueryBuilder::<Sqlite>::new("");
        build_window_histograms_query(&mut select, agents, from_ns, to_ns);
        let rows = select
            .build()
            .fetch_all(&self.reader)
            .await
            .map_err(database)?;
        rows.iter()
            .map(|row| window_histogram_row(row, BACKEND))
            .collect()
    }

    /// Merges the new windows' hourly histograms into `jitter_hourly`, inside the ingest
    /// transaction (hours in ascending order, so concurrent ingests lock rows in one order).
    async fn merge_jitter_hours(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        agent_id: &str,
        aggregates: &Aggregates,
    ) -> Result<(), StoreError> {
        for hour in &aggregates.jitter_hours {
            let stored: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT histogram FROM jitter_hourly WHERE agent_id = ? AND hour_ns = ? AND scope = ?",
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
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
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
                 (SELECT id FROM stream_reports WHERE window_end_ns < ? LIMIT ?)",
            )
            .bind(before_ns)
            .bind(RETENTION_CHUNK)
            .execute(&self.writer)
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
                     (SELECT {key} FROM {table} WHERE start_ns < ? LIMIT ?)"
                )))
                .bind(before_ns)
                .bind(RETENTION_CHUNK)
                .execute(&self.writer)
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
                 (SELECT batch_id FROM batches WHERE received_ns < ? LIMIT ?)",
            )
            .bind(before_ns)
            .bind(RETENTION_CHUNK)
            .execute(&self.writer)
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
            "INSERT INTO scopes (customer_id, signature, since_ns) VALUES (?, ?, ?) \
             ON CONFLICT (customer_id) DO UPDATE SET signature = excluded.signature, \
             since_ns = excluded.since_ns WHERE scopes.signature <> excluded.signature",
        )
        .bind(customer_id)
        .bind(signature)
        .bind(now_ns)
        .execute(&self.writer)
        .await
        .map_err(database)?;
        let since: i64 = sqlx::query_scalar("SELECT since_ns FROM scopes WHERE customer_id = ?")
            .bind(customer_id)
            .fetch_one(&self.writer)
            .await
            .map_err(database)?;
        Ok(since)
    }

    pub(crate) async fn retain_scopes(&self, keep: &[String]) -> Result<(), StoreError> {
        let mut delete = QueryBuilder::<Sqlite>::new("DELETE FROM scopes");
        if !keep.is_empty() {
            delete.push(" WHERE customer_id NOT IN (");
            let mut list = delete.separated(", ");
            for id in keep {
                list.push_bind(id.clone());
            }
            delete.push(")");
        }
        delete
            .build()
            .execute(&self.writer)
            .await
            .map_err(database)?;
        Ok(())
    }

    pub(crate) async fn scope_since(
        &self,
        customer_id: &str,
        signature: &str,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar("SELECT since_ns FROM scopes WHERE customer_id = ? AND signature = ?")
            .bind(customer_id)
            .bind(signature)
            .fetch_optional(&self.reader)
            .await
            .map_err(database)
    }

    pub(crate) async fn refresh_statistics(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA optimize")
            .execute(&self.writer)
            .await
            .map_err(database)?;
        Ok(())
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(database)?;
        Ok(())
    }

    pub(crate) async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

fn token_row(row: &SqliteRow) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        id: row.try_get("id").map_err(database)?,
        role: row.try_get("role").map_err(database)?,
        agents: row.try_get("agents").map_err(database)?,
        created_ns: row.try_get("created_ns").map_err(database)?,
        last_used_ns: row.try_get("last_used_ns").map_err(database)?,
        revoked: row.try_get("revoked").map_err(database)?,
    })
}

fn agent_row(row: &SqliteRow) -> Result<AgentRow, StoreError> {
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

fn stream_row(row: &SqliteRow) -> Result<StreamRow, StoreError> {
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

/// The writer task: takes the first waiting batch and whatever queued behind it (up to
/// `MAX_GROUP`), writes each in a savepoint of one transaction, commits once, then answers
/// each. A commit failure fails every batch of the group (none was stored).
async fn write_loop(pool: SqlitePool, mut queue: tokio::sync::mpsc::Receiver<WriteJob>) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        match write_group(&pool, &group).await {
            Ok(outcomes) => {
                for (job, outcome) in group.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(error) => {
                let message = error.to_string();
                for job in group {
                    let _ = job.reply.send(Err(StoreError::Unavailable {
                        backend: BACKEND,
                        message: message.clone(),
                    }));
                }
            }
        }
    }
}

async fn write_group(
    pool: &SqlitePool,
    group: &[WriteJob],
) -> Result<Vec<Result<IngestOutcome, StoreError>>, StoreError> {
    let mut tx = pool.begin().await.map_err(database)?;
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        sqlx::query("SAVEPOINT batch")
            .execute(&mut *tx)
            .await
            .map_err(database)?;
        let outcome = SqliteStore::write_batch(&mut tx, &job.batch).await;
        if outcome.is_err() {
            sqlx::query("ROLLBACK TO batch")
                .execute(&mut *tx)
                .await
                .map_err(database)?;
        }
        sqlx::query("RELEASE batch")
            .execute(&mut *tx)
            .await
            .map_err(database)?;
        outcomes.push(outcome);
    }
    tx.commit().await.map_err(database)?;
    Ok(outcomes)
}

/// Copies committed WAL frames into the database file every second (a PASSIVE checkpoint,
/// which never blocks the writer), so that commits do not pay for it. Ends with the pool.
async fn checkpoint_loop(pool: SqlitePool) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::error!("sqlite checkpoint failed: {e}");
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    }

    /// Token hashes, addresses and call data: the database and its WAL and shared-memory
    /// files are the owner's alone, whatever the umask (the usual 022 would give 0644).
    #[tokio::test]
    async fn a_new_database_and_its_wal_and_shm_are_created_0600() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("voqa.db");
        let text = path.to_str().expect("utf-8 path");
        let store = SqliteStore::open(text).await.expect("open");
        sqlx::query("INSERT INTO tokens (id, hash, role, created_ns, revoked) VALUES ('t', 'h', 'ops', 0, FALSE)")
            .execute(&store.writer)
            .await
            .expect("write");
        let wal = dir.path().join("voqa.db-wal");
        let shm = dir.path().join("voqa.db-shm");
        assert!(
            std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
            "the write is in the WAL"
        );
        for file in [&path, &wal, &shm] {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
    }

    /// An existing file keeps the mode its operator gave it (the open only warns).
    #[tokio::test]
    async fn an_existing_database_keeps_its_mode() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("voqa.db");
        std::fs::write(&path, b"").expect("create");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        SqliteStore::open(path.to_str().expect("utf-8 path"))
            .await
            .expect("open");
        assert_eq!(mode(&path), 0o640);
    }
}

//! Summary reads for the alert engine, computed in the database so that a cycle over many
//! customers moves a few rows per customer instead of their raw history:
//! - [`Store::heartbeat_gaps`]: only the heartbeats the uptime rules can turn into downtime
//!   (gap ends, process-down reports and the heartbeat after each, each agent's first and last
//!   in the span), found with window functions over the `(agent_id, time_ns)` index on
//!   PostgreSQL, and by `keep_gaps` over an ordered read of that index on SQLite;
//! - [`Store::problem_call_counts`]: answered call records with a media problem, and how many
//!   of them the per-call MOS aggregates already count (the `quality_drop` rule counts a call
//!   once, see `alerts::rules::quality_drop`);
//! - [`Store::call_stats_spans`]: a customer's call stats of several spans in one query.
//!
//! The last two also `_by_agent`: the same SQL grouped by agent, so that the engine reads every
//! customer's figures in one query and sums each customer's agents (`alerts::batch`).
//! One SQL text per read serves both backends (`$N` parameters, bound by number by sqlx's
//! SQLite driver too), but for `heartbeat_gaps` (an `IN` list of agents, and different SQL per backend). Must not: judge anything (the uptime rules are
//! `sla::uptime`, the alert rules `alerts::rules`), read a clock, or write.

use sqlx::Row;

use super::alerts::on_pool;
use super::{CallStats, Store, StoreError};

/// Most agents of one query (the reads of many agents run one query per this many).
const MAX_AGENTS: usize = 1000;
/// Most spans of one `call_stats_spans` read.
const MAX_SPANS: usize = 64;
/// Parts of a many-agent `heartbeat_gaps` read that run at once: the SQLite store's reader
/// connections (`sqlite.rs`).
const PARTS: usize = 4;

/// One heartbeat kept by [`Store::heartbeat_gaps`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatGapRow {
    pub agent_id: String,
    pub time_ns: i64,
    pub any_process_down: bool,
    /// The agent's previous heartbeat in the span lies at most `max_gap_ns` before this one.
    pub dense_before: bool,
}

/// Answered call records with a media problem in a span, and those of them the per-call
/// MOS aggregates hold in the same span (with a MOS, and with one below the minimum).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProblemCallCounts {
    pub problem_calls: u64,
    /// Of `problem_calls`: calls whose streams' aggregate (same agent and call id, last final
    /// report in the span) has a MOS, so `CallStats::calls_with_mos` counts them already.
    pub with_mos: u64,
    /// Of `with_mos`: those below the MOS minimum, already counted as below.
    pub below_mos: u64,
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A read error of the SQLite store.
fn sqlite_error(source: sqlx::Error) -> StoreError {
    StoreError::Database {
        backend: super::sqlite::BACKEND,
        source,
    }
}

/// `sqlite_gaps`' text of one agent's heartbeats (`123,456d,…`: time, `d` when a process was
/// down) into `beats`, in time order.
fn parse_beats(text: &str, beats: &mut Vec<(i64, bool)>) -> Result<(), StoreError> {
    beats.clear();
    for beat in text.split(',') {
        let (time, down) = match beat.strip_suffix('d') {
            Some(time) => (time, true),
            None => (beat, false),
        };
        let time_ns = time.parse::<i64>().map_err(|e| {
            StoreError::Invalid(format!("heartbeat_gaps: heartbeat time {beat:?}: {e}"))
        })?;
        beats.push((time_ns, down));
    }
    // (agent_id, time_ns) is unique (`heartbeats_record`), so time alone orders them.
    beats.sort_unstable();
    Ok(())
}

/// The heartbeats of one agent (`beats`: time and any process down, in time order, those of
/// the span only) that [`Store::heartbeat_gaps`] keeps, appended to `out`: the SQLite form of
/// PostgreSQL's window-function query (`postgres_gaps`), row for row the same (the tests of
/// `heartbeat_gaps` run on both backends). No allocation but the kept rows.
fn keep_gaps(agent: &str, beats: &[(i64, bool)], max_gap_ns: i64, out: &mut Vec<HeartbeatGapRow>) {
    // As wide integers, so that no difference overflows (SQL would turn it into a float).
    let longer =
        |earlier: i64, later: i64| i128::from(later) - i128::from(earlier) > i128::from(max_gap_ns);
    for (i, &(time_ns, down)) in beats.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|j| beats.get(j));
        let next = beats.get(i + 1);
        let gap_before = prev.is_some_and(|&(p, _)| longer(p, time_ns));
        let keep = match (prev, next) {
            (Some(&(_, prev_down)), Some(&(n, _))) => {
                down || prev_down || gap_before || longer(time_ns, n)
            }
            // The agent's first and last heartbeat in the span.
            _ => true,
        };
        if keep {
            out.push(HeartbeatGapRow {
                agent_id: agent.to_owned(),
                time_ns,
                any_process_down: down,
                dense_before: prev.is_some() && !gap_before,
            });
        }
    }
}

impl Store {
    /// The heartbeats of `agents` in `[from_ns, to_ns)` that the uptime rules need when a
    /// silence longer than `max_gap_ns` is downtime (`sla::uptime::uptime_sparse`): the first
    /// and last of each agent, both ends of each longer gap, each heartbeat reporting a process
    /// down and the one after it. Ordered by agent (as Rust orders strings) and time. The
    /// heartbeats left out are less than `max_gap_ns` apart and report no process down. Any
    /// number of agents: the alert engine reads every customer's at once.
    pub async fn heartbeat_gaps(
        &self,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        max_gap_ns: i64,
    ) -> Result<Vec<HeartbeatGapRow>, StoreError> {
        if agents.is_empty() || from_ns >= to_ns {
            return Ok(Vec::new());
        }
        let mut agents: Vec<&String> = agents.iter().collect();
        agents.sort_unstable();
        agents.dedup();
        // In PARTS parts at once, each on its own connection (SQLite's readers are threads of
        // their own, PostgreSQL's backends processes): the parts are in agent order, so they
        // concatenate in order.
        let span = (from_ns, to_ns, max_gap_ns);
        let mut parts = agents.chunks(agents.len().div_ceil(PARTS).max(1));
        let (a, b, c, d) = tokio::try_join!(
            self.gaps_part(parts.next(), span),
            self.gaps_part(parts.next(), span),
            self.gaps_part(parts.next(), span),
            self.gaps_part(parts.next(), span),
        )?;
        Ok([a, b, c, d].concat())
    }

    /// `heartbeat_gaps` of `agents` (sorted), one query per [`MAX_AGENTS`]. SQLite reads every
    /// heartbeat and keeps the gap rows in Rust ([`keep_gaps`]: its window functions cost 7×
    /// the plain read); PostgreSQL keeps them with window functions (sending every heartbeat
    /// to the collector would cost it more than the window functions over all of them, and
    /// it meets the cycle target as it is).
    async fn gaps_part(
        &self,
        agents: Option<&[&String]>,
        span: (i64, i64, i64),
    ) -> Result<Vec<HeartbeatGapRow>, StoreError> {
        let agents = agents.unwrap_or_default();
        let mut out = Vec::new();
        match self {
            Store::Sqlite(_) => {
                for chunk in agents.chunks(MAX_AGENTS) {
                    out.extend(self.sqlite_gaps(chunk, span).await?);
                }
            }
            Store::Postgres(_) => {
                for chunk in agents.chunks(MAX_AGENTS) {
                    out.extend(self.postgres_gaps(chunk, span).await?);
                }
            }
        }
        Ok(out)
    }

    /// `heartbeat_gaps` of `agents` (sorted, at most [`MAX_AGENTS`]) in one query: each
    /// agent's heartbeats of the span as one text (`group_concat` over the `(agent_id,
    /// time_ns)` index), the rows kept by [`keep_gaps`]. Over 1,000 agents of 360 heartbeats
    /// the window functions cost SQLite 0.8 s of CPU (`sqlite3` shell), this read 0.15 s; one
    /// sqlx row per heartbeat would cost more than the window functions (each row is copied
    /// value by value and sent from sqlx's worker thread on its own).
    async fn sqlite_gaps(
        &self,
        agents: &[&String],
        (from_ns, to_ns, max_gap_ns): (i64, i64, i64),
    ) -> Result<Vec<HeartbeatGapRow>, StoreError> {
        // `time_ns` with a `d` when a process was down, comma-separated, in no promised
        // order (SQLite's group_concat promises none): `parse_beats` sorts them.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT agent_id, \
               group_concat(time_ns || CASE WHEN any_process_down THEN 'd' ELSE '' END, ',') \
                 AS beats \
             FROM heartbeats WHERE agent_id IN ({}) AND time_ns >= $1 AND time_ns < $2 \
             GROUP BY agent_id",
            placeholders(3, agents.len())
        ));
        let Store::Sqlite(sqlite) = self else {
            return Err(StoreError::Invalid(
                "heartbeat_gaps: the SQLite read on another store".into(),
            ));
        };
        let mut query = sqlx::query(sql).bind(from_ns).bind(to_ns);
        for agent in agents {
            query = query.bind(agent.as_str());
        }
        let rows = query
            .fetch_all(&sqlite.reader)
            .await
            .map_err(sqlite_error)?;
        let mut out = Vec::new();
        // One agent's heartbeats at a time (the buffer is reused from agent to agent).
        let mut beats: Vec<(i64, bool)> = Vec::new();
        for row in &rows {
            let (agent, text): (&str, &str) = (
                row.try_get("agent_id").map_err(sqlite_error)?,
                row.try_get("beats").map_err(sqlite_error)?,
            );
            parse_beats(text, &mut beats)?;
            keep_gaps(agent, &beats, max_gap_ns, &mut out);
        }
        // In Rust's order of agents (stable: each agent's rows stay in time order), whatever
        // order the groups came in.
        out.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        Ok(out)
    }

    /// `heartbeat_gaps` of `agents` (sorted, at most [`MAX_AGENTS`]) in one query.
    async fn postgres_gaps(
        &self,
        agents: &[&String],
        (from_ns, to_ns, max_gap_ns): (i64, i64, i64),
    ) -> Result<Vec<HeartbeatGapRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT agent_id, time_ns, any_process_down, \
               (prev_t IS NOT NULL AND time_ns - prev_t <= $3) AS dense_before \
             FROM (SELECT agent_id, time_ns, any_process_down, \
                     LAG(time_ns) OVER w AS prev_t, LEAD(time_ns) OVER w AS next_t, \
                     LAG(any_process_down) OVER w AS prev_down \
                   FROM heartbeats WHERE agent_id IN ({}) AND time_ns >= $1 AND time_ns < $2 \
                   WINDOW w AS (PARTITION BY agent_id ORDER BY time_ns)) h \
             WHERE prev_t IS NULL OR next_t IS NULL OR any_process_down OR prev_down \
               OR time_ns - prev_t > $3 OR next_t - time_ns > $3 \
             ORDER BY agent_id, time_ns",
            placeholders(4, agents.len())
        ));
        let rows = on_pool!(self, read, pool => async {
            let mut query = sqlx::query(sql).bind(from_ns).bind(to_ns).bind(max_gap_ns);
            for agent in agents {
                query = query.bind(agent.as_str());
            }
            query
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    Ok(HeartbeatGapRow {
                        agent_id: row.try_get("agent_id")?,
                        time_ns: row.try_get("time_ns")?,
                        any_process_down: row.try_get("any_process_down")?,
                        dense_before: row.try_get("dense_before")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        }.await)?;
        // The database orders agents by its collation: regroup them in Rust's order, each
        // agent's rows staying in time order.
        let mut by_agent: std::collections::BTreeMap<String, Vec<HeartbeatGapRow>> =
            std::collections::BTreeMap::new();
        for row in rows {
            by_agent.entry(row.agent_id.clone()).or_default().push(row);
        }
        Ok(by_agent.into_values().flatten().collect())
    }

    /// `Store::call_stats` of several spans ending at `to` (`[from, to)` for each of `froms`)
    /// in one query: the same counts, one read of the longest span instead of one query per
    /// span (the alert rules of a customer ask for up to five spans per cycle).
    pub async fn call_stats_spans(
        &self,
        scope: &str,
        agents: &[String],
        froms: &[i64],
        to: i64,
        mos_min: f64,
        loss_max_pct: f64,
    ) -> Result<Vec<CallStats>, StoreError> {
        let Some(&earliest) = froms.iter().min() else {
            return Ok(Vec::new());
        };
        if agents.is_empty() || earliest >= to {
            return Ok(froms.iter().map(|_| CallStats::default()).collect());
        }
        if agents.len() > MAX_AGENTS || froms.len() > MAX_SPANS {
            return Err(StoreError::Invalid(format!(
                "call_stats_spans: {} agents and {} spans, at most {MAX_AGENTS} and {MAX_SPANS}",
                agents.len(),
                froms.len()
            )));
        }
        let rows = self
            .call_stats_spans_query(scope, agents, froms, to, mos_min, loss_max_pct, false)
            .await?;
        // Without GROUP BY the aggregate is one row, also over no calls.
        Ok(rows
            .into_iter()
            .next()
            .map(|(_, stats)| stats)
            .unwrap_or_else(|| froms.iter().map(|_| CallStats::default()).collect()))
    }

    /// [`Store::call_stats_spans`] of each agent of `agents` on its own, for any number of
    /// agents (one query per [`MAX_AGENTS`]): the alert engine reads every customer's calls
    /// at once and sums its agents' rows ([`CallStats::add`]). Agents without a call in the
    /// longest span have no row.
    pub async fn call_stats_spans_by_agent(
        &self,
        scope: &str,
        agents: &[String],
        froms: &[i64],
        to: i64,
        mos_min: f64,
        loss_max_pct: f64,
    ) -> Result<Vec<(String, Vec<CallStats>)>, StoreError> {
        let Some(&earliest) = froms.iter().min() else {
            return Ok(Vec::new());
        };
        if agents.is_empty() || earliest >= to {
            return Ok(Vec::new());
        }
        if froms.len() > MAX_SPANS {
            return Err(StoreError::Invalid(format!(
                "call_stats_spans_by_agent: {} spans, at most {MAX_SPANS}",
                froms.len()
            )));
        }
        let mut out = Vec::new();
        for chunk in agents.chunks(MAX_AGENTS) {
            let rows = self
                .call_stats_spans_query(scope, chunk, froms, to, mos_min, loss_max_pct, true)
                .await?;
            out.extend(
                rows.into_iter()
                    .filter_map(|(agent, stats)| agent.map(|a| (a, stats))),
            );
        }
        Ok(out)
    }

    /// The query of [`Store::call_stats_spans`] (one row) and, `by_agent`, of
    /// [`Store::call_stats_spans_by_agent`] (a row per agent with calls), so the two cannot
    /// count differently. `froms` is not empty; the caller checked the limits.
    #[allow(clippy::too_many_arguments)]
    async fn call_stats_spans_query(
        &self,
        scope: &str,
        agents: &[String],
        froms: &[i64],
        to: i64,
        mos_min: f64,
        loss_max_pct: f64,
        by_agent: bool,
    ) -> Result<Vec<(Option<String>, Vec<CallStats>)>, StoreError> {
        let earliest = froms.iter().copied().min().unwrap_or(to);
        // $1 scope, $2 earliest, $3 to, $4 mos_min, $5 loss_max_pct, then the spans' starts,
        // then the agents. The conditions are `Store::call_stats`' (`build_calls_query`).
        let mut columns = Vec::new();
        if by_agent {
            columns.push("agent_id".to_owned());
        }
        for k in 0..froms.len() {
            let f = format!("last_start_ns >= ${}", 6 + k);
            columns.push(format!(
                "COUNT(CASE WHEN {f} THEN 1 END) AS calls_{k}, \
                 COUNT(CASE WHEN {f} THEN min_mos END) AS calls_with_mos_{k}, \
                 COALESCE(SUM(CASE WHEN {f} AND min_mos >= $4 THEN 1 ELSE 0 END), 0) AS meeting_mos_{k}, \
                 COALESCE(SUM(CASE WHEN {f} AND max_loss_pct <= $5 THEN 1 ELSE 0 END), 0) AS meeting_loss_{k}, \
                 COALESCE(SUM(CASE WHEN {f} AND min_mos >= $4 AND max_loss_pct <= $5 THEN 1 ELSE 0 END), 0) AS meeting_both_{k}, \
                 MAX(CASE WHEN {f} THEN max_loss_pct END) AS worst_loss_pct_{k}"
            ));
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM calls WHERE scope = $1 AND agent_id IN ({}) \
             AND last_start_ns >= $2 AND last_start_ns < $3{}",
            columns.join(", "),
            placeholders(6 + froms.len(), agents.len()),
            if by_agent { " GROUP BY agent_id" } else { "" }
        ));
        let spans = froms.len();
        on_pool!(self, read, pool => async {
            let mut query = sqlx::query(sql)
                .bind(scope)
                .bind(earliest)
                .bind(to)
                .bind(mos_min)
                .bind(loss_max_pct);
            for from in froms {
                query = query.bind(*from);
            }
            for agent in agents {
                query = query.bind(agent.as_str());
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    let count = |name: String| -> Result<u64, sqlx::Error> {
                        Ok(u64::try_from(row.try_get::<i64, _>(name.as_str())?).unwrap_or(0))
                    };
                    let agent: Option<String> = if by_agent {
                        Some(row.try_get("agent_id")?)
                    } else {
                        None
                    };
                    let stats = (0..spans)
                        .map(|k| {
                            Ok(CallStats {
                                calls: count(format!("calls_{k}"))?,
                                calls_with_mos: count(format!("calls_with_mos_{k}"))?,
                                meeting_mos: count(format!("meeting_mos_{k}"))?,
                                meeting_loss: count(format!("meeting_loss_{k}"))?,
                                meeting_both: count(format!("meeting_both_{k}"))?,
                                worst_loss_pct: row
                                    .try_get(format!("worst_loss_pct_{k}").as_str())?,
                            })
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()?;
                    Ok((agent, stats))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        }.await)
    }

    /// Answered call records of `agents` with a media problem whose first INVITE lies in
    /// `[from_ns, to_ns)` — for `scope` `""` all of the agents' records, otherwise those
    /// attributed to that subnet customer — and how many of them the per-call aggregates of
    /// the same scope hold with a MOS (and below `mos_min`) over the same span, matched by
    /// agent and call id (both carry the same, possibly pseudonymised, Call-ID).
    pub async fn problem_call_counts(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        mos_min: f64,
    ) -> Result<ProblemCallCounts, StoreError> {
        if agents.is_empty() || from_ns >= to_ns {
            return Ok(ProblemCallCounts::default());
        }
        if agents.len() > MAX_AGENTS {
            return Err(StoreError::Invalid(format!(
                "problem_call_counts: {} agents, at most {MAX_AGENTS}",
                agents.len()
            )));
        }
        let rows = self
            .problem_call_counts_query(scope, agents, from_ns, to_ns, mos_min, false)
            .await?;
        // Without GROUP BY the aggregate is one row, also over no records.
        Ok(rows.into_iter().next().map(|(_, c)| c).unwrap_or_default())
    }

    /// [`Store::problem_call_counts`] of each agent of `agents` on its own, for any number of
    /// agents (one query per [`MAX_AGENTS`]): the alert engine reads every customer's at once
    /// and sums its agents' rows ([`ProblemCallCounts::add`]). Agents without such a record
    /// have no row.
    pub async fn problem_call_counts_by_agent(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        mos_min: f64,
    ) -> Result<Vec<(String, ProblemCallCounts)>, StoreError> {
        if agents.is_empty() || from_ns >= to_ns {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in agents.chunks(MAX_AGENTS) {
            let rows = self
                .problem_call_counts_query(scope, chunk, from_ns, to_ns, mos_min, true)
                .await?;
            out.extend(
                rows.into_iter()
                    .filter_map(|(agent, counts)| agent.map(|a| (a, counts))),
            );
        }
        Ok(out)
    }

    /// The query of [`Store::problem_call_counts`] (one row) and, `by_agent`, of
    /// [`Store::problem_call_counts_by_agent`] (a row per agent with such records).
    async fn problem_call_counts_query(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        mos_min: f64,
        by_agent: bool,
    ) -> Result<Vec<(Option<String>, ProblemCallCounts)>, StoreError> {
        // A subnet customer's records are those attributed to it at ingest.
        let scoped = if scope.is_empty() {
            ""
        } else {
            " AND EXISTS (SELECT 1 FROM call_record_scopes s WHERE s.customer_id = $4 \
               AND s.agent_id = r.agent_id AND s.call_key = r.call_key)"
        };
        let (agent_column, group) = if by_agent {
            ("r.agent_id AS agent_id, ", " GROUP BY r.agent_id")
        } else {
            ("", "")
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {agent_column}COUNT(*) AS problem_calls, \
               COALESCE(SUM(CASE WHEN c.min_mos IS NOT NULL THEN 1 ELSE 0 END), 0) AS with_mos, \
               COALESCE(SUM(CASE WHEN c.min_mos < $3 THEN 1 ELSE 0 END), 0) AS below_mos \
             FROM call_records r LEFT JOIN calls c ON c.scope = $4 AND c.agent_id = r.agent_id \
               AND c.call_key = r.call_id AND c.last_start_ns >= $1 AND c.last_start_ns < $2 \
             WHERE r.agent_id IN ({}) AND r.start_ns >= $1 AND r.start_ns < $2 \
               AND r.outcome = 'answered' AND r.problems <> ''{scoped}{group}",
            placeholders(5, agents.len())
        ));
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        on_pool!(self, read, pool => async {
            let mut query = sqlx::query(sql)
                .bind(from_ns)
                .bind(to_ns)
                .bind(mos_min)
                .bind(scope);
            for agent in agents {
                query = query.bind(agent.as_str());
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    let agent: Option<String> = if by_agent {
                        Some(row.try_get("agent_id")?)
                    } else {
                        None
                    };
                    Ok((
                        agent,
                        ProblemCallCounts {
                            problem_calls: n(row.try_get("problem_calls")?),
                            with_mos: n(row.try_get("with_mos")?),
                            below_mos: n(row.try_get("below_mos")?),
                        },
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        }.await)
    }
}

impl ProblemCallCounts {
    /// Adds the counts of another agent's records (disjoint from these).
    pub fn add(&mut self, other: &ProblemCallCounts) {
        self.problem_calls += other.problem_calls;
        self.with_mos += other.with_mos;
        self.below_mos += other.below_mos;
    }
}

impl CallStats {
    /// Adds the calls of another agent (disjoint from these): counts add up, the worst loss
    /// is the higher one.
    pub fn add(&mut self, other: &CallStats) {
        self.calls += other.calls;
        self.calls_with_mos += other.calls_with_mos;
        self.meeting_mos += other.meeting_mos;
        self.meeting_loss += other.meeting_loss;
        self.meeting_both += other.meeting_both;
        self.worst_loss_pct = match (self.worst_loss_pct, other.worst_loss_pct) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::sla::maintenance::{MaintenanceWindow, maintenance_spans};
    use crate::sla::uptime::{self, HeartbeatPoint, SparsePoint};
    use crate::store::tests::{DAY_NS, SECOND, batch, heartbeat};

    /// The read starts at 01:00 (`B` seconds after the fixture day's midnight, a Monday).
    const B: i64 = 3600;
    const NOW: i64 = B + 3600;

    /// Heartbeats every 15 s (a gap is a silence over 30 s), by hand:
    /// - a1 from 00:50 (before the read) to B+3495, silent over (B+600, B+700) and
    ///   (B+1785, B+1845), a process down at B−15 (before the read), B+1200 and B+1215;
    /// - a2 first reports at B+2010, every 15 s to B+3585, silent over (B+2400, B+2460);
    /// - a3 never reports.
    ///
    /// Maintenance Mon 01:11–01:12 (B+660..B+720, across a1's first gap) and 01:30–01:31
    /// (B+1800..B+1860, across its second gap and the window start B+1800 below).
    async fn load(store: &Store) {
        let a1: Vec<_> = (3000..=B + 3495)
            .step_by(15)
            .filter(|t| !((B + 601..B + 700).contains(t) || (B + 1786..B + 1845).contains(t)))
            .chain([B + 700])
            .map(|t| heartbeat("a1", t, [B - 15, B + 1200, B + 1215].contains(&t), 0))
            .collect();
        let a2: Vec<_> = (B + 2010..=B + 3585)
            .step_by(15)
            .filter(|t| !(B + 2400 < *t && *t < B + 2460))
            .map(|t| heartbeat("a2", t, false, 0))
            .collect();
        for (id, agent, beats) in [("g1", "a1", a1), ("g2", "a2", a2)] {
            store
                .ingest(&batch(id, agent, vec![], beats), DAY_NS)
                .await
                .expect("ingest");
        }
    }

    fn at(s: i64) -> i64 {
        DAY_NS + s * SECOND
    }

    /// The old computation (every heartbeat of the window) and the new one (the gap query's
    /// rows of the whole read, filtered to the window as the engine does) agree to the last
    /// interval at window starts in dense runs, inside gaps, on a heartbeat, inside a
    /// process-down span and inside maintenance; and the first window's figures are the
    /// hand-computed ones.
    async fn gaps_give_the_uptime_of_every_heartbeat(store: &Store) {
        load(store).await;
        let agents: Vec<String> = ["a1", "a2", "a3"].map(String::from).to_vec();
        let max_gap = uptime::max_gap_ns(15);
        let full: Vec<HeartbeatPoint> = store
            .heartbeats(&agents, at(B), at(NOW))
            .await
            .expect("heartbeats")
            .into_iter()
            .map(|h| crate::facts::heartbeat_point(h.agent_id, h.time_ns, h.any_process_down, 0))
            .collect();
        let gaps = store
            .heartbeat_gaps(&agents, at(B), at(NOW), max_gap)
            .await
            .expect("gaps");
        // a1: its first and last, both ends of two gaps, the two process-down reports and
        // the heartbeat after them; a2: first, last, both ends of its gap.
        let kept: Vec<(&str, i64, bool)> = gaps
            .iter()
            .map(|g| {
                (
                    g.agent_id.as_str(),
                    (g.time_ns - DAY_NS) / SECOND - B,
                    g.dense_before,
                )
            })
            .collect();
        assert_eq!(
            kept,
            [
                ("a1", 0, false),
                ("a1", 600, true),
                ("a1", 700, false),
                ("a1", 1200, true),
                ("a1", 1215, true),
                ("a1", 1230, true),
                ("a1", 1785, true),
                ("a1", 1845, false),
                ("a1", 3495, true),
                ("a2", 2010, false),
                ("a2", 2400, true),
                ("a2", 2460, false),
                ("a2", 3585, true),
            ]
        );
        // a1: 234 on the 15 s grid of [B, B+3495], 6 + 3 silent, B+700 added; a2: 106, 3 silent.
        assert_eq!(
            full.len(),
            226 + 103,
            "the heartbeats the old computation read"
        );
        let sparse: Vec<SparsePoint> = gaps
            .into_iter()
            .map(|g| SparsePoint {
                point: crate::facts::heartbeat_point(g.agent_id, g.time_ns, g.any_process_down, 0),
                dense_before: g.dense_before,
            })
            .collect();
        let first = store.first_heartbeats(&agents).await.expect("first");
        let windows = ["Mon 01:11-01:12 UTC", "Mon 01:30-01:31 UTC"]
            .map(|w| MaintenanceWindow::from_str(w).expect("window"));
        for start in [
            0, 5, 601, 650, 690, 700, 900, 907, 1207, 1220, 1790, 1800, 1810, 1850, 2000, 2010,
            2401, 3000, 3500, 3590, 3599,
        ] {
            let from = at(B + start);
            let maintenance = maintenance_spans(&windows, from, at(NOW));
            let old_points: Vec<HeartbeatPoint> =
                full.iter().filter(|p| p.time_ns >= from).cloned().collect();
            let new_points: Vec<SparsePoint> = sparse
                .iter()
                .filter(|p| p.point.time_ns >= from)
                .cloned()
                .collect();
            let old = uptime::uptime(
                &agents,
                &old_points,
                &first,
                from,
                at(NOW),
                15,
                &maintenance,
            );
            let new = uptime::uptime_sparse(
                &agents,
                &new_points,
                &first,
                from,
                at(NOW),
                15,
                &maintenance,
            );
            assert_eq!(old, new, "window from B+{start}");
            if start == 0 {
                // Down: 600..660 (gap less maintenance), 1200..1230 (process), 1785..1800
                // (gap less maintenance), 3495..3600 (silent at the end), a2 2400..2460:
                // 60 + 30 + 15 + 105 + 60 = 270 s of 3,600 − 120 s of maintenance.
                assert_eq!(new.downtime_ns, 270 * SECOND);
                assert_eq!(new.measured_ns, 3480 * SECOND);
                assert_eq!(new.uptime_pct, Some(3210.0 / 3480.0 * 100.0));
            }
        }
    }

    /// Four answered call records with a media problem at 05:00 and one without, one failed
    /// with a problem (only answered calls count); stream aggregates for calls 1 (MOS 4.3),
    /// 2 (MOS 3.0) and 9 (no record). Expected by hand: 4 problem calls, 2 of them with a MOS
    /// (1 and 2), 1 of those below 4.0 (2).
    async fn problem_calls_are_matched_to_their_mos(store: &Store) {
        use voqa_wire::{CallRecord, CallSummary, MediaProblem};
        let t = |s: i64| voqa_wire::Timestamp::from_ns(DAY_NS + s * SECOND);
        let call = |n: i64, status: u16, problem: bool| CallRecord {
            agent_id: "a1".into(),
            call_key: format!("{n:016x}"),
            call: CallSummary {
                call_id: format!("anon:{n}"),
                setup: Some(t(18_000 + n)),
                answer: (status == 200).then(|| t(18_010)),
                end: Some(t(18_060)),
                status: Some(status),
                problems: if problem {
                    vec![MediaProblem {
                        kind: "one_way_audio".into(),
                        direction: "callee_to_caller".into(),
                        start: t(18_011),
                    }]
                } else {
                    vec![]
                },
                ..CallSummary::default()
            },
        };
        let report = crate::store::tests::report;
        let mut b = batch(
            "p1",
            "a1",
            vec![
                report("a1", 1, Some("anon:1"), 18_000, 18_060, true, Some(4.3)),
                report("a1", 2, Some("anon:2"), 18_000, 18_060, true, Some(3.0)),
                report("a1", 9, Some("anon:9"), 18_000, 18_060, true, Some(2.0)),
            ],
            vec![],
        );
        b.calls = vec![
            call(1, 200, true),
            call(2, 200, true),
            call(3, 200, true),
            call(4, 200, true),
            call(5, 200, false),
            call(6, 503, true),
        ];
        store.ingest(&b, DAY_NS).await.expect("ingest");
        let agents = vec!["a1".to_owned()];
        let counts = store
            .problem_call_counts("", &agents, at(17_900), at(18_100), 4.0)
            .await
            .expect("counts");
        assert_eq!(
            counts,
            ProblemCallCounts {
                problem_calls: 4,
                with_mos: 2,
                below_mos: 1,
            }
        );
        // The spans' call stats in one query equal `call_stats` span by span (the fixture's
        // three MOS aggregates start at 05:00:00; spans from 04:58:20, 05:00:00 and 05:00:01).
        let froms = [at(17_900), at(18_000), at(18_001)];
        let spans = store
            .call_stats_spans("", &agents, &froms, at(18_100), 4.0, 1.0)
            .await
            .expect("spans");
        for (from, got) in froms.iter().zip(&spans) {
            let one = store
                .call_stats("", &agents, *from, at(18_100), 4.0, 1.0)
                .await
                .expect("stats");
            assert_eq!(*got, one, "from {from}");
        }
        assert_eq!(
            (
                spans[0].calls,
                spans[0].calls_with_mos,
                spans[0].meeting_mos
            ),
            (3, 3, 1)
        );
        assert_eq!(spans[2].calls, 0);
        // Another customer's scope holds none of them; a span before the calls neither.
        let none = ProblemCallCounts::default();
        assert_eq!(
            store
                .problem_call_counts("other", &agents, at(17_900), at(18_100), 4.0)
                .await
                .expect("counts"),
            none
        );
        assert_eq!(
            store
                .problem_call_counts("", &agents, at(17_000), at(18_000), 4.0)
                .await
                .expect("counts"),
            none
        );
    }

    #[tokio::test]
    async fn sqlite_problem_calls_are_matched_to_their_mos() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite:{}", dir.path().join("p.db").display()))
            .await
            .expect("open");
        problem_calls_are_matched_to_their_mos(&store).await;
        store.close().await;
    }

    #[cfg_attr(
        not(voqa_require_postgres),
        ignore = "needs PostgreSQL at 127.0.0.1:5432: set VOQA_REQUIRE_POSTGRES=1 or run with --ignored"
    )]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_problem_calls_are_matched_to_their_mos() {
        with_postgres("problems", |store| async move {
            problem_calls_are_matched_to_their_mos(&store).await;
        })
        .await;
    }

    #[tokio::test]
    async fn sqlite_gaps_give_the_uptime_of_every_heartbeat() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite:{}", dir.path().join("g.db").display()))
            .await
            .expect("open");
        gaps_give_the_uptime_of_every_heartbeat(&store).await;
        store.close().await;
    }

    /// The same on PostgreSQL (its own schema, dropped after). Runs when
    /// `$VOQA_REQUIRE_POSTGRES` was set at build time or with `--ignored`, as the store's
    /// PostgreSQL suite; otherwise reported as ignored, never as passed.
    #[cfg_attr(
        not(voqa_require_postgres),
        ignore = "needs PostgreSQL at 127.0.0.1:5432: set VOQA_REQUIRE_POSTGRES=1 or run with --ignored"
    )]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_gaps_give_the_uptime_of_every_heartbeat() {
        with_postgres("gaps", |store| async move {
            gaps_give_the_uptime_of_every_heartbeat(&store).await;
        })
        .await;
    }

    /// The SQLite text of one agent's heartbeats parses in any order, and a malformed one is
    /// an error, not a panic.
    #[test]
    fn sqlite_beats_parse_sorted_and_refuse_garbage() {
        let mut beats = Vec::new();
        parse_beats("30,-5d,10,20d", &mut beats).expect("parse");
        assert_eq!(beats, [(-5, true), (10, false), (20, true), (30, false)]);
        for bad in ["", "1,,2", "12x", "d", "1dd", "99999999999999999999"] {
            assert!(parse_beats(bad, &mut beats).is_err(), "{bad:?} parsed");
        }
    }

    /// Pseudo-random heartbeats of agents whose names sort differently by byte and by a
    /// locale, loaded into both stores: SQLite's `keep_gaps` over its plain read and
    /// PostgreSQL's window functions give the same rows for every span and gap length
    /// (the two computations share no code).
    #[cfg_attr(
        not(voqa_require_postgres),
        ignore = "needs PostgreSQL at 127.0.0.1:5432: set VOQA_REQUIRE_POSTGRES=1 or run with --ignored"
    )]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_and_postgres_keep_the_same_gaps() {
        let agents: Vec<String> = ["b", "B", "a-1", "a_1", "x0", "x1", "x2", "Z9", "quiet"]
            .map(String::from)
            .to_vec();
        // Deterministic (an LCG): steps of 5–64 s, sometimes 200 s, a process down 1 in 8.
        let mut seed: u64 = 0x5eed;
        let mut next = move |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        let mut batches = Vec::new();
        for (i, agent) in agents.iter().enumerate().filter(|(_, a)| *a != "quiet") {
            let mut t = i as i64 * 7;
            let mut beats = Vec::new();
            while t < 7200 {
                beats.push(heartbeat(agent, t, next(8) == 0, 0));
                t += if next(10) == 0 {
                    200
                } else {
                    5 + next(60) as i64
                };
            }
            batches.push(batch(&format!("r{i}"), agent, vec![], beats));
        }
        let dir = tempfile::tempdir().expect("tmp");
        let sqlite = Store::open(&format!("sqlite:{}", dir.path().join("g.db").display()))
            .await
            .expect("open");
        for b in &batches {
            sqlite.ingest(b, DAY_NS).await.expect("ingest");
        }
        with_postgres("gaps_same", move |postgres| async move {
            for b in &batches {
                postgres.ingest(b, DAY_NS).await.expect("ingest");
            }
            let mut compared = 0;
            for (from, to) in [
                (0, 7200),
                (0, 9000),
                (1000, 5000),
                (3333, 3334),
                (7100, 7200),
                (8000, 9000),
            ] {
                for interval_s in [5, 15, 60] {
                    let (from, to) = (DAY_NS + from * SECOND, DAY_NS + to * SECOND);
                    let max_gap = uptime::max_gap_ns(interval_s);
                    let s = sqlite
                        .heartbeat_gaps(&agents, from, to, max_gap)
                        .await
                        .expect("sqlite");
                    let p = postgres
                        .heartbeat_gaps(&agents, from, to, max_gap)
                        .await
                        .expect("postgres");
                    assert_eq!(s, p, "span {from}..{to}, interval {interval_s} s");
                    compared += s.len();
                }
            }
            // The comparison saw rows of every kind.
            assert!(compared > 1000, "{compared} rows compared");
            sqlite.close().await;
        })
        .await;
        drop(dir);
    }

    /// Runs `test` on a fresh PostgreSQL store in its own schema and drops the schema after,
    /// also when the test failed.
    pub(crate) async fn with_postgres<F, Fut>(name: &str, test: F)
    where
        F: FnOnce(Store) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        use sqlx::Connection;
        let url = "postgres://postgres@127.0.0.1:5432/test";
        let options = sqlx::postgres::PgConnectOptions::from_str(url).expect("url");
        let mut admin = sqlx::PgConnection::connect_with(&options)
            .await
            .unwrap_or_else(|error| panic!("postgres not reachable at {url}: {error}"));
        let schema = format!("voqa_test_{name}_{}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .expect("create schema");
        let store = crate::store::postgres::PgStore::open_with(
            options.clone().options([("search_path", &schema)]),
        )
        .await
        .map(Store::Postgres);
        let outcome = match store {
            Ok(store) => {
                let run = tokio::spawn(test(store.clone())).await;
                store.close().await;
                run
            }
            Err(error) => {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&mut admin)
                    .await;
                panic!("open postgres store: {error}");
            }
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut admin)
            .await
            .expect("drop schema");
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic.into_panic());
        }
    }
}

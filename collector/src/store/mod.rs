//! The collector's persistent store: acknowledged agent batches (stream reports and
//! heartbeats), API token hashes, and the queries the ops API and the SLA engine run.
//!
//! Two backends with one schema and one behaviour: embedded SQLite (the default) and
//! PostgreSQL (several collector replicas sharing one store). Besides the per-stream rows,
//! ingest maintains per-call aggregates of final reports (`calls`), which retention keeps
//! and which let SLA counting over a month of calls run inside the database. `Store::ingest` returns only
//! after the whole batch is committed, so the API may acknowledge it. Each record is stored
//! at most once by its natural key, whatever batch brings it: a report by (agent, stream,
//! window start, final flag), a heartbeat by (agent, time); the derived aggregates count only
//! the rows an ingest actually inserted (`batches` is a log, not a key). This module validates and converts batch
//! contents (`voqa_wire::Timestamp`s to i64 nanosecond columns) but knows nothing of HTTP,
//! authentication or SLA rules, and it never hashes token secrets (callers pass the hash).

pub mod alert_reads;
pub mod alerts;
pub mod calls;
pub mod postgres;
pub mod report_sends;
pub mod sqlite;

pub use calls::{CallGroup, CallGroupRow, CallQuery, CallRow, StatusFilter};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use voqa_wire::histogram::{self, Histogram};
use voqa_wire::{Batch, Heartbeat, StreamReport};

/// Largest page `Store::streams` returns, whatever the caller asks for.
pub const MAX_PAGE: u32 = 10_000;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL is neither `sqlite:PATH` nor `postgres://...`, or is malformed.
    #[error("bad store url: {0}")]
    Url(String),
    /// The batch cannot be stored as sent (the API answers 400); nothing was written.
    #[error("invalid batch: {0}")]
    Invalid(String),
    /// The database refused or failed an operation.
    #[error("{backend} store: {source}")]
    Database {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed.
    #[error("{backend} store migrations: {source}")]
    Migrate {
        backend: &'static str,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The store cannot take writes right now (its writer stopped, or a shared commit failed);
    /// nothing of the batch was stored.
    #[error("{backend} store: {message}")]
    Unavailable {
        backend: &'static str,
        message: String,
    },
    /// No random bytes for a new token.
    #[error("cannot read random bytes for a token: {0}")]
    Entropy(#[source] std::io::Error),
    /// A stored row could not be read back (bad JSON in a report or heartbeat column).
    #[error("{backend} store: corrupt {table} row {key}: {message}")]
    Corrupt {
        backend: &'static str,
        table: &'static str,
        key: String,
        message: String,
    },
}

/// Result of `Store::ingest`: the batch is committed; how many of its records were new and
/// how many the store already held (from an earlier batch, or a copy earlier in this one).
/// Each report is one record by its natural key (agent, stream, window start, final flag),
/// each heartbeat by (agent, time); only new records count in the derived aggregates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    pub reports: u64,
    pub heartbeats: u64,
    pub duplicate_reports: u64,
    pub duplicate_heartbeats: u64,
    /// Call records new to the store, and those it already held (or repeated in the batch).
    pub calls: u64,
    pub duplicate_calls: u64,
    /// What the new call records count, per scope (`""`: the batch agent's calls; else a
    /// subnet customer's id), for the live per-customer metrics.
    pub new_call_counts: Vec<(String, crate::sla::kpis::CallCounts)>,
}

impl IngestOutcome {
    /// True when the batch held records and every one of them was already stored.
    pub fn is_duplicate(&self) -> bool {
        self.reports == 0
            && self.heartbeats == 0
            && self.calls == 0
            && (self.duplicate_reports > 0
                || self.duplicate_heartbeats > 0
                || self.duplicate_calls > 0)
    }

    /// `duplicate` when every record was already stored, otherwise `stored`.
    pub fn status(&self) -> &'static str {
        if self.is_duplicate() {
            "duplicate"
        } else {
            "stored"
        }
    }
}

/// A token just created by `Store::create_token`: its id (for `token revoke`) and its secret
/// (for `Authorization: Bearer`), shown this once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub id: String,
    pub secret: String,
}

/// One API token (its secret is known only by its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub role: String,
    /// For an agent token, the agent ids and patterns it may write as (`ID[,ID…]`, see
    /// `auth::AgentBinding`); `None` for an agent token created before bindings existed, and
    /// for other roles.
    pub agents: Option<String>,
    pub created_ns: i64,
    /// The latest successful authentication, recorded at most once a minute.
    pub last_used_ns: Option<i64>,
    pub revoked: bool,
}

/// Latest known state of one agent, for the ops view.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRow {
    pub agent_id: String,
    /// Collector receive time of the agent's latest batch.
    pub last_batch_ns: i64,
    /// Time (the agent's clock) and content of the newest heartbeat, if any was received.
    pub last_heartbeat_ns: Option<i64>,
    pub last_heartbeat: Option<Heartbeat>,
    /// Sum of the workers' cumulative kernel drops in the newest heartbeat.
    pub kernel_drops_total: u64,
    /// Whether the newest heartbeat reports a watched process down.
    pub any_process_down: bool,
    /// Sum of `capture_drops` over every report received from the agent.
    pub capture_drops_total: u64,
}

/// Filters of `Store::streams`. Every given filter applies (they are ANDed).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamQuery {
    /// Restrict to these agents (a customer's); `Some(vec![])` matches nothing.
    pub agents: Option<Vec<String>>,
    /// Restrict to one agent.
    pub agent: Option<String>,
    /// Reports whose `window_end` lies in `[from_ns, to_ns)`.
    pub from_ns: i64,
    pub to_ns: i64,
    /// Reports with a MOS at most this (reports without a MOS are excluded).
    pub max_mos: Option<f64>,
    pub final_only: bool,
    /// Cursor: only reports strictly after this `(window_end_ns, id)`.
    pub after: Option<(i64, i64)>,
    /// Page size, clamped to [`MAX_PAGE`].
    pub limit: u32,
}

/// One stored stream report: indexed columns plus the report as the agent sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRow {
    pub id: i64,
    pub agent_id: String,
    pub stream_id: String,
    pub window_start_ns: i64,
    pub window_end_ns: i64,
    pub is_final: bool,
    pub call_id: Option<String>,
    pub mos: Option<f64>,
    pub report: StreamReport,
}

impl StreamRow {
    /// The record's identity, from the stored key columns: the same text as the wire's
    /// `StreamReport::record_id` (`AGENT/STREAM/WINDOW_START_NS/i|f`).
    pub fn record_id(&self) -> String {
        voqa_wire::stream_record_id(
            &self.agent_id,
            &self.stream_id,
            self.window_start_ns,
            self.is_final,
        )
    }
}

/// One call's final reports (of one agent) folded together: a call meets a MOS threshold
/// when its worst stream does, and a loss threshold when its lossiest stream does.
#[derive(Debug, Clone, PartialEq)]
pub struct CallAggregate {
    /// `""` for all of the agent's traffic, or the customer whose subnets it matched.
    pub scope: String,
    pub agent_id: String,
    /// The call id, or `stream:` and the stream id for a stream without one.
    pub call_key: String,
    pub call_id: Option<String>,
    /// Final reports folded in.
    pub streams: u64,
    pub first_start_ns: i64,
    pub last_end_ns: i64,
    /// Latest window start of its final reports: the call belongs to the period holding it.
    pub last_start_ns: i64,
    /// Lowest MOS of its streams (streams without a MOS are ignored; none → `None`).
    pub min_mos: Option<f64>,
    pub max_loss_pct: f64,
    pub max_jitter_ms: Option<f64>,
    /// The stream that set `min_mos` (ties: the smallest stream id) and its codec; `None`
    /// without a MOS, and for calls stored before the store kept them.
    pub mos_stream_id: Option<String>,
    pub mos_codec: Option<String>,
}

/// Calls of a set of agents whose last final report starts in a period, counted against
/// thresholds by the database (`Store::call_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallStats {
    pub calls: u64,
    /// Calls with at least one stream with a MOS.
    pub calls_with_mos: u64,
    /// `min_mos >= mos_min`.
    pub meeting_mos: u64,
    /// `max_loss_pct <= loss_max_pct`.
    pub meeting_loss: u64,
    pub meeting_both: u64,
    /// Highest `max_loss_pct` (None without calls).
    pub worst_loss_pct: Option<f64>,
}

/// Which breaching calls `Store::calls_worst` lists, worst first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Worst {
    /// Calls with a MOS below this, lowest MOS first.
    MosBelow(f64),
    /// Calls with loss above this percentage, highest first.
    LossAbove(f64),
}

/// Which value of a call `Store::call_value_positions` ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallValue {
    /// The call's lowest stream MOS (calls without one are not ranked).
    MinMos,
    /// The call's highest loss percentage.
    MaxLossPct,
}

/// Most bin edges per value in [`CallBinning`] (and ranges or positions in
/// `Store::call_value_positions`): the query grows with them.
pub const MAX_BIN_EDGES: usize = 64;

/// How `Store::call_bins` groups calls: a value's bin is the number of edges at or below it
/// (edges ascending), so bin 0 is everything below the first edge.
#[derive(Debug, Clone, Copy)]
pub struct CallBinning<'a> {
    pub mos_edges: &'a [f64],
    pub loss_edges: &'a [f64],
    /// A call meets the MOS target when `min_mos >= mos_min`.
    pub mos_min: f64,
}

/// One group of `Store::call_bins`: the calls of a period with their MOS in one bin, their
/// loss in one bin and their MOS set by one codec.
#[derive(Debug, Clone, PartialEq)]
pub struct CallBin {
    /// `None` for the calls without a MOS.
    pub mos_bin: Option<u32>,
    pub loss_bin: u32,
    /// The codec of the stream that set the MOS (`None` without a MOS, or stored before the
    /// store kept it).
    pub mos_codec: Option<String>,
    pub calls: u64,
    /// Calls with `min_mos >= mos_min`.
    pub meeting_mos: u64,
    /// Lowest and highest MOS of the group (`None` without a MOS).
    pub mos_range: Option<(f64, f64)>,
    /// Lowest and highest loss percentage of the group.
    pub loss_range: (f64, f64),
}

/// One agent-hour of report windows rolled up (`jitter_hourly`).
#[derive(Debug, Clone, PartialEq)]
pub struct JitterHour {
    pub agent_id: String,
    /// Start of the hour (window starts in `[hour_ns, hour_ns + 1 h)` are merged here).
    pub hour_ns: i64,
    /// Packets in the histogram.
    pub samples: u64,
    pub windows: u64,
    /// Windows that came without a histogram but with jitter samples.
    pub windows_without_histogram: u64,
    /// Windows with capture drops.
    pub windows_with_drops: u64,
    /// HdrHistogram V2 + deflate bytes (`voqa_wire::histogram`).
    pub histogram: Vec<u8>,
}

/// A report window's stored histogram (`Store::window_histograms`).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowHistogram {
    pub agent_id: String,
    pub window_start_ns: i64,
    pub src: String,
    pub dst: String,
    pub jitter_samples: u64,
    pub capture_drops: u64,
    /// `None` for a window shipped without one (no clock rate, or an older agent).
    pub histogram: Option<Vec<u8>>,
}

/// Longest report window accepted (agents report at most every hour): bounds the window
/// starts that a range of window ends can hold, so one index serves both.
pub const MAX_WINDOW_NS: i64 = 2 * HOUR_NS;

/// Most packets one report window may claim: 2^40 (150 million packets/s for 2 hours) keeps
/// sums over any realistic number of windows far from overflowing u64 counters.
pub const MAX_WINDOW_PACKETS: u64 = 1 << 40;

/// One hour in nanoseconds: the granularity of `jitter_hourly`.
pub const HOUR_NS: i64 = 3_600_000_000_000;

/// One heartbeat, reduced to what uptime evaluation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRow {
    pub agent_id: String,
    pub time_ns: i64,
    pub any_process_down: bool,
    pub kernel_drops_total: u64,
}

/// The store, on either backend. Cheap to clone: the connection pools are shared.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Sqlite($store) => $call,
            Store::Postgres($store) => $call,
        }
    };
}

impl Store {
    /// Opens (creating if missing) and migrates the store at `url`: `sqlite:PATH`
    /// (also `sqlite://PATH`) or `postgres://...` (also `postgresql://...`).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Ok(Store::Sqlite(SqliteStore::open(path).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PgStore::open(url).await?))
        } else {
            Err(StoreError::Url(
                "expected sqlite:PATH or postgres://...".to_string(),
            ))
        }
    }

    /// Which backend this is: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => sqlite::BACKEND,
            Store::Postgres(_) => postgres::BACKEND,
        }
    }

    /// Stores a batch in one transaction, or nothing. Returns after the commit.
    pub async fn ingest(
        &self,
        batch: &Batch,
        received_at_ns: i64,
    ) -> Result<IngestOutcome, StoreError> {
        self.ingest_scoped(batch, received_at_ns, &[]).await
    }

    /// Like `ingest`, and each report also counts in the aggregates of the scopes listed for
    /// it (`scopes[i]` for `batch.reports[i]`, customer ids whose subnets it matched; a short
    /// slice means no extra scopes for the rest). Every report counts in scope `""`.
    pub async fn ingest_scoped(
        &self,
        batch: &Batch,
        received_at_ns: i64,
        scopes: &[Vec<String>],
    ) -> Result<IngestOutcome, StoreError> {
        self.ingest_attributed(batch, received_at_ns, scopes, &[])
            .await
    }

    /// Like `ingest_scoped`, and each call record also counts in the scopes listed for it
    /// (`call_scopes[i]` for `batch.calls[i]`): its `call_hourly` counts and its
    /// `call_record_scopes` rows. Every call counts in scope `""`.
    pub async fn ingest_attributed(
        &self,
        batch: &Batch,
        received_at_ns: i64,
        scopes: &[Vec<String>],
        call_scopes: &[Vec<String>],
    ) -> Result<IngestOutcome, StoreError> {
        let prepared = PreparedBatch::new(batch, received_at_ns, scopes, call_scopes)?;
        match self {
            Store::Sqlite(store) => store.ingest(prepared).await,
            Store::Postgres(store) => store.ingest(&prepared).await,
        }
    }

    /// Records that ingest attributes `customer_id`'s scope by `signature` (its agents and
    /// subnets, `sla::scope_signature`) from `now_ns` on, unless it already did with the same
    /// signature; returns since when.
    pub async fn register_scope(
        &self,
        customer_id: &str,
        signature: &str,
        now_ns: i64,
    ) -> Result<i64, StoreError> {
        dispatch!(self, store => store.register_scope(customer_id, signature, now_ns).await)
    }

    /// Forgets the scopes of every customer not in `keep` (customers no longer narrowed to
    /// subnets): if one is narrowed again later, its scope starts afresh instead of trusting
    /// aggregates that were not attributed in between.
    pub async fn retain_scopes(&self, keep: &[String]) -> Result<(), StoreError> {
        dispatch!(self, store => store.retain_scopes(keep).await)
    }

    /// Since when `customer_id`'s scope has been attributed by exactly `signature`, if so.
    pub async fn scope_since(
        &self,
        customer_id: &str,
        signature: &str,
    ) -> Result<Option<i64>, StoreError> {
        dispatch!(self, store => store.scope_since(customer_id, signature).await)
    }

    /// Creates an API token of `role`: stores its hash and returns the secret, which is not
    /// kept anywhere and cannot be shown again.
    pub async fn create_token(&self, role: &crate::auth::Role) -> Result<NewToken, StoreError> {
        let (secret, id) = crate::auth::new_token().map_err(StoreError::Entropy)?;
        self.token_insert(
            &id,
            &crate::auth::hash_token(&secret),
            &role.as_string(),
            crate::now_ns(),
        )
        .await?;
        Ok(NewToken { id, secret })
    }

    /// Creates an agent token bound to the agent ids of `binding`; see `create_token`.
    pub async fn create_agent_token(
        &self,
        binding: &crate::auth::AgentBinding,
    ) -> Result<NewToken, StoreError> {
        let (secret, id) = crate::auth::new_token().map_err(StoreError::Entropy)?;
        self.token_insert_bound(
            &id,
            &crate::auth::hash_token(&secret),
            &crate::auth::Role::Agent.as_string(),
            Some(&binding.to_string()),
            crate::now_ns(),
        )
        .await?;
        Ok(NewToken { id, secret })
    }

    /// Stores a token hash without an agent binding (ops and customer tokens; an agent token
    /// stored this way is unbound, accepted only with `allow_unbound_agent_tokens`).
    pub async fn token_insert(
        &self,
        id: &str,
        hash: &str,
        role: &str,
        created_ns: i64,
    ) -> Result<(), StoreError> {
        self.token_insert_bound(id, hash, role, None, created_ns)
            .await
    }

    /// Stores a token hash with its agent binding (`ID[,ID…]`, as `AgentBinding` prints it).
    pub async fn token_insert_bound(
        &self,
        id: &str,
        hash: &str,
        role: &str,
        agents: Option<&str>,
        created_ns: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self, store => store.token_insert(id, hash, role, agents, created_ns).await)
    }

    /// Records a successful authentication at `now_ns` unless one was recorded after
    /// `unless_since_ns` (so concurrent requests write once); true if it wrote.
    pub async fn token_touch(
        &self,
        id: &str,
        now_ns: i64,
        unless_since_ns: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => store.token_touch(id, now_ns, unless_since_ns).await)
    }

    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        dispatch!(self, store => store.token_by_hash(hash).await)
    }

    /// Every token, revoked ones included, ordered by creation time.
    pub async fn token_list(&self) -> Result<Vec<TokenRow>, StoreError> {
        dispatch!(self, store => store.token_list().await)
    }

    /// Marks a token revoked; false if no token has this id.
    pub async fn token_revoke(&self, id: &str) -> Result<bool, StoreError> {
        dispatch!(self, store => store.token_revoke(id).await)
    }

    /// Every agent that ever sent a batch, ordered by id.
    pub async fn agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        dispatch!(self, store => store.agents().await)
    }

    /// A page of reports ordered by `(window_end_ns, id)`; pass the last row's pair as
    /// `after` to get the next page.
    pub async fn streams(&self, query: &StreamQuery) -> Result<Vec<StreamRow>, StoreError> {
        if query.limit == 0
            || query.from_ns >= query.to_ns
            || query.agent_set().is_some_and(|agents| agents.is_empty())
        {
            return Ok(Vec::new());
        }
        dispatch!(self, store => store.streams(query).await)
    }

    /// Every stored report of the streams that carry this call id (also their reports
    /// sent before the call was known), ordered by `(window_end_ns, id)`.
    pub async fn call(&self, call_id: &str) -> Result<Vec<StreamRow>, StoreError> {
        dispatch!(self, store => store.call(call_id).await)
    }

    /// Heartbeats of these agents with `time` in `[from_ns, to_ns)`, ordered by agent and
    /// time. An empty agent list matches nothing.
    pub async fn heartbeats(
        &self,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<HeartbeatRow>, StoreError> {
        if agents.is_empty() || from_ns >= to_ns {
            return Ok(Vec::new());
        }
        dispatch!(self, store => store.heartbeats(agents, from_ns, to_ns).await)
    }

    /// The first heartbeat ever stored of each of these agents that sent one, as
    /// `(agent_id, time_ns)` ordered by agent (heartbeats are never deleted by retention, so
    /// this is when the agent first reported). An agent that never sent one is absent.
    pub async fn first_heartbeats(
        &self,
        agents: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        if agents.is_empty() {
            return Ok(Vec::new());
        }
        let mut agents = agents.to_vec();
        agents.sort_unstable();
        agents.dedup();
        // Sorted here: the backends' collations may order agent ids differently.
        let mut first = dispatch!(self, store => store.first_heartbeats(&agents).await)?;
        first.sort_unstable();
        Ok(first)
    }

    /// Final reports of these agents whose `window_end` lies in `[from_ns, to_ns)`, ordered
    /// by `(agent_id, window_end_ns, id)` (the index order). An empty agent list matches
    /// nothing.
    pub async fn final_reports(
        &self,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<StreamRow>, StoreError> {
        if agents.is_empty() || from_ns >= to_ns {
            return Ok(Vec::new());
        }
        dispatch!(self, store => store.final_reports(agents, from_ns, to_ns).await)
    }

    /// Counts the calls (see [`CallAggregate`]) of these agents whose last final report
    /// ends in `[from_ns, to_ns)` and how many meet each threshold, in the database: the
    /// fast path for a month of calls. An empty agent list matches nothing.
    pub async fn call_stats(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        mos_min: f64,
        loss_max_pct: f64,
    ) -> Result<CallStats, StoreError> {
        if agents.is_empty() || from_ns >= to_ns {
            return Ok(CallStats::default());
        }
        dispatch!(self, store => store.call_stats(scope, agents, from_ns, to_ns, mos_min, loss_max_pct).await)
    }

    /// The calls counted by `call_stats` that miss one threshold, worst first (ties by agent
    /// and call key), at most `limit`.
    pub async fn calls_worst(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        worst: Worst,
        limit: u32,
    ) -> Result<Vec<CallAggregate>, StoreError> {
        if agents.is_empty() || from_ns >= to_ns || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::from(limit.min(MAX_PAGE));
        dispatch!(self, store => store.calls_worst(scope, agents, from_ns, to_ns, worst, limit).await)
    }

    /// A page of the calls counted by `call_stats`, of one agent, ordered by
    /// `(last_start_ns, call_key)`: pass the last row's pair as `after` for the next page.
    /// Customer reports read a month of calls this way, a page at a time.
    pub async fn calls_page(
        &self,
        scope: &str,
        agent: &str,
        from_ns: i64,
        to_ns: i64,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<CallAggregate>, StoreError> {
        if from_ns >= to_ns || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::from(limit.min(MAX_PAGE));
        dispatch!(self, store => store.calls_page(scope, agent, from_ns, to_ns, after.as_ref(), limit).await)
    }

    /// The calls counted by `call_stats` in groups: by the bin of their MOS and of their loss
    /// (`binning`'s edges) and by the codec that set their MOS, each group with its count,
    /// the calls meeting `binning.mos_min` and the lowest and highest MOS and loss in it.
    /// Ordered by MOS bin (no MOS first), loss bin, codec (none first). A customer report
    /// takes its shares, histogram, codec counts and, through [`Store::call_value_positions`],
    /// its exact percentiles from these: one pass over the period's index range, whose result
    /// grows with the bins, never with the number of distinct values.
    pub async fn call_bins(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        binning: &CallBinning<'_>,
    ) -> Result<Vec<CallBin>, StoreError> {
        if agents.is_empty() || from_ns >= to_ns {
            return Ok(Vec::new());
        }
        if binning.mos_edges.len() > MAX_BIN_EDGES || binning.loss_edges.len() > MAX_BIN_EDGES {
            return Err(StoreError::Invalid(format!(
                "at most {MAX_BIN_EDGES} bin edges per value"
            )));
        }
        let mut bins = dispatch!(self, store => store.call_bins(scope, agents, from_ns, to_ns, binning).await)?;
        // The backends order NULL differently; one order for both, as documented.
        bins.sort_by(|a, b| {
            (a.mos_bin, a.loss_bin, &a.mos_codec).cmp(&(b.mos_bin, b.loss_bin, &b.mos_codec))
        });
        Ok(bins)
    }

    /// The values at 1-based `positions` (ascending) in the sorted list of one value of the
    /// calls counted by `call_stats` whose value lies in one of `ranges` (inclusive, disjoint):
    /// the exact nearest-rank percentile once [`Store::call_bins`] has told which bin and
    /// which place in it. The database sorts only the calls in the ranges. A position beyond
    /// the list has no value: the result is shorter. Calls without the value (no MOS) are
    /// never in a range.
    #[allow(clippy::too_many_arguments)]
    pub async fn call_value_positions(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        value: CallValue,
        ranges: &[(f64, f64)],
        positions: &[u64],
    ) -> Result<Vec<f64>, StoreError> {
        if agents.is_empty() || from_ns >= to_ns || ranges.is_empty() || positions.is_empty() {
            return Ok(Vec::new());
        }
        if ranges.len() > MAX_BIN_EDGES || positions.len() > MAX_BIN_EDGES {
            return Err(StoreError::Invalid(format!(
                "at most {MAX_BIN_EDGES} ranges and positions"
            )));
        }
        let positions: Vec<i64> = positions.iter().map(|&p| saturating_i64(p)).collect();
        dispatch!(self, store => store.call_value_positions(scope, agents, from_ns, to_ns, value, ranges, &positions).await)
    }

    /// The final reports of one call of one agent (`call_key` as in [`CallAggregate`]).
    pub async fn call_finals(
        &self,
        agent_id: &str,
        call_key: &str,
    ) -> Result<Vec<StreamRow>, StoreError> {
        dispatch!(self, store => store.call_finals(agent_id, call_key).await)
    }

    /// The merged jitter histograms of these agents for the hours starting in
    /// `[from_ns, to_ns)`, in (hour, agent) order.
    pub async fn jitter_hours(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<JitterHour>, StoreError> {
        if agents.is_empty() || from_ns >= to_ns {
            return Ok(Vec::new());
        }
        dispatch!(self, store => store.jitter_hours(scope, agents, from_ns, to_ns).await)
    }

    /// The jitter histograms of these agents' report windows starting in `[from_ns, to_ns)`
    /// (for the parts of a period that are not whole hours).
    pub async fn window_histograms(
        &self,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<WindowHistogram>, StoreError> {
        if agents.is_empty() || from_ns >= to_ns {
            return Ok(Vec::new());
        }
        dispatch!(self, store => store.window_histograms(agents, from_ns, to_ns).await)
    }

    /// The summed call counts of these agents' hours starting in `[from_ns, to_ns)` in
    /// `scope` (`""` or a subnet customer's id), grouped by `group`, in group order. An empty
    /// agent list matches nothing.
    pub async fn call_counts(
        &self,
        scope: &str,
        agents: &[String],
        from_ns: i64,
        to_ns: i64,
        group: CallGroup,
    ) -> Result<Vec<CallGroupRow>, StoreError> {
        if agents.is_empty() || from_ns >= to_ns {
            return Ok(Vec::new());
        }
        dispatch!(self, store => store.call_counts(scope, agents, from_ns, to_ns, group).await)
    }

    /// A page of call records ordered by `(start_ns, id)`; pass the last row's pair as
    /// `after` for the next page.
    pub async fn call_records(&self, query: &CallQuery) -> Result<Vec<CallRow>, StoreError> {
        if query.limit == 0
            || query.from_ns >= query.to_ns
            || query.agents.as_ref().is_some_and(|a| a.is_empty())
        {
            return Ok(Vec::new());
        }
        dispatch!(self, store => store.call_records(query).await)
    }

    /// Retention: deletes stream reports whose `window_end` is before `before_ns`, call
    /// records whose first INVITE is before it, and batch ids received before it. Heartbeats, call aggregates, agents and tokens are kept. Works in chunks so
    /// that ingest is never blocked for long. Returns the number of reports deleted.
    pub async fn delete_reports_before(&self, before_ns: i64) -> Result<u64, StoreError> {
        dispatch!(self, store => store.delete_reports_before(before_ns).await)
    }

    /// Succeeds when the database answers a trivial query.
    /// Refreshes the query planner's statistics (SQLite `PRAGMA optimize`, PostgreSQL
    /// `ANALYZE` of the tables SLA evaluation reads). Run hourly by the server, and worth
    /// running after a bulk load: without statistics a planner may scan an agent's whole
    /// history for a query that one index answers.
    pub async fn refresh_statistics(&self) -> Result<(), StoreError> {
        dispatch!(self, store => store.refresh_statistics().await)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, store => store.ping().await)
    }

    /// Closes the connection pools, waiting for running operations.
    pub async fn close(&self) {
        dispatch!(self, store => store.close().await)
    }
}

impl StreamQuery {
    /// The agents the query may return: `None` for all, otherwise the intersection of
    /// `agents` and `agent`, sorted and without repeats.
    fn agent_set(&self) -> Option<Vec<&str>> {
        let mut set: Vec<&str> = match (&self.agents, &self.agent) {
            (None, None) => return None,
            (None, Some(agent)) => vec![agent.as_str()],
            (Some(agents), None) => agents.iter().map(String::as_str).collect(),
            (Some(agents), Some(agent)) => agents
                .iter()
                .filter(|candidate| *candidate == agent)
                .map(String::as_str)
                .collect(),
        };
        set.sort_unstable();
        set.dedup();
        Some(set)
    }
}

/// Builds the `streams` query on either backend (QueryBuilder writes each one's
/// placeholders). With an agent list, each agent gets its own ordered, limited subquery on
/// the (agent_id, window_end_ns, id) index, merged by a final sort of at most
/// agents × limit rows: an IN list would instead sort every row of those agents.
fn build_streams_query<DB>(select: &mut sqlx::QueryBuilder<DB>, columns: &str, query: &StreamQuery)
where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let limit = i64::from(query.limit.min(MAX_PAGE));
    let push_filters = |select: &mut sqlx::QueryBuilder<DB>, agent: Option<&str>| {
        select
            .push(format_args!("SELECT {columns} FROM stream_reports WHERE "))
            .push("window_end_ns >= ")
            .push_bind(query.from_ns)
            .push(" AND window_end_ns < ")
            .push_bind(query.to_ns);
        if let Some(agent) = agent {
            select.push(" AND agent_id = ").push_bind(agent.to_string());
        }
        if let Some(max_mos) = query.max_mos {
            select.push(" AND mos <= ").push_bind(max_mos);
        }
        if query.final_only {
            select.push(" AND is_final");
        }
        if let Some((end_ns, id)) = query.after {
            select
                .push(" AND window_end_ns >= ")
                .push_bind(end_ns)
                .push(" AND (window_end_ns > ")
                .push_bind(end_ns)
                .push(" OR id > ")
                .push_bind(id)
                .push(")");
        }
        select
            .push(" ORDER BY window_end_ns, id LIMIT ")
            .push_bind(limit);
    };
    match query.agent_set() {
        None => push_filters(select, None),
        Some(agents) => {
            select.push(format_args!("SELECT {columns} FROM ("));
            for (index, agent) in agents.iter().enumerate() {
                if index > 0 {
                    select.push(" UNION ALL ");
                }
                select.push("SELECT * FROM (");
                push_filters(select, Some(agent));
                select.push(format_args!(") AS agent_{index}"));
            }
            select
                .push(") AS merged ORDER BY window_end_ns, id LIMIT ")
                .push_bind(limit);
        }
    }
}

/// Rows deleted per retention statement.
const RETENTION_CHUNK: i64 = 10_000;

/// A batch validated and converted to column values, ready for either backend. It owns
/// everything it needs, so a writer task can commit it together with others.
///
/// Records are unique by their natural key inside it (a later copy in the same batch is
/// counted as a duplicate) and sorted by it, so that concurrent ingests on PostgreSQL take
/// the unique-index locks of overlapping records in one order. The derived aggregates are
/// computed by [`PreparedBatch::aggregates`] only once the backend knows which records the
/// store did not hold yet.
#[derive(Debug)]
pub(crate) struct PreparedBatch {
    batch: BatchIds,
    sent_at_ns: i64,
    received_ns: i64,
    /// Unique by (stream_id, window_start_ns, is_final), in that order.
    reports: Vec<PreparedReport>,
    /// Unique by time, in time order.
    heartbeats: Vec<PreparedHeartbeat>,
    /// Unique by call_key, in that order.
    calls: Vec<calls::PreparedCall>,
    /// Copies of a record already present earlier in the same batch.
    duplicate_reports_in_batch: u64,
    duplicate_heartbeats_in_batch: u64,
    duplicate_calls_in_batch: u64,
}

#[derive(Debug)]
pub(crate) struct BatchIds {
    batch_id: String,
    agent_id: String,
}

/// The columns of a report row that are copies of its fields.
#[derive(Debug)]
pub(crate) struct ReportColumns {
    agent_id: String,
    stream_id: String,
    call_id: Option<String>,
    src: String,
    dst: String,
    is_final: bool,
    mos: Option<f64>,
    effective_loss_pct: f64,
    max_jitter_ms: Option<f64>,
}

impl ReportColumns {
    fn of(report: &StreamReport) -> Self {
        Self {
            agent_id: report.agent_id.clone(),
            stream_id: report.stream_id.clone(),
            // An empty call id is stored as none, as the SLA engine reads it.
            call_id: report.call_id.clone().filter(|id| !id.is_empty()),
            src: report.src.clone(),
            dst: report.dst.clone(),
            is_final: report.is_final,
            mos: report.mos,
            effective_loss_pct: report.effective_loss_pct,
            max_jitter_ms: report.max_jitter_ms,
        }
    }
}

/// One recorded bucket of a jitter histogram: its lowest value (µs) and count.
type RecordedBucket = (u64, u64);

#[derive(Debug)]
pub(crate) struct PreparedReport {
    report: ReportColumns,
    window_start_ns: i64,
    window_end_ns: i64,
    capture_drops: i64,
    jitter_samples: u64,
    json: String,
    /// The decoded (validated) V2 + deflate bytes of `jitter_histogram`, and its recorded
    /// buckets as (lowest value, count): a few dozen pairs kept until the insert
    /// says which rows are new, instead of a full counts array (about 18 KB zeroed per report,
    /// 9 MB per batch of 500) — that allocation was a visible share of ingest CPU.
    jitter_histogram: Option<(Vec<u8>, Vec<RecordedBucket>)>,
    /// Customer scopes the report also counts in (besides `""`).
    scopes: Vec<String>,
    /// What a final report contributes to its call's aggregate.
    call: Option<CallPart>,
}

impl PreparedReport {
    /// The record's identity within its batch (the agent is the batch's).
    fn key(&self) -> (&str, i64, bool) {
        (
            self.report.stream_id.as_str(),
            self.window_start_ns,
            self.report.is_final,
        )
    }
}

/// A final report's share of its call aggregate: judged on the whole-stream totals.
#[derive(Debug)]
pub(crate) struct CallPart {
    /// The call id, or `stream:` and the stream id for a stream without one.
    key: String,
    call_id: Option<String>,
    mos: Option<f64>,
    loss_pct: f64,
    max_jitter_ms: Option<f64>,
    stream_id: String,
    codec: String,
}

#[derive(Debug)]
pub(crate) struct BatchJitterHour {
    scope: String,
    hour_ns: i64,
    histogram: Histogram<u64>,
    windows: u64,
    windows_without_histogram: u64,
    windows_with_drops: u64,
}

#[derive(Debug)]
pub(crate) struct PreparedHeartbeat {
    time_ns: i64,
    any_process_down: bool,
    kernel_drops_total: i64,
    json: String,
}

/// What the newly stored records of a batch add to the derived tables.
#[derive(Debug, Default)]
pub(crate) struct Aggregates {
    /// Sum of the new reports' capture drops (`agents.capture_drops_total`).
    capture_drops: i64,
    /// New final reports folded per call, in (scope, key) order (so that concurrent upserts
    /// on PostgreSQL lock rows in one order).
    calls: Vec<CallAggregate>,
    /// New windows' histograms merged per scope and hour of window start, in that order.
    jitter_hours: Vec<BatchJitterHour>,
    /// Index into the batch's heartbeats of the newest new one.
    newest_heartbeat: Option<usize>,
}

impl PreparedBatch {
    fn new(
        batch: &Batch,
        received_ns: i64,
        scopes: &[Vec<String>],
        call_scopes: &[Vec<String>],
    ) -> Result<Self, StoreError> {
        if batch.schema != voqa_wire::SCHEMA_VERSION {
            return Err(StoreError::Invalid(format!(
                "schema {} is not the supported {}",
                batch.schema,
                voqa_wire::SCHEMA_VERSION
            )));
        }
        if batch.batch_id.is_empty() || batch.batch_id.len() > 128 {
            return Err(StoreError::Invalid(
                "batch_id must be 1 to 128 characters".to_string(),
            ));
        }
        if batch.agent_id.is_empty() {
            return Err(StoreError::Invalid("agent_id is empty".to_string()));
        }
        let mut reports = Vec::with_capacity(batch.reports.len());
        for (index, report) in batch.reports.iter().enumerate() {
            if report.agent_id != batch.agent_id {
                return Err(StoreError::Invalid(format!(
                    "reports[{index}].agent_id differs from the batch agent_id"
                )));
            }
            let window_start_ns = report.window_start.as_ns();
            let window_end_ns = report.window_end.as_ns();
            if window_end_ns < window_start_ns
                || window_end_ns > window_start_ns.saturating_add(MAX_WINDOW_NS)
            {
                return Err(StoreError::Invalid(format!(
                    "reports[{index}].window_end: windows run forwards and last at most 2 hours"
                )));
            }
            let json = serde_json::to_string(report).map_err(|error| {
                StoreError::Invalid(format!("reports[{index}] cannot be serialised: {error}"))
            })?;
            let jitter_histogram = match &report.jitter_histogram {
                None => None,
                Some(text) => {
                    let invalid = |error: &dyn std::fmt::Display| {
                        StoreError::Invalid(format!("reports[{index}].jitter_histogram: {error}"))
                    };
                    let bytes = histogram::decode_base64(text).map_err(|e| invalid(&e))?;
                    let mut buckets = Vec::new();
                    let total = histogram::decode_jitter_buckets(&bytes, &mut buckets)
                        .map_err(|e| invalid(&e))?;
                    if report.jitter_samples > report.packets || report.packets > MAX_WINDOW_PACKETS
                    {
                        return Err(invalid(&format!(
                            "jitter_samples {} and packets {} must satisfy jitter_samples <= packets <= {MAX_WINDOW_PACKETS}",
                            report.jitter_samples, report.packets
                        )));
                    }
                    if total > report.jitter_samples {
                        return Err(invalid(&format!(
                            "counts {total} packets, more than jitter_samples {}",
                            report.jitter_samples
                        )));
                    }
                    Some((bytes, buckets))
                }
            };
            reports.push(PreparedReport {
                report: ReportColumns::of(report),
                window_start_ns,
                window_end_ns,
                capture_drops: saturating_i64(report.capture_drops),
                jitter_samples: report.jitter_samples,
                json,
                jitter_histogram,
                scopes: scopes.get(index).cloned().unwrap_or_default(),
                call: report.is_final.then(|| call_part(report)),
            });
        }
        // A stable sort keeps the first copy of a key first; dedup drops the later ones.
        reports.sort_by(|a, b| a.key().cmp(&b.key()));
        let before = reports.len();
        reports.dedup_by(|later, first| later.key() == first.key());
        let duplicate_reports_in_batch = (before - reports.len()) as u64;

        let mut heartbeats = Vec::with_capacity(batch.heartbeats.len());
        for (index, heartbeat) in batch.heartbeats.iter().enumerate() {
            if heartbeat.agent_id != batch.agent_id {
                return Err(StoreError::Invalid(format!(
                    "heartbeats[{index}].agent_id differs from the batch agent_id"
                )));
            }
            let json = serde_json::to_string(heartbeat).map_err(|error| {
                StoreError::Invalid(format!("heartbeats[{index}] cannot be serialised: {error}"))
            })?;
            heartbeats.push(PreparedHeartbeat {
                time_ns: heartbeat.time.as_ns(),
                any_process_down: any_process_down(heartbeat),
                kernel_drops_total: saturating_i64(kernel_drops_total(heartbeat)),
                json,
            });
        }
        heartbeats.sort_by_key(|heartbeat| heartbeat.time_ns);
        let before = heartbeats.len();
        heartbeats.dedup_by_key(|heartbeat| heartbeat.time_ns);
        let duplicate_heartbeats_in_batch = (before - heartbeats.len()) as u64;
        let (calls, duplicate_calls_in_batch) =
            calls::prepare_calls(batch, received_ns, call_scopes)?;

        Ok(PreparedBatch {
            batch: BatchIds {
                // Batch ids are UUIDs, whose hex digits are case-insensitive: the batch log
                // keys them in their canonical lower case, so an upper-case copy is one batch.
                batch_id: batch.batch_id.to_ascii_lowercase(),
                agent_id: batch.agent_id.clone(),
            },
            sent_at_ns: batch.sent_at.as_ns(),
            received_ns,
            reports,
            heartbeats,
            calls,
            duplicate_reports_in_batch,
            duplicate_heartbeats_in_batch,
            duplicate_calls_in_batch,
        })
    }

    /// The index of each report by its key, for matching the rows an insert returned.
    fn report_index(&self) -> std::collections::HashMap<(&str, i64, bool), usize> {
        self.reports
            .iter()
            .enumerate()
            .map(|(index, report)| (report.key(), index))
            .collect()
    }

    /// Folds the reports and heartbeats flagged new (`new_reports[i]` for `reports[i]`) into
    /// what they add to the derived tables. Records the store already held add nothing:
    /// that is what keeps counts exact when a report arrives again in another batch.
    fn aggregates(
        &self,
        new_reports: &[bool],
        new_heartbeats: &[bool],
    ) -> Result<Aggregates, StoreError> {
        let mut capture_drops = 0i64;
        let mut jitter_hours = std::collections::BTreeMap::<(&str, i64), BatchJitterHour>::new();
        let mut calls = std::collections::BTreeMap::<(&str, &str), CallAggregate>::new();
        let new = self
            .reports
            .iter()
            .zip(new_reports)
            .filter_map(|(report, &new)| new.then_some(report));
        for report in new {
            capture_drops = capture_drops.saturating_add(report.capture_drops);
            let hour_ns = report
                .window_start_ns
                .div_euclid(HOUR_NS)
                .saturating_mul(HOUR_NS);
            let report_scopes = std::iter::once("").chain(report.scopes.iter().map(String::as_str));
            for scope in report_scopes {
                let hour =
                    jitter_hours
                        .entry((scope, hour_ns))
                        .or_insert_with(|| BatchJitterHour {
                            scope: scope.to_string(),
                            hour_ns,
                            histogram: histogram::new_jitter_histogram(),
                            windows: 0,
                            windows_without_histogram: 0,
                            windows_with_drops: 0,
                        });
                hour.windows += 1;
                hour.windows_with_drops += u64::from(report.capture_drops > 0);
                match &report.jitter_histogram {
                    // Recording each bucket's lowest value lands in the same bucket of the
                    // (identically configured) hourly histogram: the same as `add`.
                    Some((_, buckets)) => {
                        for &(value, count) in buckets {
                            hour.histogram.record_n(value, count).map_err(|e| {
                                StoreError::Invalid(format!(
                                    "report {}: jitter_histogram: {e:?}",
                                    report.report.stream_id
                                ))
                            })?;
                        }
                    }
                    None => {
                        hour.windows_without_histogram += u64::from(report.jitter_samples > 0);
                    }
                }
                if let Some(part) = &report.call {
                    fold_call(&mut calls, scope, &self.batch.agent_id, part, report);
                }
            }
        }
        let mut newest_heartbeat: Option<usize> = None;
        for (index, heartbeat) in self.heartbeats.iter().enumerate() {
            if !new_heartbeats.get(index).copied().unwrap_or(false) {
                continue;
            }
            let is_newer = newest_heartbeat
                .and_then(|newest| self.heartbeats.get(newest))
                .is_none_or(|newest| heartbeat.time_ns >= newest.time_ns);
            if is_newer {
                newest_heartbeat = Some(index);
            }
        }
        Ok(Aggregates {
            capture_drops,
            calls: calls.into_values().collect(),
            jitter_hours: jitter_hours.into_values().collect(),
            newest_heartbeat,
        })
    }

    fn report_count(&self) -> i64 {
        i64::try_from(self.reports.len()).unwrap_or(i64::MAX)
    }

    fn heartbeat_count(&self) -> i64 {
        i64::try_from(self.heartbeats.len()).unwrap_or(i64::MAX)
    }

    /// The outcome once `new_reports` reports and `new_heartbeats` heartbeats were stored.
    fn outcome(
        &self,
        new_reports: usize,
        new_heartbeats: usize,
        new_calls: calls::NewCalls,
    ) -> IngestOutcome {
        IngestOutcome {
            calls: new_calls.count as u64,
            duplicate_calls: (self.calls.len().saturating_sub(new_calls.count) as u64)
                .saturating_add(self.duplicate_calls_in_batch),
            new_call_counts: new_calls.by_scope,
            reports: new_reports as u64,
            heartbeats: new_heartbeats as u64,
            duplicate_reports: (self.reports.len().saturating_sub(new_reports) as u64)
                .saturating_add(self.duplicate_reports_in_batch),
            duplicate_heartbeats: (self.heartbeats.len().saturating_sub(new_heartbeats) as u64)
                .saturating_add(self.duplicate_heartbeats_in_batch),
        }
    }
}

impl AgentRow {
    fn from_stored(
        agent_id: String,
        last_batch_ns: i64,
        last_heartbeat_ns: Option<i64>,
        last_heartbeat: Option<Heartbeat>,
        capture_drops_total: i64,
    ) -> AgentRow {
        AgentRow {
            agent_id,
            last_batch_ns,
            last_heartbeat_ns,
            kernel_drops_total: last_heartbeat.as_ref().map_or(0, kernel_drops_total),
            any_process_down: last_heartbeat.as_ref().is_some_and(any_process_down),
            last_heartbeat,
            capture_drops_total: stored_u64(capture_drops_total),
        }
    }
}

/// Sum of the workers' cumulative kernel drops.
fn kernel_drops_total(heartbeat: &Heartbeat) -> u64 {
    heartbeat
        .workers
        .iter()
        .fold(0u64, |sum, worker| sum.saturating_add(worker.kernel_drops))
}

fn any_process_down(heartbeat: &Heartbeat) -> bool {
    heartbeat.processes.iter().any(|process| !process.up)
}

/// Parses a JSON column written by `ingest`.
fn parse_json<T: serde::de::DeserializeOwned>(
    backend: &'static str,
    table: &'static str,
    key: &str,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|error| StoreError::Corrupt {
        backend,
        table,
        key: key.to_string(),
        message: error.to_string(),
    })
}

/// A final report's call share (whole-stream totals; the window's own figures stand in if
/// totals are absent).
fn call_part(report: &StreamReport) -> CallPart {
    // An empty call id is no call id, as in the SLA engine.
    let key = match report.call_id.as_deref() {
        Some(call_id) if !call_id.is_empty() => call_id.to_string(),
        _ => format!("stream:{}", report.stream_id),
    };
    // A call is judged on its streams' whole-stream figures (the final report's totals),
    // as the SLA engine does.
    let (mos, loss_pct, max_jitter_ms) = match &report.totals {
        Some(totals) => (totals.mos, totals.effective_loss_pct, totals.max_jitter_ms),
        None => (report.mos, report.effective_loss_pct, report.max_jitter_ms),
    };
    CallPart {
        key,
        call_id: report.call_id.clone().filter(|id| !id.is_empty()),
        mos: mos.filter(|v| v.is_finite()),
        loss_pct: if loss_pct.is_finite() { loss_pct } else { 0.0 },
        max_jitter_ms,
        stream_id: report.stream_id.clone(),
        codec: report.codec.clone(),
    }
}

fn fold_call<'s>(
    calls: &mut std::collections::BTreeMap<(&'s str, &'s str), CallAggregate>,
    scope: &'s str,
    agent_id: &str,
    part: &'s CallPart,
    prepared: &PreparedReport,
) {
    let call = calls
        .entry((scope, part.key.as_str()))
        .or_insert_with(|| CallAggregate {
            scope: scope.to_string(),
            agent_id: agent_id.to_string(),
            call_key: part.key.clone(),
            call_id: part.call_id.clone(),
            streams: 0,
            first_start_ns: prepared.window_start_ns,
            last_end_ns: prepared.window_end_ns,
            last_start_ns: prepared.window_start_ns,
            min_mos: None,
            max_loss_pct: part.loss_pct,
            max_jitter_ms: None,
            mos_stream_id: None,
            mos_codec: None,
        });
    call.streams = call.streams.saturating_add(1);
    call.first_start_ns = call.first_start_ns.min(prepared.window_start_ns);
    call.last_end_ns = call.last_end_ns.max(prepared.window_end_ns);
    call.last_start_ns = call.last_start_ns.max(prepared.window_start_ns);
    // The same rule as CALL_UPSERT_CONFLICT: a lower MOS, or an equal one from a smaller
    // stream id, names the call's worst stream.
    if let Some(mos) = part.mos {
        let lower = match (call.min_mos, call.mos_stream_id.as_deref()) {
            (Some(min), Some(stream)) => {
                mos < min || (mos == min && part.stream_id.as_str() < stream)
            }
            (Some(min), None) => mos <= min,
            (None, _) => true,
        };
        if lower {
            call.mos_stream_id = Some(part.stream_id.clone());
            call.mos_codec = Some(part.codec.clone());
        }
    }
    call.min_mos = min_option(call.min_mos, part.mos);
    call.max_loss_pct = call.max_loss_pct.max(part.loss_pct);
    call.max_jitter_ms = max_option(call.max_jitter_ms, part.max_jitter_ms);
}

fn min_option(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_option(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Ends the INSERT of report rows on both backends: a record the store holds already is
/// skipped (its first copy wins), and the rows actually inserted come back, so the ingest
/// transaction counts exactly those in the aggregates.
const REPORT_RECORD_CONFLICT: &str = " ON CONFLICT (agent_id, stream_id, window_start_ns, is_final) \
     DO NOTHING RETURNING stream_id, window_start_ns, is_final";

/// Flags as new the reports whose keys an insert returned (`REPORT_RECORD_CONFLICT`).
fn mark_new<R>(
    inserted: &[R],
    index: &std::collections::HashMap<(&str, i64, bool), usize>,
    new: &mut [bool],
) -> Result<(), StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R> + sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    for row in inserted {
        let database = |source| StoreError::Database {
            backend: <R::Database as sqlx::Database>::NAME,
            source,
        };
        let key: (&str, i64, bool) = (
            row.try_get("stream_id").map_err(database)?,
            row.try_get("window_start_ns").map_err(database)?,
            row.try_get("is_final").map_err(database)?,
        );
        if let Some(flag) = index.get(&key).and_then(|&i| new.get_mut(i)) {
            *flag = true;
        }
    }
    Ok(())
}

/// The upsert of `calls`, shared by both backends (excluded.* is the new batch's fold).
const CALL_UPSERT_CONFLICT: &str = " ON CONFLICT (scope, agent_id, call_key) DO UPDATE SET \
     call_id = COALESCE(calls.call_id, excluded.call_id), \
     streams = calls.streams + excluded.streams, \
     first_start_ns = CASE WHEN excluded.first_start_ns < calls.first_start_ns \
       THEN excluded.first_start_ns ELSE calls.first_start_ns END, \
     last_end_ns = CASE WHEN excluded.last_end_ns > calls.last_end_ns \
       THEN excluded.last_end_ns ELSE calls.last_end_ns END, \
     last_start_ns = CASE WHEN excluded.last_start_ns > calls.last_start_ns \
       THEN excluded.last_start_ns ELSE calls.last_start_ns END, \
     min_mos = CASE WHEN calls.min_mos IS NULL OR excluded.min_mos < calls.min_mos \
       THEN COALESCE(excluded.min_mos, calls.min_mos) ELSE calls.min_mos END, \
     mos_stream_id = CASE WHEN excluded.min_mos IS NOT NULL AND (calls.min_mos IS NULL \
       OR excluded.min_mos < calls.min_mos OR (excluded.min_mos = calls.min_mos \
       AND (calls.mos_stream_id IS NULL OR excluded.mos_stream_id < calls.mos_stream_id))) \
       THEN excluded.mos_stream_id ELSE calls.mos_stream_id END, \
     mos_codec = CASE WHEN excluded.min_mos IS NOT NULL AND (calls.min_mos IS NULL \
       OR excluded.min_mos < calls.min_mos OR (excluded.min_mos = calls.min_mos \
       AND (calls.mos_stream_id IS NULL OR excluded.mos_stream_id < calls.mos_stream_id))) \
       THEN excluded.mos_codec ELSE calls.mos_codec END, \
     max_loss_pct = CASE WHEN excluded.max_loss_pct > calls.max_loss_pct \
       THEN excluded.max_loss_pct ELSE calls.max_loss_pct END, \
     max_jitter_ms = CASE WHEN calls.max_jitter_ms IS NULL OR excluded.max_jitter_ms > calls.max_jitter_ms \
       THEN COALESCE(excluded.max_jitter_ms, calls.max_jitter_ms) ELSE calls.max_jitter_ms END";

/// Columns of `calls` in the order `CallAggregate` reads them.
const CALL_COLUMNS: &str = "scope, agent_id, call_key, call_id, streams, first_start_ns, last_end_ns, \
                            last_start_ns, min_mos, max_loss_pct, max_jitter_ms, mos_stream_id, \
                            mos_codec";

/// Builds the `call_stats` query (one row of counts) or, with `worst`, the `calls_worst`
/// query, on either backend.
fn build_calls_query<DB>(
    select: &mut sqlx::QueryBuilder<DB>,
    scope: &str,
    agents: &[String],
    from_ns: i64,
    to_ns: i64,
    counts: Option<(f64, f64)>,
    worst: Option<(Worst, i64)>,
) where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    match counts {
        Some((mos_min, loss_max_pct)) => {
            select
                .push(
                    "SELECT COUNT(*) AS calls, COUNT(min_mos) AS calls_with_mos, \
                     COALESCE(SUM(CASE WHEN min_mos >= ",
                )
                .push_bind(mos_min)
                .push(
                    " THEN 1 ELSE 0 END), 0) AS meeting_mos, \
                     COALESCE(SUM(CASE WHEN max_loss_pct <= ",
                )
                .push_bind(loss_max_pct)
                .push(
                    " THEN 1 ELSE 0 END), 0) AS meeting_loss, \
                     COALESCE(SUM(CASE WHEN min_mos >= ",
                )
                .push_bind(mos_min)
                .push(" AND max_loss_pct <= ")
                .push_bind(loss_max_pct)
                .push(
                    " THEN 1 ELSE 0 END), 0) AS meeting_both, MAX(max_loss_pct) AS worst_loss_pct \
                     FROM calls WHERE scope = ",
                )
                .push_bind(scope.to_string())
                .push(" AND agent_id IN (");
        }
        None => {
            // The inner query reads only the (agent_id, last_start_ns, min_mos, max_loss_pct,
            // call_key) index; whole rows are fetched for the few it keeps.
            select
                .push(format_args!(
                    "SELECT {CALL_COLUMNS} FROM calls WHERE (scope, agent_id, call_key) IN \
                     (SELECT scope, agent_id, call_key FROM calls WHERE scope = "
                ))
                .push_bind(scope.to_string())
                .push(" AND agent_id IN (");
        }
    }
    let mut list = select.separated(", ");
    for agent in agents {
        list.push_bind(agent.clone());
    }
    // For the worst calls the period is a filter, not the index range (unary `+` keeps both
    // planners off `calls_scope_start`): the range is the breaching values of
    // `calls_scope_mos` / `calls_scope_loss`, a small part of a month.
    let period_column = if worst.is_some() {
        ") AND +last_start_ns >= "
    } else {
        ") AND last_start_ns >= "
    };
    select
        .push(period_column)
        .push_bind(from_ns)
        .push(if worst.is_some() {
            " AND +last_start_ns < "
        } else {
            " AND last_start_ns < "
        })
        .push_bind(to_ns);
    match worst {
        Some((Worst::MosBelow(mos_min), limit)) => {
            select
                .push(" AND min_mos < ")
                .push_bind(mos_min)
                .push(" ORDER BY min_mos, agent_id, call_key LIMIT ")
                .push_bind(limit)
                .push(") ORDER BY min_mos, agent_id, call_key");
        }
        Some((Worst::LossAbove(loss_max_pct), limit)) => {
            select
                .push(" AND max_loss_pct > ")
                .push_bind(loss_max_pct)
                .push(" ORDER BY max_loss_pct DESC, agent_id, call_key LIMIT ")
                .push_bind(limit)
                .push(") ORDER BY max_loss_pct DESC, agent_id, call_key");
        }
        None => {}
    }
}

/// Builds the `calls_page` query on either backend: a range of `calls_scope_start`
/// (scope, agent, last_start_ns) from the cursor on, the cursor's own instant filtered by key.
fn build_calls_page_query<DB>(
    select: &mut sqlx::QueryBuilder<DB>,
    scope: &str,
    agent: &str,
    from_ns: i64,
    to_ns: i64,
    after: Option<&(i64, String)>,
    limit: i64,
) where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    select
        .push(format_args!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE scope = "
        ))
        .push_bind(scope.to_string())
        .push(" AND agent_id = ")
        .push_bind(agent.to_string())
        .push(" AND last_start_ns >= ")
        .push_bind(match after {
            Some((start, _)) => from_ns.max(*start),
            None => from_ns,
        })
        .push(" AND last_start_ns < ")
        .push_bind(to_ns);
    if let Some((start, key)) = after {
        select
            .push(" AND (last_start_ns > ")
            .push_bind(*start)
            .push(" OR call_key > ")
            .push_bind(key.clone())
            .push(")");
    }
    select
        .push(" ORDER BY last_start_ns, call_key LIMIT ")
        .push_bind(limit);
}

/// Pushes `CAST(CASE … END AS BIGINT)`: the number of `edges` (ascending) at or below
/// `column`, as a binary tree of comparisons (depth log2 of the bins, not one comparison per
/// edge for every row). The edges are bound, not printed: the database compares the exact
/// doubles.
fn push_bin_tree<DB>(select: &mut sqlx::QueryBuilder<DB>, column: &str, edges: &[f64])
where
    DB: sqlx::Database,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    fn node<DB>(
        select: &mut sqlx::QueryBuilder<DB>,
        column: &str,
        edges: &[f64],
        lo: usize,
        hi: usize,
    ) where
        DB: sqlx::Database,
        for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        if lo == hi {
            select.push(format_args!("{lo}"));
            return;
        }
        // Bins lo..=hi; a value below edges[mid - 1] has fewer than mid edges at or below it.
        let mid = (lo + hi).div_ceil(2);
        select.push(format_args!("CASE WHEN {column} < "));
        select.push_bind(edges[mid - 1]);
        select.push(" THEN ");
        node(select, column, edges, lo, mid - 1);
        select.push(" ELSE ");
        node(select, column, edges, mid, hi);
        select.push(" END");
    }
    select.push("CAST(");
    node(select, column, edges, 0, edges.len());
    select.push(" AS BIGINT)");
}

/// Pushes the period filter every per-call report query shares: a range of
/// `calls_scope_start` (scope, agent, last_start_ns) per agent.
fn push_calls_period<DB>(
    select: &mut sqlx::QueryBuilder<DB>,
    scope: &str,
    agents: &[String],
    from_ns: i64,
    to_ns: i64,
) where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    select
        .push(" FROM calls WHERE scope = ")
        .push_bind(scope.to_string())
        .push(" AND agent_id IN (");
    let mut list = select.separated(", ");
    for agent in agents {
        list.push_bind(agent.clone());
    }
    select
        .push(") AND last_start_ns >= ")
        .push_bind(from_ns)
        .push(" AND last_start_ns < ")
        .push_bind(to_ns);
}

/// Builds the `call_bins` query on either backend: one pass over the period's range of
/// `calls_scope_start`, which covers every column read (migration 0010 added `mos_codec`).
fn build_call_bins_query<DB>(
    select: &mut sqlx::QueryBuilder<DB>,
    scope: &str,
    agents: &[String],
    from_ns: i64,
    to_ns: i64,
    binning: &CallBinning<'_>,
) where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    select.push("SELECT CASE WHEN min_mos IS NULL THEN CAST(-1 AS BIGINT) ELSE ");
    push_bin_tree(select, "min_mos", binning.mos_edges);
    select.push(" END AS mos_bin, ");
    push_bin_tree(select, "max_loss_pct", binning.loss_edges);
    select
        .push(
            " AS loss_bin, mos_codec, COUNT(*) AS calls, \
             COALESCE(SUM(CASE WHEN min_mos >= ",
        )
        .push_bind(binning.mos_min)
        .push(
            " THEN 1 ELSE 0 END), 0) AS meeting, MIN(min_mos) AS mos_lo, MAX(min_mos) AS mos_hi, \
             MIN(max_loss_pct) AS loss_lo, MAX(max_loss_pct) AS loss_hi",
        );
    push_calls_period(select, scope, agents, from_ns, to_ns);
    // By position: each backend sees the same expressions (with their bound edges) once.
    select.push(" GROUP BY 1, 2, 3");
}

/// Reads a `call_bins` row on either backend.
fn call_bin_row<R>(row: &R, backend: &'static str) -> Result<CallBin, StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let database = |source| StoreError::Database { backend, source };
    let bin =
        |name: &str| -> Result<i64, StoreError> { row.try_get::<i64, _>(name).map_err(database) };
    let mos_bin = bin("mos_bin")?;
    let mos_lo: Option<f64> = row.try_get("mos_lo").map_err(database)?;
    let mos_hi: Option<f64> = row.try_get("mos_hi").map_err(database)?;
    Ok(CallBin {
        mos_bin: u32::try_from(mos_bin).ok(),
        loss_bin: u32::try_from(bin("loss_bin")?).unwrap_or(0),
        mos_codec: row.try_get("mos_codec").map_err(database)?,
        calls: stored_u64(bin("calls")?),
        meeting_mos: stored_u64(bin("meeting")?),
        mos_range: mos_lo.zip(mos_hi),
        loss_range: (
            row.try_get("loss_lo").map_err(database)?,
            row.try_get("loss_hi").map_err(database)?,
        ),
    })
}

/// Builds the `call_value_positions` query on either backend: the period's range of
/// `calls_scope_start` (the value under unary `+`, so that neither planner walks the
/// value's own index through every period the store holds), numbered in value order, the
/// asked positions kept.
#[allow(clippy::too_many_arguments)]
fn build_call_positions_query<DB>(
    select: &mut sqlx::QueryBuilder<DB>,
    scope: &str,
    agents: &[String],
    from_ns: i64,
    to_ns: i64,
    value: CallValue,
    ranges: &[(f64, f64)],
    positions: &[i64],
) where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let column = match value {
        CallValue::MinMos => "min_mos",
        CallValue::MaxLossPct => "max_loss_pct",
    };
    // `+` in the ordering too: SQLite would otherwise walk the value's index for its order.
    select.push(format_args!(
        "SELECT value FROM (SELECT {column} AS value, \
         ROW_NUMBER() OVER (ORDER BY +{column}) AS position"
    ));
    push_calls_period(select, scope, agents, from_ns, to_ns);
    select.push(" AND (");
    for (i, &(lo, hi)) in ranges.iter().enumerate() {
        if i > 0 {
            select.push(" OR ");
        }
        select
            .push(format_args!("(+{column} >= "))
            .push_bind(lo)
            .push(format_args!(" AND +{column} <= "))
            .push_bind(hi)
            .push(")");
    }
    select.push(")) ranked WHERE position IN (");
    let mut list = select.separated(", ");
    for &position in positions {
        list.push_bind(position);
    }
    select.push(") ORDER BY position");
}

/// Builds the `jitter_hours` query on either backend.
fn build_jitter_hours_query<DB>(
    select: &mut sqlx::QueryBuilder<DB>,
    scope: &str,
    agents: &[String],
    from_ns: i64,
    to_ns: i64,
) where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    select
        .push(
            "SELECT agent_id, hour_ns, samples, windows, windows_without_histogram, \
             windows_with_drops, histogram FROM jitter_hourly WHERE scope = ",
        )
        .push_bind(scope.to_string())
        .push(" AND agent_id IN (");
    let mut list = select.separated(", ");
    for agent in agents {
        list.push_bind(agent.clone());
    }
    select
        .push(") AND hour_ns >= ")
        .push_bind(from_ns)
        .push(" AND hour_ns < ")
        .push_bind(to_ns)
        .push(" ORDER BY hour_ns, agent_id");
}

/// Reads a `jitter_hours` row on either backend.
fn jitter_hour_row<R>(row: &R, backend: &'static str) -> Result<JitterHour, StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let database = |source| StoreError::Database { backend, source };
    let count = |name: &str| -> Result<u64, StoreError> {
        Ok(stored_u64(row.try_get::<i64, _>(name).map_err(database)?))
    };
    Ok(JitterHour {
        agent_id: row.try_get("agent_id").map_err(database)?,
        hour_ns: row.try_get("hour_ns").map_err(database)?,
        samples: count("samples")?,
        windows: count("windows")?,
        windows_without_histogram: count("windows_without_histogram")?,
        windows_with_drops: count("windows_with_drops")?,
        histogram: row.try_get("histogram").map_err(database)?,
    })
}

/// Builds the `window_histograms` query on either backend: windows by start, found through
/// the (agent, window end) index since a window lasts at most `MAX_WINDOW_NS`.
fn build_window_histograms_query<DB>(
    select: &mut sqlx::QueryBuilder<DB>,
    agents: &[String],
    from_ns: i64,
    to_ns: i64,
) where
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    select.push(
        "SELECT id, agent_id, window_start_ns, src, dst, capture_drops, jitter_histogram, report \
         FROM stream_reports WHERE agent_id IN (",
    );
    let mut list = select.separated(", ");
    for agent in agents {
        list.push_bind(agent.clone());
    }
    select
        .push(") AND window_end_ns >= ")
        .push_bind(from_ns)
        .push(" AND window_end_ns < ")
        .push_bind(to_ns.saturating_add(MAX_WINDOW_NS))
        .push(" AND window_start_ns >= ")
        .push_bind(from_ns)
        .push(" AND window_start_ns < ")
        .push_bind(to_ns);
}

/// The one field of a stored report JSON that `window_histograms` needs.
#[derive(serde::Deserialize)]
struct SamplesOnly {
    jitter_samples: u64,
}

/// Reads a `window_histograms` row on either backend.
fn window_histogram_row<R>(row: &R, backend: &'static str) -> Result<WindowHistogram, StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let database = |source| StoreError::Database { backend, source };
    let id: i64 = row.try_get("id").map_err(database)?;
    // jitter_samples lives only in the JSON; read just that field.
    let json: String = row.try_get("report").map_err(database)?;
    let samples: SamplesOnly = parse_json(backend, "stream_reports", &id.to_string(), &json)?;
    Ok(WindowHistogram {
        agent_id: row.try_get("agent_id").map_err(database)?,
        window_start_ns: row.try_get("window_start_ns").map_err(database)?,
        src: row.try_get("src").map_err(database)?,
        dst: row.try_get("dst").map_err(database)?,
        jitter_samples: samples.jitter_samples,
        capture_drops: stored_u64(row.try_get("capture_drops").map_err(database)?),
        histogram: row.try_get("jitter_histogram").map_err(database)?,
    })
}

/// Reads a `CALL_COLUMNS` row on either backend.
fn call_aggregate<R>(row: &R, backend: &'static str) -> Result<CallAggregate, StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let database = |source| StoreError::Database { backend, source };
    Ok(CallAggregate {
        scope: row.try_get("scope").map_err(database)?,
        agent_id: row.try_get("agent_id").map_err(database)?,
        call_key: row.try_get("call_key").map_err(database)?,
        call_id: row.try_get("call_id").map_err(database)?,
        streams: stored_u64(row.try_get("streams").map_err(database)?),
        first_start_ns: row.try_get("first_start_ns").map_err(database)?,
        last_end_ns: row.try_get("last_end_ns").map_err(database)?,
        last_start_ns: row.try_get("last_start_ns").map_err(database)?,
        min_mos: row.try_get("min_mos").map_err(database)?,
        max_loss_pct: row.try_get("max_loss_pct").map_err(database)?,
        max_jitter_ms: row.try_get("max_jitter_ms").map_err(database)?,
        mos_stream_id: row.try_get("mos_stream_id").map_err(database)?,
        mos_codec: row.try_get("mos_codec").map_err(database)?,
    })
}

/// Reads the `call_stats` row on either backend.
fn call_stats_row<R>(row: &R, backend: &'static str) -> Result<CallStats, StoreError>
where
    R: sqlx::Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let database = |source| StoreError::Database { backend, source };
    let count = |name: &str| -> Result<u64, StoreError> {
        Ok(stored_u64(row.try_get::<i64, _>(name).map_err(database)?))
    };
    Ok(CallStats {
        calls: count("calls")?,
        calls_with_mos: count("calls_with_mos")?,
        meeting_mos: count("meeting_mos")?,
        meeting_loss: count("meeting_loss")?,
        meeting_both: count("meeting_both")?,
        worst_loss_pct: row.try_get("worst_loss_pct").map_err(database)?,
    })
}

/// The stored bytes of an agent-hour with `add` merged in.
fn merge_hour(
    backend: &'static str,
    key: &str,
    stored: Option<&[u8]>,
    add: &Histogram<u64>,
) -> Result<(u64, Vec<u8>), StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        backend,
        table: "jitter_hourly",
        key: key.to_string(),
        message,
    };
    let mut total = match stored {
        Some(bytes) => {
            histogram::decode_jitter_histogram_bytes(bytes).map_err(|e| corrupt(e.to_string()))?
        }
        None => histogram::new_jitter_histogram(),
    };
    if total.len().saturating_add(add.len()) > 1 << 60 {
        return Err(StoreError::Invalid(format!(
            "the hourly jitter histogram {key} would exceed 2^60 packets"
        )));
    }
    total.add(add).map_err(|e| corrupt(format!("{e:?}")))?;
    let bytes = histogram::HistogramEncoder::new()
        .encode_bytes(&total)
        .ok_or_else(|| corrupt("cannot serialise".to_string()))?;
    Ok((total.len(), bytes))
}

/// Counters arrive as u64; the databases hold i64. Values beyond i64::MAX are not
/// meaningful counts, so they are clamped rather than rejected.
fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn stored_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::str::FromStr;
    use std::sync::atomic::{AtomicU32, Ordering};
    use voqa_wire::{ProcessState, StreamSummary, Timestamp, Transitions, WorkerCounters};

    const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
    /// 2026-11-23T00:00:00Z.
    pub(crate) const DAY_NS: i64 = 1_795_392_000_000_000_000;
    pub(crate) const SECOND: i64 = 1_000_000_000;

    #[test]
    fn folds_final_reports_per_call() {
        let reports = vec![
            report("a", 1, Some("c"), 0, 60, true, Some(4.2)),
            report("a", 2, Some("c"), 10, 50, true, None),
            report("a", 3, Some("c"), 0, 70, false, Some(1.0)),
            report("a", 4, None, 5, 65, true, Some(3.0)),
        ];
        let batch = batch("b", "a", reports, vec![]);
        let prepared = PreparedBatch::new(&batch, 0, &[], &[]).expect("prepare");
        let all_new = vec![true; prepared.reports.len()];
        let aggregates = prepared.aggregates(&all_new, &[]).expect("aggregates");
        let keys: Vec<(&str, u64, Option<f64>)> = aggregates
            .calls
            .iter()
            .map(|call| (call.call_key.as_str(), call.streams, call.min_mos))
            .collect();
        assert_eq!(
            keys,
            [
                ("c", 2, Some(4.2)),
                ("stream:0000000000000004", 1, Some(3.0))
            ]
        );
        let call = aggregates.calls.first().expect("call c");
        assert_eq!(call.first_start_ns, DAY_NS);
        assert_eq!(call.last_end_ns, DAY_NS + 60 * SECOND);
        assert_eq!(
            aggregates
                .calls
                .get(1)
                .and_then(|call| call.call_id.clone()),
            None
        );
        // Only the reports flagged new count: here the first final of call c was stored before.
        let mut some_new = vec![true; prepared.reports.len()];
        if let Some(first) = prepared
            .reports
            .iter()
            .position(|r| r.report.stream_id == format!("{:016x}", 1) && r.report.is_final)
        {
            some_new[first] = false;
        }
        let aggregates = prepared.aggregates(&some_new, &[]).expect("aggregates");
        assert_eq!(
            aggregates
                .calls
                .first()
                .map(|call| (call.streams, call.min_mos)),
            Some((1, None))
        );
        assert_eq!(aggregates.capture_drops, 3 * 2);
    }

    #[test]
    fn copies_inside_a_batch_are_one_record() {
        let once = report("a", 1, Some("c"), 0, 60, true, Some(4.2));
        let mut changed = once.clone();
        changed.mos = Some(1.0);
        let beat = heartbeat("a", 30, false, 0);
        let batch = batch(
            "b",
            "a",
            vec![once, report("a", 2, None, 0, 60, false, None), changed],
            vec![beat.clone(), beat],
        );
        let prepared = PreparedBatch::new(&batch, 0, &[], &[]).expect("prepare");
        assert_eq!(prepared.reports.len(), 2);
        assert_eq!(prepared.heartbeats.len(), 1);
        // The first copy wins.
        assert_eq!(
            prepared.reports.first().and_then(|r| r.report.mos),
            Some(4.2)
        );
        assert_eq!(
            prepared.outcome(2, 1, calls::NewCalls::default()),
            IngestOutcome {
                reports: 2,
                heartbeats: 1,
                duplicate_reports: 1,
                duplicate_heartbeats: 1,
                ..IngestOutcome::default()
            }
        );
        assert!(
            !prepared
                .outcome(2, 1, calls::NewCalls::default())
                .is_duplicate()
        );
        assert!(
            prepared
                .outcome(0, 0, calls::NewCalls::default())
                .is_duplicate()
        );
        assert_eq!(
            prepared.outcome(0, 0, calls::NewCalls::default()).status(),
            "duplicate"
        );
    }

    #[test]
    fn rejects_wrong_schema_and_empty_ids() {
        let mut wrong = batch("b", "a", vec![], vec![]);
        wrong.schema = 2;
        assert!(matches!(
            PreparedBatch::new(&wrong, 0, &[], &[]),
            Err(StoreError::Invalid(_))
        ));
        let empty_id = batch("", "a", vec![], vec![]);
        assert!(matches!(
            PreparedBatch::new(&empty_id, 0, &[], &[]),
            Err(StoreError::Invalid(_))
        ));
        let empty_agent = batch("b", "", vec![], vec![]);
        assert!(matches!(
            PreparedBatch::new(&empty_agent, 0, &[], &[]),
            Err(StoreError::Invalid(_))
        ));
    }

    // ---- fixtures ----

    /// `offset_ns` after DAY_NS (2026-11-23T00:00:00Z), within that day.
    fn time(offset_ns: i64) -> Timestamp {
        assert!(
            (0..86_400 * SECOND).contains(&offset_ns),
            "fixture times stay within one day"
        );
        Timestamp::from_ns(DAY_NS + offset_ns)
    }

    fn totals(report: &StreamReport) -> StreamSummary {
        StreamSummary {
            src: report.src.clone(),
            dst: report.dst.clone(),
            ssrc: report.ssrc.clone(),
            payload_type: 0,
            codec: "PCMU".into(),
            clock_rate: Some(8000),
            call_id: report.call_id.clone(),
            first_seen: time(0),
            last_seen: report.window_end,
            packets: 15_000,
            expected: 15_000,
            lost: 3,
            duplicates: 0,
            reordered: 1,
            jitter_ms: Some(0.4),
            max_jitter_ms: Some(2.5),
            mean_jitter_ms: Some(0.3),
            max_delta_ms: 41.0,
            burst_ratio: 1.1,
            jb_discarded: 2,
            effective_loss_pct: 0.03,
            rtt_ms: Some(12.0),
            r_factor: Some(92.1),
            mos: report.mos,
            loss_bursts: 2,
            max_loss_burst: 2,
            lost_rfc3550: 3,
            delay_ms: Some(60.0),
            delay_source: "rtcp".into(),
            clock_source: "static".into(),
            detection: "sdp".into(),
            jitter_buffer: "fixed:60".into(),
            ie: Some(0.0),
            bpl: Some(25.1),
            flags: vec![],
            media: "audio".into(),
            srtp: false,
            clock_inference: None,
        }
    }

    /// A report of `stream` for the window `[start_s, end_s)` seconds after DAY_NS.
    pub(crate) fn report(
        agent: &str,
        stream: u32,
        call_id: Option<&str>,
        start_s: i64,
        end_s: i64,
        is_final: bool,
        mos: Option<f64>,
    ) -> StreamReport {
        let mut report = StreamReport {
            agent_id: agent.into(),
            stream_id: format!("{stream:016x}"),
            src: format!("192.0.2.{}:40000", stream % 250),
            dst: "198.51.100.20:50000".into(),
            ssrc: format!("0x{stream:08x}"),
            payload_type: 0,
            codec: "PCMU".into(),
            clock_rate: Some(8000),
            call_id: call_id.map(str::to_string),
            window_start: time(start_s * SECOND),
            window_end: time(end_s * SECOND),
            is_final,
            end_reason: is_final.then(|| "bye".to_string()),
            packets: 500,
            expected: 500,
            lost: 1,
            duplicates: 0,
            reordered: 0,
            jitter_ms: Some(0.5),
            max_jitter_ms: Some(1.5 + f64::from(stream % 7)),
            mean_jitter_ms: Some(0.4),
            jitter_sum_ms: 200.0,
            jitter_samples: 500,
            jitter_histogram: None,
            max_delta_ms: 20.5,
            transitions: Transitions {
                n00: 497,
                n01: 1,
                n10: 1,
                n11: 0,
            },
            burst_ratio: 1.0,
            jb_discarded: 0,
            effective_loss_pct: 0.2,
            rtt_ms: None,
            delay_ms: Some(60.0),
            r_factor: Some(90.0),
            mos,
            capture_drops: 2,
            totals: None,
        };
        if is_final {
            report.totals = Some(totals(&report));
        }
        report
    }

    pub(crate) fn heartbeat(agent: &str, at_s: i64, down: bool, drops: u64) -> Heartbeat {
        Heartbeat {
            agent_id: agent.into(),
            agent_version: "0.1.0".into(),
            time: time(at_s * SECOND),
            host_uptime_s: 1000,
            cpu_pct: 12.5,
            agent_cpu_pct: 40.0,
            mem_total_bytes: 8 << 30,
            mem_used_bytes: 2 << 30,
            agent_rss_bytes: 30 << 20,
            load_avg: [0.5, 0.4, 0.3],
            workers: vec![
                WorkerCounters {
                    worker: 0,
                    kernel_packets: 1_000_000,
                    kernel_drops: drops,
                    kernel_freezes: 0,
                    frames: 999_000,
                },
                WorkerCounters {
                    worker: 1,
                    kernel_packets: 1_000_000,
                    kernel_drops: 1,
                    kernel_freezes: 0,
                    frames: 999_000,
                },
            ],
            streams_tracked: 40,
            streams_evicted: 0,
            processes: vec![
                ProcessState {
                    name: "asterisk".into(),
                    up: !down,
                    count: u32::from(!down),
                },
                ProcessState {
                    name: "rtpengine".into(),
                    up: true,
                    count: 1,
                },
            ],
            shipping: None,
        }
    }

    pub(crate) fn batch(
        batch_id: &str,
        agent: &str,
        reports: Vec<StreamReport>,
        heartbeats: Vec<Heartbeat>,
    ) -> Batch {
        Batch {
            schema: voqa_wire::SCHEMA_VERSION,
            batch_id: batch_id.into(),
            agent_id: agent.into(),
            sent_at: time(86_000 * SECOND),
            reports,
            heartbeats,
            calls: Vec::new(),
        }
    }

    fn stored(reports: u64, heartbeats: u64) -> IngestOutcome {
        IngestOutcome {
            reports,
            heartbeats,
            ..IngestOutcome::default()
        }
    }

    fn duplicates(reports: u64, heartbeats: u64) -> IngestOutcome {
        IngestOutcome {
            duplicate_reports: reports,
            duplicate_heartbeats: heartbeats,
            ..IngestOutcome::default()
        }
    }

    fn all(from_s: i64, to_s: i64) -> StreamQuery {
        StreamQuery {
            agents: None,
            agent: None,
            from_ns: DAY_NS + from_s * SECOND,
            to_ns: DAY_NS + to_s * SECOND,
            max_mos: None,
            final_only: false,
            after: None,
            limit: MAX_PAGE,
        }
    }

    /// Every page of `query`, following the cursor with pages of `page` rows.
    async fn paginate(store: &Store, query: &StreamQuery, page: u32) -> Vec<StreamRow> {
        let mut rows = Vec::new();
        let mut query = StreamQuery {
            limit: page,
            ..query.clone()
        };
        loop {
            let chunk = store.streams(&query).await.expect("streams page");
            assert!(chunk.len() <= page as usize);
            let Some(last) = chunk.last() else { break };
            query.after = Some((last.window_end_ns, last.id));
            let short = chunk.len() < page as usize;
            rows.extend(chunk);
            if short {
                break;
            }
        }
        rows
    }

    fn ids(rows: &[StreamRow]) -> Vec<i64> {
        rows.iter().map(|row| row.id).collect()
    }

    // ---- the shared suite ----

    /// Behaviour both backends must share; `store` starts empty.
    async fn suite(store: &Store) {
        store.ping().await.expect("ping");

        // Agent a1: five streams, an interval report [0,60) and a final [60,90) each; the
        // interval reports carry no call id yet (SIP seen late), the finals do.
        let mut first = Vec::new();
        for stream in 0..5u32 {
            let call = format!("call-{}", stream / 2);
            first.push(report("a1", stream, None, 0, 60, false, Some(4.3)));
            first.push(report(
                "a1",
                stream,
                Some(&call),
                60,
                90 + i64::from(stream),
                true,
                Some(3.5 + f64::from(stream) * 0.2),
            ));
        }
        let heartbeats = vec![heartbeat("a1", 100, false, 5), heartbeat("a1", 50, true, 3)];
        let batch_a = batch("batch-a", "a1", first.clone(), heartbeats);
        assert_eq!(
            store
                .ingest(&batch_a, DAY_NS + 100 * SECOND)
                .await
                .expect("ingest a"),
            stored(10, 2)
        );
        let rows_a = store.streams(&all(0, 86_400)).await.expect("streams");
        assert_eq!(rows_a.len(), 10);
        let mut reports_back: Vec<StreamReport> =
            rows_a.iter().map(|row| row.report.clone()).collect();
        let mut expected = first.clone();
        let key = |report: &StreamReport| (report.window_end, report.stream_id.clone());
        reports_back.sort_by_key(key);
        expected.sort_by_key(key);
        assert_eq!(reports_back, expected, "reports round-trip exactly");
        let final_row = rows_a
            .iter()
            .find(|row| row.is_final && row.stream_id == format!("{:016x}", 4))
            .expect("final of stream 4");
        assert_eq!(final_row.agent_id, "a1");
        assert_eq!(final_row.window_start_ns, DAY_NS + 60 * SECOND);
        assert_eq!(final_row.window_end_ns, DAY_NS + 94 * SECOND);
        assert_eq!(final_row.call_id.as_deref(), Some("call-2"));
        assert_eq!(final_row.mos, Some(3.5 + 0.8));

        // The same records under another batch id are acknowledged as duplicates, stored
        // nothing; a repeated batch id with new content stores the new record only.
        let again = Batch {
            batch_id: "batch-a-again".into(),
            ..batch_a.clone()
        };
        assert_eq!(
            store.ingest(&again, DAY_NS).await.expect("again"),
            duplicates(10, 2)
        );
        let mut repeat = batch_a.clone();
        repeat
            .reports
            .push(report("a1", 99, None, 0, 10, false, None));
        assert_eq!(
            store.ingest(&repeat, DAY_NS).await.expect("repeat"),
            IngestOutcome {
                duplicate_reports: 10,
                duplicate_heartbeats: 2,
                ..stored(1, 0)
            }
        );
        assert_eq!(
            store.streams(&all(0, 86_400)).await.expect("streams").len(),
            11
        );

        // A window that runs backwards rejects the whole batch, and its id stays free. (Times
        // that do not parse never reach the store: `voqa_wire::Timestamp` refuses them.)
        let mut bad_reports: Vec<StreamReport> = (0..5)
            .map(|stream| report("a1", 100 + stream, None, 200, 260, false, Some(4.0)))
            .collect();
        let good_reports = bad_reports.clone();
        if let Some(report) = bad_reports.get_mut(3) {
            report.window_end = time(100 * SECOND);
        }
        let error = store
            .ingest(&batch("batch-b", "a1", bad_reports, vec![]), DAY_NS)
            .await
            .expect_err("backwards window");
        assert!(matches!(error, StoreError::Invalid(_)), "{error}");
        assert!(
            error.to_string().contains("reports[3].window_end"),
            "{error}"
        );
        let mut foreign = good_reports.clone();
        if let Some(report) = foreign.get_mut(1) {
            report.agent_id = "someone-else".into();
        }
        let error = store
            .ingest(&batch("batch-b", "a1", foreign, vec![]), DAY_NS)
            .await
            .expect_err("foreign agent");
        assert!(error.to_string().contains("reports[1].agent_id"), "{error}");
        assert_eq!(
            store.streams(&all(0, 86_400)).await.expect("streams").len(),
            11
        );
        assert_eq!(
            store
                .ingest(
                    &batch("batch-b", "a1", good_reports, vec![]),
                    DAY_NS + 200 * SECOND
                )
                .await
                .expect("batch-b once valid"),
            stored(5, 0)
        );

        // Agent a2: 60 streams, all windows ending at 1000 s or 1010 s (many ties for the
        // cursor), spread over three batches, plus heartbeats every 10 s.
        for part in 0..3u32 {
            let reports = (0..20u32)
                .flat_map(|index| {
                    let stream = 1000 + part * 20 + index;
                    let mos = Some(2.0 + f64::from(stream % 25) * 0.1);
                    [
                        report("a2", stream, Some("call-x"), 940, 1000, false, mos),
                        report("a2", stream, Some("call-x"), 1000, 1010, true, mos),
                    ]
                })
                .collect();
            let heartbeats = (0..10)
                .map(|beat| heartbeat("a2", 900 + i64::from(part) * 100 + beat * 10, beat == 4, 7))
                .collect();
            let outcome = store
                .ingest(
                    &batch(&format!("batch-a2-{part}"), "a2", reports, heartbeats),
                    DAY_NS + 1100 * SECOND,
                )
                .await
                .expect("ingest a2");
            assert_eq!(outcome, stored(40, 10));
        }

        // An empty batch (heartbeat-less, report-less) records the agent; it holds no record,
        // so it is never a duplicate.
        let empty = batch("batch-empty", "a3", vec![], vec![]);
        assert_eq!(
            store
                .ingest(&empty, DAY_NS + 5 * SECOND)
                .await
                .expect("empty"),
            stored(0, 0)
        );
        let again = store.ingest(&empty, DAY_NS).await.expect("empty again");
        assert_eq!((again.clone(), again.status()), (stored(0, 0), "stored"));

        // ---- streams: filters ----
        let everything = store.streams(&all(0, 86_400)).await.expect("all");
        assert_eq!(everything.len(), 11 + 5 + 120);
        let order: Vec<(i64, i64)> = everything
            .iter()
            .map(|row| (row.window_end_ns, row.id))
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(order, sorted, "ordered by (window_end_ns, id), ids unique");

        let a1_only = StreamQuery {
            agent: Some("a1".into()),
            ..all(0, 86_400)
        };
        let rows = store.streams(&a1_only).await.expect("a1");
        assert_eq!(rows.len(), 16);
        assert!(rows.iter().all(|row| row.agent_id == "a1"));

        let customer = StreamQuery {
            agents: Some(vec!["a2".into(), "nobody".into()]),
            ..all(0, 86_400)
        };
        assert_eq!(store.streams(&customer).await.expect("customer").len(), 120);
        let both = StreamQuery {
            agents: Some(vec!["a2".into()]),
            agent: Some("a1".into()),
            ..all(0, 86_400)
        };
        assert!(store.streams(&both).await.expect("disjoint").is_empty());
        let no_agents = StreamQuery {
            agents: Some(vec![]),
            ..all(0, 86_400)
        };
        assert!(store.streams(&no_agents).await.expect("none").is_empty());

        // Window end in [from, to): 60 s ends (a1 interval) are in [60, 61), 1010 s are not in [0, 1010).
        assert_eq!(store.streams(&all(60, 61)).await.expect("range").len(), 5);
        let before_1010 = store.streams(&all(0, 1010)).await.expect("range");
        assert_eq!(before_1010.len(), 11 + 5 + 60);
        assert!(
            before_1010
                .iter()
                .all(|row| row.window_end_ns < DAY_NS + 1010 * SECOND)
        );
        assert!(
            store
                .streams(&all(2000, 1000))
                .await
                .expect("inverted")
                .is_empty()
        );

        let low_mos = StreamQuery {
            max_mos: Some(3.0),
            ..all(0, 86_400)
        };
        let rows = store.streams(&low_mos).await.expect("max_mos");
        let expected_low = everything
            .iter()
            .filter(|row| row.mos.is_some_and(|mos| mos <= 3.0))
            .count();
        assert!(expected_low > 0 && expected_low < everything.len());
        assert_eq!(rows.len(), expected_low);

        let finals = StreamQuery {
            final_only: true,
            ..all(0, 86_400)
        };
        let rows = store.streams(&finals).await.expect("final_only");
        assert_eq!(rows.len(), 5 + 60);
        assert!(rows.iter().all(|row| row.is_final && row.report.is_final));

        let combined = StreamQuery {
            agent: Some("a2".into()),
            final_only: true,
            max_mos: Some(3.0),
            ..all(1005, 1011)
        };
        let rows = store.streams(&combined).await.expect("combined");
        let expected_combined = everything
            .iter()
            .filter(|row| {
                row.agent_id == "a2"
                    && row.is_final
                    && row.mos.is_some_and(|mos| mos <= 3.0)
                    && row.window_end_ns >= DAY_NS + 1005 * SECOND
            })
            .count();
        assert!(expected_combined > 0);
        assert_eq!(rows.len(), expected_combined);

        // ---- streams: cursor pagination, no duplicates, no gaps ----
        for page in [1, 7, 20, 134, 135, 500] {
            let paged = paginate(store, &all(0, 86_400), page).await;
            assert_eq!(ids(&paged), ids(&everything), "page size {page}");
        }
        let paged = paginate(store, &customer, 9).await;
        assert_eq!(paged.len(), 120);
        let paged = paginate(store, &finals, 4).await;
        assert_eq!(paged.len(), 65);
        assert!(
            store
                .streams(&StreamQuery {
                    limit: 0,
                    ..all(0, 86_400)
                })
                .await
                .expect("limit 0")
                .is_empty()
        );

        // ---- call lookup: the late-correlated interval reports come along ----
        let call = store.call("call-1").await.expect("call");
        assert_eq!(call.len(), 4, "streams 2 and 3, interval and final each");
        assert!(
            call.iter().all(|row| row.stream_id == format!("{:016x}", 2)
                || row.stream_id == format!("{:016x}", 3))
        );
        assert_eq!(call.iter().filter(|row| row.call_id.is_none()).count(), 2);
        assert_eq!(store.call("call-x").await.expect("call-x").len(), 120);
        assert!(store.call("no-such-call").await.expect("none").is_empty());

        // ---- heartbeats ----
        let beats = store
            .heartbeats(
                &["a1".into(), "a2".into()],
                DAY_NS,
                DAY_NS + 86_400 * SECOND,
            )
            .await
            .expect("heartbeats");
        assert_eq!(beats.len(), 2 + 30);
        assert_eq!(
            beats.first(),
            Some(&HeartbeatRow {
                agent_id: "a1".into(),
                time_ns: DAY_NS + 50 * SECOND,
                any_process_down: true,
                kernel_drops_total: 4,
            })
        );
        let a2_window = store
            .heartbeats(
                &["a2".into()],
                DAY_NS + 1000 * SECOND,
                DAY_NS + 1100 * SECOND,
            )
            .await
            .expect("a2 window");
        assert_eq!(a2_window.len(), 10);
        assert!(a2_window.windows(2).all(|pair| match pair {
            [a, b] => a.time_ns < b.time_ns,
            _ => false,
        }));
        assert_eq!(
            a2_window
                .iter()
                .filter(|beat| beat.any_process_down)
                .count(),
            1
        );
        assert!(a2_window.iter().all(|beat| beat.kernel_drops_total == 8));
        assert!(
            store
                .heartbeats(&[], DAY_NS, DAY_NS + 86_400 * SECOND)
                .await
                .expect("no agents")
                .is_empty()
        );
        // First heartbeats ever: a1's came second in its batch (100 s, then 50 s); a3 sent
        // none and "nobody" is unknown, so both are absent; the list is sorted and deduplicated.
        let a2_first = beats
            .iter()
            .find(|beat| beat.agent_id == "a2")
            .map(|beat| beat.time_ns)
            .expect("a2 beats");
        assert_eq!(
            store
                .first_heartbeats(&[
                    "nobody".into(),
                    "a3".into(),
                    "a2".into(),
                    "a1".into(),
                    "a1".into()
                ])
                .await
                .expect("first heartbeats"),
            vec![
                ("a1".to_string(), DAY_NS + 50 * SECOND),
                ("a2".to_string(), a2_first)
            ]
        );
        assert!(
            store
                .first_heartbeats(&[])
                .await
                .expect("no agents")
                .is_empty()
        );

        // ---- agents ----
        let agents = store.agents().await.expect("agents");
        let names: Vec<&str> = agents.iter().map(|agent| agent.agent_id.as_str()).collect();
        assert_eq!(names, ["a1", "a2", "a3"]);
        let a1 = agents.first().expect("a1");
        assert_eq!(a1.last_heartbeat_ns, Some(DAY_NS + 100 * SECOND));
        assert_eq!(a1.last_batch_ns, DAY_NS + 200 * SECOND);
        assert_eq!(
            a1.last_heartbeat.as_ref().map(|beat| beat.time),
            Some(time(100 * SECOND))
        );
        assert_eq!(a1.kernel_drops_total, 6);
        assert!(!a1.any_process_down);
        assert_eq!(a1.capture_drops_total, 16 * 2, "each report counted once");
        let a2 = agents.get(1).expect("a2");
        assert_eq!(a2.last_heartbeat_ns, Some(DAY_NS + 1190 * SECOND));
        assert_eq!(a2.capture_drops_total, 120 * 2);
        let a3 = agents.get(2).expect("a3");
        assert_eq!(a3.last_heartbeat, None);
        assert_eq!(a3.capture_drops_total, 0);

        // ---- final reports for SLA ----
        let customer_agents = ["a1".to_string(), "a2".to_string()];
        let whole_day = (DAY_NS, DAY_NS + 86_400 * SECOND);
        let sla = store
            .final_reports(&customer_agents, DAY_NS, DAY_NS + 1010 * SECOND)
            .await
            .expect("final_reports");
        assert_eq!(sla.len(), 5, "a1's finals only: a2's end at 1010");
        let sla = store
            .final_reports(&customer_agents, DAY_NS, DAY_NS + 1011 * SECOND)
            .await
            .expect("final_reports");
        assert_eq!(sla.len(), 5 + 60);
        assert!(
            sla.iter()
                .all(|row| row.is_final && row.report.totals.is_some())
        );
        assert!(
            store
                .final_reports(&["a2".into()], DAY_NS, DAY_NS + 1000 * SECOND)
                .await
                .expect("none before")
                .is_empty()
        );

        // ---- call aggregates (a2's call-x was folded over three batches) ----
        // Calls are judged on their streams' totals: loss 0.03 %, max jitter 2.5 ms, MOS as
        // in the report. a1: call-0 (streams 0, 1: MOS 3.5, 3.7), call-1 (3.9, 4.1), call-2
        // (4.3); their finals start at 60 s. a2: call-x (60 streams, MOS 2.0..4.4), at 1000 s.
        assert_eq!(
            store
                .call_stats("", &customer_agents, whole_day.0, whole_day.1, 4.0, 1.0)
                .await
                .expect("call_stats"),
            CallStats {
                calls: 4,
                calls_with_mos: 4,
                meeting_mos: 1,
                meeting_loss: 4,
                meeting_both: 1,
                worst_loss_pct: Some(0.03),
            }
        );
        let strict = store
            .call_stats("", &customer_agents, whole_day.0, whole_day.1, 3.0, 0.01)
            .await
            .expect("strict");
        assert_eq!(
            (strict.meeting_mos, strict.meeting_loss, strict.meeting_both),
            (3, 0, 0)
        );
        let calls_in = |from_s: i64, to_s: i64| {
            let store = store.clone();
            let agents = customer_agents.clone();
            async move {
                store
                    .call_stats(
                        "",
                        &agents,
                        DAY_NS + from_s * SECOND,
                        DAY_NS + to_s * SECOND,
                        4.0,
                        1.0,
                    )
                    .await
                    .expect("call_stats")
                    .calls
            }
        };
        assert_eq!(
            calls_in(0, 60).await,
            0,
            "a call belongs where its last final starts"
        );
        assert_eq!(calls_in(0, 61).await, 3);
        assert_eq!(calls_in(61, 86_400).await, 1);
        assert_eq!(
            store
                .call_stats("", &[], whole_day.0, whole_day.1, 4.0, 1.0)
                .await
                .expect("no agents"),
            CallStats::default()
        );
        let low_mos = store
            .calls_worst(
                "",
                &customer_agents,
                whole_day.0,
                whole_day.1,
                Worst::MosBelow(4.0),
                10,
            )
            .await
            .expect("low MOS");
        let keys: Vec<&str> = low_mos.iter().map(|call| call.call_key.as_str()).collect();
        assert_eq!(keys, ["call-x", "call-0", "call-1"], "lowest MOS first");
        assert_eq!(
            low_mos.first(),
            Some(&CallAggregate {
                scope: String::new(),
                agent_id: "a2".into(),
                call_key: "call-x".into(),
                call_id: Some("call-x".into()),
                streams: 60,
                first_start_ns: DAY_NS + 1000 * SECOND,
                last_end_ns: DAY_NS + 1010 * SECOND,
                last_start_ns: DAY_NS + 1000 * SECOND,
                min_mos: Some(2.0),
                max_loss_pct: 0.03,
                max_jitter_ms: Some(2.5),
                mos_stream_id: Some(format!("{:016x}", 1000)),
                mos_codec: Some("PCMU".into()),
            })
        );
        assert_eq!(
            low_mos.get(1).map(|call| (call.streams, call.min_mos)),
            Some((2, Some(3.5)))
        );
        let high_loss = store
            .calls_worst(
                "",
                &customer_agents,
                whole_day.0,
                whole_day.1,
                Worst::LossAbove(0.01),
                10,
            )
            .await
            .expect("high loss");
        let keys: Vec<&str> = high_loss
            .iter()
            .map(|call| call.call_key.as_str())
            .collect();
        assert_eq!(
            keys,
            ["call-0", "call-1", "call-2", "call-x"],
            "ties by agent, key"
        );
        assert!(
            store
                .calls_worst(
                    "",
                    &customer_agents,
                    whole_day.0,
                    whole_day.1,
                    Worst::LossAbove(0.03),
                    10
                )
                .await
                .expect("none above")
                .is_empty()
        );
        assert_eq!(
            store
                .calls_worst(
                    "",
                    &customer_agents,
                    whole_day.0,
                    whole_day.1,
                    Worst::MosBelow(4.0),
                    1
                )
                .await
                .expect("limited")
                .len(),
            1
        );
        // The same calls in the customer report's groups: MOS 2.0, 3.5, 3.9, 4.3, all at
        // 0.03 % loss, every lowest MOS set by a PCMU stream. MOS edges 3.0 and 4.0 make bins
        // [..3.0) [3.0, 4.0) [4.0..); loss edges 0.01 and 1.0 put 0.03 in bin 1; a call meets
        // 3.9 at 3.9 and 4.3.
        let binning = CallBinning {
            mos_edges: &[3.0, 4.0],
            loss_edges: &[0.01, 1.0],
            mos_min: 3.9,
        };
        let group = |mos_bin, calls, meeting_mos, mos: (f64, f64)| CallBin {
            mos_bin: Some(mos_bin),
            loss_bin: 1,
            mos_codec: Some("PCMU".into()),
            calls,
            meeting_mos,
            mos_range: Some(mos),
            loss_range: (0.03, 0.03),
        };
        assert_eq!(
            store
                .call_bins("", &customer_agents, whole_day.0, whole_day.1, &binning)
                .await
                .expect("bins"),
            [
                group(0, 1, 0, (2.0, 2.0)),
                group(1, 2, 1, (3.5, 3.9)),
                group(2, 1, 1, (4.3, 4.3))
            ]
        );
        // a1's finals start at 60 s, a2's at 1000 s: [60 s, 61 s) holds a1's three only.
        assert_eq!(
            store
                .call_bins(
                    "",
                    &customer_agents,
                    DAY_NS + 60 * SECOND,
                    DAY_NS + 61 * SECOND,
                    &binning
                )
                .await
                .expect("a1's bins"),
            [group(1, 2, 1, (3.5, 3.9)), group(2, 1, 1, (4.3, 4.3))]
        );
        assert!(
            store
                .call_bins(
                    "other",
                    &customer_agents,
                    whole_day.0,
                    whole_day.1,
                    &binning
                )
                .await
                .expect("another scope")
                .is_empty()
        );
        // Ranked reads: in [3.5, 3.9] ∪ [4.3, 4.3] the calls are 3.5, 3.9, 4.3 in order, so
        // places 2 and 3 are 3.9 and 4.3; 2.0 is outside every range; a 4th place is none.
        assert_eq!(
            store
                .call_value_positions(
                    "",
                    &customer_agents,
                    whole_day.0,
                    whole_day.1,
                    CallValue::MinMos,
                    &[(3.5, 3.9), (4.3, 4.3)],
                    &[2, 3, 4]
                )
                .await
                .expect("mos places"),
            [3.9, 4.3]
        );
        assert_eq!(
            store
                .call_value_positions(
                    "",
                    &customer_agents,
                    whole_day.0,
                    whole_day.1,
                    CallValue::MinMos,
                    &[(0.0, 3.6)],
                    &[1, 2]
                )
                .await
                .expect("lowest two"),
            [2.0, 3.5]
        );
        assert_eq!(
            store
                .call_value_positions(
                    "",
                    &customer_agents,
                    whole_day.0,
                    whole_day.1,
                    CallValue::MaxLossPct,
                    &[(0.0, 1.0)],
                    &[4]
                )
                .await
                .expect("loss place"),
            [0.03]
        );
        // The lowest MOS whatever the threshold (the report's worst calls): below +∞.
        let lowest: Vec<(String, Option<f64>)> = store
            .calls_worst(
                "",
                &customer_agents,
                whole_day.0,
                whole_day.1,
                Worst::MosBelow(f64::INFINITY),
                3,
            )
            .await
            .expect("lowest")
            .into_iter()
            .map(|call| (call.call_key, call.min_mos))
            .collect();
        assert_eq!(
            lowest,
            [
                ("call-x".to_string(), Some(2.0)),
                ("call-0".to_string(), Some(3.5)),
                ("call-1".to_string(), Some(3.9))
            ]
        );
        // Every call of an agent, a page at a time: a1's three calls share one instant
        // (their finals start at 60 s), so the cursor's key decides.
        let page = |after: Option<(i64, String)>, limit: u32| {
            let store = store.clone();
            async move {
                store
                    .calls_page("", "a1", whole_day.0, whole_day.1, after, limit)
                    .await
                    .expect("calls_page")
            }
        };
        let first = page(None, 2).await;
        let keys: Vec<&str> = first.iter().map(|c| c.call_key.as_str()).collect();
        assert_eq!(keys, ["call-0", "call-1"]);
        assert_eq!(
            first.first().map(|c| (
                c.mos_stream_id.as_deref(),
                c.mos_codec.as_deref(),
                c.min_mos
            )),
            Some((
                Some(format!("{:016x}", 0).as_str()),
                Some("PCMU"),
                Some(3.5)
            )),
            "the stream that set the call's MOS"
        );
        let cursor = first.last().map(|c| (c.last_start_ns, c.call_key.clone()));
        let rest = page(cursor.clone(), 2).await;
        let keys: Vec<&str> = rest.iter().map(|c| c.call_key.as_str()).collect();
        assert_eq!(keys, ["call-2"]);
        assert!(
            page(
                rest.last().map(|c| (c.last_start_ns, c.call_key.clone())),
                2
            )
            .await
            .is_empty()
        );
        assert!(
            store
                .calls_page("", "a1", whole_day.0, DAY_NS + 60 * SECOND, None, 10)
                .await
                .expect("before the finals")
                .is_empty(),
            "the period bounds last_start_ns"
        );
        let finals = store
            .call_finals("a1", "call-0")
            .await
            .expect("call finals");
        assert_eq!(
            finals
                .iter()
                .map(|row| row.stream_id.as_str())
                .collect::<Vec<_>>(),
            [format!("{:016x}", 0), format!("{:016x}", 1)]
        );
        assert!(
            store
                .call_finals("a2", "call-0")
                .await
                .expect("other agent")
                .is_empty()
        );

        // ---- tokens ----
        store
            .token_insert("t1", "hash-1", "agent", 10)
            .await
            .expect("insert t1");
        store
            .token_insert("t2", "hash-2", "customer:acme", 20)
            .await
            .expect("insert t2");
        assert!(
            store.token_insert("t3", "hash-1", "ops", 30).await.is_err(),
            "hashes are unique"
        );
        assert!(
            store.token_insert("t1", "hash-9", "ops", 30).await.is_err(),
            "ids are unique"
        );
        assert_eq!(
            store.token_by_hash("hash-2").await.expect("find"),
            Some(TokenRow {
                id: "t2".into(),
                role: "customer:acme".into(),
                agents: None,
                created_ns: 20,
                last_used_ns: None,
                revoked: false
            })
        );
        // An agent token bound to its agents keeps its binding; last use is written at most
        // once per interval.
        store
            .token_insert_bound("t4", "hash-4", "agent", Some("fra-*,nyc-1"), 40)
            .await
            .expect("insert t4");
        assert!(store.token_touch("t4", 1_000, 940).await.expect("touch"));
        assert!(
            !store.token_touch("t4", 1_010, 950).await.expect("touch"),
            "used at 1000, after 950: no second write"
        );
        assert!(store.token_touch("t4", 1_100, 1_040).await.expect("touch"));
        assert_eq!(
            store.token_by_hash("hash-4").await.expect("find t4"),
            Some(TokenRow {
                id: "t4".into(),
                role: "agent".into(),
                agents: Some("fra-*,nyc-1".into()),
                created_ns: 40,
                last_used_ns: Some(1_100),
                revoked: false
            })
        );
        assert!(
            !store
                .token_touch("missing", 1, 0)
                .await
                .expect("touch missing")
        );
        assert!(store.token_revoke("t4").await.expect("revoke t4"));
        assert_eq!(store.token_by_hash("nope").await.expect("find"), None);
        assert!(store.token_revoke("t1").await.expect("revoke"));
        assert!(!store.token_revoke("missing").await.expect("revoke missing"));
        let tokens = store.token_list().await.expect("list");
        assert_eq!(tokens.len(), 3);
        assert_eq!(
            tokens
                .iter()
                .map(|token| (token.id.as_str(), token.revoked, token.agents.as_deref()))
                .collect::<Vec<_>>(),
            [
                ("t1", true, None),
                ("t2", false, None),
                ("t4", true, Some("fra-*,nyc-1"))
            ]
        );
        assert_eq!(
            store
                .token_by_hash("hash-1")
                .await
                .expect("find revoked")
                .map(|token| token.revoked),
            Some(true)
        );

        // ---- retention ----
        let deleted = store
            .delete_reports_before(DAY_NS + 1000 * SECOND)
            .await
            .expect("retention");
        let old = everything
            .iter()
            .filter(|row| row.window_end_ns < DAY_NS + 1000 * SECOND)
            .count();
        assert_eq!(deleted, old as u64);
        let left = store
            .streams(&all(0, 86_400))
            .await
            .expect("after retention");
        assert_eq!(left.len(), everything.len() - old);
        assert!(
            left.iter()
                .all(|row| row.window_end_ns >= DAY_NS + 1000 * SECOND)
        );
        assert_eq!(
            store
                .heartbeats(&["a1".into()], DAY_NS, DAY_NS + 86_400 * SECOND)
                .await
                .expect("heartbeats kept")
                .len(),
            2
        );
        assert_eq!(store.token_list().await.expect("tokens kept").len(), 3);
        assert_eq!(
            store
                .call_stats("", &customer_agents, whole_day.0, whole_day.1, 4.0, 1.0)
                .await
                .expect("aggregates kept")
                .calls,
            4
        );
        // Reports deleted by retention are forgotten (heartbeats are kept, so they still
        // dedupe); reports still stored dedupe whatever batch brings them.
        assert_eq!(
            store.ingest(&batch_a, DAY_NS).await.expect("re-ingest"),
            IngestOutcome {
                duplicate_heartbeats: 2,
                ..stored(10, 0)
            }
        );
        let kept = report("a2", 1000, Some("call-x"), 1000, 1010, true, Some(2.0));
        assert_eq!(
            store
                .ingest(&batch("batch-a2-late", "a2", vec![kept], vec![]), DAY_NS)
                .await
                .expect("a2 still known"),
            duplicates(1, 0)
        );
        assert_eq!(store.delete_reports_before(0).await.expect("no-op"), 0);

        // ---- jitter histograms: hourly rollups, single windows, retention ----
        let hist = |value_us: u64, count: u64| {
            let mut h = histogram::new_jitter_histogram();
            h.record_n(value_us, count).expect("in range");
            histogram::HistogramEncoder::new()
                .encode(&h)
                .expect("encodes")
        };
        let with = |mut r: StreamReport, samples: u64, text: Option<String>, drops: u64| {
            r.jitter_samples = samples;
            r.jitter_histogram = text;
            r.capture_drops = drops;
            r
        };
        // Hour 1 (3600 s..): 100 packets at 2 ms, 100 at 40 ms, then (second batch) 100 at
        // 2 ms in a window with capture drops, and a window of 7 samples without histogram.
        // Hour 2: 50 packets at 12.5 ms.
        let first = vec![
            with(
                report("h1", 5000, None, 3600, 3610, false, None),
                100,
                Some(hist(2_000, 100)),
                0,
            ),
            with(
                report("h1", 5000, None, 3610, 3620, false, None),
                100,
                Some(hist(40_000, 100)),
                0,
            ),
            with(
                report("h1", 5001, None, 7200, 7210, false, None),
                50,
                Some(hist(12_500, 50)),
                0,
            ),
        ];
        let second = vec![
            with(
                report("h1", 5002, None, 3620, 3630, false, None),
                100,
                Some(hist(2_000, 100)),
                3,
            ),
            with(
                report("h1", 5003, None, 3630, 3640, false, None),
                7,
                None,
                0,
            ),
        ];
        store
            .ingest(&batch("h1-1", "h1", first, vec![]), DAY_NS + 7300 * SECOND)
            .await
            .expect("h1-1");
        store
            .ingest(&batch("h1-2", "h1", second, vec![]), DAY_NS + 7300 * SECOND)
            .await
            .expect("h1-2");
        let hour = |h: i64| DAY_NS + h * 3600 * SECOND;
        let check_hours = |hours: Vec<JitterHour>| {
            let summary: Vec<(i64, u64, u64, u64, u64)> = hours
                .iter()
                .map(|h| {
                    (
                        h.hour_ns,
                        h.samples,
                        h.windows,
                        h.windows_without_histogram,
                        h.windows_with_drops,
                    )
                })
                .collect();
            assert_eq!(summary, [(hour(1), 300, 4, 1, 1), (hour(2), 50, 1, 0, 0)]);
            let merged =
                histogram::decode_jitter_histogram_bytes(&hours[0].histogram).expect("decodes");
            assert_eq!(merged.len(), 300);
            // 200 at 2,000 µs (bucket 2,000..2,007 → 2.004 ms), 100 at 40,000 µs (→ 40.064 ms).
            assert_eq!(histogram::quantile_ms(&merged, 0.5), Some(2.004));
            assert_eq!(histogram::quantile_ms(&merged, 0.9), Some(40.064));
        };
        let h1 = ["h1".to_string()];
        check_hours(
            store
                .jitter_hours("", &h1, hour(0), hour(3))
                .await
                .expect("hours"),
        );
        assert_eq!(
            store
                .jitter_hours("", &h1, hour(2), hour(3))
                .await
                .expect("hour 2")
                .len(),
            1
        );
        let windows = store
            .window_histograms(&h1, DAY_NS + 3600 * SECOND, DAY_NS + 3625 * SECOND)
            .await
            .expect("windows");
        let mut seen: Vec<(u64, u64, bool)> = windows
            .iter()
            .map(|w| (w.jitter_samples, w.capture_drops, w.histogram.is_some()))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, [(100, 0, true), (100, 0, true), (100, 3, true)]);
        assert!(windows.iter().all(|w| w.agent_id == "h1"
            && (DAY_NS + 3600 * SECOND..DAY_NS + 3625 * SECOND).contains(&w.window_start_ns)));
        // Bad histograms are refused, naming the field, and nothing of the batch is kept.
        for (text, samples, why) in [
            ("AAAA".to_string(), 5, "jitter_histogram"),
            (hist(2_000, 10), 5, "more than jitter_samples"),
        ] {
            let bad = vec![
                with(
                    report("h1", 5004, None, 3650, 3660, false, None),
                    5,
                    Some(hist(1_000, 5)),
                    0,
                ),
                with(
                    report("h1", 5005, None, 3660, 3670, false, None),
                    samples,
                    Some(text),
                    0,
                ),
            ];
            let error = store
                .ingest(&batch("h1-bad", "h1", bad, vec![]), DAY_NS + 7300 * SECOND)
                .await
                .expect_err("bad histogram");
            assert!(matches!(error, StoreError::Invalid(_)), "{error}");
            assert!(
                error.to_string().contains("reports[1].jitter_histogram"),
                "{error}"
            );
            assert!(error.to_string().contains(why), "{error}");
        }
        check_hours(
            store
                .jitter_hours("", &h1, hour(0), hour(3))
                .await
                .expect("unchanged"),
        );
        // Retention drops the windows and keeps the rollups.
        store
            .delete_reports_before(DAY_NS + 86_400 * SECOND)
            .await
            .expect("retention");
        assert!(
            store
                .window_histograms(&h1, DAY_NS, DAY_NS + 86_400 * SECOND)
                .await
                .expect("windows gone")
                .is_empty()
        );
        check_hours(
            store
                .jitter_hours("", &h1, hour(0), hour(3))
                .await
                .expect("rollups kept"),
        );
        // ---- scopes: the aggregates of subnet-narrowed customers ----
        let mut in_scope = report("h2", 6000, Some("s-1"), 7200, 7210, true, Some(3.0));
        in_scope.jitter_samples = 10;
        in_scope.jitter_histogram = Some(hist(5_000, 10));
        let mut outside = report("h2", 6001, Some("s-2"), 7200, 7210, true, Some(4.4));
        outside.jitter_samples = 20;
        outside.jitter_histogram = Some(hist(1_000, 20));
        let scopes = vec![vec!["acme".to_string()], vec![]];
        store
            .ingest_scoped(
                &batch("h2-1", "h2", vec![in_scope, outside], vec![]),
                DAY_NS + 7300 * SECOND,
                &scopes,
            )
            .await
            .expect("scoped ingest");
        let h2 = ["h2".to_string()];
        let stats = |scope: &'static str| {
            let store = store.clone();
            let agents = h2.clone();
            async move {
                store
                    .call_stats(scope, &agents, whole_day.0, whole_day.1, 4.0, 1.0)
                    .await
                    .expect("stats")
            }
        };
        assert_eq!((stats("").await.calls, stats("").await.meeting_mos), (2, 1));
        assert_eq!(
            (stats("acme").await.calls, stats("acme").await.meeting_mos),
            (1, 0)
        );
        assert_eq!(stats("globex").await.calls, 0);
        let worst = store
            .calls_worst(
                "acme",
                &h2,
                whole_day.0,
                whole_day.1,
                Worst::MosBelow(4.0),
                10,
            )
            .await
            .expect("worst");
        assert_eq!(
            worst
                .iter()
                .map(|c| (c.scope.as_str(), c.call_key.as_str()))
                .collect::<Vec<_>>(),
            [("acme", "s-1")]
        );
        let samples = |hours: Vec<JitterHour>| hours.iter().map(|h| h.samples).collect::<Vec<_>>();
        assert_eq!(
            samples(
                store
                    .jitter_hours("", &h2, hour(0), hour(3))
                    .await
                    .expect("all")
            ),
            [30]
        );
        assert_eq!(
            samples(
                store
                    .jitter_hours("acme", &h2, hour(0), hour(3))
                    .await
                    .expect("acme")
            ),
            [10]
        );
        // A scope is registered once per set of subnets; a change restarts it.
        assert_eq!(
            store
                .register_scope("acme", "203.0.113.0/24", 100)
                .await
                .expect("new"),
            100
        );
        assert_eq!(
            store
                .register_scope("acme", "203.0.113.0/24", 200)
                .await
                .expect("same"),
            100
        );
        assert_eq!(
            store
                .scope_since("acme", "203.0.113.0/24")
                .await
                .expect("since"),
            Some(100)
        );
        assert_eq!(
            store
                .register_scope("acme", "198.51.100.0/24", 300)
                .await
                .expect("changed"),
            300
        );
        assert_eq!(
            store
                .scope_since("acme", "203.0.113.0/24")
                .await
                .expect("old"),
            None
        );
        assert_eq!(
            store
                .scope_since("acme", "198.51.100.0/24")
                .await
                .expect("now"),
            Some(300)
        );
        store
            .register_scope("globex", "10.0.0.0/8", 400)
            .await
            .expect("globex");
        store
            .retain_scopes(&["acme".to_string()])
            .await
            .expect("retain");
        assert_eq!(
            store
                .scope_since("acme", "198.51.100.0/24")
                .await
                .expect("kept"),
            Some(300)
        );
        assert_eq!(
            store
                .scope_since("globex", "10.0.0.0/8")
                .await
                .expect("forgotten"),
            None
        );
        store.retain_scopes(&[]).await.expect("retain none");
        assert_eq!(
            store
                .scope_since("acme", "198.51.100.0/24")
                .await
                .expect("all forgotten"),
            None
        );
        assert_eq!(
            store.scope_since("globex", "").await.expect("unknown"),
            None
        );

        records_once(store).await;
        calls::tests::suite(store).await;

        store
            .refresh_statistics()
            .await
            .expect("planner statistics");
        assert_eq!(
            store
                .jitter_hours("", &h1, hour(0), hour(3))
                .await
                .expect("after")
                .len(),
            2
        );
    }

    // ---- SQLite ----

    fn sqlite_url(dir: &tempfile::TempDir) -> String {
        format!("sqlite:{}", dir.path().join("voqa.db").display())
    }

    /// A jitter histogram of `count` packets at `value_us`, as agents encode it.
    fn hist_text(value_us: u64, count: u64) -> String {
        let mut h = histogram::new_jitter_histogram();
        h.record_n(value_us, count).expect("in range");
        histogram::HistogramEncoder::new()
            .encode(&h)
            .expect("encodes")
    }

    /// Everything ingest derives for `agent` over the fixture day, to compare before and after.
    #[derive(Debug, PartialEq)]
    struct Derived {
        rows: usize,
        heartbeats: usize,
        calls: CallStats,
        /// (call key, streams folded in) of every call, in key order.
        call_streams: Vec<(String, u64)>,
        /// (scope, samples, windows, windows without histogram, windows with drops) per hour.
        hours: Vec<(String, u64, u64, u64, u64)>,
        capture_drops_total: u64,
        last_heartbeat_ns: Option<i64>,
    }

    async fn derived(store: &Store, agent: &str, scopes: &[&str]) -> Derived {
        let agents = [agent.to_string()];
        let (from, to) = (DAY_NS, DAY_NS + 86_400 * SECOND);
        let rows = store
            .streams(&StreamQuery {
                agent: Some(agent.to_string()),
                ..all(0, 86_400)
            })
            .await
            .expect("streams")
            .len();
        let heartbeats = store
            .heartbeats(&agents, from, to)
            .await
            .expect("heartbeats")
            .len();
        let calls = store
            .call_stats("", &agents, from, to, 4.0, 1.0)
            .await
            .expect("call_stats");
        let mut call_streams: Vec<(String, u64)> = store
            .calls_worst("", &agents, from, to, Worst::LossAbove(-1.0), MAX_PAGE)
            .await
            .expect("calls")
            .into_iter()
            .map(|call| (call.call_key, call.streams))
            .collect();
        call_streams.sort();
        let mut hours = Vec::new();
        for scope in scopes {
            for hour in store
                .jitter_hours(scope, &agents, from, to)
                .await
                .expect("hours")
            {
                hours.push((
                    (*scope).to_string(),
                    hour.samples,
                    hour.windows,
                    hour.windows_without_histogram,
                    hour.windows_with_drops,
                ));
            }
        }
        let row = store
            .agents()
            .await
            .expect("agents")
            .into_iter()
            .find(|row| row.agent_id == agent);
        Derived {
            rows,
            heartbeats,
            calls,
            call_streams,
            hours,
            capture_drops_total: row.as_ref().map_or(0, |row| row.capture_drops_total),
            last_heartbeat_ns: row.and_then(|row| row.last_heartbeat_ns),
        }
    }

    /// Per-record idempotency (part of the shared suite): reports and heartbeats re-sent in
    /// other batches are stored once and counted once in every aggregate, scopes included.
    async fn records_once(store: &Store) {
        // Two calls of two streams; an interval and a final report per stream, with
        // histograms; two heartbeats. The first stream's reports also count for "acme".
        let mut reports = Vec::new();
        for stream in 0..4u32 {
            let call = format!("once-{}", stream / 2);
            for (start, end, is_final) in [(0, 60, false), (60, 90, true)] {
                let mut r = report(
                    "r1",
                    7000 + stream,
                    Some(&call),
                    start,
                    end,
                    is_final,
                    Some(3.8),
                );
                r.jitter_samples = 100;
                r.jitter_histogram = Some(hist_text(3_000, 100));
                reports.push(r);
            }
        }
        let beats = vec![heartbeat("r1", 30, false, 1), heartbeat("r1", 60, false, 2)];
        let scopes = vec![vec!["acme".to_string()], vec!["acme".to_string()]];
        let first = batch("once-1", "r1", reports.clone(), beats.clone());
        assert_eq!(
            store
                .ingest_scoped(&first, DAY_NS, &scopes)
                .await
                .expect("first"),
            stored(8, 2)
        );
        let once = derived(store, "r1", &["", "acme"]).await;
        assert_eq!(once.rows, 8);
        assert_eq!(once.heartbeats, 2);
        assert_eq!((once.calls.calls, once.calls.meeting_mos), (2, 0));
        assert_eq!(
            once.call_streams,
            [("once-0".to_string(), 2), ("once-1".to_string(), 2)]
        );
        assert_eq!(
            once.hours,
            [
                (String::new(), 800, 8, 0, 8),
                ("acme".to_string(), 200, 2, 0, 2)
            ]
        );
        assert_eq!(once.capture_drops_total, 8 * 2);
        assert_eq!(once.last_heartbeat_ns, Some(DAY_NS + 60 * SECOND));

        // The same records in another batch (and in reverse order): nothing new anywhere.
        let mut reversed = reports.clone();
        reversed.reverse();
        let second = batch("once-2", "r1", reversed, beats.clone());
        let outcome = store
            .ingest_scoped(&second, DAY_NS, &scopes)
            .await
            .expect("second");
        assert_eq!(
            (outcome.clone(), outcome.status()),
            (duplicates(8, 2), "duplicate")
        );
        assert_eq!(derived(store, "r1", &["", "acme"]).await, once);

        // A batch that partly overlaps: two stored reports and one stored heartbeat, plus a
        // new stream's two reports (a third call) and a new heartbeat. Only those count.
        let mut overlap = vec![reports[0].clone(), reports[7].clone()];
        for (start, end, is_final) in [(0, 60, false), (60, 90, true)] {
            let mut r = report("r1", 7100, Some("once-2"), start, end, is_final, Some(4.4));
            r.jitter_samples = 100;
            r.jitter_histogram = Some(hist_text(3_000, 100));
            overlap.push(r);
        }
        let third = batch(
            "once-3",
            "r1",
            overlap,
            vec![beats[1].clone(), heartbeat("r1", 90, true, 3)],
        );
        assert_eq!(
            store.ingest(&third, DAY_NS).await.expect("third"),
            IngestOutcome {
                duplicate_reports: 2,
                duplicate_heartbeats: 1,
                ..stored(2, 1)
            }
        );
        let after = derived(store, "r1", &["", "acme"]).await;
        assert_eq!(after.rows, 10);
        assert_eq!(after.heartbeats, 3);
        assert_eq!((after.calls.calls, after.calls.meeting_mos), (3, 1));
        assert_eq!(
            after.call_streams,
            [
                ("once-0".to_string(), 2),
                ("once-1".to_string(), 2),
                ("once-2".to_string(), 1)
            ]
        );
        assert_eq!(
            after.hours,
            [
                (String::new(), 1000, 10, 0, 10),
                ("acme".to_string(), 200, 2, 0, 2)
            ]
        );
        assert_eq!(after.capture_drops_total, 10 * 2);
        assert_eq!(after.last_heartbeat_ns, Some(DAY_NS + 90 * SECOND));

        // A repeated batch id with different content is not lost: its new record is stored.
        let late = batch(
            "once-1",
            "r1",
            vec![report("r1", 7200, None, 100, 110, false, Some(4.0))],
            vec![],
        );
        assert_eq!(
            store.ingest(&late, DAY_NS).await.expect("late"),
            stored(1, 0)
        );
        assert_eq!(derived(store, "r1", &[""]).await.rows, 11);
    }

    /// Batches for agent `cc` whose records overlap their neighbours': batch `k` holds the
    /// reports of streams k..k+4 (an interval and a final each, one call per stream pair) and
    /// heartbeats at k..k+2 s.
    fn overlapping_batches(count: u32) -> Vec<Batch> {
        (0..count)
            .map(|k| {
                let reports = (k..k + 4)
                    .flat_map(|stream| {
                        let call = format!("cc-{}", stream / 2);
                        [
                            report("cc", stream, Some(&call), 0, 60, false, Some(4.2)),
                            report("cc", stream, Some(&call), 60, 90, true, Some(4.2)),
                        ]
                    })
                    .collect();
                let beats = (k..k + 2)
                    .map(|at| heartbeat("cc", i64::from(at), false, 0))
                    .collect();
                batch(&format!("cc-{k}"), "cc", reports, beats)
            })
            .collect()
    }

    /// Concurrent ingest of overlapping batches, alternately through two handles on one
    /// database (two replicas on PostgreSQL): each record is stored and counted once.
    async fn concurrent_overlapping(replica_a: &Store, replica_b: &Store) {
        const BATCHES: u32 = 16;
        let batches = overlapping_batches(BATCHES);
        let mut tasks = Vec::new();
        // Every batch twice, once through each replica, all at the same time.
        for (index, batch) in batches.iter().chain(&batches).enumerate() {
            let store = if index % 2 == 0 {
                replica_a.clone()
            } else {
                replica_b.clone()
            };
            let batch = batch.clone();
            tasks.push(tokio::spawn(async move {
                store.ingest(&batch, DAY_NS).await.expect("ingest")
            }));
        }
        let mut total = IngestOutcome::default();
        for task in tasks {
            let outcome = task.await.expect("task");
            total.reports += outcome.reports;
            total.heartbeats += outcome.heartbeats;
            total.duplicate_reports += outcome.duplicate_reports;
            total.duplicate_heartbeats += outcome.duplicate_heartbeats;
        }
        // Streams 0..BATCHES+3, two reports each; heartbeats at 0..BATCHES+1 s.
        let streams = u64::from(BATCHES + 3);
        let beats = u64::from(BATCHES + 1);
        assert_eq!((total.reports, total.heartbeats), (2 * streams, beats));
        assert_eq!(
            (total.duplicate_reports, total.duplicate_heartbeats),
            (
                2 * 8 * u64::from(BATCHES) - 2 * streams,
                2 * 2 * u64::from(BATCHES) - beats
            )
        );
        for replica in [replica_a, replica_b] {
            let seen = derived(replica, "cc", &[""]).await;
            assert_eq!(seen.rows as u64, 2 * streams);
            assert_eq!(seen.heartbeats as u64, beats);
            // Calls cc-0 .. cc-9: streams 2n and 2n+1.
            assert_eq!(seen.calls.calls, streams.div_ceil(2));
            assert_eq!(
                seen.call_streams.iter().map(|(_, n)| n).sum::<u64>(),
                streams,
                "each final folded once: {:?}",
                seen.call_streams
            );
            assert_eq!(
                seen.hours,
                [(String::new(), 0, 2 * streams, 2 * streams, 2 * streams)]
            );
            assert_eq!(seen.capture_drops_total, 2 * streams * 2);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_concurrent_overlapping_batches_store_each_record_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&sqlite_url(&dir)).await.expect("open");
        // One process per SQLite file: both "replicas" are the one store (its writer task
        // groups the concurrent batches into shared commits).
        concurrent_overlapping(&store, &store.clone()).await;
    }

    /// A database from before per-record keys, holding the same report and heartbeat twice
    /// (re-sent under a new batch id), migrates: the later copies go, the unique keys hold.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_migration_removes_copies_stored_before_record_keys() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("voqa.db");
        {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let mut connection = sqlx::SqliteConnection::connect_with(&options)
                .await
                .expect("connect");
            let mut before = sqlx::migrate!("./migrations/sqlite");
            before.migrations = std::borrow::Cow::Owned(
                before
                    .migrations
                    .iter()
                    .filter(|migration| migration.version < 3)
                    .cloned()
                    .collect(),
            );
            before.run(&mut connection).await.expect("migrations 1-2");
            for (id, json) in [(1, "first"), (2, "second"), (3, "other")] {
                let stream = if id == 3 { "s2" } else { "s1" };
                sqlx::query(
                    "INSERT INTO stream_reports (id, agent_id, stream_id, src, dst, window_start_ns, \
                     window_end_ns, is_final, effective_loss_pct, capture_drops, report) \
                     VALUES (?, 'm', ?, '', '', 0, 10, FALSE, 0.0, 0, ?)",
                )
                .bind(id)
                .bind(stream)
                .bind(json)
                .execute(&mut connection)
                .await
                .expect("report");
            }
            for (id, json) in [(1, "first"), (2, "second")] {
                sqlx::query(
                    "INSERT INTO heartbeats (id, agent_id, time_ns, any_process_down, \
                     kernel_drops_total, heartbeat) VALUES (?, 'm', 5, FALSE, 0, ?)",
                )
                .bind(id)
                .bind(json)
                .execute(&mut connection)
                .await
                .expect("heartbeat");
            }
            connection.close().await.expect("close");
        }
        let store = Store::open(&sqlite_url(&dir)).await.expect("migrate");
        let Store::Sqlite(sqlite) = &store else {
            panic!("sqlite store expected");
        };
        let kept: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, report FROM stream_reports ORDER BY id")
                .fetch_all(&sqlite.reader)
                .await
                .expect("reports");
        assert_eq!(kept, [(1, "first".to_string()), (3, "other".to_string())]);
        let kept: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, heartbeat FROM heartbeats ORDER BY id")
                .fetch_all(&sqlite.reader)
                .await
                .expect("heartbeats");
        assert_eq!(kept, [(1, "first".to_string())]);
        let copy = sqlx::query(
            "INSERT INTO stream_reports (agent_id, stream_id, src, dst, window_start_ns, \
             window_end_ns, is_final, effective_loss_pct, capture_drops, report) \
             VALUES ('m', 's1', '', '', 0, 10, FALSE, 0.0, 0, 'again')",
        )
        .execute(&sqlite.writer)
        .await;
        assert!(copy.is_err(), "the record key is unique");
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&sqlite_url(&dir)).await.expect("open sqlite");
        assert_eq!(store.backend(), "sqlite");
        suite(&store).await;
        store.close().await;
        // Reopening an existing database applies no migration twice.
        let store = Store::open(&sqlite_url(&dir)).await.expect("reopen");
        assert_eq!(
            store.agents().await.expect("agents").len(),
            6,
            "a1, a2, a3, h1, h2 and r1"
        );
    }

    #[tokio::test]
    async fn rejects_unknown_urls() {
        for url in [
            "mysql://x",
            "",
            "sqlite:",
            "sqlite::memory:",
            "postgres://:bad port",
        ] {
            assert!(Store::open(url).await.is_err(), "{url}");
        }
    }

    // ---- PostgreSQL ----

    static SCHEMA_COUNTER: AtomicU32 = AtomicU32::new(0);

    /// Needs the test PostgreSQL (127.0.0.1:5432, trust, database `test`). It runs when
    /// `$VOQA_REQUIRE_POSTGRES` was set at build time (CI; see `build.rs`) or when asked for
    /// with `--ignored`; otherwise `cargo test` reports it as ignored, never as passed. Once
    /// running, an unreachable server is a failure.
    #[cfg_attr(
        not(voqa_require_postgres),
        ignore = "needs PostgreSQL at 127.0.0.1:5432: set VOQA_REQUIRE_POSTGRES=1 or run with --ignored"
    )]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_suite() {
        use sqlx::Connection;
        let options = sqlx::postgres::PgConnectOptions::from_str(POSTGRES_URL).expect("url");
        let mut admin = sqlx::PgConnection::connect_with(&options)
            .await
            .unwrap_or_else(|error| panic!("postgres not reachable at {POSTGRES_URL}: {error}"));
        let schema = format!(
            "voqa_test_{}_{}",
            std::process::id(),
            SCHEMA_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .expect("create schema");
        let schema_options = options.clone().options([("search_path", &schema)]);
        let store = PgStore::open_with(schema_options.clone())
            .await
            .map(Store::Postgres);
        let outcome = match store {
            Ok(store) => {
                assert_eq!(store.backend(), "postgres");
                let run = tokio::spawn({
                    let store = store.clone();
                    async move {
                        suite(&store).await;
                        // A second replica: its own pool on the same database.
                        let replica = PgStore::open_with(schema_options)
                            .await
                            .map(Store::Postgres)
                            .expect("second replica");
                        concurrent_overlapping(&store, &replica).await;
                        replica.close().await;
                    }
                })
                .await;
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

    // ---- durability: SIGKILL after acknowledgements ----

    const CHILD_DB_ENV: &str = "VOQA_STORE_DURABILITY_CHILD_DB";
    const REPORTS_PER_CHILD_BATCH: u32 = 50;

    fn child_batch(index: u32) -> Batch {
        let reports = (0..REPORTS_PER_CHILD_BATCH)
            .map(|stream| {
                report(
                    "dur",
                    index * REPORTS_PER_CHILD_BATCH + stream,
                    Some("call-d"),
                    0,
                    60,
                    stream % 2 == 0,
                    Some(4.1),
                )
            })
            .collect();
        batch(
            &format!("durable-{index:06}"),
            "dur",
            reports,
            vec![heartbeat("dur", i64::from(index % 80_000), false, 0)],
        )
    }

    /// Run by `sqlite_acknowledged_batches_survive_sigkill` in a child process: ingests
    /// batches forever, printing each acknowledged batch id.
    #[tokio::test]
    #[ignore = "child process of sqlite_acknowledged_batches_survive_sigkill"]
    async fn durability_child() {
        use std::io::Write;
        let Some(path) = std::env::var_os(CHILD_DB_ENV) else {
            return;
        };
        let url = format!("sqlite:{}", std::path::Path::new(&path).display());
        let store = Store::open(&url).await.expect("child open");
        for index in 0..1_000_000 {
            let outcome = store
                .ingest(&child_batch(index), DAY_NS)
                .await
                .expect("child ingest");
            assert_eq!(outcome.reports, u64::from(REPORTS_PER_CHILD_BATCH));
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "acked {index}").expect("stdout");
            stdout.flush().expect("flush");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_acknowledged_batches_survive_sigkill() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("durable.db");
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "durability_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB_ENV, &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let acked = tokio::task::spawn_blocking(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(index) = line.strip_prefix("acked ") {
                    acked.push(index.parse::<u32>().expect("index"));
                    if acked.len() == 40 {
                        break;
                    }
                }
            }
            acked
        })
        .await
        .expect("reader");
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        assert_eq!(
            acked.len(),
            40,
            "child acknowledged batches before the kill"
        );

        let store = Store::open(&format!("sqlite:{}", path.display()))
            .await
            .expect("reopen after kill");
        for &index in &acked {
            assert_eq!(
                store
                    .ingest(&child_batch(index), DAY_NS)
                    .await
                    .expect("re-ingest"),
                duplicates(u64::from(REPORTS_PER_CHILD_BATCH), 1),
                "acknowledged batch {index} survived"
            );
        }
        let stored = store.call("call-d").await.expect("reports");
        assert!(stored.len() >= acked.len() * REPORTS_PER_CHILD_BATCH as usize);
        let stored_streams: std::collections::HashSet<&str> =
            stored.iter().map(|row| row.stream_id.as_str()).collect();
        for &index in &acked {
            for stream in 0..REPORTS_PER_CHILD_BATCH {
                let id = format!("{:016x}", index * REPORTS_PER_CHILD_BATCH + stream);
                assert!(stored_streams.contains(id.as_str()), "report {id} survived");
            }
        }
    }

    // ---- throughput (run by hand: cargo test --release -- --ignored --nocapture) ----

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "throughput measurement, not a pass/fail test"]
    async fn sqlite_ingest_throughput() {
        const AGENTS: u32 = 8;
        const BATCHES_PER_AGENT: u32 = 40;
        const REPORTS_PER_BATCH: u32 = 500;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&sqlite_url(&dir)).await.expect("open");
        let mut batches = Vec::new();
        for agent in 0..AGENTS {
            let agent_id = format!("agent-{agent}");
            let mut mine = Vec::new();
            for index in 0..BATCHES_PER_AGENT {
                let reports = (0..REPORTS_PER_BATCH)
                    .map(|n| {
                        let stream = (agent * BATCHES_PER_AGENT + index) * REPORTS_PER_BATCH + n;
                        report(
                            &agent_id,
                            stream,
                            Some(&format!("call-{}", stream / 2)),
                            i64::from(index) * 60,
                            i64::from(index) * 60 + 60,
                            n % 5 == 0,
                            Some(4.2),
                        )
                    })
                    .collect();
                mine.push(batch(
                    &format!("{agent_id}-{index}"),
                    &agent_id,
                    reports,
                    vec![heartbeat(&agent_id, i64::from(index) * 60, false, 0)],
                ));
            }
            batches.push(mine);
        }
        let bytes: usize = batches
            .iter()
            .flatten()
            .flat_map(|batch| &batch.reports)
            .map(|report| serde_json::to_string(report).map_or(0, |json| json.len()))
            .sum();
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for mine in batches {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for batch in &mine {
                    store.ingest(batch, DAY_NS).await.expect("ingest");
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        let elapsed = started.elapsed().as_secs_f64();
        let reports = f64::from(AGENTS * BATCHES_PER_AGENT * REPORTS_PER_BATCH);
        println!(
            "ingested {reports} reports ({:.0} bytes of JSON each) in {elapsed:.2} s: {:.0} reports/s",
            bytes as f64 / reports,
            reports / elapsed
        );
        let started = std::time::Instant::now();
        let finals = store
            .final_reports(
                &(0..AGENTS)
                    .map(|agent| format!("agent-{agent}"))
                    .collect::<Vec<_>>(),
                DAY_NS,
                DAY_NS + 86_400 * SECOND,
            )
            .await
            .expect("finals");
        println!(
            "final_reports: {} rows in {:.3} s",
            finals.len(),
            started.elapsed().as_secs_f64()
        );
    }
}

-- voqa collector store, SQLite flavour. Same tables, columns and indexes as
-- migrations/postgres/0001_init.sql; times are i64 nanoseconds since the Unix epoch.

-- One row per acknowledged agent upload: the idempotency key.
CREATE TABLE batches (
    batch_id     TEXT    PRIMARY KEY NOT NULL,
    agent_id     TEXT    NOT NULL,
    sent_at_ns   INTEGER NOT NULL,
    received_ns  INTEGER NOT NULL,
    reports      INTEGER NOT NULL,
    heartbeats   INTEGER NOT NULL
);
CREATE INDEX batches_received ON batches (received_ns);

-- One row per stream report; `report` is the whole wire StreamReport as JSON, the other
-- columns are copies of the fields that queries filter or order on.
CREATE TABLE stream_reports (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id           TEXT    NOT NULL,
    stream_id          TEXT    NOT NULL,
    call_id            TEXT,
    src                TEXT    NOT NULL,
    dst                TEXT    NOT NULL,
    window_start_ns    INTEGER NOT NULL,
    window_end_ns      INTEGER NOT NULL,
    is_final           BOOLEAN NOT NULL,
    mos                REAL,
    effective_loss_pct REAL    NOT NULL,
    max_jitter_ms      REAL,
    capture_drops      INTEGER NOT NULL,
    report             TEXT    NOT NULL
);
-- Unfiltered paging and retention.
CREATE INDEX stream_reports_end ON stream_reports (window_end_ns, id);
-- Paging of one agent's (or one customer's agents') reports.
CREATE INDEX stream_reports_agent_end ON stream_reports (agent_id, window_end_ns, id);
-- SLA evaluation reads only final reports of a customer's agents over a period: this
-- partial index covers every column of `final_summaries`, in the order it returns them, so
-- a month of calls is one sequential index range per agent, never a lookup per row.
CREATE INDEX stream_reports_final_covering ON stream_reports
    (agent_id, window_end_ns, id, is_final, window_start_ns, stream_id, call_id, src, dst,
     mos, effective_loss_pct, max_jitter_ms)
    WHERE is_final;
CREATE INDEX stream_reports_call ON stream_reports (call_id) WHERE call_id IS NOT NULL;
CREATE INDEX stream_reports_stream ON stream_reports (stream_id);

-- Per-call aggregate of final reports, maintained at ingest and kept by retention: SLA
-- evaluation over a month counts calls here instead of reading every stream's row.
-- call_key is the call id, or `stream:` and the stream id for a stream without one.
CREATE TABLE calls (
    agent_id       TEXT    NOT NULL,
    call_key       TEXT    NOT NULL,
    call_id        TEXT,
    streams        INTEGER NOT NULL,
    first_start_ns INTEGER NOT NULL,
    last_end_ns    INTEGER NOT NULL,
    min_mos        REAL   ,
    max_loss_pct   REAL    NOT NULL,
    max_jitter_ms  REAL   ,
    PRIMARY KEY (agent_id, call_key)
);
CREATE INDEX calls_agent_end ON calls (agent_id, last_end_ns, min_mos, max_loss_pct);

-- Host health, one row per heartbeat; `heartbeat` is the wire Heartbeat as JSON.
CREATE TABLE heartbeats (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id           TEXT    NOT NULL,
    time_ns            INTEGER NOT NULL,
    any_process_down   BOOLEAN NOT NULL,
    kernel_drops_total INTEGER NOT NULL,
    heartbeat          TEXT    NOT NULL
);
CREATE INDEX heartbeats_agent_time ON heartbeats (agent_id, time_ns);
CREATE INDEX heartbeats_time ON heartbeats (time_ns);

-- Latest state per agent, maintained at ingest so the ops view never scans history.
CREATE TABLE agents (
    agent_id            TEXT    PRIMARY KEY NOT NULL,
    last_batch_ns       INTEGER NOT NULL,
    last_heartbeat_ns   INTEGER,
    last_heartbeat      TEXT,
    capture_drops_total INTEGER NOT NULL
);

-- API tokens; only a hash of the secret is stored.
CREATE TABLE tokens (
    id         TEXT    PRIMARY KEY NOT NULL,
    hash       TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL,
    created_ns INTEGER NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);

-- Per-packet jitter histograms (HdrHistogram V2+deflate, see voqa-wire `histogram`), and SLA
-- evaluation from aggregates instead of per-stream rows.
--
-- Aggregates are kept per scope: '' is all of an agent's traffic; a customer id is the traffic
-- of that customer's agents whose media peers lie in its `subnets` (attributed at ingest).

-- The histogram of each report window, for periods that do not start or end on an hour.
ALTER TABLE stream_reports ADD COLUMN jitter_histogram BYTEA;
-- Those edge queries select by window start through stream_reports_agent_end: a window
-- lasts at most MAX_WINDOW (2 h, checked at ingest), so its end bounds its start.
-- SLA evaluation now reads `calls` and `jitter_hourly`; this wide index only slowed ingest.
DROP INDEX stream_reports_final_covering;

-- Report windows rolled up per scope, agent and hour of window start, at ingest: their jitter
-- histograms merged, and counts of windows. Kept by retention, so percentiles over any run of
-- whole hours stay exact after the per-stream rows are gone.
CREATE TABLE jitter_hourly (
    scope      TEXT    NOT NULL,
    agent_id   TEXT    NOT NULL,
    hour_ns    BIGINT  NOT NULL,
    samples    BIGINT  NOT NULL,
    windows    BIGINT  NOT NULL,
    windows_without_histogram BIGINT  NOT NULL,
    windows_with_drops BIGINT  NOT NULL,
    histogram  BYTEA   NOT NULL,
    PRIMARY KEY (scope, agent_id, hour_ns)
);

-- `calls` gains its scope and `last_start_ns`: a call belongs to the period that holds the
-- start of its last final report's window (the rule for single reports); rows from before
-- this migration use their end.
CREATE TABLE calls_scoped (
    scope          TEXT    NOT NULL,
    agent_id       TEXT    NOT NULL,
    call_key       TEXT    NOT NULL,
    call_id        TEXT,
    streams        BIGINT  NOT NULL,
    first_start_ns BIGINT  NOT NULL,
    last_end_ns    BIGINT  NOT NULL,
    last_start_ns  BIGINT  NOT NULL,
    min_mos        DOUBLE PRECISION,
    max_loss_pct   DOUBLE PRECISION NOT NULL,
    max_jitter_ms  DOUBLE PRECISION,
    PRIMARY KEY (scope, agent_id, call_key)
);
INSERT INTO calls_scoped
    SELECT '', agent_id, call_key, call_id, streams, first_start_ns, last_end_ns, last_end_ns,
           min_mos, max_loss_pct, max_jitter_ms
    FROM calls;
DROP TABLE calls;
ALTER TABLE calls_scoped RENAME TO calls;
-- Covers the counts of a period.
CREATE INDEX calls_scope_start ON calls
    (scope, agent_id, last_start_ns, min_mos, max_loss_pct, call_key);
-- The worst calls by MOS and by loss: a range of breaching values, filtered by period inside
-- the index, so choosing the 100 worst reads the breaching calls only.
CREATE INDEX calls_scope_mos ON calls (scope, agent_id, min_mos, last_start_ns, call_key);
CREATE INDEX calls_scope_loss ON calls (scope, agent_id, max_loss_pct, last_start_ns, call_key);

-- Since when each subnet-narrowed customer's scope has been attributed with its current
-- agents and subnets (`signature`); earlier periods are evaluated from the stream reports.
CREATE TABLE scopes (
    customer_id TEXT    PRIMARY KEY NOT NULL,
    signature   TEXT    NOT NULL,
    since_ns    BIGINT  NOT NULL
);

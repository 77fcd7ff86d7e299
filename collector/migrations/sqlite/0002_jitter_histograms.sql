-- Per-packet jitter histograms (HdrHistogram V2+deflate, see voqa-wire `histogram`), and SLA
-- evaluation from aggregates instead of per-stream rows.

-- The histogram of each report window, for periods that do not start or end on an hour.
ALTER TABLE stream_reports ADD COLUMN jitter_histogram BLOB;
-- Those edge queries select by window start.
CREATE INDEX stream_reports_agent_start ON stream_reports (agent_id, window_start_ns);
-- SLA evaluation now reads `calls` and `jitter_hourly`; this wide index only slowed ingest.
DROP INDEX stream_reports_final_covering;

-- Report windows rolled up per agent and hour of window start, at ingest: their jitter
-- histograms merged, and counts of windows. Kept by retention, so percentiles over any run of
-- whole hours stay exact after the per-stream rows are gone.
CREATE TABLE jitter_hourly (
    agent_id   TEXT    NOT NULL,
    hour_ns    INTEGER NOT NULL,
    samples    INTEGER NOT NULL,
    windows    INTEGER NOT NULL,
    windows_without_histogram INTEGER NOT NULL,
    windows_with_drops INTEGER NOT NULL,
    histogram  BLOB    NOT NULL,
    PRIMARY KEY (agent_id, hour_ns)
);

-- A call belongs to the period that holds the start of its last final report's window (the
-- same rule as for single reports); rows from before this migration use their end.
ALTER TABLE calls ADD COLUMN last_start_ns INTEGER NOT NULL DEFAULT 0;
UPDATE calls SET last_start_ns = last_end_ns;
DROP INDEX calls_agent_end;
-- Covers the counts and the choice of the worst calls (call_key breaks ties).
CREATE INDEX calls_agent_start ON calls (agent_id, last_start_ns, min_mos, max_loss_pct, call_key);

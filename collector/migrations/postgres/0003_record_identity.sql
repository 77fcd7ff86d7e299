-- Idempotency per record, not per batch: each stream report is stored once by its natural key
-- (agent, stream, window start, final flag; `StreamReport::record_id` on the wire) and each
-- heartbeat once by (agent, time), whatever batch it arrives in. Ingest inserts with
-- ON CONFLICT DO NOTHING and adds only the rows it inserted to the aggregates; `batches`
-- stays as a log of uploads.
--
-- Copies stored before this migration (the same records re-sent under a new batch_id) are
-- deleted, keeping the first one stored (lowest id). The aggregates they were already counted
-- in (`calls`, `jitter_hourly`, `agents.capture_drops_total`) are left as they are: retention
-- may have deleted the rows they were built from, so they cannot be recomputed here.
DELETE FROM stream_reports WHERE id NOT IN (
    SELECT MIN(id) FROM stream_reports
    GROUP BY agent_id, stream_id, window_start_ns, is_final
);
CREATE UNIQUE INDEX stream_reports_record
    ON stream_reports (agent_id, stream_id, window_start_ns, is_final);

DELETE FROM heartbeats WHERE id NOT IN (
    SELECT MIN(id) FROM heartbeats GROUP BY agent_id, time_ns
);
-- The unique index serves the uptime queries that heartbeats_agent_time served.
CREATE UNIQUE INDEX heartbeats_record ON heartbeats (agent_id, time_ns);
DROP INDEX heartbeats_agent_time;

-- Session disconnect delay (RFC 6076 §4.4) in the hourly call counts: calls with an SDD (ended
-- by a BYE whose final response the agent saw, `bye_response` in the record), its sum, its
-- histogram on the SRD's bucket edges (sla::kpis::SRD_EDGES_MS) and its maximum (merged by
-- maximum, every other column by sum). Hours counted before this migration have 0 calls with
-- an SDD: their records carried no BYE response time.
ALTER TABLE call_hourly ADD COLUMN sdd_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_sum_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b00 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b01 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b02 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b03 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b04 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b05 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b06 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b07 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b08 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b09 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b10 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b11 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b12 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b13 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b14 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b15 BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_max_ms BIGINT NOT NULL DEFAULT 0;

-- Session disconnect delay (RFC 6076 §4.4) in the hourly call counts: calls with an SDD (ended
-- by a BYE whose final response the agent saw, `bye_response` in the record), its sum, its
-- histogram on the SRD's bucket edges (sla::kpis::SRD_EDGES_MS) and its maximum (merged by
-- maximum, every other column by sum). Hours counted before this migration have 0 calls with
-- an SDD: their records carried no BYE response time.
ALTER TABLE call_hourly ADD COLUMN sdd_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_sum_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b00 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b01 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b02 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b03 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b04 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b05 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b06 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b07 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b08 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b09 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b10 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b11 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b12 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b13 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b14 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_b15 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_max_ms INTEGER NOT NULL DEFAULT 0;

-- Session disconnect delay (RFC 6076 §4.4) in the hourly call counts: calls with an SDD (ended
-- by a BYE whose final response the agent saw, `bye_response` in the record) and its sum, both
-- merged by sum: the KPI is their mean. Hours counted before this migration have 0 calls with
-- an SDD: their records carried no BYE response time.
ALTER TABLE call_hourly ADD COLUMN sdd_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE call_hourly ADD COLUMN sdd_sum_ms INTEGER NOT NULL DEFAULT 0;

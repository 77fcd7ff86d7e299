-- Monthly reports mailed to customers (issue 14 item 6): one row per customer and period
-- (YYYY-MM of the customer's zone), so that a month is sent once whatever restarts or
-- replicas there are. A sender claims the row (state 'sending', claimed_until_ns its lease,
-- claimed_by its random id) with one conditional UPDATE, sends, then marks it 'sent' or
-- 'failed' with the error and the time of the next attempt; a claim whose holder died is taken
-- over once its lease has passed. sha256: the attached report's provenance hash.
CREATE TABLE report_sends (
    customer_id TEXT NOT NULL,
    period TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_ns INTEGER NOT NULL,
    claimed_until_ns INTEGER,
    claimed_by TEXT,
    created_ns INTEGER NOT NULL,
    sent_ns INTEGER,
    recipients TEXT,
    attachment TEXT,
    report_sha256 TEXT,
    PRIMARY KEY (customer_id, period)
);
-- The scheduler's question each cycle: which unsent rows are due.
CREATE INDEX report_sends_due ON report_sends (state, next_attempt_ns);

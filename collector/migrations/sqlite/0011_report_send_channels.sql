-- Monthly reports sent through more than one channel (issue 14 item 6): a customer's report
-- goes by e-mail ('email', to report_recipients) and/or to its webhook ('webhook',
-- report_webhook), and each channel's send is claimed, recorded and retried on its own, so
-- the key becomes (customer, period, channel). Rows recorded before were all e-mail.
-- recipients: the e-mail recipients, or the webhook's URL without its query; attachment: the
-- mailed file's name (null for a webhook, whose body carries the JSON report).
-- SQLite cannot change a primary key in place: the table is rebuilt.
CREATE TABLE report_sends_v2 (
    customer_id TEXT NOT NULL,
    period TEXT NOT NULL,
    channel TEXT NOT NULL,
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
    PRIMARY KEY (customer_id, period, channel)
);
INSERT INTO report_sends_v2 (customer_id, period, channel, state, attempts, last_error,
    next_attempt_ns, claimed_until_ns, claimed_by, created_ns, sent_ns, recipients, attachment,
    report_sha256)
SELECT customer_id, period, 'email', state, attempts, last_error, next_attempt_ns,
    claimed_until_ns, claimed_by, created_ns, sent_ns, recipients, attachment, report_sha256
FROM report_sends;
DROP TABLE report_sends;
ALTER TABLE report_sends_v2 RENAME TO report_sends;
-- The scheduler's question each cycle: which unsent rows are due.
CREATE INDEX report_sends_due ON report_sends (state, next_attempt_ns);

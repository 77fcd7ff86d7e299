-- Monthly reports sent through more than one channel (issue 14 item 6): a customer's report
-- goes by e-mail ('email', to report_recipients) and/or to its webhook ('webhook',
-- report_webhook), and each channel's send is claimed, recorded and retried on its own, so
-- the key becomes (customer, period, channel). Rows recorded before were all e-mail.
-- recipients: the e-mail recipients, or the webhook's URL without its query; attachment: the
-- mailed file's name (null for a webhook, whose body carries the JSON report).
ALTER TABLE report_sends ADD COLUMN channel TEXT NOT NULL DEFAULT 'email';
ALTER TABLE report_sends ALTER COLUMN channel DROP DEFAULT;
ALTER TABLE report_sends DROP CONSTRAINT report_sends_pkey;
ALTER TABLE report_sends ADD PRIMARY KEY (customer_id, period, channel);

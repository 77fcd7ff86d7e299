-- Alerting (issue 14): what the rule engine remembers across restarts and replicas.
-- Times are i64 nanoseconds since the Unix epoch. Same tables as sqlite/0007_alerts.sql.

-- One row per alert instance that is pending or firing, keyed by rule and labels; an
-- instance that resolves (or stops pending) is deleted here and recorded in alert_events.
CREATE TABLE alert_state (
    key          TEXT    PRIMARY KEY NOT NULL,
    rule         TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    labels       TEXT    NOT NULL,
    severity     TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    since_ns     BIGINT  NOT NULL,
    fired_ns     BIGINT ,
    value        DOUBLE PRECISION,
    threshold    DOUBLE PRECISION NOT NULL,
    updated_ns   BIGINT  NOT NULL
);

-- Every transition to firing or resolved: the alert history the API serves.
CREATE TABLE alert_events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key          TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    labels       TEXT    NOT NULL,
    severity     TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    value        DOUBLE PRECISION,
    threshold    DOUBLE PRECISION NOT NULL,
    since_ns     BIGINT  NOT NULL,
    at_ns        BIGINT  NOT NULL
);
CREATE INDEX alert_events_at ON alert_events (at_ns, id);
CREATE INDEX alert_events_customer_at ON alert_events (customer, at_ns, id);

-- One notification per event and channel, written in the transaction that records the event
-- and delivered after it, with retries: delivered_ns set once a channel accepted it;
-- next_attempt_ns NULL once given up.
CREATE TABLE alert_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        BIGINT  NOT NULL REFERENCES alert_events (id),
    channel         TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_ns      BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_ns BIGINT ,
    delivered_ns    BIGINT ,
    last_error      TEXT,
    UNIQUE (event_id, channel)
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_ns) WHERE delivered_ns IS NULL;

-- The evaluator's lease: with several replicas on one database, the one whose lease has not
-- expired evaluates and sends; it renews each cycle, another takes it over once expired.
CREATE TABLE alert_lease (
    name        TEXT    PRIMARY KEY NOT NULL,
    holder      TEXT    NOT NULL,
    expires_ns  BIGINT  NOT NULL
);

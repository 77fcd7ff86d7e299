-- Call records (issue 12): one row per voqa_wire::CallRecord, stored once by its identity
-- (agent_id, call_key) however often it is re-sent; `record` is the record as the agent sent
-- it (pseudonymised ids only), the other columns are copies for filtering. start_ns is the
-- first INVITE (else the earliest time of the record). Retention deletes records like stream
-- reports; the hourly counts below are kept, like the per-call aggregates.
CREATE TABLE call_records (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id   TEXT    NOT NULL,
    call_key   TEXT    NOT NULL,
    start_ns   INTEGER  NOT NULL,
    call_id    TEXT    NOT NULL,
    direction  TEXT    NOT NULL,
    peer       TEXT    NOT NULL,
    status     INTEGER,
    outcome    TEXT    NOT NULL,
    problems   TEXT    NOT NULL,
    record     TEXT    NOT NULL,
    UNIQUE (agent_id, call_key)
);
CREATE INDEX call_records_agent_start ON call_records (agent_id, start_ns, id);
CREATE INDEX call_records_start ON call_records (start_ns, id);

-- The subnet-narrowed customers each call was attributed to at ingest (by its peer or its
-- streams' addresses), for listing a customer's calls.
CREATE TABLE call_record_scopes (
    customer_id TEXT   NOT NULL,
    agent_id    TEXT   NOT NULL,
    call_key    TEXT   NOT NULL,
    start_ns    INTEGER NOT NULL,
    PRIMARY KEY (customer_id, agent_id, call_key)
);
CREATE INDEX call_record_scopes_start ON call_record_scopes (start_ns);

-- Per scope ('' = all of the agent's calls, or a subnet customer's id), agent, hour of the
-- first INVITE, direction and peer address (at most 50 peers an hour, the rest 'other'; the
-- peer '*' is the rollup of every peer, which totals and per-hour sums read): the
-- counts the call KPIs are computed from (sla::kpis::columns, in that order). Every count
-- merges by sum, srd_max_ms by maximum. srd_bNN is the SRD histogram (sla::kpis::SRD_EDGES_MS).
CREATE TABLE call_hourly (
    scope     TEXT   NOT NULL,
    agent_id  TEXT   NOT NULL,
    hour_ns   INTEGER NOT NULL,
    direction TEXT   NOT NULL,
    peer      TEXT   NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    answered INTEGER NOT NULL DEFAULT 0,
    redirected INTEGER NOT NULL DEFAULT 0,
    failed_4xx INTEGER NOT NULL DEFAULT 0,
    failed_5xx INTEGER NOT NULL DEFAULT 0,
    failed_6xx INTEGER NOT NULL DEFAULT 0,
    no_final INTEGER NOT NULL DEFAULT 0,
    user_busy INTEGER NOT NULL DEFAULT 0,
    no_answer INTEGER NOT NULL DEFAULT 0,
    abandoned INTEGER NOT NULL DEFAULT 0,
    terminal_reject INTEGER NOT NULL DEFAULT 0,
    seer_effective INTEGER NOT NULL DEFAULT 0,
    ineffective INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    srd_count INTEGER NOT NULL DEFAULT 0,
    srd_sum_ms INTEGER NOT NULL DEFAULT 0,
    duration_count INTEGER NOT NULL DEFAULT 0,
    duration_sum_ms INTEGER NOT NULL DEFAULT 0,
    problem_calls INTEGER NOT NULL DEFAULT 0,
    srd_b00 INTEGER NOT NULL DEFAULT 0,
    srd_b01 INTEGER NOT NULL DEFAULT 0,
    srd_b02 INTEGER NOT NULL DEFAULT 0,
    srd_b03 INTEGER NOT NULL DEFAULT 0,
    srd_b04 INTEGER NOT NULL DEFAULT 0,
    srd_b05 INTEGER NOT NULL DEFAULT 0,
    srd_b06 INTEGER NOT NULL DEFAULT 0,
    srd_b07 INTEGER NOT NULL DEFAULT 0,
    srd_b08 INTEGER NOT NULL DEFAULT 0,
    srd_b09 INTEGER NOT NULL DEFAULT 0,
    srd_b10 INTEGER NOT NULL DEFAULT 0,
    srd_b11 INTEGER NOT NULL DEFAULT 0,
    srd_b12 INTEGER NOT NULL DEFAULT 0,
    srd_b13 INTEGER NOT NULL DEFAULT 0,
    srd_b14 INTEGER NOT NULL DEFAULT 0,
    srd_b15 INTEGER NOT NULL DEFAULT 0,
    p_no_rtp INTEGER NOT NULL DEFAULT 0,
    p_one_way_audio INTEGER NOT NULL DEFAULT 0,
    p_rtp_stopped INTEGER NOT NULL DEFAULT 0,
    p_media_address_mismatch INTEGER NOT NULL DEFAULT 0,
    srd_max_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, agent_id, hour_ns, direction, peer)
);
CREATE INDEX call_hourly_peer_hour ON call_hourly (scope, agent_id, peer, hour_ns);

-- Call records (issue 12): one row per voqa_wire::CallRecord, stored once by its identity
-- (agent_id, call_key) however often it is re-sent; `record` is the record as the agent sent
-- it (pseudonymised ids only), the other columns are copies for filtering. start_ns is the
-- first INVITE (else the earliest time of the record). Retention deletes records like stream
-- reports; the hourly counts below are kept, like the per-call aggregates.
CREATE TABLE call_records (
    id         BIGSERIAL PRIMARY KEY,
    agent_id   TEXT    NOT NULL,
    call_key   TEXT    NOT NULL,
    start_ns   BIGINT  NOT NULL,
    call_id    TEXT    NOT NULL,
    direction  TEXT    NOT NULL,
    peer       TEXT    NOT NULL,
    status     BIGINT,
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
    start_ns    BIGINT NOT NULL,
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
    hour_ns   BIGINT NOT NULL,
    direction TEXT   NOT NULL,
    peer      TEXT   NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    answered BIGINT NOT NULL DEFAULT 0,
    redirected BIGINT NOT NULL DEFAULT 0,
    failed_4xx BIGINT NOT NULL DEFAULT 0,
    failed_5xx BIGINT NOT NULL DEFAULT 0,
    failed_6xx BIGINT NOT NULL DEFAULT 0,
    no_final BIGINT NOT NULL DEFAULT 0,
    user_busy BIGINT NOT NULL DEFAULT 0,
    no_answer BIGINT NOT NULL DEFAULT 0,
    abandoned BIGINT NOT NULL DEFAULT 0,
    terminal_reject BIGINT NOT NULL DEFAULT 0,
    seer_effective BIGINT NOT NULL DEFAULT 0,
    ineffective BIGINT NOT NULL DEFAULT 0,
    completed BIGINT NOT NULL DEFAULT 0,
    srd_count BIGINT NOT NULL DEFAULT 0,
    srd_sum_ms BIGINT NOT NULL DEFAULT 0,
    duration_count BIGINT NOT NULL DEFAULT 0,
    duration_sum_ms BIGINT NOT NULL DEFAULT 0,
    problem_calls BIGINT NOT NULL DEFAULT 0,
    srd_b00 BIGINT NOT NULL DEFAULT 0,
    srd_b01 BIGINT NOT NULL DEFAULT 0,
    srd_b02 BIGINT NOT NULL DEFAULT 0,
    srd_b03 BIGINT NOT NULL DEFAULT 0,
    srd_b04 BIGINT NOT NULL DEFAULT 0,
    srd_b05 BIGINT NOT NULL DEFAULT 0,
    srd_b06 BIGINT NOT NULL DEFAULT 0,
    srd_b07 BIGINT NOT NULL DEFAULT 0,
    srd_b08 BIGINT NOT NULL DEFAULT 0,
    srd_b09 BIGINT NOT NULL DEFAULT 0,
    srd_b10 BIGINT NOT NULL DEFAULT 0,
    srd_b11 BIGINT NOT NULL DEFAULT 0,
    srd_b12 BIGINT NOT NULL DEFAULT 0,
    srd_b13 BIGINT NOT NULL DEFAULT 0,
    srd_b14 BIGINT NOT NULL DEFAULT 0,
    srd_b15 BIGINT NOT NULL DEFAULT 0,
    p_no_rtp BIGINT NOT NULL DEFAULT 0,
    p_one_way_audio BIGINT NOT NULL DEFAULT 0,
    p_rtp_stopped BIGINT NOT NULL DEFAULT 0,
    p_media_address_mismatch BIGINT NOT NULL DEFAULT 0,
    srd_max_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, agent_id, hour_ns, direction, peer)
);
CREATE INDEX call_hourly_peer_hour ON call_hourly (scope, agent_id, peer, hour_ns);

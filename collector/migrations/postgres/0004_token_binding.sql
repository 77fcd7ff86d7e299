-- Agent tokens bound to the agent ids they may write as (`token create --agent`): a
-- comma-separated list of ids and `*`/`?` glob patterns; NULL for tokens created before
-- bindings existed (and for ops and customer tokens). `last_used_ns`: the latest successful
-- authentication, recorded at most once a minute per token.
ALTER TABLE tokens ADD COLUMN agents TEXT, ADD COLUMN last_used_ns BIGINT;

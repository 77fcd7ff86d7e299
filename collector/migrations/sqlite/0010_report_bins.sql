-- Customer reports count a period's calls in groups (MOS bin, loss bin and the codec that set
-- the MOS), one day at a time: the index that covers a period's counts now covers the codec
-- too, so that pass reads the index alone instead of looking up every call's row (a million
-- lookups for a month of calls).
DROP INDEX calls_scope_start;
CREATE INDEX calls_scope_start ON calls
    (scope, agent_id, last_start_ns, min_mos, max_loss_pct, mos_codec, call_key);

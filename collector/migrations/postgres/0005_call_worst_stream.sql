-- The stream that set each call's MOS (its lowest; ties go to the smallest stream id) and
-- that stream's codec, kept with the call's aggregate so that a customer report lists every
-- call of a month with its worst stream without reading the per-stream rows, which retention
-- deletes. NULL for a call without a stream with a MOS, and for calls stored before this.
ALTER TABLE calls ADD COLUMN mos_stream_id TEXT;
ALTER TABLE calls ADD COLUMN mos_codec TEXT;

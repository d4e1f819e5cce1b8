-- Dead-letter tooling (`ticketing dead-letters`, backbone/dead_letters.c): how often a parked
-- record was tried (1 when the projector parked it, +1 per failed retry) and when it was last
-- tried. A new file rather than an edit of 001: a database migrated before keeps its history.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 1;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS last_seen timestamptz NOT NULL DEFAULT now();

-- Pruning processed_events by offset (backbone/prune.c) needs the record's position.
ALTER TABLE processed_events ADD COLUMN IF NOT EXISTS topic text;
ALTER TABLE processed_events ADD COLUMN IF NOT EXISTS partition integer;
ALTER TABLE processed_events ADD COLUMN IF NOT EXISTS "offset" bigint;
CREATE INDEX IF NOT EXISTS processed_events_position
    ON processed_events (projection, topic, partition, "offset");

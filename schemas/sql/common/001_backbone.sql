-- The backbone every context database carries (DESIGN.md sections 4 and 6): the transactional
-- outbox, the projectors' offsets and dedupe set, and the dead-letter table. Applied by
-- `ticketing migrate` (platform/migrate.c) inside one transaction, before the context's own files.

-- Events committed by commands and projectors, waiting for the relay (backbone/relay.c). A row is
-- deleted once the broker acked it. payload is the envelope exactly as encoded (text, not jsonb,
-- so the record on Kafka is byte for byte what the codec wrote).
CREATE TABLE IF NOT EXISTS outbox (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL,
    payload    text NOT NULL,
    headers    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Wake the relay (LISTEN outbox) when a transaction that inserted rows commits: NOTIFY is
-- delivered at commit and deduplicated within a transaction, so one statement-level trigger
-- gives at most one wake-up per statement and none for a rolled-back transaction.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- The next Kafka offset each projector will apply, per partition, written in the same transaction
-- as the effects of the records before it (backbone/projector.c).
CREATE TABLE IF NOT EXISTS projection_offsets (
    projection  text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);

-- Event ids a projector has applied: a record published twice (relay crash between ack and
-- delete) is applied once.
CREATE TABLE IF NOT EXISTS processed_events (
    projection   text NOT NULL,
    event_id     text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, event_id)
);

-- Records a projector could not apply (undecodable, failing apply, or a version gap that did not
-- close in time), kept with the error and position; `ticketing status` shows them. key and
-- payload are bytea because a poison record need not be text.
CREATE TABLE IF NOT EXISTS dead_letters (
    id         bigserial PRIMARY KEY,
    projection text NOT NULL,
    topic      text NOT NULL,
    partition  integer NOT NULL,
    "offset"   bigint NOT NULL,
    key        bytea,
    payload    bytea,
    error      text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (projection, topic, partition, "offset")
);

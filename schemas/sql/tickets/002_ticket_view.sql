-- tickets read model (DESIGN.md section 6), projected from topic `tickets` by
-- projections/tickets/ticket_view.c and read by GET /api/tickets[/:id[/history]]. Both tables are
-- rebuilt from the log by truncating them and re-projecting: every write is guarded by version, so
-- applying an event twice, or an older one after a newer one, changes nothing.

-- The latest state of each ticket. created_at is the time of its ticket:created event, so the
-- list order is the same after a rebuild.
CREATE TABLE IF NOT EXISTS ticket_view (
    id          uuid PRIMARY KEY,
    title       text NOT NULL,
    price_cents bigint NOT NULL,
    user_id     uuid NOT NULL,
    order_id    uuid,
    version     integer NOT NULL,
    created_at  timestamptz NOT NULL
);
-- GET /api/tickets: unreserved tickets in creation order, keyset-paginated on (created_at, id).
CREATE INDEX IF NOT EXISTS ticket_view_free_idx ON ticket_view (created_at, id)
    WHERE order_id IS NULL;

-- Every event of every ticket, as published (the CloudEvents envelope, current schema), for
-- GET /api/tickets/:id/history.
CREATE TABLE IF NOT EXISTS ticket_history (
    ticket_id uuid NOT NULL,
    version   integer NOT NULL,
    event_id  uuid NOT NULL,
    type      text NOT NULL,
    envelope  text NOT NULL, -- as ev_envelope_encode wrote it (after any upcast)
    PRIMARY KEY (ticket_id, version)
);

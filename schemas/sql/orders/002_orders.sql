-- orders write model (DESIGN.md sections 4 and 5): one row per order, version = the
-- aggregateversion of its last event. Lifecycle: created -> complete | cancelled
-- (awaiting:payment is reserved for a payment step and reserves the ticket like created).
CREATE TABLE IF NOT EXISTS orders (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL,
    ticket_id  uuid NOT NULL,
    status     text NOT NULL
               CHECK (status IN ('created', 'cancelled', 'awaiting:payment', 'complete')),
    expires_at timestamptz NOT NULL,
    version    integer NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The reservation rule (FIX): at most one live order per ticket, under any concurrency. An
-- INSERT that would make a second one fails (or, with ON CONFLICT DO NOTHING, inserts nothing)
-- once the first one commits: 'Ticket is already reserved'.
CREATE UNIQUE INDEX IF NOT EXISTS orders_ticket_reserved_key ON orders (ticket_id)
    WHERE status IN ('created', 'awaiting:payment', 'complete');

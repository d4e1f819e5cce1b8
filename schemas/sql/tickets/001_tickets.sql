-- tickets write model (DESIGN.md sections 4 and 5): one row per ticket, version = the
-- aggregateversion of its last event. Prices are integer cents (the contract's JSON number is
-- converted at the edge by events/ev_money.c). order_id is set while an order reserves the ticket.
-- Every change is `UPDATE ... WHERE id = $1 AND version = $2` (commands/tickets/ticket_store.c).
CREATE TABLE IF NOT EXISTS tickets (
    id          uuid PRIMARY KEY,
    title       text NOT NULL CHECK (octet_length(title) BETWEEN 1 AND 256),
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    user_id     uuid NOT NULL,
    order_id    uuid,
    version     integer NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

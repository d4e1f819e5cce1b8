-- The orders the tickets context has heard of, per ticket (commands/tickets/ticket_store.c,
-- tk_tickets_track_order). Order events of one ticket come from different orders, hence different
-- Kafka keys and partitions, so they may arrive in any order: order:created of a new order before
-- order:cancelled of the old one, or an old order's pair long after the new order's created. The
-- ticket's orderId is therefore derived from this ledger rather than from the last event seen: it
-- is the open order (created or complete, not cancelled) with the latest creation time, or none.
-- Once every event has arrived at most one order is open (the orders context's unique index), so
-- the result does not depend on arrival order, and applying an event twice changes nothing.
CREATE TABLE IF NOT EXISTS ticket_orders (
    ticket_id  uuid NOT NULL,
    order_id   uuid NOT NULL,
    open       boolean NOT NULL,
    created_at timestamptz NOT NULL, -- order:created's event time (tie-break while two look open)
    PRIMARY KEY (ticket_id, order_id)
);

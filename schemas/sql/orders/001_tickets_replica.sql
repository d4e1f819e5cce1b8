-- orders' replica of the tickets context (DESIGN.md section 5, last bullet), projected from topic
-- `tickets` by projections/orders/tickets_replica.c: ticket:created inserts version 0 and
-- ticket:updated applies only when the stored version is the event's minus one, so the replica
-- goes through every version of every ticket in order. Orders reads it to accept an order (404
-- for a ticket it does not know) and to embed the ticket in order responses.
CREATE TABLE IF NOT EXISTS tickets_replica (
    id          uuid PRIMARY KEY,
    title       text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    version     integer NOT NULL CHECK (version >= 0)
);

-- payments' replica of the orders context (DESIGN.md section 5, last bullet), projected from topic
-- `orders` by projections/payments/orders_replica.c: order:created inserts version 0, and
-- order:cancelled / order:completed apply only when the stored version is the event's minus one,
-- so the replica goes through every version of every order in order. POST /api/payments reads it
-- to find the order (404), its owner (401), its status (cancelled, paid) and its price.
CREATE TABLE IF NOT EXISTS orders_replica (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    status      text NOT NULL
                CHECK (status IN ('created', 'cancelled', 'awaiting:payment', 'complete')),
    version     integer NOT NULL CHECK (version >= 0)
);

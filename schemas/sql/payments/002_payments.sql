-- payments write model (DESIGN.md sections 4 and 5): one row per paid order, written with the
-- payment:created outbox row in one transaction by POST /api/payments. The unique order_id is the
-- "never paid twice" rule under any concurrency: a second insert for an order inserts nothing
-- and the request answers 'Order already paid'. stripe_id is the PaymentIntent's id.
CREATE TABLE IF NOT EXISTS payments (
    id         uuid PRIMARY KEY,
    order_id   uuid NOT NULL,
    stripe_id  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_order_id_key UNIQUE (order_id)
);

-- Charges given back (FIX): a charge whose order was cancelled before it could be stored, or a
-- stored payment whose order was cancelled afterwards (the order:cancelled reaction). One row per
-- refunded PaymentIntent. status 'succeeded' rows were published as payment:refunded; a 'failed'
-- row is a refund Stripe did not take (logged as an alert): it needs an operator.
CREATE TABLE IF NOT EXISTS refunds (
    id         uuid PRIMARY KEY,           -- the payment id of payment:refunded
    order_id   uuid NOT NULL,
    stripe_id  text NOT NULL,              -- the PaymentIntent refunded
    refund_id  text,                       -- Stripe's refund id, NULL when it failed
    reason     text NOT NULL,
    status     text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refunds_stripe_id_key UNIQUE (order_id, stripe_id)
);

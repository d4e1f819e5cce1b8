-- The one arbiter of pay versus expire, and refunds as durable intents (DESIGN.md section 5).
--
-- orders_replica.expires_at: the order's expiresAt, from order:created. POST /api/payments refuses
-- a payment at or after it before calling Stripe (400 'Order has expired', nothing charged).
-- NULL for orders replicated before this migration: their expiration still closes the window.
ALTER TABLE orders_replica ADD COLUMN IF NOT EXISTS expires_at timestamptz;

-- An order's payment window: at most one decision per order, taken under the per-order payment
-- lock ('payments:' || order id), and committed with the event that announces it:
--   paid     with the payments row and payment:created (POST /api/payments)
--   expired  with payment:expired (the expiration:complete reaction, projections/payments)
-- No row: the window is open. The primary key makes the two outcomes exclusive under any
-- concurrency; the lock makes the later one see the earlier one instead of failing.
CREATE TABLE IF NOT EXISTS payment_windows (
    order_id   uuid PRIMARY KEY,
    outcome    text NOT NULL CHECK (outcome IN ('paid', 'expired')),
    decided_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO payment_windows (order_id, outcome)
    SELECT order_id, 'paid' FROM payments ON CONFLICT (order_id) DO NOTHING;

-- refunds become durable intents: a row is written 'pending' in the transaction that decides the
-- refund (with the event that caused it), and the refund worker (commands/payments/refunds.c)
-- carries it out outside any transaction, with the row's idempotency key, retrying with backoff
-- until Stripe accepts; then 'succeeded' with payment:refunded. 'failed' rows of the old design
-- (a refusal recorded and never retried) become pending again.
ALTER TABLE refunds DROP CONSTRAINT IF EXISTS refunds_status_check;
UPDATE refunds SET status = 'pending' WHERE status = 'failed';
ALTER TABLE refunds ADD CONSTRAINT refunds_status_check CHECK (status IN ('pending', 'succeeded'));
ALTER TABLE refunds
    ADD COLUMN IF NOT EXISTS version    integer NOT NULL DEFAULT 0,   -- payment:refunded's aggregateversion
    ADD COLUMN IF NOT EXISTS attempts   integer NOT NULL DEFAULT 0,   -- Stripe calls made so far
    ADD COLUMN IF NOT EXISTS next_at    timestamptz NOT NULL DEFAULT now(), -- not before (backoff)
    ADD COLUMN IF NOT EXISTS last_error text;                          -- the last refusal, NULL if none
CREATE INDEX IF NOT EXISTS refunds_pending_idx ON refunds (next_at) WHERE status = 'pending';

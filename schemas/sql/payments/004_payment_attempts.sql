-- Charge attempts (issue 11, no double charge when a client retries with a new card token): a
-- row is committed BEFORE Stripe is called, so a charge whose answer was lost is never
-- forgotten. Its id goes to Stripe as metadata[attempt_id]; its key is the charge's
-- Idempotency-Key (one attempt per key: a retry with the same token is the same attempt).
--   pending    Stripe was called and the outcome is unknown (timeout, 5xx), or the call is running
--   succeeded  the PaymentIntent succeeded: stored as the order's payment, or refunded
--   failed     declined, or Stripe has no succeeded intent for it
-- Before another attempt for an order, POST /api/payments reconciles the order's pending ones
-- (PaymentIntent search by metadata, or the webhook), under the order's payment lock; the refund
-- worker reconciles stale ones.
CREATE TABLE IF NOT EXISTS payment_attempts (
    id              uuid PRIMARY KEY,
    order_id        uuid NOT NULL,
    idempotency_key text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    stripe_id       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(), -- last begun, settled or checked
    CONSTRAINT payment_attempts_key UNIQUE (idempotency_key)
);
CREATE INDEX IF NOT EXISTS payment_attempts_pending_idx ON payment_attempts (order_id)
    WHERE status = 'pending';

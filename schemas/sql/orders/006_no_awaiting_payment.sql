-- No transition reaches 'awaiting:payment' (issue 13): the status leaves the contract, so the
-- write model's CHECK and its reservation and open-order indexes name only the real statuses.
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('created', 'cancelled', 'complete'));
DROP INDEX IF EXISTS orders_ticket_reserved_key;
CREATE UNIQUE INDEX orders_ticket_reserved_key ON orders (ticket_id)
    WHERE status IN ('created', 'complete');
DROP INDEX IF EXISTS orders_user_open_idx;
CREATE INDEX orders_user_open_idx ON orders (user_id, expires_at) WHERE status = 'created';

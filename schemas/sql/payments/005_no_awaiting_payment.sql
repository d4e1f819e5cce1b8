-- No transition reaches 'awaiting:payment' (issue 13): the replica's CHECK names only the
-- statuses order events carry.
ALTER TABLE orders_replica DROP CONSTRAINT IF EXISTS orders_replica_status_check;
ALTER TABLE orders_replica ADD CONSTRAINT orders_replica_status_check
    CHECK (status IN ('created', 'cancelled', 'complete'));

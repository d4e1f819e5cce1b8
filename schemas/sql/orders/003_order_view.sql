-- orders read model (DESIGN.md section 6), projected from topic `orders` by
-- projections/orders/order_view.c and read by GET /api/orders[/:id]; the embedded ticket is
-- joined from tickets_replica at query time. Rebuilt from the log by truncating and re-projecting:
-- writes are guarded by version, so a repeated or older event changes nothing.
CREATE TABLE IF NOT EXISTS order_view (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL,
    ticket_id  uuid NOT NULL,
    status     text NOT NULL,
    expires_at timestamptz NOT NULL,
    version    integer NOT NULL,
    created_at timestamptz NOT NULL -- the order:created event's time: creation order
);
CREATE INDEX IF NOT EXISTS order_view_user_idx ON order_view (user_id, created_at, id);

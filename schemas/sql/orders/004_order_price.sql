-- The price an order was created with (issue 11 item 8, DESIGN.md section 5): the ticket's price
-- in tickets_replica when the order was placed, the price order:created carries and payments
-- charges. The owner may still edit the ticket until order:created reaches the tickets context,
-- so the replica can move past it; orders and order_view keep their own copy and never show a
-- later one. NULL only for orders placed before this migration (queries then fall back to the
-- replica, the old behaviour).
ALTER TABLE orders ADD COLUMN IF NOT EXISTS price_cents bigint CHECK (price_cents > 0);
ALTER TABLE order_view ADD COLUMN IF NOT EXISTS price_cents bigint;

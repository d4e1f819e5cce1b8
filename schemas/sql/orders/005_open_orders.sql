-- The open orders of a user (issue 11 item 11, DESIGN.md section 5): POST /api/orders counts
-- them against ORDERS_OPEN_MAX, so one account cannot hold every ticket.
CREATE INDEX IF NOT EXISTS orders_user_open_idx ON orders (user_id, expires_at)
    WHERE status IN ('created', 'awaiting:payment');

-- Notifications leave the transactions (DESIGN.md sections 4 and 6): the relay's wake-up
-- (`outbox`) and the consistency waiters' (`projection_applied`) are sent right after COMMIT, in
-- the same round trip (backbone/tx.c tk_tx__commit), no longer by these triggers. Why: a
-- transaction that NOTIFYs holds a cluster-wide lock from its pre-commit to its end, WAL flush
-- included, so every command and projector commit ran one at a time; pgbench in the same run
-- showed about half the commits per second of the same transaction without the NOTIFY.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS outbox_notify();
DROP TRIGGER IF EXISTS projection_notify ON projection_offsets;
DROP FUNCTION IF EXISTS projection_notify();

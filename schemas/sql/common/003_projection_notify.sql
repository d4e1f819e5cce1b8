-- Read your own writes (DESIGN.md section 6, backbone/consistency.c): announce every projector
-- commit. A projector stores its next offsets in projection_offsets in the same transaction as
-- its effects, so a trigger on that table fires exactly for committed batches (NOTIFY is
-- delivered at commit and never for a rolled-back transaction) without any code in the projector
-- loop. The payload is the projection's name; PostgreSQL folds identical notifications of one
-- transaction into one, so a batch touching six partitions still wakes a listener once.
-- Queries waiting for a client's consistency token LISTEN on this channel and then re-read the
-- read model's row versions: the notification only says "look again".
CREATE OR REPLACE FUNCTION projection_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('projection_applied', NEW.projection);
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER projection_notify AFTER INSERT OR UPDATE ON projection_offsets
    FOR EACH ROW EXECUTE FUNCTION projection_notify();

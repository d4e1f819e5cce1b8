-- Sessions and sign-in throttling (DESIGN.md sections 5 and 9; issue 11 items 3 and 12).
--
-- revoked_sessions: one row per signed-out session (the token's jti) until the token would have
-- expired anyway (expires_at); every context's tk_http_user looks a token's jti up here, so a
-- signed-out token is refused everywhere. Expired rows are deleted by later sign-outs.
CREATE TABLE IF NOT EXISTS revoked_sessions (
    jti        uuid PRIMARY KEY,
    user_id    uuid NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS revoked_sessions_expires_idx ON revoked_sessions (expires_at);

-- signin_throttle: failed sign-in counters per account and per client address, shared by every
-- `serve auth` process. A fixed number of slots (SIGNIN_THROTTLE_SLOTS): a key (a keyed hash of
-- "account:<email>" or "address:<ip>", never the email itself) lives in slot hash mod slots,
-- and a key arriving in a slot held by another key whose window has not ended shares its
-- count (stricter, never looser), so the table never grows past the slot count whatever
-- number of emails or addresses is tried.
CREATE TABLE IF NOT EXISTS signin_throttle (
    slot         integer PRIMARY KEY,
    key          bytea NOT NULL,
    window_start timestamptz NOT NULL,
    failures     integer NOT NULL CHECK (failures >= 0)
);

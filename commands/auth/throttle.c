/*
 * throttle.c - the sign-in counters in signin_throttle (schemas/sql/auth/002_sessions.sql).
 *
 * A key ("account:<lower email>" or "address:<ip>") is hashed with HMAC-SHA256 under JWT_KEY, so
 * a client can neither choose the slot its key lands in nor read emails from the table. Account
 * keys use slots [0, S) and address keys [S, 2S), S = SIGNIN_THROTTLE_SLOTS: the table never
 * holds more than 2S rows however many emails or addresses are tried. Two keys in one slot share
 * its counter: a collision makes the limit stricter for both, never looser.
 *
 * A slot's window is fixed: it starts at the first counted attempt after the previous window
 * ended and lasts the configured seconds; the counter then starts again at 1. One statement
 * updates both slots and returns their counts, so the check and the increment are atomic.
 */
#include "throttle.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk/cfg.h"
#include "tk/pg.h"

/* The slot of @p kind:@p value in [base, base + slots), and its keyed hash in hex. */
static void slot_of(const char *kind, const char *value, long base, char slot[16], char key_hex[40])
{
    const char *k = tk_cfg()->jwt_key ? tk_cfg()->jwt_key : "ticketing";
    char msg[600];
    int n = snprintf(msg, sizeof(msg), "%s:", kind);
    for (const char *p = value; *p && (size_t)n < sizeof(msg) - 1; p++)
        msg[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    msg[n] = '\0';
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), k, (int)strlen(k), (const unsigned char *)msg, (size_t)n, mac, &len);
    unsigned long long h = 0;
    for (int i = 0; i < 8; i++)
        h = h << 8 | mac[i];
    snprintf(slot, 16, "%lld",
             (long long)(base + (long)(h % (unsigned long long)tk_cfg()->signin_throttle_slots)));
    for (int i = 0; i < 16; i++)
        snprintf(key_hex + 2 * i, 3, "%02x", mac[i]);
}

int tk_signin_throttle_take(PGconn *db, const char *email, const char *address,
                            tk_signin_throttle_t *t, tk_err_t *err)
{
    const tk_cfg_t *cfg = tk_cfg();
    char account_key[40], address_key[40], account_window[16], address_window[16], slots[16];
    slot_of("account", email, 0, t->account_slot, account_key);
    slot_of("address", address, cfg->signin_throttle_slots, t->address_slot, address_key);
    snprintf(account_window, sizeof(account_window), "%d", cfg->signin_account_window);
    snprintf(address_window, sizeof(address_window), "%d", cfg->signin_address_window);
    snprintf(slots, sizeof(slots), "%d", cfg->signin_throttle_slots);
    const char *params[] = {
        t->account_slot, account_key, t->address_slot, address_key, account_window,
        address_window,  slots};
/* A slot's window: account slots are below $7, address slots from $7 on. */
#define WINDOW                                                                                     \
    "make_interval(secs => CASE WHEN s.slot < $7::integer THEN $5::integer ELSE $6::integer END)"
    PGresult *res = tk_pg_exec_prepared(
        db,
        "INSERT INTO signin_throttle AS s (slot, key, window_start, failures) VALUES "
        "($1::integer, decode($2, 'hex'), now(), 1), "
        "($3::integer, decode($4, 'hex'), now(), 1) "
        "ON CONFLICT (slot) DO UPDATE SET key = EXCLUDED.key, "
        "window_start = CASE WHEN s.window_start + " WINDOW " <= now() "
        "THEN now() ELSE s.window_start END, "
        "failures = CASE WHEN s.window_start + " WINDOW " <= now() "
        "THEN 1 ELSE s.failures + 1 END "
        "RETURNING s.slot, s.failures, "
        "ceil(extract(epoch FROM s.window_start + " WINDOW " - now()))::integer",
        7, params, err);
#undef WINDOW
    if (res == NULL)
        return err->code;
    int rc = 0;
    t->retry_after = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        bool account = strcmp(PQgetvalue(res, i, 0), t->account_slot) == 0;
        long count = strtol(PQgetvalue(res, i, 1), NULL, 10);
        int retry = (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
        int limit = account ? cfg->signin_account_limit : cfg->signin_address_limit;
        if (count > limit) {
            rc = TK_ELIMIT;
            if (retry > t->retry_after)
                t->retry_after = retry;
        }
    }
    PQclear(res);
    if (rc != 0) {
        if (t->retry_after < 1)
            t->retry_after = 1;
        return tk_err_set(err, TK_ELIMIT, NULL, "Too many failed sign-ins, try again in %d seconds",
                          t->retry_after);
    }
    return 0;
}

int tk_signin_throttle_refund(PGconn *db, const tk_signin_throttle_t *t, tk_err_t *err)
{
    const char *params[] = {t->account_slot, t->address_slot};
    return tk_pg_run_prepared(db,
                              "UPDATE signin_throttle SET failures = greatest(failures - 1, 0) "
                              "WHERE slot IN ($1::integer, $2::integer)",
                              2, params, NULL, err);
}

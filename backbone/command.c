/*
 * command.c - the write pipeline: BEGIN, body, COMMIT, with bounded retries of lost races.
 *
 *        tk_command_run
 *             |
 *     +-> BEGIN (deferred) --fail--> return (TK_EUNAVAIL: the connection is gone)
 *     |       |
 *     |     body --rc<0--> ROLLBACK --retryable and attempts left--+
 *     |       |                 \--otherwise--> return rc          |
 *     |     COMMIT --fail--> (the server rolled back) same test ---+
 *     |       |                                                     |
 *     |    return 0 (committed: its outbox rows will be relayed)    |
 *     +------------------ backoff (jittered) <----------------------+
 *
 * Why retry the whole body: an optimistic check that touched 0 rows, a serialization failure or
 * a deadlock means another transaction changed what the body read; running the body again from a
 * fresh read decides on the new state. Business errors are final and returned at once.
 * Why a bounded number: a hot aggregate must not keep an HTTP worker forever; after
 * TK_COMMAND_MAX_ATTEMPTS the caller gets TK_ECONFLICT and the client may retry.
 */
#include "tk/command.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tk/ids.h"
#include "tk/pg.h"
#include "tk/projector.h"
#include "tx_int.h"

int tk_command_stale(tk_err_t *err, const char *aggregate, const char *id)
{
    return tk_err_set(err, TK_ECONFLICT, TK_PG_RETRY_FIELD, "%s %s changed concurrently",
                      aggregate ? aggregate : "aggregate", id ? id : "");
}

int tk_command_write(tk_tx_t *tx, const char *sql, int nparams, const char *const *params,
                     const char *aggregate, tk_err_t *err)
{
    int64_t affected = 0;
    int rc = tk_pg_run_prepared(tk_tx_conn(tx), sql, nparams, params, &affected, err);
    if (rc != 0)
        return rc;
    return affected == 0 ? tk_command_stale(err, aggregate, params[0]) : 0;
}

int tk_command_reaction_result(int rc, tk_err_t *err)
{
    if (rc == 1)
        return TK_APPLY_OK;
    if (rc == 0 || rc == TK_ENOTFOUND) {
        tk_err_clear(err);
        return TK_APPLY_SKIP;
    }
    return rc;
}

/* Sleep about 5 ms * 2^attempt, +-50 %, so contending writers spread out. */
static void backoff(int attempt)
{
    static _Thread_local unsigned seed;
    if (seed == 0)
        seed = (unsigned)tk_mono_ms() ^ (unsigned)(uintptr_t)&seed;
    long base_us = 5000L << (attempt < 6 ? attempt : 6);
    long us = base_us / 2 + (long)(rand_r(&seed) % (unsigned)base_us);
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* One attempt: BEGIN, body, COMMIT; rolls back on any failure. */
static int attempt_once(PGconn *conn, const char *correlation_id, tk_command_body_t *body,
                        void *arg, tk_err_t *err)
{
    tk_tx_t tx;
    /* BEGIN goes with the body's first statement, the outbox rows with the COMMIT: a command
     * that writes one row and emits one event costs two round trips, not four. */
    int rc = tk_pg_begin_deferred(conn, err);
    if (rc != 0)
        return rc;
    tk_tx__init_deferred(&tx, conn, correlation_id);
    rc = body(&tx, arg, err);
    if (rc > 0) /* not a contract value: treat as a bug rather than commit half a decision */
        rc = tk_err_set(err, TK_EINTERNAL, "", "command body returned %d", rc);
    if (rc == 0)
        rc = tk_tx__commit_deferred(&tx, err);
    else
        tk_tx__discard(&tx);
    if (rc != 0) {
        tk_pg_rollback(conn, NULL);
        if (tk_pg_broken(conn) && rc != TK_EUNAVAIL)
            rc = tk_err_set(err, TK_EUNAVAIL, "", "database connection lost: %s",
                            err ? err->message : "");
    }
    return rc;
}

int tk_command_run(PGconn *conn, const char *correlation_id, tk_command_body_t *body, void *arg,
                   tk_err_t *err)
{
    char generated[TK_UUID_LEN + 1];
    tk_err_t local;
    if (err == NULL)
        err = &local; /* the retry decision needs the detail */
    tk_err_clear(err);
    if (tk_pg_broken(conn))
        return tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        return tk_err_set(err, TK_EINTERNAL, "", "tk_command_run on a connection in a transaction");
    if (correlation_id == NULL) {
        tk_uuid_new(generated);
        correlation_id = generated;
    }
    int rc = 0;
    for (int attempt = 0; attempt < TK_COMMAND_MAX_ATTEMPTS; attempt++) {
        if (attempt > 0)
            backoff(attempt);
        tk_err_clear(err);
        rc = attempt_once(conn, correlation_id, body, arg, err);
        if (rc == 0 || !tk_pg_retryable(err))
            return rc;
    }
    /* Out of attempts: still a conflict, but no longer one for us to retry. */
    char last[sizeof(err->message)];
    memcpy(last, err->message, sizeof(last));
    return tk_err_set(err, TK_ECONFLICT, "", "gave up after %d attempts: %s",
                      TK_COMMAND_MAX_ATTEMPTS, last);
}

int tk_command_run_for(tk_http_req_t *req, tk_command_body_t *body, void *arg, tk_err_t *err)
{
    PGconn *db = tk_http_db(req, tk_http_route_ud(req), err);
    if (db == NULL)
        return err->code;
    return tk_command_run(db, tk_http_request_id(req), body, arg, err);
}

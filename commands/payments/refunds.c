/*
 * refunds.c - the one code path that gives money back (DESIGN.md section 5): refund intents
 * (refunds rows 'pending', written by tk_payments_refund_intent in the transaction that decided
 * them) carried out outside any transaction, and the worker thread that retries them.
 *
 * One intent, with the step behind each transition:
 *
 *   pending --claim: next_at <= now, FOR UPDATE SKIP LOCKED; attempts + 1, next_at = now + LEASE
 *      |       (committed at once, so another worker skips it while Stripe is called)
 *      +--tk_stripe_refund, key tk_payment_refund_key(order, PaymentIntent), no transaction open
 *            accepted: one transaction: status 'succeeded' + payment:refunded  -> succeeded (final)
 *            refused, unreachable: last_error, next_at = now + backoff(attempts) -> pending
 *
 * Why this is exactly one refund: every attempt of an intent carries the same Idempotency-Key, so
 * Stripe executes the first one that reaches it and replays that answer to the others (a lost
 * answer, a crash before 'succeeded' is written, two workers after a lease ran out); the
 * 'succeeded' update only applies to a pending row, so payment:refunded is emitted once. A
 * refusal is never final: it is retried with backoff (REFUND_BACKOFF_MS doubling up to
 * REFUND_BACKOFF_MAX_MS) until Stripe accepts, and /metrics shows the pending and the refused.
 *
 * The worker is a background thread of every payments server (tk_http_background): every POLL_MS
 * it settles stale charge attempts (attempts.c), runs the due intents, and refreshes the gauges.
 * POST /api/payments also runs its own order's intent right after writing it, through the same
 * function, so a customer is refunded without waiting for the poll.
 */
#include "payments.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tk/backoff.h"
#include "tk/cfg.h"
#include "tk/command.h"
#include "tk/log.h"
#include "tk/mem.h"
#include "tk/pg.h"
#include "tk/rows.h"

/* A claim's lease, "120 seconds" in claim()'s SQL: longer than one tk_stripe_refund with all its
 * attempts, so a live worker's intent is never claimed twice. */
#define POLL_MS 500
#define RECONNECT_MS 2000
#define BATCH 50

typedef struct claimed {
    char id[TK_UUID_LEN + 1];
    char order_id[TK_UUID_LEN + 1];
    char stripe_id[TK_STRIPE_ID_MAX + 1];
    char reason[EV_REASON_MAX + 1];
    int64_t version;
    int attempts;
} claimed_t;

/* Claim one due intent (of @p order_id, or any when NULL): 1 claimed, 0 none, or a tk_pg error. */
static int claim(PGconn *db, const char *order_id, claimed_t *out, tk_err_t *err)
{
    const char *params[] = {order_id};
    PGresult *res = tk_pg_exec_prepared(
        db,
        "UPDATE refunds SET attempts = attempts + 1, "
        "next_at = now() + interval '120 seconds' "
        "WHERE id = (SELECT id FROM refunds WHERE status = 'pending' AND next_at <= now() "
        "AND ($1::uuid IS NULL OR order_id = $1::uuid) "
        "ORDER BY next_at LIMIT 1 FOR UPDATE SKIP LOCKED) "
        "RETURNING id, order_id, stripe_id, reason, version, attempts",
        1, params, err);
    if (res == NULL)
        return err->code;
    int n = PQntuples(res);
    if (n == 1) {
        tk_row_text(res, 0, 0, out->id, sizeof(out->id));
        tk_row_text(res, 0, 1, out->order_id, sizeof(out->order_id));
        tk_row_text(res, 0, 2, out->stripe_id, sizeof(out->stripe_id));
        tk_row_text(res, 0, 3, out->reason, sizeof(out->reason));
        out->version = tk_row_int(res, 0, 4);
        out->attempts = atoi(PQgetvalue(res, 0, 5));
    }
    PQclear(res);
    return n == 1;
}

struct accepted {
    const claimed_t *c;
    const char *refund_id;
};

/* Stripe accepted: the row becomes final with payment:refunded, once. */
static int accepted_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    const struct accepted *a = arg;
    const char *params[] = {a->c->id, a->refund_id};
    int64_t updated = 0;
    int rc = tk_pg_run_prepared(
        tk_tx_conn(tx),
        "UPDATE refunds SET status = 'succeeded', refund_id = $2, last_error = NULL "
        "WHERE id = $1 AND status = 'pending'",
        2, params, &updated, err);
    if (rc != 0 || updated == 0)
        return rc;
    ev_payment_refunded_t ev = {0};
    snprintf(ev.id, sizeof(ev.id), "%s", a->c->id);
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", a->c->order_id);
    snprintf(ev.stripe_id, sizeof(ev.stripe_id), "%s", a->c->stripe_id);
    snprintf(ev.reason, sizeof(ev.reason), "%s", a->c->reason);
    return tk_tx_emit(tx, "payment:refunded", a->c->id, a->c->version,
                      ev_payment_refunded_to_json(&ev), err);
}

/* Stripe refused or could not be reached: try again after the backoff. */
static int refused(PGconn *db, const claimed_t *c, const tk_err_t *serr, tk_err_t *err)
{
    char wait[24];
    const tk_cfg_t *cfg = tk_cfg();
    snprintf(wait, sizeof(wait), "%lld",
             (long long)tk_payment_refund_backoff_ms(c->attempts, cfg->refund_backoff_ms,
                                                     cfg->refund_backoff_max_ms));
    char error[128];
    snprintf(error, sizeof(error), "%s", tk_err_name(serr->code));
    const char *params[] = {c->id, error, wait};
    tk_log(TK_LOG_ERROR, "payments", "refund refused, will retry",
           "\"alert\":\"refund_failed\",\"order_id\":\"%s\",\"stripe_id\":\"%s\",\"code\":\"%s\","
           "\"attempts\":%d,\"retry_in_ms\":%s",
           c->order_id, c->stripe_id, error, c->attempts, wait);
    return tk_pg_run_prepared(
        db,
        "UPDATE refunds SET last_error = $2, "
        "next_at = now() + make_interval(secs => $3::double precision / 1000) "
        "WHERE id = $1 AND status = 'pending'",
        3, params, NULL, err);
}

int tk_payments_refunds_run(PGconn *db, const char *order_id, int max, int *done, tk_err_t *err)
{
    int ok = 0, rc = 0;
    for (int i = 0; i < max; i++) {
        claimed_t c;
        if ((rc = claim(db, order_id, &c, err)) <= 0)
            break;
        char key[TK_STRIPE_KEY_MAX + 1];
        tk_payment_refund_key(c.order_id, c.stripe_id, key);
        tk_stripe_refund_req_t req = {.payment_intent = c.stripe_id,
                                      .order_id = c.order_id,
                                      .reason = c.reason,
                                      .idempotency_key = key};
        tk_stripe_refund_t out;
        tk_err_t serr = {0};
        if (tk_stripe_refund(NULL, &req, &out, &serr) != 0) {
            rc = refused(db, &c, &serr, err);
        } else {
            struct accepted a = {.c = &c, .refund_id = out.id};
            if ((rc = tk_command_run(db, NULL, accepted_body, &a, err)) == 0)
                ok++;
        }
        /* Not recorded (database down): the lease runs out and the intent is claimed again;
         * the same key makes Stripe answer from its record. */
        if (rc != 0)
            break;
    }
    if (done != NULL)
        *done = ok;
    return rc < 0 ? rc : 0;
}

int tk_payments_refund_counts(PGconn *db, tk_payment_refund_counts_t *out, tk_err_t *err)
{
    PGresult *res =
        tk_pg_exec_prepared(db,
                            "SELECT count(*), count(*) FILTER (WHERE last_error IS NOT NULL) "
                            "FROM refunds WHERE status = 'pending'",
                            0, NULL, err);
    if (res == NULL)
        return err->code;
    out->pending = atol(PQgetvalue(res, 0, 0));
    out->failed = atol(PQgetvalue(res, 0, 1));
    PQclear(res);
    return 0;
}

/* ---- the worker thread and its gauges ---- */

static atomic_long gauge_pending = -1, gauge_failed = -1; /* -1: not measured yet */

static char *metrics(void *arg)
{
    (void)arg;
    long pending = atomic_load(&gauge_pending), failed = atomic_load(&gauge_failed);
    if (pending < 0)
        return NULL;
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "# HELP tk_payments_refunds_pending Refunds decided, not yet accepted by "
                     "Stripe.\n"
                     "# TYPE tk_payments_refunds_pending gauge\n"
                     "tk_payments_refunds_pending %ld\n"
                     "# HELP tk_payments_refunds_failed Pending refunds whose last attempt failed "
                     "(retried with backoff).\n"
                     "# TYPE tk_payments_refunds_failed gauge\n"
                     "tk_payments_refunds_failed %ld\n",
                     pending, failed);
    return n < 0 || (size_t)n >= sizeof(buf) ? NULL : tk_mem_strdup(buf);
}

/* Settle charge attempts whose outcome stayed unknown (the client never came back): each under
 * its order's payment lock, only tried, so a request working on the order keeps it. */
static void reconcile_stale(PGconn *db)
{
    tk_payment_attempt_t a[16];
    tk_err_t err = {0};
    int n = tk_payments_attempts_pending(db, NULL, TK_PAYMENT_ATTEMPT_STALE_MS, a, 16, &err);
    for (int i = 0; i < n && !tk_pg_broken(db); i++) {
        if (tk_payments_lock(db, a[i].order_id, 0, &err) != 0)
            continue;
        char payment_id[TK_UUID_LEN + 1];
        bool refund = false;
        if (tk_payments_reconcile(db, &a[i], NULL, payment_id, &refund, &err) == TK_EUNAVAIL) {
            /* Still unknown: look again after TK_PAYMENT_ATTEMPT_STALE_MS, not every poll. */
            const char *params[] = {a[i].id};
            tk_pg_run_prepared(db, "UPDATE payment_attempts SET updated_at = now() WHERE id = $1",
                               1, params, NULL, &err);
        }
        tk_err_clear(&err);
        if (!tk_pg_broken(db))
            tk_payments_unlock(db, a[i].order_id);
    }
}

static void worker_main(tk_http_server_t *srv, void *arg, atomic_int *stop)
{
    (void)srv;
    (void)arg;
    PGconn *db = NULL;
    while (!atomic_load(stop)) {
        tk_err_t err = {0};
        if (db == NULL && (db = tk_pg_connect("payments", &err)) == NULL) {
            tk_nap(RECONNECT_MS, NULL);
            continue;
        }
        tk_payment_refund_counts_t n;
        reconcile_stale(db);
        if (tk_payments_refunds_run(db, NULL, BATCH, NULL, &err) == 0 &&
            tk_payments_refund_counts(db, &n, &err) == 0) {
            atomic_store(&gauge_pending, n.pending);
            atomic_store(&gauge_failed, n.failed);
        } else {
            tk_log(TK_LOG_WARN, "payments", "refund worker: database error", "\"code\":\"%s\"",
                   tk_err_name(err.code));
        }
        if (tk_pg_broken(db)) {
            PQfinish(db);
            db = NULL;
        }
        for (int waited = 0; waited < POLL_MS && !atomic_load(stop); waited += 100)
            tk_nap(100, NULL);
    }
    PQfinish(db);
}

void tk_payments_refund_worker(tk_http_server_t *srv)
{
    tk_http_background(srv, worker_main, NULL, NULL);
    tk_http_metrics(srv, metrics, NULL);
}

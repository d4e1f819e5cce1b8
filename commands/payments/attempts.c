/*
 * attempts.c - charge attempts and their reconciliation (issue 11: no double charge when a client
 * retries with a new card token). Table payment_attempts, schemas/sql/payments/004.
 *
 * The problem: Stripe charged, its answers timed out, the client got 503 and retries with a new
 * single-use token, hence a new Idempotency-Key: without more, a second PaymentIntent. So:
 *
 *   POST /api/payments, under the order's payment lock:
 *     every pending attempt of the order is reconciled first (tk_payments_reconcile):
 *       its PaymentIntent found succeeded -> stored as the order's payment, 201 with it, no
 *                                            new charge (or refunded when the order cannot
 *                                            take it any more)
 *       found not succeeded, or not found
 *       after TK_PAYMENT_SEARCH_SETTLE_MS -> failed; the new attempt may go on
 *       Stripe unreachable, or not found
 *       while Stripe's index may lag      -> 503, nothing new is charged
 *     then the attempt is committed (tk_payments_attempt_begin) before Stripe is called.
 *
 * The webhook (payment_intent.succeeded / payment_failed) and the refund worker (pending attempts
 * older than TK_PAYMENT_ATTEMPT_STALE_MS) reconcile the same way, so an unknown outcome is
 * settled even if the client never comes back: kept as the payment while the order can take it,
 * refunded otherwise.
 */
#include "payments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk/command.h"
#include "tk/log.h"
#include "tk/pg.h"
#include "tk/rows.h"

int tk_payments_attempt_begin(PGconn *db, const char *order_id, const char *key,
                              char id[TK_UUID_LEN + 1], tk_err_t *err)
{
    char fresh[TK_UUID_LEN + 1];
    tk_uuid_new(fresh);
    const char *params[] = {fresh, order_id, key};
    /* One attempt per key: a retry with the same token is the same attempt (same id, so the
     * same Stripe parameters, which an idempotent replay requires). */
    PGresult *res =
        tk_pg_exec_prepared(db,
                            "INSERT INTO payment_attempts (id, order_id, idempotency_key, "
                            "status) VALUES ($1, $2, $3, 'pending') "
                            "ON CONFLICT (idempotency_key) DO UPDATE SET status = "
                            "CASE WHEN payment_attempts.status = 'succeeded' THEN 'succeeded' "
                            "ELSE 'pending' END, updated_at = now() RETURNING id",
                            3, params, err);
    if (res == NULL)
        return err->code;
    snprintf(id, TK_UUID_LEN + 1, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int tk_payments_attempt_finish(PGconn *conn, const char *id, bool succeeded, const char *stripe_id,
                               tk_err_t *err)
{
    const char *params[] = {id, succeeded ? "succeeded" : "failed", stripe_id};
    return tk_pg_run_prepared(
        conn,
        "UPDATE payment_attempts SET status = $2, stripe_id = COALESCE($3, stripe_id), "
        "updated_at = now() WHERE id = $1 AND status <> 'succeeded'",
        3, params, NULL, err);
}

int tk_payments_attempts_pending(PGconn *db, const char *order_id, int64_t older_than_ms,
                                 tk_payment_attempt_t *out, int max, tk_err_t *err)
{
    char age[24], limit[24];
    snprintf(age, sizeof(age), "%lld", (long long)older_than_ms);
    snprintf(limit, sizeof(limit), "%d", max);
    const char *params[] = {order_id, age, limit};
    PGresult *res = tk_pg_exec_prepared(
        db,
        "SELECT id, order_id, idempotency_key, "
        "(extract(epoch FROM now() - created_at) * 1000)::bigint FROM payment_attempts "
        "WHERE status = 'pending' AND ($1::uuid IS NULL OR order_id = $1::uuid) "
        "AND updated_at <= now() - make_interval(secs => $2::double precision / 1000) "
        "ORDER BY created_at LIMIT $3::integer",
        3, params, err);
    if (res == NULL)
        return err->code;
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        tk_row_text(res, i, 0, out[i].id, sizeof(out[i].id));
        tk_row_text(res, i, 1, out[i].order_id, sizeof(out[i].order_id));
        tk_row_text(res, i, 2, out[i].key, sizeof(out[i].key));
        out[i].age_ms = tk_row_int(res, i, 3);
    }
    PQclear(res);
    return n;
}

int tk_payments_attempt_load(PGconn *db, const char *id, tk_payment_attempt_t *out, bool *pending,
                             tk_err_t *err)
{
    const char *params[] = {id};
    PGresult *res = tk_pg_exec_prepared(db,
                                        "SELECT id, order_id, idempotency_key, status, "
                                        "(extract(epoch FROM now() - created_at) * 1000)::bigint "
                                        "FROM payment_attempts WHERE id = $1",
                                        1, params, err);
    if (res == NULL)
        return err->code;
    int found = PQntuples(res) == 1;
    if (found) {
        tk_row_text(res, 0, 0, out->id, sizeof(out->id));
        tk_row_text(res, 0, 1, out->order_id, sizeof(out->order_id));
        tk_row_text(res, 0, 2, out->key, sizeof(out->key));
        *pending = strcmp(PQgetvalue(res, 0, 3), "succeeded") != 0;
        out->age_ms = tk_row_int(res, 0, 4);
    }
    PQclear(res);
    return found;
}

struct settle_cmd {
    const tk_payment_attempt_t *a;
    const char *stripe_id;
    tk_payment_stored_t stored;
    bool kept; /* the charge is the order's payment (now or already) */
};

/* The attempt's charge succeeded: mark it, and store it as the order's payment unless the order
 * cannot take it (then tk_payments_store wrote a refund intent). */
static int settle_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct settle_cmd *c = arg;
    c->kept = false;
    int rc = tk_payments_attempt_finish(tk_tx_conn(tx), c->a->id, true, c->stripe_id, err);
    if (rc != 0)
        return rc;
    rc = tk_payments_store(tx, c->a->order_id, c->stripe_id, &c->stored, err);
    if (rc == TK_EINVAL) {
        /* This very PaymentIntent is already the order's payment (settled before). */
        tk_err_clear(err);
        char pid[TK_UUID_LEN + 1];
        if ((rc = tk_payments_find(tk_tx_conn(tx), c->a->order_id, NULL, pid, err)) < 0)
            return rc;
        snprintf(c->stored.id, sizeof(c->stored.id), "%s", pid);
        c->stored.refund_reason = NULL;
        c->kept = true;
        return 0;
    }
    if (rc == 0)
        c->kept = c->stored.refund_reason == NULL;
    return rc;
}

int tk_payments_reconcile(PGconn *db, const tk_payment_attempt_t *a,
                          const tk_stripe_charge_t *known, char payment_id[TK_UUID_LEN + 1],
                          bool *refund, tk_err_t *err)
{
    tk_stripe_charge_t found;
    *refund = false;
    if (known == NULL) {
        int rc = tk_stripe_find_intent(NULL, a->id, &found, err);
        if (rc < 0)
            return tk_err_set(err, TK_EUNAVAIL, NULL,
                              "A previous payment attempt could not be verified, try again later");
        if (rc == 0) {
            if (a->age_ms < TK_PAYMENT_SEARCH_SETTLE_MS)
                return tk_err_set(err, TK_EUNAVAIL, NULL,
                                  "A previous payment attempt is being verified, try again later");
            return tk_payments_attempt_finish(db, a->id, false, NULL, err);
        }
        known = &found;
    }
    if (strcmp(known->status, "succeeded") != 0) {
        /* processing: the outcome is still to come (the webhook will tell). */
        if (strcmp(known->status, "processing") == 0)
            return tk_err_set(err, TK_EUNAVAIL, NULL,
                              "A previous payment attempt is being processed, try again later");
        return tk_payments_attempt_finish(db, a->id, false, known->id, err);
    }
    struct settle_cmd cmd = {.a = a, .stripe_id = known->id};
    tk_uuid_new(cmd.stored.id);
    int rc = tk_command_run(db, NULL, settle_body, &cmd, err);
    if (rc != 0)
        return rc;
    tk_log(TK_LOG_INFO, "payments", "charge attempt reconciled",
           "\"order_id\":\"%s\",\"attempt_id\":\"%s\",\"stripe_id\":\"%s\",\"kept\":%s",
           a->order_id, a->id, known->id, cmd.kept ? "true" : "false");
    if (cmd.kept) {
        snprintf(payment_id, TK_UUID_LEN + 1, "%s", cmd.stored.id);
        return 1;
    }
    *refund = cmd.stored.refund_reason != NULL;
    return 0;
}

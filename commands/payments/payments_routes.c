/*
 * payments_routes.c - POST /api/payments {token, orderId} (DESIGN.md sections 5, 8 and 9).
 *
 *   401 anonymous -> 400 body -> 404 order unknown or not a UUID
 *   per-order lock (PostgreSQL advisory lock, session level, on this worker's connection)
 *     -> 401 not the owner -> 400 cancelled -> 400 already paid
 *        -> 400 'Order has expired' (window closed, or now >= expiresAt) (tk_payment_decide)
 *     -> charge at Stripe, Idempotency-Key tk_payment_charge_key       (no transaction open)
 *          decline 400 with Stripe's message; Stripe down 503; Stripe failing 502
 *     -> tk_command_run(tk_payments_store): payments row + window 'paid' + payment:created
 *          -> 201 {id}; order cancelled meanwhile / paid by another charge: a refund intent is
 *          committed instead, 400 with the reason's message
 *   unlock; a refund intent just written is carried out at once (tk_payments_refunds_run, the
 *   worker's own function; if Stripe refuses, the worker retries it)
 *
 * Attempts (attempts.c): before charging, the order's other pending attempts (outcome unknown)
 * are reconciled: one that charged makes this request a 201 with that charge and no new one;
 * one still unknown makes it a 503. Then the attempt is committed, and its id sent as
 * metadata[attempt_id], before Stripe is called; a decline marks it failed, an unknown outcome
 * leaves it pending, success marks it succeeded in the store's transaction.
 *
 * The lock is also the arbiter's: the expiration reaction closes the order's payment window
 * under the same lock (tk_payments_expire), so a charge that started before expiresAt always
 * finishes deciding first, and one attempted at or after it never reaches Stripe.
 *
 * Why a lock as well as the idempotency key: the key alone already makes concurrent duplicates
 * of one payment a single charge (Stripe replays, or answers 409 while the first is in flight),
 * and UNIQUE(order_id) stores one payment. The lock makes duplicates wait for the first and then
 * answer 'Order already paid' from the database without calling Stripe at all, and it serialises
 * two different cards for one order, whose keys differ. It is an advisory lock on the worker's
 * own connection, so a crashed worker's lock goes with its connection; waiting is bounded.
 *
 * Why the charge is outside the transaction: a Stripe call must not hold row locks for seconds
 * and must not be repeated when tk_command_run re-runs a body; the transaction only stores its
 * outcome. If storing fails after a charge (database down), the charge is not lost: a retry of
 * the request with the same token has the same key, so Stripe replays the same PaymentIntent
 * and the retry stores it.
 *
 * Secrets: the card token is never logged, nor the idempotency key (it contains a hash of it).
 */
#include "payments.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tk/command.h"
#include "tk/consistency.h"
#include "tk/log.h"
#include "tk/pg.h"

#define LOCK_POLL_MS 25

/* The longest a payment can hold the lock: two Stripe calls (token -> payment method, intent)
 * and a refund, each with every attempt and backoff, plus slack for the database. */
int tk_payments_lock_wait_ms(void)
{
    tk_stripe_options_t o;
    tk_stripe_options_default(&o);
    long one = (long)o.max_attempts * o.timeout_ms + (long)(o.max_attempts - 1) * o.backoff_max_ms;
    long total = 3 * one + 5000;
    return total > 600000 ? 600000 : (int)total;
}

/* pg_try_advisory_lock polled until @p wait_ms: 0 locked, 1 still busy, or a tk_pg error. */
int tk_payments_lock(PGconn *db, const char *order_id, int wait_ms, tk_err_t *err)
{
    const char *params[] = {order_id};
    int64_t deadline = tk_mono_ms() + wait_ms;
    for (;;) {
        PGresult *res = tk_pg_exec_prepared(
            db, "SELECT pg_try_advisory_lock(hashtextextended('payments:' || lower($1), 0))", 1,
            params, err);
        if (res == NULL)
            return err->code;
        bool locked = PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (locked)
            return 0;
        if (tk_mono_ms() >= deadline)
            return 1;
        struct timespec ts = {0, LOCK_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void tk_payments_unlock(PGconn *db, const char *order_id)
{
    const char *params[] = {order_id};
    tk_err_t ignored = {0};
    /* On a broken connection the lock is already gone with the session. */
    tk_pg_run_prepared(db,
                       "SELECT pg_advisory_unlock(hashtextextended('payments:' || lower($1), 0))",
                       1, params, NULL, &ignored);
}

struct store_cmd {
    const char *order_id;
    const char *stripe_id;
    const char *attempt_id;
    tk_payment_stored_t stored;
};

static int store_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct store_cmd *cmd = arg;
    int rc = tk_payments_attempt_finish(tk_tx_conn(tx), cmd->attempt_id, true, cmd->stripe_id, err);
    return rc != 0 ? rc : tk_payments_store(tx, cmd->order_id, cmd->stripe_id, &cmd->stored, err);
}

/*
 * Before a new attempt: settle every other pending attempt of the order (their outcome is
 * unknown: the client may be retrying after a lost answer, with a new token). 1 when one of them
 * turns out to be the order's payment (@p payment_id), 0 when none is, or a negative TK_E*
 * (TK_EUNAVAIL while one stays unknown: nothing new is charged).
 */
static int reconcile_pending(PGconn *db, const char *order_id, const char *key,
                             char payment_id[TK_UUID_LEN + 1], bool *refund, tk_err_t *err)
{
    tk_payment_attempt_t pending[8];
    int n = tk_payments_attempts_pending(db, order_id, 0, pending, 8, err);
    for (int i = 0; i < n; i++) {
        if (strcmp(pending[i].key, key) == 0)
            continue; /* this very attempt: the charge below replays it under the same key */
        bool r = false;
        int rc = tk_payments_reconcile(db, &pending[i], NULL, payment_id, &r, err);
        *refund = *refund || r;
        if (rc != 0)
            return rc;
    }
    return n < 0 ? n : 0;
}

/*
 * Everything done under the lock. Replies nothing (the caller unlocks first, and a broken
 * connection must not be freed before): 0 with @p payment_id set, or a negative TK_E* in @p err;
 * *@p refund tells that a refund intent was committed for our charge.
 */
static int pay_locked(tk_http_req_t *req, PGconn *db, const tk_session_user_t *user,
                      const tk_payment_request_t *pr, char payment_id[TK_UUID_LEN + 1],
                      bool *refund, tk_err_t *err)
{
    tk_payment_order_t order;
    int rc = tk_payments_order_load(db, pr->order_id, false, &order, err);
    if (rc != 0)
        return rc;
    int window = tk_payments_window(db, order.id, err);
    if (window < 0)
        return window;
    if ((rc = tk_payments_find(db, order.id, NULL, NULL, err)) < 0)
        return rc;
    if (rc == 1)
        window = TK_PAYMENT_WINDOW_PAID;
    if ((rc = tk_payment_decide(&order, user->id, (tk_payment_window_t)window, tk_now_ms(), err)) !=
        0)
        return rc;

    char key[TK_STRIPE_KEY_MAX + 1], attempt_id[TK_UUID_LEN + 1];
    tk_payment_charge_key(order.id, pr->token, key);
    if ((rc = reconcile_pending(db, order.id, key, payment_id, refund, err)) != 0)
        return rc == 1 ? 0 : rc; /* 1: an earlier attempt paid the order; 201 with it */
    if ((rc = tk_payments_attempt_begin(db, order.id, key, attempt_id, err)) != 0)
        return rc;
    tk_stripe_charge_req_t creq = {.amount = tk_payment_amount(&order),
                                   .currency = TK_PAYMENT_CURRENCY,
                                   .payment = pr->token,
                                   .order_id = order.id,
                                   .attempt_id = attempt_id,
                                   .idempotency_key = key};
    tk_stripe_charge_t charge;
    if ((rc = tk_stripe_charge(NULL, &creq, &charge, err)) != 0) {
        if (rc == TK_EINVAL) {
            /* A decline: Stripe's message is meant for the customer. The attempt failed for
             * sure (a refused request charges nothing). */
            tk_err_t ignored = {0};
            tk_payments_attempt_finish(db, attempt_id, false, NULL, &ignored);
            return rc;
        }
        /* Unknown outcome: the attempt stays pending, reconciled before the next one. */
        tk_log(TK_LOG_WARN, "payments", "charge failed",
               "\"request_id\":\"%s\",\"order_id\":\"%s\",\"code\":\"%s\",\"attempts\":%d,"
               "\"detail\":\"%s\"",
               tk_http_request_id(req), order.id, tk_err_name(rc), charge.attempts, err->message);
        return tk_err_set(err, rc, NULL, "%s",
                          rc == TK_EUNAVAIL ? "Payment provider unavailable, try again later"
                                            : "Payment provider error, try again later");
    }

    struct store_cmd cmd = {.order_id = order.id, .stripe_id = charge.id, .attempt_id = attempt_id};
    tk_uuid_new(cmd.stored.id);
    rc = tk_command_run(db, tk_http_request_id(req), store_body, &cmd, err);
    if (rc == 0 && cmd.stored.refund_reason == NULL) {
        snprintf(payment_id, TK_UUID_LEN + 1, "%s", cmd.stored.id);
        /* Its effect on the order (order:completed, through payment:created) is the order's
         * next version: the owner's next read of the order waits for it. */
        tk_consistency_note(req, TK_CONSISTENCY_ORDER, order.id, order.version + 1);
        return 0;
    }
    if (rc == 0) {
        *refund = true;
        return tk_err_set(err, TK_EINVAL, NULL, "%s", cmd.stored.message);
    }
    if (rc != TK_EINVAL)
        tk_log(TK_LOG_ERROR, "payments", "charge not stored",
               "\"request_id\":\"%s\",\"order_id\":\"%s\",\"stripe_id\":\"%s\",\"code\":\"%s\"",
               tk_http_request_id(req), order.id, charge.id, tk_err_name(rc));
    return rc;
}

static void create_payment(tk_http_req_t *req)
{
    json_t *body = NULL;
    const tk_session_user_t *user = tk_http_user_body_or_respond(req, &body);
    if (user == NULL)
        return;
    tk_err_t err = {0};
    tk_payment_request_t pr;
    json_t *errors = json_array();
    int rc = tk_payment_request_parse(body, &pr, errors, &err);
    if (rc == TK_EINVAL) {
        tk_http_reply_errors(req, 400, errors);
        return;
    }
    json_decref(errors);
    if (rc != 0) {
        tk_http_reply_error(req, &err);
        return;
    }
    PGconn *db = tk_http_db(req, tk_http_route_ud(req), &err);
    if (db == NULL) {
        tk_http_reply_error(req, &err);
        return;
    }
    char payment_id[TK_UUID_LEN + 1] = "";
    bool refund = false;
    rc = tk_payments_lock(db, pr.order_id, tk_payments_lock_wait_ms(), &err);
    if (rc == 1)
        rc = tk_err_set(&err, TK_EUNAVAIL, NULL,
                        "A payment for this order is in progress, try again later");
    else if (rc == 0) {
        rc = pay_locked(req, db, user, &pr, payment_id, &refund, &err);
        if (!tk_pg_broken(db))
            tk_payments_unlock(db, pr.order_id);
    }
    if (refund && !tk_pg_broken(db)) {
        /* Give it back now rather than at the worker's next poll; a refusal stays pending. */
        tk_err_t rerr = {0};
        if (tk_payments_refunds_run(db, pr.order_id, 4, NULL, &rerr) != 0)
            tk_log(TK_LOG_WARN, "payments", "refund deferred to the worker",
                   "\"request_id\":\"%s\",\"order_id\":\"%s\",\"code\":\"%s\"",
                   tk_http_request_id(req), pr.order_id, tk_err_name(rerr.code));
    }
    if (tk_pg_broken(db))
        tk_http_db_discard(req,
                           tk_http_route_ud(req)); /* the lock, if held, went with the session */
    if (rc == 0)
        tk_http_reply_json(req, 201, json_pack("{s:s}", "id", payment_id));
    else
        tk_http_reply_error(req, &err);
}

void tk_payments_command_routes(tk_http_server_t *srv, const char *database)
{
    tk_http_route_with(srv, "POST", "/api/payments", create_payment, (void *)database, 0);
    tk_payments_webhook_routes(srv, database);
    tk_payments_refund_worker(srv);
}

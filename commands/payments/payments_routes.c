/*
 * payments_routes.c - POST /api/payments {token, orderId} (DESIGN.md sections 5, 8 and 9).
 *
 *   401 anonymous -> 400 body -> 404 order unknown or not a UUID
 *   per-order lock (PostgreSQL advisory lock, session level, on this worker's connection)
 *     -> 401 not the owner -> 400 cancelled -> 400 already paid        (tk_payment_decide)
 *     -> charge at Stripe, Idempotency-Key tk_payment_charge_key       (no transaction open)
 *          decline 400 with Stripe's message; Stripe down 503; Stripe failing 502
 *     -> tk_command_run(tk_payments_store): payments row + payment:created -> 201 {id}
 *          order cancelled meanwhile / paid by another charge: refund, record it with
 *          payment:refunded, 400 with the reason's message
 *   unlock
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
static int lock_wait_ms(void)
{
    tk_stripe_options_t o;
    tk_stripe_options_default(&o);
    long one = (long)o.max_attempts * o.timeout_ms + (long)(o.max_attempts - 1) * o.backoff_max_ms;
    long total = 3 * one + 5000;
    return total > 600000 ? 600000 : (int)total;
}

/* pg_try_advisory_lock polled until @p wait_ms: 0 locked, 1 still busy, or a tk_pg error. */
static int order_lock(PGconn *db, const char *order_id, int wait_ms, tk_err_t *err)
{
    const char *params[] = {order_id};
    int64_t deadline = tk_mono_ms() + wait_ms;
    for (;;) {
        PGresult *res = tk_pg_exec(
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

static void order_unlock(PGconn *db, const char *order_id)
{
    const char *params[] = {order_id};
    tk_err_t ignored = {0};
    /* On a broken connection the lock is already gone with the session. */
    tk_pg_run(db, "SELECT pg_advisory_unlock(hashtextextended('payments:' || lower($1), 0))", 1,
              params, NULL, &ignored);
}

struct store_cmd {
    const char *order_id;
    const char *stripe_id;
    tk_payment_stored_t stored;
};

static int store_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct store_cmd *cmd = arg;
    return tk_payments_store(tx, cmd->order_id, cmd->stripe_id, &cmd->stored, err);
}

struct refund_cmd {
    tk_payment_refund_t refund;
};

static int refund_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct refund_cmd *cmd = arg;
    int rc = tk_payments_record_refund(tx, &cmd->refund, err);
    return rc < 0 ? rc : 0;
}

/*
 * The charge could not be stored (@p reason): give it back and record that. Any failure is
 * logged as an alert (the refunds row says 'failed'); the client still gets the store's error.
 */
static void give_back(tk_http_req_t *req, PGconn *db, const char *payment_id, const char *order_id,
                      const char *stripe_id, const char *reason)
{
    tk_err_t err = {0};
    char refund_id[TK_STRIPE_ID_MAX + 1] = "";
    int rc = tk_payments_refund(order_id, stripe_id, reason, refund_id, &err);
    if (rc != 0)
        tk_log(TK_LOG_ERROR, "payments", "refund failed",
               "\"alert\":\"refund_failed\",\"request_id\":\"%s\",\"order_id\":\"%s\","
               "\"stripe_id\":\"%s\",\"code\":\"%s\"",
               tk_http_request_id(req), order_id, stripe_id, tk_err_name(rc));
    struct refund_cmd cmd = {.refund = {.payment_id = payment_id,
                                        .order_id = order_id,
                                        .stripe_id = stripe_id,
                                        .refund_id = rc == 0 ? refund_id : NULL,
                                        .reason = reason,
                                        .version = 0}};
    tk_err_clear(&err);
    if (tk_command_run(db, tk_http_request_id(req), refund_body, &cmd, &err) != 0) {
        tk_log(TK_LOG_ERROR, "payments", "refund not recorded",
               "\"alert\":\"refund_unrecorded\",\"request_id\":\"%s\",\"order_id\":\"%s\","
               "\"stripe_id\":\"%s\",\"code\":\"%s\"",
               tk_http_request_id(req), order_id, stripe_id, tk_err_name(err.code));
    }
}

/*
 * Everything done under the lock. Replies nothing (the caller unlocks first, and a broken
 * connection must not be freed before): 0 with @p payment_id set, or a negative TK_E* in @p err.
 */
static int pay_locked(tk_http_req_t *req, PGconn *db, const tk_session_user_t *user,
                      const tk_payment_request_t *pr, char payment_id[TK_UUID_LEN + 1],
                      tk_err_t *err)
{
    tk_payment_order_t order;
    int rc = tk_payments_order_load(db, pr->order_id, false, &order, err);
    if (rc != 0)
        return rc;
    if ((rc = tk_payments_find(db, order.id, NULL, NULL, err)) < 0)
        return rc;
    if ((rc = tk_payment_decide(&order, user->id, rc == 1, err)) != 0)
        return rc;

    char key[TK_STRIPE_KEY_MAX + 1];
    tk_payment_charge_key(order.id, pr->token, key);
    tk_stripe_charge_req_t creq = {.amount = tk_payment_amount(&order),
                                   .currency = TK_PAYMENT_CURRENCY,
                                   .payment = pr->token,
                                   .order_id = order.id,
                                   .idempotency_key = key};
    tk_stripe_charge_t charge;
    if ((rc = tk_stripe_charge(NULL, &creq, &charge, err)) != 0) {
        if (rc == TK_EINVAL)
            return rc; /* a decline: Stripe's message is meant for the customer */
        tk_log(TK_LOG_WARN, "payments", "charge failed",
               "\"request_id\":\"%s\",\"order_id\":\"%s\",\"code\":\"%s\",\"attempts\":%d,"
               "\"detail\":\"%s\"",
               tk_http_request_id(req), order.id, tk_err_name(rc), charge.attempts, err->message);
        return tk_err_set(err, rc, NULL, "%s",
                          rc == TK_EUNAVAIL ? "Payment provider unavailable, try again later"
                                            : "Payment provider error, try again later");
    }

    struct store_cmd cmd = {.order_id = order.id, .stripe_id = charge.id};
    tk_uuid_new(cmd.stored.id);
    rc = tk_command_run(db, tk_http_request_id(req), store_body, &cmd, err);
    if (rc == 0) {
        snprintf(payment_id, TK_UUID_LEN + 1, "%s", cmd.stored.id);
        /* Its effect on the order (order:completed, through payment:created) is the order's
         * next version: the owner's next read of the order waits for it. */
        tk_consistency_note(req, TK_CONSISTENCY_ORDER, order.id, order.version + 1);
        return 0;
    }
    if (cmd.stored.refund_reason != NULL)
        give_back(req, db, cmd.stored.id, order.id, charge.id, cmd.stored.refund_reason);
    else if (rc != TK_EINVAL)
        tk_log(TK_LOG_ERROR, "payments", "charge not stored",
               "\"request_id\":\"%s\",\"order_id\":\"%s\",\"stripe_id\":\"%s\",\"code\":\"%s\"",
               tk_http_request_id(req), order.id, charge.id, tk_err_name(rc));
    return rc;
}

static void create_payment(tk_http_req_t *req)
{
    const tk_session_user_t *user = tk_http_user_or_respond(req);
    if (user == NULL)
        return;
    json_t *body = tk_http_body_or_respond(req);
    if (body == NULL)
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
    PGconn *db = tk_http_db(req, "payments", &err);
    if (db == NULL) {
        tk_http_reply_error(req, &err);
        return;
    }
    char payment_id[TK_UUID_LEN + 1] = "";
    rc = order_lock(db, pr.order_id, lock_wait_ms(), &err);
    if (rc == 1)
        rc = tk_err_set(&err, TK_EUNAVAIL, NULL,
                        "A payment for this order is in progress, try again later");
    else if (rc == 0) {
        rc = pay_locked(req, db, user, &pr, payment_id, &err);
        if (!tk_pg_broken(db))
            order_unlock(db, pr.order_id);
    }
    if (tk_pg_broken(db))
        tk_http_db_discard(req, "payments"); /* the lock, if held, went with the session */
    if (rc == 0)
        tk_http_reply_json(req, 201, json_pack("{s:s}", "id", payment_id));
    else
        tk_http_reply_error(req, &err);
}

void tk_payments_command_routes(tk_http_server_t *srv)
{
    tk_http_route(srv, "POST", "/api/payments", create_payment, 0);
}

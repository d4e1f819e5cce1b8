/*
 * payment_store.c - the payments write model (schemas/sql/payments): reading the orders replica,
 * the payment window (the one arbiter of pay versus expire), storing a charge with
 * payment:created, closing a window with payment:expired, and writing refund intents.
 *
 * Invariants:
 *   - at most one payments row per order (UNIQUE order_id) and one window decision per order
 *     (payment_windows' primary key): 'paid' and 'expired' exclude each other whatever the
 *     concurrency, so an order gets payment:created or payment:expired, never both;
 *   - a decision commits with its event (tk_tx_emit in the same transaction), and a refund intent
 *     with the decision that caused it;
 *   - a charge is stored only if the order is not cancelled at that moment: the replica row is
 *     read FOR UPDATE, so the projector's order:cancelled either committed before (we see it and
 *     write a refund intent) or waits for our commit (and then its reaction writes one);
 *   - both deciders hold the order's payment lock (POST at session level around the charge, the
 *     expiration reaction at transaction level), so the expiration of an order whose charge is in
 *     flight waits for the charge's outcome, then sees 'paid' and changes nothing.
 */
#include "payments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk/pg.h"
#include "tk/rows.h"

#define ORDER_COLUMNS                                                                              \
    "id, user_id, price_cents, status, version, "                                                  \
    "COALESCE((extract(epoch FROM expires_at) * 1000)::bigint, 0)"

int tk_payments_order_load(PGconn *conn, const char *id, bool lock, tk_payment_order_t *out,
                           tk_err_t *err)
{
    memset(out, 0, sizeof(*out));
    PGresult *res =
        tk_row_by_id(conn,
                     lock ? "SELECT " ORDER_COLUMNS " FROM orders_replica "
                            "WHERE id = $1 FOR UPDATE"
                          : "SELECT " ORDER_COLUMNS " FROM orders_replica WHERE id = $1",
                     true, id, err);
    if (res == NULL)
        return err->code;
    tk_row_text(res, 0, 0, out->id, sizeof(out->id));
    tk_row_text(res, 0, 1, out->user_id, sizeof(out->user_id));
    out->price_cents = tk_row_int(res, 0, 2);
    int rc = 0;
    if (ev_order_status_parse(PQgetvalue(res, 0, 3), &out->status) != 0)
        rc = tk_err_set(err, TK_EINTERNAL, NULL, "order %s: unknown status", out->id);
    out->version = tk_row_int(res, 0, 4);
    out->expires_ms = tk_row_int(res, 0, 5);
    PQclear(res);
    return rc;
}

int tk_payments_find(PGconn *conn, const char *order_id, char stripe_id[TK_STRIPE_ID_MAX + 1],
                     char payment_id[TK_UUID_LEN + 1], tk_err_t *err)
{
    const char *params[] = {order_id};
    PGresult *res = tk_pg_exec_prepared(
        conn, "SELECT id, stripe_id FROM payments WHERE order_id = $1", 1, params, err);
    if (res == NULL)
        return err->code;
    int found = PQntuples(res) == 1;
    if (payment_id != NULL)
        snprintf(payment_id, TK_UUID_LEN + 1, "%s", found ? PQgetvalue(res, 0, 0) : "");
    if (stripe_id != NULL)
        snprintf(stripe_id, TK_STRIPE_ID_MAX + 1, "%s", found ? PQgetvalue(res, 0, 1) : "");
    PQclear(res);
    return found;
}

int tk_payments_window(PGconn *conn, const char *order_id, tk_err_t *err)
{
    const char *params[] = {order_id};
    PGresult *res = tk_pg_exec_prepared(
        conn, "SELECT outcome FROM payment_windows WHERE order_id = $1", 1, params, err);
    if (res == NULL)
        return err->code;
    int w = TK_PAYMENT_WINDOW_OPEN;
    if (PQntuples(res) == 1)
        w = strcmp(PQgetvalue(res, 0, 0), "paid") == 0 ? TK_PAYMENT_WINDOW_PAID
                                                       : TK_PAYMENT_WINDOW_EXPIRED;
    PQclear(res);
    return w;
}

int tk_payments_lock_xact(tk_tx_t *tx, const char *order_id, tk_err_t *err)
{
    const char *params[] = {order_id};
    /* The key of payments_routes.c's session lock: the two kinds conflict with each other. */
    return tk_pg_run_prepared(
        tk_tx_conn(tx),
        "SELECT pg_advisory_xact_lock(hashtextextended('payments:' || lower($1), 0))", 1, params,
        NULL, err);
}

/* Our charge cannot be kept: write its refund intent, and say why. */
static int refuse(tk_tx_t *tx, const tk_payment_order_t *o, const char *stripe_id,
                  tk_payment_stored_t *out, const char *reason, const char *message, tk_err_t *err)
{
    tk_payment_refund_t r = {.payment_id = out->id,
                             .order_id = o->id,
                             .stripe_id = stripe_id,
                             .reason = reason,
                             .version = 0};
    int rc = tk_payments_refund_intent(tx, &r, err);
    if (rc < 0)
        return rc;
    out->refund_reason = reason;
    out->message = message;
    return 0;
}

int tk_payments_store(tk_tx_t *tx, const char *order_id, const char *stripe_id,
                      tk_payment_stored_t *out, tk_err_t *err)
{
    PGconn *c = tk_tx_conn(tx);
    tk_payment_order_t o;
    int rc;
    out->refund_reason = out->message = NULL;
    if ((rc = tk_payments_order_load(c, order_id, true, &o, err)) != 0)
        return rc;
    if (o.status == EV_ORDER_CANCELLED)
        return refuse(tx, &o, stripe_id, out, "order cancelled",
                      "Cannot pay for an cancelled order", err);
    char stored[TK_STRIPE_ID_MAX + 1];
    if ((rc = tk_payments_find(c, o.id, stored, NULL, err)) < 0)
        return rc;
    if (rc == 1) {
        /* The same PaymentIntent: a concurrent duplicate of this very payment, nothing to give
         * back. Another one: the order was paid with another card meanwhile; ours goes back. */
        if (strcmp(stored, stripe_id) == 0)
            return tk_err_set(err, TK_EINVAL, NULL, "Order already paid");
        return refuse(tx, &o, stripe_id, out, "duplicate payment", "Order already paid", err);
    }
    /* Decide the window: it can only be open here (the caller holds the order's payment lock and
     * saw it open), unless that lock was lost with a connection; then the decision stands. */
    const char *wparams[] = {o.id};
    int64_t decided = 0;
    rc = tk_pg_run_prepared(c,
                            "INSERT INTO payment_windows (order_id, outcome) VALUES ($1, 'paid') "
                            "ON CONFLICT (order_id) DO NOTHING",
                            1, wparams, &decided, err);
    if (rc != 0)
        return rc;
    if (decided == 0)
        return refuse(tx, &o, stripe_id, out, "order expired", "Order has expired", err);
    const char *params[] = {out->id, o.id, stripe_id};
    if ((rc = tk_pg_run_prepared(
             c, "INSERT INTO payments (id, order_id, stripe_id) VALUES ($1, $2, $3)", 3, params,
             NULL, err)) != 0)
        return rc;
    ev_payment_created_t ev = {0};
    snprintf(ev.id, sizeof(ev.id), "%s", out->id);
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", o.id);
    snprintf(ev.stripe_id, sizeof(ev.stripe_id), "%s", stripe_id);
    return tk_tx_emit(tx, "payment:created", out->id, 0, ev_payment_created_to_json(&ev), err);
}

int tk_payments_expire(tk_tx_t *tx, const char *order_id, tk_err_t *err)
{
    int rc = tk_payments_lock_xact(tx, order_id, err);
    if (rc != 0)
        return rc;
    const char *params[] = {order_id};
    int64_t closed = 0;
    rc =
        tk_pg_run_prepared(tk_tx_conn(tx),
                           "INSERT INTO payment_windows (order_id, outcome) VALUES ($1, 'expired') "
                           "ON CONFLICT (order_id) DO NOTHING",
                           1, params, &closed, err);
    if (rc != 0 || closed == 0)
        return rc;
    ev_payment_expired_t ev = {0};
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
    /* Keyed by the order: the window's one decision, on the payments topic. */
    rc = tk_tx_emit(tx, "payment:expired", order_id, 0, ev_payment_expired_to_json(&ev), err);
    return rc != 0 ? rc : 1;
}

int tk_payments_refund_intent(tk_tx_t *tx, const tk_payment_refund_t *r, tk_err_t *err)
{
    char version[24];
    snprintf(version, sizeof(version), "%lld", (long long)r->version);
    const char *params[] = {r->payment_id, r->order_id, r->stripe_id, r->reason, version};
    int64_t inserted = 0;
    int rc =
        tk_pg_run_prepared(tk_tx_conn(tx),
                           "INSERT INTO refunds (id, order_id, stripe_id, reason, status, version) "
                           "VALUES ($1, $2, $3, $4, 'pending', $5::integer) "
                           "ON CONFLICT (order_id, stripe_id) DO NOTHING",
                           5, params, &inserted, err);
    return rc != 0 ? rc : (int)inserted;
}

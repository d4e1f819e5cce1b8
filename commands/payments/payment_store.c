/*
 * payment_store.c - the payments write model (schemas/sql/payments): reading the orders replica,
 * storing a charge with payment:created, and recording refunds with payment:refunded.
 *
 * Invariants:
 *   - at most one payments row per order (UNIQUE order_id): a second store for an order inserts
 *     nothing, whatever the concurrency;
 *   - a payments row and its payment:created outbox row commit together, and a refunds row and its
 *     payment:refunded together (tk_tx_emit in the same transaction);
 *   - a charge is stored only if the order is not cancelled at that moment: the replica row is
 *     read FOR UPDATE, so the projector's order:cancelled either committed before (we see it and
 *     refund) or waits for our commit (and then its reaction sees the payment and refunds it).
 */
#include "payments.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk/pg.h"

int tk_payments_order_load(PGconn *conn, const char *id, bool lock, tk_payment_order_t *out,
                           tk_err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (!tk_uuid_valid(id))
        return tk_err_set(err, TK_ENOTFOUND, NULL, "Not Found");
    const char *params[] = {id};
    PGresult *res = tk_pg_exec(conn,
                               lock ? "SELECT id, user_id, price_cents, status, version "
                                      "FROM orders_replica WHERE id = $1 FOR UPDATE"
                                    : "SELECT id, user_id, price_cents, status, version "
                                      "FROM orders_replica WHERE id = $1",
                               1, params, err);
    if (res == NULL)
        return err->code;
    int rc = 0;
    if (PQntuples(res) != 1) {
        rc = tk_err_set(err, TK_ENOTFOUND, NULL, "Not Found");
        goto out;
    }
    snprintf(out->id, sizeof(out->id), "%s", PQgetvalue(res, 0, 0));
    snprintf(out->user_id, sizeof(out->user_id), "%s", PQgetvalue(res, 0, 1));
    out->price_cents = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    if (ev_order_status_parse(PQgetvalue(res, 0, 3), &out->status) != 0)
        rc = tk_err_set(err, TK_EINTERNAL, NULL, "order %s: unknown status", out->id);
    out->version = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
out:
    PQclear(res);
    return rc;
}

int tk_payments_find(PGconn *conn, const char *order_id, char stripe_id[TK_STRIPE_ID_MAX + 1],
                     char payment_id[TK_UUID_LEN + 1], tk_err_t *err)
{
    const char *params[] = {order_id};
    PGresult *res =
        tk_pg_exec(conn, "SELECT id, stripe_id FROM payments WHERE order_id = $1", 1, params, err);
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

int tk_payments_store(tk_tx_t *tx, const char *order_id, const char *stripe_id,
                      tk_payment_stored_t *out, tk_err_t *err)
{
    PGconn *c = tk_tx_conn(tx);
    tk_payment_order_t o;
    int rc;
    out->refund_reason = NULL;
    if ((rc = tk_payments_order_load(c, order_id, true, &o, err)) != 0)
        return rc;
    if (o.status == EV_ORDER_CANCELLED) {
        out->refund_reason = "order cancelled";
        return tk_err_set(err, TK_EINVAL, NULL, "Cannot pay for an cancelled order");
    }
    const char *params[] = {out->id, o.id, stripe_id};
    int64_t inserted = 0;
    rc = tk_pg_run(c,
                   "INSERT INTO payments (id, order_id, stripe_id) VALUES ($1, $2, $3) "
                   "ON CONFLICT (order_id) DO NOTHING",
                   3, params, &inserted, err);
    if (rc != 0)
        return rc;
    if (inserted == 0) {
        char stored[TK_STRIPE_ID_MAX + 1];
        if ((rc = tk_payments_find(c, o.id, stored, NULL, err)) < 0)
            return rc;
        /* The same PaymentIntent: a concurrent duplicate of this very payment, nothing to give
         * back. Another one: the order was paid with another card meanwhile; ours goes back. */
        if (strcmp(stored, stripe_id) != 0)
            out->refund_reason = "duplicate payment";
        return tk_err_set(err, TK_EINVAL, NULL, "Order already paid");
    }
    ev_payment_created_t ev = {0};
    snprintf(ev.id, sizeof(ev.id), "%s", out->id);
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", o.id);
    snprintf(ev.stripe_id, sizeof(ev.stripe_id), "%s", stripe_id);
    return tk_tx_emit(tx, "payment:created", out->id, 0, ev_payment_created_to_json(&ev), err);
}

int tk_payments_record_refund(tk_tx_t *tx, const tk_payment_refund_t *r, tk_err_t *err)
{
    const char *status = r->refund_id != NULL ? "succeeded" : "failed";
    const char *params[] = {r->payment_id, r->order_id, r->stripe_id,
                            r->refund_id,  r->reason,   status};
    /* A failed attempt may be followed by a successful one (the row is upgraded); a success is
     * final, so repeating it (a re-run batch, a retried request) changes nothing. */
    PGresult *res = tk_pg_exec(tk_tx_conn(tx),
                               "INSERT INTO refunds (id, order_id, stripe_id, refund_id, reason, "
                               "status) VALUES ($1, $2, $3, $4, $5, $6) "
                               "ON CONFLICT (order_id, stripe_id) DO UPDATE SET "
                               "refund_id = EXCLUDED.refund_id, status = EXCLUDED.status "
                               "WHERE refunds.status = 'failed' AND EXCLUDED.status = 'succeeded' "
                               "RETURNING id",
                               6, params, err);
    if (res == NULL)
        return err->code;
    int changed = PQntuples(res) == 1;
    char id[TK_UUID_LEN + 1];
    snprintf(id, sizeof(id), "%s", changed ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    if (!changed || r->refund_id == NULL)
        return 0;
    ev_payment_refunded_t ev = {0};
    snprintf(ev.id, sizeof(ev.id), "%s", id);
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", r->order_id);
    snprintf(ev.stripe_id, sizeof(ev.stripe_id), "%s", r->stripe_id);
    snprintf(ev.reason, sizeof(ev.reason), "%s", r->reason);
    int rc =
        tk_tx_emit(tx, "payment:refunded", id, r->version, ev_payment_refunded_to_json(&ev), err);
    return rc != 0 ? rc : 1;
}

int tk_payments_refund(const char *order_id, const char *stripe_id, const char *reason,
                       char refund_id[TK_STRIPE_ID_MAX + 1], tk_err_t *err)
{
    char key[TK_STRIPE_KEY_MAX + 1];
    tk_payment_refund_key(order_id, stripe_id, key);
    tk_stripe_refund_req_t req = {.payment_intent = stripe_id,
                                  .order_id = order_id,
                                  .reason = reason,
                                  .idempotency_key = key};
    tk_stripe_refund_t out;
    int rc = tk_stripe_refund(NULL, &req, &out, err);
    snprintf(refund_id, TK_STRIPE_ID_MAX + 1, "%s", rc == 0 ? out.id : "");
    return rc;
}

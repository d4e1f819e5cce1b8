/*
 * orders_replica.c - payments' replica of the orders context (DESIGN.md section 5, last bullet),
 * fed from topic `orders`, and the refund reaction to a late cancellation.
 *
 * The replica follows every version of every order, in order:
 *
 *   order:created (v0)          insert; an order already there is a duplicate   -> OK | SKIP
 *   order:cancelled (v),
 *   order:completed (v)         stored == v - 1: apply                           -> OK
 *                               stored >= v:     a duplicate or stale            -> SKIP
 *                               stored <  v - 1, or no row yet: a gap            -> RETRY
 *
 * On RETRY the projector loop holds the record back and retries with backoff, and after
 * tk_cfg()->gap_timeout_ms dead-letters it with an alert: never dropped silently, never applied
 * over a state it was not computed from.
 *
 * The reaction: an order:cancelled that applies to an order with a stored payment means orders
 * cancelled it (the owner's DELETE) before it saw our payment:created, so orders will never
 * complete it: a refund intent is written in this transaction (tk_payments_refund_intent), and
 * the payments refund worker carries it out and publishes payment:refunded. No Stripe call
 * happens here: a projector's transaction only records what must be done.
 *
 * order:created also brings the order's expiresAt, which POST /api/payments checks.
 */
#include "payments_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ev_catalog.h"
#include "ev_order.h"
#include "payments.h"
#include "tk/pg.h"

static int apply_created(tk_tx_t *tx, const ev_order_created_t *o, tk_err_t *err)
{
    char cents[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)o->ticket.price_cents);
    const char *status = ev_order_status_name(o->status);
    const char *params[] = {o->id, o->user_id, cents, status ? status : "created", o->expires_at};
    int64_t inserted = 0;
    int rc = tk_pg_run(tk_tx_conn(tx),
                       "INSERT INTO orders_replica (id, user_id, price_cents, status, version, "
                       "expires_at) VALUES ($1, $2, $3::bigint, $4, 0, $5::timestamptz) "
                       "ON CONFLICT (id) DO NOTHING",
                       5, params, &inserted, err);
    if (rc != 0)
        return rc;
    return inserted == 1 ? TK_APPLY_OK : TK_APPLY_SKIP;
}

/* A payment stored for an order that has just been cancelled goes back to the customer. */
static int refund_if_paid(tk_tx_t *tx, const char *order_id, tk_err_t *err)
{
    char stripe_id[TK_STRIPE_ID_MAX + 1], payment_id[TK_UUID_LEN + 1];
    int rc = tk_payments_find(tk_tx_conn(tx), order_id, stripe_id, payment_id, err);
    if (rc <= 0)
        return rc;
    tk_payment_refund_t r = {.payment_id = payment_id,
                             .order_id = order_id,
                             .stripe_id = stripe_id,
                             .reason = "order cancelled",
                             .version = 1};
    rc = tk_payments_refund_intent(tx, &r, err);
    return rc < 0 ? rc : 0;
}

static int apply_change(tk_tx_t *tx, const ev_order_ref_t *o, ev_order_status_t status,
                        tk_err_t *err)
{
    char version[24];
    snprintf(version, sizeof(version), "%lld", (long long)o->version);
    const char *params[] = {o->id, ev_order_status_name(status), version};
    int64_t updated = 0;
    int rc = tk_pg_run(tk_tx_conn(tx),
                       "UPDATE orders_replica SET status = $2, version = $3::integer "
                       "WHERE id = $1 AND version = $3::integer - 1",
                       3, params, &updated, err);
    if (rc != 0)
        return rc;
    if (updated == 1) {
        if (status == EV_ORDER_CANCELLED && (rc = refund_if_paid(tx, o->id, err)) < 0)
            return rc;
        return TK_APPLY_OK;
    }
    PGresult *res = tk_pg_exec(tk_tx_conn(tx), "SELECT version FROM orders_replica WHERE id = $1",
                               1, params, err);
    if (res == NULL)
        return err->code;
    int64_t stored = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    if (stored >= o->version)
        return TK_APPLY_SKIP;
    tk_err_set(err, TK_ECONFLICT, "version", "order %s: replica at version %lld, event at %lld",
               o->id, (long long)stored, (long long)o->version);
    return TK_APPLY_RETRY;
}

static int replica_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    (void)ud;
    int rc;
    if (strcmp(env->type, "order:created") == 0) {
        ev_order_created_t o;
        if ((rc = ev_order_created_from_json(env->data, &o, err)) != 0)
            return rc;
        return apply_created(tx, &o, err);
    }
    ev_order_ref_t ref;
    if (strcmp(env->type, "order:cancelled") == 0) {
        if ((rc = ev_order_cancelled_from_json(env->data, &ref, err)) != 0)
            return rc;
        return apply_change(tx, &ref, EV_ORDER_CANCELLED, err);
    }
    if (strcmp(env->type, "order:completed") == 0) {
        if ((rc = ev_order_completed_from_json(env->data, &ref, err)) != 0)
            return rc;
        return apply_change(tx, &ref, EV_ORDER_COMPLETE, err);
    }
    return TK_APPLY_SKIP;
}

static const char *const replica_topics[] = {EV_TOPIC_ORDERS, NULL};

const tk_projector_spec_t tk_payments_replica_projector = {
    .context = "payments",
    .name = "orders_replica",
    .topics = replica_topics,
    .apply = replica_apply,
};

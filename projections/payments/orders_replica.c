/*
 * orders_replica.c - payments' replica of the orders context (DESIGN.md section 5, last bullet),
 * fed from topic `orders`.
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
 * An order:cancelled that applies is handed, in this transaction, to the hook the context's
 * wiring gives as user data (tk_payments_replica_hooks_t): the payments policy on a late
 * cancellation lives with the write side (commands/payments), this file only keeps the replica.
 *
 * order:created also brings the order's expiresAt, which POST /api/payments checks.
 */
#include "payments_read.h"

#include <stdio.h>
#include <string.h>

#include "ev_catalog.h"
#include "ev_order.h"
#include "tk/replica.h"

static int apply_created(tk_tx_t *tx, const ev_order_created_t *o, tk_err_t *err)
{
    char cents[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)o->ticket.price_cents);
    const char *status = ev_order_status_name(o->status);
    const char *params[] = {o->id, o->user_id, cents, status ? status : "created", o->expires_at};
    return tk_replica_insert(tx,
                             "INSERT INTO orders_replica (id, user_id, price_cents, status, "
                             "version, expires_at) VALUES ($1, $2, $3::bigint, $4, 0, "
                             "$5::timestamptz) ON CONFLICT (id) DO NOTHING",
                             5, params, err);
}

static int apply_change(tk_tx_t *tx, const ev_order_ref_t *o, ev_order_status_t status,
                        const tk_payments_replica_hooks_t *hooks, tk_err_t *err)
{
    char version[24];
    snprintf(version, sizeof(version), "%lld", (long long)o->version);
    const char *params[] = {o->id, ev_order_status_name(status), version};
    int rc = tk_replica_update(tx,
                               "UPDATE orders_replica SET status = $2, version = $3::integer "
                               "WHERE id = $1 AND version = $3::integer - 1",
                               3, params, "orders_replica", "order", o->version, err);
    if (rc != TK_APPLY_OK)
        return rc;
    /* The change applied: the write side's policy on it, in this transaction. */
    if (status == EV_ORDER_CANCELLED && hooks != NULL && hooks->order_cancelled != NULL &&
        (rc = hooks->order_cancelled(tx, o->id, hooks->ud, err)) < 0)
        return rc;
    return TK_APPLY_OK;
}

int tk_payments_replica_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    const tk_payments_replica_hooks_t *hooks = ud;
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
        return apply_change(tx, &ref, EV_ORDER_CANCELLED, hooks, err);
    }
    if (strcmp(env->type, "order:completed") == 0) {
        if ((rc = ev_order_completed_from_json(env->data, &ref, err)) != 0)
            return rc;
        return apply_change(tx, &ref, EV_ORDER_COMPLETE, hooks, err);
    }
    return TK_APPLY_SKIP;
}

const char *const tk_payments_replica_topics[] = {EV_TOPIC_ORDERS, NULL};

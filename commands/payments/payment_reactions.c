/*
 * payment_reactions.c - the payments context's policies (DESIGN.md sections 5 and 7).
 *
 * The reaction to the expiration scheduler, fed from topic `expirations`:
 *
 *   expiration:complete {orderId}  tk_payments_expire: under the order's payment lock, a still
 *                                  open payment window closes ('expired') and payment:expired
 *                                  {orderId} is emitted on topic payments, keyed by the order;
 *                                  a window already decided (paid, or expired by a duplicate
 *                                  firing) is skipped.
 *
 * This is what makes payments the one arbiter of pay versus expire: orders no longer cancels on
 * expiration:complete, it cancels on payment:expired, which is never emitted for an order whose
 * payment was accepted. The write and its event commit with the consumed offset (exactly once);
 * waiting for a charge in flight holds this projector's batch back for that charge's duration.
 *
 * The refund of a late cancellation (tk_payments_on_order_cancelled), which the orders replica
 * (projections/payments/orders_replica.c) runs in its transaction once it applied an
 * order:cancelled: a payment stored for that order means orders cancelled it (the owner's DELETE)
 * before it saw our payment:created, so orders will never complete it, and the money goes back.
 * Only the intent is written here; the refund worker (refunds.c) calls Stripe, outside any
 * transaction, and publishes payment:refunded.
 */
#include "payments.h"

#include <string.h>

#include "ev_catalog.h"
#include "ev_expiration.h"

static int reactions_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    (void)ud;
    if (strcmp(env->type, "expiration:complete") != 0)
        return TK_APPLY_SKIP;
    ev_expiration_complete_t e;
    int rc = ev_expiration_complete_from_json(env->data, &e, err);
    if (rc != 0)
        return rc;
    rc = tk_payments_expire(tx, e.order_id, err);
    if (rc < 0)
        return rc;
    return rc == 1 ? TK_APPLY_OK : TK_APPLY_SKIP;
}

int tk_payments_on_order_cancelled(tk_tx_t *tx, const char *order_id, void *ud, tk_err_t *err)
{
    (void)ud;
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

static const char *const reactions_topics[] = {EV_TOPIC_EXPIRATIONS, NULL};

const tk_projector_spec_t tk_payments_reactions_projector = {
    .context = "payments",
    .name = "reactions",
    .topics = reactions_topics,
    .apply = reactions_apply,
};

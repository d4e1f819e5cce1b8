/*
 * order_reactions.c - the orders context's reactions (DESIGN.md sections 5 and 7), fed from
 * topic `payments`, where the payments context publishes the one decision it takes per order
 * (pay versus expire) keyed by the order:
 *
 *   payment:expired {orderId}      the order's payment window closed unpaid: tk_orders_cancel as
 *                                  the system (the function DELETE uses): a live order is
 *                                  cancelled and order:cancelled emitted; a cancelled, complete
 *                                  or unknown order is skipped.
 *   payment:created {orderId}      tk_orders_complete: a live order becomes complete and
 *                                  order:completed is emitted; otherwise skipped.
 *
 * Orders does not react to expiration:complete itself: the scheduler's firing races with a
 * payment on another topic, and a late payment:created would then find the order cancelled.
 * Payments decides (DESIGN.md section 5) and orders applies the decision, whatever the lag.
 *
 * The write and its follow-up event commit in the projector's transaction with the consumed
 * offset (exactly once); a lost race with a concurrent DELETE is a retryable conflict that the
 * loop runs again on the winner's state.
 */
#include "orders.h"

#include <string.h>

#include "ev_catalog.h"
#include "ev_payment.h"
#include "tk/command.h"

static int reactions_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    (void)ud;
    int rc;
    if (strcmp(env->type, "payment:expired") == 0) {
        ev_payment_expired_t e;
        if ((rc = ev_payment_expired_from_json(env->data, &e, err)) != 0)
            return rc;
        rc = tk_orders_cancel(tx, e.order_id, NULL, NULL, err);
        /* A complete order (TK_EINVAL) stays complete: nothing to do, as for a no-op. */
        return tk_command_reaction_result(rc == TK_EINVAL ? 0 : rc, err);
    }
    if (strcmp(env->type, "payment:created") == 0) {
        ev_payment_created_t p;
        if ((rc = ev_payment_created_from_json(env->data, &p, err)) != 0)
            return rc;
        return tk_command_reaction_result(tk_orders_complete(tx, p.order_id, err), err);
    }
    return TK_APPLY_SKIP; /* payment:refunded: nothing to do here */
}

static const char *const reactions_topics[] = {EV_TOPIC_PAYMENTS, NULL};

const tk_projector_spec_t tk_orders_reactions_projector = {
    .context = "orders",
    .name = "reactions",
    .topics = reactions_topics,
    .apply = reactions_apply,
};

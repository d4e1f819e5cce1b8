/*
 * payment_reactions.c - the payments context's reaction to the expiration scheduler (DESIGN.md
 * sections 5 and 7), fed from topic `expirations`:
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
 */
#include "payments_read.h"

#include <string.h>

#include "ev_catalog.h"
#include "ev_expiration.h"
#include "payments.h"

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

static const char *const reactions_topics[] = {EV_TOPIC_EXPIRATIONS, NULL};

const tk_projector_spec_t tk_payments_reactions_projector = {
    .context = "payments",
    .name = "reactions",
    .topics = reactions_topics,
    .apply = reactions_apply,
};

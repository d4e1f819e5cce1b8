/*
 * ticket_reactions.c - the tickets context's reactions to topic `orders` (DESIGN.md section 5):
 * order:created reserves the ticket, order:cancelled frees it, order:completed changes nothing
 * (the ticket stays reserved for good). Each event is recorded in the ticket's ledger of orders
 * and the reservation follows the ledger (tk_tickets_track_order), because one ticket's order
 * events travel on different partitions and may arrive in any order.
 *
 * Why a projector and not a consumer of its own: the loop runs apply inside the transaction that
 * also stores the consumed offset, and the reaction writes through the same functions as
 * PUT /api/tickets/:id (tk_tickets_track_order -> tk_tickets_write), whose ticket:updated lands
 * in the outbox of that transaction. The state change, the follow-up event and the offset
 * therefore commit together: each order event changes its ticket exactly once, and a lost race
 * with a concurrent edit is a retryable conflict the loop runs again.
 *
 * An order for a ticket this context does not know is not for us (TK_APPLY_SKIP): the topic is
 * shared, and orders only accepts tickets it replicated from here, so it cannot be a lost update.
 */
#include "tickets.h"

#include <string.h>

#include "ev_catalog.h"
#include "ev_order.h"
#include "tk/command.h"

static int reactions_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    (void)ud;
    int rc;
    if (strcmp(env->type, "order:created") == 0) {
        ev_order_created_t o;
        if ((rc = ev_order_created_from_json(env->data, &o, err)) != 0)
            return rc;
        rc = tk_tickets_track_order(tx, o.ticket.id, o.id, true, env->time, err);
    } else if (strcmp(env->type, "order:cancelled") == 0 ||
               strcmp(env->type, "order:completed") == 0) {
        ev_order_ref_t o;
        bool cancelled = strcmp(env->type, "order:cancelled") == 0;
        if ((rc = cancelled ? ev_order_cancelled_from_json(env->data, &o, err)
                            : ev_order_completed_from_json(env->data, &o, err)) != 0)
            return rc;
        rc = tk_tickets_track_order(tx, o.ticket.id, o.id, !cancelled, env->time, err);
    } else {
        return TK_APPLY_SKIP;
    }
    return tk_command_reaction_result(rc, err); /* 0 or TK_ENOTFOUND (not ours): skipped */
}

static const char *const reactions_topics[] = {EV_TOPIC_ORDERS, NULL};

const tk_projector_spec_t tk_tickets_reactions_projector = {
    .context = "tickets",
    .name = "reactions",
    .topics = reactions_topics,
    .apply = reactions_apply,
};

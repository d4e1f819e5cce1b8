/*
 * payments_context.c - the payments context's wiring, what the `ticketing` binary starts for it
 * (app/contexts.c): its route (with the refund worker) and its projectors. The orders replica
 * (projections/payments) gets the write side's policy on a cancellation as user data, so the
 * refund intent commits with the replica's change while projections/ keeps no write-side code.
 */
#include "payments_context.h"

#include "payments.h"
#include "payments_read.h"

static const tk_payments_replica_hooks_t replica_hooks = {
    .order_cancelled = tk_payments_on_order_cancelled,
};

const tk_projector_spec_t tk_payments_replica_projector = {
    .context = "payments", /* consumer group "payments.orders_replica", database */
    .name = "orders_replica",
    .topics = tk_payments_replica_topics,
    .apply = tk_payments_replica_apply,
    .ud = (void *)&replica_hooks, /* read only */
};

const tk_context_t tk_payments_context = {
    .name = "payments",
    .database = "payments",
    .routes = (tk_context_routes_fn *const[]){tk_payments_command_routes, NULL},
    .probes = TK_CONTEXT_DB_PROBES("payments"),
    .projections = (const tk_projector_spec_t *const[]){&tk_payments_replica_projector, NULL},
    .reactions = (const tk_projector_spec_t *const[]){&tk_payments_reactions_projector, NULL},
    .migrations = "payments",
    .has_outbox = true,
};

/*
 * orders_context.c - the orders context's wiring, what the `ticketing` binary starts for it
 * (app/contexts.c): its routes (commands, queries, event streams) and its projectors, the read
 * models of projections/orders and the policy of order_reactions.c.
 */
#include "orders_context.h"

#include "orders.h"
#include "orders_read.h"

const tk_context_t tk_orders_context = {
    .name = "orders",
    .database = "orders",
    .routes = (tk_context_routes_fn *const[]){tk_orders_command_routes, tk_orders_query_routes,
                                              tk_orders_event_routes, NULL},
    .probes = TK_CONTEXT_DB_PROBES("orders"),
    .projections = (const tk_projector_spec_t *const[]){&tk_orders_replica_projector,
                                                        &tk_orders_view_projector, NULL},
    .reactions = (const tk_projector_spec_t *const[]){&tk_orders_reactions_projector, NULL},
    .migrations = "orders",
    .has_outbox = true,
};

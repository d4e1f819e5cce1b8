/*
 * tickets_context.c - the tickets context's wiring, what the `ticketing` binary starts for it
 * (app/contexts.c): its routes (commands and queries) and its projectors, the read model of
 * projections/tickets and the policy of ticket_reactions.c.
 */
#include "tickets_context.h"

#include "tickets.h"
#include "tickets_read.h"

const tk_context_t tk_tickets_context = {
    .name = "tickets",
    .database = "tickets",
    .routes =
        (tk_context_routes_fn *const[]){tk_tickets_command_routes, tk_tickets_query_routes, NULL},
    .probes = TK_CONTEXT_DB_PROBES("tickets"),
    .projections = (const tk_projector_spec_t *const[]){&tk_tickets_view_projector, NULL},
    .reactions = (const tk_projector_spec_t *const[]){&tk_tickets_reactions_projector, NULL},
    .migrations = "tickets",
    .has_outbox = true,
};

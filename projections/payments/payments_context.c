/*
 * payments_context.c - what the `ticketing` binary starts for the payments context
 * (app/contexts.c): its route (with the refund worker) and its projectors.
 */
#include "payments.h"
#include "payments_read.h"

void tk_payments_routes(tk_http_server_t *srv)
{
    tk_payments_command_routes(srv);
}

const tk_projector_spec_t *const tk_payments_projectors[] = {
    &tk_payments_replica_projector,
    &tk_payments_reactions_projector,
    NULL,
};

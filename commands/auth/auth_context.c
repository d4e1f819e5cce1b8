/*
 * auth_context.c - the auth context's descriptor (tk/context.h): its database, routes and
 * readiness probe. No projectors: other contexts learn of users through the session token.
 */
#include "auth.h"

const tk_context_t tk_auth_context = {
    .name = "auth",
    .database = "auth",
    .routes = (tk_context_routes_fn *const[]){tk_auth_command_routes, NULL},
    .probes = TK_CONTEXT_DB_PROBES("auth"),
    .migrations = "auth",
    .has_outbox = true,
};

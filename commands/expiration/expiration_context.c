/*
 * expiration_context.c - the expiration context's descriptor (tk/context.h): the delayed-topic
 * scheduler is its own kind of worker (tk_expiration_run), with no routes, projectors or outbox.
 * It keeps no state in PostgreSQL; its database holds only the common tables
 * (schemas/sql/expiration/ is what makes `ticketing migrate` create it).
 */
#include "expiration.h"

const tk_context_t tk_expiration_context = {
    .name = "expiration",
    .database = "expiration",
    .migrations = "expiration",
    .worker = tk_expiration_run,
};

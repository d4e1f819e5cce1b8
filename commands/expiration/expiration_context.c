/*
 * expiration_context.c - the expiration context's descriptor (tk/context.h): the delayed-topic
 * scheduler is its own kind of worker (tk_expiration_run), with its own database (the migrations
 * of its dead letters) and no routes, projectors or outbox.
 */
#include "expiration.h"

const tk_context_t tk_expiration_context = {
    .name = "expiration",
    .database = "expiration",
    .migrations = "expiration",
    .worker = tk_expiration_run,
};

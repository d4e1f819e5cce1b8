/*
 * orders_read.h - the orders context's read side and its wiring (DESIGN.md sections 5 and 6): the
 * tickets replica (topic tickets, version-gated), the order_view projector (topic orders), the
 * reactions to expirations and payments (which write through commands/orders), the GET queries,
 * and the two lists app/contexts.c needs.
 */
#ifndef TK_ORDERS_READ_H
#define TK_ORDERS_READ_H

#include "tk/http.h"
#include "tk/projector.h"

/**
 * topic tickets -> tickets_replica: ticket:created inserts version 0, ticket:updated applies
 * only over version - 1; a duplicate is skipped, a gap is TK_APPLY_RETRY (tickets_replica.c).
 */
extern const tk_projector_spec_t tk_orders_replica_projector;

/** topic orders -> order_view, idempotent by version (order_view.c). */
extern const tk_projector_spec_t tk_orders_view_projector;

/**
 * topics expirations and payments -> the write model: expiration:complete cancels (unless
 * complete), payment:created completes, each emitting its event in the projector's
 * transaction (order_reactions.c).
 */
extern const tk_projector_spec_t tk_orders_reactions_projector;

/** Every projector of the orders context, NULL-terminated, for app/contexts.c. */
extern const tk_projector_spec_t *const tk_orders_projectors[];

/** @brief Register GET /api/orders and GET /api/orders/:id over order_view (order_queries.c). */
void tk_orders_query_routes(tk_http_server_t *srv);

/** @brief Every route of the orders context: commands and queries. */
void tk_orders_routes(tk_http_server_t *srv);

#endif

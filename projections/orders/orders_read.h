/*
 * orders_read.h - the orders context's read side (DESIGN.md sections 5 and 6): the tickets replica
 * (topic tickets, version-gated), the order_view projector (topic orders), the GET queries and
 * the order event streams. The context's wiring is commands/orders/orders_context.c.
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

/**
 * topic orders -> order_view, idempotent by version (order_view.c). Each status change it applies
 * is also announced, on commit, by a PostgreSQL notification on TK_ORDERS_STATUS_CHANNEL whose
 * payload is {"id","status","version","expiresAt"} (order_events.c listens).
 */
extern const tk_projector_spec_t tk_orders_view_projector;

/** The PostgreSQL NOTIFY channel of order_view's status changes. */
#define TK_ORDERS_STATUS_CHANNEL "order_status"

/** @brief Register GET /api/orders and GET /api/orders/:id over order_view (order_queries.c). */
void tk_orders_query_routes(tk_http_server_t *srv, const char *database);

/**
 * @brief The read-model row of the order named by the route's ":id", for its owner: checks the
 *        session (401), the id (404), runs @p sql with $1 = the id on @p database, then
 *        existence (404) and ownership of the user id in column @p owner_col (401). Worker
 *        routes only.
 * @return owned (PQclear) with exactly one row, or NULL after replying.
 */
PGresult *tk_orders_owned_row_or_respond(tk_http_req_t *req, const char *database, const char *sql,
                                         int owner_col);

/**
 * @brief Register GET /api/orders/:id/events (order_events.c): Server-Sent Events of one order's
 *        status, for its owner (401/404 as GET /api/orders/:id). The stream starts with
 *        `event: status` carrying {id,status,version,expiresAt,secondsLeft}, sends
 *        `event: countdown` {id,secondsLeft} every second while the order is open, a new
 *        `event: status` on each change, and ends after a terminal status (cancelled, complete).
 *        A terminal order gets its one status event and the response ends.
 *        Also registers the server's background listener (tk_http_background) that feeds the
 *        streams from TK_ORDERS_STATUS_CHANNEL and a once-a-second check of order_view.
 *        Thread: before tk_http_server_run. Each server has its own watch list.
 */
void tk_orders_event_routes(tk_http_server_t *srv, const char *database);

#endif

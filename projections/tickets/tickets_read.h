/*
 * tickets_read.h - the tickets context's read side and its wiring (DESIGN.md section 6): the
 * ticket_view projector (topic tickets -> ticket_view and ticket_history), the reactions projector
 * (topic orders -> reserve/release through commands/tickets), the GET queries over the read
 * model, and the two lists app/contexts.c needs.
 */
#ifndef TK_TICKETS_READ_H
#define TK_TICKETS_READ_H

#include "tk/http.h"
#include "tk/projector.h"

/** topic tickets -> ticket_view + ticket_history, idempotent by version (ticket_view.c). */
extern const tk_projector_spec_t tk_tickets_view_projector;

/**
 * topic orders -> the write model: order:created reserves, order:cancelled releases, each
 * emitting ticket:updated in the projector's transaction (ticket_reactions.c).
 */
extern const tk_projector_spec_t tk_tickets_reactions_projector;

/** Every projector of the tickets context, NULL-terminated, for app/contexts.c. */
extern const tk_projector_spec_t *const tk_tickets_projectors[];

/**
 * @brief Register GET /api/tickets, GET /api/tickets/:id and GET /api/tickets/:id/history,
 *        which read only the read model (ticket_queries.c).
 */
void tk_tickets_query_routes(tk_http_server_t *srv);

/** @brief Every route of the tickets context: commands and queries. */
void tk_tickets_routes(tk_http_server_t *srv);

#endif

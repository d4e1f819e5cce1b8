/*
 * tickets_read.h - the tickets context's read side (DESIGN.md section 6): the ticket_view
 * projector (topic tickets -> ticket_view and ticket_history) and the GET queries over the read
 * model. The context's wiring is commands/tickets/tickets_context.c.
 */
#ifndef TK_TICKETS_READ_H
#define TK_TICKETS_READ_H

#include "tk/http.h"
#include "tk/projector.h"

/** topic tickets -> ticket_view + ticket_history, idempotent by version (ticket_view.c). */
extern const tk_projector_spec_t tk_tickets_view_projector;

/**
 * @brief Register GET /api/tickets, GET /api/tickets/:id and GET /api/tickets/:id/history,
 *        which read only the read model (ticket_queries.c).
 */
void tk_tickets_query_routes(tk_http_server_t *srv, const char *database);

#endif

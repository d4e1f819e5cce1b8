/*
 * tickets_context.h - the tickets context's wiring (tickets_context.c), above both its write side
 * (tickets.h) and its read side (projections/tickets/tickets_read.h): what app/contexts.c starts.
 */
#ifndef TK_TICKETS_CONTEXT_H
#define TK_TICKETS_CONTEXT_H

#include "tk/context.h"

/** The tickets context (DESIGN.md section 2): its database, routes, probes, projectors, migrations.
 */
extern const tk_context_t tk_tickets_context;

#endif

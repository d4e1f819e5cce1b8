/*
 * orders_context.h - the orders context's wiring (orders_context.c), above both its write side
 * (orders.h) and its read side (projections/orders/orders_read.h): what app/contexts.c starts.
 */
#ifndef TK_ORDERS_CONTEXT_H
#define TK_ORDERS_CONTEXT_H

#include "tk/context.h"

/** The orders context (DESIGN.md section 2): its database, routes, probes, projectors, migrations.
 */
extern const tk_context_t tk_orders_context;

#endif

/*
 * payments_context.h - the payments context's wiring (payments_context.c), above both its write
 * side (payments.h) and its read side (projections/payments/payments_read.h).
 */
#ifndef TK_PAYMENTS_CONTEXT_H
#define TK_PAYMENTS_CONTEXT_H

#include "tk/context.h"

/**
 * topic orders -> orders_replica (projections/payments/orders_replica.c), with the refund of a
 * late cancellation (tk_payments_on_order_cancelled) in the replica's transaction.
 */
extern const tk_projector_spec_t tk_payments_replica_projector;

/** The payments context (DESIGN.md section 2): its database, routes, probes, projectors,
 * migrations. */
extern const tk_context_t tk_payments_context;

#endif

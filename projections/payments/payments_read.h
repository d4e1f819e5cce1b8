/*
 * payments_read.h - the payments context's read side and its wiring (DESIGN.md sections 5 and 6):
 * the orders replica (topic orders, version-gated) with its order:cancelled reaction, the
 * expiration reaction that closes payment windows, and the two lists app/contexts.c needs.
 */
#ifndef TK_PAYMENTS_READ_H
#define TK_PAYMENTS_READ_H

#include "tk/http.h"
#include "tk/projector.h"

/**
 * topic orders -> orders_replica: order:created inserts version 0; order:cancelled and
 * order:completed apply only over version - 1; a duplicate is skipped, a gap is TK_APPLY_RETRY.
 * An order:cancelled that applies to an order with a stored payment writes a refund intent
 * (orders_replica.c); the refund worker carries it out.
 */
extern const tk_projector_spec_t tk_payments_replica_projector;

/**
 * topic expirations -> the payment windows: expiration:complete closes an order's window unless
 * it was paid, and emits payment:expired (payment_reactions.c).
 */
extern const tk_projector_spec_t tk_payments_reactions_projector;

/** Every projector of the payments context, NULL-terminated, for app/contexts.c. */
extern const tk_projector_spec_t *const tk_payments_projectors[];

/** @brief Every route of the payments context (POST /api/payments). */
void tk_payments_routes(tk_http_server_t *srv);

#endif

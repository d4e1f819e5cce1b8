/*
 * payments_read.h - the payments context's read side (DESIGN.md sections 5 and 6): the orders
 * replica (topic orders, version-gated) that POST /api/payments and the policies read. Its
 * projector spec is assembled by the context's wiring (commands/payments/payments_context.c),
 * which gives the replica the write side's hook for a cancellation as user data.
 */
#ifndef TK_PAYMENTS_READ_H
#define TK_PAYMENTS_READ_H

#include "tk/projector.h"

/* What the replica hands to the write side, in its transaction (user data of its spec). */
typedef struct tk_payments_replica_hooks {
    /* An order:cancelled was just applied to @p order_id (not a duplicate). Returns 0 or a
     * negative TK_E*, which fails the record like an apply error. NULL: nothing to do. */
    int (*order_cancelled)(tk_tx_t *tx, const char *order_id, void *ud, tk_err_t *err);
    void *ud; /* borrowed, passed to order_cancelled */
} tk_payments_replica_hooks_t;

/**
 * topic orders -> orders_replica, the apply of its projector spec: order:created inserts
 * version 0; order:cancelled and order:completed apply only over version - 1; a duplicate is
 * skipped, a gap is TK_APPLY_RETRY (orders_replica.c).
 * @param ud a const tk_payments_replica_hooks_t *, or NULL.
 */
int tk_payments_replica_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err);

/** The replica's topics, NULL-terminated. */
extern const char *const tk_payments_replica_topics[];

#endif

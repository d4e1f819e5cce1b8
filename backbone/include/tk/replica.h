/*
 * replica.h - the two writes of a replica: a read model that copies another context's rows and
 * follows every version of each, in order (orders' tickets_replica, payments' orders_replica).
 * The creation event inserts the row; each later event moves it on by exactly one version:
 *
 *   creation (v0)   insert; a row already there is a duplicate        -> OK | SKIP
 *   change (v)      stored == v - 1: apply                             -> OK
 *                   stored >= v:     a duplicate or stale              -> SKIP
 *                   stored <  v - 1, or no row yet: a gap              -> RETRY
 *
 * The results are tk_projector_spec_t.apply's (tk/projector.h): the projector loop holds a RETRY
 * back and dead-letters it after the gap timeout.
 */
#ifndef TK_REPLICA_H
#define TK_REPLICA_H

#include <stdint.h>

#include "tk/err.h"
#include "tk/tx.h"

/**
 * @brief Insert a replica row on its creation event (a prepared statement: a hot path).
 * @param sql an INSERT ... ON CONFLICT (id) DO NOTHING, with @p nparams @p params (borrowed).
 * @return TK_APPLY_OK (inserted) or TK_APPLY_SKIP (the row was there: a redelivery); a negative
 *         TK_E* with err set.
 * Thread: the transaction's.
 */
int tk_replica_insert(tk_tx_t *tx, const char *sql, int nparams, const char *const *params,
                      tk_err_t *err);

/**
 * @brief Move a replica row to an event's @p version (prepared statements: a hot path).
 * @param sql an UPDATE that sets version = @p version WHERE id = $1 AND version = @p version - 1,
 *        with @p nparams @p params (borrowed; params[0] is the row's id).
 * @param table the replica's table, where the stored version is read when @p sql changed no row
 *        (a constant of the caller's: it goes into the SQL).
 * @param what the row's kind in the gap's error ("ticket", "order").
 * @return TK_APPLY_OK (moved), TK_APPLY_SKIP (stored >= @p version), TK_APPLY_RETRY with err
 *         TK_ECONFLICT (a gap); a negative TK_E* with err set.
 * Thread: the transaction's.
 */
int tk_replica_update(tk_tx_t *tx, const char *sql, int nparams, const char *const *params,
                      const char *table, const char *what, int64_t version, tk_err_t *err);

#endif

/*
 * prune.h - bounding processed_events (DESIGN.md section 6). The projector calls
 * tk_prune_tick from its loop; tests call tk_prune_processed directly.
 */
#ifndef TK_PRUNE_H
#define TK_PRUNE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "tk/err.h"

/* Rows kept behind the stored offset of a partition by default (tk_cfg()->prune_keep_offsets,
 * PROCESSED_EVENTS_KEEP_OFFSETS): far beyond the relay's duplicate reach (two outbox batches,
 * backbone/relay.c), see prune.c. */
/* Rows without a position (written before schemas/sql/common/002) go by age only. */
#define TK_PRUNE_KEEP_UNPOSITIONED_DAYS 7
/* How often the projector loop prunes: tk_cfg()->prune_every_ms (PROCESSED_EVENTS_PRUNE_MS). */

/**
 * @brief Delete @p projection's processed_events rows that can no longer catch a duplicate: those
 *        more than @p keep_offsets records behind the stored next offset of their partition
 *        (projection_offsets), and unpositioned ones older than a week. At most 10,000 rows per
 *        statement, repeated until none is left, so no transaction stays long.
 * @param c borrowed, outside a transaction. @param deleted may be NULL.
 * @return 0 or a negative TK_E*. Thread: the connection's.
 */
int tk_prune_processed(PGconn *c, const char *projection, int64_t keep_offsets, int64_t *deleted,
                       tk_err_t *err);

/**
 * @brief Prune when *@p next_ms (monotonic; 0 at start) has come, then set it to the next time.
 *        Failures are logged and retried at the next tick: pruning is never urgent.
 * Thread: the connection's.
 */
void tk_prune_tick(PGconn *c, const char *projection, int64_t *next_ms);

#endif

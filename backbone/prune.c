/*
 * prune.c - keep processed_events bounded without giving up exactly-once (DESIGN.md section 6).
 *
 * What processed_events is for. The projector never applies a record below its stored offset
 * (projection_offsets commits with the effects), so a redelivery of the same record - a
 * rebalance, a crash, a zombie member - is caught by the offset alone. The event-id set exists
 * for one case only: the SAME event published twice at two different offsets, which happens when
 * the relay crashes between the broker's ack and its DELETE of the outbox row (backbone/relay.c).
 *
 * Where such a duplicate can land. One relay is active per database (advisory lock); it sends
 * rows in id order, in batches of at most 500, and the next life (or the next drain after a
 * failed delivery) starts again at the smallest id still present: the rows of the interrupted
 * batch. Keys put an aggregate's events in one partition. So a duplicate of the record at offset o
 * of partition P lands after at most the rest of its batch and the start of the resent one: below
 * o + 2 * 500 in P (nothing else writes the context's topics; while the relay is down nothing is
 * appended, however long that lasts - the distance is counted in records, not in time).
 *
 * The rule. A row (projection, event id, topic, partition, offset) is deleted once the stored
 * next offset of (projection, topic, partition) is more than keep_offsets (100,000: 100 times that
 * reach) beyond its offset. Any duplicate of it would have been at an offset the projector has
 * already passed - and checked against the row while it still existed. Rows written before the
 * position was recorded (schemas/sql/common/002) are deleted after a week.
 *
 * The table thus holds at most keep_offsets rows per partition and projection, however long the
 * system runs.
 */
#include "tk/prune.h"

#include <stdio.h>
#include <stdlib.h>

#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/log.h"
#include "tk/pg.h"

#define CHUNK "10000"

/* Run @p sql (a DELETE of at most CHUNK rows) until it deletes nothing; adds to *@p total. */
static int delete_chunks(PGconn *c, const char *sql, int nparams, const char *const *params,
                         int64_t *total, tk_err_t *err)
{
    int64_t n = 0;
    int rc = 0;
    do {
        rc = tk_pg_run(c, sql, nparams, params, &n, err);
        *total += n;
    } while (rc == 0 && n > 0);
    return rc;
}

int tk_prune_processed(PGconn *c, const char *projection, int64_t keep_offsets, int64_t *deleted,
                       tk_err_t *err)
{
    char keep[24];
    int64_t total = 0;
    int rc = 0;
    snprintf(keep, sizeof(keep), "%lld", (long long)keep_offsets);
    const char *params[] = {projection, keep};
    rc = delete_chunks(c,
                       "DELETE FROM processed_events WHERE ctid IN ("
                       " SELECT e.ctid FROM processed_events e JOIN projection_offsets o"
                       " ON o.projection = e.projection AND o.topic = e.topic"
                       " AND o.partition = e.partition"
                       " WHERE e.projection = $1 AND e.\"offset\" < o.next_offset - $2::bigint"
                       " LIMIT " CHUNK ")",
                       2, params, &total, err);
    if (rc == 0)
        rc = delete_chunks(c,
                           "DELETE FROM processed_events WHERE ctid IN ("
                           " SELECT ctid FROM processed_events WHERE projection = $1"
                           " AND \"offset\" IS NULL AND processed_at < now() - interval '7 days'"
                           " LIMIT " CHUNK ")",
                           1, params, &total, err);
    if (deleted != NULL)
        *deleted = total;
    return rc;
}

void tk_prune_tick(PGconn *c, const char *projection, int64_t *next_ms)
{
    int64_t now = tk_mono_ms();
    if (c == NULL || now < *next_ms)
        return;
    *next_ms = now + tk_cfg()->prune_every_ms;
    tk_err_t err = {0};
    int64_t deleted = 0;
    if (tk_prune_processed(c, projection, tk_cfg()->prune_keep_offsets, &deleted, &err) != 0)
        tk_log(TK_LOG_WARN, "projector", err.message,
               "\"projection\":\"%s\",\"note\":\"processed_events not pruned\"", projection);
    else if (deleted > 0)
        tk_log(TK_LOG_INFO, "projector", "processed_events pruned",
               "\"projection\":\"%s\",\"deleted\":%lld", projection, (long long)deleted);
}

/*
 * dead_letters.h - re-driving the records a projector parked in dead_letters (DESIGN.md section
 * 6), for `ticketing dead-letters retry`. Listing and dropping are plain SQL on the table and live
 * in app/dead_letters.c; re-driving needs the projector's apply path, so it lives here.
 */
#ifndef TK_DEAD_LETTERS_H
#define TK_DEAD_LETTERS_H

#include <stdint.h>

#include "tk/err.h"
#include "tk/projector.h"

typedef struct tk_dead_letters_outcome {
    int applied; /* applied (or found applied before / skipped by apply): the row is deleted */
    int failed;  /* apply refused again: attempts + 1, last_seen and error updated, row kept */
    int held;    /* not tried: an earlier record of the same aggregate is still parked */
} tk_dead_letters_outcome_t;

/**
 * @brief Re-drive the dead letters of @p spec's projection (all of them, or only row @p id when
 *        @p id > 0) through the live projector's apply path: per record one transaction of
 *        the context's database with the processed_events check (an event id already there
 *        counts as applied), apply(), and the row's DELETE. Records go in (topic, partition,
 *        offset) order, and once a record of an aggregate (the Kafka key) fails, the later
 *        records of that aggregate are held, so per-aggregate order is kept. Safe while the
 *        live projector runs: each row is locked (FOR UPDATE SKIP LOCKED) while it is tried.
 * @param spec borrowed. @param out receives the counts; may be NULL.
 * @return 0 (also when some failed again); TK_EUNAVAIL when the database is down; another
 *         negative TK_E* for a database error.
 * Thread: any (opens its own connection).
 */
int tk_dead_letters_retry(const tk_projector_spec_t *spec, int64_t id,
                          tk_dead_letters_outcome_t *out, tk_err_t *err);

#endif

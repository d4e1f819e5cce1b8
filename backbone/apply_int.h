/*
 * apply_int.h - the one set of per-record rules of projection (DESIGN.md section 6), shared by the
 * live projector (projector.c) and the replay (replay.c), so that a rebuild applies records
 * exactly as the live loop does. The callers differ only in what a version gap and a dead letter
 * mean to them, which they give as hooks.
 */
#ifndef TK_APPLY_INT_H
#define TK_APPLY_INT_H

#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk/projector.h"

typedef enum {
    TK_REC_PENDING = 0, /* not reached: an earlier record of its partition was held */
    TK_REC_APPLIED,     /* apply returned TK_APPLY_OK */
    TK_REC_SKIPPED,     /* apply returned TK_APPLY_SKIP, or its event id was applied before */
    TK_REC_DEAD,        /* dead-lettered: undecodable, apply failed, or a version gap given up */
    TK_REC_HELD         /* a version gap to wait for: this record and its partition's later ones */
} tk_rec_outcome_t;

typedef struct tk_rec {
    const rd_kafka_message_t *m; /* borrowed */
    tk_rec_outcome_t outcome;    /* out */
    int emitted;                 /* out: events apply emitted (tk_tx_emit) */
} tk_rec_t;

typedef struct tk_apply_hooks {
    /* A version gap (TK_APPLY_RETRY) at m: return true to hold the partition (the record is
     * retried later), false to dead-letter it; then fill why and *first_seen_ms (wall ms).
     * @param env borrowed for the call. */
    bool (*gap)(void *ud, const rd_kafka_message_t *m, const ev_envelope_t *env, char *why,
                size_t cap, int64_t *first_seen_ms);
    /* Dead-letter m inside the open transaction. Returns 0, or a TK_E* that fails the batch. */
    int (*dead)(void *ud, const rd_kafka_message_t *m, const char *why, int64_t first_seen_ms,
                tk_err_t *err);
    void *ud; /* borrowed, passed to both */
} tk_apply_hooks_t;

/**
 * @brief Apply recs[0..n) through spec->apply inside the transaction open on @p c, in order, with
 *        the rules of DESIGN.md section 6: decode, dedupe by event id (processed_events, keyed by
 *        spec->name), apply; undecodable and failing records dead-lettered, a version gap held
 *        or dead-lettered as hooks->gap decides.
 *
 * Fast path first: ONE statement dedupes the batch's event ids, then apply runs record after
 * record without savepoints. Only when a record needs more than OK or SKIP (undecodable, a gap,
 * a failing apply) is the batch rolled back to a savepoint and redone record by record, each
 * under its own savepoint (the careful path). Both give the same outcome.
 *
 * @param recs borrowed; outcome and emitted filled on success (on failure: undefined).
 * @return 0; a negative TK_E* when the batch must be rolled back as a whole (the database failed,
 *         a retryable conflict, a dead letter that could not be written). The transaction is
 *         then in an undefined state: roll it back.
 * Thread: the transaction's.
 */
int tk_apply__batch(PGconn *c, const tk_projector_spec_t *spec, tk_rec_t *recs, int n,
                    const tk_apply_hooks_t *hooks, tk_err_t *err);

/* A rebuild through the spec's fold (tk_projector_fold_t): the fold's state and the event ids
 * it accepted. */
typedef struct tk_apply_fold tk_apply_fold_t;

/**
 * @brief A fold of @p spec (spec->fold must be set), empty.
 * @param spec borrowed, must outlive the fold. Ownership: owned, free with tk_apply__fold_free.
 */
tk_apply_fold_t *tk_apply__fold_new(const tk_projector_spec_t *spec);

/**
 * @brief Fold recs[0..n) in order with the rules of tk_apply__batch, in memory: undecodable ->
 *        hooks->dead; an event id accepted before (in this fold) -> skipped; add: OK / SKIP ->
 *        applied / skipped (the id accepted), RETRY -> hooks->gap (hold, or dead letter), an
 *        error -> dead letter. No statement runs, so nothing fails the batch but a hook.
 * @param recs borrowed; outcome filled (emitted 0). @return 0, or the code of a failing hook.
 */
int tk_apply__fold_batch(tk_apply_fold_t *f, tk_rec_t *recs, int n, const tk_apply_hooks_t *hooks,
                         tk_err_t *err);

/**
 * @brief The fold's write (final: the last one) inside the transaction open on @p c.
 * @return 0 or a negative TK_E* (roll the transaction back).
 */
int tk_apply__fold_write(tk_apply_fold_t *f, PGconn *c, bool final, tk_err_t *err);

/** @brief Free the fold and its state. Accepts NULL. */
void tk_apply__fold_free(tk_apply_fold_t *f);

/**
 * @brief Check that @p spec names a context, a projection, topics and an apply function.
 * @return 0 or TK_EINVAL with err set. Ownership: borrowed.
 */
int tk_apply__spec_check(const tk_projector_spec_t *spec, tk_err_t *err);

#endif

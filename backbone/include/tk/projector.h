/*
 * projector.h - the one projector loop behind every read model (DESIGN.md section 6). It consumes
 * the spec's topics in consumer group "<context>.<name>" and applies each batch of records in ONE
 * transaction of the context's database together with the next offsets (projection_offsets), so a
 * crash at any point neither loses nor doubles an effect. Offsets are never committed to Kafka:
 * on assignment the consumer is positioned from projection_offsets.
 *
 * Per record: undecodable -> dead_letters; an event id already in processed_events -> skipped;
 * otherwise apply(). TK_APPLY_RETRY (a version gap) holds the partition back and retries it with
 * backoff; once the same offset has waited longer than tk_cfg()->gap_timeout_ms it goes to
 * dead_letters with the error "version gap" and an error log line (the alert). A negative apply
 * error also dead-letters the record, except retryable conflicts and lost connections, which roll
 * the whole batch back and retry it.
 */
#ifndef TK_PROJECTOR_H
#define TK_PROJECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "ev_envelope.h"
#include "tk/err.h"
#include "tk/tx.h"

typedef enum {
    TK_APPLY_OK = 0,   /* applied */
    TK_APPLY_SKIP = 1, /* a duplicate (version <= stored) or not for this read model */
    TK_APPLY_RETRY = 2 /* a version gap: wait for the missing event and try again */
} tk_apply_result_t;   /* negative = a TK_E* error */

/*
 * Optional, for `ticketing replay` only (backbone/replay.c): the projection as a fold in memory.
 * A rebuild then reads the whole log through add, with no statement per record, and writes the
 * tables in bulk (tk_copy_*, fold.h) instead of calling apply. The live projector never uses it.
 *
 * The contract: folding events then writing gives exactly the tables apply would have built from
 * the same events in the same order (replay verifies it against the live model anyway). The
 * per-record rules stay the backbone's (apply.c): add sees only decodable events whose id it has
 * not accepted before.
 */
typedef struct tk_projector_fold {
    /** A new, empty state. Ownership: the caller's, released with end. */
    void *(*begin)(void *ud);
    /**
     * Optional: the part of add that needs no state, such as encoding a row's text, run ahead
     * for many events at once on worker threads: thread-safe, no side effects. Returns an owned
     * value for add (NULL: nothing prepared, add does the work itself).
     * @param env borrowed, valid for the call.
     */
    void *(*prepare)(const ev_envelope_t *env, void *ud);
    /** Free a prepared value that add did not take; required with prepare. */
    void (*release)(void *prepared, void *ud);
    /**
     * Fold one event into @p state, in log order (per partition). Returns TK_APPLY_OK or
     * TK_APPLY_SKIP as apply would (counts only); TK_APPLY_RETRY (a version gap) or a negative
     * TK_E* with err set, as apply would, and then @p state must be as before the call: the
     * record is dead-lettered. @param env borrowed, valid for the call. @param prepared points
     * at prepare's value for this event (or NULL); add may take it by setting *prepared = NULL.
     */
    int (*add)(void *state, const ev_envelope_t *env, void **prepared, void *ud, tk_err_t *err);
    /**
     * Write into the spec's tables (empty at the first call; unqualified names, the search_path
     * points at the rebuild's copies) inside the open transaction of @p tx; no tk_tx_emit. With
     * @p final false (after each large chunk of records): what no later event can change, such
     * as append-only rows, which the state may then forget; with @p final true (once, after the
     * last record): everything not written yet. Returns 0 or a negative TK_E*.
     */
    int (*write)(void *state, tk_tx_t *tx, bool final, void *ud, tk_err_t *err);
    /** Free @p state (NULL accepted). */
    void (*end)(void *state, void *ud);
} tk_projector_fold_t;

typedef struct tk_projector_spec {
    const char *context;       /* database: "tickets", ... */
    const char *name;          /* the projection, unique within the context */
    const char *const *topics; /* NULL-terminated */
    /**
     * Apply one event inside the batch's transaction (undone with the batch, or alone under a
     * savepoint on the record-by-record path, when it returns neither OK nor SKIP). May read and
     * write the read model and emit follow-up events with tk_tx_emit (they commit with the offset,
     * so exactly once). Returns a tk_apply_result_t or a negative TK_E* with err set.
     * @param env borrowed, valid for the call.
     */
    int (*apply)(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err);
    /**
     * Optional, for speed: apply a batch of events at once (set-based SQL), with the same end
     * state as apply called on each of them in order. Called inside the batch's transaction with
     * the batch's fresh events only (no event id applied before, none twice), in log order.
     * results[i] receives TK_APPLY_OK or TK_APPLY_SKIP (for the counts only). Returns 0;
     * TK_APPLY_RETRY when some event needs more than OK or SKIP (then the batch is redone
     * through apply, record by record, which dead-letters or holds that event); or a negative
     * TK_E* (a transient one fails the batch, any other sends it record by record).
     * Meant for read models: an event emitted from it carries the first event's correlation id.
     * @param envs borrowed, valid for the call.
     */
    int (*apply_set)(tk_tx_t *tx, const ev_envelope_t *const *envs, int n, int *results, void *ud,
                     tk_err_t *err);
    void *ud; /* borrowed, passed to apply and apply_set */
    /* True when apply and apply_set are idempotent by themselves: a fold gated by the aggregate's
     * version, whose every write is an upsert under `version <` or an insert ON CONFLICT DO
     * NOTHING, so an event applied twice changes nothing. The per-record rules then write no
     * processed_events row for it (the costliest statement of a batch); a redelivered event
     * reaches apply, which finds nothing to change. Never for a projector that emits events,
     * counts or sums. */
    bool idempotent;
    /* Read-model tables this projector owns, NULL-terminated; NULL: not replayable (it reacts
     * or writes a write model). `ticketing replay` rebuilds exactly these (backbone/replay.c). */
    const char *const *tables;
    /* Optional, with tables: how a replay rebuilds them fast (above); NULL: through apply. */
    const tk_projector_fold_t *fold;
} tk_projector_spec_t;

typedef struct tk_projector tk_projector_t;

/**
 * @brief A projector for @p spec. Creates the consumer and subscribes; connects to PostgreSQL.
 * @param spec borrowed; its strings and topics are copied, ud must outlive the projector.
 * @return the projector; NULL with TK_EINVAL for a bad spec, TK_EUNAVAIL when PostgreSQL is
 *         down, TK_EINTERNAL when the consumer cannot be created.
 * Ownership: owned, free with tk_projector_free.
 * Thread: any; the projector then belongs to one thread at a time (apply runs on it).
 */
tk_projector_t *tk_projector_new(const tk_projector_spec_t *spec, tk_err_t *err);

/**
 * @brief Consume and apply batches until *@p stop becomes non-zero. Failures (PostgreSQL down,
 *        conflicts) are logged, rolled back, and retried with backoff from the stored offsets.
 * @param stop borrowed; set it from another thread or a signal handler.
 * @return 0 once stopped; TK_EUNAVAIL without being stopped when the consumer failed for good
 *         (tk_kafka_consumer_dead, e.g. fenced by a member with the same TK_INSTANCE_ID): free
 *         the projector and create a new one. Thread: the projector's; blocking.
 */
int tk_projector_run(tk_projector_t *p, volatile int *stop);

/**
 * @brief One batch (tests): wait up to @p timeout_ms for a record, then take the records that have
 *        already arrived (up to 2000, no waiting: a batch grows only under load), apply them in
 *        one transaction and commit.
 * @param applied may be NULL; receives the number of records whose position was committed
 *        (applied, skipped or dead-lettered).
 * @return 0 (also when nothing arrived); a negative TK_E* when the batch was rolled back (the
 *         consumer is then positioned back at the stored offsets), or when the consumer failed
 *         for good (every later call fails too; see tk_projector_run).
 * Thread: the projector's; blocking.
 */
int tk_projector_poll_once(tk_projector_t *p, int timeout_ms, int *applied, tk_err_t *err);

/**
 * @brief The consumer group of projection @p name of @p context ("<context>.<name>") into @p buf.
 * Ownership: all borrowed. Thread: any.
 */
void tk_projector_group_name(const char *context, const char *name, char *buf, size_t cap);

/**
 * @brief Leave the group (rd_kafka_consumer_close), close the connection, free. Accepts NULL.
 * Thread: the projector's, not while tk_projector_run runs.
 */
void tk_projector_free(tk_projector_t *p);

#endif

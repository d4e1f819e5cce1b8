/*
 * replay.h - `ticketing replay <context>.<projection>` (DESIGN.md sections 2 and 6): rebuild a
 * read model from the log into a fresh schema, verify it against the live model, and swap it in
 * atomically while the live projector keeps running.
 *
 * Only a projector whose spec lists its read-model tables (tk_projector_spec_t.tables) can be
 * replayed: its apply function must write those tables and nothing else that matters (a reaction
 * that emits events or calls an external service would repeat its effects, so it has no tables).
 */
#ifndef TK_REPLAY_H
#define TK_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "tk/err.h"
#include "tk/projector.h"

/* At most this many tables per replayable projector. */
#define TK_REPLAY_MAX_TABLES 8

/* Where the rebuild reads to before it catches up with the live projector. */
typedef enum {
    TK_REPLAY_TO_AUTO = 0, /* END when the live projector's consumer group has members, else LIVE */
    TK_REPLAY_TO_END,      /* the log's current end (high watermarks at start) */
    TK_REPLAY_TO_LIVE      /* the live projector's stored offsets at start (it is stopped) */
} tk_replay_to_t;

/* Where a replay stands, for a progress bar. */
typedef struct tk_replay_progress {
    const char *phase; /* "prepare", "build", "catch-up", "wait-live", "verify", "swap" */
    int64_t done;      /* records read so far */
    int64_t total;     /* records to read (grows when the target moves while catching up) */
    double rate;       /* records per second since the first record */
    int64_t eta_ms;    /* -1 when unknown */
} tk_replay_progress_t;

typedef struct tk_replay_opts {
    tk_replay_to_t to;
    bool force;    /* swap even when the models differ or the live projector stays behind */
    bool check;    /* build and compare, never swap (the live model is left as it is) */
    bool keep_old; /* keep the replaced tables in schema replaced_<projection>_<time> */
    int batch;     /* records per transaction; 0 = 4000 */
    int wait_ms;   /* how long a live projector behind the rebuild may make no progress before
                      the replay gives up; 0 = 30000 */
    /* Called at most every 200 ms and at each phase change, on the calling thread; may be NULL.
     * @p p is borrowed for the call. */
    void (*progress)(const tk_replay_progress_t *p, void *ud);
    void *progress_ud;  /* borrowed, passed to progress */
    volatile int *stop; /* borrowed, may be NULL: non-zero interrupts the replay */
} tk_replay_opts_t;

/* The comparison of one table, live (public) against rebuilt. */
typedef struct tk_replay_table {
    char name[64];
    int64_t live_rows, replay_rows;
    int64_t only_live;   /* rows of the live table missing from the rebuilt one */
    int64_t only_replay; /* rows of the rebuilt table missing from the live one */
} tk_replay_table_t;

typedef struct tk_replay_result {
    bool to_live;         /* the rebuild read to the live offsets (TK_REPLAY_TO_LIVE or AUTO) */
    bool folded;          /* rebuilt through the spec's fold (in memory, bulk writes), not apply */
    int64_t records;      /* records read and applied or skipped */
    int64_t applied;      /* apply returned TK_APPLY_OK */
    int64_t skipped;      /* TK_APPLY_SKIP, or an event id seen before */
    int64_t dead_letters; /* undecodable, failing apply, or a version gap (not retried) */
    int64_t emitted;      /* events apply emitted: discarded with the replay schema */
    char first_dead_letter[256]; /* "topic/partition@offset: why" of the first one, or "" */
    bool identical;              /* every table compared equal */
    bool behind;                 /* the live projector stayed behind the rebuild (see force) */
    bool swapped;                /* the rebuilt tables are now the live ones */
    char replaced_schema[64];    /* where the old tables are kept (keep_old), else "" */
    char excluded[256];          /* "table.column, ..." left out of the comparison, or "" */
    int ntables;
    tk_replay_table_t tables[TK_REPLAY_MAX_TABLES];
    int64_t elapsed_ms;
} tk_replay_result_t;

/**
 * @brief Rebuild @p spec's tables from offset 0 of its topics into schema replay_<name>, compare
 *        them with the live ones and swap them in.
 *
 * Steps: take an advisory lock (one replay per projection); create schema replay_<name> with a
 * LIKE ... INCLUDING ALL copy of each table plus the backbone tables, so apply's unqualified SQL
 * lands there (search_path) and nothing it writes reaches the live outbox; read every partition
 * from its start to the target (see tk_replay_to_t) with a plain consumer (no group membership,
 * no commits), applying records through spec->apply in transactions of opts->batch records with
 * the live loop's rules (decode, dedupe by event id, a savepoint per record), or through
 * spec->fold when set (in memory with the same rules, written with COPY); then lock the live
 * projector's rows of projection_offsets (FOR UPDATE: the live loop blocks at the start of its
 * next batch), apply the records up to exactly its offsets, compare every table (EXCEPT ALL both
 * ways, over the columns that come from events: a column defaulting to now() is excluded and
 * named in result->excluded), and in the same transaction move the live tables to schema
 * replaced_<name>_<time> and the rebuilt ones to public, under the original index names. The
 * live projector then resumes on the new tables from its untouched offsets. The replay schema is
 * dropped in every case, the replaced one unless opts->keep_old.
 *
 * @param spec borrowed; spec->tables must be set. @param opts borrowed, may be NULL (defaults).
 * @param out zeroed, then filled as far as the replay got (also on failure).
 * @return 0 when swapped (with check: when identical); TK_ECONFLICT when the models differ
 *         (nothing swapped unless force), when the live projector stayed behind the rebuild for
 *         wait_ms (unless force: then its offsets are moved to the rebuild's), or when another
 *         replay of the projection runs; TK_EINVAL for a spec without tables or a bad name;
 *         TK_EUNAVAIL when PostgreSQL or the broker failed; TK_EINTERNAL when *stop interrupted
 *         it or a table cannot be copied. The live model is unchanged whenever the result is not
 *         0 (or force).
 * Ownership: all borrowed. Thread: any; blocking (connects its own PostgreSQL sessions and
 *            consumer).
 */
int tk_replay_run(const tk_projector_spec_t *spec, const tk_replay_opts_t *opts,
                  tk_replay_result_t *out, tk_err_t *err);

#endif

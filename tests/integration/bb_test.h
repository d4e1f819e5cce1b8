/*
 * bb_test.h - helpers shared by the backbone's integration tests (test_migrate,
 * test_kafka_roundtrip, test_outbox_relay, test_projector): the stack's environment, unique names,
 * SQL shortcuts that fail the test on error, child processes, and a Kafka reader positioned at a
 * topic's end.
 */
#ifndef BB_TEST_H
#define BB_TEST_H

#include <libpq-fe.h>
#include <pthread.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ev_envelope.h"
#include "tk/err.h"
#include "tk/projector.h"
#include "tk/relay.h"
#include "tk/tx.h"

/**
 * @brief Require KAFKA_BROKERS and DATABASE_URL (scripts/test.sh exports them): when either is
 *        missing, print why and exit(1) so the test FAILS rather than skips. Then load the
 *        configuration and, with @p migrate, run tk_migrate_all.
 */
void bb_require_stack(bool migrate);

/**
 * @brief Point @p context at a private database @p dbname on DATABASE_URL's server: create it
 *        when missing, export DATABASE_URL_<CONTEXT> (inherited by child processes) and migrate
 *        it. Relays and projectors of other suites or of a `ticketing run` on the same stack then
 *        never see this test's outbox rows, nor hold its relay lock.
 */
void bb_private_database(const char *context, const char *dbname);

/** @brief "<prefix>_<12 hex>" into out (lower case, valid as SQL identifier and topic name). */
void bb_unique(const char *prefix, char *out, size_t size);

/** @brief Connect to @p context's database or fail the test. Owned (PQfinish). */
PGconn *bb_connect(const char *context);

/** @brief Run @p sql with text params or fail the test (prints the server's message). */
void bb_exec(PGconn *c, const char *sql, int nparams, const char *const *params);

/** @brief The first column of the first row as int64 (0 for NULL), or fail the test. */
int64_t bb_scalar(PGconn *c, const char *sql, int nparams, const char *const *params);

/** @brief Create @p topic with @p partitions or fail the test. */
void bb_topic(const char *topic, int partitions);

/** @brief Start /proc/self/exe with argv (argv[0] ignored), extra env "K=V" (may be NULL). */
pid_t bb_spawn_self(char *const argv[], const char *env_kv);

/**
 * @brief Start `@p bin serve @p context` in the background on a port of its own (written to
 *        @p port), with extra environment @p env ("K=V K2=V2", may be NULL) and a test JWT_KEY.
 *        @return its pid; stop it with kill(pid, SIGTERM).
 */
pid_t bb_serve_start(const char *bin, const char *context, const char *env, int *port);

/** @brief Wait for @p pid; returns the raw waitpid status. */
int bb_wait(pid_t pid);

/** @brief Poll @p fn every 50 ms until it returns true or @p timeout_ms passes. */
bool bb_eventually(bool (*fn)(void *arg), void *arg, int timeout_ms);

typedef struct bb_rec {
    char *key;   /* owned, NUL-terminated, may be NULL */
    char *value; /* owned, NUL-terminated copy of the payload */
    size_t len;
    int32_t partition;
    int64_t offset;
    char ce_type[64]; /* header ce_type, "" when absent */
    char ce_id[64];   /* header ce_id, "" when absent */
} bb_rec_t;

typedef struct bb_reader {
    rd_kafka_t *rk;
    bb_rec_t *recs; /* every record read so far, in arrival order (per partition: log order) */
    size_t n, cap;
} bb_reader_t;

/** @brief Read every partition of @p topic from its current end (or from the beginning). */
bb_reader_t *bb_reader_new(const char *topic, bool from_beginning);

/** @brief Poll until at least @p want records were read or @p timeout_ms passed. Returns n. */
size_t bb_reader_collect(bb_reader_t *r, size_t want, int timeout_ms);

void bb_reader_free(bb_reader_t *r);

/* ---- toy read models and background loops shared by the projector suites ------------------- */

/**
 * @brief An encoded ticket:created (@p version 0) or ticket:updated envelope of ticket @p subject
 *        with price @p cents, as a projector reads it. Owned (free); its length into @p len.
 */
char *bb_ticket_event(const char *type, const char *subject, int64_t version, int64_t cents,
                      size_t *len);

/** @brief A fresh topic "bbtest_<what>_<unique>" of @p partitions partitions (bb_topic) into
 *         @p topic, and a projection name "<what>_<unique>" into @p name. */
void bb_fresh_topic(const char *what, char topic[64], char name[64], int partitions);

/** @brief Produce bb_ticket_event(created/updated by @p version, price 100) keyed by @p id. */
void bb_publish_ticket(rd_kafka_t *producer, const char *topic, const char *id, int version);

/*
 * The toy read models' tables, private to one run: bbtest.<prefix>_<unique> (the bbtest schema is
 * made when missing). Each exits the process on a database error, as bb_exec.
 */
/** @brief Create a bb_totals_apply table (projection text primary key, count, sum); its name into
 *         @p name. */
void bb_totals_create(PGconn *db, const char *prefix, char *name, size_t size);
/** @brief Create a bb_replica_apply table (id uuid primary key, version int); its name into
 *         @p name. */
void bb_replica_create(PGconn *db, const char *prefix, char *name, size_t size);
/*
 * The world of the projector suites, opened by their cmocka group setup: bb_toys_open loads the
 * stack's configuration (bb_require_stack), points the tickets context at the private database
 * @p dbname (bb_private_database: call it before any thread starts) and makes a totals and a
 * replica table there; bb_toys_teardown (the group teardown) drops both and disconnects. The
 * suite reads them from bb_toys. @return 0 (exits the process on a setup error).
 */
typedef struct bb_toys {
    PGconn *db;
    char totals[80];  /* bb_totals_apply's table */
    char replica[80]; /* bb_replica_apply's table */
} bb_toys_t;
extern bb_toys_t bb_toys;
int bb_toys_open(const char *dbname);
int bb_toys_teardown(void **state);
/** @brief bb_totals_get in the suite's totals table (bb_toys). */
int64_t bb_toys_total(const char *projection, const char *column);

/** A count to wait for: @p projection's count in the suite's totals table reaching @p want. */
typedef struct bb_count_goal {
    const char *projection;
    int64_t want;
} bb_count_goal_t;
/** @brief For bb_eventually and bb_project_until: whether @p arg, a bb_count_goal_t, is met. */
bool bb_toys_counted(void *arg);

/** @brief A row for @p projection in the totals table @p table: count 0, sum 0. */
void bb_totals_start(PGconn *db, const char *table, const char *projection);
/** @brief The @p column ("count" or "sum") of @p projection's row in @p table. */
int64_t bb_totals_get(PGconn *db, const char *table, const char *projection, const char *column);
/** @brief DROP TABLE IF EXISTS @p table. */
void bb_drop_table(PGconn *db, const char *table);

/**
 * @brief A toy replica following versions (an apply callback; @p ud is the name of a table
 *        (id text primary key, version bigint)): stored == v - 1 applies, v <= stored skips, a
 *        gap asks for a retry.
 */
int bb_replica_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err);

/** The table and row of a bb_totals_apply read model. */
typedef struct bb_totals {
    const char *table;      /* (projection text, count bigint, sum bigint) */
    const char *projection; /* the row this projection counts in */
} bb_totals_t;

/**
 * @brief A deliberately non-idempotent toy read model (an apply callback; @p ud is a
 *        bb_totals_t, borrowed): adds one to count and the ticket's price (ticket:updated, else
 *        ticket:created) to sum, so any double application shows.
 */
int bb_totals_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err);

/** @brief Poll @p p until @p done(arg) holds; fail the test after @p timeout_ms. Batch failures
 *         are allowed: the projector retries them. */
void bb_project_until(tk_projector_t *p, bool (*done)(void *), void *arg, int timeout_ms);

/** @brief A projector or a relay running its loop in a background thread until bb_loop_stop. */
typedef struct bb_loop {
    pthread_t thread;
    tk_projector_t *projector; /* borrowed: one of the two is set */
    tk_relay_t *relay;
    volatile int stop;
} bb_loop_t;

void bb_loop_start(bb_loop_t *l);
/** @brief Stop and join the loop; what it ran stays the caller's to free. */
void bb_loop_stop(bb_loop_t *l);

#endif

/*
 * test_expiration_util.h - shared by the expiration scheduler's integration tests and its
 * benchmark: private topics and groups on the real broker (so tests neither see nor disturb other
 * work on a shared stack), order:created publishing, a collector of expiration:complete, and the
 * scheduler run in a thread or in a child process that can be killed with SIGKILL.
 */
#ifndef TEST_EXPIRATION_UTIL_H
#define TEST_EXPIRATION_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <librdkafka/rdkafka.h>

#include "expiration.h"

/* A private set of the scheduler's topics and groups. */
typedef struct xt_names {
    char orders[96], delay[96], expirations[96], dead[96], intake_group[96], delay_group[96];
} xt_names_t;

/** @brief Fresh unique names (prefix "xt.<uuid>") and create the four topics with
 *         @p partitions partitions each. Exits the process when the broker refuses. */
void xt_create(xt_names_t *n, int partitions);

/** @brief Delete the four topics (best effort; logs nothing). */
void xt_delete(const xt_names_t *n);

/**
 * @brief Commit, for consumer group @p group, the current end of every partition of @p topic, so
 *        that a scheduler stage using that group starts there instead of replaying the history of
 *        a shared topic. Exits on failure.
 */
void xt_group_start_at_end(const char *group, const char *topic);

/** @brief Options pointing the scheduler at @p n (borrowed). */
tk_expiration_opts_t xt_opts(const xt_names_t *n);

/** @brief Flush a producer (tk_test_producer, tk_test.h: all acked, or exit) and destroy it. */
void xt_producer_free(rd_kafka_t *rk);

/**
 * @brief Enqueue an order:created event (built with ev_envelope_init and the ev_order codec) for
 *        order @p id with expiresAt = @p due_ms on @p topic, key = @p id. Exits on failure.
 * @param correlation may be NULL.
 */
void xt_publish_order_created(rd_kafka_t *rk, const char *topic, const char *id, int64_t due_ms,
                              const char *correlation);

/**
 * @brief Publish @p n order:created on @p topic, with fresh ids (into @p ids) and due times from
 *        @p start_ms on, spread evenly over @p spread_ms (into @p due); flushed on return.
 */
void xt_publish_orders(const char *topic, int n, char (*ids)[TK_UUID_LEN + 1], int64_t *due,
                       int64_t start_ms, int64_t spread_ms);

/** @brief Enqueue raw bytes with key @p key (may be NULL). Exits on failure. */
void xt_publish_raw(rd_kafka_t *rk, const char *topic, const char *key, const char *value);

/* One expiration:complete seen on the expirations topic. */
typedef struct xt_fired {
    char order_id[TK_UUID_LEN + 1];
    int64_t time_ms; /* the envelope's time: when the scheduler built the event */
    int64_t seen_ms; /* wall clock when the collector received it */
    char correlation[64];
    int64_t aggregateversion;
    bool valid; /* envelope and data decoded, subject == data.orderId, ce_type header right */
} xt_fired_t;

typedef struct xt_collector xt_collector_t;

/** @brief Read @p topic (every partition) from the beginning. Owned: xt_collector_free. */
xt_collector_t *xt_collector_new(const char *topic);
void xt_collector_free(xt_collector_t *c);

/**
 * @brief Poll for up to @p timeout_ms, stopping early once @p stop_when distinct order ids have
 *        been seen (0: never early). @return the number of records received in total so far.
 */
size_t xt_collect(xt_collector_t *c, size_t stop_when, int timeout_ms);

/** @brief Records received so far (borrowed, valid until the next xt_collect). */
const xt_fired_t *xt_collected(const xt_collector_t *c, size_t *count);

/** @brief Distinct order ids received so far. */
size_t xt_distinct(const xt_collector_t *c);

/** @brief The first record for @p order_id, or NULL. Borrowed. */
const xt_fired_t *xt_find(const xt_collector_t *c, const char *order_id);

/** @brief Run the scheduler on @p opts in a thread until xt_thread_stop. */
typedef struct xt_thread xt_thread_t;
xt_thread_t *xt_thread_start(const tk_expiration_opts_t *opts);
/** @brief Stop, join, free; @return tk_expiration_run_opts's result. */
int xt_thread_stop(xt_thread_t *t);

/**
 * @brief Start the scheduler on @p n in a child process: /proc/self/exe re-executed with
 *        "--xt-scheduler" and the names; the test's main() must call xt_child_main first.
 */
pid_t xt_child_start(const xt_names_t *n);

/**
 * @brief When argv asks for it, run the scheduler until SIGTERM and exit (never returns then);
 *        otherwise return at once. Call first thing in main().
 */
void xt_child_main(int argc, char **argv);

/** @brief SIGTERM to a child of xt_child_start, and wait for it. @return its exit status, or
 *         -1 when it did not exit (killed by a signal). */
int xt_child_stop(pid_t pid);

/*
 * The fixture of most scheduler tests: private topics, the scheduler's options on them and a
 * collector of the expirations topic, with the scheduler in a thread (or started later: by
 * xt_thread_start on opts into sched, or in a child with xt_child_start on names).
 */
typedef struct xt_run {
    xt_names_t names;
    tk_expiration_opts_t opts; /* borrows names: the fixture stays where it was started */
    xt_thread_t *sched;        /* NULL when the scheduler runs elsewhere */
    xt_collector_t *col;
} xt_run_t;

/** @brief xt_create(@p partitions), xt_opts, the collector, and the scheduler thread when
 *         @p thread. */
void xt_run_start(xt_run_t *r, int partitions, bool thread);

/** @brief Free the collector, stop the scheduler thread (when sched is set) and delete the
 *         topics. @return xt_thread_stop's result, 0 without a thread. */
int xt_run_stop(xt_run_t *r);

/** @brief A fresh random UUID in @p out. */
void xt_uuid(char out[TK_UUID_LEN + 1]);

#endif

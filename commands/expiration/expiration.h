/*
 * expiration.h - the expiration context: the delayed-topic scheduler of DESIGN.md section 7.
 *
 * Two stages, each a Kafka consumer group with offsets committed to Kafka only after the effect
 * was acked by the broker. The intake commits its delay records and its offsets in one Kafka
 * transaction (exactly once into the delay topic, intake.c); the delay stage is at-least-once (a
 * kill -9 between an ack and its commit, or a takeover of records fired out of order, fires some
 * again, delay.c): every duplicate is harmless because orders ignores an expiration:complete for
 * an order that is already cancelled or complete:
 *
 *   orders --[intake, group "expiration.intake"]--> expiration.delay
 *          --[delay, group "expiration.delay"]--> expirations (expiration:complete)
 *
 * The delay record (topic expiration.delay, key = the order id, no headers) is one compact JSON
 * object, version 1:
 *
 *   {"orderId":"<uuid>","dueAt":"2026-11-28T05:49:12.123Z"[,"correlationId":"<request id>"]}
 *
 *   orderId        the order whose reservation window ends; the subject of expiration:complete.
 *   dueAt          RFC 3339 UTC with milliseconds: the order:created event's expiresAt.
 *   correlationId  optional: the order:created event's correlationid, carried to the
 *                  expiration:complete event so one request can be traced through the delay.
 * Unknown members are ignored, so a later version may add some; a record that is not such an
 * object is logged and skipped (it cannot become valid by waiting).
 *
 * The scheduler keeps no database: its whole state is the two groups' committed offsets plus,
 * while it runs, one due time per assigned delay partition (memory O(partitions), never
 * O(pending expirations)).
 */
#ifndef TK_EXPIRATION_H
#define TK_EXPIRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ev_order.h"
#include "tk/context.h"
#include "tk/err.h"
#include "tk/ids.h"

#define TK_EXPIRATION_INTAKE_GROUP "expiration.intake"
#define TK_EXPIRATION_DELAY_GROUP "expiration.delay"

/** Largest encoded delay record, in bytes (three members of bounded size). */
#define TK_EXPIRATION_RECORD_MAX 256

/** One delay record, decoded. */
typedef struct tk_expiration_record {
    char order_id[TK_UUID_LEN + 1];
    int64_t due_ms;          /* dueAt, epoch milliseconds */
    char correlation_id[64]; /* "" when absent */
} tk_expiration_record_t;

/**
 * @brief Encode @p r as the delay record above (compact JSON, members in that order,
 *        correlationId omitted when empty).
 * @param r borrowed. @param buf caller's buffer of @p size bytes (TK_EXPIRATION_RECORD_MAX is
 *        always enough).
 * @return the length written (without the NUL), or TK_EINVAL for a bad order id, a due time
 *         before 1970, a correlation id that is too long or not UTF-8, or a buffer too small.
 */
int tk_expiration_record_encode(const tk_expiration_record_t *r, char *buf, size_t size,
                                tk_err_t *err);

/**
 * @brief Strictly decode a delay record value (need not be NUL-terminated).
 * @param out zeroed, then filled; meaningful only on success.
 * @return 0, or TK_EINVAL naming the member (not JSON, orderId not a UUID, dueAt not RFC 3339,
 *         correlationId not a string of at most 63 bytes). Never crashes on any input.
 */
int tk_expiration_record_decode(const char *buf, size_t len, tk_expiration_record_t *out,
                                tk_err_t *err);

/**
 * Where the scheduler reads and writes. Every member may be NULL/false for the production
 * defaults; tests and the benchmark point it at private topics and groups so that they neither
 * see nor disturb other work on a shared broker.
 */
typedef struct tk_expiration_opts {
    const char *orders_topic;      /* NULL: "orders" */
    const char *delay_topic;       /* NULL: "expiration.delay" */
    const char *expirations_topic; /* NULL: "expirations" */
    const char *intake_group;      /* NULL: TK_EXPIRATION_INTAKE_GROUP */
    const char *delay_group;       /* NULL: TK_EXPIRATION_DELAY_GROUP */
    const char *dead_topic;        /* NULL: "expiration.deadletter" (undecodable records) */
    /*
     * Optional intake filter: an order:created for which it returns false is not scheduled.
     * Production leaves it NULL; an end-to-end test on a shared broker uses it to schedule only
     * its own orders. Called on the intake thread; @p order is borrowed for the call.
     */
    bool (*accept)(const ev_order_created_t *order, void *ud);
    void *accept_ud; /* borrowed, passed to accept */
    /*
     * Test hook: called by a stage (@p stage "intake" or "delay") once every record its batch
     * produced is acked, just before the batch's offsets are committed; NULL in production. A
     * test kills the process here to open the window between a produce and its commit.
     */
    void (*before_commit)(const char *stage, void *ud);
    void *before_commit_ud; /* borrowed, passed to before_commit */
} tk_expiration_opts_t;

/**
 * @brief Run the scheduler until *@p stop becomes non-zero: the intake stage on a thread of its
 *        own and the delay stage on the calling thread. A stage whose broker connection fails
 *        or whose delivery is refused logs once, drops its handles (so it re-reads from its
 *        group's committed offset: nothing is lost) and starts again with a capped backoff.
 * @param stop borrowed; set it from another thread or a signal handler. The call returns within
 *        about a second of it (longer only while a delivery report is outstanding, bounded by
 *        the producer's message timeout).
 * @return 0 once stopped.
 * Thread: any; blocking. Several instances (processes or threads) may run at once: the groups
 *         spread partitions over them.
 */
int tk_expiration_run(volatile int *stop, tk_err_t *err);

/** The expiration context (expiration_context.c): its database and its worker, the scheduler. */
extern const tk_context_t tk_expiration_context;

/**
 * @brief tk_expiration_run with explicit topics and groups.
 * @param opts borrowed for the call; NULL means the defaults.
 * @return 0 once stopped; TK_EINVAL when a topic or group name is empty.
 */
int tk_expiration_run_opts(const tk_expiration_opts_t *opts, volatile int *stop, tk_err_t *err);

/** What `ticketing status` shows for the scheduler. */
typedef struct tk_expiration_status {
    /* Offsets of the delay topic not yet committed by the delay group (its lag): the pending
     * delay records plus the commit markers of the intake's transactions among them; 0 exactly
     * when nothing is pending (the delay stage commits past a trailing marker). */
    int64_t pending;
    int64_t intake_lag; /* orders records not yet committed by the intake group */
    int partitions;     /* partitions of the delay topic */
    int heads;          /* partitions with a pending head record that could be read */
    /*
     * Lateness of the most overdue head: now - dueAt of the oldest uncommitted record, maximum
     * over the partitions (read from the records themselves). Positive: a due expiration has
     * not fired yet by that many ms. Negative: nothing is overdue, the next head is due in
     * -lateness_ms. 0 when heads == 0.
     */
    int64_t lateness_ms;
} tk_expiration_status_t;

/**
 * @brief Measure the scheduler from the outside: committed offsets of both groups, watermarks,
 *        and the head record of every delay partition with a lag. Works whether or not a
 *        scheduler runs; never joins the groups.
 * @param out overwritten.
 * @return 0; TK_EUNAVAIL when the broker cannot be reached or the topics do not exist.
 * Thread: any; blocking (a few broker round trips, at most ~15 s when the broker is down).
 */
int tk_expiration_status(tk_expiration_status_t *out, tk_err_t *err);

/** @brief tk_expiration_status for the topics and groups of @p opts (borrowed; NULL: defaults). */
int tk_expiration_status_opts(const tk_expiration_opts_t *opts, tk_expiration_status_t *out,
                              tk_err_t *err);

#endif

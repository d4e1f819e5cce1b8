/*
 * test_replay_util.h - what the replay tests (test_replay, test_replay_big) share: a private
 * tickets database and a private topic, so that neither other suites' events nor their projectors
 * touch the model under test; the real ticket_view projector renamed for that topic; ticket
 * events published through a batching producer; and a live projector driven until caught up.
 */
#ifndef TEST_REPLAY_UTIL_H
#define TEST_REPLAY_UTIL_H

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "tk/ids.h"
#include "tk/projector.h"

typedef struct rt_env {
    char db[64];    /* the private database (DATABASE_URL_TICKETS points at it) */
    char topic[64]; /* the private topic */
    char name[64];  /* the projection name (and group "tickets.<name>") */
    const char *topics[2];
    tk_projector_spec_t spec; /* tk_tickets_view_projector on topic, called name */
    PGconn *db_conn;          /* to the private database */
    rd_kafka_t *producer;
    int64_t published; /* records produced to topic so far */
    int partitions;    /* of topic */
} rt_env_t;

/**
 * @brief Require the stack, create the private database (migrated) and topic (@p partitions),
 *        fill @p e. Fails the test process on any setup error.
 * @param prefix names the database and topic ("replaytest").
 */
void rt_env_init(rt_env_t *e, const char *prefix, int partitions);

/** @brief Close, flush, and drop the private database. */
void rt_env_release(rt_env_t *e);

/** @brief A cmocka group teardown: rt_env_release of the environment rt_env_init filled last. */
int rt_teardown(void **state);

/** The expected state of a ticket after the events rt_publish_tickets produced. */
typedef struct rt_ticket {
    char id[TK_UUID_LEN + 1];
    char user_id[TK_UUID_LEN + 1];
    int64_t version; /* last version published */
} rt_ticket_t;

/**
 * @brief For each of @p n tickets: ticket:created, then @p updates ticket:updated (the last one
 *        of an even ticket reserves it with an orderId), keyed by the ticket id as the tickets
 *        context does. Asynchronous: call rt_flush before relying on them.
 * @param out n entries, filled (fresh ids).
 */
void rt_publish_tickets(rt_env_t *e, rt_ticket_t *out, int n, int updates);

/** @brief One more ticket:updated of @p t (version + 1, title @p title). */
void rt_publish_update(rt_env_t *e, rt_ticket_t *t, const char *title);

/** @brief A raw record (a poison one, or an exact duplicate of an envelope). */
void rt_publish_raw(rt_env_t *e, const char *key, const char *value);

/** @brief Wait for every delivery report, then check that the topic holds every record
 *         published (its high watermarks add up to e->published); fails the test otherwise. */
void rt_flush(rt_env_t *e);

/** @brief Sum of the projection's stored next offsets in the private database. */
int64_t rt_stored_sum(rt_env_t *e);

/**
 * @brief Poll @p p until the stored offsets account for every record published (sum ==
 *        e->published) or @p timeout_ms passes. @return true when caught up; false after printing
 *        where it stands (stored and end offset per partition, the last poll error) to stderr.
 */
bool rt_catch_up(rt_env_t *e, tk_projector_t *p, int timeout_ms);

/** @brief The oid of public.<table> in the private database. */
int64_t rt_table_oid(rt_env_t *e, const char *table);

/** @brief The first column of the first row as text ("" for none/NULL), or fail. Owned. */
char *rt_text(rt_env_t *e, const char *sql, int nparams, const char *const *params);

/** @brief ticket_view and ticket_history as one text, rows in key order (each envelope by its
 *         md5), to compare two builds of the tickets view. Owned. */
char *rt_tickets_snapshot(rt_env_t *e);

/**
 * @brief The log where building the tickets view can go wrong, not flushed: @p n tickets created,
 *        then each updated three times (later times), version 2 again with other content after
 *        version 3 for every other ticket, and two updates of ticket t[n], never created.
 * @param t at least n + 1 entries, overwritten with the expected states.
 */
void rt_publish_hard_cases(rt_env_t *e, rt_ticket_t *t, int n);

/** @brief Whether the view built from rt_publish_hard_cases shows its cases: all n tickets at
 *         version 3 ("updated"), each created_at before its updates' times (else says which). */
bool rt_hard_cases_happened(rt_env_t *e, int n);

#endif

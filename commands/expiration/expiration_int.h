/*
 * expiration_int.h - what the files of the expiration context share: the resolved options and
 * the two stage loops. Private to commands/expiration/ (and its unit tests).
 */
#ifndef TK_EXPIRATION_INT_H
#define TK_EXPIRATION_INT_H

#include "expiration.h"

#include <librdkafka/rdkafka.h>

/* The options with every default filled in; strings borrowed from the caller's options. */
typedef struct tk_expiration__cfg {
    const char *orders_topic;
    const char *delay_topic;
    const char *expirations_topic;
    const char *intake_group;
    const char *delay_group;
    const char *dead_topic;
    bool (*accept)(const ev_order_created_t *order, void *ud);
    void *accept_ud;
    void (*before_commit)(const char *stage, void *ud);
    void *before_commit_ud;
} tk_expiration__cfg_t;

/** @brief Fill @p out from @p opts (may be NULL). @return 0, or TK_EINVAL for an empty name. */
int tk_expiration__cfg_resolve(const tk_expiration_opts_t *opts, tk_expiration__cfg_t *out,
                               tk_err_t *err);

/**
 * @brief A producer; with @p group (not NULL) a transactional one (tk_kafka_producer_new_tx,
 *        transactional.id = @p group "." TK_INSTANCE_ID, or a random id without one),
 *        transactions initialised. It already
 *        knows @p produce_to's partitions and leaders, so the first record is not held back by
 *        a metadata lookup (about a second otherwise); also checks that @p consume_from exists,
 *        since a consumer subscribed to a missing topic would look for it again only at its next
 *        periodic metadata refresh.
 * @return owned (rd_kafka_destroy); NULL with TK_EUNAVAIL when a topic does not exist, the
 *         broker cannot be reached or the transactions cannot be initialised (the stage
 *         retries: `ticketing topics` may not have run yet), TK_EINTERNAL when the producer
 *         cannot be made.
 */
rd_kafka_t *tk_expiration__producer_new(const char *group, const char *produce_to,
                                        const char *consume_from, tk_err_t *err);

/** @brief Begin a transaction unless *@p open; sets *@p open. @return 0 or TK_EUNAVAIL. */
int tk_expiration__txn_begin(rd_kafka_t *producer, bool *open, tk_err_t *err);

/**
 * @brief Commit, in one transaction, what @p producer produced since it began and @p offsets
 *        (borrowed; the next offset to read per input partition) as @p consumer's group's
 *        committed offsets (begun here when not *@p open and @p offsets is not empty).
 * @return 0 (*@p open false); TK_EUNAVAIL when it failed: the transaction is aborted, so
 *         nothing of it is visible and none of the offsets moved; the caller ends its life.
 */
int tk_expiration__txn_commit(rd_kafka_t *producer, rd_kafka_t *consumer,
                              const rd_kafka_topic_partition_list_t *offsets, bool *open,
                              tk_err_t *err);

/** @brief Abort the open transaction, if any (failures are logged). */
void tk_expiration__txn_abort(rd_kafka_t *producer, bool *open);

/**
 * @brief Dead-letter record @p m, which a stage cannot use (DESIGN.md section 6): copy its key
 *        and value to @p cfg->dead_topic with headers dlq_error (@p why), dlq_topic,
 *        dlq_partition and dlq_offset, and wait for the broker's ack, so the stage commits past
 *        it only once it is kept. Logs it as an error.
 * @return 0; TK_EUNAVAIL when the dead-letter topic refused it (the stage fails and re-reads).
 */
int tk_expiration__dead_letter(const tk_expiration__cfg_t *cfg, rd_kafka_t *producer,
                               const rd_kafka_message_t *m, const char *why, tk_err_t *err);

/**
 * @brief One life of the intake stage: create its consumer and producer, then move order:created
 *        events into delay records until *@p stop or a failure.
 * @return 0 when stopped; TK_EUNAVAIL/TK_EINTERNAL on a failure (handles are released; the
 *         caller backs off and calls again, which re-reads from the committed offset).
 */
int tk_expiration__intake_run(const tk_expiration__cfg_t *cfg, volatile int *stop, tk_err_t *err);

/** @brief One life of the delay stage, as tk_expiration__intake_run. */
int tk_expiration__delay_run(const tk_expiration__cfg_t *cfg, volatile int *stop, tk_err_t *err);

#endif

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
} tk_expiration__cfg_t;

/** @brief Fill @p out from @p opts (may be NULL). @return 0, or TK_EINVAL for an empty name. */
int tk_expiration__cfg_resolve(const tk_expiration_opts_t *opts, tk_expiration__cfg_t *out,
                               tk_err_t *err);

/**
 * @brief A producer (tk_kafka_producer_new) that already knows @p produce_to's partitions and
 *        leaders, so the first record is not held back by a metadata lookup (about a second
 *        otherwise); also checks that @p consume_from exists, since a consumer subscribed to a
 *        missing topic would look for it again only at its next periodic metadata refresh.
 * @return owned (rd_kafka_flush, rd_kafka_destroy); NULL with TK_EUNAVAIL when a topic does not
 *         exist or the broker cannot be reached (the stage retries: `ticketing topics` may not
 *         have run yet), TK_EINTERNAL when the producer cannot be made.
 */
rd_kafka_t *tk_expiration__producer_new(const char *produce_to, const char *consume_from,
                                        tk_err_t *err);

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

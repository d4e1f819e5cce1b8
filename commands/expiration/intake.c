/*
 * intake.c - stage 1 of the scheduler: order:created on topic orders becomes a delay record
 * {orderId, dueAt = expiresAt} on expiration.delay, key = the order id.
 *
 * One batch at a time, so a crash at any point loses nothing:
 *
 *   poll up to BATCH_MAX records --> produce one delay record per order:created
 *     --> wait until every delivery report arrived (acks=all)
 *     --> commit, per orders partition, the offset after the last record of the batch
 *
 * A crash before the commit re-reads the batch and writes its delay records again: duplicates,
 * which the delay stage fires twice and orders ignores the second time. A failed delivery ends
 * this life of the stage without committing (the caller restarts it from the committed offset).
 * A commit refused because of a rebalance is only logged: the next owner of the partition starts
 * from the older committed offset, again giving only duplicates.
 *
 * Records that are not order:created (other order events share the topic) are skipped; records
 * that do not decode (or an order:created that gives no delay record) are dead-lettered
 * (DESIGN.md section 6): this context keeps no database, so its dead-letter table is the topic
 * expiration.deadletter, and the record is copied there, acked, before the offset moves past it
 * (tk_expiration__dead_letter). Waiting would not make it decodable, and dropping it would lose
 * an expiration without a trace.
 *
 * Memory: one batch of delivery slots (BATCH_MAX) and librdkafka's bounded queues.
 */
#include "expiration_int.h"

#include <stdio.h>
#include <string.h>

#include "ev_catalog.h"
#include "ev_envelope.h"
#include "tk/kafka.h"
#include "tk/log.h"
#include "tk/mem.h"

#define BATCH_MAX 1000
#define POLL_MS 500

struct intake {
    const tk_expiration__cfg_t *cfg;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_topic_partition_list_t *offsets; /* per orders partition: next offset to commit */
    tk_kafka_delivery_t dr[BATCH_MAX];
    size_t n; /* delivery slots in use */
};

/* Remember that everything up to @p m has been handled. */
static void mark_done(struct intake *in, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_find(in->offsets, topic, m->partition);
    if (tp == NULL)
        tp = rd_kafka_topic_partition_list_add(in->offsets, topic, m->partition);
    if (m->offset + 1 > tp->offset)
        tp->offset = m->offset + 1;
}

/* Dead-letter @p m with the reason @p what and the decoder's detail @p why. */
static int dead_letter(struct intake *in, const rd_kafka_message_t *m, const char *what,
                       const tk_err_t *why, tk_err_t *err)
{
    char reason[600];
    snprintf(reason, sizeof(reason), "%s: %s %s", what, why->field, why->message);
    return tk_expiration__dead_letter(in->cfg, in->producer, m, reason, err);
}

/*
 * Turn one orders record into a delay record. Returns 0 when the record is handled (scheduled
 * or skipped), or an error when the producer refused it (the batch then fails).
 */
static int handle(struct intake *in, const rd_kafka_message_t *m, tk_err_t *err)
{
    int rc = 0;
    ev_envelope_t env = {0};
    ev_order_created_t order;
    tk_expiration_record_t rec = {0};
    tk_err_t why = {0};
    char value[TK_EXPIRATION_RECORD_MAX];

    if (ev_envelope_decode(m->payload, m->len, &env, &why) != 0) {
        rc = dead_letter(in, m, "undecodable envelope", &why, err);
        goto out;
    }
    if (strcmp(env.type, "order:created") != 0)
        goto out;
    if (ev_order_created_from_json(env.data, &order, &why) != 0 ||
        tk_time_parse(order.expires_at, &rec.due_ms) != 0) {
        rc = dead_letter(in, m, "undecodable order:created", &why, err);
        goto out;
    }
    if (in->cfg->accept != NULL && !in->cfg->accept(&order, in->cfg->accept_ud))
        goto out;
    memcpy(rec.order_id, order.id, sizeof(rec.order_id));
    snprintf(rec.correlation_id, sizeof(rec.correlation_id), "%s", env.correlationid);
    int len = tk_expiration_record_encode(&rec, value, sizeof(value), &why);
    if (len < 0) {
        rc = dead_letter(in, m, "order:created gives no delay record", &why, err);
        goto out;
    }
    tk_kafka_delivery_t *dr = &in->dr[in->n];
    memset(dr, 0, sizeof(*dr));
    if ((rc = tk_kafka_produce(in->producer, in->cfg->delay_topic, rec.order_id, value, (size_t)len,
                               NULL, dr, err)) != 0)
        goto out;
    in->n++;
out:
    ev_envelope_release(&env);
    return rc;
}

/*
 * Wait for every delivery report of the batch. Every enqueued record gets exactly one within
 * message.timeout.ms, so the loop ends; leaving it earlier would let librdkafka write into slots
 * that the next batch reuses.
 */
static int wait_reports(struct intake *in, tk_err_t *err)
{
    size_t failed = 0;
    rd_kafka_resp_err_t first = RD_KAFKA_RESP_ERR_NO_ERROR;

    for (size_t i = 0; i < in->n; i++) {
        while (!in->dr[i].done)
            rd_kafka_poll(in->producer, 50);
        if (in->dr[i].err != RD_KAFKA_RESP_ERR_NO_ERROR && failed++ == 0)
            first = in->dr[i].err;
    }
    in->n = 0;
    if (failed > 0)
        return tk_err_set(err, TK_EUNAVAIL, in->cfg->delay_topic,
                          "%zu delay records were not acked: %s", failed, rd_kafka_err2str(first));
    return 0;
}

/* Commit what the batch covered (all of it was acked), then start a new offsets list. */
static void commit(struct intake *in)
{
    if (in->offsets->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(in->consumer, in->offsets, 0);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            tk_log(TK_LOG_WARN, "expiration", "intake commit refused, the batch may repeat",
                   "\"error\":\"%s\"", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(in->offsets);
    in->offsets = rd_kafka_topic_partition_list_new(8);
}

int tk_expiration__intake_run(const tk_expiration__cfg_t *cfg, volatile int *stop, tk_err_t *err)
{
    int rc = 0;
    struct intake *in = tk_mem_zalloc(sizeof(*in));
    rd_kafka_topic_partition_list_t *topics = NULL;

    in->cfg = cfg;
    in->offsets = rd_kafka_topic_partition_list_new(8);
    if ((in->producer = tk_expiration__producer_new(cfg->delay_topic, cfg->orders_topic, err)) ==
            NULL ||
        (in->consumer = tk_kafka_consumer_new(cfg->intake_group, err)) == NULL) {
        rc = err != NULL && err->code != 0 ? err->code : TK_EINTERNAL;
        goto out;
    }
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg->orders_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(in->consumer, topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = tk_err_set(err, TK_EINTERNAL, cfg->orders_topic, "subscribe to %s: %s",
                        cfg->orders_topic, rd_kafka_err2str(e));
        goto out;
    }
    while (!*stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(in->consumer, POLL_MS);
        while (m != NULL) {
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                rc = handle(in, m, err);
                mark_done(in, m);
            } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                tk_log(TK_LOG_WARN, "expiration", "intake consumer error", "\"error\":\"%s\"",
                       rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            if (rc != 0 || in->n == BATCH_MAX)
                break;
            m = rd_kafka_consumer_poll(in->consumer, 0);
        }
        if (rc != 0) {
            /* Drain the reports of what was enqueued before the refusal, then give up this
             * life without committing: the next one re-reads the batch. */
            tk_err_t ignored = {0};
            wait_reports(in, &ignored);
            goto out;
        }
        if ((rc = wait_reports(in, err)) != 0)
            goto out;
        commit(in);
        char why[256];
        if (rd_kafka_fatal_error(in->producer, why, sizeof(why)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = tk_err_set(err, TK_EUNAVAIL, "", "intake producer failed: %s", why);
            goto out;
        }
    }
out:
    if (topics != NULL)
        rd_kafka_topic_partition_list_destroy(topics);
    if (in->consumer != NULL) {
        rd_kafka_consumer_close(in->consumer);
        rd_kafka_destroy(in->consumer);
    }
    if (in->producer != NULL) {
        rd_kafka_flush(in->producer, 10000);
        rd_kafka_destroy(in->producer);
    }
    rd_kafka_topic_partition_list_destroy(in->offsets);
    free(in);
    return rc;
}

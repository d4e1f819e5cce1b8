/*
 * intake.c - stage 1 of the scheduler: order:created on topic orders becomes a delay record
 * {orderId, dueAt = expiresAt} on expiration.delay, key = the order id.
 *
 * One batch at a time, in one Kafka transaction, so a crash at any point neither loses nor
 * doubles anything:
 *
 *   poll up to BATCH_MAX records --> produce one delay record per order:created
 *     --> wait until every delivery report arrived (acks=all)
 *     --> commit the transaction: the delay records and, per orders partition, the offset after
 *         the last record of the batch (send_offsets_to_transaction), visible together or not
 *
 * A crash (kill -9) before the commit leaves the transaction open: the broker aborts it when the
 * restarted instance's producer (same transactional.id, TK_INSTANCE_ID) starts, or after
 * transaction.timeout.ms, and every reader of the delay topic is read_committed, so the batch the
 * next life writes again is the only copy. Without the transaction that window, between the acks
 * and the offset commit, wrote whole batches twice (tests/integration/test_expiration_kill.c) and
 * one expiration fired twice in the cluster test's rolling restart. A failed delivery or a refused
 * commit aborts the batch and ends this life (the caller restarts it from the committed offset).
 * Rebalance: the batch never straddles one. When partitions are revoked (inside a poll, maybe in
 * the middle of a batch), on_rebalance first waits for the batch's reports and commits its
 * transaction, still in the old generation, and only then gives the partitions up; the broker
 * refuses the offsets of a member whose generation is over (KIP-447), which aborts that batch, so
 * a zombie cannot add a second copy either. With static membership (TK_INSTANCE_ID) a restart is
 * not even a rebalance.
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

#include <stdbool.h>
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
    size_t n;       /* delivery slots in use */
    bool txn;       /* a transaction is open (the batch's records and offsets go in it) */
    int revoke_err; /* set when a revoke could not commit the batch: this life ends */
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

    /* Every record of the batch, produced or skipped, is committed in the batch's transaction. */
    if ((rc = tk_expiration__txn_begin(in->producer, &in->txn, err)) != 0)
        return rc;
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

/*
 * Commit the batch: its delay records and the orders offsets after it, in one transaction, so
 * they become visible together or not at all (the batch was acked: wait_reports). A refused
 * commit aborts the transaction, and the caller ends this life: the next one (or the next owner
 * of the partitions) re-reads the batch and writes its records once more, the aborted ones being
 * invisible to every read_committed consumer. Measured without the transaction: a restart of one
 * of two schedulers wrote a few delay records twice (one expiration fired twice in the cluster
 * test), and a kill -9 between the acks and the commit wrote a whole batch twice.
 */
static int commit(struct intake *in, tk_err_t *err)
{
    int rc = tk_expiration__txn_commit(in->producer, in->consumer, in->offsets, &in->txn, err);
    rd_kafka_topic_partition_list_destroy(in->offsets);
    in->offsets = rd_kafka_topic_partition_list_new(8);
    return rc;
}

/* Give the batch up: drain its reports, abort its transaction, forget its offsets. */
static void abandon(struct intake *in)
{
    tk_err_t ignored = {0};
    wait_reports(in, &ignored);
    tk_expiration__txn_abort(in->producer, &in->txn);
    rd_kafka_topic_partition_list_destroy(in->offsets);
    in->offsets = rd_kafka_topic_partition_list_new(8);
}

/*
 * Revoke: finish the batch (reports, then the transaction with its offsets) before the
 * partitions go, still in the old generation, so the next owner starts after it. Lost partitions
 * (the session expired: the broker would refuse the offsets) abort it instead. Assign: take the
 * partitions at their committed offsets.
 */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t code,
                         rd_kafka_topic_partition_list_t *list, void *opaque)
{
    struct intake *in = opaque;
    bool assign = code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    if (!assign) {
        tk_err_t why = {0};
        if (in->revoke_err != 0 || rd_kafka_assignment_lost(rk)) {
            abandon(in);
        } else if (wait_reports(in, &why) != 0 || commit(in, &why) != 0) {
            tk_log(TK_LOG_WARN, "expiration", "revoke could not commit the batch: aborted",
                   "\"error\":\"%s\"", why.message);
            in->revoke_err = why.code != 0 ? why.code : TK_EUNAVAIL;
            abandon(in);
        }
    }
    tk_err_t refused = {0};
    if (tk_kafka_rebalance_apply(rk, assign, list, &refused) != 0) {
        tk_log(TK_LOG_ERROR, "expiration", "intake (un)assign refused", "\"error\":\"%s\"",
               refused.message);
        in->revoke_err = TK_EINTERNAL;
    }
}

int tk_expiration__intake_run(const tk_expiration__cfg_t *cfg, volatile int *stop, tk_err_t *err)
{
    int rc = 0;
    struct intake *in = tk_mem_zalloc(sizeof(*in));

    in->cfg = cfg;
    in->offsets = rd_kafka_topic_partition_list_new(8);
    if ((in->producer = tk_expiration__producer_new(cfg->intake_group, cfg->delay_topic,
                                                    cfg->orders_topic, err)) == NULL ||
        (in->consumer = tk_kafka_consumer_new_with(cfg->intake_group, on_rebalance, in, err)) ==
            NULL) {
        rc = err != NULL && err->code != 0 ? err->code : TK_EINTERNAL;
        goto out;
    }
    if ((rc = tk_kafka_subscribe(in->consumer, cfg->orders_topic, err)) != 0)
        goto out;
    while (!*stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(in->consumer, POLL_MS);
        while (m != NULL) {
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                rc = handle(in, m, err);
                mark_done(in, m);
            } else if ((rc = tk_kafka_consumer_dead(in->consumer, m, err)) == 0 &&
                       m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* (A dead consumer - a fenced static member - set rc: this life ends, so that
                 * stage_loop starts the stage with a new consumer.) */
                tk_log(TK_LOG_WARN, "expiration", "intake consumer error", "\"error\":\"%s\"",
                       rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            if (rc != 0 || in->n == BATCH_MAX || in->revoke_err != 0)
                break;
            m = rd_kafka_consumer_poll(in->consumer, 0);
        }
        if (rc != 0)
            goto out; /* the batch is aborted below: the next life re-reads it */
        if (in->revoke_err != 0) {
            rc = tk_err_set(err, in->revoke_err, cfg->delay_topic,
                            "a revoke could not commit the batch");
            goto out;
        }
        size_t produced = in->n;
        if ((rc = wait_reports(in, err)) != 0)
            goto out;
        if (produced > 0 && cfg->before_commit != NULL)
            cfg->before_commit("intake", cfg->before_commit_ud);
        if ((rc = commit(in, err)) != 0)
            goto out;
        char why[256];
        if (rd_kafka_fatal_error(in->producer, why, sizeof(why)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = tk_err_set(err, TK_EUNAVAIL, "", "intake producer failed: %s", why);
            goto out;
        }
    }
out:
    if (in->producer != NULL && rc != 0)
        abandon(in); /* before the close's revoke, which would commit it */
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

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
 * Rebalance: the batch never straddles one. When partitions are revoked (inside a poll, maybe in
 * the middle of a batch), on_rebalance first waits for the batch's reports and commits it, still
 * in the old generation, and only then gives the partitions up: the next owner starts exactly
 * after what this one scheduled, so a rebalance neither loses nor doubles an expiration. With
 * static membership (TK_INSTANCE_ID) a restart is not even a rebalance. A commit that is refused
 * anyway is only logged: the next owner starts from the older committed offset, giving only
 * duplicates.
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
    int revoke_err; /* set when a revoke found an unacked record: this life ends, no commit */
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

/*
 * Commit what the batch covered (all of it was acked), then start a new offsets list. A refused
 * commit (the group is completing a rebalance: REBALANCE_IN_PROGRESS) keeps the list: the next
 * assignment of those partitions starts after it (on_rebalance) and the next commit carries it,
 * so the batch is not scheduled twice. Measured: without this, restarting one of two schedulers
 * fired a few expirations twice.
 */
static void commit(struct intake *in)
{
    if (in->offsets->cnt == 0)
        return;
    rd_kafka_resp_err_t e = rd_kafka_commit(in->consumer, in->offsets, 0);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tk_log(TK_LOG_WARN, "expiration", "intake commit refused, kept for the next one",
               "\"error\":\"%s\"", rd_kafka_err2str(e));
        return;
    }
    rd_kafka_topic_partition_list_destroy(in->offsets);
    in->offsets = rd_kafka_topic_partition_list_new(8);
}

/*
 * Assign: a partition whose scheduled offset could not be committed yet resumes after it. Under
 * the EAGER protocol @p list is the whole new assignment: forget the partitions not in it (their
 * new owner starts from the committed offset; ours must not move it back later).
 */
static void resume_kept(struct intake *in, rd_kafka_topic_partition_list_t *list, bool eager)
{
    rd_kafka_topic_partition_list_t *kept = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *el = &list->elems[i];
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(in->offsets, el->topic, el->partition);
        if (tp == NULL)
            continue;
        el->offset = tp->offset;
        rd_kafka_topic_partition_list_add(kept, el->topic, el->partition)->offset = tp->offset;
    }
    if (eager) {
        rd_kafka_topic_partition_list_destroy(in->offsets);
        in->offsets = kept;
    } else {
        rd_kafka_topic_partition_list_destroy(kept);
    }
}

/*
 * Revoke: finish the batch (reports, then commit) before the partitions go, so the next owner
 * starts after it. Assign: take the partitions at their committed offsets.
 */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t code,
                         rd_kafka_topic_partition_list_t *list, void *opaque)
{
    struct intake *in = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (in->revoke_err == 0)
            resume_kept(in, list, !cooperative);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, list);
        else
            e = rd_kafka_assign(rk, list);
    } else {
        tk_err_t why = {0};
        if (wait_reports(in, &why) != 0) {
            tk_log(TK_LOG_WARN, "expiration", "revoke with unacked delay records: not committed",
                   "\"error\":\"%s\"", why.message);
            in->revoke_err = why.code;
            /* Not all of the batch was scheduled: its offsets must never be resumed from. */
            rd_kafka_topic_partition_list_destroy(in->offsets);
            in->offsets = rd_kafka_topic_partition_list_new(8);
        } else if (code == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
            commit(in); /* lost partitions (session gone) cannot be committed any more */
        }
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, list);
        else
            e = rd_kafka_assign(rk, NULL);
    }
    if (error != NULL) {
        tk_log(TK_LOG_ERROR, "expiration", "intake (un)assign refused", "\"error\":\"%s\"",
               rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        in->revoke_err = TK_EINTERNAL;
    } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        tk_log(TK_LOG_ERROR, "expiration", "intake (un)assign refused", "\"error\":\"%s\"",
               rd_kafka_err2str(e));
        in->revoke_err = TK_EINTERNAL;
    }
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
        (in->consumer = tk_kafka_consumer_new_with(cfg->intake_group, on_rebalance, in, err)) ==
            NULL) {
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
        if (rc != 0) {
            /* Drain the reports of what was enqueued before the refusal, then give up this
             * life without committing: the next one re-reads the batch. */
            tk_err_t ignored = {0};
            wait_reports(in, &ignored);
            goto out;
        }
        if (in->revoke_err != 0) {
            rc = tk_err_set(err, in->revoke_err, cfg->delay_topic,
                            "a revoke found delay records not acked");
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

/*
 * expiration.c - the scheduler's entry point: both stages, each restarted after a failure.
 *
 * The intake stage runs on a thread of its own and the delay stage on the caller's thread; they
 * share nothing but the delay topic, so either can stall (broker down, group rebalancing) while
 * the other goes on. Each stage is a "life" (tk_expiration__*_run) that owns its librdkafka
 * handles; any failure inside a life ends it without committing, and this file starts a new one
 * after a capped backoff (200 ms doubling to 5 s, as app/workers.c does). A new life re-reads
 * from its group's committed offsets, which is what makes a failure, like a kill -9, lose
 * nothing (see intake.c and delay.c for why the committed offsets are always safe).
 */
#include "expiration_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ev_catalog.h"
#include "tk/backoff.h"
#include "tk/cfg.h"
#include "tk/kafka.h"
#include "tk/log.h"

#define TXN_TIMEOUT_MS 30000 /* librdkafka calls of a transaction; a failure ends the life */

static int name_ok(const char *s)
{
    return s != NULL && *s != '\0';
}

int tk_expiration__cfg_resolve(const tk_expiration_opts_t *opts, tk_expiration__cfg_t *out,
                               tk_err_t *err)
{
    static const tk_expiration_opts_t defaults = {0};
    if (opts == NULL)
        opts = &defaults;
    *out = (tk_expiration__cfg_t){
        .orders_topic = opts->orders_topic ? opts->orders_topic : EV_TOPIC_ORDERS,
        .delay_topic = opts->delay_topic ? opts->delay_topic : EV_TOPIC_EXPIRATION_DELAY,
        .expirations_topic =
            opts->expirations_topic ? opts->expirations_topic : EV_TOPIC_EXPIRATIONS,
        .intake_group = opts->intake_group ? opts->intake_group : TK_EXPIRATION_INTAKE_GROUP,
        .delay_group = opts->delay_group ? opts->delay_group : TK_EXPIRATION_DELAY_GROUP,
        .dead_topic = opts->dead_topic ? opts->dead_topic : EV_TOPIC_EXPIRATION_DEAD,
        .accept = opts->accept,
        .accept_ud = opts->accept_ud,
        .before_commit = opts->before_commit,
        .before_commit_ud = opts->before_commit_ud,
    };
    if (!name_ok(out->orders_topic) || !name_ok(out->delay_topic) ||
        !name_ok(out->expirations_topic) || !name_ok(out->intake_group) ||
        !name_ok(out->delay_group) || !name_ok(out->dead_topic))
        return tk_err_set(err, TK_EINVAL, "opts", "expiration topics and groups must be named");
    return 0;
}

/* 0 when @p topic exists with its partitions led; else TK_EUNAVAIL. */
static int topic_ready(rd_kafka_t *rk, const char *topic, tk_err_t *err)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && (md->topic_cnt != 1 || md->topics[0].err != 0))
        e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return tk_err_set(err, TK_EUNAVAIL, topic, "topic %s: %s", topic, rd_kafka_err2str(e));
    return 0;
}

/* @p rk (consumed), or NULL when it is NULL or a topic is not ready. */
static rd_kafka_t *producer_ready(rd_kafka_t *rk, const char *produce_to, const char *consume_from,
                                  tk_err_t *err)
{
    if (rk != NULL &&
        (topic_ready(rk, produce_to, err) != 0 || topic_ready(rk, consume_from, err) != 0)) {
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

rd_kafka_t *tk_expiration__producer_new(const char *group, const char *produce_to,
                                        const char *consume_from, tk_err_t *err)
{
    /* group.<instance>: a restarted instance fences its predecessor's producer and aborts the
     * transaction it left open at once; without an instance id, a random one (an open
     * transaction of a killed process then waits out transaction.timeout.ms). */
    if (group == NULL)
        return producer_ready(tk_kafka_producer_new(err), produce_to, consume_from, err);
    char id[256], uuid[TK_UUID_LEN + 1];
    const char *instance = tk_cfg()->instance_id;
    if (instance == NULL) {
        tk_uuid_new(uuid);
        instance = uuid;
    }
    snprintf(id, sizeof(id), "%s.%s", group, instance);
    rd_kafka_t *rk =
        producer_ready(tk_kafka_producer_new_tx(id, err), produce_to, consume_from, err);
    if (rk == NULL)
        return NULL;
    rd_kafka_error_t *e = rd_kafka_init_transactions(rk, TXN_TIMEOUT_MS);
    if (e != NULL) {
        tk_err_set(err, TK_EUNAVAIL, "", "init transactions of %s: %s", id,
                   rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

/* Fill err from @p e (consumed). */
static int txn_error(rd_kafka_error_t *e, const char *what, tk_err_t *err)
{
    int rc = tk_err_set(err, TK_EUNAVAIL, "", "transaction %s: %s", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return rc;
}

int tk_expiration__txn_begin(rd_kafka_t *producer, bool *open, tk_err_t *err)
{
    if (*open)
        return 0;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(producer);
    if (e != NULL)
        return txn_error(e, "begin", err);
    *open = true;
    return 0;
}

int tk_expiration__txn_commit(rd_kafka_t *producer, rd_kafka_t *consumer,
                              const rd_kafka_topic_partition_list_t *offsets, bool *open,
                              tk_err_t *err)
{
    int rc = 0;
    if (offsets->cnt == 0 && !*open)
        return 0;
    if ((rc = tk_expiration__txn_begin(producer, open, err)) != 0)
        return rc;
    if (offsets->cnt > 0) {
        /* The group metadata (generation, member) lets the broker refuse the offsets of a
         * member that lost its partitions (KIP-447): the whole transaction then aborts. */
        rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(consumer);
        rd_kafka_error_t *e =
            rd_kafka_send_offsets_to_transaction(producer, offsets, md, TXN_TIMEOUT_MS);
        rd_kafka_consumer_group_metadata_destroy(md);
        if (e != NULL) {
            rc = txn_error(e, "send offsets", err);
            tk_expiration__txn_abort(producer, open);
            return rc;
        }
    }
    rd_kafka_error_t *e = rd_kafka_commit_transaction(producer, TXN_TIMEOUT_MS);
    if (e != NULL) {
        rc = txn_error(e, "commit", err);
        tk_expiration__txn_abort(producer, open);
        return rc;
    }
    *open = false;
    return 0;
}

void tk_expiration__txn_abort(rd_kafka_t *producer, bool *open)
{
    if (!*open)
        return;
    *open = false;
    rd_kafka_error_t *e = rd_kafka_abort_transaction(producer, TXN_TIMEOUT_MS);
    if (e != NULL) {
        /* The broker aborts it after transaction.timeout.ms, or when a producer with the same
         * transactional id starts: its records are never read (read_committed). */
        tk_log(TK_LOG_WARN, "expiration", "transaction abort failed", "\"error\":\"%s\"",
               rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
}

typedef int (*stage_fn)(const tk_expiration__cfg_t *cfg, volatile int *stop, tk_err_t *err);

/* A stage (intake or delay) under tk_supervise. */
struct stage {
    const char *name;
    stage_fn fn;
    const tk_expiration__cfg_t *cfg;
};

static int stage_life(void *arg, volatile int *stop, tk_backoff_t *delay, tk_err_t *err)
{
    const struct stage *st = arg;
    int64_t started = tk_mono_ms();
    int rc = st->fn(st->cfg, stop, err);
    if (rc != 0 && tk_mono_ms() - started > 60000)
        tk_backoff_reset(delay); /* it had been healthy: start the backoff again */
    return rc;
}

static void stage_failed(void *arg, const tk_err_t *err)
{
    const struct stage *st = arg;
    tk_log(TK_LOG_WARN, "expiration", "stage failed, restarting",
           "\"stage\":\"%s\",\"error\":\"%s\",\"code\":\"%s\"", st->name, err->message,
           tk_err_name(err->code));
}

/* Run lives of @p fn until *stop. */
static void stage_loop(const char *name, stage_fn fn, const tk_expiration__cfg_t *cfg,
                       volatile int *stop)
{
    struct stage st = {.name = name, .fn = fn, .cfg = cfg};
    tk_backoff_t delay;
    tk_backoff_init(&delay, 200, 5000);
    tk_supervise(stage_life, stage_failed, &st, &delay, stop);
}

struct intake_thread {
    const tk_expiration__cfg_t *cfg;
    volatile int *stop;
};

static void *intake_main(void *arg)
{
    struct intake_thread *t = arg;
    stage_loop("intake", tk_expiration__intake_run, t->cfg, t->stop);
    return NULL;
}

int tk_expiration_run_opts(const tk_expiration_opts_t *opts, volatile int *stop, tk_err_t *err)
{
    tk_expiration__cfg_t cfg;
    int rc = tk_expiration__cfg_resolve(opts, &cfg, err);
    if (rc != 0)
        return rc;
    struct intake_thread t = {.cfg = &cfg, .stop = stop};
    pthread_t tid;
    if (pthread_create(&tid, NULL, intake_main, &t) != 0)
        return tk_err_set(err, TK_EINTERNAL, "", "cannot start the intake thread");
    tk_log(TK_LOG_INFO, "expiration", "scheduler started",
           "\"orders\":\"%s\",\"delay\":\"%s\",\"expirations\":\"%s\"", cfg.orders_topic,
           cfg.delay_topic, cfg.expirations_topic);
    stage_loop("delay", tk_expiration__delay_run, &cfg, stop);
    pthread_join(tid, NULL);
    tk_log(TK_LOG_INFO, "expiration", "scheduler stopped", NULL);
    return 0;
}

int tk_expiration_run(volatile int *stop, tk_err_t *err)
{
    return tk_expiration_run_opts(NULL, stop, err);
}

int tk_expiration__dead_letter(const tk_expiration__cfg_t *cfg, rd_kafka_t *producer,
                               const rd_kafka_message_t *m, const char *why, tk_err_t *err)
{
    char partition[16], offset[24];
    snprintf(partition, sizeof(partition), "%d", (int)m->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)m->offset);
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, "dlq_error", -1, why, -1);
    rd_kafka_header_add(h, "dlq_topic", -1, topic, -1);
    rd_kafka_header_add(h, "dlq_partition", -1, partition, -1);
    rd_kafka_header_add(h, "dlq_offset", -1, offset, -1);
    /* The key as it came (it may not be text); an empty key when there was none. */
    char key[256];
    size_t klen = m->key_len < sizeof(key) - 1 ? m->key_len : sizeof(key) - 1;
    if (m->key != NULL)
        memcpy(key, m->key, klen);
    key[m->key != NULL ? klen : 0] = '\0';
    int rc = tk_kafka_produce_sync(producer, cfg->dead_topic, key, m->payload ? m->payload : "",
                                   m->payload ? m->len : 0, h, err);
    rd_kafka_headers_destroy(h);
    if (rc == 0)
        tk_log(TK_LOG_ERROR, "expiration", "record dead-lettered",
               "\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld,\"dead_topic\":\"%s\","
               "\"error\":\"%.100s\"",
               topic, (int)m->partition, (long long)m->offset, cfg->dead_topic, why);
    return rc;
}

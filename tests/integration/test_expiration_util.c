/*
 * test_expiration_util.c - see test_expiration_util.h. Every check here exits the process with a
 * message rather than returning errors: a broken harness must never look like a passing test.
 */
#include "test_expiration_util.h"
#include "tk_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ev_envelope.h"
#include "ev_expiration.h"
#include "ev_order.h"
#include "tk/cfg.h"
#include "tk/kafka.h"
#include "tk/mem.h"

static void die(const char *what, const char *why)
{
    fprintf(stderr, "test_expiration_util: %s: %s\n", what, why);
    exit(1);
}

void xt_uuid(char out[TK_UUID_LEN + 1])
{
    tk_uuid_new(out);
}

/* CreateTopics answers before every broker serves the new topics' metadata: wait for it, so a
 * consumer subscribing next finds the topic at once (an unknown subscribed topic is looked up
 * again only at librdkafka's next periodic metadata refresh). */
static void wait_for_topics(const char *const *names, int partitions)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", tk_cfg()->kafka_brokers, errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        die("metadata client", errstr);
    int64_t deadline = tk_mono_ms() + 30000;
    for (size_t i = 0; names[i] != NULL; i++) {
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, names[i], NULL);
        for (;;) {
            const rd_kafka_metadata_t *md = NULL;
            bool ready = rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                         md->topic_cnt == 1 && md->topics[0].err == 0 &&
                         md->topics[0].partition_cnt == partitions;
            for (int p = 0; ready && p < partitions; p++)
                ready = md->topics[0].partitions[p].leader >= 0;
            if (md != NULL)
                rd_kafka_metadata_destroy(md);
            if (ready)
                break;
            if (tk_mono_ms() > deadline)
                die("create topics", "the new topics did not appear in the metadata");
            usleep(100 * 1000);
        }
        rd_kafka_topic_destroy(t);
    }
    rd_kafka_destroy(rk);
}

void xt_create(xt_names_t *n, int partitions)
{
    char id[TK_UUID_LEN + 1];
    tk_uuid_new(id);
    snprintf(n->orders, sizeof(n->orders), "xt.%s.orders", id);
    snprintf(n->delay, sizeof(n->delay), "xt.%s.delay", id);
    snprintf(n->expirations, sizeof(n->expirations), "xt.%s.expirations", id);
    snprintf(n->dead, sizeof(n->dead), "xt.%s.deadletter", id);
    snprintf(n->intake_group, sizeof(n->intake_group), "xt.%s.intake", id);
    snprintf(n->delay_group, sizeof(n->delay_group), "xt.%s.delay", id);
    const char *names[] = {n->orders, n->delay, n->expirations, n->dead, NULL};
    tk_err_t err = {0};
    if (tk_kafka_topics_create_list(names, partitions, &err) != 0)
        die("create topics", err.message);
    wait_for_topics(names, partitions);
}

void xt_delete(const xt_names_t *n)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", tk_cfg()->kafka_brokers, errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return;
    }
    rd_kafka_DeleteTopic_t *del[4] = {
        rd_kafka_DeleteTopic_new(n->orders), rd_kafka_DeleteTopic_new(n->delay),
        rd_kafka_DeleteTopic_new(n->expirations), rd_kafka_DeleteTopic_new(n->dead)};
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, del, 4, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_DeleteTopic_destroy_array(del, 4);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

void xt_group_start_at_end(const char *group, const char *topic)
{
    tk_err_t err = {0};
    rd_kafka_t *rk = tk_kafka_consumer_new(group, &err);
    if (rk == NULL)
        die("group", err.message);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, t, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].partition_cnt == 0)
        die("group", "no metadata for the topic");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = tk_test_end_offset(rk, topic, p);
    }
    if (rd_kafka_commit(rk, l, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("group", "commit refused");
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

tk_expiration_opts_t xt_opts(const xt_names_t *n)
{
    return (tk_expiration_opts_t){.orders_topic = n->orders,
                                  .delay_topic = n->delay,
                                  .expirations_topic = n->expirations,
                                  .dead_topic = n->dead,
                                  .intake_group = n->intake_group,
                                  .delay_group = n->delay_group};
}

void xt_producer_free(rd_kafka_t *rk)
{
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("flush", "records were not acked within 60 s");
    rd_kafka_destroy(rk);
}

static void produce(rd_kafka_t *rk, const char *topic, const char *key, const char *value)
{
    tk_err_t err = {0};
    if (tk_kafka_produce(rk, topic, key, value, strlen(value), NULL, NULL, &err) != 0)
        die("produce", err.message);
    rd_kafka_poll(rk, 0);
}

void xt_publish_order_created(rd_kafka_t *rk, const char *topic, const char *id, int64_t due_ms,
                              const char *correlation)
{
    ev_order_created_t o = {.version = 0, .status = EV_ORDER_CREATED, .ticket.price_cents = 2000};
    snprintf(o.id, sizeof(o.id), "%s", id);
    tk_uuid_new(o.user_id);
    tk_uuid_new(o.ticket.id);
    tk_time_format(due_ms, o.expires_at);
    ev_envelope_t env;
    tk_err_t err = {0};
    char *payload = NULL;
    if (ev_envelope_init(&env, "order:created", id, 0, correlation, ev_order_created_to_json(&o),
                         &err) != 0 ||
        ev_envelope_encode(&env, &payload, NULL, &err) != 0)
        die("order:created", err.message);
    produce(rk, topic, id, payload);
    free(payload);
    ev_envelope_release(&env);
}

void xt_publish_orders(const char *topic, int n, char (*ids)[TK_UUID_LEN + 1], int64_t *due,
                       int64_t start_ms, int64_t spread_ms)
{
    rd_kafka_t *p = tk_test_producer();
    for (int i = 0; i < n; i++) {
        xt_uuid(ids[i]);
        due[i] = start_ms + (int64_t)i * spread_ms / n;
        xt_publish_order_created(p, topic, ids[i], due[i], NULL);
    }
    xt_producer_free(p);
}

void xt_publish_raw(rd_kafka_t *rk, const char *topic, const char *key, const char *value)
{
    produce(rk, topic, key, value);
}

/* ------------------------------------------------------------------ collector */

struct xt_collector {
    rd_kafka_t *rk;
    xt_fired_t *recs;
    size_t n, cap;
    size_t *slots; /* open addressing: index + 1 of the first record of an order id, 0 = free */
    size_t nslots, distinct;
};

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static size_t *slot_of(const xt_collector_t *c, const char *id)
{
    for (size_t i = hash(id) & (c->nslots - 1);; i = (i + 1) & (c->nslots - 1))
        if (c->slots[i] == 0 || strcmp(c->recs[c->slots[i] - 1].order_id, id) == 0)
            return &c->slots[i];
}

static void rehash(xt_collector_t *c)
{
    free(c->slots);
    c->nslots = c->nslots ? c->nslots * 2 : 1024;
    c->slots = tk_mem_zalloc(sizeof(*c->slots) * c->nslots);
    for (size_t i = 0; i < c->n; i++) {
        size_t *s = slot_of(c, c->recs[i].order_id);
        if (*s == 0)
            *s = i + 1;
    }
}

xt_collector_t *xt_collector_new(const char *topic)
{
    xt_collector_t *c = tk_mem_zalloc(sizeof(*c));
    c->rk = tk_test_consumer_new(topic, false);
    rehash(c);
    return c;
}

void xt_collector_free(xt_collector_t *c)
{
    if (c == NULL)
        return;
    tk_test_consumer_free(c->rk);
    free(c->recs);
    free(c->slots);
    free(c);
}

/* Decode one record into @p f, checking everything a consumer of the contract relies on. */
static void decode(const rd_kafka_message_t *m, xt_fired_t *f)
{
    ev_envelope_t env;
    ev_expiration_complete_t data;
    rd_kafka_headers_t *hdrs = NULL;
    const void *type = NULL;
    size_t type_len = 0;

    memset(f, 0, sizeof(*f));
    f->seen_ms = tk_now_ms();
    if (ev_envelope_decode(m->payload, m->len, &env, NULL) != 0)
        return;
    snprintf(f->order_id, sizeof(f->order_id), "%s", env.subject);
    snprintf(f->correlation, sizeof(f->correlation), "%s", env.correlationid);
    f->aggregateversion = env.aggregateversion;
    tk_time_parse(env.time, &f->time_ms);
    bool header_ok = rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                     rd_kafka_header_get_last(hdrs, TK_KAFKA_H_TYPE, &type, &type_len) ==
                         RD_KAFKA_RESP_ERR_NO_ERROR &&
                     type_len == strlen("expiration:complete") &&
                     memcmp(type, "expiration:complete", type_len) == 0;
    bool key_ok = m->key_len == TK_UUID_LEN && memcmp(m->key, env.subject, TK_UUID_LEN) == 0;
    f->valid = strcmp(env.type, "expiration:complete") == 0 &&
               ev_expiration_complete_from_json(env.data, &data, NULL) == 0 &&
               strcmp(data.order_id, env.subject) == 0 && header_ok && key_ok;
    ev_envelope_release(&env);
}

size_t xt_collect(xt_collector_t *c, size_t stop_when, int timeout_ms)
{
    int64_t deadline = tk_mono_ms() + timeout_ms;
    while (tk_mono_ms() < deadline && (stop_when == 0 || c->distinct < stop_when)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 50);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            c->recs = tk_mem_grow(c->recs, &c->cap, c->n + 1, sizeof(*c->recs));
            decode(m, &c->recs[c->n]);
            c->n++;
            size_t *s = slot_of(c, c->recs[c->n - 1].order_id);
            if (*s == 0) {
                *s = c->n;
                c->distinct++;
                if (c->distinct * 2 > c->nslots)
                    rehash(c);
            }
        }
        rd_kafka_message_destroy(m);
    }
    return c->n;
}

const xt_fired_t *xt_collected(const xt_collector_t *c, size_t *count)
{
    *count = c->n;
    return c->recs;
}

size_t xt_distinct(const xt_collector_t *c)
{
    return c->distinct;
}

const xt_fired_t *xt_find(const xt_collector_t *c, const char *order_id)
{
    size_t *s = slot_of(c, order_id);
    return *s ? &c->recs[*s - 1] : NULL;
}

/* ------------------------------------------------------------------ scheduler runners */

struct xt_thread {
    tk_expiration_opts_t opts;
    volatile int stop;
    int rc;
    pthread_t tid;
};

static void *thread_main(void *arg)
{
    xt_thread_t *t = arg;
    tk_err_t err = {0};
    t->rc = tk_expiration_run_opts(&t->opts, &t->stop, &err);
    return NULL;
}

xt_thread_t *xt_thread_start(const tk_expiration_opts_t *opts)
{
    xt_thread_t *t = tk_mem_zalloc(sizeof(*t));
    t->opts = *opts;
    if (pthread_create(&t->tid, NULL, thread_main, t) != 0)
        die("scheduler thread", "pthread_create");
    return t;
}

int xt_thread_stop(xt_thread_t *t)
{
    t->stop = 1;
    pthread_join(t->tid, NULL);
    int rc = t->rc;
    free(t);
    return rc;
}

pid_t xt_child_start(const xt_names_t *n)
{
    pid_t pid = fork();
    if (pid < 0)
        die("fork", "failed");
    if (pid == 0) {
        /* Die with the test: a failed assertion must not leave a scheduler running. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char *argv[] = {"xt-child",
                        "--xt-scheduler",
                        (char *)n->orders,
                        (char *)n->delay,
                        (char *)n->expirations,
                        (char *)n->intake_group,
                        (char *)n->delay_group,
                        NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    return pid;
}

int xt_child_stop(pid_t pid)
{
    int status = 0;
    if (kill(pid, SIGTERM) != 0 || waitpid(pid, &status, 0) != pid)
        die("xt_child_stop", "no such child");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void xt_run_start(xt_run_t *r, int partitions, bool thread)
{
    xt_create(&r->names, partitions);
    r->opts = xt_opts(&r->names);
    r->sched = thread ? xt_thread_start(&r->opts) : NULL;
    r->col = xt_collector_new(r->names.expirations);
}

int xt_run_stop(xt_run_t *r)
{
    xt_collector_free(r->col);
    int rc = r->sched != NULL ? xt_thread_stop(r->sched) : 0;
    xt_delete(&r->names);
    return rc;
}

static volatile int child_stop;

static void on_term(int sig)
{
    (void)sig;
    child_stop = 1;
}

static void crash_before_commit(const char *stage, void *ud)
{
    if (strcmp(stage, (const char *)ud) == 0)
        raise(SIGKILL);
}

void xt_child_main(int argc, char **argv)
{
    if (argc != 7 || strcmp(argv[1], "--xt-scheduler") != 0)
        return;
    tk_err_t err = {0};
    if (tk_cfg_load(TK_CFG_NEED_KAFKA, &err) != 0)
        die("child configuration", err.message);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    tk_expiration_opts_t opts = {.orders_topic = argv[2],
                                 .delay_topic = argv[3],
                                 .expirations_topic = argv[4],
                                 .intake_group = argv[5],
                                 .delay_group = argv[6]};
    /* XT_CRASH_BEFORE_COMMIT=intake|delay: kill -9 this child between that stage's acked
     * produce and its commit (the takeover window of DESIGN.md section 7). */
    static char crash_stage[16];
    const char *crash = getenv("XT_CRASH_BEFORE_COMMIT");
    if (crash != NULL && *crash != '\0') {
        snprintf(crash_stage, sizeof(crash_stage), "%s", crash);
        opts.before_commit = crash_before_commit;
        opts.before_commit_ud = crash_stage;
    }
    int rc = tk_expiration_run_opts(&opts, &child_stop, &err);
    exit(rc == 0 ? 0 : 1);
}

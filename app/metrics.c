/*
 * metrics.c - the backbone's gauges on GET /metrics of `ticketing serve` and `ticketing run`
 * (DESIGN.md section 6):
 *
 *   tk_dead_letters{context="orders"}                                  rows of dead_letters
 *   tk_relay_dead_letters{context="orders"}   of which outbox rows Kafka refused for good (the
 *                                             relays serve no HTTP: their alert is here)
 *   tk_expiration_dead_letters   records in the topic expiration.deadletter (the scheduler's
 *                                dead letters: high - low watermark over its partitions)
 *   tk_consumer_lag{group="orders.order_view",topic="orders",partition="3"}
 *       high watermark (from the broker) - next offset stored in projection_offsets
 *       (the log's low watermark for a partition the projector never stored)
 *
 * The /metrics handler runs on the event loop and must not block, so a thread samples every
 * SAMPLE_MS with its own connections and keeps the text; the handler copies it. A database or
 * broker that does not answer leaves its lines out and adds tk_metrics_source_up{source=...} 0.
 */
#include "app.h"
#include "tk/backoff.h"
#include "ev_catalog.h"
#include "tk/kafka.h"
#include "tk/mem.h"
#include "tk/pg.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SAMPLE_MS 5000
#define TIMEOUT_MS 2000

struct tk_app_metrics {
    pthread_t thread;
    pthread_mutex_t mu;
    char *text; /* owned, under mu */
    const tk_context_t *only;
    rd_kafka_t *rk;
};

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf_t;

static void add(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->s != NULL && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *grown = tk_mem_alloc(cap);
        if (b->s != NULL)
            memcpy(grown, b->s, b->len + 1);
        else
            grown[0] = '\0';
        free(b->s);
        b->s = grown;
        b->cap = cap;
    }
}

static int64_t stored(PGresult *offsets, const char *projection, const char *topic, int partition)
{
    for (int r = 0; offsets != NULL && r < PQntuples(offsets); r++)
        if (strcmp(PQgetvalue(offsets, r, 0), projection) == 0 &&
            strcmp(PQgetvalue(offsets, r, 1), topic) == 0 &&
            atoi(PQgetvalue(offsets, r, 2)) == partition)
            return strtoll(PQgetvalue(offsets, r, 3), NULL, 10);
    return -1;
}

static int partitions_of(const struct rd_kafka_metadata *md, const char *topic)
{
    for (int i = 0; md != NULL && i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0)
            return md->topics[i].partition_cnt;
    return 0;
}

static void sample_context(struct tk_app_metrics *m, const tk_context_t *c,
                           const struct rd_kafka_metadata *md, sbuf_t *dl, sbuf_t *rdl, sbuf_t *lag)
{
    tk_err_t err = {0};
    PGconn *db = tk_pg_connect(c->database, &err);
    PGresult *count = db ? tk_pg_exec(db,
                                      "SELECT count(*), count(*) FILTER (WHERE projection = "
                                      "'relay') FROM dead_letters",
                                      0, NULL, &err)
                         : NULL;
    PGresult *offsets = db ? tk_pg_exec(db,
                                        "SELECT projection, topic, partition, next_offset "
                                        "FROM projection_offsets",
                                        0, NULL, &err)
                           : NULL;
    if (count == NULL || offsets == NULL) {
        add(dl, "tk_metrics_source_up{source=\"db_%s\"} 0\n", c->name);
        goto out;
    }
    add(dl, "tk_dead_letters{context=\"%s\"} %s\n", c->name, PQgetvalue(count, 0, 0));
    if (c->has_outbox)
        add(rdl, "tk_relay_dead_letters{context=\"%s\"} %s\n", c->name, PQgetvalue(count, 0, 1));
    const tk_projector_spec_t *s;
    for (size_t j = 0; (s = tk_context_projector(c, j)) != NULL; j++) {
        for (size_t t = 0; s->topics[t] != NULL; t++) {
            int n = partitions_of(md, s->topics[t]);
            for (int part = 0; part < n; part++) {
                int64_t lo = 0, hi = 0;
                if (rd_kafka_query_watermark_offsets(m->rk, s->topics[t], part, &lo, &hi,
                                                     TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
                    continue;
                int64_t next = stored(offsets, s->name, s->topics[t], part);
                int64_t behind = hi - (next < 0 ? lo : next);
                add(lag, "tk_consumer_lag{group=\"%s.%s\",topic=\"%s\",partition=\"%d\"} %lld\n",
                    c->name, s->name, s->topics[t], part, (long long)(behind < 0 ? 0 : behind));
            }
        }
    }
out:
    PQclear(count);
    PQclear(offsets);
    PQfinish(db);
}

/* The scheduler keeps no database: its dead letters are the records of their topic. */
static void sample_expiration(struct tk_app_metrics *m, const struct rd_kafka_metadata *md,
                              sbuf_t *out)
{
    int n = partitions_of(md, EV_TOPIC_EXPIRATION_DEAD);
    long long depth = 0;
    for (int part = 0; part < n; part++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(m->rk, EV_TOPIC_EXPIRATION_DEAD, part, &lo, &hi,
                                             TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
            return; /* a partial sum would under-report: leave the line out */
        depth += hi > lo ? hi - lo : 0;
    }
    if (n > 0)
        add(out,
            "# HELP tk_expiration_dead_letters Records in the topic %s (the expiration "
            "scheduler's dead letters).\n"
            "# TYPE tk_expiration_dead_letters gauge\ntk_expiration_dead_letters %lld\n",
            EV_TOPIC_EXPIRATION_DEAD, depth);
}

static void sample(struct tk_app_metrics *m)
{
    sbuf_t dl = {0}, rdl = {0}, lag = {0}, exp = {0}, all = {0};
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(m->rk, 1, NULL, &md, TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        md = NULL;
        add(&lag, "tk_metrics_source_up{source=\"kafka\"} 0\n");
    }
    for (const tk_context_t *const *c = tk_app_contexts(); *c != NULL; c++) {
        if (m->only != NULL && m->only != *c)
            continue;
        if (tk_context_projector(*c, 0) != NULL || (*c)->has_outbox)
            sample_context(m, *c, md, &dl, &rdl, &lag);
    }
    if (md != NULL) {
        sample_expiration(m, md, &exp);
        rd_kafka_metadata_destroy(md);
    }
    add(&all,
        "# HELP tk_dead_letters Records parked in a context's dead_letters table.\n"
        "# TYPE tk_dead_letters gauge\n%s"
        "# HELP tk_relay_dead_letters Outbox rows Kafka refused for good, parked in a "
        "context's dead_letters table by its relay.\n"
        "# TYPE tk_relay_dead_letters gauge\n%s"
        "# HELP tk_consumer_lag Records of a partition its projector has not applied yet "
        "(broker high watermark - stored offset).\n"
        "# TYPE tk_consumer_lag gauge\n%s%s",
        dl.s ? dl.s : "", rdl.s ? rdl.s : "", lag.s ? lag.s : "", exp.s ? exp.s : "");
    free(dl.s);
    free(rdl.s);
    free(lag.s);
    free(exp.s);
    pthread_mutex_lock(&m->mu);
    free(m->text);
    m->text = all.s;
    pthread_mutex_unlock(&m->mu);
}

static void *main_loop(void *arg)
{
    struct tk_app_metrics *m = arg;
    while (!tk_app_stop) {
        sample(m);
        tk_nap(SAMPLE_MS, &tk_app_stop);
    }
    return NULL;
}

static char *text_of(void *ud)
{
    struct tk_app_metrics *m = ud;
    pthread_mutex_lock(&m->mu);
    char *copy = m->text ? tk_mem_strdup(m->text) : NULL;
    pthread_mutex_unlock(&m->mu);
    return copy;
}

tk_app_metrics_t *tk_app_metrics_start(tk_http_server_t *srv, const tk_context_t *only)
{
    tk_err_t err = {0};
    struct tk_app_metrics *m = tk_mem_zalloc(sizeof(*m));
    m->only = only;
    if ((m->rk = tk_kafka_producer_new(&err)) == NULL) {
        free(m);
        return NULL; /* no broker handle: /metrics keeps the HTTP gauges only */
    }
    pthread_mutex_init(&m->mu, NULL);
    tk_http_metrics(srv, text_of, m);
    pthread_create(&m->thread, NULL, main_loop, m);
    return m;
}

void tk_app_metrics_stop(tk_app_metrics_t *m)
{
    if (m == NULL)
        return;
    pthread_join(m->thread, NULL);
    rd_kafka_destroy(m->rk);
    pthread_mutex_destroy(&m->mu);
    free(m->text);
    free(m);
}

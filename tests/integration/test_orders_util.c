/*
 * test_orders_util.c - see test_orders_util.h: isolated in-process contexts for the tickets and
 * orders integration tests, and their small helpers.
 */
#include "test_orders_util.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ev_payment.h"
#include "tk/cfg.h"
#include "tk/kafka.h"
#include "tk/migrate.h"
#include "tk/pg.h"
#include "tk/relay.h"

#define MAX_CONTEXTS 4
#define MAX_PROJECTORS 8

static volatile int stop_flag;
static char run_id[13];
static tk_relay_t *relays[MAX_CONTEXTS];
static size_t nrelays;
static tk_projector_spec_t specs[MAX_PROJECTORS];
static tk_projector_t *projectors[MAX_PROJECTORS];
static volatile int projector_stop[MAX_PROJECTORS]; /* set by tko_stop_all and tko_projector_hold */
static pthread_t projector_threads[MAX_PROJECTORS];
static size_t nprojectors;
static pthread_t threads[MAX_CONTEXTS + MAX_PROJECTORS];
static size_t nthreads;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "test setup: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

void tko_private_database(const char *context)
{
    char dbname[64];
    snprintf(dbname, sizeof(dbname), "tk_%s_itest", context);
    tk_test_private_database(context, dbname);
}

const char *tko_projection_name(const char *name)
{
    static char bases[MAX_PROJECTORS][64], full[MAX_PROJECTORS][96];
    static size_t n;
    if (run_id[0] == '\0') {
        char u[TK_UUID_LEN + 1];
        tk_uuid_new(u);
        snprintf(run_id, sizeof(run_id), "%.8s%.4s", u, u + 9);
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(bases[i], name) == 0)
            return full[i];
    if (n == MAX_PROJECTORS)
        die("tko_projection_name", "too many names");
    snprintf(bases[n], sizeof(bases[n]), "%s", name);
    snprintf(full[n], sizeof(full[n]), "%s_%s", name, run_id);
    return full[n++];
}

/* Store, for projection @p name, the current end of every partition of @p topics. */
static void position_at_end(const char *context, const char *name, const char *const *topics)
{
    tk_err_t err = {0};
    rd_kafka_t *rk = tk_kafka_producer_new(&err);
    PGconn *db = tk_pg_connect(context, &err);
    if (rk == NULL || db == NULL)
        die("position_at_end", err.message);
    for (size_t t = 0; topics[t] != NULL; t++) {
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_topic_t *kt = rd_kafka_topic_new(rk, topics[t], NULL);
        if (rd_kafka_metadata(rk, 0, kt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            md->topic_cnt != 1 || md->topics[0].partition_cnt == 0)
            die("metadata", topics[t]);
        for (int p = 0; p < md->topics[0].partition_cnt; p++) {
            int64_t hi = tk_test_end_offset(rk, topics[t], p);
            char partition[16], next[24];
            snprintf(partition, sizeof(partition), "%d", p);
            snprintf(next, sizeof(next), "%lld", (long long)hi);
            const char *params[] = {name, topics[t], partition, next};
            if (tk_pg_run(db,
                          "INSERT INTO projection_offsets (projection, topic, partition, "
                          "next_offset) VALUES ($1, $2, $3, $4)",
                          4, params, NULL, &err) != 0)
                die("projection_offsets", err.message);
        }
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(kt);
    }
    PQfinish(db);
    rd_kafka_destroy(rk);
}

static void *run_relay(void *arg)
{
    tk_relay_run(arg, &stop_flag);
    return NULL;
}

static void *run_projector(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    tk_projector_run(projectors[i], &projector_stop[i]);
    return NULL;
}

static size_t projector_index(const char *context, const char *name)
{
    const char *full = tko_projection_name(name);
    for (size_t i = 0; i < nprojectors; i++)
        if (strcmp(specs[i].context, context) == 0 && strcmp(specs[i].name, full) == 0)
            return i;
    die("tko_projector", name);
    return 0;
}

void tko_projector_hold(const char *context, const char *name)
{
    size_t i = projector_index(context, name);
    projector_stop[i] = 1;
    pthread_join(projector_threads[i], NULL);
    tk_projector_free(projectors[i]);
    projectors[i] = NULL;
}

void tko_projector_release(const char *context, const char *name)
{
    size_t i = projector_index(context, name);
    tk_err_t err = {0};
    if ((projectors[i] = tk_projector_new(&specs[i], &err)) == NULL)
        die("tk_projector_new", err.message);
    projector_stop[i] = 0;
    pthread_create(&projector_threads[i], NULL, run_projector, (void *)(uintptr_t)i);
}

void tko_context_start(const tk_context_t *ctx)
{
    tk_err_t err = {0};
    if (nrelays == MAX_CONTEXTS || (relays[nrelays] = tk_relay_new(ctx->database, &err)) == NULL)
        die("tk_relay_new", err.message);
    pthread_create(&threads[nthreads++], NULL, run_relay, relays[nrelays++]);
    tko_projectors_start(ctx);
}

void tko_projectors_start(const tk_context_t *ctx)
{
    tk_err_t err = {0};
    const tk_projector_spec_t *spec;
    for (size_t i = 0; (spec = tk_context_projector(ctx, i)) != NULL; i++) {
        if (nprojectors == MAX_PROJECTORS)
            die("tko_context_start", "too many projectors");
        tk_projector_spec_t *s = &specs[nprojectors];
        *s = *spec;
        s->name = tko_projection_name(spec->name);
        position_at_end(ctx->database, s->name, s->topics);
        if ((projectors[nprojectors] = tk_projector_new(s, &err)) == NULL)
            die("tk_projector_new", err.message);
        projector_stop[nprojectors] = 0;
        pthread_create(&projector_threads[nprojectors], NULL, run_projector,
                       (void *)(uintptr_t)nprojectors);
        nprojectors++;
    }
}

void tko_stop_all(void)
{
    stop_flag = 1;
    for (size_t i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    for (size_t i = 0; i < nprojectors; i++) {
        if (projectors[i] == NULL)
            continue; /* held */
        projector_stop[i] = 1;
        pthread_join(projector_threads[i], NULL);
        tk_projector_free(projectors[i]);
    }
    for (size_t i = 0; i < nrelays; i++)
        tk_relay_free(relays[i]);
    nthreads = nprojectors = nrelays = 0;
}

tko_user_t tko_user_new(void)
{
    tko_user_t u;
    tk_uuid_new(u.id);
    u.cookie = tk_test_fake_session(u.id, "test@test.com");
    return u;
}

const char *tko_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

json_int_t tko_num(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

int tko_serve(const tk_context_t *const *contexts)
{
    tk_test_require_stack();
    tk_err_t err = {0};
    if (tk_kafka_topics_create(&err) != 0) {
        fprintf(stderr, "setup: %s\n", err.message);
        return -1;
    }
    for (size_t i = 0; contexts[i] != NULL; i++)
        tko_private_database(contexts[i]->name);
    for (size_t i = 0; contexts[i] != NULL; i++)
        tko_context_start(contexts[i]);
    tk_test_server_start_contexts(contexts);
    return 0;
}

int tko_teardown(void **state)
{
    (void)state;
    tk_test_server_stop();
    tko_stop_all();
    return 0;
}

struct order_try {
    const tko_user_t *u;
    const char *ticket_id;
    tk_test_resp_t *resp;
};

static bool order_known(void *arg)
{
    struct order_try *t = arg;
    char body[128];
    snprintf(body, sizeof(body), "{\"ticketId\":\"%s\"}", t->ticket_id);
    tk_test_resp_release(t->resp);
    tk_test_http("POST", "/api/orders", body, t->u->cookie, t->resp);
    return t->resp->status != 404;
}

void tko_order_when_known(const tko_user_t *u, const char *ticket_id, int timeout_ms,
                          tk_test_resp_t *out)
{
    *out = (tk_test_resp_t){0};
    struct order_try t = {u, ticket_id, out};
    if (!tk_test_eventually(order_known, &t, timeout_ms))
        die("tko_order_when_known", "orders never learned the ticket");
}

bool tko_ticket_listed(const char *id)
{
    tk_test_resp_t r;
    tk_test_http("GET", "/api/tickets", NULL, NULL, &r);
    if (r.status != 200 || !json_is_array(r.json))
        die("GET /api/tickets", "not a 200 with a bare array");
    bool found = false;
    size_t i;
    json_t *t;
    json_array_foreach(r.json, i, t) found |= strcmp(tko_str(t, "id"), id) == 0;
    tk_test_resp_release(&r);
    return found;
}

bool tko_ticket_is_listed(void *id)
{
    return tko_ticket_listed(id);
}

void tko_publish_paid(const char *order_id)
{
    ev_payment_created_t p = {0};
    tk_uuid_new(p.id);
    snprintf(p.order_id, sizeof(p.order_id), "%.*s", TK_UUID_LEN, order_id);
    snprintf(p.stripe_id, sizeof(p.stripe_id), "pi_test_%.8s", p.id);
    tk_test_publish_event("payment:created", p.id, 0, ev_payment_created_to_json(&p), NULL);
}

struct order_goal {
    const tko_user_t *u;
    const char *id, *status;
    json_int_t ticket_version;
};

static bool order_shows(void *arg)
{
    struct order_goal *g = arg;
    char path[128];
    snprintf(path, sizeof(path), "/api/orders/%s", g->id);
    tk_test_resp_t r;
    tk_test_http("GET", path, NULL, g->u != NULL ? g->u->cookie : NULL, &r);
    const char *status = tko_str(r.json, "status");
    bool ok = r.status == 200 && status != NULL && strcmp(status, g->status) == 0 &&
              (g->ticket_version < 0 ||
               tko_num(json_object_get(r.json, "ticket"), "version") == g->ticket_version);
    tk_test_resp_release(&r);
    return ok;
}

bool tko_wait_order(const tko_user_t *u, const char *id, const char *status,
                    json_int_t ticket_version, int timeout_ms)
{
    struct order_goal g = {u, id, status, ticket_version};
    return tk_test_eventually(order_shows, &g, timeout_ms);
}

struct ticket_goal {
    const char *id;
    json_int_t version;
    const char *holder;
};

static bool ticket_shows(void *arg)
{
    struct ticket_goal *g = arg;
    char path[128];
    snprintf(path, sizeof(path), "/api/tickets/%s", g->id);
    tk_test_resp_t r;
    tk_test_http("GET", path, NULL, NULL, &r);
    const char *holder = tko_str(r.json, "orderId");
    bool ok = r.status == 200 && (g->version < 0 || tko_num(r.json, "version") == g->version) &&
              (g->holder == NULL || strcmp(holder ? holder : "", g->holder) == 0);
    tk_test_resp_release(&r);
    return ok;
}

bool tko_wait_ticket(const char *id, json_int_t version, const char *holder, int timeout_ms)
{
    struct ticket_goal g = {id, version, holder};
    return tk_test_eventually(ticket_shows, &g, timeout_ms);
}

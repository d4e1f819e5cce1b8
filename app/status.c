/*
 * status.c - `ticketing status [--json]` (DESIGN.md sections 2 and 6): how far behind the system
 * is, read from the outside (nothing here joins a group or takes a lock):
 *
 *   projectors  per projector of every context in app/contexts.c, plus every other projection
 *               that stored offsets in a context database (a renamed or retired one still shows):
 *                 lag          = sum over the partitions of its topics of
 *                                (high watermark - next_offset in projection_offsets), a
 *                                partition without a row counting from the log's start
 *                 dead letters = rows of dead_letters for it
 *                 members      = members of its consumer group "<context>.<name>" (0: stopped)
 *   databases   per context database: outbox depth and the age of its oldest row (the relay's
 *               lag), dead letters in all
 *   expiration  pending expirations and the lateness of the most overdue (tk_expiration_status)
 *
 * A database or the broker that is down is shown as such (with the reason) and everything that
 * does not depend on it is still shown. Exit status: 0 when every part answered, 1 otherwise.
 */
#include "app.h"
#include "expiration.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/mem.h"
#include "tk/pg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 5000
#define MAX_TOPICS 8

typedef struct proj {
    const char *context;
    char name[128];
    bool in_table;
    bool replayable;
    const char *topics[MAX_TOPICS + 1]; /* borrowed from the spec or the offsets result */
    int ntopics;
    bool lag_known;
    int64_t lag;
    int64_t dead_letters;
    int members; /* -1 unknown */
} proj_t;

typedef struct db {
    const char *context;
    bool up;
    char error[256];
    int64_t outbox, oldest_ms, dead_letters;
    PGresult *offsets; /* projection, topic, partition, next_offset; owned */
    PGresult *dead;    /* projection, count; owned */
} db_t;

typedef struct wm {
    char *topic; /* owned */
    int32_t partition;
    int64_t low, high;
} wm_t;

typedef struct status {
    rd_kafka_t *rk;
    bool broker_up;
    char broker_error[256];
    const struct rd_kafka_metadata *md; /* every topic, when the broker answered */
    wm_t *wms;
    size_t nwms, capwms;
    db_t dbs[8];
    int ndbs;
    proj_t *projs;
    size_t nprojs, capprojs;
    bool exp_up;
    char exp_error[256];
    tk_expiration_status_t exp;
} status_t;

/* ---- the broker ------------------------------------------------------------------------------ */

static int partitions_of(const status_t *s, const char *topic)
{
    for (int i = 0; s->md != NULL && i < s->md->topic_cnt; i++)
        if (strcmp(s->md->topics[i].topic, topic) == 0)
            return s->md->topics[i].err ? -1 : s->md->topics[i].partition_cnt;
    return -1;
}

/* Watermarks of topic/partition, cached. NULL when the broker does not answer. */
static const wm_t *watermarks(status_t *s, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < s->nwms; i++)
        if (s->wms[i].partition == partition && strcmp(s->wms[i].topic, topic) == 0)
            return &s->wms[i];
    wm_t w = {.partition = partition};
    if (rd_kafka_query_watermark_offsets(s->rk, topic, partition, &w.low, &w.high, TIMEOUT_MS) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    s->wms = tk_mem_grow(s->wms, &s->capwms, s->nwms + 1, sizeof(*s->wms));
    w.topic = tk_mem_strdup(topic);
    s->wms[s->nwms] = w;
    return &s->wms[s->nwms++];
}

static void broker_open(status_t *s)
{
    char group[64], id[TK_UUID_LEN + 1];
    tk_uuid_new(id);
    snprintf(group, sizeof(group), "status.%s", id);
    tk_err_t err = {0};
    if ((s->rk = tk_kafka_consumer_new(group, &err)) == NULL) {
        snprintf(s->broker_error, sizeof(s->broker_error), "%s", err.message);
        return;
    }
    rd_kafka_resp_err_t e = rd_kafka_metadata(s->rk, 1, NULL, &s->md, TIMEOUT_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        s->md = NULL;
        snprintf(s->broker_error, sizeof(s->broker_error), "%s: %s", rd_kafka_err2str(e),
                 tk_cfg()->kafka_brokers);
        return;
    }
    s->broker_up = true;
}

static int group_members(status_t *s, const char *context, const char *name)
{
    if (!s->broker_up)
        return -1;
    char group[192];
    tk_projector_group_name(context, name, group, sizeof(group));
    const struct rd_kafka_group_list *gl = NULL;
    if (rd_kafka_list_groups(s->rk, group, &gl, TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    int n = gl->group_cnt == 1 ? gl->groups[0].member_cnt : 0;
    rd_kafka_group_list_destroy(gl);
    return n;
}

/* ---- the databases --------------------------------------------------------------------------- */

static void db_read(db_t *d)
{
    tk_err_t err = {0};
    PGconn *c = tk_pg_connect(d->context, &err);
    PGresult *res = NULL;
    if (c == NULL)
        goto fail;
    res = tk_pg_exec(c,
                     "SELECT (SELECT count(*) FROM outbox), (SELECT coalesce(floor(extract(epoch "
                     "FROM now() - min(created_at)) * 1000), 0)::bigint FROM outbox), "
                     "(SELECT count(*) FROM dead_letters)",
                     0, NULL, &err);
    if (res == NULL)
        goto fail;
    d->outbox = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    d->oldest_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    d->dead_letters = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);
    if ((d->offsets = tk_pg_exec(c,
                                 "SELECT projection, topic, partition, next_offset FROM "
                                 "projection_offsets ORDER BY projection, topic, partition",
                                 0, NULL, &err)) == NULL ||
        (d->dead =
             tk_pg_exec(c, "SELECT projection, count(*) FROM dead_letters GROUP BY projection", 0,
                        NULL, &err)) == NULL)
        goto fail;
    d->up = true;
    PQfinish(c);
    return;
fail:
    snprintf(d->error, sizeof(d->error), "%s", err.message[0] ? err.message : "unreachable");
    PQfinish(c);
}

/* ---- projectors ------------------------------------------------------------------------------ */

static proj_t *proj_add(status_t *s, const char *context, const char *name)
{
    for (size_t i = 0; i < s->nprojs; i++)
        if (strcmp(s->projs[i].context, context) == 0 && strcmp(s->projs[i].name, name) == 0)
            return &s->projs[i];
    s->projs = tk_mem_grow(s->projs, &s->capprojs, s->nprojs + 1, sizeof(*s->projs));
    proj_t *p = &s->projs[s->nprojs++];
    memset(p, 0, sizeof(*p));
    p->context = context;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->members = -1;
    return p;
}

static void proj_topic(proj_t *p, const char *topic)
{
    for (int i = 0; i < p->ntopics; i++)
        if (strcmp(p->topics[i], topic) == 0)
            return;
    if (p->ntopics < MAX_TOPICS)
        p->topics[p->ntopics++] = topic;
}

/* The stored next offset of p on topic/partition in d, or -1 when there is no row. */
static int64_t stored_offset(const db_t *d, const proj_t *p, const char *topic, int partition)
{
    for (int r = 0; d->offsets != NULL && r < PQntuples(d->offsets); r++)
        if (strcmp(PQgetvalue(d->offsets, r, 0), p->name) == 0 &&
            strcmp(PQgetvalue(d->offsets, r, 1), topic) == 0 &&
            atoi(PQgetvalue(d->offsets, r, 2)) == partition)
            return strtoll(PQgetvalue(d->offsets, r, 3), NULL, 10);
    return -1;
}

static void proj_measure(status_t *s, const db_t *d, proj_t *p)
{
    for (int r = 0; d->dead != NULL && r < PQntuples(d->dead); r++)
        if (strcmp(PQgetvalue(d->dead, r, 0), p->name) == 0)
            p->dead_letters = strtoll(PQgetvalue(d->dead, r, 1), NULL, 10);
    p->members = group_members(s, p->context, p->name);
    if (!d->up || !s->broker_up)
        return;
    p->lag_known = true;
    for (int t = 0; t < p->ntopics; t++) {
        int n = partitions_of(s, p->topics[t]);
        if (n < 0) {
            p->lag_known = false; /* a topic that no longer exists */
            continue;
        }
        for (int part = 0; part < n; part++) {
            const wm_t *w = watermarks(s, p->topics[t], part);
            if (w == NULL) {
                p->lag_known = false;
                continue;
            }
            int64_t next = stored_offset(d, p, p->topics[t], part);
            if (next < w->low)
                next = w->low;
            if (w->high > next)
                p->lag += w->high - next;
        }
    }
}

static void collect(status_t *s)
{
    broker_open(s);
    const tk_context_t *const *ctx = tk_app_contexts();
    for (size_t i = 0; ctx[i] != NULL && s->ndbs < 8; i++) {
        if (!ctx[i]->has_outbox && tk_context_projector(ctx[i], 0) == NULL)
            continue; /* no database (the scheduler) */
        db_t *d = &s->dbs[s->ndbs++];
        d->context = ctx[i]->name;
        db_read(d);
        const tk_projector_spec_t *spec;
        for (size_t j = 0; (spec = tk_context_projector(ctx[i], j)) != NULL; j++) {
            proj_t *p = proj_add(s, d->context, spec->name);
            p->in_table = true;
            p->replayable = spec->tables != NULL;
            for (size_t t = 0; spec->topics[t] != NULL; t++)
                proj_topic(p, spec->topics[t]);
        }
        for (int r = 0; d->offsets != NULL && r < PQntuples(d->offsets); r++)
            proj_topic(proj_add(s, d->context, PQgetvalue(d->offsets, r, 0)),
                       PQgetvalue(d->offsets, r, 1));
    }
    for (size_t i = 0; i < s->nprojs; i++)
        for (int k = 0; k < s->ndbs; k++)
            if (strcmp(s->dbs[k].context, s->projs[i].context) == 0)
                proj_measure(s, &s->dbs[k], &s->projs[i]);
    if (!s->broker_up) {
        snprintf(s->exp_error, sizeof(s->exp_error), "broker unavailable");
        return;
    }
    tk_err_t err = {0};
    if (tk_expiration_status(&s->exp, &err) == 0)
        s->exp_up = true;
    else
        snprintf(s->exp_error, sizeof(s->exp_error), "%s", err.message);
}

static void release(status_t *s)
{
    for (int i = 0; i < s->ndbs; i++) {
        PQclear(s->dbs[i].offsets);
        PQclear(s->dbs[i].dead);
    }
    for (size_t i = 0; i < s->nwms; i++)
        free(s->wms[i].topic);
    free(s->wms);
    free(s->projs);
    if (s->md != NULL)
        rd_kafka_metadata_destroy(s->md);
    if (s->rk != NULL) {
        rd_kafka_consumer_close(s->rk);
        rd_kafka_destroy(s->rk);
    }
}

static bool all_up(const status_t *s)
{
    bool up = s->broker_up && s->exp_up;
    for (int i = 0; i < s->ndbs; i++)
        up = up && s->dbs[i].up;
    return up;
}

/* ---- output ---------------------------------------------------------------------------------- */

static void print_json(const status_t *s)
{
    json_t *root = json_object(), *projs = json_array(), *dbs = json_array();
    json_t *broker = json_object();
    json_object_set_new(broker, "up", json_boolean(s->broker_up));
    if (!s->broker_up)
        json_object_set_new(broker, "error", json_string(s->broker_error));
    json_object_set_new(root, "broker", broker);
    for (size_t i = 0; i < s->nprojs; i++) {
        const proj_t *p = &s->projs[i];
        json_t *o = json_object(), *topics = json_array();
        json_object_set_new(o, "context", json_string(p->context));
        json_object_set_new(o, "projection", json_string(p->name));
        for (int t = 0; t < p->ntopics; t++)
            json_array_append_new(topics, json_string(p->topics[t]));
        json_object_set_new(o, "topics", topics);
        json_object_set_new(o, "lag", p->lag_known ? json_integer(p->lag) : json_null());
        json_object_set_new(o, "deadLetters", json_integer(p->dead_letters));
        json_object_set_new(o, "members", p->members >= 0 ? json_integer(p->members) : json_null());
        json_object_set_new(o, "inTable", json_boolean(p->in_table));
        json_object_set_new(o, "replayable", json_boolean(p->replayable));
        json_array_append_new(projs, o);
    }
    json_object_set_new(root, "projectors", projs);
    for (int i = 0; i < s->ndbs; i++) {
        const db_t *d = &s->dbs[i];
        json_t *o = json_object();
        json_object_set_new(o, "context", json_string(d->context));
        json_object_set_new(o, "up", json_boolean(d->up));
        if (d->up) {
            json_object_set_new(o, "outboxDepth", json_integer(d->outbox));
            json_object_set_new(o, "outboxOldestMs", json_integer(d->oldest_ms));
            json_object_set_new(o, "deadLetters", json_integer(d->dead_letters));
        } else {
            json_object_set_new(o, "error", json_string(d->error));
        }
        json_array_append_new(dbs, o);
    }
    json_object_set_new(root, "databases", dbs);
    json_t *exp = json_object();
    json_object_set_new(exp, "up", json_boolean(s->exp_up));
    if (s->exp_up) {
        json_object_set_new(exp, "pending", json_integer(s->exp.pending));
        json_object_set_new(exp, "intakeLag", json_integer(s->exp.intake_lag));
        json_object_set_new(exp, "heads", json_integer(s->exp.heads));
        json_object_set_new(exp, "latenessMs", json_integer(s->exp.lateness_ms));
    } else {
        json_object_set_new(exp, "error", json_string(s->exp_error));
    }
    json_object_set_new(root, "expiration", exp);
    char *text = json_dumps(root, JSON_COMPACT);
    if (text != NULL)
        printf("%s\n", text);
    free(text);
    json_decref(root);
}

static void print_table(const status_t *s)
{
    printf("broker      %s%s%s\n\n", s->broker_up ? "up" : "DOWN", s->broker_up ? "" : ": ",
           s->broker_up ? "" : s->broker_error);
    printf("%-40s %10s %8s %8s\n", "PROJECTOR", "LAG", "DEAD", "MEMBERS");
    for (size_t i = 0; i < s->nprojs; i++) {
        const proj_t *p = &s->projs[i];
        char name[192], lag[24], members[16];
        snprintf(name, sizeof(name), "%s.%s%s", p->context, p->name, p->in_table ? "" : " *");
        snprintf(lag, sizeof(lag), p->lag_known ? "%lld" : "-", (long long)p->lag);
        snprintf(members, sizeof(members), p->members >= 0 ? "%d" : "-", p->members);
        printf("%-40s %10s %8lld %8s\n", name, lag, (long long)p->dead_letters, members);
    }
    printf("(* not in this binary's table: found in projection_offsets)\n\n");
    printf("%-12s %10s %14s %8s\n", "DATABASE", "OUTBOX", "OLDEST", "DEAD");
    for (int i = 0; i < s->ndbs; i++) {
        const db_t *d = &s->dbs[i];
        if (!d->up) {
            printf("%-12s DOWN: %s\n", d->context, d->error);
            continue;
        }
        char oldest[24] = "-";
        if (d->outbox > 0)
            snprintf(oldest, sizeof(oldest), "%.1f s", (double)d->oldest_ms / 1000.0);
        printf("%-12s %10lld %14s %8lld\n", d->context, (long long)d->outbox, oldest,
               (long long)d->dead_letters);
    }
    printf("\n");
    if (!s->exp_up)
        printf("expiration  DOWN: %s\n", s->exp_error);
    else if (s->exp.heads == 0)
        printf("expiration  %lld pending, intake lag %lld\n", (long long)s->exp.pending,
               (long long)s->exp.intake_lag);
    else
        printf("expiration  %lld pending, intake lag %lld, %s %.1f s\n", (long long)s->exp.pending,
               (long long)s->exp.intake_lag,
               s->exp.lateness_ms > 0 ? "most overdue by" : "next due in",
               (double)(s->exp.lateness_ms > 0 ? s->exp.lateness_ms : -s->exp.lateness_ms) /
                   1000.0);
}

int tk_app_status(int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            fprintf(stderr, "usage: ticketing status [--json]\n");
            return 2;
        }
    }
    status_t s;
    memset(&s, 0, sizeof(s));
    collect(&s);
    if (json)
        print_json(&s);
    else
        print_table(&s);
    int rc = all_up(&s) ? 0 : 1;
    release(&s);
    return rc;
}

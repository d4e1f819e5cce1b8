/*
 * test_replay_util.c - helpers of the replay tests; see test_replay_util.h. Every helper fails
 * the whole test process on a setup error: an integration test never skips.
 */
#include "test_replay_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bb_test.h"
#include "tk_test.h"
#include "ev_envelope.h"
#include "ev_ticket.h"
#include "tickets_read.h"
#include "tk/cfg.h"
#include "tk/kafka.h"
#include "tk/mem.h"
#include "tk/pg.h"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "FAIL: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

static rt_env_t *suite_env; /* the one rt_teardown releases */

void rt_env_init(rt_env_t *e, const char *prefix, int partitions)
{
    memset(e, 0, sizeof(*e));
    suite_env = e;
    bb_require_stack(true);
    char base[48];
    bb_unique(prefix, base, sizeof(base));
    snprintf(e->db, sizeof(e->db), "tk_%s", base);
    snprintf(e->topic, sizeof(e->topic), "%s", base);
    bb_unique("tv", e->name, sizeof(e->name));
    bb_private_database("tickets", e->db);
    bb_topic(e->topic, partitions);
    e->partitions = partitions;
    e->topics[0] = e->topic;
    e->spec = tk_tickets_view_projector;
    e->spec.name = e->name;
    e->spec.topics = e->topics;
    e->db_conn = bb_connect("tickets");
    tk_err_t err = {0};
    if ((e->producer = tk_kafka_producer_new(&err)) == NULL)
        die("producer", err.message);
}

void rt_env_release(rt_env_t *e)
{
    if (e->producer != NULL) {
        rd_kafka_flush(e->producer, 10000);
        rd_kafka_destroy(e->producer);
    }
    PQfinish(e->db_conn);
    tk_err_t err = {0};
    PGconn *server = tk_pg_connect_server(&err);
    if (server == NULL)
        return;
    char sql[160];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", e->db);
    PQclear(PQexec(server, sql));
    PQfinish(server);
}

static void produce(rt_env_t *e, const char *key, const char *value, const char *type,
                    const char *id)
{
    tk_err_t err = {0};
    rd_kafka_headers_t *h = type ? tk_kafka_headers_new(type, id, "1") : NULL;
    if (tk_kafka_produce(e->producer, e->topic, key, value, strlen(value), h, NULL, &err) != 0)
        die("produce", err.message);
    if (h != NULL)
        rd_kafka_headers_destroy(h);
    e->published++;
    rd_kafka_poll(e->producer, 0);
}

static void publish_ticket(rt_env_t *e, const char *type, const ev_ticket_t *t)
{
    ev_envelope_t env;
    tk_err_t err = {0};
    char *text = NULL;
    json_t *data = strcmp(type, "ticket:created") == 0 ? ev_ticket_created_to_json(t)
                                                       : ev_ticket_updated_to_json(t);
    if (ev_envelope_init(&env, type, t->id, t->version, NULL, data, &err) != 0 ||
        ev_envelope_encode(&env, &text, NULL, &err) != 0)
        die("envelope", err.message);
    produce(e, t->id, text, type, env.id);
    ev_envelope_release(&env);
    free(text);
}

static void ticket_state(const rt_ticket_t *x, int64_t version, const char *title, ev_ticket_t *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", x->id);
    snprintf(t->user_id, sizeof(t->user_id), "%s", x->user_id);
    snprintf(t->title, sizeof(t->title), "%s", title);
    t->version = version;
    t->price_cents = 1000 + version * 25;
}

void rt_publish_tickets(rt_env_t *e, rt_ticket_t *out, int n, int updates)
{
    for (int i = 0; i < n; i++) {
        rt_ticket_t *x = &out[i];
        tk_uuid_new(x->id);
        tk_uuid_new(x->user_id);
        ev_ticket_t t;
        char title[64];
        snprintf(title, sizeof(title), "ticket %d", i);
        ticket_state(x, 0, title, &t);
        publish_ticket(e, "ticket:created", &t);
        for (int v = 1; v <= updates; v++) {
            snprintf(title, sizeof(title), "ticket %d v%d", i, v);
            ticket_state(x, v, title, &t);
            if (v == updates && i % 2 == 0)
                tk_uuid_new(t.order_id);
            publish_ticket(e, "ticket:updated", &t);
        }
        x->version = updates;
    }
}

void rt_publish_update(rt_env_t *e, rt_ticket_t *x, const char *title)
{
    ev_ticket_t t;
    ticket_state(x, ++x->version, title, &t);
    publish_ticket(e, "ticket:updated", &t);
}

void rt_publish_raw(rt_env_t *e, const char *key, const char *value)
{
    produce(e, key, value, NULL, NULL);
}

void rt_flush(rt_env_t *e)
{
    if (rd_kafka_flush(e->producer, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("flush", "records still queued after 60 s");
    /* produce() asks for no delivery report: a record the producer gave up on shows here, rather
     * than as a projector that never catches up. */
    int64_t in_topic = 0;
    for (int p = 0; p < e->partitions; p++)
        in_topic += tk_test_end_offset(e->producer, e->topic, p);
    if (in_topic != e->published) {
        char why[96];
        snprintf(why, sizeof(why), "%lld records published, %lld in the topic",
                 (long long)e->published, (long long)in_topic);
        die("flush", why);
    }
}

int64_t rt_stored_sum(rt_env_t *e)
{
    const char *p[] = {e->name};
    return bb_scalar(e->db_conn,
                     "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets "
                     "WHERE projection = $1",
                     1, p);
}

/* Where a projector that did not catch up stands, partition by partition. */
static void print_behind(rt_env_t *e, const char *last_error)
{
    fprintf(stderr, "rt_catch_up: %lld of %lld records stored; last poll error: %s\n",
            (long long)rt_stored_sum(e), (long long)e->published,
            last_error[0] ? last_error : "none");
    for (int p = 0; p < e->partitions; p++) {
        char part[16];
        snprintf(part, sizeof(part), "%d", p);
        const char *params[] = {e->name, part};
        fprintf(stderr, "  partition %d: stored %lld, end %lld\n", p,
                (long long)bb_scalar(e->db_conn,
                                     "SELECT coalesce(max(next_offset), -1) FROM "
                                     "projection_offsets WHERE projection = $1 AND partition = $2",
                                     2, params),
                (long long)tk_test_end_offset(e->producer, e->topic, p));
    }
}

bool rt_catch_up(rt_env_t *e, tk_projector_t *p, int timeout_ms)
{
    int64_t deadline = tk_mono_ms() + timeout_ms;
    char last_error[256] = "";
    while (rt_stored_sum(e) < e->published) {
        if (tk_mono_ms() >= deadline) {
            print_behind(e, last_error);
            return false;
        }
        tk_err_t err = {0};
        if (tk_projector_poll_once(p, 200, NULL, &err) != 0)
            snprintf(last_error, sizeof(last_error), "%s", err.message);
    }
    return true;
}

int64_t rt_table_oid(rt_env_t *e, const char *table)
{
    char q[96];
    snprintf(q, sizeof(q), "public.%s", table);
    const char *p[] = {q};
    return bb_scalar(e->db_conn, "SELECT $1::regclass::oid::bigint", 1, p);
}

char *rt_text(rt_env_t *e, const char *sql, int nparams, const char *const *params)
{
    tk_err_t err = {0};
    PGresult *res = tk_pg_exec(e->db_conn, sql, nparams, params, &err);
    if (res == NULL) {
        fprintf(stderr, "FAIL: SQL %s\n", sql);
        die("rt_text", err.message);
    }
    char *v = strdup(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return v;
}

int rt_teardown(void **state)
{
    (void)state;
    if (suite_env != NULL)
        rt_env_release(suite_env);
    suite_env = NULL;
    return 0;
}

char *rt_tickets_snapshot(rt_env_t *e)
{
    char *view = rt_text(e,
                         "SELECT string_agg(concat_ws('|', id, title, price_cents, user_id, "
                         "order_id, version, created_at), ',' ORDER BY id) FROM ticket_view",
                         0, NULL);
    char *history = rt_text(e,
                            "SELECT string_agg(concat_ws('|', ticket_id, version, event_id, type, "
                            "md5(envelope)), ',' ORDER BY ticket_id, version) FROM ticket_history",
                            0, NULL);
    size_t n = strlen(view) + strlen(history) + 2;
    char *s = tk_mem_alloc(n);
    snprintf(s, n, "%s\n%s", view, history);
    free(view);
    free(history);
    return s;
}

void rt_publish_hard_cases(rt_env_t *e, rt_ticket_t *t, int n)
{
    memset(t, 0, (size_t)(n + 1) * sizeof(*t));
    for (int i = 0; i < n; i++)
        rt_publish_tickets(e, &t[i], 1, 0); /* ticket:created */
    usleep(20000);                          /* the updates get later times than the creations */
    for (int i = 0; i < n; i++)
        for (int v = 0; v < 3; v++)
            rt_publish_update(e, &t[i], "updated");
    for (int i = 0; i < n; i += 2) { /* version 2 again, other content, after version 3 */
        t[i].version = 1;
        rt_publish_update(e, &t[i], "late and older");
    }
    tk_uuid_new(t[n].id); /* updates of a ticket never created in this log */
    tk_uuid_new(t[n].user_id);
    t[n].version = 4;
    rt_publish_update(e, &t[n], "orphan");
    rt_publish_update(e, &t[n], "orphan again");
}

bool rt_hard_cases_happened(rt_env_t *e, int n)
{
    int64_t latest = bb_scalar(e->db_conn,
                               "SELECT count(*) FROM ticket_view WHERE version = 3 AND "
                               "title = 'updated'",
                               0, NULL);
    int64_t created_first = bb_scalar(e->db_conn,
                                      "SELECT count(*) FROM ticket_view v WHERE created_at < "
                                      "(SELECT min((envelope::json->>'time')::timestamptz) FROM "
                                      "ticket_history h WHERE h.ticket_id = v.id AND "
                                      "h.version > 0)",
                                      0, NULL);
    if (latest == n && created_first == n)
        return true;
    fprintf(stderr, "hard cases: %lld at version 3, %lld created first; want %d each\n",
            (long long)latest, (long long)created_first, n);
    return false;
}

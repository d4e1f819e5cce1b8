/*
 * bb_test.c - helpers of the backbone's integration tests; see bb_test.h. Every helper fails the
 * whole test process (exit 1 with a message) on a setup error: an integration test never skips.
 */
#include "bb_test.h"
#include "tk_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/mem.h"
#include "tk/migrate.h"
#include "ev_ticket.h"
#include "tk/pg.h"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "FAIL: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

void bb_require_stack(bool migrate)
{
    const char *k = getenv("KAFKA_BROKERS"), *d = getenv("DATABASE_URL");
    if (k == NULL || *k == '\0' || d == NULL || *d == '\0')
        die("integration test needs the local stack",
            "KAFKA_BROKERS and DATABASE_URL must be set (run it through scripts/test.sh, or "
            "`scripts/stack.sh start && . scripts/env.sh`)");
    tk_err_t err = {0};
    if (tk_cfg_load(TK_CFG_NEED_KAFKA | TK_CFG_NEED_DATABASE, &err) != 0)
        die("configuration", err.message);
    if (migrate && tk_migrate_all(&err) != 0)
        die("tk_migrate_all", err.message);
}

void bb_private_database(const char *context, const char *dbname)
{
    tk_test_private_database(context, dbname);
}

void bb_unique(const char *prefix, char *out, size_t size)
{
    char u[TK_UUID_LEN + 1];
    tk_uuid_new(u);
    /* 12 hex digits of the random part: unique enough for one stack's lifetime. */
    snprintf(out, size, "%s_%.8s%.4s", prefix, u, u + 9);
}

PGconn *bb_connect(const char *context)
{
    tk_err_t err = {0};
    PGconn *c = tk_pg_connect(context, &err);
    if (c == NULL)
        die("tk_pg_connect", err.message);
    return c;
}

void bb_exec(PGconn *c, const char *sql, int nparams, const char *const *params)
{
    tk_err_t err = {0};
    if (tk_pg_run(c, sql, nparams, params, NULL, &err) != 0) {
        fprintf(stderr, "FAIL: SQL %s\n", sql);
        die("bb_exec", err.message);
    }
}

int64_t bb_scalar(PGconn *c, const char *sql, int nparams, const char *const *params)
{
    tk_err_t err = {0};
    PGresult *res = tk_pg_exec(c, sql, nparams, params, &err);
    if (res == NULL) {
        fprintf(stderr, "FAIL: SQL %s\n", sql);
        die("bb_scalar", err.message);
    }
    int64_t v = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)
                    ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                    : 0;
    PQclear(res);
    return v;
}

void bb_topic(const char *topic, int partitions)
{
    const char *names[] = {topic, NULL};
    tk_err_t err = {0};
    if (tk_kafka_topics_create_list(names, partitions, &err) != 0)
        die("create topic", err.message);
}

pid_t bb_spawn_self(char *const argv[], const char *env_kv)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", "failed");
    if (pid == 0) {
        if (env_kv != NULL)
            putenv((char *)env_kv);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    return pid;
}

pid_t bb_serve_start(const char *bin, const char *context, const char *env, int *port)
{
    char cmd[1024];
    /* A port the kernel has just handed out and that nothing holds: a port derived from the pid
     * could be the local port of any connection on the machine (CI saw 37400 taken: the serve
     * could not listen and /metrics never answered). */
    close(tk_test_silent_listener(port));
    snprintf(cmd, sizeof(cmd),
             "%s JWT_KEY=bbtest-key-bbtest-key-bbtest-key PORT=%d %s serve %s >/dev/null 2>&1 & "
             "echo $!",
             env != NULL ? env : "", *port, bin, context);
    FILE *f = popen(cmd, "r");
    long pid = 0;
    if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 0)
        die("bb_serve_start", cmd);
    pclose(f);
    return (pid_t)pid;
}

int bb_wait(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    return status;
}

bool bb_eventually(bool (*fn)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = tk_mono_ms() + timeout_ms;
    for (;;) {
        if (fn(arg))
            return true;
        if (tk_mono_ms() >= deadline)
            return false;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

bb_reader_t *bb_reader_new(const char *topic, bool from_beginning)
{
    bb_reader_t *r = calloc(1, sizeof(*r));
    r->rk = tk_test_consumer_new(topic, !from_beginning);
    return r;
}

static void header(const rd_kafka_message_t *m, const char *name, char *out, size_t size)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t len = 0;
    out[0] = '\0';
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, name, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(out, size, "%.*s", (int)len, (const char *)v);
}

size_t bb_reader_collect(bb_reader_t *r, size_t want, int timeout_ms)
{
    int64_t deadline = tk_mono_ms() + timeout_ms;
    while (r->n < want && tk_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            r->recs = tk_mem_grow(r->recs, &r->cap, r->n + 1, sizeof(*r->recs));
            bb_rec_t *x = &r->recs[r->n++];
            memset(x, 0, sizeof(*x));
            x->key = m->key ? strndup(m->key, m->key_len) : NULL;
            x->value = strndup(m->payload ? m->payload : "", m->len);
            x->len = m->len;
            x->partition = m->partition;
            x->offset = m->offset;
            header(m, TK_KAFKA_H_TYPE, x->ce_type, sizeof(x->ce_type));
            header(m, TK_KAFKA_H_ID, x->ce_id, sizeof(x->ce_id));
        }
        rd_kafka_message_destroy(m);
    }
    return r->n;
}

void bb_reader_free(bb_reader_t *r)
{
    if (r == NULL)
        return;
    tk_test_consumer_free(r->rk);
    for (size_t i = 0; i < r->n; i++) {
        free(r->recs[i].key);
        free(r->recs[i].value);
    }
    free(r->recs);
    free(r);
}

/* ---- toy read models and background loops ---------------------------------------------------- */

char *bb_ticket_event(const char *type, const char *subject, int64_t version, int64_t cents,
                      size_t *len)
{
    ev_ticket_t t = {0};
    ev_envelope_t env;
    tk_err_t err = {0};
    char *out = NULL;
    snprintf(t.id, sizeof(t.id), "%s", subject);
    tk_uuid_new(t.user_id);
    snprintf(t.title, sizeof(t.title), "toy %lld", (long long)cents);
    t.version = version;
    t.price_cents = cents;
    json_t *data = version == 0 ? ev_ticket_created_to_json(&t) : ev_ticket_updated_to_json(&t);
    if (ev_envelope_init(&env, type, subject, version, "bbtest", data, &err) != 0)
        die("ev_envelope_init", err.message);
    if (ev_envelope_encode(&env, &out, len, &err) != 0)
        die("ev_envelope_encode", err.message);
    ev_envelope_release(&env);
    return out;
}

void bb_publish_ticket(rd_kafka_t *producer, const char *topic, const char *id, int version)
{
    size_t len = 0;
    char *payload =
        bb_ticket_event(version == 0 ? "ticket:created" : "ticket:updated", id, version, 100, &len);
    tk_err_t err = {0};
    if (tk_kafka_produce(producer, topic, id, payload, len, NULL, NULL, &err) != 0)
        die("tk_kafka_produce", err.message);
    free(payload);
}

int bb_replica_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    const char *table = ud;
    char sql[200], v[24];
    int64_t n = 0;
    snprintf(v, sizeof(v), "%lld", (long long)env->aggregateversion);
    const char *p[] = {env->subject, v};
    if (strcmp(env->type, "ticket:created") == 0) {
        snprintf(sql, sizeof(sql),
                 "INSERT INTO %s (id, version) VALUES ($1, 0) ON CONFLICT DO NOTHING", table);
        int rc = tk_pg_run(tk_tx_conn(tx), sql, 1, p, &n, err);
        return rc != 0 ? rc : n == 1 ? TK_APPLY_OK : TK_APPLY_SKIP;
    }
    snprintf(sql, sizeof(sql), "SELECT version FROM %s WHERE id = $1", table);
    PGresult *res = tk_pg_exec(tk_tx_conn(tx), sql, 1, p, err);
    if (res == NULL)
        return err->code;
    int64_t stored = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    if (stored >= 0 && env->aggregateversion <= stored)
        return TK_APPLY_SKIP;
    if (env->aggregateversion != stored + 1)
        return TK_APPLY_RETRY;
    snprintf(sql, sizeof(sql), "UPDATE %s SET version = $2 WHERE id = $1", table);
    int rc = tk_pg_run(tk_tx_conn(tx), sql, 2, p, NULL, err);
    return rc != 0 ? rc : TK_APPLY_OK;
}

/* bbtest.<prefix>_<unique> into @p name, created by @p columns. */
static void toy_table(PGconn *db, const char *prefix, const char *columns, char *name, size_t size)
{
    char unique[48], sql[256];
    bb_unique(prefix, unique, sizeof(unique));
    snprintf(name, size, "bbtest.%s", unique);
    bb_exec(db, "CREATE SCHEMA IF NOT EXISTS bbtest", 0, NULL);
    snprintf(sql, sizeof(sql), "CREATE TABLE %s (%s)", name, columns);
    bb_exec(db, sql, 0, NULL);
}

void bb_totals_create(PGconn *db, const char *prefix, char *name, size_t size)
{
    toy_table(db, prefix, "projection text PRIMARY KEY, count bigint NOT NULL, sum bigint NOT NULL",
              name, size);
}

void bb_replica_create(PGconn *db, const char *prefix, char *name, size_t size)
{
    toy_table(db, prefix, "id uuid PRIMARY KEY, version int NOT NULL", name, size);
}

void bb_fresh_topic(const char *what, char topic[64], char name[64], int partitions)
{
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "bbtest_%s", what);
    bb_unique(prefix, topic, 64);
    bb_unique(what, name, 64);
    bb_topic(topic, partitions);
}

bb_toys_t bb_toys;

int bb_toys_open(const char *dbname)
{
    bb_require_stack(true);
    bb_private_database("tickets", dbname);
    bb_toys.db = bb_connect("tickets");
    bb_totals_create(bb_toys.db, "toytotals", bb_toys.totals, sizeof(bb_toys.totals));
    bb_replica_create(bb_toys.db, "toyreplica", bb_toys.replica, sizeof(bb_toys.replica));
    return 0;
}

int bb_toys_teardown(void **state)
{
    (void)state;
    bb_drop_table(bb_toys.db, bb_toys.totals);
    bb_drop_table(bb_toys.db, bb_toys.replica);
    PQfinish(bb_toys.db);
    bb_toys.db = NULL;
    return 0;
}

void bb_totals_start(PGconn *db, const char *table, const char *projection)
{
    char sql[200];
    snprintf(sql, sizeof(sql), "INSERT INTO %s (projection, count, sum) VALUES ($1, 0, 0)", table);
    const char *p[] = {projection};
    bb_exec(db, sql, 1, p);
}

int64_t bb_totals_get(PGconn *db, const char *table, const char *projection, const char *column)
{
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE projection = $1", column, table);
    const char *p[] = {projection};
    return bb_scalar(db, sql, 1, p);
}

int64_t bb_toys_total(const char *projection, const char *column)
{
    return bb_totals_get(bb_toys.db, bb_toys.totals, projection, column);
}

bool bb_toys_counted(void *arg)
{
    const bb_count_goal_t *g = arg;
    return bb_toys_total(g->projection, "count") >= g->want;
}

void bb_drop_table(PGconn *db, const char *table)
{
    char sql[200];
    snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", table);
    bb_exec(db, sql, 0, NULL);
}

int bb_totals_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    const bb_totals_t *t = ud;
    ev_ticket_t ticket;
    int rc = strcmp(env->type, "ticket:updated") == 0
                 ? ev_ticket_updated_from_json(env->data, &ticket, err)
                 : ev_ticket_created_from_json(env->data, &ticket, err);
    if (rc != 0)
        return rc;
    char sql[200], cents[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)ticket.price_cents);
    snprintf(sql, sizeof(sql),
             "UPDATE %s SET count = count + 1, sum = sum + $2 WHERE projection = $1", t->table);
    const char *p[] = {t->projection, cents};
    return tk_pg_run(tk_tx_conn(tx), sql, 2, p, NULL, err);
}

void bb_project_until(tk_projector_t *p, bool (*done)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = tk_mono_ms() + timeout_ms;
    while (!done(arg)) {
        if (tk_mono_ms() >= deadline)
            die("bb_project_until", "the projection did not reach its goal in time");
        tk_err_t err = {0};
        tk_projector_poll_once(p, 200, NULL, &err);
    }
}

static void *loop_main(void *arg)
{
    bb_loop_t *l = arg;
    if (l->projector != NULL)
        tk_projector_run(l->projector, &l->stop);
    else
        tk_relay_run(l->relay, &l->stop);
    return NULL;
}

void bb_loop_start(bb_loop_t *l)
{
    l->stop = 0;
    pthread_create(&l->thread, NULL, loop_main, l);
}

void bb_loop_stop(bb_loop_t *l)
{
    l->stop = 1;
    pthread_join(l->thread, NULL);
}

/*
 * test_outbox_relay.c - the write path end to end on the real stack (DESIGN.md section 4):
 * tk_command_run commits state and outbox rows together (with retries of lost optimistic checks),
 * the relay publishes every committed row in per-aggregate order, a transaction that commits late
 * with a lower id is not skipped, a crash between ack and delete loses nothing, only the relay
 * holding the advisory lock publishes, and a running relay survives losing its connection.
 * The tickets context runs on the private database tk_bbtest_relay (bb_private_database), so
 * relays of other suites or of a `ticketing run` on the same stack cannot take these rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "bb_test.h"
#include "ev_envelope.h"
#include "ev_ticket.h"
#include "tk/backoff.h"
#include "tk/cfg.h"
#include "tk/command.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/pg.h"
#include "tk/relay.h"
#include "tx_int.h"

#define CONTEXT "tickets"
#define THREADS 4
#define BUMPS 5

/* ---- a toy aggregate: bbtest.agg_<suffix>(id, version) ------------------------------------- */

struct agg {
    char table[80];             /* bbtest.agg_xxx */
    char id[TK_UUID_LEN + 1];   /* the aggregate */
    char user[TK_UUID_LEN + 1]; /* its owner, for the event data */
};

struct cmd {
    const struct agg *agg;
    int attempts;
    int stale_first;   /* report a lost optimistic check this many times, then proceed */
    int fail_with;     /* a business error to return after emitting, or 0 */
    bool insert_twice; /* insert the aggregate's row although it exists: unique violation */
    int sleep_ms;      /* between load and write, to make concurrent commands collide */
};

static json_t *ticket_json(const struct agg *a, int64_t version)
{
    ev_ticket_t t = {0};
    snprintf(t.id, sizeof(t.id), "%s", a->id);
    snprintf(t.user_id, sizeof(t.user_id), "%s", a->user);
    snprintf(t.title, sizeof(t.title), "bbtest %lld", (long long)version);
    t.version = version;
    t.price_cents = 1000 + version;
    return version == 0 ? ev_ticket_created_to_json(&t) : ev_ticket_updated_to_json(&t);
}

static int create_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct cmd *c = arg;
    char sql[160];
    c->attempts++;
    snprintf(sql, sizeof(sql), "INSERT INTO %s (id, version) VALUES ($1, 0)", c->agg->table);
    const char *p[] = {c->agg->id};
    int rc = tk_pg_run(tk_tx_conn(tx), sql, 1, p, NULL, err);
    if (rc != 0)
        return rc;
    return tk_tx_emit(tx, "ticket:created", c->agg->id, 0, ticket_json(c->agg, 0), err);
}

static int bump_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct cmd *c = arg;
    char sql[200];
    c->attempts++;
    const char *p[] = {c->agg->id};
    snprintf(sql, sizeof(sql), "SELECT version FROM %s WHERE id = $1", c->agg->table);
    PGresult *res = tk_pg_exec(tk_tx_conn(tx), sql, 1, p, err);
    if (res == NULL)
        return err->code;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return tk_err_set(err, TK_ENOTFOUND, "id", "no such aggregate");
    }
    int64_t v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (c->sleep_ms > 0) {
        struct timespec ts = {0, (long)c->sleep_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (c->stale_first > 0) {
        c->stale_first--;
        return tk_command_stale(err, "agg", c->agg->id);
    }
    char vs[24];
    snprintf(vs, sizeof(vs), "%lld", (long long)v);
    const char *q[] = {c->agg->id, vs};
    int64_t n = 0;
    snprintf(sql, sizeof(sql), "UPDATE %s SET version = version + 1 WHERE id = $1 AND version = $2",
             c->agg->table);
    int rc = tk_pg_run(tk_tx_conn(tx), sql, 2, q, &n, err);
    if (rc != 0)
        return rc;
    if (n == 0)
        return tk_command_stale(err, "agg", c->agg->id);
    rc = tk_tx_emit(tx, "ticket:updated", c->agg->id, v + 1, ticket_json(c->agg, v + 1), err);
    if (rc == 0 && c->fail_with != 0)
        return tk_err_set(err, c->fail_with, "title", "rejected after emitting");
    if (rc == 0 && c->insert_twice) {
        snprintf(sql, sizeof(sql), "INSERT INTO %s (id, version) VALUES ($1, 0)", c->agg->table);
        return tk_pg_run(tk_tx_conn(tx), sql, 1, p, NULL, err);
    }
    return rc;
}

static struct agg make_agg(PGconn *c)
{
    struct agg a;
    bb_replica_create(c, "agg", a.table, sizeof(a.table));
    tk_uuid_new(a.id);
    tk_uuid_new(a.user);
    return a;
}

/* make_agg, created by a command: its row, and its ticket:created in the outbox. */
static struct agg created_agg(PGconn *c)
{
    struct agg a = make_agg(c);
    tk_err_t err = {0};
    struct cmd create = {.agg = &a};
    assert_int_equal(tk_command_run(c, NULL, create_body, &create, &err), 0);
    return a;
}

/* The outbox rows of aggregate @p key not yet relayed. */
static int64_t outbox_rows(PGconn *c, const char *key)
{
    const char *p[] = {key};
    return bb_scalar(c, "SELECT count(*) FROM outbox WHERE key = $1", 1, p);
}

/* Delete the outbox rows of aggregate @p key: not for Kafka, a test's private events. */
static void outbox_forget(PGconn *c, const char *key)
{
    const char *p[] = {key};
    bb_exec(c, "DELETE FROM outbox WHERE key = $1", 1, p);
}

static void drop_agg(PGconn *c, const struct agg *a)
{
    bb_drop_table(c, a->table);
}

/* A topic of @p partitions made for one test, named @p prefix plus a unique suffix. */
static void fresh_topic(const char *prefix, char topic[64], int partitions)
{
    bb_unique(prefix, topic, 64);
    bb_topic(topic, partitions);
}

/* The first two records of @p topic carry the values @p first and @p second, in that order. */
static void first_two_values_are(const char *topic, const char *first, const char *second)
{
    bb_reader_t *r = bb_reader_new(topic, true);
    assert_int_equal(bb_reader_collect(r, 2, 20000), 2);
    assert_string_equal(r->recs[0].value, first);
    assert_string_equal(r->recs[1].value, second);
    bb_reader_free(r);
}

/* ---- background relays ----------------------------------------------------------------------- */

static void relay_start(bb_loop_t *t)
{
    tk_err_t err = {0};
    *t = (bb_loop_t){.relay = tk_relay_new(CONTEXT, &err)};
    assert_non_null(t->relay);
    bb_loop_start(t);
}

static void relay_stop(bb_loop_t *t)
{
    bb_loop_stop(t);
    tk_relay_free(t->relay);
}

struct bumper {
    pthread_t thread;
    const struct agg *agg;
    int attempts, exhausted, failed;
};

static void *bumper_main(void *arg)
{
    struct bumper *b = arg;
    PGconn *c = bb_connect(CONTEXT);
    for (int i = 0; i < BUMPS; i++) {
        struct cmd cmd = {.agg = b->agg, .sleep_ms = 2};
        tk_err_t err = {0};
        int rc;
        while ((rc = tk_command_run(c, NULL, bump_body, &cmd, &err)) == TK_ECONFLICT)
            b->exhausted++; /* gave up after TK_COMMAND_MAX_ATTEMPTS: the client retries */
        b->failed += rc != 0;
        b->attempts += cmd.attempts;
    }
    PQfinish(c);
    return NULL;
}

/* Records of reader r whose key is id, in the order read. */
static size_t ours(const bb_reader_t *r, const char *id, const bb_rec_t **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->recs[i].key != NULL && strcmp(r->recs[i].key, id) == 0) {
            if (n < cap)
                out[n] = &r->recs[i];
            n++;
        }
    return n;
}

static size_t collect_ours(bb_reader_t *r, const char *id, size_t want, int timeout_ms)
{
    const bb_rec_t *dummy[1];
    int64_t deadline = tk_mono_ms() + timeout_ms;
    while (ours(r, id, dummy, 0) < want && tk_mono_ms() < deadline)
        bb_reader_collect(r, r->n + 1, 200);
    return ours(r, id, dummy, 0);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void committed_commands_reach_kafka_in_order(void **state)
{
    (void)state;
    enum { TOTAL = 1 + THREADS * BUMPS };
    PGconn *c = bb_connect(CONTEXT);
    struct agg a = make_agg(c);
    bb_reader_t *r = bb_reader_new("tickets", false);
    /* Two relays: one active, one hot standby; events must arrive exactly once either way. */
    bb_loop_t relays[2];
    relay_start(&relays[0]);
    relay_start(&relays[1]);

    tk_err_t err = {0};
    struct cmd create = {.agg = &a};
    assert_int_equal(tk_command_run(c, "corr-create", create_body, &create, &err), 0);
    struct bumper bumpers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        bumpers[i] = (struct bumper){.agg = &a};
        pthread_create(&bumpers[i].thread, NULL, bumper_main, &bumpers[i]);
    }
    int attempts = 0, exhausted = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(bumpers[i].thread, NULL);
        assert_int_equal(bumpers[i].failed, 0);
        attempts += bumpers[i].attempts;
        exhausted += bumpers[i].exhausted;
    }
    print_message("    %d bumps took %d attempts (%d gave up and were retried by the caller)\n",
                  THREADS * BUMPS, attempts, exhausted);
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT version FROM %s", a.table);
    assert_int_equal(bb_scalar(c, sql, 0, NULL), THREADS * BUMPS);

    /* Every committed event reaches Kafka, in version order, once. */
    assert_int_equal(collect_ours(r, a.id, TOTAL, 30000), TOTAL);
    bb_reader_collect(r, r->n + 1000, 1000); /* give stray duplicates a chance to show */
    const bb_rec_t *got[TOTAL + 8];
    assert_int_equal(ours(r, a.id, got, TOTAL + 8), TOTAL);
    for (int i = 0; i < TOTAL; i++) {
        ev_envelope_t env;
        tk_err_t derr = {0};
        assert_int_equal(ev_envelope_decode(got[i]->value, got[i]->len, &env, &derr), 0);
        assert_int_equal(env.aggregateversion, i);
        assert_string_equal(env.subject, a.id);
        assert_string_equal(env.type, i == 0 ? "ticket:created" : "ticket:updated");
        assert_string_equal(got[i]->ce_type, env.type);
        assert_string_equal(got[i]->ce_id, env.id);
        assert_int_equal(got[i]->partition, got[0]->partition);
        if (i == 0)
            assert_string_equal(env.correlationid, "corr-create");
        ev_envelope_release(&env);
    }
    assert_int_equal(outbox_rows(c, a.id), 0);

    relay_stop(&relays[0]);
    relay_stop(&relays[1]);
    bb_reader_free(r);
    drop_agg(c, &a);
    PQfinish(c);
}

static void command_errors_and_retries(void **state)
{
    (void)state;
    PGconn *c = bb_connect(CONTEXT);
    struct agg a = created_agg(c);
    tk_err_t err = {0};
    int64_t rows = outbox_rows(c, a.id);

    /* A business error is returned at once and nothing it emitted commits. */
    struct cmd bad = {.agg = &a, .fail_with = TK_EINVAL};
    assert_int_equal(tk_command_run(c, NULL, bump_body, &bad, &err), TK_EINVAL);
    assert_int_equal(bad.attempts, 1);
    assert_string_equal(err.field, "title");
    assert_int_equal(outbox_rows(c, a.id), rows);

    /* A unique violation is a conflict naming the constraint, not retried. */
    struct cmd dup = {.agg = &a, .insert_twice = true};
    assert_int_equal(tk_command_run(c, NULL, bump_body, &dup, &err), TK_ECONFLICT);
    assert_int_equal(dup.attempts, 1);
    assert_non_null(strstr(err.field, "_pkey"));
    assert_false(tk_pg_retryable(&err));
    assert_int_equal(outbox_rows(c, a.id), rows);

    /* Lost optimistic checks are retried; the third attempt commits. */
    struct cmd flaky = {.agg = &a, .stale_first = 2};
    assert_int_equal(tk_command_run(c, NULL, bump_body, &flaky, &err), 0);
    assert_int_equal(flaky.attempts, 3);
    assert_int_equal(outbox_rows(c, a.id), rows + 1);

    /* ... but not forever. */
    struct cmd hot = {.agg = &a, .stale_first = 1000};
    assert_int_equal(tk_command_run(c, NULL, bump_body, &hot, &err), TK_ECONFLICT);
    assert_int_equal(hot.attempts, TK_COMMAND_MAX_ATTEMPTS);
    assert_false(tk_pg_retryable(&err));

    /* The connection is idle and usable afterwards. */
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    outbox_forget(c, a.id);
    drop_agg(c, &a);
    PQfinish(c);
}

/* ---- round trips: BEGIN rides with the first statement, the outbox rows with the COMMIT ---- */

static int emit_only_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct cmd *c = arg;
    c->attempts++;
    return tk_tx_emit(tx, "ticket:updated", c->agg->id, 7, ticket_json(c->agg, 7), err);
}

static int nothing_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    (void)tx;
    (void)err;
    ((struct cmd *)arg)->attempts++;
    return 0;
}

/* libpq's protocol trace of c, from trace_begin to trace_end: the round trips in it
 * (ReadyForQuery messages), and whether @p needle (may be NULL) was sent. */
static FILE *trace_begin(PGconn *c)
{
    FILE *trace = tmpfile();
    assert_non_null(trace);
    PQtrace(c, trace);
    PQsetTraceFlags(c, PQTRACE_SUPPRESS_TIMESTAMPS);
    return trace;
}

static int trace_end(PGconn *c, FILE *trace, const char *needle, bool *seen)
{
    PQuntrace(c);
    rewind(trace);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), trace) != NULL) {
        n += strstr(line, "ReadyForQuery") != NULL;
        if (needle != NULL && strstr(line, needle) != NULL)
            *seen = true;
    }
    fclose(trace);
    return n;
}

/* Runs body as a command on c and returns the round trips it took; *rc gets tk_command_run's
 * result. */
static int round_trips(PGconn *c, tk_command_body_t *body, struct cmd *cmd, int *rc, tk_err_t *err)
{
    FILE *trace = trace_begin(c);
    *rc = tk_command_run(c, NULL, body, cmd, err);
    return trace_end(c, trace, NULL, NULL);
}

static void a_command_takes_two_round_trips_and_stays_atomic(void **state)
{
    (void)state;
    PGconn *c = bb_connect(CONTEXT);
    struct agg a = created_agg(c); /* its command prepares the statements */
    tk_err_t err = {0};
    int rc = 0;

    /* A statement and an event: BEGIN + INSERT, then outbox row + COMMIT + NOTIFY. */
    struct agg b = a;
    tk_uuid_new(b.id);
    struct cmd create_b = {.agg = &b};
    assert_int_equal(round_trips(c, create_body, &create_b, &rc, &err), 2);
    assert_int_equal(rc, 0);
    assert_int_equal(outbox_rows(c, b.id), 1);

    /* An event alone: everything in the commit's round trip. */
    struct cmd only = {.agg = &a};
    assert_int_equal(round_trips(c, emit_only_body, &only, &rc, &err), 1);
    assert_int_equal(rc, 0);
    assert_int_equal(outbox_rows(c, a.id), 2);

    /* Nothing done: no transaction at all. */
    struct cmd none = {.agg = &a};
    assert_int_equal(round_trips(c, nothing_body, &none, &rc, &err), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(none.attempts, 1);

    /* An outbox row the database refuses at commit undoes the body's writes too. */
    char sql[300];
    snprintf(sql, sizeof(sql),
             "ALTER TABLE outbox ADD CONSTRAINT bbtest_refuse CHECK (key <> '%s') NOT VALID", a.id);
    bb_exec(c, sql, 0, NULL);
    struct cmd refused = {.agg = &a};
    assert_int_not_equal(tk_command_run(c, NULL, bump_body, &refused, &err), 0);
    assert_non_null(strstr(err.message, "bbtest_refuse"));
    snprintf(sql, sizeof(sql), "SELECT version FROM %s WHERE id = $1", a.table);
    const char *p[] = {a.id};
    assert_int_equal(bb_scalar(c, sql, 1, p), 0);
    assert_int_equal(outbox_rows(c, a.id), 2);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    bb_exec(c, "ALTER TABLE outbox DROP CONSTRAINT bbtest_refuse", 0, NULL);

    /* A statement failing with the deferred BEGIN: reported, rolled back, the link usable. */
    struct cmd dup = {.agg = &b};
    assert_int_equal(tk_command_run(c, NULL, create_body, &dup, &err), TK_ECONFLICT);
    assert_non_null(strstr(err.field, "_pkey"));
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    assert_false(tk_pg_broken(c));
    struct cmd bump = {.agg = &a};
    assert_int_equal(tk_command_run(c, NULL, bump_body, &bump, &err), 0);
    assert_int_equal(bb_scalar(c, sql, 1, p), 1);

    outbox_forget(c, a.id);
    outbox_forget(c, b.id);
    drop_agg(c, &a);
    PQfinish(c);
}

static int64_t insert_row(PGconn *c, const char *topic, const char *key, const char *payload)
{
    const char *p[] = {topic, key, payload};
    return bb_scalar(c,
                     "INSERT INTO outbox (topic, key, payload, headers) VALUES ($1, $2, $3, "
                     "'{\"ce_type\":\"bbtest\"}') RETURNING id",
                     3, p);
}

static bool row_exists(PGconn *c, int64_t id)
{
    char s[24];
    snprintf(s, sizeof(s), "%lld", (long long)id);
    const char *p[] = {s};
    return bb_scalar(c, "SELECT count(*) FROM outbox WHERE id = $1", 1, p) == 1;
}

/*
 * A projector's commit (tk_tx__commit): its last statement (the offsets), COMMIT and NOTIFY in one
 * round trip after a deferred BEGIN rode with the first statement. A batch that emitted nothing
 * does not wait for its WAL flush; one that emitted events does (DESIGN.md section 6).
 */
static void a_projector_commit_is_one_round_trip_and_flushes_only_with_events(void **state)
{
    (void)state;
    PGconn *c = bb_connect(CONTEXT);
    tk_err_t err = {0};
    bb_exec(c, "CREATE TEMP TABLE bbtest_offsets (n int)", 0, NULL);
    const char *one[] = {"1"};
    const tk_pg_stmt_t last = {"INSERT INTO bbtest_offsets VALUES ($1::int)", 1, one};
    for (int emitted = 0; emitted <= 1; emitted++) {
        FILE *trace = trace_begin(c);
        assert_int_equal(tk_pg_begin_deferred(c, &err), 0);
        PGresult *r = tk_pg_exec(c, "SELECT count(*) FROM bbtest_offsets", 0, NULL, &err);
        assert_non_null(r);
        PQclear(r);
        assert_int_equal(tk_tx__commit(c, emitted, "bbtest_view", &last, &err), 0);
        bool no_flush_wait = false;
        assert_int_equal(trace_end(c, trace, "synchronous_commit", &no_flush_wait), 2);
        assert_int_equal(no_flush_wait, emitted == 0);
        assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    }
    assert_int_equal(bb_scalar(c, "SELECT count(*) FROM bbtest_offsets", 0, NULL), 2);
    /* The setting was the transaction's own: the session still waits for its flushes. */
    PGresult *r = tk_pg_exec(c, "SHOW synchronous_commit", 0, NULL, &err);
    assert_non_null(r);
    assert_string_equal(PQgetvalue(r, 0, 0), "on");
    PQclear(r);
    PQfinish(c);
}

/* tk_pg_exec_all's statements run after a lock the first of them waits for. */
struct locked_count {
    PGconn *c;
    int round_trips;
    int64_t count;
};

static void *count_after_the_lock(void *arg)
{
    struct locked_count *lc = arg;
    tk_err_t err = {0};
    const tk_pg_stmt_t stmts[] = {{"SELECT pg_advisory_xact_lock(4242)", 0, NULL},
                                  {"SELECT count(*) FROM bbtest_pipelined", 0, NULL}};
    PGresult *res[2];
    FILE *trace = trace_begin(lc->c);
    assert_int_equal(tk_pg_begin_deferred(lc->c, &err), 0);
    assert_int_equal(tk_pg_exec_all(lc->c, stmts, 2, res, &err), 0);
    lc->round_trips = trace_end(lc->c, trace, NULL, NULL);
    lc->count = strtoll(PQgetvalue(res[1], 0, 0), NULL, 10);
    PQclear(res[0]);
    PQclear(res[1]);
    assert_int_equal(tk_pg_rollback(lc->c, &err), 0);
    return NULL;
}

/*
 * POST /api/orders reads its user's open orders after taking the user's lock, in the same round
 * trip (tk_pg_exec_all): the count must see what the lock's previous holder committed, or two
 * POSTs of one user could both pass the cap.
 */
static void statements_of_one_round_trip_read_after_the_lock_before_them(void **state)
{
    (void)state;
    PGconn *holder = bb_connect(CONTEXT);
    struct locked_count lc = {.c = bb_connect(CONTEXT)};
    bb_exec(holder, "CREATE TABLE bbtest_pipelined (n int)", 0, NULL);
    bb_exec(holder, "BEGIN", 0, NULL);
    bb_exec(holder, "SELECT pg_advisory_xact_lock(4242)", 0, NULL);
    bb_exec(holder, "INSERT INTO bbtest_pipelined VALUES (1)", 0, NULL);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, count_after_the_lock, &lc), 0);
    tk_nap(300, NULL); /* the thread's round trip now waits for the lock */
    bb_exec(holder, "COMMIT", 0, NULL);
    pthread_join(t, NULL);
    assert_int_equal(lc.round_trips, 1);
    assert_int_equal(lc.count, 1);

    /* A failing statement: no results, its error, and a transaction that rolls back. */
    tk_err_t err = {0};
    const tk_pg_stmt_t bad[] = {{"SELECT 1", 0, NULL}, {"SELECT * FROM bbtest_missing", 0, NULL}};
    PGresult *res[2] = {(PGresult *)&err, (PGresult *)&err};
    assert_int_equal(tk_pg_begin_deferred(lc.c, &err), 0);
    assert_int_not_equal(tk_pg_exec_all(lc.c, bad, 2, res, &err), 0);
    assert_null(res[0]);
    assert_null(res[1]);
    assert_non_null(strstr(err.message, "bbtest_missing"));
    assert_int_equal(tk_pg_rollback(lc.c, &err), 0);
    assert_int_equal(PQtransactionStatus(lc.c), PQTRANS_IDLE);
    assert_int_equal(bb_scalar(lc.c, "SELECT count(*) FROM bbtest_pipelined", 0, NULL), 1);
    bb_exec(holder, "DROP TABLE bbtest_pipelined", 0, NULL);
    PQfinish(lc.c);
    PQfinish(holder);
}

/* tk_pg_exec_all's bound: 1 to 19 statements in one round trip (20 with a deferred BEGIN); outside
 * it, an error before anything is sent, with every result NULL. */
static void one_round_trip_holds_1_to_19_statements(void **state)
{
    (void)state;
    PGconn *c = bb_connect(CONTEXT);
    tk_err_t err = {0};
    tk_pg_stmt_t stmts[20];
    PGresult *res[20];
    for (int i = 0; i < 20; i++)
        stmts[i] = (tk_pg_stmt_t){"SELECT 1", 0, NULL};
    assert_int_equal(tk_pg_begin_deferred(c, &err), 0);
    assert_int_equal(tk_pg_exec_all(c, stmts, 19, res, &err), 0);
    for (int i = 0; i < 19; i++) {
        assert_non_null(res[i]);
        PQclear(res[i]);
    }
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS); /* the BEGIN went with them */
    assert_int_equal(tk_pg_rollback(c, &err), 0);
    assert_int_equal(tk_pg_exec_all(c, stmts, 20, res, &err), TK_EINTERNAL);
    for (int i = 0; i < 20; i++)
        assert_null(res[i]);
    assert_int_equal(tk_pg_exec_all(c, stmts, 0, res, &err), TK_EINTERNAL);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
    PQfinish(c);
}

/* A binary parameter after a deferred BEGIN: the BEGIN rides with it, as with text parameters. */
static void a_binary_statement_carries_the_deferred_begin(void **state)
{
    (void)state;
    PGconn *c = bb_connect(CONTEXT);
    tk_err_t err = {0};
    const unsigned char forty_two[4] = {0, 0, 0, 42}; /* int4, big-endian */
    const char *params[] = {(const char *)forty_two};
    const int lengths[] = {4}, formats[] = {1};
    FILE *trace = trace_begin(c);
    assert_int_equal(tk_pg_begin_deferred(c, &err), 0);
    PGresult *r =
        tk_pg_exec_prepared_binary(c, "SELECT $1::int4 + 1", 1, params, lengths, formats, &err);
    assert_int_equal(trace_end(c, trace, NULL, NULL), 1);
    assert_non_null(r);
    assert_string_equal(PQgetvalue(r, 0, 0), "43");
    PQclear(r);
    assert_int_equal(PQtransactionStatus(c), PQTRANS_INTRANS);
    assert_int_equal(tk_pg_rollback(c, &err), 0);
    PQfinish(c);
}

static void late_commit_with_lower_id_is_not_skipped(void **state)
{
    (void)state;
    char topic[64];
    fresh_topic("bbtest_late", topic, 1);
    PGconn *a = bb_connect(CONTEXT), *b = bb_connect(CONTEXT);
    tk_err_t err = {0};
    tk_relay_t *relay = tk_relay_new(CONTEXT, &err);
    assert_non_null(relay);
    int published = 0;

    bb_exec(a, "BEGIN", 0, NULL);
    int64_t ida = insert_row(a, topic, "ka", "A");
    bb_exec(b, "BEGIN", 0, NULL);
    int64_t idb = insert_row(b, topic, "kb", "B");
    assert_true(ida < idb);
    bb_exec(b, "COMMIT", 0, NULL);

    assert_int_equal(tk_relay_drain_once(relay, &published, &err), 0);
    assert_true(published >= 1);
    assert_false(row_exists(b, idb)); /* B published and deleted */
    bb_exec(a, "COMMIT", 0, NULL);    /* A commits late, with the lower id */
    assert_true(row_exists(b, ida));
    assert_int_equal(tk_relay_drain_once(relay, &published, &err), 0);
    assert_true(published >= 1);
    assert_false(row_exists(b, ida));

    bb_reader_t *r = bb_reader_new(topic, true);
    assert_int_equal(bb_reader_collect(r, 2, 20000), 2);
    assert_string_equal(r->recs[0].value, "B");
    assert_string_equal(r->recs[1].value, "A");
    assert_string_equal(r->recs[1].key, "ka");
    assert_string_equal(r->recs[1].ce_type, "bbtest");
    bb_reader_free(r);
    tk_relay_free(relay);
    PQfinish(a);
    PQfinish(b);
}

/* Drain once; a relay that just died may hold the lock until its backend notices: wait for it. */
static int drain_when_active(tk_relay_t *relay, int *published, tk_err_t *err)
{
    int64_t deadline = tk_mono_ms() + 10000;
    int rc;
    while ((rc = tk_relay_drain_once(relay, published, err)) == TK_ECONFLICT &&
           tk_mono_ms() < deadline) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return rc;
}

/* Issue 11 item 13: a row Kafka refuses for good (1.2 MB, over message.max.bytes) does not
 * block the relay: it is dead-lettered (dead_letters, projection "relay") and the rows behind it
 * are published. Without it the drain would stop at that row forever. */
static void refused_row_is_dead_lettered(void **state)
{
    (void)state;
    char topic[64];
    fresh_topic("bbtest_refused", topic, 1);
    PGconn *c = bb_connect(CONTEXT);
    size_t big_len = 1200 * 1024;
    char *big = malloc(big_len + 1);
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    int64_t a = insert_row(c, topic, "k1", "before");
    int64_t b = insert_row(c, topic, "k1", big);
    int64_t d = insert_row(c, topic, "k1", "after");
    free(big);
    tk_err_t err = {0};
    tk_relay_t *relay = tk_relay_new(CONTEXT, &err);
    assert_non_null(relay);
    int published = 0;
    assert_int_equal(drain_when_active(relay, &published, &err), 0);
    assert_false(row_exists(c, a));
    assert_false(row_exists(c, b));
    assert_false(row_exists(c, d));
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)b);
    const char *p[] = {id, topic};
    assert_int_equal(bb_scalar(c,
                               "SELECT count(*) FROM dead_letters WHERE projection = 'relay' "
                               "AND \"offset\" = $1::bigint AND topic = $2 AND length(payload) = "
                               "1200 * 1024 AND error LIKE 'refused by Kafka:%'",
                               2, p),
                     1);
    first_two_values_are(topic, "before", "after");
    tk_relay_free(relay);
    PQfinish(c);
}

static void crash_between_ack_and_delete_loses_and_doubles_nothing(void **state)
{
    (void)state;
    enum { N = 20 };
    char topic[64], key[16], payload[32];
    fresh_topic("bbtest_crash", topic, 3);
    PGconn *c = bb_connect(CONTEXT);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "k%d", i % 5);
        snprintf(payload, sizeof(payload), "p%d", i);
        insert_row(c, topic, key, payload);
    }
    const char *p[] = {topic};
    const char *count_sql = "SELECT count(*) FROM outbox WHERE topic = $1";

    /* A relay process that dies right after the broker acked and before it deletes. */
    char *argv[] = {"test_outbox_relay", "--child-relay", CONTEXT, NULL};
    int status = bb_wait(bb_spawn_self(argv, "TK_FAULT_RELAY_EXIT_AFTER_ACK=1"));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 137);
    assert_int_equal(bb_scalar(c, count_sql, 1, p), N); /* acked but not deleted */

    /* Restart: the takeover check finds the crashed relay's rows on Kafka and deletes them
     * without publishing them again; the outbox empties. */
    tk_err_t err = {0};
    int published = -1;
    tk_relay_t *relay = tk_relay_new(CONTEXT, &err);
    assert_non_null(relay);
    assert_int_equal(drain_when_active(relay, &published, &err), 0);
    assert_int_equal(published, 0);
    assert_int_equal(bb_scalar(c, count_sql, 1, p), 0);

    /* A row committed after the crash is published as usual, once. */
    insert_row(c, topic, "k0", "late");
    assert_int_equal(tk_relay_drain_once(relay, &published, &err), 0);
    assert_int_equal(published, 1);
    tk_relay_free(relay);

    bb_reader_t *r = bb_reader_new(topic, true);
    bb_reader_collect(r, 2 * N + 1, 5000); /* waits long enough to see duplicates, if any */
    int seen[N] = {0}, late = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->recs[i].value, "late") == 0) {
            late++;
            continue;
        }
        int k = atoi(r->recs[i].value + 1);
        assert_true(k >= 0 && k < N);
        seen[k]++;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1); /* none lost, none twice */
    assert_int_equal(late, 1);
    assert_int_equal(r->n, N + 1);
    bb_reader_free(r);
    PQfinish(c);
}

static void only_the_lock_holder_publishes(void **state)
{
    (void)state;
    char topic[64];
    fresh_topic("bbtest_lock", topic, 1);
    PGconn *c = bb_connect(CONTEXT);
    tk_err_t err = {0};
    int published = -1;
    tk_relay_t *first = tk_relay_new(CONTEXT, &err), *second = tk_relay_new(CONTEXT, &err);
    assert_non_null(first);
    assert_non_null(second);
    assert_int_equal(tk_relay_drain_once(first, &published, &err), 0); /* takes the lock */

    int64_t id = insert_row(c, topic, "k", "one");
    assert_int_equal(tk_relay_drain_once(second, &published, &err), TK_ECONFLICT);
    assert_int_equal(published, 0);
    assert_true(row_exists(c, id));
    assert_int_equal(tk_relay_drain_once(first, &published, &err), 0);
    assert_true(published >= 1);
    assert_false(row_exists(c, id));

    /* The holder goes away: the standby takes over. */
    tk_relay_free(first);
    id = insert_row(c, topic, "k", "two");
    assert_int_equal(tk_relay_drain_once(second, &published, &err), 0);
    assert_true(published >= 1);
    assert_false(row_exists(c, id));
    tk_relay_free(second);

    first_two_values_are(topic, "one", "two");
    PQfinish(c);
}

/* Kill the backend of the session holding the relay lock; returns how many were killed. */
static int64_t terminate_relay_session(PGconn *c)
{
    return bb_scalar(c,
                     "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = "
                     "'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE "
                     "datname = current_database()) AND ((classid::bigint << 32) | "
                     "objid::bigint) = 7605298350474201666",
                     0, NULL);
}

static void running_relay_survives_a_lost_connection(void **state)
{
    (void)state;
    char topic[64];
    fresh_topic("bbtest_reconnect", topic, 1);
    PGconn *c = bb_connect(CONTEXT);
    bb_reader_t *r = bb_reader_new(topic, true);
    bb_loop_t relay;
    relay_start(&relay);
    insert_row(c, topic, "k", "before");
    assert_int_equal(bb_reader_collect(r, 1, 20000), 1); /* woken by NOTIFY */

    int64_t deadline = tk_mono_ms() + 10000;
    while (terminate_relay_session(c) == 0) /* the relay holds the lock once it is active */
        assert_true(tk_mono_ms() < deadline);
    insert_row(c, topic, "k", "after");
    assert_int_equal(bb_reader_collect(r, 2, 20000), 2); /* it reconnected, relocked, drained */
    assert_string_equal(r->recs[0].value, "before");
    assert_string_equal(r->recs[1].value, "after");
    relay_stop(&relay);
    bb_reader_free(r);
    PQfinish(c);
}

/* The child of crash_between_ack_and_delete_loses_and_doubles_nothing: one drain, which must
 * _exit(137). */
static int child_relay(const char *context)
{
    tk_err_t err = {0};
    if (tk_cfg_load(TK_CFG_NEED_KAFKA | TK_CFG_NEED_DATABASE, &err) != 0)
        return 2;
    tk_relay_t *relay = tk_relay_new(context, &err);
    int published = 0;
    if (relay == NULL || tk_relay_drain_once(relay, &published, &err) != 0) {
        fprintf(stderr, "child relay: %s\n", err.message);
        return 3;
    }
    return 4; /* the fault hook did not fire */
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child-relay") == 0)
        return child_relay(argv[2]);
    bb_require_stack(true);
    bb_private_database(CONTEXT, "tk_bbtest_relay");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(committed_commands_reach_kafka_in_order),
        cmocka_unit_test(command_errors_and_retries),
        cmocka_unit_test(a_command_takes_two_round_trips_and_stays_atomic),
        cmocka_unit_test(a_projector_commit_is_one_round_trip_and_flushes_only_with_events),
        cmocka_unit_test(statements_of_one_round_trip_read_after_the_lock_before_them),
        cmocka_unit_test(one_round_trip_holds_1_to_19_statements),
        cmocka_unit_test(a_binary_statement_carries_the_deferred_begin),
        cmocka_unit_test(late_commit_with_lower_id_is_not_skipped),
        cmocka_unit_test(crash_between_ack_and_delete_loses_and_doubles_nothing),
        cmocka_unit_test(refused_row_is_dead_lettered),
        cmocka_unit_test(only_the_lock_holder_publishes),
        cmocka_unit_test(running_relay_survives_a_lost_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

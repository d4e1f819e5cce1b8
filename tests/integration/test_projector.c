/*
 * test_projector.c - the projector loop on the real stack (DESIGN.md section 6) with a toy read
 * model (schema bbtest of the private database tk_bbtest_projector, standing for the tickets
 * context, so other suites' relays never interfere): a projector killed -9 in a batch and
 * restarted ends with exactly the table of an uninterrupted run; an event published twice is
 * applied once and its follow-up event is emitted once; a transient failure rolls the batch back
 * and replays it from the stored offsets without doubles, and so does a lost database connection;
 * two members of one group share the partitions through a rebalance without doubles;
 * poison records go to dead_letters and the projector continues; a version gap waits, then goes
 * to dead_letters after the (shortened) gap timeout; a batch stops growing at its byte budget
 * (PROJECTOR_BATCH_BYTES), and a record larger than the budget still goes, alone.
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
#include <unistd.h>

#include "bb_test.h"
#include "tk_test.h"
#include "ev_envelope.h"
#include "ev_ticket.h"
#include "ev_user.h"
#include "tk/cfg.h"
#include "tk/command.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/pg.h"
#include "tk/projector.h"

#define CONTEXT "tickets"
#define GAP_TIMEOUT_MS "1500"

/* ---- the toy projections --------------------------------------------------------------------- */

struct toy {
    bb_totals_t sums; /* the table and row bb_totals_apply counts in */
    int sleep_us;     /* per event, to stretch batches (the kill test) */
    int fail_call;    /* the apply call that fails with a retryable conflict, 0 = none */
    bool emit;        /* emit user:registered for each applied event */
    int calls;
};

/* bb_totals_apply (count and sum of the prices: doubles show), stretched, failing or emitting
 * as the toy says. */
static int sum_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    struct toy *t = ud;
    t->calls++;
    if (t->sleep_us > 0)
        usleep((useconds_t)t->sleep_us);
    if (t->fail_call > 0 && t->calls == t->fail_call)
        return tk_command_stale(err, "toy", env->subject); /* transient: the batch is retried */
    int rc = bb_totals_apply(tx, env, &t->sums, err);
    if (rc != 0)
        return rc;
    if (t->emit) {
        ev_user_registered_t u = {0};
        snprintf(u.id, sizeof(u.id), "%s", env->subject);
        snprintf(u.email, sizeof(u.email), "bbtest@example.com");
        if ((rc = tk_tx_emit(tx, "user:registered", env->subject, 0, ev_user_registered_to_json(&u),
                             err)) != 0)
            return rc;
    }
    return TK_APPLY_OK;
}

/* ---- helpers --------------------------------------------------------------------------------- */

static void publish(rd_kafka_t *producer, const char *topic, const char *key, const void *payload,
                    size_t len)
{
    tk_err_t err = {0};
    assert_int_equal(tk_kafka_produce(producer, topic, key, payload, len, NULL, NULL, &err), 0);
}

/* n ticket:created events of fresh tickets priced 1..n: the sum is n(n+1)/2. */
static void publish_tickets(const char *topic, int n)
{
    rd_kafka_t *producer = tk_test_producer();
    for (int i = 1; i <= n; i++) {
        char id[TK_UUID_LEN + 1];
        size_t len = 0;
        tk_uuid_new(id);
        char *payload = bb_ticket_event("ticket:created", id, 0, i, &len);
        publish(producer, topic, id, payload, len);
        free(payload);
    }
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);
    rd_kafka_destroy(producer);
}

static tk_projector_t *projector(const char *name, const char *topic,
                                 int (*apply)(tk_tx_t *, const ev_envelope_t *, void *, tk_err_t *),
                                 void *ud)
{
    const char *topics[] = {topic, NULL};
    tk_projector_spec_t spec = {
        .context = CONTEXT, .name = name, .topics = topics, .apply = apply, .ud = ud};
    tk_err_t err = {0};
    tk_projector_t *p = tk_projector_new(&spec, &err);
    if (p == NULL)
        print_error("tk_projector_new: %s\n", err.message);
    assert_non_null(p);
    return p;
}

/* Poll @p p until @p name's count reaches @p want, for @p timeout_ms at most. */
static void project_count(tk_projector_t *p, const char *name, int64_t want, int timeout_ms)
{
    bb_count_goal_t g = {name, want};
    bb_project_until(p, bb_toys_counted, &g, timeout_ms);
}

/* A projector named @p name of @p topic applying the toy @p t, which counts in @p name's row of
 * the totals table (made at count 0, sum 0). */
static tk_projector_t *toy_projector(struct toy *t, const char *name, const char *topic)
{
    bb_totals_start(bb_toys.db, bb_toys.totals, name);
    t->sums = (bb_totals_t){bb_toys.totals, name};
    return projector(name, topic, sum_apply, t);
}

/* A plain toy (no sleep, no failure) named @p name over @p topic, run until it counted @p want
 * records, then freed. */
static void project_plain(const char *name, const char *topic, int64_t want, int timeout_ms)
{
    struct toy t = {0};
    tk_projector_t *p = toy_projector(&t, name, topic);
    project_count(p, name, want, timeout_ms);
    tk_projector_free(p);
}

/* The dead letters of projection @p name that match the SQL condition @p where ("": all). */
static int64_t dead_letters(const char *name, const char *where)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM dead_letters WHERE projection = $1%s%s",
             where[0] ? " AND " : "", where);
    const char *p[] = {name};
    return bb_scalar(bb_toys.db, sql, 1, p);
}

static int64_t stored_offset(const char *projection, const char *topic)
{
    const char *p[] = {projection, topic};
    return bb_scalar(bb_toys.db,
                     "SELECT sum(next_offset) FROM projection_offsets WHERE projection = $1 AND "
                     "topic = $2",
                     2, p);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void killed_projector_ends_like_an_uninterrupted_one(void **state)
{
    (void)state;
    enum { N = 3000 };
    char topic[64], u[64], k[64], app[96];
    bb_unique("bbtest_proj", topic, sizeof(topic));
    bb_unique("u", u, sizeof(u));
    bb_unique("k", k, sizeof(k));
    snprintf(app, sizeof(app), "bbtest_child_%s", k);
    bb_topic(topic, 3);
    publish_tickets(topic, N);
    const int64_t sum = (int64_t)N * (N + 1) / 2;

    /* The reference: one uninterrupted run. */
    struct toy tu = {0};
    tk_projector_t *pu = toy_projector(&tu, u, topic);
    project_count(pu, u, N, 60000);
    tk_projector_free(pu);
    assert_int_equal(bb_toys_total(u, "count"), N);
    assert_int_equal(bb_toys_total(u, "sum"), sum);

    /* The victim: a child process applying slowly, killed -9 inside a batch's transaction. */
    bb_totals_start(bb_toys.db, bb_toys.totals, k);
    char env_kv[128];
    snprintf(env_kv, sizeof(env_kv), "PGAPPNAME=%s", app);
    char *argv[] = {"test_projector", "--child-project", topic, k, bb_toys.totals, NULL};
    pid_t pid = bb_spawn_self(argv, env_kv);
    bb_count_goal_t gk = {k, 600};
    assert_true(bb_eventually(bb_toys_counted, &gk, 45000));
    const char *ap[] = {app};
    int64_t deadline = tk_mono_ms() + 10000;
    while (bb_scalar(bb_toys.db,
                     "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND "
                     "xact_start IS NOT NULL",
                     1, ap) == 0)
        assert_true(tk_mono_ms() < deadline);
    kill(pid, SIGKILL);
    int status = bb_wait(pid);
    assert_true(WIFSIGNALED(status));
    int64_t at_kill = bb_toys_total(k, "count");
    print_message("    killed with %lld of %d events committed\n", (long long)at_kill, N);
    assert_true(at_kill < N);

    /* Restart (same projection, same group): it resumes from the stored offsets. */
    struct toy tk2 = {.sums = {bb_toys.totals, k}};
    tk_projector_t *pk = projector(k, topic, sum_apply, &tk2);
    gk.want = N;
    bb_project_until(pk, bb_toys_counted, &gk, 60000);
    int applied = 0;
    tk_err_t err = {0};
    tk_projector_poll_once(pk, 1000, &applied, &err); /* nothing more may come */
    tk_projector_free(pk);
    assert_int_equal(bb_toys_total(k, "count"), bb_toys_total(u, "count"));
    assert_int_equal(bb_toys_total(k, "sum"), bb_toys_total(u, "sum"));
    assert_int_equal(stored_offset(k, topic), N);
    assert_int_equal(stored_offset(u, topic), N);
}

static void two_members_share_the_partitions(void **state)
{
    (void)state;
    enum { N = 2000 };
    char topic[64], name[64];
    bb_fresh_topic("group", topic, name, 4);
    publish_tickets(topic, N);

    /* Two members of one group (scale-out): the second one's arrival rebalances the first. The
     * second joins about 3 s in (the broker's initial rebalance delay), so the backlog must outlast
     * that: 5 ms a record, 10 s for one member alone (at 2 ms the first member, faster since its
     * batches stopped waiting for their WAL flush, once finished before the second joined). */
    bb_totals_start(bb_toys.db, bb_toys.totals, name);
    struct toy toys[2] = {{.sums = {bb_toys.totals, name}, .sleep_us = 5000},
                          {.sums = {bb_toys.totals, name}, .sleep_us = 5000}};
    bb_loop_t members[2] = {{0}};
    for (int i = 0; i < 2; i++) {
        members[i].projector = projector(name, topic, sum_apply, &toys[i]);
        bb_loop_start(&members[i]);
    }
    bb_count_goal_t g = {name, N};
    assert_true(bb_eventually(bb_toys_counted, &g, 60000));
    for (int i = 0; i < 2; i++) {
        bb_loop_stop(&members[i]);
        tk_projector_free(members[i].projector);
    }
    print_message("    member calls: %d and %d\n", toys[0].calls, toys[1].calls);
    assert_true(toys[0].calls > 0 && toys[1].calls > 0);
    assert_int_equal(bb_toys_total(name, "count"), N);
    assert_int_equal(bb_toys_total(name, "sum"), (int64_t)N * (N + 1) / 2);
    assert_int_equal(stored_offset(name, topic), N);
}

static void lost_database_connection_rolls_back_and_replays(void **state)
{
    (void)state;
    enum { N = 1500 };
    char topic[64], name[64], app[96];
    bb_unique("bbtest_dbloss", topic, sizeof(topic));
    bb_unique("l", name, sizeof(name));
    snprintf(app, sizeof(app), "bbtest_%s", name);
    bb_topic(topic, 2);
    publish_tickets(topic, N);

    struct toy t = {.sleep_us = 200};
    setenv("PGAPPNAME", app, 1); /* names the projector's first connection only */
    tk_projector_t *p = toy_projector(&t, name, topic);
    unsetenv("PGAPPNAME");
    project_count(p, name, 300, 30000);
    /* Kill its session; the next batch fails, rolls back, reconnects and replays. */
    const char *ap[] = {app};
    assert_int_equal(bb_scalar(bb_toys.db,
                               "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE application_name = $1",
                               1, ap),
                     1);
    project_count(p, name, N, 60000);
    int applied = 0;
    tk_err_t err = {0};
    tk_projector_poll_once(p, 1000, &applied, &err);
    tk_projector_free(p);
    assert_int_equal(bb_toys_total(name, "count"), N);
    assert_int_equal(bb_toys_total(name, "sum"), (int64_t)N * (N + 1) / 2);
    assert_int_equal(stored_offset(name, topic), N);
}

static void duplicates_apply_once_and_failures_replay(void **state)
{
    (void)state;
    char topic[64], d[64], e[3][TK_UUID_LEN + 1];
    bb_fresh_topic("dup", topic, d, 1);
    rd_kafka_t *producer = tk_test_producer();
    size_t len = 0;
    for (int i = 0; i < 3; i++) {
        tk_uuid_new(e[i]);
        char *payload = bb_ticket_event("ticket:created", e[i], 0, 100 * (i + 1), &len);
        publish(producer, topic, e[i], payload, len);
        if (i == 0) /* the same record again, as a relay crash between ack and delete does */
            publish(producer, topic, e[i], payload, len);
        free(payload);
    }
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);
    rd_kafka_destroy(producer);

    /* The third apply fails with a retryable conflict: that batch rolls back and is replayed. */
    struct toy t = {.emit = true, .fail_call = 3};
    tk_projector_t *p = toy_projector(&t, d, topic);
    project_count(p, d, 3, 30000);
    int applied = 0;
    tk_err_t err = {0};
    tk_projector_poll_once(p, 1000, &applied, &err);
    tk_projector_free(p);
    assert_int_equal(bb_toys_total(d, "count"), 3);
    assert_int_equal(bb_toys_total(d, "sum"), 600);
    assert_true(t.calls > 3); /* the failed batch was really replayed */
    assert_int_equal(stored_offset(d, topic), 4);
    const char *pp[] = {d};
    assert_int_equal(
        bb_scalar(bb_toys.db, "SELECT count(*) FROM processed_events WHERE projection = $1", 1, pp),
        3);
    /* Follow-up events: one per applied event, committed with the offsets. */
    for (int i = 0; i < 3; i++) {
        const char *k[] = {e[i]};
        assert_int_equal(bb_scalar(bb_toys.db,
                                   "SELECT count(*) FROM outbox WHERE key = $1 AND topic = 'users' "
                                   "AND headers->>'ce_type' = 'user:registered'",
                                   1, k),
                         1);
        bb_exec(bb_toys.db, "DELETE FROM outbox WHERE key = $1", 1,
                k); /* test data: keep it off Kafka */
    }
}

/* The same in a batch large enough to be decoded on two threads (apply.c decode_all): a poison
 * record in either half sends the batch record by record, and every good record counts once. */
static void poison_in_a_large_batch_is_dead_lettered(void **state)
{
    (void)state;
    enum { GOOD = 600 };
    char topic[64], name[64], id[TK_UUID_LEN + 1];
    bb_fresh_topic("poison_big", topic, name, 1);
    rd_kafka_t *producer = tk_test_producer();
    for (int i = 0; i < GOOD; i++) {
        if (i == 10 || i == 500) /* one in each half of the batch */
            publish(producer, topic, "poison", "{\"half\":", 9);
        size_t len = 0;
        tk_uuid_new(id);
        char *ev = bb_ticket_event("ticket:created", id, 0, 1, &len);
        publish(producer, topic, id, ev, len);
        free(ev);
    }
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);
    rd_kafka_destroy(producer);

    project_plain(name, topic, GOOD, 60000);
    assert_int_equal(bb_toys_total(name, "sum"), GOOD);
    assert_int_equal(stored_offset(name, topic), GOOD + 2);
    assert_int_equal(dead_letters(name, "error LIKE 'undecodable%' AND \"offset\" IN (10, 501)"),
                     2);
}

static void poison_records_are_dead_lettered(void **state)
{
    (void)state;
    static const char junk[] = "not json {";
    static const char bad_utf8[] = "\xff\xfe{\"id\":1}";
    char topic[64], name[64], a[TK_UUID_LEN + 1], b[TK_UUID_LEN + 1];
    bb_fresh_topic("poison", topic, name, 1);
    tk_uuid_new(a);
    tk_uuid_new(b);
    rd_kafka_t *producer = tk_test_producer();
    size_t len = 0;
    char *pa = bb_ticket_event("ticket:created", a, 0, 700, &len);
    publish(producer, topic, "poison", junk, strlen(junk));
    publish(producer, topic, a, pa, len);
    free(pa);
    char *pb = bb_ticket_event("ticket:created", b, 0, 50, &len);
    publish(producer, topic, NULL, bad_utf8, sizeof(bad_utf8) - 1);
    publish(producer, topic, b, pb, len);
    free(pb);
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);
    rd_kafka_destroy(producer);

    project_plain(name, topic, 2, 30000);
    assert_int_equal(bb_toys_total(name, "sum"), 750);
    assert_int_equal(stored_offset(name, topic), 4);
    assert_int_equal(dead_letters(name, "error LIKE 'undecodable%'"), 2);
    assert_int_equal(dead_letters(name,
                                  "\"offset\" = 0 AND payload = convert_to('not json {', 'UTF8') "
                                  "AND key = convert_to('poison', 'UTF8')"),
                     1);
    assert_int_equal(dead_letters(name,
                                  "\"offset\" = 2 AND payload = '\\xfffe7b226964223a317d'::bytea "
                                  "AND key IS NULL"),
                     1);
}

struct gap_goal {
    const char *id;
};

static bool replica_has(void *arg)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE id = $1", bb_toys.replica);
    const char *p[] = {((struct gap_goal *)arg)->id};
    return bb_scalar(bb_toys.db, sql, 1, p) == 1;
}

static void version_gap_goes_to_dead_letters_after_the_timeout(void **state)
{
    (void)state;
    char topic[64], name[64], x[TK_UUID_LEN + 1], y[TK_UUID_LEN + 1];
    bb_fresh_topic("gap", topic, name, 1);
    tk_uuid_new(x);
    tk_uuid_new(y);
    rd_kafka_t *producer = tk_test_producer();
    /* x: v0, v1, v3 (v2 never comes); then y: v0, behind x's gap in the same partition. */
    struct {
        const char *type, *id;
        int version;
    } evs[] = {{"ticket:created", x, 0},
               {"ticket:updated", x, 1},
               {"ticket:updated", x, 3},
               {"ticket:created", y, 0}};
    for (size_t i = 0; i < 4; i++) {
        size_t len = 0;
        char *payload = bb_ticket_event(evs[i].type, evs[i].id, evs[i].version, 100, &len);
        publish(producer, topic, x, payload, len);
        free(payload);
    }
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);
    rd_kafka_destroy(producer);

    tk_projector_t *p = projector(name, topic, bb_replica_apply, bb_toys.replica);
    struct gap_goal g = {y};
    int64_t t0 = tk_mono_ms();
    bb_project_until(p, replica_has, &g, 30000);
    int64_t waited = tk_mono_ms() - t0;
    tk_projector_free(p);
    print_message("    y applied %lld ms after start (gap timeout " GAP_TIMEOUT_MS " ms)\n",
                  (long long)waited);

    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT version FROM %s WHERE id = $1", bb_toys.replica);
    const char *px[] = {x};
    assert_int_equal(bb_scalar(bb_toys.db, sql, 1, px), 1); /* v3 never applied */
    assert_int_equal(dead_letters(name, "\"offset\" = 2 AND error LIKE 'version gap%'"), 1);
    assert_int_equal(dead_letters(name, ""), 1);
    assert_int_equal(stored_offset(name, topic), 4);
}

/* PROJECTOR_BATCH_BYTES = @p budget (0: unset, the default) for the projectors of this process. */
static void batch_budget(size_t budget)
{
    char v[32];
    snprintf(v, sizeof(v), "%zu", budget);
    if (budget > 0)
        setenv("PROJECTOR_BATCH_BYTES", v, 1);
    else
        unsetenv("PROJECTOR_BATCH_BYTES");
    tk_err_t err = {0};
    assert_int_equal(tk_cfg_load(TK_CFG_NEED_KAFKA | TK_CFG_NEED_DATABASE, &err), 0);
}

/* Poll @p p until @p name's count reaches @p want; returns the largest batch applied. */
static int project_batches(tk_projector_t *p, const char *name, int64_t want, int timeout_ms)
{
    int64_t deadline = tk_mono_ms() + timeout_ms;
    int largest = 0;
    while (bb_toys_total(name, "count") < want) {
        assert_true(tk_mono_ms() < deadline);
        int applied = 0;
        tk_err_t err = {0};
        assert_int_equal(tk_projector_poll_once(p, 200, &applied, &err), 0);
        if (applied > largest)
            largest = applied;
    }
    return largest;
}

/* A backlog is taken in batches whose records (payload and key) stop at the byte budget: the
 * record that reaches it is the batch's last. Records of one size make full batches exactly
 * PER_BATCH records. With a budget of one byte every record still goes, one a batch. */
static void a_batch_stops_at_its_byte_budget(void **state)
{
    (void)state;
    enum {
        N = 400,
        PER_BATCH = 8,
        MORE = 20
    }; /* MORE > PER_BATCH: some are left for the budget of 1 */
    char topic[64], name[64], id[TK_UUID_LEN + 1];
    bb_fresh_topic("budget", topic, name, 1);
    rd_kafka_t *producer = tk_test_producer();
    size_t len = 0, record = 0;
    for (int i = 0; i < N + MORE; i++) {
        tk_uuid_new(id);
        char *payload = bb_ticket_event("ticket:created", id, 0, 7, &len);
        publish(producer, topic, id, payload, len);
        free(payload);
        if (record == 0)
            record = len + TK_UUID_LEN;
        assert_int_equal(len + TK_UUID_LEN, record); /* one size: same digits, same id length */
    }
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);
    rd_kafka_destroy(producer);

    batch_budget(PER_BATCH * record);
    struct toy t = {0};
    tk_projector_t *p = toy_projector(&t, name, topic);
    int largest = project_batches(p, name, N, 60000);
    print_message("    largest batch %d records of %zu bytes (budget %zu)\n", largest, record,
                  PER_BATCH * record);
    assert_int_equal(largest, PER_BATCH);
    batch_budget(1);
    largest = project_batches(p, name, N + MORE, 30000);
    batch_budget(0);
    tk_projector_free(p);
    assert_int_equal(largest, 1);
    assert_int_equal(bb_toys_total(name, "count"), N + MORE);
    assert_int_equal(bb_toys_total(name, "sum"), 7 * (N + MORE));
    assert_int_equal(stored_offset(name, topic), N + MORE);
}

/* ---- setup and the child --------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    setenv("PROJECTOR_GAP_TIMEOUT_MS", GAP_TIMEOUT_MS, 1);
    return bb_toys_open("tk_bbtest_projector");
}

/* The victim of the kill test: project topic into the totals table slowly, until killed. */
static int child_project(const char *topic, const char *name, const char *table)
{
    tk_err_t err = {0};
    if (tk_cfg_load(TK_CFG_NEED_KAFKA | TK_CFG_NEED_DATABASE, &err) != 0)
        return 2;
    struct toy t = {.sums = {table, name}, .sleep_us = 1000};
    const char *topics[] = {topic, NULL};
    tk_projector_spec_t spec = {
        .context = CONTEXT, .name = name, .topics = topics, .apply = sum_apply, .ud = &t};
    tk_projector_t *p = tk_projector_new(&spec, &err);
    if (p == NULL) {
        fprintf(stderr, "child projector: %s\n", err.message);
        return 3;
    }
    volatile int never = 0;
    tk_projector_run(p, &never);
    return 4;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child-project") == 0)
        return child_project(argv[2], argv[3], argv[4]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(killed_projector_ends_like_an_uninterrupted_one),
        cmocka_unit_test(lost_database_connection_rolls_back_and_replays),
        cmocka_unit_test(two_members_share_the_partitions),
        cmocka_unit_test(duplicates_apply_once_and_failures_replay),
        cmocka_unit_test(poison_records_are_dead_lettered),
        cmocka_unit_test(poison_in_a_large_batch_is_dead_lettered),
        cmocka_unit_test(version_gap_goes_to_dead_letters_after_the_timeout),
        cmocka_unit_test(a_batch_stops_at_its_byte_budget),
    };
    return cmocka_run_group_tests(tests, setup, bb_toys_teardown);
}

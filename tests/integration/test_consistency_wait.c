/*
 * test_consistency_wait.c - the bounded wait of read-your-own-writes (backbone/consistency.c)
 * against the real PostgreSQL server, in a private tickets database:
 * - a wait ends, covered, as soon as a projector-like commit (read-model row + projection_offsets,
 *   whose trigger NOTIFYs) makes the read model cover it, long before its bound;
 * - a change that no notification announces is seen only at the bound: the waiter does not poll;
 * - a wait that is never covered ends at its bound, uncovered, and never hangs;
 * - the number of pending waits is bounded, and shutdown ends every pending wait.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bb_test.h"
#include "tk/consistency.h"
#include "tk/ids.h"
#include "tk/pg.h"

static const tk_consistency_model_t model = {
    .kind = TK_CONSISTENCY_TICKET,
    .context = "tickets",
    .table = "ticket_view",
    .projection = "ticket_view",
};

struct outcome {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done, covered;
    int64_t at;
};

static void on_done(void *arg, bool covered)
{
    struct outcome *o = arg;
    pthread_mutex_lock(&o->mu);
    o->done = true;
    o->covered = covered;
    o->at = tk_mono_ms();
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

static void outcome_init(struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
}

/* Wait up to @p ms for the outcome; true when it came. */
static bool outcome_wait(struct outcome *o, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&o->mu);
    while (!o->done && pthread_cond_timedwait(&o->cv, &o->mu, &until) == 0)
        ;
    bool done = o->done;
    pthread_mutex_unlock(&o->mu);
    return done;
}

static void insert_ticket(PGconn *c, const char *id, int version)
{
    char v[16];
    snprintf(v, sizeof(v), "%d", version);
    const char *params[] = {id, v};
    bb_exec(c,
            "INSERT INTO ticket_view (id, title, price_cents, user_id, version, created_at) "
            "VALUES ($1, 'wait test', 100, gen_random_uuid(), $2::integer, now())",
            2, params);
}

static void conds_of(tk_consistency_token_t *t, const char *id, int version)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(tk_consistency_token_add(t, TK_CONSISTENCY_TICKET, id, version, 0), 0);
}

/* A new ticket at version 0 in the view, and the token that waits for its version 1. The
 * connection is the caller's (PQfinish). */
static PGconn *fresh_ticket(char id[TK_UUID_LEN + 1], tk_consistency_token_t *conds)
{
    PGconn *c = bb_connect("tickets");
    tk_uuid_new(id);
    insert_ticket(c, id, 0);
    conds_of(conds, id, 1);
    return c;
}

static void woken_by_the_projector_commit(void **state)
{
    (void)state;
    char id[TK_UUID_LEN + 1];
    tk_consistency_token_t conds;
    PGconn *c = fresh_ticket(id, &conds);
    tk_err_t err = {0};
    assert_int_equal(tk_consistency_covered(c, &model, &conds, &err), 0);

    struct outcome o;
    outcome_init(&o);
    assert_int_equal(tk_consistency_wait(&model, &conds, 10000, on_done, &o), 0);
    assert_false(outcome_wait(&o, 300)); /* not covered: it waits */

    /* What a projector's batch does: the row and the offsets in one transaction, and the
     * notification right after its COMMIT. */
    const char *params[] = {id};
    bb_exec(c, "BEGIN", 0, NULL);
    bb_exec(c, "UPDATE ticket_view SET version = 1 WHERE id = $1", 1, params);
    bb_exec(c,
            "INSERT INTO projection_offsets (projection, topic, partition, next_offset) "
            "VALUES ('ticket_view', 'tickets', 0, 1) ON CONFLICT (projection, topic, partition) "
            "DO UPDATE SET next_offset = projection_offsets.next_offset + 1",
            0, NULL);
    int64_t committed = tk_mono_ms();
    const tk_pg_notice_t applied = {TK_CONSISTENCY_CHANNEL, "ticket_view"}; /* tk_tx__commit */
    assert_int_equal(tk_pg_commit_notify(c, &applied, 1, &err), 0);
    assert_true(outcome_wait(&o, 5000));
    assert_true(o.covered);
    print_message("woken %lld ms after the commit\n", (long long)(o.at - committed));
    assert_true(o.at - committed < 2000); /* far before the 10 s bound */
    assert_int_equal(tk_consistency_covered(c, &model, &conds, &err), 1);
    PQfinish(c);
}

static void unannounced_changes_wait_for_the_bound(void **state)
{
    (void)state;
    char id[TK_UUID_LEN + 1];
    tk_consistency_token_t conds;
    PGconn *c = fresh_ticket(id, &conds);
    struct outcome o;
    outcome_init(&o);
    int64_t t0 = tk_mono_ms();
    assert_int_equal(tk_consistency_wait(&model, &conds, 1500, on_done, &o), 0);
    assert_false(outcome_wait(&o, 300)); /* its first look found it uncovered */
    /* Covered, but nobody says so: no projection_offsets row, no notification. */
    const char *params[] = {id};
    bb_exec(c, "UPDATE ticket_view SET version = 1 WHERE id = $1", 1, params);
    assert_true(outcome_wait(&o, 5000));
    /* Seen by the last look at the bound, not by polling before it. */
    assert_true(o.covered);
    assert_true(o.at - t0 >= 1400);
    PQfinish(c);
}

static void never_covered_ends_at_the_bound(void **state)
{
    (void)state;
    char id[TK_UUID_LEN + 1];
    tk_uuid_new(id); /* no such ticket */
    tk_consistency_token_t conds;
    conds_of(&conds, id, 0);
    struct outcome o;
    outcome_init(&o);
    int64_t t0 = tk_mono_ms();
    assert_int_equal(tk_consistency_wait(&model, &conds, 500, on_done, &o), 0);
    assert_true(outcome_wait(&o, 5000));
    assert_false(o.covered);
    assert_true(o.at - t0 >= 450);
    assert_true(o.at - t0 < 3000);
}

static atomic_int ended, ended_covered;

static void count_done(void *arg, bool covered)
{
    (void)arg;
    atomic_fetch_add(&ended, 1);
    if (covered)
        atomic_fetch_add(&ended_covered, 1);
}

static void pending_waits_are_bounded_and_shutdown_ends_them(void **state)
{
    (void)state;
    char id[TK_UUID_LEN + 1];
    tk_uuid_new(id);
    tk_consistency_token_t conds;
    conds_of(&conds, id, 0);
    int accepted = 0;
    for (int i = 0; i < TK_CONSISTENCY_MAX_PARKED + 10; i++)
        if (tk_consistency_wait(&model, &conds, 60000, count_done, NULL) == 0)
            accepted++;
    /* Some may have ended already? No: never covered, and the bound is a minute away. */
    assert_int_equal(accepted, TK_CONSISTENCY_MAX_PARKED);
    int64_t t0 = tk_mono_ms();
    tk_consistency_shutdown();
    assert_int_equal(atomic_load(&ended), TK_CONSISTENCY_MAX_PARKED);
    assert_int_equal(atomic_load(&ended_covered), 0);
    assert_true(tk_mono_ms() - t0 < 5000);
    /* The waiter starts again on the next wait. */
    struct outcome o;
    outcome_init(&o);
    assert_int_equal(tk_consistency_wait(&model, &conds, 200, on_done, &o), 0);
    assert_true(outcome_wait(&o, 5000));
    assert_false(o.covered);
}

int main(void)
{
    bb_require_stack(true);
    char db[64];
    bb_unique("tk_cwait", db, sizeof(db));
    bb_private_database("tickets", db);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(woken_by_the_projector_commit),
        cmocka_unit_test(unannounced_changes_wait_for_the_bound),
        cmocka_unit_test(never_covered_ends_at_the_bound),
        cmocka_unit_test(pending_waits_are_bounded_and_shutdown_ends_them),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tk_consistency_shutdown();
    return rc;
}

/*
 * test_replay.c - `ticketing replay` (backbone/replay.c) on the real stack with the real tickets
 * view projector (ticket_view + ticket_history), on a private topic and a private database so
 * that no other suite's events or projectors interfere:
 *
 *   - a replay of a caught-up model is identical and swapped (new table oids, original index
 *     names, no schema left behind; a duplicate and a poison record handled as the live loop
 *     does), and the live projector continues on the new tables;
 *   - a corrupted live row is detected (nothing swapped, live model untouched), --check never
 *     swaps, and --force repairs it;
 *   - a replay while the live projector runs and events keep arriving locks the live loop,
 *     catches up to its exact offsets and swaps with zero lost or doubled events;
 *   - a stopped live projector is rebuilt to its own offsets (auto target) and resumes after;
 *   - a live projector that stays behind makes the replay give up (unless force, which moves its
 *     offsets so that it never applies those records twice);
 *   - a spec without tables, or naming a missing table, is refused before anything is created.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bb_test.h"
#include "test_replay_util.h"
#include "tk/pg.h"
#include "tk/projector.h"
#include "tk/replay.h"

#define TICKETS 200
#define UPDATES 2
#define WAIT_MS 60000

static rt_env_t env;
static rt_ticket_t tickets[TICKETS];
static tk_projector_t *live;

static int setup(void **state)
{
    (void)state;
    rt_env_init(&env, "replaytest", 6);
    tk_err_t err = {0};
    if ((live = tk_projector_new(&env.spec, &err)) == NULL) {
        fprintf(stderr, "projector: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    tk_projector_free(live);
    return rt_teardown(state);
}

/* tk_replay_run up to @p to, which must verify and swap. */
static tk_replay_result_t replayed_and_swapped(tk_replay_to_t to)
{
    tk_replay_opts_t opts = {.to = to};
    tk_replay_result_t r;
    tk_err_t err = {0};
    int rc = tk_replay_run(&env.spec, &opts, &r, &err);
    if (rc != 0)
        fprintf(stderr, "replay: %s\n", err.message);
    assert_int_equal(rc, 0);
    assert_true(r.identical);
    assert_true(r.swapped);
    return r;
}

/* A check-only run of @p opts (never forced, never swapped) finds the two models equal. */
static void assert_models_agree(tk_replay_opts_t opts)
{
    opts.force = false;
    opts.check = true;
    tk_replay_result_t r;
    tk_err_t err = {0};
    assert_int_equal(tk_replay_run(&env.spec, &opts, &r, &err), 0);
    assert_true(r.identical);
}

static int64_t count(const char *sql)
{
    return bb_scalar(env.db_conn, sql, 0, NULL);
}

static int64_t leftover_schemas(void)
{
    return count("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'replay\\_%' OR "
                 "nspname LIKE 'replaced\\_%'");
}

static char *title_of(const char *id)
{
    const char *p[] = {id};
    return rt_text(&env, "SELECT title FROM ticket_view WHERE id = $1", 1, p);
}

static void assert_title(const char *id, const char *want)
{
    char *got = title_of(id);
    assert_string_equal(got, want);
    free(got);
}

/* ---- a caught-up model: identical, swapped, and the live projector goes on ------------------- */

static void replay_of_a_caught_up_model_is_identical_and_swapped(void **state)
{
    (void)state;
    rt_publish_tickets(&env, tickets, TICKETS, UPDATES);
    /* The relay may publish a record twice; a foreign producer may publish garbage. */
    const char *p0[] = {tickets[0].id};
    rt_publish_raw(&env, "poison", "this is not an envelope");
    rt_flush(&env);
    assert_true(rt_catch_up(&env, live, WAIT_MS));
    char *dup = rt_text(
        &env, "SELECT envelope FROM ticket_history WHERE ticket_id = $1 AND version = 1", 1, p0);
    rt_publish_raw(&env, tickets[0].id, dup);
    free(dup);
    rt_flush(&env);
    assert_true(rt_catch_up(&env, live, WAIT_MS));
    const char *pn[] = {env.name};
    assert_int_equal(
        bb_scalar(env.db_conn, "SELECT count(*) FROM dead_letters WHERE projection = $1", 1, pn),
        1);

    int64_t view_oid = rt_table_oid(&env, "ticket_view");
    int64_t history_oid = rt_table_oid(&env, "ticket_history");
    tk_replay_result_t r = replayed_and_swapped(TK_REPLAY_TO_END);
    assert_false(r.to_live);
    assert_int_equal(r.records, env.published);
    assert_int_equal(r.applied, TICKETS * (1 + UPDATES));
    assert_int_equal(r.skipped, 1);      /* the duplicate */
    assert_int_equal(r.dead_letters, 1); /* the poison record */
    assert_int_equal(r.ntables, 2);
    assert_string_equal(r.tables[0].name, "ticket_view");
    assert_int_equal(r.tables[0].live_rows, TICKETS);
    assert_int_equal(r.tables[0].replay_rows, TICKETS);
    assert_int_equal(r.tables[1].replay_rows, TICKETS * (1 + UPDATES));
    assert_string_equal(r.excluded, ""); /* created_at is the event's time, not now() */

    /* New tables under the old names, with the migration's index names; nothing left over. */
    assert_true(rt_table_oid(&env, "ticket_view") != view_oid);
    assert_true(rt_table_oid(&env, "ticket_history") != history_oid);
    assert_int_equal(count("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND "
                           "tablename = 'ticket_view' AND indexname IN ('ticket_view_pkey', "
                           "'ticket_view_free_idx')"),
                     2);
    assert_int_equal(leftover_schemas(), 0);
    assert_int_equal(count("SELECT count(*) FROM ticket_view"), TICKETS);
    assert_int_equal(count("SELECT count(*) FROM ticket_view WHERE order_id IS NULL"), TICKETS / 2);
    assert_title(tickets[1].id, "ticket 1 v2");

    /* The live projector continues, on the new table. */
    rt_publish_update(&env, &tickets[1], "after the swap");
    rt_flush(&env);
    assert_true(rt_catch_up(&env, live, WAIT_MS));
    assert_title(tickets[1].id, "after the swap");
}

/* ---- a corrupted live row -------------------------------------------------------------------- */

static void a_corrupted_live_row_is_detected_and_force_repairs_it(void **state)
{
    (void)state;
    const char *p[] = {tickets[3].id};
    bb_exec(env.db_conn, "UPDATE ticket_view SET title = 'corrupted' WHERE id = $1", 1, p);
    int64_t oid = rt_table_oid(&env, "ticket_view");
    tk_replay_opts_t opts = {.to = TK_REPLAY_TO_END};
    tk_replay_result_t r;
    tk_err_t err = {0};

    assert_int_equal(tk_replay_run(&env.spec, &opts, &r, &err), TK_ECONFLICT);
    assert_false(r.identical);
    assert_false(r.swapped);
    assert_int_equal(r.tables[0].only_live, 1);
    assert_int_equal(r.tables[0].only_replay, 1);
    assert_int_equal(r.tables[1].only_live, 0); /* the history was not touched */
    assert_int_equal(r.tables[1].only_replay, 0);
    assert_int_equal(rt_table_oid(&env, "ticket_view"), oid);
    assert_title(tickets[3].id, "corrupted");
    assert_int_equal(leftover_schemas(), 0);

    /* --check compares and never swaps, even with force. */
    opts.check = true;
    opts.force = true;
    assert_int_equal(tk_replay_run(&env.spec, &opts, &r, &err), 0);
    assert_false(r.identical);
    assert_false(r.swapped);
    assert_int_equal(rt_table_oid(&env, "ticket_view"), oid);

    opts.check = false;
    int rc = tk_replay_run(&env.spec, &opts, &r, &err);
    if (rc != 0)
        fprintf(stderr, "replay --force: %s\n", err.message);
    assert_int_equal(rc, 0);
    assert_true(r.swapped);
    assert_true(rt_table_oid(&env, "ticket_view") != oid);
    assert_title(tickets[3].id, "ticket 3 v2");

    assert_models_agree(opts); /* and now the models agree again */
}

/* ---- rows on one side only ------------------------------------------------------------------ */

/* The comparison joins the two copies on their primary key: a key on one side only is a row only
 * there, a key on both sides with other columns differing is a row only on each side. */
static void rows_on_one_side_only_are_counted(void **state)
{
    (void)state;
    const char *p[] = {tickets[2].id};
    bb_exec(env.db_conn,
            "UPDATE ticket_view SET id = '00000000-0000-4000-8000-000000000014' "
            "WHERE id = $1",
            1, p);
    bb_exec(env.db_conn,
            "CREATE TEMP TABLE saved_history AS SELECT * FROM ticket_history "
            "WHERE ticket_id = $1 AND version = 0",
            1, p);
    bb_exec(env.db_conn, "DELETE FROM ticket_history WHERE ticket_id = $1 AND version = 0", 1, p);
    tk_replay_opts_t opts = {.to = TK_REPLAY_TO_END, .check = true, .force = true};
    tk_replay_result_t r;
    tk_err_t err = {0};

    assert_int_equal(tk_replay_run(&env.spec, &opts, &r, &err), 0);
    assert_false(r.identical);
    assert_false(r.swapped);
    assert_int_equal(r.tables[0].live_rows, r.tables[0].replay_rows);
    assert_int_equal(r.tables[0].only_live, 1);   /* the row under the made-up id */
    assert_int_equal(r.tables[0].only_replay, 1); /* the ticket's own */
    assert_int_equal(r.tables[1].live_rows + 1, r.tables[1].replay_rows);
    assert_int_equal(r.tables[1].only_live, 0);
    assert_int_equal(r.tables[1].only_replay, 1); /* the deleted history row */

    bb_exec(env.db_conn,
            "UPDATE ticket_view SET id = $1 "
            "WHERE id = '00000000-0000-4000-8000-000000000014'",
            1, p);
    bb_exec(env.db_conn, "INSERT INTO ticket_history SELECT * FROM saved_history", 0, NULL);
    bb_exec(env.db_conn, "DROP TABLE saved_history", 0, NULL);
    opts.force = false;
    assert_int_equal(tk_replay_run(&env.spec, &opts, &r, &err), 0);
    assert_true(r.identical);
    assert_int_equal(leftover_schemas(), 0);
}

/* ---- a replay while the live projector runs and events keep coming --------------------------- */

static volatile int live_stop;

static void *run_live(void *arg)
{
    tk_projector_run(arg, &live_stop);
    return NULL;
}

typedef struct feeder {
    rt_ticket_t *t;
    volatile int stop; /* set once the replay returned */
    int sent;
} feeder_t;

/* Updates in small bursts until told to stop (at least 200), so that the live projector is busy
 * applying them at the moment the replay locks it. */
static void *feed(void *arg)
{
    feeder_t *f = arg;
    for (f->sent = 0; !f->stop || f->sent < 200; f->sent++) {
        char title[64];
        snprintf(title, sizeof(title), "during replay %d", f->sent);
        rt_publish_update(&env, &f->t[f->sent % TICKETS], title);
        if (f->sent % 10 == 9) {
            rt_flush(&env);
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    rt_flush(&env);
    return NULL;
}

static void replay_while_the_live_projector_runs_loses_and_doubles_nothing(void **state)
{
    (void)state;
    /* A backlog the live projector is still working through when the replay starts... */
    static rt_ticket_t more[600];
    rt_publish_tickets(&env, more, 600, 1);
    rt_flush(&env);
    pthread_t live_thread, feeder_thread;
    live_stop = 0;
    pthread_create(&live_thread, NULL, run_live, live);
    /* ...and events still arriving while it runs (the feeder owns env.published meanwhile). */
    feeder_t f = {.t = tickets};
    pthread_create(&feeder_thread, NULL, feed, &f);

    tk_replay_opts_t opts = {0}; /* auto: the group has a member, so up to the log's end */
    tk_replay_result_t r;
    tk_err_t err = {0};
    int rc = tk_replay_run(&env.spec, &opts, &r, &err);
    if (rc != 0)
        fprintf(stderr, "replay: %s\n", err.message);
    f.stop = 1;
    pthread_join(feeder_thread, NULL);
    /* The live projector resumes on the new tables; let it finish before asserting anything, so
     * that a failure leaves no thread behind. */
    int64_t deadline = tk_mono_ms() + WAIT_MS;
    while (rt_stored_sum(&env) < env.published && tk_mono_ms() < deadline) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    live_stop = 1;
    pthread_join(live_thread, NULL);
    assert_int_equal(rc, 0);
    assert_false(r.to_live);
    assert_true(r.identical);
    assert_true(r.swapped);

    /* Every event exactly once. */
    assert_int_equal(rt_stored_sum(&env), env.published);
    assert_int_equal(count("SELECT count(*) FROM ticket_view"), TICKETS + 600);
    int last = (f.sent - 1) % TICKETS;
    const char *p[] = {tickets[last].id};
    char *v = rt_text(&env, "SELECT version FROM ticket_view WHERE id = $1", 1, p);
    char want[16];
    snprintf(want, sizeof(want), "%lld", (long long)tickets[last].version);
    assert_string_equal(v, want);
    free(v);
    /* One history row per event of the toy tickets: nothing doubled, nothing lost. */
    int64_t events = 0;
    for (int i = 0; i < TICKETS; i++)
        events += tickets[i].version + 1;
    assert_int_equal(count("SELECT count(*) FROM ticket_history"), events + 600 * 2);
    assert_models_agree(opts);
}

/* ---- a stopped live projector ---------------------------------------------------------------- */

static void a_stopped_projector_is_rebuilt_to_its_own_offsets(void **state)
{
    (void)state;
    tk_projector_free(live); /* leaves the group: it has no member now */
    live = NULL;
    int64_t stored = rt_stored_sum(&env);
    rt_publish_update(&env, &tickets[5], "while stopped");
    rt_flush(&env);

    tk_replay_result_t r = replayed_and_swapped(TK_REPLAY_TO_AUTO);
    assert_true(r.to_live);
    assert_int_equal(r.records, stored); /* not the record published while it was stopped */
    assert_int_equal(rt_stored_sum(&env), stored);

    tk_err_t err = {0};
    assert_non_null(live = tk_projector_new(&env.spec, &err));
    assert_true(rt_catch_up(&env, live, WAIT_MS));
    assert_title(tickets[5].id, "while stopped");
}

/* ---- a live projector that stays behind ------------------------------------------------------ */

static void a_live_projector_behind_makes_it_give_up_unless_forced(void **state)
{
    (void)state;
    /* live is a member of the group but nobody polls it: it stays where it is. */
    rt_publish_update(&env, &tickets[6], "behind 1");
    rt_publish_update(&env, &tickets[6], "behind 2");
    rt_flush(&env);
    int64_t oid = rt_table_oid(&env, "ticket_view");
    int64_t stored = rt_stored_sum(&env);
    tk_replay_opts_t opts = {.to = TK_REPLAY_TO_END, .wait_ms = 1000};
    tk_replay_result_t r;
    tk_err_t err = {0};
    assert_int_equal(tk_replay_run(&env.spec, &opts, &r, &err), TK_ECONFLICT);
    assert_true(r.behind);
    assert_false(r.swapped);
    assert_non_null(strstr(err.message, "behind"));
    assert_int_equal(rt_table_oid(&env, "ticket_view"), oid);
    assert_int_equal(rt_stored_sum(&env), stored);

    /* force: swapped, and the live offsets moved to the rebuild's, so it applies nothing twice. */
    opts.force = true;
    assert_int_equal(tk_replay_run(&env.spec, &opts, &r, &err), 0);
    assert_true(r.swapped);
    assert_true(r.behind);
    assert_int_equal(rt_stored_sum(&env), env.published);
    assert_title(tickets[6].id, "behind 2");
    const char *p[] = {tickets[6].id};
    int64_t rows =
        bb_scalar(env.db_conn, "SELECT count(*) FROM ticket_history WHERE ticket_id = $1", 1, p);
    rt_publish_update(&env, &tickets[6], "behind 3");
    rt_flush(&env);
    assert_true(rt_catch_up(&env, live, WAIT_MS));
    assert_title(tickets[6].id, "behind 3");
    assert_int_equal(
        bb_scalar(env.db_conn, "SELECT count(*) FROM ticket_history WHERE ticket_id = $1", 1, p),
        rows + 1);
    assert_models_agree(opts);
}

/* ---- refused specs --------------------------------------------------------------------------- */

static void specs_without_tables_or_with_a_missing_table_are_refused(void **state)
{
    (void)state;
    tk_projector_spec_t spec = env.spec;
    spec.tables = NULL;
    tk_replay_result_t r;
    tk_err_t err = {0};
    assert_int_equal(tk_replay_run(&spec, NULL, &r, &err), TK_EINVAL);
    assert_non_null(strstr(err.message, "not replayable"));

    static const char *const missing[] = {"ticket_view", "no_such_table", NULL};
    spec.tables = missing;
    int64_t oid = rt_table_oid(&env, "ticket_view");
    assert_int_equal(tk_replay_run(&spec, NULL, &r, &err), TK_EINVAL);
    assert_non_null(strstr(err.message, "no_such_table"));
    assert_int_equal(rt_table_oid(&env, "ticket_view"), oid);
    assert_int_equal(leftover_schemas(), 0);
}

TK_TEST_MAIN(setup, teardown,
             cmocka_unit_test(replay_of_a_caught_up_model_is_identical_and_swapped),
             cmocka_unit_test(a_corrupted_live_row_is_detected_and_force_repairs_it),
             cmocka_unit_test(rows_on_one_side_only_are_counted),
             cmocka_unit_test(replay_while_the_live_projector_runs_loses_and_doubles_nothing),
             cmocka_unit_test(a_stopped_projector_is_rebuilt_to_its_own_offsets),
             cmocka_unit_test(a_live_projector_behind_makes_it_give_up_unless_forced),
             cmocka_unit_test(specs_without_tables_or_with_a_missing_table_are_refused))

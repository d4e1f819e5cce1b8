/*
 * test_replay_big.c - the bar: "replay of 100k events produces a model identical to the
 * live one". 25 000 tickets with 4 events each (ticket:created and three ticket:updated) are
 * published to a private 6-partition topic, the real tickets view projector builds the live model
 * from them, and a replay from offset 0 must rebuild both tables identically and swap them in.
 *
 * TK_REPLAY_EVENTS sets the number of events (a multiple of 4): 20 000 by default, which keeps
 * ctest within its budget; scripts/replay-100k.sh runs the full 100 000 (the live projector alone
 * then needs well over a minute). The phases' durations are printed for the record; nothing here
 * asserts a speed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bb_test.h"
#include "test_replay_util.h"
#include "tk/replay.h"

#define UPDATES 3

static rt_env_t env;

/* Prints progress every 5 s and the duration of each phase when the next one starts. */
typedef struct watch {
    int64_t last;        /* last progress line */
    int64_t phase_start; /* when the current phase started */
    char phase[16];
} watch_t;

static void on_progress(const tk_replay_progress_t *p, void *ud)
{
    watch_t *w = ud;
    int64_t now = tk_mono_ms();
    if (strcmp(w->phase, p->phase) != 0) {
        if (w->phase[0] != '\0')
            printf("  phase %s took %.2f s\n", w->phase, (now - w->phase_start) / 1000.0);
        snprintf(w->phase, sizeof(w->phase), "%s", p->phase);
        w->phase_start = now;
    }
    if (now - w->last < 5000)
        return;
    w->last = now;
    printf("  replay %s %lld/%lld, %.0f events/s\n", p->phase, (long long)p->done,
           (long long)p->total, p->rate);
    fflush(stdout);
}

static void replay_of_a_large_log_is_identical_to_the_live_model(void **state)
{
    (void)state;
    long events = getenv("TK_REPLAY_EVENTS") ? atol(getenv("TK_REPLAY_EVENTS")) : 20000;
    int tickets = (int)(events / (1 + UPDATES));
    assert_true(tickets > 0);
    rt_ticket_t *t = calloc((size_t)tickets, sizeof(*t));
    tk_err_t err = {0};

    int64_t t0 = tk_mono_ms();
    rt_publish_tickets(&env, t, tickets, UPDATES);
    rt_flush(&env);
    int64_t t1 = tk_mono_ms();
    printf("published %lld events in %.1f s\n", (long long)env.published, (t1 - t0) / 1000.0);

    tk_projector_t *live = tk_projector_new(&env.spec, &err);
    assert_non_null(live);
    /* Within ctest's 300 s for the default size, so a stuck projector reports where it stands. */
    assert_true(rt_catch_up(&env, live, events > 20000 ? 600000 : 200000));
    int64_t t2 = tk_mono_ms();
    printf("live projector applied them in %.1f s (%.0f events/s)\n", (t2 - t1) / 1000.0,
           env.published * 1000.0 / (double)(t2 - t1 > 0 ? t2 - t1 : 1));

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    watch_t w = {.last = tk_mono_ms()};
    tk_replay_opts_t opts = {.to = TK_REPLAY_TO_END, .progress = on_progress, .progress_ud = &w};
    tk_replay_result_t r;
    int rc = tk_replay_run(&env.spec, &opts, &r, &err);
    int64_t t3 = tk_mono_ms();
    printf("  phase %s took %.2f s\n", w.phase, (t3 - w.phase_start) / 1000.0);
    getrusage(RUSAGE_SELF, &ru1);
    /* The replay's own CPU (all its threads), a figure the machine's load does not inflate. */
    printf("  replay CPU: %.2f s user, %.2f s system\n",
           (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
               (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6,
           (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
               (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6);
    if (rc != 0)
        fprintf(stderr, "replay: %s\n", err.message);
    printf("replay rebuilt, verified and swapped them in %.1f s (%.0f events/s overall)\n",
           (t3 - t2) / 1000.0, r.records * 1000.0 / (double)(t3 - t2 > 0 ? t3 - t2 : 1));
    for (int i = 0; i < r.ntables; i++)
        printf("  %s: live %lld rows, rebuilt %lld rows, %lld/%lld differ\n", r.tables[i].name,
               (long long)r.tables[i].live_rows, (long long)r.tables[i].replay_rows,
               (long long)r.tables[i].only_live, (long long)r.tables[i].only_replay);
    assert_int_equal(rc, 0);
    assert_int_equal(r.records, env.published);
    assert_int_equal(r.applied, env.published);
    assert_true(r.identical);
    assert_true(r.swapped);
    assert_int_equal(r.tables[0].replay_rows, tickets);
    assert_int_equal(r.tables[1].replay_rows, env.published);
    assert_int_equal(bb_scalar(env.db_conn, "SELECT count(*) FROM ticket_view", 0, NULL), tickets);
    assert_int_equal(
        bb_scalar(env.db_conn, "SELECT count(*) FROM ticket_view WHERE version = 3", 0, NULL),
        tickets);
    tk_projector_free(live);
    free(t);
}

static int setup(void **state)
{
    (void)state;
    rt_env_init(&env, "replaybig", 6);
    return 0;
}

TK_TEST_MAIN(setup, rt_teardown,
             cmocka_unit_test(replay_of_a_large_log_is_identical_to_the_live_model))

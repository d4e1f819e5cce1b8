/*
 * test_expiration_kill.c - kill -9 of the scheduler with 1,000 pending expirations: a child
 * process runs the scheduler on private topics, is killed with SIGKILL once part of the orders
 * have expired, and a new child takes over. Every one of the 1,000 orders must then have at least
 * one expiration:complete (duplicates are allowed: orders ignores them), none before its due
 * time, and both groups must end with nothing pending.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>

#include "test_expiration_util.h"
#include "tk/ids.h"
#include "tk_test.h"

#define N 1000
#define WAIT_MS 60000

static char ids[N][TK_UUID_LEN + 1];
static int64_t due[N];

static int64_t due_of(const char *id)
{
    for (int i = 0; i < N; i++)
        if (strcmp(ids[i], id) == 0)
            return due[i];
    return -1;
}

static void every_order_expires_once_or_more_across_a_kill_9(void **state)
{
    (void)state;
    xt_run_t x;
    xt_run_start(&x, 3, false);
    xt_collector_t *col = x.col;

    pid_t first = xt_child_start(&x.names);
    assert_true(first > 0);

    /* Due times spread over 3 s, starting 2 s from now. */
    xt_publish_orders(x.names.orders, N, ids, due, tk_now_ms() + 2000, 3000);

    /* Mid-way: some have expired, most are pending. */
    xt_collect(col, 150, WAIT_MS);
    assert_true(xt_distinct(col) >= 150);
    assert_int_equal(kill(first, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(first, &status, 0), first);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    size_t at_kill = xt_distinct(col);
    assert_true(at_kill < N);

    pid_t second = xt_child_start(&x.names);
    assert_true(second > 0);
    xt_collect(col, N, WAIT_MS);
    assert_int_equal(xt_distinct(col), N);

    size_t n = 0;
    const xt_fired_t *all = xt_collected(col, &n);
    for (size_t i = 0; i < n; i++) {
        assert_true(all[i].valid);
        int64_t d = due_of(all[i].order_id);
        assert_true(d >= 0);              /* one of ours */
        assert_true(all[i].time_ms >= d); /* never before its due time */
    }
    for (int i = 0; i < N; i++)
        assert_non_null(xt_find(col, ids[i]));
    print_message("expired %d orders: %zu before the kill, %zu records in all (%zu duplicates)\n",
                  N, at_kill, n, n - (size_t)N);

    /* The new child committed everything: nothing is pending in either group. */
    tk_expiration_status_t st;
    tk_err_t err = {0};
    int64_t deadline = tk_mono_ms() + WAIT_MS;
    do {
        assert_int_equal(tk_expiration_status_opts(&x.opts, &st, &err), 0);
    } while ((st.pending != 0 || st.intake_lag != 0) && tk_mono_ms() < deadline);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.intake_lag, 0);

    /* A clean stop on SIGTERM. */
    assert_int_equal(xt_child_stop(second), 0);
    assert_int_equal(xt_run_stop(&x), 0);
}

/*
 * The takeover window: a child is killed (by itself, XT_CRASH_BEFORE_COMMIT) right after the
 * broker acked what one batch of @p stage produced and before the batch's offsets were
 * committed; a second child takes over from the committed offsets. Without transactions (produce
 * and commit in one) the second child produced that batch again: every order in it fired twice.
 */
#define TAKEOVER_N 200

static void exactly_once_across_a_takeover_before_commit(const char *stage)
{
    xt_run_t x;
    xt_run_start(&x, 3, false);
    xt_collector_t *col = x.col;

    assert_int_equal(setenv("XT_CRASH_BEFORE_COMMIT", stage, 1), 0);
    pid_t first = xt_child_start(&x.names);
    assert_int_equal(unsetenv("XT_CRASH_BEFORE_COMMIT"), 0);
    assert_true(first > 0);

    xt_publish_orders(x.names.orders, TAKEOVER_N, ids, due, tk_now_ms() + 2000, 1000);

    /* The first child dies at its first batch of that stage. */
    int status = 0;
    int64_t deadline = tk_mono_ms() + WAIT_MS;
    pid_t got = 0;
    while ((got = waitpid(first, &status, WNOHANG)) == 0 && tk_mono_ms() < deadline)
        usleep(50 * 1000);
    assert_int_equal(got, first);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    pid_t second = xt_child_start(&x.names);
    assert_true(second > 0);
    xt_collect(col, TAKEOVER_N, WAIT_MS);
    assert_int_equal(xt_distinct(col), TAKEOVER_N);
    xt_collect(col, 0, 3000); /* a second copy would come at the same due time */
    size_t n = 0;
    const xt_fired_t *all = xt_collected(col, &n);
    for (size_t i = 0; i < n; i++)
        assert_true(all[i].valid && all[i].time_ms >= due_of(all[i].order_id));
    print_message("%s crash before commit: %zu expiration:complete for %d orders\n", stage, n,
                  TAKEOVER_N);
    assert_int_equal(n, TAKEOVER_N); /* exactly once each */

    assert_int_equal(xt_child_stop(second), 0);
    assert_int_equal(xt_run_stop(&x), 0);
}

static void intake_takeover_before_commit_fires_each_order_once(void **state)
{
    (void)state;
    exactly_once_across_a_takeover_before_commit("intake");
}

int main(int argc, char **argv)
{
    xt_child_main(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_order_expires_once_or_more_across_a_kill_9),
        cmocka_unit_test(intake_takeover_before_commit_fires_each_order_once),
    };
    return cmocka_run_group_tests(tests, tk_test_stack_setup, NULL);
}

/*
 * test_backoff.c - the retry delay doubles up to its cap and never past it (issue 13: app/workers.c
 * and app/run.c doubled 3,200 ms to 6,400 ms before capping at 5,000 ms), and a nap ends when
 * its stop flag is set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "tk_test_main.h"

#include "tk/backoff.h"
#include "tk/ids.h"

static void doubles_up_to_the_cap_never_past_it(void **state)
{
    (void)state;
    tk_backoff_t b;
    tk_backoff_init(&b, 200, 5000);
    static const int want[] = {200, 400, 800, 1600, 3200, 5000, 5000, 5000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(tk_backoff_next(&b), want[i]);
    tk_backoff_reset(&b);
    assert_int_equal(tk_backoff_next(&b), 200);
}

static void caps_that_are_not_powers_of_two(void **state)
{
    (void)state;
    tk_backoff_t b;
    tk_backoff_init(&b, 100, 350);
    assert_int_equal(tk_backoff_next(&b), 100);
    assert_int_equal(tk_backoff_next(&b), 200);
    assert_int_equal(tk_backoff_next(&b), 350);
    assert_int_equal(tk_backoff_next(&b), 350);
    tk_backoff_init(&b, 250, 10000);
    int last = 0;
    for (int i = 0; i < 40; i++) { /* no overflow however long it fails */
        int d = tk_backoff_next(&b);
        assert_true(d >= last && d <= 10000);
        last = d;
    }
    assert_int_equal(last, 10000);
    tk_backoff_init(&b, 500, 100); /* a cap below the first delay: the first delay */
    assert_int_equal(tk_backoff_next(&b), 500);
    assert_int_equal(tk_backoff_next(&b), 500);
}

static void a_nap_ends_on_stop(void **state)
{
    (void)state;
    volatile int stop = 1;
    int64_t t0 = tk_mono_ms();
    assert_true(tk_nap(60000, &stop));
    assert_true(tk_mono_ms() - t0 < 1000);
    stop = 0;
    assert_false(tk_nap(30, &stop));
    assert_false(tk_nap(30, NULL));
}

/* A scripted component: fails twice, then is healthy (resets the delay) and stops on its 4th life.
 */
struct lives {
    int lived, failed;
    int delay_seen[4]; /* the delay's next_ms as each life begins */
    char last_error[sizeof(((tk_err_t *)0)->message)];
};

static int scripted_life(void *arg, volatile int *stop, tk_backoff_t *delay, tk_err_t *err)
{
    struct lives *l = arg;
    l->delay_seen[l->lived++] = delay->next_ms;
    if (l->lived <= 2)
        return tk_err_set(err, TK_EUNAVAIL, NULL, "down %d", l->lived);
    tk_backoff_reset(delay);
    if (l->lived == 4)
        *stop = 1;
    return 0;
}

static void scripted_failed(void *arg, const tk_err_t *err)
{
    struct lives *l = arg;
    l->failed++;
    snprintf(l->last_error, sizeof(l->last_error), "%s", err->message);
}

static void supervise_restarts_after_failures_until_stop(void **state)
{
    (void)state;
    struct lives l = {0};
    tk_backoff_t delay;
    tk_backoff_init(&delay, 1, 4);
    volatile int stop = 0;
    tk_supervise(scripted_life, scripted_failed, &l, &delay, &stop);
    assert_int_equal(l.lived, 4);  /* a life that returns 0 runs again at once, until stop */
    assert_int_equal(l.failed, 2); /* each failure is reported once, before its nap */
    assert_string_equal(l.last_error, "down 2");
    assert_int_equal(l.delay_seen[0], 1); /* the naps took 1 then 2 ms ... */
    assert_int_equal(l.delay_seen[1], 2);
    assert_int_equal(l.delay_seen[2], 4);
    assert_int_equal(l.delay_seen[3], 1); /* ... and the healthy life reset the delay */
    stop = 1;
    tk_supervise(scripted_life, scripted_failed, &l, &delay, &stop);
    assert_int_equal(l.lived, 4); /* stopped before: no life at all */
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(doubles_up_to_the_cap_never_past_it),
             cmocka_unit_test(caps_that_are_not_powers_of_two),
             cmocka_unit_test(a_nap_ends_on_stop),
             cmocka_unit_test(supervise_restarts_after_failures_until_stop))

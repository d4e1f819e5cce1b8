/* test_command.c - the parts of the command pipeline that need no server: the stale marker, a
 * reaction's apply result, and the refusal to run without a usable connection (the body is then
 * never called). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <string.h>

#include "tk/command.h"
#include "tk/pg.h"
#include "tk/projector.h"

static int body_must_not_run(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    (void)tx;
    (void)err;
    (*(int *)arg)++;
    return 0;
}

static void stale_is_a_retryable_conflict(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_int_equal(tk_command_stale(&err, "ticket", "0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b"),
                     TK_ECONFLICT);
    assert_true(tk_pg_retryable(&err));
    assert_non_null(strstr(err.message, "ticket 0b1f6a3e"));
    assert_int_equal(tk_command_stale(NULL, NULL, NULL), TK_ECONFLICT);
}

static void no_connection_is_unavailable_and_body_never_runs(void **state)
{
    (void)state;
    tk_err_t err = {0};
    int calls = 0;
    assert_int_equal(tk_command_run(NULL, "req-1", body_must_not_run, &calls, &err), TK_EUNAVAIL);
    assert_int_equal(calls, 0);
    assert_int_equal(tk_command_run(NULL, NULL, body_must_not_run, &calls, NULL), TK_EUNAVAIL);
    assert_int_equal(calls, 0);
}

static void reaction_result_applies_skips_or_fails(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_int_equal(tk_command_reaction_result(1, &err), TK_APPLY_OK);
    assert_int_equal(tk_command_reaction_result(0, &err), TK_APPLY_SKIP);
    tk_err_set(&err, TK_ENOTFOUND, NULL, "Not Found");
    assert_int_equal(tk_command_reaction_result(TK_ENOTFOUND, &err), TK_APPLY_SKIP);
    assert_int_equal(err.code, 0); /* a skip leaves no error behind */
    tk_err_set(&err, TK_EUNAVAIL, NULL, "down");
    assert_int_equal(tk_command_reaction_result(TK_EUNAVAIL, &err), TK_EUNAVAIL);
    assert_int_equal(err.code, TK_EUNAVAIL);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(stale_is_a_retryable_conflict),
             cmocka_unit_test(reaction_result_applies_skips_or_fails),
             cmocka_unit_test(no_connection_is_unavailable_and_body_never_runs))

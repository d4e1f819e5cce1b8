/* test_pg.c - the SQLSTATE -> TK_E* mapping of tk/pg.h and its retry marker; no server needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <string.h>

#include "tk/pg.h"

static void unique_violation_is_a_conflict_naming_the_constraint(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_int_equal(tk_pg_error_map("23505", "users_email_key",
                                     "duplicate key value violates unique constraint", true, &err),
                     TK_ECONFLICT);
    assert_int_equal(err.code, TK_ECONFLICT);
    assert_string_equal(err.field, "users_email_key");
    assert_false(tk_pg_retryable(&err));
    assert_int_equal(tk_pg_error_map("23505", NULL, "dup", true, &err), TK_ECONFLICT);
    assert_string_equal(err.field, "");
}

static void serialization_failures_and_deadlocks_are_retryable(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_int_equal(tk_pg_error_map("40001", NULL, "could not serialize access", true, &err),
                     TK_ECONFLICT);
    assert_true(tk_pg_retryable(&err));
    assert_int_equal(tk_pg_error_map("40P01", NULL, "deadlock detected", true, &err), TK_ECONFLICT);
    assert_true(tk_pg_retryable(&err));
    assert_string_equal(err.message, "deadlock detected");
}

static void lost_connections_are_unavailable(void **state)
{
    (void)state;
    static const char *const states[] = {"08006", "08001", "08003", "57P01",
                                         "57P02", "57P03", "53300"};
    tk_err_t err = {0};
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        assert_int_equal(tk_pg_error_map(states[i], NULL, "gone", true, &err), TK_EUNAVAIL);
        assert_false(tk_pg_retryable(&err));
    }
    /* No SQLSTATE (a client-side failure) on a broken connection. */
    assert_int_equal(tk_pg_error_map(NULL, NULL, "server closed the connection", false, &err),
                     TK_EUNAVAIL);
    /* Any error on a connection that broke meanwhile. */
    assert_int_equal(tk_pg_error_map("42P01", NULL, "x", false, &err), TK_EUNAVAIL);
}

static void other_errors_are_internal_with_the_server_message(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_int_equal(
        tk_pg_error_map("42P01", NULL, "relation \"tickets\" does not exist", true, &err),
        TK_EINTERNAL);
    assert_non_null(strstr(err.message, "42P01"));
    assert_non_null(strstr(err.message, "relation \"tickets\" does not exist"));
    assert_int_equal(tk_pg_error_map(NULL, NULL, NULL, true, &err), TK_EINTERNAL);
    assert_int_equal(tk_pg_error_map("23503", "fk", "violates foreign key", true, &err),
                     TK_EINTERNAL);
    assert_false(tk_pg_retryable(&err));
}

static void null_handles_are_safe(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_true(tk_pg_broken(NULL));
    assert_false(tk_pg_retryable(NULL));
    assert_null(tk_pg_exec(NULL, "SELECT 1", 0, NULL, &err));
    assert_int_equal(err.code, TK_EUNAVAIL);
    assert_int_equal(tk_pg_run(NULL, "SELECT 1", 0, NULL, NULL, &err), TK_EUNAVAIL);
    assert_int_equal(tk_pg_rollback(NULL, NULL), TK_EUNAVAIL);
    assert_int_equal(tk_pg_error_map("23505", "c", "m", true, NULL), TK_ECONFLICT);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(unique_violation_is_a_conflict_naming_the_constraint),
             cmocka_unit_test(serialization_failures_and_deadlocks_are_retryable),
             cmocka_unit_test(lost_connections_are_unavailable),
             cmocka_unit_test(other_errors_are_internal_with_the_server_message),
             cmocka_unit_test(null_handles_are_safe))

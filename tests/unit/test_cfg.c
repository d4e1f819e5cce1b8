/*
 * test_cfg.c - configuration loads once and refuses malformed numbers (issue 13): the HTTP, SSE,
 * PostgreSQL and pruning bounds used to be read where they were used, and pg.c fell back to its
 * default on a malformed value without a word.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <stdlib.h>
#include <string.h>

#include "tk/cfg.h"

static int load(void)
{
    tk_err_t err = {0};
    return tk_cfg_load(0, &err);
}

/* Each variable, malformed or out of range, is refused with its name. */
static void malformed_bounds_are_refused(void **state)
{
    (void)state;
    static const char *const names[] = {
        "HTTP_QUEUE_MAX",
        "HTTP_DEADLINE_MS",
        "HTTP_MAX_CONNECTIONS",
        "SSE_MAX_STREAMS",
        "SSE_MAX_STREAMS_PER_USER",
        "SSE_MAX_STREAMS_PER_ORDER",
        "PG_CONNECT_TIMEOUT_S",
        "PG_STATEMENT_TIMEOUT_MS",
        "PROCESSED_EVENTS_PRUNE_MS",
        "PROCESSED_EVENTS_KEEP_OFFSETS",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        static const char *const bad[] = {"12x", "-1", "99999999999"};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            setenv(names[i], bad[k], 1);
            tk_err_t err = {0};
            assert_int_equal(tk_cfg_load(0, &err), TK_EINVAL);
            assert_string_equal(err.field, names[i]);
            assert_non_null(strstr(err.message, names[i]));
        }
        unsetenv(names[i]);
    }
    assert_int_equal(load(), 0);
}

static void values_are_read_and_defaults_come_back(void **state)
{
    (void)state;
    setenv("PG_STATEMENT_TIMEOUT_MS", "300", 1);
    setenv("HTTP_MAX_CONNECTIONS", "40", 1);
    setenv("HTTP_QUEUE_MAX", "7", 1);
    assert_int_equal(load(), 0);
    assert_int_equal(tk_cfg()->pg_statement_timeout_ms, 300);
    assert_int_equal(tk_cfg()->http_queue_max, 7);
    assert_int_equal(tk_cfg()->http_max_connections, 40);
    assert_int_equal(tk_cfg()->sse_max_streams, 20); /* half the connections by default */
    unsetenv("PG_STATEMENT_TIMEOUT_MS");
    unsetenv("HTTP_MAX_CONNECTIONS");
    unsetenv("HTTP_QUEUE_MAX");
    assert_int_equal(load(), 0); /* a reload starts from the defaults */
    assert_int_equal(tk_cfg()->pg_statement_timeout_ms, 30000);
    assert_int_equal(tk_cfg()->http_queue_max, 128);
    assert_int_equal(tk_cfg()->pg_connect_timeout_s, 5);
    assert_int_equal(tk_cfg()->prune_every_ms, 60000);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(malformed_bounds_are_refused),
             cmocka_unit_test(values_are_read_and_defaults_come_back))

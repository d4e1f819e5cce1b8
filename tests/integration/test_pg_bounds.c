/*
 * test_pg_bounds.c - every PostgreSQL connection is bounded in time (issue 11 item 10): a
 * statement past PG_STATEMENT_TIMEOUT_MS is cancelled by the server, the socket carries TCP
 * keepalives, and a server that accepts TCP but never answers fails the connect within
 * PG_CONNECT_TIMEOUT_S. Real PostgreSQL from scripts/stack.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/pg.h"
#include "tk_test.h"

/* The bounds are configuration: loaded once, so reloaded after each change here. */
static void cfg_reload(void)
{
    tk_err_t err = {0};
    assert_int_equal(tk_cfg_load(0, &err), 0);
}

static void statements_are_cut_at_the_timeout(void **state)
{
    (void)state;
    setenv("PG_STATEMENT_TIMEOUT_MS", "300", 1);
    cfg_reload();
    tk_err_t err = {0};
    PGconn *c = tk_pg_connect_server(&err);
    assert_non_null(c);
    int64_t t0 = tk_mono_ms();
    PGresult *res = tk_pg_exec(c, "SELECT pg_sleep(3)", 0, NULL, &err);
    int64_t ms = tk_mono_ms() - t0;
    assert_null(res);
    assert_true(ms < 2500);
    assert_non_null(strstr(err.message, "statement timeout"));
    PQfinish(c);
    unsetenv("PG_STATEMENT_TIMEOUT_MS");
    cfg_reload();
}

static void sockets_have_keepalives(void **state)
{
    (void)state;
    tk_err_t err = {0};
    PGconn *c = tk_pg_connect_server(&err);
    assert_non_null(c);
    int fd = PQsocket(c), on = 0, idle = 0;
    socklen_t len = sizeof(on);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &len), 0);
    assert_int_equal(on, 1);
    len = sizeof(idle);
    if (getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len) == 0) /* TCP, not a unix socket */
        assert_int_equal(idle, 30);
    PQfinish(c);
}

static void a_silent_server_fails_the_connect(void **state)
{
    (void)state;
    int port = 0;
    int hole = tk_test_silent_listener(&port);
    char url[128];
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/x", port);
    setenv("DATABASE_URL_ORDERS", url, 1);
    setenv("PG_CONNECT_TIMEOUT_S", "1", 1);
    cfg_reload();
    tk_err_t err = {0};
    int64_t t0 = tk_mono_ms();
    PGconn *c = tk_pg_connect("orders", &err);
    assert_null(c);
    assert_int_equal(err.code, TK_EUNAVAIL);
    assert_true(tk_mono_ms() - t0 < 4000);
    unsetenv("DATABASE_URL_ORDERS");
    unsetenv("PG_CONNECT_TIMEOUT_S");
    cfg_reload();
    close(hole);
}

int main(void)
{
    tk_test_require_stack();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(statements_are_cut_at_the_timeout),
        cmocka_unit_test(sockets_have_keepalives),
        cmocka_unit_test(a_silent_server_fails_the_connect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_http_reconnect.c - a server's pooled database connection that PostgreSQL closed while it
 * sat idle (a fast restart, pg_terminate_backend: "terminating connection due to administrator
 * command") is replaced before the next request uses it, so that request succeeds instead of
 * answering 503 "database connection lost" (found by the chaos suite, tests/chaos, after its
 * PostgreSQL restart). One HTTP worker, so the second request surely meets the closed connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bb_test.h"
#include "tk/ids.h"

static int get(int port, char *body, size_t cap)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "curl -s -o /dev/stderr -w '%%{http_code}' "
             "http://127.0.0.1:%d/api/tickets 2>/tmp/tk_reconnect_%d.body",
             port, port);
    FILE *f = popen(cmd, "r");
    int code = 0;
    if (fscanf(f, "%d", &code) != 1)
        code = 0;
    pclose(f);
    snprintf(cmd, sizeof(cmd), "/tmp/tk_reconnect_%d.body", port);
    FILE *b = fopen(cmd, "r");
    size_t n = b ? fread(body, 1, cap - 1, b) : 0;
    body[n] = '\0';
    if (b)
        fclose(b);
    unlink(cmd);
    return code;
}

static void terminated_connection_is_replaced(void **state)
{
    (void)state;
    char body[4096];
    int port = 0;
    pid_t pid = bb_serve_start(TK_TICKETING_BIN, "tickets", "HTTP_WORKERS=1", &port);
    int64_t deadline = tk_mono_ms() + 30000;
    int code = 0;
    while ((code = get(port, body, sizeof(body))) != 200 && tk_mono_ms() < deadline)
        usleep(200 * 1000);
    assert_int_equal(code, 200);

    /* PostgreSQL closes the worker's connection, as a fast shutdown does. */
    PGconn *db = bb_connect("tickets");
    assert_true(bb_scalar(db,
                          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                          0, NULL) >= 1);
    PQfinish(db);
    usleep(300 * 1000);
    code = get(port, body, sizeof(body));
    kill(pid, SIGTERM);
    if (code != 200)
        print_error("after the termination: %d %s\n", code, body);
    assert_int_equal(code, 200);
}

int main(void)
{
    bb_require_stack(true);
    bb_private_database("tickets", "tk_bbtest_http_reconnect");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(terminated_connection_is_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

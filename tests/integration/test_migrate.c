/*
 * test_migrate.c - `ticketing migrate` against the real PostgreSQL server: migrating twice (and
 * from two threads at once) succeeds, every context database then has the backbone tables and
 * the outbox trigger, each migration is recorded once, and the trigger notifies LISTEN outbox
 * only for committed inserts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "bb_test.h"
#include "tk/migrate.h"
#include "tk/pg.h"

static const char *const contexts[] = {"auth", "tickets", "orders", "payments", "expiration"};

static void *migrate_thread(void *arg)
{
    tk_err_t err = {0};
    *(int *)arg = tk_migrate_all(&err);
    if (*(int *)arg != 0)
        print_error("tk_migrate_all: %s\n", err.message);
    return NULL;
}

static void migrate_is_idempotent_and_concurrent_safe(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_int_equal(tk_migrate_all(&err), 0);
    assert_int_equal(tk_migrate_all(&err), 0);
    int applied = -1;
    assert_int_equal(tk_migrate_context("tickets", &applied, &err), 0);
    assert_int_equal(applied, 0); /* nothing left to apply */

    pthread_t a, b;
    int ra = -1, rb = -1;
    pthread_create(&a, NULL, migrate_thread, &ra);
    pthread_create(&b, NULL, migrate_thread, &rb);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    assert_int_equal(ra, 0);
    assert_int_equal(rb, 0);
}

static void every_context_has_the_backbone(void **state)
{
    (void)state;
    static const char *const tables[] = {"outbox", "projection_offsets", "processed_events",
                                         "dead_letters", "schema_migrations"};
    for (size_t i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++) {
        PGconn *c = bb_connect(contexts[i]);
        for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
            const char *p[] = {tables[t]};
            assert_int_equal(bb_scalar(c,
                                       "SELECT count(*) FROM pg_tables WHERE tablename = $1 AND "
                                       "schemaname = 'public'",
                                       1, p),
                             1);
        }
        assert_int_equal(bb_scalar(c,
                                   "SELECT count(*) FROM schema_migrations WHERE name = "
                                   "'common/001_backbone.sql'",
                                   0, NULL),
                         1);
        assert_int_equal(bb_scalar(c,
                                   "SELECT count(*) FROM pg_trigger WHERE tgname = "
                                   "'outbox_notify' AND NOT tgisinternal",
                                   0, NULL),
                         1);
        PQfinish(c);
    }
}

static void unknown_context_is_rejected(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_int_equal(tk_migrate_context("nope", NULL, &err), TK_EINVAL);
}

/* True when a NOTIFY on channel outbox is waiting on c within ms. */
static bool notified(PGconn *c, int ms)
{
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    bool any = false;
    PQconsumeInput(c);
    for (PGnotify *n; (n = PQnotifies(c)) != NULL; PQfreemem(n))
        any |= strcmp(n->relname, "outbox") == 0;
    if (any)
        return true;
    if (poll(&pfd, 1, ms) > 0) {
        PQconsumeInput(c);
        for (PGnotify *n; (n = PQnotifies(c)) != NULL; PQfreemem(n))
            any |= strcmp(n->relname, "outbox") == 0;
    }
    return any;
}

static void outbox_trigger_notifies_on_commit_only(void **state)
{
    (void)state;
    char topic[64];
    bb_unique("bbtest_notify", topic, sizeof(topic));
    bb_topic(topic, 1); /* a relay running meanwhile could publish the row: let it succeed */
    PGconn *listener = bb_connect("expiration");
    PGconn *writer = bb_connect("expiration");
    bb_exec(listener, "LISTEN outbox", 0, NULL);
    const char *p[] = {topic};
    const char *insert = "INSERT INTO outbox (topic, key, payload) VALUES ($1, 'k', 'x')";

    bb_exec(writer, "BEGIN", 0, NULL);
    bb_exec(writer, insert, 1, p);
    bb_exec(writer, "ROLLBACK", 0, NULL);
    assert_false(notified(listener, 300));

    bb_exec(writer, "BEGIN", 0, NULL);
    bb_exec(writer, insert, 1, p);
    assert_false(notified(listener, 200)); /* not before commit */
    bb_exec(writer, "COMMIT", 0, NULL);
    assert_true(notified(listener, 5000));

    bb_exec(writer, "DELETE FROM outbox WHERE topic = $1", 1, p);
    PQfinish(writer);
    PQfinish(listener);
}

int main(void)
{
    bb_require_stack(false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(migrate_is_idempotent_and_concurrent_safe),
        cmocka_unit_test(every_context_has_the_backbone),
        cmocka_unit_test(unknown_context_is_rejected),
        cmocka_unit_test(outbox_trigger_notifies_on_commit_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

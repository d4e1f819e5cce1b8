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

#include <stdio.h>

#include "bb_test.h"
#include "ev_expiration.h"
#include "tk/command.h"
#include "tk/ids.h"
#include "tk/tx.h"
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
        /* No trigger notifies from inside a transaction (common/004): see the last case. */
        assert_int_equal(bb_scalar(c,
                                   "SELECT count(*) FROM pg_trigger WHERE tgrelid IN "
                                   "('outbox'::regclass, 'projection_offsets'::regclass) AND "
                                   "NOT tgisinternal",
                                   0, NULL),
                         0);
        PQfinish(c);
    }
}

static void unknown_context_is_rejected(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_int_equal(tk_migrate_context("nope", NULL, &err), TK_EINVAL);
}

/* True when a NOTIFY on @p channel (with @p payload unless NULL) is waiting on c within ms. */
static bool notified(PGconn *c, const char *channel, const char *payload, int ms)
{
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    bool any = false;
    for (int round = 0; round < 2 && !any; round++) {
        if (round == 1 && poll(&pfd, 1, ms) <= 0)
            break;
        PQconsumeInput(c);
        for (PGnotify *n; (n = PQnotifies(c)) != NULL; PQfreemem(n))
            any |= strcmp(n->relname, channel) == 0 &&
                   (payload == NULL || strcmp(n->extra, payload) == 0);
    }
    return any;
}

typedef struct emit_arg {
    const char *subject;
    bool fail; /* emit, then fail the body: the command rolls back */
} emit_arg_t;

static int emit_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    const emit_arg_t *a = arg;
    ev_expiration_complete_t e = {{0}};
    snprintf(e.order_id, sizeof(e.order_id), "%s", a->subject);
    int rc = tk_tx_emit(tx, "expiration:complete", a->subject, 1,
                        ev_expiration_complete_to_json(&e), err);
    if (rc == 0 && a->fail)
        rc = tk_err_set(err, TK_EINVAL, "", "the body refuses");
    return rc;
}

/* The relay is woken by every command that commits outbox rows, and by no other: the NOTIFY goes
 * out right after the COMMIT (tk_tx__commit), not from a trigger inside the transaction, which
 * would make PostgreSQL serialize every notifying commit of the cluster. A private database: no
 * relay publishes these rows. */
static void a_committed_command_wakes_the_relay_after_its_commit(void **state)
{
    (void)state;
    char db[64], subject[TK_UUID_LEN + 1];
    bb_unique("tk_notify", db, sizeof(db));
    bb_private_database("expiration", db);
    tk_uuid_new(subject);
    PGconn *listener = bb_connect("expiration");
    PGconn *writer = bb_connect("expiration");
    bb_exec(listener, "LISTEN outbox", 0, NULL);
    tk_err_t err = {0};

    emit_arg_t fails = {subject, true};
    assert_int_equal(tk_command_run(writer, NULL, emit_body, &fails, &err), TK_EINVAL);
    assert_false(notified(listener, "outbox", NULL, 300));

    emit_arg_t emits = {subject, false};
    assert_int_equal(tk_command_run(writer, NULL, emit_body, &emits, &err), 0);
    assert_true(notified(listener, "outbox", NULL, 5000));
    assert_int_equal(bb_scalar(writer, "SELECT count(*) FROM outbox", 0, NULL), 1);

    /* A plain insert wakes nobody any more: the trigger is gone. */
    bb_exec(writer, "INSERT INTO outbox (topic, key, payload) VALUES ('t', 'k', 'x')", 0, NULL);
    assert_false(notified(listener, "outbox", NULL, 300));
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
        cmocka_unit_test(a_committed_command_wakes_the_relay_after_its_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

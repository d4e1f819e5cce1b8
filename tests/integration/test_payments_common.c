/*
 * test_payments_common.c - shared by the payments integration tests (#included, not compiled on
 * its own): the payments context running in-process (HTTP server, the orders replica projector
 * and the outbox relay in threads) against the real broker and PostgreSQL, plus helpers that
 * inject orders events the way the orders context would publish them and read the payments
 * database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ev_catalog.h"
#include "ev_envelope.h"
#include "ev_order.h"
#include "payments.h"
#include "payments_context.h"
#include "payments_read.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/migrate.h"
#include "tk/pg.h"
#include "tk/projector.h"
#include "tk/relay.h"
#include "tk_test.h"

static tk_relay_t *relay;
static tk_projector_t *projector;
static pthread_t relay_thread, projector_thread;
static volatile int workers_stop;
static PGconn *db; /* the test's own connection to tk_payments */

static void *run_relay(void *arg)
{
    (void)arg;
    tk_relay_run(relay, &workers_stop);
    return NULL;
}

static void *run_projector(void *arg)
{
    (void)arg;
    tk_projector_run(projector, &workers_stop);
    return NULL;
}

/* Migrations, topics, projector, relay and server; fails the run when the stack is missing. */
static int payments_start(void)
{
    /* orders holds events of other tests' orders this replica never saw created (a fresh
     * consumer group reads the topic from the start); each such gap holds its partition until
     * the gap timeout dead-letters it, so keep that short here. */
    setenv("PROJECTOR_GAP_TIMEOUT_MS", "1500", 1);
    /* Refused refunds are retried after 1 s, then 2 s, ...: short enough for a test, long
     * enough to observe the pending and failed gauges in between. */
    setenv("REFUND_BACKOFF_MS", "1000", 1);
    tk_test_require_stack();
    tk_err_t err = {0};
    if (tk_migrate_all(&err) != 0 || tk_kafka_topics_create(&err) != 0) {
        fprintf(stdout, "setup: %s\n", err.message);
        return -1;
    }
    if ((db = tk_pg_connect("payments", &err)) == NULL ||
        /* Refund intents left pending by an earlier run name PaymentIntents of a fake Stripe
         * that is gone: drop them, so this run's worker does not call this fake for them and
         * the gauges count this run's intents only. */
        tk_pg_run(db, "DELETE FROM refunds WHERE status = 'pending'", 0, NULL, NULL, &err) != 0 ||
        (relay = tk_relay_new("payments", &err)) == NULL ||
        (projector = tk_projector_new(&tk_payments_replica_projector, &err)) == NULL) {
        fprintf(stdout, "setup: %s\n", err.message);
        return -1;
    }
    pthread_create(&relay_thread, NULL, run_relay, NULL);
    pthread_create(&projector_thread, NULL, run_projector, NULL);
    static const tk_context_t *const contexts[] = {&tk_payments_context, NULL};
    tk_test_server_start_contexts(contexts);
    return 0;
}

static void payments_stop(void)
{
    tk_test_server_stop();
    workers_stop = 1;
    pthread_join(relay_thread, NULL);
    pthread_join(projector_thread, NULL);
    tk_relay_free(relay);
    tk_projector_free(projector);
    PQfinish(db);
}

/* ------------------------------------------------------------------ orders events */

static char last_event[TK_UUID_LEN + 1]; /* id of the last event publish() sent */

static void publish(const char *type, const char *subject, int64_t version, json_t *data)
{
    tk_test_publish_event(type, subject, version, data, last_event);
}

/* order:created v0 for a fresh order of @p user_id at @p price_cents; the ids are written out. */
static void order_created(const char *user_id, int64_t price_cents, char order_id[TK_UUID_LEN + 1],
                          char ticket_id[TK_UUID_LEN + 1])
{
    ev_order_created_t o = {0};
    tk_uuid_new(o.id);
    tk_uuid_new(o.ticket.id);
    snprintf(o.user_id, sizeof(o.user_id), "%s", user_id);
    tk_time_format(tk_now_ms() + 900000, o.expires_at);
    o.status = EV_ORDER_CREATED;
    o.ticket.price_cents = price_cents;
    publish("order:created", o.id, 0, ev_order_created_to_json(&o));
    strcpy(order_id, o.id);
    strcpy(ticket_id, o.ticket.id);
}

static void order_changed(const char *type, const char *order_id, const char *ticket_id,
                          int64_t version)
{
    ev_order_ref_t r = {0};
    snprintf(r.id, sizeof(r.id), "%s", order_id);
    snprintf(r.ticket.id, sizeof(r.ticket.id), "%s", ticket_id);
    r.version = version;
    publish(type, order_id, version,
            strcmp(type, "order:cancelled") == 0 ? ev_order_cancelled_to_json(&r)
                                                 : ev_order_completed_to_json(&r));
}

/* ------------------------------------------------------------------ the payments database */

/* The first column of the first row of @p sql with $1 = @p arg, or "" (static buffer). */
static const char *query1(const char *sql, const char *arg)
{
    static char value[512];
    tk_err_t err = {0};
    const char *params[] = {arg};
    PGresult *res = tk_pg_exec(db, sql, arg ? 1 : 0, arg ? params : NULL, &err);
    assert_non_null(res);
    snprintf(value, sizeof(value), "%s",
             PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return value;
}

struct replica_wait {
    const char *order_id;
    const char *status_version; /* "created/0", "cancelled/1" */
};

static bool replica_is(void *arg)
{
    struct replica_wait *w = arg;
    return strcmp(query1("SELECT status || '/' || version FROM orders_replica WHERE id = $1",
                         w->order_id),
                  w->status_version) == 0;
}

/* Waits (up to 20 s) until the replica holds @p order_id in @p status_version. */
static bool wait_replica(const char *order_id, const char *status_version)
{
    struct replica_wait w = {order_id, status_version};
    return tk_test_eventually(replica_is, &w, 20000);
}

static bool event_processed(void *arg)
{
    return strcmp(query1("SELECT event_id FROM processed_events WHERE projection = "
                         "'orders_replica' AND event_id = $1",
                         arg),
                  (const char *)arg) == 0;
}

/* Waits (up to 20 s) until the replica's projector has consumed event @p id (applied or
 * skipped: its offset is stored, so it is never redelivered). */
static bool wait_processed(const char *id)
{
    return tk_test_eventually(event_processed, (void *)id, 20000);
}

static int count_rows(const char *sql, const char *arg)
{
    return atoi(query1(sql, arg));
}

static int payments_of(const char *order_id)
{
    return count_rows("SELECT count(*) FROM payments WHERE order_id = $1", order_id);
}

/* ------------------------------------------------------------------ HTTP */

static char *session_of(const char *user_id)
{
    return tk_test_fake_session(user_id, "test@test.com");
}

static long pay(const char *cookie, const char *token, const char *order_id, tk_test_resp_t *r)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"token\":\"%s\",\"orderId\":\"%s\"}", token, order_id);
    tk_test_http("POST", "/api/payments", body, cookie, r);
    return r->status;
}

/* A fresh user with a fresh order of @p price_cents, replicated (created/0), and a watch of the
 * payments topic opened before the order was. */
struct fixture {
    char user[TK_UUID_LEN + 1];
    char order[TK_UUID_LEN + 1];
    char ticket[TK_UUID_LEN + 1];
    char *cookie;
    tk_test_watch_t *w;
};

static void fixture_new(struct fixture *f, int64_t price_cents)
{
    f->w = tk_test_watch_new(EV_TOPIC_PAYMENTS);
    tk_uuid_new(f->user);
    f->cookie = session_of(f->user);
    order_created(f->user, price_cents, f->order, f->ticket);
    assert_true(wait_replica(f->order, "created/0"));
}

static void fixture_free(struct fixture *f)
{
    free(f->cookie);
    tk_test_watch_free(f->w);
}

/* The fixture as cmocka's per-test setup and teardown: ORDER_TEST(test, price_cents) runs test
 * with *state = a fixture of that price, freed after the test, failed or not. */
static int order_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    fixture_new(f, *(const int64_t *)*state);
    *state = f;
    return 0;
}

static int order_teardown(void **state)
{
    fixture_free(*state);
    free(*state);
    return 0;
}

#define ORDER_TEST_SETUP(test, setup, price_cents)                                                 \
    {                                                                                              \
#test, test, setup, order_teardown, (void *)&(const int64_t)                               \
        {                                                                                          \
            price_cents                                                                            \
        }                                                                                          \
    }
#define ORDER_TEST(test, price_cents) ORDER_TEST_SETUP(test, order_setup, price_cents)

/* POST /api/payments for @p f with @p token must answer @p status and, when @p message is not
 * NULL, that first error message. */
static void pay_expect(const struct fixture *f, const char *token, long status, const char *message)
{
    tk_test_resp_t r;
    assert_int_equal(pay(f->cookie, token, f->order, &r), status);
    if (message != NULL)
        assert_string_equal(tk_test_first_message(&r), message);
    tk_test_resp_release(&r);
}

/* POST /api/payments for @p f with @p token must create a payment (201): its id, a UUID, into
 * @p payment_id. */
static void pay_created(const struct fixture *f, const char *token,
                        char payment_id[TK_UUID_LEN + 1])
{
    tk_test_resp_t r;
    assert_int_equal(pay(f->cookie, token, f->order, &r), 201);
    const char *id = json_string_value(json_object_get(r.json, "id"));
    assert_true(tk_uuid_valid(id));
    strcpy(payment_id, id);
    tk_test_resp_release(&r);
}

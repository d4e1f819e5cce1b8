/*
 * test_orders.c - the orders context over real HTTP, PostgreSQL and Kafka: every orders case of
 * ORIGINAL-TESTS.md (O1-O17) in black-box form, the tickets replica's version gating (duplicate,
 * out of order, a gap that never fills and is dead-lettered), payment:created, and the FIX
 * reservation rule under 200 concurrent orders for one ticket.
 *
 * The context runs in this process as in `ticketing run`: REST routes on an in-process server,
 * the outbox relay and the three projectors (tickets_replica, order_view, reactions) in threads.
 * Ticket, expiration and payment events are injected with tk_test_publish as their contexts would
 * publish them. The gap timeout is shortened (PROJECTOR_GAP_TIMEOUT_MS) so the dead-letter case
 * runs in seconds. Every test uses fresh UUIDs, so reruns on the shared stack pass.
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

#include "ev_catalog.h"
#include "ev_envelope.h"
#include "ev_expiration.h"
#include "ev_order.h"
#include "ev_payment.h"
#include "ev_ticket.h"
#include "orders_context.h"
#include "orders_read.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/migrate.h"
#include "tk/pg.h"
#include "tk/projector.h"
#include "tk/relay.h"
#include "test_orders_util.h"
#include "tk_test.h"

#define WAIT_MS 20000
#define GAP_TIMEOUT_MS "3000"

static PGconn *db; /* the test's own look into its orders database */

static int setup(void **state)
{
    (void)state;
    setenv("PROJECTOR_GAP_TIMEOUT_MS", GAP_TIMEOUT_MS, 1);
    static const tk_context_t *const contexts[] = {&tk_orders_context, NULL};
    tk_err_t err = {0};
    if (tko_serve(contexts) != 0 || (db = tk_pg_connect("orders", &err)) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    PQfinish(db);
    return tko_teardown(state);
}

/* ------------------------------------------------------------------ helpers */

/* Produce @p text to an explicit partition of @p topic (for events that the key would not put
 * on the partition we need: a simulated repartitioning or foreign producer). */
static void publish_to_partition(const char *topic, int32_t partition, const char *key,
                                 const char *text)
{
    tk_err_t err = {0};
    rd_kafka_t *rk = tk_kafka_producer_new(&err);
    assert_non_null(rk);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)text, strlen(text)),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
}

/* Publish a ticket event as the tickets context does (key = ticket id), or to @p partition
 * when >= 0. @p event_id may be NULL. */
static void publish_ticket(const char *id, int64_t version, const char *title, int64_t cents,
                           int32_t partition, char event_id[TK_UUID_LEN + 1])
{
    ev_ticket_t t = {.version = version, .price_cents = cents};
    /* Bounded copies: the optimiser (Release) sees callers' larger buffers and warns otherwise. */
    snprintf(t.id, sizeof(t.id), "%.*s", TK_UUID_LEN, id);
    snprintf(t.title, sizeof(t.title), "%.*s", EV_TITLE_MAX, title);
    tk_uuid_new(t.user_id);
    const char *type = version == 0 ? "ticket:created" : "ticket:updated";
    json_t *data = version == 0 ? ev_ticket_created_to_json(&t) : ev_ticket_updated_to_json(&t);
    char *text = tk_test_event_text(type, id, version, data, event_id);
    if (partition < 0)
        tk_test_publish(EV_TOPIC_TICKETS, id, text);
    else
        publish_to_partition(EV_TOPIC_TICKETS, partition, id, text);
    free(text);
}

/* The replica's version of ticket @p id, -1 when it has none. */
static long replica_version(const char *id)
{
    const char *params[] = {id};
    tk_err_t err = {0};
    PGresult *res =
        tk_pg_exec(db, "SELECT version FROM tickets_replica WHERE id = $1", 1, params, &err);
    assert_non_null(res);
    long v = PQntuples(res) == 1 ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return v;
}

struct replica_wait {
    const char *id;
    long version;
};

static bool replica_at(void *arg)
{
    struct replica_wait *w = arg;
    return replica_version(w->id) == w->version;
}

static void wait_replica(const char *id, long version)
{
    struct replica_wait w = {id, version};
    assert_true(tk_test_eventually(replica_at, &w, WAIT_MS));
}

/* A ticket the replica holds at version 0. */
static void new_ticket(char id[TK_UUID_LEN + 1], const char *title, int64_t cents)
{
    tk_uuid_new(id);
    publish_ticket(id, 0, title, cents, -1, NULL);
    wait_replica(id, 0);
}

/* How many dead letters of tickets_replica hold event @p event_id. */
static long dead_letters_of(const char *event_id)
{
    const char *params[] = {event_id, tko_projection_name("tickets_replica")};
    tk_err_t err = {0};
    PGresult *res = tk_pg_exec(db,
                               "SELECT count(*) FROM dead_letters WHERE projection = $2 AND "
                               "error LIKE 'version gap%' AND "
                               "position($1 in convert_from(payload, 'UTF8')) > 0",
                               2, params, &err);
    assert_non_null(res);
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}

static bool dead_lettered(void *arg)
{
    return dead_letters_of(arg) == 1;
}

static void place(const tko_user_t *u, const char *ticket_id, tk_test_resp_t *r)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"ticketId\":\"%s\"}", ticket_id);
    tk_test_http("POST", "/api/orders", body, u ? u->cookie : NULL, r);
}

/* POST an order as place() does: @return whether the answer has @p status and, unless @p message
 * is NULL, that first message (what came is printed when not). */
static bool place_is(const tko_user_t *u, const char *ticket_id, long status, const char *message)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"ticketId\":\"%s\"}", ticket_id);
    return tk_test_http_is("POST", "/api/orders", body, u ? u->cookie : NULL, status, message);
}

/* POST an order that must be accepted; its id into @p id. */
static void place_ok(const tko_user_t *u, const char *ticket_id, char id[TK_UUID_LEN + 1])
{
    tk_test_resp_t r;
    place(u, ticket_id, &r);
    assert_int_equal(r.status, 201);
    snprintf(id, TK_UUID_LEN + 1, "%s", tko_str(r.json, "id"));
    tk_test_resp_release(&r);
}

/* A new user's order, placed for a new ticket, and a watch of the orders topic opened first. */
struct placed {
    tk_test_watch_t *w;
    tko_user_t u;
    char ticket[TK_UUID_LEN + 1];
    char order[TK_UUID_LEN + 1];
};

static void placed_start(struct placed *p, const char *title, int64_t cents)
{
    p->w = tk_test_watch_new(EV_TOPIC_ORDERS);
    p->u = tko_user_new();
    new_ticket(p->ticket, title, cents);
    place_ok(&p->u, p->ticket, p->order);
}

static void placed_end(struct placed *p)
{
    free(p->u.cookie);
    tk_test_watch_free(p->w);
}

static void order_request(const char *method, const tko_user_t *u, const char *id,
                          tk_test_resp_t *r)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/orders/%s", id);
    tk_test_http(method, path, NULL, u ? u->cookie : NULL, r);
}

static void wait_status(const tko_user_t *u, const char *id, const char *status)
{
    assert_true(tko_wait_order(u, id, status, -1, WAIT_MS));
}

/* ------------------------------------------------------------------ POST /api/orders */

/* O1 and the body rules. */
static void place_errors(void **state)
{
    (void)state;
    tko_user_t u = tko_user_new();
    char unknown[TK_UUID_LEN + 1];
    tk_uuid_new(unknown);

    assert_true(place_is(NULL, unknown, 401, NULL));
    assert_true(place_is(&u, unknown, 404, NULL)); /* O1 */
    assert_true(place_is(&u, "5f1a2b3c4d5e6f7a8b9c0d1e", 404, NULL));
    const char *bodies[] = {"{}", "{\"ticketId\":\"\"}", "{\"ticketId\":5}"};
    for (size_t i = 0; i < 3; i++) {
        assert_true(tk_test_http_is("POST", "/api/orders", bodies[i], u.cookie, 400,
                                    "TicketId must be provided"));
    }
    free(u.cookie);
}

/* O10, O11, O3, O4, O2: the replica learns the ticket, an order reserves it, order:created is
 * published, and a second order is refused. */
static void place_reserves_and_publishes(void **state)
{
    (void)state;
    tk_test_watch_t *w = tk_test_watch_new(EV_TOPIC_ORDERS);
    tko_user_t a = tko_user_new(), b = tko_user_new();
    char ticket[TK_UUID_LEN + 1];
    tk_uuid_new(ticket);
    publish_ticket(ticket, 0, "concert", 2000, -1, NULL);

    tk_test_resp_t resp;
    tko_order_when_known(&a, ticket, WAIT_MS, &resp); /* O10 */
    tk_test_resp_t *r = &resp;
    assert_int_equal(r->status, 201); /* O3 */
    const char *id = tko_str(r->json, "id");
    assert_true(tk_uuid_valid(id));
    assert_string_equal(tko_str(r->json, "userId"), a.id);
    assert_string_equal(tko_str(r->json, "status"), "created");
    assert_int_equal(tko_num(r->json, "version"), 0);
    int64_t expires = 0;
    assert_int_equal(tk_time_parse(tko_str(r->json, "expiresAt"), &expires), 0);
    assert_int_equal(strlen(tko_str(r->json, "expiresAt")), TK_TIME_LEN);
    int64_t delta = expires - tk_now_ms() - 900 * 1000LL;
    assert_true(delta > -60000 && delta < 60000);
    json_t *t = json_object_get(r->json, "ticket");
    assert_string_equal(tko_str(t, "id"), ticket);
    assert_string_equal(tko_str(t, "title"), "concert");
    assert_int_equal(tko_num(t, "price"), 20);
    assert_int_equal(tko_num(t, "version"), 0);

    json_t *env = tk_test_watch_expect(w, "order:created", id, WAIT_MS); /* O4 */
    assert_non_null(env);
    assert_int_equal(tko_num(env, "aggregateversion"), 0);
    json_t *data = json_object_get(env, "data");
    assert_string_equal(tko_str(data, "id"), id);
    assert_int_equal(tko_num(data, "version"), 0);
    assert_string_equal(tko_str(data, "status"), "created");
    assert_string_equal(tko_str(data, "userId"), a.id);
    assert_string_equal(tko_str(data, "expiresAt"), tko_str(r->json, "expiresAt"));
    assert_string_equal(tko_str(json_object_get(data, "ticket"), "id"), ticket);
    assert_int_equal(tko_num(json_object_get(data, "ticket"), "price"), 20);
    json_decref(env);

    assert_true(place_is(&b, ticket, 400, "Ticket is already reserved")); /* O2 */
    assert_true(place_is(&a, ticket, 400, NULL));                         /* the holder too */

    /* O11: the replica holds the ticket once, at version 0, with no dead letter. */
    assert_int_equal(replica_version(ticket), 0);
    tk_test_resp_release(r);
    tk_test_watch_free(w);
    free(a.cookie);
    free(b.cookie);
}

/* ------------------------------------------------------------------ the tickets replica */

/* The replica of @p arg no longer shows "new title" at version 1. */
static bool replica_changed(void *arg)
{
    const char *params[] = {arg};
    tk_err_t err = {0};
    PGresult *res =
        tk_pg_exec(db, "SELECT title, version FROM tickets_replica WHERE id = $1", 1, params, &err);
    assert_non_null(res);
    bool changed = PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "new title") != 0 ||
                   strcmp(PQgetvalue(res, 0, 1), "1") != 0;
    PQclear(res);
    return changed;
}

/* O12, O13: ticket:updated v1 applies over v0, a repeat is skipped, and new orders embed it. */
static void replica_follows_updates(void **state)
{
    (void)state;
    char ticket[TK_UUID_LEN + 1], order[TK_UUID_LEN + 1];
    new_ticket(ticket, "old", 1000);
    publish_ticket(ticket, 1, "new title", 1550, -1, NULL);
    wait_replica(ticket, 1);
    publish_ticket(ticket, 1, "a duplicate", 9900, -1, NULL); /* another event, version 1 again */
    publish_ticket(ticket, 0, "a second created", 9900, -1, NULL);
    assert_false(tk_test_eventually(replica_changed, ticket, 1500));

    tko_user_t u = tko_user_new();
    tk_test_resp_t r;
    place(&u, ticket, &r);
    assert_int_equal(r.status, 201);
    json_t *t = json_object_get(r.json, "ticket");
    assert_string_equal(tko_str(t, "title"), "new title");
    assert_non_null(strstr(r.body, "\"price\":15.5"));
    assert_int_equal(tko_num(t, "version"), 1);
    snprintf(order, sizeof(order), "%s", tko_str(r.json, "id"));
    tk_test_resp_release(&r);

    /* The duplicates never applied: after v2 lands, the replica is v2 with v2's values; the
     * order still shows the price it was created with (DESIGN.md section 5). */
    publish_ticket(ticket, 2, "v2", 1234, -1, NULL);
    wait_replica(ticket, 2);
    wait_status(&u, order, "created");
    order_request("GET", &u, order, &r);
    assert_int_equal(r.status, 200);
    t = json_object_get(r.json, "ticket");
    assert_string_equal(tko_str(t, "title"), "v2");
    assert_int_equal(tko_num(t, "version"), 2);
    assert_non_null(strstr(r.body, "\"price\":15.5"));
    tk_test_resp_release(&r);
    free(u.cookie);
}

/* Issue 11 item 11: GET /api/orders is bounded (LIST_DEFAULT_LIMIT, 2 here) and pages with
 * ?limit and ?cursor like GET /api/tickets, in creation order, still a bare array. */
static void order_list_is_bounded(void **state)
{
    (void)state;
    setenv("LIST_DEFAULT_LIMIT", "2", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    tko_user_t u = tko_user_new();
    char t[3][TK_UUID_LEN + 1], o[3][TK_UUID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        new_ticket(t[i], "bounded", 100);
        place_ok(&u, t[i], o[i]);
        wait_status(&u, o[i], "created");
    }
    tk_test_resp_t r;
    tk_test_http("GET", "/api/orders", NULL, u.cookie, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 2);
    assert_string_equal(tko_str(json_array_get(r.json, 0), "id"), o[0]);
    assert_string_equal(tko_str(json_array_get(r.json, 1), "id"), o[1]);
    tk_test_resp_release(&r);
    char path[128];
    snprintf(path, sizeof(path), "/api/orders?cursor=%s", o[1]);
    tk_test_http("GET", path, NULL, u.cookie, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 1);
    assert_string_equal(tko_str(json_array_get(r.json, 0), "id"), o[2]);
    tk_test_resp_release(&r);
    tk_test_http("GET", "/api/orders?limit=3", NULL, u.cookie, &r);
    assert_int_equal(json_array_size(r.json), 3);
    tk_test_resp_release(&r);
    tko_user_t other = tko_user_new(); /* a cursor must be one of the caller's orders */
    assert_true(tk_test_http_is("GET", path, NULL, other.cookie, 400, "Invalid cursor"));
    assert_true(tk_test_http_is("GET", "/api/orders?limit=0", NULL, u.cookie, 400, NULL));
    setenv("LIST_DEFAULT_LIMIT", "100", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    free(u.cookie);
    free(other.cookie);
}

struct open_race {
    const tko_user_t *u;
    const char *ticket;
    long status;
};

static void *race_place(void *arg)
{
    struct open_race *a = arg;
    tk_test_resp_t r;
    place(a->u, a->ticket, &r);
    a->status = r.status;
    tk_test_resp_release(&r);
    return NULL;
}

/* Issue 11 item 11: a user holds at most ORDERS_OPEN_MAX open orders (3 here): the next POST
 * gets 429 with Retry-After until the earliest expires, also when the POSTs race; cancelling
 * one makes room. Other users are not affected. */
static void open_orders_are_capped(void **state)
{
    (void)state;
    enum { N = 8, MAX = 3 };
    setenv("ORDERS_OPEN_MAX", "3", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    tko_user_t u = tko_user_new(), other = tko_user_new();
    char t[N][TK_UUID_LEN + 1];
    for (int i = 0; i < N; i++)
        new_ticket(t[i], "capped", 100);
    struct open_race a[N];
    for (int i = 0; i < N; i++)
        a[i] = (struct open_race){&u, t[i], 0};
    tk_test_run_threads(race_place, a, sizeof(a[0]), N);
    int placed_n = 0, refused = 0, first = -1, last = -1;
    for (int i = 0; i < N; i++) {
        if (a[i].status == 201) {
            placed_n++;
            first = first < 0 ? i : first;
        } else if (a[i].status == 429) {
            refused++;
            last = i;
        }
    }
    assert_int_equal(placed_n, MAX);
    assert_int_equal(refused, N - MAX);

    tk_test_resp_t r;
    place(&u, t[last], &r);
    assert_int_equal(r.status, 429);
    assert_true(r.retry_after > 800 && r.retry_after <= 900); /* the window is 900 s */
    assert_non_null(strstr(tk_test_first_message(&r), "Too many open orders"));
    tk_test_resp_release(&r);
    assert_true(place_is(&other, t[last], 201, NULL)); /* another user still can */

    /* Cancelling one of u's orders makes room. */
    const char *params[] = {u.id};
    tk_err_t err = {0};
    PGresult *res =
        tk_pg_exec(db, "SELECT id FROM orders WHERE user_id = $1 LIMIT 1", 1, params, &err);
    assert_non_null(res);
    char order[TK_UUID_LEN + 1];
    snprintf(order, sizeof(order), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    order_request("DELETE", &u, order, &r);
    assert_int_equal(r.status, 204);
    tk_test_resp_release(&r);
    int free_ticket = -1;
    for (int i = 0; i < N; i++)
        if (a[i].status == 429 && i != last)
            free_ticket = i;
    assert_true(free_ticket >= 0 && first >= 0);
    place(&u, t[free_ticket], &r);
    assert_int_equal(r.status, 201);
    tk_test_resp_release(&r);
    setenv("ORDERS_OPEN_MAX", "10", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    free(u.cookie);
    free(other.cookie);
}

/* Issue 11 item 8: the owner edits the price while the reservation is in flight (order:created
 * has not reached tickets yet, so tickets still accepts the edit and the replica follows it). The
 * order shows, in its read model and write model, the price it was created with - the one
 * order:created carried and payments charges - never the later replica price. */
static void order_keeps_created_price(void **state)
{
    (void)state;
    tk_test_watch_t *w = tk_test_watch_new(EV_TOPIC_ORDERS);
    char ticket[TK_UUID_LEN + 1], order[TK_UUID_LEN + 1];
    new_ticket(ticket, "in flight", 2500);
    tko_user_t u = tko_user_new();
    place_ok(&u, ticket, order);
    publish_ticket(ticket, 1, "in flight", 99900, -1, NULL); /* no orderId: tickets not told */
    wait_replica(ticket, 1);
    wait_status(&u, order, "created");

    json_t *env = tk_test_watch_expect(w, "order:created", order, WAIT_MS);
    assert_non_null(env);
    assert_int_equal(tko_num(json_object_get(json_object_get(env, "data"), "ticket"), "price"), 25);
    json_decref(env);
    tk_test_watch_free(w);

    tk_test_resp_t r;
    order_request("GET", &u, order, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(tko_num(json_object_get(r.json, "ticket"), "price"), 25);
    assert_int_equal(tko_num(json_object_get(r.json, "ticket"), "version"), 1);
    tk_test_resp_release(&r);
    tk_test_http("GET", "/api/orders", NULL, u.cookie, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 1);
    assert_int_equal(tko_num(json_object_get(json_array_get(r.json, 0), "ticket"), "price"), 25);
    tk_test_resp_release(&r);

    const char *params[] = {order};
    tk_err_t err = {0};
    PGresult *res = tk_pg_exec(db, "SELECT price_cents FROM orders WHERE id = $1", 1, params, &err);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "2500");
    PQclear(res);
    free(u.cookie);
}

/* An update that arrives before the one it follows (another partition: a repartitioned topic or a
 * foreign producer) waits for it, then applies: nothing is dead-lettered. */
static void replica_waits_for_out_of_order(void **state)
{
    (void)state;
    char ticket[TK_UUID_LEN + 1], v2_id[TK_UUID_LEN + 1];
    new_ticket(ticket, "ooo", 1000);
    publish_ticket(ticket, 2, "second", 3000, 0, v2_id);
    /* v2 waits: it is neither applied over v0 nor dead-lettered while v1 is missing. */
    struct replica_wait early = {ticket, 2};
    assert_false(tk_test_eventually(replica_at, &early, 800));
    assert_int_equal(replica_version(ticket), 0);
    assert_int_equal(dead_letters_of(v2_id), 0);
    publish_ticket(ticket, 1, "first", 2000, 1, NULL);
    wait_replica(ticket, 2);
    const char *params[] = {ticket};
    tk_err_t err = {0};
    PGresult *res = tk_pg_exec(db, "SELECT title, price_cents FROM tickets_replica WHERE id = $1",
                               1, params, &err);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "second");
    assert_string_equal(PQgetvalue(res, 0, 1), "3000");
    PQclear(res);
    assert_int_equal(dead_letters_of(v2_id), 0);
}

/* O14: a gap that never fills is retried (not applied) and then dead-lettered with an alert; the
 * replica keeps its version and goes on with the next in-order update. */
static void replica_gap_dead_letters(void **state)
{
    (void)state;
    char ticket[TK_UUID_LEN + 1], v10_id[TK_UUID_LEN + 1];
    new_ticket(ticket, "gap", 1000);
    publish_ticket(ticket, 10, "far ahead", 5000, -1, v10_id);
    /* While the gap waits, nothing is applied and nothing is dead-lettered yet. */
    struct replica_wait never = {ticket, 10};
    assert_false(tk_test_eventually(replica_at, &never, 1000));
    assert_true(tk_test_eventually(dead_lettered, v10_id, WAIT_MS));
    assert_int_equal(replica_version(ticket), 0);
    publish_ticket(ticket, 1, "next", 1100, -1, NULL);
    wait_replica(ticket, 1);
}

/* ------------------------------------------------------------------ queries */

struct list_wait {
    const tko_user_t *u;
    size_t n;
    tk_test_resp_t resp;
};

static bool list_has(void *arg)
{
    struct list_wait *w = arg;
    tk_test_resp_release(&w->resp);
    tk_test_http("GET", "/api/orders", NULL, w->u->cookie, &w->resp);
    return w->resp.status == 200 && json_array_size(w->resp.json) == w->n;
}

/* O5, O6, O7. */
static void list_and_show(void **state)
{
    (void)state;
    tko_user_t one = tko_user_new(), two = tko_user_new();
    char t[3][TK_UUID_LEN + 1], o[3][TK_UUID_LEN + 1];
    for (int i = 0; i < 3; i++)
        new_ticket(t[i], "show", 100 * (i + 1));
    place_ok(&one, t[0], o[0]);
    place_ok(&two, t[1], o[1]);
    place_ok(&two, t[2], o[2]);

    struct list_wait lw = {&two, 2, {0}};
    assert_true(tk_test_eventually(list_has, &lw, WAIT_MS)); /* O5 */
    for (int i = 0; i < 2; i++) {
        json_t *item = json_array_get(lw.resp.json, (size_t)i);
        assert_string_equal(tko_str(item, "id"), o[i + 1]);
        assert_string_equal(tko_str(json_object_get(item, "ticket"), "id"), t[i + 1]);
        assert_string_equal(tko_str(item, "userId"), two.id);
        assert_string_equal(tko_str(item, "status"), "created");
    }
    tk_test_resp_release(&lw.resp);

    tk_test_resp_t r;
    wait_status(&two, o[1], "created");
    order_request("GET", &two, o[1], &r); /* O6 */
    assert_int_equal(r.status, 200);
    assert_string_equal(tko_str(r.json, "id"), o[1]);
    assert_int_equal(tko_num(r.json, "version"), 0);
    assert_int_equal(tko_num(json_object_get(r.json, "ticket"), "price"), 2);
    tk_test_resp_release(&r);
    order_request("GET", &one, o[1], &r); /* O7 */
    assert_int_equal(r.status, 401);
    tk_test_resp_release(&r);
    order_request("GET", NULL, o[1], &r);
    assert_int_equal(r.status, 401);
    tk_test_resp_release(&r);
    char unknown[TK_UUID_LEN + 1];
    tk_uuid_new(unknown);
    order_request("GET", &one, unknown, &r);
    assert_int_equal(r.status, 404);
    tk_test_resp_release(&r);
    order_request("GET", &one, "nope", &r);
    assert_int_equal(r.status, 404);
    tk_test_resp_release(&r);
    assert_true(tk_test_http_is("GET", "/api/orders", NULL, NULL, 401, NULL));
    free(one.cookie);
    free(two.cookie);
}

/* ------------------------------------------------------------------ DELETE and reactions */

/* O8, O9, and FIX: cancelling a cancelled order is a no-op; the ticket can be ordered again. */
static void cancel_order(void **state)
{
    (void)state;
    tk_test_watch_t *w = tk_test_watch_new(EV_TOPIC_ORDERS);
    tko_user_t u = tko_user_new(), other = tko_user_new();
    char ticket[TK_UUID_LEN + 1], order[TK_UUID_LEN + 1], unknown[TK_UUID_LEN + 1];
    new_ticket(ticket, "cancel", 500);
    place_ok(&u, ticket, order);
    tk_uuid_new(unknown);

    tk_test_resp_t r;
    order_request("DELETE", &other, order, &r);
    assert_int_equal(r.status, 401);
    tk_test_resp_release(&r);
    order_request("DELETE", NULL, order, &r);
    assert_int_equal(r.status, 401);
    tk_test_resp_release(&r);
    order_request("DELETE", &u, unknown, &r);
    assert_int_equal(r.status, 404);
    tk_test_resp_release(&r);
    order_request("DELETE", &u, order, &r); /* O8 */
    assert_int_equal(r.status, 204);
    assert_string_equal(r.body, "");
    tk_test_resp_release(&r);

    json_t *env = tk_test_watch_expect(w, "order:cancelled", order, WAIT_MS); /* O9 */
    assert_non_null(env);
    json_t *data = json_object_get(env, "data");
    assert_string_equal(tko_str(data, "id"), order);
    assert_int_equal(tko_num(data, "version"), 1);
    assert_string_equal(tko_str(json_object_get(data, "ticket"), "id"), ticket);
    json_decref(env);
    wait_status(&u, order, "cancelled");
    order_request("GET", &u, order, &r);
    assert_int_equal(tko_num(r.json, "version"), 1);
    tk_test_resp_release(&r);

    order_request("DELETE", &u, order, &r); /* no-op */
    assert_int_equal(r.status, 204);
    tk_test_resp_release(&r);
    assert_int_equal(tk_test_watch_count(w, "order:cancelled", order, 1500), 0);

    char again[TK_UUID_LEN + 1];
    place_ok(&other, ticket, again); /* the ticket is free again */
    free(u.cookie);
    free(other.cookie);
    tk_test_watch_free(w);
}

/* The data of the payments context's payment:expired for @p order (its payment window closed
 * unpaid). Owned JSON. */
static json_t *payment_expired(const char *order)
{
    ev_payment_expired_t e = {0};
    snprintf(e.order_id, sizeof(e.order_id), "%s", order);
    return ev_payment_expired_to_json(&e);
}

/* payment:created completes the order; a complete order is neither cancelled nor expired. */
static void payment_completes(void **state)
{
    (void)state;
    tk_test_watch_t *w = tk_test_watch_new(EV_TOPIC_ORDERS);
    tko_user_t u = tko_user_new(), other = tko_user_new();
    char ticket[TK_UUID_LEN + 1], order[TK_UUID_LEN + 1];
    new_ticket(ticket, "paid", 700);
    place_ok(&u, ticket, order);

    tko_publish_paid(order);

    json_t *env = tk_test_watch_expect(w, "order:completed", order, WAIT_MS);
    assert_non_null(env);
    json_t *data = json_object_get(env, "data");
    assert_int_equal(tko_num(data, "version"), 1);
    assert_string_equal(tko_str(json_object_get(data, "ticket"), "id"), ticket);
    json_decref(env);
    wait_status(&u, order, "complete");

    tk_test_resp_t r;
    order_request("DELETE", &u, order, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(tk_test_first_message(&r), "Cannot cancel a completed order");
    tk_test_resp_release(&r);
    assert_true(place_is(&other, ticket, 400, NULL)); /* complete still reserves */

    tk_test_publish_event("payment:expired", order, 0, payment_expired(order), NULL);
    assert_int_equal(tk_test_watch_count(w, "order:cancelled", order, 3000), 0);
    order_request("GET", &u, order, &r);
    assert_string_equal(tko_str(r.json, "status"), "complete");
    tk_test_resp_release(&r);
    free(u.cookie);
    free(other.cookie);
    tk_test_watch_free(w);
}

/* O15, O16, O17: the expiration, as the payments context decides it (payment:expired: the
 * order's payment window closed unpaid), cancels, once. */
static void expiration_cancels_once(void **state)
{
    (void)state;
    struct placed p;
    placed_start(&p, "expire", 900);

    char *text = tk_test_event_text("payment:expired", p.order, 0, payment_expired(p.order), NULL);
    tk_test_publish(EV_TOPIC_PAYMENTS, p.order, text);
    json_t *env = tk_test_watch_expect(p.w, "order:cancelled", p.order, WAIT_MS); /* O16 */
    assert_non_null(env);
    assert_string_equal(tko_str(json_object_get(env, "data"), "id"), p.order);
    assert_int_equal(tko_num(json_object_get(env, "data"), "version"), 1);
    json_decref(env);
    wait_status(&p.u, p.order, "cancelled"); /* O15 */

    /* O17: the same record again, and a second one, change nothing. */
    tk_test_publish(EV_TOPIC_PAYMENTS, p.order, text);
    free(text);
    text = tk_test_event_text("payment:expired", p.order, 0, payment_expired(p.order), NULL);
    tk_test_publish(EV_TOPIC_PAYMENTS, p.order, text);
    free(text);
    assert_int_equal(tk_test_watch_count(p.w, "order:cancelled", p.order, 3000), 0);
    tk_test_resp_t r;
    order_request("GET", &p.u, p.order, &r);
    assert_int_equal(tko_num(r.json, "version"), 1);
    tk_test_resp_release(&r);
    placed_end(&p);
}

/* Issue 12: the scheduler's expiration:complete alone never cancels an order; only the payments
 * context's decision does, so a payment accepted before expiresAt whose payment:created is late
 * still completes the order. */
static void raw_expiration_does_not_cancel(void **state)
{
    (void)state;
    struct placed p;
    placed_start(&p, "expire-raw", 900);

    ev_expiration_complete_t e = {0};
    snprintf(e.order_id, sizeof(e.order_id), "%s", p.order);
    char *text = tk_test_event_text("expiration:complete", p.order, 0,
                                    ev_expiration_complete_to_json(&e), NULL);
    tk_test_publish(EV_TOPIC_EXPIRATIONS, p.order, text);
    free(text);
    assert_int_equal(tk_test_watch_count(p.w, "order:cancelled", p.order, 3000), 0);

    /* The payment accepted before expiresAt arrives late: the order completes. */
    tko_publish_paid(p.order);
    assert_true(tk_test_watch_saw(p.w, "order:completed", p.order, WAIT_MS));
    wait_status(&p.u, p.order, "complete");
    placed_end(&p);
}

/* ------------------------------------------------------------------ the reservation rule */

#define RACERS 200
#define RACE_THREADS 8

struct race {
    const char *ticket;
    int first, count;
    long status[RACERS];
    char message[RACERS][64];
};

struct race_slice {
    struct race *race;
    int from, to;
};

static void *race_worker(void *arg)
{
    struct race_slice *s = arg;
    for (int i = s->from; i < s->to; i++) {
        tko_user_t u = tko_user_new();
        tk_test_resp_t r;
        place(&u, s->race->ticket, &r);
        s->race->status[i] = r.status;
        const char *m = r.status == 400 ? tk_test_first_message(&r) : NULL;
        snprintf(s->race->message[i], sizeof(s->race->message[i]), "%s", m ? m : "");
        tk_test_resp_release(&r);
        free(u.cookie);
    }
    return NULL;
}

/* FIX: 200 concurrent orders for one ticket give exactly one 201 and 199 x 400. */
static void concurrent_orders_one_winner(void **state)
{
    (void)state;
    char ticket[TK_UUID_LEN + 1];
    new_ticket(ticket, "race", 4200);
    static struct race race;
    memset(&race, 0, sizeof(race));
    race.ticket = ticket;
    struct race_slice slices[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++)
        slices[i] =
            (struct race_slice){&race, i * RACERS / RACE_THREADS, (i + 1) * RACERS / RACE_THREADS};
    tk_test_run_threads(race_worker, slices, sizeof(slices[0]), RACE_THREADS);
    int created = 0, refused = 0;
    for (int i = 0; i < RACERS; i++) {
        created += race.status[i] == 201;
        if (race.status[i] == 400 && strcmp(race.message[i], "Ticket is already reserved") == 0)
            refused++;
    }
    assert_int_equal(created, 1);
    assert_int_equal(refused, RACERS - 1);

    const char *params[] = {ticket};
    tk_err_t err = {0};
    PGresult *res =
        tk_pg_exec(db, "SELECT count(*) FROM orders WHERE ticket_id = $1", 1, params, &err);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "1");
    PQclear(res);
}

TK_TEST_MAIN(setup, teardown, cmocka_unit_test(place_errors),
             cmocka_unit_test(place_reserves_and_publishes),
             cmocka_unit_test(replica_follows_updates), cmocka_unit_test(order_keeps_created_price),
             cmocka_unit_test(order_list_is_bounded), cmocka_unit_test(open_orders_are_capped),
             cmocka_unit_test(replica_waits_for_out_of_order),
             cmocka_unit_test(replica_gap_dead_letters), cmocka_unit_test(list_and_show),
             cmocka_unit_test(cancel_order), cmocka_unit_test(payment_completes),
             cmocka_unit_test(expiration_cancels_once),
             cmocka_unit_test(raw_expiration_does_not_cancel),
             cmocka_unit_test(concurrent_orders_one_winner))

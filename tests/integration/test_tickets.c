/*
 * test_tickets.c - the tickets context over real HTTP, PostgreSQL and Kafka: every tickets case
 * of ORIGINAL-TESTS.md (T1-T23) in black-box form, plus the read model's history and pagination.
 *
 * The context runs in this process as it does in `ticketing run`: the REST routes on an
 * in-process server, the outbox relay and both projectors (ticket_view, reactions) in threads.
 * Commands are seen through the events they publish on the broker and through the queries, which
 * read the read model and are therefore waited for (tk_test_eventually). Order events are
 * injected with tk_test_publish, as the orders context would publish them. Every test uses fresh
 * UUIDs, so reruns on the shared stack pass.
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
#include "ev_order.h"
#include "tickets.h"
#include "tickets_context.h"
#include "tickets_read.h"
#include "tk/cfg.h"
#include "tk/command.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/migrate.h"
#include "tk/pg.h"
#include "tk/projector.h"
#include "tk/relay.h"
#include "test_orders_util.h"
#include "tk_test.h"

#define WAIT_MS 20000

static int setup(void **state)
{
    (void)state;
    static const tk_context_t *const contexts[] = {&tk_tickets_context, NULL};
    return tko_serve(contexts);
}

/* ------------------------------------------------------------------ helpers */

/* POST /api/tickets as @p u; returns the new id (static buffer per call site: copy it). */
static void create_ticket(const tko_user_t *u, const char *title, int price,
                          char id[TK_UUID_LEN + 1])
{
    char body[512];
    snprintf(body, sizeof(body), "{\"title\":\"%s\",\"price\":%d}", title, price);
    tk_test_resp_t r;
    tk_test_http("POST", "/api/tickets", body, u->cookie, &r);
    assert_int_equal(r.status, 201);
    assert_true(tk_uuid_valid(tko_str(r.json, "id")));
    snprintf(id, TK_UUID_LEN + 1, "%s", tko_str(r.json, "id"));
    tk_test_resp_release(&r);
}

static void wait_view(const char *id, json_int_t version)
{
    assert_true(tko_wait_ticket(id, version, NULL, WAIT_MS));
}

static json_t *get_ticket(const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/tickets/%s", id);
    tk_test_resp_t r;
    tk_test_http("GET", path, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *j = json_incref(r.json);
    tk_test_resp_release(&r);
    return j;
}

/* A ticket of @p owner priced 30, in the view at version 0. */
static void new_listed_ticket(const tko_user_t *owner, const char *title, char id[TK_UUID_LEN + 1])
{
    create_ticket(owner, title, 30, id);
    wait_view(id, 0);
}

/* No ticket:updated of @p id comes on @p w within @p window_ms, and its view stays at
 * @p version, reserved by @p order. */
static void stays_held(tk_test_watch_t *w, const char *id, int window_ms, json_int_t version,
                       const char *order)
{
    assert_int_equal(tk_test_watch_count(w, "ticket:updated", id, window_ms), 0);
    json_t *t = get_ticket(id);
    assert_int_equal(tko_num(t, "version"), version);
    assert_string_equal(tko_str(t, "orderId"), order);
    json_decref(t);
}

static bool is_unlisted(void *arg)
{
    return !tko_ticket_listed(arg);
}

/* Event times of the published order events: 0 = now. */
static int64_t event_time_ms;

/* Publish an order event the way the orders context does (key = order id). @p text_out, when
 * given, receives the encoded envelope (owned) to publish it again. */
static void publish(const char *type, const char *subject, int64_t version, json_t *data,
                    char **text_out)
{
    ev_envelope_t env;
    tk_err_t err = {0};
    assert_int_equal(ev_envelope_init(&env, type, subject, version, "test", data, &err), 0);
    if (event_time_ms != 0)
        tk_time_format(event_time_ms, env.time);
    char *text = NULL;
    assert_int_equal(ev_envelope_encode(&env, &text, NULL, &err), 0);
    tk_test_publish(ev_topic_of(type), subject, text);
    ev_envelope_release(&env);
    if (text_out != NULL)
        *text_out = text;
    else
        free(text);
}

static void publish_order_created(const char *order_id, const char *ticket_id, char **text_out)
{
    ev_order_created_t o = {.version = 0, .status = EV_ORDER_CREATED};
    snprintf(o.id, sizeof(o.id), "%s", order_id);
    tk_uuid_new(o.user_id);
    tk_time_format(tk_now_ms() + 900000, o.expires_at);
    snprintf(o.ticket.id, sizeof(o.ticket.id), "%s", ticket_id);
    o.ticket.price_cents = 2000;
    publish("order:created", order_id, 0, ev_order_created_to_json(&o), text_out);
}

static void publish_order_ref(const char *type, const char *order_id, int64_t version,
                              const char *ticket_id)
{
    ev_order_ref_t o = {.version = version};
    snprintf(o.id, sizeof(o.id), "%s", order_id);
    snprintf(o.ticket.id, sizeof(o.ticket.id), "%s", ticket_id);
    json_t *data = strcmp(type, "order:cancelled") == 0 ? ev_order_cancelled_to_json(&o)
                                                        : ev_order_completed_to_json(&o);
    publish(type, order_id, version, data, NULL);
}

static void put_ticket(const tko_user_t *u, const char *id, const char *body, tk_test_resp_t *r)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/tickets/%s", id);
    tk_test_http("PUT", path, body, u ? u->cookie : NULL, r);
}

/* ------------------------------------------------------------------ POST /api/tickets */

/* T1, T2, T3. */
static void create_requires_auth(void **state)
{
    (void)state;
    tk_test_resp_t r;
    tk_test_http("POST", "/api/tickets", "{}", NULL, &r);
    assert_int_not_equal(r.status, 404);
    assert_int_equal(r.status, 401);
    assert_string_equal(tk_test_first_message(&r), "Not authorized");
    tk_test_resp_release(&r);

    tko_user_t u = tko_user_new();
    tk_test_http("POST", "/api/tickets", "{}", u.cookie, &r);
    assert_int_not_equal(r.status, 401);
    assert_int_equal(r.status, 400);
    tk_test_resp_release(&r);
    free(u.cookie);
}

/* T4, T5. */
static void create_validation(void **state)
{
    (void)state;
    tko_user_t u = tko_user_new();
    struct {
        const char *body, *field, *message;
    } cases[] = {
        {"{\"title\":\"\",\"price\":10}", "title", "Title is required"},
        {"{\"price\":10}", "title", "Title is required"},
        {"{\"title\":\"concert\",\"price\":-10}", "price", "Price must be greater than 0"},
        {"{\"title\":\"concert\"}", "price", "Price must be greater than 0"},
        {"{\"title\":\"concert\",\"price\":\"ten\"}", "price", "Price must be greater than 0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tk_test_resp_t r;
        tk_test_http("POST", "/api/tickets", cases[i].body, u.cookie, &r);
        assert_int_equal(r.status, 400);
        assert_string_equal(tk_test_first_message(&r), cases[i].message);
        assert_string_equal(tko_str(json_array_get(json_object_get(r.json, "errors"), 0), "field"),
                            cases[i].field);
        tk_test_resp_release(&r);
    }
    assert_true(tk_test_http_is("POST", "/api/tickets", "{\"title\":", u.cookie, 400, NULL));
    free(u.cookie);
}

/* T6, T7, T10: 201 with the ticket, ticket:created v0 on the broker, then the queries. */
static void create_publishes_and_projects(void **state)
{
    (void)state;
    tk_test_watch_t *w = tk_test_watch_new(EV_TOPIC_TICKETS);
    tko_user_t u = tko_user_new();
    tk_test_resp_t r;
    tk_test_http("POST", "/api/tickets", "{\"title\":\"concert\",\"price\":\"20\"}", u.cookie, &r);
    assert_int_equal(r.status, 201);
    const char *id = tko_str(r.json, "id");
    assert_true(tk_uuid_valid(id));
    assert_string_equal(tko_str(r.json, "title"), "concert");
    assert_int_equal(tko_num(r.json, "price"), 20);
    assert_string_equal(tko_str(r.json, "userId"), u.id);
    assert_int_equal(tko_num(r.json, "version"), 0);
    assert_null(json_object_get(r.json, "orderId"));

    json_t *env = tk_test_watch_expect(w, "ticket:created", id, WAIT_MS);
    assert_non_null(env);
    assert_string_equal(tko_str(env, "source"), "ticketing/tickets");
    assert_int_equal(tko_num(env, "aggregateversion"), 0);
    json_t *data = json_object_get(env, "data");
    assert_string_equal(tko_str(data, "id"), id);
    assert_string_equal(tko_str(data, "title"), "concert");
    assert_int_equal(tko_num(data, "price"), 20);
    assert_string_equal(tko_str(data, "userId"), u.id);
    assert_int_equal(tko_num(data, "version"), 0);
    json_decref(env);

    wait_view(id, 0);
    json_t *t = get_ticket(id);
    assert_string_equal(tko_str(t, "title"), "concert");
    assert_int_equal(tko_num(t, "price"), 20);
    assert_string_equal(tko_str(t, "userId"), u.id);
    json_decref(t);
    assert_true(tko_ticket_listed(id));

    /* A price with cents keeps them. */
    tk_test_resp_t r2;
    tk_test_http("POST", "/api/tickets", "{\"title\":\"cents\",\"price\":19.99}", u.cookie, &r2);
    assert_int_equal(r2.status, 201);
    assert_non_null(strstr(r2.body, "\"price\":19.99"));
    tk_test_resp_release(&r2);
    tk_test_resp_release(&r);
    tk_test_watch_free(w);
    free(u.cookie);
}

/* T8: tickets of three users are all listed. */
static void list_has_every_users_tickets(void **state)
{
    (void)state;
    char ids[3][TK_UUID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        tko_user_t u = tko_user_new();
        create_ticket(&u, "list", 10 + i, ids[i]);
        free(u.cookie);
    }
    for (int i = 0; i < 3; i++)
        assert_true(tk_test_eventually(tko_ticket_is_listed, ids[i], WAIT_MS));
    tk_test_resp_t r;
    tk_test_http("GET", "/api/tickets", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_array_size(r.json) >= 3);
    tk_test_resp_release(&r);
}

/* T9 and malformed ids. */
static void show_unknown_is_404(void **state)
{
    (void)state;
    char id[TK_UUID_LEN + 1], path[128];
    tk_uuid_new(id);
    const char *paths[] = {"/api/tickets/%s", "/api/tickets/%s/history"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), paths[i], id);
        assert_true(tk_test_http_is("GET", path, NULL, NULL, 404, NULL));
        snprintf(path, sizeof(path), paths[i], "5f1a2b3c4d5e6f7a8b9c0d1e");
        assert_true(tk_test_http_is("GET", path, NULL, NULL, 404, NULL));
    }
}

/* ------------------------------------------------------------------ PUT /api/tickets/:id */

/* T11, T12, T13, T14. */
static void update_errors(void **state)
{
    (void)state;
    tko_user_t owner = tko_user_new(), other = tko_user_new();
    char id[TK_UUID_LEN + 1], unknown[TK_UUID_LEN + 1];
    tk_uuid_new(unknown);
    create_ticket(&owner, "mine", 20, id);
    tk_test_resp_t r;
    const char *valid = "{\"title\":\"aslkdfj\",\"price\":20}";

    put_ticket(&owner, unknown, valid, &r); /* T11 */
    assert_int_equal(r.status, 404);
    tk_test_resp_release(&r);
    put_ticket(&owner, "not-a-uuid", valid, &r);
    assert_int_equal(r.status, 404);
    tk_test_resp_release(&r);
    put_ticket(NULL, unknown, valid, &r); /* T12 */
    assert_int_equal(r.status, 401);
    tk_test_resp_release(&r);
    put_ticket(&other, id, valid, &r); /* T13 */
    assert_int_equal(r.status, 401);
    tk_test_resp_release(&r);
    put_ticket(&owner, id, "{\"title\":\"\",\"price\":20}", &r); /* T14 */
    assert_int_equal(r.status, 400);
    assert_string_equal(tk_test_first_message(&r), "Title is required");
    tk_test_resp_release(&r);
    put_ticket(&owner, id, "{\"title\":\"alskdfjj\",\"price\":-10}", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(tk_test_first_message(&r), "Price must be greater than 0");
    tk_test_resp_release(&r);

    /* None of these changed the ticket. */
    wait_view(id, 0);
    json_t *t = get_ticket(id);
    assert_string_equal(tko_str(t, "title"), "mine");
    json_decref(t);
    free(owner.cookie);
    free(other.cookie);
}

/* T15, T16, T19: the update is applied and published; create + update publish exactly twice. */
static void update_publishes_exactly_once(void **state)
{
    (void)state;
    tk_test_watch_t *w = tk_test_watch_new(EV_TOPIC_TICKETS);
    tko_user_t owner = tko_user_new();
    char id[TK_UUID_LEN + 1];
    create_ticket(&owner, "old title", 20, id);
    tk_test_resp_t r;
    put_ticket(&owner, id, "{\"title\":\"new title\",\"price\":100}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(tko_str(r.json, "title"), "new title");
    assert_int_equal(tko_num(r.json, "price"), 100);
    assert_int_equal(tko_num(r.json, "version"), 1);
    tk_test_resp_release(&r);

    json_t *created = tk_test_watch_expect(w, "ticket:created", id, WAIT_MS);
    assert_non_null(created);
    assert_int_equal(tko_num(created, "aggregateversion"), 0);
    json_decref(created);
    json_t *updated = tk_test_watch_expect(w, "ticket:updated", id, WAIT_MS);
    assert_non_null(updated);
    assert_int_equal(tko_num(updated, "aggregateversion"), 1);
    json_t *data = json_object_get(updated, "data");
    assert_string_equal(tko_str(data, "title"), "new title");
    assert_int_equal(tko_num(data, "price"), 100);
    assert_int_equal(tko_num(data, "version"), 1);
    assert_null(json_object_get(data, "orderId"));
    json_decref(updated);
    /* Exactly twice: nothing more for this ticket shows up. */
    assert_int_equal(tk_test_watch_count(w, "ticket:created", id, 1500), 0);
    assert_int_equal(tk_test_watch_count(w, "ticket:updated", id, 500), 0);

    wait_view(id, 1);
    json_t *t = get_ticket(id);
    assert_string_equal(tko_str(t, "title"), "new title");
    assert_int_equal(tko_num(t, "price"), 100);
    json_decref(t);

    /* T19: the version rises by one per save. */
    put_ticket(&owner, id, "{\"title\":\"third\",\"price\":\"7.5\"}", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(tko_num(r.json, "version"), 2);
    assert_non_null(strstr(r.body, "\"price\":7.5"));
    tk_test_resp_release(&r);
    wait_view(id, 2);
    tk_test_watch_free(w);
    free(owner.cookie);
}

static int load_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    tk_ticket_t *t = arg;
    char id[TK_UUID_LEN + 1];
    memcpy(id, t->id, sizeof(id)); /* tk_tickets_load clears its output first */
    return tk_tickets_load(tx, id, t, err);
}

static int write_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    return tk_tickets_write(tx, arg, err);
}

/* T18: two writers load the same version; the second save is refused. */
static void optimistic_concurrency(void **state)
{
    (void)state;
    tko_user_t owner = tko_user_new();
    tk_ticket_t first = {0}, second = {0};
    create_ticket(&owner, "race", 5, first.id);
    memcpy(second.id, first.id, sizeof(first.id));
    tk_err_t err = {0};
    PGconn *c = tk_pg_connect("tickets", &err);
    assert_non_null(c);
    assert_int_equal(tk_command_run(c, NULL, load_body, &first, &err), 0);
    assert_int_equal(tk_command_run(c, NULL, load_body, &second, &err), 0);
    assert_int_equal(first.version, 0);
    assert_int_equal(second.version, 0);

    snprintf(first.title, sizeof(first.title), "first writer");
    first.version++;
    assert_int_equal(tk_command_run(c, NULL, write_body, &first, &err), 0);
    snprintf(second.title, sizeof(second.title), "second writer");
    second.version++;
    assert_int_equal(tk_command_run(c, NULL, write_body, &second, &err), TK_ECONFLICT);

    tk_ticket_t now = {0};
    memcpy(now.id, first.id, sizeof(now.id));
    assert_int_equal(tk_command_run(c, NULL, load_body, &now, &err), 0);
    assert_string_equal(now.title, "first writer");
    assert_int_equal(now.version, 1);
    PQfinish(c);
    free(owner.cookie);
}

/* ------------------------------------------------------------------ reactions to orders */

/* T17, T20, T21, T22: order:created reserves the ticket, once; T23: order:cancelled frees it. */
static void reserve_and_release(void **state)
{
    (void)state;
    tko_user_t owner = tko_user_new();
    char id[TK_UUID_LEN + 1], order[TK_UUID_LEN + 1], other_order[TK_UUID_LEN + 1];
    new_listed_ticket(&owner, "reserve me", id);
    assert_true(tk_test_eventually(tko_ticket_is_listed, id, WAIT_MS));

    tk_test_watch_t *w = tk_test_watch_new(EV_TOPIC_TICKETS);
    tk_uuid_new(order);
    char *created_text = NULL;
    publish_order_created(order, id, &created_text);
    json_t *env = tk_test_watch_expect(w, "ticket:updated", id, WAIT_MS); /* T22 */
    assert_non_null(env);
    assert_int_equal(tko_num(env, "aggregateversion"), 1);
    assert_string_equal(tko_str(json_object_get(env, "data"), "orderId"), order);
    assert_int_equal(tko_num(json_object_get(env, "data"), "version"), 1);
    assert_string_equal(tko_str(json_object_get(env, "data"), "title"), "reserve me");
    json_decref(env);

    wait_view(id, 1); /* T20 */
    json_t *t = get_ticket(id);
    assert_string_equal(tko_str(t, "orderId"), order);
    json_decref(t);
    assert_true(tk_test_eventually(is_unlisted, id, WAIT_MS));

    /* T17: a reserved ticket cannot be edited, and that is checked before the owner. */
    tk_test_resp_t r;
    put_ticket(&owner, id, "{\"title\":\"new\",\"price\":10}", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(tk_test_first_message(&r), "Cannot edit a reserved ticket");
    tk_test_resp_release(&r);
    tko_user_t stranger = tko_user_new();
    put_ticket(&stranger, id, "{\"title\":\"new\",\"price\":10}", &r);
    assert_int_equal(r.status, 400);
    tk_test_resp_release(&r);

    /* T21: the same record again (same event id) changes nothing; another (older) order's
     * created and cancelled, and an order:completed, change nothing either. */
    tk_test_publish(EV_TOPIC_ORDERS, order, created_text);
    tk_uuid_new(other_order); /* an older order's created + cancelled: a consistent pair, so
                                 other consumers of the topic (payments) see no version gap */
    event_time_ms = tk_now_ms() - 60000;
    publish_order_created(other_order, id, NULL);
    publish_order_ref("order:cancelled", other_order, 1, id);
    event_time_ms = 0;
    publish_order_ref("order:completed", order, 1, id);
    assert_int_equal(tk_test_watch_count(w, "ticket:updated", id, 3000), 0);
    t = get_ticket(id);
    assert_int_equal(tko_num(t, "version"), 1);
    assert_string_equal(tko_str(t, "orderId"), order);
    json_decref(t);

    /* T23: order:cancelled of the holder frees the ticket and publishes ticket:updated. */
    publish_order_ref("order:cancelled", order, 1, id);
    env = tk_test_watch_expect(w, "ticket:updated", id, WAIT_MS);
    assert_non_null(env);
    assert_int_equal(tko_num(env, "aggregateversion"), 2);
    assert_null(json_object_get(json_object_get(env, "data"), "orderId"));
    json_decref(env);
    wait_view(id, 2);
    t = get_ticket(id);
    assert_null(json_object_get(t, "orderId"));
    json_decref(t);
    assert_true(tk_test_eventually(tko_ticket_is_listed, id, WAIT_MS));

    /* Free again: the owner may edit (version 3). */
    put_ticket(&owner, id, "{\"title\":\"edited\",\"price\":10}", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(tko_num(r.json, "version"), 3);
    tk_test_resp_release(&r);

    /* The history holds every version in order, from the projection. */
    wait_view(id, 3);
    char path[128];
    snprintf(path, sizeof(path), "/api/tickets/%s/history", id);
    tk_test_http("GET", path, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 4);
    const char *types[] = {"ticket:created", "ticket:updated", "ticket:updated", "ticket:updated"};
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_array_get(r.json, i);
        assert_string_equal(tko_str(e, "type"), types[i]);
        assert_string_equal(tko_str(e, "subject"), id);
        assert_int_equal(tko_num(e, "aggregateversion"), (json_int_t)i);
        assert_true(tk_uuid_valid(tko_str(e, "id")));
    }
    assert_string_equal(tko_str(json_object_get(json_array_get(r.json, 1), "data"), "orderId"),
                        order);
    assert_string_equal(tko_str(json_object_get(json_array_get(r.json, 3), "data"), "title"),
                        "edited");
    tk_test_resp_release(&r);

    free(created_text);
    tk_test_watch_free(w);
    free(owner.cookie);
    free(stranger.cookie);
}

/* A listed ticket of a new user, reserved by a new order: its order:created published and
 * projected (the view at version 1). */
struct reserved {
    tko_user_t owner; /* cookie: free() */
    char id[TK_UUID_LEN + 1], order[TK_UUID_LEN + 1];
};

static void reserved_ticket(struct reserved *t, const char *title)
{
    t->owner = tko_user_new();
    new_listed_ticket(&t->owner, title, t->id);
    tk_uuid_new(t->order);
    publish_order_created(t->order, t->id, NULL);
    wait_view(t->id, 1);
}

/* A new order's order:created may overtake the old order's order:cancelled (other partition):
 * the ticket ends reserved by the new order. */
static void new_order_overtakes_old_cancel(void **state)
{
    (void)state;
    struct reserved t; /* by order A */
    reserved_ticket(&t, "contested");
    char b[TK_UUID_LEN + 1];
    tk_uuid_new(b);
    publish_order_created(b, t.id, NULL); /* B before A's cancel */
    wait_view(t.id, 2);
    tk_test_watch_t *w = tk_test_watch_new(EV_TOPIC_TICKETS);
    publish_order_ref("order:cancelled", t.order, 1, t.id);
    /* A's cancel is not B's: no change, so the view stays at version 2, held by B. */
    stays_held(w, t.id, 2500, 2, b);
    tk_test_watch_free(w);
    free(t.owner.cookie);
}

/* An old order's whole story (created, cancelled) arrives after the new order's created, as
 * when its partition lags: the ticket stays reserved by the new order, with no change at all. */
static void stale_order_arrives_late(void **state)
{
    (void)state;
    struct reserved t; /* by the new order */
    reserved_ticket(&t, "lagging");
    tk_test_watch_t *w = tk_test_watch_new(EV_TOPIC_TICKETS);
    char old[TK_UUID_LEN + 1];
    tk_uuid_new(old);
    event_time_ms = tk_now_ms() - 60000; /* the old order was created and cancelled a minute ago */
    publish_order_created(old, t.id, NULL);
    publish_order_ref("order:cancelled", old, 1, t.id);
    event_time_ms = 0;
    stays_held(w, t.id, 3000, 1, t.order);
    tk_test_watch_free(w);
    free(t.owner.cookie);
}

/* ------------------------------------------------------------------ pagination */

static void pagination(void **state)
{
    (void)state;
    tko_user_t u = tko_user_new();
    char ids[3][TK_UUID_LEN + 1];
    for (int i = 0; i < 3; i++)
        create_ticket(&u, "page", 1 + i, ids[i]);
    for (int i = 0; i < 3; i++)
        wait_view(ids[i], 0);

    /* Walk from the first ticket with pages of 2: the other two follow, in creation order, with
     * no duplicate (other tests may add tickets in between, so look for ours). */
    char cursor[TK_UUID_LEN + 1], path[256];
    snprintf(cursor, sizeof(cursor), "%s", ids[0]);
    int seen1 = -1, seen2 = -1, position = 0;
    for (int page = 0; page < 50 && seen2 < 0; page++) {
        tk_test_resp_t r;
        snprintf(path, sizeof(path), "/api/tickets?limit=2&cursor=%s", cursor);
        tk_test_http("GET", path, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_true(json_is_array(r.json));
        assert_true(json_array_size(r.json) <= 2);
        size_t i;
        json_t *t;
        json_array_foreach(r.json, i, t)
        {
            assert_string_not_equal(tko_str(t, "id"), ids[0]);
            if (strcmp(tko_str(t, "id"), ids[1]) == 0)
                seen1 = position;
            if (strcmp(tko_str(t, "id"), ids[2]) == 0)
                seen2 = position;
            position++;
        }
        if (json_array_size(r.json) > 0)
            snprintf(cursor, sizeof(cursor), "%s",
                     tko_str(json_array_get(r.json, json_array_size(r.json) - 1), "id"));
        tk_test_resp_release(&r);
    }
    assert_true(seen1 >= 0);
    assert_true(seen2 > seen1);

    tk_test_resp_t r;
    tk_test_http("GET", "/api/tickets?limit=1", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 1);
    tk_test_resp_release(&r);
    const char *bad[] = {"/api/tickets?limit=0", "/api/tickets?limit=abc",
                         "/api/tickets?limit=1001", "/api/tickets?cursor=nope"};
    for (size_t i = 0; i < 4; i++) {
        assert_true(tk_test_http_is("GET", bad[i], NULL, NULL, 400, NULL));
    }
    char unknown[TK_UUID_LEN + 1];
    tk_uuid_new(unknown);
    snprintf(path, sizeof(path), "/api/tickets?cursor=%s", unknown);
    assert_true(tk_test_http_is("GET", path, NULL, NULL, 400, "Invalid cursor"));
    free(u.cookie);
}

/* Issue 11 item 11: a bare GET /api/tickets is bounded by LIST_DEFAULT_LIMIT (100; 4 here),
 * still a bare array; ?limit goes up to LIST_MAX_LIMIT and no further. */
static void bare_list_is_bounded(void **state)
{
    (void)state;
    setenv("LIST_DEFAULT_LIMIT", "4", 1);
    setenv("LIST_MAX_LIMIT", "6", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    tko_user_t u = tko_user_new();
    char ids[7][TK_UUID_LEN + 1];
    for (int i = 0; i < 7; i++)
        create_ticket(&u, "bounded", 5, ids[i]);
    for (int i = 0; i < 7; i++)
        wait_view(ids[i], 0);
    tk_test_resp_t r;
    tk_test_http("GET", "/api/tickets", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(json_is_array(r.json));
    assert_int_equal(json_array_size(r.json), 4);
    tk_test_resp_release(&r);
    tk_test_http("GET", "/api/tickets?limit=6", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 6);
    tk_test_resp_release(&r);
    assert_true(tk_test_http_is("GET", "/api/tickets?limit=7", NULL, NULL, 400,
                                "limit must be an integer between 1 and 6"));
    setenv("LIST_DEFAULT_LIMIT", "100", 1);
    setenv("LIST_MAX_LIMIT", "1000", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    free(u.cookie);
}

TK_TEST_MAIN(setup, tko_teardown, cmocka_unit_test(create_requires_auth),
             cmocka_unit_test(bare_list_is_bounded), cmocka_unit_test(create_validation),
             cmocka_unit_test(create_publishes_and_projects),
             cmocka_unit_test(list_has_every_users_tickets), cmocka_unit_test(show_unknown_is_404),
             cmocka_unit_test(update_errors), cmocka_unit_test(update_publishes_exactly_once),
             cmocka_unit_test(optimistic_concurrency), cmocka_unit_test(reserve_and_release),
             cmocka_unit_test(new_order_overtakes_old_cancel),
             cmocka_unit_test(stale_order_arrives_late), cmocka_unit_test(pagination))
